"""Which conversation a socket.io client's session id opens.

A client keeps a session id of its own: the project's page keeps the one the server gave
it (`new_id`), rasa-webchat and Rasa's chat-widget keep one they made up. The id is a
bearer secret held in that browser's storage, and it is never a conversation's id: the
conversation (Rasa's sender id, what the tracker store, the staff console and the logs
see) is `conversation_id(client_id)`, an HMAC-SHA256 of the client's id under the
server's secret. So a conversation id, wherever it is seen, cannot be used to open that
conversation, and a made-up client id opens a conversation of its own.

Client ids must be `acceptable`: 16 to 128 characters of letters, digits and `._:-`
(uuids, hex and base64url tokens), so a short guessable id such as "1" is never shared
by two patients; anything else gets a fresh id from the server.

The secret comes from SESSION_SECRET (or the file SESSION_SECRET_FILE names), or from a
file outside git (build/secrets/session.key, created on first use, mode 0600), so that
conversations survive a restart; servers behind one address share SESSION_SECRET.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import TypeGuard

from bot.training import ROOT
from clinic import settings

SECRET_FILE = ROOT / "build" / "secrets" / "session.key"
ID_BYTES = 24
CONVERSATION_HEX = 40
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:-]{16,128}")


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


def new_id() -> str:
    """A fresh client session id: 192 random bits, base64url."""
    return secrets.token_urlsafe(ID_BYTES)


def acceptable(client_id: object) -> TypeGuard[str]:
    """Whether a client may keep `client_id` as its session id."""
    return isinstance(client_id, str) and _ACCEPTABLE.fullmatch(client_id) is not None


def conversation_id(client_id: str) -> str:
    """The conversation a client's session id opens (not computable without the secret)."""
    message = b"socketio-conversation:" + client_id.encode()
    return hmac.new(_secret(), message, hashlib.sha256).hexdigest()[:CONVERSATION_HEX]
