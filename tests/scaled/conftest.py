"""The scaled profile for tests: a fresh PostgreSQL database on the shared server, the
knowledge store built into it, and 2 Rasa + 2 action servers behind nginx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.scaled import build_knowledge, fresh_database, profile_environment
from bot import scaled
from bot.training import model_is_current


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


@pytest.fixture(scope="package")
def cluster(
    profile_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[scaled.Cluster]:
    """The profile, started once for the package's tests."""
    require_model()
    env = profile_environment(profile_db)
    build_knowledge(env)
    log: Path = tmp_path_factory.mktemp("scaled") / "servers.log"
    with log.open("wb") as output:
        running = scaled.start(servers=2, env=env, output=output)
        try:
            yield running
        finally:
            running.stop()
