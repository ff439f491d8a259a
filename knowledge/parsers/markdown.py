"""Markdown (`.md`), read with markdown-it-py (CommonMark, with tables).

Headings make sections, and a nested heading keeps its parents' titles (its heading
path). The text before the first heading is the introduction. The file's first heading
is the document's title when it is a `#` heading and the only one (a file of several
`#` headings has them as sections and takes its title from the file name).

Section bodies are plain text: paragraphs on one line each, list items and table rows as
lines ended like sentences, emphasis and code marks dropped, links and images as their
text, HTML tags removed.
"""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from knowledge.parsers.common import (
    Block,
    ParsedDocument,
    as_sentence,
    check_title,
    clean,
    read_text,
    sections_from_blocks,
    title_from_filename,
)

_TAG = re.compile(r"<!--.*?-->|<[^>]*>", re.DOTALL)
_BREAKS = {"softbreak", "hardbreak"}


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _inline_text(token: Token) -> str:
    """An inline token's words without their markup."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in {"text", "code_inline"}:
            parts.append(child.content)
        elif child.type in _BREAKS:
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)  # the alt text
        elif child.type == "html_inline":
            parts.append(_TAG.sub("", child.content))
    return clean("".join(parts))


def parse(path: Path) -> ParsedDocument:
    """Read and parse a Markdown document, raising DocumentError when malformed."""
    text = read_text(path)
    tokens = _markdown().parse(text)
    levels = [int(t.tag[1]) for t in tokens if t.type == "heading_open"]
    title = title_from_filename(path)
    title_token: Token | None = None
    first_heading = next((t for t in tokens if t.type == "heading_open"), None)
    if first_heading is not None and levels[0] == 1 and levels.count(1) == 1:
        title_token = first_heading

    blocks = [Block(level=0, title="", line=1, place="line 1")]
    in_list = in_cell = 0
    row: list[str] = []
    for index, token in enumerate(tokens):
        kind = token.type
        if kind == "heading_open":
            line = (token.map or [0])[0] + 1
            heading = check_title(path, _inline_text(tokens[index + 1]), f"line {line}")
            if token is title_token:
                title = heading
            else:
                place = f"line {line}, heading '{heading}'"
                blocks.append(Block(int(token.tag[1]), heading, line, place))
        elif kind in {"bullet_list_open", "ordered_list_open"}:
            in_list += 1
        elif kind in {"bullet_list_close", "ordered_list_close"}:
            in_list -= 1
        elif kind in {"th_open", "td_open"}:
            in_cell += 1
        elif kind in {"th_close", "td_close"}:
            in_cell -= 1
        elif kind == "tr_close":
            blocks[-1].lines.append(as_sentence("; ".join(c for c in row if c)))
            row = []
        elif kind == "inline" and tokens[index - 1].type != "heading_open":
            if blocks[-1].level == 0 and not blocks[-1].lines and token.map:
                blocks[-1].line = token.map[0] + 1  # the introduction's first line
            words = _inline_text(token)
            if in_cell:
                row.append(words)
            elif in_list:
                blocks[-1].lines.append(as_sentence(words))
            else:
                blocks[-1].lines.append(words)
        elif kind in {"fence", "code_block"}:
            blocks[-1].lines.extend(clean(line) for line in token.content.splitlines())
        elif kind == "html_block":
            blocks[-1].lines.append(clean(_TAG.sub(" ", token.content)))
    sections = sections_from_blocks(path, blocks)
    return ParsedDocument(
        file=path, title=title, text=text, sections=sections, format="markdown"
    )
