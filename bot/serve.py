"""Start the action server and the Rasa server together; stop both on Ctrl-C.

`python -m bot run` serves REST and socket.io; `python -m bot shell` talks in the terminal.
Ports come from ACTION_PORT (5055) and RASA_PORT (5005).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import IO

from bot.supervise import Supervised, answers
from bot.training import MODEL_FILE, ROOT
from clinic import settings

STOP_TIMEOUT = 10.0


def action_port() -> int:
    """The action server's port."""
    return settings.current().action_port


def rasa_port() -> int:
    """The Rasa server's port."""
    return settings.current().rasa_port


@lru_cache(maxsize=1)
def run_token() -> str:
    """A random ACTION_TOKEN for this run, when none is configured (same for both)."""
    return secrets.token_urlsafe(32)


def server_env() -> dict[str, str]:
    """The environment both servers run with: quiet, private, pointed at each other.

    Outside the production profile, a missing ACTION_TOKEN is made up for the run and
    given to both servers; production must configure it (docs/security.md).
    """
    env = dict(os.environ)
    configured = env.get("ACTION_TOKEN", "").strip() or env.get("ACTION_TOKEN_FILE")
    production = env.get("ASSISTANT_PROFILE", "").strip().lower() == "production"
    if not configured and not production:
        env["ACTION_TOKEN"] = run_token()
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env["RASA_TELEMETRY_ENABLED"] = "false"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("PYTHONWARNINGS", "ignore")
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    env.update(settings.endpoint_defaults(env))
    return env


def action_server_command() -> list[str]:
    """The command line of the action server (localhost by default, see actions/)."""
    return [sys.executable, "-m", "actions"]


def rasa_server_command(
    extra: Sequence[str] = (), port: int | None = None
) -> list[str]:
    """The command line of the Rasa server (bot.server: channels, pages, API off)."""
    return [
        sys.executable,
        "-m",
        "bot.server",
        "--model",
        str(MODEL_FILE),
        "--port",
        str(port or rasa_port()),
        "--credentials",
        "credentials.yml",
        "--endpoints",
        "endpoints.yml",
        *extra,
    ]


def start_process(
    command: list[str],
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    output: int | IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server in its own process group.

    Its own group, so Ctrl-C in the terminal reaches only the supervisor, which then
    stops each server in order. `output` None shares the terminal; a file or
    subprocess.DEVNULL takes both stdout and stderr.
    """
    return subprocess.Popen(  # noqa: S603
        command,
        cwd=cwd,
        env=server_env() if env is None else env,
        start_new_session=True,
        stdout=output,
        stderr=None if output is None else subprocess.STDOUT,
    )


def stop_process(
    process: subprocess.Popen[bytes],
    sig: int = signal.SIGTERM,
    timeout: float = STOP_TIMEOUT,
) -> None:
    """Send `sig` to a server's process group; kill it if it has not stopped in time."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_ready(port: int, timeout: float = 180.0) -> bool:
    """Wait until the Rasa server on `port` answers (it loads its model first)."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # it answers (Sanic listens only once the model is loaded)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    return False


def stop_requested() -> Callable[[], bool]:
    """Catch Ctrl-C and SIGTERM from now on; the result says whether one arrived."""
    received: list[int] = []

    def _request_stop(signum: int, _frame: object) -> None:
        received.append(signum)

    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    return lambda: bool(received)


ACTION_START_ALLOWANCE = 60.0
#: Loading the model takes ~10 s, a minute on a busy machine.
RASA_START_ALLOWANCE = 300.0


def _wait_for_action_server(
    process: subprocess.Popen[bytes], timeout: float = ACTION_START_ALLOWANCE
) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{action_port()}/health"
    while time.monotonic() < deadline and process.poll() is None:
        if answers(url, timeout=2):
            return
        time.sleep(0.3)


def supervised_servers() -> tuple[Supervised, Supervised]:
    """The action server and the Rasa server, as `python -m bot run` watches them."""
    actions = Supervised(
        "the action server",
        lambda: start_process(action_server_command()),
        stop_process,
        f"http://127.0.0.1:{action_port()}/health",
        ACTION_START_ALLOWANCE,
    )
    # Rasa's HTTP API (--enable-api) stays off: only the channels are served.
    interface = settings.current().rasa_interface
    rasa = Supervised(
        "the Rasa server",
        lambda: start_process(rasa_server_command(["--interface", interface])),
        stop_process,
        f"http://127.0.0.1:{rasa_port()}/",
        RASA_START_ALLOWANCE,
    )
    return actions, rasa


def _announce() -> None:
    port = rasa_port()
    print(
        f"\nassistant ready: chat page http://localhost:{port}/"
        f" · REST http://localhost:{port}/webhooks/rest/webhook"
        f" · socket.io http://localhost:{port}/socket.io"
        f" · status http://localhost:{port}/health"
        f" · actions http://localhost:{action_port()}  (Ctrl-C stops both)\n",
        flush=True,
    )


def run() -> int:
    """Serve until Ctrl-C, restarting a server that exits or stops answering.

    A server that fails its very first start (a missing store, a port in use) stops
    the run with its own message instead: restarting would not mend that.
    """
    actions, rasa = supervised_servers()
    stopping = stop_requested()
    actions.launch(time.monotonic())
    assert actions.process is not None
    _wait_for_action_server(actions.process)
    if actions.process.poll() is not None:
        return 1
    rasa.launch(time.monotonic())
    announced = False
    try:
        while not stopping():
            now = time.monotonic()
            for server in (actions, rasa):
                server.tick(now)
            if not rasa.ever_healthy and rasa.process is None:
                print("the Rasa server did not start (see above)", file=sys.stderr)
                return 1
            if rasa.ever_healthy and not announced:
                announced = True
                _announce()
            time.sleep(0.5)
        return 0
    finally:
        print("stopping the Rasa server and the action server...", flush=True)
        for server in (rasa, actions):
            if server.process is not None:
                stop_process(server.process)
        print("stopped.")


def shell() -> int:
    """Talk to the assistant in the terminal (`rasa shell`) with the action server."""
    actions = start_process(action_server_command())
    _wait_for_action_server(actions)
    if actions.poll() is not None:
        return 1
    try:
        command = [
            sys.executable,
            "-m",
            "bot.rasa_cli",
            "shell",
            "--model",
            str(MODEL_FILE),
            "--endpoints",
            "endpoints.yml",
            "--port",
            str(rasa_port()),
        ]
        return subprocess.call(command, cwd=ROOT, env=server_env())  # noqa: S603
    except KeyboardInterrupt:
        return 0
    finally:
        stop_process(actions)
