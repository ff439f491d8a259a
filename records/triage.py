"""Triage of conversations, computed from the events Rasa's SQL tracker store keeps.

Pure functions over rows of Rasa's `events` table (sender_id, type_name, timestamp,
intent_name, action_name, data JSON): nothing here reads the database, and nothing
copies a transcript. records.events fetches the rows.

A conversation's urgency, most urgent first:
  - `emergency`: a red flag was reported (intent report_red_flag / report_self_harm,
    or a bot reply of answer type `emergency`, which also covers the crisis reply);
  - `callback`: a call back was requested (a CallbackRequest row for the conversation,
    told by the caller; or in the events, the form's `callback_outcome` = `requested`,
    or a `callback_form` still open);
  - `unanswered`: a question was not covered or missed (answer type `not_covered` or
    `handoff`, or a `clarify` "did you mean" that the next answer did not resolve);
  - `answered`: everything else.

In Rasa's rows a slot event's `action_name` is the slot's name and an active-loop
event's `action_name` is the loop's name, so most decisions need no JSON at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clinic.intents import EMERGENCY_INTENTS

#: Urgencies, most urgent first (the triage list's order).
URGENCIES = ("emergency", "callback", "unanswered", "answered")
EMERGENCY_TYPES = frozenset({"emergency"})
MISSED_TYPES = frozenset({"not_covered", "handoff"})
RESOLVING_TYPES = frozenset({"knowledge", "overview"})
CALLBACK_LOOP = "callback_form"
CALLBACK_OUTCOME = "callback_outcome"
#: action_answer's outcomes that are not a missed question (the message was unreadable).
INPUT_PROBLEMS = frozenset({"empty", "too_long"})
#: The `language` slot (bot.nlu.LanguageIdentifier) and its initial value (domain.yml).
LANGUAGE_SLOT = "language"
DEFAULT_LANGUAGE = "en"
#: Event types the triage reads; the rest (actions, session starts) it skips.
TRIAGE_EVENT_TYPES = ("user", "bot", "slot", "active_loop")


@dataclass(frozen=True)
class EventRow:
    """One row of Rasa's `events` table (`data` may be left out where not needed)."""

    sender_id: str
    type_name: str
    timestamp: float | None
    intent_name: str | None = None
    action_name: str | None = None
    data: str | None = None

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> EventRow:
        """A row from a database result mapping."""
        return cls(
            sender_id=row["sender_id"],
            type_name=row["type_name"],
            timestamp=row["timestamp"],
            intent_name=row.get("intent_name"),
            action_name=row.get("action_name"),
            data=row.get("data"),
        )

    def payload(self) -> dict[str, Any]:
        """The event's JSON, or {} when absent or unreadable."""
        if not self.data:
            return {}
        try:
            value = json.loads(self.data)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


@dataclass
class BotTurn:
    """One reply of the assistant, with what the reply contract says about it."""

    timestamp: float | None
    text: str | None
    answer_type: str | None
    category: str | None
    sections: list[dict[str, Any]]
    intent: str | None = None
    confidence: float | None = None


@dataclass
class Exchange:
    """A patient's message and the assistant's replies to it."""

    timestamp: float | None
    text: str | None
    intent: str | None
    confidence: float | None
    red_flag: bool
    replies: list[BotTurn] = field(default_factory=list)
    #: What action_answer decided (slot answer_outcome), if it ran.
    outcome: str | None = None
    #: The conversation's language at this message (slot `language`; ISO 639-1).
    language: str = DEFAULT_LANGUAGE
    missed: bool = False

    @property
    def answer_type(self) -> str | None:
        """The answer type of the reply that carries the contract (the last one)."""
        typed = [r.answer_type for r in self.replies if r.answer_type]
        return typed[-1] if typed else None

    @property
    def category(self) -> str | None:
        """The not-covered category of the replies, if any."""
        return next((r.category for r in self.replies if r.category), None)


@dataclass
class Triage:
    """What the staff console lists about one conversation."""

    conversation_id: str
    urgency: str
    first_at: float | None
    last_at: float | None
    messages: int
    patient_messages: int
    red_flag: bool
    callback: bool
    unanswered: int
    #: Cited section titles, in order of first citation.
    topics: list[str]
    #: Not-covered categories, in order of first occurrence.
    categories: list[str]
    #: The languages the patient wrote in (slot `language`), in order of first use.
    languages: list[str] = field(default_factory=lambda: [DEFAULT_LANGUAGE])
    #: For an emergency: the member of staff who acknowledged it, and when (UTC).
    acknowledged_by: str | None = None
    acknowledged_at: Any = None

    @property
    def rank(self) -> int:
        """Sort key: smaller is more urgent."""
        return URGENCIES.index(self.urgency)


def bot_answer(payload: Mapping[str, Any]) -> dict[str, Any]:
    """`custom.answer` of a bot event's JSON, or {}."""
    custom = (payload.get("data") or {}).get("custom") or {}
    answer = custom.get("answer") if isinstance(custom, dict) else None
    return answer if isinstance(answer, dict) else {}


def _bot_turn(row: EventRow) -> BotTurn:
    payload = row.payload()
    answer = bot_answer(payload)
    sections = answer.get("sections")
    confidence = answer.get("confidence")
    return BotTurn(
        timestamp=row.timestamp,
        text=payload.get("text"),
        answer_type=answer.get("type"),
        category=answer.get("category"),
        sections=[s for s in sections if isinstance(s, dict)]
        if isinstance(sections, list)
        else [],
        intent=answer.get("intent"),
        confidence=float(confidence) if isinstance(confidence, int | float) else None,
    )


def _slot_value(row: EventRow) -> Any:
    return row.payload().get("value")


def exchanges(rows: Iterable[EventRow]) -> list[Exchange]:
    """A conversation's messages paired with their replies, oldest first.

    `rows` come in the order Rasa stored them (the events' ids). Replies before the
    first patient message (none in practice) are dropped. `missed`
    marks a question not covered, handed off, or met with a "did you mean" that the
    next reply did not resolve.
    """
    result: list[Exchange] = []
    language = DEFAULT_LANGUAGE
    for row in rows:
        if row.type_name == "slot" and row.action_name == LANGUAGE_SLOT:
            value = _slot_value(row)
            language = value if isinstance(value, str) else DEFAULT_LANGUAGE
            if result:
                result[-1].language = language
        elif row.type_name == "user":
            payload = row.payload()
            intent = (payload.get("parse_data") or {}).get("intent") or {}
            confidence = intent.get("confidence")
            result.append(
                Exchange(
                    timestamp=row.timestamp,
                    text=payload.get("text"),
                    intent=row.intent_name,
                    confidence=float(confidence)
                    if isinstance(confidence, int | float)
                    else None,
                    red_flag=row.intent_name in EMERGENCY_INTENTS,
                    language=language,
                )
            )
        elif not result:
            continue
        elif row.type_name == "bot":
            result[-1].replies.append(_bot_turn(row))
        elif row.type_name == "slot" and row.action_name == "answer_outcome":
            value = _slot_value(row)
            result[-1].outcome = value if isinstance(value, str) else None
    for index, exchange in enumerate(result):
        kind = exchange.answer_type
        if kind in MISSED_TYPES:
            exchange.missed = True
        elif kind == "clarify" and exchange.outcome not in INPUT_PROBLEMS:
            following = (
                result[index + 1].answer_type if index + 1 < len(result) else None
            )
            exchange.missed = following not in RESOLVING_TYPES
    return result


def callback_in_events(rows: Iterable[EventRow]) -> bool:
    """Whether the events show a call back requested: submitted, or the form still open.

    The form's `action_submit_callback` sets slot `callback_outcome` to `requested` when
    it stored the request (`declined`: no consent, `failed`: not stored). A form that is
    active at the end of the events is a request in progress (or left half-way); a
    cancelled one, or one declined without consent, is not a request.
    """
    form_open = False
    for row in rows:
        if row.type_name == "active_loop":
            form_open = row.action_name == CALLBACK_LOOP
        elif (
            row.type_name == "slot"
            and row.action_name == CALLBACK_OUTCOME
            and _slot_value(row) == "requested"
        ):
            return True
    return form_open


def _first_seen(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def triage(
    conversation_id: str, rows: Iterable[EventRow], callback_requested: bool = False
) -> Triage:
    """The triage of one conversation from its event rows.

    `callback_requested` is whether a CallbackRequest row exists for it (the caller
    knows; the rows alone show only the form's activation).
    """
    rows = list(rows)
    stamps = [r.timestamp for r in rows if r.timestamp is not None]
    talk = exchanges(rows)
    replies = [reply for exchange in talk for reply in exchange.replies]
    red_flag = any(e.red_flag for e in talk) or any(
        r.answer_type in EMERGENCY_TYPES for r in replies
    )
    callback = callback_requested or callback_in_events(rows)
    unanswered = sum(e.missed for e in talk)
    if red_flag:
        urgency = "emergency"
    elif callback:
        urgency = "callback"
    elif unanswered:
        urgency = "unanswered"
    else:
        urgency = "answered"
    return Triage(
        conversation_id=conversation_id,
        urgency=urgency,
        first_at=min(stamps) if stamps else None,
        last_at=max(stamps) if stamps else None,
        messages=sum(r.type_name in {"user", "bot"} for r in rows),
        patient_messages=len(talk),
        red_flag=red_flag,
        callback=callback,
        unanswered=unanswered,
        topics=_first_seen(
            str(s.get("title"))
            for r in replies
            if r.answer_type == "knowledge"
            for s in r.sections
        ),
        categories=_first_seen(
            e.category or "other"
            for e in talk
            if e.missed and e.answer_type == "not_covered"
        ),
        languages=_first_seen(e.language for e in talk) or [DEFAULT_LANGUAGE],
    )


def triage_all(
    rows: Iterable[EventRow], callback_ids: Iterable[str] = ()
) -> list[Triage]:
    """Every conversation's triage, most urgent first, then most recent first."""
    by_sender: dict[str, list[EventRow]] = {}
    for row in rows:
        by_sender.setdefault(row.sender_id, []).append(row)
    callbacks = set(callback_ids)
    listed = [
        triage(sender, sender_rows, sender in callbacks)
        for sender, sender_rows in by_sender.items()
    ]
    return sorted(listed, key=lambda t: (t.rank, -(t.last_at or 0.0)))


def unanswered_questions(rows: Iterable[EventRow]) -> list[Exchange]:
    """The patient messages of a conversation that were not answered from the guide."""
    return [e for e in exchanges(rows) if e.missed]
