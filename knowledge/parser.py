"""Clinic documents to sections.

A document is plain UTF-8 text: an introduction, then numbered items, one a line,
written `N. Title: body` and numbered 1, 2, 3, ... A line that does not start with a
number continues the item above it. A document without numbered items is one section,
its introduction. The title is the first line when written `# Title`, else taken from
the file name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_ITEM = re.compile(r"^\s*(\d+)\s*[.)]\s*(.*)$")
_TITLE_LINE = re.compile(r"^#\s*(.+?)\s*$")
MAX_DOCUMENT_BYTES = 1_000_000
MAX_TITLE_CHARS = 120
INTRODUCTION = "Introduction"


class DocumentError(ValueError):
    """A malformed document: which file, which line, and why."""

    def __init__(self, file: Path, line: int, reason: str) -> None:
        super().__init__(f"{file}:{line}: {reason}")
        self.file = file
        self.line = line
        self.reason = reason


@dataclass
class ParsedSection:
    """A section as read from a document."""

    number: int
    title: str
    body: str
    line: int


@dataclass
class ParsedDocument:
    """A document as read from disk."""

    file: Path
    title: str
    text: str
    sections: list[ParsedSection]


def title_from_filename(path: Path) -> str:
    """`pain-management-injections.txt` -> `Pain Management Injections`."""
    return " ".join(w.capitalize() for w in re.split(r"[-_\s]+", path.stem) if w)


def parse_document(path: Path) -> ParsedDocument:
    """Read and parse a document, raising DocumentError when it is malformed."""
    raw = path.read_bytes()
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DocumentError(path, 1, f"larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = raw[: exc.start].count(b"\n") + 1
        raise DocumentError(path, bad_line, "not valid UTF-8 text") from exc
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise DocumentError(path, 1, "the document is empty")
    if "\x00" in text:
        bad_line = text[: text.index("\x00")].count("\n") + 1
        raise DocumentError(path, bad_line, "contains a NUL character (binary file?)")

    lines = text.splitlines()
    title = title_from_filename(path)
    first = 0
    if lines and (m := _TITLE_LINE.match(lines[0])):
        title, first = m.group(1), 1

    intro: list[str] = []
    sections: list[ParsedSection] = []
    for index, line in enumerate(lines[first:], start=first + 1):
        stripped = line.strip()
        if not stripped:
            continue
        item = _ITEM.match(stripped)
        if item is None:
            if sections:
                sections[-1].body += " " + stripped
            else:
                intro.append(stripped)
            continue
        sections.append(_parse_item(path, index, item, expected=len(sections) + 1))

    intro_line = first + 1
    result = (
        [ParsedSection(0, INTRODUCTION, " ".join(intro), intro_line)] if intro else []
    )
    result += sections
    if not result:
        raise DocumentError(path, 1, "no text found")
    return ParsedDocument(file=path, title=title, text=text, sections=result)


def _parse_item(
    path: Path, line: int, item: re.Match[str], expected: int
) -> ParsedSection:
    number, rest = int(item.group(1)), item.group(2)
    if number != expected:
        raise DocumentError(
            path,
            line,
            f"item numbered {number}, expected {expected} (numbering must run 1, 2, 3...)",
        )
    title, colon, body = rest.partition(":")
    title, body = title.strip(), body.strip()
    if not colon or not title:
        raise DocumentError(
            path, line, f"item {number} has no 'Title:' before its text"
        )
    if len(title) > MAX_TITLE_CHARS:
        raise DocumentError(
            path,
            line,
            f"item {number}'s title is over {MAX_TITLE_CHARS} characters (missing ':'?)",
        )
    if not body:
        raise DocumentError(
            path, line, f"item {number} ('{title}') has no text after its title"
        )
    return ParsedSection(number, title, body, line)
