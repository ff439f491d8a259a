"""The shipped supervisord configuration (deploy/supervisord) restarts what dies or hangs.

supervisord from .venv runs deploy/supervisord/supervisord.conf as it is, with the
settings in its environment as `make supervise` gives them (free ports here, a temporary
conversations database). The action server is killed, then frozen: supervisord restarts it
after the kill, superlance's httpok after the freeze, and the Rasa server answers
emergencies meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.serve import start_process, stop_process, wait_until_ready
from bot.training import ROOT, model_is_current
from tests.served import answer_type, say, server_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONF = ROOT / "deploy" / "supervisord" / "supervisord.conf"
BIN = Path(sys.executable).parent
SOCKET = ROOT / "build" / "supervisor.sock"
WAIT = 150.0


class Supervisord:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.base = f"http://127.0.0.1:{env['RASA_PORT']}"

    def ctl(self, *args: str) -> str:
        result = subprocess.run(
            [str(BIN / "supervisorctl"), "-c", str(CONF), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
        )
        return result.stdout.strip()

    def pid(self, program: str) -> int:
        value = self.ctl("pid", program)
        return int(value) if value.isdigit() else 0

    def wait_for_new_pid(self, program: str, old: int) -> int:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            pid = self.pid(program)
            if pid not in (0, old) and self.actions_up():
                return pid
            time.sleep(0.5)
        raise AssertionError(
            f"{program} was not restarted:\n{self.ctl('status')}\n"
            + self.log.read_text()[-3000:]
        )

    def actions_up(self) -> bool:
        body = httpx.get(f"{self.base}/health", timeout=30).json()
        return bool(body["parts"]["action_server"]["up"])

    def say(self, sender: str, text: str) -> list[dict]:
        return say(self.base, sender, text)


@pytest.fixture(scope="module")
def supervisord(store_url, tmp_path_factory) -> Iterator[Supervisord]:
    if not model_is_current():
        pytest.fail("the trained model is missing or stale: run `make model`")
    if not (BIN / "supervisord").exists() or not (BIN / "httpok").exists():
        pytest.fail("supervisor and superlance are missing: run `make install`")
    folder = tmp_path_factory.mktemp("supervisord")
    env = server_env(store_url, folder)
    probe = Supervisord(env, folder / "supervisord.log")
    if SOCKET.exists() and "RUNNING" in probe.ctl("status"):
        pytest.skip(f"a supervisord of this checkout is running ({SOCKET})")
    (ROOT / "build" / "logs").mkdir(parents=True, exist_ok=True)
    command = [
        str(BIN / "supervisord"),
        "--nodaemon",
        "-c",
        str(CONF),
        "-l",
        str(probe.log),
        "-j",
        str(folder / "supervisord.pid"),
    ]
    process = start_process(command, env, output=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not wait_until_ready(int(env["RASA_PORT"]), timeout=2):
            status = probe.ctl("status")
            logs = ROOT / "build" / "logs"
            assert "FATAL" not in status and time.monotonic() < deadline, (
                status + (logs / "rasa.log").read_text()[-2000:]
            )
        yield probe
    finally:
        stop_process(process, signal.SIGTERM, timeout=60)


def test_both_programs_run_and_the_assistant_answers(supervisord):
    states = dict(line.split()[:2] for line in supervisord.ctl("status").splitlines())
    # The Rasa server is STARTING until it has run its startsecs (it answers before).
    # The same for the action server on a slow machine (its startsecs is 30 s).
    assert states == {
        "actions": states["actions"],
        "actions-health": "RUNNING",
        "rasa": states["rasa"],
        "rasa-health": "RUNNING",
    }
    assert {states["rasa"], states["actions"]} <= {"STARTING", "RUNNING"}
    assert supervisord.pid("rasa") > 0
    assert answer_type(supervisord.say("sv-ok", "what is prp")) == "knowledge"


def test_a_killed_action_server_is_restarted_by_supervisord(supervisord):
    rasa = supervisord.pid("rasa")
    killed = supervisord.pid("actions")
    os.kill(killed, signal.SIGKILL)
    flag = supervisord.say("sv-kill", "sudden weakness in my legs and i can't pee")
    assert answer_type(flag) == "emergency"
    supervisord.wait_for_new_pid("actions", killed)
    assert supervisord.pid("rasa") == rasa
    assert "exited: actions (terminated by SIGKILL; not expected)" in (
        supervisord.log.read_text()
    )
    assert answer_type(supervisord.say("sv-kill-2", "what is prp")) == "knowledge"


def test_a_hung_action_server_is_restarted_by_its_health_check(supervisord):
    frozen = supervisord.pid("actions")
    os.kill(frozen, signal.SIGSTOP)
    try:
        supervisord.wait_for_new_pid("actions", frozen)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(frozen, signal.SIGCONT)
    assert answer_type(supervisord.say("sv-hung", "what is prp")) == "knowledge"
