"""Rasa's SQL tracker store, made to ride out a database restart and say when it cannot.

Rasa 3.6's `SQLTrackerStore` keeps pooled connections without checking them, so after the
database restarts the first request on each stale connection fails; and a failure
while reading the conversation propagates out of the message handler, where the REST
channel answers `[]` (the patient sees nothing) and logs the patient's message. Here:

- connections are checked before use (`pool_pre_ping`) and connecting gives up after
  CONVERSATIONS_DB_CONNECT_TIMEOUT seconds, so service resumes by itself once the
  database is back, without restarting any server;
- a read or write that fails because the database is unreachable is retried for
  TRACKER_DB_RETRY_SECONDS (default 5), which bridges a restart; a write is safe to
  repeat because Rasa stores only the events the database does not have yet;
- after that, `ConversationStoreUnavailableError` names the operation; bot.outage
  turns it into a clear reply (utter_service_unavailable: try again or call the front
  desk, the emergency number) and one error line in the log, with no patient text.

It also gives the events table an index on (sender_id, id) where the database needs it
(`ensure_last_event_index`): bot.tracker_cache asks for a conversation's last event id on
every message, and PostgreSQL answers that from Rasa's sender_id index only when the
table's statistics say a conversation has few rows. Without statistics (a table never
analyzed: autovacuum off, or a new table) it walks the primary key back from the newest
event instead, and for a new conversation reads the whole table: the scaled soak fell as
the table grew (docs/benchmarks.md, "Long runs").

The Rasa server's speed with conversations is this class's too, as its own methods and
engine options rather than patches of Rasa's class: the recent conversations kept in
memory (`retrieve` and `save` through bot.tracker_cache, speed measure `trackercache`),
and on SQLite a few kept connections with write-ahead logging (`SQLITE_POOL`, speed
measure `sqlite`). Like the other speed-ups in the project's classes, each is used only
on the Rasa it was checked against (bot.patches.EXTENSIONS) and can be switched off
with SPEED_MEASURES; the store then reads and writes exactly as Rasa's does.

Every profile uses it (endpoints.yml with SQLite, deploy/scaled/endpoints.yml with
PostgreSQL), and the server refuses to start with any other tracker store
(bot.outage.require_resilient_store): Rasa would quietly keep the conversations in memory when the
class named cannot be loaded.

    tracker_store:
      type: bot.conversation_store.ResilientSQLTrackerStore
      dialect: sqlite
      db: ${CONVERSATIONS_DB}
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import rasa.core.tracker_store as rasa_tracker_store
import sqlalchemy as sa
import sqlalchemy.exc
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.trackers import DialogueStateTracker

from bot.patches import measure_enabled
from bot.tracker_cache import TrackerCache
from clinic import settings
from records import summaries
from records.store import create_tables

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: (sender_id, id): a conversation's last event is one index probe. SQLite's sender_id
#: index already ends with the row id (the events' id), so it needs none.
LAST_EVENT_INDEX = "ix_events_sender_id_id"
#: SQLite gets no connection pool from Rasa (SQLAlchemy 1.4 opens and closes a file
#: connection per query session, two to three times a message, and each close
#: checkpointed the write-ahead log): a few kept ones (speed measure `sqlite`). Rasa
#: queries the store from the event loop's thread, but the pool may still hand a
#: connection to another thread, hence check_same_thread off.
SQLITE_POOL = {
    "poolclass": sa.pool.QueuePool,
    "pool_size": 4,
    "max_overflow": 4,
    "connect_args": {"check_same_thread": False},
}


class ConversationStoreUnavailableError(RuntimeError):
    """The conversations database could not be reached for `operation`."""

    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(f"conversation database unavailable ({operation}): {reason}")
        self.operation = operation


def is_outage(error: BaseException) -> bool:
    """Whether a database error means "cannot reach the database" (worth a retry)."""
    if isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(
        error, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
    )


def describe(error: BaseException) -> str:
    """The driver's first line, without the SQL and its parameters (patient text)."""
    original = getattr(error, "orig", None) or error
    first_line = (str(original).strip().splitlines() or [""])[0]
    return f"{type(original).__name__}: {first_line[:200]}"


class ResilientSQLTrackerStore(SQLTrackerStore):
    """SQLTrackerStore with checked connections, retries and a clear failure."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Open the store like Rasa, then swap in an engine that checks connections."""
        super().__init__(*args, **kwargs)
        engine: sa.engine.Engine = self.engine  # type: ignore[has-type]
        url = engine.url
        values = settings.current()
        options = rasa_tracker_store.create_engine_kwargs(url)
        sqlite = url.get_backend_name() == "sqlite"
        kept = sqlite and measure_enabled("sqlite")
        if kept:
            options.update(SQLITE_POOL)
        if url.get_backend_name() == "postgresql":
            connect_args = dict(options.pop("connect_args", {}))
            connect_timeout = max(0.0, values.conversations_db_connect_timeout)
            connect_args.setdefault("connect_timeout", int(connect_timeout))
            options["connect_args"] = connect_args
        engine.dispose()
        self.engine = sa.create_engine(url, pool_pre_ping=True, **options)
        if kept:
            sa.event.listen(self.engine, "connect", write_ahead_log)
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
        self.retry_seconds = max(0.0, values.tracker_db_retry_seconds)
        ensure_last_event_index(self.engine, self.SQLEvent.__table__)
        # The summary tables the turns are counted in (records.summaries).
        create_tables(self.engine)
        self.cache = TrackerCache(self) if measure_enabled("trackercache") else None

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Any:
        """The turn's new events, as Rasa stores them; counted in the summary tables.

        Rasa 3.6's `SQLTrackerStore.save` (checked against 3.6.x) asks this method for
        the events to insert, in the session and transaction that insert them: so the
        summaries are written with the turn, or not at all. Only `save` calls it.
        """
        new = list(super()._additional_events(session, tracker))
        if new:
            self._record(session, tracker, len(tracker.events) - len(new))
        return iter(new)

    def record_new_events(
        self, connection: Any, tracker: DialogueStateTracker, stored: int
    ) -> None:
        """Count the events after the first `stored` (bot.tracker_cache's fast save).

        In the connection's transaction, which inserts the events themselves.
        """
        session = sa.orm.Session(bind=connection)
        try:
            self._record(session, tracker, stored)
            session.flush()
        finally:
            session.close()

    @staticmethod
    def _record(session: Any, tracker: DialogueStateTracker, start: int) -> None:
        stored = list(tracker.events)
        # the context a reply needs: from the patient message it answers
        context = next(
            (i for i in range(start - 1, -1, -1) if stored[i].type_name == "user"), 0
        )
        summaries.record_events(
            session,
            tracker.sender_id,
            [event.as_dict() for event in stored[context:]],
            start - context,
        )

    async def _patiently(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        deadline = time.monotonic() + self.retry_seconds
        pause = 0.2
        while True:
            try:
                return await call()
            except sqlalchemy.exc.DBAPIError as error:
                if not is_outage(error):
                    raise
                reason = describe(error)
            if time.monotonic() + pause > deadline:
                raise ConversationStoreUnavailableError(operation, reason) from None
            logger.warning(
                "conversation database unavailable (%s), retrying: %s",
                operation,
                reason,
            )
            await asyncio.sleep(pause)
            pause = min(2 * pause, 1.0)

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """Read the conversation, waiting out a short database outage.

        From the cache when the database holds nothing newer (bot.tracker_cache).
        """
        return await self._patiently("read", lambda: self._read(sender_id))

    async def _read(self, sender_id: str) -> DialogueStateTracker | None:
        def rasas_read() -> Awaitable[DialogueStateTracker | None]:
            return SQLTrackerStore.retrieve(self, sender_id)

        if self.cache is None:
            return await rasas_read()
        return await self.cache.retrieve(sender_id, rasas_read)

    async def retrieve_full_tracker(
        self, conversation_id: str
    ) -> DialogueStateTracker | None:
        """Read all sessions of the conversation, waiting out a short outage."""
        return await self._patiently(
            "read",
            lambda: SQLTrackerStore.retrieve_full_tracker(self, conversation_id),
        )

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Store the new events, waiting out a short outage (safe to repeat)."""
        await self._patiently("write", lambda: self._write(tracker))

    async def _write(self, tracker: DialogueStateTracker) -> None:
        def rasas_save() -> Awaitable[None]:
            return SQLTrackerStore.save(self, tracker)

        if self.cache is None:
            await rasas_save()
        else:
            await self.cache.save(tracker, rasas_save)


def write_ahead_log(dbapi_connection: Any, _record: object) -> None:
    """Each new SQLite connection of the store: write-ahead log, one fsync less."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def ensure_last_event_index(engine: sa.engine.Engine, table: sa.Table) -> None:
    """Create the (sender_id, id) index unless the database is SQLite or has it.

    Once per database: on a million events a few seconds, while writes wait. A failure
    does not stop the server (the store works without it, only slower on PostgreSQL
    without statistics): another server creating it at the same moment, or a database
    that is not up yet (the next start creates it).
    """
    if engine.dialect.name == "sqlite":
        return
    index = sa.Index(LAST_EVENT_INDEX, table.c.sender_id, table.c.id)
    try:
        names = {i["name"] for i in sa.inspect(engine).get_indexes(table.name)}
        if LAST_EVENT_INDEX not in names:
            index.create(engine)
            logger.info("created index %s on %s", LAST_EVENT_INDEX, table.name)
    except sqlalchemy.exc.DBAPIError as error:
        logger.warning(
            "could not create index %s: %s", LAST_EVENT_INDEX, describe(error)
        )
    finally:
        table.indexes.discard(index)  # Rasa's model stays as it is
