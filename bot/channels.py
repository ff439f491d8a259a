"""The web chat's socket.io channel: Rasa's `socketio` protocol with server-issued sessions.

Rasa's own channel lets a socket join whatever conversation id it names, and accepts
sockets from any origin. This one keeps the protocol (`session_request` →
`session_confirm`, `user_uttered` / `bot_uttered`) and changes three things:

- Session ids are issued by the server: 128 random bits plus an HMAC tag
  (bot.sessions). A `session_request` carrying a valid id continues that conversation
  (a reload, another tab); anything else gets a fresh id.
- The conversation of a socket is the one bound to it at `session_request`; the
  `session_id` a message names must be that one, so a socket can never speak in, or
  listen to, another patient's conversation.
- Origins are checked: the server's own origin, plus ALLOWED_ORIGINS (bot.settings).

After `session_confirm` the server sends `session_history`: the conversation so far,
read from the tracker store, so a reloaded page shows it without keeping health
questions in the browser's storage.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from bot import sessions, settings

logger = logging.getLogger(__name__)

HISTORY_LIMIT = 200


def conversation_history(tracker: Any, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """The patient's and the assistant's messages of a tracker, oldest first."""
    turns: list[dict[str, Any]] = []
    for event in tracker.events:
        kind = getattr(event, "type_name", "")
        if kind == "user" and event.text is not None:
            turns.append({"sender": "user", "text": event.text})
        elif kind == "bot":
            turns.append({"sender": "bot", "text": event.text, **(event.data or {})})
    return turns[-limit:]


class ClinicSocketIOOutput(SocketIOOutput):
    """Sends each bot message as one `bot_uttered` event, shaped like a REST reply.

    Rasa's socket.io output splits a message into several events and cannot send the
    `custom` part; the page needs the text, the buttons and `custom.answer` together.
    """

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        """Emit `{"text", "buttons", "custom"}` to the conversation's room."""
        reply = {
            key: message[key]
            for key in ("text", "buttons", "custom", "image")
            if message.get(key) is not None
        }
        await self.sio.emit(self.bot_message_evt, reply, room=recipient_id)


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


class ClinicSocketIO(SocketIOInput):
    """socket.io for the web chat: server-issued sessions, checked origins, history."""

    app: Sanic | None = None

    @classmethod
    def name(cls) -> str:
        """The channel's name, as in credentials.yml and the trackers' input_channel."""
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Build from credentials.yml (same keys as Rasa's socketio channel)."""
        credentials = credentials or {}
        return cls(
            credentials.get("user_message_evt", "user_uttered"),
            credentials.get("bot_message_evt", "bot_uttered"),
            credentials.get("namespace"),
            True,
            credentials.get("socketio_path", "/socket.io"),
        )

    def get_output_channel(self) -> ClinicSocketIOOutput | None:
        """The output for messages Rasa sends outside a reply (e.g. reminders)."""
        if self.sio is None:
            return None
        return ClinicSocketIOOutput(self.sio, self.bot_message_evt)

    async def _history(self, session_id: str) -> list[dict[str, Any]]:
        agent = getattr(getattr(self.app, "ctx", None), "agent", None)
        if agent is None or agent.tracker_store is None:
            return []
        try:
            tracker = await agent.tracker_store.retrieve(session_id)
        except Exception:  # a history we cannot read must not stop the chat
            logger.exception("could not read a conversation's history")
            return []
        return conversation_history(tracker) if tracker is not None else []

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        """The socket.io server and its health route."""
        origins = settings.allowed_origins()
        # None: engine.io allows the server's own origin only; a list: those plus own.
        sio = AsyncServer(
            async_mode="sanic",
            cors_allowed_origins=origins or None,
            max_http_buffer_size=settings.max_socket_bytes(),
        )
        if origins:

            def own_origin_too(environ: dict[str, Any]) -> list[str]:
                host = environ.get("HTTP_HOST")
                scheme = environ.get("wsgi.url_scheme", "http")
                own = [f"{scheme}://{host}"] if host else []
                return [*origins, *own]

            sio.eio._cors_allowed_origins = own_origin_too
            # Rasa's configure_cors (Sanic-Cors, same ALLOWED_ORIGINS) already writes the
            # CORS headers of every response; engine.io writing them too doubles
            # Access-Control-Allow-Origin, which browsers refuse. engine.io still turns
            # other origins away (own_origin_too above).
            sio.eio._cors_headers = lambda environ: []
        socket_blueprint = SocketBlueprint(
            sio, self.socketio_path, "socketio_webhook", __name__
        )
        self.sio = sio
        namespace = self.namespace

        @socket_blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("connect", namespace=namespace)
        async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
            return True

        @sio.on("session_request", namespace=namespace)
        async def session_request(sid: str, data: Any = None) -> None:
            asked = data.get("session_id") if isinstance(data, dict) else None
            resumed = sessions.is_valid(asked)
            session_id = asked if resumed and isinstance(asked, str) else sessions.new_id()
            await sio.save_session(sid, {"session_id": session_id}, namespace=namespace)
            await _maybe_await(sio.enter_room(sid, session_id, namespace=namespace))
            await sio.emit("session_confirm", session_id, room=sid, namespace=namespace)
            history = await self._history(session_id) if resumed else []
            await sio.emit(
                "session_history", history, room=sid, namespace=namespace
            )

        @sio.on(self.user_message_evt, namespace=namespace)
        async def handle_message(sid: str, data: Any = None) -> None:
            bound = (await sio.get_session(sid, namespace=namespace)).get("session_id")
            if not isinstance(data, dict) or bound is None:
                await sio.emit(
                    "session_error", {"reason": "no session: send session_request first"},
                    room=sid, namespace=namespace,
                )
                return
            named = data.get("session_id")
            if named not in (None, bound):
                logger.warning("a socket named a conversation that is not its own")
                await sio.emit(
                    "session_error", {"reason": "not this socket's session"},
                    room=sid, namespace=namespace,
                )
                return
            text = data.get("message")
            if not isinstance(text, str):
                text = ""
            metadata = data.get(self.metadata_key)
            message = UserMessage(
                text,
                ClinicSocketIOOutput(sio, self.bot_message_evt),
                bound,
                input_channel=self.name(),
                metadata=metadata if isinstance(metadata, dict) else None,
            )
            await on_new_message(message)

        return socket_blueprint
