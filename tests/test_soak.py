"""The soak bench (issue 14): the filled tracker store, the verdict, a short soak."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bench import fill, soak


def test_filled_events_are_conversations_rasa_reads(tmp_path: Path) -> None:
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain

    database = tmp_path / "conversations.db"
    fill.fill(f"sqlite:///{database}", 2 * 21 + 5)
    with sqlite3.connect(database) as connection:
        (count,) = connection.execute("SELECT count(*) FROM events").fetchone()
        rows = connection.execute("SELECT sender_id FROM events ORDER BY id")
        senders = list(dict.fromkeys(row[0] for row in rows))  # first written first
        indexes = {r[1] for r in connection.execute("PRAGMA index_list('events')")}
    assert count == 47 and len(senders) == 3
    assert "ix_events_sender_id" in indexes  # Rasa's own index, as its store makes it

    domain = Domain.from_yaml("slots:\n  topic:\n    type: any\n    mappings: []\n")
    store = SQLTrackerStore(domain, dialect="sqlite", db=str(database))
    tracker = asyncio.run(store.retrieve(senders[0]))
    # Rasa reads from the session's start on: all but the action_session_start before it.
    assert tracker is not None and len(tracker.events) == 20
    texts = [e.text for e in tracker.events if e.type_name == "user"]
    assert texts == [
        "what is prp",
        "how long does the relief last",
        "what about nerve blocks",
        "thanks, bye",
    ]
    assert tracker.get_slot("topic") == "nerve_block"


def _row(number: int, rate: float, p95: float, memory: float, errors: int = 0) -> Any:
    return {
        "interval": number,
        "messages_per_second": rate,
        "p95_ms": p95,
        "errors": errors,
        "empty_replies": 0,
        "rasa_rss_mb": memory,
        "action_rss_mb": 100.0,
        "load_1min": 2.0,
    }


def test_verdict_compares_the_last_interval_with_the_first() -> None:
    flat = soak.verdict(
        [_row(1, 80, 200, 900), _row(2, 60, 300, 950), _row(3, 75, 210, 920)]
    )
    assert flat["throughput_met"] and flat["p95_met"] and flat["memory_met"]
    assert flat["errors_met"] and flat["throughput_change"] == -0.062

    fell = soak.verdict([_row(1, 80, 200, 900), _row(2, 66, 260, 1200, errors=1)])
    assert not fell["throughput_met"] and not fell["p95_met"]
    assert not fell["memory_met"] and fell["errors_and_empty"] == 1


@pytest.mark.e2e
def test_a_short_soak_reports_intervals_without_errors(tmp_path: Path) -> None:
    """20 s of load on a small filled store: figures every 5 s, nothing failed.

    Speed is not asserted (the machine is shared); the runner and the plot are."""
    picture = tmp_path / "soak.png"
    result = soak.run("default", 20 / 60, 4, 5.0, 500, picture)
    rows = result["intervals"]
    assert len(rows) == 4 and [r["interval"] for r in rows] == [1, 2, 3, 4]
    assert all(r["messages"] > 0 and r["rasa_rss_mb"] > 0 for r in rows)
    assert all(r["action_rss_mb"] > 0 and r["storage_mb"] > 0 for r in rows)
    assert rows[-1]["storage_mb"] >= rows[0]["storage_mb"]
    assert result["verdict"]["errors_and_empty"] == 0
    assert result["whole"]["messages"] >= sum(r["messages"] for r in rows)
    assert picture.stat().st_size > 10_000
    assert soak.markdown(rows)[2].startswith("| 1 | ")
