"""Summary tables the records layer keeps as turns are stored, for the insights page.

The tracker store (bot.conversation_store.ResilientSQLTrackerStore) hands each turn's new
events to `record_events` in the transaction that stores them, so the figures can never
drift from the conversations, and the insights page reads a few hundred summary rows
instead of every event of a year:

- `conversation_summaries`: one row per conversation (counts, flags, the slowest reply);
- `insight_daily_counts`: counters per day and key (answers by type, section, document,
  not-covered category, feedback, reply-time buckets), bumped with one upsert each;
- `missed_questions`: the questions the guide did not answer, masked, for the clusters.

What counts as answered, not covered, missed or an emergency is the triage's definition
(records.triage); `turn_delta` is a pure function of the events, `record_events`
writes what it found.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from clinic import privacy
from records import triage
from records.models import ConversationSummary, DailyCount, MissedQuestion

logger = logging.getLogger(__name__)

#: Reply times go into buckets growing by 5 %: the median is read back within 2.5 %.
BUCKET_GROWTH = 1.05
FEEDBACK_SLOT = "answer_feedback"
OUTCOME_SLOT = "answer_outcome"
FEEDBACK_VALUES = ("helpful", "unhelpful")
#: Separates a section's document, number and title in its counter key.
KEY_SEPARATOR = "\t"
MAX_QUESTION_CHARS = 1000


def day_of(timestamp: float) -> str:
    """The server's local date of a Unix time, as YYYY-MM-DD (the console's days)."""
    return datetime.fromtimestamp(timestamp).date().isoformat()


def reply_bucket(milliseconds: float) -> int:
    """The histogram bucket of a reply time."""
    return round(math.log(max(milliseconds, 1.0)) / math.log(BUCKET_GROWTH))


def bucket_milliseconds(bucket: int) -> float:
    """A bucket's typical reply time (the inverse of `reply_bucket`)."""
    return float(BUCKET_GROWTH**bucket)


def section_key(section: Mapping[str, Any]) -> str:
    """A cited section as one counter key: document, number and title."""
    return KEY_SEPARATOR.join(
        str(section.get(part) or "") for part in ("document", "number", "title")
    )


@dataclass
class Delta:
    """What one turn's events change in the summaries."""

    first_at: float | None = None
    last_at: float | None = None
    messages: int = 0
    patient_messages: int = 0
    answered: int = 0
    not_covered: int = 0
    helpful: int = 0
    unhelpful: int = 0
    emergency_at: float | None = None
    callback: bool = False
    slowest_reply_ms: float | None = None
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    peaks: dict[tuple[str, str, str], float] = field(default_factory=dict)
    #: In order: ("missed", question fields), ("clarify", fields), ("resolve", None)
    #: when an answer settles a pending "did you mean", ("settle", None) otherwise.
    questions: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)


def _last_user(events: Sequence[Mapping[str, Any]], before: int) -> Mapping[str, Any]:
    for event in reversed(events[:before]):
        if event.get("event") == "user":
            return event
    return {}


def _outcome_since_user(events: Sequence[Mapping[str, Any]], before: int) -> Any:
    for event in reversed(events[:before]):
        if event.get("event") == "user":
            return None
        if event.get("event") == "slot" and event.get("name") == OUTCOME_SLOT:
            return event.get("value")
    return None


def turn_delta(events: Sequence[Mapping[str, Any]], start: int) -> Delta:
    """What `events[start:]` (one turn's new events, as dicts) add to the summaries.

    The earlier events give the context: the patient message a reply answers.
    """
    delta = Delta()
    for index in range(start, len(events)):
        event = events[index]
        kind = event.get("event")
        stamp = event.get("timestamp")
        if not isinstance(stamp, int | float):
            continue
        delta.first_at = stamp if delta.first_at is None else delta.first_at
        delta.last_at = stamp
        day = day_of(stamp)
        if kind == "user":
            delta.messages += 1
            delta.patient_messages += 1
            delta.counts[(day, "messages", "")] += 1
            delta.counts[(day, "patient_messages", "")] += 1
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            if intent in triage.EMERGENCY_INTENTS and delta.emergency_at is None:
                delta.emergency_at = stamp
        elif kind == "bot":
            delta.messages += 1
            delta.counts[(day, "messages", "")] += 1
            _reply(delta, events, index, day, stamp)
        elif kind == "slot" and event.get("name") == FEEDBACK_SLOT:
            value = event.get("value")
            if value in FEEDBACK_VALUES:
                delta.counts[(day, "feedback", str(value))] += 1
                delta.helpful += value == "helpful"
                delta.unhelpful += value == "unhelpful"
        elif kind == "slot" and event.get("name") == triage.CALLBACK_OUTCOME:
            delta.callback = delta.callback or event.get("value") == "requested"
    return delta


def _reply(
    delta: Delta,
    events: Sequence[Mapping[str, Any]],
    index: int,
    day: str,
    stamp: float,
) -> None:
    """Count one assistant reply that carries the reply contract."""
    answer = triage.bot_answer(events[index])
    kind = answer.get("type")
    if not kind:
        return
    delta.counts[(day, "answer", str(kind))] += 1
    asked = _last_user(events, index)
    asked_at = asked.get("timestamp")
    if isinstance(asked_at, int | float):
        milliseconds = max(0.0, (stamp - asked_at) * 1000.0)
        delta.counts[(day, "reply_bucket", str(reply_bucket(milliseconds)))] += 1
        peak_key = (day, "reply_peak", "")
        delta.peaks[peak_key] = max(delta.peaks.get(peak_key, 0.0), milliseconds)
        delta.slowest_reply_ms = max(delta.slowest_reply_ms or 0.0, milliseconds)
    question = {
        "asked_at": asked_at if isinstance(asked_at, int | float) else stamp,
        "text": privacy.mask(str(asked.get("text") or ""))[:MAX_QUESTION_CHARS],
        "answer_type": kind,
        "category": answer.get("category"),
        "intent": ((asked.get("parse_data") or {}).get("intent") or {}).get("name"),
    }
    if kind in triage.RESOLVING_TYPES:
        delta.answered += 1
        delta.questions.append(("resolve", None))
        for section in answer.get("sections") or []:
            if isinstance(section, dict) and kind == "knowledge":
                delta.counts[(day, "section", section_key(section))] += 1
                delta.counts[(day, "document", str(section.get("document") or ""))] += 1
    elif kind in triage.MISSED_TYPES:
        delta.not_covered += 1
        if kind == "not_covered":
            delta.counts[(day, "category", str(answer.get("category") or "other"))] += 1
        delta.questions += [("settle", None), ("missed", question)]
    elif kind == "clarify":
        delta.questions.append(("settle", None))
        if _outcome_since_user(events, index) not in triage.INPUT_PROBLEMS:
            delta.questions.append(("clarify", question))
    elif kind in triage.EMERGENCY_TYPES:
        delta.emergency_at = delta.emergency_at or stamp
        delta.questions.append(("settle", None))
    else:
        delta.questions.append(("settle", None))


def _bump(session: Session, counts: Counter, peaks: Mapping) -> None:
    """Add to the day counters: one upsert per key (concurrent servers add safely).

    On SQLite and PostgreSQL every key goes in one executemany of a statement built once
    per dialect (`_upsert`): compiled each time, the upserts were a sixth of the Rasa
    server's time per message in the default soak (py-spy, docs/benchmarks.md).
    """
    name = session.get_bind().dialect.name
    rows = [
        {
            "day": day,
            "metric": metric,
            "key": item,
            "count": counts.get((day, metric, item), 0),
            "peak": peaks.get((day, metric, item)),
        }
        for day, metric, item in sorted(set(counts) | set(peaks))
    ]
    if not rows:
        return
    if name in {"sqlite", "postgresql"}:
        session.execute(_upsert(name), rows)
        return
    for values in rows:
        row = session.get(DailyCount, (values["day"], values["metric"], values["key"]))
        if row is None:
            session.add(DailyCount(**values))
        else:
            row.count += values["count"]
            row.peak = max(row.peak or 0.0, values["peak"] or 0.0) or None


@lru_cache(maxsize=2)
def _upsert(dialect: str) -> Any:
    """The day counters' upsert for SQLite or PostgreSQL, parameters bound per row."""
    statement = (sqlite if dialect == "sqlite" else postgresql).insert(DailyCount)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["day", "metric", "key"],
        set_={
            "count": DailyCount.count + excluded.count,
            "peak": _greater(DailyCount.peak, excluded.peak),
        },
    )


def _greater(current: Any, new: Any) -> Any:
    """The larger of two nullable columns, in SQL both SQLite and PostgreSQL run."""
    return case(
        (new.is_(None), current),
        (current.is_(None), new),
        (new > current, new),
        else_=current,
    )


#: What a conversation can have been, for the shares of the insights page.
CONVERSATION_FLAGS = ("answered", "not_covered", "emergency", "callback")


def conversation_flags(summary: ConversationSummary) -> set[str]:
    """Which of CONVERSATION_FLAGS a conversation's summary has."""
    return {name for name in CONVERSATION_FLAGS if getattr(summary, name)}


def record_events(
    session: Session,
    conversation_id: str,
    events: Sequence[Mapping[str, Any]],
    start: int,
) -> None:
    """Add the turn `events[start:]` of a conversation to the summary tables.

    A conversation enters the summaries with its first patient message (a session that
    only started is not a conversation). Called by the tracker store in the session and
    transaction that store the events.
    """
    delta = turn_delta(events, start)
    if delta.first_at is None:
        return
    summary = session.get(ConversationSummary, conversation_id)
    if summary is None:
        if not delta.patient_messages:
            return
        first = next(
            (
                e["timestamp"]
                for e in events
                if isinstance(e.get("timestamp"), int | float)
            ),
            delta.first_at,
        )
        summary = ConversationSummary(
            conversation_id=conversation_id,
            started_at=first,
            last_at=first,
            messages=0,
            patient_messages=0,
            answered=0,
            not_covered=0,
            emergency=False,
            callback=False,
            helpful=0,
            unhelpful=0,
        )
        session.add(summary)
        delta.counts[(day_of(first), "conversations", "")] += 1
    before = conversation_flags(summary)
    summary.last_at = max(summary.last_at, delta.last_at or summary.last_at)
    for name in (
        "messages",
        "patient_messages",
        "answered",
        "not_covered",
        "helpful",
        "unhelpful",
    ):
        setattr(summary, name, getattr(summary, name) + getattr(delta, name))
    if delta.emergency_at is not None and not summary.emergency:
        summary.emergency = True
        summary.emergency_at = delta.emergency_at
    summary.callback = summary.callback or delta.callback
    if delta.slowest_reply_ms is not None:
        summary.slowest_reply_ms = max(
            summary.slowest_reply_ms or 0.0, delta.slowest_reply_ms
        )
    start_day = day_of(summary.started_at)
    for flag in conversation_flags(summary) - before:
        # counted once, on the day the conversation started: the page's shares
        delta.counts[(start_day, "conversations_with", flag)] += 1
    _questions(session, summary, delta.questions)
    _bump(session, delta.counts, delta.peaks)


def _questions(
    session: Session,
    summary: ConversationSummary,
    steps: Iterable[tuple[str, dict[str, Any] | None]],
) -> None:
    for step, fields in steps:
        pending = summary.pending_clarify_id
        if step == "resolve" and pending is not None:
            # the "did you mean" was answered after all: not a missed question
            session.execute(delete(MissedQuestion).where(MissedQuestion.id == pending))
        if step in {"resolve", "settle"}:
            summary.pending_clarify_id = None
        elif fields is not None and fields["text"]:
            row = MissedQuestion(conversation_id=summary.conversation_id, **fields)
            session.add(row)
            if step == "clarify":
                session.flush()
                summary.pending_clarify_id = row.id


def forget(session: Session, conversation_ids: Sequence[str]) -> None:
    """Remove purged conversations' summaries and missed questions (not day counts)."""
    for start in range(0, len(conversation_ids), 500):
        chunk = list(conversation_ids[start : start + 500])
        session.execute(
            delete(MissedQuestion).where(MissedQuestion.conversation_id.in_(chunk))
        )
        session.execute(
            delete(ConversationSummary).where(
                ConversationSummary.conversation_id.in_(chunk)
            )
        )


def rebuild(session: Session) -> int:
    """Recompute every summary from Rasa's events (`python -m bot summaries`).

    For a database whose conversations predate the summary tables, or after a change to
    what they count. Reads every event once, conversation by conversation; returns how
    many conversations were summarised.
    """
    from records.events import EVENTS, events_table_exists

    for model in (MissedQuestion, ConversationSummary, DailyCount):
        session.execute(delete(model))
    if not events_table_exists(session.connection()):
        return 0
    rows = session.execute(
        select(EVENTS.c.sender_id, EVENTS.c.data).order_by(
            EVENTS.c.sender_id, EVENTS.c.id
        )
    )
    done = 0
    sender: str | None = None
    batch: list[Mapping[str, Any]] = []

    def summarise() -> None:
        nonlocal done
        if sender is not None and batch:
            record_events(session, sender, batch, 0)
            session.flush()
            done += 1

    for row_sender, data in rows:  # streamed: one conversation in memory at a time
        if row_sender != sender:
            summarise()
            sender, batch = row_sender, []
        try:
            batch.append(json.loads(data or "{}"))
        except ValueError:
            continue
    summarise()
    return done
