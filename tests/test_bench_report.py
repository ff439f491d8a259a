"""`make bench` rewrites only its own part of docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

from bench import report


def test_generated_part_is_replaced_and_the_analysis_kept(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text("# Measured figures\n\nHand-written analysis.\n", encoding="utf-8")
    report.write(page, "first run")
    report.write(page, "second run")
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# Measured figures\n")
    assert "second run" in text and "first run" not in text
    assert text.count(report.START) == 1 and text.count(report.END) == 1
    assert "Hand-written analysis." in text


def test_search_box_has_no_intent_figures_and_no_emergency_guidance() -> None:
    quality = {
        "accuracy": 0.9,
        "macro_f1": 0.91,
        "right_section": 0.92,
        "honest": 0.98,
        "topic_questions": 77,
        "not_covered_questions": 49,
        "search_right_section": 0.48,
        "search_honest": 0.94,
        "red_flags": [
            (
                "red_flags_final.yml",
                "28/36 = 0.778",
                "2/30 = 0.067",
                "35/36 = 0.972",
                "3/30 = 0.100",
            )
        ],
    }
    rows = {name.split(" (")[0]: (a, b) for name, a, b in report.quality_rows(quality)}
    assert rows["intent accuracy"] == (0.9, None)
    assert rows["red-flag recall, final table"] == (0.972, 0.0)
