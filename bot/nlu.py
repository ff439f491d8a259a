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

from bot.red_flags import project_detector

RED_FLAG_INTENT = "report_red_flag"
SELF_HARM_INTENT = "report_self_harm"
RED_FLAG_KEY = "red_flag"


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class RedFlagDetector(GraphComponent):
    """Overrides the intent when a message reports a red-flag symptom.

    Runs last in the NLU pipeline, so neither a low-confidence fallback nor another
    intent can hide an emergency. Adds `red_flag: {kind, reply, matched}` to the parse
    data for triage.
    """

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> RedFlagDetector:
        """Create the component (it has nothing to train)."""
        return cls()

    def __init__(self) -> None:
        self.detector = project_detector()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Leave training data as it is."""
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        """Mark the messages that report a red flag."""
        for message in messages:
            flag = self.detector.detect(message.get(TEXT) or "")
            if flag is None:
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
