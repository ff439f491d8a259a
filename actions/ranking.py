"""Which sections of the knowledge store may answer a question, scored and ranked.

Each section scores its BM25 search match (knowledge.queries.rank_sections), plus bonuses
when it is about the question's topic and known to answer its kind (`rank_candidates`),
which orders the sections offered. Whether one of them answers rests on evidence that
means the same in any document (`answering_candidate`): how much of the question's
content it holds (knowledge.evidence), in its headings above all, whether it is known
to answer the kind asked, its BM25 score against the best section's, and how far it
stands ahead of the next. The weights and thresholds are settings (SEARCH_*,
clinic.settings), calibrated on the dev set (python -m bench.dev_answers). What depends
on the store alone is worked out once per build of it (`PER_BUILD`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from actions.questions import ENTITY_PRIORITY, Question
from clinic import settings
from knowledge import evidence, queries
from knowledge.evidence import Coverage
from knowledge.kinds import FROM_HEADING, FROM_MAP
from knowledge.queries import SearchHit, SectionRef

_SEARCH = settings.current()
#: BM25 scores for the reviewed documents (see docs/benchmarks.md for how they were
#: chosen on the held-out set).
ANSWER_SCORE = _SEARCH.search_answer_score
ANSWER_MARGIN = _SEARCH.search_answer_margin
#: Within the reviewed sections of the asked kind, a match this good picks one of them.
KIND_SCORE = _SEARCH.search_kind_score
#: The share of the question's content a section must hold to answer by evidence.
MIN_COVERAGE = _SEARCH.search_min_coverage
#: How far the answering section's evidence must stand ahead of the next section's.
EVIDENCE_MARGIN = _SEARCH.search_evidence_margin
#: Evidence weights: the share held in headings, the kind, the relative BM25 score.
HEADING_WEIGHT = _SEARCH.search_heading_weight
KIND_WEIGHT = _SEARCH.search_kind_weight
BM25_WEIGHT = _SEARCH.search_bm25_weight
#: Taken off the evidence of a section of a document about another injection than the
#: one the question names (knowledge.evidence.Coverage.off_topic).
OFF_TOPIC_WEIGHT = _SEARCH.search_off_topic_weight
#: The coverage of a section that holds nothing of the question.
NO_COVERAGE = Coverage()
#: A BM25 match worth offering in a "did you mean".
CLARIFY_SCORE = _SEARCH.search_clarify_score
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
    """A section that may answer, with its score and the evidence that it does.

    `score` ranks (the search score plus the topic and kind bonuses), `needs` is the
    score a reviewed section needs, `search` the plain search score, `of_kind` whether
    the section is known to answer the kind (and the kind was not a guess), `cover` how
    much of the question it holds, `reviewed` whether sections.yml maps it.
    """

    section: SectionRef
    score: float
    needs: float = 0.0
    search: float = 0.0
    of_kind: bool = False
    cover: Coverage = NO_COVERAGE
    reviewed: bool = False

    def evidence(self, best_search: float) -> float:
        """How strongly the section answers, comparable across documents and questions.

        `best_search` is the best section's BM25 score for the question: a section's own
        counts as its share of it, so the figure does not grow with the question.
        """
        relative = self.search / best_search if best_search > 0 else 0.0
        return (
            self.cover.share
            + HEADING_WEIGHT * self.cover.heading_share
            + KIND_WEIGHT * self.of_kind
            + BM25_WEIGHT * relative
            - OFF_TOPIC_WEIGHT * self.cover.off_topic
        )


def rank_candidates(
    session: Session,
    question: Question,
    hits: dict[tuple[str, int], SearchHit],
    about: list[SectionRef],
    specific: bool,
) -> list[Candidate]:
    """Every section that may answer, best first by score.

    A section scores its search match, plus TOPIC_BONUS when it is about the topic and
    KIND_BONUS when it is known to answer the kind. A reviewed section needs KIND_SCORE
    when it is known to answer the kind, ANSWER_SCORE (a clear match) otherwise, and
    nothing more when it is about the topic and of the kind; it answers only the kinds
    it was reviewed for. A question about a specific injection is answered by a reviewed
    section only when it is about it (or about injections in general: a reviewed
    section that names no term).
    """
    kinds = section_kinds(session)
    about_keys = {section_key(s): i for i, s in enumerate(about)}
    named = PER_BUILD.get(
        session, "named", lambda: queries.sections_naming_terms(session)
    )
    cover = evidence.coverage(session, question.text, question.language)
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
        found.append(
            Candidate(
                section,
                score,
                needs,
                search,
                of_kind and not question.kind_guessed,
                cover.get(key, NO_COVERAGE),
                reviewed,
            )
        )
    order = {section_key(c.section): i for i, c in enumerate(found)}
    return sorted(
        found,
        key=lambda c: (
            -c.score,
            about_keys.get(section_key(c.section), 99),
            order[section_key(c.section)],
        ),
    )


def answering_candidate(ranked: list[Candidate]) -> Candidate | None:
    """The section that answers, if any: by the reviewed map, or by evidence.

    A reviewed section (sections.yml maps its document: the guide) answers by its map
    and the BM25 bars calibrated on it (`_reviewed_answer`); a section of any other
    document answers by evidence (`_evidence_answer`), which means the same in a leaflet
    nobody has seen. When both find one, the unreviewed one needs the stronger evidence.
    """
    reviewed = _reviewed_answer([c for c in ranked if c.reviewed])
    found = _evidence_answer(ranked)
    if found is not None and found.reviewed:
        found = None  # a reviewed section answers by its map and bars only
    if reviewed is None or found is None:
        return reviewed or found
    best_search = max(c.search for c in ranked)
    if found.evidence(best_search) > reviewed.evidence(best_search):
        return found
    return reviewed


def _reviewed_answer(ranked: list[Candidate]) -> Candidate | None:
    """The reviewed section that passes its bar (`needs`) and stands clear.

    Of the kind asked (not a guess), passing is enough; a free-text match must also be
    ANSWER_MARGIN times the next reviewed section's score.
    """
    passing = [
        c for c in ranked if (c.score >= c.needs and c.score > 0) or c.needs == 0
    ]
    if not passing:
        return None
    best = passing[0]
    runner_up = next((c for c in ranked if c is not best), None)
    if (
        best.of_kind
        or runner_up is None
        or best.score >= ANSWER_MARGIN * runner_up.score
    ):
        return best
    return None


def _evidence_answer(ranked: list[Candidate]) -> Candidate | None:
    """The section with the best evidence, when it is enough and clear.

    It must hold at least MIN_COVERAGE of the question's content, and its evidence must
    stand EVIDENCE_MARGIN ahead of the next section of its own document. Sections of
    other documents are not rivals: two leaflets that say the same thing (an aftercare
    and a preparation leaflet on medicines) leave no doubt about what is asked, while
    two sections of one leaflet that match equally well do.
    """
    if not ranked:
        return None
    best_search = max(c.search for c in ranked)
    by_evidence = sorted(
        ranked, key=lambda c: (-c.evidence(best_search), -c.search)
    )  # stable: the score order breaks the remaining ties
    best = by_evidence[0]
    if best.cover.share < MIN_COVERAGE:
        return None
    rival = next(
        (c for c in by_evidence[1:] if c.section.file == best.section.file), None
    )
    if rival is not None:
        margin = best.evidence(best_search) - rival.evidence(best_search)
        if margin < EVIDENCE_MARGIN:
            return None
    return best


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
