"""The insights page on a year of conversations: `python -m bench.insights`.

Fills a fresh SQLite conversations database with 100,000 conversations over 365 days,
as the records layer keeps them (records.summaries: one summary row per
conversation, the day counters, the missed questions), written in bulk; then renders
/staff/insights the way its handler does (the summary queries and the template) for the
whole year and for the last 7 days, and prints the figures. The page reads no event, so
the events themselves are left out of the fill (tests/test_insights.py checks that the
queries never touch Rasa's `events` table).
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from records import insights, store
from records.models import ConversationSummary, DailyCount, MissedQuestion
from records.summaries import KEY_SEPARATOR, reply_bucket
from staff.views import not_covered_categories

CONVERSATIONS = 100_000
DAYS = 365
RUNS = 5
DOCUMENTS = {
    "Pain Management Injections": [
        "Chronic Pain Relief",
        "Inflammatory Conditions",
        "Neuropathic Pain",
        "Musculoskeletal Pain",
        "Joint Pain",
        "Spinal Conditions",
        "Avoiding Surgery",
        "Diagnostic Purposes",
        "Regenerative Medicine",
        "Improving Quality of Life",
    ],
    "Going Home After Your Procedure": ["Driving", "Rest", "Dressings"],
}
QUESTIONS = [
    "can i drive home after sedation",
    "how much does a nerve block cost with my insurance",
    "can i eat before the procedure",
    "how long will the relief last",
    "can i take ibuprofen after the shot",
    "do you take medicare",
]


def fill(url: str, conversations: int = CONVERSATIONS, days: int = DAYS) -> None:
    """Write `conversations` conversations' summaries, spread over the last `days` days."""
    rng = random.Random(16)
    engine = store.get_engine(url)
    first_day = date.today() - timedelta(days=days - 1)
    counts: Counter[tuple[str, str, str]] = Counter()
    peaks: dict[str, float] = {}
    summaries: list[dict[str, Any]] = []
    missed: list[dict[str, Any]] = []
    categories = not_covered_categories()
    sections = [
        (d, n + 1, t) for d, titles in DOCUMENTS.items() for n, t in enumerate(titles)
    ]
    for number in range(conversations):
        day = first_day + timedelta(days=rng.randrange(days))
        started = datetime.combine(day, datetime.min.time()).timestamp() + rng.uniform(
            8 * 3600, 20 * 3600
        )
        name = day.isoformat()
        questions = rng.choice([1, 1, 2, 2, 3, 4])
        answered = not_covered = helpful = unhelpful = 0
        slowest = 0.0
        for _ in range(questions):
            reply_ms = rng.lognormvariate(5.0, 0.35)
            slowest = max(slowest, reply_ms)
            counts[(name, "reply_bucket", str(reply_bucket(reply_ms)))] += 1
            peaks[name] = max(peaks.get(name, 0.0), reply_ms)
            if rng.random() < 0.75:
                answered += 1
                document, section, title = rng.choice(sections)
                counts[(name, "answer", "knowledge")] += 1
                key = KEY_SEPARATOR.join([document, str(section), title])
                counts[(name, "section", key)] += 1
                counts[(name, "document", document)] += 1
                if rng.random() < 0.3:
                    feedback = "helpful" if rng.random() < 0.8 else "unhelpful"
                    counts[(name, "feedback", feedback)] += 1
                    helpful += feedback == "helpful"
                    unhelpful += feedback == "unhelpful"
            else:
                not_covered += 1
                category = rng.choice(categories)
                counts[(name, "answer", "not_covered")] += 1
                counts[(name, "category", category)] += 1
                missed.append(
                    {
                        "conversation_id": f"bench-{number}",
                        "asked_at": started,
                        "text": rng.choice(QUESTIONS),
                        "answer_type": "not_covered",
                        "category": category,
                        "intent": None,
                    }
                )
        emergency = rng.random() < 0.015
        callback = rng.random() < 0.05
        messages = 2 * questions
        counts[(name, "conversations", "")] += 1
        flags = {
            "answered": answered,
            "not_covered": not_covered,
            "emergency": emergency,
            "callback": callback,
        }
        for flag in (flag for flag, value in flags.items() if value):
            counts[(name, "conversations_with", flag)] += 1
        counts[(name, "messages", "")] += messages
        summaries.append(
            {
                "conversation_id": f"bench-{number}",
                "started_at": started,
                "last_at": started + 60 * questions,
                "messages": messages,
                "patient_messages": questions,
                "answered": answered,
                "not_covered": not_covered,
                "emergency": emergency,
                "emergency_at": started if emergency else None,
                "callback": callback,
                "helpful": helpful,
                "unhelpful": unhelpful,
                "slowest_reply_ms": slowest,
            }
        )
    days_rows = [
        {"day": d, "metric": m, "key": k, "count": n, "peak": None}
        for (d, m, k), n in counts.items()
    ] + [
        {"day": d, "metric": "reply_peak", "key": "", "count": 0, "peak": p}
        for d, p in peaks.items()
    ]
    with engine.begin() as connection:
        connection.execute(insert(ConversationSummary), summaries)
        connection.execute(insert(DailyCount), days_rows)
        connection.execute(insert(MissedQuestion), missed)


def render_ms(url: str, since: date, until: date) -> list[float]:
    """Milliseconds to read and render the page for the range, RUNS times."""
    from staff import insights as _pages  # noqa: F401  (the page's filters)
    from staff.auth import LoggedIn
    from staff.web import page

    user = LoggedIn(account_id=1, name="bench", csrf_token="x")
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        with store.session_scope(url) as session:
            found = insights.insights(session, since, until)
        page(
            "insights.html",
            user=user,
            since=since,
            until=until,
            found=found,
            query_ms=0.0,
        )
        times.append((time.perf_counter() - started) * 1000)
    return times


def measure(conversations: int = CONVERSATIONS) -> dict[str, Any]:
    """Fill a temporary database and time the page; the figures as a dict."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'conversations.db'}"
        started = time.perf_counter()
        fill(url, conversations)
        fill_s = time.perf_counter() - started
        today = date.today()
        year = render_ms(url, today - timedelta(days=DAYS - 1), today)
        week = render_ms(url, today - timedelta(days=6), today)
        store.get_engine(url).dispose()
    return {
        "conversations": conversations,
        "days": DAYS,
        "fill_s": round(fill_s, 1),
        "year_median_ms": round(statistics.median(year), 1),
        "year_max_ms": round(max(year), 1),
        "week_median_ms": round(statistics.median(week), 1),
        "week_max_ms": round(max(week), 1),
    }


def describe(figures: dict[str, Any]) -> str:
    """One line for the terminal."""
    return (
        f"insights page, {figures['conversations']:,} conversations over "
        f"{figures['days']} days: the whole year renders in "
        f"{figures['year_median_ms']:.0f} ms (median of {RUNS}, slowest "
        f"{figures['year_max_ms']:.0f} ms), the last 7 days in "
        f"{figures['week_median_ms']:.0f} ms (slowest {figures['week_max_ms']:.0f} ms); "
        f"target 1000 ms"
    )


def main() -> int:
    print(f"insights: filling {CONVERSATIONS:,} conversations...", flush=True)
    print(describe(measure()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
