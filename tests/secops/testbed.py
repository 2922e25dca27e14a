"""A throwaway network-namespace testbed for interception: a firewall/server namespace with a TCP
listener (and, on request, a real OpenSSH server whose log goes to a syslog receiver through
`logger`), an attacker namespace and an ops namespace, each joined to it by a veth pair.

Used by the root/slow tests and the interception latency benchmark that need no lab (the lab test,
tests/secops/test_interception_lab.py, intercepts in the lab's own boundary firewalls);
`Testbed.close()` removes everything it created. `ssh_password_attempts` and `ssh_banner` work
between any two namespaces.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

LISTENER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(64)
print("ready", flush=True)
while True:
    c, _ = s.accept(); c.sendall(b"SSH-2.0-testbed\r\n"); c.close()
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class Testbed:
    SERVER_PORT = 2222

    def __init__(self, attacker_ip: str = "203.0.113.50", ops_ip: str = "10.20.0.9"):
        tag = uuid.uuid4().hex[:6]
        self.fw, self.attacker, self.ops = f"gsfw-{tag}", f"gsat-{tag}", f"gsop-{tag}"
        self.attacker_ip, self.ops_ip = attacker_ip, ops_ip
        self.fw_attacker_side = attacker_ip.rsplit(".", 1)[0] + ".1"
        self.fw_ops_side = ops_ip.rsplit(".", 1)[0] + ".1"
        self.listener: subprocess.Popen | None = None
        self.sshd: subprocess.Popen | None = None
        self._tmp = tempfile.mkdtemp(prefix="secops-testbed-")
        self._created: list[str] = []
        try:
            self._build(tag)
        except BaseException:
            self.close()
            raise

    def _build(self, tag: str) -> None:
        for ns in (self.fw, self.attacker, self.ops):
            _ip("netns", "add", ns)
            self._created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        for peer, peer_ip, fw_ip, short in ((self.attacker, self.attacker_ip, self.fw_attacker_side, "a"),
                                            (self.ops, self.ops_ip, self.fw_ops_side, "o")):
            outer, inner = f"gs{short}f{tag}", f"gs{short}p{tag}"
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            _ip("link", "set", outer, "netns", self.fw)
            _ip("link", "set", inner, "netns", peer)
            _ip("-n", self.fw, "addr", "add", f"{fw_ip}/24", "dev", outer)
            _ip("-n", peer, "addr", "add", f"{peer_ip}/24", "dev", inner)
            _ip("-n", self.fw, "link", "set", outer, "up")
            _ip("-n", peer, "link", "set", inner, "up")
        self.listener = subprocess.Popen(["ip", "netns", "exec", self.fw, sys.executable, "-c", LISTENER,
                                          str(self.SERVER_PORT)], stdout=subprocess.PIPE, text=True)
        if self.listener.stdout.readline().strip() != "ready":
            raise RuntimeError("testbed listener did not start")

    def start_sshd(self, syslog_tcp: tuple[str, int]) -> None:
        """OpenSSH on port 22 of the firewall namespace, password logins on (no account has a usable
        password here, so every attempt fails); its log lines go to `syslog_tcp` via `logger`."""
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation folder
        key = os.path.join(self._tmp, "host_key")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
        cfg = os.path.join(self._tmp, "sshd_config")
        with open(cfg, "w") as f:
            f.write(f"Port 22\nListenAddress 0.0.0.0\nHostKey {key}\nPidFile none\nUsePAM no\n"
                    "PasswordAuthentication yes\nKbdInteractiveAuthentication no\nPermitRootLogin yes\n"
                    "MaxAuthTries 10\nMaxStartups 100\nLogLevel INFO\n")
        host, port = syslog_tcp
        self.sshd = subprocess.Popen(
            f"exec ip netns exec {self.fw} /usr/sbin/sshd -D -e -f {cfg} 2>&1 | "
            f"logger --tcp --server {host} --port {port} --rfc3164 -t sshd", shell=True)
        if wait_for(lambda: self.connects(self.attacker, port=22), 20) is None:
            raise RuntimeError("sshd did not start in the testbed")

    def ssh_login_attempts(self, from_ns: str, n: int, user: str = "root") -> None:
        """n password logins with a wrong password, one connection each, as a brute-forcer would."""
        server = self.fw_attacker_side if from_ns == self.attacker else self.fw_ops_side
        ssh_password_attempts(from_ns, server, n, self._tmp, user)

    def connects(self, from_ns: str, timeout: float = 1.0, port: int | None = None) -> bool:
        """Can `from_ns` open a TCP connection to the listener (or `port`) and read an SSH banner?"""
        server = self.fw_attacker_side if from_ns == self.attacker else self.fw_ops_side
        return ssh_banner(from_ns, server, port or self.SERVER_PORT, timeout)

    # range bans: more source addresses on the attacker's side, and connecting from one of them
    def add_attacker_address(self, address: str) -> None:
        """One more address (same /24 as the attacker's) on the attacker namespace's link to the firewall."""
        links = subprocess.run(["ip", "-n", self.attacker, "-o", "link", "show", "type", "veth"], capture_output=True,
                               text=True, check=True).stdout
        device = links.split(":")[1].strip().split("@")[0]
        _ip("-n", self.attacker, "addr", "add", f"{address}/24", "dev", device)

    def connects_from(self, source: str, timeout: float = 1.0) -> bool:
        """Can the attacker namespace, sending from `source`, reach the listener and read its banner?"""
        code = (f"import socket,sys\ntry:\n s=socket.create_connection(({self.fw_attacker_side!r},"
                f"{self.SERVER_PORT}),timeout={timeout},source_address=({source!r},0))\n"
                f" sys.exit(0 if s.recv(64).startswith(b'SSH-') else 1)\nexcept OSError:\n sys.exit(1)\n")
        return subprocess.run(["ip", "netns", "exec", self.attacker, sys.executable, "-c", code],
                              capture_output=True, timeout=timeout + 10).returncode == 0

    def close(self) -> None:
        if self.listener is not None:
            self.listener.kill()
            self.listener.wait()
        for ns in self._created:  # sshd and whatever else still runs inside our namespaces
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
        if self.sshd is not None:
            self.sshd.wait(10)
        shutil.rmtree(self._tmp, ignore_errors=True)
        for ns in reversed(self._created):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        self._created.clear()


def ssh_password_attempts(from_ns: str, server: str, n: int, workdir: str, user: str = "root") -> None:
    """From network namespace `from_ns`, n password logins to `server` with a wrong password, one
    connection each, as a brute-forcer would (the real OpenSSH client; `workdir` holds its askpass)."""
    askpass = os.path.join(workdir, "askpass")
    if not os.path.exists(askpass):
        with open(askpass, "w") as f:
            f.write("#!/bin/sh\necho not-the-password\n")
        os.chmod(askpass, 0o755)
    env = {**os.environ, "SSH_ASKPASS": askpass, "SSH_ASKPASS_REQUIRE": "force"}
    for _ in range(n):
        subprocess.run(["ip", "netns", "exec", from_ns, "ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
                        "-o", "UserKnownHostsFile=/dev/null", "-o", "PreferredAuthentications=password",
                        "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
                        "-o", "ConnectTimeout=2", f"{user}@{server}", "true"],
                       stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=30)


def attack_until_blocked(from_ns: str, address: str, server: str, blocked_set, workdir,
                         most: int = 10) -> int | None:
    """Failed root logins from `from_ns` (its `address`) to `server`'s sshd one by one until `address` is in
    `blocked_set` (an NftablesEnforcer: the attacked center's); how many it took, or None. Stopping then
    keeps later attempts from renewing the block while a test waits for expiry."""
    for tries in range(1, most + 1):
        ssh_password_attempts(from_ns, server, 1, str(workdir), user="root")
        if wait_for(lambda: address in blocked_set.blocked(), 5 if tries >= 5 else 0.3) is not None:
            return tries
    return None


def ssh_banner(from_ns: str, server: str, port: int = 22, timeout: float = 1.0) -> bool:
    """Can `from_ns` open a TCP connection to server:port and read an SSH banner?"""
    code = (f"import socket,sys\ntry:\n s=socket.create_connection(({server!r},{port}),timeout={timeout})\n"
            f" sys.exit(0 if s.recv(64).startswith(b'SSH-') else 1)\nexcept OSError:\n sys.exit(1)\n")
    return subprocess.run(["ip", "netns", "exec", from_ns, sys.executable, "-c", code],
                          capture_output=True, timeout=timeout + 10).returncode == 0


def can_run() -> str | None:
    """Why the testbed cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables)"
    for tool in ("ip", "nft"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            return f"needs the `{tool}` command"
    return None


def wait_for(predicate, timeout: float, interval: float = 0.05) -> float | None:
    """Seconds until predicate() held, or None after timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    return None



def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 nobody listens on right now (kind: socket.SOCK_STREAM or SOCK_DGRAM)."""
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tcp_listening(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


class ElementMonitor:
    """`nft monitor new elements` in one namespace: when each address first appeared in one of the sets
    (monotonic time), for the interception bench and the lab test."""

    def __init__(self, ns: str, set_names: tuple[str, ...]):
        import threading
        self.seen: dict[str, float] = {}
        self.set_names = set_names
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, "nft", "monitor", "new", "elements"],
                                     stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        for out in self.proc.stdout:
            now = time.monotonic()
            if any(f" {name} " in out for name in self.set_names) and "{" in out:
                for element in out.split("{", 1)[1].split("}")[0].replace(",", " ").split():
                    if element.count(".") == 3 or ":" in element:
                        self.seen.setdefault(element, now)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


# --- interception at city size (issue 20, h-intercept): element notifications without `nft monitor` ---

SET_ELEMENT_LISTENER = r"""
import socket, struct, sys, time
NETLINK_NETFILTER, NFNLGRP_NFTABLES = 12, 7
NEWSETELEM = (10 << 8) | 12  # NFNL_SUBSYS_NFTABLES, NFT_MSG_NEWSETELEM
wanted = set(sys.argv[1:])
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind((0, 1 << (NFNLGRP_NFTABLES - 1)))
print("ready", flush=True)

def attrs(data):
    while len(data) >= 4:
        size, kind = struct.unpack_from("=HH", data)
        if size < 4:
            return
        yield kind & 0x3FFF, data[4:size]
        data = data[(size + 3) & ~3:]

while True:
    buf = s.recv(1 << 20)
    now = time.monotonic()
    while len(buf) >= 16:
        size, kind = struct.unpack_from("=IH", buf)
        if size < 16:
            break
        if kind == NEWSETELEM:
            top = dict(attrs(buf[20:size]))  # after nlmsghdr (16) and nfgenmsg (4)
            name = top.get(2, b"").rstrip(b"\0").decode()
            if name in wanted:
                for _, elem in attrs(top.get(3, b"")):
                    key = dict(attrs(dict(attrs(elem)).get(1, b""))).get(1, b"")
                    if len(key) in (4, 16):
                        print(name, socket.inet_ntop(socket.AF_INET if len(key) == 4 else socket.AF_INET6, key),
                              repr(now), flush=True)
        buf = buf[(size + 3) & ~3:]
"""


class SetElementListener:
    """When each address first appeared in one of the sets of namespace `ns` (monotonic time, stamped as
    the kernel's notification arrived), from nf_tables' netlink notifications — what `nft monitor` reads,
    without its copy of the ruleset: with 100,000 elements in a set, `nft monitor` re-reads every element
    whenever the ruleset changes and falls behind a block per second."""

    def __init__(self, ns: str, set_names: tuple[str, ...]):
        import threading
        self.seen: dict[str, float] = {}
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SET_ELEMENT_LISTENER,
                                      *set_names], stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the set element listener in {ns} did not start")
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        for out in self.proc.stdout:
            _, address, stamp = out.split()
            self.seen.setdefault(address, float(stamp))

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(5)
