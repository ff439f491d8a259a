"""Accounts, sessions, throttle and the console's pure helpers, on a real SQLite database."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from argon2 import PasswordHasher

from records.store import session_scope
from staff import auth
from staff.models import LoginFailure, StaffAccount, StaffSession
from staff.views import cookie_secure, csv_cell, redact

PASSWORD = "a long enough password"


@pytest.fixture(autouse=True)
def database(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CONVERSATIONS_DB_URL", f"sqlite:///{tmp_path / 'c.db'}")


def test_accounts_store_an_argon2_hash_only() -> None:
    with session_scope() as session:
        auth.add_account(session, "nurse", PASSWORD)
    with session_scope() as session:
        account = session.query(StaffAccount).one()
        assert PASSWORD not in account.password_hash
        assert account.password_hash.startswith("$argon2id$")
        assert PasswordHasher().verify(account.password_hash, PASSWORD)
        assert auth.verify_password(session, "nurse", PASSWORD) is not None
        assert auth.verify_password(session, "nurse", PASSWORD + "x") is None
        assert auth.verify_password(session, "nobody", PASSWORD) is None


@pytest.mark.parametrize(
    ("name", "password", "reason"),
    [
        ("nurse", "short", "12 characters"),
        ("", PASSWORD, "a name is"),
        ("-x", PASSWORD, "a name is"),
        ("a b", PASSWORD, "a name is"),
        ("x" * 101, PASSWORD, "a name is"),
        ("averylongname1", "averylongname1", "must not be the name"),
        ("nurse", "p" * 2000, "at most"),
    ],
)
def test_bad_accounts_are_refused(name: str, password: str, reason: str) -> None:
    with pytest.raises(auth.AccountError, match=reason):
        auth.check_new_account(name, password)


def test_a_new_password_logs_the_account_out() -> None:
    with session_scope() as session:
        account = auth.add_account(session, "nurse", PASSWORD)
        token, _ = auth.start_session(session, account)
    with session_scope() as session:
        assert auth.current(session, token) is not None
        auth.add_account(session, "nurse", PASSWORD + "!")
    with session_scope() as session:
        assert auth.current(session, token) is None


def test_sessions_expire_when_idle_and_at_their_end(monkeypatch) -> None:
    with session_scope() as session:
        account = auth.add_account(session, "nurse", PASSWORD)
        token, logged = auth.start_session(session, account)
    with session_scope() as session:
        row = session.get(StaffSession, auth.digest(token))
        assert row is not None and row.token_digest != token
        assert auth.current(session, token) == logged
        assert auth.current(session, "other") is None
        assert auth.current(session, None) is None
        row.expires_at = datetime.utcnow() - timedelta(seconds=1)
    with session_scope() as session:
        assert auth.current(session, token) is None
    with session_scope() as session:
        token, _ = auth.start_session(session, session.get(StaffAccount, account.id))
    with session_scope() as session:
        row = session.get(StaffSession, auth.digest(token))
        row.ends_at = datetime.utcnow() - timedelta(seconds=1)
    with session_scope() as session:
        assert auth.current(session, token) is None
    with session_scope() as session:
        token, _ = auth.start_session(session, session.get(StaffAccount, account.id))
        auth.end_session(session, token)
    with session_scope() as session:
        assert auth.current(session, token) is None


def test_the_throttle_locks_longer_after_each_failure_past_the_free_tries() -> None:
    keys = auth.throttle_keys("Nurse ", "10.0.0.7")
    assert keys == ["name:nurse", "addr:10.0.0.7"]
    waits = []
    with session_scope() as session:
        for _ in range(auth.free_tries() - 1):
            auth.record_failure(session, keys)
        assert auth.locked_for(session, keys) == 0
        for _ in range(4):
            auth.record_failure(session, keys)
            assert auth.locked_for(session, keys) > 0
            row = session.get(LoginFailure, "name:nurse")
            waits.append((row.locked_until - row.last_failure_at).total_seconds())
    assert waits == [5, 10, 20, 40]
    with session_scope() as session:
        assert auth.locked_for(session, ["name:nurse"]) > 20
        assert auth.locked_for(session, ["name:someone-else"]) == 0
        auth.clear_failures(session, keys)
        assert auth.locked_for(session, keys) == 0
    with session_scope() as session:
        for _ in range(40):
            auth.record_failure(session, ["addr:x"])
        row = session.get(LoginFailure, "addr:x")
        assert (row.locked_until - row.last_failure_at).total_seconds() == 15 * 60


def test_old_failures_are_forgotten() -> None:
    with session_scope() as session:
        for _ in range(auth.free_tries()):
            auth.record_failure(session, ["name:n"])
        row = session.get(LoginFailure, "name:n")
        row.last_failure_at = datetime.utcnow() - timedelta(hours=1)
        row.locked_until = None
        auth.record_failure(session, ["name:n"])
        assert row.failures == 1 and auth.locked_for(session, ["name:n"]) == 0


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("what is PRP?", "what is PRP?"),
        (None, ""),
        (0.5, "0.5"),
    ],
)
def test_csv_cells_never_start_a_formula(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


def test_contact_details_are_redacted_from_exported_questions() -> None:
    text = redact(
        "call me at (555) 201-3344 or +1 555 010 9999, mail pat.doe+x@mail.example.org"
    )
    assert "3344" not in text and "9999" not in text and "pat.doe" not in text
    assert text.count("[phone]") == 2 and "[email]" in text
    assert redact("what helps a knee 2 weeks after 1 shot?") == (
        "what helps a knee 2 weeks after 1 shot?"
    )


def _request(
    host: str, ip: str, scheme: str = "http", **headers: str
) -> SimpleNamespace:
    return SimpleNamespace(host=host, ip=ip, scheme=scheme, headers=headers)


@pytest.mark.parametrize(
    ("setting", "request_", "secure"),
    [
        (None, _request("localhost:5005", "127.0.0.1"), False),
        (None, _request("127.0.0.1:5005", "127.0.0.1"), False),
        (None, _request("[::1]:5005", "::1"), False),
        (None, _request("clinic.example", "10.0.0.9"), True),
        (None, _request("192.168.1.5:5005", "192.168.1.9"), True),
        (
            None,
            _request("localhost:5005", "127.0.0.1", **{"x-forwarded-for": "1.2.3.4"}),
            True,
        ),
        (
            None,
            _request("localhost:5005", "127.0.0.1", **{"x-forwarded-proto": "https"}),
            True,
        ),
        (None, _request("clinic.example", "10.0.0.9", "https"), True),
        ("false", _request("clinic.example", "10.0.0.9"), False),
        ("true", _request("localhost:5005", "127.0.0.1"), True),
    ],
)
def test_secure_cookie_setting(monkeypatch, setting, request_, secure) -> None:
    if setting is None:
        monkeypatch.delenv("STAFF_COOKIE_SECURE", raising=False)
    else:
        monkeypatch.setenv("STAFF_COOKIE_SECURE", setting)
    assert cookie_secure(request_) is secure
