"""A conversation's last event id is one index probe, with or without table statistics.

bot.tracker_cache asks for it on every message. On a PostgreSQL events table that was
never analyzed (this server runs with autovacuum off, as the scaled soak did), Rasa's
sender_id index alone lets the planner walk the primary key back through the whole table
for a new conversation: the cost grew with the table and the soak fell.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import pytest
import sqlalchemy as sa

from bench import fill
from bench.scaled import fresh_database
from bot.conversation_store import LAST_EVENT_INDEX, ResilientSQLTrackerStore

pytestmark = pytest.mark.scaled


@pytest.fixture()
def db_url() -> Iterator[str]:
    with fresh_database("lastid") as url:
        yield url


def _store(url: str) -> ResilientSQLTrackerStore:
    parts = sa.engine.make_url(url)
    return ResilientSQLTrackerStore(
        dialect="postgresql",
        host=parts.host,
        port=parts.port,
        db=parts.database,
        username=parts.username,
        password=parts.password,
    )


def _last_id_query(store: ResilientSQLTrackerStore) -> str:
    """The query the tracker cache asks on every message (bot.tracker_cache)."""
    assert store.cache is not None
    return store.cache.last_id_query.text


def _plan(url: str, query: str, sender: str) -> str:
    connection = psycopg2.connect(url.replace("postgresql+psycopg2", "postgresql"))
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {query}", {"sender_id": sender})
            return "\n".join(row[0] for row in cursor.fetchall())
    finally:
        connection.close()


def test_the_last_event_of_a_new_conversation_is_found_without_statistics(
    db_url: str,
) -> None:
    fill.fill(db_url, 20_000)  # no ANALYZE: the table has no statistics
    query = _last_id_query(_store(db_url)).replace(":sender_id", "%(sender_id)s")
    plan = _plan(db_url, query, "load-new-conversation")
    assert LAST_EVENT_INDEX in plan and "events_pkey" not in plan, plan

    again = _store(db_url)  # a second server: the index is there, nothing fails
    names = {i["name"] for i in sa.inspect(again.engine).get_indexes("events")}
    assert {LAST_EVENT_INDEX, "ix_events_sender_id"} <= names


def test_without_the_index_postgresql_walks_the_whole_table(db_url: str) -> None:
    """The fault itself, so that the test above could fail (on a table large enough
    for the planner to prefer the walk)."""
    store = _store(db_url)
    fill.fill(db_url, 200_000)
    with store.engine.begin() as connection:
        connection.execute(sa.text(f"DROP INDEX {LAST_EVENT_INDEX}"))
    query = _last_id_query(store).replace(":sender_id", "%(sender_id)s")
    assert "Index Scan Backward using events_pkey" in _plan(
        db_url, query, "load-new-conversation"
    )


def test_sqlite_needs_no_second_index(tmp_path: pytest.TempPathFactory) -> None:
    database = f"{tmp_path}/conversations.db"
    store = ResilientSQLTrackerStore(dialect="sqlite", db=database)
    fill.fill(f"sqlite:///{database}", 2_000)
    with store.engine.connect() as connection:
        names = {i["name"] for i in sa.inspect(connection).get_indexes("events")}
        plan = connection.execute(
            sa.text(f"EXPLAIN QUERY PLAN {_last_id_query(store)}"),
            {"sender_id": "load-new"},
        ).fetchall()
    assert names == {"ix_events_sender_id"}
    assert "COVERING INDEX ix_events_sender_id" in " ".join(str(r) for r in plan)
