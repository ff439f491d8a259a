"""The speed measures change how fast the Rasa server answers, never what it answers.

Each measure patches Rasa in the server's process; here every patch is undone after its
test (monkeypatch), so the rest of the suite runs against Rasa as shipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered

from bot import speed, tracker_cache

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet]
responses:
  utter_greet:
  - text: hello
"""
)


@pytest.fixture()
def cached(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tracker cache, installed for one test only."""
    for name in ("retrieve", "save", "_additional_events"):
        monkeypatch.setattr(SQLTrackerStore, name, getattr(SQLTrackerStore, name))
    monkeypatch.setattr(SQLTrackerStore, "_clinic_cached", False, raising=False)
    tracker_cache.install()


def make_store(path: Path) -> SQLTrackerStore:
    return SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(path))


def greeting(text: str) -> UserUttered:
    return UserUttered(text, {"name": "greet", "confidence": 1.0})


async def start(store: SQLTrackerStore, sender: str) -> None:
    tracker = await store.get_or_create_tracker(sender)
    tracker.update(ActionExecuted("action_session_start"))
    tracker.update(SessionStarted())
    tracker.update(ActionExecuted("action_listen"))
    tracker.update(greeting("hi"))
    await store.save(tracker)


def texts(tracker: object) -> list[str]:
    return [e.text for e in tracker.events if isinstance(e, UserUttered)]  # type: ignore[attr-defined]


async def test_next_message_gets_the_saved_tracker_without_reloading(
    cached: None, tmp_path: Path
) -> None:
    store = make_store(tmp_path / "c.db")
    await start(store, "p1")
    tracker = await store.retrieve("p1")
    again = await store.retrieve("p1")
    assert again is tracker  # served from memory
    assert tracker is not None
    tracker.update(greeting("and again"))
    await store.save(tracker)
    database = make_store(tmp_path / "c.db")  # no cache: what the database holds
    fresh = await database.retrieve("p1")
    assert fresh is not None
    assert texts(fresh) == ["hi", "and again"]
    stored = await database.retrieve_full_tracker("p1")
    assert stored is not None
    assert len(stored.events) == len(tracker.events)  # each event stored exactly once


async def test_a_write_by_another_worker_is_seen(cached: None, tmp_path: Path) -> None:
    mine, other = make_store(tmp_path / "c.db"), make_store(tmp_path / "c.db")
    await start(mine, "p1")
    theirs = await other.retrieve("p1")
    assert theirs is not None
    theirs.update(greeting("from the other worker"))
    await other.save(theirs)
    tracker = await mine.retrieve("p1")
    assert tracker is not None
    assert texts(tracker) == ["hi", "from the other worker"]


async def test_a_tracker_changed_but_not_saved_is_reloaded(
    cached: None, tmp_path: Path
) -> None:
    store = make_store(tmp_path / "c.db")
    await start(store, "p1")
    tracker = await store.retrieve("p1")
    assert tracker is not None
    tracker.update(greeting("lost in a crash"))  # processing failed before the save
    reloaded = await store.retrieve("p1")
    assert reloaded is not tracker
    assert reloaded is not None and texts(reloaded) == ["hi"]


async def test_capacity_evicts_the_oldest_conversation(
    cached: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracker_cache, "CAPACITY", 2)
    store = make_store(tmp_path / "c.db")
    for sender in ("p1", "p2", "p3"):
        await start(store, sender)
    assert list(store.__dict__["_clinic_tracker_cache"]) == ["p2", "p3"]
    tracker = await store.retrieve("p1")  # from the database
    assert tracker is not None and texts(tracker) == ["hi"]


def test_action_results_are_still_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    from jsonschema import ValidationError
    from rasa.core.actions.action import RemoteAction

    monkeypatch.setattr(
        RemoteAction, "_validate_action_result", RemoteAction._validate_action_result
    )
    speed.validate_action_results_once()
    action = RemoteAction("action_answer", None)
    assert action._validate_action_result({"events": [], "responses": []})
    with pytest.raises(ValidationError):
        action._validate_action_result({"events": "not a list"})


def test_subclass_walk_is_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    import rasa.shared.utils.common as common
    from rasa.shared.core.events import Event

    monkeypatch.setattr(common, "all_subclasses", common.all_subclasses)
    expected = common.all_subclasses(Event)
    speed.memoize_all_subclasses()
    assert common.all_subclasses(Event) == expected
    assert Event.resolve_by_type("user") is UserUttered


async def test_one_connection_session_per_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rasa.utils.endpoints import EndpointConfig

    monkeypatch.setattr(EndpointConfig, "session", EndpointConfig.session)
    close = speed.keep_connections_alive()
    endpoint = EndpointConfig("http://127.0.0.1:1/webhook")
    async with endpoint.session() as first:
        pass
    async with endpoint.session() as second:
        pass
    assert first is second and not first.closed
    await close()
    assert first.closed


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("", set(speed.MEASURES)),
        ("none", set()),
        ("schema, sqlite", {"schema", "sqlite"}),
        ("schema,bogus", {"schema"}),
    ],
)
def test_measures_are_chosen_by_the_environment(
    setting: str, expected: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPEED_MEASURES", setting)
    assert speed.enabled_measures() == expected
