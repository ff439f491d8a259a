"""Action server replies checked with validators built once, one event type per event.

Rasa validates every action server reply with `jsonschema.validate`, which first checks
the schema itself, then builds a validator: a fifth of the server's time under load. The
validators are built once, and each event is checked against the one event type its
`event` field names: Rasa's schema says "exactly one of" 23 event types, each fixing
`event` to its own constant, so the other 22 can never match and trying them all (5 % of
the server's time) decides nothing.
"""

from __future__ import annotations

from typing import Any

from jsonschema.protocols import Validator
from sanic import Sanic

from bot.patches import put_in_place, rasa_original

REPLACES = ("rasa.core.actions.action.RemoteAction._validate_action_result",)
CHECKED_RASA_VERSION = "3.6.21"


def event_validators(schema: dict[str, Any]) -> dict[str, Validator]:
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


def install(_app: Sanic) -> None:
    """Apply the patch."""
    validate_action_results_once()
