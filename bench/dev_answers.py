"""`python -m bench.dev_answers`: the answering logic on the DEV set, fast enough to iterate.

The dev set (tests/nlu/dev_leaflet_questions.yml, about the dev leaflets in
tests/fixtures/dev_documents/ and the guide, with questions nothing covers) is what the
free-text thresholds are calibrated on; the test sets are only ever measured
(bench.quality). The model's parses are kept in bench/out/ per model file, so a change
to the answering code is measured again in seconds, without loading Rasa.

    python -m bench.dev_answers        the figures (right section by document too)
    python -m bench.dev_answers -v     and every question answered wrongly
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from bench.quality import store_with_leaflets
from bot.evaluation import (
    LabelledQuestion,
    answer_report,
    load_labelled,
    parse_messages,
)
from bot.training import MODEL_FILE, ROOT

DEV_QUESTIONS = ROOT / "tests" / "nlu" / "dev_leaflet_questions.yml"
DEV_DOCUMENTS = ROOT / "tests" / "fixtures" / "dev_documents"
CACHE_DIR = ROOT / "bench" / "out"


def cached_parses(texts: list[str], model: Path = MODEL_FILE) -> dict[str, Any]:
    """The model's parse of each text, from the cache when this model parsed it before."""
    stat = model.stat()
    digest = hashlib.sha256(f"{model}:{stat.st_size}:{stat.st_mtime}".encode())
    cache = CACHE_DIR / f"parses-{digest.hexdigest()[:16]}.json"
    known: dict[str, Any] = (
        json.loads(cache.read_text(encoding="utf-8")) if cache.exists() else {}
    )
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    if missing:
        known.update(zip(missing, parse_messages(model, missing), strict=True))
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known), encoding="utf-8")
    return {t: known[t] for t in texts}


def main() -> int:
    questions = load_labelled(DEV_QUESTIONS)
    parses = cached_parses([q.text for q in questions])
    by_document: dict[str, list[LabelledQuestion]] = {}
    for question in questions:
        if question.covered:
            owed = question.document or (question.section or "").rpartition("#")[0]
            by_document.setdefault(owed, []).append(question)
    with store_with_leaflets(DEV_DOCUMENTS):
        report = answer_report(questions, [parses[q.text] for q in questions])
        parts = {
            document: answer_report(asked, [parses[q.text] for q in asked])
            for document, asked in sorted(by_document.items())
        }
    print(
        f"dev set ({DEV_QUESTIONS.relative_to(ROOT)}, guide + dev leaflets): "
        f"right {report.right_section:.3f} (n={report.covered_questions}), "
        f"honest {report.honest_not_covered:.3f} (n={report.not_covered_questions})"
    )
    for document, part in parts.items():
        print(
            f"  right, {document}: {part.right_section:.3f} "
            f"(n={part.covered_questions})"
        )
    if "-v" in sys.argv:
        for text, gold, got in report.wrong:
            print(f"  [{gold} -> {got}] {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
