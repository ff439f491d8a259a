"""`make bench`: answer quality on the held-out questions, printed as a table.

Intent accuracy and macro-F1 (the trained model, red-flag detector included), the share
of topic questions answered from the right section, the share of not-covered questions
answered honestly, and the red-flag detector's recall and false alarms on its table.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

import yaml

from bot.evaluation import answer_report, intent_report, load_examples, parse_messages
from bot.red_flags import project_detector
from bot.training import MODEL_FILE, ROOT
from knowledge import queries
from knowledge.environment import session_scope

HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"
RED_FLAGS = ROOT / "tests" / "nlu" / "red_flags.yml"


def topic_sections() -> dict[str, int]:
    """Gold intent -> section number, for the topic intents the store knows."""
    with session_scope() as session:
        mapping = {}
        for intent in {e.intent for e in load_examples(HELDOUT)}:
            if intent.startswith("ask_") and intent != "ask_overview":
                section = queries.section_for_topic(session, intent[4:])
                if section is not None:
                    mapping[intent] = section.number
        return mapping


def red_flag_figures(path: Path) -> tuple[float, float, list[str]]:
    table = yaml.safe_load(path.read_text(encoding="utf-8"))
    detector = project_detector()
    emergencies = table["emergencies"]
    found = [detector.detect(e["text"]) is not None for e in emergencies]
    alarms = [t for t in table["near_misses"] if detector.detect(t) is not None]
    missed = [e["text"] for e, ok in zip(emergencies, found, strict=True) if not ok]
    return (
        sum(found) / len(found),
        len(alarms) / len(table["near_misses"]),
        missed + [f"FALSE ALARM: {t}" for t in alarms],
    )


def main() -> int:
    examples = load_examples(HELDOUT)
    started = time.perf_counter()
    parses = parse_messages(MODEL_FILE, [e.text for e in examples])
    seconds = time.perf_counter() - started
    predicted = [p["intent"]["name"] for p in parses]
    report = intent_report([e.intent for e in examples], predicted)
    answers = answer_report(examples, parses, topic_sections())
    recall, false_alarms, flag_errors = red_flag_figures(RED_FLAGS)

    print(
        f"\nheld-out questions: {len(examples)} ({HELDOUT.relative_to(ROOT)}); "
        f"parsed in {seconds:.1f}s incl. model load"
    )
    print(f"{'figure':48} {'value':>8}")
    print(f"{'intent accuracy':48} {report.accuracy:8.3f}")
    print(f"{'intent macro-F1':48} {report.macro_f1:8.3f}")
    print(
        f"{'topic questions answered from the right section':48} {answers.right_section:8.3f}"
        f"  (n={answers.topic_questions})"
    )
    print(
        f"{'not-covered questions answered honestly':48} {answers.honest_not_covered:8.3f}"
        f"  (n={answers.not_covered_questions})"
    )
    print(f"{'red-flag recall (detector table)':48} {recall:8.3f}")
    print(f"{'red-flag false alarms (near misses)':48} {false_alarms:8.3f}")
    if "-v" in sys.argv:
        confusion = Counter(
            (e.intent, p) for e, p in zip(examples, predicted, strict=True) if e.intent != p
        )
        print("\nconfusions (gold -> predicted):")
        for (g, p), n in confusion.most_common():
            print(f"  {n} {g} -> {p}")
        print("\nmisanswered:")
        for text, gold, got in answers.wrong:
            print(f"  [{gold} -> {got}] {text}")
        print("\nred-flag errors:")
        for line in flag_errors:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
