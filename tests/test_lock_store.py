"""The lock stores serialise a conversation's messages, across worker processes too."""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path

import pytest

from bot.lock_store import FileLockStore


def _issue(folder: str, count: int, queue: multiprocessing.Queue) -> None:
    store = FileLockStore(path=folder)
    queue.put([store.issue_ticket("p1") for _ in range(count)])


def test_workers_never_get_the_same_ticket(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue = context.Queue()
    workers = [
        context.Process(target=_issue, args=(str(tmp_path), 50, queue))
        for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    tickets = [t for _ in workers for t in queue.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(tickets) == list(range(150))


async def test_second_worker_waits_for_the_first(tmp_path: Path) -> None:
    first, second = FileLockStore(path=str(tmp_path)), FileLockStore(path=str(tmp_path))
    order: list[str] = []

    async def handle(store: FileLockStore, name: str, hold: float) -> None:
        async with store.lock("p1", wait_time_in_seconds=0.01):
            order.append(f"{name} in")
            await asyncio.sleep(hold)
            order.append(f"{name} out")

    one = asyncio.create_task(handle(first, "first", 0.1))
    await asyncio.sleep(0.02)
    await handle(second, "second", 0)
    await one
    assert order == ["first in", "first out", "second in", "second out"]
    assert not list(tmp_path.glob("*.json"))  # finished conversations leave no file


async def test_a_crashed_workers_ticket_expires(tmp_path: Path) -> None:
    store = FileLockStore(path=str(tmp_path))
    store.issue_ticket("p1", lock_lifetime=0.3)  # a worker died holding it
    lock = store.get_lock("p1")
    assert lock is not None and lock.is_locked(1)  # the next ticket has to wait

    async def next_message() -> bool:
        async with store.lock("p1", wait_time_in_seconds=0.05):
            return True

    assert await asyncio.wait_for(next_message(), timeout=30)


def test_a_damaged_lock_file_counts_as_no_lock(tmp_path: Path) -> None:
    store = FileLockStore(path=str(tmp_path))
    store.issue_ticket("p1")
    (file,) = tmp_path.glob("*.json")
    file.write_text("{not json", encoding="utf-8")
    assert store.get_lock("p1") is None


def test_the_default_profile_names_the_lock_store_that_fits_its_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rasa.core.lock_store import InMemoryLockStore, LockStore
    from rasa.core.utils import AvailableEndpoints, number_of_sanic_workers

    from bot.lock_store import WorkerLockStore
    from clinic.settings import endpoint_defaults
    from knowledge.settings import PROJECT_ROOT

    for name, value in {**endpoint_defaults(), "ACTION_TOKEN": "t"}.items():
        monkeypatch.setenv(name, value)
    endpoints = AvailableEndpoints.read_endpoints(str(PROJECT_ROOT / "endpoints.yml"))
    assert endpoints.lock_store.type == "bot.lock_store.WorkerLockStore"
    monkeypatch.setenv("LOCK_DIR", str(tmp_path))
    monkeypatch.setenv("SANIC_WORKERS", "2")
    assert number_of_sanic_workers(endpoints.lock_store) == 2  # Rasa lets it share
    shared = LockStore.create(endpoints.lock_store)
    assert isinstance(shared, WorkerLockStore)
    assert isinstance(shared.backend, FileLockStore)
    assert shared.backend.folder == tmp_path
    monkeypatch.setenv("SANIC_WORKERS", "1")
    single = LockStore.create(endpoints.lock_store)
    assert isinstance(single, WorkerLockStore)
    assert isinstance(single.backend, InMemoryLockStore)


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_the_worker_lock_store_serves_one_message_at_a_time(
    workers: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.lock_store import WorkerLockStore

    monkeypatch.setenv("LOCK_DIR", str(tmp_path))
    monkeypatch.setenv("SANIC_WORKERS", workers)
    store = WorkerLockStore()
    order: list[str] = []

    async def handle(name: str, hold: float) -> None:
        async with store.lock("p1", wait_time_in_seconds=0.01):
            order.append(f"{name} in")
            await asyncio.sleep(hold)
            order.append(f"{name} out")

    one = asyncio.create_task(handle("first", 0.1))
    await asyncio.sleep(0.02)
    await handle("second", 0)
    await one
    assert order == ["first in", "first out", "second in", "second out"]
    assert store.get_lock("p1") is None  # forgotten once nobody waits
    assert not list(tmp_path.glob("*.json"))
