"""One engine and one session factory per database URL, per process.

Callers open a session per unit of work:

    with session_scope() as session:
        section = queries.section_by_ref(session, "pain-management-injections.txt#5")
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from knowledge import settings

#: PostgreSQL keeps the live store in this schema; a build goes to a fresh one first.
PG_SCHEMA = "knowledge"


def is_sqlite(url: str) -> bool:
    """Whether a URL names a SQLite database."""
    return url.startswith("sqlite")


@lru_cache(maxsize=8)
def get_engine(url: str | None = None, schema: str = PG_SCHEMA) -> Engine:
    """The engine for a URL (the configured store by default)."""
    url = url or settings.database_url()
    if is_sqlite(url):
        engine = create_engine(url, future=True)

        @event.listens_for(engine, "connect")
        def _read_only_friendly(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_connection.execute("PRAGMA foreign_keys=ON")

        return engine
    return create_engine(
        url,
        future=True,
        pool_pre_ping=True,
        execution_options={"schema_translate_map": {None: schema}},
    )


@lru_cache(maxsize=8)
def _session_factory(url: str) -> sessionmaker:
    return sessionmaker(bind=get_engine(url), future=True, expire_on_commit=False)


def get_session_factory(url: str | None = None) -> sessionmaker:
    """The session factory bound to the engine for a URL.

    By default the configured store's: KNOWLEDGE_DB_URL is read on every call, so a
    change is honoured.
    """
    return _session_factory(url or settings.database_url())


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session for one unit of work, in a transaction that ends with it."""
    factory = get_session_factory(url)
    with factory() as session, session.begin():
        yield session
