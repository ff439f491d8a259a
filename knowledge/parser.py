"""Clinic documents to sections, whatever their format.

`parse_document(path)` reads a file by its suffix (FORMATS), each format in its module
of knowledge.parsers:

- `.txt`: an introduction, then numbered items `N. Title: body` (knowledge.parsers.plaintext);
- `.md`: Markdown, its headings make sections (knowledge.parsers.markdown);
- `.pdf`: its outline (bookmarks) makes sections (knowledge.parsers.pdf);
- `.docx`: its Heading-styled paragraphs make sections (knowledge.parsers.word).

Every section knows its heading path and position (knowledge.parsers.common). A
malformed or unreadable file raises DocumentError with the file, the place in it and
the reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from knowledge.parsers import markdown, pdf, plaintext, word
from knowledge.parsers.common import (
    INTRODUCTION,
    MAX_BINARY_BYTES,
    MAX_TEXT_BYTES,
    MAX_TITLE_CHARS,
    DocumentError,
    ParsedDocument,
    ParsedSection,
    title_from_filename,
)

#: Suffix -> the parser of that format.
FORMATS: dict[str, Callable[[Path], ParsedDocument]] = {
    ".txt": plaintext.parse,
    ".md": markdown.parse,
    ".pdf": pdf.parse,
    ".docx": word.parse,
}
#: The largest file of each format that is read.
MAX_BYTES = {".txt": MAX_TEXT_BYTES, ".md": MAX_TEXT_BYTES}
MAX_DOCUMENT_BYTES = MAX_TEXT_BYTES


#: A document title longer than this (a PDF's metadata, say) is cut to it.
MAX_DOCUMENT_TITLE_CHARS = 200
#: What a section's `line` counts, by format.
LOCATORS = {"text": "line", "markdown": "line", "pdf": "page", "docx": "paragraph"}
PREVIEW_WORDS = 14


@dataclass(frozen=True)
class SectionPreview:
    """A section as a person checking a document sees it, before it is built."""

    number: int
    heading: str
    place: str
    first_words: str


def preview(
    document: ParsedDocument, words: int = PREVIEW_WORDS
) -> list[SectionPreview]:
    """The sections a document gives: number, heading path, where, first words."""
    locator = LOCATORS.get(document.format, "line")
    result = []
    for section in document.sections:
        body = section.body.split()
        opening = " ".join(body[:words]) + (" …" if len(body) > words else "")
        result.append(
            SectionPreview(
                number=section.number,
                heading=" > ".join(section.heading_path) or section.title,
                place=f"{locator} {section.line}",
                first_words=opening,
            )
        )
    return result


def max_bytes(suffix: str) -> int:
    """The size limit of a format (text is read whole; PDF and Word carry images)."""
    return MAX_BYTES.get(suffix.lower(), MAX_BINARY_BYTES)


def parse_document(path: Path) -> ParsedDocument:
    """Read and parse a document, raising DocumentError when it is malformed."""
    parse = FORMATS.get(path.suffix.lower())
    if parse is None:
        known = ", ".join(FORMATS)
        raise DocumentError(path, None, f"not a document format read here ({known})")
    document = parse(path)
    document.title = document.title[:MAX_DOCUMENT_TITLE_CHARS].strip()
    # Of the bytes, not the text: a PDF's new title or a Word file's new style counts.
    document.digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return document


__all__ = [
    "FORMATS",
    "INTRODUCTION",
    "LOCATORS",
    "MAX_DOCUMENT_BYTES",
    "MAX_TITLE_CHARS",
    "DocumentError",
    "ParsedDocument",
    "ParsedSection",
    "SectionPreview",
    "max_bytes",
    "parse_document",
    "preview",
    "title_from_filename",
]
