"""One kept-alive aiohttp session per endpoint instead of one per action call.

Rasa opens a new aiohttp session (a new TCP connection) to the action server for every
action call; one session per endpoint and event loop keeps the connection alive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
from sanic import Sanic

from bot.patches import put_in_place, rasa_original

REPLACES = ("rasa.utils.endpoints.EndpointConfig.session",)
CHECKED_RASA_VERSION = "3.6.21"


class _KeptSession:
    """Stands in for a new session in Rasa's `async with endpoint.session()`."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self._session

    async def __aexit__(self, *_exc: object) -> None:
        return None  # the session stays open for the next call


def keep_connections_alive() -> Callable[
    [Sanic, asyncio.AbstractEventLoop], Coroutine[Any, Any, None]
]:
    """One aiohttp session per endpoint and event loop; returns the closer."""
    from rasa.utils.endpoints import EndpointConfig

    open_session: Callable[[EndpointConfig], aiohttp.ClientSession] = rasa_original(
        EndpointConfig, "session"
    )
    sessions: dict[tuple[int, int], aiohttp.ClientSession] = {}

    def session(self: EndpointConfig) -> _KeptSession:
        key = (id(self), id(asyncio.get_running_loop()))
        kept = sessions.get(key)
        if kept is None or kept.closed:
            kept = sessions[key] = open_session(self)
        return _KeptSession(kept)

    async def close_all(*_args: Any) -> None:
        for kept in list(sessions.values()):
            await kept.close()
        sessions.clear()

    put_in_place(EndpointConfig, "session", session, open_session)
    return close_all


def install(app: Sanic) -> None:
    """Apply the patch; the sessions are closed when the server stops."""
    app.register_listener(keep_connections_alive(), "after_server_stop")
