"""Deciding what answers a patient's message, from the knowledge store.

A question has a kind (the intent `ask_<kind>`: what is it, why is it done, is it safe...)
and a topic (the terms it names). The store says which kinds each section answers
(knowledge/sections.yml, or its headings), and which terms it names. Outcomes:
    knowledge    a section of this kind about this topic answers; cited, others offered
    overview     the guide's introduction, with every reason offered
    clarify      no clear winner: likely sections offered ("did you mean")
    topic_only   the documents cover the topic but not this kind of question: said
                 plainly, with one cited sentence about the topic and a call back offer
    not_covered  nothing covers it; honest reply (by category) and a call back offer
    handoff      the second miss in a row: a person is offered
    empty        nothing was typed: the patient is asked for a question
    too_long     over the message limit: the patient is asked to shorten it
    other_language  a message in a language the store has no documents in: the
                 language's note (the assistant answers in English, the clinic's number)
A message in another language (intent other_language) is answered from the documents
in that language (a folder per language under knowledge/sources), by the kind the
classifier ranked best, with that language's search.
The action only reads the tracker and sets slots; this module decides, from what the
message asks (actions.questions) and the sections ranked for it (actions.ranking).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from actions.questions import (
    OFF_TOPIC_INTENTS,
    SENTENCE,
    Question,
    question_intent,
    read_question,
)
from actions.ranking import (
    CLARIFY_SCORE,
    PER_BUILD,
    answering_candidate,
    rank_candidates,
    section_key,
    section_kinds,
    topic_sections,
)
from clinic import settings
from clinic.intents import OTHER_LANGUAGE_INTENT
from knowledge import queries
from knowledge.kinds import project_section_map
from knowledge.pipeline import DEFAULT_LANGUAGE
from knowledge.queries import SearchHit, SectionRef

#: Buttons ask for one section: `/ask_section{"section_ref": "<file>#<number>"}`.
SECTION_INTENT = "ask_section"
SECTION_ENTITY = "section_ref"
#: bot.nlu.LanguageIdentifier's intent for a message in another language, and the
#: outcome when the store has no documents in it.
OTHER_LANGUAGE_OUTCOME = "other_language"
MAX_OFFERED = 3
MIN_OFFERED = 2
#: The entity kind whose topic must be in the cited section itself: an injection.
SPECIFIC_TOPIC = "injection_type"


@dataclass
class Answer:
    """What to say, as slot values for the domain responses."""

    outcome: str
    text: str | None = None
    cited: list[dict[str, Any]] = field(default_factory=list)
    offered: list[dict[str, Any]] = field(default_factory=list)
    misses: int = 0
    category: str | None = None
    topic: str | None = None

    def slots(self) -> dict[str, Any]:
        """The slot values that carry this answer to the response."""
        values: dict[str, Any] = {
            "answer_outcome": self.outcome,
            "answer_text": self.text,
            "answer_topic": self.topic,
            "cited_sections": self.cited,
            "offered_sections": self.offered,
            "miss_count": float(self.misses),
            "not_covered_category": self.category,
        }
        return values


def _describe(section: SectionRef) -> dict[str, Any]:
    return {**section.citation(), "ref": f"{section.file}#{section.number}"}


def _knowledge(
    session: Session, section: SectionRef, others: list[SectionRef]
) -> Answer:
    if section.number == 0 and _numbered_sections(session, section):
        return _overview(session, section)
    key = ("knowledge", section_key(section), tuple(map(section_key, others)))
    answer = PER_BUILD.get(session, key, lambda: _compose(session, section, others))
    return copy.deepcopy(answer)  # the caller gets its own lists


def _numbered_sections(session: Session, intro: SectionRef) -> list[SectionRef]:
    return [
        s
        for s in queries.all_sections(session)
        if s.file == intro.file and s.number > 0
    ]


def _compose(session: Session, section: SectionRef, others: list[SectionRef]) -> Answer:
    """The knowledge answer citing `section`, with `others` offered first."""
    offered: list[dict[str, Any]] = []
    seen = {section_key(section)}

    def offer(candidates: list[SectionRef]) -> None:
        for other in candidates:
            if (
                section_key(other) in seen
                or other.number == 0
                or len(offered) == MAX_OFFERED
            ):
                continue
            seen.add(section_key(other))
            offered.append(_describe(other))

    offer([*others, *queries.related_sections(session, section, MAX_OFFERED)])
    if len(offered) < MIN_OFFERED:
        # few shared terms: offer the sections closest in wording
        similar = queries.search_sections(session, f"{section.title} {section.body}", 5)
        offer([hit.section for hit in similar])
    return Answer(
        outcome="knowledge",
        text=section.body,
        cited=[_describe(section)],
        offered=offered,
    )


def _overview(session: Session, intro: SectionRef) -> Answer:
    reasons = [_describe(s) for s in _numbered_sections(session, intro)]
    return Answer(
        outcome="overview", text=intro.body, cited=[_describe(intro)], offered=reasons
    )


def _not_covered(kind: str | None, misses: int, topic: str | None = None) -> Answer:
    misses += 1
    outcome = "handoff" if misses >= 2 else "not_covered"
    return Answer(
        outcome=outcome,
        misses=misses,
        category=project_section_map().category(kind),
        topic=topic,
    )


def _topic_only(
    kind: str | None, topic: str, section: SectionRef, hit: SearchHit | None
) -> Answer:
    """The documents say something about the topic, but not this kind of thing.

    The sentence cited is the section's passage the question matched best (the question
    names the topic), else the section's first sentence.
    """
    sentence = hit.passage if hit else _first_sentence(section.body)
    return Answer(
        outcome="topic_only",
        text=sentence,
        cited=[_describe(section)],
        category=project_section_map().category(kind),
        topic=topic,
    )


def _first_sentence(body: str) -> str:
    match = SENTENCE.match(body.strip())
    return match.group(0).strip() if match else body


def answer_question(session: Session, question: Question, misses: int) -> Answer:
    """Answer a question by its kind and topic, searching to rank the sections."""
    hits = {
        section_key(h.section): h
        for h in queries.rank_sections(session, question.text, question.language)
    }
    entity_kind, topic, about = topic_sections(session, question)
    if topic is not None and not about:
        # e.g. a facet joint injection: no document describes it, so none answers
        return _not_covered(question.miss_kind, misses, topic)
    specific = entity_kind == SPECIFIC_TOPIC and not question.terms_from_story
    ranked = rank_candidates(session, question, hits, about, specific)
    best = answering_candidate(ranked)
    if best is not None:
        # offered next: the other sections about the topic, else the next matches
        rest = [c.section for c in ranked if c is not best and c.score > 0]
        others = [s for s in about if s != best.section] if about else rest
        return _knowledge(session, best.section, others)
    if topic is not None and not question.terms_from_story:
        return _topic_only(
            question.miss_kind, topic, about[0], hits.get(section_key(about[0]))
        )
    kinds = section_kinds(session)
    of_kind = [c.section for c in ranked if c.of_kind]
    # no clear match in words: an introduction reviewed for this kind speaks for it
    # ("why are these injections done"), as does the one section reviewed for it; a
    # kind cued by an unreviewed heading is too weak alone ("Diabetes and blood sugar"
    # is not an answer to "should I stop my blood thinner")
    reviewed = [s for s in of_kind if section_key(s) in kinds.reviewed]
    intros = [s for s in reviewed if s.number == 0]
    if intros:
        return _knowledge(session, intros[0], [s for s in of_kind if s != intros[0]])
    if len(reviewed) == 1 and len(of_kind) == 1:
        return _knowledge(session, of_kind[0], [])
    matching = [c for c in ranked if c.search >= CLARIFY_SCORE]
    if of_kind or matching:
        offered = [_describe(s) for s in (of_kind or [c.section for c in matching])]
        return Answer(outcome="clarify", offered=offered[:MAX_OFFERED])
    return _not_covered(question.miss_kind, misses)


def answer_section(session: Session, entities: list[dict[str, Any]]) -> Answer | None:
    """The section a button asked for (`/ask_section{"section_ref": "file#3"}`)."""
    for entity in entities:
        if entity.get("entity") == SECTION_ENTITY:
            section = queries.section_by_ref(session, str(entity.get("value", "")))
            if section is not None:
                return _knowledge(session, section, [])
    return None


def decide(
    session: Session,
    intent: str | None,
    entities: list[dict[str, Any]],
    text: str,
    misses: int,
    ranking: list[dict[str, Any]] | None = None,
    language: str = DEFAULT_LANGUAGE,
) -> Answer:
    """The answer to a message: by kind and topic, by a section asked for, by search.

    `ranking` is the message's intent ranking (the kind is guessed from it when the
    classifier was unsure). A message in another language (intent other_language) is
    answered by its best question intent in the ranking from the documents in its
    `language`, or gets the language's note when there are none.
    """
    problem = settings.input_problem(text)
    if problem is not None:  # "empty" or "too_long": the patient is asked to (re)phrase
        return Answer(outcome=problem, misses=misses)
    if intent == SECTION_INTENT:
        answer = answer_section(session, entities)
        if answer is not None:
            return answer
    asked_in = DEFAULT_LANGUAGE
    if intent == OTHER_LANGUAGE_INTENT:
        asked_in = language
        if language not in PER_BUILD.get(
            session, "languages", lambda: queries.document_languages(session)
        ):
            return Answer(outcome=OTHER_LANGUAGE_OUTCOME, misses=misses)
        # The vocabulary's terms are English: the question's own words find the topic.
        intent = question_intent([str(r.get("name", "")) for r in ranking or []])
        entities = []
    question = read_question(intent, entities, text, ranking)
    if intent in OFF_TOPIC_INTENTS:
        question = Question(None, (), question.text)
    if asked_in != DEFAULT_LANGUAGE:
        question = dataclasses.replace(question, language=asked_in)
    # The same question is decided once per build of the store; only a miss depends on
    # the misses before it.
    answer = copy.deepcopy(
        PER_BUILD.get(
            session,
            ("decide", question),
            lambda: answer_question(session, question, 0),
        )
    )
    if answer.misses:
        return _not_covered_again(answer, misses)
    return answer


def _not_covered_again(answer: Answer, misses: int) -> Answer:
    """A decided miss, counted after the patient's earlier misses."""
    again = _not_covered(None, misses, answer.topic)
    again.category = answer.category
    return again
