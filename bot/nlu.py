"""Rasa NLU components of the assistant."""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot import settings
from bot.red_flags import project_detector

RED_FLAG_INTENT = "report_red_flag"
SELF_HARM_INTENT = "report_self_harm"
RED_FLAG_KEY = "red_flag"
EMERGENCY_INTENTS = {RED_FLAG_INTENT, SELF_HARM_INTENT}


class _Rule(GraphComponent):
    """A component with nothing to train: it only processes messages."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> GraphComponent:
        """Create the component."""
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Leave training data as it is."""
        return training_data


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class RedFlagDetector(_Rule):
    """Decides, deterministically, whether a message reports a red-flag symptom.

    Runs last in the NLU pipeline, so neither a low-confidence fallback nor another
    intent can hide an emergency:
      - a reported red flag sets the emergency (or crisis) intent, and adds
        `red_flag: {kind, reply, matched}` to the parse data for triage;
      - a symptom only mentioned as negated, past or in a general question ("no fever",
        "is a headache normal after an epidural?") overrules a classifier that guessed an
        emergency: the next intent in the ranking is taken;
      - with no symptom pattern at all, the classifier's emergency guess stands (it may
        know a way of putting it that the patterns do not).
    """

    def __init__(self) -> None:
        self.detector = project_detector()

    def process(self, messages: list[Message]) -> list[Message]:
        """Mark the messages that report a red flag."""
        for message in messages:
            assessment = self.detector.assess(message.get(TEXT) or "")
            flag = assessment.flag
            if flag is None:
                if assessment.not_current:
                    self._demote_emergency_guess(message)
                continue
            intent = SELF_HARM_INTENT if flag.reply == "crisis" else RED_FLAG_INTENT
            override = {"name": intent, "confidence": 1.0}
            ranking = [
                r
                for r in message.get(INTENT_RANKING_KEY) or []
                if r.get("name") != intent
            ]
            message.set(INTENT, override, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [override, *ranking], add_to_output=True)
            message.set(
                RED_FLAG_KEY,
                {"kind": flag.kind, "reply": flag.reply, "matched": flag.matched},
                add_to_output=True,
            )
        return messages

    @staticmethod
    def _demote_emergency_guess(message: Message) -> None:
        intent = message.get(INTENT) or {}
        if intent.get("name") not in EMERGENCY_INTENTS:
            return
        ranking = [
            r
            for r in message.get(INTENT_RANKING_KEY) or []
            if r.get("name") not in EMERGENCY_INTENTS
        ]
        if ranking:
            message.set(INTENT, dict(ranking[0]), add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class MessageGuard(_Rule):
    """Sends empty and over-long messages to action_answer, which asks for a question.

    Runs after the red-flag detector: an emergency in a long story is still an emergency.
    The limit is MAX_MESSAGE_CHARS (bot.settings).
    """

    def process(self, messages: list[Message]) -> list[Message]:
        """Route empty and over-long messages past the classifier's guess."""
        for message in messages:
            if (message.get(INTENT) or {}).get("name") in EMERGENCY_INTENTS:
                continue
            if settings.input_problem(message.get(TEXT) or "") is None:
                continue
            fallback = {"name": "nlu_fallback", "confidence": 1.0}
            message.set(INTENT, fallback, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [fallback], add_to_output=True)
        return messages
