"""Negation and context for red flags: the project's hand rules against field libraries.

`python -m bench.red_flag_context` runs the red-flag detector on every table
(tests/nlu/red_flags*.yml) but the blind ones (bench.quality.BLIND_RED_FLAG_TABLES, kept
out of every choice made in development) with each way of deciding that a symptom it found is not a
report of it happening now, and prints recall and false alarms per table:
  - hand rules: the vocabulary's negations, past and supposition rules (bot.red_flags);
  - negspacy's NegEx (en_clinical terms) for negation, the hand rules for past and
    supposition;
  - medspacy's ConText (its default rules: negated, historical, hypothetical, family)
    instead of all three hand rules.
The libraries only see the symptom the patterns found (as a spaCy entity), so the
comparison is of the context rules alone. They are not dependencies of the assistant:
install them to run this (docs/red-flags.md has the versions that fit spaCy 3.4).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import spacy
from spacy.tokens import Doc, Span

from bench.quality import BLIND_RED_FLAG_TABLES, red_flag_tables
from bot.red_flags import ContextJudge, HandContext, RedFlagDetector
from knowledge.vocabulary import project_vocabulary


def _entity_judge(
    nlp: Any, verdict: Callable[[Span], bool], fallback: HandContext | None
) -> ContextJudge:
    """A judge that marks the mention as an entity and asks a spaCy pipe about it."""

    @lru_cache(maxsize=4096)
    def judge(language: str, message: str, start: int, end: int) -> bool:
        doc: Doc = nlp.make_doc(message)
        span = doc.char_span(start, end, label="RED_FLAG", alignment_mode="expand")
        if span is None:
            return False
        doc.ents = [span]
        for _, pipe in nlp.pipeline:
            doc = pipe(doc)
        if verdict(doc.ents[0]):
            return True
        if fallback is None:
            return False
        return fallback.past_at(message, start, end) or fallback.supposed(
            message, start
        )

    return judge


def negex_judge(hand: HandContext) -> ContextJudge:
    """NegEx for negation; the hand rules for past and supposition."""
    import negspacy.negation  # noqa: F401  (registers the "negex" factory)

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("negex", config={"ent_types": ["RED_FLAG"]})
    return _entity_judge(nlp, lambda ent: bool(ent._.negex), hand)


def context_judge() -> ContextJudge:
    """medspacy's ConText with its default rules for every modifier."""
    import medspacy.context  # noqa: F401  (registers the "medspacy_context" factory)

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("medspacy_context", config={"rules": "default"})

    def verdict(ent: Span) -> bool:
        return bool(
            ent._.is_negated
            or ent._.is_historical
            or ent._.is_hypothetical
            or ent._.is_family
        )

    return _entity_judge(nlp, verdict, None)


def rows(judges: dict[str, Callable[[], ContextJudge]]) -> list[list[str]]:
    """One row per table: recall and false alarms with each judge."""
    vocabulary = project_vocabulary()
    detectors = {
        name: RedFlagDetector(vocabulary, make()) for name, make in judges.items()
    }
    table_rows = []
    for table in red_flag_tables():
        if table.name in BLIND_RED_FLAG_TABLES:
            continue
        row = [table.name]
        for detector in detectors.values():
            found = sum(
                detector.detect(t, table.language) is not None
                for t in table.emergencies
            )
            alarms = sum(
                detector.detect(t, table.language) is not None
                for t in table.near_misses
            )
            row.append(
                f"{found}/{len(table.emergencies)}, {alarms}/{len(table.near_misses)}"
            )
        table_rows.append(row)
    return table_rows


def main() -> int:
    hand = HandContext(project_vocabulary().red_flag_rules)
    judges: dict[str, Callable[[], ContextJudge]] = {"hand rules": lambda: hand}
    for name, make in (
        ("NegEx + hand past", lambda: negex_judge(hand)),
        ("ConText", context_judge),
    ):
        try:
            make()
        except ImportError as exc:
            print(f"{name}: not installed ({exc})")
            continue
        judges[name] = make
    print("recall (found/emergencies), false alarms (flagged/near misses)")
    print(f"{'table':28}" + "".join(f"{n:>22}" for n in judges))
    for row in rows(judges):
        print(f"{row[0]:28}" + "".join(f"{c:>22}" for c in row[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
