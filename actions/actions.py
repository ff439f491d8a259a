"""The assistant's custom actions. Thin: read the tracker, ask the store, set slots.

What is said lives in domain.yml; rules pick the response from `answer_outcome`.
"""

from __future__ import annotations

import logging

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.answers import decide
from knowledge.environment import session_scope

logger = logging.getLogger(__name__)


class ActionAnswer(Action):
    """Answers a question from the knowledge store."""

    def name(self) -> str:
        """Action name, as in the domain."""
        return "action_answer"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[EventType]:
        """Decide the answer and hand it to the response as slots.

        Args:
            dispatcher: unused; the rules utter the response.
            tracker: the conversation; its latest message is answered.
            domain: the bot's domain.

        Returns:
            SlotSet events: answer_outcome, answer_text, cited/offered sections, misses.
        """
        message = tracker.latest_message or {}
        intent = (message.get("intent") or {}).get("name")
        misses = int(tracker.get_slot("miss_count") or 0)
        with session_scope() as session:
            answer = decide(
                session,
                intent=intent,
                entities=message.get("entities") or [],
                text=message.get("text") or "",
                misses=misses,
            )
        logger.info("answered intent=%s outcome=%s", intent, answer.outcome)
        return [SlotSet(name, value) for name, value in answer.slots().items()]
