"""The console's insights: figures and charts, question clusters, emergency acknowledgements.

- `/staff/insights?since=&until=`: conversations and messages per day, the shares
  answered / not covered / emergency / call-back, answers by section and document,
  not-covered categories, feedback, reply times. Read from the summary tables
  (records.insights), drawn by Chart.js (web/node_modules, served from here) from
  the tables beside each chart, which screen readers read.
- `/staff/insights/questions` and `.csv`: the range's unanswered questions in clusters.
- `/staff/emergencies` and `POST /staff/conversations/<id>/acknowledge`.

Same login, CSRF and headers as the rest of the console (staff.web).
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.orm import Session

from records import clusters, events, insights, triage
from records.models import ConversationSummary
from staff import auth
from staff.export import csv_cell, csv_download
from staff.web import (
    DEFAULT_DAYS,
    in_db,
    page,
    parse_day,
    refuse_bad_dates,
    safe_next,
    staff_only,
    templates,
)

#: The longest range one page covers (a year and a day: a leap year's range).
MAX_DAYS = 367
EMERGENCY_DAYS = 30


def day_range(request: Request) -> tuple[date, date]:
    """(since, until) from the query, both included; the last 7 days by default."""
    until = parse_day(request.args.get("until"), "until") or date.today()
    since = parse_day(request.args.get("since"), "from") or until - timedelta(
        days=DEFAULT_DAYS - 1
    )
    if since > until:
        since, until = until, since
    if (until - since).days >= MAX_DAYS:
        since = until - timedelta(days=MAX_DAYS - 1)
    return since, until


def _epoch(day: date) -> float:
    return datetime.combine(day, datetime.min.time()).timestamp()


def percent(value: float | None) -> str:
    """A share as a whole percentage, "none" when there is nothing to share."""
    return "none" if value is None else f"{100 * value:.0f}%"


def milliseconds(value: float | None) -> str:
    """A reply time in ms or s."""
    if value is None:
        return "none"
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.1f} s"


def utc_time(value: datetime | None) -> str:
    """A naive UTC datetime (as the tables keep them) in the server's local time."""
    if value is None:
        return ""
    local = value.replace(tzinfo=timezone.utc).astimezone()
    return local.strftime("%Y-%m-%d %H:%M")


templates.filters["percent"] = percent
templates.filters["ms"] = milliseconds
templates.filters["utc_time"] = utc_time


def blueprint() -> Blueprint:
    """The insights pages' routes."""
    bp = Blueprint("staff_insights", url_prefix="/staff")
    refuse_bad_dates(bp)

    @bp.get("/insights")
    @staff_only
    async def insights_page(request: Request, user: auth.LoggedIn) -> HTTPResponse:
        since, until = day_range(request)
        started = time.perf_counter()
        found = await in_db(lambda s: insights.insights(s, since, until))
        return page(
            "insights.html",
            user=user,
            since=since,
            until=until,
            found=found,
            query_ms=(time.perf_counter() - started) * 1000,
        )

    @bp.get("/insights/questions")
    @staff_only
    async def questions_page(request: Request, user: auth.LoggedIn) -> HTTPResponse:
        since, until = day_range(request)
        grouped = await in_db(lambda s: _clusters(s, since, until))
        return page(
            "questions.html",
            user=user,
            since=since,
            until=until,
            clusters=grouped,
            total=sum(c.size for c in grouped),
        )

    @bp.get("/insights/questions.csv")
    @staff_only
    async def questions_csv(request: Request, user: auth.LoggedIn) -> HTTPResponse:
        since, until = day_range(request)
        grouped = await in_db(lambda s: _clusters(s, since, until))
        return csv_download(
            clusters.clusters_csv(grouped, csv_cell),
            f"question-clusters-{since}-{until}.csv",
        )

    @bp.get("/emergencies")
    @staff_only
    async def emergencies_page(request: Request, user: auth.LoggedIn) -> HTTPResponse:
        since = time.time() - EMERGENCY_DAYS * 86400
        listed = await in_db(lambda s: insights.emergencies(s, since))
        return page(
            "emergencies.html",
            user=user,
            listed=listed,
            days=EMERGENCY_DAYS,
            unacknowledged=sum(e.acknowledged_by is None for e in listed),
        )

    @bp.post("/conversations/<conversation_id:str>/acknowledge", unquote=True)
    @staff_only
    async def acknowledge(
        request: Request, user: auth.LoggedIn, conversation_id: str
    ) -> HTTPResponse:
        wanted = conversation_id[:255]

        def work(session: Session) -> bool:
            summary = session.get(ConversationSummary, wanted)
            if summary is not None:
                emergency = bool(summary.emergency)
            else:  # a conversation from before the summaries: its events say
                rows = events.conversation(session, wanted)
                emergency = triage.triage(wanted, rows).urgency == "emergency"
            if emergency:
                insights.acknowledge(session, wanted, user.name)
            return emergency

        if not await in_db(work):
            return page(
                "message.html",
                404,
                user=user,
                message="No such emergency conversation.",
            )
        return response.redirect(
            safe_next(request.form.get("next") or "/staff/emergencies"), status=303
        )

    return bp


def _clusters(session: Session, since: date, until: date) -> list[clusters.Cluster]:
    start, end = _epoch(since), _epoch(until + timedelta(days=1))
    return clusters.cluster(clusters.missed_questions(session, start, end))
