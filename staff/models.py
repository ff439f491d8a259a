"""Staff accounts, their sessions and failed-login counts, beside the conversations.

They share records' declarative Base, so `get_engine()` creates them with the other
clinic tables, and several servers on one database share logins and the login throttle.
Neither a password nor a session token is stored: an argon2 hash of the password, and a
SHA-256 digest of the session token (the cookie holds the token itself).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String

from records.models import Base


class StaffAccount(Base):
    """A member of staff who may use the console (`python -m bot staff add NAME`)."""

    __tablename__ = "staff_accounts"

    id = Column(Integer, primary_key=True)
    name = Column(String(100), nullable=False, unique=True)
    password_hash = Column(String(255), nullable=False)
    active = Column(Boolean, nullable=False, default=True)
    created_at = Column(DateTime, nullable=False, default=datetime.utcnow)
    last_login_at = Column(DateTime, nullable=True)


class StaffSession(Base):
    """A logged-in browser: found by the digest of its cookie's token."""

    __tablename__ = "staff_sessions"

    token_digest = Column(String(64), primary_key=True)
    account_id = Column(
        Integer, ForeignKey("staff_accounts.id", ondelete="CASCADE"), nullable=False
    )
    #: The synchronizer token every form of this session must send back.
    csrf_token = Column(String(64), nullable=False)
    created_at = Column(DateTime, nullable=False, default=datetime.utcnow)
    #: Idle expiry, pushed forward on use, never past `ends_at`.
    expires_at = Column(DateTime, nullable=False, index=True)
    #: Absolute end of the session, however active.
    ends_at = Column(DateTime, nullable=False)


class LoginFailure(Base):
    """Recent failed logins for one key (an account name, or a client address)."""

    __tablename__ = "staff_login_failures"

    key = Column(String(200), primary_key=True)
    failures = Column(Integer, nullable=False, default=0)
    last_failure_at = Column(DateTime, nullable=False, default=datetime.utcnow)
    #: No password is checked for this key before then.
    locked_until = Column(DateTime, nullable=True)
