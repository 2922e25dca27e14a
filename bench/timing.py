"""Shared by the bench scripts (they run from bench/, so `from timing import timed`)."""
from __future__ import annotations

import time


def timed(fn):
    """(fn(), seconds it took)."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start
