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

`install()` patches rasa.core.tracker_store.SQLTrackerStore in this process (bot.speed
calls it from the server); the cache holds at most `CAPACITY` conversations.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

CAPACITY = 2000


@dataclass
class _Entry:
    tracker: Any  # rasa.shared.core.trackers.DialogueStateTracker
    last_event_id: int | None
    stored_events: int
    confirmed: bool = False


def _last_event_id(store: Any, session: Any, sender_id: str) -> int | None:
    import sqlalchemy as sa

    event = store.SQLEvent
    value = (
        session.query(sa.func.max(event.id))
        .filter(event.sender_id == sender_id)
        .scalar()
    )
    return None if value is None else int(value)


def _cache(store: Any) -> OrderedDict[str, _Entry]:
    cache = store.__dict__.get("_clinic_tracker_cache")
    if cache is None:
        cache = store.__dict__["_clinic_tracker_cache"] = OrderedDict()
    return cache


def install() -> None:
    """Put the cache in front of every SQLTrackerStore of this process."""
    from rasa.core.tracker_store import SQLTrackerStore

    if getattr(SQLTrackerStore, "_clinic_cached", False):
        return
    retrieve = SQLTrackerStore.retrieve
    save = SQLTrackerStore.save
    additional_events = SQLTrackerStore._additional_events

    async def cached_retrieve(self: SQLTrackerStore, sender_id: str) -> Any:
        cache = _cache(self)
        entry = cache.pop(sender_id, None)
        if entry is not None and len(entry.tracker.events) == entry.stored_events:
            with self.session_scope() as session:
                if _last_event_id(self, session, sender_id) == entry.last_event_id:
                    entry.confirmed = True
                    cache[sender_id] = entry
                    return entry.tracker
        return await retrieve(self, sender_id)

    def cached_additional_events(
        self: SQLTrackerStore, session: Any, tracker: Any
    ) -> Any:
        entry = _cache(self).get(tracker.sender_id)
        if entry is not None and entry.confirmed and entry.tracker is tracker:
            events = list(tracker.events)
            return iter(events[entry.stored_events :])
        return additional_events(self, session, tracker)

    async def cached_save(self: SQLTrackerStore, tracker: Any) -> None:
        cache = _cache(self)
        try:
            await save(self, tracker)
        except BaseException:
            cache.pop(tracker.sender_id, None)
            raise
        with self.session_scope() as session:
            last = _last_event_id(self, session, tracker.sender_id)
        cache.pop(tracker.sender_id, None)
        cache[tracker.sender_id] = _Entry(tracker, last, len(tracker.events))
        while len(cache) > CAPACITY:
            cache.popitem(last=False)

    SQLTrackerStore.retrieve = cached_retrieve
    SQLTrackerStore.save = cached_save
    SQLTrackerStore._additional_events = cached_additional_events
    SQLTrackerStore._clinic_cached = True
