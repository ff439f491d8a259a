"""The project's spaCy pipelines: blank English, lookup lemmatizer, entity ruler.

No pretrained English pipeline can be downloaded here, so the project assembles its own
from `knowledge/entity_patterns.jsonl` (generated from the vocabulary) and saves it to a
directory that Rasa's `SpacyNLP` loads by path and the knowledge builder uses too.

Documents in another language (a folder per language under the sources, e.g. `es/`)
are indexed, and questions in that language searched, with that language's blank
pipeline and spaCy's lookup lemmatizer (spacy-lookups-data): `load("es")`. Their lemmas
have accents folded away, because patients often type without them ("inyeccion").
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Token

from knowledge import settings
from knowledge.text import fold_accents

STAMP_FILE = "clinic-pipeline.sha256"
#: The language of the project's own pipeline (and of documents not in a language folder).
DEFAULT_LANGUAGE = "en"


def _inputs_digest(patterns_file: Path) -> str:
    digest = hashlib.sha256(patterns_file.read_bytes())
    digest.update(spacy.about.__version__.encode())
    return digest.hexdigest()


def assemble(patterns_file: Path | None = None) -> Language:
    """Assemble the pipeline in memory from the entity patterns file."""
    patterns_path = patterns_file or settings.ENTITY_PATTERNS_FILE
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    ruler = nlp.add_pipe(
        "entity_ruler", config={"phrase_matcher_attr": "LOWER", "overwrite_ents": True}
    )
    # initialize() loads the lemmatizer's lookup tables and would clear any patterns
    # added before it, so the patterns go in afterwards.
    nlp.initialize()
    with open(patterns_path, encoding="utf-8") as handle:
        ruler.add_patterns([json.loads(line) for line in handle if line.strip()])  # type: ignore[attr-defined]
    return nlp


def build(output_dir: Path | None = None, patterns_file: Path | None = None) -> bool:
    """Save the pipeline to disk unless it is already up to date; True if it was built."""
    target = output_dir or settings.SPACY_PIPELINE_DIR
    patterns_path = patterns_file or settings.ENTITY_PATTERNS_FILE
    digest = _inputs_digest(patterns_path)
    stamp = target / STAMP_FILE
    if stamp.exists() and stamp.read_text().strip() == digest:
        return False
    nlp = assemble(patterns_path)
    target.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(target)
    stamp.write_text(digest + "\n")
    return True


class UnsupportedLanguageError(ValueError):
    """No spaCy language (with lookup lemmas) for this language code."""


@lru_cache(maxsize=1)
def _english() -> Language:
    build()
    return spacy.load(settings.SPACY_PIPELINE_DIR)


@lru_cache(maxsize=8)
def load(language: str = DEFAULT_LANGUAGE) -> Language:
    """The pipeline for a language, loaded once per process.

    English is the project's saved pipeline (built first if missing); any other language
    is assembled in memory: blank, sentencizer, lookup lemmatizer.
    """
    if language == DEFAULT_LANGUAGE:  # load() and load("en"): one cached pipeline
        return _english()
    try:
        nlp = spacy.blank(language)
        nlp.add_pipe("sentencizer")
        nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
        nlp.initialize()
    except (ImportError, ValueError) as exc:  # no such language, or no lookup tables
        raise UnsupportedLanguageError(
            f"no spaCy language with lookup lemmas for {language!r}: {exc}"
        ) from exc
    return nlp


def lemmas(doc: Doc, nlp: Language, keep: frozenset[str] = frozenset()) -> list[str]:
    """Lowercase lemmas of the content words of a doc, for indexing and search.

    The lookup table is keyed by lowercase forms, so tokens are lowercased before the
    lookup ("Injections" -> "injection"). In languages other than English, accents are
    folded away after the lookup. `keep`: English stop words to count as content.
    """
    return [
        word for token in doc if (word := token_lemma(token, nlp, keep)) is not None
    ]


def token_lemma(
    token: Token, nlp: Language, keep: frozenset[str] = frozenset()
) -> str | None:
    """One token's lemma as `lemmas` gives it, None for punctuation, space, stop words.

    An English token whose lowercase form is in `keep` is its own lemma, stop word or not.
    """
    if nlp.lang == DEFAULT_LANGUAGE and token.lower_ in keep:
        return token.lower_
    if token.is_punct or token.is_space or token.is_stop:
        return None
    table = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_lookup")  # type: ignore[attr-defined]
    word = str(table.get(token.lower_, token.lower_))
    if nlp.lang == DEFAULT_LANGUAGE:
        return word
    if nlp.lang == "es":
        word = _without_clitic(word, table)
    return fold_accents(word)


#: A Spanish infinitive with a pronoun joined on ("ducharme", "tomarlos"): the lookup
#: table knows the infinitive, not the joined form.
_SPANISH_CLITIC = re.compile(r"^(\w{2,}?[aeií]r)(me|te|se|lo|la|le|los|las|les|nos)$")


def _without_clitic(word: str, table: Any) -> str:
    match = _SPANISH_CLITIC.match(word)
    if match is None:
        return word
    infinitive = match.group(1).replace("í", "i")
    return str(table.get(infinitive, infinitive))
