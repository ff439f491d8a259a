"""When the conversations database or the lock store fails: a clear reply, never silence.

Rasa's channels call `app.ctx.agent.handle_message` for every message. `guard_agent`
wraps it: a conversation that cannot be read (bot.conversation_store's
`ConversationStoreUnavailableError`, after its retries) or whose lock cannot be taken (a
LockError: the scaled profile's Redis lock store is down, bot/locks.py) gets
utter_service_unavailable (try again, the front desk, the emergency number), and a red
flag still gets its emergency guidance (`answer_unhandled`); a failed final write is
logged, the reply having gone out. `require_resilient_store` refuses to serve when
conversations would go anywhere but the project's tracker store. Both run when the
agent is loaded (`guard_on_start`, a listener bot.server registers).
"""

from __future__ import annotations

import logging
from functools import wraps
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.lock_store import LockError
from rasa.core.tracker_store import FailSafeTrackerStore
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.conversation_store import (
    ConversationStoreUnavailableError,
    ResilientSQLTrackerStore,
)
from clinic.intents import RED_FLAG_INTENT, SELF_HARM_INTENT

logger = logging.getLogger(__name__)

UNAVAILABLE_RESPONSE = "utter_service_unavailable"
FALLBACK_RESPONSE = "utter_refer_to_staff"
#: The reply each emergency intent gets (data/rules/safety.yml), also when the message
#: cannot be processed (answer_unhandled).
EMERGENCY_RESPONSES = {
    RED_FLAG_INTENT: "utter_emergency",
    SELF_HARM_INTENT: "utter_crisis",
}


async def answer_unhandled(
    agent: Any, message: UserMessage, reason: BaseException
) -> None:
    """Answer a message that could not be processed, and log why in one line.

    A red flag still gets its emergency guidance: the NLU pipeline decides red flags
    (bot.nlu.RedFlagDetector) and needs neither the conversation nor its lock. Any other
    message gets utter_service_unavailable (try again, the front desk, the emergency
    number). The message is not stored: it was not processed. The log line names the
    failure, never the message.
    """
    tracker = DialogueStateTracker(message.sender_id or "unknown", agent.domain.slots)
    names = [UNAVAILABLE_RESPONSE, FALLBACK_RESPONSE]
    try:
        parsed = await agent.processor.parse_message(message)
    except Exception as error:  # the notice, with the emergency number, still goes out
        # The type only: an NLU error's text could quote the message.
        logger.warning("red flag check failed: %s", type(error).__name__)
    else:
        intent = parsed.get("intent") or {}
        tracker.update(
            UserUttered(message.text, intent, parsed.get("entities"), parsed)
        )
        if intent.get("name") in EMERGENCY_RESPONSES:
            names.insert(0, EMERGENCY_RESPONSES[intent["name"]])
    channel = message.output_channel
    for name in names:
        response = await agent.nlg.generate(name, tracker, channel.name())
        if response:
            break
    outcome = (
        "emergency guidance sent"
        if name in EMERGENCY_RESPONSES.values()
        else "patient told to retry"
    )
    logger.error("message not handled, %s: %s", outcome, reason)
    if response:
        await channel.send_response(message.sender_id or "unknown", response)


def _unwrap_fail_safe(agent: Any) -> None:
    """Let the agent use our store directly instead of through Rasa's fail-safe.

    Rasa wraps every tracker store in FailSafeTrackerStore: a failed read returns no
    tracker (the conversation silently starts over) and a failed write goes to an
    in-memory store nobody reads (the turn is silently lost), logging the error with
    its SQL parameters, which hold the patient's words. With several servers on one
    database that also makes their views of a conversation diverge. Our store fails
    clearly instead, so it is used unwrapped.
    """
    store = agent.tracker_store
    inner = getattr(store, "_tracker_store", None)
    if isinstance(store, FailSafeTrackerStore) and isinstance(
        inner, ResilientSQLTrackerStore
    ):
        agent.tracker_store = inner
        if agent.processor is not None:
            agent.processor.tracker_store = inner


def guard_agent(agent: Any) -> None:
    """Make `agent.handle_message` answer clearly when the database or lock store fails.

    Rasa's channels call `app.ctx.agent.handle_message` for every message and Rasa
    builds the agent itself, so the guard wraps that one method on the instance.
    A failed read, or a lock that could not be taken, means nothing was processed or
    answered: the patient gets the notice (or the emergency guidance, answer_unhandled).
    A failed final write means the reply has already gone out: the patient has their
    answer, and the log says the turn was not stored.
    """
    handle = agent.handle_message
    if getattr(handle, "guarded", False):
        return
    _unwrap_fail_safe(agent)

    @wraps(handle)
    async def guarded(message: UserMessage) -> Any:
        try:
            return await handle(message)
        except ConversationStoreUnavailableError as error:
            if error.operation == "write":
                logger.error("reply sent but the turn was not stored: %s", error)
                return None
            await answer_unhandled(agent, message, error)
        except LockError as error:
            await answer_unhandled(agent, message, error)
        return None

    guarded.guarded = True  # type: ignore[attr-defined]
    agent.handle_message = guarded


class ConversationStoreConfigurationError(RuntimeError):
    """The server would keep conversations somewhere other than the resilient store."""


def require_resilient_store(agent: Any) -> None:
    """Refuse to serve unless conversations go to ResilientSQLTrackerStore.

    Rasa quietly keeps conversations in memory when the tracker store named in
    endpoints.yml cannot be imported, or when none is named: they would be lost on the
    next restart, and nothing would retry or report a database failure.
    """
    store = agent.tracker_store
    store = getattr(store, "_tracker_store", store)  # inside Rasa's fail-safe wrapper
    if not isinstance(store, ResilientSQLTrackerStore):
        raise ConversationStoreConfigurationError(
            f"conversations would be kept in {type(store).__name__}, not in the"
            " conversations database: endpoints.yml's tracker_store must be"
            " `type: bot.conversation_store.ResilientSQLTrackerStore`"
        )


async def guard_on_start(app: Any, _loop: Any) -> None:
    """Sanic listener: check and guard the agent Rasa loaded (after the loader)."""
    agent = getattr(app.ctx, "agent", None)
    if agent is not None:
        require_resilient_store(agent)
        guard_agent(agent)
