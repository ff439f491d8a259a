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

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.evaluation import (
    LabelledQuestion,
    answer_report,
    intent_report,
    load_examples,
    load_labelled,
    parse_messages,
)
from bot.red_flags import project_detector
from bot.training import MODEL_FILE, ROOT
from clinic.intents import EMERGENCY_INTENTS
from knowledge import model, pipeline, queries, settings
from knowledge.builder import build_store
from knowledge.environment import session_scope
from knowledge.search import BM25

HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"
#: Labelled answer sets: the team's held-out questions, real patients' questions from
#: public pages, and questions about the test leaflets (answered with them added).
HELDOUT_ANSWERS = ROOT / "tests" / "nlu" / "heldout_answers.yml"
REAL_QUESTIONS = ROOT / "tests" / "nlu" / "real_questions.yml"
LEAFLET_QUESTIONS = ROOT / "tests" / "nlu" / "leaflet_questions.yml"
LEAFLETS = ROOT / "tests" / "fixtures" / "documents"
#: Spanish patients' questions about the Spanish fixture leaflet (LEAFLETS / "es").
SPANISH_QUESTIONS = ROOT / "tests" / "nlu" / "spanish_questions.yml"


def _gold_key(
    question: LabelledQuestion, sections: list[queries.SectionRef]
) -> int | None:
    """The index of the section a question is owed among `sections`, if it is there."""
    for index, section in enumerate(sections):
        if question.covered and question.answered_by(section.citation()):
            return index
    return None


RED_FLAG_TABLES = ROOT / "tests" / "nlu"
#: Written apart from the detector and kept out of its development: `make bench` measures
#: them (recall and false alarms only); no tuning tool reads them.
BLIND_RED_FLAG_TABLES = frozenset(
    {"red_flags_patients_en.yml", "red_flags_patients_es.yml"}
)


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
    questions: list[LabelledQuestion],
) -> tuple[float, float, float]:
    """BM25 over whole sections (plain lowercase words), best threshold for it."""
    with session_scope() as session:
        sections = queries.all_sections(session)
    nlp = pipeline.load()

    def words(text: str) -> list[str]:
        return [t.lower_ for t in nlp(text) if t.is_alpha and not t.is_stop]

    bm25 = BM25([words(f"{s.title} {s.body}") for s in sections])
    scored = []
    for question in questions:
        scores = bm25.scores(words(question.text))
        best = max(range(len(scores)), key=scores.__getitem__)
        scored.append((question, _gold_key(question, sections), best, scores[best]))
    n_covered = sum(1 for q, *_ in scored if q.covered) or 1
    n_uncovered = sum(1 for q, *_ in scored if not q.covered) or 1

    def figures(threshold: float) -> tuple[float, float]:
        right = sum(
            1 for q, g, b, s in scored if q.covered and s >= threshold and b == g
        )
        honest = sum(1 for q, _, _, s in scored if not q.covered and s < threshold)
        return right / n_covered, honest / n_uncovered

    best_threshold = max((t / 10 for t in range(0, 101)), key=lambda t: sum(figures(t)))
    right, honest = figures(best_threshold)
    return right, honest, best_threshold


def search_engines(questions: list[LabelledQuestion]) -> dict[str, float]:
    """Top-1 section accuracy of the fallback search engines on the covered questions."""
    covered = [q for q in questions if q.covered]
    with session_scope() as session:
        sections = queries.all_sections(session)
        bm25_right = sum(
            1
            for q in covered
            if (hits := queries.search_sections(session, q.text, 1))
            and q.answered_by(hits[0].section.citation())
        )
        rows = session.query(model.Passage).all()
        index = {(s.file, s.number): i for i, s in enumerate(sections)}
        passages = [
            (index[(p.section.document.file, p.section.number)], p.lemmas) for p in rows
        ]
    fts = sqlite3.connect(":memory:")
    fts.execute("CREATE VIRTUAL TABLE p USING fts5(section UNINDEXED, lemmas)")
    fts.executemany("INSERT INTO p VALUES (?, ?)", passages)
    fts_right = 0
    for q in covered:
        words = [w for w in queries.query_terms(q.text) if w.isalnum()]
        if not words:
            continue
        match = " OR ".join(f'"{w}"' for w in words)
        row = fts.execute(
            "SELECT section FROM p WHERE p MATCH ? ORDER BY bm25(p) LIMIT 1", (match,)
        ).fetchone()
        fts_right += bool(row) and row[0] == _gold_key(q, sections)
    total = len(covered) or 1
    return {"bm25 (in memory)": bm25_right / total, "sqlite fts5": fts_right / total}


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


def answer_set(path: Path, parses: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The assistant and the search box on one labelled set, in the current store."""
    questions = load_labelled(path)
    answers = answer_report(questions, [parses[q.text] for q in questions])
    base_right, base_honest, threshold = plain_search_baseline(questions)
    return {
        "file": str(path.relative_to(ROOT)),
        "right_section": answers.right_section,
        "honest": answers.honest_not_covered,
        "covered_questions": answers.covered_questions,
        "not_covered_questions": answers.not_covered_questions,
        "search_right_section": base_right,
        "search_honest": base_honest,
        "search_threshold": threshold,
        "engines": search_engines(questions),
        "wrong": answers.wrong,
    }


@contextmanager
def store_with_leaflets(folder: Path = LEAFLETS) -> Iterator[bool]:
    """The guide plus the leaflets of `folder` (the test leaflets by default, with their
    Spanish folder), in a store of their own (no retraining)."""
    leaflets = sorted(
        p for p in folder.glob("*") if p.suffix in (".md", ".docx", ".pdf")
    )
    if not leaflets:
        yield False
        return
    with tempfile.TemporaryDirectory() as tmp:
        sources = Path(tmp) / "sources"
        shutil.copytree(settings.SOURCES_DIR, sources)
        for leaflet in leaflets:
            shutil.copy(leaflet, sources / leaflet.name)
        if (folder / "es").is_dir():
            shutil.copytree(folder / "es", sources / "es")
        url = f"sqlite:///{Path(tmp) / 'knowledge.db'}"
        build_store(url=url, sources_dir=sources)
        previous = os.environ.get("KNOWLEDGE_DB_URL")
        os.environ["KNOWLEDGE_DB_URL"] = url
        try:
            yield True
        finally:
            if previous is None:
                os.environ.pop("KNOWLEDGE_DB_URL", None)
            else:
                os.environ["KNOWLEDGE_DB_URL"] = previous


def measure() -> dict[str, Any]:
    """Every quality figure of the assistant and the search box, as one dict."""
    examples = load_examples(HELDOUT)
    sets = [
        p
        for p in (HELDOUT_ANSWERS, REAL_QUESTIONS, LEAFLET_QUESTIONS, SPANISH_QUESTIONS)
        if p.exists()
    ]
    texts = [e.text for e in examples]
    texts += [q.text for p in sets for q in load_labelled(p)]
    started = time.perf_counter()
    parsed = parse_messages(MODEL_FILE, texts)
    seconds = time.perf_counter() - started
    parses = dict(zip(texts, parsed, strict=True))
    predicted = [parses[e.text]["intent"]["name"] for e in examples]
    report = intent_report([e.intent for e in examples], predicted)
    figures: dict[str, Any] = {
        "heldout": len(examples),
        "parse_seconds": round(seconds, 1),
        "accuracy": report.accuracy,
        "macro_f1": report.macro_f1,
        "red_flags": red_flag_rows(),
        "language_id": language_id_row(),
        "confusions": Counter(
            (e.intent, p)
            for e, p in zip(examples, predicted, strict=True)
            if e.intent != p
        ),
        "sets": {},
    }
    for path in sets:
        if path not in (LEAFLET_QUESTIONS, SPANISH_QUESTIONS):
            figures["sets"][path.stem] = answer_set(path, parses)
    with store_with_leaflets() as built:
        if built:
            for path in sets:
                figures["sets"][f"{path.stem} + leaflets"] = answer_set(path, parses)
    team = figures["sets"].get(HELDOUT_ANSWERS.stem, {})
    # the team's held-out set keeps the names the report has always read
    for key in (
        "right_section",
        "honest",
        "search_right_section",
        "search_honest",
        "search_threshold",
        "engines",
        "wrong",
    ):
        figures[key] = team.get(key)
    figures["topic_questions"] = team.get("covered_questions")
    figures["not_covered_questions"] = team.get("not_covered_questions")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.quality",
        description="Answer quality, intents, red flags and language identification "
        "on the labelled sets (prints every figure; about a minute).",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print the intent confusions and every question answered wrongly",
    )
    args = parser.parse_args(argv)
    figures = measure()
    print(
        f"\nheld-out questions: {figures['heldout']} ({HELDOUT.relative_to(ROOT)}); "
        f"parsed in {figures['parse_seconds']:.1f}s incl. model load"
    )
    for name, row in figures["sets"].items():
        print(f"\n{name} ({row['file']})")
        print(f"{'figure':52} {'assistant':>10} {'BM25 search box':>16}")
        print(
            f"{'covered questions answered from the right section':52} "
            f"{row['right_section']:10.3f} {row['search_right_section']:16.3f}"
            f"  (n={row['covered_questions']})"
        )
        print(
            f"{'not-covered questions answered honestly':52} "
            f"{row['honest']:10.3f} {row['search_honest']:16.3f}"
            f"  (n={row['not_covered_questions']})"
        )
        engines = ", ".join(f"{k} {v:.3f}" for k, v in row["engines"].items())
        print(
            f"(search box threshold {row['search_threshold']:.1f}; top-1 search: {engines})"
        )
    print(
        f"\n{'intent accuracy (tests/nlu/heldout.yml)':52} {figures['accuracy']:10.3f}"
    )
    print(f"{'intent macro-F1':52} {figures['macro_f1']:10.3f}")

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

    if args.verbose:
        print("\nconfusions (gold -> predicted):")
        for (g, p), n in figures["confusions"].most_common():
            print(f"  {n} {g} -> {p}")
        print("\nmisanswered:")
        for name, row in figures["sets"].items():
            print(f"  {name}:")
            for text, gold, got in row["wrong"]:
                print(f"    [{gold} -> {got}] {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
