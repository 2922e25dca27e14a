"""Serving an ASGI app from the CLI (the incidents API, the console): HTTPS with a given certificate, or
plain HTTP on a loopback address only. One place for the TLS options and the rule."""
from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Optional

import typer

from core.errors import BadInput

TLS_CERTFILE: Optional[Path] = typer.Option(None, "--tls-certfile", help="Serve HTTPS with this PEM certificate "
                                            "(chain); needs --tls-keyfile (`govctl up` passes the platform CA's).")
TLS_KEYFILE: Optional[Path] = typer.Option(None, "--tls-keyfile", help="The certificate's PEM private key.")


def check_transport(host: str, certfile: Optional[Path], keyfile: Optional[Path]) -> None:
    """Both TLS files or neither; without them, only a loopback address (exit 2 otherwise)."""
    if (certfile is None) != (keyfile is None):
        raise BadInput("give both --tls-certfile and --tls-keyfile, or neither (plain HTTP on loopback)")
    for option, path in (("--tls-certfile", certfile), ("--tls-keyfile", keyfile)):
        if path is not None and not path.is_file():
            raise BadInput(f"{option} {path}: no such file")
    if certfile is None:
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise BadInput(f"--host {host}: plain HTTP is served only on loopback; give --tls-certfile "
                           "and --tls-keyfile (or run `govctl up`, which makes a certificate)")


def serve(app, host: str, port: int, certfile: Optional[Path], keyfile: Optional[Path]) -> None:
    import uvicorn
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=3,
                ssl_certfile=str(certfile) if certfile else None, ssl_keyfile=str(keyfile) if keyfile else None)
