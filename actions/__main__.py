"""`python -m actions`: the action server, on localhost, after checking the store.

Refuses to start, saying which command fixes it, when the knowledge store is missing,
empty or from another schema version.
"""

from __future__ import annotations

import logging
import os
import sys

# thinc (under spaCy) imports TensorFlow when it is installed, as it is for Rasa; the
# action server never uses it, and it would triple the server's memory.
sys.modules.setdefault("tensorflow", None)  # type: ignore[arg-type]

from bot.quiet import silence_deprecations  # noqa: E402

silence_deprecations()

from knowledge import queries  # noqa: E402
from knowledge.environment import session_scope  # noqa: E402


def main() -> int:
    """Check the knowledge store, then serve the actions until stopped."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s  %(message)s"
    )
    try:
        with session_scope() as session:
            info = queries.check_store(session)
    except queries.StoreNotReadyError as exc:
        print(f"action server not started: {exc}", file=sys.stderr)
        return 2
    logging.getLogger(__name__).info(
        "knowledge store built at %s", info.get("built_at")
    )

    from rasa_sdk.endpoint import create_app

    app = create_app("actions.actions", cors_origins=[])
    app.run(
        host=os.environ.get("ACTION_HOST", "127.0.0.1"),
        port=int(os.environ.get("ACTION_PORT", "5055")),
        workers=1,
        access_log=False,
        motd=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
