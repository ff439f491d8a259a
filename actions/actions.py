"""The assistant's custom actions. Thin: read the tracker, ask the store, set slots.

What is said lives in domain.yml; rules pick the response from `answer_outcome`.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.answers import decide
from knowledge.environment import session_scope

logger = logging.getLogger(__name__)

#: Slots that outlive a session restart (the not-covered category is for triage).
CARRIED_OVER = ("not_covered_category",)


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


class ActionSessionStart(Action):
    """Starts every conversation with the disclaimer."""

    def name(self) -> str:
        """Action name, as in the domain."""
        return "action_session_start"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[EventType]:
        """Start the session, say the disclaimer, keep the triage slots.

        Args:
            dispatcher: sends the disclaimer.
            tracker: the conversation being (re)started.
            domain: the bot's domain.

        Returns:
            SessionStarted, carried-over slots, and action_listen.
        """
        events: list[EventType] = [SessionStarted()]
        for slot in CARRIED_OVER:
            value: Any = tracker.get_slot(slot)
            if value is not None:
                events.append(SlotSet(slot, value))
        dispatcher.utter_message(response="utter_disclaimer")
        events.append(ActionExecuted("action_listen"))
        return events
