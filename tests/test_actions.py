"""action_answer with rasa_sdk's real Tracker and CollectingDispatcher, on a real store."""

import pytest

from actions.actions import ActionAnswer, ActionRecordFeedback
from actions.answers import decide
from tests.conftest import make_tracker


def slots(events):
    assert all(e["event"] == "slot" for e in events)
    return {e["name"]: e["value"] for e in events}


async def run(tracker, dispatcher, domain):
    return slots(await ActionAnswer().run(dispatcher, tracker, domain))


def ent(kind, value, start=0):
    return {"entity": kind, "value": value, "start": start, "end": start + len(value)}


@pytest.mark.parametrize(
    ("text", "intent", "entities", "number", "title"),
    [
        (
            "can injections help my chronic pain",
            "ask_condition_help",
            [ent("condition", "chronic pain")],
            1,
            "Chronic Pain Relief",
        ),
        (
            "do shots help bursitis",
            "ask_condition_help",
            [ent("condition", "bursitis")],
            2,
            "Inflammatory Conditions",
        ),
        (
            "why are steroids injected",
            "ask_why",
            [ent("injection_type", "steroid injection")],
            2,
            "Inflammatory Conditions",
        ),
        (
            "what is an epidural",
            "ask_what",
            [ent("injection_type", "epidural steroid injection")],
            3,
            "Neuropathic Pain",
        ),
        (
            "what is a trigger point injection",
            "ask_what",
            [ent("injection_type", "trigger point injection")],
            4,
            "Musculoskeletal Pain",
        ),
        (
            "what helps my knee",
            "ask_condition_help",
            [ent("body_area", "knee")],
            5,
            "Joint Pain",
        ),
        (
            "can an injection find where my pain comes from",
            "ask_why",
            [],
            6,
            "Diagnostic Purposes",
        ),
        (
            "is an injection better than surgery",
            "ask_comparison",
            [],
            7,
            "Minimally Invasive Treatment",
        ),
        (
            "why injections and not pills",
            "ask_comparison",
            [],
            8,
            "Avoidance of Systemic Side Effects",
        ),
        (
            "what is prp",
            "ask_what",
            [ent("injection_type", "platelet-rich plasma", 8)],
            9,
            "Regenerative Medicine",
        ),
        (
            "will it help me get back to my daily activities",
            "ask_why",
            [],
            10,
            "Improved Quality of Life",
        ),
        # the injection type decides over the body area: "PRP for my knee" is about PRP
        (
            "can prp help my knee",
            "ask_condition_help",
            [ent("body_area", "knee", 17), ent("injection_type", "prp", 4)],
            9,
            "Regenerative Medicine",
        ),
    ],
)
async def test_a_kind_and_a_topic_cite_their_section(
    use_store, dispatcher, domain, text, intent, entities, number, title
):
    tracker = make_tracker(text, intent, entities=entities)
    result = await run(tracker, dispatcher, domain)
    assert result["answer_outcome"] == "knowledge", result
    cited = result["cited_sections"]
    assert [(c["number"], c["title"]) for c in cited] == [(number, title)]
    assert cited[0]["document"] == "Pain Management Injections"
    assert result["answer_text"].split()[0] and len(result["answer_text"].split()) <= 80
    assert 1 <= len(result["offered_sections"]) <= 3
    assert all(o["number"] != number for o in result["offered_sections"])
    assert result["miss_count"] == 0
    assert dispatcher.messages == []  # the rules say it, from domain.yml


async def test_knowledge_text_is_the_section_body_from_the_store(
    use_store, session, dispatcher, domain
):
    from knowledge import queries

    result = await run(
        make_tracker("why injections not pills", "ask_comparison"), dispatcher, domain
    )
    assert result["answer_text"] == queries.section_by_number(session, 8).body


@pytest.mark.parametrize(
    "text", ["why are these injections done?", "what are pain injections for"]
)
async def test_overview_offers_all_ten_reasons_as_section_buttons(
    use_store, dispatcher, domain, text
):
    result = await run(make_tracker(text, "ask_why"), dispatcher, domain)
    assert result["answer_outcome"] == "overview"
    offered = result["offered_sections"]
    assert [o["number"] for o in offered] == list(range(1, 11))
    assert offered[4]["ref"] == "pain-management-injections.txt#5"
    assert result["answer_text"].startswith("Pain management injections are performed")


@pytest.mark.parametrize(
    ("text", "intent", "entities", "topic", "number", "category"),
    [
        (
            "is prp safe",
            "ask_safety",
            [ent("injection_type", "platelet-rich plasma", 3)],
            "platelet-rich plasma",
            9,
            "safety_risks",
        ),
        (
            "are spine injections painful",
            "ask_safety",
            [ent("injection_type", "epidural steroid injection", 4)],
            "epidural steroid injection",
            3,
            "safety_risks",
        ),
        (
            "who is a candidate for cortisone injections",
            "ask_candidate",
            [ent("injection_type", "steroid injection", 25)],
            "steroid injection",
            2,
            "candidacy",
        ),
        (
            "how long does a gel shot last",
            "ask_relief_duration",
            [ent("injection_type", "hyaluronic acid injection", 16)],
            "hyaluronic acid injection",
            5,
            "relief_duration",
        ),
    ],
)
async def test_a_topic_covered_but_not_this_kind_of_question_is_said_plainly(
    use_store, dispatcher, domain, text, intent, entities, topic, number, category
):
    result = await run(
        make_tracker(text, intent, entities=entities), dispatcher, domain
    )
    assert result["answer_outcome"] == "topic_only"
    assert result["answer_topic"] == topic
    assert [c["number"] for c in result["cited_sections"]] == [number]
    # one sentence of what the documents say about the topic, not the whole section
    assert result["answer_text"].count(". ") == 0
    assert result["not_covered_category"] == category


@pytest.mark.parametrize(
    ("text", "intent", "entities", "category"),
    [
        (
            "what is a facet joint injection",
            "ask_what",
            [ent("injection_type", "facet joint injection", 10)],
            "other",
        ),
        (
            "does radiofrequency ablation help knee pain",
            "ask_condition_help",
            [
                ent("injection_type", "radiofrequency ablation"),
                ent("body_area", "knee", 33),
            ],
            "other",
        ),
        ("who is a candidate for these injections", "ask_candidate", [], "candidacy"),
        ("are the injections painful", "ask_safety", [], "safety_risks"),
        (
            "what happens on the day of my procedure",
            "ask_procedure_day",
            [],
            "procedure_day",
        ),
        ("how much does it cost", "ask_cost_insurance", [], "cost_insurance"),
    ],
)
async def test_what_no_document_covers_is_not_covered_never_another_injections_text(
    use_store, dispatcher, domain, text, intent, entities, category
):
    result = await run(
        make_tracker(text, intent, entities=entities), dispatcher, domain
    )
    assert result["answer_outcome"] == "not_covered", result
    assert result["answer_text"] is None and result["cited_sections"] == []
    assert result["not_covered_category"] == category


async def test_a_long_story_is_answered_on_its_question(use_store, session):
    story = (
        "I have had a bad knee for years after a fall at work and my GP tried tablets, "
        "physio and rest, and my sister swears by her own treatment for her back. "
        "I'm seeing the surgeon next month. Is an injection better than surgery?"
    )
    answer = decide(session, "ask_comparison", [ent("body_area", "knee", 13)], story, 0)
    assert answer.outcome == "knowledge"
    assert answer.cited[0]["number"] == 7


async def test_a_button_asks_for_its_section(use_store, session):
    entities = [{"entity": "section_ref", "value": "pain-management-injections.txt#4"}]
    answer = decide(session, "ask_section", entities, "/ask_section", 0)
    assert answer.outcome == "knowledge" and answer.cited[0]["number"] == 4


async def test_an_unmapped_document_answers_its_own_kind_of_question(
    tmp_path, sources, monkeypatch, dispatcher, domain
):
    """A leaflet nobody mapped: its headings give its sections' kinds, and the kind of
    question picks among them, without retraining."""
    from knowledge.builder import build_store

    (sources / "aftercare.md").write_text(
        "# After your injection\n\nSome notes for going home.\n\n"
        "## Going home\n\nPlease do not drive yourself home after your injection; "
        "bring someone who can drive you.\n\n"
        "## Bathing and showering\n\nYou may shower the next day. Do not take a bath "
        "or swim for two days.\n",
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'knowledge.db'}"
    build_store(url=url, sources_dir=sources)
    monkeypatch.setenv("KNOWLEDGE_DB_URL", url)
    for text, expected in [
        ("can i drive home after my injection", "drive"),
        ("can i take a bath after the shot", "bath"),
    ]:
        result = await run(make_tracker(text, "ask_aftercare"), dispatcher, domain)
        assert result["answer_outcome"] == "knowledge", (text, result)
        assert expected in result["answer_text"]
        assert result["cited_sections"][0]["document"] == "After your injection"


async def test_a_miss_is_not_covered_then_the_second_offers_a_person(
    use_store, dispatcher, domain
):
    first = await run(
        make_tracker("blorp fizz wibble", "nlu_fallback"), dispatcher, domain
    )
    assert first["answer_outcome"] == "not_covered"
    assert first["not_covered_category"] == "other"
    assert first["miss_count"] == 1
    second = await run(
        make_tracker(
            "zorp quux", "nlu_fallback", slots={"miss_count": first["miss_count"]}
        ),
        dispatcher,
        domain,
    )
    assert second["answer_outcome"] == "handoff"
    third = await run(
        make_tracker(
            "what is prp",
            "ask_what",
            entities=[{"entity": "injection_type", "value": "prp"}],
            slots={"miss_count": second["miss_count"]},
        ),
        dispatcher,
        domain,
    )
    assert third["answer_outcome"] == "knowledge" and third["miss_count"] == 0


async def test_an_ambiguous_search_offers_did_you_mean(use_store, session):
    answer = decide(session, "nlu_fallback", [], "osteoarthritis", 0)
    assert answer.outcome == "clarify"
    assert 2 <= len(answer.offered) <= 3
    assert answer.misses == 0


@pytest.mark.parametrize(
    ("text", "outcome"),
    [("", "empty"), ("  \n ", "empty"), ("what is prp " * 300, "too_long")],
)
async def test_empty_and_over_long_messages_ask_for_a_question(
    use_store, dispatcher, domain, text, outcome
):
    result = await run(make_tracker(text, "nlu_fallback"), dispatcher, domain)
    assert result["answer_outcome"] == outcome
    assert result["miss_count"] == 0


@pytest.mark.parametrize(
    "text",
    [
        "\x00\x01",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "{{7*7}}",
        "x " * 900,
        "🙂🙂",
        "مرحبا",
    ],
)
async def test_hostile_text_is_only_ever_text(use_store, dispatcher, domain, text):
    result = await run(make_tracker(text, "nlu_fallback"), dispatcher, domain)
    assert result["answer_outcome"] in {"not_covered", "clarify", "knowledge"}


async def test_a_repeated_answer_costs_one_query_and_a_rebuild_is_seen(
    tmp_path, sources, monkeypatch, dispatcher, domain
):
    """Answers are worked out once per build of the store: asked again, only the
    topic's section and the build id are read; after a rebuild the new text is said."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from knowledge.builder import build_store

    url = f"sqlite:///{tmp_path / 'knowledge.db'}"
    build_store(url=url, sources_dir=sources)
    monkeypatch.setenv("KNOWLEDGE_DB_URL", url)
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        question = make_tracker(
            "what helps my knee",
            "ask_condition_help",
            entities=[ent("body_area", "knee")],
        )
        first = await run(question, dispatcher, domain)
        asked_first = len(statements)
        statements.clear()
        again = await run(question, dispatcher, domain)
        asked_again = list(statements)
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert again == first
    assert asked_first > 5
    assert len(asked_again) == 1 and "store_info" in asked_again[0]

    guide = sources / "pain-management-injections.txt"
    old_words = "lubricating and cushioning"
    assert old_words in guide.read_text(encoding="utf-8")
    guide.write_text(
        guide.read_text(encoding="utf-8").replace(old_words, "cushioning and easing"),
        encoding="utf-8",
    )
    assert build_store(url=url, sources_dir=sources).built
    rebuilt = await run(question, dispatcher, domain)
    assert "cushioning and easing" in rebuilt["answer_text"]
    assert old_words not in rebuilt["answer_text"]


@pytest.mark.parametrize(
    ("text", "intent", "feedback"),
    [("yes", "affirm", "helpful"), ("/deny", "deny", "unhelpful")],
)
async def test_the_yes_or_no_after_an_answer_is_recorded_as_feedback(
    text, intent, feedback, dispatcher, domain
):
    events = await ActionRecordFeedback().run(
        dispatcher, make_tracker(text, intent), domain
    )
    assert slots(events) == {"answer_feedback": feedback}
    assert dispatcher.messages == []  # the rules say the reply


def _store_with(tmp_path, sources, monkeypatch, name, text):
    """The guide plus one more document, built into a store of its own."""
    from knowledge.builder import build_store

    (sources / name).write_text(text, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'knowledge.db'}"
    build_store(url=url, sources_dir=sources)
    monkeypatch.setenv("KNOWLEDGE_DB_URL", url)


#: A leaflet nobody mapped, whose two sections match "car park parking" equally well
#: (in their text, and not at all in their headings).
VISITING_MD = (
    "# Visiting the clinic\n\nSome practical notes.\n\n"
    "## North gate\n\nThe car park by the north gate has parking for patients.\n\n"
    "## South gate\n\nThe car park by the south gate has parking for wheelchairs.\n"
)


async def test_a_free_text_match_without_a_clear_winner_is_not_answered(
    tmp_path, sources, monkeypatch, dispatcher, domain
):
    """A question of no kind is answered by search alone only when its best section
    stands EVIDENCE_MARGIN clear of the next; two equal matches are offered instead."""
    _store_with(tmp_path, sources, monkeypatch, "visiting.md", VISITING_MD)
    result = await run(
        make_tracker("car park parking", "out_of_scope"), dispatcher, domain
    )
    assert result["answer_outcome"] == "clarify", result
    assert {o["title"] for o in result["offered_sections"]} == {
        "North gate",
        "South gate",
    }


async def test_a_story_topic_with_no_matching_words_is_not_a_did_you_mean(
    use_store, session
):
    """The clarify offer counts a section's own search score, not the bonus for the
    topic a story around the question named: no word matched, nothing is offered."""
    story = (
        "My knee has been bad for years and my GP sent me to the clinic for it, and I have "
        "been reading everything I can find about what might be done for it since then. "
        "What about the blorp wibble?"
    )
    answer = decide(session, "nlu_fallback", [ent("body_area", "knee", 3)], story, 0)
    assert answer.outcome == "not_covered", answer


async def test_topic_only_cites_the_matched_sentence_without_searching_again(
    use_store, dispatcher, domain, monkeypatch
):
    from knowledge import queries

    def no_second_search(*_args, **_kwargs):
        raise AssertionError("topic_only searched the store a second time")

    monkeypatch.setattr(queries, "search", no_second_search)
    result = await run(
        make_tracker(
            "is prp safe",
            "ask_safety",
            entities=[ent("injection_type", "platelet-rich plasma", 3)],
        ),
        dispatcher,
        domain,
    )
    assert result["answer_outcome"] == "topic_only"
    assert "PRP" in result["answer_text"] or "platelet" in result["answer_text"].lower()


async def test_an_unsure_classifiers_best_kind_ranks_the_sections(
    tmp_path, sources, monkeypatch, dispatcher, domain
):
    """nlu_fallback: the best kind in the intent ranking is a guess; a leaflet's section
    answers by the evidence of its words either way (all of "is showering ok" is in
    its heading), and a question it holds too little of is not answered by the guess."""
    _store_with(
        tmp_path,
        sources,
        monkeypatch,
        "aftercare.md",
        "# After your injection\n\nSome notes for going home.\n\n"
        "## Going home\n\nPlease do not drive yourself home after your injection; "
        "bring someone who can drive you.\n\n"
        "## Bathing and showering\n\nYou may shower the next day. Do not take a bath "
        "or swim for two days.\n",
    )
    ranking = [
        {"name": "nlu_fallback", "confidence": 0.3},
        {"name": "ask_aftercare", "confidence": 0.25},
        {"name": "ask_why", "confidence": 0.2},
    ]
    unsure = make_tracker("is showering ok", "nlu_fallback")
    alone = await run(unsure, dispatcher, domain)
    assert alone["cited_sections"][0]["title"] == "Bathing and showering", alone
    unsure.latest_message["intent_ranking"] = ranking
    result = await run(unsure, dispatcher, domain)
    assert result["answer_outcome"] == "knowledge", result
    assert result["cited_sections"][0]["title"] == "Bathing and showering"
    vague = make_tracker("is showering after the gym with my kids ok", "nlu_fallback")
    vague.latest_message["intent_ranking"] = ranking
    assert (await run(vague, dispatcher, domain))["answer_outcome"] != "knowledge"


@pytest.mark.parametrize(
    ("text", "entities", "number"),
    [
        (
            "is a knee injection less invasive than surgery",
            [ent("body_area", "knee", 5)],
            7,
        ),
        (
            "would an epidural spare me the side effects of my pills",
            [ent("injection_type", "epidural steroid injection", 9)],
            8,
        ),
    ],
)
async def test_a_section_about_injections_in_general_answers_for_any_topic(
    use_store, session, text, entities, number
):
    """Sections 7 and 8 name no injection, condition or body area: a comparison that
    names one is answered from them by their words, not said to be uncovered."""
    answer = decide(session, "ask_comparison", entities, text, 0)
    assert answer.outcome == "knowledge", answer
    assert answer.cited[0]["number"] == number


async def test_a_guessed_kind_never_speaks_through_an_introduction(use_store, session):
    """Unsure (nlu_fallback) and no clear match: the guessed kind's introduction is not
    given as the answer, as it is for a question the classifier was sure of."""
    ranking = [
        {"name": "nlu_fallback", "confidence": 0.3},
        {"name": "ask_why", "confidence": 0.28},
    ]
    sure = decide(session, "ask_why", [], "blorp wibble", 0)
    assert sure.outcome == "overview"
    unsure = decide(session, "nlu_fallback", [], "blorp wibble", 0, ranking)
    assert unsure.outcome == "not_covered", unsure
    # and a miss is recorded under no category it was only guessed to have
    safety = [ranking[0], {"name": "ask_safety", "confidence": 0.28}]
    guessed = decide(session, "nlu_fallback", [], "blorp wibble", 0, safety)
    assert (guessed.outcome, guessed.category) == ("not_covered", "other")


async def test_a_kind_no_section_answers_needs_a_clear_free_text_winner(
    tmp_path, sources, monkeypatch, dispatcher, domain
):
    """Asked for a kind no document is known to answer (cost), a section nobody mapped
    answers only when its words stand EVIDENCE_MARGIN clear of the next section's."""
    _store_with(tmp_path, sources, monkeypatch, "visiting.md", VISITING_MD)
    result = await run(
        make_tracker("how much is the car park parking", "ask_cost_insurance"),
        dispatcher,
        domain,
    )
    assert result["answer_outcome"] != "knowledge", result
