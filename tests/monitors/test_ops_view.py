"""The topology's link health (monitors/ops_view.py) from what Prometheus holds: every link by its own pings
(a standby too), and without link pings the older reading (a primary by the probes crossing it, a standby
unknown)."""
from __future__ import annotations

from monitors.ops_view import LiveHealth, topology
from monitors.targets import LINK_SERVICE
from tests.monitors.ops_monitoring import typed_outputs


def links(live: LiveHealth) -> dict[str, tuple[str, str, int]]:
    view = topology("lab", typed_outputs(), live)
    return {l["name"]: (l["health"]["status"], l["health"]["measured_by"], l["health"]["probes"])
            for l in view["links"]}


def ping(near: str, far: str, link: str, ok: bool) -> dict:
    return {(near, far, LINK_SERVICE, f"link:{link}"): 1.0 if ok else 0.0}


def test_a_standby_link_is_up_or_down_from_its_own_pings():
    probes = {**ping("prod", "samecity", "prod-samecity-b", True), **ping("samecity", "prod", "prod-samecity-b", True),
              **ping("prod", "remote", "prod-remote-b", False), **ping("remote", "prod", "prod-remote-b", False),
              **ping("samecity", "remote", "samecity-remote-b", True),
              **ping("remote", "samecity", "samecity-remote-b", False),
              # the primary prod ↔ samecity link answers its pings although a database probe across it fails
              **ping("prod", "samecity", "prod-samecity-a", True),
              ("prod", "samecity", "database", "db-1.samecity"): 0.0}
    health = links(LiveHealth("http://prometheus", probes=probes))
    assert health["prod-samecity-b"] == ("up", "pings across the link", 2)
    assert health["prod-remote-b"] == ("down", "pings across the link", 2)
    assert health["samecity-remote-b"][0] == "degraded"  # one end's ping answered, the other's not
    assert health["prod-samecity-a"] == ("up", "pings across the link", 1)


def test_without_link_pings_a_primary_is_read_from_the_probes_crossing_it_and_a_standby_is_unknown():
    probes = {("prod", "samecity", "database", "db-1.samecity"): 1.0,
              ("samecity", "prod", "gov-portal", "web-1.prod"): 1.0,
              ("prod", "remote", "database", "db-1.remote"): 0.0}
    health = links(LiveHealth("http://prometheus", probes=probes))
    assert health["prod-samecity-a"] == ("up", "probes between the centers", 2)
    assert health["prod-remote-a"] == ("down", "probes between the centers", 1)
    assert health["prod-samecity-b"] == ("unknown", None, 0)


def test_prometheus_unreadable_leaves_every_link_unknown():
    health = links(LiveHealth(None, "the monitor is not running",
                              probes=ping("prod", "samecity", "prod-samecity-b", True)))
    assert {status for status, _, _ in health.values()} == {"unknown"}
