"""Shared fixtures: a real knowledge store built from the clinic's document in a temporary
folder, and rasa_sdk's real tracker and dispatcher."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from knowledge import settings
from knowledge.builder import build_store
from knowledge.environment import get_session_factory

ROOT = Path(__file__).resolve().parent.parent

# The servers the tests start (and `rasa test`, which reads endpoints.yml) need the
# shared action token; one per test run, as `python -m bot run` makes one per run.
os.environ.setdefault("ACTION_TOKEN", secrets.token_urlsafe(32))


@pytest.fixture(scope="session")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A knowledge store built once per test session from knowledge/sources."""
    folder = tmp_path_factory.mktemp("store")
    url = f"sqlite:///{folder / 'knowledge.db'}"
    report = build_store(url=url)
    assert report.built and report.sections == 11
    return url


@pytest.fixture()
def session(store_url: str) -> Iterator[Session]:
    """A session on the test store, one per test."""
    factory = get_session_factory(store_url)
    with factory() as session, session.begin():
        yield session


@pytest.fixture()
def use_store(store_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the code under test (actions, CLI) at the test store."""
    monkeypatch.setenv("KNOWLEDGE_DB_URL", store_url)
    return store_url


@pytest.fixture()
def sources(tmp_path: Path) -> Path:
    """A writable copy of the sources folder."""
    target = tmp_path / "sources"
    shutil.copytree(settings.SOURCES_DIR, target)
    return target


@pytest.fixture(scope="session")
def domain() -> dict[str, Any]:
    """The bot's domain, as the action server receives it."""
    return yaml.safe_load((ROOT / "domain.yml").read_text())


@pytest.fixture()
def dispatcher() -> CollectingDispatcher:
    """rasa_sdk's real dispatcher."""
    return CollectingDispatcher()


def make_tracker(
    text: str,
    intent: str,
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    confidence: float = 0.9,
) -> Tracker:
    """A real rasa_sdk Tracker whose latest message is `text` with `intent`."""
    message = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "entities": entities or [],
    }
    return Tracker(
        sender_id="test",
        slots=slots or {},
        latest_message=message,
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )
