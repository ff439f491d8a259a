"""Keep recent conversations in memory in front of Rasa's SQL tracker store.

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

`install()` patches rasa.core.tracker_store.SQLTrackerStore in this process (the patch
bot.patches.trackercache calls it from the server); the cache holds at most `CAPACITY`
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
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

CAPACITY = 2000
IDLE_SECONDS = 120.0
_now = time.monotonic  # the cache's clock (a test sets its own)


@dataclass
class _Entry:
    tracker: Any  # rasa.shared.core.trackers.DialogueStateTracker
    last_event_id: int | None
    stored_events: int
    confirmed: bool = False
    used: float = field(default_factory=lambda: _now())


def _last_id_query(store: Any) -> Any:
    """`max(id)` of one conversation's events (served by the sender_id index).

    Built once per store: it runs on every retrieve and save.
    """
    query = store.__dict__.get("_clinic_last_id_query")
    if query is None:
        table = store.SQLEvent.__table__
        query = store.__dict__["_clinic_last_id_query"] = sa.text(
            f"SELECT max(id) FROM {table.name} WHERE sender_id = :sender_id"  # noqa: S608 (table name from the model)
        )
    return query


def _last_event_id(store: Any, connection: Any, sender_id: str) -> int | None:
    value = connection.execute(_last_id_query(store), {"sender_id": sender_id}).scalar()
    return None if value is None else int(value)


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


def _insert_new_events(store: Any, tracker: Any, stored: int) -> int | None:
    """Store the events after the first `stored`; the conversation's new last id."""
    rows = [
        event_row(tracker.sender_id, event) for event in list(tracker.events)[stored:]
    ]
    with store.engine.begin() as connection:
        if rows:
            connection.execute(store.SQLEvent.__table__.insert(), rows)
            # The clinic's store counts the turn in its summary tables, in this
            # transaction (bot.conversation_store.ResilientSQLTrackerStore).
            record = getattr(store, "record_new_events", None)
            if record is not None:
                record(connection, tracker, stored)
        return _last_event_id(store, connection, tracker.sender_id)


def _cache(store: Any) -> OrderedDict[str, _Entry]:
    cache = store.__dict__.get("_clinic_tracker_cache")
    if cache is None:
        cache = store.__dict__["_clinic_tracker_cache"] = OrderedDict()
    return cache


def _evict(cache: OrderedDict[str, _Entry]) -> None:
    """Drop the least recently used conversations: beyond CAPACITY, or idle too long."""
    idle_since = _now() - IDLE_SECONDS
    while cache and (
        len(cache) > CAPACITY or next(iter(cache.values())).used < idle_since
    ):
        cache.popitem(last=False)


def install() -> None:
    """Put the cache in front of every SQLTrackerStore of this process."""
    from rasa.core.tracker_store import SQLTrackerStore

    if getattr(SQLTrackerStore, "_clinic_cached", False):
        return
    retrieve = SQLTrackerStore.retrieve
    save = SQLTrackerStore.save

    async def cached_retrieve(self: SQLTrackerStore, sender_id: str) -> Any:
        cache = _cache(self)
        entry = cache.pop(sender_id, None)
        with self.engine.connect() as connection:
            last = _last_event_id(self, connection, sender_id)
        if (
            entry is not None
            and entry.tracker is not None
            and len(entry.tracker.events) == entry.stored_events
            and last == entry.last_event_id
        ):
            entry.confirmed = True
            entry.used = _now()
            cache[sender_id] = entry
            return entry.tracker
        # No event stored for this conversation: Rasa's read would find nothing.
        tracker = None if last is None else await retrieve(self, sender_id)
        if tracker is None:
            # Nothing stored: the tracker Rasa creates next (under the conversation's
            # lock) is saved whole, without counting what is stored first.
            cache[sender_id] = _Entry(None, None, 0, confirmed=True)
        return tracker

    async def cached_save(self: SQLTrackerStore, tracker: Any) -> None:
        cache = _cache(self)
        entry = cache.get(tracker.sender_id)
        try:
            if (
                entry is not None
                and entry.confirmed
                and (entry.tracker is tracker or entry.tracker is None)
            ):
                await self.stream_events(tracker)
                last = _insert_new_events(self, tracker, entry.stored_events)
            else:
                await save(self, tracker)
                with self.engine.connect() as connection:
                    last = _last_event_id(self, connection, tracker.sender_id)
        except BaseException:
            cache.pop(tracker.sender_id, None)
            raise
        cache.pop(tracker.sender_id, None)
        # Saved under the conversation's lock, so this object is what the database
        # holds until the lock is released; the next retrieve checks again.
        cache[tracker.sender_id] = _Entry(
            tracker, last, len(tracker.events), confirmed=True
        )
        _evict(cache)

    SQLTrackerStore.retrieve = cached_retrieve
    SQLTrackerStore.save = cached_save
    SQLTrackerStore._clinic_cached = True
