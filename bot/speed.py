"""Speed measures for the Rasa server, each one kept because a measurement paid for it.

`apply(app)` is called once from bot.server.build_app. Every measure can be switched off
for an A/B comparison with SPEED_MEASURES (a comma-separated list of the names below;
"none" switches all off, unset means all on). What each one bought is in
docs/benchmarks.md ("What made it faster").

- `subclasses`: Rasa looks event and slot classes up by walking the class tree on every
  event it deserialises (rasa.shared.utils.common.all_subclasses); a profile of the
  server under load found a fifth of its time there. The tree does not change once the
  server is running, so the walk is remembered per class.
- `keepalive`: Rasa opens a new aiohttp session (a new TCP connection) to the action
  server for every action call; one session per endpoint keeps the connection alive.
- `schema`: Rasa validates every action server reply with `jsonschema.validate`, which
  first checks the schema itself, then builds a validator: a fifth of the server's time
  under load. The validator is built once.
- `sqlite`: Rasa's SQL tracker store on SQLite gets no connection pool (SQLAlchemy 1.4
  opens and closes a file connection per query session, two to three times a message),
  and the file is in rollback-journal mode. It gets a small pool of kept connections, and
  the file write-ahead logging with `synchronous=NORMAL`: a commit no longer waits for
  two fsyncs, readers never wait for the writer, and a crash still cannot corrupt the
  file (it can lose the last commits, which for a chat is the message being answered).
- `trackercache`: recent conversations kept in memory in front of the SQL tracker store,
  checked against the database with one indexed query (bot.tracker_cache).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

MEASURES = ("subclasses", "keepalive", "schema", "sqlite", "trackercache")


def enabled_measures() -> set[str]:
    """The measures switched on by SPEED_MEASURES (all of them when it is unset)."""
    raw = os.environ.get("SPEED_MEASURES", "").strip().lower()
    if not raw or raw == "all":
        return set(MEASURES)
    if raw == "none":
        return set()
    names = {name.strip() for name in raw.split(",") if name.strip()}
    unknown = names - set(MEASURES)
    if unknown:
        logger.warning("unknown SPEED_MEASURES ignored: %s", ", ".join(sorted(unknown)))
    return names & set(MEASURES)


def memoize_all_subclasses() -> None:
    """Remember Rasa's class-tree walk: classes are all imported before serving."""
    import rasa.shared.utils.common as common

    walk: Callable[[Any], list[Any]] = getattr(
        common.all_subclasses, "__wrapped__", common.all_subclasses
    )
    known: dict[Any, list[Any]] = {}

    def all_subclasses(cls: Any) -> list[Any]:
        if cls not in known:
            known[cls] = walk(cls)
        return list(known[cls])

    all_subclasses.__wrapped__ = walk  # type: ignore[attr-defined]
    common.all_subclasses = all_subclasses


class _KeptSession:
    """Stands in for a new session in Rasa's `async with endpoint.session()`."""

    def __init__(self, session: Any) -> None:
        self._session = session

    async def __aenter__(self) -> Any:
        return self._session

    async def __aexit__(self, *_exc: object) -> None:
        return None  # the session stays open for the next call


def keep_connections_alive() -> Callable[[], Any]:
    """One aiohttp session per endpoint and event loop; returns the closer."""
    import asyncio

    from rasa.utils.endpoints import EndpointConfig

    open_session = getattr(
        EndpointConfig.session, "__wrapped__", EndpointConfig.session
    )
    sessions: dict[tuple[int, int], Any] = {}

    def session(self: EndpointConfig) -> Any:
        key = (id(self), id(asyncio.get_running_loop()))
        kept = sessions.get(key)
        if kept is None or kept.closed:
            kept = sessions[key] = open_session(self)
        return _KeptSession(kept)

    async def close_all(*_args: object) -> None:
        for kept in list(sessions.values()):
            await kept.close()
        sessions.clear()

    session.__wrapped__ = open_session  # type: ignore[attr-defined]
    EndpointConfig.session = session
    return close_all


def validate_action_results_once() -> None:
    """Check action server replies with one validator built from Rasa's schema."""
    from jsonschema import validators
    from rasa.core.actions.action import RemoteAction

    original = getattr(
        RemoteAction._validate_action_result,
        "__wrapped__",
        RemoteAction._validate_action_result,
    )
    schema = RemoteAction.action_response_format_spec()
    validator = validators.validator_for(schema)(schema)

    def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        if validator.is_valid(result):
            return True
        return bool(original(self, result))  # raises with Rasa's explanation

    _validate_action_result.__wrapped__ = original  # type: ignore[attr-defined]
    RemoteAction._validate_action_result = _validate_action_result


def sqlite_pool_and_write_ahead_log() -> None:
    """Kept connections for SQLite tracker stores; WAL on every SQLite connection."""
    import rasa.core.tracker_store as tracker_store
    from sqlalchemy import event
    from sqlalchemy.engine import Engine, make_url
    from sqlalchemy.pool import QueuePool

    engine_kwargs = getattr(
        tracker_store.create_engine_kwargs,
        "__wrapped__",
        tracker_store.create_engine_kwargs,
    )

    def create_engine_kwargs(url: Any) -> dict[str, Any]:
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

    create_engine_kwargs.__wrapped__ = engine_kwargs  # type: ignore[attr-defined]
    tracker_store.create_engine_kwargs = create_engine_kwargs

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if type(dbapi_connection).__module__.startswith("sqlite3"):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    if not event.contains(Engine, "connect", on_connect):
        event.listen(Engine, "connect", on_connect)


def share_locks_between_workers(endpoints: Any) -> None:
    """With SANIC_WORKERS > 1 and no lock store configured, use bot.lock_store's.

    Rasa refuses more than one worker with its in-memory lock store (each worker would
    have its own locks); the file lock store is shared by the workers on this machine.
    """
    from rasa.utils.endpoints import EndpointConfig

    try:
        workers = int(os.environ.get("SANIC_WORKERS", "1"))
    except ValueError:
        return  # Rasa reports the bad value and uses one worker
    if workers > 1 and endpoints is not None and endpoints.lock_store is None:
        endpoints.lock_store = EndpointConfig(type="bot.lock_store.FileLockStore")


def apply(app: Any, endpoints: Any = None) -> set[str]:
    """Switch the enabled measures on for this server process; returns their names.

    `endpoints` (Rasa's AvailableEndpoints) gets the shared lock store when more than
    one Sanic worker is asked for.
    """
    share_locks_between_workers(endpoints)
    measures = enabled_measures()
    if "subclasses" in measures:
        memoize_all_subclasses()
    if "keepalive" in measures:
        app.register_listener(keep_connections_alive(), "after_server_stop")
    if "schema" in measures:
        validate_action_results_once()
    if "sqlite" in measures:
        sqlite_pool_and_write_ahead_log()
    if "trackercache" in measures:
        from bot import tracker_cache

        tracker_cache.install()
    logger.debug("speed measures: %s", ", ".join(sorted(measures)) or "none")
    return measures
