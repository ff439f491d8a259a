"""The staff console's pages under /staff (installed by staff.install).

Every page but the login page needs a valid session; every POST needs the CSRF token of
the session (the login form: of its pre-login cookie) and, when the browser names one,
the server's own Origin. Pages are Jinja2 templates with autoescaping, styled by one
static file: the server's CSP allows no inline script or style.
"""

from __future__ import annotations

import asyncio
import csv
import io
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
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic import privacy
from knowledge.kinds import project_section_map
from knowledge.settings import PROJECT_ROOT as ROOT
from records import events, triage
from records.models import CALLBACK_STATUSES, CallbackRequest
from records.store import session_scope
from records.triage import EventRow
from staff import auth
from staff.addresses import client_address
from staff.ask import ask

STAFF_DIR = Path(__file__).resolve().parent
STATIC = {
    name: (STAFF_DIR / "static" / name, kind)
    for name, kind in [
        ("console.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
        ("console.js", "text/javascript; charset=utf-8"),
        ("insights.js", "text/javascript; charset=utf-8"),
    ]
}
# Chart.js from npm (web/package-lock.json), served with the console's own files.
STATIC["chart.umd.js"] = (
    ROOT / "web" / "node_modules" / "chart.js" / "dist" / "chart.umd.js",
    "text/javascript; charset=utf-8",
)
SESSION_COOKIE = "staff_session"
LOGIN_CSRF_COOKIE = "staff_login_csrf"
DEFAULT_DAYS = 7


def not_covered_categories() -> tuple[str, ...]:
    """The not-covered categories the filter offers: knowledge/sections.yml's, "other" last."""
    named = [k.category for k in project_section_map().kinds.values()]
    return (*dict.fromkeys(c for c in named if c != "other"), "other")


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
    return auth.int_setting("STAFF_REFRESH_SECONDS", 30)


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
    import os

    setting = os.environ.get("STAFF_COOKIE_SECURE", "auto").strip().lower()
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


def _set_cookie(
    request: Request, resp: HTTPResponse, name: str, value: str, max_age: int
) -> None:
    resp.cookies[name] = value
    cookie = resp.cookies[name]
    cookie["path"] = "/staff"
    cookie["httponly"] = True
    cookie["samesite"] = "Strict"
    cookie["max-age"] = max_age
    if cookie_secure(request):
        cookie["secure"] = True


def _clear_cookie(request: Request, resp: HTTPResponse, name: str) -> None:
    _set_cookie(request, resp, name, "", 0)


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


# --- CSV export ------------------------------------------------------------------


def redact(text: str) -> str:
    """The question with e-mail addresses and phone numbers replaced (as in the logs)."""
    return privacy.mask(text)


def csv_cell(value: object) -> str:
    """A cell no spreadsheet will run as a formula (= + - @, tab, CR prefixed by ')."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def csv_download(text: str, name: str) -> HTTPResponse:
    """A CSV file to download, not kept by the browser's cache."""
    return response.text(
        text,
        content_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def unanswered_csv(rows: list[tuple[str, triage.Exchange]]) -> str:
    """The export: one line per missed question."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "asked_at",
            "conversation",
            "question",
            "answer_type",
            "category",
            "intent",
            "confidence",
        ]
    )
    for sender, exchange in rows:
        writer.writerow(
            [
                csv_cell(local_time(exchange.timestamp)),
                csv_cell(sender),
                csv_cell(redact(exchange.text or "")),
                csv_cell(exchange.answer_type),
                csv_cell(exchange.category),
                csv_cell(exchange.intent),
                csv_cell(
                    f"{exchange.confidence:.2f}"
                    if exchange.confidence is not None
                    else ""
                ),
            ]
        )
    return buffer.getvalue()


# --- routes ----------------------------------------------------------------------


def refuse_bad_dates(bp: Blueprint) -> None:
    """Answer a DateError from any of the blueprint's pages with HTTP 400 and its reason."""

    @bp.exception(DateError)
    async def bad_date(request: Request, error: DateError) -> HTTPResponse:
        return page(
            "message.html", 400, user=await logged_in(request), message=str(error)
        )


def blueprint() -> Blueprint:
    """The console's routes."""
    bp = Blueprint("staff_console", url_prefix="/staff")
    refuse_bad_dates(bp)

    @bp.get("/static/<name:str>")
    async def static(request: Request, name: str) -> HTTPResponse:
        path, kind = STATIC.get(name, (None, ""))
        if path is None or not path.is_file():
            return response.text("not found", status=404)
        return response.raw(
            path.read_bytes(),
            content_type=kind,
            headers={"Cache-Control": "no-cache"},
        )

    @bp.get("/login")
    async def login_form(request: Request) -> HTTPResponse:
        if await logged_in(request):
            return response.redirect(safe_next(request.args.get("next")))
        return _login_page(request, None, 200)

    @bp.post("/login")
    async def login(request: Request) -> HTTPResponse:
        form = request.form
        if not (
            same_origin(request)
            and auth.tokens_match(
                request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")
            )
        ):
            return _login_page(request, "The form expired; please try again.", 403)
        name = (form.get("name") or "").strip()
        password = form.get("password") or ""
        keys = auth.throttle_keys(name, client_address(request))
        delay = await in_db(lambda session: auth.slowdown(session, keys))
        if delay:  # many failures on this name or from this address: slow, not shut
            await asyncio.sleep(delay)

        def attempt(session: Session) -> tuple[str | None, int]:
            wait = auth.locked_for(session, keys)
            if wait:
                return None, wait
            account = auth.verify_password(session, name, password)
            if account is None:
                auth.record_failure(session, keys)
                return None, 0
            auth.clear_failures(session, keys)
            token, _ = auth.start_session(session, account)
            return token, 0

        token, wait = await in_db(attempt)
        if wait:
            return _login_page(
                request, f"Too many failed attempts. Try again in {wait} seconds.", 429
            )
        if token is None:
            return _login_page(request, "Wrong name or password.", 401)
        resp = response.redirect(safe_next(form.get("next")), status=303)
        _set_cookie(
            request,
            resp,
            SESSION_COOKIE,
            token,
            int(auth.session_lifetime().total_seconds()),
        )
        _clear_cookie(request, resp, LOGIN_CSRF_COOKIE)
        return resp

    @bp.post("/logout")
    @staff_only
    async def logout(request: Request, user: auth.LoggedIn) -> HTTPResponse:
        token = request.cookies.get(SESSION_COOKIE)
        await in_db(lambda session: auth.end_session(session, token))
        resp = response.redirect("/staff/login", status=303)
        _clear_cookie(request, resp, SESSION_COOKIE)
        return resp

    @bp.get("/")
    @staff_only
    async def triage_list(request: Request, user: auth.LoggedIn) -> HTTPResponse:
        since, until, start, end = date_range(request)
        urgency = request.args.get("urgency") or None
        urgency = urgency if urgency in triage.URGENCIES else None
        category = (request.args.get("category") or "").strip()[:200] or None
        listed = await in_db(
            lambda session: events.list_triage(session, start, end, urgency, category)
        )
        return page(
            "triage.html",
            user=user,
            listed=listed,
            urgencies=triage.URGENCIES,
            categories=not_covered_categories(),
            urgency=urgency,
            category=category,
            since=since,
            until=until,
            refresh=refresh_seconds(),
        )

    @bp.get("/conversations/<conversation_id:str>", unquote=True)
    @staff_only
    async def transcript(
        request: Request, user: auth.LoggedIn, conversation_id: str
    ) -> HTTPResponse:
        wanted = conversation_id[:255]

        def load(session: Session) -> tuple[list[EventRow], list[CallbackRequest]]:
            requests = select(CallbackRequest).where(
                CallbackRequest.conversation_id == wanted
            )
            return (
                events.conversation(session, wanted),
                list(session.scalars(requests.order_by(CallbackRequest.created_at))),
            )

        def load_all(session: Session) -> tuple[Any, ...]:
            rows, callbacks = load(session)
            seen = events.acknowledgements(session, [wanted])
            return rows, callbacks, seen.get(wanted)

        rows, callbacks, acknowledged = await in_db(load_all)
        if not rows:
            return page("message.html", 404, user=user, message="No such conversation.")
        summary = triage.triage(conversation_id, rows, bool(callbacks))
        if acknowledged is not None:
            summary.acknowledged_by = acknowledged.staff_name
            summary.acknowledged_at = acknowledged.acknowledged_at
        return page(
            "conversation.html",
            user=user,
            summary=summary,
            exchanges=triage.exchanges(rows),
            callbacks=callbacks,
            statuses=CALLBACK_STATUSES,
        )

    @bp.get("/callbacks")
    @staff_only
    async def callbacks(request: Request, user: auth.LoggedIn) -> HTTPResponse:
        status = request.args.get("status") or None
        query = select(CallbackRequest).order_by(CallbackRequest.created_at.desc())
        if status in CALLBACK_STATUSES:
            query = query.where(CallbackRequest.status == status)
        rows = await in_db(lambda session: list(session.scalars(query.limit(500))))
        return page(
            "callbacks.html",
            user=user,
            rows=rows,
            shown_status=status,
            statuses=CALLBACK_STATUSES,
            refresh=refresh_seconds(),
        )

    @bp.post("/callbacks/<callback_id:int>/status")
    @staff_only
    async def callback_status(
        request: Request, user: auth.LoggedIn, callback_id: int
    ) -> HTTPResponse:
        status = request.form.get("status")
        if status not in CALLBACK_STATUSES:
            return page("message.html", 400, user=user, message="Unknown status.")

        def change(session: Session) -> bool:
            row = session.get(CallbackRequest, callback_id)
            if row is None:
                return False
            row.status = status
            return True

        if not await in_db(change):
            return page("message.html", 404, user=user, message="No such call-back.")
        back = safe_next(request.form.get("next") or "/staff/callbacks")
        return response.redirect(back, status=303)

    @bp.route("/ask", methods=["GET", "POST"])
    @staff_only
    async def ask_page(request: Request, user: auth.LoggedIn) -> HTTPResponse:
        result = None
        if request.method == "POST":
            question = request.form.get("question") or ""
            result = await ask(getattr(request.app.ctx, "agent", None), question)
        return page("ask.html", user=user, result=result)

    @bp.get("/export.csv")
    @staff_only
    async def export(request: Request, user: auth.LoggedIn) -> HTTPResponse:
        since, until, start, end = date_range(request)
        rows = await in_db(
            lambda session: events.unanswered_between(session, start, end)
        )
        name = f"unanswered-{since or 'start'}-{until or date.today()}.csv"
        return csv_download(unanswered_csv(rows), name)

    return bp


def _login_page(request: Request, error: str | None, status: int) -> HTTPResponse:
    token = auth.new_token()
    form = request.form if request.method == "POST" else None
    next_value = form.get("next") if form else request.args.get("next")
    resp = page(
        "login.html",
        status,
        error=error,
        csrf=token,
        next=safe_next(next_value),
        insecure_hint=cookie_secure(request)
        and request.scheme != "https"
        and request.headers.get("x-forwarded-proto") != "https",
    )
    _set_cookie(request, resp, LOGIN_CSRF_COOKIE, token, 3600)
    return resp
