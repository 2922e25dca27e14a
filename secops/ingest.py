"""Inputs: file tails (rotation, truncation, persisted positions), syslog over UDP/TCP, stdin.

Syslog receivers append each message as one line to a spool file and the engine tails the spool like
any log file: memory stays bounded under a burst (the backlog waits on disk, not in a queue) and the
same position bookkeeping makes the spool crash-safe.
"""
from __future__ import annotations

import os
import socket
import socketserver
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

HEAD_BYTES = 64  # first bytes of a file: tells a truncated-and-rewritten file from the one we read
MAX_LINE_BYTES = 1 << 20  # a "line" longer than this is cut and handed on (then quarantined as too_long)


@dataclass
class Batch:
    lines: list[tuple[int, bytes]]  # (byte position of the line, line without newline)
    position: tuple[int | None, int, bytes | None]  # (inode, position after the batch, head) to commit
    key: str  # the store's source key for these lines: name@inode


class FileTail:
    """Follows one path across rotation (rename + new file) and truncation (copytruncate).

    `read(max_lines)` returns only complete lines. The caller commits the batch's position together
    with its events; `resume(position)` starts from a committed position after a restart.
    """

    def __init__(self, name: str, path: str | Path):
        self.name, self.path = name, Path(path)
        self.f: BinaryIO | None = None
        self.inode: int | None = None
        self.pos = 0
        self.head: bytes | None = None
        self.draining: BinaryIO | None = None  # the rotated-away file, read to its end first
        self.drain_inode: int | None = None
        self.drain_pos = 0

    def resume(self, position: tuple[int | None, int, bytes | None] | None) -> None:
        if position is None:
            return
        inode, pos, head = position
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if st is not None and st.st_ino == inode:
            self._open(pos)
            if head and self.head is not None and self.head[:len(head)] != head[:len(self.head)]:
                self._open(0)  # truncated and rewritten while we were down: a different file now
            return
        # Rotated while we were down: finish the old file if it is still beside the new one.
        old = self._find_inode(inode)
        if old is not None:
            self.draining = open(old, "rb")
            self.draining.seek(pos)
            self.drain_inode, self.drain_pos = inode, pos

    def start_at_end(self) -> None:
        """Nothing committed yet: follow from the file's current end, as `tail -f` does (for logs whose
        lines carry no date). A file that does not exist yet is read from its start once it appears."""
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return
        self._open(size)

    def _find_inode(self, inode: int | None) -> Path | None:
        if inode is None:
            return None
        try:
            for entry in os.scandir(self.path.parent):
                if entry.name.startswith(self.path.name) and entry.inode() == inode:
                    return Path(entry.path)
        except OSError:
            return None
        return None

    def _open(self, pos: int = 0) -> bool:
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return False
        st = os.fstat(f.fileno())
        if self.f is not None and self.f is not self.draining:
            self.f.close()
        self.f, self.inode = f, st.st_ino
        if pos > st.st_size:  # truncated while we were away
            pos = 0
        self.pos = pos
        f.seek(pos)
        self.head = _read_head(f, pos)
        return True

    def read(self, max_lines: int) -> Batch | None:
        if self.draining is not None:
            lines, self.drain_pos, eof = _read_lines(self.draining, self.drain_pos, max_lines, final=True)
            if lines:
                return Batch(lines, (self.drain_inode, self.drain_pos, None), f"{self.name}@{self.drain_inode}")
            if eof:
                self.draining.close()
                self.draining = None
        if self.f is None and not self._open(0):
            return None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        fst = os.fstat(self.f.fileno())
        if fst.st_size < self.pos or (self.head and _read_head(self.f, self.pos)[:len(self.head)] != self.head):
            # copytruncate (or truncated and rewritten): start again from the top
            self.pos = 0
            self.f.seek(0)
        lines, self.pos, _ = _read_lines(self.f, self.pos, max_lines, final=False)
        if self.head is None or len(self.head) < HEAD_BYTES:
            self.head = _read_head(self.f, self.pos)
        if lines:
            return Batch(lines, (self.inode, self.pos, self.head), f"{self.name}@{self.inode}")
        if st is not None and st.st_ino != self.inode:
            # Rotated: drain the rest of the old file (a last line without newline included), then
            # continue with the new one from its start.
            self.draining, self.drain_inode, self.drain_pos = self.f, self.inode, self.pos
            self.f = None
            self._open(0)
            return self.read(max_lines)
        return None

    def close(self) -> None:
        for f in (self.f, self.draining):
            if f is not None:
                f.close()


def _read_head(f: BinaryIO, restore: int) -> bytes:
    f.seek(0)
    head = f.read(HEAD_BYTES)
    f.seek(restore)
    return head


def _read_lines(f: BinaryIO, pos: int, max_lines: int, final: bool) -> tuple[list[tuple[int, bytes]], int, bool]:
    """Complete lines from pos (and, if final, a last line without newline); new position; at EOF?"""
    f.seek(pos)
    lines: list[tuple[int, bytes]] = []
    while len(lines) < max_lines:
        line = f.readline(MAX_LINE_BYTES)
        if not line:
            return lines, pos, True
        if line.endswith(b"\n"):
            lines.append((pos, line[:-1]))
            pos += len(line)
        elif len(line) >= MAX_LINE_BYTES:
            lines.append((pos, line))  # an overlong line, cut: the normalizer quarantines it
            pos += len(line)
        elif final:
            lines.append((pos, line))
            pos += len(line)
            return lines, pos, True
        else:
            f.seek(pos)  # a line still being written: wait for its newline
            return lines, pos, True
    return lines, pos, False


class Spool:
    """Append-only file the syslog receivers write to, one message per line; rotates at a size."""

    def __init__(self, path: Path, rotate_bytes: int = 256 << 20):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rotate_bytes = rotate_bytes
        self.lock = threading.Lock()
        self.f = open(self.path, "ab")
        self.received = 0

    def write(self, message: bytes) -> None:
        message = message.rstrip(b"\r\n").replace(b"\n", b" ").replace(b"\r", b" ")
        if not message:
            return
        with self.lock:
            self.f.write(message + b"\n")
            self.f.flush()
            self.received += 1
            if self.f.tell() >= self.rotate_bytes:
                self.f.close()
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                self.f = open(self.path, "ab")

    def close(self) -> None:
        with self.lock:
            self.f.close()


class SyslogReceivers:
    """UDP and TCP syslog (RFC 3164 / 5424; TCP with newline or octet-counting framing) into a spool."""

    def __init__(self, spool: Spool, udp: str | None, tcp: str | None):
        self.spool, self.servers, self.threads = spool, [], []
        if udp:
            self.servers.append(_udp_server(_addr(udp), spool))
        if tcp:
            self.servers.append(_tcp_server(_addr(tcp), spool))

    @property
    def addresses(self) -> list[tuple[str, tuple]]:
        return [("udp" if isinstance(s, socketserver.UDPServer) else "tcp", s.server_address) for s in self.servers]

    def start(self) -> None:
        for server in self.servers:
            t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def _udp_server(addr, spool: Spool):
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            spool.write(self.request[0])

    server = socketserver.UDPServer(addr, Handler)
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return server


def _tcp_server(addr, spool: Spool):
    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            rfile = self.rfile
            while True:
                first = rfile.peek(1)[:1] if hasattr(rfile, "peek") else b""
                if first.isdigit():  # RFC 6587 octet counting: "LEN SP MSG"
                    digits = b""
                    while True:
                        c = rfile.read(1)
                        if not c or c == b" ":
                            break
                        digits += c
                        if len(digits) > 8:
                            break
                    if not digits.isdigit():
                        return
                    msg = rfile.read(int(digits))
                    if not msg:
                        return
                    spool.write(msg)
                    continue
                line = rfile.readline(MAX_LINE_BYTES)
                if not line:
                    return
                spool.write(line)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    return Server(addr, Handler)


# --- interception at city size (issue 20, h-intercept): wake on a write instead of polling ---

class ChangeWaiter:
    """Waits until one of the tailed files may have new lines: by inotify on their folders (a write,
    a new file, a rename — rotation included), else by sleeping the poll interval.

    Polling every `idle` seconds costs half an interval of latency on average before an attacking line
    is even read; inotify wakes the daemon at the write. The folders are watched, not the files, so a
    file that does not exist yet or is rotated away is still seen; events on other files in the folder
    are ignored. Where inotify is unavailable (no inotify_simple, no kernel support, the per-user
    instance or watch limit reached, a folder that does not exist yet) it falls back to polling, and
    `mode` says which ("inotify" or "poll"). With inotify it still wakes every `backstop` seconds,
    for writes inotify cannot see (a file on a network file system written by another machine).
    """

    BACKSTOP_FACTOR = 20  # × idle: 1 s at the default 50 ms poll interval
    STOP_CHECK = 0.2
    # After a wake, let the writer finish its burst for 5 ms: woken at every write, the daemon read a
    # syslog burst a few lines at a time, and the many tiny batches doubled its peak memory (the burst test:
    # +50 MB, against +25 MB polling and with this pause). Interception p99 stays ≈ 12 ms (docs/benchmarks.md).
    SETTLE = 0.005

    def __init__(self, paths: list[str | Path], idle: float, use_inotify: bool = True):
        self.idle = idle
        self.backstop = idle * self.BACKSTOP_FACTOR
        self._inotify = None
        self._names: dict[int, set[str]] = {}  # watch descriptor → file names (and rotated-name prefixes)
        self.mode, self.why_poll = "poll", "inotify not asked for"
        if use_inotify and paths:
            self._start(paths)

    def _start(self, paths: list[str | Path]) -> None:
        try:
            from inotify_simple import INotify, flags
        except ImportError:
            self.why_poll = "inotify_simple is not installed"
            return
        try:
            inotify = INotify()
        except OSError as exc:  # ENOSYS, EMFILE (fs.inotify.max_user_instances)
            self.why_poll = f"inotify unavailable: {exc.strerror or exc}"
            return
        mask = flags.MODIFY | flags.CREATE | flags.MOVED_TO | flags.MOVED_FROM | flags.CLOSE_WRITE | flags.ATTRIB
        by_folder: dict[Path, set[str]] = {}
        for path in paths:
            p = Path(path).absolute()
            by_folder.setdefault(p.parent, set()).add(p.name)
        try:
            for folder, names in by_folder.items():
                self._names.setdefault(inotify.add_watch(str(folder), mask), set()).update(names)
        except OSError as exc:  # a missing folder, ENOSPC (fs.inotify.max_user_watches)
            inotify.close()
            self._names.clear()
            self.why_poll = f"cannot watch {folder}: {exc.strerror or exc}"
            return
        self._inotify, self.mode, self.why_poll = inotify, "inotify", None

    def _relevant(self, event) -> bool:
        from inotify_simple import flags
        if event.mask & flags.Q_OVERFLOW:  # events were lost: anything may have changed
            return True
        if event.mask & flags.IGNORED:  # the folder itself went away: poll from now on
            self.close()
            self.mode, self.why_poll = "poll", "a watched folder was removed"
            return True
        names = self._names.get(event.wd)
        # app.log.1, app.log-20261206: the file renamed away by rotation still matters until drained
        return names is not None and any(event.name == n or event.name.startswith(n + ".")
                                         or event.name.startswith(n + "-") for n in names)

    def wait(self, stop=lambda: False) -> None:
        """Return when a tailed file may have changed (at most after the backstop), or after `idle`
        when polling. Events that arrived since the last call return at once; `stop()` is looked at
        every STOP_CHECK seconds, so a stop request is not held up by the backstop."""
        if self._inotify is None:
            time.sleep(self.idle)
            return
        deadline = time.monotonic() + self.backstop
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or stop():
                return
            try:
                events = self._inotify.read(timeout=max(1, int(min(left, self.STOP_CHECK) * 1000)))
            except InterruptedError:
                return
            if any([self._relevant(e) for e in events]):  # every event looked at: IGNORED must not be skipped
                time.sleep(self.SETTLE)
                return

    def close(self) -> None:
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None
