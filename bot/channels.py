"""The web chat's socket.io channel: Rasa's `socketio` protocol, conversations kept apart.

Standard Rasa web clients (rasa-webchat, Rasa's chat-widget) work with it unmodified:

- `bot_uttered` carries exactly what Rasa 3.6's SocketIOOutput sends: `{"text"}` per
  paragraph, the buttons as `quick_replies` `[{"content_type": "text", "title",
  "payload"}]` on the last one. The whole reply as the REST channel gives it (`text`,
  `buttons`, `custom` with the reply contract) goes, in the same order, in a second event,
  `clinic_reply` (REPLY_EVENT), which the project's page reads and other clients ignore.
- A client may keep a session id of its own (`session_request {session_id}`, then
  `user_uttered {message, session_id}`): it is confirmed as it is. Its conversation is
  derived from it with the server's secret (bot.sessions), so knowing a conversation's
  id opens nothing. A missing or unusable id gets a fresh one.

And Rasa's own channel lets a socket join any conversation it names and accepts any
origin; here:

- the conversation of a socket is the one bound to it at `session_request`; a message
  naming another session id gets `session_error`, so a socket can never speak in, or
  listen to, another patient's conversation;
- origins are checked: the server's own origin, plus ALLOWED_ORIGINS (clinic.settings);
- a message is also sent, as `user_echo` `{text}`, to the conversation's other sockets
  (the patient's other tabs), which receive the replies too;
- after `session_confirm` the server sends `session_history`: the conversation so far,
  read from the tracker store, so a reloaded page shows it without keeping health
  questions in the browser's storage.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import (
    InputChannel,
    UserMessage,
)
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from bot import sessions
from bot.outage import answer_unhandled
from clinic import settings

logger = logging.getLogger(__name__)

HISTORY_LIMIT = 200
#: The event carrying each whole reply, reply contract included (the project's page).
REPLY_EVENT = "clinic_reply"
#: What a message's `metadata` may be: a JSON object at most this deep and this long
#: (serialised). Clients send a few keys (rasa-webchat's `customData`); a deeply nested
#: object only makes Rasa's copies and the tracker store recurse until they fail.
MAX_METADATA_DEPTH = 20
MAX_METADATA_BYTES = 4096
# C0/C1 control characters except tab and newline, and lone UTF-16 surrogates (JSON can
# carry "\ud800"; no database or encoder accepts them).
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(text: str) -> str:
    """A message's text without control characters or lone surrogates.

    They carry nothing a patient means, and NUL or a lone surrogate would make the
    tracker store (PostgreSQL) or the JSON encoder fail on the whole conversation.
    Emoji, accents and right-to-left text pass unchanged.
    """
    return _UNPRINTABLE.sub("", text)


def conversation_history(
    tracker: Any, limit: int = HISTORY_LIMIT
) -> list[dict[str, Any]]:
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
    """Rasa's socket.io output, and each whole reply again in REPLY_EVENT for the page.

    Rasa's output splits a message into several `bot_uttered` events and cannot send the
    `custom` part (its send_custom_json passes the JSON as emit's keyword arguments); the
    page shows a reply's text, buttons and `custom.answer` together.
    """

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        """Emit Rasa's `bot_uttered` shapes, then `{"text", "buttons", "custom"}`."""
        standard = {key: value for key, value in message.items() if key != "custom"}
        await super().send_response(recipient_id, standard)
        reply = {
            key: message[key]
            for key in ("text", "buttons", "custom", "image")
            if message.get(key) is not None
        }
        await self.sio.emit(REPLY_EVENT, reply, room=recipient_id)


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
            client_id = asked if sessions.acceptable(asked) else sessions.new_id()
            conversation = sessions.conversation_id(client_id)
            previous = (await sio.get_session(sid, namespace=namespace)).get(
                "conversation"
            )
            if previous not in (None, conversation):
                await _maybe_await(sio.leave_room(sid, previous, namespace=namespace))
            await sio.save_session(
                sid,
                {"client_id": client_id, "conversation": conversation},
                namespace=namespace,
            )
            await _maybe_await(sio.enter_room(sid, conversation, namespace=namespace))
            await sio.emit("session_confirm", client_id, room=sid, namespace=namespace)
            history = await self._history(conversation)
            await sio.emit("session_history", history, room=sid, namespace=namespace)

        @sio.on(self.user_message_evt, namespace=namespace)
        async def handle_message(sid: str, data: Any = None) -> None:
            bound = await sio.get_session(sid, namespace=namespace)
            conversation = bound.get("conversation")
            if not isinstance(data, dict) or conversation is None:
                await sio.emit(
                    "session_error",
                    {"reason": "no session: send session_request first"},
                    room=sid,
                    namespace=namespace,
                )
                return
            if data.get("session_id") not in (None, bound["client_id"]):
                logger.warning("a socket named a session that is not its own")
                await sio.emit(
                    "session_error",
                    {"reason": "not this socket's session"},
                    room=sid,
                    namespace=namespace,
                )
                return
            text = data.get("message")
            text = clean_text(text) if isinstance(text, str) else ""
            metadata = data.get(self.metadata_key)
            if metadata is not None and (problem := metadata_problem(metadata)):
                # The patient's words are still answered; only the metadata is left out.
                logger.warning("a socket message's metadata was left out: %s", problem)
                metadata = None
            message = UserMessage(
                text,
                ClinicSocketIOOutput(sio, self.bot_message_evt),
                conversation,
                input_channel=self.name(),
                metadata=metadata,
            )
            # The patient's other tabs get the replies (same room); show them the message too.
            await sio.emit(
                "user_echo",
                {"text": text},
                room=conversation,
                skip_sid=sid,
                namespace=namespace,
            )
            try:
                await on_new_message(message)
            except Exception as error:  # the message itself stays out of the log
                await answer_failed(self.app, message, error)

        return socket_blueprint


def json_depth(value: Any) -> int:
    """How deeply lists and objects nest in a JSON value (a scalar is 0), iteratively."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        children: Any = ()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
        pending.extend((child, depth + 1) for child in children)
    return deepest


def metadata_problem(metadata: Any) -> str | None:
    """Why a message's metadata is refused, or None when it is a small JSON object."""
    if not isinstance(metadata, dict):
        return '"metadata" must be a JSON object when given'
    if json_depth(metadata) > MAX_METADATA_DEPTH:
        return f'"metadata" may nest at most {MAX_METADATA_DEPTH} levels deep'
    if len(json.dumps(metadata, ensure_ascii=False).encode()) > MAX_METADATA_BYTES:
        return f'"metadata" must be at most {MAX_METADATA_BYTES} bytes as JSON'
    return None


async def answer_failed(
    app: Sanic | None, message: UserMessage, error: BaseException
) -> None:
    """Reply to a message Rasa failed on: emergency guidance or the apology, never nothing.

    One log line names the failure's type, never its text (which could quote the
    message) and without a traceback; bot.outage.answer_unhandled sends the
    reply through the message's own output channel.
    """
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    reason = f"{type(error).__name__} while handling a message"
    if agent is None:
        logger.error("message not handled, no model loaded: %s", reason)
        return
    await answer_unhandled(agent, message, RuntimeError(reason))
