"""Documents in another language: a folder per language under the sources.

The Spanish fixture leaflet (tests/fixtures/documents/es/) is built beside the guide; its
sections are searched only for questions in Spanish, and a Spanish question is answered
from them by the kind the classifier ranked best, or gets the Spanish note when the clinic
has no Spanish documents.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker

from actions.answers import OTHER_LANGUAGE_OUTCOME, decide
from actions.questions import question_intent
from bot.nlg import ClinicNLG
from knowledge import queries
from knowledge.builder import BuildError, build_store, source_files
from knowledge.environment import get_session_factory

ROOT = Path(__file__).resolve().parent.parent
SPANISH_LEAFLET = ROOT / "tests" / "fixtures" / "documents" / "es"
LEAFLET = "es/cuidados-despues-de-la-inyeccion.md"


@pytest.fixture()
def spanish_store(tmp_path: Path, sources: Path) -> str:
    shutil.copytree(SPANISH_LEAFLET, sources / "es")
    url = f"sqlite:///{tmp_path / 'knowledge.db'}"
    report = build_store(url=url, sources_dir=sources)
    assert report.documents == 2
    return url


def _session(url: str):  # type: ignore[no-untyped-def]
    factory = get_session_factory(url)
    session = factory()
    session.begin()
    return session


def test_a_language_folder_builds_documents_in_that_language(spanish_store):
    with _session(spanish_store) as session:
        sections = queries.all_sections(session)
        assert queries.document_languages(session) == {"en", "es"}
    spanish = [s for s in sections if s.language == "es"]
    assert {s.file for s in spanish} == {LEAFLET}
    assert [s.title for s in spanish][1:] == [
        "Al volver a casa",
        "Los primeros días",
        "Baño y ducha",
        "Sus medicamentos",
        "Efectos secundarios frecuentes",
        "Cuándo llamar",
    ]
    assert {s.language for s in sections if s.file.endswith(".txt")} == {"en"}


def test_files_in_a_folder_that_is_not_a_language_are_not_documents(sources):
    (sources / "old").mkdir()
    (sources / "old" / "draft.md").write_text("# Draft\n\nNot for patients.\n")
    assert all(p.parent == sources for p in source_files(sources))


def test_a_language_spacy_cannot_read_fails_the_build(tmp_path, sources):
    (sources / "zz").mkdir()
    (sources / "zz" / "leaflet.md").write_text("# Titel\n\nText.\n")
    with pytest.raises(BuildError, match="zz"):
        build_store(url=f"sqlite:///{tmp_path / 'k.db'}", sources_dir=sources)


def test_search_stays_within_the_question_language(spanish_store):
    with _session(spanish_store) as session:
        spanish = queries.rank_sections(session, "puedo ducharme despues", "es")
        english = queries.rank_sections(session, "can I shower after the injection")
        accents = queries.rank_sections(session, "¿puedo ducharme después?", "es")
    assert spanish and spanish[0].section.title == "Baño y ducha"
    assert all(h.section.language == "es" for h in spanish)
    assert all(h.section.language == "en" for h in english)
    assert accents[0].section.title == spanish[0].section.title


def test_a_spanish_question_is_answered_from_the_spanish_leaflet_by_its_kind(
    spanish_store,
):
    ranking = [{"name": n} for n in ("other_language", "ask_medications", "ask_safety")]
    with _session(spanish_store) as session:
        answer = decide(
            session,
            "other_language",
            [],
            "tomo anticoagulantes, cuando los vuelvo a tomar",
            0,
            language="es",
            ranking=ranking,
        )
    assert answer.outcome == "knowledge"
    assert answer.cited[0]["file"] == LEAFLET
    assert answer.cited[0]["title"] == "Sus medicamentos"


def test_a_spanish_question_the_leaflet_does_not_cover_is_not_covered(spanish_store):
    with _session(spanish_store) as session:
        answer = decide(
            session,
            "other_language",
            [],
            "aceptan el seguro de medicaid",
            0,
            language="es",
            ranking=[{"name": "other_language"}, {"name": "ask_cost_insurance"}],
        )
    assert answer.outcome == "not_covered"
    assert answer.category == "cost_insurance"


def test_without_documents_in_the_language_the_note_is_the_answer(session):
    answer = decide(
        session,
        "other_language",
        [],
        "tomo anticoagulantes, cuando los vuelvo a tomar",
        0,
        language="es",
        ranking=[{"name": "other_language"}, {"name": "ask_medications"}],
    )
    assert answer.outcome == OTHER_LANGUAGE_OUTCOME
    assert answer.slots()["answer_outcome"] == OTHER_LANGUAGE_OUTCOME


def test_the_question_intent_is_the_best_kind_under_the_override():
    assert question_intent(["other_language", "greet", "ask_safety"]) == "ask_safety"
    assert question_intent(["other_language", "out_of_scope"]) == "out_of_scope"
    assert question_intent(["other_language", "greet"]) is None


def _reply(utter: str, slots: dict[str, object]) -> dict:
    domain = Domain.load(str(ROOT / "domain.yml"))
    tracker = DialogueStateTracker.from_events(
        "es-test", [SlotSet(k, v) for k, v in slots.items()], domain.slots
    )
    nlg = ClinicNLG(domain=domain)
    return asyncio.run(nlg.generate(utter, tracker, "rest")) or {}


def test_the_patients_language_wins_over_a_more_specific_category():
    spanish = _reply(
        "utter_not_covered",
        {"language": "es", "not_covered_category": "cost_insurance"},
    )
    english = _reply(
        "utter_not_covered",
        {"language": "en", "not_covered_category": "cost_insurance"},
    )
    assert "nuestros documentos no responden" in spanish["text"]
    assert spanish["custom"]["answer"]["category"] == "cost_insurance"
    assert "costs or insurance" in english["text"]


def test_a_spanish_answer_cites_its_source_in_spanish():
    reply = _reply(
        "utter_knowledge_answer",
        {
            "language": "es",
            "answer_outcome": "knowledge",
            "answer_text": "Puede ducharse al día siguiente.",
            "cited_sections": [
                {
                    "document": "Cuidados después de su inyección",
                    "file": LEAFLET,
                    "number": 3,
                    "title": "Baño y ducha",
                    "heading_path": [
                        "Cuidados después de su inyección",
                        "Baño y ducha",
                    ],
                    "ref": f"{LEAFLET}#3",
                }
            ],
        },
    )
    assert (
        "Fuente: Cuidados después de su inyección, sección 3 (Baño y ducha)"
        in (reply["text"])
    )
