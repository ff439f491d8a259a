"""A conversation's states continued from the last prediction's replay.

Every prediction turns the whole conversation into its list of states (one per action),
replaying every event into a fresh tracker (9 % of the server's time, growing with the
conversation). The states of the turns already replayed do not change as events are
added, so the replay is kept with the tracker and continued from where it stopped.
Anything that rewrites history (a session start, a restart, an undo, a rewind) starts
the replay again, and a conversation with a form (whose loop events change how earlier
turns count) always takes Rasa's own path.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rasa.shared.core.domain import Domain, State
from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    Event,
    Restarted,
    SessionStarted,
    UserUtteranceReverted,
)
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Sanic

from bot.patches import put_in_place, rasa_original

REPLACES = ("rasa.shared.core.domain.Domain.states_for_tracker_history",)
CHECKED_RASA_VERSION = "3.6.21"

REWRITING = (ActionReverted, Restarted, SessionStarted, UserUtteranceReverted)


@dataclass
class Replay:
    """A conversation's states so far, and the tracker they were replayed into."""

    events: int  # how many of the tracker's events were replayed
    last: Event | None  # the last of them (the tracker must still hold this very event)
    tracker: DialogueStateTracker  # a fresh tracker with those events applied
    states: list[State]  # the state before each action among them
    domain: Domain
    omit_unset_slots: bool


def replay_into(domain: Domain, replay: Replay, events: Iterable[Event]) -> None:
    """Continue `replay` with `events`, as DialogueStateTracker's prior trackers do."""
    for event in events:
        if isinstance(event, ActionExecuted):
            state = domain.get_active_state(
                replay.tracker, omit_unset_slots=replay.omit_unset_slots
            )
            replay.states.append(domain._clean_state(state))
        replay.tracker.update(event)


def continue_past_states() -> None:
    """Domain.states_for_tracker_history, continued from the last call's replay."""
    original = rasa_original(Domain, "states_for_tracker_history")

    def states_for_tracker_history(
        self: Domain,
        tracker: DialogueStateTracker,
        omit_unset_slots: bool = False,
        ignore_rule_only_turns: bool = False,
        rule_only_data: dict[str, Any] | None = None,
    ) -> list[State]:
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
            if any(isinstance(e, (*REWRITING, ActiveLoop)) for e in added):
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


def install(_app: Sanic) -> None:
    """Apply the patch."""
    continue_past_states()
