"""The speed measures change how fast the Rasa server answers, never what it answers.

Each patch (bot/patches/) changes Rasa in the server's process; here every patch is
undone after its test (monkeypatch), so the rest of the suite runs against Rasa as
shipped. The project's policy, entity extractor and tracker store are compared with
Rasa's classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered

from bot import patches, policies, tracker_cache
from bot.conversation_store import ResilientSQLTrackerStore
from bot.patches import (
    admission,
    dietcall,
    graphrunner,
    keepalive,
    paststates,
    schema,
    sparsestack,
    subclasses,
)

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
    """The project's store with its tracker cache (the speed measure on)."""
    monkeypatch.delenv("SPEED_MEASURES", raising=False)


def make_store(path: Path) -> ResilientSQLTrackerStore:
    """The project's tracker store, as endpoints.yml builds it."""
    store = ResilientSQLTrackerStore(DOMAIN, dialect="sqlite", db=str(path))
    assert store.cache is not None
    return store


def rasas_store(path: Path) -> SQLTrackerStore:
    """Rasa's own store on the same file: what the database holds."""
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
    database = rasas_store(tmp_path / "c.db")  # no cache: what the database holds
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


async def test_a_conversation_started_elsewhere_after_a_miss_is_read(
    cached: None, tmp_path: Path
) -> None:
    mine, other = make_store(tmp_path / "c.db"), make_store(tmp_path / "c.db")
    assert await mine.retrieve("p1") is None  # nothing stored yet
    await start(other, "p1")  # the conversation starts on another server
    tracker = await mine.get_or_create_tracker("p1")
    assert texts(tracker) == ["hi"]
    tracker.update(greeting("second"))
    await mine.save(tracker)
    stored = await rasas_store(tmp_path / "c.db").retrieve_full_tracker("p1")
    assert stored is not None and texts(stored) == ["hi", "second"]  # none twice


async def test_a_new_conversation_is_known_without_rasas_read(
    cached: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    rasas = SQLTrackerStore.retrieve

    async def counted(self: SQLTrackerStore, sender_id: str) -> Any:
        reads.append(sender_id)
        return await rasas(self, sender_id)

    monkeypatch.setattr(SQLTrackerStore, "retrieve", counted)
    store = make_store(tmp_path / "c.db")
    assert await store.retrieve("p0") is None
    await start(store, "p1")  # created, then saved whole
    assert reads == []
    elsewhere = make_store(tmp_path / "c.db")  # a server that never saw p1
    tracker = await elsewhere.retrieve("p1")
    assert reads == ["p1"]
    assert tracker is not None and texts(tracker) == ["hi"]


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
    assert list(store.cache.entries) == ["p2", "p3"]
    tracker = await store.retrieve("p1")  # from the database
    assert tracker is not None and texts(tracker) == ["hi"]


async def test_idle_conversations_leave_the_cache(
    cached: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(tracker_cache, "_now", lambda: clock[0])
    store = make_store(tmp_path / "c.db")
    await start(store, "p1")
    await start(store, "p2")
    clock[0] += 100
    assert await store.retrieve("p1") is not None  # used again: stays longer
    clock[0] = 1000 + tracker_cache.IDLE_SECONDS + 1
    await start(store, "p3")
    assert list(store.cache.entries) == ["p1", "p3"]
    clock[0] += tracker_cache.IDLE_SECONDS + 1
    await start(store, "p4")
    assert list(store.cache.entries) == ["p4"]
    tracker = await store.retrieve("p2")  # from the database
    assert tracker is not None and texts(tracker) == ["hi"]


def test_action_results_are_still_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    from jsonschema import ValidationError
    from rasa.core.actions.action import RemoteAction

    monkeypatch.setattr(
        RemoteAction, "_validate_action_result", RemoteAction._validate_action_result
    )
    schema.validate_action_results_once()
    action = RemoteAction("action_answer", None)
    assert action._validate_action_result({"events": [], "responses": []})
    with pytest.raises(ValidationError):
        action._validate_action_result({"events": "not a list"})


EVENT_CASES = [
    {"event": "slot", "name": "answer_outcome", "value": "knowledge"},
    {"event": "slot", "name": "answer_outcome", "value": None, "timestamp": 1.5},
    {"event": "slot", "name": "answer_outcome"},  # no value
    {"event": "slot", "name": 3, "value": 1},
    {"event": "slot", "name": "x", "value": 1, "timestamp": "noon"},
    {"event": "slot", "name": "x", "value": 1, "metadata": []},
    {"event": "action", "name": "utter_greet", "policy": None, "confidence": 0.9},
    {"event": "action", "name": 5},
    {"event": "user", "text": "hi", "parse_data": {"intent": {"name": "greet"}}},
    {"event": "user", "text": "hi", "parse_data": {"entities": [{"entity": "x"}]}},
    {"event": "user", "text": "hi", "parse_data": {"response_selector": {}}},
    {"event": "entities", "entities": [{"entity": "body_area", "value": "knee"}]},
    {"event": "entities"},
    {"event": "bot", "text": "hello"},
    {"event": "active_loop", "name": "callback_form"},
    {"event": "followup", "name": "action_answer"},
    {"event": "session_started"},
    {"event": "no_such_event"},
    {"event": None},
    {"event": ["slot"], "name": "x", "value": 1},
    {"name": "answer_outcome", "value": 1},
    "slot",
    [],
]


@pytest.mark.parametrize("event", EVENT_CASES)
def test_action_results_are_judged_as_rasas_schema_judges_them(
    event: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jsonschema import ValidationError, validators
    from rasa.core.actions.action import RemoteAction

    monkeypatch.setattr(
        RemoteAction, "_validate_action_result", RemoteAction._validate_action_result
    )
    spec = RemoteAction.action_response_format_spec()
    rasa = validators.validator_for(spec)(spec)
    schema.validate_action_results_once()
    action = RemoteAction("action_answer", None)
    ok = {"event": "slot", "name": "a", "value": 1}
    for result in (
        {"events": [event], "responses": []},
        {"events": [ok, event, ok]},
        {"events": [event], "responses": [{"text": "hi"}, "not an object"]},
    ):
        try:
            judged = action._validate_action_result(result)
        except ValidationError:
            judged = False
        assert judged == rasa.is_valid(result)


def test_subclass_walk_is_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    import rasa.shared.utils.common as common
    from rasa.shared.core.events import Event

    monkeypatch.setattr(common, "all_subclasses", common.all_subclasses)
    expected = common.all_subclasses(Event)
    subclasses.memoize_all_subclasses()
    assert common.all_subclasses(Event) == expected
    assert Event.resolve_by_type("user") is UserUttered


async def test_one_connection_session_per_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rasa.utils.endpoints import EndpointConfig

    monkeypatch.setattr(EndpointConfig, "session", EndpointConfig.session)
    close = keepalive.keep_connections_alive()
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
        ("", set(patches.MEASURES)),
        ("none", set()),
        ("schema, sqlite", {"schema", "sqlite"}),
        ("schema,bogus", {"schema"}),
    ],
)
def test_measures_are_chosen_by_the_environment(
    setting: str, expected: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPEED_MEASURES", setting)
    assert patches.enabled_measures() == expected


def stored_rows(path: Path) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT sender_id, type_name, timestamp, intent_name, action_name, data"
            " FROM events ORDER BY id"
        ).fetchall()


async def converse(store: SQLTrackerStore) -> None:
    """A short conversation: saves after creating, then after each message."""
    tracker = await store.get_or_create_tracker("p1")
    tracker.update(ActionExecuted("action_session_start"))
    tracker.update(SessionStarted())
    tracker.update(ActionExecuted("action_listen"))
    await store.save(tracker)
    for text in ("hi", "hello again", "bye"):
        tracker = await store.get_or_create_tracker("p1")
        tracker.update(greeting(text))
        tracker.update(ActionExecuted("utter_greet"))
        tracker.update(ActionExecuted("action_listen"))
        await store.save(tracker)


async def test_the_quick_save_stores_what_rasas_save_stores(
    cached: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.0)  # equal timestamps
    await converse(rasas_store(tmp_path / "rasa.db"))
    quick = 0
    insert = tracker_cache.TrackerCache.insert_new_events

    def counted(*args: Any) -> Any:
        nonlocal quick
        quick += 1
        return insert(*args)

    monkeypatch.setattr(tracker_cache.TrackerCache, "insert_new_events", counted)
    await converse(make_store(tmp_path / "cached.db"))
    # Every save took the quick path, the first (inside get_or_create_tracker) too.
    assert quick == 5
    assert stored_rows(tmp_path / "cached.db") == stored_rows(tmp_path / "rasa.db")


async def test_with_the_measures_off_the_store_is_rasas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPEED_MEASURES=none: no cache, no kept SQLite connections; the same rows."""
    import time

    from sqlalchemy.pool import NullPool, QueuePool

    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.0)
    await converse(rasas_store(tmp_path / "rasa.db"))
    monkeypatch.setenv("SPEED_MEASURES", "none")
    plain = ResilientSQLTrackerStore(
        DOMAIN, dialect="sqlite", db=str(tmp_path / "p.db")
    )
    assert plain.cache is None and isinstance(plain.engine.pool, NullPool)
    await converse(plain)
    assert stored_rows(tmp_path / "p.db") == stored_rows(tmp_path / "rasa.db")
    monkeypatch.setenv("SPEED_MEASURES", "sqlite")
    pooled = ResilientSQLTrackerStore(
        DOMAIN, dialect="sqlite", db=str(tmp_path / "q.db")
    )
    assert pooled.cache is None and isinstance(pooled.engine.pool, QueuePool)


@pytest.mark.slow
def test_the_model_measures_change_no_prediction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same model, same messages: with the graph runner, sparse stacking and concrete
    TensorFlow call, the NLU and the policies give identical outputs."""
    from rasa.core.channels.channel import UserMessage
    from rasa.engine import loader
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.nlu.training_data.features import Features
    from rasa.utils.tensorflow.models import RasaModel

    from bot.training import MODEL_FILE, model_is_current

    if not model_is_current():
        pytest.fail("the trained model is missing or stale: run `make model`")
    texts = [
        "what is prp",
        "hi",
        "my knee hurts, what helps? and is PRP any good for the knee",
        "",
        "I can't breathe",
        "can i drive home after the steroid injection in my back",
    ]

    steps: list[Any] = []

    def outputs(runner_class: type, folder: Path) -> list[Any]:
        folder.mkdir()
        metadata, runner = loader.load_predict_graph_runner(
            folder, MODEL_FILE, LocalModelStorage, runner_class
        )
        found = []
        for text in texts * 2:  # the second time round uses the traced TF function
            tracker = DialogueStateTracker.from_events(
                "p1", [ActionExecuted("action_listen")], slots=metadata.domain.slots
            )
            nlu = runner.run(
                inputs={"__message__": [UserMessage(text)], "__tracker__": tracker},
                targets=[metadata.nlu_target],
            )[metadata.nlu_target][0]
            tracker.update(UserUttered(text, nlu.get("intent"), nlu.get("entities")))
            prediction = runner.run(
                inputs={"__tracker__": tracker}, targets=[metadata.core_target]
            )[metadata.core_target]
            found.append(
                (
                    [nlu.get(key) for key in ("intent", "intent_ranking", "entities")],
                    prediction.policy_name,
                    prediction.probabilities,
                )
            )
        steps.extend(
            node._component.model._tf_predict_step
            for node in runner._instantiated_nodes.values()
            if hasattr(getattr(node, "_component", None), "model")
        )
        return found

    expected = outputs(DaskGraphRunner, tmp_path / "rasa")
    monkeypatch.setattr(
        Features, "_combine_sparse_features", Features._combine_sparse_features
    )
    monkeypatch.setattr(RasaModel, "_rasa_predict", RasaModel._rasa_predict)
    sparsestack.stack_sparse_features_directly()
    dietcall.call_concrete_prediction_steps()
    assert outputs(graphrunner.SequentialGraphRunner, tmp_path / "fast") == expected
    assert [type(step).__name__ for step in steps] == ["Function", "FlatPredictionStep"]


def conversation_tests(domain: Any) -> list[list[Any]]:
    """The events of every conversation test (tests/conversations), one list each."""
    from rasa.core.training import load_data

    from bot.training import ROOT

    return [
        list(tracker.events)
        for path in sorted((ROOT / "tests" / "conversations").glob("*.yml"))
        for tracker in load_data(str(path), domain, augmentation_factor=0)
    ]


@pytest.mark.slow
def test_rule_matching_measure_changes_no_prediction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The policies predict the same at every turn of the conversation tests, one by
    one and all of them run together as one long conversation (longer than any rule)."""
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.engine import loader
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.training import MODEL_FILE, model_is_current

    if not model_is_current():
        pytest.fail("the trained model is missing or stale: run `make model`")
    metadata, runner = loader.load_predict_graph_runner(
        tmp_path, MODEL_FILE, LocalModelStorage, graphrunner.SequentialGraphRunner
    )
    domain = metadata.domain
    conversations = conversation_tests(domain)
    conversations.append([event for events in conversations for event in events])

    def predictions() -> list[tuple[str | None, list[float]]]:
        found = []
        for events in conversations:
            for end, event in enumerate(events):
                if end and isinstance(event, ActionExecuted):
                    tracker = DialogueStateTracker.from_events(
                        "p1", events[:end], slots=domain.slots
                    )
                    prediction = runner.run(
                        inputs={"__tracker__": tracker},
                        targets=[metadata.core_target],
                    )[metadata.core_target]
                    found.append((prediction.policy_name, prediction.probabilities))
        return found

    policy = next(
        node._component
        for node in runner._instantiated_nodes.values()
        if isinstance(getattr(node, "_component", None), RulePolicy)
    )
    assert isinstance(policy, policies.ClinicRulePolicy)  # as config.yml names it
    assert policy.index_rules
    with monkeypatch.context() as rasas:  # RulePolicy's own path
        rasas.setattr(policy, "index_rules", False)
        rasas.setattr(
            policies.ClinicRulePolicy,
            "_rule_key_to_state",
            RulePolicy.__dict__["_rule_key_to_state"],
        )
        expected = predictions()
    assert predictions() == expected
    assert len(expected) > 300  # the long conversation ran (315 events)
    assert policy._indexes  # the index was used
    restart = DialogueStateTracker.from_events(
        "p1",
        [ActionExecuted("action_listen"), UserUttered("/restart", {"name": "restart"})],
        slots=domain.slots,
    )
    prediction = runner.run(
        inputs={"__tracker__": restart}, targets=[metadata.core_target]
    )[metadata.core_target]
    predicted = domain.action_names_or_texts[prediction.max_confidence_index]
    assert predicted == "action_restart"  # RulePolicy's default rules still apply

    # The rules a state history admits, compared directly: every turn of the long
    # conversation, and histories shuffled together from its states.
    original = RulePolicy._get_possible_keys
    long_one = DialogueStateTracker.from_events(
        "p1", conversations[-1], slots=domain.slots
    )
    states = policy._prediction_states(long_one, domain)
    random = __import__("random").Random(5)
    histories = [states[:end] for end in range(1, len(states) + 1)]
    histories += [random.sample(states, random.randint(1, 8)) for _ in range(300)]
    for lookup in (
        policy.lookup["rules"],
        policy.lookup["rules_for_loop_unhappy_path"],
    ):
        for history in histories:
            assert policy._get_possible_keys(lookup, history) == original(
                policy, lookup, history
            )


def test_rules_naming_no_action_are_always_compared() -> None:
    """Rules whose last turn names no action (a conversation start, an action text, a
    "should not be set") are not grouped away; every rule shape is judged as Rasa does."""
    import itertools
    import json
    import random

    from rasa.core.policies.rule_policy import SHOULD_NOT_BE_SET, RulePolicy

    original = RulePolicy._get_possible_keys
    turns = [
        {},  # a conversation start
        {"prev_action": {"action_name": "action_listen"}, "user": {"intent": "greet"}},
        {"prev_action": {"action_name": "action_listen"}, "user": {"intent": "bye"}},
        {"prev_action": {"action_name": "utter_greet"}},
        {"prev_action": {"action_text": "hello"}},
        {"prev_action": {"action_name": SHOULD_NOT_BE_SET}},
        {"prev_action": {"action_name": "utter_greet"}, "slots": {"a": (1.0,)}},
    ]
    rules = {
        json.dumps(list(states)): "action"
        for length in (1, 2, 3)
        for states in itertools.product(turns, repeat=length)
    }
    policy = object.__new__(policies.ClinicRulePolicy)
    policy._indexes, policy.index_rules = {}, True
    assert policies.index_rules(rules).unindexed  # the shapes are there
    conversation_turns = [turn for turn in turns[1:] if "prev_action" in turn]
    chosen = random.Random(11)
    for _ in range(300):
        more = chosen.choices(conversation_turns, k=chosen.randint(0, 4))
        history = [turns[0], *more]
        assert policy._get_possible_keys(rules, history) == original(
            policy, rules, history
        )


@pytest.mark.slow
def test_continued_past_states_are_rasas_at_every_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The conversation tests grown one event at a time into one tracker, as the server
    grows it, and all of them in one long conversation with a session start, a rewind
    and an undo in it: at every event, the states are the ones Rasa replays."""
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import (
        ActionReverted,
        SessionStarted,
        UserUtteranceReverted,
    )
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.training import ROOT

    domain = Domain.load(str(ROOT / "domain.yml"))
    conversations = conversation_tests(domain)
    plain = [
        events
        for events in conversations
        if not any(e.type_name == "active_loop" for e in events)
    ]
    long_one = [e for events in plain for e in events]
    third = len(long_one) // 3
    long_one[third:third] = [UserUtteranceReverted()]
    long_one[2 * third : 2 * third] = [ActionReverted(), SessionStarted()]
    conversations.append(long_one)
    monkeypatch.setattr(
        Domain, "states_for_tracker_history", Domain.states_for_tracker_history
    )
    rasas = Domain.states_for_tracker_history
    paststates.continue_past_states()
    compared = 0
    for events in conversations:
        for omit in (False, True):
            tracker = DialogueStateTracker("p1", domain.slots)
            for event in events:
                tracker.update(event)
                found = tracker.past_states(domain, omit_unset_slots=omit)
                assert found == rasas(domain, tracker, omit_unset_slots=omit)
                found[-1].clear()  # callers may change the list they are given
                compared += 1
    assert compared > 800
    assert "_clinic_replay" in tracker.__dict__  # the long one was continued
    assert len(plain) < len(conversations) - 1  # the form conversations ran too


def patient_texts() -> list[str]:
    """Every message of the training data, the held-out set and the red-flag tables."""
    from rasa.shared.nlu.training_data.loading import load_data

    from bench.quality import red_flag_tables
    from bot.training import ROOT

    texts = [
        example.get("text")
        for folder in ("data/nlu", "tests/nlu/heldout.yml")
        for example in load_data(str(ROOT / folder)).training_examples
    ]
    for table in red_flag_tables():
        texts += table.emergencies + table.near_misses
    return texts


def test_entities_from_the_lowercased_parse_are_rasas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On every patient message of the project (and odd casing), the project's extractor
    gives the entities Rasa's SpacyEntityExtractor (with its second parse) gives; values
    keep the patient's casing."""
    from rasa.nlu.constants import SPACY_DOCS
    from rasa.nlu.extractors.spacy_entity_extractor import SpacyEntityExtractor
    from rasa.nlu.utils.spacy_utils import SpacyModel
    from rasa.shared.nlu.training_data.message import Message

    from bot.entities import ClinicEntityExtractor
    from knowledge import pipeline

    nlp = pipeline.load()
    model = SpacyModel(model=nlp, model_name="clinic")
    config = {**SpacyEntityExtractor.get_default_config(), "dimensions": None}
    odd = [
        "PRP for my KNEE",
        "Epidural Steroid Injection?",
        "İstanbul knee prp",
        "ÉPIDURAL",
    ]
    texts = [*patient_texts(), *odd]
    assert len(texts) > 2000

    def entities(extractor: SpacyEntityExtractor) -> list[Any]:
        messages = []
        for text in texts:
            message = Message(data={"text": text})
            message.set(SPACY_DOCS["text"], nlp(text.lower()))  # as SpacyNLP leaves it
            messages.append(message)
        extractor.process(messages, model)
        return [
            [{**entity, "extractor": "any"} for entity in message.get("entities", [])]
            for message in messages
        ]

    expected = entities(SpacyEntityExtractor(config))
    parses = 0
    parse = nlp.__class__.__call__

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal parses
        parses += 1
        return parse(self, *args, **kwargs)

    ours = ClinicEntityExtractor(config)
    assert ours.reuse_parse and ours.name == "ClinicEntityExtractor"
    monkeypatch.setattr(nlp.__class__, "__call__", counted)
    assert entities(ours) == expected
    assert parses == len(texts) + 1  # one parse a message (SpacyNLP's); "İ" twice
    assert sum(map(bool, expected)) > 300  # many messages name terms
    assert expected[-4][0]["value"] == "PRP" and expected[-4][1]["value"] == "KNEE"


def test_sparse_features_are_stacked_as_scipy_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numpy as np
    import scipy.sparse
    from rasa.shared.nlu.training_data.features import Features

    rng = np.random.default_rng(3)
    blocks = [
        scipy.sparse.random(4, width, density=0.4, format="coo", random_state=rng)
        for width in (3, 1, 5)
    ]
    monkeypatch.setattr(
        Features, "_combine_sparse_features", Features._combine_sparse_features
    )
    sparsestack.stack_sparse_features_directly()
    assert hasattr(Features._combine_sparse_features, "__wrapped__")
    joined = Features(blocks[0], "sequence", "text", "a")
    for block in blocks[1:]:
        joined.combine_with_features(Features(block, "sequence", "text", "b"))
    assert (joined.features.toarray() == scipy.sparse.hstack(blocks).toarray()).all()
    with pytest.raises(ValueError, match="sequence dimensions do not match"):
        joined.combine_with_features(
            Features(scipy.sparse.coo_matrix((2, 2)), "sequence", "text", "c")
        )


async def test_messages_are_admitted_in_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from rasa.core.agent import Agent

    started: list[int] = []
    running, most = 0, 0

    async def handle(_agent: object, message: int) -> int:
        nonlocal running, most
        started.append(message)
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)  # e.g. waiting for the action server
        running -= 1
        return message

    monkeypatch.setattr(Agent, "handle_message", handle)
    admission.admit_messages_in_turn(2)
    agent = object.__new__(Agent)
    replies = await asyncio.gather(*(agent.handle_message(n) for n in range(8)))
    assert replies == list(range(8))
    assert most == 2
    assert started == list(range(8))  # first come, first served


@pytest.mark.parametrize(
    ("setting", "expected"), [("", 3), ("5", 5), ("0", 1), ("x", 3)]
)
def test_messages_in_progress_setting(
    setting: str, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSAGES_IN_PROGRESS", setting)
    assert admission.messages_in_progress() == expected
