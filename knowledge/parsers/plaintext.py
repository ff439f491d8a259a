"""Plain text (`.txt`): an introduction, then numbered items `N. Title: body`.

Items are written one a line and numbered 1, 2, 3, ...; a line that does not start with
a number continues the item above it. A text without numbered items is one section, its
introduction. The title is the first line when written `# Title`, else taken from the
file name.
"""

from __future__ import annotations

import re
from pathlib import Path

from knowledge.parsers.common import (
    INTRODUCTION,
    MAX_TITLE_CHARS,
    DocumentError,
    ParsedDocument,
    ParsedSection,
    read_text,
    title_from_filename,
)

_ITEM = re.compile(r"^\s*(\d+)\s*[.)]\s*(.*)$")
_TITLE_LINE = re.compile(r"^#\s*(.+?)\s*$")


def parse(path: Path) -> ParsedDocument:
    """Read and parse a plain-text document, raising DocumentError when malformed."""
    text = read_text(path)
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

    result = (
        [ParsedSection(0, INTRODUCTION, " ".join(intro), first + 1)] if intro else []
    )
    result += sections
    if not result:
        raise DocumentError(path, 1, "no text found")
    for position, section in enumerate(result):
        section.position = position
        if section.number:
            section.heading_path = (section.title,)
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
