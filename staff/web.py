"""What every page of the staff console shares: templates, headers, sessions, dates.

The pages themselves are in staff.views (triage, transcripts, call-backs, login),
staff.insights and staff.documents. Every page but the login page needs a valid session
(`staff_only`); every POST needs the CSRF token of the session and, when the browser
names one, the server's own Origin. Pages are Jinja2 templates with autoescaping; the
console's CSP allows no inline script or style. Dates in queries are YYYY-MM-DD between
1970 and 2100 (`parse_day`); any other gets HTTP 400 with the reason (`refuse_bad_dates`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import date, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.orm import Session

from clinic import settings
from records.store import session_scope
from staff import auth

STAFF_DIR = Path(__file__).resolve().parent
SESSION_COOKIE = "staff_session"
LOGIN_CSRF_COOKIE = "staff_login_csrf"
DEFAULT_DAYS = 7


STAFF_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)

templates = Environment(
    loader=FileSystemLoader(str(STAFF_DIR / "templates")),
    autoescape=select_autoescape(default=True, default_for_string=True),
)

Handler = Callable[..., Coroutine[Any, Any, HTTPResponse]]


def refresh_seconds() -> int:
    """How often the lists reload themselves (STAFF_REFRESH_SECONDS, default 30)."""
    return max(1, settings.current().staff_refresh_seconds)


def local_time(timestamp: float | None) -> str:
    """A Unix time as the server's local date and time."""
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def conversation_url(conversation_id: str) -> str:
    """The console's page of a conversation, its id quoted whole.

    Conversation ids are whatever a channel was given (REST senders may hold spaces,
    `/`, `<` or non-ASCII text); every byte but letters, digits and `_.-~` is quoted,
    `/` too, and the routes taking an id unquote it (`unquote=True`).
    """
    quoted = quote(conversation_id, safe="")
    if quoted in {".", ".."}:  # a dot segment: browsers would resolve it away
        quoted = quoted.replace(".", "%2E")
    return "/staff/conversations/" + quoted


templates.filters["time"] = local_time
templates.filters["conversation_url"] = conversation_url


def cookie_secure(request: Request) -> bool:
    """Whether cookies get the Secure flag (STAFF_COOKIE_SECURE: auto, true or false).

    auto (the default): always, except for a browser talking plain http to a server on
    the same machine (`make run` on localhost), with no proxy in between.
    """
    setting = settings.current().staff_cookie_secure.strip().lower()
    if setting in {"1", "true", "yes"}:
        return True
    if setting in {"0", "false", "no"}:
        return False
    if request.scheme == "https" or request.headers.get("x-forwarded-proto") == "https":
        return True
    proxied = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    host = (request.host or "").rsplit(":", 1)[0].strip("[]").lower()
    local_host = host in {"localhost", "127.0.0.1", "::1"}
    local_peer = request.ip in {"127.0.0.1", "::1"}
    return not (local_host and local_peer and not proxied)


def set_cookie(
    request: Request, resp: HTTPResponse, name: str, value: str, max_age: int
) -> None:
    """Set one of the console's cookies: HttpOnly, SameSite=Strict, under /staff."""
    resp.cookies[name] = value
    cookie = resp.cookies[name]
    cookie["path"] = "/staff"
    cookie["httponly"] = True
    cookie["samesite"] = "Strict"
    cookie["max-age"] = max_age
    if cookie_secure(request):
        cookie["secure"] = True


def clear_cookie(request: Request, resp: HTTPResponse, name: str) -> None:
    """Make the browser forget one of the console's cookies."""
    set_cookie(request, resp, name, "", 0)


def page(name: str, status: int = 200, **values: Any) -> HTTPResponse:
    """A rendered template with the console's headers (no caching of patient data)."""
    html = templates.get_template(name).render(**values)
    return response.html(
        html,
        status=status,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": STAFF_CSP,
            # With the server-wide no-referrer, browsers send `Origin: null` on a form
            # POST; same-origin lets same_origin() see the real origin.
            "Referrer-Policy": "same-origin",
        },
    )


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from another site (or hides it)."""
    origin = request.headers.get("origin")
    if not origin:
        return True
    return urlsplit(origin).netloc.lower() == (request.host or "").lower()


T = TypeVar("T")


def _in_session(work: Callable[[Session], T]) -> T:
    with session_scope() as session:
        return work(session)


async def in_db(work: Callable[[Session], T]) -> T:
    """Run `work(session)` in one transaction on a worker thread.

    The server's event loop also answers patients: a listing must not hold it up.
    """
    return await asyncio.to_thread(_in_session, work)


async def logged_in(request: Request) -> auth.LoggedIn | None:
    """The request's valid staff session, if any."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return await in_db(lambda session: auth.current(session, token))


def staff_only(handler: Handler) -> Handler:
    """Send anyone without a session to the login page; check CSRF on POST."""

    @wraps(handler)
    async def wrapper(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
        user = await logged_in(request)
        if user is None:
            if request.method == "POST":
                return response.text("Please log in again.", status=403)
            query = f"?{request.query_string}" if request.query_string else ""
            target = quote(request.path + query)
            return response.redirect(f"/staff/login?next={target}")
        if request.method == "POST" and not (
            same_origin(request)
            and auth.tokens_match(user.csrf_token, request.form.get("csrf"))
        ):
            return response.text(
                "This form has expired or came from another site; reload the page.",
                status=403,
            )
        return await handler(request, user, *args, **kwargs)

    return wrapper


def safe_next(value: str | None) -> str:
    """Only a path inside the console (no open redirect)."""
    if value and value.startswith("/staff") and not value.startswith("//"):
        return value
    return "/staff"


#: The days a query may name: earlier or later ones are typing slips or probes (and
#: Unix times, which the events are kept by, overflow far outside them).
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2100, 12, 31)


class DateError(ValueError):
    """A date in the query that the console refuses (HTTP 400, the message says why)."""


def parse_day(value: str | None, name: str = "date") -> date | None:
    """A YYYY-MM-DD query value as a date; None when absent, DateError when unusable."""
    if not value or not value.strip():
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise DateError(
            f"The {name} date must be written YYYY-MM-DD, for example 2026-03-31."
        ) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise DateError(f"The {name} date must be between {FIRST_DAY} and {LAST_DAY}.")
    return day


def date_range(
    request: Request,
) -> tuple[date | None, date | None, float | None, float | None]:
    """(since, until) days from the query and their Unix times; until is inclusive."""
    since = parse_day(request.args.get("since"), "from")
    until = parse_day(request.args.get("until"), "until")
    if "since" not in request.args and "until" not in request.args:
        since = date.today() - timedelta(days=DEFAULT_DAYS - 1)
    start = datetime.combine(since, datetime.min.time()).timestamp() if since else None
    end = (
        datetime.combine(until + timedelta(days=1), datetime.min.time()).timestamp()
        if until
        else None
    )
    return since, until, start, end


def refuse_bad_dates(bp: Blueprint) -> None:
    """Answer a DateError from any of the blueprint's pages with HTTP 400 and its reason."""

    @bp.exception(DateError)
    async def bad_date(request: Request, error: DateError) -> HTTPResponse:
        return page(
            "message.html", 400, user=await logged_in(request), message=str(error)
        )
