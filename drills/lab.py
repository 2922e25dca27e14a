"""The lab as a drill target: the faults and recovery moves drills make, on the real lab.

Everything is read from the stack outputs (centers, hosts, databases, links, the service address)
and acts on the lab's real processes, links, routes and PostgreSQL servers.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from infra.lab import system
from infra.lab.hostops import PG_BIN, PG_DATA, boot_host, host_pid, stop_host, write_in_host
from infra.lab.rootfs import base_path
from infra.lab.status import http_get, lab_status
from infra.outputs import Host, StackOutputs

POSTGRES_SERVICE = "etc/govctl/services/postgres.json"


class DrillError(RuntimeError):
    """A drill step that could not do what it must; the runner rolls back."""


@dataclass
class LabTarget:
    outputs: StackOutputs
    stack: str = "lab"

    @property
    def replication_password(self) -> str:
        """From the stack's Pulumi secrets (decrypted only here, never logged)."""
        from infra.engine import Engine

        value = Engine(self.stack).config_value("govctl:pg_replication_password")
        if not value:
            raise DrillError(f"stack {self.stack!r} has no govctl:pg_replication_password secret")
        return value

    # -- lookups ------------------------------------------------------------------------
    @property
    def original_primary(self) -> str:
        return self.outputs.databases.primary.center

    def centers(self) -> list[str]:
        return list(self.outputs.centers)

    def hosts_of(self, center: str) -> list[Host]:
        return self.outputs.hosts_in(center)

    def db_host(self, center: str) -> Host:
        return next(h for h in self.hosts_of(center) if "database" in h.roles)

    def web_host(self, center: str) -> Host | None:
        return next((h for h in self.hosts_of(center) if "web" in h.roles), None)

    def site_centers(self, site: str) -> list[str]:
        return [c for c, v in self.outputs.centers.items() if v.site == site]

    def host_up(self, host: Host) -> bool:
        try:
            host_pid(host.folder)
            return True
        except system.LabCommandError:
            return False

    def center_up(self, center: str) -> bool:
        return all(self.host_up(h) for h in self.hosts_of(center))

    def links_of(self, center: str) -> list[str]:
        """Names of the inter-center links that end in this center."""
        return [name for name, link in self.outputs.links.items() if center in link.between]

    # -- PostgreSQL -----------------------------------------------------------------------
    def sql(self, center: str, query: str, db: str = "gov", timeout: float = 10) -> str:
        pid = host_pid(self.db_host(center).folder)
        return system.host_exec(pid, "psql", "-X", "-At", "-d", db, "-c", query,
                                user="postgres", timeout=timeout).stdout.strip()

    def pg_running(self, center: str) -> bool:
        host = self.db_host(center)
        if not self.host_up(host):
            return False
        return system.host_exec(host_pid(host.folder), "pg_isready", "-q", "-h",
                                "/var/run/postgresql", check=False).returncode == 0

    def is_primary(self, center: str) -> bool:
        return self.pg_running(center) and self.sql(center, "SELECT pg_is_in_recovery()",
                                                    db="postgres") == "f"

    def primaries(self) -> list[str]:
        return [c for c in self.centers() if self.is_primary(c)]

    def _pg_ctl(self, center: str, *args: str) -> None:
        pid = host_pid(self.db_host(center).folder)
        system.host_exec(pid, f"{PG_BIN}/pg_ctl", *args, "-D", PG_DATA, user="postgres",
                         timeout=120)

    def _write(self, center: str, path: str, text: str, owner: str = "postgres") -> None:
        write_in_host(host_pid(self.db_host(center).folder), path, text, 0o600, owner)

    def _hold_postgres(self, center: str, held: bool) -> None:
        """Keep PostgreSQL from starting when the host boots (a fenced node stays fenced)."""
        host = self.db_host(center)
        service = Path(host.folder) / "upper" / POSTGRES_SERVICE
        held_file = service.with_suffix(".held")
        if self.host_up(host):
            pid = host_pid(host.folder)
            src, dst = ((f"/{POSTGRES_SERVICE}", f"/{POSTGRES_SERVICE[:-5]}.held") if held else
                        (f"/{POSTGRES_SERVICE[:-5]}.held", f"/{POSTGRES_SERVICE}"))
            system.host_exec(pid, "sh", "-c", f"[ ! -e {src} ] || mv {src} {dst}")
        elif held and service.exists():  # the host is down: its disk may be edited directly
            service.rename(held_file)
        elif not held and held_file.exists():
            held_file.rename(service)

    def _stop_postgres(self, center: str) -> None:
        """Hold PostgreSQL back and stop it fast; return once no postgres process is left (a
        server still shutting down must not see its data directory replaced)."""
        host = self.db_host(center)
        pid = host_pid(host.folder)
        self._hold_postgres(center, True)  # govctl-init will not restart it
        system.host_exec(pid, f"{PG_BIN}/pg_ctl", "stop", "-D", PG_DATA, "-m", "fast", "-t", "60",
                         user="postgres", check=False, timeout=90)
        system.wait_for(lambda: system.host_exec(pid, "pgrep", "-u", "postgres", "-x", "postgres",
                                                 check=False).returncode == 1,
                        60, f"every PostgreSQL process on {host.fqdn} to exit")

    def fence(self, center: str) -> str:
        """Make sure the center's database can take no more writes before anyone is promoted."""
        host = self.db_host(center)
        if not self.host_up(host):
            self._hold_postgres(center, True)
            return f"{host.fqdn} is down; PostgreSQL held back for its next boot"
        self._stop_postgres(center)
        return f"PostgreSQL on {host.fqdn} stopped and held"

    def promote(self, center: str) -> str:
        if self.is_primary(center):
            return f"{center} is already the primary"
        self._pg_ctl(center, "promote", "-w", "-t", "60")
        system.wait_for(lambda: self.is_primary(center), 60, f"{center} to leave recovery")
        return f"{self.db_host(center).fqdn} promoted"

    def set_sync(self, center: str, standbys: list[str]) -> str:
        names = f"FIRST 1 ({', '.join(standbys)})" if standbys else ""
        self.sql(center, f"ALTER SYSTEM SET synchronous_standby_names = '{names}'", db="postgres")
        self.sql(center, "SELECT pg_reload_conf()", db="postgres")
        return f"synchronous_standby_names on {center} = '{names}'"

    def _conninfo(self, primary: str, application_name: str) -> str:
        address = self.db_host(primary).ipv4
        return (f"primary_conninfo = 'host={address} port=5432 user=replicator "
                f"application_name={application_name} passfile=/var/lib/postgresql/.pgpass'\n")

    def _pgpass_for(self, center: str, primary: str) -> None:
        password = self.replication_password
        address = self.db_host(primary).ipv4
        self._write(center, "/var/lib/postgresql/.pgpass",
                    f"{address}:5432:replication:replicator:{password}\n"
                    f"{address}:5432:*:replicator:{password}\n")

    def follow(self, center: str, primary: str) -> str:
        """A running standby streams from a new primary (it follows the new timeline)."""
        self._pgpass_for(center, primary)
        self._write(center, f"{PG_DATA}/postgresql.auto.conf", self._conninfo(primary, center))
        self._pg_ctl(center, "reload", "-s")
        system.wait_for(lambda: self.streaming_from(primary, center), 60,
                        f"{center} to stream from {primary}")
        return f"{center} streams from {primary}"

    def rejoin(self, center: str, primary: str) -> str:
        """Make a center's database a fresh standby of the primary (re-clone)."""
        host = self.db_host(center)
        pid = host_pid(host.folder)
        self._stop_postgres(center)
        self._pgpass_for(center, primary)
        system.host_exec(pid, "rm", "-rf", PG_DATA)
        system.host_exec(pid, f"{PG_BIN}/pg_basebackup", "-h", self.db_host(primary).ipv4,
                         "-U", "replicator", "-D", PG_DATA, "-X", "stream", "-R",
                         "--checkpoint=fast", user="postgres", timeout=300)
        settings = system.host_exec(pid, "cat", f"{PG_DATA}/govctl.conf").stdout
        settings = "\n".join(l for l in settings.splitlines()
                             if not l.startswith("synchronous_standby_names")) + \
            "\nsynchronous_standby_names = ''\n"
        self._write(center, f"{PG_DATA}/govctl.conf", settings)
        self._write(center, f"{PG_DATA}/postgresql.auto.conf", self._conninfo(primary, center))
        self._hold_postgres(center, False)
        system.wait_for(lambda: self.streaming_from(primary, center), 90,
                        f"{center} to stream from {primary}")
        return f"{host.fqdn} re-cloned from {primary} and streaming"

    def streaming_from(self, primary: str, standby: str) -> bool:
        try:
            state = self.sql(primary, "SELECT state FROM pg_stat_replication WHERE "
                                      f"application_name = '{standby}'", db="postgres")
        except (system.LabCommandError, subprocess.TimeoutExpired):  # a node mid-restart
            return False
        return state == "streaming"

    def replication(self, primary: str) -> list[dict]:
        out = self.sql(primary, "SELECT application_name, state, sync_state, "
                                "coalesce(extract(epoch FROM replay_lag), 0) FROM pg_stat_replication",
                       db="postgres")
        rows = []
        for line in out.splitlines():
            name, state, sync_state, lag = line.split("|")
            rows.append({"standby": name, "state": state, "sync_state": sync_state,
                         "lag_seconds": float(lag)})
        return rows

    def route_to(self, center: str, address: str) -> str:
        ns = self.outputs.centers[center].namespace
        return system.sh("ip", "-n", ns, "route", "get", address).stdout.strip()

    def link_device(self, name: str, center: str) -> str:
        ns = self.outputs.centers[center].namespace
        return next(dev for end_ns, dev in self.outputs.links[name].ends if end_ns == ns)

    # -- faults -------------------------------------------------------------------------
    def set_link(self, name: str, up: bool) -> str:
        for ns, dev in self.outputs.links[name].ends:
            if system.ns_exists(ns):
                system.sh("ip", "-n", ns, "link", "set", dev, "up" if up else "down")
        return f"link {name} {'up' if up else 'down'}"

    def restore_routes(self) -> None:
        """A link that went down took its routes with it: put back the lab plan's addresses
        and routes (all but the service address, which only move_service moves)."""
        from infra.engine import StackDefinition
        from infra.lab.plan import build_plan
        from infra.topology import load_topology

        plan = build_plan(load_topology(StackDefinition.load(self.stack).topology))
        service = self.outputs.service
        service_routes = {f"{service.ipv4}/32", f"{service.ipv6}/128"} if service else set()
        for veth in plan.veths:  # addresses too, in case a link lost them going down
            for ns, dev, addrs in ((veth.ns_a, veth.if_a, veth.addrs_a),
                                   (veth.ns_b, veth.if_b, veth.addrs_b)):
                if addrs and system.link_exists(ns, dev):
                    system.set_addresses(ns, dev, addrs)
        for ns, routes in plan.routes.items():
            if not system.ns_exists(ns):
                continue
            for route in routes:
                if route.dest not in service_routes:
                    system.route_replace(ns, route.args())

    def power_off(self, center: str) -> str:
        """Unplanned loss: every host of the center loses power and its links go dark."""
        for host in self.hosts_of(center):
            stop_host(host.folder, hard=True)
        for name in self.links_of(center):
            self.set_link(name, up=False)
        uplink_ns = self.outputs.centers[center].namespace
        system.sh("ip", "-n", uplink_ns, "link", "set", "uplink", "down")
        return f"center {center}: {len(self.hosts_of(center))} hosts powered off, links down"

    def power_on(self, center: str) -> str:
        """Bring a center back: links up, hosts boot on their disks (fenced databases stay held)."""
        uplink_ns = self.outputs.centers[center].namespace
        system.sh("ip", "-n", uplink_ns, "link", "set", "uplink", "up")
        for name in self.links_of(center):
            self.set_link(name, up=True)
        self.restore_routes()
        base = str(base_path())
        booted = 0
        for host in self.hosts_of(center):
            if not self.host_up(host):
                boot_host(host.folder, host.namespace, host.name, base)
                booted += 1
        return f"center {center}: links up, {booted} hosts booted"

    # -- traffic ------------------------------------------------------------------------
    def repoint_web(self, primary: str) -> str:
        address = self.db_host(primary).ipv4
        moved = []
        for center in self.centers():
            host = self.web_host(center)
            if host is None or not self.host_up(host):
                continue
            pid = host_pid(host.folder)
            config = json.loads(system.host_exec(pid, "cat", "/etc/govctl/web.json").stdout)
            dsn = " ".join(f"host={address}" if part.startswith("host=") else part
                           for part in config["dsn"].split())
            if dsn != config["dsn"]:
                config["dsn"] = dsn
                write_in_host(pid, "/etc/govctl/web.json", json.dumps(config), 0o600)
                system.host_exec(pid, "service-restart", "govweb")
                moved.append(host.fqdn)
        return f"web services now use {address}: {', '.join(moved) or 'already'}"

    def move_service(self, center: str) -> str:
        service = self.outputs.service
        ns = service.route_namespace
        system.route_replace(ns, [f"{service.ipv4}/32", "via", self.outputs.centers[center].uplink])
        if service.ipv6:
            system.route_replace(ns, [f"{service.ipv6}/128", "via",
                                      self.outputs.centers[center].uplink_v6])
        return f"service address {service.ipv4} → {center}"

    def service_center(self) -> str | None:
        code, body = http_get(self.outputs.internet_namespace(), self.outputs.service.url)
        return body.get("center") if code == 200 else None

    def healthy(self) -> dict:
        return lab_status(self.outputs)


def wait_until(predicate, timeout: float, what: str, interval: float = 0.5):
    """system.wait_for, failing as a DrillError (which the runner turns into a rollback)."""
    try:
        return system.wait_for(predicate, timeout, what, interval)
    except system.LabCommandError as exc:
        raise DrillError(str(exc)) from None
