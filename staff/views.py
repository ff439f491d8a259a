"""The staff console's pages under /staff (installed by staff.install).

Login, triage, transcripts, call-backs, "ask the assistant", the export, static files.

What the pages share (templates, sessions, the staff-only guard, dates) is staff.web;
the CSV downloads are staff.export. The login form's POST needs the CSRF token of its
pre-login cookie; the lock-out policy is staff.auth's.
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge.kinds import project_section_map
from knowledge.settings import PROJECT_ROOT as ROOT
from records import events, triage
from records.models import CALLBACK_STATUSES, CallbackRequest
from records.triage import EventRow
from staff import auth
from staff.addresses import client_address
from staff.ask import ask
from staff.export import csv_download, unanswered_csv
from staff.web import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    clear_cookie,
    cookie_secure,
    date_range,
    in_db,
    logged_in,
    page,
    refresh_seconds,
    refuse_bad_dates,
    safe_next,
    same_origin,
    set_cookie,
    staff_only,
)

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


def not_covered_categories() -> tuple[str, ...]:
    """The not-covered categories the filter offers: knowledge/sections.yml's, "other" last."""
    named = [k.category for k in project_section_map().kinds.values()]
    return (*dict.fromkeys(c for c in named if c != "other"), "other")


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
        set_cookie(
            request,
            resp,
            SESSION_COOKIE,
            token,
            int(auth.session_lifetime().total_seconds()),
        )
        clear_cookie(request, resp, LOGIN_CSRF_COOKIE)
        return resp

    @bp.post("/logout")
    @staff_only
    async def logout(request: Request, user: auth.LoggedIn) -> HTTPResponse:
        token = request.cookies.get(SESSION_COOKIE)
        await in_db(lambda session: auth.end_session(session, token))
        resp = response.redirect("/staff/login", status=303)
        clear_cookie(request, resp, SESSION_COOKIE)
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
    set_cookie(request, resp, LOGIN_CSRF_COOKIE, token, 3600)
    return resp
