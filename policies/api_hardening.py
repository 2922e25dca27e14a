"""The console's hardening page (hardening/api.py) with the host-item waivers of the compliance assessment:
hardening sits below policies, so the waivers are handed to it from here (issue #19)."""
from __future__ import annotations

from hardening.api import WaiverLookup, extension

from .compliance.assessment import host_waiver, load, waiver_active


def waivers_in_force() -> WaiverLookup:
    """The assessment file's host waivers (read on each request: an edit shows at once)."""
    waivers = load().host_waivers()

    def waiver_for(item: str, host: str) -> dict | None:
        waiver = host_waiver(waivers, item, host)
        return {**waiver, "active": waiver_active(waiver)} if waiver else None
    return waiver_for


EXTENSION = extension(waivers_in_force)
