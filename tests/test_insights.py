"""The summary tables and the insights read from them, from real tracker-store writes.

Conversations are Rasa's own events saved by the project's tracker store
(ResilientSQLTrackerStore, as endpoints.yml configures it) into SQLite (on Rasa's save
and on the tracker cache's fast one) and PostgreSQL when it is running, turn by turn as
the server saves them; the summaries are what its save wrote.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import event, select

from bot.conversation_store import ResilientSQLTrackerStore
from records import clusters, insights, summaries
from records import events as records
from records import store as store_module
from records.models import ConversationSummary, MissedQuestion
from records.retention import purge
from records.store import session_scope
from tests.conftest import ROOT
from tests.test_triage import JOINT, PRP, Talk, postgres_schema


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "domain.yml"))


@pytest.fixture(params=["rasa save", "tracker cache", "postgresql"])
def store(request, tmp_path, domain, monkeypatch) -> Iterator[ResilientSQLTrackerStore]:
    """The project's tracker store on SQLite, with the server's tracker cache (its fast
    save path, bot.tracker_cache) or without; and on PostgreSQL when it is running."""
    records._indexed.clear()
    if request.param == "tracker cache":
        monkeypatch.delenv("SPEED_MEASURES", raising=False)
    else:  # Rasa's own save
        monkeypatch.setenv("SPEED_MEASURES", "sqlite")
    if request.param != "postgresql":
        path = tmp_path / "conversations.db"
        monkeypatch.setenv("CONVERSATIONS_DB_URL", f"sqlite:///{path}")
        yield ResilientSQLTrackerStore(domain, dialect="sqlite", db=str(path))
        return
    with postgres_schema("insights") as (url, arguments):
        monkeypatch.setenv("CONVERSATIONS_DB_URL", url)
        tracker_store = ResilientSQLTrackerStore(domain, **arguments)
        yield tracker_store
        tracker_store.engine.dispose()
        store_module.get_engine(url).dispose()


async def save_turns(store, domain, sender: str, talk: Talk, turns: list[int]) -> None:
    """Save the conversation as the server does: read it, add a turn's events, save,
    after each of these event counts."""
    done = 0
    for end in [*turns, len(talk.events)]:
        tracker = await store.retrieve(sender)
        if tracker is None:
            tracker = DialogueStateTracker(sender, domain.slots)
        for new in talk.events[done:end]:
            tracker.update(new)
        await store.save(tracker)
        done = end


def today() -> date:
    return date.today()


async def test_a_turn_is_counted_once_with_its_answer_section_and_feedback(
    store, domain
):
    now = time.time() - 600
    talk = Talk(now).begin().user("what helps my knee", "ask_condition_help")
    talk.outcome("knowledge").bot("knowledge", [JOINT], action="utter_knowledge_answer")
    first_turn = len(talk.events)
    talk.user("yes", "affirm").slot("answer_feedback", "helpful").bot("feedback")
    talk.user("how much is it", "ask_cost_insurance").outcome("not_covered")
    talk.bot("not_covered", category="cost_insurance")
    await save_turns(store, domain, "p1", talk, [first_turn])
    # a second save of the same tracker stores nothing new and counts nothing again
    await store.save(await store.retrieve("p1"))

    with session_scope() as session:
        found = insights.insights(session, today() - timedelta(days=1), today())
        summary = session.get(ConversationSummary, "p1")
        missed = list(session.scalars(select(MissedQuestion)))
    assert summary.patient_messages == 3 and summary.messages == 6
    assert (summary.answered, summary.not_covered, summary.helpful) == (1, 1, 1)
    assert found.conversations == 1
    assert sum(d.conversations for d in found.days) == 1
    assert sum(d.messages for d in found.days) == 6
    assert found.share_counts == {
        "answered": 1,
        "not_covered": 1,
        "emergency": 0,
        "callback": 0,
    }
    assert found.sections == [("Pain Management Injections", "5", "Joint Pain", 1)]
    assert found.documents == [("Pain Management Injections", 1)]
    assert found.categories == [("cost_insurance", 1)]
    assert (found.helpful, found.unhelpful, found.feedback_rate) == (1, 0, 1.0)
    assert found.answers_by_type == {"knowledge": 1, "feedback": 1, "not_covered": 1}
    # Talk's clock ticks 1 s an event: the answers come 4 s after their message
    # (action_answer, its slot, the response's action, the reply), the thanks 3 s after
    assert found.replies == 3
    assert found.median_reply_ms == pytest.approx(4000, rel=0.03)
    assert found.slowest_reply_ms == pytest.approx(4000)
    assert [m.text for m in missed] == ["how much is it"]


async def test_emergencies_unacknowledged_first_and_who_acknowledged(store, domain):
    now = time.time() - 900
    for n, sender in enumerate(["old", "new"]):
        talk = Talk(now + 100 * n).begin()
        talk.user("fever since my epidural", "report_red_flag", 1.0).bot("emergency")
        await save_turns(store, domain, sender, talk, [])
    calm = Talk(now).begin().user("what is prp", "ask_what").outcome("knowledge")
    await save_turns(store, domain, "calm", calm.bot("knowledge", [PRP]), [])

    with session_scope() as session:
        insights.acknowledge(session, "new", "nurse.kim")
    with session_scope() as session:
        insights.acknowledge(session, "new", "someone.else")  # the first one stays
        listed = insights.emergencies(session)
        shares = insights.insights(session, today() - timedelta(days=1), today())
    assert [(e.conversation_id, e.acknowledged_by) for e in listed] == [
        ("old", None),
        ("new", "nurse.kim"),
    ]
    assert listed[1].acknowledged_at is not None
    assert shares.share_counts["emergency"] == 2 and shares.conversations == 3


async def test_a_clarify_answered_next_is_not_a_missed_question(store, domain):
    now = time.time() - 600
    talk = Talk(now).begin().user("the thing for nerves", "ask_what").outcome("clarify")
    talk.bot("clarify")
    first = len(talk.events)
    talk.user("/ask_section", "ask_section").outcome("knowledge").bot(
        "knowledge", [JOINT]
    )
    talk.user("driving home after sedation?", "ask_procedure_day")
    talk.outcome("clarify").bot("clarify")
    talk.user("never mind that", "out_of_scope").outcome("not_covered").bot(
        "not_covered"
    )
    await save_turns(store, domain, "p2", talk, [first])
    with session_scope() as session:
        texts = [m.text for m in session.scalars(select(MissedQuestion))]
    assert sorted(texts) == ["driving home after sedation?", "never mind that"]


async def test_purge_forgets_the_summaries_but_keeps_day_counts(store, domain):
    old = time.time() - 40 * 86400
    talk = (
        Talk(old)
        .begin()
        .user("call me at 555-201-3344 about cost", "ask_cost_insurance")
    )
    talk.outcome("not_covered").bot("not_covered", category="cost_insurance")
    await save_turns(store, domain, "gone", talk, [])
    with session_scope() as session:
        (question,) = session.scalars(select(MissedQuestion))
        assert "[phone]" in question.text and "3344" not in question.text
        report = purge(session, timedelta(days=30))
    assert report.conversations == 1
    with session_scope() as session:
        assert session.get(ConversationSummary, "gone") is None
        assert not list(session.scalars(select(MissedQuestion)))
        day = date.fromtimestamp(old)
        assert insights.insights(session, day, day).categories == [
            ("cost_insurance", 1)
        ]


def test_reply_buckets_read_back_within_their_width():
    for milliseconds in (1.0, 120.0, 980.0, 30_000.0):
        back = summaries.bucket_milliseconds(summaries.reply_bucket(milliseconds))
        assert back == pytest.approx(milliseconds, rel=0.026)


async def test_the_page_reads_only_summary_tables(store, domain):
    talk = Talk(time.time() - 600).begin().user("what is prp", "ask_what")
    await save_turns(
        store, domain, "p3", talk.outcome("knowledge").bot("knowledge"), []
    )
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    with session_scope() as session:
        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", seen)
        try:
            found = insights.insights(session, today() - timedelta(days=366), today())
        finally:
            event.remove(engine, "before_cursor_execute", seen)
    assert found.conversations == 1 and found.answers_by_type == {"knowledge": 1}
    assert len(statements) == 3
    assert not [s for s in statements if re.search(r"\bevents\b", s)]


def missed(text: str, conversation: str, category: str = "procedure_day"):
    return MissedQuestion(
        conversation_id=conversation,
        asked_at=0.0,
        text=text,
        answer_type="not_covered",
        category=category,
    )


def test_similar_questions_are_grouped_largest_first_and_exported():
    questions = [
        missed("can i drive home after the sedation", "a"),
        missed("who will drive me home after sedation", "b"),
        missed("is driving allowed after being sedated", "c"),
        missed("can i drive myself home after the procedure", "c"),
        missed("does insurance cover the nerve block", "d", "cost_insurance"),
        missed("what will i pay with my insurance", "e", "cost_insurance"),
        missed("where do i park", "f", "other"),
    ]
    found = clusters.cluster(questions)
    assert [c.size for c in found] == [4, 2, 1]
    driving = found[0]
    assert driving.label.split(", ")[:2] == ["drive", "home"]
    assert (driving.conversations, driving.category) == (3, "procedure_day")
    assert len(driving.examples) == clusters.EXAMPLES
    assert found[1].category == "cost_insurance" and "insurance" in found[1].label
    rows = list(csv.DictReader(io.StringIO(clusters.clusters_csv(found))))
    assert len(rows) == 7 and {r["rank"] for r in rows} == {"1", "2", "3"}
    assert {r["question"] for r in rows if r["rank"] == "2"} == {
        "does insurance cover the nerve block",
        "what will i pay with my insurance",
    }


def test_no_questions_no_clusters():
    assert clusters.cluster([]) == []
    (alone,) = clusters.cluster([missed("where do i park", "a", "other")])
    assert (alone.size, alone.label) == (1, "park")


async def test_the_triage_list_puts_unacknowledged_emergencies_first(store, domain):
    now = time.time() - 900
    for n, sender in enumerate(["seen", "unseen"]):
        talk = Talk(now - 100 * n).begin()
        talk.user("fever since my epidural", "report_red_flag", 1.0).bot("emergency")
        await save_turns(store, domain, sender, talk, [])
    with session_scope() as session:
        before = [t.conversation_id for t in records.list_triage(session)]
        insights.acknowledge(session, "seen", "nurse.kim")
    with session_scope() as session:
        listed = records.list_triage(session)
    assert before == ["seen", "unseen"]  # most recent first while neither is seen
    assert [(t.conversation_id, t.acknowledged_by) for t in listed] == [
        ("unseen", None),
        ("seen", "nurse.kim"),
    ]


async def test_the_summaries_can_be_rebuilt_from_the_events(store, domain):
    now = time.time() - 900
    talk = Talk(now).begin().user("what helps my knee", "ask_condition_help")
    talk.outcome("knowledge").bot("knowledge", [JOINT])
    talk.user("no", "deny").slot("answer_feedback", "unhelpful").bot("feedback")
    talk.user("where do i park", "out_of_scope").outcome("not_covered").bot(
        "not_covered"
    )
    await save_turns(store, domain, "p4", talk, [8])
    alarm = Talk(now + 60).begin().user("fever since my epidural", "report_red_flag")
    await save_turns(store, domain, "p5", alarm.bot("emergency"), [])
    week = (today() - timedelta(days=6), today())
    with session_scope() as session:
        kept = insights.insights(session, *week)
    with session_scope() as session:
        assert summaries.rebuild(session) == 2
    with session_scope() as session:
        rebuilt = insights.insights(session, *week)
        texts = [m.text for m in session.scalars(select(MissedQuestion))]
    assert rebuilt == kept
    assert rebuilt.conversations == 2 and rebuilt.share_counts["emergency"] == 1
    assert texts == ["where do i park"]
