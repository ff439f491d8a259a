"""Reliability and security over running servers (docs/security.md).

Two set-ups, each started once:
- `assistant`: `python -m bot run` as `make run` starts it (local profile), with one
  allowed origin: REST and socket.io input checks, sessions, headers, CORS, the action
  server's token, and its log (default level) after a conversation with a phone number
  and an e-mail address.
- `production`: the action server and bot.server started by hand in the production
  profile at DEBUG log level, with a proxy between them that can make the action server
  slow: the REST token, the apology when the action server is slow, recovery, masking.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import socketio
from hypothesis import strategies as st

from bot.serve import (
    action_server_command,
    free_port,
    rasa_server_command,
    start_process,
    stop_process,
    wait_until_ready,
)
from bot.training import ROOT, model_is_current
from tests.test_e2e import contract, text

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ORIGIN = "https://clinic.example"
ACTION_TOKEN = "action-token-for-the-hardening-tests"
REST_TOKEN = "rest-token-for-the-hardening-tests"
PHONE, EMAIL = "555-867-5309", "jane.patient@example.com"
PRIVATE_MESSAGE = f"my number is {PHONE} and my email is {EMAIL}, call about my knee"
WEBHOOK = "/webhooks/rest/webhook"
REPLY = "clinic_reply"  # bot.channels.REPLY_EVENT: each reply whole, with its contract


def base_env(store_url: str, conversations: Path) -> dict[str, str]:
    if not model_is_current():
        pytest.fail("the trained model is missing or stale: run `make model`")
    return {
        **os.environ,
        "KNOWLEDGE_DB_URL": store_url,
        "CONVERSATIONS_DB": str(conversations),
        "RASA_INTERFACE": "127.0.0.1",
        "CLINIC_PHONE": "(555) 123-9876",
        "ACTION_TOKEN": ACTION_TOKEN,
    }


@pytest.fixture(scope="module")
def assistant(store_url, tmp_path_factory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("assistant")
    env = {
        **base_env(store_url, folder / "c.db"),
        "RASA_PORT": str(free_port()),
        "ACTION_PORT": str(free_port()),
        "ALLOWED_ORIGINS": ORIGIN,
    }
    env.pop("LOG_LEVEL", None)
    log = folder / "run.log"
    with open(log, "wb") as out:
        process = start_process(
            [sys.executable, "-m", "bot", "run"], env=env, output=out
        )
        try:
            assert wait_until_ready(int(env["RASA_PORT"]), 180), log.read_text()
            yield {
                "base": f"http://127.0.0.1:{env['RASA_PORT']}",
                "actions": f"http://127.0.0.1:{env['ACTION_PORT']}",
                "log": log,
                "conversations": folder / "c.db",
            }
        finally:
            stop_process(process, signal.SIGINT, timeout=30)


def post(base: str, payload: Any = None, raw: bytes | None = None, **headers: str):
    content = raw if raw is not None else json.dumps(payload).encode()
    return httpx.post(
        base + WEBHOOK,
        content=content,
        headers={"content-type": "application/json", **headers},
        timeout=30,
    )


# --- REST input -----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{not json",
        b"\xff\xfe\x00{}",
        b"[]",
        b'"hello"',
        b"null",
        b'{"message": "hi"}',
        b'{"sender": 7, "message": "hi"}',
        b'{"sender": "p", "message": {"text": "hi"}}',
        b'{"sender": "p", "message": "hi", "metadata": [1]}',
        json.dumps({"sender": "s" * 300, "message": "hi"}).encode(),
        json.dumps({"sender": "p", "message": "x" * 100_000}).encode(),
    ],
)
def test_malformed_rest_requests_get_400_with_a_reason(assistant, raw):
    response = post(assistant["base"], raw=raw)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "bad_request" and response.json()["reason"]


@pytest.mark.parametrize(
    "message",
    [
        "🙂🙂 what is prp? 🙂",
        "\u05de\u05d4 \u05d6\u05d4 PRP?",  # Hebrew, right to left
        "\u202ewhat is prp\u202c",
        "what\x00 is\x1b[31m prp\x07",
        "'; DROP TABLE events; --",
        "<img src=x onerror=alert(1)> what is prp",
        "{{7*7}} {% raw %} ${clinic_phone} {clinic_phone}",
        "\ud800 lone surrogate",
    ],
)
def test_odd_and_hostile_text_is_only_ever_text(assistant, message):
    reply = post(
        assistant["base"], {"sender": f"odd-{abs(hash(message))}", "message": message}
    )
    assert reply.status_code == 200
    messages = reply.json()
    contract(messages)
    said = text(messages)
    assert "<img" not in said and "49" not in said and "${" not in said


@pytest.mark.parametrize("message", ["/restart", "/session_start", "/action_listen"])
def test_rasas_own_commands_never_get_an_empty_reply(assistant, message):
    reply = post(
        assistant["base"], {"sender": f"cmd-{message[1:]}", "message": message}
    )
    assert reply.status_code == 200
    assert text(reply.json()), "an empty reply"


def test_the_store_still_answers_after_injection_attempts(assistant):
    post(
        assistant["base"], {"sender": "inj", "message": "x'); DELETE FROM sections; --"}
    )
    answer = contract(
        post(
            assistant["base"], {"sender": "inj", "message": "what helps joint pain"}
        ).json()
    )
    assert answer["type"] == "knowledge" and answer["sections"][0]["number"] == 5


def test_the_body_cannot_choose_the_input_channel(assistant):
    response = post(
        assistant["base"],
        {"sender": "chan", "message": "hello", "input_channel": "socketio"},
    )
    assert response.status_code == 200
    contract(response.json())


def nested_metadata_body(depth: int, sender: str = "deep") -> bytes:
    opening = b'{"k": ' * (depth - 1) + b"{}" + b"}" * (depth - 1)
    return (
        b'{"sender": "'
        + sender.encode()
        + b'", "message": "what is prp", "metadata": '
        + opening
        + b"}"
    )


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("text/plain", b'{"sender": "xsite", "message": "I have a fever"}'),
        ("application/x-www-form-urlencoded", b"sender=xsite&message=I+have+a+fever"),
        ("multipart/form-data; boundary=b", b"--b--"),
        (None, b'{"sender": "xsite", "message": "I have a fever"}'),
    ],
)
def test_rest_takes_application_json_only(assistant, content_type, raw):
    """A cross-site text/plain or form POST (no CORS preflight) cannot add a conversation."""
    headers = {"content-type": content_type} if content_type else {}
    response = httpx.post(
        assistant["base"] + WEBHOOK, content=raw, headers=headers, timeout=30
    )
    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["reason"]
    assert "xsite" not in conversation_ids(assistant)


@pytest.mark.parametrize("depth", [21, 500, 5000])
def test_deeply_nested_metadata_gets_a_clear_400(assistant, depth):
    response = post(assistant["base"], raw=nested_metadata_body(depth))
    assert response.status_code == 400, response.text
    assert "20 levels" in response.json()["reason"]


def test_metadata_within_the_bounds_is_answered(assistant):
    response = post(assistant["base"], raw=nested_metadata_body(20, "deep-ok"))
    assert response.status_code == 200
    assert contract(response.json())["type"] == "knowledge"
    big = {"sender": "big", "message": "what is prp", "metadata": {"x": "y" * 5000}}
    refused = post(assistant["base"], big)
    assert refused.status_code == 400 and "4096 bytes" in refused.json()["reason"]


# Bodies of every shape: odd JSON values, nesting past any bound, strings where objects
# go, and well-formed requests whose metadata nests or grows.
json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)
deep_nesting = st.integers(min_value=1, max_value=3000).map(
    lambda depth: b"[" * depth + b"]" * depth
)
odd_bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    deep_nesting,
    st.integers(min_value=1, max_value=3000).map(nested_metadata_body),
    st.fixed_dictionaries(
        {"sender": st.text(min_size=1, max_size=12), "message": json_values},
        optional={"metadata": json_values},
    ).map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)


@hypothesis.settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
@hypothesis.given(raw=odd_bodies)
def test_no_body_of_any_shape_gets_a_500_an_empty_reply_or_a_traceback(assistant, raw):
    response = post(assistant["base"], raw=raw)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["reason"]
    else:
        assert response.json(), "an accepted message got no reply"
    log = assistant["log"].read_text(errors="replace")
    assert "Traceback" not in log and "RecursionError" not in log


# --- headers, CORS, API ---------------------------------------------------------


def test_pages_carry_the_security_headers(assistant):
    page = httpx.get(assistant["base"] + "/", timeout=10)
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert f"frame-ancestors 'self' {ORIGIN}" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    reply = post(assistant["base"], {"sender": "hdr", "message": "hi"})
    assert reply.headers["x-content-type-options"] == "nosniff"


def test_cors_allows_the_configured_origin_only(assistant):
    def preflight(origin: str) -> httpx.Response:
        return httpx.options(
            assistant["base"] + WEBHOOK,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
            timeout=10,
        )

    assert preflight(ORIGIN).headers.get("access-control-allow-origin") == ORIGIN
    evil = preflight("https://evil.example").headers.get("access-control-allow-origin")
    assert evil in (None, "")
    assert (
        post(
            assistant["base"],
            {"sender": "cors", "message": "hi"},
            Origin="https://evil.example",
        ).headers.get("access-control-allow-origin")
        != "*"
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/status"),
        ("GET", "/version"),
        ("POST", "/model/parse"),
        ("GET", "/conversations/inj/tracker"),
        ("PUT", "/model"),
    ],
)
def test_rasas_http_api_is_not_served(assistant, method, path):
    response = httpx.request(
        method, assistant["base"] + path, json={"text": "hi"}, timeout=10
    )
    assert response.status_code in (404, 405), (path, response.status_code)


# --- the action server ----------------------------------------------------------


def test_the_action_server_needs_the_shared_token(assistant):
    actions = assistant["actions"]
    assert httpx.get(actions + "/health", timeout=10).status_code == 200
    call = {
        "next_action": "action_answer",
        "sender_id": "x",
        "tracker": {},
        "domain": {},
    }
    assert httpx.post(actions + "/webhook", json=call, timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert (
        httpx.post(
            actions + "/webhook", json=call, headers=wrong, timeout=10
        ).status_code
        == 401
    )
    assert httpx.get(actions + "/actions", timeout=10).status_code == 401
    right = {"Authorization": f"Bearer {ACTION_TOKEN}"}
    listed = httpx.get(actions + "/actions", headers=right, timeout=10)
    assert listed.status_code == 200 and {"name": "action_answer"} in listed.json()


# --- socket.io (polling transport: the venv's websocket client is broken) ---------


class Patient:
    """A socket.io client that records what the server sends it."""

    def __init__(self, base: str, origin: str | None = None) -> None:
        self.events: list[tuple[str, Any]] = []
        self.arrived = threading.Condition()
        self.client = socketio.Client(reconnection=False)
        names = (
            "session_confirm",
            "session_history",
            "bot_uttered",
            REPLY,
            "session_error",
        )
        for name in names:
            self.client.on(name, self._recorder(name))
        headers = {"Origin": origin} if origin else {}
        self.client.connect(
            base, transports=["polling"], headers=headers, wait_timeout=10
        )

    def _recorder(self, name: str):
        def record(data: Any = None) -> None:
            with self.arrived:
                self.events.append((name, data))
                self.arrived.notify_all()

        return record

    def wait_for(self, name: str, count: int = 1, timeout: float = 30) -> list[Any]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.of(name)) >= count, timeout)
        return self.of(name)

    def wait_for_answers(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        """The reply contracts received, once there are `count` (one per reply)."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.answers()) >= count, timeout)
        return self.answers()

    def of(self, name: str) -> list[Any]:
        return [data for kind, data in self.events if kind == name]

    def start(self, session_id: Any = None) -> str:
        self.client.emit("session_request", {"session_id": session_id})
        return self.wait_for("session_confirm")[-1]

    def say(self, message: Any, session_id: Any = None) -> None:
        self.client.emit("user_uttered", {"message": message, "session_id": session_id})

    def answers(self) -> list[dict[str, Any]]:
        return [m["custom"]["answer"] for m in self.of(REPLY) if "custom" in m]

    def close(self) -> None:
        # abort: a graceful polling disconnect waits out the server's long poll (~25 s)
        self.client.eio.disconnect(abort=True)


@pytest.fixture()
def patients(assistant) -> Iterator[list[Patient]]:
    opened: list[Patient] = []
    yield opened
    for patient in opened:
        patient.close()


def open_patient(assistant, patients, origin: str | None = None) -> Patient:
    patient = Patient(assistant["base"], origin)
    patients.append(patient)
    return patient


def test_a_client_keeps_its_own_session_id_and_a_bad_one_gets_a_fresh_id(
    assistant, patients
):
    import uuid

    own = str(uuid.uuid4())  # as Rasa's chat-widget makes one
    patient = open_patient(assistant, patients)
    assert patient.start(own) == own
    patient.say("what is prp", session_id=own)
    assert [a["type"] for a in patient.wait_for_answers(1)] == ["knowledge"]
    for unusable in ("1", "patient-1", "x" * 129, "has space in it....", 42, ["x"]):
        other = open_patient(assistant, patients)
        given = other.start(unusable)
        assert isinstance(given, str) and given != unusable and len(given) >= 16
        assert other.wait_for("session_history")[-1] == []


def new_conversations(assistant, before: set[str], timeout: float = 30) -> set[str]:
    """The conversations stored since `before` (a turn is saved just after its reply)."""
    deadline = time.monotonic() + timeout
    while not (added := conversation_ids(assistant) - before):
        assert time.monotonic() < deadline, "no new conversation was stored"
        time.sleep(0.2)
    return added


def conversation_ids(assistant) -> set[str]:
    import sqlite3

    with sqlite3.connect(assistant["conversations"]) as db:
        return {row[0] for row in db.execute("SELECT DISTINCT sender_id FROM events")}


def asked_about_prp(assistant, patients) -> tuple[Patient, str, str]:
    """A web chat patient who asked one question: (patient, client id, conversation)."""
    patient = open_patient(assistant, patients)
    client_id = patient.start()
    before = conversation_ids(assistant)
    patient.say("what is prp")
    patient.wait_for_answers(1)
    (conversation,) = new_conversations(assistant, before)
    return patient, client_id, conversation


def typed_history(assistant, patients, client_id: str) -> list[str]:
    """What the patient typed, as a reloaded page with `client_id` is shown it."""
    reloaded = open_patient(assistant, patients)
    reloaded.start(client_id)
    history = reloaded.wait_for("session_history")[-1]
    return [t["text"] for t in history if t["sender"] == "user"]


def test_knowing_a_conversations_id_opens_nothing(assistant, patients):
    alice, alice_id, conversation = asked_about_prp(assistant, patients)
    assert conversation != alice_id  # what staff, logs and the store see is derived
    mallory = open_patient(assistant, patients)
    assert mallory.start(conversation) == conversation  # accepted, as any client id...
    assert mallory.wait_for("session_history")[-1] == []  # ...but another conversation
    mallory.say("what helps joint pain")
    mallory.wait_for_answers(1)
    time.sleep(1)
    assert len(alice.answers()) == 1  # nothing of mallory's reached alice
    assert typed_history(assistant, patients, alice_id) == ["what is prp"]


def test_rest_can_never_write_into_a_web_chat_conversation(assistant, patients):
    patient, client_id, conversation = asked_about_prp(assistant, patients)
    for sender in (conversation, client_id):
        intruder = post(
            assistant["base"], {"sender": sender, "message": "I have a fever"}
        )
        if sender == conversation:
            assert intruder.status_code == 400, intruder.text
            assert "web chat" in intruder.json()["reason"]
        else:  # the client's own id is not a conversation: REST opens a new one
            assert intruder.status_code == 200
            assert sessions_of(assistant, sender) == 1
    time.sleep(1)
    assert len(patient.answers()) == 1  # nothing reached the patient's page
    assert typed_history(assistant, patients, client_id) == ["what is prp"]


def sessions_of(assistant, sender: str) -> int:
    import sqlite3

    with sqlite3.connect(assistant["conversations"]) as db:
        return db.execute(
            "SELECT COUNT(DISTINCT sender_id) FROM events WHERE sender_id = ?",
            (sender,),
        ).fetchone()[0]


def test_bot_uttered_has_rasas_own_shapes_and_the_contract_comes_apart(
    assistant, patients
):
    patient = open_patient(assistant, patients)
    patient.start()
    patient.say("what helps my knee")
    (answer,) = patient.wait_for_answers(1)
    uttered = patient.wait_for("bot_uttered")
    (reply,) = [m for m in patient.of(REPLY) if "custom" in m]
    # Rasa 3.6's SocketIOOutput: a paragraph a message, quick replies on the last one.
    assert all(set(m) in ({"text"}, {"text", "quick_replies"}) for m in uttered)
    assert "\n\n".join(m["text"] for m in uttered) == reply["text"].strip()
    assert uttered[-1]["quick_replies"] == [
        {"content_type": "text", "title": b["title"], "payload": b["payload"]}
        for b in reply["buttons"]
    ]
    assert answer["type"] == "knowledge"


def test_a_message_before_session_request_is_refused(assistant, patients):
    patient = open_patient(assistant, patients)
    patient.say("hello")
    assert "session_request" in patient.wait_for("session_error")[-1]["reason"]


def test_concurrent_conversations_never_see_each_others_replies(assistant, patients):
    knee, flag = open_patient(assistant, patients), open_patient(assistant, patients)
    knee.start(), flag.start()
    for _ in range(3):
        knee.say("what helps my knee")
        flag.say("I have a fever and chills since my injection")
    knee.wait_for_answers(3)
    flag.wait_for_answers(3)
    time.sleep(1)
    assert [a["type"] for a in knee.answers()] == ["knowledge"] * 3
    assert [a["type"] for a in flag.answers()] == ["emergency"] * 3


def test_resuming_shows_only_that_conversations_history(assistant, patients):
    first = open_patient(assistant, patients)
    session_id = first.start()
    first.say("what is prp")
    first.wait_for_answers(1)
    reloaded = open_patient(assistant, patients)
    assert reloaded.start(session_id) == session_id
    history = reloaded.wait_for("session_history")[-1]
    assert [turn["text"] for turn in history if turn["sender"] == "user"] == [
        "what is prp"
    ]


@pytest.mark.parametrize(
    "message", [None, 42, ["what is prp"], {"text": "hi"}, "", "   "]
)
def test_non_text_socket_messages_get_the_friendly_note(assistant, patients, message):
    patient = open_patient(assistant, patients)
    patient.start()
    patient.say(message)
    assert [a["type"] for a in patient.wait_for_answers(1)] == ["clarify"]


def test_sockets_from_other_origins_are_refused(assistant, patients):
    with pytest.raises(socketio.exceptions.ConnectionError):
        Patient(assistant["base"], origin="https://evil.example")
    allowed = open_patient(assistant, patients, origin=ORIGIN)
    assert allowed.start()


def test_the_log_has_no_patient_text_phone_or_email_at_the_default_level(
    assistant, patients
):
    post(assistant["base"], {"sender": "private-rest", "message": PRIVATE_MESSAGE})
    patient = open_patient(assistant, patients)
    patient.start()
    patient.say(PRIVATE_MESSAGE)
    patient.wait_for_answers(1)
    post(
        assistant["base"], raw=PRIVATE_MESSAGE.encode()
    )  # a 400 must not echo it either
    time.sleep(1)
    log = assistant["log"].read_text(errors="replace")
    assert "assistant ready" in log  # the log is the servers' output
    for secret in (PHONE, EMAIL, "call about my knee", "5309"):
        assert secret not in log, secret


# --- production profile, slow action server, masking at DEBUG ---------------------


class SlowProxy(http.server.ThreadingHTTPServer):
    """Forwards calls to the action server, after `delay` seconds."""

    daemon_threads = True
    delay = 0.0
    target = ""


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: SlowProxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        time.sleep(self.server.delay)
        request = urllib.request.Request(
            self.server.target + self.path,
            data=body,
            headers={
                "content-type": "application/json",
                "authorization": self.headers.get("authorization", ""),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, payload = answer.status, answer.read()
        except urllib.error.HTTPError as refused:
            status, payload = refused.code, refused.read()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the Rasa server gave up waiting, as it should

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def production(store_url, tmp_path_factory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("production")
    action_port, rasa_port = free_port(), free_port()
    env = {
        **base_env(store_url, folder / "c.db"),
        "ASSISTANT_PROFILE": "production",
        "REST_TOKEN": REST_TOKEN,
        "SESSION_SECRET": "session-secret-for-the-hardening-tests",
        "ACTION_PORT": str(action_port),
        "ACTION_TIMEOUT": "2",
        "LOG_LEVEL": "DEBUG",
    }
    proxy = SlowProxy(("127.0.0.1", 0), ProxyHandler)
    proxy.target = f"http://127.0.0.1:{action_port}"
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    env["ACTION_ENDPOINT_URL"] = f"http://127.0.0.1:{proxy.server_address[1]}/webhook"
    logs = {"actions": folder / "actions.log", "rasa": folder / "rasa.log"}
    with open(logs["actions"], "wb") as a_out, open(logs["rasa"], "wb") as r_out:
        actions = start_process(action_server_command(), env=env, output=a_out)
        rasa = start_process(
            rasa_server_command(["--interface", "127.0.0.1"], port=rasa_port),
            env=env,
            output=r_out,
        )
        try:
            assert wait_until_ready(rasa_port, 180), logs["rasa"].read_text()
            yield {
                "base": f"http://127.0.0.1:{rasa_port}",
                "proxy": proxy,
                "logs": logs,
            }
        finally:
            stop_process(rasa, timeout=30)
            stop_process(actions, timeout=30)
            proxy.shutdown()


def say_production(production, sender: str, message: str) -> list[dict[str, Any]]:
    response = post(
        production["base"],
        {"sender": sender, "message": message},
        Authorization=f"Bearer {REST_TOKEN}",
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_production_rest_needs_the_token(production):
    payload = {"sender": "prod", "message": "hi"}
    assert post(production["base"], payload).status_code == 401
    wrong = post(production["base"], payload, Authorization="Bearer guess")
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
    assert (
        contract(say_production(production, "prod", "what is prp"))["type"]
        == "knowledge"
    )


def test_a_slow_action_server_gets_the_apology_and_the_conversation_recovers(
    production,
):
    proxy = production["proxy"]
    proxy.delay = 25.0  # far beyond ACTION_TIMEOUT=2 and the client's 30 s
    try:
        slow = say_production(production, "slow", "what is prp")
        assert contract(slow)["type"] == "handoff"
        assert "(555) 123-9876" in text(slow)
        flag = say_production(
            production, "slow", "my throat is swelling and i can't breathe"
        )
        assert contract(flag)["type"] == "emergency"
    finally:
        proxy.delay = 0.0
    back = say_production(production, "slow", "what helps joint pain")
    answer = contract(back)
    assert answer["type"] == "knowledge" and answer["sections"][0]["number"] == 5


def test_debug_logs_mask_phone_numbers_and_emails_in_both_servers(production):
    say_production(production, "private", PRIVATE_MESSAGE)
    time.sleep(1)
    rasa_log = production["logs"]["rasa"].read_text(errors="replace")
    actions_log = production["logs"]["actions"].read_text(errors="replace")
    assert (
        "[phone]" in rasa_log and "[email]" in rasa_log
    )  # the text was logged, masked
    for log in (rasa_log, actions_log):
        # No form of the number: as typed, its digits run together, or its last seven
        # (a bare "867" would also match the random port in "127.0.0.1:59867").
        for leak in (PHONE, EMAIL, "5558675309", "867-5309", "8675309", "jane.patient"):
            assert leak not in log


# --- refusing to start ----------------------------------------------------------


def run_briefly(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )


def test_production_refuses_to_start_without_its_secrets(store_url, tmp_path):
    env = {
        **base_env(store_url, tmp_path / "c.db"),
        "ASSISTANT_PROFILE": "production",
        "ACTION_ENDPOINT_URL": "http://127.0.0.1:9/webhook",
    }
    for name in (
        "REST_TOKEN",
        "SESSION_SECRET",
        "SESSION_SECRET_FILE",
        "REST_TOKEN_FILE",
    ):
        env.pop(name, None)
    result = run_briefly(rasa_server_command(port=free_port()), env)
    assert result.returncode == 2
    assert (
        "REST_TOKEN is not set" in result.stderr and "SESSION_SECRET" in result.stderr
    )


def test_servers_refuse_to_start_without_the_action_token(store_url, tmp_path):
    env = base_env(store_url, tmp_path / "c.db")
    del env["ACTION_TOKEN"]
    env.update(
        ACTION_PORT=str(free_port()), ACTION_ENDPOINT_URL="http://127.0.0.1:9/webhook"
    )
    actions = run_briefly(action_server_command(), env)
    assert actions.returncode == 2 and "ACTION_TOKEN" in actions.stderr
    rasa = run_briefly(rasa_server_command(port=free_port()), env)
    assert rasa.returncode == 2 and "ACTION_TOKEN" in rasa.stderr


def test_beyond_loopback_rest_needs_rest_token(store_url, tmp_path):
    """Listening on 0.0.0.0 (local profile): REST is closed without REST_TOKEN, open with."""
    for token in (None, REST_TOKEN):
        port = free_port()
        env = {
            **base_env(store_url, tmp_path / "c.db"),
            "ACTION_ENDPOINT_URL": "http://127.0.0.1:9/webhook",
        }
        env.pop("REST_TOKEN_FILE", None)
        env.pop("REST_TOKEN", None)
        if token:
            env["REST_TOKEN"] = token
        log = tmp_path / f"rasa-{port}.log"
        with open(log, "wb") as out:
            server = start_process(
                rasa_server_command(["--interface", "0.0.0.0"], port=port),
                env=env,
                output=out,
            )
            try:
                assert wait_until_ready(port, 180), log.read_text()
                base = f"http://127.0.0.1:{port}"
                payload = {"sender": "outside", "message": "hi"}
                refused = post(base, payload)
                if token is None:
                    assert refused.status_code == 403
                    assert "REST_TOKEN" in refused.json()["reason"]
                    assert "the REST channel is closed" in log.read_text()
                else:
                    assert refused.status_code == 401
                    allowed = post(base, payload, Authorization=f"Bearer {token}")
                    assert allowed.status_code == 200 and allowed.json()
            finally:
                stop_process(server, timeout=30)
