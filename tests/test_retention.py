"""Retention: `python -m bot purge` removes exactly the old conversations and call-backs.

The conversations are written by Rasa's own SQLTrackerStore, on SQLite and on the real
PostgreSQL (in a schema of the test's own, so parallel runs do not collide).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import OperationalError

from bot.training import ROOT
from records.models import CallbackRequest
from records.retention import RASA_EVENTS, describe_age, parse_age, purge
from records.store import session_scope

DAY = 86400.0
NOW = time.time()
POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        (" 90M ", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        ("1.5d", timedelta(hours=36)),
    ],
)
def test_ages_are_read(typed, expected):
    assert parse_age(typed) == expected


@pytest.mark.parametrize(
    "typed", ["", "30", "d", "-3d", "0d", "30 days", "3x", "1e9d", "99999999d", "🙂"]
)
def test_bad_ages_are_refused_with_a_reason(typed):
    with pytest.raises(ValueError, match=r"\w"):
        parse_age(typed)


def test_ages_are_described():
    assert describe_age(timedelta(days=30)) == "30 days"
    assert describe_age(timedelta(hours=1)) == "1 hour"
    assert describe_age(timedelta(minutes=90)) == "90 minutes"


async def save_conversation(
    store: SQLTrackerStore, sender: str, ages_in_days: list[float]
) -> None:
    """A conversation whose events happened `ages_in_days` ago."""
    events = []
    for age in ages_in_days:
        stamp = NOW - age * DAY
        events += [
            ActionExecuted("action_listen", timestamp=stamp),
            UserUttered("hello", {"name": "greet"}, timestamp=stamp),
            BotUttered("hi", timestamp=stamp),
        ]
    await store.save(DialogueStateTracker.from_events(sender, events))


def add_callback(session, conversation: str, age_in_days: float) -> None:
    created = datetime.utcfromtimestamp(NOW - age_in_days * DAY)
    session.add(
        CallbackRequest(
            conversation_id=conversation,
            name="Ann",
            phone="+12125550147",
            best_time="mornings",
            consent=True,
            created_at=created,
            updated_at=created,
        )
    )


def senders(url: str) -> dict[str, int]:
    with session_scope(url) as session:
        rows = session.execute(
            select(RASA_EVENTS.c.sender_id, func.count()).group_by(
                RASA_EVENTS.c.sender_id
            )
        )
        return {sender: count for sender, count in rows}


def callbacks(url: str) -> list[str]:
    with session_scope(url) as session:
        return sorted(session.scalars(select(CallbackRequest.conversation_id)))


async def fill(store: SQLTrackerStore, url: str) -> None:
    await save_conversation(store, "old", [45, 40])
    await save_conversation(store, "old-but-resumed", [60, 1])  # kept: in use
    await save_conversation(store, "recent", [2])
    with session_scope(url) as session:
        add_callback(session, "old", 40)
        add_callback(session, "recent", 3)


def check_purged(url: str) -> None:
    before = senders(url)
    with session_scope(url) as session:
        report = purge(session, timedelta(days=30), now=NOW)
    assert (report.conversations, report.events, report.callbacks) == (1, 6, 1)
    after = senders(url)
    assert "old" not in after
    assert after == {k: v for k, v in before.items() if k != "old"}
    assert after["old-but-resumed"] == 6  # all of it, also the 60-day-old part
    assert callbacks(url) == ["recent"]
    with session_scope(url) as session:  # nothing left to do
        again = purge(session, timedelta(days=30), now=NOW)
    assert (again.conversations, again.events, again.callbacks) == (0, 0, 0)


async def test_purge_on_sqlite_removes_exactly_what_is_old(tmp_path):
    path = tmp_path / "conversations.db"
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(path))
    url = f"sqlite:///{path}"
    await fill(store, url)
    check_purged(url)


@pytest.fixture()
def postgres_schema() -> Iterator[str]:
    schema = f"purge_{uuid.uuid4().hex[:12]}"
    try:
        engine = create_engine(POSTGRES, future=True)
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        if os.environ.get("CI"):
            raise  # CI has PostgreSQL; a missing one is a failure there
        pytest.skip(f"PostgreSQL not reachable: {type(exc).__name__}")
    try:
        yield schema
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


async def test_purge_on_postgresql_removes_exactly_what_is_old(postgres_schema):
    options = f"-csearch_path={postgres_schema}"
    store = SQLTrackerStore(
        Domain.empty(),
        dialect="postgresql",
        host="127.0.0.1",
        port=5432,
        db="test",
        username="postgres",
        query={"options": options},
    )
    url = f"{POSTGRES}?options={options.replace('=', '%3D')}"
    await fill(store, url)
    check_purged(url)
    with session_scope(url) as session:  # the tables really are in our schema
        schemas = session.scalars(
            text(
                "SELECT table_schema FROM information_schema.tables"
                " WHERE table_name = 'events'"
            )
        ).all()
    assert postgres_schema in schemas


def run_purge(env_db: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", "purge", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "CONVERSATIONS_DB": env_db,
            "RETENTION_DAYS": "30",
        },
    )


async def test_the_command_line_prints_what_it_removed(tmp_path):
    path = tmp_path / "c.db"
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(path))
    await fill(store, f"sqlite:///{path}")
    result = run_purge(str(path))
    assert result.returncode == 0, result.stderr
    assert "older than 30 days" in result.stdout
    assert "removed 1 conversation(s) (6 event(s)) and 1 call-back request(s)" in (
        result.stdout
    )
    bad = run_purge(str(path), "--older-than", "thirty")
    assert bad.returncode == 2 and "not an age" in bad.stderr
    assert "Traceback" not in bad.stderr
