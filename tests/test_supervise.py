"""The restart policy of `python -m bot run` (bot.supervise), on a made-up clock.

The processes are stand-ins whose exit and health the test decides; the real servers are
killed and restarted in tests/test_service_e2e.py.
"""

from __future__ import annotations

import pytest

from bot import supervise
from bot.supervise import Supervised, backoff


class FakeProcess:
    def __init__(self) -> None:
        self.returncode: int | None = None
        self.stopped = False

    def poll(self) -> int | None:
        return self.returncode


class Harness:
    """A Supervised server over fake processes, with a health the test sets."""

    def __init__(self, allowance: float = 30.0) -> None:
        self.processes: list[FakeProcess] = []
        self.answering = True
        self.server = Supervised(
            "the test server",
            start=self._start,
            stop=self._stop,
            health_url="http://example.invalid/health",
            start_allowance=allowance,
            check=lambda _url: self.answering,
        )

    def _start(self) -> FakeProcess:  # type: ignore[return-value]
        process = FakeProcess()
        self.processes.append(process)
        return process

    @staticmethod
    def _stop(process: FakeProcess) -> None:  # type: ignore[override]
        process.stopped = True

    def run(self, start: float, end: float, step: float = 0.5) -> None:
        now = start
        while now <= end:
            self.server.tick(now)
            now += step


def test_backoff_doubles_up_to_its_limit():
    assert [backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_an_exited_server_is_restarted_after_the_backoff_with_a_log_line(capsys):
    harness = Harness()
    harness.server.launch(0.0)
    harness.run(0.0, 5.0)
    assert harness.server.healthy()
    harness.processes[0].returncode = -9
    harness.server.tick(6.0)
    assert harness.server.process is None
    assert "the test server exited (status -9); restarting it in 1 s" in (
        capsys.readouterr().err
    )
    harness.server.tick(6.5)
    assert len(harness.processes) == 1  # still waiting out the pause
    harness.server.tick(7.0)
    assert len(harness.processes) == 2


def test_restarts_in_a_row_wait_longer_and_a_stable_server_resets_the_backoff(capsys):
    harness = Harness()
    harness.server.launch(0.0)
    now = 0.0
    pauses = []
    for _ in range(4):
        now += 1.0
        harness.server.tick(now)  # healthy
        harness.processes[-1].returncode = 1
        now += 1.0
        harness.server.tick(now)
        assert harness.server.next_start is not None
        pauses.append(harness.server.next_start - now)
        now = harness.server.next_start
        harness.server.tick(now)
    assert pauses == [1, 2, 4, 8]
    harness.run(now, now + supervise.STABLE_AFTER + supervise.HEALTH_INTERVAL)
    assert harness.server.restarts_in_a_row == 0
    capsys.readouterr()


def test_a_server_that_stops_answering_is_stopped_and_restarted(capsys):
    harness = Harness()
    harness.server.launch(0.0)
    harness.run(0.0, 2.0)
    harness.answering = False
    interval = supervise.HEALTH_INTERVAL
    harness.run(2.5, 2.5 + interval * (supervise.HEALTH_FAILURES - 1))
    assert harness.server.process is harness.processes[0]  # not yet: one miss is noise
    harness.run(3.0 + interval * (supervise.HEALTH_FAILURES - 1), 40.0)
    assert harness.processes[0].stopped
    assert "stopped answering its health check (3 in a row)" in capsys.readouterr().err
    assert len(harness.processes) >= 2


def test_a_fresh_server_has_its_start_allowance_before_it_counts_as_hung(capsys):
    harness = Harness(allowance=30.0)
    harness.answering = False
    harness.server.launch(0.0)
    harness.run(0.0, 29.0)
    assert harness.server.process is harness.processes[0]
    assert not harness.processes[0].stopped
    harness.run(29.5, 31.0)
    assert harness.processes[0].stopped
    assert "did not answer within 30 s of starting" in capsys.readouterr().err


def test_a_server_answering_again_is_said(capsys):
    harness = Harness()
    harness.server.launch(0.0)
    harness.run(0.0, 1.0)
    harness.processes[0].returncode = 1
    harness.run(1.5, 10.0)
    assert harness.server.healthy()
    assert "the test server is answering again" in capsys.readouterr().err


@pytest.mark.parametrize(("code", "answered"), [(200, True), (404, True), (503, False)])
def test_answers_counts_any_reply_below_500(code, answered):
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(code)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/health"
        assert supervise.answers(url, timeout=5) is answered
    finally:
        server.shutdown()


def test_answers_is_false_when_nothing_listens():
    from bot.serve import free_port

    assert supervise.answers(f"http://127.0.0.1:{free_port()}/", timeout=1) is False
