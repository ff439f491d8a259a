"""A Redis lock store whose every step is atomic, for several Rasa servers.

Rasa keeps the messages of one conversation in order with a ticket lock: each message
takes the next ticket and waits until it is the lowest one still held. Rasa 3.6's
`RedisLockStore` keeps the whole lock as one JSON value and changes it by GET, edit in
Python, SET. Two servers that take a ticket for the same conversation at the same moment
both read the same lock, both write "ticket 0", and both think it is their turn: the two
messages are processed at once on the same tracker (replies out of order, events
interleaved, one server's events stored over the other's). A finishing server can also
write back a lock that no longer holds a ticket another server just took, or delete it,
and that message then fails with "Could not acquire lock". tests/scaled/test_locks.py
shows both with the stock store and that this one keeps them apart.

Here each step is one Lua script, which Redis runs atomically:

- issue: the ticket number comes from `INCR` on a counter (never reused while a ticket
  could still be alive), the ticket goes into a sorted set with its expiry beside it;
- head: drop expired tickets and return the lowest one (Redis's clock, not each
  server's, decides expiry, so clock skew between machines does not matter);
- finish: remove the ticket; the set goes when it is empty, the counter expires on its own.

When Redis is down, unreachable or does not answer within REDIS_SOCKET_TIMEOUT /
REDIS_CONNECT_TIMEOUT (1 s each by default), every step raises
`LockStoreUnavailableError` (a LockError, without the conversation or the message), and
bot.outage.guard_agent answers the patient. A step that timed out may still
run when Redis wakes up: each message's ticket is also recorded under a claim of its own
(a random tag), and a ticket whose issue or return failed is released through that claim
the next time this server reaches Redis. If the delayed issue runs after that release,
it finds the claim released and issues nothing, so no stray ticket holds the
conversation until it expires.

Keys share a `{conversation}` hash tag so the scripts also work on Redis Cluster.
Configured in endpoints.yml (see deploy/scaled/endpoints.yml):

    lock_store:
      type: bot.locks.AtomicRedisLockStore
      url: ${REDIS_URL}            # redis://host:6379/1
      key_prefix: clinic           # optional, letters and digits
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

import redis
from rasa.core.lock import Ticket, TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore
from rasa.utils.endpoints import EndpointConfig

from bot.conversation_store import describe
from clinic import settings

logger = logging.getLogger(__name__)

DEFAULT_URL = "redis://127.0.0.1:6379/1"
# Rasa waits a whole second between looks at a busy lock; a conversation's next message
# should not wait that long behind a reply that takes 100 ms.
DEFAULT_POLL_SECONDS = 0.02
# How long the ticket counter outlives the newest ticket, so a number is never issued
# twice while a waiting server could still hold the old ticket of that number.
COUNTER_MARGIN_MS = 60_000
# How long a reply may wait for Redis (each step); a hung Redis must not hold it long.
DEFAULT_TIMEOUT_SECONDS = 1.0
# Tickets to release once Redis answers again; beyond this many the oldest just expire.
PENDING_RELEASES = 1000

# Shared by the scripts: now in ms from Redis's clock; drop expired tickets.
_PURGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, number in ipairs(held) do
  local expires = tonumber(redis.call('HGET', KEYS[2], number) or '0')
  if expires <= now then
    redis.call('ZREM', KEYS[1], number)
    redis.call('HDEL', KEYS[2], number)
  end
end
"""

# Shared: give ticket `number` back; the lock goes when no ticket is left.
_GIVE_BACK = """
local function give_back(number)
  redis.call('ZREM', KEYS[1], number)
  redis.call('HDEL', KEYS[2], number)
  local left = redis.call('ZCARD', KEYS[1])
  if left == 0 then
    redis.call('DEL', KEYS[1], KEYS[2])
  end
  return left
end
"""

# KEYS: tickets, expiries, counter, claim. ARGV: lifetime in ms, counter margin in ms.
# Returns the ticket number, or -1 when the claim was released before this ran (a
# server gave up waiting for it; nobody reads the answer).
_ISSUE = (
    _PURGE
    + """
if redis.call('EXISTS', KEYS[4]) == 1 then
  return -1
end
local lifetime = tonumber(ARGV[1])
local number = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[1], number, number)
redis.call('HSET', KEYS[2], number, now + lifetime)
for i = 1, 2 do
  if redis.call('PTTL', KEYS[i]) < lifetime then
    redis.call('PEXPIRE', KEYS[i], lifetime)
  end
end
redis.call('PEXPIRE', KEYS[3], lifetime + tonumber(ARGV[2]))
redis.call('SET', KEYS[4], number, 'PX', lifetime)
return number
"""
)

# KEYS: tickets, expiries. ARGV: ticket. Returns 1 (its turn), 0 (wait), -1 (expired).
_TURN = (
    _PURGE
    + """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return -1
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0)
if first[1] == ARGV[1] then
  return 1
end
return 0
"""
)

# KEYS: tickets, expiries. ARGV: ticket. Returns how many tickets are still held.
_FINISH = _PURGE + _GIVE_BACK + "return give_back(ARGV[1])\n"

# KEYS: tickets, expiries, claim. ARGV: lifetime in ms. Gives back the claim's ticket
# if it was issued; if not (yet), marks the claim released so that a late issue issues
# nothing. Returns how many tickets are still held.
_RELEASE = (
    _GIVE_BACK
    + """
local number = redis.call('GET', KEYS[3])
if not number then
  redis.call('SET', KEYS[3], 'released', 'PX', tonumber(ARGV[1]))
elseif number ~= 'released' then
  redis.call('DEL', KEYS[3])
  return give_back(number)
end
return redis.call('ZCARD', KEYS[1])
"""
)

# KEYS: tickets, expiries. Returns a flat list: number, expiry (ms), number, ...
_SNAPSHOT = (
    _PURGE
    + """
local out = {}
for _, number in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  table.insert(out, number)
  table.insert(out, redis.call('HGET', KEYS[2], number))
end
return out
"""
)


class LockStoreUnavailableError(LockError):
    """Redis did not answer: refused, unreachable, or silent past the timeout."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"lock store unavailable: {describe(error)}")


def _timeout(kwargs: dict[str, Any], key: str, variable: str) -> float:
    """A Redis timeout from endpoints.yml (`key`), else the environment, else 1 s."""
    configured = kwargs.get(key)
    if configured not in (None, ""):
        return float(configured)
    seconds = settings.seconds(variable, DEFAULT_TIMEOUT_SECONDS)
    return seconds or DEFAULT_TIMEOUT_SECONDS


class AtomicRedisLockStore(LockStore):
    """Ticket locks in Redis, each step one atomic script (see the module docstring)."""

    def __init__(
        self,
        endpoint_config: EndpointConfig | None = None,
        url: str | None = None,
        key_prefix: str | None = None,
        poll_seconds: float | None = None,
    ) -> None:
        """Connect to Redis from `endpoint_config` (Rasa's way) or from `url`."""
        kwargs: dict[str, Any] = dict(endpoint_config.kwargs) if endpoint_config else {}
        url = url or (endpoint_config.url if endpoint_config else None) or DEFAULT_URL
        prefix = key_prefix if key_prefix is not None else kwargs.get("key_prefix")
        prefix = str(prefix or "").strip()
        if prefix and not prefix.isalnum():
            raise ValueError(
                f"lock store key_prefix must be letters and digits: {prefix!r}"
            )
        self.key_prefix = f"{prefix}:lock:" if prefix else "lock:"
        self.poll_seconds = (
            poll_seconds
            or settings.seconds("LOCK_POLL_SECONDS", DEFAULT_POLL_SECONDS)
            or DEFAULT_POLL_SECONDS
        )
        self.red = redis.Redis.from_url(
            url,
            socket_timeout=_timeout(kwargs, "socket_timeout", "REDIS_SOCKET_TIMEOUT"),
            socket_connect_timeout=_timeout(
                kwargs, "socket_connect_timeout", "REDIS_CONNECT_TIMEOUT"
            ),
        )
        self._issue = self.red.register_script(_ISSUE)
        self._turn = self.red.register_script(_TURN)
        self._finish = self.red.register_script(_FINISH)
        self._release = self.red.register_script(_RELEASE)
        self._snapshot = self.red.register_script(_SNAPSHOT)
        # (conversation, claim tag, lifetime in ms) of tickets to release when Redis
        # answers again: their issue or return failed, Redis may hold them all the same.
        self._unreleased: deque[tuple[str, str, int]] = deque(maxlen=PENDING_RELEASES)
        super().__init__()

    def _keys(self, conversation_id: str) -> list[str]:
        base = f"{self.key_prefix}{{{conversation_id}}}"
        return [base, f"{base}:exp", f"{base}:n"]

    def _release_keys(self, conversation_id: str, tag: str) -> list[str]:
        """Keys of the release script: tickets, expiries and the claim `tag`."""
        tickets, expiries, _ = self._keys(conversation_id)
        return [tickets, expiries, f"{tickets}:claim:{tag}"]

    def _run(self, script: Any, keys: list[str], args: list[Any] | None = None) -> Any:
        """Run one script; a Redis failure becomes LockStoreUnavailableError."""
        try:
            return script(keys=keys, args=args or [])
        except redis.RedisError as error:
            raise LockStoreUnavailableError(error) from None

    def _release_unreleased(self) -> None:
        """Release the tickets whose issue or return failed (see the module docstring).

        While Redis is unreachable this raises (the new ticket could not be issued
        either); any other error leaves that ticket to expire on its own.
        """
        while self._unreleased:
            pending = self._unreleased.popleft()
            conversation_id, tag, lifetime_ms = pending
            keys = self._release_keys(conversation_id, tag)
            try:
                self._release(keys=keys, args=[lifetime_ms])
            except (redis.ConnectionError, redis.TimeoutError) as error:
                self._unreleased.appendleft(pending)
                raise LockStoreUnavailableError(error) from None
            except redis.RedisError as error:
                logger.warning("could not release a lock ticket: %s", describe(error))

    def _take_ticket(
        self, conversation_id: str, lock_lifetime: float
    ) -> tuple[int, str]:
        """(ticket number, claim tag): the next ticket, recorded under a new claim."""
        lifetime_ms = max(1, int(lock_lifetime * 1000))
        self._release_unreleased()
        tag = uuid.uuid4().hex
        tickets, expiries, claim = self._release_keys(conversation_id, tag)
        keys = [tickets, expiries, self._keys(conversation_id)[2], claim]
        try:
            number = self._run(self._issue, keys, [lifetime_ms, COUNTER_MARGIN_MS])
        except LockStoreUnavailableError:
            # A timeout may mean Redis runs the issue later: release it then.
            self._unreleased.append((conversation_id, tag, lifetime_ms))
            raise
        return int(number), tag

    def _give_back(self, conversation_id: str, tag: str, lock_lifetime: float) -> None:
        """Release the claim's ticket; when Redis fails, again once it answers."""
        lifetime_ms = max(1, int(lock_lifetime * 1000))
        try:
            keys = self._release_keys(conversation_id, tag)
            self._run(self._release, keys, [lifetime_ms])
        except LockStoreUnavailableError as error:
            self._unreleased.append((conversation_id, tag, lifetime_ms))
            logger.warning("could not return a lock ticket (will retry): %s", error)

    def issue_ticket(
        self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME
    ) -> int:
        """Take the next ticket for `conversation_id` (one atomic step)."""
        return self._take_ticket(conversation_id, lock_lifetime)[0]

    def is_turn(self, conversation_id: str, ticket: int) -> bool:
        """Whether `ticket` is the lowest ticket held; LockError once it has expired."""
        state = int(self._run(self._turn, self._keys(conversation_id)[:2], [ticket]))
        if state < 0:
            raise LockError(
                f"ticket {ticket} for a conversation expired before its turn "
                "(raise TICKET_LOCK_LIFETIME if replies take that long)"
            )
        return state == 1

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        """Give the ticket back; the lock disappears when no ticket is left."""
        try:
            self._run(self._finish, self._keys(conversation_id)[:2], [ticket_number])
        except LockStoreUnavailableError as error:
            # The ticket expires on its own; the next message waits at most its lifetime.
            logger.warning("could not return a lock ticket; it will expire: %s", error)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Finishing already removes an empty lock, in the same atomic step."""
        self.finish_serving(conversation_id, ticket_number)

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> AsyncGenerator[TicketLock, None]:
        """Hold the conversation's lock: wait for this ticket's turn, release after."""
        ticket, tag = self._take_ticket(conversation_id, lock_lifetime)
        try:
            poll = min(self.poll_seconds, wait_time_in_seconds)
            while not self.is_turn(conversation_id, ticket):
                await asyncio.sleep(poll)
            yield self.get_lock(conversation_id) or TicketLock(conversation_id)
        finally:
            self._give_back(conversation_id, tag, lock_lifetime)

    def get_lock(self, conversation_id: str) -> TicketLock | None:
        """A snapshot of the lock as Rasa's TicketLock (for inspection only)."""
        flat = self._run(self._snapshot, self._keys(conversation_id)[:2])
        if not flat:
            return None
        pairs = zip(flat[0::2], flat[1::2], strict=True)
        tickets = deque(Ticket(int(n), int(expiry) / 1000) for n, expiry in pairs)
        return TicketLock(conversation_id, tickets)

    def is_someone_waiting(self, conversation_id: str) -> bool:
        """Whether any ticket is held for the conversation."""
        return bool(self.red.zcard(self._keys(conversation_id)[0]))

    def update_lock(self, conversation_id: str) -> None:
        """Expired tickets are dropped by every script; nothing else to do."""

    def delete_lock(self, conversation_id: str) -> None:
        """Remove the lock and its counter (e.g. in tests)."""
        self.red.delete(*self._keys(conversation_id))

    def save_lock(self, lock: TicketLock) -> None:
        """Not supported: writing a whole lock back is the race this store avoids."""
        raise NotImplementedError(
            "AtomicRedisLockStore changes locks only through its atomic scripts"
        )
