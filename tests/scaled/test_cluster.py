"""Two Rasa servers (each with its action server) behind nginx, on real PostgreSQL and
Redis: conversations whose messages arrive at both servers at once stay whole."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import httpx
import pytest
import socketio

from bench.scaled import MESSAGES, audit, exchange
from bot import scaled

pytestmark = [pytest.mark.scaled, pytest.mark.e2e, pytest.mark.slow]


def test_messages_alternating_between_servers_are_each_answered_and_stored_once(
    cluster: scaled.Cluster, profile_db: str
) -> None:
    """Each conversation sends two messages at once, one to each Rasa server."""
    conversations = 30
    targets = [f"http://127.0.0.1:{port}" for port in cluster.rasa_ports]
    replies = asyncio.run(exchange(targets, conversations))
    counts = audit(profile_db, replies)
    total = conversations * len(MESSAGES)
    assert counts["answered"] == total, counts
    assert counts["stored_once"] == total, counts
    problems = (
        "unanswered",
        "lost",
        "duplicated",
        "mismatched",
        "out_of_order",
        "wrong_type",
    )
    for problem in problems:
        assert counts[problem] == 0, counts


def test_nginx_spreads_rest_over_both_servers_and_conversations_stay_whole(
    cluster: scaled.Cluster, profile_db: str
) -> None:
    log = cluster.run_dir / "upstreams.log"
    before = len(log.read_text().splitlines()) if log.exists() else 0
    replies = asyncio.run(exchange([cluster.url, cluster.url], 10))
    counts = audit(profile_db, replies)
    assert counts["answered"] == counts["stored_once"] == 10 * len(MESSAGES), counts
    assert (
        counts["mismatched"] == counts["out_of_order"] == counts["wrong_type"] == 0
    ), counts
    lines = log.read_text().splitlines()[before:]
    served = Counter(line.split()[0] for line in lines)
    assert set(served) == {f"127.0.0.1:{port}" for port in cluster.rasa_ports}, served


def test_socketio_through_nginx_sticks_each_browser_to_one_server(
    cluster: scaled.Cluster,
) -> None:
    """Long-polling sockets (many HTTP requests each) with different route cookies."""

    async def chat(route: str) -> list[dict]:
        received: list[dict] = []
        answered = asyncio.Event()
        # Like a browser: the cookie goes with every request (engine.io's `headers`
        # would go with the handshake only).
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(
            cookie_jar=jar, cookies={"clinic_route": route}
        ) as http:
            client = socketio.AsyncClient(http_session=http)

            @client.on("session_confirm")
            async def confirm(session_id: str) -> None:
                await client.emit(
                    "user_uttered", {"message": "what is prp", "session_id": session_id}
                )

            @client.on("clinic_reply")  # bot.channels.REPLY_EVENT
            async def uttered(data: dict) -> None:
                received.append(data)
                if (data.get("custom") or {}).get("answer"):
                    answered.set()

            await client.connect(
                cluster.url,
                transports=["polling"],
                socketio_path="socket.io",
                wait_timeout=30,
            )
            await client.emit("session_request", {})
            await asyncio.wait_for(answered.wait(), 60)
            await client.disconnect()
        return received

    routes = []
    for _ in range(4):
        page = httpx.get(cluster.url + "/", timeout=10)
        routes.append(page.cookies.get("clinic_route"))
    assert all(routes) and len(set(routes)) == 4
    for route in routes:
        received = asyncio.run(chat(route))
        answers = [m for m in received if (m.get("custom") or {}).get("answer")]
        assert len(answers) == 1
        assert answers[0]["custom"]["answer"]["type"] == "knowledge"


def test_through_nginx_a_wrong_password_elsewhere_never_locks_staff_out(
    cluster: scaled.Cluster, profile_db: str
) -> None:
    """nginx forwards each browser's address (TRUSTED_PROXIES): the lock is per pair."""
    import os
    import re
    import subprocess
    import sys
    import uuid

    name, password = f"frontdesk-{uuid.uuid4().hex[:6]}", "a long test password 42"
    env = {**os.environ, "CONVERSATIONS_DB_URL": profile_db}
    added = subprocess.run(
        [sys.executable, "-m", "bot", "staff", "add", name, "--password-stdin"],
        input=password + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stderr

    def login_from(source: str, given: str) -> httpx.Response:
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(base_url=cluster.url, transport=transport, timeout=60) as c:
            form = c.get("/staff/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf, form.text
            # Cookies behind a proxy are Secure; this client speaks plain http.
            cookie = "; ".join(f"{k}={v}" for k, v in form.cookies.items())
            return c.post(
                "/staff/login",
                data={"csrf": csrf.group(1), "name": name, "password": given},
                headers={"Cookie": cookie},
            )

    statuses = [
        login_from("127.0.0.2", "wrong password!!").status_code for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    assert login_from("127.0.0.2", password).status_code == 429  # the attacker's pair
    assert login_from("127.0.0.3", password).status_code == 303  # staff get in
