"""Rasa's REST channel with its input checked (credentials.yml: `bot.rest.ClinicRest`).

The checks are what the outside probe asked for (docs/security.md): a JSON object sent as
application/json, metadata of bounded depth and size, a sender id that can never name a
web chat conversation, a token beyond loopback, and a reply to every accepted message.
"""

from __future__ import annotations

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
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import sessions
from bot.channels import MAX_METADATA_DEPTH, answer_failed, clean_text, metadata_problem
from clinic import settings

logger = logging.getLogger(__name__)

#: What the REST channel says when Rasa had nothing to say (domain.yml).
SILENCE_RESPONSE = "utter_ready"
MAX_SENDER_CHARS = 255
#: The media types a REST body may be sent as. A browser may post text/plain or a form
#: to another site without asking it first (no CORS preflight); application/json it may
#: not, so this keeps a stranger's web page from writing into the clinic's records.
JSON_MEDIA_TYPES = ("application/json",)
#: REST sender ids of this form are refused: it is the form of the web chat's
#: conversation ids (bot.sessions.conversation_id), so a REST client can never write
#: into, or read the replies of, a patient's web chat.
_WEB_CHAT_CONVERSATION = re.compile(rf"[0-9a-f]{{{sessions.CONVERSATION_HEX}}}")


class BadRequestError(ValueError):
    """A REST request the channel refuses, with the reason it gives back (HTTP 400)."""


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
