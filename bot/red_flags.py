"""The deterministic red-flag detector.

Runs on every message, inside the Rasa server (see `bot.nlu.RedFlagDetector`), with the
patterns from `knowledge/vocabulary.yml`. A symptom pattern reports a red flag unless
  - it is negated ("no fever", "I don't have a stiff neck"), or
  - the message only asks in general whether injections help with or cause it ("can
    injections help headaches?") and says nothing that reports it happening to the writer.
  - what follows it says it is past, resolved or long-standing ("my fever from last week
    is gone", "a stroke 5 years ago").
Self-harm is never suppressed by the question rule: it always gets the crisis reply.
Misspelt symptom words are folded onto the patterns' own words first ("chils" -> "chills",
"pian" -> "pain"), so typing on a phone does not hide an emergency.
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import spacy_lookups_data

from knowledge.vocabulary import Vocabulary, project_vocabulary

_NEGATION_WINDOW = 4  # words before a symptom in which a negation cancels it
#: Words at least this likely (spaCy's English unigram log-probabilities) are real words,
#: never treated as typos: "never" is not "fever", "slurred" is not "blurred".
_COMMON_WORD_LOGPROB = -16.0


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """English words common enough never to be folded onto a symptom keyword."""
    table = Path(spacy_lookups_data.__file__).parent / "data" / "en_lexeme_prob.json.gz"
    with gzip.open(table, "rt", encoding="utf-8") as handle:
        probabilities = json.load(handle)
    return frozenset(w for w, p in probabilities.items() if p >= _COMMON_WORD_LOGPROB)


def pattern_keywords(pattern: str) -> set[str]:
    """The literal words of a pattern, with optional letters both kept and dropped."""
    literal = re.sub(r"\\[a-zA-Z]", " ", pattern)  # \b, \s ... are not letters
    variants = {
        literal,
        re.sub(r"[a-z]\?", "", literal.replace(" ?", "").replace("'?", "")),
        literal.replace(" ?", "").replace("'?", "").replace("?", ""),
    }
    return {w for v in variants for w in re.findall(r"[a-z]{4,}", v)}


@dataclass(frozen=True)
class RedFlag:
    """A reported red flag: its kind, the reply it needs, and the words that matched."""

    kind: str
    reply: str
    matched: str


@dataclass(frozen=True)
class Assessment:
    """What a message says about red flags.

    `flag` is the red flag reported now, if any; `not_current` lists the kinds that are
    mentioned but negated, past, or asked about in general ("no fever", "is a headache
    normal after an epidural?").
    """

    flag: RedFlag | None
    not_current: tuple[str, ...] = ()


def _one_edit_apart(a: str, b: str) -> bool:
    """True when b is a with one letter changed, added, removed or two swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]]
            and a[diffs[1]] == b[diffs[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _swapped_pair(a: str, b: str) -> bool:
    return len(a) == len(b) and sorted(a) == sorted(b) and _one_edit_apart(a, b)


def normalise(text: str) -> str:
    """Lowercase, fold typographic quotes and spaces; keep letters of every script."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    return re.sub(r"\s+", " ", text).strip()


class RedFlagDetector:
    """Finds red flags in a message with the vocabulary's patterns and rules."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.kinds = [
            (kind, [re.compile(p, re.IGNORECASE) for p in kind.patterns])
            for kind in vocabulary.red_flags
        ]
        negations = sorted(vocabulary.negations, key=len, reverse=True)
        self.negation = re.compile(
            r"\b(" + "|".join(re.escape(n) for n in negations) + r")\b"
        )
        self.not_current = [re.compile(p) for p in vocabulary.not_current]
        self.general_question = [re.compile(p) for p in vocabulary.general_question]
        self.keywords = sorted(
            {
                w
                for kind in vocabulary.red_flags
                for p in kind.patterns
                for w in pattern_keywords(p)
            }
        )
        self.common = common_words()
        self._folded: dict[str, str] = {}
        self.first_person = [re.compile(p) for p in vocabulary.first_person_report]

    def detect(self, text: str) -> RedFlag | None:
        """The first red flag the message reports, self-harm first; None if none."""
        return self.assess(text).flag

    def assess(self, text: str) -> Assessment:
        """The red flag a message reports, and the ones it mentions but does not."""
        message = self.fold_typos(normalise(text))
        if not message:
            return Assessment(None)
        asks_in_general = any(
            p.search(message) for p in self.general_question
        ) and not any(p.search(message) for p in self.first_person)
        found: list[RedFlag] = []
        not_current: list[str] = []
        for kind, patterns in self.kinds:
            reported = False
            for pattern in patterns:
                for match in pattern.finditer(message):
                    if (
                        self._negated(message, match.start())
                        or self._past(message, match.start())
                        or (asks_in_general and kind.reply != "crisis")
                    ):
                        continue
                    found.append(RedFlag(kind.name, kind.reply, match.group(0)))
                    reported = True
                    break
                if reported:
                    break
            if not reported and any(p.search(message) for p in patterns):
                not_current.append(kind.name)
        # Crisis first; then the vocabulary's order, most specific kind first.
        found.sort(key=lambda flag: flag.reply != "crisis")
        return Assessment(found[0] if found else None, tuple(not_current))

    def fold_typos(self, message: str) -> str:
        """Replace words one typo away from a symptom keyword with that keyword."""
        return re.sub(r"[a-z]{4,}", lambda m: self._fold(m.group(0)), message)

    def _fold(self, word: str) -> str:
        if word not in self._folded:
            self._folded[word] = word
            if word not in self.keywords and word not in self.common:
                for keyword in self.keywords:
                    close = (
                        _one_edit_apart(word, keyword)
                        if min(len(word), len(keyword)) >= 5
                        else _swapped_pair(word, keyword)
                    )
                    if close:
                        self._folded[word] = keyword
                        break
        return self._folded[word]

    def _past(self, message: str, start: int) -> bool:
        rest = message[start:]
        return any(p.search(rest) for p in self.not_current)

    def _negated(self, message: str, start: int) -> bool:
        clause = re.split(r"[.!?;,]| but ", message[:start])[-1]
        window = " ".join(clause.split()[-_NEGATION_WINDOW:])
        return bool(self.negation.search(window))


@lru_cache(maxsize=1)
def project_detector() -> RedFlagDetector:
    """The detector built from the project's vocabulary, once per process."""
    return RedFlagDetector(project_vocabulary())
