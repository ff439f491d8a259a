"""The Documents page over HTTP, on the running assistant (tests/staff/conftest.py):
check a leaflet, see its sections, add it, and the store is rebuilt with no retraining;
bad files are refused with a friendly message and nothing stored is lost."""

from __future__ import annotations

import sqlite3

import pytest
import yaml

from tests.conftest import ROOT
from tests.documents import AFTERCARE_MD, write_docx
from tests.staff.conftest import csrf_of
from tests.test_document_builds import answer
from tests.test_documents import WORD_LEAFLET

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

GUIDE = "pain-management-injections.txt"


def snapshot(console) -> dict[str, object]:
    """The sources folder byte for byte, and the live store's build and documents.

    (Not the store's bytes: the running server's connections change its header.)
    """
    files: dict[str, object] = {
        p.name: p.read_bytes() for p in console.sources.iterdir()
    }
    with sqlite3.connect(console.store) as connection:
        build = connection.execute(
            "SELECT value FROM store_info WHERE key = 'build_id'"
        ).fetchone()
    return {**files, "<build>": build, "<documents>": documents_in_store(console)}


def held_uploads(console) -> list[str]:
    if not console.uploads.exists():
        return []
    return [p.name for p in console.uploads.iterdir() if p.is_dir()]


def documents_in_store(console) -> list[tuple[str, str]]:
    with sqlite3.connect(console.store) as connection:
        return connection.execute(
            "SELECT file, title FROM documents ORDER BY position"
        ).fetchall()


def check(client, name: str, body: bytes, kind: str = "application/octet-stream"):
    form = client.get("/staff/documents")
    assert form.status_code == 200
    return client.post(
        "/staff/documents/preview",
        data={"csrf": csrf_of(form.text)},
        files={"document": (name, body, kind)},
    )


def token_of(html: str) -> str:
    marker = 'name="token" value="'
    assert marker in html, html
    return html.split(marker, 1)[1].split('"', 1)[0]


def test_the_documents_page_needs_a_login_and_the_csrf_token(console) -> None:
    anonymous = console.client()
    page = anonymous.get("/staff/documents")
    assert page.status_code == 302
    assert page.headers["location"].startswith("/staff/login?next=")
    before = snapshot(console)
    posted = anonymous.post(
        "/staff/documents/preview", files={"document": ("a.md", b"# A\ntext\n")}
    )
    assert posted.status_code == 403
    client, _ = console.login("nurse")
    no_token = client.post(
        "/staff/documents/preview", files={"document": ("a.md", b"# A\ntext\n")}
    )
    assert no_token.status_code == 403
    form = client.get("/staff/documents")
    other_site = client.post(
        "/staff/documents/confirm",
        data={"csrf": csrf_of(form.text), "token": "x" * 32},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status_code == 403
    assert snapshot(console) == before and held_uploads(console) == []


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("notes.exe", b"MZ\x90\x00", "Only these kinds of file can be added"),
        ("../../evil.md", AFTERCARE_MD.encode(), "a plain name, without any folder"),
        ("leaflet.pdf", b"this is not a PDF at all", "not a PDF file"),
        ("old-leaflet.docx", b"\xd0\xcf\x11\xe0 an old .doc", "not a Word .docx file"),
        ("empty.md", b"  \n", "The file is empty"),
        ("huge.md", b"a" * 1_000_001, "larger than 1 MB"),
        (
            "bad.md",
            b"# Leaflet\n## Empty\n## Full\ntext\n",
            "(line 2, heading 'Empty')",
        ),
        ("latin.txt", b"Intro.\n1. Ice: caf\xe9\n", "(line 2): not valid UTF-8"),
    ],
)
def test_a_bad_file_is_refused_with_a_friendly_message_and_nothing_is_stored(
    console, name, body, message
) -> None:
    before = snapshot(console)
    client, _ = console.login("nurse")
    refused = check(client, name, body)
    assert refused.status_code == 400
    assert message in refused.text.replace("&#39;", "'")
    assert 'class="error"' in refused.text
    assert str(console.uploads) not in refused.text  # no server paths shown
    assert snapshot(console) == before and held_uploads(console) == []


def test_check_then_add_a_leaflet_and_the_store_answers_from_it(console) -> None:
    client, _ = console.login("nurse")
    before = snapshot(console)
    checked = check(client, "After care.md", AFTERCARE_MD.encode(), "text/markdown")
    assert checked.status_code == 200, checked.text
    assert "After your injection" in checked.text
    assert "saved as <code>After-care.md</code>" in checked.text
    assert "Going home &gt; Driving" in checked.text
    assert "Do not drive for the rest of the day." in checked.text
    assert snapshot(console) == before  # nothing stored before the confirmation
    assert len(held_uploads(console)) == 1

    added = client.post(
        "/staff/documents/confirm",
        data={"csrf": csrf_of(checked.text), "token": token_of(checked.text)},
    )
    assert added.status_code == 200, added.text
    assert "After-care.md was added" in added.text
    assert 'data-file="After-care.md"' in added.text
    assert (console.sources / "After-care.md").read_text() == AFTERCARE_MD
    assert ("After-care.md", "After your injection") in documents_in_store(console)
    assert held_uploads(console) == []

    # The running assistant's action server answers from the new store at once (asked
    # directly: which intents reach action_answer is the NLU's and the rules' business).
    slots = answer(
        int(console.env["ACTION_PORT"]),
        console.env["ACTION_TOKEN"],
        "Can I have a bath after the shot, or a swim in the pool?",
        yaml.safe_load((ROOT / "domain.yml").read_text()),
    )
    assert slots["cited_sections"][0]["file"] == "After-care.md"
    assert "Avoid a bath" in slots["answer_text"]


def test_a_word_leaflet_is_added_and_a_used_token_cannot_be_replayed(
    console, tmp_path
) -> None:
    client, _ = console.login("nurse")
    path = write_docx(tmp_path / "epidural.docx", WORD_LEAFLET)
    checked = check(client, path.name, path.read_bytes())
    assert "The first day &gt; Rest" in checked.text and "paragraph 4" in checked.text
    form = {"csrf": csrf_of(checked.text), "token": token_of(checked.text)}
    assert client.post("/staff/documents/confirm", data=form).status_code == 200
    assert ("epidural.docx", "Epidural injection: aftercare") in documents_in_store(
        console
    )
    replayed = client.post("/staff/documents/confirm", data=form)
    assert replayed.status_code == 400 and "expired" in replayed.text


def test_a_file_that_breaks_the_build_is_taken_out_and_the_old_store_kept(
    console,
) -> None:
    before = snapshot(console)
    client, _ = console.login("nurse")
    # Parses fine, but sections.yml maps the guide's sections, which this one lacks.
    checked = check(client, GUIDE, b"A new guide.\n1. Something else: entirely.\n")
    assert checked.status_code == 200 and "this replaces it" in checked.text
    failed = client.post(
        "/staff/documents/confirm",
        data={"csrf": csrf_of(checked.text), "token": token_of(checked.text)},
    )
    assert failed.status_code == 400
    text = failed.text.replace("&#39;", "'")
    assert "could not be rebuilt" in text and "sections.yml maps" in text
    assert "It was not changed, and the file was not kept." in text
    assert snapshot(console) == before and held_uploads(console) == []


def test_cancel_and_another_staff_members_token_store_nothing(console) -> None:
    assert console.add_account("receptionist").returncode == 0
    before = snapshot(console)
    nurse, _ = console.login("nurse")
    checked = check(nurse, "knee.md", b"# Knee\nRest it.\n")
    token = token_of(checked.text)
    other, _ = console.login("receptionist")
    form = other.get("/staff/documents")
    stolen = other.post(
        "/staff/documents/confirm", data={"csrf": csrf_of(form.text), "token": token}
    )
    assert stolen.status_code == 400 and snapshot(console) == before
    cancelled = nurse.post(
        "/staff/documents/confirm",
        data={"csrf": csrf_of(checked.text), "token": token, "action": "cancel"},
    )
    assert cancelled.status_code == 303
    assert snapshot(console) == before and held_uploads(console) == []
