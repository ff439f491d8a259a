"""The conversation lock across servers: Rasa's RedisLockStore races, ours does not.

Each "server" is a thread with its own store object and its own Redis connection, all
taking the same conversation's lock in a loop. Inside the lock a probe counter in Redis
must never be above one (two servers processing the same conversation at once); every
round must get the lock (a LockError is a message that would have failed).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable

import pytest
import redis
from rasa.core.lock_store import LockError, LockStore, RedisLockStore

from bot.locks import AtomicRedisLockStore, LockStoreUnavailableError

from .conftest import PrivateRedis

pytestmark = pytest.mark.scaled

REDIS_URL = "redis://127.0.0.1:6379/1"
LIFETIME = 2.0  # short, so a ticket the stock store loses stalls the others briefly
#: How long one server's rounds may take: Rasa's store can lose a server's ticket for good
#: and leave it waiting for a turn that never comes (counted as a stall, not waited out).
ROUNDS_DEADLINE = 60.0


def contend(
    make_store: Callable[[], LockStore], servers: int = 4, rounds: int = 25
) -> dict[str, int]:
    """Run `servers` threads that each take one conversation's lock `rounds` times."""
    conversation = f"race-{uuid.uuid4().hex}"
    probe = f"probe:{conversation}"
    client = redis.Redis.from_url(REDIS_URL)
    counts = {"overlaps": 0, "lock_errors": 0, "stalls": 0, "served": 0}
    guard = threading.Lock()

    def count(name: str) -> None:
        with guard:
            counts[name] += 1

    def server() -> None:
        store = make_store()

        async def rounds_of_work() -> None:
            for _ in range(rounds):
                try:
                    async with store.lock(conversation, LIFETIME, 0.005):
                        if client.incr(probe) > 1:
                            count("overlaps")
                        await asyncio.sleep(0.002)
                        client.decr(probe)
                        count("served")
                except LockError:
                    count("lock_errors")

        try:
            asyncio.run(asyncio.wait_for(rounds_of_work(), ROUNDS_DEADLINE))
        except asyncio.TimeoutError:
            count("stalls")

    threads = [threading.Thread(target=server) for _ in range(servers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.delete(probe)
    return counts


def atomic_store() -> AtomicRedisLockStore:
    return AtomicRedisLockStore(url=REDIS_URL, poll_seconds=0.005)


def test_stock_redis_lock_store_lets_two_servers_in_at_once() -> None:
    """The finding: GET-edit-SET tickets overlap and lose messages under contention (or
    lose a ticket so that its server waits for ever: a stall)."""
    counts = contend(lambda: RedisLockStore(db=1))
    assert counts["overlaps"] + counts["lock_errors"] + counts["stalls"] > 0, counts


def test_atomic_lock_store_serves_one_server_at_a_time() -> None:
    counts = contend(atomic_store)
    assert counts == {"overlaps": 0, "lock_errors": 0, "stalls": 0, "served": 100}


async def test_tickets_are_served_in_order_and_the_lock_is_removed() -> None:
    store = atomic_store()
    conversation = f"order-{uuid.uuid4().hex}"
    first = store.issue_ticket(conversation, 10)
    second = store.issue_ticket(conversation, 10)
    assert second > first
    assert store.is_turn(conversation, first)
    assert not store.is_turn(conversation, second)
    store.cleanup(conversation, first)
    assert store.is_turn(conversation, second)
    store.cleanup(conversation, second)
    assert store.get_lock(conversation) is None
    assert not store.is_someone_waiting(conversation)
    store.delete_lock(conversation)


async def test_a_ticket_that_is_never_returned_expires() -> None:
    """A server that dies inside the lock holds the conversation only for the lifetime."""
    store = atomic_store()
    conversation = f"crash-{uuid.uuid4().hex}"
    store.issue_ticket(conversation, 0.3)  # its server "crashed"
    started = time.monotonic()
    async with store.lock(conversation, 10):
        waited = time.monotonic() - started
    assert waited >= 0.25
    store.delete_lock(conversation)


async def test_an_expired_ticket_is_an_error_not_a_second_holder() -> None:
    store = atomic_store()
    conversation = f"late-{uuid.uuid4().hex}"
    holder = store.issue_ticket(conversation, 10)
    late = store.issue_ticket(conversation, 0.1)
    time.sleep(0.2)
    with pytest.raises(LockError, match="expired"):
        store.is_turn(conversation, late)
    store.cleanup(conversation, holder)
    store.delete_lock(conversation)


async def test_redis_down_is_a_clear_lock_error() -> None:
    store = AtomicRedisLockStore(url="redis://127.0.0.1:1/1")
    with pytest.raises(LockError, match="lock store unavailable"):
        async with store.lock("anyone"):
            pass


async def test_a_ticket_issued_after_its_server_gave_up_does_not_hold_the_conversation(
    private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis hangs while a ticket is issued: the server gives up after the timeout, but
    Redis runs the issue when it wakes up. That ticket is released at the server's next
    step instead of holding the conversation for its whole lifetime."""
    monkeypatch.setenv("REDIS_SOCKET_TIMEOUT", "0.3")
    store = AtomicRedisLockStore(url=private_redis.url, poll_seconds=0.005)
    conversation = f"hung-{uuid.uuid4().hex}"
    async with store.lock(conversation, 30):  # the connection is open and in use
        pass
    private_redis.pause()
    try:
        started = time.monotonic()
        with pytest.raises(LockStoreUnavailableError, match="Timeout"):
            async with store.lock(conversation, 30):
                pass
        assert time.monotonic() - started < 3
    finally:
        private_redis.resume()
    time.sleep(0.2)
    stray = store.get_lock(conversation)
    assert stray is not None and len(stray.tickets) == 1  # Redis ran the late issue

    async def next_message() -> float:
        started = time.monotonic()
        async with store.lock(conversation, 30):
            return time.monotonic() - started

    assert await asyncio.wait_for(next_message(), timeout=10) < 1
    assert store.get_lock(conversation) is None
    assert not store.red.keys(f"*{conversation}*:claim:*")  # claims go with tickets
    store.delete_lock(conversation)


def test_an_issue_that_runs_after_its_release_issues_nothing() -> None:
    """The other order: the server's release reaches Redis before the late issue."""
    store = atomic_store()
    conversation = f"late-issue-{uuid.uuid4().hex}"
    tag = uuid.uuid4().hex
    tickets, expiries, claim = store._release_keys(conversation, tag)
    store._release(keys=[tickets, expiries, claim], args=[10_000])
    counter = f"{tickets}:n"
    late = store._issue(keys=[tickets, expiries, counter, claim], args=[10_000, 0])
    assert late == -1
    assert store.get_lock(conversation) is None
    store.delete_lock(conversation)
    store.red.delete(claim)


def test_key_prefix_must_be_alphanumeric() -> None:
    with pytest.raises(ValueError):
        AtomicRedisLockStore(url=REDIS_URL, key_prefix="bad prefix")
