"""Every document format to sections: Markdown, plain text, PDF and Word, and their faults.

The documents are written in tmp_path by the tests (tests/documents.py).
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest

from knowledge import settings
from knowledge.parser import DocumentError, parse_document, preview
from knowledge.parsers import pdf, word
from tests.documents import AFTERCARE_MD, raw_pdf, write_docx, write_pdf

MARKUP = re.compile(r"(^|\s)#{1,6}\s|\*\*|__|\]\(|`|^\s*[-*+]\s|\|", re.M)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def outline(document):
    return [(s.number, s.position, s.heading_path, s.title) for s in document.sections]


def failure(path: Path) -> DocumentError:
    with pytest.raises(DocumentError) as error:
        parse_document(path)
    assert error.value.file == path
    assert str(error.value).startswith(str(path))
    return error.value


# --- Markdown ----------------------------------------------------------------------


def test_markdown_headings_make_sections_with_their_parents_titles(tmp_path):
    doc = parse_document(write(tmp_path, "aftercare.md", AFTERCARE_MD))
    assert doc.title == "After your injection" and doc.format == "markdown"
    assert outline(doc) == [
        (0, 0, (), "Introduction"),
        (1, 1, ("Going home", "Driving"), "Driving"),
        (2, 2, ("Going home", "At home"), "At home"),
        (3, 3, ("Bathing",), "Bathing"),
        (4, 4, ("Side effects",), "Side effects"),
    ]
    intro, driving, home, bathing, effects = doc.sections
    assert intro.body.startswith("Most people go home an hour after")
    assert intro.line == 3 and driving.line == 7
    assert driving.body == (
        "Do not drive for the rest of the day. Ask a friend or relative to take you "
        "home, or book a taxi."
    )
    assert home.body.splitlines() == [
        "Rest for the first 24 hours.",
        "Take your usual medicines unless the doctor said otherwise.",
        "Keep the dressing on until the next morning.",
    ]
    assert "for two days so the needle site" in bathing.body
    assert (
        "Soreness at the needle site; Use an ice pack for 15 minutes." in effects.body
    )
    for section in doc.sections:
        assert not MARKUP.search(section.body), section.body


def test_markdown_with_several_top_headings_has_them_as_sections(tmp_path):
    text = "Intro text.\n# Going home\nRest.\n# Bathing\n## Showers\nNext day.\n"
    doc = parse_document(write(tmp_path, "after-care.md", text))
    assert doc.title == "After Care"  # from the file name
    assert outline(doc) == [
        (0, 0, (), "Introduction"),
        (1, 1, ("Going home",), "Going home"),
        (2, 2, ("Bathing", "Showers"), "Showers"),
    ]


def test_markdown_without_headings_is_one_section(tmp_path):
    doc = parse_document(write(tmp_path, "note.md", "Just *one* paragraph.\n"))
    assert outline(doc) == [(0, 0, (), "Introduction")]
    assert doc.sections[0].body == "Just one paragraph."


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("# T\n## Empty\n## Full\ntext\n", 2, "heading 'Empty' has no text"),
        ("# T\n## \ntext\n", 2, "a heading has no text"),
        ("# T\n## " + "x" * 130 + "\ntext\n", 2, "over 120 characters"),
        ("   \n", 1, "empty"),
        (b"# T\nok\n## B\ncaf\xe9\n", 4, "not valid UTF-8"),
    ],
)
def test_malformed_markdown_fails_with_file_line_and_reason(
    tmp_path, text, line, reason
):
    error = failure(write(tmp_path, "bad.md", text))
    assert f"line {line}" in error.place
    assert reason in error.reason


# --- plain text -------------------------------------------------------------------


def test_the_clinic_guide_keeps_its_eleven_numbered_sections():
    doc = parse_document(settings.SOURCES_DIR / settings.PRIMARY_DOCUMENT)
    assert doc.format == "text"
    assert [s.number for s in doc.sections] == list(range(11))
    assert [s.position for s in doc.sections] == list(range(11))
    assert doc.sections[0].heading_path == ()
    assert doc.sections[5].heading_path == ("Joint Pain",)
    assert doc.sections[9].title == "Regenerative Medicine"


# --- PDF --------------------------------------------------------------------------

LEAFLET_PAGES = [
    [
        "Your nerve block",
        "This leaflet explains the day of your nerve block.",
        "Before you come",
        "Eat a light breakfast. Bring a list of your medi-",
        "cines and a friend to drive you home.",
        "1",
    ],
    [
        "On the day",
        "The block takes about twenty minutes.",
        "\u2022 You lie on your front",
        "\u2022 The skin is numbed first",
        "Afterwards",
        "Page 2 of 2",
        "Your leg may feel numb for a few hours.",
    ],
]
LEAFLET_OUTLINE = [
    ("Before you come", 0, []),
    ("The procedure", 1, [("On the day", 1, []), ("Afterwards", 1, [])]),
]


def test_pdf_outline_makes_sections_and_metadata_gives_the_title(tmp_path):
    path = write_pdf(
        tmp_path / "nerve-block.pdf", LEAFLET_PAGES, LEAFLET_OUTLINE, "Nerve block day"
    )
    doc = parse_document(path)
    assert doc.title == "Nerve block day" and doc.format == "pdf"
    assert outline(doc) == [
        (0, 0, (), "Introduction"),
        (1, 1, ("Before you come",), "Before you come"),
        (2, 2, ("The procedure", "On the day"), "On the day"),
        (3, 3, ("The procedure", "Afterwards"), "Afterwards"),
    ]
    intro, before, day, after = doc.sections
    assert intro.body.startswith("Your nerve block This leaflet explains")
    assert before.body == (
        "Eat a light breakfast. Bring a list of your medicines and a friend to drive "
        "you home."
    )
    assert before.line == 1 and day.line == 2
    assert day.body.splitlines() == [
        "The block takes about twenty minutes.",
        "You lie on your front.",
        "The skin is numbed first.",
    ]
    assert after.body == "Your leg may feel numb for a few hours."
    assert "Page 2" not in " ".join(s.body for s in doc.sections)


def test_pdf_without_an_outline_is_one_section_titled_by_its_file_name(tmp_path):
    doc = parse_document(write_pdf(tmp_path / "knee-care.pdf", LEAFLET_PAGES))
    assert doc.title == "Knee Care"
    assert outline(doc) == [(0, 0, (), "Introduction")]
    assert "twenty minutes" in doc.sections[0].body


def test_broken_pdfs_fail_with_file_place_and_reason(tmp_path, monkeypatch):
    not_pdf = failure(write(tmp_path, "a.pdf", "just some text\n"))
    assert not_pdf.place == "file" and "not a PDF" in not_pdf.reason
    cut = raw_pdf(LEAFLET_PAGES)[:300]
    truncated = failure(write(tmp_path, "b.pdf", cut))
    assert "not a readable PDF" in truncated.reason or "text cannot" in truncated.reason
    scanned = failure(write(tmp_path, "c.pdf", raw_pdf([[], []])))
    assert scanned.place == "page 1" and "no text" in scanned.reason
    assert failure(write(tmp_path, "d.pdf", b"")).reason == "the document is empty"
    monkeypatch.setattr(pdf, "MAX_BINARY_BYTES", 100)
    big = failure(write_pdf(tmp_path / "e.pdf", LEAFLET_PAGES))
    assert "larger than 100 bytes" in big.reason


# --- Word -------------------------------------------------------------------------

WORD_LEAFLET = [
    ("Title", "Epidural injection: aftercare"),
    ("Normal", "Keep this leaflet for the week after your epidural."),
    ("Heading 1", "The first day"),
    ("Heading 2", "Rest"),
    ("List Bullet", "Rest for the rest of the day"),
    ("List Bullet", "No heavy lifting"),
    ("Heading 2", "Pain"),
    ("Normal", "Some back pain is normal for two or three days."),
    ("table", "Medicine|When\nParacetamol|Every six hours"),
    ("Heading 1", "When to call us"),
    ("Normal", "Call the clinic if you have a fever or new weakness in your legs."),
]


def test_word_heading_styles_make_sections_and_the_title_style_the_title(tmp_path):
    doc = parse_document(write_docx(tmp_path / "epidural.docx", WORD_LEAFLET, "Old"))
    assert doc.title == "Epidural injection: aftercare" and doc.format == "docx"
    assert outline(doc) == [
        (0, 0, (), "Introduction"),
        (1, 1, ("The first day", "Rest"), "Rest"),
        (2, 2, ("The first day", "Pain"), "Pain"),
        (3, 3, ("When to call us",), "When to call us"),
    ]
    intro, rest, pain, call = doc.sections
    assert intro.body == "Keep this leaflet for the week after your epidural."
    assert intro.line == 2 and rest.line == 4
    assert rest.body.splitlines() == [
        "Rest for the rest of the day.",
        "No heavy lifting.",
    ]
    assert pain.body.splitlines()[1:] == [
        "Medicine; When.",
        "Paracetamol; Every six hours.",
    ]
    assert call.body.startswith("Call the clinic if you have a fever")


def test_word_without_headings_is_one_section_titled_by_its_properties(tmp_path):
    paragraphs = [("Normal", "First paragraph."), ("Normal", "Second paragraph.")]
    doc = parse_document(write_docx(tmp_path / "x.docx", paragraphs, "Knee exercises"))
    assert doc.title == "Knee exercises"
    assert outline(doc) == [(0, 0, (), "Introduction")]
    assert doc.sections[0].body == "First paragraph.\nSecond paragraph."


def test_broken_word_files_fail_with_file_place_and_reason(tmp_path, monkeypatch):
    not_zip = failure(write(tmp_path, "a.docx", "an old binary .doc, say"))
    assert not_zip.place == "file" and "not a Word .docx file" in not_zip.reason
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("readme.txt", "not a document")
    other_zip = failure(write(tmp_path, "b.docx", archive.getvalue()))
    assert "not a readable Word file" in other_zip.reason
    good = write_docx(tmp_path / "good.docx", WORD_LEAFLET).read_bytes()
    damaged = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(good)) as source,
        zipfile.ZipFile(damaged, "w") as target,
    ):
        for info in source.infolist():
            body = source.read(info)
            target.writestr(
                info, b"<w:document" if "document.xml" in info.filename else body
            )
    bad_xml = failure(write(tmp_path, "f.docx", damaged.getvalue()))
    assert bad_xml.place == "file" and "not a readable Word file" in bad_xml.reason
    no_text = failure(write_docx(tmp_path / "c.docx", [("Normal", "   ")]))
    assert no_text.reason == "no text found"
    empty_heading = failure(
        write_docx(
            tmp_path / "d.docx",
            [("Heading 1", "Going home"), ("Heading 1", "Bathing"), ("Normal", "x")],
        )
    )
    assert empty_heading.place == "paragraph 1, heading 'Going home'"
    assert "has no text under it" in empty_heading.reason
    monkeypatch.setattr(word, "MAX_UNZIPPED_BYTES", 1000)
    bomb = failure(write_docx(tmp_path / "e.docx", WORD_LEAFLET))
    assert "unpacks to over 1,000 bytes" in bomb.reason


# --- any format ---------------------------------------------------------------------


def test_an_unknown_format_is_refused(tmp_path):
    error = failure(write(tmp_path, "leaflet.rtf", "{\\rtf1 hello}"))
    assert ".docx" in error.reason and error.place == "file"


def test_preview_shows_heading_paths_places_and_first_words(tmp_path):
    doc = parse_document(write_docx(tmp_path / "epidural.docx", WORD_LEAFLET))
    shown = preview(doc, words=4)
    assert shown[1].heading == "The first day > Rest"
    assert shown[1].place == "paragraph 4"
    assert shown[1].first_words == "Rest for the rest …"
    assert shown[0].heading == "Introduction"
