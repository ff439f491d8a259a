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
        """The kinds whose cues appear in a heading path, the deepest heading's first.

        A section answers what its own heading cues and what its parents' headings do
        ("Going home" > "If you had sedation" is aftercare and the day of sedation).
        Words are compared by a crude stem ("arrive" matches "arriving"), and a cue
        inside a longer cue that matched is not counted ("pain relief" is about the
        medicines, not about how long relief lasts).
        """
        found: list[str] = []
        for heading in reversed(headings):
            for kind in self._cued(heading):
                if kind not in found:
                    found.append(kind)
        return tuple(found)

    def _cued(self, heading: str) -> list[str]:
        plain = fold_accents(
            heading.lower()
        )  # Spanish cues are written without accents
        words = [_stem(w) for w in re.findall(r"[a-z0-9]+", plain)]
        matches = []  # (start, end, kind)
        for kind in self.kinds.values():
            for cue in kind.heading_cues:
                cue_words = [_stem(w) for w in re.findall(r"[a-z0-9]+", cue)]
                size = len(cue_words)
                for start in range(len(words) - size + 1):
                    if cue_words and words[start : start + size] == cue_words:
                        matches.append((start, start + size, kind.name))
        kinds: list[str] = []
        for start, end, name in matches:
            inside_longer = any(
                s <= start and end <= e and e - s > end - start for s, e, _ in matches
            )
            if not inside_longer and name not in kinds:
                kinds.append(name)
        return kinds

    def mapped(self, file: str, title: str) -> tuple[str, ...] | None:
        """The reviewed kinds of a section, or None when the map does not list it."""
        by_title = {t.lower(): k for t, k in self.documents.get(file, {}).items()}
        return by_title.get(title.lower())


_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "es", "ed", "al", "s")


def _stem(word: str) -> str:
    """A crude stem, the same for a cue's words and a heading's: enough for headings."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


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
