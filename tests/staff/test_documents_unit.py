"""The Documents page's checks and its add-or-undo, without a server."""

from __future__ import annotations

import pytest

from knowledge.builder import BuildError, build_store
from staff import documents
from staff.documents import UploadRefusedError, check_upload, safe_name
from tests.documents import AFTERCARE_MD


@pytest.mark.parametrize(
    ("given", "saved"),
    [
        ("aftercare.md", "aftercare.md"),
        ("After care (v2).MD", "After-care-v2.md"),
        ("Nerve block.pdf", "Nerve-block.pdf"),
        ("\u00c9pidural  \u2013  day.docx", "Epidural-day.docx"),
    ],
)
def test_safe_names(given, saved):
    assert safe_name(given) == saved


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("", "Choose a file"),
        ("../x.md", "without any folder"),
        ("..\\x.md", "without any folder"),
        ("/etc/passwd.txt", "without any folder"),
        ("x.md\x00.pdf", "without any folder"),
        ("notes.exe", "Only these kinds"),
        ("README", "Only these kinds"),
        (".hidden.md", "letters and numbers"),
        ("~$lock.docx", "letters and numbers"),
        ("***.md", "letters and numbers"),
    ],
)
def test_unsafe_names_are_refused(given, reason):
    with pytest.raises(UploadRefusedError, match=reason):
        safe_name(given)


def test_size_limits_depend_on_the_format():
    assert check_upload("a.pdf", b"%PDF-" + b"x" * 2_000_000) == "a.pdf"
    with pytest.raises(UploadRefusedError, match="larger than 1 MB"):
        check_upload("a.md", b"x" * 1_000_001)
    with pytest.raises(UploadRefusedError, match="empty"):
        check_upload("a.md", b"\n \n")


@pytest.fixture()
def staff_store(tmp_path, sources, monkeypatch):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    monkeypatch.setenv("KNOWLEDGE_DB_URL", url)
    monkeypatch.setenv("STAFF_UPLOADS_DIR", str(tmp_path / "uploads"))
    build_store(url=url, sources_dir=sources)
    return tmp_path / "k.db"


def test_adding_builds_and_a_failed_build_puts_the_old_file_back(staff_store, sources):
    item = documents.hold("aftercare.md", AFTERCARE_MD.encode(), "nurse")
    assert documents.held(item.token, "someone-else") is None
    assert documents.held(item.token, "nurse") == item
    report = documents.install_document(item, sources)
    assert report.built and report.documents == 2
    assert (sources / "aftercare.md").read_text() == AFTERCARE_MD
    assert not list(sources.glob(".*incoming"))

    guide = sources / "pain-management-injections.txt"
    before, store = guide.read_bytes(), staff_store.read_bytes()
    item = documents.hold(guide.name, b"Intro.\n1. Other: text.\n", "nurse")
    with pytest.raises(BuildError, match=r"sections\.yml"):
        documents.install_document(item, sources)
    assert guide.read_bytes() == before and staff_store.read_bytes() == store
    listed = {d["file"]: d["sections"] for d in documents.listed_documents(sources)}
    assert listed == {"pain-management-injections.txt": 11, "aftercare.md": 5}
