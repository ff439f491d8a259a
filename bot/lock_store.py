"""A lock store that is safe across Sanic workers on one machine, without a service.

Rasa serves a conversation's messages one at a time through a lock store; with more than
one Sanic worker (SANIC_WORKERS) the lock has to be shared between the worker processes,
and Rasa ships only an in-memory one (one process) and Redis (a service to run). This one
keeps each conversation's ticket lock as a small JSON file in a folder and makes every
read-modify-write of a lock atomic with an exclusive `flock` on one guard file, so two
workers never hand out the same ticket. The files of finished conversations are removed;
a crashed worker's tickets expire after the lock lifetime like Rasa's own.

endpoints.yml need not name it: `share_between_workers` (called by bot.server) selects
it when SANIC_WORKERS > 1 and no lock store is configured. Folder: LOCK_DIR (default
build/locks).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockStore
from rasa.core.utils import AvailableEndpoints
from rasa.utils.endpoints import EndpointConfig


def share_between_workers(endpoints: AvailableEndpoints | None) -> None:
    """With SANIC_WORKERS > 1 and no lock store configured, use FileLockStore.

    Rasa refuses more than one worker with its in-memory lock store (each worker would
    have its own locks); the file lock store is shared by the workers on this machine.
    """
    try:
        workers = int(os.environ.get("SANIC_WORKERS", "1"))
    except ValueError:
        return  # Rasa reports the bad value and uses one worker
    if workers > 1 and endpoints is not None and endpoints.lock_store is None:
        endpoints.lock_store = EndpointConfig(type=f"{__name__}.FileLockStore")


class FileLockStore(LockStore):
    """Ticket locks in files, serialised between processes with flock."""

    def __init__(self, endpoint_config: Any = None, path: str | None = None) -> None:
        configured = getattr(endpoint_config, "kwargs", {}).get("path")
        folder = Path(path or configured or os.environ.get("LOCK_DIR", "build/locks"))
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._guard: IO[str] = open(folder / ".guard", "a+")  # noqa: SIM115 (kept open)
        self._depth = 0

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the guard; re-entrant, since Rasa's cleanup calls finish_serving."""
        if self._depth == 0:
            fcntl.flock(self._guard, fcntl.LOCK_EX)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                fcntl.flock(self._guard, fcntl.LOCK_UN)

    def _file(self, conversation_id: str) -> Path:
        digest = hashlib.sha256(conversation_id.encode("utf-8")).hexdigest()
        return self.folder / f"{digest}.json"

    def get_lock(self, conversation_id: str) -> TicketLock | None:
        """The conversation's lock, or None when nobody holds or waits for it."""
        try:
            text = self._file(conversation_id).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return TicketLock.from_dict(json.loads(text))
        except ValueError:
            return None  # a torn file cannot happen (atomic replace); be safe anyway

    def delete_lock(self, conversation_id: str) -> None:
        """Forget the conversation's lock."""
        with self._exclusive():
            self._file(conversation_id).unlink(missing_ok=True)

    def save_lock(self, lock: TicketLock) -> None:
        """Write the lock atomically (a reader sees the old or the new file)."""
        target = self._file(lock.conversation_id)
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(lock.dumps(), encoding="utf-8")
        os.replace(partial, target)

    def issue_ticket(
        self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME
    ) -> int:
        """Rasa's ticket issue, atomic across processes."""
        with self._exclusive():
            return super().issue_ticket(conversation_id, lock_lifetime)

    def update_lock(self, conversation_id: str) -> None:
        """Rasa's expired-ticket removal, atomic across processes."""
        with self._exclusive():
            super().update_lock(conversation_id)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        """Rasa's ticket removal, atomic across processes."""
        with self._exclusive():
            super().finish_serving(conversation_id, ticket_number)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Rasa's cleanup (finish, delete if nobody waits), atomic across processes."""
        with self._exclusive():
            super().cleanup(conversation_id, ticket_number)
