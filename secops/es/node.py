"""A local single-node Elasticsearch: fetched from Maven Central, run as an unprivileged user.

The distribution (distribution.json) is the minimal `integ-test-zip` build: core, security (file
realm, basic auth) and nothing else — no ES|QL, no ingest pipelines, no painless, no data streams
or ILM. govctl's store uses only what it has: composable index templates, aliases, bulk, search and
aggregations.

A node lives in one folder (`state/elasticsearch` for `govctl es up`, a temp folder in tests):
`config/` (generated), `data/`, `logs/`, `node.json` (pid, url, user, version) and `password`
(0600, the generated password of the node's superuser `govctl`). Elasticsearch refuses to run as
root, so as root the node runs as the system user `govctl-es`, created on first use.
"""
from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core.paths import CACHE, STATE

DISTRIBUTION = json.loads((Path(__file__).parent / "distribution.json").read_text())
VERSION: str = DISTRIBUTION["version"]
SERVICE_USER = "govctl-es"
ADMIN_USER = "govctl"
DEFAULT_HOME = STATE / "elasticsearch"
DEFAULT_HEAP_MB = 512


class NodeError(RuntimeError):
    """The local node could not be fetched, started or stopped; the message says why and what to do."""


def install_dir(version: str = VERSION) -> Path:
    return CACHE / f"elasticsearch-{version}" / f"elasticsearch-{version}"


def fetch_distribution(version: str = VERSION, quiet: bool = True) -> Path:
    """The unpacked distribution, fetched with Maven into the cache on first use."""
    home = install_dir(version)
    if (home / "bin" / "elasticsearch").exists():
        return home
    cache = home.parent
    zip_path = cache / f"{DISTRIBUTION['artifact']}-{version}.{DISTRIBUTION['packaging']}"
    if not zip_path.exists():
        if shutil.which("mvn") is None:
            raise NodeError("Maven (`mvn`) is needed to fetch Elasticsearch from Maven Central; run `make setup`")
        cache.mkdir(parents=True, exist_ok=True)
        coords = f"{DISTRIBUTION['group']}:{DISTRIBUTION['artifact']}:{version}:{DISTRIBUTION['packaging']}"
        proc = subprocess.run(["mvn", "-B", *(["-q"] if quiet else []), "dependency:copy",
                               f"-Dartifact={coords}", f"-DoutputDirectory={cache}"],
                              capture_output=True, text=True)
        if proc.returncode != 0 or not zip_path.exists():
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
            raise NodeError(f"could not fetch {coords} with Maven: " + " | ".join(tail))
    partial = cache / f".unpack-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            target = zf.extract(info, partial)
            mode = info.external_attr >> 16
            if mode:
                os.chmod(target, mode & 0o777)
    (partial / home.name).rename(home)  # atomic: a half-unpacked tree is never taken for complete
    partial.rmdir()
    for folder in (cache, home):  # the unprivileged service user reads the distribution
        folder.chmod(0o755)
    return home


def java_home(major: int = DISTRIBUTION["java_major"]) -> Path:
    """A JDK/JRE of the major version the distribution runs on (GOVCTL_ES_JAVA_HOME overrides)."""
    if os.environ.get("GOVCTL_ES_JAVA_HOME"):
        return Path(os.environ["GOVCTL_ES_JAVA_HOME"])
    candidates = sorted(Path("/usr/lib/jvm").glob(f"java-{major}-*")) if Path("/usr/lib/jvm").exists() else []
    java = shutil.which("java")
    if java:
        candidates.append(Path(os.path.realpath(java)).parent.parent)
    for home in candidates:
        if (home / "bin" / "java").exists():
            release = home / "release"
            if not release.exists() or f'JAVA_VERSION="{major}' in release.read_text(errors="replace"):
                return home
    raise NodeError(f"Java {major} is needed to run Elasticsearch {VERSION}; install openjdk-{major}-jre-headless "
                    "(`make setup` does) or set GOVCTL_ES_JAVA_HOME")


def ensure_service_user() -> tuple[int, int] | None:
    """(uid, gid) of the unprivileged user the node runs as when we are root; None otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        proc = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
                               "/nonexistent", "--shell", "/usr/sbin/nologin", SERVICE_USER],
                              capture_output=True, text=True)
        if proc.returncode not in (0, 9):  # 9: created meanwhile by another process
            raise NodeError(f"could not create the system user {SERVICE_USER}: {proc.stderr.strip()}")
        entry = pwd.getpwnam(SERVICE_USER)
    return entry.pw_uid, entry.pw_gid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class NodeInfo:
    home: Path
    url: str
    user: str | None
    password: str | None
    pid: int | None
    version: str

    def client_settings(self) -> dict:
        """The `elasticsearch:` section of a secops config that reaches this node."""
        settings = {"url": self.url}
        if self.user:
            settings.update(username=self.user, password_file=str(self.home / "password"))
        return settings


class LocalNode:
    """One single-node cluster bound to 127.0.0.1 with its data in `home`."""

    def __init__(self, home: Path = DEFAULT_HOME, port: int | None = None, heap_mb: int = DEFAULT_HEAP_MB,
                 security: bool = True, version: str = VERSION):
        self.home = Path(home)
        self.port = port
        self.heap_mb = heap_mb
        self.security = security
        self.version = version

    # -------------------------------------------------------------- state
    @property
    def _meta_path(self) -> Path:
        return self.home / "node.json"

    def info(self) -> NodeInfo | None:
        if not self._meta_path.exists():
            return None
        meta = json.loads(self._meta_path.read_text())
        password_file = self.home / "password"
        password = password_file.read_text().strip() if meta.get("user") and password_file.exists() else None
        return NodeInfo(self.home, meta["url"], meta.get("user"), password, meta.get("pid"), meta["version"])

    def running(self) -> bool:
        info = self.info()
        return info is not None and info.pid is not None and _alive(info.pid)

    # -------------------------------------------------------------- start
    def start(self, timeout: float = 120.0) -> NodeInfo:
        """Start the node (or return the running one) and wait until it answers with yellow health."""
        if self.running():
            info = self.info()
            self._wait_ready(info, timeout, None)
            return info
        es_home = fetch_distribution(self.version)
        jdk = java_home()
        owner = ensure_service_user()
        self._prepare(es_home, owner)
        previous = self.info()
        port = self.port or (previous and int(previous.url.rsplit(":", 1)[1])) or free_port()
        if _port_taken(port):
            raise NodeError(f"port {port} on 127.0.0.1 is taken by another program; choose another with --port")
        self._write_config(port, free_port())
        password = self._ensure_admin(es_home, jdk, owner) if self.security else None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "JAVA_"))}
        env.update(ES_PATH_CONF=str(self.home / "config"), ES_JAVA_HOME=str(jdk),
                   ES_JAVA_OPTS=f"-Xms{self.heap_mb}m -Xmx{self.heap_mb}m", ES_TMPDIR=str(self.home / "tmp"))
        log = open(self.home / "logs" / "console.log", "ab")
        try:
            proc = subprocess.Popen([str(es_home / "bin" / "elasticsearch")], cwd=self.home, env=env,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, **_as_user(owner))
        finally:
            log.close()
        info = NodeInfo(self.home, f"http://127.0.0.1:{port}", ADMIN_USER if self.security else None,
                        password, proc.pid, self.version)
        self._meta_path.write_text(json.dumps({"url": info.url, "user": info.user, "pid": proc.pid,
                                               "version": self.version, "heap_mb": self.heap_mb}))
        self._wait_ready(info, timeout, proc)
        return info

    def _prepare(self, es_home: Path, owner: tuple[int, int] | None) -> None:
        for sub in ("data", "logs", "tmp"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        config = self.home / "config"
        if not config.exists():
            shutil.copytree(es_home / "config", config)
        if owner is not None:
            blocked = [p for p in [self.home, *self.home.parents] if not os.stat(p).st_mode & 0o001]
            if blocked:
                raise NodeError(f"the node folder {self.home} is not reachable by the user {SERVICE_USER} "
                                f"({blocked[0]} is not searchable by others); choose another folder")
            for sub in ("config", "data", "logs", "tmp"):
                _chown_tree(self.home / sub, owner)
            os.chown(self.home, owner[0], owner[1])

    def _write_config(self, http_port: int, transport_port: int) -> None:
        settings = {
            "cluster.name": "govctl",
            "node.name": "govctl-local",
            "path.data": str(self.home / "data"),
            "path.logs": str(self.home / "logs"),
            "network.host": "127.0.0.1",  # loopback only: development mode, bootstrap checks only warn
            "http.port": http_port,
            "transport.port": transport_port,
            "discovery.type": "single-node",
            "xpack.security.enabled": self.security,
            # A shared build machine's disk may be fuller than the default watermarks allow; without this
            # the node would turn every index read-only and ingest would stall.
            "cluster.routing.allocation.disk.threshold_enabled": False,
            "action.destructive_requires_name": True,
        }
        (self.home / "config" / "elasticsearch.yml").write_text(
            "# Written by govctl (secops/es/node.py) at every start.\n"
            + "".join(f"{k}: {json.dumps(v)}\n" for k, v in settings.items()))

    def _ensure_admin(self, es_home: Path, jdk: Path, owner) -> str:
        """The superuser `govctl` in the file realm, with a generated password kept in `password` (0600)."""
        password_file = self.home / "password"
        users = self.home / "config" / "users"
        if password_file.exists() and users.exists() and f"{ADMIN_USER}:" in users.read_text():
            return password_file.read_text().strip()
        password = secrets.token_urlsafe(24)
        env = dict(os.environ, ES_PATH_CONF=str(self.home / "config"), ES_JAVA_HOME=str(jdk))
        stale = users.exists() and f"{ADMIN_USER}:" in users.read_text()  # its password file was lost
        for cmd in ([["userdel", ADMIN_USER]] if stale else []) + [["useradd", ADMIN_USER, "-p", password, "-r",
                                                                    "superuser"]]:
            proc = subprocess.run([str(es_home / "bin" / "elasticsearch-users"), *cmd], env=env,
                                  capture_output=True, text=True, **_as_user(owner))
            if cmd[0] == "useradd" and proc.returncode != 0:
                raise NodeError(f"could not create the node's user: {(proc.stdout + proc.stderr).strip()[-300:]}")
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        return password

    def _wait_ready(self, info: NodeInfo, timeout: float, proc: subprocess.Popen | None) -> None:
        import urllib.request
        import base64
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(f"{info.url}/_cluster/health?wait_for_status=yellow&timeout=1s")
        if info.user:
            token = base64.b64encode(f"{info.user}:{info.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise NodeError(f"Elasticsearch exited with status {proc.returncode} while starting; "
                                f"see {self.home / 'logs' / 'console.log'}: {self._log_tail()}")
            try:
                with urllib.request.urlopen(request, timeout=3) as resp:
                    if json.loads(resp.read()).get("status") in ("yellow", "green"):
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise NodeError(f"Elasticsearch at {info.url} did not become ready in {timeout:.0f} s; "
                        f"see {self.home / 'logs'}: {self._log_tail()}")

    def _log_tail(self) -> str:
        path = self.home / "logs" / "console.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        errors = [line for line in lines if "ERROR" in line or "Exception" in line]
        return " | ".join((errors or lines)[-3:])[-600:]

    # -------------------------------------------------------------- stop
    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the node (SIGTERM, then SIGKILL after `timeout`); False when it was not running."""
        info = self.info()
        if info is None or info.pid is None or not _alive(info.pid):
            return False
        os.kill(info.pid, signal.SIGTERM)  # the launcher stops the server process it started
        deadline = time.monotonic() + timeout
        while _alive(info.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(info.pid):
            os.killpg(info.pid, signal.SIGKILL)
        _reap(info.pid)
        return True


def _alive(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie or a recycled pid that is not Elasticsearch's launcher does not count
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"elasticsearch" in cmdline or b"cli.name=server" in cmdline


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _chown_tree(path: Path, owner: tuple[int, int]) -> None:
    os.chown(path, *owner)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), *owner, follow_symlinks=False)


def _as_user(owner: tuple[int, int] | None) -> dict:
    if owner is None:
        return {}
    return {"user": owner[0], "group": owner[1], "extra_groups": []}
