"""The clinic's settings: one typed object, read from the environment.

`Settings` lists every setting the clinic's IT person may give (in `.env`, the
environment, or for secrets a file named by `<NAME>_FILE`), with its type, default and
meaning. `.env.example` is generated from it (`python -m bot settings`), and a test fails
when the file is stale. Both servers read it: the Rasa server (phone numbers in replies,
message limits) and the action server. The module is long because it lists every
setting with its meaning (about half of it), and the functions below it are the ones
the code reads them by; splitting either off would only move the readers away from
what they read.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import os
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SAYS = "What the assistant says"
PLACES = "Where things run"
STORES = "Where things are kept"
STAFF = (
    "The staff console at /staff (docs/staff-console.md); accounts: "
    "python -m bot staff add NAME"
)
SECURITY = (
    "Security (docs/security.md). Secrets only here (.env is git-ignored), in the "
    "environment,\nor in a file outside git named by NAME_FILE (e.g. "
    'REST_TOKEN_FILE=/run/secrets/rest).\nMake one: python -c "import secrets; '
    'print(secrets.token_urlsafe(32))"'
)
LIMITS = "Limits and patience"
SPEED = 'Speed (docs/benchmarks.md, "What made it faster")'
SEARCH = (
    "Matching questions to sections: coverage shares, evidence weights, BM25 scores "
    "(see docs/benchmarks.md)"
)
TOOLS = "Tools"
#: The order of the groups in .env.example.
GROUPS = (SAYS, PLACES, STORES, STAFF, SECURITY, LIMITS, SPEED, SEARCH, TOOLS)


def setting(
    name: str,
    default: Any,
    group: str,
    meaning: str,
    *,
    listed: bool = False,
    secret: bool = False,
) -> Any:
    """A field of Settings: its variable, default, group and meaning.

    `listed` settings are written out in .env.example (`NAME=default`); the others are
    shown commented out, with their meaning beside them.
    """
    return field(
        default=default,
        metadata={
            "env": name,
            "group": group,
            "meaning": meaning,
            "listed": listed,
            "secret": secret,
        },
    )


@dataclass(frozen=True)
class Settings:
    """Every setting of the assistant, typed, with its default (see .env.example)."""

    clinic_name: str = setting(
        "CLINIC_NAME",
        "our pain management clinic",
        SAYS,
        "the clinic's name",
        listed=True,
    )
    clinic_phone: str = setting(
        "CLINIC_PHONE", "(555) 010-4477", SAYS, "the front desk's number", listed=True
    )
    emergency_number: str = setting(
        "EMERGENCY_NUMBER", "911", SAYS, "the local emergency number", listed=True
    )
    crisis_line: str = setting(
        "CRISIS_LINE", "988", SAYS, "the suicide and crisis line", listed=True
    )
    clinic_phone_region: str = setting(
        "CLINIC_PHONE_REGION",
        "US",
        SAYS,
        "region of phone numbers typed without a country code (call-back form)",
        listed=True,
    )
    retention_days: float = setting(
        "RETENTION_DAYS",
        30.0,
        SAYS,
        "`python -m bot purge` removes conversations and call-backs older than this",
        listed=True,
    )
    rasa_port: int = setting("RASA_PORT", 5005, PLACES, "the Rasa server", listed=True)
    rasa_interface: str = setting(
        "RASA_INTERFACE",
        "127.0.0.1",
        PLACES,
        "its interface: this machine only; 0.0.0.0 to open it (REST then needs "
        "REST_TOKEN)",
        listed=True,
    )
    action_port: int = setting(
        "ACTION_PORT", 5055, PLACES, "the action server", listed=True
    )
    action_host: str = setting(
        "ACTION_HOST", "127.0.0.1", PLACES, "its interface", listed=True
    )
    action_endpoint_url: str = setting(
        "ACTION_ENDPOINT_URL",
        "",
        PLACES,
        "default http://127.0.0.1:ACTION_PORT/webhook",
    )
    knowledge_db_url: str = setting(
        "KNOWLEDGE_DB_URL",
        "",
        STORES,
        "the knowledge store; default a SQLite file in build/; PostgreSQL works too",
    )
    conversations_db: str = setting(
        "CONVERSATIONS_DB",
        "build/conversations.db",
        STORES,
        "conversations and call-backs (SQLite file; the scaled profile: PostgreSQL)",
    )
    conversations_db_url: str = setting(
        "CONVERSATIONS_DB_URL",
        "",
        STORES,
        "or their SQLAlchemy URL instead, e.g. postgresql+psycopg2://... (scaled profile)",
    )
    staff_uploads_dir: str = setting(
        "STAFF_UPLOADS_DIR",
        "",
        STORES,
        "leaflets uploaded on the console wait here; default build/uploads",
    )
    staff_cookie_secure: str = setting(
        "STAFF_COOKIE_SECURE",
        "auto",
        STAFF,
        "auto: Secure except plain http on localhost; true; false",
    )
    staff_session_idle_minutes: int = setting(
        "STAFF_SESSION_IDLE_MINUTES", 30, STAFF, "a session ends after this idle time"
    )
    staff_session_hours: int = setting(
        "STAFF_SESSION_HOURS", 12, STAFF, "and this long after login, used or not"
    )
    staff_login_free_tries: int = setting(
        "STAFF_LOGIN_FREE_TRIES",
        5,
        STAFF,
        "failed logins of one name from one address before that pair waits",
    )
    trusted_proxies: str = setting(
        "TRUSTED_PROXIES",
        "",
        STAFF,
        "addresses or networks of reverse proxies whose X-Forwarded-For is believed "
        "(e.g. 127.0.0.1)",
    )
    staff_refresh_seconds: int = setting(
        "STAFF_REFRESH_SECONDS", 30, STAFF, "how often the lists reload themselves"
    )
    assistant_profile: str = setting(
        "ASSISTANT_PROFILE",
        "local",
        SECURITY,
        "production: REST needs REST_TOKEN; the servers refuse to start without "
        "REST_TOKEN, SESSION_SECRET, ACTION_TOKEN, >=16 chars",
    )
    rest_token: str = setting(
        "REST_TOKEN",
        "",
        SECURITY,
        'production: callers send "Authorization: Bearer <token>"',
        secret=True,
    )
    session_secret: str = setting(
        "SESSION_SECRET",
        "",
        SECURITY,
        "signs conversation ids; default build/secrets/session.key",
        secret=True,
    )
    action_token: str = setting(
        "ACTION_TOKEN",
        "",
        SECURITY,
        "Rasa server -> action server; `make run` makes one per run",
        secret=True,
    )
    rasa_enable_api: str = setting(
        "RASA_ENABLE_API",
        "false",
        SECURITY,
        "true needs RASA_API_TOKEN or RASA_JWT_SECRET; no default",
    )
    rasa_api_token: str = setting(
        "RASA_API_TOKEN", "", SECURITY, "Rasa's HTTP API token", secret=True
    )
    rasa_jwt_secret: str = setting(
        "RASA_JWT_SECRET", "", SECURITY, "or its JWT secret", secret=True
    )
    allowed_origins: str = setting(
        "ALLOWED_ORIGINS",
        "",
        SECURITY,
        "comma-separated sites that may embed or call the chat",
    )
    max_message_chars: int = setting(
        "MAX_MESSAGE_CHARS",
        2000,
        LIMITS,
        "longer messages get a friendly note and are not processed",
    )
    action_timeout: float = setting(
        "ACTION_TIMEOUT",
        4.0,
        LIMITS,
        "seconds before the apology when the action server is slow",
    )
    tracker_db_retry_seconds: float = setting(
        "TRACKER_DB_RETRY_SECONDS",
        5.0,
        LIMITS,
        "the conversations database is retried this long, then the patient is told "
        "to try again; never kept in memory instead",
    )
    conversations_db_connect_timeout: float = setting(
        "CONVERSATIONS_DB_CONNECT_TIMEOUT",
        5.0,
        LIMITS,
        "seconds before connecting to PostgreSQL gives up; then retried as above",
    )
    log_level: str = setting(
        "LOG_LEVEL",
        "INFO",
        LIMITS,
        "DEBUG logs messages, with phone numbers and e-mails masked",
    )
    messages_in_progress: int = setting(
        "MESSAGES_IN_PROGRESS",
        3,
        SPEED,
        "messages one server works on at once; the rest wait in turn",
    )
    sanic_workers: int = setting(
        "SANIC_WORKERS",
        1,
        SPEED,
        "2+: one model per worker, sharing their locks in files",
    )
    sanic_backlog: int = setting(
        "SANIC_BACKLOG",
        100,
        SPEED,
        "connections the Rasa server's socket queues before refusing",
    )
    lock_dir: str = setting(
        "LOCK_DIR",
        "build/locks",
        SPEED,
        "the locks the workers share when SANIC_WORKERS is 2+",
    )
    speed_measures: str = setting(
        "SPEED_MEASURES",
        "all",
        SPEED,
        "or a comma list of the speed measures, or none: for A/B runs",
    )
    search_answer_score: float = setting(
        "SEARCH_ANSWER_SCORE", 4.0, SEARCH, "a clear match (BM25) in a mapped document"
    )
    search_answer_margin: float = setting(
        "SEARCH_ANSWER_MARGIN", 1.5, SEARCH, "clearly ahead of the next (BM25 ratio)"
    )
    search_kind_score: float = setting(
        "SEARCH_KIND_SCORE",
        2.5,
        SEARCH,
        "among the sections of the kind asked for, enough to pick one (BM25)",
    )
    search_min_coverage: float = setting(
        "SEARCH_MIN_COVERAGE",
        0.3,
        SEARCH,
        "share of a question's content a section of an unmapped document must hold",
    )
    search_evidence_margin: float = setting(
        "SEARCH_EVIDENCE_MARGIN",
        0.08,
        SEARCH,
        "how far the best section's evidence must stand ahead of its document's next",
    )
    search_heading_weight: float = setting(
        "SEARCH_HEADING_WEIGHT",
        0.3,
        SEARCH,
        "evidence for the share of the question a section's headings hold",
    )
    search_kind_weight: float = setting(
        "SEARCH_KIND_WEIGHT",
        0.1,
        SEARCH,
        "evidence for a section known to answer the kind of question asked",
    )
    search_bm25_weight: float = setting(
        "SEARCH_BM25_WEIGHT",
        0.1,
        SEARCH,
        "evidence for a section's BM25 score, as a share of the best section's",
    )
    # dev set (bench.dev_answers, three dev leaflets): 0 -> 0.5 took right section
    # 0.603 -> 0.627 and honest 0.632 -> 0.645; 0.3 and 1.0 did no better
    search_off_topic_weight: float = setting(
        "SEARCH_OFF_TOPIC_WEIGHT",
        0.5,
        SEARCH,
        "evidence taken off a section of a document about another injection than asked",
    )
    search_clarify_score: float = setting(
        "SEARCH_CLARIFY_SCORE", 1.5, SEARCH, "worth offering in a did-you-mean"
    )
    search_topic_bonus: float = setting(
        "SEARCH_TOPIC_BONUS",
        2.0,
        SEARCH,
        "added for a section about the condition or body area asked about",
    )
    search_kind_bonus: float = setting(
        "SEARCH_KIND_BONUS",
        1.0,
        SEARCH,
        "added for a section known to answer the kind of question asked",
    )
    models_dir: str = setting(
        "CLINIC_MODELS_DIR",
        "models",
        TOOLS,
        "where the trained model is kept, relative to the project",
    )
    python: str = setting(
        "PYTHON",
        "",
        TOOLS,
        "a Python 3.10 interpreter, if the Makefile cannot find one itself",
    )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings in the environment; a value that is not of its type is ignored."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            name = spec.metadata["env"]
            raw = (
                _secret_from(environ, name)
                if spec.metadata["secret"]
                else environ.get(name, "").strip()
            )
            if not raw:
                continue
            try:
                values[spec.name] = _TYPES[str(spec.type)](raw)
            except ValueError:
                continue  # a mistyped number: the default
        return cls(**values)


_TYPES: dict[str, Any] = {"str": str, "int": int, "float": float}


def current() -> Settings:
    """The settings as the environment gives them now."""
    return Settings.from_environ()


#: Said after a group's settings in .env.example.
GROUP_NOTES = {
    PLACES: "The scaled profile (several servers, PostgreSQL, Redis) has its own "
    "settings, e.g. the Redis timeouts: deploy/scaled/scaled.env.example",
}
_WIDTH = 92


def env_example() -> str:
    """The text of .env.example, generated from Settings."""
    lines = [
        "# Generated from clinic/settings.py (python -m bot settings > .env.example); edit",
        "# the Settings class, not this file. Copy to .env (git ignores it) and edit;",
        "# `make run`, `make shell` and `make test` read it. Plain KEY=value lines, no",
        "# quotes (make reads this file). Every setting is optional; the defaults are shown.",
    ]
    specs = dataclasses.fields(Settings)
    for group in GROUPS:
        lines += ["", *(f"# {line}" for line in group.split("\n"))]
        for spec in (s for s in specs if s.metadata["group"] == group):
            name, meaning = spec.metadata["env"], spec.metadata["meaning"]
            value = _written(spec.default)
            if spec.metadata["listed"]:
                lines += [f"# {meaning[0].upper()}{meaning[1:]}", f"{name}={value}"]
                continue
            entry = f"# {name}={value}"
            indent = max(30, len(entry) + 1)
            wrapped = textwrap.wrap(f"({meaning})", _WIDTH - indent) or [""]
            lines.append(f"{entry:{indent}}{wrapped[0]}")
            lines += [f"#{' ' * (indent - 1)}{rest}" for rest in wrapped[1:]]
        if group in GROUP_NOTES:
            lines += [f"# {line}" for line in textwrap.wrap(GROUP_NOTES[group], 90)]
    return "\n".join(lines) + "\n"


def _written(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def clinic_name() -> str:
    """The clinic's name as the assistant says it."""
    return current().clinic_name


def clinic_phone() -> str:
    """The front desk's phone number, given for call backs and questions."""
    return current().clinic_phone


def emergency_number() -> str:
    """The local emergency number."""
    return current().emergency_number


def crisis_line() -> str:
    """The suicide and crisis line."""
    return current().crisis_line


def max_message_chars() -> int:
    """Messages longer than this get a friendly note and are not processed."""
    return max(1, current().max_message_chars)


def input_problem(text: str) -> str | None:
    """Why a message cannot be answered as it is: "empty", "too_long", or None."""
    if not text.strip():
        return "empty"
    if len(text) > max_message_chars():
        return "too_long"
    return None


def template_values() -> dict[str, str]:
    """The values every domain response may use, e.g. `{clinic_phone}`."""
    values = current()
    return {
        "clinic_name": values.clinic_name,
        "clinic_phone": values.clinic_phone,
        "emergency_number": values.emergency_number,
        "crisis_line": values.crisis_line,
        "max_message_chars": str(max(1, values.max_message_chars)),
    }


def allowed_origins() -> list[str]:
    """Other sites allowed to use the chat (CORS, socket.io), from ALLOWED_ORIGINS.

    Comma-separated origins such as `https://www.example-clinic.org`; empty (the
    default) allows the server's own origin only.
    """
    raw = current().allowed_origins
    return [origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip()]


def trusted_proxies() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The reverse proxies whose forwarded client address is believed (TRUSTED_PROXIES).

    Comma-separated addresses or networks (`127.0.0.1`, `10.0.0.0/8`); entries that are
    neither are left out. Empty (the default): no proxy, the peer is the client.
    """
    networks = []
    for entry in current().trusted_proxies.split(","):
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            continue
    return networks


def endpoint_defaults(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables endpoints.yml names, with their defaults where unset.

    `python -m bot run`, supervisord and a server started by hand all get the same: the
    action server on 127.0.0.1:ACTION_PORT, conversations in build/conversations.db.
    """
    values = Settings.from_environ(os.environ if environ is None else environ)
    return {
        "ACTION_ENDPOINT_URL": values.action_endpoint_url
        or f"http://127.0.0.1:{values.action_port}/webhook",
        "CONVERSATIONS_DB": values.conversations_db,
    }


def max_socket_bytes() -> int:
    """The largest socket.io packet accepted (a message far above MAX_MESSAGE_CHARS)."""
    return max(64 * 1024, 16 * max_message_chars())


def seconds(name: str, default: float) -> float:
    """A duration in seconds from the environment (the default if unset or not a number)."""
    try:
        return max(0.0, float(os.environ.get(name, "").strip() or default))
    except ValueError:
        return default


def action_timeout() -> float:
    """Seconds the Rasa server waits for the action server before apologising."""
    return max(0.5, current().action_timeout)


def clinic_phone_region() -> str:
    """Region for phone numbers typed without a country code (CLINIC_PHONE_REGION, US)."""
    region = current().clinic_phone_region.upper()
    return region if len(region) == 2 and region.isalpha() else "US"


def retention_days() -> float:
    """How long conversations and call-backs are kept (RETENTION_DAYS, default 30)."""
    days = current().retention_days
    return days if days > 0 else 30.0


#: Secrets the production profile cannot run without (see docs/security.md).
PRODUCTION_SECRETS = ("REST_TOKEN", "SESSION_SECRET", "ACTION_TOKEN")
MIN_SECRET_CHARS = 16


def profile() -> str:
    """The deployment profile: "local" (default) or "production" (ASSISTANT_PROFILE)."""
    return current().assistant_profile.lower()


def is_production() -> bool:
    """Whether the server runs in the production profile (secrets required)."""
    return profile() == "production"


def secret(name: str) -> str | None:
    """A secret from the environment, or from the file named by `<name>_FILE`.

    The file form keeps secrets out of the environment listing and out of git
    (e.g. a mounted secret file); surrounding whitespace is ignored.
    """
    return _secret_from(os.environ, name) or None


def _secret_from(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if value:
        return value
    path = environ.get(f"{name}_FILE", "").strip()
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError:
            return ""
    return ""


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
