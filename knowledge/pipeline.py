"""The project's spaCy pipeline: blank English, lookup lemmatizer, entity ruler.

No pretrained English pipeline can be downloaded here, so the project assembles its own
from `knowledge/entity_patterns.jsonl` (generated from the vocabulary) and saves it to a
directory that Rasa's `SpacyNLP` loads by path and the knowledge builder uses too.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from knowledge import settings

STAMP_FILE = "clinic-pipeline.sha256"


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


@lru_cache(maxsize=1)
def load() -> Language:
    """The saved pipeline, loaded once per process (built first if missing)."""
    build()
    return spacy.load(settings.SPACY_PIPELINE_DIR)


def lemmas(doc: Doc, nlp: Language) -> list[str]:
    """Lowercase lemmas of the content words of a doc, for indexing and search.

    The lookup table is keyed by lowercase forms, so tokens are lowercased before the
    lookup ("Injections" -> "injection").
    """
    table = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_lookup")  # type: ignore[attr-defined]
    return [
        table.get(token.lower_, token.lower_)
        for token in doc
        if not (token.is_punct or token.is_space or token.is_stop)
    ]
