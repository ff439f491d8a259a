"""End to end: `python -m bot run` (action server + Rasa server) over Rasa's REST channel.

Also: the Rasa server alone, with no action server, still gives emergency guidance.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest

from bot.nlg import ANSWER_TYPES
from bot.serve import free_port, start_process, stop_process, wait_until_ready
from bot.training import model_is_current
from tests.served import say

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def start(command, env):
    return start_process(command, env=env, output=subprocess.DEVNULL)


def stop(process, sig=signal.SIGTERM):
    stop_process(process, sig, timeout=30)


@pytest.fixture(scope="module")
def env(store_url, tmp_path_factory):
    if not model_is_current():
        pytest.fail(
            "the trained model is missing or stale: run `make model` (make test does)"
        )
    return {
        **os.environ,
        "KNOWLEDGE_DB_URL": store_url,
        "CONVERSATIONS_DB": str(tmp_path_factory.mktemp("conversations") / "c.db"),
        "ACTION_PORT": str(free_port()),
        "RASA_PORT": str(free_port()),
        "RASA_INTERFACE": "127.0.0.1",
        "CLINIC_PHONE": "(555) 123-9876",
        "EMERGENCY_NUMBER": "911",
    }


@pytest.fixture(scope="module")
def assistant(env):
    """`python -m bot run`, as `make run` starts it."""
    process = start([sys.executable, "-m", "bot", "run"], env)
    try:
        assert wait_until_ready(int(env["RASA_PORT"]), timeout=180), (
            "the assistant did not start"
        )
        yield f"http://127.0.0.1:{env['RASA_PORT']}", process
    finally:
        stop(process, signal.SIGINT)


def contract(messages):
    """The reply's answer description; exactly one per reply."""
    answers = [m["custom"]["answer"] for m in messages if "custom" in m]
    assert len(answers) == 1, messages
    answer = answers[0]
    assert set(answer) == {"type", "sections", "category", "intent", "confidence"}
    assert answer["type"] in ANSWER_TYPES
    assert 0.0 <= answer["confidence"] <= 1.0
    return answer


def text(messages):
    return "\n".join(m.get("text", "") for m in messages)


def test_a_knowledge_answer_cites_its_section(assistant):
    base, _ = assistant
    reply = say(base, "e2e-knee", "what can help my knee")
    answer = contract(reply)
    assert answer["type"] == "knowledge"
    assert answer["sections"][0] == {
        "document": "Pain Management Injections",
        "file": "pain-management-injections.txt",
        "number": 5,
        "title": "Joint Pain",
        "heading_path": ["Joint Pain"],
    }
    body = text(reply)
    assert "lubricating and cushioning the affected joint" in body
    assert "section 5 (Joint Pain)" in body
    assert "automated assistant" in body  # the first reply opens with the disclaimer
    buttons = [b["payload"] for m in reply for b in m.get("buttons", [])]
    inflammation = '/ask_section{"section_ref":"pain-management-injections.txt#2"}'
    assert buttons[:2] == ["/affirm", "/deny"]  # "Did this help?"
    assert inflammation in buttons and 4 <= len(buttons) <= 5


def test_the_clinics_two_named_questions(assistant):
    base, _ = assistant
    pills = contract(say(base, "e2e-named", "why injections rather than pills?"))
    assert pills["type"] == "knowledge" and pills["sections"][0]["number"] == 8
    joints = contract(say(base, "e2e-named", "what helps joint pain"))
    assert joints["type"] == "knowledge" and joints["sections"][0]["number"] == 5


def test_a_button_payload_takes_the_same_path(assistant):
    base, _ = assistant
    payload = '/ask_section{"section_ref":"pain-management-injections.txt#9"}'
    answer = contract(say(base, "e2e-button", payload))
    assert (
        answer["sections"][0]["title"] == "Regenerative Medicine"
        and answer["confidence"] == 1.0
    )


def test_overview_lists_the_ten_reasons(assistant):
    base, _ = assistant
    reply = say(base, "e2e-overview", "why are these injections done?")
    answer = contract(reply)
    assert answer["type"] == "overview" and len(answer["sections"]) == 10
    assert len([b for m in reply for b in m.get("buttons", [])]) == 10


def test_a_topic_the_guide_covers_but_not_this_kind_of_question(assistant):
    base, _ = assistant
    reply = say(base, "e2e-prp-safe", "Is PRP safe?")
    answer = contract(reply)
    assert answer["type"] == "not_covered" and answer["category"] == "safety_risks"
    assert [s["number"] for s in answer["sections"]] == [9]
    assert "don't answer that" in text(reply) and "call back" in text(reply)


def test_a_procedure_the_documents_never_describe_is_not_covered(assistant):
    base, _ = assistant
    reply = say(base, "e2e-facet", "What is a facet joint injection?")
    answer = contract(reply)
    assert answer["type"] == "not_covered" and answer["sections"] == []
    assert "hyaluronic" not in text(reply).lower()


def test_red_flag_gets_emergency_guidance_first(assistant):
    base, _ = assistant
    reply = say(
        base, "e2e-flag", "i've had a fever and chills since my epidural yesterday"
    )
    assert contract(reply)["type"] == "emergency"
    assert (
        reply[0]["text"].startswith("This could be an emergency")
        and "911" in reply[0]["text"]
    )


def test_self_harm_gets_the_crisis_line(assistant):
    base, _ = assistant
    reply = say(base, "e2e-crisis", "i just want to end my life")
    assert contract(reply)["type"] == "emergency" and "988" in text(reply)


def test_not_covered_is_honest_records_the_category_and_offers_a_call_back(assistant):
    base, _ = assistant
    reply = say(base, "e2e-cost", "how much does a nerve block cost with medicare")
    answer = contract(reply)
    assert answer["type"] == "not_covered" and answer["category"] == "cost_insurance"
    assert "(555) 123-9876" in text(reply)
    follow = contract(say(base, "e2e-cost", "yes please"))
    assert follow["type"] == "form"  # the call-back form asks for a name


def test_two_misses_offer_a_person(assistant):
    base, _ = assistant
    first = contract(say(base, "e2e-miss", "what is the capital of peru"))
    assert first["type"] == "not_covered"
    second = contract(say(base, "e2e-miss", "who won the football last night"))
    assert second["type"] == "handoff"


@pytest.mark.parametrize(
    "message",
    [
        "",
        "   ",
        "<script>alert(1)</script>",
        "' OR 1=1; --",
        "{{7*7}} ${x}",
        "🙂" * 50,
        "x" * 3000,
        "\u202eabc",
        "\x00\x07",
    ],
)
def test_odd_input_gets_a_reply_that_keeps_the_contract(assistant, message):
    base, _ = assistant
    reply = say(base, f"e2e-odd-{abs(hash(message))}", message)
    contract(reply)
    assert all(
        "<script>" not in m.get("text", "") or "alert" not in m.get("text", "")
        for m in reply
    )


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("", "came through empty"),
        ("   ", "came through empty"),
        ("my story " * 300, "too long"),
    ],
)
def test_empty_and_over_long_messages_get_a_friendly_note(assistant, message, expected):
    base, _ = assistant
    reply = say(base, f"e2e-limits-{len(message)}", message)
    assert contract(reply)["type"] == "clarify"
    assert expected in text(reply)


def test_an_emergency_in_a_long_story_is_still_an_emergency(assistant):
    base, _ = assistant
    story = "my back has been bad for years and I have tried physio and pills. " * 40
    reply = say(base, "e2e-long-flag", story + "Now I suddenly can't feel my legs.")
    assert contract(reply)["type"] == "emergency"


def test_malformed_json_is_refused_without_a_server_error(assistant):
    base, _ = assistant
    response = httpx.post(
        f"{base}/webhooks/rest/webhook",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert 400 <= response.status_code < 500


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_ctrl_c_stops_both_servers_cleanly_and_the_log_is_quiet(env, tmp_path):
    ports = {"RASA_PORT": str(free_port()), "ACTION_PORT": str(free_port())}
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        process = start_process(
            [sys.executable, "-m", "bot", "run"], env={**env, **ports}, output=out
        )
        try:
            assert wait_until_ready(int(ports["RASA_PORT"]), timeout=180)
            assert port_open(int(ports["ACTION_PORT"]))
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
            assert process.wait(60) == 0
        finally:
            stop(process, signal.SIGKILL)
    output = log.read_text()
    assert "stopped." in output
    assert "Warning" not in output, output
    assert not port_open(int(ports["RASA_PORT"]))
    assert not port_open(int(ports["ACTION_PORT"]))


@contextlib.contextmanager
def rasa_without_actions(env):
    """The Rasa server alone, its action server unreachable; yields its base URL."""
    from bot.serve import rasa_server_command

    rasa_port = free_port()
    offline = {
        **env,
        "RASA_PORT": str(rasa_port),
        "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}/webhook",
    }
    process = start(
        rasa_server_command(["--interface", "127.0.0.1"], port=rasa_port), offline
    )
    try:
        assert wait_until_ready(rasa_port, timeout=180)
        yield f"http://127.0.0.1:{rasa_port}"
    finally:
        stop(process)


def test_without_the_action_server_emergencies_still_work(env, tmp_path):
    with rasa_without_actions(env) as base:
        first = say(base, "offline-1", "my throat is swelling and i can't breathe")
        assert contract(first)["type"] == "emergency" and "911" in first[0]["text"]
        knowledge = say(base, "offline-2", "what is prp")
        assert contract(knowledge)["type"] == "handoff" and "(555) 123-9876" in text(
            knowledge
        )
