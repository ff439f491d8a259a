"""The scaled profile for tests: a fresh PostgreSQL database on the shared server, the
knowledge store built into it, and 2 Rasa + 2 action servers behind nginx; a private
redis-server for the tests that stop or pause it."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from bench.scaled import build_knowledge, fresh_database, profile_environment
from bot import scaled
from bot.serve import free_port
from bot.training import model_is_current

REDIS_SERVER = shutil.which("redis-server") or ""


def require_model() -> None:
    if not model_is_current():
        pytest.fail(
            "the trained model is missing or stale: run `make model` (make test does)"
        )


@pytest.fixture(scope="package")
def profile_db() -> Iterator[str]:
    """A database of its own for this test session (dropped afterwards)."""
    with fresh_database("pytest") as url:
        yield url


@contextmanager
def running_profile(
    env: dict[str, str], log: Path, servers: int = 1
) -> Iterator[scaled.Cluster]:
    """`servers` Rasa + action servers behind nginx on `env`, their output in `log`."""
    require_model()
    build_knowledge(env)
    with log.open("wb") as output:
        running = scaled.start(servers=servers, env=env, output=output)
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="package")
def cluster(
    profile_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[scaled.Cluster]:
    """The profile, started once for the package's tests."""
    log: Path = tmp_path_factory.mktemp("scaled") / "servers.log"
    with running_profile(profile_environment(profile_db), log, servers=2) as running:
        yield running


class PrivateRedis:
    """A throw-away redis-server on a free port that a test may stop, pause and restart.

    No persistence (`--save ''`): a restart starts empty, like a Redis that lost its
    locks. `pause` (SIGSTOP) makes it hang: connections are accepted, nothing answers.
    """

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="clinic-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/1"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError as error:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    message = "the private redis-server did not start"
                    raise RuntimeError(message) from error
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.resume()
            self.process.terminate()
            self.process.wait(20)
            self.process = None

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def private_redis() -> Iterator[PrivateRedis]:
    """A redis-server of the module's own (the shared one on 6379 is left alone)."""
    if not REDIS_SERVER:
        pytest.fail("redis-server is not installed")
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.remove()
