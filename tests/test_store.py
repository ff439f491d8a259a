"""The knowledge store: builder and query API, on real SQLite (and PostgreSQL)."""

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from knowledge import model, queries
from knowledge.builder import BuildError, build_store
from knowledge.environment import get_session_factory, session_scope
from knowledge.parser import DocumentError


def numbers(sections):
    return [s.number for s in sections]


def test_section_by_number_and_reference(session):
    assert queries.section_by_number(session, 5).title == "Joint Pain"
    assert queries.section_by_number(session, 42) is None
    ref = "pain-management-injections.txt#8"
    assert queries.section_by_ref(session, ref).title.startswith("Avoidance")
    assert queries.section_by_ref(session, "pain-management-injections.txt#x") is None
    assert queries.section_by_ref(session, "nope.txt#1") is None


def test_sections_carry_the_kinds_of_question_they_answer(session):
    kinds = queries.kinds_by_section(session)
    guide = "pain-management-injections.txt"
    assert kinds[(guide, 0)] == {"why", "what"}
    assert kinds[(guide, 7)] == {"comparison", "what"}
    # the guide answers no question about safety, the day, aftercare or candidacy
    every = set().union(*kinds.values())
    assert not every & {"safety", "procedure_day", "aftercare", "candidate"}


def test_an_unmapped_documents_headings_give_its_kinds():
    from knowledge.kinds import project_section_map

    section_map = project_section_map()
    assert section_map.kinds_from_headings(["Aftercare", "Going home"]) == (
        "aftercare",
    )
    assert "safety" in section_map.kinds_from_headings(["Side effects"])
    assert section_map.kinds_from_headings(["Our team"]) == ()
    # a subsection answers its parent's kinds too, its own first
    assert section_map.kinds_from_headings(["Going home", "If you had sedation"]) == (
        "procedure_day",
        "aftercare",
    )
    # words compare by stem: "showers" and "baths" are cued by "shower" and "bath"
    assert section_map.kinds_from_headings(["Showers and baths"]) == ("aftercare",)
    # a cue inside a longer cue that matched does not count: pain relief is medicines
    assert section_map.kinds_from_headings(["Pain relief"]) == ("medications",)
    assert section_map.category("safety") == "safety_risks"
    assert section_map.category(None) == "other"


@pytest.mark.parametrize(
    ("term", "first"),
    [
        ("PRP", 9),
        ("platelets", 9),
        ("bma", 9),
        ("trigger point injection", 4),
        ("gel shot", 5),
        ("selective nerve root block", 6),
        ("epidural", 3),
        ("bursitis", 2),
        ("myofascial pain", 4),
        ("sciatica", 3),  # related: nerve compression
        ("knee", 5),  # related: joint; "Joint Pain" is the section titled for it
        ("knees", 5),
        ("neck", 1),
    ],
)
def test_sections_for_term(session, term, first):
    sections = queries.sections_for_term(session, term)
    assert sections and sections[0].number == first


def test_knee_is_joint_pain_with_inflammation_among_the_next(session):
    ranked = numbers(queries.sections_for_term(session, "knee"))
    assert ranked[0] == 5 and 2 in ranked[1:3]


def test_unknown_term_has_no_sections(session):
    assert queries.sections_for_term(session, "unicorn") == []


def test_related_sections_share_terms(session):
    joint = queries.section_by_number(session, 5)
    related = numbers(queries.related_sections(session, joint))
    assert 2 in related and 5 not in related and 0 not in related


@pytest.mark.parametrize(
    ("question", "section"),
    [
        ("why shots instead of pills", 8),
        ("is it better than surgery", 7),
        ("can it find where my pain is coming from", 6),
        ("what is prp", 9),
        ("muscle knots and spasms", 4),
    ],
)
def test_search_ranks_the_right_section_first(session, question, section):
    hits = queries.search(session, question)
    assert hits[0].section.number == section
    assert hits == sorted(hits, key=lambda h: -h.score)


@pytest.mark.parametrize(
    "question",
    ["", "   ", "the and of", "zzzz qqqq", "' OR 1=1; DROP TABLE sections; --"],
)
def test_search_without_matching_words_returns_nothing(session, question):
    assert queries.search(session, question) == []


def test_search_sections_gives_one_hit_per_section(session):
    hits = queries.search_sections(session, "nerve injections", limit=3)
    keys = [(h.section.file, h.section.number) for h in hits]
    assert len(keys) == len(set(keys))


def test_check_store_reports_build_facts(session):
    info = queries.check_store(session)
    assert info["schema_version"] == model.SCHEMA_VERSION


def test_build_is_idempotent(tmp_path, sources):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    assert build_store(url=url, sources_dir=sources).built
    assert not build_store(url=url, sources_dir=sources).built
    assert build_store(url=url, sources_dir=sources, force=True).built
    assert list(tmp_path.glob("*.building-*")) == []


def test_a_malformed_document_fails_the_build_and_keeps_the_previous_store(
    tmp_path, sources
):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    build_store(url=url, sources_dir=sources)
    before = (tmp_path / "k.db").read_bytes()
    (sources / "zz-broken.txt").write_text(
        "Intro\n1. Fine: text\n5. Skipped: numbers\n"
    )
    with pytest.raises(DocumentError) as error:
        build_store(url=url, sources_dir=sources)
    assert error.value.line == 3 and error.value.file.name == "zz-broken.txt"
    assert (tmp_path / "k.db").read_bytes() == before
    with session_scope(url) as session:
        assert queries.section_by_number(session, 5).title == "Joint Pain"


def test_a_second_document_is_ingested_after_the_clinics(tmp_path, sources):
    (sources / "aftercare.txt").write_text(
        "# Aftercare\nGeneral notes.\n1. Ice: Use ice packs.\n"
    )
    url = f"sqlite:///{tmp_path / 'k.db'}"
    report = build_store(url=url, sources_dir=sources)
    assert report.documents == 2
    with session_scope(url) as session:
        sections = queries.all_sections(session)
        assert sections[0].document == "Pain Management Injections"
        assert sections[-1].title == "Ice" and sections[-1].document == "Aftercare"
        assert queries.search(session, "ice packs")[0].section.title == "Ice"


def test_a_map_naming_a_missing_section_or_kind_fails_the_build(tmp_path, sources):
    sections = tmp_path / "sections.yml"
    sections.write_text(
        "kinds: {what: {}}\ndocuments:\n  pain-management-injections.txt:\n"
        "    Knee Pain: [what]\n"
    )
    with pytest.raises(BuildError, match="Knee Pain"):
        build_store(
            url=f"sqlite:///{tmp_path / 'k.db'}",
            sources_dir=sources,
            sections_file=sections,
        )
    sections.write_text(
        "kinds: {what: {}}\ndocuments:\n  pain-management-injections.txt:\n"
        "    Joint Pain: [whatever]\n"
    )
    with pytest.raises(BuildError, match="unknown kinds"):
        build_store(
            url=f"sqlite:///{tmp_path / 'k2.db'}",
            sources_dir=sources,
            sections_file=sections,
        )


def test_check_store_refuses_missing_empty_and_old_stores(tmp_path):
    missing = f"sqlite:///{tmp_path / 'missing.db'}"
    with (
        pytest.raises(queries.StoreNotReadyError, match="make knowledge"),
        session_scope(missing) as session,
    ):
        queries.check_store(session)

    old = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{old}")
    model.Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO store_info (key, value) VALUES ('schema_version', '0')")
        )
    with (
        pytest.raises(queries.StoreNotReadyError, match="schema"),
        get_session_factory(f"sqlite:///{old}")() as session,
    ):
        queries.check_store(session)

    with sqlite3.connect(old) as conn:
        conn.execute(
            "UPDATE store_info SET value = ? WHERE key = 'schema_version'",
            (model.SCHEMA_VERSION,),
        )
    with (
        pytest.raises(queries.StoreNotReadyError, match="empty"),
        get_session_factory(f"sqlite:///{old}")() as session,
    ):
        queries.check_store(session)


PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def postgres_available() -> bool:
    try:
        with create_engine(PG_URL).connect():
            return True
    except Exception:
        return False


@pytest.mark.skipif(
    not postgres_available(), reason="PostgreSQL is not running on 127.0.0.1:5432"
)
def test_postgresql_build_swaps_schemas_atomically(sources):
    report = build_store(url=PG_URL, sources_dir=sources, force=True)
    assert report.built and report.sections == 11
    with session_scope(PG_URL) as session:
        queries.check_store(session)
        assert queries.kinds_by_section(session)[("pain-management-injections.txt", 5)]
        assert queries.search(session, "why pills")[0].section.number == 8
    (sources / "zz-broken.txt").write_text("1. Broken\n")
    with pytest.raises(DocumentError):
        build_store(url=PG_URL, sources_dir=sources, force=True)
    with session_scope(PG_URL) as session:
        assert queries.section_by_number(session, 9).title == "Regenerative Medicine"
    with create_engine(PG_URL).connect() as conn:
        schemas = {
            r[0]
            for r in conn.execute(
                text("SELECT schema_name FROM information_schema.schemata")
            )
        }
    assert "knowledge" in schemas and "knowledge_building" not in schemas


def test_cli_search_prints_ranked_passages(use_store, capsys):
    from knowledge.__main__ import main

    assert main(["search", "why injections instead of pills"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "§8 Avoidance of Systemic Side Effects" in out[0]
    assert float(out[0].split()[0]) > 0


def test_cli_build_reports_a_malformed_document(tmp_path, sources, monkeypatch, capsys):
    from knowledge import settings
    from knowledge.__main__ import main

    (sources / "bad.txt").write_bytes(b"\xff\xfe")
    monkeypatch.setattr(settings, "SOURCES_DIR", Path(sources))
    monkeypatch.setenv("KNOWLEDGE_DB_URL", f"sqlite:///{tmp_path / 'k.db'}")
    assert main(["build"]) == 1
    err = capsys.readouterr().err
    assert "bad.txt:1: not valid UTF-8" in err and "left unchanged" in err
