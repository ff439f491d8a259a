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
import ipaddress
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import (
    CollectingOutputChannel,
    InputChannel,
    UserMessage,
)
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from bot import sessions
from bot.outage import answer_unhandled
from clinic import settings

logger = logging.getLogger(__name__)

HISTORY_LIMIT = 200
#: What the REST channel says when Rasa had nothing to say (domain.yml).
SILENCE_RESPONSE = "utter_ready"
#: The event carrying each whole reply, reply contract included (the project's page).
REPLY_EVENT = "clinic_reply"
MAX_SENDER_CHARS = 255
#: What a message's `metadata` may be: a JSON object at most this deep and this long
#: (serialised). Clients send a few keys (rasa-webchat's `customData`); a deeply nested
#: object only makes Rasa's copies and the tracker store recurse until they fail.
MAX_METADATA_DEPTH = 20
MAX_METADATA_BYTES = 4096
#: The media types a REST body may be sent as. A browser may post text/plain or a form
#: to another site without asking it first (no CORS preflight); application/json it may
#: not, so this keeps a stranger's web page from writing into the clinic's records.
JSON_MEDIA_TYPES = ("application/json",)
#: REST sender ids of this form are refused: it is the form of the web chat's
#: conversation ids (bot.sessions.conversation_id), so a REST client can never write
#: into, or read the replies of, a patient's web chat.
_WEB_CHAT_CONVERSATION = re.compile(rf"[0-9a-f]{{{sessions.CONVERSATION_HEX}}}")
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


class BadRequestError(ValueError):
    """A REST request the channel refuses, with the reason it gives back (HTTP 400)."""


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


def is_json_media_type(content_type: str | None) -> bool:
    """Whether a Content-Type header names JSON (parameters such as charset allowed)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type in JSON_MEDIA_TYPES


def parse_rest_body(
    body: bytes, max_bytes: int
) -> tuple[str, str, dict[str, Any] | None]:
    """(sender, message, metadata) from a REST request body, or BadRequestError with why."""
    if len(body) > max_bytes:
        raise BadRequestError(f"the request body is larger than {max_bytes} bytes")
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequestError("the request body is not UTF-8") from None
    except ValueError:
        raise BadRequestError("the request body is not valid JSON") from None
    except RecursionError:  # nested deeper than Python's JSON parser goes
        raise BadRequestError(
            "the request body nests too deeply: metadata may nest at most "
            f"{MAX_METADATA_DEPTH} levels"
        ) from None
    if not isinstance(data, dict):
        raise BadRequestError(
            'the body must be a JSON object {"sender": ..., "message": ...}'
        )
    sender, message = data.get("sender"), data.get("message")
    metadata = data.get("metadata")
    if not isinstance(sender, str) or not sender.strip():
        raise BadRequestError('"sender" must be a non-empty string')
    if len(sender) > MAX_SENDER_CHARS or clean_text(sender) != sender:
        raise BadRequestError(
            f'"sender" must be at most {MAX_SENDER_CHARS} printable characters'
        )
    if _WEB_CHAT_CONVERSATION.fullmatch(sender):
        raise BadRequestError(
            f'"sender" must not be {sessions.CONVERSATION_HEX} hexadecimal digits:'
            " that is the form of the web chat's conversations"
        )
    if not isinstance(message, str):
        raise BadRequestError('"message" must be a string')
    if metadata is not None and (problem := metadata_problem(metadata)):
        raise BadRequestError(problem)
    return sender, clean_text(message), metadata


def is_loopback(interface: str) -> bool:
    """Whether a server listening on `interface` is reachable from this machine only."""
    if interface.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(interface.strip().strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _refused(status: int, error: str, reason: str, **headers: str) -> HTTPResponse:
    return response.json(
        {"error": error, "reason": reason}, status=status, headers=headers or None
    )


class ClinicRest(InputChannel):
    """Rasa's REST protocol (`POST /webhooks/rest/webhook`), with its input checked.

    Rasa's RestInput trusts its body: a list, a number as the message, a 5 MB sender id
    or a metadata object nested 5,000 levels deep reaches the dialogue engine and ends
    in a 500, an empty reply or a stored oddity. This one answers with a JSON reason:

    - 415 unless the body is sent as `application/json` (a stranger's web page can post
      text/plain across sites without asking; JSON it cannot);
    - 400 for anything but `{"sender": str, "message": str, "metadata"?: object}`, with
      metadata at most MAX_METADATA_DEPTH deep and MAX_METADATA_BYTES long, and for a
      sender id of the web chat's form (REST can never name a web chat conversation);
    - 401 without `Authorization: Bearer $REST_TOKEN` in the production profile, and
      whenever the server listens beyond loopback (`listens_beyond_loopback`, set by
      bot.server from its interface); 403 there when no REST_TOKEN is configured.

    It takes the input channel from itself (not from the body) and never logs the
    message. Empty or over-long messages are valid requests: the NLU guard answers them
    with a friendly note. A message that fails inside Rasa still gets a reply: the
    emergency guidance for a red flag, otherwise the apology with the phone number.
    """

    #: Set by bot.server.build_app when the server listens on a non-loopback interface.
    listens_beyond_loopback = False

    @classmethod
    def name(cls) -> str:
        """Rasa's own name, so the URL and the trackers' input_channel stay Rasa's."""
        return "rest"

    def needs_token(self) -> bool:
        """Whether REST requests must carry REST_TOKEN."""
        return settings.is_production() or self.listens_beyond_loopback

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        """The webhook and its health route."""
        webhook = Blueprint("clinic_rest_webhook", __name__)
        needs_token = self.needs_token()
        token = settings.secret("REST_TOKEN") if needs_token else None
        if needs_token and token is None:
            logger.warning(
                "the REST channel is closed: the server listens beyond loopback and "
                "REST_TOKEN is not set (docs/security.md)"
            )

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if needs_token and token is None:
                return _refused(
                    403,
                    "forbidden",
                    "REST is closed on this interface until REST_TOKEN is set",
                )
            if token is not None and not settings.bearer_matches(
                request.headers.get("authorization", ""), token
            ):
                return _refused(
                    401,
                    "unauthorized",
                    "a valid bearer token is required",
                    **{"WWW-Authenticate": "Bearer"},
                )
            if not is_json_media_type(request.headers.get("content-type")):
                return _refused(
                    415,
                    "unsupported_media_type",
                    "send the body as application/json",
                )
            try:
                sender, text, metadata = parse_rest_body(
                    request.body or b"", settings.max_socket_bytes()
                )
            except BadRequestError as exc:
                return _refused(400, "bad_request", str(exc))
            collector = CollectingOutputChannel()
            message = UserMessage(
                text,
                collector,
                sender,
                input_channel=self.name(),
                metadata=metadata,
            )
            try:
                await on_new_message(message)
            except Exception as error:  # the message itself stays out of the log
                await answer_failed(request.app, message, error)
            if not collector.messages:  # e.g. Rasa's "/restart": never an empty reply
                await answer_silence(request.app, message)
            return response.json(collector.messages)

        return webhook


async def answer_silence(app: Sanic | None, message: UserMessage) -> None:
    """Say SILENCE_RESPONSE for a message that got no reply (in the patient's language).

    Rasa answers some messages with nothing at all (its own `/restart` and
    `/session_start` intents); a REST client would get `[]` and show nothing.
    """
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    if agent is None or agent.nlg is None:
        return
    sender = message.sender_id or "unknown"
    tracker = None
    try:
        tracker = await agent.tracker_store.retrieve(sender)
    except Exception as error:  # the reply needs only the language slot
        logger.warning(
            "no tracker for the empty reply's language: %s", type(error).__name__
        )
    if tracker is None:
        tracker = DialogueStateTracker(sender, agent.domain.slots)
    channel = message.output_channel
    reply = await agent.nlg.generate(SILENCE_RESPONSE, tracker, channel.name())
    if reply:
        await channel.send_response(sender, reply)


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
