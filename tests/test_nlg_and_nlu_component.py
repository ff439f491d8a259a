"""The Rasa-side pieces: the contract-completing NLG and the red-flag NLU component."""

from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.training_data.message import Message

from bot.nlg import ANSWER_TYPES, ClinicNLG
from bot.nlu import RedFlagDetector

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def rasa_domain() -> Domain:
    return Domain.load(str(ROOT / "domain.yml"))


def tracker(
    domain, intent="ask_condition_help", confidence=0.87, slots=(), spoken=False
):
    events = [SessionStarted(), ActionExecuted("action_listen")]
    if spoken:
        events.append(BotUttered("earlier reply"))
    events.append(
        UserUttered("a question", intent={"name": intent, "confidence": confidence})
    )
    events += [SlotSet(k, v) for k, v in slots]
    return DialogueStateTracker.from_events("t", events, domain.slots)


SECTION = {
    "document": "Pain Management Injections",
    "number": 5,
    "title": "Joint Pain",
    "ref": "pain-management-injections.txt#5",
}
OTHER = {
    "document": "Pain Management Injections",
    "number": 2,
    "title": "Inflammatory Conditions",
    "ref": "pain-management-injections.txt#2",
}


async def test_knowledge_answer_cites_offers_and_fills_the_contract(rasa_domain):
    nlg = ClinicNLG(domain=rasa_domain)
    t = tracker(
        rasa_domain,
        spoken=True,
        slots=[
            ("answer_text", "Joint injections help."),
            ("cited_sections", [SECTION]),
            ("offered_sections", [OTHER]),
        ],
    )
    response = await nlg.generate("utter_knowledge_answer", t, "rest")
    assert (
        response["text"]
        == "Joint injections help.\nSource: Pain Management Injections, section 5"
        " (Joint Pain)\nDid this help?"
    )
    assert response["buttons"] == [
        {"title": "Yes, this helped", "payload": "/affirm"},
        {"title": "No, it didn't", "payload": "/deny"},
        {
            "title": "Inflammatory Conditions",
            "payload": '/ask_section{"section_ref":"pain-management-injections.txt#2"}',
        },
    ]
    assert response["custom"]["answer"] == {
        "type": "knowledge",
        "sections": [
            {
                "document": "Pain Management Injections",
                "number": 5,
                "title": "Joint Pain",
            }
        ],
        "category": None,
        "intent": "ask_condition_help",
        "confidence": 0.87,
    }


async def test_numbers_come_from_the_environment(rasa_domain, monkeypatch):
    monkeypatch.setenv("EMERGENCY_NUMBER", "112")
    monkeypatch.setenv("CRISIS_LINE", "116 123")
    monkeypatch.setenv("CLINIC_PHONE", "+44 20 7946 0000")
    nlg = ClinicNLG(domain=rasa_domain)
    emergency = await nlg.generate(
        "utter_emergency", tracker(rasa_domain, "report_red_flag", 1.0), "rest"
    )
    assert "call 112 now" in emergency["text"]
    assert emergency["custom"]["answer"]["type"] == "emergency"
    crisis = await nlg.generate(
        "utter_crisis", tracker(rasa_domain, "report_self_harm", 1.0), "rest"
    )
    assert "116 123" in crisis["text"] and "112" in crisis["text"]
    handoff = await nlg.generate(
        "utter_refer_to_staff",
        tracker(rasa_domain, "request_human", spoken=True),
        "rest",
    )
    assert "+44 20 7946 0000" in handoff["text"]


async def test_the_first_reply_opens_with_the_disclaimer_but_an_emergency_does_not(
    rasa_domain,
):
    nlg = ClinicNLG(domain=rasa_domain)
    greet = await nlg.generate("utter_greet", tracker(rasa_domain, "greet"), "rest")
    first_line, second = greet["text"].split("\n", 1)
    assert "automated assistant" in first_line and "not medical advice" in first_line
    assert second.startswith("Hello!")
    emergency = await nlg.generate(
        "utter_emergency", tracker(rasa_domain, "report_red_flag"), "rest"
    )
    assert emergency["text"].startswith("This could be an emergency")
    later = await nlg.generate(
        "utter_greet", tracker(rasa_domain, "greet", spoken=True), "rest"
    )
    assert later["text"].startswith("Hello!")


@pytest.mark.parametrize(
    ("category", "words"),
    [
        ("cost_insurance", "costs or insurance"),
        ("safety_risks", "risks"),
        ("candidacy", "candidate"),
        ("other", "don't cover that"),
        (None, "don't cover that"),
    ],
)
async def test_not_covered_reply_follows_and_records_its_category(
    rasa_domain, category, words
):
    nlg = ClinicNLG(domain=rasa_domain)
    t = tracker(
        rasa_domain,
        "ask_cost_insurance",
        0.99,
        spoken=True,
        slots=[("not_covered_category", category), ("cited_sections", [])],
    )
    response = await nlg.generate("utter_not_covered", t, "rest")
    assert words in response["text"]
    assert response["custom"]["answer"]["category"] == category
    assert response["custom"]["answer"]["type"] == "not_covered"
    assert response["custom"]["answer"]["sections"] == []
    assert {"title": "Yes, call me back", "payload": "/request_human"} in response[
        "buttons"
    ]


async def test_a_topic_only_reply_says_so_and_cites_what_the_documents_say(rasa_domain):
    nlg = ClinicNLG(domain=rasa_domain)
    t = tracker(
        rasa_domain,
        "ask_safety",
        spoken=True,
        slots=[
            ("answer_outcome", "topic_only"),
            ("answer_topic", "platelet-rich plasma"),
            ("answer_text", "PRP is used for regenerative purposes."),
            ("cited_sections", [SECTION]),
            ("not_covered_category", "safety_risks"),
        ],
    )
    response = await nlg.generate("utter_topic_only", t, "rest")
    assert response["text"].startswith(
        "Our documents don't answer that about platelet-rich plasma. What they do say: "
        "PRP is used for regenerative purposes.\nSource: Pain Management Injections"
    )
    answer = response["custom"]["answer"]
    assert answer["type"] == "not_covered" and answer["category"] == "safety_risks"
    assert [s["number"] for s in answer["sections"]] == [5]


def test_every_response_declares_an_answer_type(
    rasa_domain,
):
    for name, variants in rasa_domain.responses.items():
        for variant in variants:
            assert variant["custom"]["answer"]["type"] in ANSWER_TYPES, name


def test_the_nlu_component_overrides_the_intent_for_a_red_flag():
    component = RedFlagDetector()
    flagged = Message(
        data={
            "text": "my throat is swelling up",
            "intent": {"name": "ask_aftercare", "confidence": 0.9},
        }
    )
    calm = Message(
        data={
            "text": "what helps my knee",
            "intent": {"name": "ask_condition_help", "confidence": 0.8},
        }
    )
    crisis = Message(
        data={
            "text": "i want to end my life",
            "intent": {"name": "nlu_fallback", "confidence": 0.4},
        }
    )
    component.process([flagged, calm, crisis])
    assert flagged.get("intent") == {"name": "report_red_flag", "confidence": 1.0}
    assert flagged.get("intent_ranking")[0]["name"] == "report_red_flag"
    assert flagged.get("red_flag")["kind"] == "breathing_swelling"
    assert (
        calm.get("intent")["name"] == "ask_condition_help"
        and calm.get("red_flag") is None
    )
    assert crisis.get("intent")["name"] == "report_self_harm"


def test_a_negated_symptom_overrules_a_classifier_guessing_an_emergency():
    component = RedFlagDetector()
    ranking = [
        {"name": "report_red_flag", "confidence": 0.8},
        {"name": "ask_aftercare", "confidence": 0.15},
    ]
    negated = Message(
        data={
            "text": "no fever, just sore",
            "intent": ranking[0],
            "intent_ranking": ranking,
        }
    )
    unknown = Message(
        data={
            "text": "the gauze keeps filling up",
            "intent": ranking[0],
            "intent_ranking": ranking,
        }
    )
    component.process([negated, unknown])
    assert negated.get("intent")["name"] == "ask_aftercare"
    assert [r["name"] for r in negated.get("intent_ranking")] == ["ask_aftercare"]
    assert (
        unknown.get("intent")["name"] == "report_red_flag"
    )  # no pattern: the guess stands


@pytest.mark.parametrize(
    "text",
    [
        "had a nasty water infection in may, all sorted now",
        "my eyes stung from the eye drops this morning",
        "tuve infeccion en la orina pero ya estoy bien",
    ],
)
def test_a_message_saying_all_is_well_now_overrules_an_emergency_guess(text):
    """No pattern matches, and the message says it is over or everyday (vocabulary
    `all_clear`, dev9 round): the classifier's emergency guess is not taken."""
    ranking = [
        {"name": "report_red_flag", "confidence": 0.99},
        {"name": "out_of_scope", "confidence": 0.01},
    ]
    message = Message(
        data={"text": text, "intent": ranking[0], "intent_ranking": ranking}
    )
    RedFlagDetector(classifier_threshold=0.95).process([message])
    assert message.get("intent")["name"] != "report_red_flag"
