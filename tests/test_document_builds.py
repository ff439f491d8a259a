"""Leaflets of every format in the store: built beside the clinic's guide, cited with
their document and heading path, a broken one refused with the old store still serving,
and a rebuild seen by a running action server without a restart."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from bot.serve import free_port
from knowledge import queries
from knowledge.builder import build_store
from knowledge.environment import session_scope
from knowledge.parser import DocumentError
from tests.conftest import ROOT
from tests.documents import AFTERCARE_MD, raw_pdf, write_docx, write_pdf
from tests.test_documents import LEAFLET_OUTLINE, LEAFLET_PAGES, WORD_LEAFLET

GUIDE = "Pain Management Injections"


def add_leaflets(sources: Path) -> None:
    (sources / "aftercare.md").write_text(AFTERCARE_MD)
    write_pdf(
        sources / "nerve-block.pdf", LEAFLET_PAGES, LEAFLET_OUTLINE, "Nerve block day"
    )
    write_docx(sources / "epidural.docx", WORD_LEAFLET)


def test_leaflets_of_every_format_are_built_beside_the_guide(tmp_path, sources):
    add_leaflets(sources)
    url = f"sqlite:///{tmp_path / 'k.db'}"
    report = build_store(url=url, sources_dir=sources)
    assert report.documents == 4 and report.sections == 11 + 5 + 4 + 4
    with session_scope(url) as session:
        sections = queries.all_sections(session)
        guide = [s for s in sections if s.document == GUIDE]
        assert [(s.number, s.title) for s in guide][:2] == [
            (0, "Introduction"),
            (1, "Chronic Pain Relief"),
        ]
        assert len(guide) == 11 and guide[5].heading_path == ("Joint Pain",)
        assert [s.file for s in sections[11:]] == (
            ["aftercare.md"] * 5 + ["epidural.docx"] * 4 + ["nerve-block.pdf"] * 4
        )
        assert queries.section_by_number(session, 5).title == "Joint Pain"
        assert queries.section_by_ref(session, "pain-management-injections.txt#5")

        bath = queries.search(session, "can I have a bath after the shot")[0]
        assert bath.section.file == "aftercare.md"
        assert bath.section.citation() == {
            "document": "After your injection",
            "file": "aftercare.md",
            "number": 3,
            "title": "Bathing",
            "heading_path": ["Bathing"],
        }
        drive = queries.search(session, "who will drive me home")[0].section
        assert drive.heading_path == ("Going home", "Driving")
        numb = queries.search(session, "how long will my leg feel numb")[0].section
        assert (numb.document, numb.heading_path) == (
            "Nerve block day",
            ("The procedure", "Afterwards"),
        )
        lifting = queries.search(session, "heavy lifting")[0].section
        assert lifting.citation()["heading_path"] == ["The first day", "Rest"]


def broken_files(sources: Path) -> dict[str, tuple[Path, str, str]]:
    """A broken file of each format: (path, place, reason)."""
    md = sources / "zz-leaflet.md"
    md.write_text("# Leaflet\n## Empty\n## Full\ntext\n")
    pdf = sources / "zz-leaflet.pdf"
    pdf.write_bytes(raw_pdf([["a page"]])[:200])
    docx = sources / "zz-leaflet.docx"
    docx.write_bytes(b"PK\x03\x04 not really a zip")
    return {
        "md": (md, "line 2, heading 'Empty'", "has no text under it"),
        "pdf": (pdf, "file", "not a readable PDF"),
        "docx": (docx, "file", "not a Word .docx file"),
    }


@pytest.mark.parametrize("kind", ["md", "pdf", "docx"])
def test_a_broken_leaflet_fails_the_build_and_the_old_store_keeps_serving(
    tmp_path, sources, kind
):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    assert build_store(url=url, sources_dir=sources).built
    before = (tmp_path / "k.db").read_bytes()
    files = broken_files(sources)
    for other, (path, _, _) in files.items():
        if other != kind:
            path.unlink()
    path, place, reason = files[kind]
    with pytest.raises(DocumentError) as error:
        build_store(url=url, sources_dir=sources)
    assert error.value.file == path
    assert error.value.place == place and reason in error.value.reason
    assert (tmp_path / "k.db").read_bytes() == before
    assert list(tmp_path.glob("*.building-*")) == []
    with session_scope(url) as session:
        queries.check_store(session)
        assert len(queries.all_sections(session)) == 11


def test_a_rebuild_is_seen_at_once_by_the_same_process(tmp_path, sources):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    build_store(url=url, sources_dir=sources)
    question = "can I have a bath after the shot"
    with session_scope(url) as session:
        assert all(
            h.section.file != "aftercare.md" for h in queries.search(session, question)
        )
    (sources / "aftercare.md").write_text(AFTERCARE_MD)
    assert build_store(url=url, sources_dir=sources).built
    with session_scope(url) as session:  # the passage index is per build (BuildMemo)
        assert queries.search(session, question)[0].section.title == "Bathing"


def test_cli_check_prints_the_sections_without_building(tmp_path, capsys):
    from knowledge.__main__ import main

    path = tmp_path / "aftercare.md"
    path.write_text(AFTERCARE_MD)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "markdown, title 'After your injection', 5 section(s)" in out
    assert "§1   Going home > Driving  (line 7)" in out
    assert "Do not drive for the rest of the day." in out
    assert list(tmp_path.iterdir()) == [path]  # nothing built
    broken = tmp_path / "broken.docx"
    broken.write_bytes(b"not a zip")
    assert main(["check", str(broken)]) == 1
    assert f"{broken}: not a Word .docx file" in capsys.readouterr().err


def answer(port: int, token: str, text: str, domain: dict) -> dict:
    """The slots the running action server's action_answer sets for `text`."""
    tracker = {
        "sender_id": "leaflet-test",
        "slots": {},
        "latest_message": {"text": text, "intent": {}, "entities": []},
        "events": [],
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": "action_listen",
    }
    reply = httpx.post(
        f"http://127.0.0.1:{port}/webhook",
        json={
            "next_action": "action_answer",
            "sender_id": "leaflet-test",
            "tracker": tracker,
            "domain": domain,
            "version": "3.6.21",
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    reply.raise_for_status()
    return {
        e["name"]: e["value"] for e in reply.json()["events"] if e["event"] == "slot"
    }


def sections_named(slots: dict) -> list[str]:
    return [s["file"] for s in slots["cited_sections"] + slots["offered_sections"]]


@pytest.mark.slow
def test_the_running_action_server_answers_from_a_rebuilt_store_at_once(
    tmp_path, sources
):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    build_store(url=url, sources_dir=sources)
    port, token = free_port(), "leaflet-test-token-0123456789abcdef"
    env = {
        **os.environ,
        "KNOWLEDGE_DB_URL": url,
        "ACTION_PORT": str(port),
        "ACTION_TOKEN": token,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "actions"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, "the action server stopped"
                time.sleep(0.2)
        domain = yaml.safe_load((ROOT / "domain.yml").read_text())
        question = "Can I have a bath after the shot, or a swim in the pool?"
        before = answer(port, token, question, domain)
        assert "aftercare.md" not in sections_named(before)
        (sources / "aftercare.md").write_text(AFTERCARE_MD)
        assert build_store(url=url, sources_dir=sources).built
        after = answer(port, token, question, domain)
        assert after["cited_sections"][0]["file"] == "aftercare.md"
        assert after["cited_sections"][0]["heading_path"] == ["Bathing"]
        assert "Avoid a bath" in after["answer_text"]
    finally:
        server.terminate()
        server.wait(timeout=30)
