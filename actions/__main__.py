"""`python -m actions`: the action server, on localhost, after checking the store.

Loads the spaCy pipeline of every language the store has documents in before serving.
Refuses to start, saying which command fixes it, when the knowledge store is missing,
empty or from another schema version, or when there is no ACTION_TOKEN. Every call but
`/health` must carry `Authorization: Bearer $ACTION_TOKEN` (401 otherwise): the Rasa
server sends it (endpoints.yml), so nothing else on the machine can run the actions or
read what they return.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

# thinc (under spaCy) imports TensorFlow when it is installed, as it is for Rasa; the
# action server never uses it, and it would triple the server's memory.
sys.modules.setdefault("tensorflow", None)  # type: ignore[arg-type]

from clinic import cpu, privacy, settings  # noqa: E402

cpu.one_blas_thread()  # before spaCy imports numpy (clinic.cpu)

from clinic.quiet import silence_deprecations  # noqa: E402

silence_deprecations()

from knowledge import pipeline, queries  # noqa: E402
from knowledge.environment import session_scope  # noqa: E402

UNCHECKED_PATHS = frozenset({"/health"})


def require_token(app: Any, token: str) -> None:
    """Answer 401 to every request but /health that lacks the shared token."""
    from sanic import response
    from sanic.request import Request

    async def check(request: Request) -> Any:
        given = request.headers.get("authorization", "")
        if request.path in UNCHECKED_PATHS or settings.bearer_matches(given, token):
            return None
        return response.json({"error": "unauthorized"}, status=401)

    app.register_middleware(check, "request")


def main() -> int:
    """Check the token and the knowledge store, then serve the actions until stopped."""
    privacy.install()
    values = settings.current()
    level = logging.getLevelName(values.log_level.upper())
    logging.basicConfig(
        level=level if isinstance(level, int) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s  %(message)s",
    )
    problems = settings.production_problems(("ACTION_TOKEN",))
    token = settings.secret("ACTION_TOKEN")
    if problems or token is None:
        print(
            "action server not started: ACTION_TOKEN is not set (or too short in "
            "production); `python -m bot run` makes one per run, and a server started "
            "by hand needs the same ACTION_TOKEN as the Rasa server",
            file=sys.stderr,
        )
        return 2
    try:
        with session_scope() as session:
            info = queries.check_store(session)
            languages = queries.document_languages(session)
    except queries.StoreNotReadyError as exc:
        print(f"action server not started: {exc}", file=sys.stderr)
        return 2
    logging.getLogger(__name__).info(
        "knowledge store built at %s, documents in %s",
        info.get("built_at"),
        ", ".join(sorted(languages)),
    )
    # Each language's spaCy pipeline is loaded now, not on the first question in it,
    # which would otherwise wait past the Rasa server's patience for an action.
    for language in sorted(languages):
        pipeline.load(language)

    from rasa_sdk.endpoint import create_app

    app = create_app("actions.actions", cors_origins=[])
    require_token(app, token)
    app.run(
        host=values.action_host,
        port=values.action_port,
        workers=1,
        access_log=False,
        motd=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
