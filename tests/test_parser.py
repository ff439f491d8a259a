from pathlib import Path

import pytest

from knowledge import settings
from knowledge.parser import DocumentError, parse_document, title_from_filename

CLINIC = settings.SOURCES_DIR / settings.PRIMARY_DOCUMENT


def test_clinic_document_has_an_introduction_and_ten_numbered_sections():
    doc = parse_document(CLINIC)
    assert doc.title == "Pain Management Injections"
    assert [s.number for s in doc.sections] == list(range(11))
    assert doc.sections[0].title == "Introduction"
    assert "Here are some common reasons" in doc.sections[0].body
    assert doc.sections[5].title == "Joint Pain"
    assert doc.sections[5].body.startswith("Joint injections, such as hyaluronic acid")
    assert doc.sections[10].title == "Improved Quality of Life"
    assert doc.sections[3].line == 5


def test_the_shipped_document_is_the_clinics_unchanged():
    shared = settings.PROJECT_ROOT.parent / "shared" / "source-documents" / CLINIC.name
    if not shared.exists():
        pytest.skip("the shared source documents are not beside this checkout")
    assert CLINIC.read_bytes() == shared.read_bytes()


def write(tmp_path: Path, text: str | bytes, name: str = "guide.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("Intro.\n1. A: one\n3. C: three\n", 3, "expected 2"),
        ("Intro.\n1. A: one\n1. B: again\n", 3, "expected 2"),
        ("Intro.\n1. No colon here at all\n", 2, "no 'Title:'"),
        ("Intro.\n1. Title only:\n", 2, "no text after its title"),
        ("Intro.\n2. Starts at two: body\n", 2, "expected 1"),
        ("   \n\n", 1, "empty"),
        (b"Intro.\n1. A: caf\xe9\n", 2, "UTF-8"),
        ("Intro.\n1. A: ok\x00\n", 2, "NUL"),
    ],
)
def test_malformed_documents_fail_with_file_line_and_reason(
    tmp_path, text, line, reason
):
    path = write(tmp_path, text)
    with pytest.raises(DocumentError) as error:
        parse_document(path)
    assert error.value.file == path
    assert error.value.line == line
    assert reason in error.value.reason
    assert str(error.value).startswith(f"{path}:{line}:")


def test_continuation_lines_and_title_line(tmp_path):
    path = write(
        tmp_path, "# Knee Care\nAbout knees.\n1. Rest: Rest the knee\nwhen it hurts.\n"
    )
    doc = parse_document(path)
    assert doc.title == "Knee Care"
    assert doc.sections[1].body == "Rest the knee when it hurts."


def test_a_document_without_numbered_items_is_one_section(tmp_path):
    doc = parse_document(write(tmp_path, "Just a paragraph of text."))
    assert [(s.number, s.title) for s in doc.sections] == [(0, "Introduction")]


def test_title_from_filename():
    assert title_from_filename(Path("after-care_notes.txt")) == "After Care Notes"
