"""Which sections of the knowledge store may answer a question, scored and ranked.

Each section scores its BM25 search match (knowledge.queries.rank_sections), plus bonuses
when it is about the question's topic and known to answer its kind, and needs a score
that depends on the same facts (`rank_candidates`). The thresholds are settings
(SEARCH_*, clinic.settings; docs/benchmarks.md for how they were chosen). What depends on
the store alone is worked out once per build of it (`PER_BUILD`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from actions.questions import ENTITY_PRIORITY, Question
from clinic import settings
from knowledge import queries
from knowledge.kinds import FROM_HEADING, FROM_MAP
from knowledge.queries import SearchHit, SectionRef

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

#: Section descriptions and knowledge answers depend on the store alone: worked out once
#: per build of the store (knowledge.queries.BuildMemo).
PER_BUILD = queries.BuildMemo()


def section_key(section: SectionRef) -> tuple[str, int]:
    """A section's identity across sessions: its document and number."""
    return (section.file, section.number)


@dataclass(frozen=True)
class SectionKinds:
    """The kinds each section answers: reviewed (a hard rule), or cued by headings."""

    reviewed: dict[tuple[str, int], frozenset[str]]
    cued: dict[tuple[str, int], frozenset[str]]

    def answers(self, section: SectionRef, kind: str | None) -> bool:
        """Whether the section is known to answer this kind of question."""
        key = section_key(section)
        return kind is not None and (
            kind in self.reviewed.get(key, ()) or kind in self.cued.get(key, ())
        )

    def may_answer(self, section: SectionRef, kind: str | None) -> bool:
        """A reviewed section answers its kinds only; any other section may answer."""
        reviewed = self.reviewed.get(section_key(section))
        return reviewed is None or kind is None or kind in reviewed


def section_kinds(session: Session) -> SectionKinds:
    """The kinds each section answers, once per build of the store."""
    return PER_BUILD.get(
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


def rank_candidates(
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
    kinds = section_kinds(session)
    about_keys = {section_key(s): i for i, s in enumerate(about)}
    named = PER_BUILD.get(
        session, "named", lambda: queries.sections_naming_terms(session)
    )
    found = []
    for section in queries.all_sections(session):
        if section.language != question.language:
            continue
        key = section_key(section)
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
    order = {section_key(c.section): i for i, c in enumerate(found)}
    return sorted(
        found,
        key=lambda c: (
            -c.score,
            about_keys.get(section_key(c.section), 99),
            order[section_key(c.section)],
        ),
    )


def topic_sections(
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
