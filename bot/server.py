"""The assistant's web server: Rasa's channels and the project's pages in one Sanic app.

`python -m bot.server` is what `make run` starts on :5005. It does what `rasa run` does
(load the model, serve the channels in credentials.yml, use endpoints.yml) and adds:

- the patient chat page and the embeddable widget (bot.web), the staff console, and
  GET /health: which parts of the assistant are up (bot.status);
- security headers on every response and CORS limited to ALLOWED_ORIGINS;
- Rasa's HTTP API only when asked for (RASA_ENABLE_API=true) and then only with a token
  (RASA_API_TOKEN) or JWT secret (RASA_JWT_SECRET) from the environment;
- the production profile refuses to start without its secrets, and the action server
  is called with the shared ACTION_TOKEN; phone numbers and e-mail addresses are
  masked in every log record (clinic.privacy);
- a short timeout on calls to the action server (ACTION_TIMEOUT, default 4 s) instead
  of Rasa's five minutes, so a patient gets the apology with the phone number quickly.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from functools import partial

from clinic import cpu, privacy, settings
from clinic.quiet import silence_deprecations

cpu.one_blas_thread()  # before Rasa imports numpy (clinic.cpu)

logger = logging.getLogger(__name__)


class ConfigurationError(RuntimeError):
    """The server's settings are unsafe or incomplete."""


def api_settings() -> tuple[bool, str | None, str | None]:
    """(enable_api, auth_token, jwt_secret) from the environment; refuses an open API."""
    values = settings.current()
    enabled = values.rasa_enable_api.strip().lower() in {"1", "true", "yes"}
    token = values.rasa_api_token or None
    jwt_secret = values.rasa_jwt_secret or None
    if enabled and not (token or jwt_secret):
        raise ConfigurationError(
            "RASA_ENABLE_API=true needs RASA_API_TOKEN or RASA_JWT_SECRET in the "
            "environment (see .env.example); the HTTP API is never served without one"
        )
    return enabled, token, jwt_secret


def check_secrets() -> None:
    """Refuse to start with secrets missing: the production profile's, the action token.

    The action token is what the action server checks on every call (endpoints.yml sends
    it); `python -m bot run` makes one per run. ACTION_TOKEN_FILE is copied into the
    environment because endpoints.yml can only name environment variables.
    """
    problems = settings.production_problems()
    if problems:
        raise ConfigurationError(
            "the production profile (ASSISTANT_PROFILE=production) needs its secrets: "
            + "; ".join(problems)
            + " (see .env.example and docs/security.md)"
        )
    token = settings.secret("ACTION_TOKEN")
    if token is None:
        raise ConfigurationError(
            "ACTION_TOKEN is not set: `python -m bot run` makes one per run; when "
            "starting bot.server by hand, give it the action server's ACTION_TOKEN"
        )
    os.environ["ACTION_TOKEN"] = token


def limit_action_timeout(seconds: float) -> None:
    """Make the Rasa server give up on the action server after `seconds`."""
    import rasa.core.actions.action

    rasa.core.actions.action.DEFAULT_REQUEST_TIMEOUT = seconds


def build_app(
    credentials: str,
    endpoints_file: str,
    model: str,
    port: int,
    interface: str = "127.0.0.1",
) -> tuple[object, int]:
    """The Sanic app (not yet running) and its number of workers.

    `interface` is where it will listen: beyond loopback, the REST channel needs
    REST_TOKEN (bot.rest.ClinicRest).
    """
    import rasa.core.run
    import rasa.core.utils
    from rasa.core.utils import AvailableEndpoints

    import staff
    from bot import channels, outage, patches, rest, status, web

    check_secrets()
    os.environ.update(settings.endpoint_defaults())
    enable_api, token, jwt_secret = api_settings()
    limit_action_timeout(settings.action_timeout())
    endpoints = AvailableEndpoints.read_endpoints(endpoints_file)
    input_channels = rasa.core.run.create_http_input_channels(None, credentials)
    for channel in input_channels:  # before configure_app builds their blueprints
        if isinstance(channel, rest.ClinicRest):
            channel.listens_beyond_loopback = not rest.is_loopback(interface)
    origins = settings.allowed_origins()
    app = rasa.core.run.configure_app(
        input_channels,
        cors=origins or None,
        auth_token=token,
        enable_api=enable_api,
        jwt_secret=jwt_secret,
        jwt_method="HS256",
        port=port,
        endpoints=endpoints,
    )
    for channel in input_channels:
        if isinstance(channel, channels.ClinicSocketIO):
            channel.app = app
    web.install(app)
    staff.install(app)
    status.install(app, endpoints.action if endpoints else None)
    patches.apply(app)
    app.register_listener(
        partial(rasa.core.run.load_agent_on_start, model, endpoints, None),
        "before_server_start",
    )
    app.register_listener(outage.guard_on_start, "before_server_start")
    app.register_listener(rasa.core.run.close_resources, "after_server_stop")
    workers = rasa.core.utils.number_of_sanic_workers(
        endpoints.lock_store if endpoints else None
    )
    return app, workers


def main(argv: list[str] | None = None) -> int:
    """Serve until stopped."""
    parser = argparse.ArgumentParser(prog="python -m bot.server")
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, default=5005)
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--credentials", default="credentials.yml")
    parser.add_argument("--endpoints", default="endpoints.yml")
    parser.add_argument("--log-level", default=settings.current().log_level)
    args = parser.parse_args(argv)

    silence_deprecations()
    privacy.install()
    import rasa.utils.common
    from rasa.utils.log_utils import configure_structlog

    level = logging.getLevelName(args.log_level.upper())
    if not isinstance(level, int):
        print(f"error: unknown log level {args.log_level!r}", file=sys.stderr)
        return 2
    rasa.utils.common.configure_logging_and_warnings(level)
    configure_structlog(level)
    silence_deprecations()
    rasa.utils.common.update_sanic_log_level()
    try:
        app, workers = build_app(
            args.credentials, args.endpoints, args.model, args.port, args.interface
        )
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logger.info("Starting the assistant on http://%s:%s", args.interface, args.port)
    app.run(  # type: ignore[attr-defined]
        host=args.interface,
        port=args.port,
        workers=workers,
        backlog=settings.current().sanic_backlog,
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
