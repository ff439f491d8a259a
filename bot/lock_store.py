"""The default profile's lock store: in the process for one Sanic worker, files for more.

Rasa serves a conversation's messages one at a time through a lock store; with more than
one Sanic worker (SANIC_WORKERS) the lock has to be shared between the worker processes,
and Rasa ships only an in-memory one (one process) and Redis (a service to run).
`WorkerLockStore`, named in endpoints.yml, is Rasa's in-memory store for one worker and
`FileLockStore` for several; naming a lock store class is also what lets Rasa start
more than one worker (rasa.core.utils.number_of_sanic_workers).

`FileLockStore` keeps each conversation's ticket lock as a small JSON file in a folder and
makes every read-modify-write of a lock atomic with an exclusive `flock` on one guard
file, so two workers never hand out the same ticket. The files of finished conversations
are removed; a crashed worker's tickets expire after the lock lifetime like Rasa's own.
Folder: LOCK_DIR (default build/locks). The scaled profile, several machines, uses
Redis instead (bot.locks.AtomicRedisLockStore).

    lock_store:
      type: bot.lock_store.WorkerLockStore
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
from rasa.core.lock_store import LOCK_LIFETIME, InMemoryLockStore, LockStore

from clinic import settings


class WorkerLockStore(LockStore):
    """Ticket locks shared by this machine's Sanic workers: in memory for one, in files for more.

    Every method that reads or changes a lock is the chosen store's (`backend`), so its
    read-modify-writes stay atomic; Rasa's `lock()` and waiting are LockStore's own.
    """

    def __init__(self, endpoint_config: Any = None) -> None:
        self.backend: LockStore = (
            FileLockStore(endpoint_config)
            if settings.current().sanic_workers > 1
            else InMemoryLockStore()
        )

    def get_lock(self, conversation_id: str) -> TicketLock | None:
        """The conversation's lock, or None when nobody holds or waits for it."""
        return self.backend.get_lock(conversation_id)

    def delete_lock(self, conversation_id: str) -> None:
        """Forget the conversation's lock."""
        self.backend.delete_lock(conversation_id)

    def save_lock(self, lock: TicketLock) -> None:
        """Store the lock."""
        self.backend.save_lock(lock)

    def issue_ticket(
        self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME
    ) -> int:
        """A ticket for the conversation's lock."""
        return self.backend.issue_ticket(conversation_id, lock_lifetime)

    def update_lock(self, conversation_id: str) -> None:
        """Remove the lock's expired tickets."""
        self.backend.update_lock(conversation_id)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        """Remove a served ticket."""
        self.backend.finish_serving(conversation_id, ticket_number)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Finish the ticket; forget the lock if nobody waits."""
        self.backend.cleanup(conversation_id, ticket_number)


class FileLockStore(LockStore):
    """Ticket locks in files, serialised between processes with flock."""

    def __init__(self, endpoint_config: Any = None, path: str | None = None) -> None:
        configured = getattr(endpoint_config, "kwargs", {}).get("path")
        folder = Path(path or configured or settings.current().lock_dir)
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
