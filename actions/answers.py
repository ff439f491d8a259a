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
The action only reads the tracker and sets slots; this module decides.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from clinic import settings
from clinic.intents import OTHER_LANGUAGE_INTENT
from knowledge import queries
from knowledge.kinds import FROM_HEADING, FROM_MAP, project_section_map
from knowledge.pipeline import DEFAULT_LANGUAGE
from knowledge.queries import SearchHit, SectionRef

KIND_PREFIX = "ask_"
#: The classifier was unsure (Rasa's FallbackClassifier): its best kind is only a guess.
FALLBACK_INTENT = "nlu_fallback"
#: Buttons ask for one section: `/ask_section{"section_ref": "<file>#<number>"}`.
SECTION_INTENT = "ask_section"
SECTION_ENTITY = "section_ref"
#: Intents whose message is not about the documents' topics at all.
OFF_TOPIC_INTENTS = {"out_of_scope"}
#: bot.nlu.LanguageIdentifier's intent for a message in another language, and the
#: outcome when the store has no documents in it.
OTHER_LANGUAGE_OUTCOME = "other_language"
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


_SEARCH = settings.current()
#: BM25 scores (see docs/benchmarks.md for how they were chosen on the held-out set).
ANSWER_SCORE = _SEARCH.search_answer_score
ANSWER_MARGIN = _SEARCH.search_answer_margin
CLARIFY_SCORE = _SEARCH.search_clarify_score
#: Within the sections of the asked kind, a match this good picks one of them.
KIND_SCORE = _SEARCH.search_kind_score
#: Added to the score of a section about the condition or body area a question names.
TOPIC_BONUS = _SEARCH.search_topic_bonus
#: Added to the score of a section known to answer the kind of question asked.
KIND_BONUS = _SEARCH.search_kind_bonus
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
    #: The kind is the unsure classifier's best guess (nlu_fallback): it ranks the
    #: sections, but a section answers only when it stands clear of the next.
    kind_guessed: bool = False
    #: The language it is asked in: answered from the documents in that language.
    language: str = DEFAULT_LANGUAGE

    @property
    def miss_kind(self) -> str | None:
        """The kind a miss is recorded under (by category): a guess is not recorded."""
        return None if self.kind_guessed else self.kind


#: Section descriptions and knowledge answers depend on the store alone: worked out once
#: per build of the store (knowledge.queries.BuildMemo).
_PER_BUILD = queries.BuildMemo()


def _key(section: SectionRef) -> tuple[str, int]:
    return (section.file, section.number)


def _describe(section: SectionRef) -> dict[str, Any]:
    return {**section.citation(), "ref": f"{section.file}#{section.number}"}


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


@dataclass(frozen=True)
class SectionKinds:
    """The kinds each section answers: reviewed (a hard rule), or cued by headings."""

    reviewed: dict[tuple[str, int], frozenset[str]]
    cued: dict[tuple[str, int], frozenset[str]]

    def answers(self, section: SectionRef, kind: str | None) -> bool:
        """Whether the section is known to answer this kind of question."""
        key = _key(section)
        return kind is not None and (
            kind in self.reviewed.get(key, ()) or kind in self.cued.get(key, ())
        )

    def may_answer(self, section: SectionRef, kind: str | None) -> bool:
        """A reviewed section answers its kinds only; any other section may answer."""
        reviewed = self.reviewed.get(_key(section))
        return reviewed is None or kind is None or kind in reviewed


def _section_kinds(session: Session) -> SectionKinds:
    return _PER_BUILD.get(
        session,
        "kinds",
        lambda: SectionKinds(
            reviewed=queries.kinds_by_section(session, FROM_MAP),
            cued=queries.kinds_by_section(session, FROM_HEADING),
        ),
    )


@dataclass(frozen=True)
class Candidate:
    """A section that may answer, with its score and the score it needs.

    `score` ranks (the search score plus the topic and kind bonuses), `search` is the
    plain search score and `of_kind` whether the section is known to answer the kind.
    """

    section: SectionRef
    score: float
    needs: float
    search: float = 0.0
    of_kind: bool = False


def _candidates(
    session: Session,
    question: Question,
    hits: dict[tuple[str, int], SearchHit],
    about: list[SectionRef],
    specific: bool,
) -> list[Candidate]:
    """Every section that may answer, best first.

    A section scores its search match, plus TOPIC_BONUS when it is about the topic and
    KIND_BONUS when it is known to answer the kind. It needs KIND_SCORE when it is
    known to answer the kind, ANSWER_SCORE (a clear match) otherwise; a reviewed
    section about the topic and of the kind needs nothing more. A question about a
    specific injection is answered by a reviewed section only when it is about it (or
    about injections in general: a reviewed section that names no term).
    """
    kinds = _section_kinds(session)
    about_keys = {_key(s): i for i, s in enumerate(about)}
    named = _PER_BUILD.get(
        session, "named", lambda: queries.sections_naming_terms(session)
    )
    found = []
    for section in queries.all_sections(session):
        if section.language != question.language:
            continue
        key = _key(section)
        reviewed = key in kinds.reviewed
        # a reviewed section that names no injection, condition or body area ("less
        # invasive than surgery") speaks of every topic, but answers by its words alone
        general = reviewed and section.number > 0 and key not in named
        about_topic = key in about_keys or (bool(about) and general)
        if not kinds.may_answer(section, question.kind):
            continue
        if specific and reviewed and not about_topic:
            continue
        hit = hits.get(key)
        search = score = hit.score if hit else 0.0
        of_kind = kinds.answers(section, question.kind)
        if about_topic:
            score += TOPIC_BONUS
        if of_kind:
            score += KIND_BONUS
        if of_kind and reviewed and key in about_keys:
            needs = 0.0
        elif of_kind:
            needs = KIND_SCORE + KIND_BONUS + (TOPIC_BONUS if about_topic else 0.0)
        else:
            needs = ANSWER_SCORE
        found.append(Candidate(section, score, needs, search, of_kind))
    order = {_key(c.section): i for i, c in enumerate(found)}
    return sorted(
        found,
        key=lambda c: (
            -c.score,
            about_keys.get(_key(c.section), 99),
            order[_key(c.section)],
        ),
    )


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
    match = _SENTENCE.match(body.strip())
    return match.group(0).strip() if match else body


def answer_question(session: Session, question: Question, misses: int) -> Answer:
    """Answer a question by its kind and topic, searching to rank the sections."""
    hits = {
        _key(h.section): h
        for h in queries.rank_sections(session, question.text, question.language)
    }
    entity_kind, topic, about = _topic_sections(session, question)
    if topic is not None and not about:
        # e.g. a facet joint injection: no document describes it, so none answers
        return _not_covered(question.miss_kind, misses, topic)
    specific = entity_kind == SPECIFIC_TOPIC and not question.terms_from_story
    ranked = _candidates(session, question, hits, about, specific)
    passing = [
        c for c in ranked if (c.score >= c.needs and c.score > 0) or c.needs == 0
    ]
    if passing:
        best = passing[0]
        runner_up = next((c for c in ranked if c is not best), None)
        # a section of the asked kind has passed its own bar; a free-text match (one
        # that needs ANSWER_SCORE) must also stand clear of the next section, whatever
        # kind was asked: a leaflet section nobody mapped ("When will I feel the
        # benefit?") does not answer "how much does an epidural cost" by its words alone
        clear = (
            (best.of_kind and not question.kind_guessed)
            or runner_up is None
            or (best.score >= ANSWER_MARGIN * runner_up.score)
        )
        if clear:
            # offered next: the other sections about the topic, else the next matches
            rest = [c.section for c in ranked if c is not best and c.score > 0]
            others = [s for s in about if s != best.section] if about else rest
            return _knowledge(session, best.section, others)
    if topic is not None and not question.terms_from_story:
        return _topic_only(
            question.miss_kind, topic, about[0], hits.get(_key(about[0]))
        )
    kinds = _section_kinds(session)
    of_kind = [c.section for c in ranked if kinds.answers(c.section, question.kind)]
    if question.kind_guessed:
        # a guessed kind never speaks through an introduction or a lone section
        of_kind = []
    # no clear match in words: a document's introduction of this kind speaks for it
    intros = [s for s in of_kind if s.number == 0]
    if intros:
        return _knowledge(session, intros[0], [s for s in of_kind if s != intros[0]])
    if len(of_kind) == 1:
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


def question_intent(ranking: Sequence[str]) -> str | None:
    """The best question intent the classifier ranked (under other_language's override)."""
    return next(
        (n for n in ranking if n.startswith(KIND_PREFIX) or n in OFF_TOPIC_INTENTS),
        None,
    )


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
        if language not in _PER_BUILD.get(
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
