"""Which language a patient writes in.

py3langid (a Naive Bayes classifier over byte n-grams, its model inside the package),
limited to the languages a US clinic's website sees most: chosen by measuring on short
patient messages (docs/red-flags.md, `python -m bench.language_id`). English is the
default: another language is only reported when the classifier is sure of it (Spanish,
which the assistant answers in, from a lower probability), or when a message of a few
words has one of that language's cue words from `knowledge/vocabulary.yml` ("hola" has
too few letters for any classifier).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from knowledge.text import fold_accents
from knowledge.vocabulary import project_vocabulary

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier as _Classifier

DEFAULT = "en"
#: The languages the classifier chooses among (ISO 639-1).
LIKELY = ("en", "es", "fr", "de", "pt", "it", "vi", "zh", "ru", "ko", "ar", "pl", "tl")
#: The probability from which the classifier is taken at its word, per language.
SURE = 0.9
SURE_BY_LANGUAGE = {"es": 0.5}
#: A message of at most this many words is decided by its cue words when there are any.
CUE_WORDS_UP_TO = 3


@dataclass(frozen=True)
class LanguageGuess:
    """A message's language, the classifier's probability for it, and why."""

    language: str
    confidence: float
    sure: bool


class LanguageIdentifier:
    """py3langid over LIKELY, with cue words for very short messages."""

    def __init__(self, cues: dict[str, tuple[str, ...]]) -> None:
        from py3langid.langid import MODEL_FILE
        from py3langid.langid import LanguageIdentifier as Classifier

        self.classifier: _Classifier = Classifier.from_pickled_model(
            MODEL_FILE, norm_probs=True
        )
        self.classifier.set_languages(list(LIKELY))
        self.cues = {
            lang: frozenset(fold_accents(w.lower()) for w in words)
            for lang, words in cues.items()
        }

    def identify(self, text: str) -> LanguageGuess:
        """The message's language; English when in doubt."""
        if not any(ch.isalpha() for ch in text):
            return LanguageGuess(DEFAULT, 0.0, False)
        language, probability = self.classifier.classify(text)
        probability = float(probability)
        sure = probability >= SURE_BY_LANGUAGE.get(language, SURE)
        if language != DEFAULT and sure:
            return LanguageGuess(language, probability, True)
        words = re.findall(r"\w+", fold_accents(text.lower()))
        if len(words) <= CUE_WORDS_UP_TO and not (probability >= SURE):
            for cue_language, cues in self.cues.items():
                if cues.intersection(words):
                    return LanguageGuess(cue_language, probability, False)
        return LanguageGuess(DEFAULT, probability if language == DEFAULT else 0.0, sure)


@lru_cache(maxsize=1)
def project_identifier() -> LanguageIdentifier:
    """The identifier with the project's cue words, built once per process."""
    return LanguageIdentifier(project_vocabulary().language_cues)
