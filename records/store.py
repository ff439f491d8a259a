"""The conversations database: Rasa's SQL tracker store and the clinic's own tables.

The URL comes from CONVERSATIONS_DB_URL (e.g. postgresql+psycopg2://... in the scaled
profile); by default it is the SQLite file CONVERSATIONS_DB (build/conversations.db),
the same file endpoints.yml gives Rasa's tracker store. Callers open a session per unit
of work with `session_scope()`.

The tables are those declared on records' `Base`: records' own, and those of the packages
above that keep theirs in the same database (the staff console's accounts,
staff.models). Records imports none of them; `create_tables` creates whatever has been
declared by the time a session opens, so the layers point one way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from weakref import WeakKeyDictionary

import sqlalchemy.exc
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from clinic import settings
from knowledge.settings import PROJECT_ROOT
from records.models import Base


def conversations_db_path() -> str:
    """The SQLite file of the default profile, relative to the project or absolute."""
    return (
        settings.current().conversations_db.strip()
        or settings.Settings.conversations_db
    )


def conversations_url() -> str:
    """The SQLAlchemy URL of the conversations database."""
    url = settings.current().conversations_db_url
    if url:
        return url
    path = conversations_db_path()
    absolute = path if os.path.isabs(path) else str(PROJECT_ROOT / path)
    return f"sqlite:///{absolute}"


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> Engine:
    """One engine per URL per process; the clinic's tables are created if missing."""
    url = url or conversations_url()
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        engine = create_engine(url, future=True, connect_args={"timeout": 15})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA foreign_keys=ON")

    else:
        engine = create_engine(url, future=True, pool_pre_ping=True)
    create_tables(engine)
    return engine


#: How many of Base's tables each engine has had created (a weak key: the tracker
#: store's engines come and go in tests).
_TABLES_CREATED: WeakKeyDictionary[Engine, int] = WeakKeyDictionary()
#: Tries at creating the tables when servers starting together race to create them.
CREATE_ATTEMPTS = 5


def create_tables(engine: Engine) -> None:
    """Create the tables declared on Base that `engine` has not been given yet.

    Cheap when nothing new was declared (one count), so every session checks: a package
    above records that declares its tables after the engine was made (staff.models,
    imported with the console) still finds them in the database.
    """
    declared = len(Base.metadata.tables)
    if _TABLES_CREATED.get(engine) != declared:
        for attempt in range(CREATE_ATTEMPTS):
            try:
                Base.metadata.create_all(engine)
                break
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
                # Another server created the same table at the same moment (PostgreSQL:
                # a unique violation in pg_type, or "already exists"); once its
                # transaction is done, create_all finds the table and skips it.
                if attempt == CREATE_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
        _TABLES_CREATED[engine] = declared


@lru_cache(maxsize=8)
def _session_factory(url: str) -> sessionmaker:
    return sessionmaker(bind=get_engine(url), future=True, expire_on_commit=False)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session for one unit of work, in a transaction that ends with it."""
    url = url or conversations_url()
    create_tables(get_engine(url))
    factory = _session_factory(url)
    with factory() as session, session.begin():
        yield session
