"""Recent conversations kept in memory in front of Rasa's SQL tracker store.

The cache itself is bot.tracker_cache (checked against the database with one indexed
query, new events written with one multi-row insert).
"""

from __future__ import annotations

from sanic import Sanic

REPLACES = (
    "rasa.core.tracker_store.SQLTrackerStore.retrieve",
    "rasa.core.tracker_store.SQLTrackerStore.save",
)
CHECKED_RASA_VERSION = "3.6.21"


def install(_app: Sanic) -> None:
    """Apply the patch."""
    from bot import tracker_cache

    tracker_cache.install()
