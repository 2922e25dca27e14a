"""Settings of a cluster connection (validated) and a client that is checked at start-up.

A wrong URL, a refused certificate or wrong credentials fail here, before any ingest, with a
message that names the setting to fix. Secrets come from an environment variable or a file and
never appear in messages.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any


from core.paths import STATE

SCHEMA = Path(__file__).parent / "config.schema.yaml"
SUPPORTED_MAJOR = 8  # the pinned Python client's major version

DEFAULTS: dict[str, Any] = {
    "verify_certs": True,
    "request_timeout": 30.0,
    "index_prefix": "govctl",
    "replicas": 0,
    "events_index": {"refresh_interval": "5s", "durability": "request", "shards": 1},
    "spool": str(STATE / "secops" / "es-spool"),
    "bulk": {"max_in_flight": 2, "retry_seconds": 10.0, "backoff_initial": 0.1, "backoff_max": 5.0,
             "probe_seconds": 2.0},
    "detection": {"interval_seconds": 60.0, "overlap_seconds": 30.0, "page_size": 5000},
}


class ClusterError(RuntimeError):
    """The cluster is unreachable, refused us, or is not a supported Elasticsearch. `settings_wrong`:
    the settings must change (credentials, CA, a URL of something else), as opposed to a cluster that is away."""

    def __init__(self, message: str, settings_wrong: bool = False):
        super().__init__(message)
        self.settings_wrong = settings_wrong


class SettingsError(ValueError):
    """The `elasticsearch:` settings are invalid; the message names the setting."""


def settings(section: dict[str, Any] | None) -> dict[str, Any]:
    """The `elasticsearch:` config section validated against config.schema.yaml, over the defaults."""
    from ..config import Invalid, validate_and_merge

    if not section:
        raise SettingsError("`store: elasticsearch` needs an `elasticsearch:` section with at least `url` "
                            "(example: url: http://127.0.0.1:9200)")
    try:
        return validate_and_merge(section, SCHEMA, DEFAULTS, prefix="elasticsearch.")
    except Invalid as exc:
        raise SettingsError(f"invalid `elasticsearch:` settings:\n{exc}") from None


def _secret(cfg: dict[str, Any]) -> dict[str, Any]:
    """Client keyword arguments carrying the credentials."""
    if cfg.get("api_key_env"):
        key = os.environ.get(cfg["api_key_env"])
        if not key:
            raise SettingsError(f"elasticsearch.api_key_env names {cfg['api_key_env']}, which is not set")
        return {"api_key": key}
    if not cfg.get("username"):
        return {}
    if cfg.get("password_env"):
        password = os.environ.get(cfg["password_env"])
        if password is None:
            raise SettingsError(f"elasticsearch.password_env names {cfg['password_env']}, which is not set")
    elif cfg.get("password_file"):
        try:
            password = Path(cfg["password_file"]).read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError) as exc:
            raise SettingsError(f"elasticsearch.password_file {cfg['password_file']} cannot be read: "
                                f"{getattr(exc, 'strerror', None) or 'empty file'}") from None
    else:
        raise SettingsError("elasticsearch.username is set but no password: set password_env or password_file")
    return {"basic_auth": (cfg["username"], password)}


def connect(cfg: dict[str, Any], check: bool = True):
    """An `Elasticsearch` client for validated settings; with `check`, prove it works now."""
    from elasticsearch import Elasticsearch

    hosts = cfg["url"] if isinstance(cfg["url"], list) else [cfg["url"]]
    kwargs: dict[str, Any] = {"request_timeout": cfg["request_timeout"], "verify_certs": cfg["verify_certs"],
                              "max_retries": 0, "retry_on_timeout": False}  # the bulk writer retries itself
    if cfg.get("ca_certs"):
        if not Path(cfg["ca_certs"]).is_file():
            raise SettingsError(f"elasticsearch.ca_certs {cfg['ca_certs']} is not a file")
        kwargs["ca_certs"] = cfg["ca_certs"]
    client = Elasticsearch(hosts, **kwargs, **_secret(cfg))
    if check:
        check_cluster(client, cfg)
    return client


def check_cluster(client, cfg: dict[str, Any]) -> str:
    """The server's version; raises ClusterError with what to fix when the cluster cannot be used."""
    from elasticsearch import (ApiError, AuthenticationException, AuthorizationException, ConnectionError,
                               SSLError, UnsupportedProductError)

    where = ", ".join(cfg["url"]) if isinstance(cfg["url"], list) else cfg["url"]
    try:
        nodes = client.nodes.info(node_id="_local", metric="_none", filter_path="nodes.*.version")
    except AuthenticationException:
        who = f"user {cfg['username']!r}" if cfg.get("username") else "the API key" if cfg.get("api_key_env") \
            else "an anonymous request"
        raise ClusterError(f"Elasticsearch at {where} refused the credentials of {who} (HTTP 401): check "
                           "elasticsearch.username and the password (password_env / password_file) or api_key_env",
                           settings_wrong=True) from None
    except AuthorizationException:
        raise ClusterError(f"Elasticsearch at {where} accepted the credentials but denies this user cluster "
                           "monitoring (HTTP 403): grant it the govctl role (see docs/elasticsearch.md)",
                           settings_wrong=True) from None
    except SSLError as exc:
        raise ClusterError(f"TLS with Elasticsearch at {where} failed ({_short(exc)}): set elasticsearch.ca_certs "
                           "to the CA that signed the cluster's certificate", settings_wrong=True) from None
    except ConnectionError as exc:
        raise ClusterError(f"cannot reach Elasticsearch at {where} ({_short(exc)}): check elasticsearch.url, "
                           "or start a local node with `govctl es up`") from None
    except UnsupportedProductError:
        raise ClusterError(f"{where} answers, but it is not Elasticsearch: check elasticsearch.url",
                           settings_wrong=True) from None
    except ApiError as exc:
        raise ClusterError(f"Elasticsearch at {where} answered HTTP {exc.meta.status} to a health check: "
                           f"{_short(exc)}") from None
    versions = [n["version"] for n in (nodes.get("nodes") or {}).values()]
    if not versions:
        raise ClusterError(f"Elasticsearch at {where} reported no node version")
    major = int(versions[0].split(".")[0])
    if major != SUPPORTED_MAJOR:
        raise ClusterError(f"Elasticsearch at {where} is version {versions[0]}; govctl's client speaks "
                           f"{SUPPORTED_MAJOR}.x (the client's major version must match the server's)",
                           settings_wrong=True)
    return versions[0]


def _short(exc: Exception) -> str:
    text = str(getattr(exc, "message", None) or exc)
    for marker in ("Connection refused", "Name or service not known", "certificate verify failed", "timed out"):
        if marker in text:
            return marker
    return text.splitlines()[0][:200] if text else type(exc).__name__
