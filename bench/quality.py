"""`make bench`: answer quality on the held-out questions, printed as tables.

1. The assistant: intent accuracy and macro-F1 (the trained model, red-flag detector
   included), the share of topic questions answered from the right section, the share of
   not-covered questions answered honestly.
2. The alternative a clinic might pick instead: a plain BM25 search box over the guide's
   sections, answering with the top section when its score passes a threshold (the best
   threshold for it, chosen on these same questions) and "not found" otherwise.
3. The search engine behind the assistant's free-text fallback: in-memory BM25 over lemma
   passages vs SQLite FTS5, top-1 section on the topic questions.
4. Red flags: recall and false alarms of the detector alone and of the running system
   (detector + NLU intent) on each table (every tests/nlu/red_flags*.yml) and per
   language; the final table was never used for tuning.
5. Language identification: accuracy on the labelled short messages (bench.language_id).
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.evaluation import (
    NOT_COVERED_INTENTS,
    answer_report,
    intent_report,
    load_examples,
    parse_messages,
    topic_sections,
)
from bot.red_flags import project_detector
from bot.training import MODEL_FILE, ROOT
from knowledge import model, pipeline, queries
from knowledge.environment import session_scope
from knowledge.search import BM25

HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"
RED_FLAG_TABLES = ROOT / "tests" / "nlu"
EMERGENCY_INTENTS = {"report_red_flag", "report_self_harm"}


@dataclass(frozen=True)
class RedFlagTable:
    """A table of emergencies and near misses (tests/nlu/red_flags*.yml).

    The format: `language:` (ISO 639-1; English when absent), `emergencies:` a list of
    {text, kind} and `near_misses:` a list of texts (or of {text, kind}).
    """

    name: str
    language: str
    emergencies: list[str]
    kinds: list[str]
    near_misses: list[str]


def red_flag_tables(folder: Path = RED_FLAG_TABLES) -> list[RedFlagTable]:
    """Every red-flag table in the folder, by file name."""
    tables = []
    for path in sorted(folder.glob("red_flags*.yml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        tables.append(
            RedFlagTable(
                name=path.name,
                language=str(raw.get("language") or "en"),
                emergencies=[e["text"] for e in raw.get("emergencies") or []],
                kinds=[str(e.get("kind")) for e in raw.get("emergencies") or []],
                near_misses=[
                    m["text"] if isinstance(m, dict) else m
                    for m in raw.get("near_misses") or []
                ],
            )
        )
    return tables


def plain_search_baseline(
    examples: list[Any], topics: dict[str, int]
) -> tuple[float, float, float]:
    """BM25 over whole sections (plain lowercase words), best threshold for it."""
    with session_scope() as session:
        sections = [s for s in queries.all_sections(session) if s.number > 0]
    nlp = pipeline.load()

    def words(text: str) -> list[str]:
        return [t.lower_ for t in nlp(text) if t.is_alpha and not t.is_stop]

    bm25 = BM25([words(f"{s.title} {s.body}") for s in sections])
    scored = []
    for example in examples:
        scores = bm25.scores(words(example.text))
        best = max(range(len(scores)), key=scores.__getitem__)
        scored.append((example, sections[best].number, scores[best]))

    def figures(threshold: float) -> tuple[float, float]:
        right = sum(
            1
            for e, n, s in scored
            if e.intent in topics and s >= threshold and n == topics[e.intent]
        )
        honest = sum(
            1 for e, _, s in scored if e.intent in NOT_COVERED_INTENTS and s < threshold
        )
        n_topic = sum(1 for e, _, _ in scored if e.intent in topics)
        n_nc = sum(1 for e, _, _ in scored if e.intent in NOT_COVERED_INTENTS)
        return right / n_topic, honest / n_nc

    best_threshold = max((t / 10 for t in range(0, 101)), key=lambda t: sum(figures(t)))
    right, honest = figures(best_threshold)
    return right, honest, best_threshold


def search_engines(examples: list[Any], topics: dict[str, int]) -> dict[str, float]:
    """Top-1 section accuracy of the fallback search engines on the topic questions."""
    questions = [e for e in examples if e.intent in topics]
    with session_scope() as session:
        bm25_right = sum(
            1
            for e in questions
            if (hits := queries.search_sections(session, e.text, 1))
            and hits[0].section.number == topics[e.intent]
        )
        rows = session.query(model.Passage).all()
        passages = [(p.section.number, p.lemmas) for p in rows]
    fts = sqlite3.connect(":memory:")
    fts.execute("CREATE VIRTUAL TABLE p USING fts5(section UNINDEXED, lemmas)")
    fts.executemany("INSERT INTO p VALUES (?, ?)", passages)
    fts_right = 0
    for e in questions:
        words = [w for w in queries.query_terms(e.text) if w.isalnum()]
        if not words:
            continue
        match = " OR ".join(f'"{w}"' for w in words)
        row = fts.execute(
            "SELECT section FROM p WHERE p MATCH ? ORDER BY bm25(p) LIMIT 1", (match,)
        ).fetchone()
        fts_right += bool(row) and row[0] == topics[e.intent]
    return {
        "bm25 (in memory)": bm25_right / len(questions),
        "sqlite fts5": fts_right / len(questions),
    }


def red_flag_rows() -> list[tuple[str, str, str, str, str]]:
    """Recall and false alarms per table and per language: the detector alone, and the
    whole system (detector + NLU intent, language identification included)."""
    detector = project_detector()
    tables = red_flag_tables()
    texts = [t for table in tables for t in table.emergencies + table.near_misses]
    parses = iter(parse_messages(MODEL_FILE, texts))  # one model load for every table

    def share(hits: int, total: int) -> str:
        return f"{hits}/{total} = {hits / total:.3f}" if total else "-"

    counts: list[tuple[str, list[int]]] = []
    for table in tables:
        flagged = [
            p["intent"]["name"] in EMERGENCY_INTENTS
            for p in (next(parses) for _ in table.emergencies + table.near_misses)
        ]
        n = len(table.emergencies)
        found = sum(detector.detect(t) is not None for t in table.emergencies)
        alarms = sum(detector.detect(t) is not None for t in table.near_misses)
        counts.append(
            (
                table.name,
                [
                    found,
                    alarms,
                    sum(flagged[:n]),
                    sum(flagged[n:]),
                    n,
                    len(flagged) - n,
                ],
            )
        )
        counts.append((f"language: {table.language}", counts[-1][1]))
    totals: dict[str, list[int]] = {}
    rows = []
    for name, c in counts:
        if name.startswith("language: "):
            totals[name] = [
                a + b for a, b in zip(totals.get(name, [0] * 6), c, strict=True)
            ]
            continue
        rows.append((name, *_shares(c, share)))
    rows += [(name, *_shares(c, share)) for name, c in sorted(totals.items())]
    return rows


def _shares(
    c: list[int], share: Callable[[int, int], str]
) -> tuple[str, str, str, str]:
    found, alarms, system_found, system_alarms, n_emergencies, n_misses = c
    return (
        share(found, n_emergencies),
        share(alarms, n_misses),
        share(system_found, n_emergencies),
        share(system_alarms, n_misses),
    )


def language_id_row() -> dict[str, Any]:
    """The assistant's language identification on the labelled short messages."""
    from bench.language_id import labelled_messages, scores
    from bot.language import project_identifier

    identifier = project_identifier()
    pairs = labelled_messages()
    predicted = [identifier.identify(text).language for text, _ in pairs]
    return scores(pairs, predicted) if pairs else {}


def measure() -> dict[str, Any]:
    """Every quality figure of the assistant and the search box, as one dict."""
    examples = load_examples(HELDOUT)
    started = time.perf_counter()
    parses = parse_messages(MODEL_FILE, [e.text for e in examples])
    seconds = time.perf_counter() - started
    predicted = [p["intent"]["name"] for p in parses]
    report = intent_report([e.intent for e in examples], predicted)
    with session_scope() as session:
        topics = topic_sections(session, {e.intent for e in examples})
    answers = answer_report(examples, parses, topics)
    base_right, base_honest, threshold = plain_search_baseline(examples, topics)
    return {
        "heldout": len(examples),
        "parse_seconds": round(seconds, 1),
        "accuracy": report.accuracy,
        "macro_f1": report.macro_f1,
        "right_section": answers.right_section,
        "honest": answers.honest_not_covered,
        "topic_questions": answers.topic_questions,
        "not_covered_questions": answers.not_covered_questions,
        "search_right_section": base_right,
        "search_honest": base_honest,
        "search_threshold": threshold,
        "engines": search_engines(examples, topics),
        "red_flags": red_flag_rows(),
        "language_id": language_id_row(),
        "confusions": Counter(
            (e.intent, p)
            for e, p in zip(examples, predicted, strict=True)
            if e.intent != p
        ),
        "wrong": answers.wrong,
    }


def main() -> int:
    figures = measure()
    print(
        f"\nheld-out questions: {figures['heldout']} ({HELDOUT.relative_to(ROOT)}); "
        f"parsed in {figures['parse_seconds']:.1f}s incl. model load"
    )
    print(f"\n{'figure':52} {'assistant':>10} {'BM25 search box':>16}")
    print(f"{'intent accuracy':52} {figures['accuracy']:10.3f} {'-':>16}")
    print(f"{'intent macro-F1':52} {figures['macro_f1']:10.3f} {'-':>16}")
    print(
        f"{'topic questions answered from the right section':52} "
        f"{figures['right_section']:10.3f} {figures['search_right_section']:16.3f}"
        f"  (n={figures['topic_questions']})"
    )
    print(
        f"{'not-covered questions answered honestly':52} "
        f"{figures['honest']:10.3f} {figures['search_honest']:16.3f}"
        f"  (n={figures['not_covered_questions']})"
    )
    print(
        f"(search box: BM25 over sections, best threshold {figures['search_threshold']:.1f})"
    )

    print(
        f"\n{'fallback search engine, top-1 section on topic questions':58} {'share':>6}"
    )
    for engine, share in figures["engines"].items():
        print(f"  {engine:56} {share:6.3f}")

    print(
        f"\n{'red-flag table':24} {'detector recall':>16} {'false alarms':>14} "
        f"{'system recall':>16} {'false alarms':>14}"
    )
    for row in figures["red_flags"]:
        print(f"{row[0]:24} {row[1]:>16} {row[2]:>14} {row[3]:>16} {row[4]:>14}")
    language = figures["language_id"]
    if language:
        print(
            f"\nlanguage identification (bot.language): {language['all']} right; "
            f"Spanish {language['es']}, English {language['en']}, others "
            f"{language['others']}; English messages given another language: "
            f"{language['english_sent_elsewhere']}"
        )

    if "-v" in sys.argv:
        print("\nconfusions (gold -> predicted):")
        for (g, p), n in figures["confusions"].most_common():
            print(f"  {n} {g} -> {p}")
        print("\nmisanswered:")
        for text, gold, got in figures["wrong"]:
            print(f"  [{gold} -> {got}] {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
