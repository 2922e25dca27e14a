"""A local Elasticsearch — one node, or a cluster of N nodes on this machine — fetched from Maven Central,
run as an unprivileged user.

The distribution (distribution.json) is the minimal `integ-test-zip` build: core, security (file
realm, basic auth) and nothing else — no ES|QL, no ingest pipelines, no painless, no data streams
or ILM. govctl's store uses only what it has: composable index templates, aliases, bulk, search and
aggregations.

A node lives in one folder (`state/elasticsearch` for `govctl es up`, a temp folder in tests):
`config/` (generated), `data/`, `logs/`, `node.json` (pid, url, user, version) and `password`
(0600, the generated password of the node's superuser `govctl`). Elasticsearch refuses to run as
root, so as root the node runs as the system user `govctl-es`, created on first use.

A cluster (`LocalCluster`, `govctl es up --nodes 3`) lives in one folder too: `cluster.json` (its size,
each node's HTTP and transport port, whether it has bootstrapped), `password`, and `node-1` … `node-N`,
each a node folder as above. The nodes find each other on loopback through `discovery.seed_hosts`;
every node is master-eligible and holds data, so with indices of one replica the cluster keeps every
document and answers while one node is lost. The nodes share the machine's cores: each is told its share
(`node.processors`, GC threads; processors_per_node). Transport between the nodes is plain TCP on
127.0.0.1 (the nodes never leave this machine; a cluster across machines needs transport TLS, see
docs/elasticsearch.md).
`open_local(home)` returns whichever of the two lives in a folder.
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
                 security: bool = True, version: str = VERSION, membership: "Membership | None" = None):
        self.home = Path(home)
        self.port = port
        self.heap_mb = heap_mb
        self.security = security
        self.version = version
        self.membership = membership  # None: a single-node cluster of its own

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
        info, proc = self.launch()
        self._wait_ready(info, timeout, proc)
        return info

    def launch(self) -> tuple[NodeInfo, subprocess.Popen | None]:
        """Start the node's process without waiting for it (a cluster's nodes wait for each other);
        (info, None) when it runs already."""
        if self.running():
            return self.info(), None
        es_home = fetch_distribution(self.version)
        jdk = java_home()
        owner = ensure_service_user()
        self._prepare(es_home, owner)
        previous = self.info()
        port = self.port or (previous and int(previous.url.rsplit(":", 1)[1])) or free_port()
        if _port_taken(port):
            raise NodeError(f"port {port} on 127.0.0.1 is taken by another program; choose another with --port")
        transport = self.membership.transport_port if self.membership else free_port()
        if self.membership and _port_taken(transport):
            raise NodeError(f"transport port {transport} of {self.membership.name} is taken by another program; "
                            f"stop it, or remove {self.home.parent / 'cluster.json'} to choose new ports")
        self._write_config(port, transport)
        password = self._ensure_admin(es_home, jdk, owner) if self.security else None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "JAVA_"))}
        env.update(ES_PATH_CONF=str(self.home / "config"), ES_JAVA_HOME=str(jdk),
                   ES_JAVA_OPTS=" ".join([f"-Xms{self.heap_mb}m", f"-Xmx{self.heap_mb}m", *self._gc_threads()]),
                   ES_TMPDIR=str(self.home / "tmp"))
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
        return info, proc

    def _gc_threads(self) -> list[str]:
        """A cluster member's JVM sizes its garbage collector's threads for its share of the cores, not for
        every core of the machine (HotSpot's default): N JVMs on 2 cores would otherwise run N × 2 parallel
        GC threads against each other at every young collection."""
        processors = self.membership.processors if self.membership else None
        if not processors:
            return []
        return [f"-XX:ParallelGCThreads={processors}", f"-XX:ConcGCThreads={max(1, (processors + 2) // 4)}"]

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
            "node.name": self.membership.name if self.membership else "govctl-local",
            "path.data": str(self.home / "data"),
            "path.logs": str(self.home / "logs"),
            "network.host": "127.0.0.1",  # loopback only: development mode, bootstrap checks only warn
            "http.port": http_port,
            "transport.port": transport_port,
            **(self.membership.discovery() if self.membership else {"discovery.type": "single-node"}),
            # A cluster member's share of the machine's cores: Elasticsearch sizes its thread pools (write,
            # search, merge scheduler, HTTP workers) from it; without it every member sizes them for all cores.
            **({"node.processors": self.membership.processors}
               if self.membership and self.membership.processors else {}),
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
        source = self.membership.users_from if self.membership else None
        if source is not None and (source / "password").exists():  # the file realm is per node: same users on all
            for name in ("users", "users_roles"):
                shutil.copy2(source / "config" / name, self.home / "config" / name)
                if owner is not None:
                    os.chown(self.home / "config" / name, *owner)
            shutil.copy2(source / "password", password_file)
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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise NodeError(f"Elasticsearch exited with status {proc.returncode} while starting; "
                                f"see {self.home / 'logs' / 'console.log'}: {self._log_tail()}")
            try:
                health = _get_json(f"{info.url}/_cluster/health?wait_for_status=yellow&timeout=1s", info, 3)
                if health.get("status") in ("yellow", "green"):
                    return
            except (OSError, ValueError):
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



@dataclass
class Membership:
    """How one node of a local cluster finds the others."""
    name: str
    transport_port: int
    seeds: list[int]  # every node's transport port
    initial_masters: list[str] | None  # only for the cluster's very first start (bootstrapping)
    users_from: Path | None  # the node folder whose file-realm users and password this node copies
    processors: int | None = None  # node.processors: this node's share of the machine's cores

    def discovery(self) -> dict:
        settings: dict = {"discovery.seed_hosts": [f"127.0.0.1:{port}" for port in self.seeds]}
        if self.initial_masters:
            settings["cluster.initial_master_nodes"] = self.initial_masters
        return settings


MAX_NODES = 5  # 2 cores and loopback: more nodes only measure the machine's contention


def machine_cores() -> int:
    """The cores this process may run on (the affinity mask, which a container's cpuset also limits)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def processors_per_node(nodes: int, cores: int | None = None) -> int:
    """Each of `nodes` local nodes' share of the machine's cores, at least 1: the nodes of a local cluster
    share one machine, so each sizes its thread pools and GC for its share (2 cores, 3 nodes: 1 each)."""
    return max(1, (cores or machine_cores()) // nodes)


class LocalCluster:
    """N nodes bound to 127.0.0.1, one cluster "govctl", each node's folder under `home` (node-1 …)."""

    def __init__(self, home: Path = DEFAULT_HOME, nodes: int | None = None, heap_mb: int = DEFAULT_HEAP_MB,
                 security: bool = True, version: str = VERSION, processors: int | None = None):
        """`processors`: each node's node.processors and GC threads (default: its share of the machine's cores)."""
        self.home = Path(home)
        layout = self._layout()
        if nodes is None:
            if layout is None:
                raise NodeError(f"{self.home} holds no cluster; start one with `govctl es up --nodes 3`")
            nodes = len(layout["nodes"])
        if not 2 <= nodes <= MAX_NODES:
            raise NodeError(f"a local cluster has 2 to {MAX_NODES} nodes, not {nodes}")
        if layout is not None and len(layout["nodes"]) != nodes:
            raise NodeError(f"the cluster in {self.home} has {len(layout['nodes'])} nodes, not {nodes}; "
                            f"`govctl es down --home {self.home}` and remove the folder to change its size")
        self.size, self.heap_mb, self.security, self.version = nodes, heap_mb, security, version
        self.processors = processors or processors_per_node(nodes)

    @property
    def _layout_path(self) -> Path:
        return self.home / "cluster.json"

    def _layout(self) -> dict | None:
        return json.loads(self._layout_path.read_text()) if self._layout_path.exists() else None

    def _planned(self) -> dict:
        """The ports of every node, chosen once and kept (a node that rejoins must find the others)."""
        layout = self._layout()
        if layout is None:
            layout = {"nodes": [{"name": f"govctl-{i}", "http": free_port(), "transport": free_port()}
                                for i in range(1, self.size + 1)], "bootstrapped": False}
            self.home.mkdir(parents=True, exist_ok=True)
            self._layout_path.write_text(json.dumps(layout, indent=1))
        return layout

    def node(self, name_or_index: str | int) -> LocalNode:
        """One member (by name "govctl-2" or 1-based index), e.g. to stop or kill it in a test."""
        layout = self._planned()
        names = [n["name"] for n in layout["nodes"]]
        index = name_or_index - 1 if isinstance(name_or_index, int) else names.index(name_or_index)
        entry = layout["nodes"][index]
        transports = [n["transport"] for n in layout["nodes"]]
        membership = Membership(entry["name"], entry["transport"], transports,
                                None if layout["bootstrapped"] else names,
                                None if index == 0 else self.home / "node-1", self.processors)
        return LocalNode(self.home / f"node-{index + 1}", port=entry["http"], heap_mb=self.heap_mb,
                         security=self.security, version=self.version, membership=membership)

    def nodes(self) -> list[LocalNode]:
        return [self.node(i) for i in range(1, self.size + 1)]

    def info(self) -> NodeInfo | None:
        """The cluster as a client sees it: every node's URL (the client fails over between them)."""
        layout = self._layout()
        first = self.node(1).info() if layout else None
        if first is None:
            return None
        return ClusterInfo(self.home, [f"http://127.0.0.1:{n['http']}" for n in layout["nodes"]], first.user,
                           first.password, first.pid, first.version)

    def running(self) -> bool:
        return any(node.running() for node in self.nodes()) if self._layout() else False

    def start(self, timeout: float = 240.0) -> "ClusterInfo":
        """Start every node that is not running and wait until all have joined and health is yellow or
        better. The first start bootstraps the cluster from all N master-eligible nodes."""
        started = [node.launch() for node in self.nodes()]  # the first node's users are copied by the others
        info = self.info()
        self._wait_joined(info, timeout, [proc for _, proc in started])
        layout = self._planned()
        if not layout["bootstrapped"]:  # from now on a node that restarts joins, it never bootstraps anew
            layout["bootstrapped"] = True
            self._layout_path.write_text(json.dumps(layout, indent=1))
        return info

    def _wait_joined(self, info: "ClusterInfo", timeout: float, procs: list) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for proc in procs:
                if proc is not None and proc.poll() is not None:
                    raise NodeError(f"an Elasticsearch node exited with status {proc.returncode} while starting; "
                                    f"see {self.home}/node-*/logs/console.log")
            health = self.health(info, timeout=2)
            if health and health.get("number_of_nodes") == self.size and health["status"] in ("yellow", "green"):
                return
            last = f"health {health}" if health else "no node answers yet"
            time.sleep(1)
        raise NodeError(f"the {self.size}-node cluster in {self.home} did not form in {timeout:.0f} s ({last}); "
                        f"see {self.home}/node-*/logs/console.log")

    def health(self, info: "ClusterInfo | None" = None, timeout: float = 5) -> dict | None:
        """`_cluster/health` from the first node that answers; None when none does."""
        info = info or self.info()
        if info is None:
            return None
        for url in info.urls:
            try:
                return _get_json(f"{url}/_cluster/health", info, timeout)
            except OSError:
                continue
        return None

    def members(self, info: "ClusterInfo | None" = None) -> list[dict]:
        """Every planned node: its name, URL, pid, whether its process runs and whether the cluster lists it."""
        info = info or self.info()
        joined: set[str] = set()
        if info is not None:
            for url in info.urls:
                try:
                    rows = _get_json(f"{url}/_cat/nodes?format=json&h=name,master,node.role", info, 5)
                    joined = {row["name"] for row in rows}
                    master = {row["name"] for row in rows if row.get("master") == "*"}
                    break
                except OSError:
                    continue
            else:
                master = set()
        else:
            master = set()
        answer = []
        for entry, node in zip(self._layout()["nodes"], self.nodes()):
            meta = node.info()
            answer.append({"name": entry["name"], "url": f"http://127.0.0.1:{entry['http']}",
                           "pid": meta.pid if meta and node.running() else None, "running": node.running(),
                           "joined": entry["name"] in joined, "master": entry["name"] in master})
        return answer

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop every node (their data stays); False when none was running."""
        return any([node.stop(timeout) for node in self.nodes()]) if self._layout() else False


class ClusterInfo(NodeInfo):
    """A cluster's connection details: `url` is the first node's, `urls` all of them."""

    def __init__(self, home, urls, user, password, pid, version):
        super().__init__(home, urls[0], user, password, pid, version)
        self.urls = urls

    def client_settings(self) -> dict:
        settings = {"url": list(self.urls), "replicas": 1}  # one replica: every document survives a node loss
        if self.user:
            settings.update(username=self.user, password_file=str(self.home / "node-1" / "password"))
        return settings


def open_local(home: Path = DEFAULT_HOME) -> LocalNode | LocalCluster:
    """Whatever lives in `home`: a cluster (cluster.json) or a single node."""
    return LocalCluster(home) if (Path(home) / "cluster.json").exists() else LocalNode(home)


def _get_json(url: str, info: NodeInfo, timeout: float):
    import base64
    import urllib.request
    request = urllib.request.Request(url)
    if info.user:
        token = base64.b64encode(f"{info.user}:{info.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.loads(resp.read())

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
