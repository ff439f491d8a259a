"""The one tracker store of every profile (bot.conversation_store) on real SQLite files.

No server: the store itself retries a locked database, then names the failure without
the patient's text, and the server's start-up check refuses any other store.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from types import SimpleNamespace

import pytest
from rasa.core.tracker_store import FailSafeTrackerStore, InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.conversation_store import (
    ConversationStoreConfigurationError,
    ConversationStoreUnavailableError,
    ResilientSQLTrackerStore,
    require_resilient_store,
)

SECRET_TEXT = "my knee hurts since tuesday"


@pytest.fixture()
def store(tmp_path, monkeypatch) -> ResilientSQLTrackerStore:
    monkeypatch.setenv("TRACKER_DB_RETRY_SECONDS", "1")
    return ResilientSQLTrackerStore(
        domain=Domain.empty(), dialect="sqlite", db=str(tmp_path / "c.db")
    )


def tracker_with_text(sender: str) -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, [])
    tracker.update(UserUttered(SECRET_TEXT, {"name": "greet", "confidence": 1.0}))
    return tracker


def test_the_server_refuses_a_store_that_would_keep_conversations_in_memory(store):
    memory = FailSafeTrackerStore(InMemoryTrackerStore(Domain.empty()))
    with pytest.raises(
        ConversationStoreConfigurationError, match="InMemoryTrackerStore"
    ):
        require_resilient_store(SimpleNamespace(tracker_store=memory))
    require_resilient_store(SimpleNamespace(tracker_store=store))
    require_resilient_store(SimpleNamespace(tracker_store=FailSafeTrackerStore(store)))


def test_a_locked_database_is_retried_then_named_without_the_patients_text(
    store, tmp_path, caplog
):
    asyncio.run(store.save(tracker_with_text("p1")))
    locker = sqlite3.connect(tmp_path / "c.db", timeout=0)
    locker.execute("BEGIN EXCLUSIVE")
    caplog.set_level(logging.WARNING)
    try:
        with pytest.raises(ConversationStoreUnavailableError) as failure:
            asyncio.run(store.retrieve("p1"))
        assert failure.value.operation == "read"
        with pytest.raises(ConversationStoreUnavailableError) as failure:
            asyncio.run(store.save(tracker_with_text("p2")))
        assert failure.value.operation == "write"
    finally:
        locker.rollback()
        locker.close()
    assert "database is locked" in str(failure.value)
    assert SECRET_TEXT not in caplog.text and SECRET_TEXT not in str(failure.value)
    # Once the lock is gone the same store serves again, and nothing went to memory.
    tracker = asyncio.run(store.retrieve("p1"))
    assert tracker is not None and tracker.latest_message.text == SECRET_TEXT
    assert asyncio.run(store.retrieve("p2")) is None


def test_a_short_lock_is_ridden_out(store, tmp_path):
    asyncio.run(store.save(tracker_with_text("p1")))
    locker = sqlite3.connect(tmp_path / "c.db", timeout=0, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(1.5, locker.rollback)
    release.start()
    try:
        tracker = asyncio.run(store.retrieve("p1"))
    finally:
        release.join()
        locker.close()
    assert tracker is not None and tracker.latest_message.text == SECRET_TEXT


def test_the_store_keeps_the_sqlite_connections_of_the_speed_measure(
    tmp_path, monkeypatch
):
    """As in the server: this module is imported before the patches apply."""
    import rasa.core.tracker_store as rasa_tracker_store
    from sqlalchemy.pool import QueuePool

    from bot.patches import sqlite as sqlite_patch

    original = rasa_tracker_store.create_engine_kwargs
    monkeypatch.setattr(rasa_tracker_store, "create_engine_kwargs", original)
    sqlite_patch.sqlite_pool_and_write_ahead_log()
    store = ResilientSQLTrackerStore(dialect="sqlite", db=str(tmp_path / "c.db"))
    assert isinstance(store.engine.pool, QueuePool)
