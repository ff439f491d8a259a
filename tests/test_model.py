"""Tests on the trained model (`make test` trains it first when its inputs changed)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.evaluation import (
    answer_report,
    intent_report,
    load_examples,
    load_labelled,
    parse_messages,
)
from bot.outage import EMERGENCY_RESPONSES, UNAVAILABLE_RESPONSE
from bot.rest import SILENCE_RESPONSE
from bot.training import MODEL_FILE, ROOT, model_is_current

pytestmark = pytest.mark.slow

# Floors set from measurement (docs/benchmarks.md, "Kind x topic"), a little below it:
# training is not bit-for-bit repeatable on TensorFlow. Intent accuracy 0.906 and macro-F1
# 0.900 on the 233 held-out messages; the held-out set's covered questions 0.774 from the
# right section, its not-covered ones 1.000 honestly (0.939-1.000 over three trainings).
# After the merge of the round's work (15:30): 0.901 / 0.893, 0.774 / 1.000.
ACCURACY_FLOOR = 0.87
MACRO_F1_FLOOR = 0.87
RIGHT_SECTION_FLOOR = 0.74
HONEST_NOT_COVERED_FLOOR = 0.92
# Real patients' questions (never trained on): 0.747 right section, 0.680 honest; the leaflet
# questions with the test leaflets added and no retraining: 0.403 right section, 0.818
# honest (9/11). Sections of documents the reviewed map does not know answer by evidence
# (knowledge.evidence: how much of the question they cover), calibrated on the dev set
# tests/nlu/dev_leaflet_questions.yml: leaflet answers became more honest (0.545 -> 0.818)
# at the price of a few right ones (0.468 -> 0.403), which now get "did you mean" offers
# instead; the floor was lowered from 0.42 for that, knowingly (docs/benchmarks.md).
REAL_RIGHT_SECTION_FLOOR = 0.68
REAL_HONEST_FLOOR = 0.62
LEAFLET_RIGHT_SECTION_FLOOR = 0.38
LEAFLET_HONEST_FLOOR = 0.72

HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"
HELDOUT_ANSWERS = ROOT / "tests" / "nlu" / "heldout_answers.yml"
REAL_QUESTIONS = ROOT / "tests" / "nlu" / "real_questions.yml"
LEAFLET_QUESTIONS = ROOT / "tests" / "nlu" / "leaflet_questions.yml"
BUTTON_ONLY_INTENT = "ask_section"


@pytest.fixture(scope="module")
def model() -> Path:
    if not model_is_current():
        pytest.fail(
            "the trained model is missing or stale: run `make model` (make test does)"
        )
    return MODEL_FILE


def rasa(*args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "PYTHONWARNINGS": "ignore,default::UserWarning",
    }
    return subprocess.run(
        [sys.executable, "-m", "rasa", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def form_ask_warnings() -> set[str]:
    """Rasa 3.6's validator calls a form's `utter_ask_<slot>` unused: the form says it
    itself, so no story or rule can name it. Only these warnings are expected."""
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    return {
        f"UserWarning: The utterance 'utter_ask_{slot}' is not used in any story or rule."
        for form in (domain.get("forms") or {}).values()
        for slot in form["required_slots"]
    }


def test_rasa_data_validate_has_no_warnings():
    result = rasa("data", "validate", "--fail-on-warnings")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # The server sends utter_service_unavailable itself when the conversations database
    # is down (bot/outage.py), and the REST channel utter_ready when Rasa said nothing
    # (bot/rest.py): no story or rule can name them either.
    server_sent = [
        f"UserWarning: The utterance '{name}' is not used"
        for name in (UNAVAILABLE_RESPONSE, SILENCE_RESPONSE)
    ]
    # ask_section is only ever a button's payload (/ask_section{"section_ref": ...}),
    # which Rasa reads without the NLU model: it has no training examples by design.
    button_only = (
        "UserWarning: The intent 'ask_section' is listed in the domain file, "
        "but is not found in the NLU training data."
    )
    for expected in {*form_ask_warnings(), *server_sent, button_only}:
        output = output.replace(expected, "")
    assert "UserWarning" not in output, output


def test_an_unprocessed_red_flag_gets_the_reply_the_safety_rules_give():
    """When a message cannot be processed (database or lock store down) the server still
    sends the emergency reply itself (bot/conversation_store.py): the same one."""
    rules = yaml.safe_load((ROOT / "data" / "rules" / "safety.yml").read_text())
    replies = {}
    for rule in rules["rules"]:
        if "condition" in rule:
            continue
        steps = rule["steps"]
        replies[steps[0]["intent"]] = steps[1]["action"]
    assert replies == EMERGENCY_RESPONSES


def test_conversations(model, tmp_path):
    result = rasa(
        "test",
        "core",
        "--stories",
        "tests/conversations",
        "--model",
        str(model),
        "--fail-on-prediction-errors",
        "--out",
        str(tmp_path),
    )
    failed = tmp_path / "failed_test_stories.yml"
    assert result.returncode == 0, (
        failed.read_text() if failed.exists() else ""
    ) + result.stderr[-3000:]


@pytest.fixture(scope="module")
def heldout(model):
    examples = load_examples(HELDOUT)
    return examples, parse_messages(model, [e.text for e in examples])


def test_heldout_covers_every_intent_and_is_not_in_training():
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    heldout = load_examples(HELDOUT)
    assert len(heldout) >= 150
    # ask_section is a button's payload only; candidacy questions are measured on the
    # real patients' questions (tests/nlu/real_questions.yml), written apart from the team.
    assert {e.intent for e in heldout} == set(domain["intents"]) - {
        BUTTON_ONLY_INTENT,
        "ask_candidate",
    }
    training = {
        e.text.lower()
        for p in (ROOT / "data" / "nlu").glob("*.yml")
        for e in load_examples(p)
    }
    assert not [e.text for e in heldout if e.text.lower() in training]


def test_training_data_has_twenty_examples_per_intent():
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    examples = [
        e for p in (ROOT / "data" / "nlu").glob("*.yml") for e in load_examples(p)
    ]
    for intent in set(domain["intents"]) - {BUTTON_ONLY_INTENT}:
        assert sum(e.intent == intent for e in examples) >= 20, intent


def test_heldout_intent_accuracy_and_macro_f1(heldout):
    examples, parses = heldout
    report = intent_report(
        [e.intent for e in examples], [p["intent"]["name"] for p in parses]
    )
    assert report.accuracy >= ACCURACY_FLOOR
    assert report.macro_f1 >= MACRO_F1_FLOOR


def test_every_heldout_emergency_is_recognised(heldout):
    examples, parses = heldout
    emergency = {"report_red_flag", "report_self_harm"}
    missed = [
        e.text
        for e, p in zip(examples, parses, strict=True)
        if e.intent in emergency and p["intent"]["name"] not in emergency
    ]
    assert missed == []


def test_heldout_answers_come_from_the_right_section(heldout, use_store):
    examples, parses = heldout
    by_text = {e.text: p for e, p in zip(examples, parses, strict=True)}
    questions = load_labelled(HELDOUT_ANSWERS)
    assert questions and all(q.text in by_text for q in questions)
    report = answer_report(questions, [by_text[q.text] for q in questions])
    assert report.right_section >= RIGHT_SECTION_FLOOR
    assert report.honest_not_covered >= HONEST_NOT_COVERED_FLOOR


def test_real_and_leaflet_questions_keep_their_measured_answers(model, use_store):
    """The issue's sets: real patients' questions on the guide, and the leaflet questions
    with the test leaflets built in beside it, without retraining."""
    from bench.quality import store_with_leaflets

    real = load_labelled(REAL_QUESTIONS)
    leaflet = load_labelled(LEAFLET_QUESTIONS)
    parses = parse_messages(model, [q.text for q in real + leaflet])
    report = answer_report(real, parses[: len(real)])
    assert report.right_section >= REAL_RIGHT_SECTION_FLOOR
    assert report.honest_not_covered >= REAL_HONEST_FLOOR
    with store_with_leaflets() as built:
        assert built
        leaflets = answer_report(leaflet, parses[len(real) :])
    assert leaflets.right_section >= LEAFLET_RIGHT_SECTION_FLOOR
    assert leaflets.honest_not_covered >= LEAFLET_HONEST_FLOOR
