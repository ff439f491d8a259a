"""The scaled profile under load: consistency across servers, then soak figures.

`make bench-scaled` (python -m bench.scaled) starts the profile (2 Rasa + 2 action servers
behind nginx, PostgreSQL tracker and knowledge stores in a fresh database on
SCALED_PG_URL, atomic Redis locks) and prints:

1. the cross-server audit: many conversations, each sending its messages two at a time,
   one to each Rasa server, then every stored event checked (`audit`); with
   `--compare-stock` the same with Rasa's own RedisLockStore;
2. load through nginx at several concurrencies (bench/loadgen.py, closed loop);
3. a soak: a longer run at one concurrency, figures per interval.

tests/scaled/ uses `exchange` and `audit` for its assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import psycopg2
from psycopg2 import sql

from bench import loadgen
from bot.locks import DEFAULT_URL as DEFAULT_REDIS_URL
from bot.training import ROOT

# Distinct messages, so each stored user event maps to one request.
MESSAGES = [
    "what helps my knee",
    "what is prp",
    "why would i get injections instead of pills",
    "do you do acupuncture",
    "is it better than surgery",
    "how much does it cost with insurance",
]
# What the clinic's guide answers for sure, whatever came before in the conversation.
EXPECTED_TYPES = {"what helps my knee": "knowledge", "what is prp": "knowledge"}
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def admin_url() -> str:
    """A PostgreSQL login that may create databases (SCALED_PG_URL)."""
    return os.environ.get("SCALED_PG_URL", ADMIN_URL)


@contextmanager
def fresh_database(prefix: str = "scaled") -> Iterator[str]:
    """A new, empty database on the admin server, dropped afterwards; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(admin_url())
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        params = admin.get_dsn_parameters()
        user = params.get("user", "postgres")
        host, port = params.get("host", "127.0.0.1"), params.get("port", "5432")
        password = os.environ.get("SCALED_PG_PASSWORD", "")
        login = f"{user}:{password}" if password else user
        yield f"postgresql+psycopg2://{login}@{host}:{port}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)
                )
            )
        admin.close()


def profile_environment(db_url: str, stock_locks: bool = False) -> dict[str, str]:
    """The profile's environment for a test or bench run on `db_url`."""
    from bot.serve import server_env

    env = server_env()
    env.update(
        SESSION_SECRET=secrets.token_hex(32),
        CONVERSATIONS_DB_URL=db_url,
        KNOWLEDGE_DB_URL=db_url,
        REDIS_URL=env.get("REDIS_URL", DEFAULT_REDIS_URL),
        LOCK_KEY_PREFIX=f"t{uuid.uuid4().hex[:8]}",
        LOG_LEVEL="WARNING",
    )
    if stock_locks:
        env["SCALED_ENDPOINTS"] = str(stock_lock_endpoints())
    return env


def stock_lock_endpoints() -> Path:
    """deploy/scaled/endpoints.yml with Rasa's own RedisLockStore (for comparison)."""
    text = (ROOT / "deploy" / "scaled" / "endpoints.yml").read_text()
    text = text.replace("type: bot.locks.AtomicRedisLockStore", "type: redis")
    text = text.replace("url: ${REDIS_URL}", "url: 127.0.0.1\n  db: 1")
    text = text.replace("key_prefix: ${LOCK_KEY_PREFIX}", "key_prefix: stock")
    target = Path(tempfile.mkdtemp(prefix="stock-locks-")) / "endpoints.yml"
    target.write_text(text)
    return target


def build_knowledge(env: dict[str, str]) -> None:
    """Build the knowledge store into the profile's PostgreSQL database."""
    subprocess.run(
        [sys.executable, "-m", "knowledge", "build"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


async def exchange(
    targets: list[str], conversations: int, messages: list[str] = MESSAGES
) -> dict[str, dict[str, list[dict[str, Any]] | None]]:
    """Send every conversation's messages two at a time, one to each target at once.

    Returns {sender: {message: the REST reply (None when the request failed)}}.
    """
    replies: dict[str, dict[str, list[dict[str, Any]] | None]] = {}

    async def post(client: httpx.AsyncClient, url: str, sender: str, text: str) -> None:
        try:
            response = await client.post(
                f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text}
            )
            response.raise_for_status()
            replies[sender][text] = response.json()
        except (httpx.HTTPError, ValueError):
            replies[sender][text] = None

    async def converse(client: httpx.AsyncClient, sender: str) -> None:
        replies[sender] = {}
        for start in range(0, len(messages), len(targets)):
            batch = messages[start : start + len(targets)]
            await asyncio.gather(
                *(
                    post(client, target, sender, text)
                    for target, text in zip(targets, batch, strict=False)
                )
            )

    limits = httpx.Limits(max_connections=4 * conversations)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        await asyncio.gather(
            *(
                converse(client, f"audit-{uuid.uuid4().hex}")
                for _ in range(conversations)
            )
        )
    return replies


def stored_events(db_url: str, sender: str) -> list[dict[str, Any]]:
    """The sender's events in the order the tracker store keeps them (by id)."""
    connection = psycopg2.connect(db_url.replace("postgresql+psycopg2", "postgresql"))
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT data FROM events WHERE sender_id = %s ORDER BY id", (sender,)
            )
            return [json.loads(row[0]) for row in cursor.fetchall()]
    finally:
        connection.close()


def _texts(reply: list[dict[str, Any]]) -> list[str]:
    return [part["text"] for part in reply if part.get("text")]


def audit(
    db_url: str, replies: dict[str, dict[str, list[dict[str, Any]] | None]]
) -> Counter[str]:
    """Check what the servers answered against what the tracker store holds.

    Per message: `answered` (a reply with exactly one custom.answer), `unanswered`
    (failed request or no answer), `stored_once`, `lost` (no user event), `duplicated`
    (more than one), `mismatched` (the bot events stored after it are not the reply it
    got: turns interleaved), `wrong_type` (a question the guide answers was not answered
    from it, e.g. the action server failed). Per conversation: `out_of_order` when
    event timestamps go backwards in storage order.
    """
    counts: Counter[str] = Counter()
    for sender, by_message in replies.items():
        events = stored_events(db_url, sender)
        stamps = [event.get("timestamp") or 0 for event in events]
        if any(later < earlier for earlier, later in pairwise(stamps)):
            counts["out_of_order"] += 1
        turns: dict[str, list[list[str]]] = {}
        current: list[str] | None = None
        for event in events:
            if event.get("event") == "user":
                current = []
                turns.setdefault(event.get("text") or "", []).append(current)
            elif event.get("event") == "bot" and current is not None:
                current.append(event.get("text") or "")
        for text, reply in by_message.items():
            answers = [p for p in reply or [] if (p.get("custom") or {}).get("answer")]
            counts["answered" if reply and len(answers) == 1 else "unanswered"] += 1
            expected = EXPECTED_TYPES.get(text)
            if (
                expected
                and answers
                and answers[0]["custom"]["answer"]["type"] != expected
            ):
                counts["wrong_type"] += 1
            stored = turns.get(text, [])
            if not stored:
                counts["lost"] += 1
                continue
            counts["stored_once" if len(stored) == 1 else "duplicated"] += 1
            if reply is not None and stored[0] != _texts(reply):
                counts["mismatched"] += 1
    return counts


def run_loadgen(url: str, concurrency: int, seconds: float) -> dict[str, Any]:
    """One closed-loop run of bench/loadgen.py's clinic script against `url`."""
    endpoint = f"{url}/webhooks/rest/webhook"
    return dict(
        asyncio.run(
            loadgen.run(endpoint, concurrency, seconds, loadgen.SCRIPTS["clinic"])
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Print the audit, load and soak figures of the scaled profile."""
    parser = argparse.ArgumentParser(prog="python -m bench.scaled")
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--load-seconds", type=float, default=20)
    parser.add_argument("--soak-seconds", type=float, default=120)
    parser.add_argument("--soak-concurrency", type=int, default=8)
    parser.add_argument("--compare-stock", action="store_true")
    args = parser.parse_args(argv)

    from bot import scaled

    variants = [False, True] if args.compare_stock else [False]
    for stock in variants:
        name = "Rasa RedisLockStore" if stock else "AtomicRedisLockStore"
        with fresh_database("bench") as db_url:
            env = profile_environment(db_url, stock_locks=stock)
            build_knowledge(env)
            log = (ROOT / "build" / "bench-scaled.log").open("wb")
            cluster = scaled.start(servers=args.servers, env=env, output=log)
            try:
                targets = [f"http://127.0.0.1:{p}" for p in cluster.rasa_ports]
                replies = asyncio.run(exchange(targets, args.conversations))
                counts = audit(db_url, replies)
                print(json.dumps({"audit": name, **counts}), flush=True)
                if stock:
                    continue
                for concurrency in (4, 8, 16, 32):
                    figures = run_loadgen(cluster.url, concurrency, args.load_seconds)
                    print(json.dumps({"load": "nginx", **figures}), flush=True)
                interval = 30.0
                for index in range(max(1, int(args.soak_seconds // interval))):
                    figures = run_loadgen(cluster.url, args.soak_concurrency, interval)
                    print(
                        json.dumps({"soak_interval": index + 1, **figures}), flush=True
                    )
                print(json.dumps({"processes_alive": cluster.alive()}), flush=True)
            finally:
                cluster.stop()
                log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
