"""A throwaway network-namespace testbed for interception: a firewall/server namespace with a TCP
listener, an attacker namespace and an ops namespace, each joined to it by a veth pair.

Used by the root/slow tests and the interception latency benchmark until the lab's boundary firewall
namespaces (whose names come from the stack outputs) take its place. `Testbed.close()` removes
everything it created.
"""
from __future__ import annotations

import os
import subprocess
import sys
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

    def connects(self, from_ns: str, timeout: float = 1.0) -> bool:
        """Can `from_ns` open a TCP connection to the listener and read its banner?"""
        server = self.fw_attacker_side if from_ns == self.attacker else self.fw_ops_side
        code = (f"import socket,sys\ntry:\n s=socket.create_connection(({server!r},{self.SERVER_PORT}),timeout={timeout})\n"
                f" sys.exit(0 if s.recv(64).startswith(b'SSH-') else 1)\nexcept OSError:\n sys.exit(1)\n")
        return subprocess.run(["ip", "netns", "exec", from_ns, sys.executable, "-c", code],
                              capture_output=True, timeout=timeout + 10).returncode == 0

    def close(self) -> None:
        if self.listener is not None:
            self.listener.kill()
            self.listener.wait()
        for ns in reversed(self._created):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        self._created.clear()


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

