"""What `python -m bot run` does to keep its two servers up: restart, with backoff.

Each server is watched on its own: one that exits, or stops answering its health check
(HEALTH_FAILURES checks in a row, or no answer within its start-up allowance), is stopped
and started again after a pause that doubles with every restart in a row (BACKOFF_FIRST up
to BACKOFF_MAX seconds) and goes back to the first once the server has stayed healthy for
STABLE_AFTER seconds. Each restart is one line on stderr. The Rasa server is never stopped
because the action server went away: it answers emergencies and apologises with the phone
number meanwhile (docs/operations.md).

This is only what `make run` needs on a developer's or a small clinic's machine; the
deployment's process manager is supervisord with the same policy (deploy/supervisord/).
"""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0
HEALTH_INTERVAL = 5.0
HEALTH_TIMEOUT = 3.0
HEALTH_FAILURES = 3


def answers(url: str, timeout: float = HEALTH_TIMEOUT) -> bool:
    """Whether an HTTP GET of `url` gets any answer below 500 within `timeout`."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 (our own server)
            return True
    except urllib.error.HTTPError as error:
        return error.code < 500
    except (urllib.error.URLError, OSError):
        return False


def say(line: str) -> None:
    """One supervision line on stderr, with the time (UTC)."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} supervisor: {line}", file=sys.stderr, flush=True)


def backoff(restarts_in_a_row: int) -> float:
    """The pause before the next start after this many restarts in a row."""
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, restarts_in_a_row - 1))


@dataclass
class Supervised:
    """One server: how to start it, how to tell it is healthy, and its state."""

    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    stop: Callable[[subprocess.Popen[bytes]], None]
    health_url: str
    #: Seconds a fresh process has to answer its first health check (a model to load).
    start_allowance: float
    check: Callable[[str], bool] = answers
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    healthy_since: float | None = None
    ever_healthy: bool = False
    failures: int = 0
    restarts_in_a_row: int = 0
    next_start: float | None = None
    next_check: float = 0.0
    restarts: int = 0

    def launch(self, now: float) -> None:
        """Start the process now."""
        self.process = self.start()
        self.started_at = now
        self.healthy_since = None
        self.failures = 0
        self.next_start = None
        self.next_check = now

    def healthy(self) -> bool:
        """Whether the server is running and answered its last health check."""
        return self.process is not None and self.healthy_since is not None

    def _schedule_restart(self, now: float, why: str) -> None:
        self.restarts_in_a_row += 1
        self.restarts += 1
        pause = backoff(self.restarts_in_a_row)
        say(f"{self.name} {why}; restarting it in {pause:g} s")
        self.next_start = now + pause

    def tick(self, now: float) -> None:
        """Look at the server once: restart it if it is gone or unhealthy."""
        if self.process is None:
            if self.next_start is not None and now >= self.next_start:
                self.launch(now)
            return
        code = self.process.poll()
        if code is not None:
            self.process = None
            self._schedule_restart(now, f"exited (status {code})")
            return
        if now < self.next_check:
            return
        self.next_check = now + (
            HEALTH_INTERVAL if self.healthy_since is not None else 0.5
        )
        if self.check(self.health_url):
            if self.healthy_since is None:
                if self.ever_healthy:
                    say(f"{self.name} is answering again")
                self.healthy_since = now
                self.ever_healthy = True
            self.failures = 0
            if now - self.healthy_since >= STABLE_AFTER:
                self.restarts_in_a_row = 0
            return
        if self.healthy_since is None:
            if now - self.started_at < self.start_allowance:
                return
            why = f"did not answer within {self.start_allowance:g} s of starting"
        else:
            self.failures += 1
            if self.failures < HEALTH_FAILURES:
                return
            why = f"stopped answering its health check ({self.failures} in a row)"
        self.stop(self.process)
        self.process = None
        self._schedule_restart(now, why)
