"""The assistant's dialogue policy: Rasa's RulePolicy with its rules indexed.

RulePolicy keeps each rule as a JSON text and, for every prediction, parses every rule
again for every turn of the conversation, back to its start, even past the longest rule
(6 % of the server's time), and compares all of the rules with the last turn when only
those that follow its action can match. Here each rule is parsed once, the rules are
grouped by the action their last turn follows, and the turns older than the longest rule
are not looked at: every rule already matches them. The predictions are RulePolicy's
(tests/test_speed.py compares them at every turn of the conversation tests).

Named in config.yml in place of RulePolicy, with the same parameters. Training takes
RulePolicy's own path; SPEED_MEASURES without `rulekeys` switches the index off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rasa.core.policies.rule_policy import SHOULD_NOT_BE_SET, RulePolicy
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import PREVIOUS_ACTION
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.nlu.constants import ACTION_NAME

from bot.patches import measure_enabled

#: Every rule key parsed so far. Rasa's own parse keeps the last 1,000 (an lru_cache)
#: and, like it, callers only read the states, never change them.
_PARSED: dict[str, list[State]] = {}


def parse_rule(rule_key: str) -> list[State]:
    """A rule's states, parsed from its key once."""
    states = _PARSED.get(rule_key)
    if states is None:
        states = _PARSED[rule_key] = json.loads(rule_key)
    return states


def last_action(states: list[State]) -> str | None:
    """The action the last of `states` follows, when it names one."""
    action = (states[-1].get(PREVIOUS_ACTION) or {}).get(ACTION_NAME)
    if isinstance(action, str) and action and action != SHOULD_NOT_BE_SET:
        return action
    return None


@dataclass
class RuleIndex:
    """A rule lookup's keys grouped by the action their last turn follows."""

    lookup: dict[str, str]
    size: int
    longest: int
    after: dict[str, set[str]]  # action name -> keys whose last turn follows it
    unindexed: set[str]  # keys whose last turn names no single action


def index_rules(lookup: dict[str, str]) -> RuleIndex:
    """Group a RulePolicy lookup's keys by their last turn's previous action."""
    after: dict[str, set[str]] = {}
    unindexed: set[str] = set()
    longest = 0
    for key in lookup:
        states = parse_rule(key)
        longest = max(longest, len(states))
        action = last_action(states)
        if action is None:
            unindexed.add(key)
        else:
            after.setdefault(action, set()).add(key)
    return RuleIndex(lookup, len(lookup), longest, after, unindexed)


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT],
    is_trainable=True,
)
class ClinicRulePolicy(RulePolicy):
    """RulePolicy, comparing a conversation only with the rules that can match it.

    A rule whose last turn follows action A can only match a conversation whose last
    turn follows A (RulePolicy compares the previous action's name for equality), so
    the first comparison is made with those rules and the rules that name no action.
    """

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            config, model_storage, resource, execution_context, *args, **kwargs
        )
        self._indexes: dict[int, RuleIndex] = {}
        self.index_rules = measure_enabled("rulekeys")

    @staticmethod
    def _rule_key_to_state(rule_key: str) -> list[State]:
        return parse_rule(rule_key)

    def train(
        self,
        training_trackers: list[TrackerWithCachedStates],
        domain: Domain,
        **kwargs: Any,
    ) -> Resource:
        """RulePolicy's training, on RulePolicy's own path (the lookups change).

        Rasa's recipe validator checks the domain against the configuration of
        RulePolicy itself only (`uses == RulePolicy`), so the check is made here.
        """
        self.raise_if_incompatible_with_domain(self.config, domain)
        indexing, self.index_rules = self.index_rules, False
        try:
            return super().train(training_trackers, domain, **kwargs)
        finally:
            self._indexes.clear()
            self.index_rules = indexing

    def _index(self, lookup: dict[str, str]) -> RuleIndex:
        index = self._indexes.get(id(lookup))
        if index is None or index.lookup is not lookup or index.size != len(lookup):
            index = self._indexes[id(lookup)] = index_rules(lookup)
        return index

    def _get_possible_keys(
        self, lookup: dict[str, str], states: list[State]
    ) -> set[str]:
        if not self.index_rules:
            return super()._get_possible_keys(lookup, states)
        if not states:
            return set(lookup)
        index = self._index(lookup)
        possible = set(index.unindexed)
        action = (states[-1].get(PREVIOUS_ACTION) or {}).get(ACTION_NAME)
        if isinstance(action, str):
            possible |= index.after.get(action, set())
        for turn, state in enumerate(reversed(states)):
            if turn >= index.longest:
                break  # every rule is shorter: Rasa finds each applicable from here on
            possible = {
                key for key in possible if self._is_rule_applicable(key, turn, state)
            }
        return possible
