"""Command line: `python -m bot {train,run,shell,staff,purge,summaries,scaled}`."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta


def main(argv: list[str] | None = None) -> int:
    """Run the assistant's command line."""
    parser = argparse.ArgumentParser(prog="python -m bot")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the Rasa model if its inputs changed")
    train.add_argument(
        "--force", action="store_true", help="train even when up to date"
    )
    sub.add_parser("run", help="serve the assistant (action server + Rasa server)")
    sub.add_parser("shell", help="talk to the assistant in the terminal")
    from staff.cli import add_parser as add_staff_parser

    add_staff_parser(sub)
    purge = sub.add_parser(
        "purge", help="delete conversations and call-backs older than a limit"
    )
    purge.add_argument(
        "--older-than",
        type=_age,
        default=None,
        metavar="AGE",
        help="e.g. 30d, 12h, 90m, 2w (default: RETENTION_DAYS, 30 days)",
    )
    sub.add_parser(
        "summaries",
        help="recompute the staff insights' summary tables from the stored events",
    )
    scaled = sub.add_parser(
        "scaled", help="N Rasa + N action servers behind nginx (docs/scale-out.md)"
    )
    scaled.add_argument(
        "--servers", type=int, default=None, help="default SCALED_SERVERS or 2"
    )
    scaled.add_argument(
        "--port", type=int, default=None, help="nginx's port (RASA_PORT)"
    )
    sub.add_parser(
        "settings", help="print .env.example, generated from clinic.settings.Settings"
    )
    args = parser.parse_args(argv)
    if args.command == "settings":
        from clinic.settings import env_example

        sys.stdout.write(env_example())
        return 0
    if args.command == "staff":
        from staff.cli import run as run_staff

        return run_staff(args)

    if args.command == "purge":
        return _purge(args.older_than)
    if args.command == "summaries":
        return _summaries()

    from bot import serve, training

    if args.command == "train":
        try:
            training.train(force=args.force)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    if not training.MODEL_FILE.exists():
        print("error: no trained model; run `make model` first", file=sys.stderr)
        return 1
    if args.command == "scaled":
        from bot import scaled as profile

        return profile.run(
            args.servers or profile.default_servers(), args.port or serve.rasa_port()
        )
    return serve.run() if args.command == "run" else serve.shell()


def _age(text: str) -> timedelta:
    """The `--older-than` argument type: a friendly usage error on bad input."""
    from records.retention import parse_age

    try:
        return parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _purge(older_than: timedelta | None) -> int:
    """Delete what is older than the limit and say what went."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from clinic import settings
    from records.retention import describe_age, purge
    from records.store import conversations_url, session_scope

    age = older_than or timedelta(days=settings.retention_days())
    url = conversations_url()
    where = make_url(url).render_as_string(hide_password=True)
    try:
        with session_scope(url) as session:
            report = purge(session, age)
    except SQLAlchemyError as exc:
        print(
            f"error: cannot purge {where}: {type(exc).__name__}; is the database"
            " reachable and is CONVERSATIONS_DB / CONVERSATIONS_DB_URL right?",
            file=sys.stderr,
        )
        return 1
    print(
        f"purged {where}: older than {describe_age(age)}: removed"
        f" {report.conversations} conversation(s) ({report.events} event(s)) and"
        f" {report.callbacks} call-back request(s)"
    )
    return 0


def _summaries() -> int:
    """Rebuild the summary tables from the events and say how many conversations."""
    from records.store import session_scope
    from records.summaries import rebuild

    with session_scope() as session:
        count = rebuild(session)
    print(f"summaries rebuilt from the events: {count} conversation(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
