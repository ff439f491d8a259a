"""The unanswered questions of a date range, grouped by similarity: the next leaflets.

The questions are the summaries' missed questions (records.summaries: not covered,
handed off, or a "did you mean" nobody resolved), already masked. Each is turned into a
TF-IDF vector of its words, crudely stemmed (scikit-learn), and questions closer than
`DISTANCE` in cosine distance are joined by average-linkage agglomerative clustering. A
cluster is named by its heaviest terms, given its most frequent category, and the
clusters are ranked by size: "12 patients asked about driving home after sedation".
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from records.models import MissedQuestion

#: Questions closer than this (cosine distance of their TF-IDF vectors) share a cluster.
DISTANCE = 0.8
#: The most questions clustered at once (the most recent of the range).
MAX_QUESTIONS = 3000
EXAMPLES = 3
#: Words every question of this clinic shares, which say nothing about its subject.
CLINIC_STOP_WORDS = frozenset(
    {
        "injection",
        "injections",
        "shot",
        "shots",
        "procedure",
        "get",
        "does",
        "did",
        "ok",
    }
)


@dataclass
class Cluster:
    """Questions that ask about the same thing."""

    label: str
    size: int
    conversations: int
    category: str
    examples: list[str]
    questions: list[str]


def missed_questions(
    session: Session, start: float, end: float, limit: int = MAX_QUESTIONS
) -> list[MissedQuestion]:
    """The missed questions asked in [start, end), the most recent first."""
    query = (
        select(MissedQuestion)
        .where(MissedQuestion.asked_at >= start)
        .where(MissedQuestion.asked_at < end)
        .order_by(MissedQuestion.asked_at.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


WORD = re.compile(r"[a-z][a-z']+")
SUFFIXES = ("ations", "ation", "ated", "ion", "ing", "ers", "ed", "es", "er", "s")


def stem(word: str) -> str:
    """A crude stem, so that drive, drives and driving, or sedated and sedation, meet."""
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    # drive and driv(ing), sedate and sedat(ion)
    return word[:-1] if word.endswith("e") and len(word) >= 5 else word


def _words(text: str) -> list[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    stop = ENGLISH_STOP_WORDS | CLINIC_STOP_WORDS
    return [w for w in WORD.findall(text.lower()) if w not in stop]


def cluster(questions: list[MissedQuestion]) -> list[Cluster]:
    """Group the questions by similarity, largest group first."""
    kept = [q for q in questions if q.text.strip()]
    if len(kept) < 2:
        return [_cluster(kept, _label(_words(kept[0].text)))] if kept else []
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.text import TfidfVectorizer

    words = [_words(q.text) for q in kept]
    vectorizer = TfidfVectorizer(analyzer=lambda ws: [stem(w) for w in ws])
    dense = vectorizer.fit_transform(words).toarray()
    # A question with no telling word cannot be compared: it stays on its own.
    dense[dense.sum(axis=1) == 0, 0] = 1e-9
    labels = AgglomerativeClustering(
        n_clusters=None,
        distance_threshold=DISTANCE,
        affinity="cosine",
        linkage="average",
    ).fit_predict(dense)
    groups: dict[int, list[int]] = {}
    for position, label in enumerate(labels):
        groups.setdefault(int(label), []).append(position)
    found = [
        _cluster(
            [kept[m] for m in members], _label([w for m in members for w in words[m]])
        )
        for members in groups.values()
    ]
    return sorted(found, key=lambda c: (-c.size, c.label))


def _label(words: list[str]) -> str:
    """The cluster's three most used stems, each said as its most used word."""
    by_stem: dict[str, Counter[str]] = {}
    for word in words:
        by_stem.setdefault(stem(word), Counter())[word] += 1
    ranked = sorted(by_stem.values(), key=lambda forms: -sum(forms.values()))
    return ", ".join(forms.most_common(1)[0][0] for forms in ranked[:3]) or "other"


def _cluster(members: list[MissedQuestion], label: str) -> Cluster:
    categories = Counter(m.category or "other" for m in members)
    examples = list(dict.fromkeys(m.text.strip() for m in members))
    return Cluster(
        label=label,
        size=len(members),
        conversations=len({m.conversation_id for m in members}),
        category=categories.most_common(1)[0][0],
        examples=examples[:EXAMPLES],
        questions=examples,
    )


def clusters_csv(clusters: list[Cluster], cell: Callable[[object], str] = str) -> str:
    """The clusters as CSV: one line per question, with its cluster's rank and name.

    `cell` makes a value safe for a spreadsheet (the console's `csv_cell`).
    """
    safe = cell
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["rank", "cluster", "size", "conversations", "category", "question"]
    )
    for rank, found in enumerate(clusters, start=1):
        for question in found.questions:
            writer.writerow(
                [
                    rank,
                    safe(found.label),
                    found.size,
                    found.conversations,
                    safe(found.category),
                    safe(question),
                ]
            )
    return buffer.getvalue()
