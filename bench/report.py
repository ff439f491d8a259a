"""The generated part of docs/benchmarks.md and the quality plot, from `make bench`'s results.

Only the text between the two markers below is rewritten; the hand-written analysis
around it stays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.load import STOCK

START = "<!-- make bench: generated from here -->"
END = "<!-- make bench: generated until here -->"


def _share(text: str) -> float:
    """'35/36 = 0.972' -> 0.972."""
    return float(text.rsplit("=", 1)[1])


def quality_rows(q: dict[str, Any]) -> list[tuple[str, float | None, float | None]]:
    """(figure, assistant, search box) for the side-by-side table and plot."""
    final = next(r for r in q["red_flags"] if r[0] == "red_flags_final.yml")
    return [
        ("intent accuracy", q["accuracy"], None),
        ("intent macro-F1", q["macro_f1"], None),
        (
            f"topic questions answered from the right section (n={q['topic_questions']})",
            q["right_section"],
            q["search_right_section"],
        ),
        (
            f"not-covered questions answered honestly (n={q['not_covered_questions']})",
            q["honest"],
            q["search_honest"],
        ),
        ("red-flag recall, final table (never tuned on)", _share(final[3]), 0.0),
        ("red-flag false alarms, final table (lower is better)", _share(final[4]), 0.0),
    ]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def tables(results: dict[str, Any]) -> str:
    """Markdown tables of one run."""
    from bench.load import table

    q, c, runs = results["quality"], results["costs"], results["load"]
    ours, two, stock = runs["assistant"], runs["assistant, 2 workers"], runs[STOCK]
    lines = [
        f"Last run: `make bench` on {results['cores']} cores (shared with other work), "
        f"{results['minutes']} min in all, {results['load_seconds_per_level']:.0f} s "
        "per load level.",
        "",
        "### Answer quality (held-out questions, `tests/nlu/heldout.yml`)",
        "",
        "| figure | assistant | BM25 search box |",
        "|---|---|---|",
        *(f"| {n} | {_fmt(a)} | {_fmt(b)} |" for n, a, b in quality_rows(q)),
        "",
        f"Search box: BM25 over the guide's sections, best threshold for it "
        f"({q['search_threshold']:.1f}); it has no intents and never gives emergency "
        "guidance (hence 0 recall and 0 false alarms).",
        "",
        "| red-flag table | detector recall | false alarms | system recall "
        "| false alarms |",
        "|---|---|---|---|---|",
        *(f"| {' | '.join(row)} |" for row in q["red_flags"]),
        "",
        "### Speed under load (REST, closed loop, `python -m bench.load`)",
        "",
        *table(runs),
        "",
        "![latency and throughput against concurrency](load-latency.png)",
        "",
        "### Costs",
        "",
        "| figure | assistant | stock rasa init |",
        "|---|---|---|",
        f"| full training (empty cache) | {c['training_s']} s | {stock['training_s']} s |",
        f"| cold start: start to first answer | {ours['cold_start_s']} s "
        f"(2 workers: {two['cold_start_s']} s) | {stock['cold_start_s']} s |",
        f"| resident memory after the load: Rasa server | {ours['rasa_server_mb']:.0f} MB"
        f" (2 workers: {two['rasa_server_mb']:.0f} MB) | {stock['rasa_server_mb']:.0f} MB |",
        f"| resident memory after the load: action server | "
        f"{ours['action_server_mb']:.0f} MB | - |",
        f"| proportional memory (PSS: shared pages counted once), both servers | "
        f"{pss(ours):.0f} MB (2 workers: {pss(two):.0f} MB) | "
        f"{stock.get('rasa_server_pss_mb', 0):.0f} MB |",
        f"| model size on disk | {c['model_mb']} MB | - |",
        f"| knowledge build (builder's own timing) | {c['knowledge_build_s']:.2f} s | - |",
        "",
        *insights_rows(results.get("insights")),
        "### Targets",
        "",
        *targets(results),
    ]
    return "\n".join(lines)


def insights_rows(figures: dict[str, Any] | None) -> list[str]:
    """The insights page's figures (`python -m bench.insights`), when measured."""
    if not figures:
        return []
    return [
        f"### Staff insights page ({figures['conversations']:,} conversations over "
        f"{figures['days']} days, `python -m bench.insights`)",
        "",
        "| range | median | slowest of 5 | target |",
        "|---|---|---|---|",
        f"| the whole year | {figures['year_median_ms']:.0f} ms | "
        f"{figures['year_max_ms']:.0f} ms | 1000 ms |",
        f"| the last 7 days | {figures['week_median_ms']:.0f} ms | "
        f"{figures['week_max_ms']:.0f} ms | 1000 ms |",
        "",
        f"Read from the summary tables and rendered (filled in {figures['fill_s']} s).",
        "",
    ]


def pss(profile: dict[str, Any]) -> float:
    """Both servers' proportional memory (0 when a run did not record it)."""
    return float(
        profile.get("rasa_server_pss_mb", 0) + profile.get("action_server_pss_mb", 0)
    )


def targets(results: dict[str, Any]) -> list[str]:
    """The issue's targets against this run, for each assistant profile."""
    runs, c = results["load"], results["costs"]
    stock = runs[STOCK]["levels"]
    lines = ["| target | assistant | 2 workers |", "|---|---|---|"]

    def mark(ok: bool) -> str:
        return "met" if ok else "**not met**"

    profiles = [runs["assistant"], runs["assistant, 2 workers"]]

    def ratio(profile: dict[str, Any], loaded: bool) -> float:
        """Lowest throughput ratio to stock: under load (8+ conversations) or at 1."""
        return min(
            m["messages_per_second"] / s["messages_per_second"]
            for m, s in zip(profile["levels"], stock, strict=True)
            if (m["concurrency"] > 1) == loaded
        )

    ratios = [ratio(p, loaded=True) for p in profiles]
    single = [ratio(p, loaded=False) for p in profiles]
    p95 = [
        next(r["p95_ms"] for r in p["levels"] if r["concurrency"] == 16)
        for p in profiles
    ]
    at32 = [
        next(
            r["errors"] + r["empty_replies"]
            for r in p["levels"]
            if r["concurrency"] == 32
        )
        for p in profiles
    ]
    memory = [p["rasa_server_mb"] + p["action_server_mb"] for p in profiles]
    shared = [pss(p) for p in profiles]
    rows = [
        (
            "throughput at least twice the stock bot's under load "
            "(lowest ratio at 8, 16 and 32 conversations)",
            [f"{r:.2f} of stock, {mark(r >= 2)}" for r in ratios],
        ),
        (
            "the same at 1 conversation (one message at a time: a latency race)",
            [f"{r:.2f} of stock, {mark(r >= 2)}" for r in single],
        ),
        (
            "p95 ≤ 200 ms at 16 conversations",
            [f"{v:.0f} ms, {mark(v <= 200)}" for v in p95],
        ),
        ("0 errors and 0 empty replies at 32", [f"{v}, {mark(v == 0)}" for v in at32]),
        (
            "cold start ≤ 15 s",
            [
                f"{p['cold_start_s']} s, {mark(p['cold_start_s'] <= 15)}"
                for p in profiles
            ],
        ),
        (
            "both servers ≤ 1.5 GB resident (PSS; RSS, which counts shared pages "
            "per process, in brackets)",
            [
                f"{m:.0f} MB ({r:.0f} MB), {mark(m <= 1536)}"
                if m
                else f"{r:.0f} MB, {mark(r <= 1536)}"
                for m, r in zip(shared, memory, strict=True)
            ],
        ),
        (
            "full training ≤ 90 s",
            [f"{c['training_s']} s, {mark(c['training_s'] <= 90)}"] * 2,
        ),
    ]
    lines += [f"| {name} | {a} | {b} |" for name, (a, b) in rows]
    return lines


def write(path: Path, generated: str) -> None:
    """Replace the generated part of the benchmarks page (added after the title once)."""
    text = path.read_text(encoding="utf-8")
    block = f"{START}\n{generated}\n{END}"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + block + after
    else:
        title, _, body = text.partition("\n")
        text = f"{title}\n\n{block}\n{body}"
    path.write_text(text, encoding="utf-8")


def plot_quality(q: dict[str, Any], path: Path) -> None:
    """Grouped bars: the assistant beside the search box on every shared figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in quality_rows(q) if "false alarms" not in r[0]]
    labels = [n.split(" (")[0].replace(" answered", "\nanswered") for n, _, _ in rows]
    ours = [a or 0.0 for _, a, _ in rows]
    theirs = [b or 0.0 for _, _, b in rows]
    fig, axis = plt.subplots(figsize=(10, 4))
    positions = range(len(rows))
    axis.bar([p - 0.2 for p in positions], ours, 0.4, label="assistant")
    axis.bar([p + 0.2 for p in positions], theirs, 0.4, label="BM25 search box")
    axis.set_xticks(list(positions))
    axis.set_xticklabels(labels, fontsize=7)
    axis.set(ylim=(0, 1.2), ylabel="share", title="Answer quality, held-out questions")
    axis.legend(loc="upper center", ncol=2)
    axis.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
