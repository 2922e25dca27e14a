"""The lab under the real Pulumi engine: hosts, replication, firewall, service address, drift."""
from __future__ import annotations

import json
import time

import pytest

from infra.lab import system
from infra.lab.hostops import host_pid
from infra.lab.status import http_get, ssh
from infra.outputs import StackOutputs
from tests.conftest import run_govctl

pytestmark = [pytest.mark.slow, pytest.mark.root]


def _host(lab, fqdn):
    return next(h for h in lab["hosts"] if h["fqdn"] == fqdn)


def _sql(lab, fqdn, query):
    pid = host_pid(_host(lab, fqdn)["folder"])
    return system.host_exec(pid, "psql", "-X", "-At", "-d", "gov", "-c", query,
                            user="postgres").stdout.strip()


def test_every_host_answers_ssh_with_its_own_hostname_and_root_filesystem(lab):
    for host in lab["hosts"]:
        proc = ssh(StackOutputs.from_dict(lab), host["fqdn"], "hostname; findmnt -n -o FSTYPE /; cat /etc/hostname")
        assert proc.returncode == 0, (host["fqdn"], proc.stderr)
        assert proc.stdout.split() == [host["name"], "overlay", host["name"]]
    marker = f"/tmp/own-rootfs-{time.time_ns()}"
    assert ssh(StackOutputs.from_dict(lab), "web-1.prod", "touch", marker).returncode == 0
    assert ssh(StackOutputs.from_dict(lab), "web-1.prod", "test", "-e", marker).returncode == 0
    assert ssh(StackOutputs.from_dict(lab), "web-1.samecity", "test", "-e", marker).returncode == 1


def test_write_is_on_sync_standby_at_commit_and_on_async_shortly_after(lab):
    seq = time.time_ns() // 1000
    client = lab["outside"]["internet"]["namespace"]
    proc = system.sh("ip", "netns", "exec", client, "curl", "-sf", "-m", "5", "-X", "POST",
                     f"{lab['service']['url']}ledger?seq={seq}")
    assert json.loads(proc.stdout) == {"center": "prod", "seq": seq}
    # Synchronous (remote_apply): the commit returned only once the same-city standby applied it.
    assert _sql(lab, "db-1.samecity", f"SELECT count(*) FROM ledger WHERE seq = {seq}") == "1"
    deadline = time.monotonic() + 10
    while _sql(lab, "db-1.remote", f"SELECT count(*) FROM ledger WHERE seq = {seq}") != "1":
        assert time.monotonic() < deadline, "the asynchronous standby never received the write"
        time.sleep(0.2)
    assert _sql(lab, "db-1.remote", "SELECT pg_is_in_recovery()") == "t"


def test_firewall_lets_dmz_reach_the_database_and_refuses_dmz_to_management(lab):
    db = _host(lab, "db-1.prod")["ipv4"]
    bastion = _host(lab, "bastion-1.prod")["ipv4"]
    assert ssh(StackOutputs.from_dict(lab), "web-1.prod", "nc", "-z", "-w", "2", db, "5432").returncode == 0
    assert ssh(StackOutputs.from_dict(lab), "web-1.prod", "nc", "-z", "-w", "2", bastion, "22").returncode != 0
    assert ssh(StackOutputs.from_dict(lab), "web-1.prod", "nc", "-z", "-w", "2", db, "22").returncode != 0
    # Across centers on the backbone: the remote DMZ may reach the production database too.
    assert ssh(StackOutputs.from_dict(lab), "web-1.remote", "nc", "-z", "-w", "2", db, "5432").returncode == 0


def test_service_address_serves_the_production_web_service(lab):
    code, body = http_get(lab["outside"]["internet"]["namespace"], lab["service"]["url"])
    assert (code, body["center"]) == (200, "prod")
    code, body = http_get(lab["outside"]["internet"]["namespace"],
                          lab["service"]["url"] + "healthz")
    assert code == 200 and body["role"] == "primary"


def test_second_up_reports_no_changes(lab):
    proc = run_govctl("lab", "up", "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    status = json.loads(proc.stdout)
    assert status["healthy"] is True
    assert set(status["resource_changes"]) == {"same"}


def test_a_state_copied_from_another_checkout_is_refused_and_its_lab_left_alone(lab, tmp_path):
    """`lab up` on a copy of this checkout's state (stop 24's CI saw a developer's) would boot a second set of
    hosts into the running lab's namespaces, `lab down` would destroy them: both refused before anything is
    touched, the running lab healthy."""
    import shutil
    from core.paths import STATE
    copy = tmp_path / "state"
    shutil.copytree(STATE, copy, ignore=shutil.ignore_patterns("hosts"), symlinks=True)
    before = system.lab_namespaces()
    proc = run_govctl("lab", "up", "--json", env={"GOVCTL_STATE": str(copy)}, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    said = " ".join(proc.stderr.split())  # as one line, however the terminal wrapped it
    assert f"its state records its hosts under {STATE / 'lab' / 'hosts'}, not under this checkout's " \
           f"{copy / 'lab' / 'hosts'}" in said
    assert "nothing was changed" in said and not (copy / "lab" / "hosts").exists()
    assert system.lab_namespaces() == before
    # `lab down` on the copy would delete the running lab's host folders and namespaces by their recorded names
    hosts_before = sorted(p.name for p in (STATE / "lab" / "hosts").iterdir())
    down = run_govctl("lab", "down", "--json", env={"GOVCTL_STATE": str(copy)}, timeout=300)
    assert down.returncode == 1, down.stderr[-2000:]
    assert "take it down where it was made" in " ".join(down.stderr.split()).lower()
    assert system.lab_namespaces() == before
    assert sorted(p.name for p in (STATE / "lab" / "hosts").iterdir()) == hosts_before
    status = run_govctl("lab", "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["healthy"] is True


def test_refresh_notices_manual_removals_and_up_restores_them(lab):
    fw_ns = lab["centers"]["samecity"]["firewall"]["namespace"]
    system.nft(fw_ns, "delete", "table", "inet", "govctl")
    extranet = lab["outside"]["egov-net"]["namespace"]
    system.sh("ip", "netns", "del", extranet)
    victim = _host(lab, "web-1.remote")
    system.sh("kill", "-KILL", str(host_pid(victim["folder"])))
    refresh = run_govctl("infra", "refresh", "--stack", "lab", "--json", timeout=600)
    assert refresh.returncode == 0, refresh.stderr[-3000:]
    changes = json.loads(refresh.stdout)["resourceChanges"]
    # the firewall, the namespace with its link and routes, the host and its web service
    assert changes.get("delete", 0) >= 6, changes
    up = run_govctl("lab", "up", "--json", timeout=600)
    assert up.returncode == 0, up.stderr[-3000:]
    status = json.loads(up.stdout)
    assert status["resource_changes"].get("create", 0) >= 6, status["resource_changes"]
    assert status["healthy"] is True
    assert system.nft_table_exists(fw_ns, "govctl")
    assert system.ns_exists(extranet)
    assert ssh(StackOutputs.from_dict(lab), "web-1.remote", "hostname").stdout.strip() == "web-1"
