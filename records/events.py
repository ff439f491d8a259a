"""Reading Rasa's `events` table for the staff console: only the rows and columns needed.

Rasa's SQL tracker store owns the table (it creates it when the Rasa server starts); this
module reads it, never writes it, and adds one index, (sender_id, timestamp), which turns
"conversations active in this date range" into an index-only scan. Until Rasa has
created the table there are simply no conversations.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from sqlalchemy import column, func, inspect, select, table, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql import case

from records import triage
from records.models import CallbackRequest, EmergencyAcknowledgement
from records.triage import EventRow

logger = logging.getLogger(__name__)

EVENTS = table(
    "events",
    column("id"),
    column("sender_id"),
    column("type_name"),
    column("timestamp"),
    column("intent_name"),
    column("action_name"),
    column("data"),
)
INDEX_NAME = "ix_events_sender_timestamp"
#: The most conversations one listing computes (most recent first).
LISTING_LIMIT = 500
_indexed: set[str] = set()


def events_table_exists(connection: Connection) -> bool:
    """Whether Rasa has created its events table in this database yet."""
    return bool(inspect(connection).has_table("events"))


def ensure_index(session: Session) -> bool:
    """Create the listing's index once per database; False when there is no table yet."""
    connection = session.connection()
    url = str(connection.engine.url)
    if url in _indexed:
        return True
    if not events_table_exists(connection):
        return False
    connection.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS {INDEX_NAME} ON events (sender_id, timestamp)"
        )
    )
    _indexed.add(url)
    return True


def active_conversations(
    session: Session,
    since: float | None = None,
    until: float | None = None,
    limit: int = LISTING_LIMIT,
) -> list[str]:
    """Sender ids whose last event falls in [since, until), most recent first."""
    if not ensure_index(session):
        return []
    last = func.max(EVENTS.c.timestamp)
    query = select(EVENTS.c.sender_id).group_by(EVENTS.c.sender_id)
    if since is not None:
        query = query.having(last >= since)
    if until is not None:
        query = query.having(last < until)
    query = query.order_by(last.desc()).limit(limit)
    return [row[0] for row in session.execute(query)]


def event_rows(
    session: Session, sender_ids: Sequence[str], with_patient_text: bool = False
) -> list[EventRow]:
    """The triage's events of these conversations, in stored order.

    Without `with_patient_text` a patient message's JSON is not even read: the listing
    needs its intent only.
    """
    if not sender_ids or not ensure_index(session):
        return []
    data = (
        EVENTS.c.data
        if with_patient_text
        else case((EVENTS.c.type_name == "user", None), else_=EVENTS.c.data)
    )
    rows: list[EventRow] = []
    # Bounded IN lists: every backend accepts a few hundred parameters.
    for start in range(0, len(sender_ids), 400):
        chunk = list(sender_ids[start : start + 400])
        query = (
            select(
                EVENTS.c.sender_id,
                EVENTS.c.type_name,
                EVENTS.c.timestamp,
                EVENTS.c.intent_name,
                EVENTS.c.action_name,
                data.label("data"),
            )
            .where(EVENTS.c.sender_id.in_(chunk))
            .where(EVENTS.c.type_name.in_(triage.TRIAGE_EVENT_TYPES))
            .order_by(EVENTS.c.sender_id, EVENTS.c.id)
        )
        rows.extend(EventRow.from_mapping(r) for r in session.execute(query).mappings())
    return rows


def callback_conversations(session: Session, sender_ids: Iterable[str]) -> set[str]:
    """The conversations among these that have a call-back request."""
    ids = list(sender_ids)
    found: set[str] = set()
    for start in range(0, len(ids), 400):
        chunk = ids[start : start + 400]
        query = select(CallbackRequest.conversation_id).where(
            CallbackRequest.conversation_id.in_(chunk)
        )
        found.update(row[0] for row in session.execute(query))
    return found


def list_triage(
    session: Session,
    since: float | None = None,
    until: float | None = None,
    urgency: str | None = None,
    category: str | None = None,
    limit: int = LISTING_LIMIT,
) -> list[triage.Triage]:
    """The triage list: conversations active in the range, most urgent first.

    `category` matches a not-covered category or a cited section's title.
    """
    senders = active_conversations(session, since, until, limit)
    listed = triage.triage_all(
        event_rows(session, senders), callback_conversations(session, senders)
    )
    emergencies = [t for t in listed if t.urgency == "emergency"]
    seen = acknowledgements(session, [t.conversation_id for t in emergencies])
    for item in emergencies:
        if item.conversation_id in seen:
            item.acknowledged_by = seen[item.conversation_id].staff_name
            item.acknowledged_at = seen[item.conversation_id].acknowledged_at
    # emergencies nobody has acknowledged yet come first (the sort is stable)
    listed.sort(key=lambda t: (t.rank, t.acknowledged_by is not None))
    if urgency:
        listed = [t for t in listed if t.urgency == urgency]
    if category:
        listed = [t for t in listed if category in t.categories or category in t.topics]
    return listed


def acknowledgements(
    session: Session, conversation_ids: Sequence[str]
) -> dict[str, EmergencyAcknowledgement]:
    """The emergency acknowledgements of these conversations, by conversation id."""
    found: dict[str, EmergencyAcknowledgement] = {}
    for start in range(0, len(conversation_ids), 400):
        chunk = list(conversation_ids[start : start + 400])
        query = select(EmergencyAcknowledgement).where(
            EmergencyAcknowledgement.conversation_id.in_(chunk)
        )
        found.update((row.conversation_id, row) for row in session.scalars(query))
    return found


def conversation(session: Session, sender_id: str) -> list[EventRow]:
    """One conversation's triage events with the patient's messages, for its transcript."""
    return event_rows(session, [sender_id], with_patient_text=True)


def unanswered_between(
    session: Session, since: float | None, until: float | None
) -> list[tuple[str, triage.Exchange]]:
    """(conversation id, exchange) of every missed question asked in [since, until)."""
    senders = active_conversations(session, since, None, limit=100_000)
    rows = event_rows(session, senders, with_patient_text=True)
    by_sender: dict[str, list[EventRow]] = {}
    for row in rows:
        by_sender.setdefault(row.sender_id, []).append(row)
    found = [
        (sender, exchange)
        for sender, sender_rows in by_sender.items()
        for exchange in triage.unanswered_questions(sender_rows)
        if (since is None or (exchange.timestamp or 0) >= since)
        and (until is None or (exchange.timestamp or 0) < until)
    ]
    return sorted(found, key=lambda item: item[1].timestamp or 0.0)
