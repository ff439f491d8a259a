"""`make bench-load`: speed under load, the assistant against a stock `rasa init` bot.

Both are served on this machine in the same run over the REST channel, and loaded by the
same closed-loop generator (bench/loadgen.py, a separate process) at 1, 8, 16 and 32
concurrent conversations. The assistant runs as `python -m bot run` does (Rasa server +
action server, the default SQL tracker store on SQLite, a fresh database file), once with
one Sanic worker (the default) and once with two (SANIC_WORKERS=2, file lock store). The
stock bot is trained by the bench with `rasa init` in a temporary folder and served with
`rasa run` (its own defaults: in-memory tracker store). The three are served side by side
and loaded in turn at each level, so a drift in the machine's speed during the run (seen
here: a third) touches them alike; each level runs in two halves, the second in the
reverse order. Writes bench/out/load.json and docs/load-latency.png, and prints the
tables.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import loadgen
from bot.serve import free_port, start_process, stop_process, wait_until_ready
from bot.training import ROOT

LEVELS = [1, 8, 16, 32]
SECONDS = float(os.environ.get("BENCH_SECONDS", "15"))
WARMUP_SECONDS = 6.0
OUT = ROOT / "bench" / "out"
PROFILES = {"assistant": "1", "assistant, 2 workers": "2"}  # name -> SANIC_WORKERS
STOCK = "stock rasa init"


def quiet_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONWARNINGS": "ignore",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def _processes() -> list[tuple[int, int, int, str]]:
    """(pid, parent pid, resident KB, command line) of every process."""
    out = subprocess.run(
        ["ps", "-e", "-o", "pid=,ppid=,rss=,args="], capture_output=True, text=True
    ).stdout
    rows = []
    for line in out.splitlines():
        pid, ppid, rss, *args = line.split(None, 3)
        rows.append((int(pid), int(ppid), int(rss), args[0] if args else ""))
    return rows


def family(pid: int) -> set[int]:
    """A process and all its descendants (Sanic workers, multiprocessing helpers)."""
    rows = _processes()
    members, grew = {pid}, True
    while grew:
        grew = False
        for child, parent, _, _ in rows:
            if parent in members and child not in members:
                members.add(child)
                grew = True
    return members


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, in MB."""
    members = family(pid)
    return round(sum(rss for p, _, rss, _ in _processes() if p in members) / 1024, 1)


def pss_mb(pid: int) -> float:
    """Proportional resident memory (PSS) of a process and its descendants, in MB.

    RSS counts a page shared by several processes (TensorFlow's library code in two
    Sanic workers) once for each of them; PSS divides it among them, so the sum over
    processes is what they occupy together.
    """
    total_kb = 0
    for member in family(pid):
        try:
            rollup = Path(f"/proc/{member}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                total_kb += int(line.split()[1])
    return round(total_kb / 1024, 1)


def server_pid(supervisor: subprocess.Popen[bytes], marker: str) -> int | None:
    """The supervisor's child server whose command line has `marker`."""
    for pid, parent, _, args in _processes():
        if parent == supervisor.pid and marker in args:
            return pid
    return None


def server_rss_mb(supervisor: subprocess.Popen[bytes], marker: str) -> float:
    """Resident memory of the supervisor's server whose command line has `marker`."""
    pid = server_pid(supervisor, marker)
    return 0.0 if pid is None else rss_mb(pid)


def server_pss_mb(supervisor: subprocess.Popen[bytes], marker: str) -> float:
    """Proportional memory of the supervisor's server whose command line has `marker`."""
    pid = server_pid(supervisor, marker)
    return 0.0 if pid is None else pss_mb(pid)


def run_loadgen(
    url: str, level: int, seconds: float, script: str, keep_latencies: bool = False
) -> dict[str, Any]:
    """One closed-loop load run (bench.loadgen in its own process); its figures."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            "--url",
            url,
            "--concurrency",
            str(level),
            "--seconds",
            str(seconds),
            "--script",
            script,
            *(["--keep-latencies"] if keep_latencies else []),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def warm_up(url: str, script: str) -> None:
    """A few seconds of unrecorded load: TensorFlow traces its functions for the new
    input shapes and Python fills its caches on the first messages, for every bot."""
    run_loadgen(url, 8, WARMUP_SECONDS, script)


def first_answer(port: int, message: str) -> bool:
    """Send one message over REST; whether a non-empty reply came back."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/rest/webhook",
        data=json.dumps({"sender": "bench-cold-start", "message": message}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return bool(json.loads(response.read()))


@contextmanager
def serving(
    command: list[str], cwd: Path, env: dict[str, str], port: int, message: str
) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """Start a server; yield (process, seconds from start to the first answer)."""
    started = time.perf_counter()
    process = start_process(command, env=env, cwd=cwd, output=subprocess.DEVNULL)
    try:
        if not wait_until_ready(port, 300) or not first_answer(port, message):
            raise RuntimeError(f"{' '.join(command)} did not answer")
        yield process, time.perf_counter() - started
    finally:
        stop_process(process, signal.SIGINT, timeout=30)


def stock_command(model: str, port: int) -> list[str]:
    """How the stock bot is served: plain `rasa run` on its trained model."""
    return [
        sys.executable,
        "-m",
        "rasa",
        "run",
        "--port",
        str(port),
        "--interface",
        "127.0.0.1",
        "--model",
        model,
    ]


@dataclass
class Bot:
    """A served bot of the run: how to reach it, and what was measured so far."""

    label: str
    url: str
    script: str
    process: subprocess.Popen[bytes]
    figures: dict[str, Any]


def serve_assistant(
    stack: ExitStack, tmp: Path, workers: str, label: str, database: Path | None = None
) -> Bot:
    """Start the assistant as `python -m bot run` does, with its own database
    (`database`, else a new file in `tmp`)."""
    port, actions = free_port(), free_port()
    env = quiet_env(
        RASA_PORT=str(port),
        ACTION_PORT=str(actions),
        ACTION_ENDPOINT_URL=f"http://127.0.0.1:{actions}/webhook",
        RASA_INTERFACE="127.0.0.1",
        CONVERSATIONS_DB=str(database or tmp / f"conversations-{workers}.db"),
        LOCK_DIR=str(tmp / f"locks-{workers}"),
        SANIC_WORKERS=workers,
    )
    command = [sys.executable, "-m", "bot", "run"]
    process, cold = stack.enter_context(serving(command, ROOT, env, port, "hi"))
    figures = {"workers": int(workers), "cold_start_s": round(cold, 1)}
    return Bot(label, f"http://127.0.0.1:{port}", "clinic", process, figures)


def train_stock(folder: Path) -> float:
    """`rasa init` (which trains) in `folder`; the seconds it took."""
    folder.mkdir(parents=True, exist_ok=True)  # rasa init wants the folder to exist
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rasa",
            "init",
            "--no-prompt",
            "--init-dir",
            str(folder),
        ],
        cwd=folder,
        env=quiet_env(),
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def serve_stock(stack: ExitStack, tmp: Path) -> Bot:
    """Train a stock `rasa init` bot in `tmp` and serve it with `rasa run`."""
    folder = tmp / "stock"
    training = train_stock(folder)
    port = free_port()
    command = stock_command(str(folder / "models"), port)
    process, cold = stack.enter_context(
        serving(command, folder, quiet_env(), port, "hello")
    )
    figures = {"training_s": round(training, 1), "cold_start_s": round(cold, 1)}
    return Bot(STOCK, f"http://127.0.0.1:{port}", "stock", process, figures)


def record_memory(bot: Bot) -> None:
    """Resident and proportional memory of the bot's servers, after the load."""
    if bot.script == "stock":
        bot.figures["rasa_server_mb"] = rss_mb(bot.process.pid)
        bot.figures["rasa_server_pss_mb"] = pss_mb(bot.process.pid)
        return
    for server, marker in (("rasa_server", "bot.server"), ("action_server", "actions")):
        bot.figures[f"{server}_mb"] = server_rss_mb(bot.process, marker)
        bot.figures[f"{server}_pss_mb"] = server_pss_mb(bot.process, marker)


def plot(runs: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for (name, data), style in zip(runs.items(), ("o-", "^-", "s--"), strict=False):
        levels = [r["concurrency"] for r in data["levels"]]
        left.plot(
            levels, [r["p95_ms"] for r in data["levels"]], style, label=f"{name} p95"
        )
        right.plot(
            levels,
            [r["messages_per_second"] for r in data["levels"]],
            style,
            label=name,
        )
    left.axhline(200, color="grey", linewidth=0.8, linestyle=":")
    left.set(
        xlabel="concurrent conversations", ylabel="p95 latency (ms)", title="Latency"
    )
    right.set(
        xlabel="concurrent conversations", ylabel="messages / s", title="Throughput"
    )
    for axis in (left, right):
        axis.set_xticks(LEVELS)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def in_turn(bots: list[Any], round_number: int) -> list[Any]:
    """The order bots (or A/B variants) are loaded in: reversed every other round.

    Whichever bot goes first in a round was seen to lose about 5 % of its throughput to
    the one after it (the same server measured first and second); with the order
    reversed every other round, that advantage falls to each alike.
    """
    return list(bots) if round_number % 2 == 0 else list(reversed(bots))


def merged(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One run's figures from several runs of the same load (latencies pooled)."""
    return loadgen.summary(
        runs[0]["concurrency"],
        sum(run["seconds"] for run in runs),
        [latency for run in runs for latency in run["latencies"]],
        sum(run["errors"] for run in runs),
        sum(run["empty_replies"] for run in runs),
    )


def measure() -> dict[str, dict[str, Any]]:
    """Every profile of the assistant and the stock bot, served side by side and
    loaded in turn at each level, so a change in the machine's speed during the run
    touches them all alike; figures by name.

    Each level is run in two halves, the second in the reverse order: a bot loaded
    right after another was seen to do about 5 % better than the one before it (the
    same server, measured first and then second), so each bot takes each place once.
    """
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        tmp = Path(folder)
        bots = [serve_assistant(stack, tmp, w, label) for label, w in PROFILES.items()]
        bots.append(serve_stock(stack, tmp))  # one at a time: cold starts not shared
        for bot in bots:
            warm_up(bot.url, bot.script)
            bot.figures["levels"] = []
        for level in LEVELS:
            halves: dict[str, list[dict[str, Any]]] = {bot.label: [] for bot in bots}
            for half_number in range(2):
                for bot in in_turn(bots, half_number):
                    half = run_loadgen(bot.url, level, SECONDS / 2, bot.script, True)
                    halves[bot.label].append(half)
            for bot in bots:
                result = merged(halves[bot.label])
                bot.figures["levels"].append(result)
                print(f"  {bot.label:22} c={level:<3} {json.dumps(result)}", flush=True)
        for bot in bots:
            record_memory(bot)
        return {bot.label: bot.figures for bot in bots}


def table(runs: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown rows: each assistant profile at each level, with ratios to stock."""
    stock = runs[STOCK]["levels"]
    lines = [
        "| bot | concurrent | msg/s | ratio to stock | p50 ms | p95 ms | p99 ms | errors "
        "| empty |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, data in runs.items():
        for mine, theirs in zip(data["levels"], stock, strict=True):
            ratio = mine["messages_per_second"] / theirs["messages_per_second"]
            lines.append(
                f"| {name} | {mine['concurrency']} | {mine['messages_per_second']:.1f} "
                f"| {ratio:.2f} | {mine['p50_ms']:.0f} | {mine['p95_ms']:.0f} "
                f"| {mine['p99_ms']:.0f} | {mine['errors']} | {mine['empty_replies']} |"
            )
    return lines


def main() -> int:
    print(
        f"machine: {os.cpu_count()} cores; {SECONDS:.0f} s per level; REST channel",
        flush=True,
    )
    runs = measure()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "load.json").write_text(json.dumps(runs, indent=2))
    plot(runs, ROOT / "docs" / "load-latency.png")
    print("\n".join(["", *table(runs), ""]))
    for name, data in runs.items():
        print(
            f"{name}: cold start {data['cold_start_s']} s, Rasa server "
            f"{data['rasa_server_mb']} MB, action server "
            f"{data.get('action_server_mb', '-')} MB after the load"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
