"""The call-back form: its checks, its validator and its submit action.

Real rasa_sdk Tracker and CollectingDispatcher, and a real SQLite conversations database
in tmp_path (CONVERSATIONS_DB_URL), as the action server would use it.
"""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from sqlalchemy import select

from actions import callback
from actions.actions import (
    ActionResetCallback,
    ActionSubmitCallback,
    ValidateCallbackForm,
)
from records.models import CallbackRequest
from records.store import session_scope


@pytest.fixture()
def records_db(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'conversations.db'}"
    monkeypatch.setenv("CONVERSATIONS_DB_URL", url)
    return url


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Maria Lopez", "Maria Lopez"),
        ("my name is ann", "ann"),
        ("hi, I'm Seán O'Brien-Smith", "Seán O'Brien-Smith"),
        ("it's bob.", "bob"),
        ("李小龙", "李小龙"),
        ("  Dr.  J.   Watson ", "Dr. J. Watson"),
    ],
)
def test_names_are_taken_as_typed_without_the_lead_in(typed, expected):
    assert callback.normalise_name(typed) == expected


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "212 555 0147",
        "<script>alert(1)</script>",
        "{{7*7}}",
        "x" * 300,
        "one two three four five six seven",
        "my name is",
        None,
        42,
    ],
)
def test_what_is_not_a_name_is_refused(typed):
    assert callback.normalise_name(typed) is None


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("212 555 0147", "+12125550147"),
        ("(212) 555-0147", "+12125550147"),
        ("2125550147", "+12125550147"),
        ("call me on 212.555.0147 pls", "+12125550147"),
        ("+44 20 7946 0958", "+442079460958"),
        ("1-201-555-0123", "+12015550123"),
    ],
)
def test_phone_numbers_are_validated_and_normalised_to_e164(typed, expected):
    assert callback.normalise_phone(typed, "US") == expected


@pytest.mark.parametrize(
    "typed",
    ["12345", "555 010 4477", "call me", "", "1" * 500, "+99 1234", None, "0"],
)
def test_impossible_phone_numbers_are_refused(typed):
    assert callback.normalise_phone(typed, "US") is None


def test_the_region_comes_from_configuration(monkeypatch):
    monkeypatch.setenv("CLINIC_PHONE_REGION", "GB")
    assert callback.normalise_phone("020 7946 0958") == "+442079460958"
    monkeypatch.setenv("CLINIC_PHONE_REGION", "US")
    assert callback.normalise_phone("020 7946 0958") is None


def test_best_time_and_consent():
    assert callback.normalise_time("  weekday   mornings ") == "weekday mornings"
    assert callback.normalise_time("!!!") is None
    assert callback.normalise_time("x" * 201) is None
    assert callback.normalise_consent(True) is True
    assert callback.normalise_consent(False) is False
    assert callback.normalise_consent("yeah ok") is True
    assert callback.normalise_consent("nope") is False
    assert callback.normalise_consent("what do you mean") is None
    assert callback.normalise_consent("yes no") is None


def form_tracker(
    slots: dict[str, Any],
    just_set: dict[str, Any] | None = None,
    intents: tuple[str, ...] = ("request_human",),
) -> Tracker:
    """A tracker in callback_form; `just_set` are the slots extracted from the last turn."""
    events: list[dict[str, Any]] = [
        {"event": "user", "text": "...", "parse_data": {"intent": {"name": name}}}
        for name in intents
    ]
    events += [
        {"event": "slot", "name": name, "value": value}
        for name, value in (just_set or {}).items()
    ]
    return Tracker(
        sender_id="conv-42",
        slots={**slots, **(just_set or {})},
        latest_message={"text": "...", "intent": {"name": intents[-1]}},
        events=events,
        paused=False,
        followup_action=None,
        active_loop={"name": "callback_form"},
        latest_action_name="action_listen",
    )


async def test_validator_normalises_a_good_phone_number(dispatcher, domain):
    tracker = form_tracker(
        {"callback_name": "Ann"}, {"callback_phone": "(212) 555-0147"}
    )
    events = await ValidateCallbackForm().run(dispatcher, tracker, domain)
    assert SlotSet("callback_phone", "+12125550147") in events
    assert SlotSet("callback_invalid", None) in events
    assert dispatcher.messages == []


async def test_validator_refuses_a_bad_phone_number_so_the_form_re_asks(
    dispatcher, domain
):
    tracker = form_tracker({"callback_name": "Ann"}, {"callback_phone": "12345"})
    events = await ValidateCallbackForm().run(dispatcher, tracker, domain)
    assert SlotSet("callback_phone", None) in events
    assert SlotSet("callback_invalid", "callback_phone") in events


async def test_validator_takes_a_yes_no_answer_and_refuses_anything_else(
    dispatcher, domain
):
    yes = await ValidateCallbackForm().run(
        dispatcher, form_tracker({}, {"callback_consent": True}), domain
    )
    assert SlotSet("callback_consent", True) in yes
    unclear = await ValidateCallbackForm().run(
        dispatcher, form_tracker({}, {"callback_consent": "maybe later"}), domain
    )
    assert SlotSet("callback_invalid", "callback_consent") in unclear


FILLED = {
    "callback_name": "Maria Lopez",
    "callback_phone": "+12125550147",
    "callback_time": "weekday mornings",
    "callback_consent": True,
    "not_covered_category": "cost_insurance",
}


def stored() -> list[CallbackRequest]:
    with session_scope() as session:
        return list(session.scalars(select(CallbackRequest)))


async def test_submit_stores_the_request_and_confirms_with_a_summary(
    dispatcher, domain, records_db
):
    events = await ActionSubmitCallback().run(dispatcher, form_tracker(FILLED), domain)
    [row] = stored()
    assert (row.conversation_id, row.name, row.phone, row.best_time) == (
        "conv-42",
        "Maria Lopez",
        "+12125550147",
        "weekday mornings",
    )
    assert row.consent is True and row.status == "new"
    assert (row.urgency, row.category) == ("callback", "cost_insurance")
    assert events == [
        SlotSet("callback_outcome", "requested"),
        SlotSet("callback_request_id", float(row.id)),
    ]


async def test_submit_records_an_earlier_red_flag_as_emergency(
    dispatcher, domain, records_db
):
    tracker = form_tracker(FILLED, intents=("report_red_flag", "request_human"))
    await ActionSubmitCallback().run(dispatcher, tracker, domain)
    assert stored()[0].urgency == "emergency"


async def test_without_consent_nothing_is_stored(dispatcher, domain, records_db):
    tracker = form_tracker({**FILLED, "callback_consent": False})
    events = await ActionSubmitCallback().run(dispatcher, tracker, domain)
    assert stored() == []
    assert events == [SlotSet("callback_outcome", "declined")]


async def test_a_database_failure_is_said_and_not_logged_with_the_number(
    dispatcher, domain, tmp_path, monkeypatch, caplog
):
    # a directory where the database file should be: SQLite cannot open it
    (tmp_path / "db").mkdir()
    monkeypatch.setenv("CONVERSATIONS_DB_URL", f"sqlite:///{tmp_path / 'db'}")
    caplog.set_level("DEBUG")
    events = await ActionSubmitCallback().run(dispatcher, form_tracker(FILLED), domain)
    assert events == [SlotSet("callback_outcome", "failed")]
    assert "5550147" not in caplog.text and "Maria" not in caplog.text


async def test_reset_clears_the_form(dispatcher, domain):
    events = await ActionResetCallback().run(dispatcher, form_tracker(FILLED), domain)
    assert SlotSet("callback_outcome", None) in events
    for slot in callback.FORM_SLOTS:  # a later request asks everything again
        assert SlotSet(slot, None) in events
