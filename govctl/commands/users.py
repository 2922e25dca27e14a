"""govctl users: the people who sign in to the console (argon2id passwords; roles ops, security, auditor)."""
from __future__ import annotations

import sys

import typer

from core.errors import BadInput

app = typer.Typer(name="users", help=(
    "Console users: add, list, change a password, disable. Passwords are read from a prompt or, with\n"
    "--password-stdin, from the first line of standard input; never from the command line.\n\n"
    "Example: govctl users add li.na --role security"), no_args_is_help=True)

_STDIN = typer.Option(False, "--password-stdin", help="Read the password from the first line of standard input.")


def users_path():
    from core.paths import STATE
    return STATE / "console" / "users.yaml"


def _users():
    from console.users import Users
    return Users(users_path())


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise BadInput("--password-stdin: standard input is empty; pipe the password in (one line)")
        return line.rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@app.command()
def add(name: str = typer.Argument(..., help="User name: lower-case letters, digits, '.', '_' or '-'."),
        role: str = typer.Option(..., "--role", help="ops, security or auditor."),
        password_stdin: bool = _STDIN) -> None:
    """Add a user (the password: at least 12 characters of 3 kinds).

    Example: printf '%s\\n' "$PASSWORD" | govctl users add li.na --role security --password-stdin
    """
    from console.users import check_name, check_role
    check_name(name), check_role(role)
    _users().add(name, role, _password(password_stdin))
    print(f"user {name} added with role {role}")


@app.command("list")
def list_users(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The users, their roles and whether they are disabled (never a hash).

    Example: govctl users list --json
    """
    from rich.table import Table

    from govctl.ui import console, print_json
    from secops.normalize import iso
    rows = [{**u, "changed": iso(u["changed"]) if u["changed"] else None} for u in _users().list()]
    if json_out:
        print_json(rows)
        return
    table = Table("name", "role", "disabled", "changed")
    for u in rows:
        table.add_row(u["name"], u["role"], "yes" if u["disabled"] else "", u["changed"] or "")
    console.print(table)


@app.command()
def passwd(name: str = typer.Argument(...), password_stdin: bool = _STDIN) -> None:
    """Set a new password; the user's open console sessions end.

    Example: govctl users passwd li.na
    """
    users = _users()
    if users.get(name) is None:
        raise BadInput(f"user {name!r} does not exist; see `govctl users list`")
    users.set_password(name, _password(password_stdin))
    print(f"password of {name} changed")


@app.command()
def disable(name: str = typer.Argument(...)) -> None:
    """Disable a user: sign-in is refused and open sessions end (the record stays for the audit trail).

    Example: govctl users disable wang.fang
    """
    _users().disable(name)
    print(f"user {name} disabled")
