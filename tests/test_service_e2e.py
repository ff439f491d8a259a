"""`python -m bot run` keeps serving when the action server dies or hangs.

The action server is killed (SIGKILL, as a crash or the kernel's OOM killer would) or
frozen (SIGSTOP: running but not answering). Meanwhile the Rasa server, untouched, gives
emergency guidance and apologises with the phone number; GET /health says the action
server is down; the supervisor restarts it and says so in its log, and answers come from
the guide again.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.serve import (
    free_port,
    rasa_server_command,
    start_process,
    stop_process,
    wait_until_ready,
)
from bot.training import ROOT, model_is_current
from tests.served import answer_type, say, server_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RESTART_WAIT = 120.0


def children(parent: int) -> dict[int, str]:
    """The direct children of a process: pid to command line (from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == parent:
            found[int(entry.name)] = command
    return found


def server_pid(supervisor: subprocess.Popen[bytes], module: str) -> int:
    """The pid of the server `python -m <module>` that the supervisor started."""
    for pid, command in children(supervisor.pid).items():
        if f" -m {module} " in f"{command} ":
            return pid
    raise AssertionError(f"no `-m {module}` child of the supervisor")


class Running:
    def __init__(
        self, base: str, process: subprocess.Popen[bytes], log: Path, db: Path
    ) -> None:
        self.base, self.process, self.log, self.db = base, process, log, db

    def say(self, sender: str, text: str) -> list[dict]:
        return say(self.base, sender, text)

    def status(self) -> tuple[int, dict]:
        response = httpx.get(f"{self.base}/health", timeout=30)
        return response.status_code, response.json()

    def wait_for_actions(self, up: bool) -> dict:
        deadline = time.monotonic() + RESTART_WAIT
        while time.monotonic() < deadline:
            _, body = self.status()
            if body["parts"]["action_server"]["up"] is up:
                return body
            time.sleep(0.5)
        raise AssertionError(
            f"the action server did not become {'up' if up else 'down'}:\n"
            + self.log.read_text()[-3000:]
        )

    def wait_for_log(self, line: str) -> str:
        """The log once it holds `line`: the supervisor says so after its next check,
        which may come after the server already answered a message."""
        deadline = time.monotonic() + RESTART_WAIT
        while time.monotonic() < deadline:
            log = self.log.read_text()
            if line in log:
                return log
            time.sleep(0.5)
        raise AssertionError(
            f"{line!r} not in the log:\n" + self.log.read_text()[-3000:]
        )


@pytest.fixture(scope="module")
def running(store_url, tmp_path_factory) -> Iterator[Running]:
    if not model_is_current():
        pytest.fail("the trained model is missing or stale: run `make model`")
    folder = tmp_path_factory.mktemp("service")
    env = server_env(store_url, folder)
    log = folder / "run.log"
    with open(log, "wb") as out:
        process = start_process([sys.executable, "-m", "bot", "run"], env, output=out)
        try:
            assert wait_until_ready(int(env["RASA_PORT"]), timeout=300), log.read_text()
            base = f"http://127.0.0.1:{env['RASA_PORT']}"
            yield Running(base, process, log, Path(env["CONVERSATIONS_DB"]))
        finally:
            stop_process(process, signal.SIGINT, timeout=60)


def test_status_says_every_part_is_up(running):
    code, body = running.status()
    assert code == 200
    assert body["status"] == "ok"
    assert set(body["parts"]) == {
        "rasa",
        "action_server",
        "knowledge_store",
        "conversations_db",
    }
    assert all(part["up"] for part in body["parts"].values())


def test_a_killed_action_server_is_restarted_while_rasa_keeps_answering(running):
    rasa_pid = server_pid(running.process, "bot.server")
    actions_pid = server_pid(running.process, "actions")
    os.kill(actions_pid, signal.SIGKILL)

    # The restart waits a second and the action server then takes seconds to start, so
    # these two are answered while it is away; /health after them proves it was.
    flag = running.say(
        "svc-kill-1", "i have a fever and a stiff neck since my epidural"
    )
    assert answer_type(flag) == "emergency"
    assert (
        flag[0]["text"].startswith("This could be an emergency")
        and "911" in (flag[0]["text"])
    )
    question = running.say("svc-kill-2", "what is prp")
    assert answer_type(question) == "handoff"
    assert "(555) 123-9876" in "\n".join(m.get("text", "") for m in question)
    code, body = running.status()
    assert (code, body["status"]) == (503, "degraded")
    assert body["parts"]["action_server"]["up"] is False
    assert body["parts"]["rasa"]["up"] is True

    running.wait_for_actions(up=True)
    assert server_pid(running.process, "actions") != actions_pid
    assert server_pid(running.process, "bot.server") == rasa_pid  # never taken down
    assert answer_type(running.say("svc-kill-3", "what is prp")) == "knowledge"
    log = running.wait_for_log("the action server is answering again")
    assert "the action server exited (status -9); restarting it in 1 s" in log


def test_a_hung_action_server_is_stopped_and_restarted(running):
    frozen = server_pid(running.process, "actions")
    os.kill(frozen, signal.SIGSTOP)
    try:
        running.wait_for_actions(up=False)
        # Its process is there but does not answer: the health checks fail, it is
        # killed (a stopped process ignores SIGTERM) and started again.
        running.wait_for_actions(up=True)
    finally:
        if frozen in children(running.process.pid):
            os.kill(frozen, signal.SIGCONT)
    assert server_pid(running.process, "actions") != frozen
    running.wait_for_log("the action server stopped answering its health check")
    assert answer_type(running.say("svc-hung", "what is prp")) == "knowledge"


def test_a_locked_conversations_database_loses_no_turn_in_silence(running):
    """The default profile's SQLite store (WAL) while another writer holds the lock.

    Reading goes on, so patients get their answers and emergencies their guidance; the
    turns cannot be written, which the log says (without their text) instead of keeping
    them in memory; afterwards the conversation goes on from what is stored.
    """
    assert answer_type(running.say("svc-db", "hello")) == "smalltalk"
    locker = sqlite3.connect(running.db, timeout=0)
    locker.execute("BEGIN EXCLUSIVE")  # as a backup tool or a stuck writer would
    try:
        question = running.say("svc-db", "what helps joint pain")
        assert answer_type(question) == "knowledge"
        flag = running.say(
            "svc-db", "i have a fever and a stiff neck since my epidural"
        )
        assert answer_type(flag) == "emergency"
    finally:
        locker.rollback()
        locker.close()
    assert answer_type(running.say("svc-db", "what is prp")) == "knowledge"
    with sqlite3.connect(running.db) as db:
        stored = [
            json.loads(row[0])["text"]
            for row in db.execute(
                "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user'",
                ("svc-db",),
            )
        ]
    assert stored == ["hello", "what is prp"]
    log = running.log.read_text()
    lost = "reply sent but the turn was not stored: conversation database unavailable"
    assert log.count(lost) == 2
    assert "joint pain" not in log and "stiff neck" not in log


def test_the_server_refuses_to_keep_conversations_in_memory(store_url, tmp_path):
    """A tracker store Rasa cannot load would become memory: the server will not start."""
    endpoints = (ROOT / "endpoints.yml").read_text()
    broken = tmp_path / "endpoints.yml"
    broken.write_text(
        endpoints.replace(
            "type: bot.conversation_store.ResilientSQLTrackerStore",
            "type: bot.no_such_module.SQLTrackerStore",
        )
    )
    assert broken.read_text() != endpoints
    port = free_port()
    command = rasa_server_command(["--interface", "127.0.0.1"], port=port)
    command[command.index("--endpoints") + 1] = str(broken)
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        process = start_process(command, server_env(store_url, tmp_path), output=out)
        try:
            code = process.wait(300)
        finally:
            stop_process(process)
    assert code != 0
    assert "conversations would be kept in InMemoryTrackerStore" in log.read_text()
