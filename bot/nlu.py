"""Rasa NLU components of the assistant."""

from __future__ import annotations

import re
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_CONFIDENCE,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    EXTRACTOR,
    INTENT,
    INTENT_RANKING_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.language import DEFAULT as DEFAULT_LANGUAGE
from bot.language import project_identifier
from bot.red_flags import project_detector
from clinic import settings
from clinic.intents import (
    EMERGENCY_INTENTS,
    OTHER_LANGUAGE_INTENT,
    RED_FLAG_INTENT,
    SELF_HARM_INTENT,
)
from knowledge.text import fold_accents
from knowledge.vocabulary import project_vocabulary

RED_FLAG_KEY = "red_flag"
#: The parse data's key and the entity (hence the `language` slot) for the language.
LANGUAGE_KEY = "language"
#: Intents whose reply has a version in each language (domain.yml), or that the call-back
#: form needs: a message in another language classified as one of these keeps it. The
#: emergency intents are among them: the red-flag detector, after, takes the classifier's
#: emergency guess only from `classifier_threshold`, in every language.
ANY_LANGUAGE_INTENTS = {
    *EMERGENCY_INTENTS,
    "greet",
    "goodbye",
    "thank",
    "affirm",
    "deny",
    "cancel",
    "request_human",
}
#: Small talk that a symptom overrules ("yes, my knee hurts" is a question).
SMALL_TALK_INTENTS = {"greet", "goodbye", "thank", "affirm", "deny"}
SYMPTOM_ENTITIES = {"condition", "body_area"}


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
        return cls.from_config(config)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> GraphComponent:
        """The component built from its configuration (nothing to configure)."""
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
        "is a headache normal after an epidural?"), or a message that says all is well now
        or over ("fully recovered now", "nothing new"), overrules a classifier that
        guessed an emergency: the next intent in the ranking is taken;
      - with no symptom pattern at all, the classifier's emergency guess stands when its
        confidence reaches `classifier_threshold` (it may know a way of putting it that
        the patterns do not);
      - a message with a symptom word is never small talk (see _overrule_small_talk).
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """The component's settings.

        `classifier_threshold`: below it, the classifier's emergency guess without a
        pattern is not taken (0: always taken; config.yml has the measured choice).
        """
        return {"classifier_threshold": 0.0}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> GraphComponent:
        """The component with its configured threshold."""
        return cls(float(config.get("classifier_threshold", 0.0)))

    def __init__(self, classifier_threshold: float = 0.0) -> None:
        self.classifier_threshold = classifier_threshold
        self.detector = project_detector()
        self.symptom_words = frozenset(
            fold_accents(w.lower())
            for words in project_vocabulary().symptom_words.values()
            for w in words
        )

    def process(self, messages: list[Message]) -> list[Message]:
        """Mark the messages that report a red flag."""
        for message in messages:
            language = _language_of(message)
            assessment = self.detector.assess(message.get(TEXT) or "", language)
            flag = assessment.flag
            if flag is None:
                intent = message.get(INTENT) or {}
                if (
                    assessment.not_current
                    or assessment.all_clear
                    or intent.get("confidence", 0.0) < self.classifier_threshold
                ):
                    self._demote_emergency_guess(message, language)
                if assessment.not_current or self._names_a_symptom(message):
                    self._overrule_small_talk(message, language)
                continue
            if flag.language != language and language == DEFAULT_LANGUAGE:
                # Found only by another language's patterns ("tengo fiebre" is too short
                # for the identifier): the reply goes in that language.
                _set_language(message, flag.language, 0.0)
            intent = SELF_HARM_INTENT if flag.reply == "crisis" else RED_FLAG_INTENT
            _set_intent(message, intent)
            message.set(
                RED_FLAG_KEY,
                {"kind": flag.kind, "reply": flag.reply, "matched": flag.matched},
                add_to_output=True,
            )
        return messages

    def _names_a_symptom(self, message: Message) -> bool:
        words = re.findall(r"\w+", fold_accents((message.get(TEXT) or "").lower()))
        return bool(self.symptom_words.intersection(words)) or any(
            e.get(ENTITY_ATTRIBUTE_TYPE) in SYMPTOM_ENTITIES
            for e in message.get(ENTITIES) or []
        )

    @staticmethod
    def _overrule_small_talk(message: Message, language: str) -> None:
        """Small talk never swallows a symptom.

        The best question intent takes over, else the free-text search (nlu_fallback);
        in another language, the language's note.
        """
        if (message.get(INTENT) or {}).get("name") not in SMALL_TALK_INTENTS:
            return
        if language != DEFAULT_LANGUAGE:
            _set_intent(message, OTHER_LANGUAGE_INTENT)
            return
        questions = [
            r
            for r in message.get(INTENT_RANKING_KEY) or []
            if r.get("name") not in SMALL_TALK_INTENTS | EMERGENCY_INTENTS
            and r.get("confidence", 0.0) >= SYMPTOM_QUESTION_FLOOR
        ]
        _set_intent(message, questions[0]["name"] if questions else "nlu_fallback")

    @staticmethod
    def _demote_emergency_guess(message: Message, language: str) -> None:
        """The classifier's next guess; in another language, the language's note.

        Unless that guess has a reply in every language (LanguageIdentifier's rule).
        """
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
        if language != DEFAULT_LANGUAGE and (
            not ranking or ranking[0].get("name") not in ANY_LANGUAGE_INTENTS
        ):
            _set_intent(message, OTHER_LANGUAGE_INTENT)


#: A question intent below this confidence is no better than the free-text search.
SYMPTOM_QUESTION_FLOOR = 0.1


def _set_intent(message: Message, name: str) -> None:
    """Overrule the classifier: `name` at confidence 1, the rest of its ranking after."""
    override = {"name": name, "confidence": 1.0}
    ranking = [
        r for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name") != name
    ]
    message.set(INTENT, override, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [override, *ranking], add_to_output=True)


def _language_of(message: Message) -> str:
    return str((message.get(LANGUAGE_KEY) or {}).get("code") or DEFAULT_LANGUAGE)


def _set_language(message: Message, code: str, confidence: float) -> None:
    """The language in the parse data and, unless English, as the `language` entity.

    The entity fills the `language` slot; English sets none, because an entity on every
    message would be one more in every conversation test. The slot goes back to English
    by its `from_intent` mapping, on a question only an English message can be.
    """
    message.set(
        LANGUAGE_KEY, {"code": code, "confidence": confidence}, add_to_output=True
    )
    entities = [
        e
        for e in message.get(ENTITIES) or []
        if e.get(ENTITY_ATTRIBUTE_TYPE) != LANGUAGE_KEY
    ]
    if code != DEFAULT_LANGUAGE:
        entities.append(
            {
                ENTITY_ATTRIBUTE_TYPE: LANGUAGE_KEY,
                ENTITY_ATTRIBUTE_VALUE: code,
                ENTITY_ATTRIBUTE_START: 0,
                ENTITY_ATTRIBUTE_END: len(message.get(TEXT) or ""),
                ENTITY_ATTRIBUTE_CONFIDENCE: round(confidence, 4),
                EXTRACTOR: LanguageIdentifier.__name__,
            }
        )
    message.set(ENTITIES, entities, add_to_output=True)


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False
)
class LanguageIdentifier(_Rule):
    """Identifies each message's language (bot.language) for the replies and the staff.

    Adds `language: {code, confidence}` to the parse data and a `language` entity, which
    fills the `language` slot that the domain's responses are conditioned on. A message in
    another language is the `other_language` intent (a note in that language or in
    English, with the clinic's number), unless the classifier put it in an intent whose
    reply exists in every language (greetings, thanks, yes and no, the call-back form's).
    Runs before the red-flag detector, which overrules it for an emergency.
    """

    def __init__(self) -> None:
        self.identifier = project_identifier()

    def process(self, messages: list[Message]) -> list[Message]:
        """Set each message's language, and route other languages to their note."""
        for message in messages:
            text = message.get(TEXT) or ""
            if text.startswith("/"):  # a button's payload, not the patient's words
                continue
            guess = self.identifier.identify(text)
            _set_language(message, guess.language, guess.confidence)
            intent = (message.get(INTENT) or {}).get("name")
            if (
                guess.language != DEFAULT_LANGUAGE
                and intent not in ANY_LANGUAGE_INTENTS
            ):
                _set_intent(message, OTHER_LANGUAGE_INTENT)
        return messages


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class MessageGuard(_Rule):
    """Sends empty and over-long messages to action_answer, which asks for a question.

    Runs after the red-flag detector: an emergency in a long story is still an emergency.
    The limit is MAX_MESSAGE_CHARS (clinic.settings).
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
