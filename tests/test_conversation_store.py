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
    ConversationStoreUnavailableError,
    ResilientSQLTrackerStore,
)
from bot.outage import ConversationStoreConfigurationError, require_resilient_store

SECRET_TEXT = "my knee hurts since tuesday"


@pytest.fixture()
def store(tmp_path, monkeypatch) -> ResilientSQLTrackerStore:
    """Rasa's read and write paths (the speed measures off), in rollback-journal mode,
    where another connection's exclusive lock stops readers too."""
    monkeypatch.setenv("TRACKER_DB_RETRY_SECONDS", "1")
    monkeypatch.setenv("SPEED_MEASURES", "none")
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


def test_with_the_cache_a_failed_write_is_named_and_not_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_DB_RETRY_SECONDS", "1")
    monkeypatch.delenv("SPEED_MEASURES", raising=False)
    store = ResilientSQLTrackerStore(
        domain=Domain.empty(), dialect="sqlite", db=str(tmp_path / "c.db")
    )
    asyncio.run(store.save(tracker_with_text("p1")))
    tracker = asyncio.run(store.retrieve("p1"))
    assert tracker is not None and "p1" in store.cache.entries
    tracker.update(UserUttered("a second message", {"name": "greet"}))
    locker = sqlite3.connect(tmp_path / "c.db", timeout=0)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ConversationStoreUnavailableError) as failure:
            asyncio.run(store.save(tracker))
        assert failure.value.operation == "write"
    finally:
        locker.rollback()
        locker.close()
    assert "p1" not in store.cache.entries  # what the database holds is read again
    again = asyncio.run(store.retrieve("p1"))
    assert again is not tracker and again.latest_message.text == SECRET_TEXT


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


def test_the_store_keeps_its_sqlite_connections_in_write_ahead_log_mode(
    tmp_path, monkeypatch
):
    """The speed measure `sqlite`: a few kept connections, WAL, one fsync less."""
    import sqlalchemy as sa
    from sqlalchemy.pool import QueuePool

    monkeypatch.delenv("SPEED_MEASURES", raising=False)
    store = ResilientSQLTrackerStore(dialect="sqlite", db=str(tmp_path / "c.db"))
    assert isinstance(store.engine.pool, QueuePool)
    with store.engine.connect() as connection:
        assert connection.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(sa.text("PRAGMA synchronous")).scalar() == 1  # NORMAL
    with sqlite3.connect(tmp_path / "other.db") as other:  # nothing else is changed
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
