"""Deciding what answers a patient's message, from the knowledge store.

The action only reads the tracker and sets slots; this module decides. Outcomes:
    knowledge    one section answers; cited, with related sections offered
    overview     the introduction, with every reason offered
    clarify      no clear winner: likely sections offered ("did you mean")
    not_covered  the guide has nothing; honest reply and a call back offer
    handoff      the second miss in a row: a person is offered
    empty        nothing was typed: the patient is asked for a question
    too_long     over the message limit: the patient is asked to shorten it
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from bot import settings
from knowledge import queries
from knowledge.queries import SectionRef

TOPIC_PREFIX = "ask_"
OVERVIEW_TOPIC = "overview"
ENTITY_INTENTS = {"ask_injection_type", "ask_condition_help"}
#: Entity kinds in the order they decide an answer ("PRP for my knee" is about PRP).
ENTITY_PRIORITY = ("injection_type", "condition", "body_area")
MAX_OFFERED = 3
MIN_OFFERED = 2
MISS_CATEGORY = "other"


def _threshold(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


#: BM25 scores (see docs/benchmarks.md for how they were chosen on the held-out set).
ANSWER_SCORE = _threshold("SEARCH_ANSWER_SCORE", 4.0)
ANSWER_MARGIN = _threshold("SEARCH_ANSWER_MARGIN", 1.5)
CLARIFY_SCORE = _threshold("SEARCH_CLARIFY_SCORE", 1.5)


@dataclass
class Answer:
    """What to say, as slot values for the domain responses."""

    outcome: str
    text: str | None = None
    cited: list[dict[str, Any]] = field(default_factory=list)
    offered: list[dict[str, Any]] = field(default_factory=list)
    misses: int = 0
    category: str | None = None

    def slots(self) -> dict[str, Any]:
        """The slot values that carry this answer to the response."""
        values: dict[str, Any] = {
            "answer_outcome": self.outcome,
            "answer_text": self.text,
            "cited_sections": self.cited,
            "offered_sections": self.offered,
            "miss_count": float(self.misses),
        }
        if self.category is not None:
            values["not_covered_category"] = self.category
        return values


#: Section descriptions and knowledge answers depend on the store alone: worked out once
#: per build of the store (knowledge.queries.BuildMemo).
_PER_BUILD = queries.BuildMemo()


def _key(section: SectionRef) -> tuple[str, int]:
    return (section.file, section.number)


def _describe(session: Session, section: SectionRef) -> dict[str, Any]:
    def describe() -> dict[str, Any]:
        return {
            **section.citation(),
            "topic": queries.topic_of_section(session, section) or OVERVIEW_TOPIC,
        }

    return dict(_PER_BUILD.get(session, ("describe", _key(section)), describe))


def _knowledge(
    session: Session, section: SectionRef, others: list[SectionRef]
) -> Answer:
    key = ("knowledge", _key(section), tuple(map(_key, others)))
    answer = _PER_BUILD.get(session, key, lambda: _compose(session, section, others))
    return copy.deepcopy(answer)  # the caller gets its own lists


def _compose(session: Session, section: SectionRef, others: list[SectionRef]) -> Answer:
    """The knowledge answer citing `section`, with `others` offered first."""
    offered: list[dict[str, Any]] = []
    seen = {(section.file, section.number)}

    def offer(candidates: list[SectionRef]) -> None:
        for other in candidates:
            key = (other.file, other.number)
            if key in seen or other.number == 0 or len(offered) == MAX_OFFERED:
                continue
            seen.add(key)
            offered.append(_describe(session, other))

    offer([*others, *queries.related_sections(session, section, MAX_OFFERED)])
    if len(offered) < MIN_OFFERED:
        # few shared terms: offer the sections closest in wording
        similar = queries.search_sections(session, f"{section.title} {section.body}", 5)
        offer([hit.section for hit in similar])
    return Answer(
        outcome="knowledge",
        text=section.body,
        cited=[_describe(session, section)],
        offered=offered,
    )


def _overview(session: Session, intro: SectionRef) -> Answer:
    reasons = [
        _describe(session, s)
        for s in queries.all_sections(session)
        if s.file == intro.file and s.number > 0
    ]
    return Answer(outcome="overview", text=intro.body, offered=reasons)


def answer_topic(session: Session, intent: str) -> Answer | None:
    """The answer for a topic intent (`ask_joint_pain`), if the intent names a topic."""
    if not intent.startswith(TOPIC_PREFIX):
        return None
    topic = intent[len(TOPIC_PREFIX) :]
    section = queries.section_for_topic(session, topic)
    if section is None:
        return None
    if topic == OVERVIEW_TOPIC:
        return _overview(session, section)
    return _knowledge(session, section, [])


def answer_entities(session: Session, entities: list[dict[str, Any]]) -> Answer | None:
    """The answer for the terms a message names, most specific kind first."""
    for kind in ENTITY_PRIORITY:
        for entity in entities:
            if entity.get("entity") != kind:
                continue
            sections = queries.sections_for_term(session, str(entity.get("value", "")))
            if sections:
                return _knowledge(session, sections[0], sections[1:])
    return None


def answer_search(session: Session, text: str, misses: int) -> Answer:
    """Answer free text by search: a clear best section, some candidates, or a miss."""
    hits = queries.search_sections(session, text, limit=MAX_OFFERED)
    if hits:
        top = hits[0].score
        runner_up = hits[1].score if len(hits) > 1 else 0.0
        if top >= ANSWER_SCORE and top >= ANSWER_MARGIN * runner_up:
            return _knowledge(session, hits[0].section, [h.section for h in hits[1:]])
        if top >= CLARIFY_SCORE:
            offered = [
                _describe(session, h.section)
                for h in hits
                if h.score >= CLARIFY_SCORE / 2
            ]
            return Answer(outcome="clarify", offered=offered)
    misses += 1
    outcome = "handoff" if misses >= 2 else "not_covered"
    return Answer(outcome=outcome, misses=misses, category=MISS_CATEGORY)


def decide(
    session: Session,
    intent: str | None,
    entities: list[dict[str, Any]],
    text: str,
    misses: int,
) -> Answer:
    """The answer to a message: by topic, by the terms it names, else by search."""
    problem = settings.input_problem(text)
    if problem is not None:  # "empty" or "too_long": the patient is asked to (re)phrase
        return Answer(outcome=problem, misses=misses)
    answer = None
    if intent in ENTITY_INTENTS:
        answer = answer_entities(session, entities)
    elif intent:
        answer = answer_topic(session, intent)
    return answer or answer_search(session, text, misses)
