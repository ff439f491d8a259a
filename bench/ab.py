"""A/B comparisons of the assistant's server settings, interleaved in one run.

The machine's cores are shared, so figures from two separate runs are not comparable.
This starts one action server and one Rasa server per variant (each with its own
conversations database), then loads them in turn, level by level, round after round,
and prints the median of each variant's rounds, with the CPU time each server spent per
message (robust to other work on the machine, unlike throughput):

    python -m bench.ab --levels 8,16 --seconds 8 --rounds 4 \
        none:SPEED_MEASURES=none all:SPEED_MEASURES=all

A variant is `name:VAR=value,VAR=value`: environment settings of its Rasa server,
MODEL=path for another trained model, and CHECKOUT=folder for another copy of the
project (e.g. `git archive <commit>` unpacked, with this one's build/ linked in): that
variant's Rasa server and its own action server run that copy's code, so code before
and after a change is compared in one run:

    python -m bench.ab --levels 1,8 before:CHECKOUT=/tmp/before after:SPEED_MEASURES=all
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.load import family, in_turn, quiet_env, run_loadgen, stock_command
from bot.serve import (
    action_server_command,
    free_port,
    rasa_server_command,
    start_process,
    stop_process,
    wait_until_ready,
)
from bot.training import ROOT


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (Sanic workers), seconds."""
    total = 0
    for member in family(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """`name:A=1,B=2` -> ("name", {"A": "1", "B": "2"}); `A=x,y,B=2` keeps "x,y"."""
    name, _, settings = text.partition(":")
    items = re.split(r",(?=[A-Za-z_][A-Za-z0-9_]*=)", settings)
    env = dict(item.split("=", 1) for item in items if "=" in item)
    return name, env


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab")
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--levels", default="8,16")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--stock-model", help="also load a stock rasa init bot's trained model (a path)"
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    variants = [parse_variant(v) for v in args.variants]

    with tempfile.TemporaryDirectory() as tmp:
        # the servers of this run share one token
        base = quiet_env(ACTION_TOKEN=secrets.token_urlsafe(24))
        processes: list[subprocess.Popen[bytes]] = []
        try:
            # One action server per copy of the project (usually just this one).
            actions: dict[str, tuple[int, int]] = {}  # checkout -> (port, pid)
            for checkout in sorted(
                {env.get("CHECKOUT", str(ROOT)) for _, env in variants}
            ):
                action_port = free_port()
                processes.append(
                    start_process(
                        action_server_command(),
                        {**base, "ACTION_PORT": str(action_port)},
                        Path(checkout),
                        subprocess.DEVNULL,
                    )
                )
                actions[checkout] = (action_port, processes[-1].pid)
            ports, pids, action_pids = {}, {}, {}
            for name, env in variants:
                port = ports[name] = free_port()
                db = Path(tmp) / f"{name}.db"
                command = rasa_server_command(["--interface", "127.0.0.1"], port)
                if "MODEL" in env:  # another trained model, e.g. another config
                    command[command.index("--model") + 1] = env["MODEL"]
                checkout = env.get("CHECKOUT", str(ROOT))
                action_port, action_pids[name] = actions[checkout]
                processes.append(
                    start_process(
                        command,
                        {
                            **base,
                            "ACTION_PORT": str(action_port),
                            "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{action_port}/webhook",
                            "CONVERSATIONS_DB": str(db),
                            **env,
                        },
                        Path(checkout),
                        subprocess.DEVNULL,
                    )
                )
                pids[name] = processes[-1].pid
            if args.stock_model:
                port = ports["stock"] = free_port()
                processes.append(
                    start_process(
                        stock_command(args.stock_model, port),
                        base,
                        Path(tmp),
                        subprocess.DEVNULL,
                    )
                )
                pids["stock"] = processes[-1].pid
                # a stock bot calls no actions: any action server's (idle) CPU
                action_pids["stock"] = next(iter(actions.values()))[1]
                variants.append(("stock", {}))
            for port in ports.values():
                if not wait_until_ready(port, 300):
                    raise RuntimeError("a variant did not start")
            figures: dict[tuple[str, int], list[dict]] = {}
            for round_number in range(args.rounds):
                for level in levels:
                    for name, _ in in_turn(variants, round_number):
                        busy = cpu_seconds(pids[name]), cpu_seconds(action_pids[name])
                        result = run_loadgen(
                            f"http://127.0.0.1:{ports[name]}",
                            level,
                            args.seconds,
                            "stock" if name == "stock" else "clinic",
                        )
                        messages = max(1, result["messages"])
                        result["rasa_cpu_ms"] = round(
                            1000 * (cpu_seconds(pids[name]) - busy[0]) / messages, 2
                        )
                        result["action_cpu_ms"] = round(
                            1000
                            * (cpu_seconds(action_pids[name]) - busy[1])
                            / messages,
                            2,
                        )
                        figures.setdefault((name, level), []).append(result)
                        print(
                            f"round {round_number + 1} {name:12} {json.dumps(result)}"
                        )
        finally:
            for process in reversed(processes):
                stop_process(process)
    print(
        f"\n{'variant':14} {'c':>3} {'msg/s':>7} {'p50':>7} {'p95':>7} "
        f"{'rasa cpu ms/msg':>15} {'action cpu':>10} {'errors':>6}"
    )
    for level in levels:
        for name, _ in variants:
            runs = figures[(name, level)]
            print(
                f"{name:14} {level:>3} "
                f"{statistics.median(r['messages_per_second'] for r in runs):7.1f} "
                f"{statistics.median(r['p50_ms'] for r in runs):7.1f} "
                f"{statistics.median(r['p95_ms'] for r in runs):7.1f} "
                f"{statistics.median(r['rasa_cpu_ms'] for r in runs):15.2f} "
                f"{statistics.median(r['action_cpu_ms'] for r in runs):10.2f} "
                f"{sum(r['errors'] + r['empty_replies'] for r in runs):>6}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
