"""Fill a tracker store's `events` table with past conversations, fast (for soaks).

A clinic that has run for a while has a large events table; a soak on an empty one
would not show what grows with it. This writes `events` rows as Rasa 3.6's
SQLTrackerStore does (sender_id, type_name, timestamp, intent_name, action_name and the
event's JSON in `data`), in the table Rasa's own model creates (with its sender_id
index), in conversations of 21 events: a session start, four patient messages with
their parse, the actions and replies, slots. The events are
made by Rasa's event classes once, then copied with a new sender id and timestamps, and
written with executemany (SQLite) or COPY (PostgreSQL): a million events in about a
minute instead of hours through the server. The table's statistics are left to the
database, as a real store's are (Rasa never runs ANALYZE; this machine's PostgreSQL has
autovacuum off, so its tables are never analyzed, the case that made the scaled soak
fall: docs/benchmarks.md).

    python -m bench.fill --db-url sqlite:///build/soak/conversations.db --events 1000000
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg2
import sqlalchemy as sa

#: (type_name, intent_name, action_name, data) of one conversation; a timestamp
#: placeholder in `data`, replaced per event.
Template = list[tuple[str, str | None, str | None, str]]
STAMP = "__STAMP__"
SENDER_PREFIX = "filled-"
BATCH = 20_000


def _parse(text: str, intent: str, confidence: float) -> dict[str, Any]:
    others = [
        {"name": other, "confidence": round((1 - confidence) / 9, 4)}
        for other in (
            "greet",
            "goodbye",
            "thank",
            "bot_challenge",
            "ask_cost",
            "ask_parking",
            "nlu_fallback",
            "red_flag",
            "out_of_scope",
        )
        if other != intent
    ]
    ranking = [{"name": intent, "confidence": confidence}, *others[:9]]
    return {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "entities": [],
        "intent_ranking": ranking,
        "language": "en",
    }


def conversation_events() -> list[Any]:
    """One past conversation as Rasa's own event objects."""
    from rasa.shared.core.events import (
        ActionExecuted,
        BotUttered,
        SessionStarted,
        SlotSet,
        UserUttered,
    )

    events: list[Any] = [
        ActionExecuted("action_session_start"),
        SessionStarted(),
        ActionExecuted("action_listen"),
    ]
    turns = [
        ("what is prp", "ask_topic", "prp", "PRP uses a concentrate of your blood."),
        ("how long does the relief last", "ask_duration", None, "Often months."),
        ("what about nerve blocks", "ask_topic", "nerve_block", "A nerve block..."),
        ("thanks, bye", "goodbye", None, "Take care, and call us with questions."),
    ]
    for text, intent, topic, reply in turns:
        parse = _parse(text, intent, 0.93)
        events.append(UserUttered(text, parse["intent"], [], parse))
        if topic:
            events.append(SlotSet("topic", topic))
        events.append(
            ActionExecuted("action_answer_topic", policy="RulePolicy", confidence=1.0)
        )
        answer = {"type": "knowledge", "section": f"guide.md#{topic or intent}"}
        events.append(BotUttered(reply, {"custom": {"answer": answer}}))
        events.append(
            ActionExecuted("action_listen", policy="RulePolicy", confidence=1.0)
        )
    return events


def template() -> Template:
    """The conversation's rows with a timestamp placeholder."""
    rows = []
    for event in conversation_events():
        data = event.as_dict()
        data["timestamp"] = STAMP
        rows.append(
            (
                event.type_name,
                data.get("parse_data", {}).get("intent", {}).get("name"),
                data.get("name"),
                json.dumps(data).replace(f'"{STAMP}"', STAMP),
            )
        )
    return rows


def rows(events: int, start: float) -> Iterator[tuple[Any, ...]]:
    """`events` rows: whole conversations, 30 s apart, one second between events."""
    shape = template()
    made = 0
    number = 0
    while made < events:
        sender = f"{SENDER_PREFIX}{uuid.uuid4().hex}"
        stamp = start + 30.0 * number
        for offset, (type_name, intent, action, data) in enumerate(shape):
            if made == events:
                return
            at = stamp + offset
            yield sender, type_name, at, intent, action, data.replace(STAMP, repr(at))
            made += 1
        number += 1


def create_table(url: str) -> None:
    """Rasa's events table with its indexes, as the tracker store would create it."""
    from rasa.core.tracker_store import SQLTrackerStore

    engine = sa.create_engine(url)
    try:
        SQLTrackerStore.Base.metadata.create_all(engine)
    finally:
        engine.dispose()


COLUMNS = ("sender_id", "type_name", "timestamp", "intent_name", "action_name", "data")


def _fill_sqlite(path: str, source: Iterator[tuple[Any, ...]]) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")
        insert = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)"
        while batch := list(_take(source, BATCH)):
            connection.executemany(insert, batch)
            connection.commit()
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def _fill_postgresql(url: str, source: Iterator[tuple[Any, ...]]) -> None:
    connection = psycopg2.connect(url.replace("postgresql+psycopg2", "postgresql"))
    try:
        with connection.cursor() as cursor:
            while batch := list(_take(source, BATCH)):
                buffer = io.StringIO()
                csv.writer(buffer).writerows(batch)
                buffer.seek(0)
                cursor.copy_expert(
                    f"COPY events ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT csv)",
                    buffer,
                )
            connection.commit()
    finally:
        connection.close()


def _take(source: Iterator[Any], count: int) -> Iterator[Any]:
    for _, item in zip(range(count), source, strict=False):
        yield item


def fill(url: str, events: int, start: float | None = None) -> float:
    """Add `events` past events to the tracker store at `url`; the seconds it took."""
    began = time.perf_counter()
    create_table(url)
    source = rows(events, start if start is not None else time.time() - 90 * 86400)
    backend = sa.engine.make_url(url)
    if backend.get_backend_name() == "sqlite":
        _fill_sqlite(str(backend.database), source)
    else:
        _fill_postgresql(url, source)
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    """Fill the store named on the command line; print what was written."""
    parser = argparse.ArgumentParser(prog="python -m bench.fill")
    parser.add_argument("--db-url", required=True, help="SQLAlchemy URL of the store")
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    seconds = fill(args.db_url, args.events)
    print(f"{args.events} events written in {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
