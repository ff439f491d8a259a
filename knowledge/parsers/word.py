"""Word (`.docx`), read with python-docx.

Paragraphs in a Heading style ("Heading 1" to "Heading 9", or a style based on one)
make the sections; nested headings keep their parents' titles. The text before the
first heading is the introduction; a file without headings is one section. The first
paragraph in the Title style is the document's title, else the file's own title
property, else the file name. List paragraphs and table rows become lines ended like
sentences.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from knowledge.parsers.common import (
    MAX_BINARY_BYTES,
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

#: Most a .docx may unpack to: a small zip can inflate to gigabytes (a zip bomb).
MAX_UNZIPPED_BYTES = 100_000_000
_HEADING = re.compile(r"^heading\s*([1-9])$", re.I)


def _style_kind(style: Any) -> tuple[str, int]:
    """("heading", level), ("title", 0), ("list", 0) or ("text", 0), by style lineage."""
    seen = 0
    while style is not None and seen < 10:
        name = str(style.name or "")
        if match := _HEADING.match(name):
            return "heading", int(match.group(1))
        if name.lower() == "title":
            return "title", 0
        if name.lower().startswith("list"):
            return "list", 0
        style, seen = style.base_style, seen + 1
    return "text", 0


def _open(path: Path) -> Any:
    raw = read_limited(path, MAX_BINARY_BYTES)
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise DocumentError(
            path, None, "not a Word .docx file (an old .doc? save it as .docx)"
        ) from exc
    if unzipped > MAX_UNZIPPED_BYTES:
        raise DocumentError(path, None, f"unpacks to over {MAX_UNZIPPED_BYTES:,} bytes")
    try:
        return docx.Document(io.BytesIO(raw))
    except Exception as exc:  # python-docx raises KeyError, XML errors, ...
        raise DocumentError(path, None, f"not a readable Word file ({exc})") from exc


def _row_text(row: Any) -> str:
    cells: list[str] = []
    for cell in row.cells:
        text = clean(cell.text)
        if text and (not cells or cells[-1] != text):  # merged cells repeat
            cells.append(text)
    return as_sentence("; ".join(cells)) if cells else ""


def _read(path: Path, document: Any) -> tuple[str, list[Block], list[str]]:
    """The title paragraph's text, the headed blocks and every paragraph's text."""
    title = ""
    blocks = [Block(level=0, title="", line=1, place="paragraph 1")]
    texts: list[str] = []
    for number, item in enumerate(document.iter_inner_content(), start=1):
        place = f"paragraph {number}"
        if isinstance(item, Table):
            rows = [_row_text(row) for row in item.rows]
            blocks[-1].lines.extend(rows)
            texts.extend(rows)
            continue
        if not isinstance(item, Paragraph):
            continue
        text = clean(item.text)
        texts.append(text)
        kind, level = _style_kind(item.style)
        if kind == "heading":
            heading = check_title(path, text, place)
            where = f"paragraph {number}, heading '{heading}'"
            blocks.append(Block(level, heading, number, where))
        elif kind == "title" and not title and text:
            title = check_title(path, text, place)
        elif text:
            if blocks[-1].level == 0 and not blocks[-1].lines:
                blocks[-1].line, blocks[-1].place = number, place
            numbered = item._p.pPr is not None and item._p.pPr.numPr is not None
            blocks[-1].lines.append(
                as_sentence(text) if kind == "list" or numbered else text
            )
    return title, blocks, texts


def parse(path: Path) -> ParsedDocument:
    """Read and parse a Word document, raising DocumentError when it cannot be read."""
    document = _open(path)
    try:
        title, blocks, texts = _read(path, document)
        core_title = clean(document.core_properties.title or "")
    except DocumentError:
        raise
    except Exception as exc:  # a damaged document.xml, styles.xml or core.xml
        raise DocumentError(path, None, f"its text cannot be read ({exc})") from exc
    return ParsedDocument(
        file=path,
        title=title or core_title or title_from_filename(path),
        text="\n".join(texts),
        sections=sections_from_blocks(path, blocks),
        format="docx",
    )
