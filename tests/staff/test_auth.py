"""Accounts, sessions, throttle and the console's pure helpers, on a real SQLite database."""

from __future__ import annotations

import ipaddress
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import unquote

import pytest
from argon2 import PasswordHasher

from clinic import settings as clinic_settings
from records.store import session_scope
from staff import auth
from staff.addresses import forwarded_client
from staff.export import csv_cell, redact
from staff.models import LoginFailure, StaffAccount, StaffSession
from staff.web import DateError, conversation_url, cookie_secure, parse_day

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


def test_the_throttle_locks_the_pair_longer_after_each_failure_past_the_free_tries() -> (
    None
):
    keys = auth.throttle_keys("Nurse ", "10.0.0.7")
    assert keys.all() == ["pair:nurse|10.0.0.7", "name:nurse", "addr:10.0.0.7"]
    waits = []
    with session_scope() as session:
        for _ in range(auth.free_tries() - 1):
            auth.record_failure(session, keys)
        assert auth.locked_for(session, keys) == 0
        for _ in range(4):
            auth.record_failure(session, keys)
            assert auth.locked_for(session, keys) > 0
            row = session.get(LoginFailure, keys.pair)
            waits.append((row.locked_until - row.last_failure_at).total_seconds())
        # Only the pair is ever locked: the name's and the address's rows only count.
        assert session.get(LoginFailure, keys.name).locked_until is None
        assert session.get(LoginFailure, keys.address).locked_until is None
    assert waits == [5, 10, 20, 40]
    with session_scope() as session:
        assert auth.locked_for(session, keys) > 20
        assert (
            auth.locked_for(session, auth.throttle_keys("someone-else", "10.0.0.7"))
            == 0
        )
        auth.clear_failures(session, keys)
        assert auth.locked_for(session, keys) == 0
    with session_scope() as session:
        for _ in range(40):
            auth.record_failure(session, auth.throttle_keys("x", "10.9.9.9"))
        row = session.get(LoginFailure, "pair:x|10.9.9.9")
        assert (row.locked_until - row.last_failure_at).total_seconds() == 15 * 60


def test_wrong_tries_from_elsewhere_never_lock_the_name_out() -> None:
    staff = auth.throttle_keys("frontdesk", "192.0.2.10")
    with session_scope() as session:
        for attacker in range(50):  # one wrong try from each of 50 addresses, twice
            for _ in range(2):
                auth.record_failure(
                    session, auth.throttle_keys("frontdesk", f"203.0.113.{attacker}")
                )
        for _ in range(10):  # and ten from one address
            auth.record_failure(
                session, auth.throttle_keys("frontdesk", "198.51.100.1")
            )
        assert auth.locked_for(session, staff) == 0
        assert auth.locked_for(session, auth.throttle_keys("frontdesk", "198.51.100.1"))
        # The name is slowed down, boundedly, not shut.
        assert 0 < auth.slowdown(session, staff) <= auth.MAX_SLOWDOWN
        assert auth.slowdown(session, auth.throttle_keys("nurse", "192.0.2.10")) == 0


def test_the_slowdown_starts_past_its_threshold_and_old_failures_do_not_count() -> None:
    with session_scope() as session:
        for attacker in range(auth.SLOWDOWN_AFTER):
            auth.record_failure(
                session, auth.throttle_keys("pat", f"10.1.0.{attacker}")
            )
        fresh = auth.throttle_keys("pat", "10.2.0.1")
        assert auth.slowdown(session, fresh) == 0
        auth.record_failure(session, auth.throttle_keys("pat", "10.1.1.1"))
        assert auth.slowdown(session, fresh) == pytest.approx(auth.SLOWDOWN_STEP)
        session.get(LoginFailure, "name:pat").last_failure_at = datetime.utcnow() - (
            auth.FAILURE_WINDOW + timedelta(minutes=1)
        )
        assert auth.slowdown(session, fresh) == 0


def test_old_failures_are_forgotten() -> None:
    keys = auth.throttle_keys("n", "10.0.0.1")
    with session_scope() as session:
        for _ in range(auth.free_tries()):
            auth.record_failure(session, keys)
        row = session.get(LoginFailure, keys.pair)
        row.last_failure_at = datetime.utcnow() - timedelta(hours=1)
        row.locked_until = None
        auth.record_failure(session, keys)
        assert row.failures == 1 and auth.locked_for(session, keys) == 0


def test_a_disabled_account_is_logged_out_and_refused_and_a_removed_one_is_gone() -> (
    None
):
    with session_scope() as session:
        account = auth.add_account(session, "temp", PASSWORD)
        token, _ = auth.start_session(session, account)
    with session_scope() as session:
        auth.disable_account(session, "temp")
    with session_scope() as session:
        assert auth.current(session, token) is None
        assert session.query(StaffSession).count() == 0
        assert auth.verify_password(session, "temp", PASSWORD) is None
        auth.add_account(session, "temp", PASSWORD)  # a new password enables it again
    with session_scope() as session:
        assert auth.verify_password(session, "temp", PASSWORD) is not None
        auth.remove_account(session, "temp")
    with session_scope() as session:
        assert auth.list_accounts(session) == []
        with pytest.raises(auth.AccountError, match="no staff account"):
            auth.disable_account(session, "temp")
        with pytest.raises(auth.AccountError, match="no staff account"):
            auth.remove_account(session, "nobody")


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


PROXIES = [ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # No trusted proxy in between: the peer, whatever the header says.
        ("203.0.113.9", "198.51.100.7", "203.0.113.9"),
        ("203.0.113.9", "", "203.0.113.9"),
        # From the proxy: the address it saw, not what the client wrote before it.
        ("127.0.0.1", "203.0.113.9", "203.0.113.9"),
        ("127.0.0.1", "198.51.100.7, 203.0.113.9", "203.0.113.9"),
        ("127.0.0.1", "198.51.100.7, 203.0.113.9, 10.1.2.3", "203.0.113.9"),
        # A proxy that forwarded nothing usable: the proxy itself.
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "not-an-address", "127.0.0.1"),
        ("127.0.0.1", "10.1.2.3", "127.0.0.1"),
        ("127.0.0.1", "2001:db8::5", "2001:db8::5"),
    ],
)
def test_the_client_address_believes_only_trusted_proxies(
    peer, forwarded, client
) -> None:
    assert forwarded_client(peer, forwarded, PROXIES) == client


def test_trusted_proxies_come_from_the_setting(monkeypatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8, nonsense,")
    assert clinic_settings.trusted_proxies() == PROXIES
    monkeypatch.delenv("TRUSTED_PROXIES")
    assert clinic_settings.trusted_proxies() == []


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("9999-12-31", "between 1970-01-01 and 2100-12-31"),
        ("0001-01-01", "between 1970-01-01 and 2100-12-31"),
        ("1969-12-31", "between"),
        ("2101-01-01", "between"),
        ("yesterday", "YYYY-MM-DD"),
        ("2026-02-30", "YYYY-MM-DD"),
        ("2026-13-01", "YYYY-MM-DD"),
    ],
)
def test_unusable_dates_are_refused_with_the_reason(value, reason) -> None:
    with pytest.raises(DateError, match=reason):
        parse_day(value, "until")


def test_usable_dates_and_none() -> None:
    assert parse_day("1970-01-01") == date(1970, 1, 1)
    assert parse_day(" 2100-12-31 ") == date(2100, 12, 31)
    assert parse_day("") is None and parse_day(None) is None


@pytest.mark.parametrize(
    "conversation_id",
    ["pat smith", "dr/who", "josé ñ 中文", "<b>x</b>", "a%2Fb", "..", "?x=1#y"],
)
def test_a_conversation_url_quotes_the_whole_id(conversation_id) -> None:
    url = conversation_url(conversation_id)
    prefix = "/staff/conversations/"
    assert url.startswith(prefix)
    quoted = url[len(prefix) :]
    assert "/" not in quoted and "<" not in quoted and " " not in quoted
    assert unquote(quoted) == conversation_id
