"""The clinic's tables in the conversations database (Rasa keeps its own `events`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, Integer, String, Text
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
