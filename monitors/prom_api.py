"""A small client for the Prometheus and Alertmanager HTTP APIs (queries, rules, alerts, silences)."""
from __future__ import annotations

from typing import Any

import httpx

from core.errors import GovctlError


def _url(address: str, path: str) -> str:
    base = address.rstrip("/") if address.startswith(("http://", "https://")) else f"http://{address}"
    return base + path


def get_json(address: str, path: str, params: dict | None = None, timeout: float = 10) -> Any:
    try:
        response = httpx.get(_url(address, path), params=params, timeout=timeout)
    except httpx.HTTPError as exc:
        raise GovctlError(f"cannot reach {address}{path}: {exc}; is the monitor up "
                          "(`govctl monitor status`)?") from None
    if response.status_code >= 400:
        raise GovctlError(f"{address}{path} answered {response.status_code}: {response.text[:300]}")
    return response.json()


def query(address: str, expr: str, at: float | None = None) -> list[dict]:
    """Instant query: [{'metric': {...}, 'value': [ts, 'v']}]."""
    params = {"query": expr, **({"time": f"{at:.3f}"} if at is not None else {})}
    body = get_json(address, "/api/v1/query", params)
    return body["data"]["result"]


def query_range(address: str, expr: str, start: float, end: float, step: float) -> list[dict]:
    """Range query split into chunks under Prometheus's 11,000-points-per-series limit."""
    series: dict[tuple, dict] = {}
    chunk = step * 10_000
    t = start
    while t <= end:
        stop = min(end, t + chunk)
        body = get_json(address, "/api/v1/query_range",
                        {"query": expr, "start": f"{t:.3f}", "end": f"{stop:.3f}", "step": f"{step:g}"},
                        timeout=60)
        for s in body["data"]["result"]:
            key = tuple(sorted(s["metric"].items()))
            series.setdefault(key, {"metric": s["metric"], "values": []})["values"] += s["values"]
        t = stop + step
    return list(series.values())


def post_json(address: str, path: str, body: Any) -> Any:
    try:
        response = httpx.post(_url(address, path), json=body, timeout=10)
    except httpx.HTTPError as exc:
        raise GovctlError(f"cannot reach {address}{path}: {exc}") from None
    if response.status_code >= 400:
        raise GovctlError(f"{address}{path} answered {response.status_code}: {response.text[:300]}")
    return response.json() if response.content else None


def delete(address: str, path: str) -> None:
    try:
        response = httpx.delete(_url(address, path), timeout=10)
    except httpx.HTTPError as exc:
        raise GovctlError(f"cannot reach {address}{path}: {exc}") from None
    if response.status_code >= 400:
        raise GovctlError(f"{address}{path} answered {response.status_code}: {response.text[:300]}")


def ready(address: str) -> bool:
    try:
        return httpx.get(_url(address, "/-/ready"), timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
