"""The PostgreSQL replication exporter: which center is primary, and per standby its state and lag.

Lag in seconds comes from a heartbeat row the exporter writes on the primary every interval
(`govctl_heartbeat`): a standby's lag is the primary's latest heartbeat minus the heartbeat the
standby has replayed, both stamped by the primary's clock. Unlike now() − pg_last_xact_replay_timestamp()
it neither grows on an idle primary nor depends on the standby's clock. Lag in bytes is the primary's
current WAL position minus the standby's replay position (pg_stat_replication). The heartbeat is
committed with synchronous_commit=local so a lost synchronous standby cannot block the exporter.

    python -m monitors.replication --config replication.yaml [--netns gl-prod-db-1]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import GaugeMetricFamily

from core.errors import GovctlError

from . import names
from .durations import parse_duration
from .netns import enter as enter_netns
from .specfile import load_document

SCHEMA = Path(__file__).with_name("replication.schema.yaml")
log = logging.getLogger("govctl.replication")
HEARTBEAT_TABLE = "govctl_heartbeat"


@dataclass(frozen=True)
class Standby:
    center: str
    mode: str
    application_name: str


@dataclass(frozen=True)
class ReplicationConfig:
    source: str
    listen_host: str
    listen_port: int
    interval: float
    timeout: float
    databases: dict[str, str]  # center → dsn
    standbys: tuple[Standby, ...]


def load_replication_config(path: str | Path) -> ReplicationConfig:
    doc = load_document(path, SCHEMA)
    data = doc.data
    databases: dict[str, str] = {}
    for i, db in enumerate(data["databases"]):
        if db["center"] in databases:
            doc.problem(f"databases[{i}].center", f"center {db['center']!r} is listed twice")
        if "password=" in db["dsn"]:
            doc.problem(f"databases[{i}].dsn", "a password in the file would leak into logs and the "
                                               "repository; remove it and use a passfile (PGPASSFILE)")
        databases[db["center"]] = db["dsn"]
    for i, sb in enumerate(data["standbys"]):
        if sb["center"] not in databases:
            doc.problem(f"standbys[{i}].center", f"standby {sb['center']!r} has no entry under databases; "
                                                 "add its connection string")
    doc.raise_if_problems()
    host, _, port = data["listen"].rpartition(":")
    return ReplicationConfig(
        str(path), host.strip("[]"), int(port), parse_duration(data.get("interval", "5s")),
        parse_duration(data.get("timeout", "3s")), databases,
        tuple(Standby(s["center"], s["mode"], s.get("application_name", s["center"]))
              for s in data["standbys"]))


@dataclass
class Snapshot:
    up: dict[str, int] = field(default_factory=dict)
    primary: dict[str, int] = field(default_factory=dict)
    standby: dict[str, dict[str, float]] = field(default_factory=dict)  # center → metric → value
    heartbeat: float | None = None


class ReplicationExporter:
    def __init__(self, config: ReplicationConfig):
        self.config = config
        self.connections: dict[str, psycopg.Connection] = {}
        self.snapshot = Snapshot()

    def _conn(self, center: str) -> psycopg.Connection:
        conn = self.connections.get(center)
        if conn is None or conn.closed:
            ms = int(self.config.timeout * 1000)
            conn = psycopg.connect(self.config.databases[center], autocommit=True,
                                   connect_timeout=max(1, int(self.config.timeout)),
                                   options=f"-c statement_timeout={ms} -c synchronous_commit=local",
                                   application_name="govctl-replication-exporter")
            self.connections[center] = conn
        return conn

    def _query(self, center: str, sql: str, params=()) -> list[tuple]:
        try:
            cursor = self._conn(center).execute(sql, params)
            return cursor.fetchall() if cursor.description else []
        except psycopg.Error:
            conn = self.connections.pop(center, None)
            if conn is not None:
                conn.close()
            raise

    def collect_once(self) -> Snapshot:
        snap = Snapshot()
        in_recovery: dict[str, bool] = {}
        for center in self.config.databases:
            try:
                in_recovery[center] = self._query(center, "SELECT pg_is_in_recovery()")[0][0]
                snap.up[center] = 1
            except psycopg.Error as exc:
                snap.up[center] = 0
                log.warning("%s: cannot reach the database: %s", center, str(exc).splitlines()[0])
        primaries = [c for c, rec in in_recovery.items() if not rec]
        for center in self.config.databases:
            snap.primary[center] = int(center in primaries)
        if len(primaries) > 1:
            log.error("several primaries (%s): split brain; heartbeats go to none", ", ".join(primaries))
        written = None
        replication: dict[str, tuple] = {}
        if len(primaries) == 1:
            primary = primaries[0]
            try:
                self._query(primary, f"CREATE TABLE IF NOT EXISTS {HEARTBEAT_TABLE} "
                                     "(id int PRIMARY KEY, center text NOT NULL, ts timestamptz NOT NULL)")
                written = self._query(
                    primary, f"INSERT INTO {HEARTBEAT_TABLE} VALUES (1, %s, clock_timestamp()) "
                             "ON CONFLICT (id) DO UPDATE SET center = excluded.center, ts = excluded.ts "
                             "RETURNING extract(epoch FROM ts)::float8", (primary,))[0][0]
                replication = {row[0]: row[1:] for row in self._query(
                    primary, "SELECT application_name, state, sync_state, "
                             "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 "
                             "FROM pg_stat_replication")}
            except psycopg.Error as exc:
                log.warning("%s: heartbeat or pg_stat_replication failed: %s", primary,
                            str(exc).splitlines()[0])
        snap.heartbeat = written
        for sb in self.config.standbys:
            values: dict[str, float] = {}
            row = replication.get(sb.application_name)
            values["streaming"] = float(row is not None and row[0] == "streaming")
            values["synchronous"] = float(row is not None and row[1] in ("sync", "quorum"))
            if row is not None and row[2] is not None:
                values["lag_bytes"] = max(0.0, row[2])
            if in_recovery.get(sb.center):
                try:
                    seen, paused = self._query(
                        sb.center, f"SELECT (SELECT extract(epoch FROM ts)::float8 FROM {HEARTBEAT_TABLE} "
                                   "WHERE id = 1), pg_is_wal_replay_paused()")[0]
                    values["replay_paused"] = float(paused)
                    if written is not None and seen is not None:
                        values["lag_seconds"] = max(0.0, written - seen)
                except psycopg.errors.UndefinedTable:
                    pass  # the first heartbeat has not reached this standby yet
                except psycopg.Error as exc:
                    log.warning("%s: cannot read the heartbeat: %s", sb.center, str(exc).splitlines()[0])
            snap.standby[sb.center] = values
        self.snapshot = snap
        return snap

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            start = time.monotonic()
            try:
                self.collect_once()
            except Exception:  # keep exporting: one bad cycle must not end the exporter
                log.exception("replication cycle failed")
            stop.wait(max(0.0, self.config.interval - (time.monotonic() - start)))


class ReplicationCollector:
    def __init__(self, exporter: ReplicationExporter):
        self.exporter = exporter

    def collect(self):
        snap, cfg = self.exporter.snapshot, self.exporter.config
        up = GaugeMetricFamily(names.PG_UP, "1 when the exporter reached the center's database",
                               labels=["center"])
        primary = GaugeMetricFamily(names.PG_IS_PRIMARY, "1 on the center whose database is primary",
                                    labels=["center"])
        for center, value in snap.up.items():
            up.add_metric([center], value)
            primary.add_metric([center], snap.primary.get(center, 0))
        yield up
        yield primary
        families = {
            "streaming": GaugeMetricFamily(names.PG_STANDBY_STREAMING, "1 while the standby streams",
                                           labels=["standby", "mode"]),
            "synchronous": GaugeMetricFamily(names.PG_STANDBY_SYNCHRONOUS, "1 when the primary treats "
                                             "the standby as synchronous", labels=["standby", "mode"]),
            "lag_bytes": GaugeMetricFamily(names.PG_LAG_BYTES, "Primary WAL position minus the "
                                           "standby's replay position", labels=["standby", "mode"]),
            "lag_seconds": GaugeMetricFamily(names.PG_LAG_SECONDS, "Primary's latest heartbeat minus "
                                             "the one the standby replayed", labels=["standby", "mode"]),
            "replay_paused": GaugeMetricFamily(names.PG_REPLAY_PAUSED, "1 when WAL replay is paused",
                                               labels=["standby", "mode"]),
        }
        for sb in cfg.standbys:
            for key, value in snap.standby.get(sb.center, {}).items():
                families[key].add_metric([sb.center, sb.mode], value)
        yield from families.values()
        if snap.heartbeat is not None:
            yield GaugeMetricFamily(names.PG_HEARTBEAT, "Unix time of the last heartbeat written on "
                                    "the primary", value=snap.heartbeat)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitors.replication",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--netns", help="connect to the databases from this network namespace")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("GOVCTL_LOG", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = load_replication_config(args.config)
    except GovctlError as exc:
        log.error("%s", exc)
        return exc.exit_code
    exporter = ReplicationExporter(config)
    registry = CollectorRegistry()
    registry.register(ReplicationCollector(exporter))
    ProcessCollector(registry=registry)
    start_http_server(config.listen_port, addr=config.listen_host, registry=registry)
    if args.netns:
        try:
            enter_netns(args.netns)  # after binding: Prometheus keeps reaching the metrics socket
        except GovctlError as exc:
            log.error("%s", exc)
            return exc.exit_code
    log.info("replication: %d databases, %d standbys, every %g s, metrics on %s:%d",
             len(config.databases), len(config.standbys), config.interval, config.listen_host,
             config.listen_port)
    stop = threading.Event()
    try:
        exporter.run(stop)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
