"""Languages: identification, the NLU components' routing, Spanish replies and the form."""

from pathlib import Path

import pytest
import yaml
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.training_data.message import Message

from actions import callback
from bench.language_id import labelled_messages
from bot.language import LanguageIdentifier, project_identifier
from bot.nlg import ClinicNLG
from bot.nlu import LanguageIdentifier as LanguageComponent
from bot.nlu import RedFlagDetector

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def identifier() -> LanguageIdentifier:
    return project_identifier()


DEV_PAIRS = {
    (m["text"], m["language"])
    for m in yaml.safe_load(
        (ROOT / "tests" / "nlu" / "language_dev.yml").read_text(encoding="utf-8")
    )["messages"]
}


@pytest.fixture(scope="module")
def rasa_domain() -> Domain:
    return Domain.load(str(ROOT / "domain.yml"))


def test_short_messages_are_identified_and_english_stays_english(identifier):
    """On the development set; the independent language_id.yml is measured by the bench
    (bench.language_id), not used to tune the identifier."""
    pairs = [p for p in labelled_messages(ROOT) if p in DEV_PAIRS]
    got = [(text, gold, identifier.identify(text).language) for text, gold in pairs]
    right = sum(gold == lang for _, gold, lang in got)
    assert right / len(got) >= 0.9, [g for g in got if g[1] != g[2]]
    spanish = [g for g in got if g[1] == "es"]
    assert sum(g[2] == "es" for g in spanish) / len(spanish) >= 0.9
    # An English patient must never get the foreign-language note.
    assert [g for g in got if g[1] == "en" and g[2] != "en"] == []


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("hola", "es"),  # no evidence for the classifier: the cue word decides
        ("gracias", "es"),
        ("¿cuánto cuesta la inyección?", "es"),
        ("hello", "en"),
        ("what helps knee pain", "en"),
        ("", "en"),
        ("???", "en"),
        ("ich habe starke Rückenschmerzen", "de"),
        ("我背痛", "zh"),
    ],
)
def test_languages(identifier, text, language):
    assert identifier.identify(text).language == language


def message(text, intent="ask_condition_help", confidence=0.8, ranking=None):
    data = {"text": text, "intent": {"name": intent, "confidence": confidence}}
    if ranking is not None:
        data["intent_ranking"] = ranking
    return Message(data=data)


def parse(*messages):
    """The two components in config.yml's order."""
    LanguageComponent().process(list(messages))
    RedFlagDetector().process(list(messages))
    return messages


def language_entity(msg):
    return [e["value"] for e in msg.get("entities") if e["entity"] == "language"]


def test_each_message_gets_its_language_as_entity_and_parse_data():
    english, spanish = parse(
        message("what helps my knee"), message("¿qué es el PRP?", "ask_regenerative")
    )
    assert language_entity(english) == [] and english.get("language")["code"] == "en"
    assert language_entity(spanish) == ["es"]
    # A Spanish question is not answered from the English guide: the Spanish note.
    assert spanish.get("intent")["name"] == "other_language"
    assert english.get("intent")["name"] == "ask_condition_help"


def test_spanish_small_talk_and_form_answers_keep_their_intent():
    hola, si = parse(message("hola", "greet", 0.99), message("sí", "affirm", 0.95))
    assert hola.get("intent")["name"] == "greet" and language_entity(hola) == ["es"]
    assert si.get("intent")["name"] == "affirm"


def test_a_spanish_emergency_is_an_emergency_in_spanish():
    fever, crisis = parse(
        message("tengo fiebre", "greet", 0.7),  # too short for the classifier alone
        message("ya no quiero vivir", "deny", 0.9),
    )
    assert fever.get("intent")["name"] == "report_red_flag"
    assert language_entity(fever) == ["es"] and fever.get("language")["code"] == "es"
    assert crisis.get("intent")["name"] == "report_self_harm"


def test_the_classifiers_spanish_emergency_guess_counts_from_the_threshold():
    """No pattern knows these words: the classifier's guess decides, in Spanish too."""
    ranking = [
        {"name": "report_red_flag", "confidence": 0.9},
        {"name": "ask_condition_help", "confidence": 0.05},
    ]
    sure, unsure = (
        message("ando muy malito del cuerpo desde el martes", "report_red_flag", c, r)
        for c, r in ((0.9, ranking), (0.5, [dict(ranking[0], confidence=0.5)]))
    )
    LanguageComponent().process([sure, unsure])
    RedFlagDetector(classifier_threshold=0.8).process([sure, unsure])
    assert sure.get("intent")["name"] == "report_red_flag"
    assert unsure.get("intent")["name"] == "other_language"  # the Spanish note


def test_small_talk_never_swallows_a_symptom():
    ranking = [
        {"name": "affirm", "confidence": 0.7},
        {"name": "ask_joint_pain", "confidence": 0.2},
    ]
    knee, vague, plain = parse(
        message("yes my knee hurts", "affirm", 0.7, ranking),
        message("yeah it's sore", "affirm", 0.9, ranking[:1]),
        message("yes please", "affirm", 0.9, ranking[:1]),
    )
    assert knee.get("intent")["name"] == "ask_joint_pain"
    assert vague.get("intent")["name"] == "nlu_fallback"  # the free-text search
    assert plain.get("intent")["name"] == "affirm"
    (negated,) = parse(message("no fever, thanks", "thank", 0.9))
    assert negated.get("intent")["name"] == "nlu_fallback"
    (spanish,) = parse(message("hola, me duele la espalda", "greet", 0.9))
    assert spanish.get("intent")["name"] == "other_language"


def test_a_button_payload_is_not_identified():
    (payload,) = parse(message("/request_human", "request_human", 1.0))
    assert payload.get("language") is None
    assert payload.get("intent")["name"] == "request_human"


def tracker(domain, slots):
    events = [
        SessionStarted(),
        ActionExecuted("action_listen"),
        UserUttered("hola", intent={"name": "greet", "confidence": 1.0}),
        *[SlotSet(k, v) for k, v in slots],
    ]
    return DialogueStateTracker.from_events("t", events, domain.slots)


async def test_spanish_replies_are_the_domains_variations_with_numbers(
    rasa_domain, monkeypatch
):
    monkeypatch.setenv("EMERGENCY_NUMBER", "911")
    nlg = ClinicNLG(domain=rasa_domain)
    es = tracker(rasa_domain, [("language", "es")])
    emergency = await nlg.generate("utter_emergency", es, "rest")
    assert "llame al 911" in emergency["text"].lower()
    assert emergency["custom"]["answer"]["type"] == "emergency"
    note = await nlg.generate("utter_other_language", es, "rest")
    assert "inglés" in note["text"] and "{" not in note["text"]
    assert note["buttons"][0]["payload"] == "/request_human"
    fr = tracker(rasa_domain, [("language", "fr")])
    english_note = await nlg.generate("utter_other_language", fr, "rest")
    assert "only answer questions in English" in english_note["text"]
    assert "911" in english_note["text"]


async def test_the_most_specific_variation_wins(rasa_domain):
    nlg = ClinicNLG(domain=rasa_domain)
    both = tracker(
        rasa_domain, [("language", "es"), ("callback_invalid", "callback_phone")]
    )
    english = tracker(
        rasa_domain, [("language", "en"), ("callback_invalid", "callback_phone")]
    )
    first = tracker(rasa_domain, [("language", "es")])
    for _ in range(10):  # Rasa alone picks one of the matching variations at random
        reask = await nlg.generate("utter_ask_callback_phone", both, "rest")
        assert "Lo siento, eso no parece" in reask["text"]
        reask_en = await nlg.generate("utter_ask_callback_phone", english, "rest")
        assert "Sorry, that doesn't look" in reask_en["text"]
        ask = await nlg.generate("utter_ask_callback_phone", first, "rest")
        assert "¿A qué número" in ask["text"] and "Lo siento" not in ask["text"]


def test_every_spanish_variation_has_a_counterpart_and_no_english_leaks(rasa_domain):
    spanish = {
        name
        for name, variants in rasa_domain.responses.items()
        for v in variants
        if {"name": "language", "type": "slot", "value": "es"}
        in (v.get("condition") or [])
    }
    expected = {
        "utter_emergency",
        "utter_crisis",
        "utter_greet",
        "utter_thank",
        "utter_goodbye",
        "utter_disclaimer",
        "utter_other_language",
        "utter_ask_callback_name",
        "utter_ask_callback_phone",
        "utter_ask_callback_time",
        "utter_ask_callback_consent",
        "utter_callback_confirmed",
    }
    assert expected <= spanish


@pytest.mark.parametrize(
    ("text", "consent"),
    [("sí", True), ("Si, claro", True), ("de acuerdo", True), ("no", False)],
)
def test_the_form_takes_spanish_yes_and_no(text, consent):
    assert callback.normalise_consent(text) is consent


def test_the_form_takes_spanish_names_and_times():
    assert callback.normalise_name("me llamo María López") == "María López"
    assert callback.normalise_time("el martes por la tarde") == "el martes por la tarde"
