"""`make bench-soak`: a long run on a tracker store filled beforehand (issue 14).

    python -m bench.soak --profile default --minutes 30 --conversations 16
    python -m bench.soak --profile scaled --minutes 10

The tracker store first gets `--fill` past events (bench/fill.py, default a million):
for the default profile a SQLite file (filled once into build/soak/ and copied for each
run), for the scaled profile a fresh PostgreSQL database on SCALED_PG_URL. Then the
profile is served (`python -m bot run`, or 2 Rasa + 2 action servers behind nginx as
bench/scaled.py starts them), warmed up, and loaded by bench/loadgen.py's closed loop for
the whole run. Every interval (`--interval`, 60 s) prints messages/s, p50/p95 latency,
errors and empty replies, the servers' resident memory and CPU time per message (and
PostgreSQL's, scaled profile), the size of the events table and the machine's load
average; at the end the verdict against the issue's targets
(`verdict`), bench/out/soak-<profile>.json and a plot, docs/soak-<profile>.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2

from bench import fill, load, scaled
from bot.training import ROOT

#: The issue's targets: the last interval's throughput within 10 % of the first's; p95
#: and memory flat, read here as the last interval within 20 % (p95) and 10 % (memory)
#: of the first.
THROUGHPUT_TOLERANCE = 0.10
P95_TOLERANCE = 0.20
MEMORY_TOLERANCE = 0.10
FILLED = ROOT / "build" / "soak"
DEFAULT_MINUTES = {"default": 30.0, "scaled": 10.0}


@dataclass
class Served:
    """A profile under soak: where to send the load, what to sample."""

    url: str
    rasa_pids: list[int]
    action_pids: list[int]
    storage_mb: Callable[[], float]
    database_pids: Callable[[], list[int]] = list


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the processes and their descendants have used so far."""
    ticks = 0
    for member in {m for pid in pids for m in load.family(pid)}:
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_pids() -> list[int]:
    """Every PostgreSQL process on this machine (other users' backends too)."""
    return [pid for pid, _, _, args in load._processes() if args.startswith("postgres")]


def sample(served: Served) -> dict[str, Any]:
    """The servers' memory and CPU time, the events table's size and the machine's
    load, now."""
    return {
        "rasa_rss_mb": round(sum(load.rss_mb(p) for p in served.rasa_pids), 1),
        "action_rss_mb": round(sum(load.rss_mb(p) for p in served.action_pids), 1),
        "storage_mb": round(served.storage_mb(), 1),
        "load_1min": round(os.getloadavg()[0], 2),
        "servers_cpu_s": cpu_seconds(served.rasa_pids + served.action_pids),
        "database_cpu_s": cpu_seconds(served.database_pids()),
    }


def per_message(row: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """CPU ms per answered message in the interval: a figure the machine's other work
    changes far less than messages/s (time waiting for a core is not counted)."""
    answered = max(1, row["messages"])
    return {
        f"{group}_cpu_ms_per_message": round(
            1000 * (row[f"{group}_cpu_s"] - before[f"{group}_cpu_s"]) / answered, 1
        )
        for group in ("servers", "database")
    }


def sqlite_mb(path: Path) -> Callable[[], float]:
    """The SQLite file's size with its write-ahead log, in MB."""

    def size() -> float:
        files = [path, path.with_name(path.name + "-wal")]
        return sum(f.stat().st_size for f in files if f.exists()) / 2**20

    return size


def postgresql_mb(db_url: str) -> Callable[[], float]:
    """The events table's size with its indexes, in MB."""

    def size() -> float:
        connection = psycopg2.connect(
            db_url.replace("postgresql+psycopg2", "postgresql")
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_total_relation_size('events')")
                return float(cursor.fetchone()[0]) / 2**20
        finally:
            connection.close()

    return size


def filled_sqlite(events: int, target: Path) -> None:
    """Copy a SQLite tracker store with `events` past events to `target`."""
    FILLED.mkdir(parents=True, exist_ok=True)
    source = FILLED / f"conversations-{events}.db"
    if not source.exists():
        partial = source.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        seconds = fill.fill(f"sqlite:///{partial}", events)
        partial.rename(source)
        print(f"filled {source.name}: {events} events in {seconds:.0f} s", flush=True)
    shutil.copyfile(source, target)


@contextmanager
def serve_default(events: int) -> Iterator[Served]:
    """`python -m bot run` on a copy of the filled SQLite store."""
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        database = Path(tmp) / "conversations.db"
        filled_sqlite(events, database)
        bot = load.serve_assistant(stack, Path(tmp), "1", "assistant", database)
        pids = {
            marker: [pid]
            for marker in ("bot.server", "actions")
            if (pid := load.server_pid(bot.process, marker)) is not None
        }
        yield Served(
            bot.url,
            pids.get("bot.server", []),
            pids.get("actions", []),
            sqlite_mb(database),
        )


@contextmanager
def serve_scaled(events: int, servers: int = 2) -> Iterator[Served]:
    """The scaled profile on a fresh PostgreSQL database filled with `events`."""
    from bot import scaled as profile

    with scaled.fresh_database("soak") as db_url:
        seconds = fill.fill(db_url, events)
        print(f"filled PostgreSQL: {events} events in {seconds:.0f} s", flush=True)
        env = scaled.profile_environment(db_url)
        scaled.build_knowledge(env)
        log_path = ROOT / "build" / "bench-soak-scaled.log"
        with log_path.open("wb") as log:
            cluster = profile.start(servers=servers, env=env, output=log)
            try:
                pids = [process.pid for process in cluster.processes]
                yield Served(
                    cluster.url,
                    pids[servers:],
                    pids[:servers],
                    postgresql_mb(db_url),
                    postgres_pids,
                )
            finally:
                cluster.stop()


def soak(
    served: Served,
    conversations: int,
    seconds: float,
    interval: float,
    report: Callable[[dict[str, Any]], None],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Load `served` for `seconds`; (one row per interval, the whole run's figures)."""
    load.warm_up(served.url, "clinic")
    command = [
        sys.executable,
        "-m",
        "bench.loadgen",
        "--url",
        served.url,
        "--concurrency",
        str(conversations),
        "--seconds",
        str(seconds),
        "--interval",
        str(interval),
    ]
    rows: list[dict[str, Any]] = []
    whole: dict[str, Any] = {}
    before = sample(served)
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        for line in process.stdout:
            figures = json.loads(line)
            if "interval" in figures:
                now = sample(served)
                row = {**figures, **now, **per_message({**figures, **now}, before)}
                before = now
                rows.append(row)
                report(row)
            else:
                whole = figures
    finally:
        if process.poll() is None and not whole:  # interrupted: stop the load too
            process.kill()
    if process.wait() != 0:
        raise RuntimeError("the load generator failed")
    return rows, whole


def _change(first: float, last: float) -> float:
    return (last - first) / first if first else 0.0


def verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets against the first and last intervals of a soak."""
    first, last = rows[0], rows[-1]

    def memory(row: dict[str, Any]) -> float:
        return float(row["rasa_rss_mb"] + row["action_rss_mb"])

    throughput = _change(first["messages_per_second"], last["messages_per_second"])
    p95 = _change(first["p95_ms"] or 0, last["p95_ms"] or 0)
    grown = _change(memory(first), memory(last))
    failures = sum(r["errors"] + r["empty_replies"] for r in rows)

    def cpu(row: dict[str, Any]) -> float:
        return float(
            row.get("servers_cpu_ms_per_message", 0)
            + row.get("database_cpu_ms_per_message", 0)
        )

    return {
        "throughput_change": round(throughput, 3),
        "throughput_met": abs(throughput) <= THROUGHPUT_TOLERANCE,
        "p95_change": round(p95, 3),
        "p95_met": p95 <= P95_TOLERANCE,
        "memory_change": round(grown, 3),
        "memory_met": grown <= MEMORY_TOLERANCE,
        "errors_and_empty": failures,
        "errors_met": failures == 0,
        # Not one of the targets: the work per message, which the machine's
        # other load changes far less than messages/s (see the module docstring).
        "cpu_per_message_change": round(_change(cpu(first), cpu(last)), 3),
        "load_1min_range": [
            min(r["load_1min"] for r in rows),
            max(r["load_1min"] for r in rows),
        ],
    }


COLUMNS = [
    ("interval", "#"),
    ("messages_per_second", "msg/s"),
    ("p50_ms", "p50 ms"),
    ("p95_ms", "p95 ms"),
    ("errors", "errors"),
    ("empty_replies", "empty"),
    ("rasa_rss_mb", "Rasa MB"),
    ("action_rss_mb", "actions MB"),
    ("storage_mb", "events MB"),
    ("servers_cpu_ms_per_message", "CPU ms/msg"),
    ("database_cpu_ms_per_message", "DB CPU ms"),
    ("load_1min", "load"),
]


def print_row(row: dict[str, Any]) -> None:
    """One interval as a fixed-width line (the header before the first)."""
    if row["interval"] == 1:
        print("  ".join(f"{title:>10}" for _, title in COLUMNS), flush=True)
    print("  ".join(f"{row[key]!s:>10}" for key, _ in COLUMNS), flush=True)


def markdown(rows: list[dict[str, Any]]) -> list[str]:
    """The intervals as a Markdown table (for docs/benchmarks.md)."""
    return [
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(str(r[key]) for key, _ in COLUMNS) + " |" for r in rows),
    ]


def plot(rows: list[dict[str, Any]], title: str, path: Path) -> None:
    """Throughput (with the load average), latency and memory against time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = []
    elapsed = 0.0
    for row in rows:
        elapsed += row["seconds"] / 60
        minutes.append(elapsed)
    fig, (rate, latency, cpu, memory) = plt.subplots(4, 1, figsize=(8, 10), sharex=True)
    rate.plot(minutes, [r["messages_per_second"] for r in rows], "o-", label="msg/s")
    rate.set(ylabel="messages/s", title=title)
    rate.set_ylim(bottom=0)
    machine = rate.twinx()
    machine.plot(minutes, [r["load_1min"] for r in rows], "--", color="grey")
    machine.set_ylabel("load average (1 min), dashed")
    latency.plot(minutes, [r["p50_ms"] for r in rows], "o-", label="p50")
    latency.plot(minutes, [r["p95_ms"] for r in rows], "o-", label="p95")
    latency.set(ylabel="latency ms")
    latency.set_ylim(bottom=0)
    latency.legend()
    for group, label in (("servers", "Rasa + action servers"), ("database", "DB")):
        values = [r[f"{group}_cpu_ms_per_message"] for r in rows]
        if any(values):
            cpu.plot(minutes, values, "o-", label=label)
    cpu.set(ylabel="CPU ms per message")
    cpu.set_ylim(bottom=0)
    cpu.legend()
    memory.plot(minutes, [r["rasa_rss_mb"] for r in rows], "o-", label="Rasa servers")
    memory.plot(
        minutes, [r["action_rss_mb"] for r in rows], "o-", label="action servers"
    )
    memory.set(ylabel="resident MB", xlabel="minutes")
    memory.set_ylim(bottom=0)
    memory.legend()
    for axis in (rate, latency, cpu, memory):
        axis.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(
    profile: str,
    minutes: float,
    conversations: int,
    interval: float,
    events: int,
    plot_path: Path | None,
) -> dict[str, Any]:
    """A whole soak of `profile`; its intervals, whole-run figures and verdict."""
    serving = serve_scaled if profile == "scaled" else serve_default
    with serving(events) as served:
        rows, whole = soak(served, conversations, minutes * 60, interval, print_row)
    result = {
        "profile": profile,
        "minutes": minutes,
        "conversations": conversations,
        "filled_events": events,
        "intervals": rows,
        "whole": whole,
        "verdict": verdict(rows),
    }
    if plot_path is not None:
        title = (
            f"{profile} profile, {conversations} conversations, "
            f"{events:,} events filled beforehand"
        )
        plot(rows, title, plot_path)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the soak named on the command line and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak")
    parser.add_argument("--profile", choices=sorted(DEFAULT_MINUTES), default="default")
    parser.add_argument("--minutes", type=float, help="default: 30, scaled: 10")
    parser.add_argument("--conversations", type=int, default=16)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds")
    parser.add_argument("--fill", type=int, default=1_000_000, help="events")
    parser.add_argument("--plot", type=Path, help="default: docs/soak-<profile>.png")
    parser.add_argument(
        "--out", type=Path, help="default: bench/out/soak-<profile>.json"
    )
    args = parser.parse_args(argv)
    minutes = args.minutes or DEFAULT_MINUTES[args.profile]
    plot_path = args.plot or ROOT / "docs" / f"soak-{args.profile}.png"
    result = run(
        args.profile, minutes, args.conversations, args.interval, args.fill, plot_path
    )
    out = args.out or ROOT / "bench" / "out" / f"soak-{args.profile}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({"whole": result["whole"], "verdict": result["verdict"]}))
    print(f"plot: {plot_path}; figures: {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
