"""Ask the assistant: what a patient would get for a question, without a conversation.

The loaded agent parses the question (intent, confidence, entities, the red-flag
detector's verdict). For the answer, a shallow copy of the agent's message processor
runs with an in-memory tracker store and lock store: the same model, policies, response
generator and action server, but the throwaway conversation is never written to the
conversations database (Rasa's SQL tracker store).
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore

from clinic.settings import input_problem

MAX_QUESTION_CHARS = 2000


@dataclass
class AskResult:
    """The parse and the replies of one trial question."""

    question: str
    intent: str | None = None
    confidence: float | None = None
    ranking: list[dict[str, Any]] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)
    red_flag: dict[str, Any] | None = None
    replies: list[dict[str, Any]] = field(default_factory=list)
    #: The reply contract(s): {type, sections, category, intent, confidence}.
    answers: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None


def _answer(reply: dict[str, Any]) -> dict[str, Any]:
    custom = reply.get("custom") or {}
    answer = custom.get("answer") if isinstance(custom, dict) else None
    return answer if isinstance(answer, dict) else {}


async def ask(agent: Any, question: str) -> AskResult:
    """Parse and answer `question` with `agent` (Rasa's Agent) in a throwaway tracker."""
    result = AskResult(question=question)
    if not question.strip():
        result.problem = "Type a question first."
        return result
    if len(question) > MAX_QUESTION_CHARS:
        result.problem = f"That is longer than {MAX_QUESTION_CHARS} characters."
        return result
    if agent is None or not agent.is_ready():
        result.problem = "The assistant's model is still loading; try again shortly."
        return result
    parsed = await agent.parse_message(question)
    intent = parsed.get("intent") or {}
    result.intent = intent.get("name")
    result.confidence = intent.get("confidence")
    result.ranking = list(parsed.get("intent_ranking") or [])[:5]
    result.entities = [
        {k: e.get(k) for k in ("entity", "value", "extractor")}
        for e in parsed.get("entities") or []
    ]
    result.red_flag = parsed.get("red_flag")
    if input_problem(question):
        result.problem = "The assistant would ask for a shorter or non-empty question."
    processor = copy.copy(agent.processor)
    processor.tracker_store = InMemoryTrackerStore(processor.domain)
    processor.lock_store = InMemoryLockStore()
    output = CollectingOutputChannel()
    sender = f"staff-ask-{secrets.token_hex(8)}"
    await processor.handle_message(UserMessage(question, output, sender_id=sender))
    # Rasa's collecting channel sends a reply's text and its `custom` part separately.
    for message in output.messages:
        if message.get("text"):
            result.replies.append(
                {
                    "text": message["text"],
                    "buttons": [b.get("title") for b in message.get("buttons") or []],
                }
            )
        answer = _answer(message)
        if answer:
            result.answers.append(answer)
    return result
