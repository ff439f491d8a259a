"""What the clinic learns from its conversations, read from the summary tables.

`insights()` answers the staff console's /staff/insights for a date range with three
indexed queries on the tables records.summaries keeps (the day counters by their
primary key, the conversations by `started_at`), never reading Rasa's events; so a year
of conversations costs no more than a week's. `emergencies()` and `acknowledge()` are
the emergency acknowledgements.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from records.models import (
    ConversationSummary,
    DailyCount,
    EmergencyAcknowledgement,
)
from records.summaries import KEY_SEPARATOR, bucket_milliseconds

SLOWEST_LISTED = 5
TOP_LISTED = 15


@dataclass
class Day:
    """One day of the range."""

    day: str
    conversations: int = 0
    messages: int = 0


@dataclass
class Slow:
    """A conversation with one of the slowest replies."""

    conversation_id: str
    reply_ms: float
    started_at: float


@dataclass
class Insights:
    """The figures of a date range."""

    days: list[Day]
    conversations: int
    #: Shares of the range's conversations (0..1): answered, not_covered, emergency,
    #: callback, and how many conversations each is.
    shares: dict[str, float]
    share_counts: dict[str, int]
    answers_by_type: dict[str, int]
    #: (document, number, title, answers), most answered first.
    sections: list[tuple[str, str, str, int]]
    documents: list[tuple[str, int]]
    categories: list[tuple[str, int]]
    helpful: int
    unhelpful: int
    #: Feedback given per knowledge answer (0..1), None without knowledge answers.
    feedback_rate: float | None
    replies: int
    median_reply_ms: float | None
    p95_reply_ms: float | None
    slowest_reply_ms: float | None
    slowest: list[Slow] = field(default_factory=list)


SHARES = ("answered", "not_covered", "emergency", "callback")


def days_between(since: date, until: date) -> list[str]:
    """Every day from `since` to `until`, both included."""
    count = (until - since).days + 1
    return [(since + timedelta(days=n)).isoformat() for n in range(max(count, 0))]


def _percentile(buckets: Counter[int], share: float) -> float | None:
    total = sum(buckets.values())
    if not total:
        return None
    wanted = share * total
    seen = 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen >= wanted:
            return bucket_milliseconds(bucket)
    return bucket_milliseconds(max(buckets))


def _start(day: date) -> float:
    return datetime.combine(day, datetime.min.time()).timestamp()


def insights(session: Session, since: date, until: date) -> Insights:
    """The insights of the days `since` to `until` (both included, local dates)."""
    day_names = days_between(since, until)
    days = {name: Day(name) for name in day_names}
    in_days = (DailyCount.day >= since.isoformat()) & (
        DailyCount.day <= until.isoformat()
    )
    per_day = session.execute(
        select(DailyCount.day, DailyCount.metric, func.sum(DailyCount.count))
        .where(in_days)
        .where(DailyCount.metric.in_(["conversations", "messages"]))
        .group_by(DailyCount.day, DailyCount.metric)
    )
    for day, metric, count in per_day:
        if day in days:
            setattr(days[day], metric, int(count))
    counters: dict[str, Counter[str]] = {}
    peak = 0.0
    totals = session.execute(
        select(
            DailyCount.metric,
            DailyCount.key,
            func.sum(DailyCount.count),
            func.max(DailyCount.peak),
        )
        .where(in_days)
        .where(DailyCount.metric.not_in(["conversations", "messages"]))
        .group_by(DailyCount.metric, DailyCount.key)
    )
    for metric, key, count, row_peak in totals:
        if metric == "reply_peak":
            peak = max(peak, row_peak or 0.0)
        else:
            counters.setdefault(metric, Counter())[key] += int(count or 0)
    conversations = sum(d.conversations for d in days.values())
    flagged = counters.get("conversations_with", Counter())
    share_counts = {name: flagged.get(name, 0) for name in SHARES}
    start, end = _start(since), _start(until + timedelta(days=1))
    in_range = (ConversationSummary.started_at >= start) & (
        ConversationSummary.started_at < end
    )
    slowest = [
        Slow(row.conversation_id, float(row.slowest_reply_ms), float(row.started_at))
        for row in session.execute(
            select(
                ConversationSummary.conversation_id,
                ConversationSummary.slowest_reply_ms,
                ConversationSummary.started_at,
            )
            .where(in_range)
            .where(ConversationSummary.slowest_reply_ms.is_not(None))
            .order_by(ConversationSummary.slowest_reply_ms.desc())
            .limit(SLOWEST_LISTED)
        )
    ]
    answers = counters.get("answer", Counter())
    feedback = counters.get("feedback", Counter())
    buckets = Counter(
        {int(k): v for k, v in counters.get("reply_bucket", Counter()).items()}
    )
    knowledge = answers.get("knowledge", 0)
    given = feedback.get("helpful", 0) + feedback.get("unhelpful", 0)
    sections = []
    for key, count in counters.get("section", Counter()).most_common(TOP_LISTED):
        document, number, title = ([*key.split(KEY_SEPARATOR), "", "", ""])[:3]
        sections.append((document, number, title, count))
    return Insights(
        days=[days[name] for name in day_names],
        conversations=conversations,
        shares={
            name: (count / conversations if conversations else 0.0)
            for name, count in share_counts.items()
        },
        share_counts=share_counts,
        answers_by_type=dict(answers.most_common()),
        sections=sections,
        documents=counters.get("document", Counter()).most_common(TOP_LISTED),
        categories=counters.get("category", Counter()).most_common(),
        helpful=feedback.get("helpful", 0),
        unhelpful=feedback.get("unhelpful", 0),
        feedback_rate=given / knowledge if knowledge else None,
        replies=sum(buckets.values()),
        median_reply_ms=_percentile(buckets, 0.5),
        p95_reply_ms=_percentile(buckets, 0.95),
        slowest_reply_ms=peak or None,
        slowest=slowest,
    )


@dataclass
class Emergency:
    """An emergency conversation and its acknowledgement, if any."""

    conversation_id: str
    emergency_at: float
    last_at: float
    acknowledged_by: str | None
    acknowledged_at: datetime | None


def emergencies(
    session: Session, since: float | None = None, limit: int = 200
) -> list[Emergency]:
    """Emergency conversations, the unacknowledged first, then the most recent first."""
    acknowledged = EmergencyAcknowledgement.conversation_id.is_not(None)
    query = (
        select(
            ConversationSummary.conversation_id,
            ConversationSummary.emergency_at,
            ConversationSummary.last_at,
            EmergencyAcknowledgement.staff_name,
            EmergencyAcknowledgement.acknowledged_at,
        )
        .outerjoin(
            EmergencyAcknowledgement,
            EmergencyAcknowledgement.conversation_id
            == ConversationSummary.conversation_id,
        )
        .where(ConversationSummary.emergency.is_(True))
        .order_by(
            case((acknowledged, 1), else_=0), ConversationSummary.emergency_at.desc()
        )
        .limit(limit)
    )
    if since is not None:
        query = query.where(ConversationSummary.emergency_at >= since)
    return [Emergency(*row) for row in session.execute(query)]


def acknowledge(
    session: Session, conversation_id: str, staff_name: str
) -> EmergencyAcknowledgement:
    """Record that `staff_name` has seen the emergency; the first acknowledgement stays."""
    row = session.get(EmergencyAcknowledgement, conversation_id)
    if row is None:
        row = EmergencyAcknowledgement(
            conversation_id=conversation_id,
            staff_name=staff_name,
            acknowledged_at=datetime.utcnow(),
        )
        session.add(row)
    return row
