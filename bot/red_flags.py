"""The deterministic red-flag detector.

Runs on every message, inside the Rasa server (see `bot.nlu.RedFlagDetector`), with the
patterns from `knowledge/vocabulary.yml`, in every language the vocabulary has patterns for
(English and Spanish): a message is screened in all of them, so a short Spanish message the
language identifier takes for English is still screened in Spanish. A symptom pattern
reports a red flag unless (each language has its own words for these rules)
  - it is negated ("no fever", "no tengo fiebre"), or
  - the message only asks in general whether injections help with or cause it ("can
    injections help headaches?") and says nothing that reports it happening to the writer;
  - it follows a supposition in the same sentence ("what if I get a fever?", "¿y si me da
    fiebre?");
  - what follows it says it is past, resolved or long-standing ("my fever from last week
    is gone", "a stroke 5 years ago").
Self-harm is never suppressed by the question rule: it always gets the crisis reply.
In every language, misspelt symptom words are folded onto the patterns' own words first
("chils" -> "chills", "pian" -> "pain", "fiebra" -> "fiebre"), so typing on a phone does not
hide an emergency; accents are folded away in every language ("rígido" -> "rigido"), as the
Spanish patterns are written.

Why hand rules and not negspacy's NegEx or medspacy's ConText for the context: measured on
the red-flag tables (docs/red-flags.md), the libraries found fewer emergencies and raised
more false alarms, and have no Spanish rules.
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import spacy_lookups_data

from knowledge.text import fold_accents
from knowledge.vocabulary import ContextRules, Vocabulary, project_vocabulary

_NEGATION_WINDOW = 4  # words before a symptom in which a negation cancels it
_CLAUSE_END = r"[.!?;,]| but | pero "
_LIST_WORDS = frozenset({"or", "nor", "ni", "o"})  # carry a negation down a list
#: Words at least this likely (spaCy's English unigram log-probabilities) are real words,
#: never treated as typos: "never" is not "fever", "slurred" is not "blurred".
_COMMON_WORD_LOGPROB = -16.0
# Words whose typo check is remembered; past this many the oldest is forgotten, so a
# server that runs for months does not keep every word patients ever typed.
#: Letters an inflection adds to its stem ("entumid" -> "entumidos").
_INFLECTION_LETTERS = 2
_FOLDED_CAPACITY = 20_000


@lru_cache(maxsize=4)
def common_words(language: str = "en") -> frozenset[str]:
    """Words of a language common enough never to be folded onto a symptom keyword.

    From spaCy's unigram log-probabilities for the language (accents folded away, as
    messages are); none for a language spaCy has no table for.
    """
    table = Path(spacy_lookups_data.__file__).parent / "data"
    path = table / f"{language}_lexeme_prob.json.gz"
    if not path.exists():
        return frozenset()
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        probabilities = json.load(handle)
    return frozenset(
        fold_accents(w) for w, p in probabilities.items() if p >= _COMMON_WORD_LOGPROB
    )


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
    language: str = "en"


@dataclass(frozen=True)
class Assessment:
    """What a message says about red flags.

    `flag` is the red flag reported now, if any; `not_current` lists the kinds that are
    mentioned but negated, past, or asked about in general ("no fever", "is a headache
    normal after an epidural?"); `all_clear`, with no flag, that the message says all is
    well now or over (vocabulary `all_clear`: "fully recovered now", "nothing new").
    """

    flag: RedFlag | None
    not_current: tuple[str, ...] = ()
    #: No flag, and the message says the writer is well or it is over ("fine now").
    all_clear: bool = False


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
    """Lowercase, fold typographic quotes, spaces and accents; keep every script's letters."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    return re.sub(r"\s+", " ", fold_accents(text)).strip()


#: Decides whether the mention of a symptom at message[start:end] is not a report of it
#: happening now (negated, past, supposed). `HandContext` is the project's; bench.red_flags
#: plugs in the libraries it was measured against.
ContextJudge = Callable[[str, str, int, int], bool]


class HandContext:
    """The vocabulary's negation, past and supposition rules.

    The rules of every language apply to every mention: a pattern of one language can
    match a message in another ("pus", "suicidal"), and its negation is in the message's
    words ("I'm not suicidal").
    """

    def __init__(self, rules: dict[str, ContextRules]) -> None:
        negations = sorted({n for r in rules.values() for n in r.negations}, key=len)
        self.negation = re.compile(
            r"\b(" + "|".join(re.escape(n) for n in reversed(negations)) + r")\b"
            if negations
            else r"(?!)"  # no negations: nothing is negated
        )
        self.pseudo_negation = [
            re.compile(p) for r in rules.values() for p in r.pseudo_negations
        ]
        self.negated_inside = [
            re.compile(p) for r in rules.values() for p in r.negated_inside
        ]
        self.past = [re.compile(p) for r in rules.values() for p in r.not_current]
        self.hypothetical = [
            re.compile(p) for r in rules.values() for p in r.hypothetical
        ]
        self.past_clause = [
            re.compile(p) for r in rules.values() for p in r.past_clause
        ]

    def __call__(self, language: str, message: str, start: int, end: int) -> bool:
        """True when the mention is negated, past or supposed."""
        return (
            self.negated(message, start)
            or any(p.search(message[start:end]) for p in self.negated_inside)
            or self.past_at(message, start, end)
            or self.supposed(message, start)
        )

    def negated(self, message: str, start: int) -> bool:
        """A negation in the few words before the mention, in the same clause.

        A list joined by "or" carries it further ("no fever or chills").
        """
        clause = re.split(_CLAUSE_END, message[:start])[-1].split()
        window = clause[-_NEGATION_WINDOW:]
        if set(window) & _LIST_WORDS:
            window = clause[-2 * _NEGATION_WINDOW :]
        words = " ".join(window)
        for pseudo in self.pseudo_negation:
            words = pseudo.sub(" ", words)
        return bool(self.negation.search(words))

    def past_at(self, message: str, start: int, end: int) -> bool:
        """What follows the mention says it is past, resolved or long-standing.

        Or its clause says it was long ago ("I had hives from contrast years ago").
        """
        if any(p.search(message[start:]) for p in self.past):
            return True
        before = re.split(_CLAUSE_END, message[:start])[-1]
        clause = before + message[start:end] + re.split(_CLAUSE_END, message[end:])[0]
        return any(p.search(clause) for p in self.past_clause)

    def supposed(self, message: str, start: int) -> bool:
        """A supposition ("what if") before the mention, in the same sentence."""
        sentence = re.split(r"[.!;]", message[:start])[-1]
        return any(p.search(sentence) for p in self.hypothetical)


class _Screen:
    """One language's symptom patterns, with every language's question rules.

    Patients mix languages ("is it normal tener fiebre?"): a question in one language
    about a symptom named in the other is still a question.
    """

    def __init__(self, language: str, vocabulary: Vocabulary) -> None:
        rules = vocabulary.red_flag_rules.values()
        self.language = language
        self.kinds = [
            (kind, [re.compile(p, re.IGNORECASE) for p in kind.patterns[language]])
            for kind in vocabulary.red_flags
            if kind.patterns.get(language)
        ]
        self.general_question = [
            re.compile(p) for r in rules for p in r.general_question
        ]
        self.first_person = [
            re.compile(p) for r in rules for p in r.first_person_report
        ]

    def assess(
        self, message: str, context: ContextJudge
    ) -> tuple[list[RedFlag], list[str]]:
        """The red flags the message reports, and the kinds it mentions but does not."""
        asks_in_general = any(
            p.search(message) for p in self.general_question
        ) and not any(p.search(message) for p in self.first_person)
        found: list[RedFlag] = []
        not_current: list[str] = []
        for kind, patterns in self.kinds:
            flag = next(
                (
                    RedFlag(kind.name, kind.reply, match.group(0), self.language)
                    for pattern in patterns
                    for match in pattern.finditer(message)
                    if not (
                        context(self.language, message, match.start(), match.end())
                        or (asks_in_general and kind.reply != "crisis")
                    )
                ),
                None,
            )
            if flag is not None:
                found.append(flag)
            elif any(p.search(message) for p in patterns):
                not_current.append(kind.name)
        return found, not_current


class RedFlagDetector:
    """Finds red flags in a message with the vocabulary's patterns and rules."""

    def __init__(
        self, vocabulary: Vocabulary, context: ContextJudge | None = None
    ) -> None:
        languages = sorted({lang for k in vocabulary.red_flags for lang in k.patterns})
        self.screens = [_Screen(lang, vocabulary) for lang in languages]
        self.context = context or HandContext(vocabulary.red_flag_rules)
        self.order = [kind.name for kind in vocabulary.red_flags]
        self.keywords = {
            lang: sorted(
                {
                    w
                    for kind in vocabulary.red_flags
                    for p in kind.patterns.get(lang, ())
                    for w in pattern_keywords(p)
                }
            )
            for lang in languages
        }
        self._folded: dict[tuple[str, str], str] = {}
        self.all_clear = [
            re.compile(p)
            for rules in vocabulary.red_flag_rules.values()
            for p in rules.all_clear
        ]

    def detect(self, text: str, language: str | None = None) -> RedFlag | None:
        """The first red flag the message reports, self-harm first; None if none."""
        return self.assess(text, language).flag

    def assess(self, text: str, language: str | None = None) -> Assessment:
        """The red flag a message reports, and the ones it mentions but does not.

        Every language's patterns are tried; among several flags, self-harm comes
        first, then a flag in the message's `language` (when known), then the
        vocabulary's order, most specific kind first.
        """
        message = normalise(text)
        if not message:
            return Assessment(None)
        found: list[RedFlag] = []
        not_current: list[str] = []
        for screen in self.screens:
            screened = self.fold_typos(message, screen.language)
            flags, mentioned = screen.assess(screened, self.context)
            found += flags
            not_current += [k for k in mentioned if k not in not_current]
        found.sort(
            key=lambda flag: (
                flag.reply != "crisis",
                flag.language != language,
                self.order.index(flag.kind),
            )
        )
        reported = {flag.kind for flag in found}
        return Assessment(
            found[0] if found else None,
            tuple(k for k in not_current if k not in reported),
            not found and any(p.search(message) for p in self.all_clear),
        )

    def fold_typos(self, message: str, language: str = "en") -> str:
        """Replace words one typo away from a language's symptom keyword with it.

        ("chils" -> "chills", "fiebra" -> "fiebre"); a word common in the language is
        never folded ("never" is not "fever", "pecho" is not "techo").
        """
        return re.sub(r"[a-z]{4,}", lambda m: self._fold(m.group(0), language), message)

    def _fold(self, word: str, language: str) -> str:
        key = (language, word)
        if key not in self._folded:
            if len(self._folded) >= _FOLDED_CAPACITY:  # forget the oldest word
                del self._folded[next(iter(self._folded))]
            self._folded[key] = word
            keywords = self.keywords.get(language, [])
            # A stem's own inflection ("entumido" of "entumid") is a word of the patterns
            # already: folding it onto a neighbouring keyword ("entumio") would lose it.
            # A longer word that only begins with a short keyword ("temprature", "temp")
            # is still a typo to fold.
            inflection = any(
                word.startswith(k) and len(word) - len(k) <= _INFLECTION_LETTERS
                for k in keywords
            )
            if (
                word not in keywords
                and word not in common_words(language)
                and not inflection
            ):
                for keyword in keywords:
                    close = (
                        _one_edit_apart(word, keyword)
                        if min(len(word), len(keyword)) >= 5
                        else _swapped_pair(word, keyword)
                    )
                    if close:
                        self._folded[key] = keyword
                        break
        return self._folded[key]


@lru_cache(maxsize=1)
def project_detector() -> RedFlagDetector:
    """The detector built from the project's vocabulary, once per process."""
    return RedFlagDetector(project_vocabulary())
