"""Closed-loop load over Rasa's REST channel (run as its own process).

Each of N concurrent conversations sends its next message as soon as the last reply
arrives, for a fixed time; each conversation is a short script (a patient's handful of
messages), then the next script with a new sender id. Prints one JSON line:
messages/s, latency percentiles, errors (non-200 or transport failures) and empty replies.
With `--interval`, a soak: one JSON line of the same figures for every interval first,
as it ends (bench/soak.py reads them while the load runs).

    python -m bench.loadgen --url http://127.0.0.1:5005 --concurrency 16 --seconds 20 \
        --script clinic
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx

# Conversations as patients have them: a handful of messages, then the next patient (a new
# sender id). Each conversation of the load picks the next script in turn.
SCRIPTS = {
    # The clinic: knowledge answers, small talk, not-covered questions, a search fallback.
    "clinic": [
        [
            "hi",
            "why would i get injections instead of pills",
            "what helps my knee",
            "thanks, bye",
        ],
        [
            "what is prp",
            "how much does it cost with insurance",
            "is it better than surgery",
            "ok thanks",
        ],
        [
            "hello there",
            "my sciatica is killing me what can help",
            "do you do acupuncture",
            "are you a bot?",
            "bye",
        ],
        [
            "can injections help with arthritis",
            "how long does the relief last",
            "what about nerve blocks",
            "thank you",
        ],
        [
            "good morning",
            "what can you do",
            "why are these injections done",
            "what is a trigger point injection",
            "can i park at the clinic",
            "thanks",
        ],
    ],
    # The stock `rasa init` bot's own conversations (its whole domain).
    "stock": [
        ["hello", "I am feeling sad", "yes", "bye"],
        ["hi", "are you a bot?", "great", "goodbye"],
        ["hey there", "I am unhappy", "no", "bye"],
        ["good morning", "perfect", "are you a human?", "see you later"],
    ],
}


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the values fall (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def messages(scripts: list[list[str]], start: int) -> Iterator[tuple[str, str]]:
    """(sender id, message) forever: one script per sender, the next script after it."""
    for number in itertools.count(start):
        sender = f"load-{uuid.uuid4().hex}"
        for message in scripts[number % len(scripts)]:
            yield sender, message


async def conversation(
    client: httpx.AsyncClient,
    url: str,
    scripts: list[list[str]],
    start: int,
    deadline: float,
    results: dict,
) -> None:
    turns = messages(scripts, start)
    while time.monotonic() < deadline:
        sender, message = next(turns)
        started = time.perf_counter()
        try:
            response = await client.post(
                url, json={"sender": sender, "message": message}
            )
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                results["errors"] += 1
                continue
            if not response.json():
                results["empty"] += 1
            results["latencies"].append(elapsed)
        except (httpx.HTTPError, ValueError):
            results["errors"] += 1


def summary(
    concurrency: int, wall: float, latencies: list[float], errors: int, empty: int
) -> dict[str, Any]:
    """The figures of a run (or of runs merged): rate, percentiles, failures."""
    return {
        "concurrency": concurrency,
        "messages": len(latencies),
        "seconds": round(wall, 2),
        "messages_per_second": round(len(latencies) / wall, 2),
        "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(1000 * percentile(latencies, 0.95), 1) if latencies else None,
        "p99_ms": round(1000 * percentile(latencies, 0.99), 1) if latencies else None,
        "errors": errors,
        "empty_replies": empty,
    }


async def report_intervals(
    results: dict,
    concurrency: int,
    started: float,
    deadline: float,
    interval: float,
    report: Callable[[dict[str, Any]], None],
) -> None:
    """Every `interval` seconds until `deadline`, the figures of the messages answered
    (or failed) since the last report."""
    answered = errors = empty = number = 0
    last = started
    while last < deadline:
        await asyncio.sleep(max(0.0, min(last + interval, deadline) - time.monotonic()))
        now = time.monotonic()
        latencies = results["latencies"][answered:]
        number += 1
        figures = summary(
            concurrency,
            now - last,
            latencies,
            results["errors"] - errors,
            results["empty"] - empty,
        )
        report({"interval": number, **figures})
        answered += len(latencies)
        errors, empty, last = results["errors"], results["empty"], now


def print_line(figures: dict[str, Any]) -> None:
    """One JSON line on stdout, at once."""
    print(json.dumps(figures), flush=True)


async def run(
    url: str,
    concurrency: int,
    seconds: float,
    scripts: list[list[str]],
    keep_latencies: bool = False,
    interval: float | None = None,
    report: Callable[[dict[str, Any]], None] = print_line,
) -> dict[str, Any]:
    results: dict = {"latencies": [], "errors": 0, "empty": 0}
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency
    )
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        started = time.monotonic()
        deadline = started + seconds
        reporter = (
            []
            if interval is None
            else [
                report_intervals(
                    results, concurrency, started, deadline, interval, report
                )
            ]
        )
        await asyncio.gather(
            *(
                conversation(client, url, scripts, number, deadline, results)
                for number in range(concurrency)
            ),
            *reporter,
        )
        wall = time.monotonic() - started
    latencies = results["latencies"]
    found = summary(concurrency, wall, latencies, results["errors"], results["empty"])
    if keep_latencies:
        found["latencies"] = latencies  # seconds, for merging runs (bench.load)
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--url", required=True, help="the Rasa server, e.g. http://127.0.0.1:5005"
    )
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--script", choices=sorted(SCRIPTS), default="clinic")
    parser.add_argument(
        "--keep-latencies",
        action="store_true",
        help="also print every latency (seconds), to merge runs",
    )
    parser.add_argument(
        "--interval",
        type=float,
        help="also print the figures of every interval of this many seconds (a soak)",
    )
    args = parser.parse_args()
    endpoint = f"{args.url.rstrip('/')}/webhooks/rest/webhook"
    result = asyncio.run(
        run(
            endpoint,
            args.concurrency,
            args.seconds,
            SCRIPTS[args.script],
            args.keep_latencies,
            args.interval,
        )
    )
    print_line(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
