"""The console's first administrator: created once (console.users.create_first_admin), its credentials
in a file of mode 0600."""
from __future__ import annotations

import os
import time
from pathlib import Path

from console.users import Users, create_first_admin


def ensure_first_admin(credentials: Path, users_path: Path, console_url: str) -> dict:
    """{path, created, user}: the credentials file, written only the first time."""
    if credentials.exists():
        user = next((line.split(":", 1)[1].strip() for line in credentials.read_text().splitlines()
                     if line.startswith("user:")), None)
        return {"path": str(credentials), "created": False, "user": user}
    if Users(users_path).list():  # the file was deleted after sign-in, as it asks: the users are managed now
        return {"path": None, "created": False, "user": None,
                "note": "console users exist; manage them with `govctl users`"}
    user, password = create_first_admin(users_path)
    credentials.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(credentials, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(f"# govctl console: the first administrator, created by `govctl up` on "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}.\n"
                  "# Sign in, change the password, then delete this file.\n"
                  f"url: {console_url}\nuser: {user}\npassword: {password}\n")
    return {"path": str(credentials), "created": True, "user": user}
