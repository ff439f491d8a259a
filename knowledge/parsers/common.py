"""What every document format shares: the parsed types, errors, limits and sectioning.

A parsed section has a heading path: the titles of the headings above it, outermost
first (`("Going home", "Driving")`), empty for the introduction (the text before the
first heading). Its `number` is the item number of a numbered text, else a running
number 1..n (0 is the introduction); `position` is its order in the document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

#: Largest file read, by kind: text is read whole; PDF and Word files carry images.
MAX_TEXT_BYTES = 1_000_000
MAX_BINARY_BYTES = 20_000_000
#: Most text a document may give, whatever its format (a decompression bomb stops here).
MAX_TEXT_CHARS = 1_000_000
MAX_TITLE_CHARS = 120
INTRODUCTION = "Introduction"
_SENTENCE_END = re.compile(
    r"[.!?:;\u2026)\]\"'\u201d\u2019]$"
)  # ellipsis, closing quotes
_SPACES = re.compile(r"\s+")


class DocumentError(ValueError):
    """A malformed or unreadable document: which file, where in it, and why.

    `place` says where: "line 3" (text, Markdown), "page 2" (PDF), "paragraph 14"
    (Word), with the heading when a heading is at fault ("line 7, heading 'Driving'"),
    or "file" for the file as a whole. `line` is the line number when the error is
    raised by line (the line-based formats), else None.
    """

    def __init__(
        self, file: Path, line: int | None, reason: str, place: str | None = None
    ) -> None:
        self.file = file
        self.line = line
        self.place = place or (f"line {line}" if line is not None else "file")
        self.reason = reason
        if place is None and line is not None:
            message = f"{file}:{line}: {reason}"  # as compilers write it
        elif place is None:
            message = f"{file}: {reason}"
        else:
            message = f"{file}: {place}: {reason}"
        super().__init__(message)


@dataclass
class ParsedSection:
    """A section as read from a document.

    `line` locates its start in the file: the line (text, Markdown), the page (PDF) or
    the paragraph (Word), counted from 1.
    """

    number: int
    title: str
    body: str
    line: int
    heading_path: tuple[str, ...] = ()
    position: int = 0


@dataclass
class ParsedDocument:
    """A document as read from disk: its text, and the SHA-256 of the file's bytes."""

    file: Path
    title: str
    text: str
    sections: list[ParsedSection]
    format: str = "text"
    digest: str = ""


@dataclass
class Block:
    """A run of text under one heading, as a format module reads it."""

    #: The heading's level (1 = outermost) and title; level 0 is the introduction.
    level: int
    title: str
    #: Where the heading is (line, page or paragraph), and how an error names it.
    line: int
    place: str
    lines: list[str] = field(default_factory=list)


def title_from_filename(path: Path) -> str:
    """`pain-management-injections.txt` -> `Pain Management Injections`."""
    return " ".join(w.capitalize() for w in re.split(r"[-_\s]+", path.stem) if w)


def clean(text: str) -> str:
    """Text on one line, runs of whitespace as one space."""
    return _SPACES.sub(" ", text).strip()


def as_sentence(text: str) -> str:
    """A list item or table row ended like a sentence, so that it is a passage of its own."""
    text = clean(text)
    if text and not _SENTENCE_END.search(text):
        text += "."
    return text


def read_limited(path: Path, limit: int, line: int | None = None) -> bytes:
    """The file's bytes, refused when it is empty or larger than `limit`.

    `line` is the place errors name (1 for the line-based formats).
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        reason = f"cannot be read ({exc.strerror})"
        raise DocumentError(path, line, reason) from exc
    if len(raw) > limit:
        raise DocumentError(path, line, f"larger than {limit:,} bytes")
    if not raw.strip():
        raise DocumentError(path, line, "the document is empty")
    return raw


def read_text(path: Path) -> str:
    """A text file's content: UTF-8 (a byte-order mark dropped), no NUL, not empty."""
    raw = read_limited(path, MAX_TEXT_BYTES, line=1)
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
    return text


def check_title(path: Path, title: str, place: str) -> str:
    """A heading's title, refused when empty or too long to be one."""
    title = clean(title)
    if not title:
        raise DocumentError(path, None, "a heading has no text", place=place)
    if len(title) > MAX_TITLE_CHARS:
        raise DocumentError(
            path, None, f"a heading is over {MAX_TITLE_CHARS} characters", place=place
        )
    return title


def sections_from_blocks(
    path: Path, blocks: list[Block], empty_leaf_is_error: bool = True
) -> list[ParsedSection]:
    """Sections from headed blocks in document order, each with its heading path.

    A heading whose text is all in its sub-headings gives no section of its own; one
    with no text and no sub-headings is an error (unless `empty_leaf_is_error` is
    False: a PDF outline may point twice at one place). A document with no headings is
    one section, its introduction.
    """
    sections: list[ParsedSection] = []
    stack: list[tuple[int, str]] = []
    total = headed = 0
    for index, block in enumerate(blocks):
        body = "\n".join(line for line in block.lines if line)
        total += len(body)
        if total > MAX_TEXT_CHARS:
            raise DocumentError(
                path,
                None,
                f"more than {MAX_TEXT_CHARS:,} characters of text",
                place=block.place,
            )
        if block.level == 0:
            path_titles: tuple[str, ...] = ()
        else:
            while stack and stack[-1][0] >= block.level:
                stack.pop()
            stack.append((block.level, block.title))
            path_titles = tuple(title for _, title in stack)
        if not body:
            following = blocks[index + 1] if index + 1 < len(blocks) else None
            has_children = following is not None and following.level > block.level
            if block.level and not has_children and empty_leaf_is_error:
                raise DocumentError(
                    path,
                    None,
                    f"heading '{block.title}' has no text under it",
                    place=block.place,
                )
            continue
        headed += bool(block.level)
        sections.append(
            ParsedSection(
                number=headed if block.level else 0,
                title=block.title if block.level else INTRODUCTION,
                body=body,
                line=block.line,
                heading_path=path_titles,
                position=len(sections),
            )
        )
    if not sections:
        raise DocumentError(path, None, "no text found")
    return sections
