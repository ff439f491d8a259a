"""Conversation ids the server issues: 128 random bits and an HMAC tag.

The id doubles as Rasa's sender id. Only ids this server (or another server sharing
SESSION_SECRET) issued are accepted back, so a page cannot make up, count through or
guess another patient's conversation. The secret comes from SESSION_SECRET (or the file
SESSION_SECRET_FILE names), or from a file outside git (build/secrets/session.key,
created on first use, mode 0600) so that sessions survive a restart of a single server.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path

from bot import settings
from bot.training import ROOT

SECRET_FILE = ROOT / "build" / "secrets" / "session.key"
ID_BYTES = 16
TAG_HEX = 32


@lru_cache(maxsize=1)
def _secret() -> bytes:
    from_env = settings.secret("SESSION_SECRET")
    if from_env:
        return from_env.encode()
    return _file_secret(SECRET_FILE)


def _file_secret(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32).encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(value)
    return value


def _tag(random_part: str) -> str:
    digest = hmac.new(_secret(), random_part.encode(), hashlib.sha256).hexdigest()
    return digest[:TAG_HEX]


def new_id() -> str:
    """A fresh conversation id: `<32 hex random>.<32 hex tag>`."""
    random_part = secrets.token_hex(ID_BYTES)
    return f"{random_part}.{_tag(random_part)}"


def is_valid(session_id: object) -> bool:
    """Whether `session_id` is one this server issued."""
    if not isinstance(session_id, str) or len(session_id) != 2 * ID_BYTES + 1 + TAG_HEX:
        return False
    random_part, _, tag = session_id.partition(".")
    if len(random_part) != 2 * ID_BYTES:
        return False
    return hmac.compare_digest(tag, _tag(random_part))
