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
The action only reads the tracker and sets slots; this module decides.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from bot import settings
from knowledge import queries
from knowledge.kinds import project_section_map
from knowledge.queries import SearchHit, SectionRef

KIND_PREFIX = "ask_"
#: Buttons ask for one section: `/ask_section{"section_ref": "<file>#<number>"}`.
SECTION_INTENT = "ask_section"
SECTION_ENTITY = "section_ref"
#: Intents whose message is not about the documents' topics at all.
OFF_TOPIC_INTENTS = {"out_of_scope"}
#: Entity kinds in the order they decide an answer ("PRP for my knee" is about PRP).
ENTITY_PRIORITY = ("injection_type", "condition", "body_area")
MAX_OFFERED = 3
MIN_OFFERED = 2
MISS_CATEGORY = "other"
#: A story longer than this many words is answered on its question sentences.
LONG_MESSAGE_WORDS = 30
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_QUESTION_START = re.compile(
    r"^\s*(can|could|do|does|did|is|are|will|would|should|what|whats|what's|how|why|"
    r"when|where|who|which|am|may|any)\b",
    re.IGNORECASE,
)


def _threshold(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


#: BM25 scores (see docs/benchmarks.md for how they were chosen on the held-out set).
ANSWER_SCORE = _threshold("SEARCH_ANSWER_SCORE", 4.0)
ANSWER_MARGIN = _threshold("SEARCH_ANSWER_MARGIN", 1.5)
CLARIFY_SCORE = _threshold("SEARCH_CLARIFY_SCORE", 1.5)
#: Within the sections of the asked kind, a match this good picks one of them.
KIND_SCORE = _threshold("SEARCH_KIND_SCORE", 1.0)
#: Added to the score of a section about the condition or body area a question names.
TOPIC_BONUS = _threshold("SEARCH_TOPIC_BONUS", 2.0)
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


@dataclass(frozen=True)
class Question:
    """What a message asks: its kind, the terms it names, the words to search by."""

    kind: str | None
    terms: tuple[tuple[str, str], ...]  # (entity kind, value), most specific first
    text: str
    #: The terms come from the story around the question, not the question itself: a
    #: topic that does not fit the kind of question is then set aside.
    terms_from_story: bool = False


#: Section descriptions and knowledge answers depend on the store alone: worked out once
#: per build of the store (knowledge.queries.BuildMemo).
_PER_BUILD = queries.BuildMemo()


def _key(section: SectionRef) -> tuple[str, int]:
    return (section.file, section.number)


def _describe(section: SectionRef) -> dict[str, Any]:
    return {
        **section.citation(),
        "file": section.file,
        "ref": f"{section.file}#{section.number}",
    }


def _kinds(session: Session) -> dict[tuple[str, int], frozenset[str]]:
    return _PER_BUILD.get(session, "kinds", lambda: queries.kinds_by_section(session))


def _knowledge(
    session: Session, section: SectionRef, others: list[SectionRef]
) -> Answer:
    if section.number == 0 and _numbered_sections(session, section):
        return _overview(session, section)
    key = ("knowledge", _key(section), tuple(map(_key, others)))
    answer = _PER_BUILD.get(session, key, lambda: _compose(session, section, others))
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
    seen = {_key(section)}

    def offer(candidates: list[SectionRef]) -> None:
        for other in candidates:
            if _key(other) in seen or other.number == 0 or len(offered) == MAX_OFFERED:
                continue
            seen.add(_key(other))
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


def question_text(text: str) -> str:
    """The part of a message that asks: a long story is searched by its questions."""
    if len(text.split()) <= LONG_MESSAGE_WORDS:
        return text
    sentences = [s.strip() for s in _SENTENCE.findall(text) if s.strip()]
    asking = [s for s in sentences if s.endswith("?") or _QUESTION_START.match(s)]
    return " ".join(asking[-2:]) if asking else (sentences[-1] if sentences else text)


def read_question(
    intent: str | None, entities: list[dict[str, Any]], text: str
) -> Question:
    """The kind, terms and search text of a message."""
    kinds = project_section_map().kinds
    kind = None
    if intent and intent.startswith(KIND_PREFIX):
        kind = intent[len(KIND_PREFIX) :] if intent[4:] in kinds else None
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
    )


def _ranked(
    candidates: list[SectionRef],
    hits: dict[tuple[str, int], SearchHit],
    bonus: frozenset[tuple[str, int]] | set[tuple[str, int]] = frozenset(),
) -> list[SectionRef]:
    """Candidates by search score, plus TOPIC_BONUS for those about the topic.

    Among equals, the candidates keep their own order.
    """
    order = {_key(s): i for i, s in enumerate(candidates)}

    def score(section: SectionRef) -> float:
        hit = hits.get(_key(section))
        topical = TOPIC_BONUS if _key(section) in bonus else 0.0
        return (hit.score if hit else 0.0) + topical

    return sorted(candidates, key=lambda s: (-score(s), order[_key(s)]))


def _of_kind(
    session: Session, kinds: dict[tuple[str, int], frozenset[str]], kind: str
) -> list[SectionRef]:
    """The sections known to answer a kind of question, in document order."""
    return [s for s in queries.all_sections(session) if kind in kinds.get(_key(s), ())]


def _fits(
    kinds: dict[tuple[str, int], frozenset[str]], section: SectionRef, kind: str | None
) -> bool:
    """Whether a section answers this kind (a section of no known kind may)."""
    own = kinds.get(_key(section))
    return kind is None or own is None or kind in own


def _topic_sections(
    session: Session, question: Question
) -> tuple[str | None, str | None, list[SectionRef]]:
    """The topic the message is about and the sections about it.

    The most specific kind of term named decides: a message naming an injection the
    documents never describe is about that injection, not about the knee it mentions.
    """
    for entity_kind in ENTITY_PRIORITY:
        values = [v for k, v in question.terms if k == entity_kind]
        if not values:
            continue
        for value in values:
            sections = queries.sections_for_term(session, value)
            if sections:
                return entity_kind, value, sections
        return entity_kind, values[0], []
    return None, None, []


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
    session: Session, kind: str | None, topic: str, section: SectionRef
) -> Answer:
    """The documents say something about the topic, but not this kind of thing."""
    hits = [
        h
        for h in queries.search(session, topic, 50)
        if _key(h.section) == _key(section)
    ]
    sentence = hits[0].passage if hits else _first_sentence(section.body)
    return Answer(
        outcome="topic_only",
        text=sentence,
        cited=[_describe(section)],
        category=project_section_map().category(kind),
        topic=topic,
    )


def _first_sentence(body: str) -> str:
    match = _SENTENCE.match(body.strip())
    return match.group(0).strip() if match else body


def answer_question(session: Session, question: Question, misses: int) -> Answer:
    """Answer a question by its kind and topic, searching to break ties."""
    kinds = _kinds(session)
    hits = {_key(h.section): h for h in queries.rank_sections(session, question.text)}
    entity_kind, topic, about = _topic_sections(session, question)
    if topic is not None:
        if not about:  # e.g. a facet joint injection: no document describes it
            return _not_covered(question.kind, misses, topic)
        fitting = [s for s in about if _fits(kinds, s, question.kind)]
        candidates = fitting
        if entity_kind != SPECIFIC_TOPIC and question.kind is not None:
            # a condition or body area: any section of the asked kind may answer in
            # general, those about the topic first ("avoid surgery on my back" -> 7)
            candidates = fitting + [
                s for s in _of_kind(session, kinds, question.kind) if s not in fitting
            ]
        if candidates:
            ranked = _ranked(candidates, hits, bonus=set(map(_key, about)))
            return _knowledge(session, ranked[0], ranked[1:])
        if not question.terms_from_story:
            return _topic_only(session, question.kind, topic, _ranked(about, hits)[0])

    if question.kind is not None:
        of_kind = _of_kind(session, kinds, question.kind)
        ranked = _ranked(of_kind, hits)
        best = hits.get(_key(ranked[0])) if ranked else None
        if best is not None and best.score >= KIND_SCORE:
            return _knowledge(session, ranked[0], ranked[1:])
        # no clear match in words: a document's introduction of this kind speaks for it
        intros = [s for s in of_kind if s.number == 0]
        if intros or len(ranked) == 1:
            chosen = intros[0] if intros else ranked[0]
            return _knowledge(session, chosen, [s for s in ranked if s != chosen])
        if ranked:
            offered = [_describe(s) for s in ranked[:MAX_OFFERED]]
            return Answer(outcome="clarify", offered=offered)
    return answer_search(session, question, misses, kinds)


def answer_search(
    session: Session,
    question: Question,
    misses: int,
    kinds: dict[tuple[str, int], frozenset[str]] | None = None,
) -> Answer:
    """Answer free text by search: a clear best section, some candidates, or a miss.

    Only sections that may answer the question's kind take part, so a mapped section
    never answers a kind of question it was not reviewed for.
    """
    kinds = kinds if kinds is not None else _kinds(session)
    hits = [
        h
        for h in queries.rank_sections(session, question.text)
        if _fits(kinds, h.section, question.kind)
    ][:MAX_OFFERED]
    if hits:
        top = hits[0].score
        runner_up = hits[1].score if len(hits) > 1 else 0.0
        if top >= ANSWER_SCORE and top >= ANSWER_MARGIN * runner_up:
            return _knowledge(session, hits[0].section, [h.section for h in hits[1:]])
        if top >= CLARIFY_SCORE and question.kind is None:
            offered = [
                _describe(h.section) for h in hits if h.score >= CLARIFY_SCORE / 2
            ]
            return Answer(outcome="clarify", offered=offered)
    return _not_covered(question.kind, misses)


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
) -> Answer:
    """The answer to a message: by kind and topic, by a section asked for, by search."""
    problem = settings.input_problem(text)
    if problem is not None:  # "empty" or "too_long": the patient is asked to (re)phrase
        return Answer(outcome=problem, misses=misses)
    if intent == SECTION_INTENT:
        answer = answer_section(session, entities)
        if answer is not None:
            return answer
    question = read_question(intent, entities, text)
    if intent in OFF_TOPIC_INTENTS:
        question = Question(None, (), question.text)
    # The same question is decided once per build of the store; only a miss depends on
    # the misses before it.
    answer = copy.deepcopy(
        _PER_BUILD.get(
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
