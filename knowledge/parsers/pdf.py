"""PDF (`.pdf`), read with pypdf.

The outline (bookmarks) makes the sections: each entry starts a section at the line on
its page that carries the entry's title (that line is dropped from the body), or at the
top of its page when no line does. Nested entries keep their parents' titles. A PDF
without an outline is one section. The metadata title is the document's title.

PDF text comes as hard-wrapped lines: they are joined into paragraphs (a word split by
a hyphen at the end of a line is mended), bullet lines become lines of their own, and
lines that are only a page number are dropped.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from knowledge.parsers.common import (
    MAX_BINARY_BYTES,
    MAX_TEXT_CHARS,
    Block,
    DocumentError,
    ParsedDocument,
    as_sentence,
    check_title,
    clean,
    read_limited,
    sections_from_blocks,
    title_from_filename,
)

MAX_PAGES = 500
#: A bullet (• ● ▪ ◦ ‣ ∙ · * - or an en dash) or "1." / "1)" opening a line.
_BULLET = re.compile(
    r"^\s*(?:[\u2022\u25cf\u25aa\u25e6\u2023\u2219\u00b7*\u2013-]|\d+[.)])\s+"
)
_PAGE_NUMBER = re.compile(r"^\s*(?:page\s*)?\d+(?:\s*(?:of|/)\s*\d+)?\s*$", re.I)


@dataclass
class _Entry:
    level: int
    title: str
    page: int


def _flatten(reader: PdfReader, items: list[Any], level: int = 1) -> list[_Entry]:
    """The outline as (level, title, page) in reading order; children follow parents."""
    entries: list[_Entry] = []
    for item in items:
        if isinstance(item, list):
            entries.extend(_flatten(reader, item, level + 1))
            continue
        page = reader.get_destination_page_number(item)
        if page is not None and page >= 0:
            entries.append(_Entry(level, str(item.title or ""), page))
    return entries


def _open(path: Path) -> PdfReader:
    raw = read_limited(path, MAX_BINARY_BYTES)
    if b"%PDF-" not in raw[:1024]:
        raise DocumentError(path, None, "not a PDF file (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError(path, None, "the PDF is password-protected")
        pages = len(reader.pages)
    except DocumentError:
        raise
    except Exception as exc:  # pypdf raises many kinds for a damaged file
        raise DocumentError(path, None, f"not a readable PDF ({exc})") from exc
    if pages > MAX_PAGES:
        raise DocumentError(path, None, f"more than {MAX_PAGES} pages")
    return reader


def _page_lines(path: Path, reader: PdfReader) -> list[list[str]]:
    pages: list[list[str]] = []
    total = 0
    for number, page in enumerate(reader.pages, start=1):
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # a damaged content stream
            raise DocumentError(
                path, None, f"its text cannot be read ({exc})", place=f"page {number}"
            ) from exc
        total += len(text)
        if total > MAX_TEXT_CHARS:
            raise DocumentError(
                path,
                None,
                f"more than {MAX_TEXT_CHARS:,} characters of text",
                place=f"page {number}",
            )
        lines = [clean(line) for line in text.splitlines()]
        pages.append([line for line in lines if line and not _PAGE_NUMBER.match(line)])
    return pages


def _paragraphs(lines: list[str]) -> list[str]:
    """Hard-wrapped lines as paragraphs, each bullet item a sentence of its own."""
    paragraphs: list[str] = []
    current = ""
    bulleted = False

    def flush() -> None:
        if current:
            paragraphs.append(as_sentence(current) if bulleted else current)

    for line in lines:
        bullet = _BULLET.match(line)
        if bullet:
            flush()
            current, bulleted = line[bullet.end() :], True
        elif current.endswith("-") and line[:1].islower():
            current = current[:-1] + line
        else:
            current = f"{current} {line}".strip()
    flush()
    return paragraphs


def parse(path: Path) -> ParsedDocument:
    """Read and parse a PDF document, raising DocumentError when it cannot be read."""
    reader = _open(path)
    pages = _page_lines(path, reader)
    if not any(pages):
        raise DocumentError(
            path,
            None,
            "no text in it (a scanned image? it needs a text layer)",
            place="page 1",
        )
    try:
        entries = _flatten(reader, list(reader.outline))
        metadata = reader.metadata
        meta_title = clean(str(metadata.get("/Title") or "")) if metadata else ""
    except Exception as exc:  # a damaged outline or metadata dictionary
        raise DocumentError(path, None, f"its outline cannot be read ({exc})") from exc

    flat = [(page, line) for page, lines in enumerate(pages) for line in lines]
    full_text = "\n".join(line for _, line in flat)
    starts: list[tuple[int, int, _Entry | None]] = [
        (0, 1, None)
    ]  # (index, page, entry)
    cursor = 0
    for entry in entries:
        place = f"page {entry.page + 1}"
        entry.title = check_title(path, entry.title, place)
        wanted = entry.title.lower()
        found = next(
            (
                i
                for i in range(cursor, len(flat))
                if flat[i][0] == entry.page and flat[i][1].lower() == wanted
            ),
            None,
        )
        if found is not None:
            flat[found] = (flat[found][0], "")  # the heading is not body text
        else:
            found = next(
                (i for i in range(cursor, len(flat)) if flat[i][0] >= entry.page),
                len(flat),
            )
        cursor = found
        starts.append((found, entry.page + 1, entry))

    blocks = []
    for n, (begin, page, start) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(flat)
        lines = _paragraphs([line for _, line in flat[begin:end] if line])
        if start is None:
            blocks.append(Block(0, "", 1, "page 1", lines))
        else:
            place = f"page {page}, heading '{start.title}'"
            blocks.append(Block(start.level, start.title, page, place, lines))
    sections = sections_from_blocks(path, blocks, empty_leaf_is_error=False)
    return ParsedDocument(
        file=path,
        title=meta_title or title_from_filename(path),
        text=full_text,
        sections=sections,
        format="pdf",
    )
