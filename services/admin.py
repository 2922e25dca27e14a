"""The console's first administrator: created once, its credentials in a file of mode 0600.

The console's users module (console/users.py, another branch) provides
`create_first_admin(users_path) -> (user, password)`; until it is merged this module generates the
name and password itself and only writes the credentials file.
TODO(merge h-console): drop the fallback below once console.users.create_first_admin exists.
"""
from __future__ import annotations

import os
import secrets
import string
import time
from pathlib import Path

ADMIN_NAME = "admin"


def _generated(users_path: Path) -> tuple[str, str]:
    alphabet = string.ascii_letters + string.digits
    # 20 characters of all four kinds: meets the console's 等保 password rule
    chars = [secrets.choice(alphabet) for _ in range(16)] + [
        secrets.choice(string.ascii_lowercase), secrets.choice(string.ascii_uppercase),
        secrets.choice(string.digits), secrets.choice("-_.!")]
    secrets.SystemRandom().shuffle(chars)
    return ADMIN_NAME, "".join(chars)


def ensure_first_admin(credentials: Path, users_path: Path, console_url: str) -> dict:
    """{path, created, user}: the credentials file, written only the first time."""
    if credentials.exists():
        user = next((line.split(":", 1)[1].strip() for line in credentials.read_text().splitlines()
                     if line.startswith("user:")), None)
        return {"path": str(credentials), "created": False, "user": user}
    try:
        from console.users import create_first_admin  # type: ignore[import-not-found]
    except ImportError:
        create_first_admin = _generated
    user, password = create_first_admin(users_path)
    credentials.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(credentials, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(f"# govctl console: the first administrator, created by `govctl up` on "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}.\n"
                  "# Sign in, change the password, then delete this file.\n"
                  f"url: {console_url}\nuser: {user}\npassword: {password}\n")
    return {"path": str(credentials), "created": True, "user": user}
