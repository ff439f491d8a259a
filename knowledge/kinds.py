"""Kinds of question and the sections that answer them (`knowledge/sections.yml`).

A patient's question has a kind (what is it, why is it done, is it safe, ...) and a
topic (the terms it names). The builder gives every section its kinds: from the reviewed
map when its document is mapped, else from cue words in its heading path. A section with
no kinds answers any kind, but only through a clear search match (actions/answers.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from knowledge import settings
from knowledge.text import fold_accents

#: How a section got a kind: the reviewed map, or a cue in its heading path.
FROM_MAP = "map"
FROM_HEADING = "heading"


class SectionMapError(ValueError):
    """sections.yml is malformed or names a kind it does not define."""


@dataclass(frozen=True)
class QuestionKind:
    """A kind of question: its not-covered category and its heading cues."""

    name: str
    category: str
    heading_cues: tuple[str, ...]


@dataclass(frozen=True)
class SectionMap:
    """Everything sections.yml holds."""

    kinds: dict[str, QuestionKind]
    documents: dict[str, dict[str, tuple[str, ...]]]

    def category(self, kind: str | None) -> str:
        """The not-covered category for a kind ("other" for none or unknown)."""
        found = self.kinds.get(kind or "")
        return found.category if found else "other"

    def kinds_from_headings(self, headings: list[str]) -> tuple[str, ...]:
        """The kinds whose cues appear in a heading path (deepest heading first).

        Accents are folded away first, so a Spanish heading ("Después de la
        inyección") matches its cue written plainly ("despues").
        """
        found: list[str] = []
        for heading in reversed(headings):
            plain = fold_accents(heading.lower())
            words = " " + " ".join(re.findall(r"[a-z0-9-]+", plain)) + " "
            for kind in self.kinds.values():
                if kind.name not in found and any(
                    f" {cue} " in words for cue in kind.heading_cues
                ):
                    found.append(kind.name)
            if found:  # the deepest heading with a cue decides
                break
        return tuple(found)

    def mapped(self, file: str, title: str) -> tuple[str, ...] | None:
        """The reviewed kinds of a section, or None when the map does not list it."""
        by_title = {t.lower(): k for t, k in self.documents.get(file, {}).items()}
        return by_title.get(title.lower())


def parse_section_map(data: object, source: str = "sections.yml") -> SectionMap:
    """Validate the file's contents."""
    if not isinstance(data, dict) or not isinstance(data.get("kinds"), dict):
        raise SectionMapError(f"{source}: needs a `kinds:` mapping")
    kinds = {}
    for name, spec in data["kinds"].items():
        spec = spec or {}
        cues = tuple(str(c).lower() for c in spec.get("heading_cues") or ())
        kinds[str(name)] = QuestionKind(
            str(name), str(spec.get("category") or "other"), cues
        )
    documents: dict[str, dict[str, tuple[str, ...]]] = {}
    for file, sections in (data.get("documents") or {}).items():
        documents[str(file)] = {}
        for title, listed in (sections or {}).items():
            unknown = [k for k in listed or () if k not in kinds]
            if unknown:
                raise SectionMapError(
                    f"{source}: {file} / {title!r} names unknown kinds {unknown}"
                )
            documents[str(file)][str(title)] = tuple(listed or ())
    return SectionMap(kinds=kinds, documents=documents)


def load_section_map(path: Path | None = None) -> SectionMap:
    """Read sections.yml (the project's own by default)."""
    path = path or settings.SECTIONS_FILE
    with open(path, encoding="utf-8") as handle:
        return parse_section_map(yaml.safe_load(handle), str(path))


@lru_cache(maxsize=1)
def project_section_map() -> SectionMap:
    """The project's sections.yml, read once."""
    return load_section_map()
