"""Command line: `python -m bot {train,run,shell,staff}`."""

from __future__ import annotations

import argparse
import sys


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
    from bot.staff.cli import add_parser as add_staff_parser

    add_staff_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "staff":
        from bot.staff.cli import run as run_staff

        return run_staff(args)

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
    return serve.run() if args.command == "run" else serve.shell()


if __name__ == "__main__":
    sys.exit(main())
