"""Retention: forget conversations and call-back requests older than a limit.

`python -m bot purge --older-than 30d` (default RETENTION_DAYS). A conversation is the
rows of Rasa's SQL tracker store table `events` with one `sender_id`; it is old when its
*last* event is older than the limit, and then all its rows go (a conversation still in
use keeps its beginning), with its summary, missed questions and acknowledgement (the
day counts, which hold no patient data, stay). Call-back requests go by their
`created_at`. Plain SQL through
SQLAlchemy Core with bound parameters, so SQLite and PostgreSQL take the same statements.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    inspect,
    select,
)
from sqlalchemy.orm import Session

from records import summaries
from records.models import CallbackRequest, EmergencyAcknowledgement

#: Rasa's own table, described only as far as purging needs (Rasa creates it).
RASA_EVENTS = Table(
    "events",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255)),
    Column("timestamp", Float),
)

UNITS = {"d": "days", "h": "hours", "m": "minutes", "w": "weeks"}
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhmw])\s*$", re.IGNORECASE)
#: The longest limit accepted (a typo like 30000d is refused rather than overflowing).
MAX_AGE = timedelta(days=365 * 100)


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w` as a timedelta; ValueError with a readable reason."""
    match = DURATION.match(text or "")
    if not match:
        raise ValueError(
            f"{text!r} is not an age: use a number and a unit, e.g. 30d, 12h, 90m or 2w"
        )
    amount, unit = float(match.group(1)), match.group(2).lower()
    if amount <= 0:
        raise ValueError("the age must be more than zero")
    age = timedelta(**{UNITS[unit]: amount})
    if age > MAX_AGE:
        raise ValueError("the age must be under 100 years")
    return age


def describe_age(age: timedelta) -> str:
    """An age as a person says it: `30 days`, `12 hours`, `90 minutes`."""
    seconds = age.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} seconds"


@dataclass(frozen=True)
class PurgeReport:
    """What a purge removed."""

    conversations: int
    events: int
    callbacks: int


def purge(
    session: Session, older_than: timedelta, now: float | None = None
) -> PurgeReport:
    """Delete conversations whose last event, and call-backs, older than `older_than`.

    Args:
        session: a session on the conversations database, in a transaction.
        older_than: the age limit.
        now: the current time (epoch seconds), for tests; default the clock.

    Returns:
        How many conversations, event rows and call-back requests were deleted.
    """
    now = time.time() if now is None else now
    cutoff = now - older_than.total_seconds()
    senders: list[str] = []
    events = 0
    if inspect(session.connection()).has_table(RASA_EVENTS.name):
        senders = list(
            session.scalars(
                select(RASA_EVENTS.c.sender_id)
                .group_by(RASA_EVENTS.c.sender_id)
                .having(func.max(RASA_EVENTS.c.timestamp) < cutoff)
            )
        )
        # in batches: a bound parameter per sender, and databases limit their number
        for start in range(0, len(senders), 500):
            result = session.execute(
                delete(RASA_EVENTS).where(
                    RASA_EVENTS.c.sender_id.in_(senders[start : start + 500])
                )
            )
            events += int(result.rowcount or 0)
            session.execute(
                delete(EmergencyAcknowledgement).where(
                    EmergencyAcknowledgement.conversation_id.in_(
                        senders[start : start + 500]
                    )
                )
            )
        summaries.forget(session, senders)
    callback_cutoff = datetime.utcfromtimestamp(cutoff)
    result = session.execute(
        delete(CallbackRequest).where(CallbackRequest.created_at < callback_cutoff)
    )
    return PurgeReport(len(senders), events, int(result.rowcount or 0))
