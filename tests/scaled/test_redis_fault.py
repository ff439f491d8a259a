"""The lock store's Redis stops, restarts and hangs under a running server.

A private redis-server (its own port, started by the test) holds the conversation locks,
so stopping it touches nothing else on the machine. While it is down or hung every
message gets a reply: the service-unavailable notice, or the emergency guidance for a
red flag; the log has one line per refused message, without the patient's words; and
when it is back the conversation goes on where it was, with no server restarted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import socketio

from bench.scaled import audit, profile_environment, stored_events
from bot import scaled
from tests.test_callback_e2e import answer
from tests.test_e2e import say

from .conftest import PrivateRedis, running_profile

pytestmark = [pytest.mark.scaled, pytest.mark.e2e, pytest.mark.slow]

PHONE = "(212) 555-0147"
RED_FLAG = "my legs went numb and i cant feel my groin"
SELF_HARM = "i want to kill myself"
ASKED_WHILE_DOWN = "what does a nerve block do for sciatica"


@pytest.fixture(scope="module")
def server(
    private_redis: PrivateRedis,
    profile_db: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[scaled.Cluster, Path]]:
    """One Rasa server (behind nginx) whose lock store is the private Redis."""
    env = profile_environment(profile_db)
    env.update(
        REDIS_URL=private_redis.url,
        REDIS_SOCKET_TIMEOUT="1",
        REDIS_CONNECT_TIMEOUT="1",
        LOG_LEVEL="INFO",
    )
    log = tmp_path_factory.mktemp("redis-fault") / "servers.log"
    with running_profile(env, log) as cluster:
        yield cluster, log


def timed_say(url: str, sender: str, text: str) -> tuple[list[dict[str, Any]], float]:
    """The reply to one REST message and how long it took."""
    started = time.monotonic()
    reply = say(url, sender, text, timeout=120)
    return reply, time.monotonic() - started


async def socket_reply(url: str, text: str) -> list[dict[str, Any]]:
    """The replies (clinic_reply) a new socket.io session gets for one message."""
    received: list[dict[str, Any]] = []
    answered = asyncio.Event()
    client = socketio.AsyncClient()

    @client.on("session_confirm")
    async def confirm(session_id: str) -> None:
        await client.emit("user_uttered", {"message": text, "session_id": session_id})

    @client.on("clinic_reply")  # bot.channels.REPLY_EVENT
    async def uttered(data: dict[str, Any]) -> None:
        received.append(data)
        if (data.get("custom") or {}).get("answer"):
            answered.set()

    await client.connect(
        url, transports=["polling"], socketio_path="socket.io", wait_timeout=30
    )
    try:
        await client.emit("session_request", {})
        await asyncio.wait_for(answered.wait(), 30)
    finally:
        await client.disconnect()
    return received


def test_redis_outage_is_answered_reported_and_recovered(
    server: tuple[scaled.Cluster, Path],
    private_redis: PrivateRedis,
    profile_db: str,
) -> None:
    cluster, log = server
    url = cluster.url
    sender = "redis-fault-patient"
    handled: dict[str, list[dict[str, Any]]] = {}

    def handled_say(text: str) -> tuple[str, str]:
        reply, _ = timed_say(url, sender, text)
        handled[text] = reply
        return answer(reply)

    kind, text = handled_say("can someone call me back please")
    assert kind == "form" and "what name" in text.lower()
    kind, text = handled_say("my name is Maria Lopez")
    assert kind == "form" and "phone number" in text

    # Redis down: every message is answered at once, nothing is processed.
    private_redis.stop()
    refused = 0
    reply, took = timed_say(url, sender, ASKED_WHILE_DOWN)
    kind, text = answer(reply)
    assert kind == "handoff" and "technical problem" in text and "911" in text
    assert took < 10
    refused += 1
    reply, took = timed_say(url, sender, RED_FLAG)
    kind, text = answer(reply)
    assert kind == "emergency" and "call 911 now" in text, text
    assert took < 10
    refused += 1
    kind, text = answer(timed_say(url, sender, SELF_HARM)[0])
    assert kind == "emergency" and "988" in text, text
    refused += 1
    over_socket = asyncio.run(socket_reply(url, ASKED_WHILE_DOWN))
    kinds = [m["custom"]["answer"]["type"] for m in over_socket if m.get("custom")]
    assert kinds == ["handoff"], over_socket
    refused += 1

    # Back (empty: it lost every lock): the form goes on where it was.
    private_redis.start()
    kind, text = handled_say("12345")
    assert kind == "form" and "doesn't look like a phone number" in text

    # Hung: connections open, nothing answers. The reply waits only the short timeout.
    private_redis.pause()
    try:
        reply, took = timed_say(url, sender, PHONE)
    finally:
        private_redis.resume()
    kind, text = answer(reply)
    assert kind == "handoff" and "technical problem" in text
    assert took < 10
    refused += 1

    # Awake again: the same message is answered at once (a ticket whose issue timed out
    # does not hold the conversation until it expires), slots and form intact.
    reply, took = timed_say(url, sender, PHONE)
    handled[PHONE] = reply
    kind, text = answer(reply)
    assert kind == "form" and "best time" in text
    assert took < 15, f"the conversation waited {took:.1f} s after Redis woke up"
    kind, text = handled_say("weekday mornings")
    assert kind == "form" and "+12125550147" in text
    kind, text = handled_say("yes")
    assert kind == "form" and "Maria Lopez" in text and "weekday mornings" in text
    assert cluster.alive()

    # Stored: each handled message once, with the reply it got; refused ones not at all.
    counts = audit(profile_db, {sender: handled})
    assert counts["stored_once"] == len(handled), counts
    assert counts["mismatched"] == counts["out_of_order"] == 0, counts
    assert counts["duplicated"] == counts["lost"] == 0, counts
    events = stored_events(profile_db, sender)
    said = [e.get("text") for e in events if e.get("event") == "user"]
    assert said == list(handled), said
    # The name was taken once, before the outage; the summary after it still had it.
    names = [
        e.get("value")
        for e in events
        if e.get("event") == "slot" and e.get("name") == "callback_name"
    ]
    assert names.count("Maria Lopez") == 1, names

    logged = log.read_text(errors="replace")
    assert logged.count("message not handled") == refused, logged[-4000:]
    assert "lock store unavailable" in logged
    assert "emergency guidance sent" in logged
    assert "Traceback" not in logged, logged[-4000:]
    for private in (ASKED_WHILE_DOWN, "numb", "kill myself", "555-0147", "5550147"):
        assert private not in logged, private
