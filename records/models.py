"""The clinic's tables in the conversations database (Rasa keeps its own `events`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import declarative_base

Base = declarative_base()

#: A call-back request's life: new -> called -> closed.
CALLBACK_STATUSES = ("new", "called", "closed")


class CallbackRequest(Base):  # type: ignore[valid-type,misc]
    """A patient asked to be called back (the chat's callback_form)."""

    __tablename__ = "callback_requests"

    id = Column(Integer, primary_key=True)
    #: Rasa's sender id of the conversation the request came from.
    conversation_id = Column(String(255), nullable=False, index=True)
    name = Column(String(200), nullable=False)
    #: E.164, e.g. +15550104477 (normalised by the form with `phonenumbers`).
    phone = Column(String(32), nullable=False)
    best_time = Column(String(200), nullable=False)
    consent = Column(Boolean, nullable=False)
    #: The conversation's triage urgency when it was asked (e.g. "unanswered").
    urgency = Column(String(32), nullable=False, default="callback")
    #: The not-covered category or topic that led to it, if any.
    category = Column(String(100), nullable=True)
    status = Column(String(16), nullable=False, default="new", index=True)
    note = Column(Text, nullable=True)
    created_at = Column(DateTime, nullable=False, default=datetime.utcnow, index=True)
    updated_at = Column(
        DateTime, nullable=False, default=datetime.utcnow, onupdate=datetime.utcnow
    )


class ConversationSummary(Base):  # type: ignore[valid-type,misc]
    """One conversation in figures, kept up to date as its turns are stored.

    Written by the tracker store with each turn (records.summaries.record_events), in
    the transaction that stores the turn's events, so the insights page never reads events.
    Derived data: it holds no patient text, and goes when the conversation is purged.
    """

    __tablename__ = "conversation_summaries"

    conversation_id = Column(String(255), primary_key=True)
    started_at = Column(Float, nullable=False)
    last_at = Column(Float, nullable=False, index=True)
    #: Patient and assistant messages (user and bot events).
    messages = Column(Integer, nullable=False, default=0)
    patient_messages = Column(Integer, nullable=False, default=0)
    #: Replies by kind: from the guide (knowledge, overview), not covered or handed off.
    answered = Column(Integer, nullable=False, default=0)
    not_covered = Column(Integer, nullable=False, default=0)
    emergency = Column(Boolean, nullable=False, default=False)
    #: When the first red flag or emergency reply came (the acknowledgement list's order).
    emergency_at = Column(Float, nullable=True)
    callback = Column(Boolean, nullable=False, default=False)
    helpful = Column(Integer, nullable=False, default=0)
    unhelpful = Column(Integer, nullable=False, default=0)
    #: The slowest reply of the conversation (patient message to answer), milliseconds.
    slowest_reply_ms = Column(Float, nullable=True)
    #: A "did you mean" waiting for the next reply to resolve it (its MissedQuestion id).
    pending_clarify_id = Column(Integer, nullable=True)


# Covering: the slowest replies of a date range are read from the index alone.
Index(
    "ix_conversation_summaries_started_slowest",
    ConversationSummary.started_at,
    ConversationSummary.slowest_reply_ms,
    ConversationSummary.conversation_id,
)
Index(
    "ix_conversation_summaries_emergency",
    ConversationSummary.emergency,
    ConversationSummary.emergency_at,
)


class DailyCount(Base):  # type: ignore[valid-type,misc]
    """A counter per day (the server's local date), e.g. ("answer", "knowledge") = 41.

    `peak` keeps a maximum where one is wanted (the slowest reply of the day).
    """

    __tablename__ = "insight_daily_counts"

    day = Column(String(10), primary_key=True)
    metric = Column(String(40), primary_key=True)
    key = Column(String(400), primary_key=True, default="")
    count = Column(Integer, nullable=False, default=0)
    peak = Column(Float, nullable=True)


class MissedQuestion(Base):  # type: ignore[valid-type,misc]
    """A patient question the guide did not answer, for the clinic's next document.

    The text is stored with e-mail addresses and phone numbers masked (clinic.privacy), and
    goes with its conversation when it is purged.
    """

    __tablename__ = "missed_questions"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    asked_at = Column(Float, nullable=False, index=True)
    text = Column(Text, nullable=False)
    #: The reply's answer type: not_covered, handoff or clarify (an unresolved one).
    answer_type = Column(String(32), nullable=False)
    category = Column(String(100), nullable=True)
    intent = Column(String(100), nullable=True)


class EmergencyAcknowledgement(Base):  # type: ignore[valid-type,misc]
    """A member of staff has seen an emergency conversation (who and when)."""

    __tablename__ = "emergency_acknowledgements"

    conversation_id = Column(String(255), primary_key=True)
    staff_name = Column(String(100), nullable=False)
    acknowledged_at = Column(DateTime, nullable=False, default=datetime.utcnow)
