"""Language identification on short patient messages: the candidate libraries compared.

`python -m bench.language_id` reads every labelled set there is (tests/nlu/language_dev.yml,
and tests/nlu/language_id.yml when present; both `messages: [{text, language}]`) and, for
each candidate library that is installed, prints the accuracy over all messages, on the
Spanish and English ones, the share of messages wrongly given a language other than English
(what would send an English patient the foreign-language note), the time per message and
the memory the detector takes (resident set growth of a fresh process that builds it and
identifies every message). The first row is the assistant's own (bot.language: the
chosen library with its thresholds and cue words); `bench.quality` prints its accuracy.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bot.language import LIKELY

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE_SETS = ("language_dev.yml", "language_id.yml")


def labelled_messages(root: Path = ROOT) -> list[tuple[str, str]]:
    """(text, language) pairs from every labelled set present, in file order."""
    pairs = []
    for name in LANGUAGE_SETS:
        path = root / "tests" / "nlu" / name
        if path.exists():
            table = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            pairs += [(m["text"], m["language"]) for m in table.get("messages") or []]
    return pairs


def _py3langid_all() -> Callable[[str], str]:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_pickled_model(MODEL_FILE, norm_probs=True)
    return lambda text: identifier.classify(text)[0]


def _py3langid_likely() -> Callable[[str], str]:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_pickled_model(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LIKELY))
    return lambda text: identifier.classify(text)[0]


def _lingua(likely: bool, low_accuracy: bool) -> Callable[[str], str]:
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    if likely:
        languages = [
            Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper()))
            for c in LIKELY
        ]
        builder = LanguageDetectorBuilder.from_languages(*languages)
    else:
        builder = LanguageDetectorBuilder.from_all_languages()
    if low_accuracy:
        builder = builder.with_low_accuracy_mode()
    detector = builder.build()

    def identify(text: str) -> str:
        found = detector.detect_language_of(text)
        return found.iso_code_639_1.name.lower() if found else "und"

    return identify


def _assistant() -> Callable[[str], str]:
    from bot.language import project_identifier

    identifier = project_identifier()
    return lambda text: identifier.identify(text).language


CANDIDATES: dict[str, Callable[[], Callable[[str], str]]] = {
    "the assistant's (bot.language)": _assistant,
    "py3langid, all 97 languages": _py3langid_all,
    "py3langid, 13 likely languages (bare)": _py3langid_likely,
    "lingua, all 75 languages": lambda: _lingua(False, False),
    "lingua, all languages, low accuracy mode": lambda: _lingua(False, True),
    "lingua, 13 likely languages": lambda: _lingua(True, False),
}


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def measure_one(name: str) -> dict[str, Any]:
    """One candidate's figures, measured in this process (run it in a fresh one)."""
    pairs = labelled_messages()
    before = _rss_kb()
    started = time.perf_counter()
    identify = CANDIDATES[name]()
    identify("warm up")
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    predicted = [identify(text) for text, _ in pairs]
    per_message_ms = (time.perf_counter() - started) / len(pairs) * 1000
    return {
        "name": name,
        **scores(pairs, predicted),
        "load_s": round(load_seconds, 2),
        "ms_per_message": round(per_message_ms, 3),
        "memory_mb": round((_rss_kb() - before) / 1024),
    }


def scores(pairs: list[tuple[str, str]], predicted: list[str]) -> dict[str, Any]:
    """Accuracy overall and on es/en, and English messages given another language."""

    def accuracy(keep: Callable[[str], bool]) -> str:
        rows = [(g, p) for (_, g), p in zip(pairs, predicted, strict=True) if keep(g)]
        right = sum(g == p for g, p in rows)
        return f"{right}/{len(rows)}" if rows else "-"

    english = [p for (_, g), p in zip(pairs, predicted, strict=True) if g == "en"]
    return {
        "all": accuracy(lambda g: True),
        "es": accuracy(lambda g: g == "es"),
        "en": accuracy(lambda g: g == "en"),
        "others": accuracy(lambda g: g not in ("en", "es")),
        "english_sent_elsewhere": sum(p != "en" for p in english),
        "wrong": [
            (text, gold, got)
            for (text, gold), got in zip(pairs, predicted, strict=True)
            if gold != got
        ],
    }


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(measure_one(sys.argv[2])))
        return 0
    print(f"{len(labelled_messages())} labelled messages ({', '.join(LANGUAGE_SETS)})")
    header = f"{'candidate':42} {'all':>8} {'es':>6} {'en':>6} {'other':>6} "
    print(header + f"{'en->x':>6} {'load s':>7} {'ms/msg':>7} {'MB':>6}")
    for name in CANDIDATES:
        done = subprocess.run(
            [sys.executable, "-m", "bench.language_id", "--one", name],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            print(f"{name:42} not installed or failed: {done.stderr.strip()[-80:]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{name:42} {r['all']:>8} {r['es']:>6} {r['en']:>6} {r['others']:>6} "
            f"{r['english_sent_elsewhere']:>6} {r['load_s']:>7} "
            f"{r['ms_per_message']:>7} {r['memory_mb']:>6}"
        )
        if "-v" in sys.argv:
            for text, gold, got in r["wrong"]:
                print(f"    {gold} -> {got}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
