"""The clinic's settings, from the environment (see .env.example).

Both servers read them: the Rasa server (phone numbers in replies, message limits) and
the action server.
"""

from __future__ import annotations

import hmac
import os


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def clinic_name() -> str:
    """The clinic's name as the assistant says it."""
    return _env("CLINIC_NAME", "our pain management clinic")


def clinic_phone() -> str:
    """The front desk's phone number, given for call backs and questions."""
    return _env("CLINIC_PHONE", "(555) 010-4477")


def emergency_number() -> str:
    """The local emergency number."""
    return _env("EMERGENCY_NUMBER", "911")


def crisis_line() -> str:
    """The suicide and crisis line."""
    return _env("CRISIS_LINE", "988")


def max_message_chars() -> int:
    """Messages longer than this get a friendly note and are not processed."""
    try:
        return max(1, int(_env("MAX_MESSAGE_CHARS", "2000")))
    except ValueError:
        return 2000


def input_problem(text: str) -> str | None:
    """Why a message cannot be answered as it is: "empty", "too_long", or None."""
    if not text.strip():
        return "empty"
    if len(text) > max_message_chars():
        return "too_long"
    return None


def template_values() -> dict[str, str]:
    """The values every domain response may use, e.g. `{clinic_phone}`."""
    return {
        "clinic_name": clinic_name(),
        "clinic_phone": clinic_phone(),
        "emergency_number": emergency_number(),
        "crisis_line": crisis_line(),
        "max_message_chars": str(max_message_chars()),
    }


def allowed_origins() -> list[str]:
    """Other sites allowed to use the chat (CORS, socket.io), from ALLOWED_ORIGINS.

    Comma-separated origins such as `https://www.example-clinic.org`; empty (the
    default) allows the server's own origin only.
    """
    raw = os.environ.get("ALLOWED_ORIGINS", "")
    return [origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip()]


def endpoint_defaults(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables endpoints.yml names, with their defaults where unset.

    `python -m bot run`, supervisord and a server started by hand all get the same: the
    action server on 127.0.0.1:ACTION_PORT, conversations in build/conversations.db.
    """
    environ = dict(os.environ if environ is None else environ)
    port = environ.get("ACTION_PORT", "").strip() or "5055"
    return {
        "ACTION_ENDPOINT_URL": environ.get("ACTION_ENDPOINT_URL", "").strip()
        or f"http://127.0.0.1:{port}/webhook",
        "CONVERSATIONS_DB": environ.get("CONVERSATIONS_DB", "").strip()
        or "build/conversations.db",
    }


def max_socket_bytes() -> int:
    """The largest socket.io packet accepted (a message far above MAX_MESSAGE_CHARS)."""
    return max(64 * 1024, 16 * max_message_chars())


def seconds(name: str, default: float) -> float:
    """A duration in seconds from the environment (the default if unset or not a number)."""
    try:
        return max(0.0, float(_env(name, str(default))))
    except ValueError:
        return default


def action_timeout() -> float:
    """Seconds the Rasa server waits for the action server before apologising."""
    try:
        return max(0.5, float(_env("ACTION_TIMEOUT", "4")))
    except ValueError:
        return 4.0


def clinic_phone_region() -> str:
    """Region for phone numbers typed without a country code (CLINIC_PHONE_REGION, US)."""
    region = _env("CLINIC_PHONE_REGION", "US").upper()
    return region if len(region) == 2 and region.isalpha() else "US"


def retention_days() -> float:
    """How long conversations and call-backs are kept (RETENTION_DAYS, default 30)."""
    try:
        days = float(_env("RETENTION_DAYS", "30"))
    except ValueError:
        return 30.0
    return days if days > 0 else 30.0


#: Secrets the production profile cannot run without (see docs/security.md).
PRODUCTION_SECRETS = ("REST_TOKEN", "SESSION_SECRET", "ACTION_TOKEN")
MIN_SECRET_CHARS = 16


def profile() -> str:
    """The deployment profile: "local" (default) or "production" (ASSISTANT_PROFILE)."""
    return _env("ASSISTANT_PROFILE", "local").lower()


def is_production() -> bool:
    """Whether the server runs in the production profile (secrets required)."""
    return profile() == "production"


def secret(name: str) -> str | None:
    """A secret from the environment, or from the file named by `<name>_FILE`.

    The file form keeps secrets out of the environment listing and out of git
    (e.g. a mounted secret file); surrounding whitespace is ignored.
    """
    value = os.environ.get(name, "").strip()
    if value:
        return value
    path = os.environ.get(f"{name}_FILE", "").strip()
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip() or None
        except OSError:
            return None
    return None


def production_problems(names: tuple[str, ...] = PRODUCTION_SECRETS) -> list[str]:
    """What stops the production profile from starting (empty: nothing, or not production)."""
    if not is_production():
        return []
    problems = []
    for name in names:
        value = secret(name)
        if value is None:
            problems.append(f"{name} is not set (environment or {name}_FILE)")
        elif len(value) < MIN_SECRET_CHARS:
            problems.append(f"{name} is shorter than {MIN_SECRET_CHARS} characters")
    return problems


def bearer_matches(authorization: str, expected: str) -> bool:
    """Whether an Authorization header is `Bearer <expected>` (compared in constant time)."""
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    )
