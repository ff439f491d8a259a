"""`make bench-load`: speed under load, the assistant against a stock `rasa init` bot.

Both are served the same way on this machine in the same run (REST channel, default
in-memory tracker store), and loaded by the same closed-loop generator (bench/loadgen.py,
a separate process) at 1, 8, 16 and 32 concurrent conversations. Writes
bench/out/load.json and docs/load-latency.png, and prints the tables.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bot.serve import free_port, start_process, stop_process, wait_until_ready
from bot.training import ROOT

LEVELS = [1, 8, 16, 32]
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
OUT = ROOT / "bench" / "out"


def quiet_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONWARNINGS": "ignore",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    out = subprocess.run(
        ["ps", "-o", "pid=,ppid=,rss="], capture_output=True, text=True
    ).stdout
    rows = [
        tuple(int(x) for x in line.split()) for line in out.splitlines() if line.strip()
    ]
    family, grew = {pid}, True
    while grew:
        grew = False
        for child, parent, _ in rows:
            if parent in family and child not in family:
                family.add(child)
                grew = True
    return sum(rss for p, _, rss in rows if p in family) / 1024


def children(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True
    )
    return [int(x) for x in out.stdout.split()]


def run_loadgen(url: str, level: int, seconds: float, script: str) -> dict:
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
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def load(url: str, script: str) -> list[dict]:
    results = []
    for level in LEVELS:
        results.append(run_loadgen(url, level, SECONDS, script))
        print(f"  {script:6} c={level:<3} {results[-1]}", flush=True)
    return results


@contextmanager
def serving(command: list[str], cwd: Path, env: dict[str, str], port: int, what: str):
    """Start a server, wait until it answers, yield (process, cold start s), stop it."""
    started = time.perf_counter()
    process = start_process(command, env=env, cwd=cwd, output=subprocess.DEVNULL)
    try:
        if not wait_until_ready(port, 300):
            raise RuntimeError(f"{what} did not start")
        yield process, time.perf_counter() - started
    finally:
        stop_process(process, signal.SIGINT, timeout=30)


def child_rss_mb(process: subprocess.Popen, marker: str) -> float:
    """Resident memory of the supervisor's child whose command line has `marker`."""
    sizes = [rss_mb(p) for p in children(process.pid) if marker in _cmd(p)]
    return round(max(sizes, default=0.0), 1)


def _cmd(pid: int) -> str:
    return subprocess.run(
        ["ps", "-o", "args=", "-p", str(pid)], capture_output=True, text=True
    ).stdout


def bench_assistant() -> dict:
    port, actions = free_port(), free_port()
    env = quiet_env(
        RASA_PORT=str(port), ACTION_PORT=str(actions), RASA_INTERFACE="127.0.0.1"
    )
    command = [sys.executable, "-m", "bot", "run"]
    with serving(command, ROOT, env, port, "the assistant") as (process, cold):
        results = load(f"http://127.0.0.1:{port}", "clinic")
        return {
            "cold_start_s": round(cold, 1),
            "levels": results,
            "rasa_server_mb": child_rss_mb(process, "rasa"),
            "action_server_mb": child_rss_mb(process, "actions"),
        }


def bench_stock() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "stock"
        folder.mkdir()  # rasa init wants the folder to exist
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
            cwd=tmp,
            env=quiet_env(),
            check=True,
            capture_output=True,
        )
        training = time.perf_counter() - started
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "rasa",
            "run",
            "--port",
            str(port),
            "--interface",
            "127.0.0.1",
            "--model",
            str(folder / "models"),
        ]
        with serving(command, folder, quiet_env(), port, "the stock bot") as (
            process,
            cold,
        ):
            results = load(f"http://127.0.0.1:{port}", "stock")
            return {
                "training_s": round(training, 1),
                "cold_start_s": round(cold, 1),
                "levels": results,
                "rasa_server_mb": round(rss_mb(process.pid), 1),
            }


def plot(ours: dict, stock: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, data, style in (
        ("assistant", ours, "o-"),
        ("stock rasa init", stock, "s--"),
    ):
        levels = [r["concurrency"] for r in data["levels"]]
        left.plot(
            levels, [r["p95_ms"] for r in data["levels"]], style, label=f"{name} p95"
        )
        left.plot(
            levels,
            [r["p50_ms"] for r in data["levels"]],
            style,
            alpha=0.5,
            label=f"{name} p50",
        )
        right.plot(
            levels,
            [r["messages_per_second"] for r in data["levels"]],
            style,
            label=name,
        )
    left.set(xlabel="concurrent conversations", ylabel="latency (ms)", title="Latency")
    right.set(
        xlabel="concurrent conversations", ylabel="messages / s", title="Throughput"
    )
    for axis in (left, right):
        axis.set_xticks(LEVELS)
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    print(
        f"machine: {os.cpu_count()} cores; {SECONDS:.0f} s per level; REST channel, "
        "in-memory tracker store",
        flush=True,
    )
    ours = bench_assistant()
    stock = bench_stock()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "load.json").write_text(
        json.dumps({"assistant": ours, "stock": stock}, indent=2)
    )
    plot(ours, stock, ROOT / "docs" / "load-latency.png")
    print(
        f"\n{'c':>3} {'msg/s':>8} {'stock':>8} {'ratio':>6} {'p50':>7} {'p95':>7} {'p99':>7} "
        f"{'stock p95':>9} {'errors':>6} {'empty':>6}"
    )
    for mine, theirs in zip(ours["levels"], stock["levels"], strict=True):
        ratio = mine["messages_per_second"] / theirs["messages_per_second"]
        print(
            f"{mine['concurrency']:>3} {mine['messages_per_second']:8.1f} "
            f"{theirs['messages_per_second']:8.1f} {ratio:6.2f} {mine['p50_ms']:7.1f} "
            f"{mine['p95_ms']:7.1f} {mine['p99_ms']:7.1f} {theirs['p95_ms']:9.1f} "
            f"{mine['errors']:>6} {mine['empty_replies']:>6}"
        )
    print(
        f"\ncold start: assistant {ours['cold_start_s']} s, stock {stock['cold_start_s']} s; "
        f"stock training {stock['training_s']} s"
    )
    print(
        f"memory after load: Rasa server {ours['rasa_server_mb']} MB, action server "
        f"{ours['action_server_mb']} MB (stock Rasa server {stock['rasa_server_mb']} MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
