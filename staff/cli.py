"""`python -m bot staff add|list|disable|remove NAME`: the console's accounts.

The password is asked twice without echo (or read from standard input with
--password-stdin, for scripts); only its argon2 hash is stored. Adding a name that
exists sets a new password (enabling it again if it was disabled) and logs that account
out everywhere. `disable` keeps the account but refuses its logins and ends its
sessions at once; `remove` deletes it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from records.store import conversations_url, session_scope
from staff import auth


def add_parser(sub: Any) -> None:
    """Add `staff` and its commands to the main parser's subparsers."""
    staff = sub.add_parser("staff", help="staff console accounts")
    commands = staff.add_subparsers(dest="staff_command", required=True)
    add = commands.add_parser("add", help="create an account or set its password")
    add.add_argument("name")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    commands.add_parser("list", help="list the accounts")
    disable = commands.add_parser(
        "disable", help="refuse an account's logins and end its sessions now"
    )
    disable.add_argument("name")
    remove = commands.add_parser("remove", help="delete an account")
    remove.add_argument("name")


def _ask_password() -> str:
    first = getpass.getpass("Password: ")
    second = getpass.getpass("Password again: ")
    if first != second:
        raise auth.AccountError("the two passwords differ")
    return first


def run(args: argparse.Namespace) -> int:
    """Carry out a `staff` command."""
    if args.staff_command == "list":
        with session_scope() as session:
            for account in auth.list_accounts(session):
                state = "active" if account.active else "disabled"
                last = account.last_login_at or "never"
                print(f"{account.name}\t{state}\tlast login {last}")
        return 0
    if args.staff_command in {"disable", "remove"}:
        return _disable_or_remove(args.staff_command, args.name)
    try:
        password = (
            sys.stdin.readline().rstrip("\r\n")
            if args.password_stdin
            else _ask_password()
        )
        auth.check_new_account(args.name, password)
        with session_scope() as session:
            auth.add_account(session, args.name, password)
    except (auth.AccountError, EOFError, KeyboardInterrupt) as exc:
        print(f"error: {exc or 'cancelled'}", file=sys.stderr)
        return 1
    print(f"staff account {args.name!r} saved in {_where()}")
    return 0


def _disable_or_remove(command: str, name: str) -> int:
    change = auth.disable_account if command == "disable" else auth.remove_account
    try:
        with session_scope() as session:
            change(session, name)
    except auth.AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    done = "disabled (its sessions ended)" if command == "disable" else "removed"
    print(f"staff account {name!r} {done} in {_where()}")
    return 0


def _where() -> str:
    url = conversations_url()
    return url.split("@")[-1] if "@" in url else url
