"""Reading what a patient's message asks: its kind, the terms it names, the words to search.

The kind comes from the intent (`ask_<kind>`, or the unsure classifier's best guess),
the terms from the entities (most specific first), and a long story is searched by its
question sentences. actions.ranking scores the sections for a `Question`, and
actions.answers decides the reply.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from knowledge.kinds import project_section_map
from knowledge.pipeline import DEFAULT_LANGUAGE

KIND_PREFIX = "ask_"
#: The classifier was unsure (Rasa's FallbackClassifier): its best kind is only a guess.
FALLBACK_INTENT = "nlu_fallback"
#: Intents whose message is not about the documents' topics at all.
OFF_TOPIC_INTENTS = {"out_of_scope"}
#: Entity kinds in the order they decide an answer ("PRP for my knee" is about PRP).
ENTITY_PRIORITY = ("injection_type", "condition", "body_area")
#: A story longer than this many words is answered on its question sentences.
LONG_MESSAGE_WORDS = 30
SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_QUESTION_START = re.compile(
    r"^\s*(can|could|do|does|did|is|are|will|would|should|what|whats|what's|how|why|"
    r"when|where|who|which|am|may|any)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Question:
    """What a message asks: its kind, the terms it names, the words to search by."""

    kind: str | None
    terms: tuple[tuple[str, str], ...]  # (entity kind, value), most specific first
    text: str
    #: The terms come from the story around the question, not the question itself: a
    #: topic that does not fit the kind of question is then set aside.
    terms_from_story: bool = False
    #: The kind is the unsure classifier's best guess (nlu_fallback): it ranks the
    #: sections, but a section answers only when it stands clear of the next.
    kind_guessed: bool = False
    #: The language it is asked in: answered from the documents in that language.
    language: str = DEFAULT_LANGUAGE

    @property
    def miss_kind(self) -> str | None:
        """The kind a miss is recorded under (by category): a guess is not recorded."""
        return None if self.kind_guessed else self.kind


def question_text(text: str) -> str:
    """The part of a message that asks: a long story is searched by its questions."""
    if len(text.split()) <= LONG_MESSAGE_WORDS:
        return text
    sentences = [s.strip() for s in SENTENCE.findall(text) if s.strip()]
    asking = [s for s in sentences if s.endswith("?") or _QUESTION_START.match(s)]
    return " ".join(asking[-2:]) if asking else (sentences[-1] if sentences else text)


def _asked_kind(intent: str | None) -> str | None:
    if intent and intent.startswith(KIND_PREFIX):
        kind = intent[len(KIND_PREFIX) :]
        return kind if kind in project_section_map().kinds else None
    return None


def read_question(
    intent: str | None,
    entities: list[dict[str, Any]],
    text: str,
    ranking: list[dict[str, Any]] | None = None,
) -> Question:
    """The kind, terms and search text of a message.

    `ranking` is the classifier's intent ranking: when it was unsure (nlu_fallback), the
    best kind in it is taken as a guess.
    """
    kind = _asked_kind(intent)
    guessed = False
    if intent == FALLBACK_INTENT and ranking:
        kind = next(
            (k for r in ranking if (k := _asked_kind(str(r.get("name"))))), None
        )
        guessed = kind is not None
    asked = question_text(text)
    start = text.find(asked) if asked != text else 0
    named = [e for e in entities if e.get("entity") in ENTITY_PRIORITY]
    in_question = [e for e in named if int(e.get("start") or 0) >= start]
    chosen = in_question or named
    terms = tuple(
        (str(e["entity"]), str(e.get("value", "")))
        for kind_name in ENTITY_PRIORITY
        for e in chosen
        if e.get("entity") == kind_name
    )
    return Question(
        kind=kind,
        terms=terms,
        text=asked,
        terms_from_story=not in_question and bool(named) and asked != text,
        kind_guessed=guessed,
    )


def question_intent(ranking: Sequence[str]) -> str | None:
    """The best question intent the classifier ranked (under other_language's override)."""
    return next(
        (n for n in ranking if n.startswith(KIND_PREFIX) or n in OFF_TOPIC_INTENTS),
        None,
    )
