"""Pulumi dynamic providers for the lab. Each resource kind says how to make itself present
(idempotently), how to tell whether it still is (for `pulumi refresh`), and how to remove itself.
A resource found missing on refresh is dropped from the state, so the next `up` recreates it.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import (CreateResult, DiffResult, ReadResult, Resource, ResourceProvider,
                            UpdateResult)

from . import system
from .hostops import FILES, PG_BIN, PG_DATA, boot_host, host_pid, init_pid, stop_host, write_in_host
from .plan import FW_TABLE

POSTGRES_SERVICE = {"command": [f"{PG_BIN}/postgres", "-D", PG_DATA], "user": "postgres",
                    "runtime_dirs": ["/var/run/postgresql"]}


class _LabProvider(ResourceProvider):
    """create/update = apply; read = present?; delete = remove. Inputs are the whole truth."""

    replace_on: tuple[str, ...] = ()  # inputs whose change needs remove-then-apply
    computed: tuple[str, ...] = ()  # outputs declared as inputs (None) so they become attributes

    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def present(self, props: dict[str, Any]) -> bool:
        raise NotImplementedError

    def remove(self, props: dict[str, Any]) -> None:
        raise NotImplementedError

    def identity(self, props: dict[str, Any]) -> str:
        return props["key"]

    def create(self, props):
        outs = self.apply(props)
        return CreateResult(id_=self.identity(props), outs={**props, **(outs or {})})

    def diff(self, _id, olds, news):
        keys = sorted(set(olds) | set(news))
        changed = [k for k in keys if not k.startswith("__") and k not in self.computed
                   and k in news and olds.get(k) != news.get(k)]
        replaces = [k for k in changed if k in self.replace_on]
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def update(self, _id, olds, news):
        outs = self.apply(news)
        return UpdateResult(outs={**news, **(outs or {})})

    def read(self, id_, props):
        return ReadResult(id_=id_ if self.present(props) else None, outs=props)

    def delete(self, _id, props):
        self.remove(props)


class _NamespaceProvider(_LabProvider):
    replace_on = ("key",)

    def apply(self, p):
        system.ns_add(p["key"], router=p["router"])

    def present(self, p):
        return system.ns_exists(p["key"])

    def remove(self, p):
        system.ns_delete(p["key"])


class _BridgeProvider(_LabProvider):
    replace_on = ("ns", "name")

    def apply(self, p):
        system.bridge_add(p["ns"], p["name"], p["addrs"])

    def present(self, p):
        return system.link_exists(p["ns"], p["name"])

    def remove(self, p):
        system.link_delete(p["ns"], p["name"])


class _VethProvider(_LabProvider):
    replace_on = ("ns_a", "if_a", "ns_b", "if_b")

    def apply(self, p):
        system.veth_add(p["ns_a"], p["if_a"], p["ns_b"], p["if_b"], p.get("bridge_a"),
                        p["addrs_a"], p["addrs_b"])

    def present(self, p):
        return system.link_exists(p["ns_a"], p["if_a"]) and system.link_exists(p["ns_b"], p["if_b"])

    def remove(self, p):
        system.link_delete(p["ns_a"], p["if_a"])


class _RoutesProvider(_LabProvider):
    def apply(self, p):
        for route in p["routes"]:
            system.route_replace(p["ns"], route)

    def present(self, p):
        return all(system.route_present(p["ns"], r) for r in p["routes"])

    def update(self, _id, olds, news):
        for route in olds.get("routes", []):
            if route not in news["routes"]:
                system.route_delete(news["ns"], route)
        return super().update(_id, olds, news)

    def remove(self, p):
        for route in p["routes"]:
            system.route_delete(p["ns"], route)


class _FirewallProvider(_LabProvider):
    replace_on = ("ns",)

    def apply(self, p):
        system.nft_apply(p["ns"], FW_TABLE, p["ruleset"])

    def present(self, p):
        return system.nft_table_exists(p["ns"], FW_TABLE)

    def remove(self, p):
        if system.nft_table_exists(p["ns"], FW_TABLE):
            system.nft(p["ns"], "delete", "table", "inet", FW_TABLE, check=False)


class _SshAccessProvider(_LabProvider):
    """The ops key pair, the SSH client config and the machine's `Include` of it."""

    computed = ("public_key",)

    def apply(self, p):
        folder = Path(p["folder"])
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        key = folder / "id_ed25519"
        if not key.exists():
            system.sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "govctl-lab-ops",
                      "-f", str(key))
        (folder / "config").write_text(p["client_config"])
        _user_ssh_include(folder / "config", add=True)
        return {"public_key": (folder / "id_ed25519.pub").read_text().strip()}

    def present(self, p):
        folder = Path(p["folder"])
        return (folder / "id_ed25519").exists() and (folder / "config").exists()

    def remove(self, p):
        folder = Path(p["folder"])
        _user_ssh_include(folder / "config", add=False)
        shutil.rmtree(folder, ignore_errors=True)


def _user_ssh_include(config: Path, add: bool) -> None:
    """`ssh web-1.prod` works for root because ~/.ssh/config includes the lab's config."""
    user_config = Path.home() / ".ssh" / "config"
    line = f"Include {config}"
    text = user_config.read_text() if user_config.exists() else ""
    lines = [l for l in text.splitlines() if l.strip() != line]
    if add:
        lines.insert(0, line)  # Include must precede Host blocks to apply everywhere
    if add or user_config.exists():
        user_config.parent.mkdir(mode=0o700, exist_ok=True)
        user_config.write_text("\n".join(lines) + ("\n" if lines else ""))
        user_config.chmod(0o600)


class _HostProvider(_LabProvider):
    """A Debian host: its own overlay root filesystem, hostname and sshd, in its namespace."""

    replace_on = ("ns", "base", "folder", "public_key", "hosts_file")

    def apply(self, p):
        if self.present(p):
            _install_host_tools(init_pid(p["folder"]))  # a running host gets the current tools
            return {"init_pid": init_pid(p["folder"])}
        if not (Path(p["folder"]) / "upper").is_dir():
            self.remove(p)
            _provision_disk(p)
        # A host that crashed (or was stopped by a drill) boots again on its own disk.
        return {"init_pid": boot_host(p["folder"], p["ns"], p["hostname"], p["base"])}

    def present(self, p):
        pid = init_pid(p["folder"])
        return pid is not None and system.pid_alive(pid, "govctl-init")

    def remove(self, p):
        stop_host(p["folder"])
        shutil.rmtree(p["folder"], ignore_errors=True)


HOST_TOOLS = {"govctl-init": "/usr/local/sbin/govctl-init",
              "service-restart": "/usr/local/sbin/service-restart"}


def host_tools_digest() -> str:
    """Changes when the lab's in-host tools change, so `up` updates running hosts."""
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(HOST_TOOLS):
        digest.update((FILES / name).read_bytes())
    return digest.hexdigest()[:16]


def _install_host_tools(pid: int) -> None:
    for name, path in HOST_TOOLS.items():
        write_in_host(pid, path, (FILES / name).read_text(), 0o755)


def _provision_disk(p) -> None:
    """A new host's disk: the overlay's upper layer with the files that make it this host."""
    folder = Path(p["folder"])
    known_hosts = Path(p["known_hosts"])
    if known_hosts.exists():  # a new host has new host keys: forget the old ones
        system.sh("ssh-keygen", "-q", "-R", p["address"], "-f", str(known_hosts), check=False)
    for sub in ("upper", "work", "root"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    upper = folder / "upper"
    ops = _passwd_entry(Path(p["base"]), "ops")
    files = {
        "etc/hostname": (p["hostname"] + "\n", 0o644, None),
        "etc/hosts": (p["hosts_file"], 0o644, None),
        **{path.lstrip("/"): ((FILES / name).read_text(), 0o755, None)
           for name, path in HOST_TOOLS.items()},
        "etc/govctl/services/sshd.json": (json.dumps({"command": ["/usr/sbin/sshd", "-D", "-e"]}),
                                          0o644, None),
        "home/ops/.ssh/authorized_keys": (p["public_key"] + "\n", 0o600, ops),
    }
    for rel, (text, mode, owner) in files.items():
        path = upper / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
        if owner:
            os.chown(path, *owner)
    os.chown(upper / "home/ops/.ssh", *ops)
    os.chmod(upper / "home/ops/.ssh", 0o700)


def _passwd_entry(base: Path, user: str) -> tuple[int, int]:
    for line in (base / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise system.LabCommandError(f"user {user} missing from the base root filesystem {base}")


def _set_service(pid: int, name: str, spec: dict) -> None:
    """Install a service spec; when it changed, wait until govctl-init has restarted the service."""
    path = f"/etc/govctl/services/{name}.json"
    text = json.dumps(spec)
    current = system.host_exec(pid, "cat", path, check=False).stdout
    if current == text:
        return
    old_pid = system.host_exec(pid, "cat", f"/run/govctl/{name}.pid", check=False).stdout.strip()
    write_in_host(pid, path, text)

    def restarted() -> bool:
        now = system.host_exec(pid, "cat", f"/run/govctl/{name}.pid", check=False).stdout.strip()
        return bool(now) and now != old_pid and system.host_exec(
            pid, "kill", "-0", now, check=False).returncode == 0

    system.wait_for(restarted, 30, f"service {name} to (re)start")


def _service_running(folder: str, name: str) -> bool:
    try:
        pid = host_pid(folder)
    except system.LabCommandError:
        return False
    return system.host_exec(pid, "sh", "-c", f"kill -0 $(cat /run/govctl/{name}.pid)",
                            check=False).returncode == 0


def _drop_service(folder: str, name: str) -> int | None:
    """Remove a service from a running host (govctl-init stops it); the host's pid, or None."""
    try:
        pid = host_pid(folder)
    except system.LabCommandError:
        return None
    system.host_exec(pid, "rm", "-f", f"/etc/govctl/services/{name}.json", check=False)
    return pid


def _psql(pid: int, sql: str, db: str = "postgres") -> str:
    # SQL on stdin, never on the command line: it may carry passwords. Set-up commits locally:
    # the synchronous standby it would otherwise wait for is cloned from this very primary.
    return system.host_exec(pid, "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db,
                            "-f", "-", user="postgres",
                            input="SET synchronous_commit = local;\n" + sql).stdout.strip()


def _wait_pg_ready(pid: int, what: str) -> None:
    system.wait_for(lambda: system.host_exec(pid, "pg_isready", "-q", "-h", "/var/run/postgresql",
                                             check=False).returncode == 0, 60, what)


class _PostgresProvider(_LabProvider):
    """PostgreSQL 15 in a lab host: the primary, or a streaming standby cloned from it."""

    replace_on = ("host_folder", "role", "primary_address")

    def apply(self, p):
        pid = host_pid(p["host_folder"])
        has_data = system.host_exec(pid, "test", "-f", f"{PG_DATA}/PG_VERSION",
                                    check=False).returncode == 0
        if not has_data:
            if p["role"] == "primary":
                system.host_exec(pid, f"{PG_BIN}/initdb", "-D", PG_DATA, "-E", "UTF8",
                                 "--locale=C.UTF-8", "--auth-local=peer",
                                 "--auth-host=scram-sha-256", user="postgres")
            else:
                write_in_host(pid, "/var/lib/postgresql/.pgpass",
                               f"{p['primary_address']}:5432:replication:replicator:"
                               f"{p['replication_password']}\n", 0o600, "postgres")
                system.host_exec(pid, f"{PG_BIN}/pg_basebackup", "-h", p["primary_address"],
                                 "-U", "replicator", "-D", PG_DATA, "-X", "stream", "-R",
                                 "--checkpoint=fast", user="postgres", timeout=300)
        write_in_host(pid, f"{PG_DATA}/govctl.conf", p["settings"], 0o600, "postgres")
        write_in_host(pid, f"{PG_DATA}/pg_hba.conf", p["hba"], 0o600, "postgres")
        conf = system.host_exec(pid, "cat", f"{PG_DATA}/postgresql.conf").stdout
        if "include_if_exists = 'govctl.conf'" not in conf:
            write_in_host(pid, f"{PG_DATA}/postgresql.conf",
                           conf + "\ninclude_if_exists = 'govctl.conf'\n", 0o600, "postgres")
        if p["role"] == "standby":
            write_in_host(pid, f"{PG_DATA}/postgresql.auto.conf",
                           f"primary_conninfo = 'host={p['primary_address']} port=5432 "
                           f"user=replicator application_name={p['application_name']} "
                           f"passfile=/var/lib/postgresql/.pgpass'\n", 0o600, "postgres")
        _set_service(pid, "postgres", POSTGRES_SERVICE)
        _wait_pg_ready(pid, f"PostgreSQL on {p['key']}")
        # Settings changed on an already running server take effect on reload.
        system.host_exec(pid, f"{PG_BIN}/pg_ctl", "reload", "-D", PG_DATA, "-s", user="postgres")
        if p["role"] == "primary":
            _psql(pid, _bootstrap_sql(p))
            _psql(pid, "CREATE TABLE IF NOT EXISTS ledger (seq bigint PRIMARY KEY, "
                       "center text NOT NULL, at timestamptz NOT NULL DEFAULT now()); "
                       "GRANT SELECT, INSERT ON ledger TO govweb; "
                       # monitoring writes its replication heartbeat row here
                       "GRANT CREATE ON SCHEMA public TO monitor;", db="gov")
        return {}

    def present(self, p):
        return _service_running(p["host_folder"], "postgres")

    def remove(self, p):
        pid = _drop_service(p["host_folder"], "postgres")
        if pid is None:
            return  # the host is gone, and its data with it
        # govctl-init's SIGTERM is a smart shutdown, which waits for every client: ask for fast.
        system.host_exec(pid, f"{PG_BIN}/pg_ctl", "stop", "-D", PG_DATA, "-m", "fast", "-t", "30",
                         user="postgres", check=False)
        system.wait_for(lambda: system.host_exec(
            pid, "sh", "-c", "pgrep -x postgres", check=False).returncode != 0, 30,
            "PostgreSQL to stop")
        system.host_exec(pid, "rm", "-rf", PG_DATA, check=False)


def _bootstrap_sql(p) -> str:
    def role(name, password, extra):
        quoted = password.replace("'", "''")
        return (f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN "
                f"CREATE ROLE {name} LOGIN {extra}; END IF; END$$; "
                f"ALTER ROLE {name} PASSWORD '{quoted}';")

    return (role("replicator", p["replication_password"], "REPLICATION")
            + role("govweb", p["app_password"], "")
            + role("monitor", p["monitor_password"], "IN ROLE pg_monitor")
            + "SELECT 'CREATE DATABASE gov OWNER postgres' WHERE NOT EXISTS "
              "(SELECT FROM pg_database WHERE datname = 'gov') \\gexec")


class _LocalFileProvider(_LabProvider):
    """A private file on this machine (e.g. credentials other parts of govctl read)."""

    def apply(self, p):
        path = Path(p["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(p["content"])

    def present(self, p):
        return Path(p["path"]).exists()

    def remove(self, p):
        Path(p["path"]).unlink(missing_ok=True)


class _WebProvider(_LabProvider):
    replace_on = ("host_folder",)

    def apply(self, p):
        pid = host_pid(p["host_folder"])
        write_in_host(pid, "/usr/local/bin/govweb", (FILES / "govweb").read_text(), 0o755)
        write_in_host(pid, "/etc/govctl/web.json", json.dumps(
            {"center": p["center"], "port": int(p["port"]),
             "dsn": f"host={p['db_address']} port=5432 dbname=gov user=govweb "
                    f"password={p['app_password']}"}), 0o600)
        _set_service(pid, "govweb", {"command": ["/usr/local/bin/govweb"], "digest": p["digest"]})
        for addr in p["service_addrs"]:
            system.set_addresses(p["ns"], "lo", [addr])
        system.wait_for(lambda: system.host_exec(
            pid, "curl", "-sf", "-m", "2", "-o", "/dev/null", f"http://127.0.0.1:{int(p['port'])}/",
            check=False).returncode == 0, 30, f"the web service on {p['key']}")
        return {}

    def present(self, p):
        return _service_running(p["host_folder"], "govweb")

    def remove(self, p):
        _drop_service(p["host_folder"], "govweb")


def _resource(provider_cls, type_name: str):
    provider = provider_cls()

    class _Res(Resource):
        def __init__(self, name: str, props: dict[str, Any],
                     opts: pulumi.ResourceOptions | None = None):
            outputs = {key: None for key in provider_cls.computed}
            super().__init__(provider, name, {"key": name, **outputs, **props}, opts)

    _Res.__name__ = _Res.__qualname__ = type_name
    return _Res


Namespace = _resource(_NamespaceProvider, "Namespace")
Bridge = _resource(_BridgeProvider, "Bridge")
Veth = _resource(_VethProvider, "Veth")
Routes = _resource(_RoutesProvider, "Routes")
Firewall = _resource(_FirewallProvider, "Firewall")
SshAccess = _resource(_SshAccessProvider, "SshAccess")
Host = _resource(_HostProvider, "Host")
Postgres = _resource(_PostgresProvider, "Postgres")
Web = _resource(_WebProvider, "Web")
LocalFile = _resource(_LocalFileProvider, "LocalFile")

