"""Enter a named network namespace (`ip netns add NAME`) from the calling thread.

The exporters bind their metrics socket first and then enter the vantage point's namespace: probes
and database connections leave from that namespace while Prometheus, in the namespace govctl runs
in, keeps scraping the socket it already has (a socket stays in the namespace it was made in).
"""
from __future__ import annotations

import ctypes
import os

from core.errors import BadInput

CLONE_NEWNET = 0x40000000


def enter(name: str) -> None:
    path = f"/run/netns/{name}"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise BadInput(f"network namespace {name!r}: cannot open {path} ({exc.strerror}); "
                       "check `ip netns list`") from None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise BadInput(f"cannot enter network namespace {name!r}: {os.strerror(err)} (needs root)")
    finally:
        os.close(fd)
