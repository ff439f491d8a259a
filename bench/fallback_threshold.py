"""Choose the FallbackClassifier threshold without touching the held-out set.

Splits the training data 80/20 (stratified, seeded), trains the NLU on the 80 %, and
scores each threshold on the 20 % by whether the final answer would be right: a topic
question must be answered from its section (a fallback goes to search, which may still
find it), a not-covered question must get an honest reply, anything else needs its intent.

    python -m bench.fallback_threshold [--config other-config.yml]

The same split compares NLU configurations without the held-out set (how the intent
classifier was chosen: docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from bot.evaluation import (
    Example,
    load_examples,
    parse_messages,
)
from bot.training import ROOT
from clinic.intents import EMERGENCY_INTENTS

EMERGENCY = EMERGENCY_INTENTS
THRESHOLDS = [0.0, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6]


def split(
    examples: list[Example], seed: int = 13
) -> tuple[list[Example], list[Example]]:
    by_intent: dict[str, list[Example]] = defaultdict(list)
    for e in examples:
        by_intent[e.intent].append(e)
    rng = random.Random(seed)
    train, test = [], []
    for items in by_intent.values():
        rng.shuffle(items)
        cut = max(1, len(items) // 5)
        test += items[:cut]
        train += items[cut:]
    return train, test


def write_nlu(examples: list[Example], folder: Path) -> None:
    by_intent: dict[str, list[str]] = defaultdict(list)
    for e in examples:
        by_intent[e.intent].append(e.text)
    nlu = [
        {"intent": i, "examples": "".join(f"- {t}\n" for t in texts)}
        for i, texts in by_intent.items()
    ]
    (folder / "train.yml").write_text(
        yaml.safe_dump({"version": "3.1", "nlu": nlu}, sort_keys=False)
    )
    shutil.copy(
        ROOT / "data" / "nlu" / "lookups" / "vocabulary.yml", folder / "lookups.yml"
    )


def top_classifier_intent(parse: dict[str, Any]) -> tuple[str, float]:
    if parse.get("red_flag"):
        return parse["intent"]["name"], 1.0
    for ranked in parse.get("intent_ranking") or []:
        if ranked["name"] != "nlu_fallback":
            return ranked["name"], float(ranked["confidence"])
    return "nlu_fallback", 0.0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fallback_threshold")
    parser.add_argument("--config", default=str(ROOT / "config.yml"))
    config = parser.parse_args().config
    files = [p for p in (ROOT / "data" / "nlu").glob("*.yml")]
    examples = [e for p in files for e in load_examples(p)]
    train, test = split(examples)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "data").mkdir()
        write_nlu(train, folder / "data")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "rasa",
                "train",
                "nlu",
                "--config",
                config,
                "--nlu",
                str(folder / "data"),
                "--out",
                str(folder),
                "--fixed-model-name",
                "split",
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        parses = parse_messages(folder / "split.tar.gz", [e.text for e in test])
    print(f"train {len(train)} / validate {len(test)} examples")
    print(
        f"{'threshold':>10} {'answer right':>13} {'intent right':>13} {'fallbacks':>10}"
    )
    for threshold in THRESHOLDS:
        answer_right = intent_right = fallbacks = 0
        for example, parse in zip(test, parses, strict=True):
            intent, confidence = top_classifier_intent(parse)
            if confidence < threshold:
                intent, fallbacks = "nlu_fallback", fallbacks + 1
            intent_right += intent == example.intent
            # a kind of question is answered right when its kind is read right (the
            # entities carry the topic); a fallback is still answered by search
            if example.intent in EMERGENCY:
                answer_right += intent in EMERGENCY
            else:
                answer_right += intent in (example.intent, "nlu_fallback")
            n = len(test)
            print(
                f"{threshold:10.2f} {answer_right / n:13.3f} "
                f"{intent_right / n:13.3f} {fallbacks:10d}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
