"""The run-time patches: each names what it replaces and the Rasa it was checked against,
is applied on that Rasa only, and the assistant answers the same with all of them off."""

from __future__ import annotations

import importlib
import logging
import signal
import sys
from pathlib import Path

import pytest

from bot import patches
from bot.patches import PATCHES, patch_module

REPO = Path(__file__).resolve().parent.parent


class App:
    """Stands in for the Sanic app: records the listeners a patch registers."""

    def __init__(self) -> None:
        self.listeners: list[tuple[object, str]] = []

    def register_listener(self, listener: object, event: str) -> None:
        self.listeners.append((listener, event))


def owner_and_name(dotted: str) -> tuple[object, str]:
    """The object holding `dotted`'s last part (a module or a class), and that part."""
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            owner: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:-1]:
            owner = getattr(owner, part)
        return owner, parts[-1]
    raise AssertionError(f"{dotted} names nothing importable")


def replaced(dotted: str) -> object:
    owner, name = owner_and_name(dotted)
    return getattr(owner, name)


@pytest.fixture()
def undone(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Every function the patches replace is put back after the test."""
    for name in PATCHES:
        for dotted in patch_module(name).REPLACES:
            owner, attribute = owner_and_name(dotted)
            monkeypatch.setattr(owner, attribute, getattr(owner, attribute))
    return monkeypatch


@pytest.mark.parametrize("name", PATCHES)
def test_each_patch_names_the_rasa_function_and_version(name: str) -> None:
    patch = patch_module(name)
    assert patch.CHECKED_RASA_VERSION == "3.6.21"
    assert patch.REPLACES and all(callable(replaced(d)) for d in patch.REPLACES)
    assert callable(patch.install)
    source = REPO / "bot" / "patches" / f"{name}.py"
    assert len(source.read_text().splitlines()) < 400


def test_the_switch_names_every_measure_once() -> None:
    assert set(patches.MEASURES) == {*PATCHES, *patches.EXTENSIONS}
    assert len(patches.MEASURES) == 12  # the twelve measures of docs/benchmarks.md
    modules = {p.stem for p in (REPO / "bot" / "patches").glob("*.py")}
    assert modules == {*PATCHES, "__init__"}


def test_another_rasa_version_leaves_every_patch_out(
    undone: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import rasa

    undone.setattr(rasa, "__version__", "3.6.22")
    undone.delenv("SPEED_MEASURES", raising=False)
    before = {d: replaced(d) for n in PATCHES for d in patch_module(n).REPLACES}
    app = App()
    with caplog.at_level(logging.INFO, logger="bot.patches"):
        assert patches.apply(app) == set()
    assert {d: replaced(d) for d in before} == before  # Rasa's own, every one
    assert app.listeners == []
    left_out = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(left_out) == len(PATCHES)  # one line each
    for name, line in zip(PATCHES, left_out, strict=True):
        assert line.startswith(f"speed measure {name} not applied")
        assert "3.6.21" in line and "3.6.22" in line
        assert patch_module(name).REPLACES[0] in line


@pytest.mark.parametrize("name", sorted(patches.EXTENSIONS))
def test_the_classes_speed_ups_are_used_on_the_checked_version_only(
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    import rasa
    from sqlalchemy.pool import NullPool

    from bot.conversation_store import ResilientSQLTrackerStore
    from bot.entities import ClinicEntityExtractor
    from bot.policies import ClinicRulePolicy

    monkeypatch.delenv("SPEED_MEASURES", raising=False)
    assert all(callable(replaced(d)) for d in patches.EXTENSIONS[name].REPLACES)
    assert patches.measure_enabled(name)
    monkeypatch.setattr(rasa, "__version__", "3.7.0")
    with caplog.at_level(logging.WARNING, logger="bot.patches"):
        assert not patches.measure_enabled(name)
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"speed measure {name} not applied") and "3.7.0" in line
    policy = object.__new__(ClinicRulePolicy)
    policy._indexes, policy.index_rules = {}, patches.measure_enabled("rulekeys")
    assert not policy.index_rules  # RulePolicy's own path
    assert not ClinicEntityExtractor({"dimensions": None}).reuse_parse
    store = ResilientSQLTrackerStore(dialect="sqlite", db=str(tmp_path / "c.db"))
    assert store.cache is None  # SQLTrackerStore's own retrieve and save
    assert isinstance(store.engine.pool, NullPool)  # Rasa's options for SQLite


def test_on_the_checked_version_each_patch_is_applied(
    undone: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    undone.delenv("SPEED_MEASURES", raising=False)
    before = {d: replaced(d) for n in PATCHES for d in patch_module(n).REPLACES}
    app = App()
    with caplog.at_level(logging.WARNING, logger="bot.patches"):
        assert patches.apply(app) == set(PATCHES)
    assert caplog.records == []
    assert all(replaced(d) is not rasas for d, rasas in before.items())
    assert [event for _, event in app.listeners] == ["after_server_stop"]  # keepalive
    assert patches.apply(App()) == set(PATCHES)  # applying twice is harmless
    from rasa.shared.core.events import Event, UserUttered

    assert Event.resolve_by_type("user") is UserUttered


def test_only_the_patches_switched_on_are_applied(
    undone: pytest.MonkeyPatch,
) -> None:
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.domain import Domain

    rasas = Domain.states_for_tracker_history
    undone.setenv("SPEED_MEASURES", "schema,rulekeys")
    assert patches.apply(App()) == {"schema"}
    assert hasattr(RemoteAction._validate_action_result, "__wrapped__")
    assert Domain.states_for_tracker_history is rasas
    undone.setenv("SPEED_MEASURES", "none")
    assert patches.apply(App()) == set()


# The assistant with every patch off (as on a Rasa version they were not checked
# against) and with all on: the same conversations get the same replies.
CONVERSATIONS = {
    "knee": [
        "what can help my knee",
        '/ask_section{"section_ref":"pain-management-injections.txt#9"}',
        "Is PRP safe?",
    ],
    "flag": ["i've had a fever and chills since my epidural yesterday"],
    "cost": ["how much does a nerve block cost with medicare", "yes please"],
    "callback": [
        "can someone call me back please",
        "my name is Maria Lopez",
        "(212) 555-0147",
        "weekday mornings",
        "yes",
        "what is prp",
    ],
    "miss": ["what is the capital of peru", "who won the football last night"],
}


@pytest.mark.e2e
@pytest.mark.slow
def test_with_every_patch_off_the_assistant_answers_the_same(
    store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from bot.serve import start_process, stop_process, wait_until_ready
    from bot.training import model_is_current
    from tests.served import answer_type, say, server_env

    if not model_is_current():
        pytest.fail("the trained model is missing or stale: run `make model`")
    running = {}
    try:
        for variant, setting in (("off", "none"), ("on", "all")):
            folder = tmp_path_factory.mktemp(variant)
            env = server_env(store_url, folder, SPEED_MEASURES=setting)
            log = folder / "run.log"
            with open(log, "wb") as output:
                process = start_process(
                    [sys.executable, "-m", "bot", "run"], env=env, output=output
                )
            running[variant] = (process, int(env["RASA_PORT"]), log)
        replies: dict[str, dict[str, list[list[dict]]]] = {}
        for variant, (_, port, _) in running.items():
            assert wait_until_ready(port, timeout=240), f"patches {variant}: no start"
            base = f"http://127.0.0.1:{port}"
            replies[variant] = {
                sender: [say(base, f"patches-{sender}", text) for text in texts]
                for sender, texts in CONVERSATIONS.items()
            }
        assert replies["off"] == replies["on"]
        kinds = {
            sender: [answer_type(reply) for reply in conversation]
            for sender, conversation in replies["off"].items()
        }
        assert kinds["knee"] == ["knowledge", "knowledge", "not_covered"]
        assert kinds["flag"] == ["emergency"]
        assert kinds["cost"] == ["not_covered", "form"]
        assert kinds["callback"][:5] == ["form"] * 5
        assert kinds["callback"][5] == "knowledge"
        assert kinds["miss"] == ["not_covered", "handoff"]
    finally:
        for process, _, _ in running.values():
            stop_process(process, signal.SIGINT, timeout=30)
    logs = {
        variant: log.read_text(errors="replace")
        for variant, (_, _, log) in running.items()
    }
    assert "patches applied: none" in logs["off"]
    assert "patches applied: admission, dietcall" in logs["on"]
