"""Recent conversations kept in memory in front of the project's SQL tracker store.

Rasa's SQL tracker store reads a conversation's whole session from the database and
rebuilds the tracker from its events for every message, and before saving counts the
stored events again to know which ones are new. Under load that was a quarter of the Rasa
server's time (docs/benchmarks.md). This keeps the tracker each save leaves behind, with
the id of the conversation's last stored event; the next message of that conversation
gets the same tracker back after one indexed query confirms that nobody stored an event
for it since (another Sanic worker, another server on the same database). Anything else
(a tracker changed but not saved, a write elsewhere, an evicted conversation) falls back
to Rasa's own code, so the database stays the only source of truth.

A new conversation (a fifth of the messages under the bench's load) is recognised by the
same query finding no event, without Rasa's read. When the cached tracker is the one being
saved (or the conversation is new: the read just before found nothing), its new events
are written with one multi-row insert on a plain connection, and the id check is one
textual query: Rasa's ORM path (a unit of work per event, statement cache keys, a session
per query) cost more than the database work itself (docs/benchmarks.md).

`TrackerCache` is part of bot.conversation_store.ResilientSQLTrackerStore (its `retrieve`
and `save`, when the speed measure `trackercache` is on); it holds at most `CAPACITY`
conversations, and none that no message reached for `IDLE_SECONDS`: a patient's next
message comes within a minute or so of the reply, and a conversation kept for longer only
held memory (the soak's servers grew by about 85 KB per finished conversation until the
cache was full, docs/benchmarks.md "Long runs"; a conversation that comes back later is
read from the database, as after any miss).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from rasa.shared.core.trackers import DialogueStateTracker

CAPACITY = 2000
IDLE_SECONDS = 120.0
_now = time.monotonic  # the cache's clock (a test sets its own)


class CachedStore(Protocol):
    """What the cache needs of its tracker store (Rasa's SQLTrackerStore has it)."""

    engine: sa.engine.Engine
    SQLEvent: Any

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        """Publish the tracker's new events (Rasa's event broker)."""

    def record_new_events(
        self,
        connection: sa.engine.Connection,
        tracker: DialogueStateTracker,
        stored: int,
    ) -> None:
        """Count the events after the first `stored`, in the connection's transaction."""


@dataclass
class CachedTracker:
    """A conversation as its last save left it."""

    tracker: DialogueStateTracker | None
    last_event_id: int | None
    stored_events: int
    confirmed: bool = False
    used: float = field(default_factory=lambda: _now())


def event_row(sender_id: str, event: Any) -> dict[str, Any]:
    """The columns Rasa's SQLTrackerStore.save writes for one event."""
    data = event.as_dict()
    return {
        "sender_id": sender_id,
        "type_name": event.type_name,
        "timestamp": data.get("timestamp"),
        "intent_name": data.get("parse_data", {}).get("intent", {}).get("name"),
        "action_name": data.get("name"),
        "data": json.dumps(data),
    }


class TrackerCache:
    """The recent conversations of one tracker store, least recently used first."""

    def __init__(self, store: CachedStore) -> None:
        self.store = store
        self.entries: OrderedDict[str, CachedTracker] = OrderedDict()
        table = store.SQLEvent.__table__
        self.events_table: sa.Table = table
        #: `max(id)` of one conversation's events (served by the sender_id index).
        self.last_id_query = sa.text(
            f"SELECT max(id) FROM {table.name} WHERE sender_id = :sender_id"  # noqa: S608 (table name from the model)
        )

    def last_event_id(
        self, connection: sa.engine.Connection, sender_id: str
    ) -> int | None:
        """The id of the conversation's last stored event (None: nothing stored)."""
        value = connection.execute(
            self.last_id_query, {"sender_id": sender_id}
        ).scalar()
        return None if value is None else int(value)

    async def retrieve(
        self,
        sender_id: str,
        read: Callable[[], Awaitable[DialogueStateTracker | None]],
    ) -> DialogueStateTracker | None:
        """The cached tracker if the database has nothing newer, else `read()`."""
        entry = self.entries.pop(sender_id, None)
        with self.store.engine.connect() as connection:
            last = self.last_event_id(connection, sender_id)
        if (
            entry is not None
            and entry.tracker is not None
            and len(entry.tracker.events) == entry.stored_events
            and last == entry.last_event_id
        ):
            entry.confirmed = True
            entry.used = _now()
            self.entries[sender_id] = entry
            return entry.tracker
        # No event stored for this conversation: Rasa's read would find nothing.
        tracker = None if last is None else await read()
        if tracker is None:
            # Nothing stored: the tracker Rasa creates next (under the conversation's
            # lock) is saved whole, without counting what is stored first.
            self.entries[sender_id] = CachedTracker(None, None, 0, confirmed=True)
        return tracker

    async def save(
        self, tracker: DialogueStateTracker, write: Callable[[], Awaitable[None]]
    ) -> None:
        """Store the tracker's new events, then keep it.

        One insert when it is the cached tracker (or a new one), else `write()`.
        """
        sender_id = tracker.sender_id
        entry = self.entries.get(sender_id)
        try:
            if (
                entry is not None
                and entry.confirmed
                and (entry.tracker is tracker or entry.tracker is None)
            ):
                await self.store.stream_events(tracker)
                last = self.insert_new_events(tracker, entry.stored_events)
            else:
                await write()
                with self.store.engine.connect() as connection:
                    last = self.last_event_id(connection, sender_id)
        except BaseException:
            self.entries.pop(sender_id, None)
            raise
        self.entries.pop(sender_id, None)
        # Saved under the conversation's lock, so this object is what the database
        # holds until the lock is released; the next retrieve checks again.
        self.entries[sender_id] = CachedTracker(
            tracker, last, len(tracker.events), confirmed=True
        )
        self.evict()

    def insert_new_events(
        self, tracker: DialogueStateTracker, stored: int
    ) -> int | None:
        """Store the events after the first `stored`; the conversation's new last id."""
        rows = [
            event_row(tracker.sender_id, event)
            for event in list(tracker.events)[stored:]
        ]
        with self.store.engine.begin() as connection:
            if rows:
                connection.execute(self.events_table.insert(), rows)
                # The turn is counted in the summary tables in this transaction.
                self.store.record_new_events(connection, tracker, stored)
            return self.last_event_id(connection, tracker.sender_id)

    def evict(self) -> None:
        """Drop the least recently used conversations: beyond CAPACITY, or idle too long."""
        idle_since = _now() - IDLE_SECONDS
        entries = self.entries
        while entries and (
            len(entries) > CAPACITY or next(iter(entries.values())).used < idle_since
        ):
            entries.popitem(last=False)
