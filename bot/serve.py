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

from bot.training import MODEL_FILE, ROOT

STOP_TIMEOUT = 10.0


def action_port() -> int:
    """The action server's port."""
    return int(os.environ.get("ACTION_PORT", "5055"))


def rasa_port() -> int:
    """The Rasa server's port."""
    return int(os.environ.get("RASA_PORT", "5005"))


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
    env.setdefault("CONVERSATIONS_DB", "build/conversations.db")
    env.setdefault("ACTION_ENDPOINT_URL", f"http://127.0.0.1:{action_port()}/webhook")
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


def _wait_for_action_server(
    process: subprocess.Popen[bytes], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{action_port()}/health"
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)


def run() -> int:
    """Serve until Ctrl-C (or until a server stops); returns the exit status."""
    actions = start_process(action_server_command())
    _wait_for_action_server(actions)
    if actions.poll() is not None:
        return 1
    # Rasa's HTTP API (--enable-api) stays off: only the channels are served.
    rasa = start_process(
        rasa_server_command(
            ["--interface", os.environ.get("RASA_INTERFACE", "0.0.0.0")]  # noqa: S104
        )
    )
    stopping = stop_requested()
    announced = False
    try:
        while not stopping():
            if actions.poll() is not None or rasa.poll() is not None:
                print("a server stopped unexpectedly; shutting down", file=sys.stderr)
                return 1
            if not announced and wait_until_ready(rasa_port(), timeout=0.3):
                announced = True
                print(
                    f"\nassistant ready: chat page http://localhost:{rasa_port()}/"
                    f" · REST http://localhost:{rasa_port()}/webhooks/rest/webhook"
                    f" · socket.io http://localhost:{rasa_port()}/socket.io"
                    f" · actions http://localhost:{action_port()}  (Ctrl-C stops both)\n",
                    flush=True,
                )
            time.sleep(0.5)
        return 0
    finally:
        print("stopping the Rasa server and the action server...", flush=True)
        stop_process(rasa)
        stop_process(actions)
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
