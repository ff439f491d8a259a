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
   (detector + NLU intent) on each table; the final table was never used for tuning.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections import Counter
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
TABLES = [
    "red_flags.yml",
    "red_flags_holdout.yml",
    "red_flags_blind.yml",
    "red_flags_final.yml",
]
EMERGENCY_INTENTS = {"report_red_flag", "report_self_harm"}


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
    """Recall and false alarms per table: the detector alone, and the whole system."""
    detector = project_detector()
    tables = []
    for name in TABLES:
        path = ROOT / "tests" / "nlu" / name
        if path.exists():
            table = yaml.safe_load(path.read_text(encoding="utf-8"))
            tables.append(
                (name, [e["text"] for e in table["emergencies"]], table["near_misses"])
            )
    texts = [t for _, emergencies, misses in tables for t in emergencies + misses]
    parses = iter(parse_messages(MODEL_FILE, texts))  # one model load for every table

    def share(hits: int, total: int) -> str:
        return f"{hits}/{total} = {hits / total:.3f}"

    rows = []
    for name, emergencies, misses in tables:
        flagged = [
            p["intent"]["name"] in EMERGENCY_INTENTS
            for p in (next(parses) for _ in range(len(emergencies) + len(misses)))
        ]
        found = sum(detector.detect(t) is not None for t in emergencies)
        alarms = sum(detector.detect(t) is not None for t in misses)
        rows.append(
            (
                name,
                share(found, len(emergencies)),
                share(alarms, len(misses)),
                share(sum(flagged[: len(emergencies)]), len(emergencies)),
                share(sum(flagged[len(emergencies) :]), len(misses)),
            )
        )
    return rows


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
