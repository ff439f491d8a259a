"""Kept connections and write-ahead logging for Rasa's SQL tracker store on SQLite.

Rasa's SQL tracker store on SQLite gets no connection pool (SQLAlchemy 1.4 opens and
closes a file connection per query session, two to three times a message), and the file
is in rollback-journal mode. It gets a small pool of kept connections, and the file
write-ahead logging with `synchronous=NORMAL`: a commit no longer waits for two fsyncs,
readers never wait for the writer, and a crash still cannot corrupt the file (it can lose
the last commits, which for a chat is the message being answered).
"""

from __future__ import annotations

from typing import Any

from sanic import Sanic

from bot.patches import put_in_place, rasa_original

REPLACES = ("rasa.core.tracker_store.create_engine_kwargs",)
CHECKED_RASA_VERSION = "3.6.21"


def on_connect(dbapi_connection: Any, _record: object) -> None:
    """Write-ahead logging for every new SQLite connection."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def sqlite_pool_and_write_ahead_log() -> None:
    """Kept connections for SQLite tracker stores; WAL on every SQLite connection."""
    import rasa.core.tracker_store as tracker_store
    from sqlalchemy import event
    from sqlalchemy.engine import URL, Engine, make_url
    from sqlalchemy.pool import QueuePool

    engine_kwargs = rasa_original(tracker_store, "create_engine_kwargs")

    def create_engine_kwargs(url: URL | str) -> dict[str, Any]:
        kwargs = dict(engine_kwargs(url))
        if make_url(str(url)).get_backend_name() == "sqlite":
            # Rasa queries the store from the event loop's thread; the pool may still
            # hand a connection to another thread, hence check_same_thread off.
            kwargs.update(
                poolclass=QueuePool,
                pool_size=4,
                max_overflow=4,
                connect_args={"check_same_thread": False},
            )
        return kwargs

    put_in_place(
        tracker_store, "create_engine_kwargs", create_engine_kwargs, engine_kwargs
    )

    if not event.contains(Engine, "connect", on_connect):
        event.listen(Engine, "connect", on_connect)


def install(_app: Sanic) -> None:
    """Apply the patch."""
    sqlite_pool_and_write_ahead_log()
