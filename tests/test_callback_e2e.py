"""End to end: the call-back form over REST, across a restart of the Rasa server.

The conversation lives in Rasa's SQL tracker store (CONVERSATIONS_DB), so a form half
filled before the restart continues after it, with its slots, and the request lands in
the same database. The servers' output is checked for the patient's phone number.
"""

from __future__ import annotations

import os
import signal
import sys

import pytest
from sqlalchemy import select

from bot.serve import (
    free_port,
    rasa_server_command,
    start_process,
    stop_process,
    wait_until_ready,
)
from bot.training import model_is_current
from records.models import CallbackRequest
from records.store import session_scope
from tests.test_e2e import say

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PHONE_TYPED = "(212) 555-0147"


def answer(messages: list[dict]) -> tuple[str, str]:
    """(answer type, all text) of one reply; exactly one message has the contract."""
    answers = [m["custom"]["answer"] for m in messages if "custom" in m]
    assert len(answers) == 1, [m.get("text") for m in messages]
    return answers[0]["type"], "\n".join(m.get("text", "") for m in messages)


@pytest.fixture()
def servers(store_url, tmp_path):
    """An action server, and a function that (re)starts the Rasa server."""
    if not model_is_current():
        pytest.fail("the trained model is missing or stale: run `make model`")
    action_port, rasa_port = free_port(), free_port()
    env = {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "KNOWLEDGE_DB_URL": store_url,
        "CONVERSATIONS_DB": str(tmp_path / "conversations.db"),
        "ACTION_PORT": str(action_port),
        "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{action_port}/webhook",
        "CLINIC_PHONE_REGION": "US",
    }
    env.pop("CONVERSATIONS_DB_URL", None)
    logs = []
    running = []

    def start(name: str, command: list[str]):
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115
        logs.append(tmp_path / f"{name}.log")
        process = start_process(command, env=env, output=log)
        running.append(process)
        return process

    def start_rasa():
        process = start(
            f"rasa-{len(logs)}",
            rasa_server_command(["--interface", "127.0.0.1"], port=rasa_port),
        )
        assert wait_until_ready(rasa_port, timeout=180), "Rasa server did not start"
        return process

    start("actions", [sys.executable, "-m", "actions"])
    try:
        yield f"http://127.0.0.1:{rasa_port}", start_rasa, env, logs
    finally:
        for process in running:
            stop_process(process, signal.SIGTERM, timeout=30)


def test_a_half_filled_form_continues_after_a_restart_and_is_stored(servers):
    base, start_rasa, env, logs = servers
    sender = "restart-1"
    rasa = start_rasa()
    kind, text = answer(say(base, sender, "can someone call me back please"))
    assert kind == "form" and "what name" in text.lower()
    kind, text = answer(say(base, sender, "my name is Maria Lopez"))
    assert kind == "form" and "Maria Lopez" in text and "phone number" in text

    stop_process(rasa, signal.SIGTERM, timeout=30)
    start_rasa()  # the same CONVERSATIONS_DB

    kind, text = answer(say(base, sender, "12345"))  # still the phone question
    assert kind == "form" and "doesn't look like a phone number" in text
    kind, text = answer(say(base, sender, PHONE_TYPED))
    assert kind == "form" and "best time" in text
    kind, text = answer(say(base, sender, "weekday mornings"))
    assert kind == "form" and "+12125550147" in text  # the consent question
    kind, text = answer(say(base, sender, "yes"))
    assert kind == "form"
    assert "Maria Lopez" in text and "weekday mornings" in text  # the summary

    url = f"sqlite:///{env['CONVERSATIONS_DB']}"
    with session_scope(url) as session:
        [row] = session.scalars(select(CallbackRequest)).all()
        assert (row.conversation_id, row.name, row.phone, row.best_time) == (
            sender,
            "Maria Lopez",
            "+12125550147",
            "weekday mornings",
        )
        assert row.consent is True and row.status == "new"
    for log in logs:
        content = log.read_text(errors="replace")
        assert "555-0147" not in content and "5550147" not in content, log.name


def test_never_mind_cancels_and_a_red_flag_interrupts(servers):
    base, start_rasa, _, _ = servers
    start_rasa()
    answer(say(base, "cancel-1", "can a nurse call me"))
    kind, text = answer(say(base, "cancel-1", "never mind"))
    assert kind == "form" and "won't arrange a call back" in text
    answer(say(base, "flag-1", "i want to speak to someone"))
    kind, text = answer(
        say(base, "flag-1", "my legs went numb and i cant feel my groin")
    )
    assert kind == "emergency" and "911" in text
    kind, _ = answer(say(base, "flag-1", "what is prp"))
    assert kind == "knowledge"  # the form is over, questions are answered again


def test_without_the_action_server_asking_for_a_person_gives_the_number(
    servers, tmp_path
):
    """The form needs the action server; without it the patient still gets the number."""
    _, _, env, _ = servers
    port = free_port()
    offline = {
        **env,
        "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}/webhook",
        "CLINIC_PHONE": "(555) 123-9876",
    }
    with open(tmp_path / "offline.log", "wb") as log:
        process = start_process(
            rasa_server_command(["--interface", "127.0.0.1"], port=port),
            env=offline,
            output=log,
        )
    try:
        assert wait_until_ready(port, timeout=180)
        base = f"http://127.0.0.1:{port}"
        kind, text = answer(say(base, "offline-1", "can someone call me back"))
        assert kind == "handoff" and "(555) 123-9876" in text
        kind, _ = answer(
            say(base, "offline-1", "my legs went numb and i cant feel my groin")
        )
        assert kind == "emergency"
    finally:
        stop_process(process, signal.SIGTERM, timeout=30)
