"""The replication exporter against a real PostgreSQL 15 primary with a sync and an async standby."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml

from monitors.replication import load_replication_config
from monitors.specfile import SpecError

from .helpers import free_port, scrape, stop_process, wait_for
from .pg_cluster import PgCluster


@pytest.fixture(scope="module")
def cluster():
    pg = PgCluster({"samecity": "synchronous", "remote": "asynchronous"}).start("prod")
    yield pg
    pg.stop()


def standby_values(metrics, family: str) -> dict[str, float]:
    return {s.labels["standby"]: s.value for s in metrics.get(family, [])}


@pytest.mark.slow
def test_exporter_reports_primary_sync_state_and_heartbeat_lag(tmp_path, cluster):
    port = free_port()
    config = tmp_path / "replication.yaml"
    config.write_text(yaml.safe_dump({
        "listen": f"127.0.0.1:{port}", "interval": "1s",
        "databases": [{"center": c, "dsn": cluster.dsn(c)} for c in ("prod", "samecity", "remote")],
        "standbys": [{"center": "samecity", "mode": "synchronous"},
                     {"center": "remote", "mode": "asynchronous"}]}))
    proc = subprocess.Popen([sys.executable, "-m", "monitors.replication", "--config", str(config)],
                            stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/metrics"

    def lag(standby: str) -> float | None:
        return standby_values(scrape(url), "govctl_pg_replication_lag_seconds").get(standby)

    try:
        metrics = wait_for(lambda: (m := scrape(url)) and len(standby_values(
            m, "govctl_pg_replication_lag_seconds")) == 2 and m, 20, "lag of both standbys")
        primary = {s.labels["center"]: s.value for s in metrics["govctl_pg_is_primary"]}
        assert primary == {"prod": 1, "samecity": 0, "remote": 0}
        assert standby_values(metrics, "govctl_pg_standby_streaming") == {"samecity": 1, "remote": 1}
        assert standby_values(metrics, "govctl_pg_standby_synchronous") == {"samecity": 1, "remote": 0}
        modes = {s.labels["standby"]: s.labels["mode"]
                 for s in metrics["govctl_pg_replication_lag_seconds"]}
        assert modes == {"samecity": "synchronous", "remote": "asynchronous"}
        assert lag("remote") < 2 and lag("samecity") < 2

        # pause replay on the async standby: its heartbeat lag grows with time, bytes pile up
        cluster.sql("remote", "SELECT pg_wal_replay_pause()")
        paused_at = time.monotonic()
        wait_for(lambda: lag("remote") >= 4, 20, "the paused standby's lag to pass 4 s")
        first = lag("remote")
        time.sleep(2.5)
        metrics = scrape(url)
        second = standby_values(metrics, "govctl_pg_replication_lag_seconds")["remote"]
        assert second >= first + 1.5, (first, second)
        assert second <= time.monotonic() - paused_at + 1.5  # it measures the pause, nothing else
        assert standby_values(metrics, "govctl_pg_replication_lag_bytes")["remote"] > 0
        assert standby_values(metrics, "govctl_pg_replay_paused") == {"samecity": 0, "remote": 1}
        assert standby_values(metrics, "govctl_pg_replication_lag_seconds")["samecity"] < 2

        cluster.sql("remote", "SELECT pg_wal_replay_resume()")
        wait_for(lambda: lag("remote") < 2, 20, "the resumed standby to catch up")
        metrics = scrape(url)
        assert standby_values(metrics, "govctl_pg_replication_lag_bytes")["remote"] < 1024 * 1024
        assert standby_values(metrics, "govctl_pg_replay_paused")["remote"] == 0

        # an idle primary: no writes but the heartbeat's, and the lag stays small (it is not
        # now() - pg_last_xact_replay_timestamp(), which would grow while nothing happens)
        time.sleep(3)
        assert lag("remote") < 2 and lag("samecity") < 2
    finally:
        stop_process(proc)


def test_config_refuses_passwords_and_unknown_standbys(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("listen: 127.0.0.1:9\ndatabases:\n"
                    "  - {center: prod, dsn: 'host=db port=5432 password=hunter2'}\n"
                    "standbys:\n  - {center: remote, mode: asynchronous}\n")
    with pytest.raises(SpecError) as err:
        load_replication_config(path)
    text = str(err.value)
    assert f"{path}:3: databases[0].dsn: a password in the file" in text
    assert "hunter2" not in text
    assert f"{path}:5: standbys[0].center: standby 'remote' has no entry under databases" in text
