"""Where the knowledge store's inputs and outputs live; every path can be overridden."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE_DIR = PROJECT_ROOT / "knowledge"
BUILD_DIR = Path(os.environ.get("CLINIC_BUILD_DIR", PROJECT_ROOT / "build"))

SOURCES_DIR = Path(os.environ.get("KNOWLEDGE_SOURCES_DIR", KNOWLEDGE_DIR / "sources"))
VOCABULARY_FILE = KNOWLEDGE_DIR / "vocabulary.yml"
SECTIONS_FILE = KNOWLEDGE_DIR / "sections.yml"
ENTITY_PATTERNS_FILE = KNOWLEDGE_DIR / "entity_patterns.jsonl"
RASA_LOOKUPS_FILE = PROJECT_ROOT / "data" / "nlu" / "lookups" / "vocabulary.yml"
SPACY_PIPELINE_DIR = Path(
    os.environ.get("SPACY_PIPELINE_DIR", BUILD_DIR / "spacy-en-clinic")
)

#: The document ingested first; the others follow in name order.
PRIMARY_DOCUMENT = "pain-management-injections.txt"


def database_url() -> str:
    """The knowledge store's SQLAlchemy URL: `KNOWLEDGE_DB_URL`, else a SQLite file."""
    default = f"sqlite:///{BUILD_DIR / 'knowledge.db'}"
    return os.environ.get("KNOWLEDGE_DB_URL", default)
