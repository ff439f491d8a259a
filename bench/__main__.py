"""`make bench` (`python -m bench`): the whole benchmark in one run, about 15 minutes.

1. Answer quality on the held-out questions, beside a BM25 search box (bench.quality).
2. Costs: a full training from scratch (empty Rasa cache), the knowledge build, the
   model's size on disk.
3. Speed under load over REST against a stock `rasa init` bot trained here in a
   temporary folder, cold start and memory after the load (bench.load).
4. The staff console's insights page on 100,000 conversations (bench.insights).

Prints the tables, writes bench/out/results.json, docs/quality.png, docs/load-latency.png
and the generated part of docs/benchmarks.md (bench.report).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import insights, load, quality, report
from bot.training import MODEL_FILE, ROOT, train_command


def training_seconds() -> float:
    """A full training of the assistant's model (no cache) into a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        subprocess.run(
            train_command(Path(tmp), "bench"),
            cwd=ROOT,
            env=load.quiet_env(RASA_CACHE_DIRECTORY=str(Path(tmp) / "cache")),
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started


def knowledge_build_seconds() -> float:
    """The knowledge builder's own timing of a forced build into a temporary store."""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [sys.executable, "-m", "knowledge", "build", "--force"],
            cwd=ROOT,
            env=load.quiet_env(KNOWLEDGE_DB_URL=f"sqlite:///{tmp}/knowledge.db"),
            check=True,
            capture_output=True,
            text=True,
        )
    found = re.search(r"in ([\d.]+)s", done.stdout)
    return float(found.group(1)) if found else float("nan")


def costs() -> dict[str, Any]:
    print("costs: full training, knowledge build...", flush=True)
    return {
        "training_s": round(training_seconds(), 1),
        "knowledge_build_s": knowledge_build_seconds(),
        "model_mb": round(MODEL_FILE.stat().st_size / 1e6, 1),
    }


def main() -> int:
    started = time.perf_counter()
    print(f"machine: {os.cpu_count()} cores", flush=True)
    print("quality on the held-out questions...", flush=True)
    figures = quality.measure()
    results: dict[str, Any] = {
        "cores": os.cpu_count(),
        "load_seconds_per_level": load.SECONDS,
        "quality": {
            k: v for k, v in figures.items() if k not in {"confusions", "wrong"}
        },
        "costs": costs(),
    }
    print(f"load: {load.SECONDS:.0f} s per level...", flush=True)
    results["load"] = load.measure()
    print("insights page on 100,000 conversations...", flush=True)
    results["insights"] = insights.measure()
    print(insights.describe(results["insights"]), flush=True)
    results["minutes"] = round((time.perf_counter() - started) / 60, 1)
    load.OUT.mkdir(parents=True, exist_ok=True)
    (load.OUT / "results.json").write_text(json.dumps(results, indent=2))
    load.plot(results["load"], ROOT / "docs" / "load-latency.png")
    report.plot_quality(results["quality"], ROOT / "docs" / "quality.png")
    tables = report.tables(results)
    report.write(ROOT / "docs" / "benchmarks.md", tables)
    print("\n" + tables)
    return 0


if __name__ == "__main__":
    sys.exit(main())
