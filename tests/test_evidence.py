"""knowledge.evidence and actions.ranking's decision: how much of a question a section
covers, and when that is enough to answer, on real stores built in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from actions import ranking
from actions.answers import decide
from actions.ranking import Candidate, answering_candidate
from knowledge import evidence
from knowledge.builder import build_store
from knowledge.environment import get_session_factory
from knowledge.evidence import Coverage
from knowledge.queries import SectionRef

#: A leaflet nobody mapped: its title names a term, its sections are cued by headings.
STEROID_MD = (
    "# Steroid injection: what to expect\n\nWhat to expect on the day and after.\n\n"
    "## Before you come\n\n### Eating and drinking\n\n"
    "You can eat and drink normally. There is no need to fast.\n\n"
    "## Afterwards\n\n### Resting the joint\n\n"
    "Rest the joint for two days and avoid heavy lifting and sport.\n\n"
    "### Diabetes and blood sugar\n\n"
    "The medicine can raise your blood sugar for a few days: check it more often.\n\n"
    "## Neck stiffness\n\nA stiff neck after the injection settles in a day.\n"
)


def _store_with(
    leaflets: dict[str, str],
    tmp_path: Path,
    sources: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Session]:
    """A session on a store of the guide and these leaflets (file name -> text)."""
    for name, text in leaflets.items():
        (sources / name).write_text(text, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'knowledge.db'}"
    build_store(url=url, sources_dir=sources)
    monkeypatch.setenv("KNOWLEDGE_DB_URL", url)
    with get_session_factory(url)() as session, session.begin():
        yield session


@pytest.fixture()
def leaflet_store(
    tmp_path: Path, sources: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Session]:
    """The guide and the leaflet above, in a store of their own."""
    yield from _store_with({"steroid.md": STEROID_MD}, tmp_path, sources, monkeypatch)


def _by_title(session: Session, text: str) -> dict[str, Coverage]:
    found = evidence.coverage(session, text)
    words = evidence.section_words(session, "en")
    titles = {}
    from knowledge import queries

    for section in queries.all_sections(session):
        key = (section.file, section.number)
        if key in words.words:
            titles[section.title] = found[key]
    return titles


def test_a_section_holding_every_content_word_covers_all_of_the_question(
    leaflet_store: Session,
) -> None:
    cover = _by_title(leaflet_store, "can I eat and drink normally")
    assert cover["Eating and drinking"].share == pytest.approx(1.0)
    assert cover["Eating and drinking"].heading_share > 0.5  # "eat", "drink"
    assert cover["Resting the joint"].share < 0.2


def test_a_word_no_section_holds_weighs_most_and_is_covered_by_none(
    leaflet_store: Session,
) -> None:
    """ "parking" is in no section: the question is mostly not covered by any."""
    cover = _by_title(leaflet_store, "is there parking on the day")
    assert max(c.share for c in cover.values()) < ranking.MIN_COVERAGE


def test_a_named_term_is_held_only_by_sections_naming_it_not_its_related_terms(
    leaflet_store: Session,
) -> None:
    """A facet joint injection is no section's topic, though sections name joints."""
    cover = _by_title(leaflet_store, "what is a facet joint injection")
    assert cover["Resting the joint"].share < ranking.MIN_COVERAGE
    assert cover["Joint Pain"].share < ranking.MIN_COVERAGE


def test_every_section_of_a_document_holds_the_terms_its_title_names(
    leaflet_store: Session,
) -> None:
    words = evidence.section_words(leaflet_store, "en")
    held = [key for key in words.words if key[0] == "steroid.md"]
    assert held and all(
        evidence.TERM_PREFIX + "steroid injection" in words.words[key] for key in held
    )
    guide = [key for key in words.words if key[0] != "steroid.md"]
    assert not all(
        evidence.TERM_PREFIX + "steroid injection" in words.words[key] for key in guide
    )


def test_a_slip_of_the_keyboard_stands_for_the_word_it_misses(
    leaflet_store: Session,
) -> None:
    words = evidence.section_words(leaflet_store, "en")
    assert "neck" in words.near("nekc")  # two letters swapped
    assert "neck" in words.near("necks") or "neck" in words.near("neeck")
    assert words.near("neck") == frozenset()  # a known word is itself
    assert words.near("yoga") == frozenset()
    cover = _by_title(leaflet_store, "stiff nekc")
    assert cover["Neck stiffness"].share == pytest.approx(1.0)


def _candidate(
    file: str,
    number: int,
    share: float,
    *,
    heading: float = 0.0,
    search: float = 1.0,
    reviewed: bool = False,
    needs: float = 0.0,
    score: float = 1.0,
) -> Candidate:
    section = SectionRef("doc", file, number, f"s{number}", "body")
    return Candidate(
        section,
        score,
        needs=needs,
        search=search,
        cover=Coverage(share, heading),
        reviewed=reviewed,
    )


def test_evidence_answers_only_with_enough_of_the_question_covered() -> None:
    weak = _candidate("a.md", 1, ranking.MIN_COVERAGE - 0.01)
    assert answering_candidate([weak]) is None
    enough = _candidate("a.md", 1, ranking.MIN_COVERAGE + 0.01)
    assert answering_candidate([enough]) is enough


def test_a_section_of_the_same_document_as_good_leaves_the_question_open() -> None:
    best = _candidate("a.md", 1, 0.8)
    sibling = _candidate("a.md", 2, 0.8 - ranking.EVIDENCE_MARGIN / 2)
    assert answering_candidate([best, sibling]) is None
    clear = _candidate("a.md", 2, 0.8 - ranking.EVIDENCE_MARGIN * 2)
    assert answering_candidate([best, clear]) is best


def test_a_section_of_another_document_as_good_is_no_rival() -> None:
    """Two leaflets that say the same thing: the better one answers."""
    best = _candidate("a.md", 1, 0.8)
    twin = _candidate("b.md", 1, 0.79)
    assert answering_candidate([twin, best]) is best


def test_a_reviewed_section_answers_by_its_map_and_yields_only_to_stronger_evidence() -> (
    None
):
    mapped = _candidate("guide.txt", 1, 0.2, reviewed=True, needs=0.0, score=3.0)
    weaker = _candidate("a.md", 1, 0.4)
    assert answering_candidate([mapped, weaker]) is weaker  # 0.4 > the guide's 0.2
    stronger_map = _candidate("guide.txt", 1, 0.6, reviewed=True, needs=0.0, score=3.0)
    assert answering_candidate([stronger_map, weaker]) is stronger_map
    # a reviewed section never answers by evidence alone, below its bar
    below_bar = _candidate("guide.txt", 2, 1.0, reviewed=True, needs=4.0, score=1.0)
    assert answering_candidate([below_bar]) is None


@pytest.mark.parametrize(
    ("text", "intent", "title"),
    [
        ("can i eat before the injection", "ask_procedure_day", "Eating and drinking"),
        ("will it raise my blood sugar", "ask_medications", "Diabetes and blood sugar"),
        ("how long should i rest the joint", "ask_aftercare", "Resting the joint"),
    ],
)
def test_a_leaflet_question_is_answered_from_its_section(
    leaflet_store: Session, text: str, intent: str, title: str
) -> None:
    answer = decide(leaflet_store, intent, [], text, 0)
    assert answer.outcome == "knowledge", answer
    assert answer.cited[0]["title"] == title


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        # cued for medicines by its heading, but it says nothing of blood thinners
        ("should i stop my warfarin before the injection", "ask_medications"),
        ("where do i park for my appointment", "ask_scheduling"),
    ],
)
def test_a_question_the_leaflet_only_resembles_is_not_answered(
    leaflet_store: Session, text: str, intent: str
) -> None:
    answer = decide(leaflet_store, intent, [], text, 0)
    assert answer.outcome != "knowledge", answer


#: A leaflet about another injection than the one above, with a driving section too.
EPIDURAL_MD = (
    "# Epidural steroid injection: before and after\n\nWhat to do before and after.\n\n"
    "## Can I drive afterwards?\n\nNot on the day: your legs may feel weak.\n\n"
    "## Washing\n\nShower from the next day.\n"
)
JOINT_MD = (
    "# Your joint injection day\n\nThe day of a joint injection.\n\n"
    "## Can I drive home?\n\nDo not drive home after a knee or hip injection.\n"
)


@pytest.fixture()
def two_leaflets_store(
    tmp_path: Path, sources: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Session]:
    """The guide, an epidural leaflet and a joint injection leaflet."""
    leaflets = {"epidural.md": EPIDURAL_MD, "joint.md": JOINT_MD}
    yield from _store_with(leaflets, tmp_path, sources, monkeypatch)


def test_a_leaflet_about_another_injection_is_off_topic(
    two_leaflets_store: Session,
) -> None:
    cover = _by_title(two_leaflets_store, "can i drive home after my epidural")
    assert cover["Can I drive home?"].off_topic  # a joint injection leaflet
    assert not cover["Can I drive afterwards?"].off_topic
    assert not cover["Joint Pain"].off_topic  # the guide's title names no injection
    # a question naming no injection is off no document's topic
    plain = _by_title(two_leaflets_store, "can i drive home afterwards")
    assert not any(c.off_topic for c in plain.values())


def test_a_question_about_an_injection_is_answered_from_the_leaflet_about_it(
    two_leaflets_store: Session,
) -> None:
    """The joint leaflet's heading holds more of the words, but not the injection."""
    entities = [{"entity": "injection_type", "value": "epidural steroid injection"}]
    text = "can i drive home after my epidural"
    answer = decide(two_leaflets_store, "ask_aftercare", entities, text, 0)
    assert answer.outcome == "knowledge", answer
    assert answer.cited[0]["title"] == "Can I drive afterwards?"


def test_off_topic_evidence_is_weaker_by_its_weight() -> None:
    on = _candidate("a.md", 1, 0.6)
    off = Candidate(
        SectionRef("doc", "b.md", 1, "s1", "body"),
        1.0,
        search=1.0,
        cover=Coverage(0.6 + ranking.OFF_TOPIC_WEIGHT / 2, off_topic=True),
    )
    assert answering_candidate([off, on]) is on


def test_stop_words_and_numbers_are_no_content_but_some_stop_words_are() -> None:
    concepts = {c.lemma for c in evidence.question_concepts("im type 2 diabetic")}
    assert concepts == {"type", "diabetic"}  # "im" gives "be"; "2" says nothing
    asked = {
        c.lemma for c in evidence.question_concepts("who do i call about side effects")
    }
    assert {"call", "side", "effect"} <= asked


def test_a_short_word_is_not_taken_for_another_with_one_letter_changed(
    leaflet_store: Session,
) -> None:
    words = evidence.section_words(leaflet_store, "en")
    assert "neck" in words.near("nekc")  # swapped letters still stand for it
    assert words.near("nerk") == frozenset()  # "neck" with a letter changed
