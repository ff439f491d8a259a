"""The assistant's custom actions. Thin: read the tracker, ask the store, set slots.

What is said lives in domain.yml; rules pick the response from `answer_outcome`. The
call-back form's checks live in actions/callback.py, its storage in records.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from actions import callback
from actions.answers import decide
from knowledge.environment import session_scope
from records.store import session_scope as records_session

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
                language=str(tracker.get_slot("language") or "en"),
                ranking=message.get("intent_ranking"),
            )
        logger.info("answered intent=%s outcome=%s", intent, answer.outcome)
        return [SlotSet(name, value) for name, value in answer.slots().items()]


#: "Did this help?": the intent of the patient's reply -> the feedback recorded.
FEEDBACK_BY_INTENT = {"affirm": "helpful", "deny": "unhelpful"}


class ActionRecordFeedback(Action):
    """Records the patient's yes or no to "Did this help?" after a knowledge answer."""

    def name(self) -> str:
        """Action name, as in the domain."""
        return "action_record_feedback"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[EventType]:
        """Set answer_feedback from the reply's intent (the rules run it only then).

        Args:
            dispatcher: unused; the rules say the reply for the feedback.
            tracker: the conversation; its latest message is the yes or no.
            domain: the bot's domain.

        Returns:
            SlotSet answer_feedback (helpful, unhelpful), which stays in the events: the
            records layer counts it with the conversation (records.summaries).
        """
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        feedback = FEEDBACK_BY_INTENT.get(str(intent), "unhelpful")
        logger.info("answer feedback: %s", feedback)
        return [SlotSet("answer_feedback", feedback)]


class ValidateCallbackForm(FormValidationAction):
    """Checks each answer of callback_form (rules in actions/callback.py).

    An answer that cannot be used leaves its slot empty and sets `callback_invalid` to the
    slot's name, so the form re-asks with that slot's "sorry" wording from the domain.
    """

    def name(self) -> str:
        """Action name, as in the domain (`validate_<form>`)."""
        return "validate_callback_form"

    @staticmethod
    def _checked(slot: str, value: Any) -> dict[str, Any]:
        return {slot: value, "callback_invalid": None if value is not None else slot}

    async def validate_callback_name(self, value: Any, *_: Any) -> dict[str, Any]:
        """A name, without "my name is"."""
        return self._checked("callback_name", callback.normalise_name(value))

    async def validate_callback_phone(self, value: Any, *_: Any) -> dict[str, Any]:
        """A valid phone number, stored in E.164."""
        return self._checked("callback_phone", callback.normalise_phone(value))

    async def validate_callback_time(self, value: Any, *_: Any) -> dict[str, Any]:
        """The best time to call, as the patient said it."""
        return self._checked("callback_time", callback.normalise_time(value))

    async def validate_callback_consent(self, value: Any, *_: Any) -> dict[str, Any]:
        """Yes or no to being called."""
        return self._checked("callback_consent", callback.normalise_consent(value))


class ActionSubmitCallback(Action):
    """Stores the completed call-back form; the rules then confirm with a summary."""

    def name(self) -> str:
        """Action name, as in the domain."""
        return "action_submit_callback"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[EventType]:
        """Store the request if the patient agreed to be called.

        Args:
            dispatcher: unused; the rules say the reply for the outcome.
            tracker: the conversation with the filled form.
            domain: the bot's domain.

        Returns:
            SlotSet events: `callback_outcome` (requested, declined, failed) and, when
            stored, `callback_request_id`; both stay in the events for the triage.
        """
        slots = {slot: tracker.get_slot(slot) for slot in callback.FORM_SLOTS}
        if slots["callback_consent"] is not True:
            logger.info("call-back form submitted: outcome=declined")
            return [SlotSet("callback_outcome", "declined")]
        details = callback.CallbackDetails(
            conversation_id=tracker.sender_id,
            name=str(slots["callback_name"]),
            phone=str(slots["callback_phone"]),
            best_time=str(slots["callback_time"]),
            consent=True,
            urgency=callback.urgency(
                (event.get("parse_data") or {}).get("intent", {}).get("name")
                for event in tracker.events
                if event.get("event") == "user"
            ),
            category=tracker.get_slot("not_covered_category"),
        )
        try:
            with records_session() as session:
                request_id = callback.store_request(session, details)
        except SQLAlchemyError as exc:
            # The error's class only: its message could quote the patient's data.
            logger.error("call-back request not stored: %s", type(exc).__name__)
            return [SlotSet("callback_outcome", "failed")]
        logger.info("call-back form submitted: outcome=requested id=%s", request_id)
        return [
            SlotSet("callback_outcome", "requested"),
            SlotSet("callback_request_id", float(request_id)),
        ]


class ActionResetCallback(Action):
    """Clears the call-back form once it was answered, cancelled or interrupted."""

    def name(self) -> str:
        """Action name, as in the domain."""
        return "action_reset_callback"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[EventType]:
        """Forget the form's answers, so a later request asks everything again.

        Args:
            dispatcher: unused; the rules said the reply already.
            tracker: the conversation.
            domain: the bot's domain.

        Returns:
            SlotSet events clearing the form's slots and its outcome.
        """
        names = (*callback.FORM_SLOTS, "callback_invalid", "callback_outcome")
        return [SlotSet(name, None) for name in names]
