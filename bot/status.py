"""GET /health on the Rasa server: which parts of the assistant are up, as JSON.

    {"status": "ok" | "degraded",
     "parts": {"rasa": {"up": true},
               "action_server": {"up": false, "detail": "ClientConnectorError"},
               "knowledge_store": {"up": true},
               "conversations_db": {"up": true, "store": "ResilientSQLTrackerStore"}}}

200 when every part is up, 503 otherwise, so a monitor can watch the one URL. Each check
has STATUS_TIMEOUT seconds; a part that fails says only the kind of error, never a
conversation, a database URL or a setting. The knowledge store is the action server's
(KNOWLEDGE_DB_URL, read here the same way); the conversations database is the Rasa
server's tracker store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from rasa.core.tracker_store import FailSafeTrackerStore
from rasa.utils.endpoints import EndpointConfig
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

STATUS_TIMEOUT = 3.0


def health_url(action_endpoint: EndpointConfig | None) -> str | None:
    """The action server's /health, beside the webhook endpoints.yml names."""
    if action_endpoint is None or not action_endpoint.url:
        return None
    base = action_endpoint.url.rstrip("/")
    if base.endswith("/webhook"):
        base = base[: -len("/webhook")]
    return f"{base}/health"


async def action_server_up(url: str | None) -> dict[str, Any]:
    """Whether the action server answers its health check."""
    if url is None:
        return {"up": False, "detail": "no action endpoint configured"}
    timeout = aiohttp.ClientTimeout(total=STATUS_TIMEOUT)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(url) as answer,
    ):
        if answer.status != 200:
            return {"up": False, "detail": f"HTTP {answer.status}"}
    return {"up": True}


def knowledge_store_up() -> dict[str, Any]:
    """Whether the knowledge store is built, current and not empty."""
    from knowledge import queries
    from knowledge.environment import session_scope

    with session_scope() as session:
        queries.check_store(session)
    return {"up": True}


def conversations_db_up(agent: Any) -> dict[str, Any]:
    """Whether the tracker store's events table can be read (a locked SQLite cannot)."""
    store = getattr(agent, "tracker_store", None)
    if isinstance(store, FailSafeTrackerStore):
        store = store._tracker_store
    if store is None:
        return {"up": False, "detail": "no tracker store"}
    engine = getattr(store, "engine", None)
    if engine is not None:
        import sqlalchemy as sa

        events = store.SQLEvent.__table__
        with engine.connect() as connection:
            connection.execute(sa.select(events.c.id).limit(1)).all()
    return {"up": True, "store": type(store).__name__}


async def _checked(check: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(check(), STATUS_TIMEOUT)
    except asyncio.TimeoutError:
        return {"up": False, "detail": f"no answer within {STATUS_TIMEOUT:g} s"}
    except Exception as error:  # the kind of failure only: its text may quote data
        return {"up": False, "detail": type(error).__name__}


async def status(app: Sanic, action_endpoint: EndpointConfig | None) -> dict[str, Any]:
    """Every part's state, checked now, at the same time."""
    agent = getattr(app.ctx, "agent", None)
    ready = agent is not None and agent.is_ready()
    names = ("action_server", "knowledge_store", "conversations_db")
    results = await asyncio.gather(
        _checked(lambda: action_server_up(health_url(action_endpoint))),
        _checked(lambda: asyncio.to_thread(knowledge_store_up)),
        _checked(lambda: asyncio.to_thread(conversations_db_up, agent)),
    )
    parts: dict[str, dict[str, Any]] = {
        "rasa": {"up": True} if ready else {"up": False, "detail": "no model loaded"},
        **dict(zip(names, results, strict=True)),
    }
    healthy = all(part["up"] for part in parts.values())
    return {"status": "ok" if healthy else "degraded", "parts": parts}


def install(app: Sanic, action_endpoint: EndpointConfig | None) -> None:
    """Serve GET /health."""

    @app.get("/health")
    async def status_page(request: Request) -> HTTPResponse:
        body = await status(app, action_endpoint)
        return response.json(
            body,
            status=200 if body["status"] == "ok" else 503,
            headers={"Cache-Control": "no-store"},
        )
