"""Triage from real tracker-store events: conversations written by Rasa's SQLTrackerStore.

The events are Rasa's own event classes, stored by Rasa's SQL tracker store into SQLite
(and PostgreSQL when it is running), then read back by records.events.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import create_engine, inspect, text

from records import events as records
from records import triage
from records.models import CallbackRequest
from records.store import session_scope
from tests.conftest import ROOT

JOINT = {"document": "Pain Management Injections", "number": 5, "title": "Joint Pain"}
PRP = {
    "document": "Pain Management Injections",
    "number": 9,
    "title": "Regenerative Medicine",
}


class Talk:
    """Builds a conversation as Rasa would record it, with advancing timestamps."""

    def __init__(self, start: float) -> None:
        self.clock = start
        self.events: list[Any] = []

    def _t(self) -> float:
        self.clock += 1.0
        return self.clock

    def begin(self) -> Talk:
        self.events += [
            ActionExecuted("action_session_start", timestamp=self._t()),
            SessionStarted(timestamp=self._t()),
            ActionExecuted("action_listen", timestamp=self._t()),
        ]
        return self

    def user(self, text_: str, intent: str, confidence: float = 0.9) -> Talk:
        parse = {
            "text": text_,
            "intent": {"name": intent, "confidence": confidence},
            "entities": [],
        }
        self.events.append(
            UserUttered(text_, parse["intent"], [], parse, timestamp=self._t())
        )
        return self

    def outcome(self, value: str) -> Talk:
        self.events += [
            ActionExecuted("action_answer", timestamp=self._t()),
            SlotSet("answer_outcome", value, timestamp=self._t()),
        ]
        return self

    def bot(
        self,
        kind: str,
        sections: list[dict[str, Any]] | None = None,
        category: str | None = None,
        action: str = "utter_x",
    ) -> Talk:
        answer = {
            "type": kind,
            "sections": sections or [],
            "category": category,
            "intent": None,
            "confidence": 0.9,
        }
        self.events += [
            ActionExecuted(action, timestamp=self._t()),
            BotUttered(
                f"reply {kind}", {"custom": {"answer": answer}}, timestamp=self._t()
            ),
            ActionExecuted("action_listen", timestamp=self._t()),
        ]
        return self

    def slot(self, name: str, value: Any) -> Talk:
        self.events.append(SlotSet(name, value, timestamp=self._t()))
        return self

    def loop(self, name: str | None) -> Talk:
        self.events.append(ActiveLoop(name, timestamp=self._t()))
        return self


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "domain.yml"))


def _postgres_url() -> str | None:
    try:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="test")
        connection.close()
    except Exception:
        return None
    return "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


@contextmanager
def postgres_schema(prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """A fresh schema on the running PostgreSQL, dropped afterwards (skips without one).

    Yields the conversations URL on it and the tracker store's arguments for it; the
    caller disposes of its engines before the block ends.
    """
    base = _postgres_url()
    if base is None:
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, future=True)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    arguments = {
        "dialect": "postgresql",
        "host": "127.0.0.1",
        "port": 5432,
        "db": "test",
        "username": "postgres",
        "query": {"options": f"-csearch_path={schema}"},
    }
    try:
        yield f"{base}?options=-csearch_path%3D{schema}", arguments
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path, domain, monkeypatch) -> Iterator[tuple[str, SQLTrackerStore]]:
    """A conversations database and Rasa's SQL tracker store on it."""
    records._indexed.clear()
    if request.param == "sqlite":
        path = tmp_path / "conversations.db"
        url = f"sqlite:///{path}"
        monkeypatch.setenv("CONVERSATIONS_DB_URL", url)
        yield url, SQLTrackerStore(domain, dialect="sqlite", db=str(path))
        return
    with postgres_schema("triage") as (url, arguments):
        store = SQLTrackerStore(domain, **arguments)
        monkeypatch.setenv("CONVERSATIONS_DB_URL", url)
        yield url, store
        store.engine.dispose()


async def save(store: SQLTrackerStore, domain: Domain, sender: str, talk: Talk) -> None:
    tracker = DialogueStateTracker.from_events(sender, talk.events, slots=domain.slots)
    await store.save(tracker)


async def test_urgency_topics_categories_and_order(db, domain) -> None:
    _url, store = db
    now = time.time() - 3600
    await save(
        store,
        domain,
        "answered",
        Talk(now)
        .begin()
        .user("knee?", "ask_joint_pain")
        .outcome("knowledge")
        .bot("knowledge", [JOINT]),
    )
    await save(
        store,
        domain,
        "emergency",
        Talk(now + 100)
        .begin()
        .user("fever since my epidural", "report_red_flag", 1.0)
        .bot("emergency"),
    )
    await save(
        store,
        domain,
        "crisis-by-reply",
        Talk(now + 150)
        .begin()
        .user("everything is too much", "out_of_scope")
        .bot("emergency"),
    )
    await save(
        store,
        domain,
        "missed",
        Talk(now + 200)
        .begin()
        .user("how much is it", "ask_cost_insurance")
        .bot("not_covered", category="cost_insurance")
        .user("what is PRP", "ask_regenerative")
        .outcome("knowledge")
        .bot("knowledge", [PRP]),
    )
    await save(
        store,
        domain,
        "form",
        Talk(now + 300)
        .begin()
        .user("call me back", "request_human")
        .loop("callback_form")
        .bot("form")
        .user("yes", "affirm")
        .slot("callback_outcome", "requested")
        .loop(None)
        .bot("form"),
    )
    await save(
        store,
        domain,
        "row",
        Talk(now + 400).begin().user("hello", "greet").bot("smalltalk"),
    )
    with session_scope() as session:
        session.add(
            CallbackRequest(
                conversation_id="row",
                name="A",
                phone="+15550100000",
                best_time="any",
                consent=True,
            )
        )
    with session_scope() as session:
        listed = records.list_triage(session)
    by_id = {t.conversation_id: t for t in listed}
    assert [t.conversation_id for t in listed] == [
        "crisis-by-reply",
        "emergency",
        "row",
        "form",
        "missed",
        "answered",
    ]
    assert by_id["emergency"].urgency == "emergency" and by_id["emergency"].red_flag
    assert by_id["crisis-by-reply"].urgency == "emergency"
    assert by_id["row"].urgency == "callback"
    assert by_id["form"].urgency == "callback"
    missed = by_id["missed"]
    assert missed.urgency == "unanswered"
    assert missed.categories == ["cost_insurance"]
    assert missed.topics == ["Regenerative Medicine"]
    assert missed.unanswered == 1
    assert missed.messages == 4 and missed.patient_messages == 2
    assert by_id["answered"].urgency == "answered"
    assert by_id["answered"].topics == ["Joint Pain"]
    assert by_id["answered"].first_at < by_id["answered"].last_at

    with session_scope() as session:
        only = records.list_triage(session, urgency="unanswered")
        by_category = records.list_triage(session, category="Joint Pain")
        later = records.list_triage(session, since=now + 350)
        earlier = records.list_triage(session, until=now + 150)
    assert [t.conversation_id for t in only] == ["missed"]
    assert [t.conversation_id for t in by_category] == ["answered"]
    assert [t.conversation_id for t in later] == ["row"]
    assert [t.conversation_id for t in earlier] == ["emergency", "answered"]


async def test_a_form_counts_when_submitted_or_still_open(db, domain) -> None:
    _url, store = db
    now = time.time() - 500

    def form(start: float) -> Talk:
        return (
            Talk(start)
            .begin()
            .user("can someone call me", "request_human")
            .loop("callback_form")
            .bot("form")
        )

    await save(store, domain, "open", form(now))
    await save(
        store,
        domain,
        "cancelled",
        form(now + 20).user("never mind", "cancel").loop(None),
    )
    await save(
        store,
        domain,
        "declined",
        form(now + 40)
        .user("no", "deny")
        .slot("callback_outcome", "declined")
        .loop(None)
        .bot("form"),
    )
    with session_scope() as session:
        by_id = {t.conversation_id: t.urgency for t in records.list_triage(session)}
    assert by_id == {
        "open": "callback",
        "cancelled": "answered",
        "declined": "answered",
    }


async def test_clarify_counts_as_missed_only_when_unresolved(db, domain) -> None:
    _url, store = db
    now = time.time() - 600
    await save(
        store,
        domain,
        "resolved",
        Talk(now)
        .begin()
        .user("injection thing", "nlu_fallback")
        .outcome("clarify")
        .bot("clarify", [JOINT])
        .user("/ask_joint_pain", "ask_joint_pain")
        .outcome("knowledge")
        .bot("knowledge", [JOINT]),
    )
    await save(
        store,
        domain,
        "dangling",
        Talk(now + 50)
        .begin()
        .user("injection thing", "nlu_fallback")
        .outcome("clarify")
        .bot("clarify", [JOINT]),
    )
    await save(
        store,
        domain,
        "empty",
        Talk(now + 60)
        .begin()
        .user(" ", "nlu_fallback")
        .outcome("empty")
        .bot("clarify"),
    )
    await save(
        store,
        domain,
        "handoff",
        Talk(now + 70).begin().user("a person please", "request_human").bot("handoff"),
    )
    with session_scope() as session:
        by_id = {t.conversation_id: t for t in records.list_triage(session)}
    assert by_id["resolved"].urgency == "answered"
    assert by_id["dangling"].urgency == "unanswered"
    assert by_id["empty"].urgency == "answered"
    assert by_id["handoff"].urgency == "unanswered"


async def test_listing_reads_no_patient_text_and_indexes(db, domain) -> None:
    _url, store = db
    await save(
        store,
        domain,
        "p",
        Talk(time.time() - 10)
        .begin()
        .user("my knee hurts, call 555 201 3344", "ask_joint_pain")
        .outcome("knowledge")
        .bot("knowledge", [JOINT]),
    )
    with session_scope() as session:
        listing = records.event_rows(session, ["p"])
        full = records.conversation(session, "p")
        index_names = {
            i["name"] for i in inspect(session.connection()).get_indexes("events")
        }
    assert {r.type_name for r in listing} == {"user", "bot", "slot"}
    assert all(r.data is None for r in listing if r.type_name == "user")
    assert any("555 201 3344" in (r.data or "") for r in full if r.type_name == "user")
    assert records.INDEX_NAME in index_names


async def test_unanswered_between_the_dates(db, domain) -> None:
    _url, store = db
    start = time.time() - 1000
    await save(
        store,
        domain,
        "q",
        Talk(start)
        .begin()
        .user("old question", "out_of_scope")
        .bot("not_covered", category="other")
        .user("what is PRP", "ask_regenerative")
        .outcome("knowledge")
        .bot("knowledge", [PRP])
        .user("new question", "ask_medications")
        .bot("not_covered", category="medications"),
    )
    with session_scope() as session:
        everything = records.unanswered_between(session, None, None)
        later = records.unanswered_between(session, start + 8, None)
    assert [(s, e.text, e.category) for s, e in everything] == [
        ("q", "old question", "other"),
        ("q", "new question", "medications"),
    ]
    assert [e.text for _, e in later] == ["new question"]


def test_no_events_table_means_no_conversations(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CONVERSATIONS_DB_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    with session_scope() as session:
        assert records.list_triage(session) == []
        assert records.unanswered_between(session, None, None) == []


def test_malformed_event_json_is_skipped_not_fatal() -> None:
    rows = [
        triage.EventRow("x", "user", 1.0, "greet", None, "{not json"),
        triage.EventRow(
            "x", "bot", 2.0, None, None, json.dumps({"data": {"custom": "odd"}})
        ),
        triage.EventRow("x", "bot", 3.0, None, None, json.dumps([1, 2])),
    ]
    result = triage.triage("x", rows)
    assert result.urgency == "answered"
    assert result.messages == 3


async def test_each_conversation_shows_its_languages(db, domain) -> None:
    _url, store = db
    now = time.time() - 100
    spanish = (
        Talk(now)
        .begin()
        .user("hola", "greet")
        .slot("language", "es")
        .bot("smalltalk")
        .user("what can help my knee", "ask_joint_pain")
        .slot("language", "en")
        .outcome("knowledge")
        .bot("knowledge", [JOINT])
    )
    english = Talk(now).begin().user("hi", "greet").bot("smalltalk")
    await save(store, domain, "es-then-en", spanish)
    await save(store, domain, "english", english)
    with session_scope() as session:
        rows = records.event_rows(session, ["es-then-en", "english"])
        full = records.conversation(session, "es-then-en")
    by_id = {t.conversation_id: t for t in triage.triage_all(rows)}
    assert by_id["es-then-en"].languages == ["es", "en"]
    assert by_id["english"].languages == ["en"]  # the slot's initial value
    assert [e.language for e in triage.exchanges(full)] == ["es", "en"]
