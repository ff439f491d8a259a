"""Staff accounts, sessions, the login throttle and CSRF tokens (no web framework here).

- Passwords: argon2id (argon2-cffi's defaults), never stored or logged in clear. A login
  for an unknown name still verifies against a dummy hash, so timing does not tell
  which names exist.
- Sessions: a random token in an HTTP-only cookie; the database keeps its SHA-256
  digest, an idle expiry (STAFF_SESSION_IDLE_MINUTES, default 30) pushed forward on use,
  and an absolute end (STAFF_SESSION_HOURS, default 12).
- CSRF: each session has a synchronizer token that every form sends back.
- Throttle: after STAFF_LOGIN_FREE_TRIES (default 5) failures within 15 minutes for an
  account name from one client address, that pair is locked for 5 s, then 10 s, 20 s,
  ... (at most 15 min) after each further failure; while locked no password is checked
  for it. Someone else's wrong tries never refuse a correct password: failures on a name
  from many addresses, or from one address on many names, only slow each check down
  (at most MAX_SLOWDOWN seconds). The client address is the proxy's forwarded one only
  when the request comes from a trusted proxy (staff.addresses.client_address).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from clinic import settings
from staff.models import LoginFailure, StaffAccount, StaffSession

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
FAILURE_WINDOW = timedelta(minutes=15)
MAX_LOCK = timedelta(minutes=15)
_hasher = PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash to verify against for unknown names (made once, on first use)."""
    return _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """An account cannot be created as asked (the message says why)."""


def idle_timeout() -> timedelta:
    """How long a session lasts without use (STAFF_SESSION_IDLE_MINUTES)."""
    return timedelta(minutes=max(1, settings.current().staff_session_idle_minutes))


def session_lifetime() -> timedelta:
    """How long a session lasts at most (STAFF_SESSION_HOURS)."""
    return timedelta(hours=max(1, settings.current().staff_session_hours))


def free_tries() -> int:
    """Failed logins of one name from one address before the pair waits."""
    return max(1, settings.current().staff_login_free_tries)


def _now() -> datetime:
    return datetime.utcnow()


def digest(token: str) -> str:
    """What the database keeps of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of two tokens; a missing one never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def new_token() -> str:
    """A fresh random token (256 bits)."""
    return secrets.token_urlsafe(32)


# --- accounts -------------------------------------------------------------------


def check_new_account(name: str, password: str) -> None:
    """Raise AccountError unless the name and password are acceptable."""
    if not NAME_PATTERN.match(name):
        raise AccountError(
            "a name is 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"the password may have at most {MAX_PASSWORD} characters")
    if password.strip().lower() == name.lower():
        raise AccountError("the password must not be the name")


def add_account(session: Session, name: str, password: str) -> StaffAccount:
    """Create an account, or set a new password if the name exists."""
    check_new_account(name, password)
    account = session.scalar(select(StaffAccount).where(StaffAccount.name == name))
    if account is None:
        account = StaffAccount(name=name, password_hash=_hasher.hash(password))
        session.add(account)
    else:
        account.password_hash = _hasher.hash(password)
        account.active = True
        session.execute(
            delete(StaffSession).where(StaffSession.account_id == account.id)
        )
    session.flush()
    return account


def _account(session: Session, name: str) -> StaffAccount:
    account = session.scalar(select(StaffAccount).where(StaffAccount.name == name))
    if account is None:
        raise AccountError(f"there is no staff account named {name!r}")
    return account


def _log_out_everywhere(session: Session, account: StaffAccount) -> None:
    session.execute(delete(StaffSession).where(StaffSession.account_id == account.id))


def disable_account(session: Session, name: str) -> StaffAccount:
    """Stop an account from logging in, and end its sessions at once.

    The account and what its name is recorded against (acknowledged emergencies) stay;
    `add_account` with a new password enables it again.
    """
    account = _account(session, name)
    account.active = False
    _log_out_everywhere(session, account)
    session.flush()
    return account


def remove_account(session: Session, name: str) -> None:
    """Delete an account and its sessions (acknowledgements keep the name they record)."""
    account = _account(session, name)
    _log_out_everywhere(session, account)
    session.delete(account)
    session.flush()


def list_accounts(session: Session) -> list[StaffAccount]:
    """Every account, by name."""
    return list(session.scalars(select(StaffAccount).order_by(StaffAccount.name)))


def verify_password(session: Session, name: str, password: str) -> StaffAccount | None:
    """The active account with this name and password, else None (same work either way)."""
    account = session.scalar(
        select(StaffAccount).where(StaffAccount.name == name, StaffAccount.active)
    )
    stored = account.password_hash if account is not None else _dummy_hash()
    try:
        _hasher.verify(stored, password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        return None
    if account is None:
        return None
    if _hasher.check_needs_rehash(stored):
        account.password_hash = _hasher.hash(password)
    account.last_login_at = _now()
    return account


# --- throttle -------------------------------------------------------------------
#
# OWASP's authentication guidance: a lock-out must not let one person keep another
# out. So a lock is only ever on one account name from one client address (the pair);
# failures on a name from every address, or from one address on every name, only slow
# the check down (SLOWDOWN_AFTER), and a correct password still gets in.

#: Failures of a name (from any address) or of an address (on any name) in the window
#: after which each further attempt waits SLOWDOWN_STEP more before its password is
#: checked, up to MAX_SLOWDOWN; it is never refused for them.
SLOWDOWN_AFTER = 20
SLOWDOWN_STEP = 0.1
MAX_SLOWDOWN = 3.0


@dataclass(frozen=True)
class ThrottleKeys:
    """What a login attempt counts against: its pair (locked), its name and address."""

    pair: str
    name: str
    address: str | None

    def all(self) -> list[str]:
        """Every key, the pair first."""
        return [self.pair, self.name, *([self.address] if self.address else [])]


def throttle_keys(name: str, client: str | None) -> ThrottleKeys:
    """The keys a login attempt for `name` from the client address `client` counts against."""
    account = name.strip().lower()[:100]
    address = (client or "unknown")[:90]
    return ThrottleKeys(
        pair=f"pair:{account}|{address}",
        name=f"name:{account}",
        address=f"addr:{address}" if client else None,
    )


def _rows(session: Session, keys: list[str]) -> list[LoginFailure]:
    return list(session.scalars(select(LoginFailure).where(LoginFailure.key.in_(keys))))


def locked_for(session: Session, keys: ThrottleKeys) -> int:
    """Seconds until this name may be tried again from this address (0: now)."""
    now = _now()
    row = session.get(LoginFailure, keys.pair)
    if row is None or not row.locked_until or row.locked_until <= now:
        return 0
    return int((row.locked_until - now).total_seconds() + 0.999)


def slowdown(session: Session, keys: ThrottleKeys) -> float:
    """Seconds to wait before checking a password, for the name's and address's failures."""
    now = _now()
    recent = [
        row.failures
        for row in _rows(session, keys.all()[1:])
        if now - row.last_failure_at <= FAILURE_WINDOW
    ]
    excess = max(recent, default=0) - SLOWDOWN_AFTER
    return min(MAX_SLOWDOWN, SLOWDOWN_STEP * excess) if excess > 0 else 0.0


def record_failure(session: Session, keys: ThrottleKeys) -> None:
    """Count a failed login against each key, locking the pair past the free tries."""
    now = _now()
    for key in keys.all():
        row = session.get(LoginFailure, key)
        if row is None:
            row = LoginFailure(key=key, failures=0)
            session.add(row)
        elif now - row.last_failure_at > FAILURE_WINDOW:
            row.failures = 0
            row.locked_until = None
        row.failures += 1
        row.last_failure_at = now
        over = row.failures - free_tries()
        if key == keys.pair and over >= 0:
            row.locked_until = now + min(
                MAX_LOCK, timedelta(seconds=5 * 2 ** min(over, 10))
            )


def clear_failures(session: Session, keys: ThrottleKeys) -> None:
    """Forget the pair's failures after a successful login (the others stay counted)."""
    session.execute(delete(LoginFailure).where(LoginFailure.key == keys.pair))


# --- sessions -------------------------------------------------------------------


@dataclass(frozen=True)
class LoggedIn:
    """A valid session: who, and the CSRF token its forms carry."""

    account_id: int
    name: str
    csrf_token: str


def start_session(session: Session, account: StaffAccount) -> tuple[str, LoggedIn]:
    """A new session for the account: (cookie token, its details)."""
    token = new_token()
    now = _now()
    ends = now + session_lifetime()
    row = StaffSession(
        token_digest=digest(token),
        account_id=account.id,
        csrf_token=new_token(),
        created_at=now,
        expires_at=min(ends, now + idle_timeout()),
        ends_at=ends,
    )
    session.add(row)
    # Expired sessions of anyone are of no use; drop them while here.
    session.execute(delete(StaffSession).where(StaffSession.expires_at < now))
    return token, LoggedIn(account.id, account.name, row.csrf_token)


def current(session: Session, token: str | None) -> LoggedIn | None:
    """The session of a cookie token if it is valid now (and push its idle expiry)."""
    if not token or len(token) > 200:
        return None
    row = session.get(StaffSession, digest(token))
    now = _now()
    if row is None or row.expires_at <= now or row.ends_at <= now:
        return None
    account = session.get(StaffAccount, row.account_id)
    if account is None or not account.active:
        return None
    row.expires_at = min(row.ends_at, now + idle_timeout())
    return LoggedIn(account.id, account.name, row.csrf_token)


def end_session(session: Session, token: str | None) -> None:
    """Log out: the token stops working at once."""
    if token:
        session.execute(
            delete(StaffSession).where(StaffSession.token_digest == digest(token))
        )
