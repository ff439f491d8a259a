"""Speed measures for the Rasa server, each one kept because a measurement paid for it.

`apply(app)` is called once from bot.server.build_app. Every measure can be switched off
for an A/B comparison with SPEED_MEASURES (a comma-separated list of the names below;
"none" switches all off, unset means all on). What each one bought is in
docs/benchmarks.md ("What made it faster").

- `subclasses`: Rasa looks event and slot classes up by walking the class tree on every
  event it deserialises (rasa.shared.utils.common.all_subclasses); a profile of the
  server under load found a fifth of its time there. The tree does not change once the
  server is running, so the walk is remembered per class.
- `keepalive`: Rasa opens a new aiohttp session (a new TCP connection) to the action
  server for every action call; one session per endpoint keeps the connection alive.
- `schema`: Rasa validates every action server reply with `jsonschema.validate`, which
  first checks the schema itself, then builds a validator: a fifth of the server's time
  under load. The validators are built once, and each event is checked against the one
  event type its `event` field names: Rasa's schema says "exactly one of" 23 event
  types, each fixing `event` to its own constant, so the other 22 can never match and
  trying them all (5 % of the server's time) decides nothing.
- `sqlite`: Rasa's SQL tracker store on SQLite gets no connection pool (SQLAlchemy 1.4
  opens and closes a file connection per query session, two to three times a message),
  and the file is in rollback-journal mode. It gets a small pool of kept connections, and
  the file write-ahead logging with `synchronous=NORMAL`: a commit no longer waits for
  two fsyncs, readers never wait for the writer, and a crash still cannot corrupt the
  file (it can lose the last commits, which for a chat is the message being answered).
- `trackercache`: recent conversations kept in memory in front of the SQL tracker store,
  checked against the database with one indexed query (bot.tracker_cache).
- `graphrunner`: Rasa runs the model's graph (the NLU pipeline, then the policies, several
  times a message) through dask's scheduler, and first works out again which nodes the
  targets need, walking the graph recursively. The graph is fixed once loaded: the order
  of the nodes is worked out once per set of targets and the nodes are called in it.
- `sparsestack`: DIET joins the four featurizers' sparse matrices of each message with
  scipy's general block-matrix `hstack`, one pair at a time; for two blocks side by side
  the entries are concatenated with the column offset, which gives the same matrix.
- `dietcall`: DIET's prediction step is a `tf.function` with a fixed input signature, so
  it has exactly one concrete function; calling that directly skips TensorFlow's
  per-call dispatch (matching the inputs against the signature, looking up the trace).
  Its inputs, a flat tuple of NumPy arrays, are made tensors of the signature's types
  directly and handed to the function's flat call: TensorFlow's general path, which
  walks the nested signature and converts each array through five layers of Python,
  took twice as long as the network itself (7 % of the server's time against 3 %).
  The traced graph still checks every input's shape.
- `rulekeys`: RulePolicy keeps each rule as a JSON text and, for every prediction,
  parses every rule again for every turn of the conversation, back to its start, even
  past the longest rule (6 % of the server's time), and compares all 118 rules with the
  last turn when only those that follow its action can match. Each rule is parsed once,
  the rules are grouped by the action their last turn follows, and the turns older than
  the longest rule are not looked at: every rule already matches them.
- `paststates`: every prediction turns the whole conversation into its list of states
  (one per action), replaying every event into a fresh tracker (9 % of the server's
  time, growing with the conversation). The states of the turns already replayed do not
  change as events are added, so the replay is kept with the tracker and continued
  from where it stopped. Anything that rewrites history (a session start, a restart, an
  undo, a rewind) starts the replay again, and a conversation with a form (whose loop
  events change how earlier turns count) always takes Rasa's own path.
- `entitydoc`: SpacyEntityExtractor parses every message with the spaCy pipeline a
  second time, because SpacyNLP's parse is of the lowercased text ("bad for NER"). This
  project's entity ruler matches on lowercase forms only, so the entities of the
  lowercased parse are the same spans; their values are taken from the message as
  written. A message whose lowercase form has another length keeps Rasa's second parse.
- `admission`: at most MESSAGES_IN_PROGRESS messages (default 3) are worked on at once;
  the others wait their turn, first come first served. Rasa starts every message the
  moment it arrives, so under load each message's steps take turns with those of every
  other message on the one event loop, and a knowledge answer, which waits for the
  action server half-way, queues twice. Three at a time still let one message use the CPU
  while another waits for the action server.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


def rasa_original(owner: Any, name: str) -> Any:
    """`owner.name` as Rasa ships it, even when a measure has replaced it already."""
    current = getattr(owner, name)
    return getattr(current, "__wrapped__", current)


def put_in_place(owner: Any, name: str, replacement: Any, original: Any) -> None:
    """Replace `owner.name`, remembering the original (so applying twice is harmless)."""
    replacement.__wrapped__ = original
    setattr(owner, name, replacement)


def enabled_measures() -> set[str]:
    """The measures switched on by SPEED_MEASURES (all of them when it is unset).

    MEASURES, the names of INSTALLERS, is at the end of this module.
    """
    raw = os.environ.get("SPEED_MEASURES", "").strip().lower()
    if not raw or raw == "all":
        return set(MEASURES)
    if raw == "none":
        return set()
    names = {name.strip() for name in raw.split(",") if name.strip()}
    unknown = names - set(MEASURES)
    if unknown:
        logger.warning("unknown SPEED_MEASURES ignored: %s", ", ".join(sorted(unknown)))
    return names & set(MEASURES)


def memoize_all_subclasses() -> None:
    """Remember Rasa's class-tree walk: classes are all imported before serving."""
    import rasa.shared.utils.common as common

    walk: Callable[[Any], list[Any]] = rasa_original(common, "all_subclasses")
    known: dict[Any, list[Any]] = {}

    def all_subclasses(cls: Any) -> list[Any]:
        if cls not in known:
            known[cls] = walk(cls)
        return list(known[cls])

    put_in_place(common, "all_subclasses", all_subclasses, walk)


class _KeptSession:
    """Stands in for a new session in Rasa's `async with endpoint.session()`."""

    def __init__(self, session: Any) -> None:
        self._session = session

    async def __aenter__(self) -> Any:
        return self._session

    async def __aexit__(self, *_exc: object) -> None:
        return None  # the session stays open for the next call


def keep_connections_alive() -> Callable[[], Any]:
    """One aiohttp session per endpoint and event loop; returns the closer."""
    import asyncio

    from rasa.utils.endpoints import EndpointConfig

    open_session = rasa_original(EndpointConfig, "session")
    sessions: dict[tuple[int, int], Any] = {}

    def session(self: EndpointConfig) -> Any:
        key = (id(self), id(asyncio.get_running_loop()))
        kept = sessions.get(key)
        if kept is None or kept.closed:
            kept = sessions[key] = open_session(self)
        return _KeptSession(kept)

    async def close_all(*_args: object) -> None:
        for kept in list(sessions.values()):
            await kept.close()
        sessions.clear()

    put_in_place(EndpointConfig, "session", session, open_session)
    return close_all


def event_validators(schema: dict[str, Any]) -> dict[Any, Any]:
    """One validator per event type of Rasa's event schema, keyed by its `event` value.

    Each alternative of the schema's `oneOf` fixes `event` to its own constant, so an
    event can only ever match the alternative its `event` names; that alternative and
    the schema's common part decide alone whether the event is valid.
    """
    from jsonschema import validators

    common = {key: value for key, value in schema.items() if key != "oneOf"}
    by_type = {}
    for alternative in schema["oneOf"]:
        kind = alternative["properties"]["event"]["const"]
        one = {"allOf": [common, alternative]}
        by_type[kind] = validators.validator_for(one)(one)
    return by_type


def validate_action_results_once() -> None:
    """Check action server replies with validators built once from Rasa's schema."""
    from jsonschema import validators
    from rasa.core.actions.action import RemoteAction

    original = rasa_original(RemoteAction, "_validate_action_result")
    schema = RemoteAction.action_response_format_spec()
    properties = schema["properties"]
    by_type = event_validators(properties["events"]["items"])
    outer = {**schema, "properties": {**properties, "events": {"type": "array"}}}
    reply = validators.validator_for(outer)(outer)

    def valid(result: Any) -> bool:
        if not reply.is_valid(result):
            return False
        for event in result.get("events") or ():
            kind = event.get("event") if isinstance(event, dict) else None
            check = by_type.get(kind) if isinstance(kind, str) else None
            if check is None or not check.is_valid(event):
                return False
        return True

    def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        if valid(result):
            return True
        return bool(original(self, result))  # raises with Rasa's explanation

    put_in_place(
        RemoteAction, "_validate_action_result", _validate_action_result, original
    )


def sqlite_pool_and_write_ahead_log() -> None:
    """Kept connections for SQLite tracker stores; WAL on every SQLite connection."""
    import rasa.core.tracker_store as tracker_store
    from sqlalchemy import event
    from sqlalchemy.engine import Engine, make_url
    from sqlalchemy.pool import QueuePool

    engine_kwargs = rasa_original(tracker_store, "create_engine_kwargs")

    def create_engine_kwargs(url: Any) -> dict[str, Any]:
        kwargs = dict(engine_kwargs(url))
        if make_url(str(url)).get_backend_name() == "sqlite":
            # Rasa queries the store from the event loop's thread; the pool may still
            # hand a connection to another thread, hence check_same_thread off.
            kwargs.update(
                poolclass=QueuePool,
                pool_size=4,
                max_overflow=4,
                connect_args={"check_same_thread": False},
            )
        return kwargs

    put_in_place(
        tracker_store, "create_engine_kwargs", create_engine_kwargs, engine_kwargs
    )

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if type(dbapi_connection).__module__.startswith("sqlite3"):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    if not event.contains(Engine, "connect", on_connect):
        event.listen(Engine, "connect", on_connect)


def sequential_graph_runner() -> type:
    """A graph runner that calls the needed nodes in an order worked out once."""
    from rasa.engine.exceptions import GraphRunError
    from rasa.engine.runner.dask import DaskGraphRunner

    class SequentialGraphRunner(DaskGraphRunner):
        def _order(self, targets: tuple[str, ...]) -> list[str]:
            orders: dict[tuple[str, ...], list[str]] = self.__dict__.setdefault(
                "_clinic_orders", {}
            )
            if targets not in orders:
                nodes, order, seen = self._graph_schema.nodes, [], set()

                def visit(name: str) -> None:  # depth first: needs before the node
                    if name in seen or name not in nodes:
                        return
                    seen.add(name)
                    for need in nodes[name].needs.values():
                        visit(need)
                    order.append(name)

                for target in targets:
                    visit(target)
                orders[targets] = order
            return orders[targets]

        def run(
            self,
            inputs: dict[str, Any] | None = None,
            targets: list[str] | None = None,
        ) -> dict[str, Any]:
            run_targets = tuple(targets or self._graph_schema.target_names)
            order = self._order(run_targets)
            results: dict[str, Any] = {}
            for name, value in (inputs or {}).items():
                if isinstance(value, str) and value in self._graph_schema.nodes:
                    raise GraphRunError(
                        f"Input value '{value}' clashes with a node name."
                    )
                results[name] = (name, value)
            nodes = self._graph_schema.nodes
            try:
                for name in order:
                    # A need nobody provides is passed by name, as dask does; the
                    # node then reports the missing input.
                    needs = [results.get(n, n) for n in nodes[name].needs.values()]
                    results[name] = self._instantiated_nodes[name](*needs)
            except RuntimeError as error:
                raise GraphRunError("Error running runner.") from error
            return dict(results[target] for target in run_targets)

    return SequentialGraphRunner


def run_graphs_in_order() -> None:
    """Load models with the sequential runner instead of the dask one."""
    import rasa.core.processor as processor

    if not getattr(processor.DaskGraphRunner, "_clinic_sequential", False):
        runner = sequential_graph_runner()
        runner._clinic_sequential = True  # type: ignore[attr-defined]
        processor.DaskGraphRunner = runner


def stack_sparse_features_directly() -> None:
    """Join two sparse feature matrices side by side without scipy's bmat."""
    import numpy as np
    import scipy.sparse
    from rasa.shared.nlu.training_data.features import Features

    original = rasa_original(Features, "_combine_sparse_features")

    def _combine_sparse_features(self: Features, additional_features: Features) -> None:
        left, right = self.features, additional_features.features
        if left.shape[0] != right.shape[0]:
            original(self, additional_features)  # raises with Rasa's explanation
            return
        left, right = left.tocoo(), right.tocoo()
        self.features = scipy.sparse.coo_matrix(
            (
                np.concatenate([left.data, right.data]),
                (
                    np.concatenate([left.row, right.row]),
                    np.concatenate([left.col, right.col + left.shape[1]]),
                ),
            ),
            shape=(left.shape[0], left.shape[1] + right.shape[1]),
        )
        self._cached_fingerprint = None

    put_in_place(
        Features, "_combine_sparse_features", _combine_sparse_features, original
    )


class FlatPredictionStep:
    """A model's one concrete prediction function, called with its flat inputs.

    The function takes one argument, a flat sequence of tensors (Rasa's batch); each
    NumPy array becomes a tensor of the signature's type as TensorFlow's own
    conversion would make it (`convert_to_eager_tensor`), without the layers above.
    A batch of another length takes TensorFlow's general path.
    """

    def __init__(self, concrete: Any) -> None:
        import tensorflow as tf
        from tensorflow.python.eager import context
        from tensorflow.python.framework import ops

        self.concrete = concrete
        specs = tf.nest.flatten(
            concrete.structured_input_signature, expand_composites=True
        )
        self._types = [spec.dtype.as_datatype_enum for spec in specs]
        self._context = context.context()
        self._tensor = ops.EagerTensor

    def __call__(self, batch_in: Any) -> Any:
        """The function's outputs for one batch, as calling it would give them."""
        if not isinstance(batch_in, (tuple, list)) or len(batch_in) != len(self._types):
            return self.concrete(batch_in)
        self._context.ensure_initialized()
        device = self._context.device_name
        tensors = [
            self._tensor(value, device, kind)
            for value, kind in zip(batch_in, self._types, strict=True)
        ]
        return self.concrete._call_flat(tensors, self.concrete.captured_inputs)


def call_concrete_prediction_steps() -> None:
    """Call each TensorFlow model's one concrete prediction function directly."""
    from rasa.utils.tensorflow.models import RasaModel

    original = rasa_original(RasaModel, "_rasa_predict")

    def _rasa_predict(self: RasaModel, batch_in: Any) -> Any:
        step = self._tf_predict_step
        if getattr(step, "input_signature", None) is not None:
            # One signature, one concrete function (Rasa builds the step this way).
            self._tf_predict_step = FlatPredictionStep(step.get_concrete_function())
        return original(self, batch_in)

    put_in_place(RasaModel, "_rasa_predict", _rasa_predict, original)


@dataclass
class RuleIndex:
    """A rule lookup's keys grouped by the action their last turn follows."""

    lookup: dict[str, str]
    size: int
    longest: int
    after: dict[str, set[str]]  # action name -> keys whose last turn follows it
    unindexed: set[str]  # keys whose last turn names no single action


def index_rules(lookup: dict[str, str], parse: Callable[[str], Any]) -> RuleIndex:
    """Group a RulePolicy lookup's keys by their last turn's previous action."""
    from rasa.core.policies.rule_policy import SHOULD_NOT_BE_SET
    from rasa.shared.core.constants import PREVIOUS_ACTION
    from rasa.shared.nlu.constants import ACTION_NAME

    after: dict[str, set[str]] = {}
    unindexed: set[str] = set()
    longest = 0
    for key in lookup:
        states = parse(key)
        longest = max(longest, len(states))
        action = (states[-1].get(PREVIOUS_ACTION) or {}).get(ACTION_NAME)
        if isinstance(action, str) and action and action != SHOULD_NOT_BE_SET:
            after.setdefault(action, set()).add(key)
        else:
            unindexed.add(key)
    return RuleIndex(lookup, len(lookup), longest, after, unindexed)


def parse_each_rule_once() -> None:
    """RulePolicy: rules parsed once; only rules that can match are compared.

    A rule whose last turn follows action A can only match a conversation whose last
    turn follows A (RulePolicy compares the previous action's name for equality), so
    the first comparison is made with those rules and the rules that name no action.
    """
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.shared.core.constants import PREVIOUS_ACTION
    from rasa.shared.nlu.constants import ACTION_NAME

    original_parse = rasa_original(RulePolicy, "_rule_key_to_state")
    original_keys = rasa_original(RulePolicy, "_get_possible_keys")
    parsed: dict[str, Any] = {}

    def _rule_key_to_state(rule_key: str) -> Any:
        # Rasa only reads a parsed rule (rule_policy.py's two callers), never changes it.
        states = parsed.get(rule_key)
        if states is None:
            states = parsed[rule_key] = original_parse(rule_key)
        return states

    def index_of(policy: RulePolicy, lookup: dict[str, str]) -> RuleIndex:
        indexes: dict[int, RuleIndex] = policy.__dict__.setdefault("_clinic_rules", {})
        index = indexes.get(id(lookup))
        if index is None or index.lookup is not lookup or index.size != len(lookup):
            index = indexes[id(lookup)] = index_rules(lookup, _rule_key_to_state)
        return index

    def _get_possible_keys(
        self: RulePolicy, lookup: dict[str, str], states: list[Any]
    ) -> set[str]:
        if not states:
            return set(lookup)
        index = index_of(self, lookup)
        action = (states[-1].get(PREVIOUS_ACTION) or {}).get(ACTION_NAME)
        possible = set(index.unindexed)
        if isinstance(action, str):
            possible |= index.after.get(action, set())
        for turn, state in enumerate(reversed(states)):
            if turn >= index.longest:
                break  # every rule is shorter: Rasa finds each applicable from here on
            possible = {
                key for key in possible if self._is_rule_applicable(key, turn, state)
            }
        return possible

    put_in_place(RulePolicy, "_get_possible_keys", _get_possible_keys, original_keys)
    _rule_key_to_state.__wrapped__ = original_parse  # type: ignore[attr-defined]
    RulePolicy._rule_key_to_state = staticmethod(_rule_key_to_state)


@dataclass
class Replay:
    """A conversation's states so far, and the tracker they were replayed into."""

    events: int  # how many of the tracker's events were replayed
    last: Any  # the last of them (the tracker must still hold this very event)
    tracker: Any  # the replay: a fresh tracker with those events applied
    states: list[Any]  # the state before each action among them
    domain: Any
    omit_unset_slots: bool


def continue_past_states() -> None:
    """Domain.states_for_tracker_history, continued from the last call's replay."""
    import itertools

    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import (
        ActionExecuted,
        ActionReverted,
        ActiveLoop,
        Restarted,
        SessionStarted,
        UserUtteranceReverted,
    )

    original = rasa_original(Domain, "states_for_tracker_history")
    rewriting = (ActionReverted, Restarted, SessionStarted, UserUtteranceReverted)

    def replay_into(domain: Domain, replay: Replay, events: Any) -> None:
        for event in events:  # as DialogueStateTracker.generate_all_prior_trackers
            if isinstance(event, ActionExecuted):
                state = domain.get_active_state(
                    replay.tracker, omit_unset_slots=replay.omit_unset_slots
                )
                replay.states.append(domain._clean_state(state))
            replay.tracker.update(event)

    def states_for_tracker_history(
        self: Domain,
        tracker: Any,
        omit_unset_slots: bool = False,
        ignore_rule_only_turns: bool = False,
        rule_only_data: dict[str, Any] | None = None,
    ) -> list[Any]:
        events = tracker.events
        replay: Replay | None = tracker.__dict__.get("_clinic_replay")
        usable = (
            not ignore_rule_only_turns
            and replay is not None
            and replay.domain is self
            and replay.omit_unset_slots == omit_unset_slots
            and replay.events <= len(events)
            and (replay.events == 0 or events[replay.events - 1] is replay.last)
        )
        if usable and replay is not None:
            added = list(itertools.islice(events, replay.events, None))
            if any(isinstance(e, (*rewriting, ActiveLoop)) for e in added):
                usable = False
            else:
                replay_into(self, replay, added)
        if not usable:
            tracker.__dict__.pop("_clinic_replay", None)
            if ignore_rule_only_turns or any(isinstance(e, ActiveLoop) for e in events):
                return list(
                    original(
                        self,
                        tracker,
                        omit_unset_slots=omit_unset_slots,
                        ignore_rule_only_turns=ignore_rule_only_turns,
                        rule_only_data=rule_only_data,
                    )
                )
            replay = Replay(0, None, tracker.init_copy(), [], self, omit_unset_slots)
            replay_into(self, replay, tracker.applied_events())
        assert replay is not None
        replay.events = len(events)
        replay.last = events[-1] if events else None
        tracker.__dict__["_clinic_replay"] = replay
        now = self.get_active_state(replay.tracker, omit_unset_slots=omit_unset_slots)
        return [*replay.states, self._clean_state(now)]

    put_in_place(
        Domain, "states_for_tracker_history", states_for_tracker_history, original
    )


def reuse_the_lowercased_parse() -> None:
    """SpacyEntityExtractor: entities from SpacyNLP's parse, values as the patient wrote."""
    from rasa.nlu.constants import SPACY_DOCS
    from rasa.nlu.extractors.spacy_entity_extractor import SpacyEntityExtractor
    from rasa.shared.nlu.constants import ENTITIES, TEXT

    original = rasa_original(SpacyEntityExtractor, "process")

    def process(self: SpacyEntityExtractor, messages: list[Any], model: Any) -> Any:
        for message in messages:
            text, doc = message.get(TEXT), message.get(SPACY_DOCS[TEXT])
            if not (
                isinstance(text, str)
                and doc is not None
                and doc.text == text.lower()
                and len(doc.text) == len(text)
            ):
                original(self, [message], model)
                continue
            found = [
                {**entity, "value": text[entity["start"] : entity["end"]]}
                for entity in self._extract_entities(doc)
            ]
            extracted = self.filter_irrelevant_entities(
                self.add_extractor_name(found), self._config["dimensions"]
            )
            message.set(
                ENTITIES, message.get(ENTITIES, []) + extracted, add_to_output=True
            )
        return messages

    put_in_place(SpacyEntityExtractor, "process", process, original)


def messages_in_progress() -> int:
    """MESSAGES_IN_PROGRESS: how many messages one server works on at once (>= 1)."""
    try:
        return max(1, int(os.environ.get("MESSAGES_IN_PROGRESS", "3")))
    except ValueError:
        logger.warning("MESSAGES_IN_PROGRESS is not a number; using 3")
        return 3


def admit_messages_in_turn(limit: int) -> None:
    """Let at most `limit` messages through Agent.handle_message at once, in order."""
    import asyncio

    from rasa.core.agent import Agent

    original = rasa_original(Agent, "handle_message")
    gates: dict[int, asyncio.Semaphore] = {}  # one per event loop (Sanic worker)

    async def handle_message(self: Agent, message: Any) -> Any:
        loop = id(asyncio.get_running_loop())
        gate = gates.get(loop)
        if gate is None:
            gate = gates[loop] = asyncio.Semaphore(limit)
        async with gate:  # waiters are let in first come, first served
            return await original(self, message)

    put_in_place(Agent, "handle_message", handle_message, original)


def share_locks_between_workers(endpoints: Any) -> None:
    """With SANIC_WORKERS > 1 and no lock store configured, use bot.lock_store's.

    Rasa refuses more than one worker with its in-memory lock store (each worker would
    have its own locks); the file lock store is shared by the workers on this machine.
    """
    from rasa.utils.endpoints import EndpointConfig

    try:
        workers = int(os.environ.get("SANIC_WORKERS", "1"))
    except ValueError:
        return  # Rasa reports the bad value and uses one worker
    if workers > 1 and endpoints is not None and endpoints.lock_store is None:
        endpoints.lock_store = EndpointConfig(type="bot.lock_store.FileLockStore")


def install_tracker_cache() -> None:
    """bot.tracker_cache in front of Rasa's SQL tracker stores."""
    from bot import tracker_cache

    tracker_cache.install()


#: Every measure by its SPEED_MEASURES name, in the order they are switched on; each is
#: called with the Sanic app.
INSTALLERS: dict[str, Callable[[Any], object]] = {
    "subclasses": lambda _app: memoize_all_subclasses(),
    "keepalive": lambda app: app.register_listener(
        keep_connections_alive(), "after_server_stop"
    ),
    "schema": lambda _app: validate_action_results_once(),
    "sqlite": lambda _app: sqlite_pool_and_write_ahead_log(),
    "trackercache": lambda _app: install_tracker_cache(),
    "graphrunner": lambda _app: run_graphs_in_order(),
    "sparsestack": lambda _app: stack_sparse_features_directly(),
    "dietcall": lambda _app: call_concrete_prediction_steps(),
    "rulekeys": lambda _app: parse_each_rule_once(),
    "paststates": lambda _app: continue_past_states(),
    "entitydoc": lambda _app: reuse_the_lowercased_parse(),
    "admission": lambda _app: admit_messages_in_turn(messages_in_progress()),
}
MEASURES = tuple(INSTALLERS)


def apply(app: Any, endpoints: Any = None) -> set[str]:
    """Switch the enabled measures on for this server process; returns their names.

    `endpoints` (Rasa's AvailableEndpoints) gets the shared lock store when more than
    one Sanic worker is asked for.
    """
    share_locks_between_workers(endpoints)
    measures = enabled_measures()
    for name, install in INSTALLERS.items():
        if name in measures:
            install(app)
    logger.debug("speed measures: %s", ", ".join(sorted(measures)) or "none")
    return measures
