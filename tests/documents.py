"""Small documents of every format, written by the tests into tmp_path.

No library here authors PDF text, so `write_pdf` writes the file itself: one page per
list of lines, Helvetica, a line every 16 points; pypdf then adds the outline
(bookmarks) and the title to it, as a word processor's export would have them.
"""

from __future__ import annotations

from pathlib import Path

import docx
from pypdf import PdfReader, PdfWriter


def _pdf_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"({escaped})"


def raw_pdf(pages: list[list[str]]) -> bytes:
    """A minimal valid PDF: the pages' lines as text, nothing else."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{i} 0 R" for i in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica"
        b" /Encoding /WinAnsiEncoding >>"
    )
    for page_id, lines in zip(page_ids, pages, strict=True):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_id + 1} 0 R >>".encode()
        )
        ops = ["BT", "/F1 11 Tf", "16 TL", "72 740 Td"]
        for line in lines:
            ops += [f"{_pdf_string(line)} Tj", "T*"]
        ops.append("ET")
        stream = "\n".join(ops).encode("cp1252")
        objects.append(
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
        )
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def write_pdf(
    path: Path,
    pages: list[list[str]],
    outline: list[tuple[str, int, list]] | None = None,
    title: str | None = None,
) -> Path:
    """A PDF of `pages`, with an outline of (title, page index, children) entries."""
    path.write_bytes(raw_pdf(pages))
    if outline is None and title is None:
        return path
    writer = PdfWriter(clone_from=PdfReader(path))

    def add(entries: list[tuple[str, int, list]], parent=None) -> None:
        for name, page, children in entries:
            item = writer.add_outline_item(name, page, parent=parent)
            add(children, item)

    add(outline or [])
    if title:
        writer.add_metadata({"/Title": title})
    with open(path, "wb") as handle:
        writer.write(handle)
    return path


def write_docx(
    path: Path, paragraphs: list[tuple[str, str]], core_title: str | None = None
) -> Path:
    """A Word file of (style, text) paragraphs: "Title", "Heading 1", "Normal", ..."""
    document = docx.Document()
    for style, text in paragraphs:
        if style == "table":
            rows = [row.split("|") for row in text.split("\n")]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for r, cells in enumerate(rows):
                for c, cell in enumerate(cells):
                    table.cell(r, c).text = cell
        else:
            document.add_paragraph(text, style=style)
    if core_title is not None:
        document.core_properties.title = core_title
    document.save(str(path))
    return path


#: An aftercare leaflet in Markdown, as a clinic might hand one out.
AFTERCARE_MD = """\
# After your injection

Most people go home an hour after the procedure. Read this sheet before you leave.

## Going home

### Driving

Do **not** drive for the rest of the day. Ask a friend or relative to take you home,
or book a taxi.

### At home

- Rest for the first *24 hours*
- Take your usual medicines unless the doctor said otherwise
- Keep the dressing on until the next morning

## Bathing

You may shower the next day. Avoid a bath, hot tub or swimming pool for
[two days](https://clinic.example/bathing) so the needle site can close.

## Side effects

| Effect | What to do |
|---|---|
| Soreness at the needle site | Use an ice pack for 15 minutes |
| Flushed face | It passes within a day or two |
"""
