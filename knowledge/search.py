"""Okapi BM25 over passages, small enough to keep in memory per store build.

Chosen over SQLite FTS5 / PostgreSQL full text because it behaves the same on both
databases and ranks with the same lemmas the builder stored (see docs/benchmarks.md).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


class BM25:
    """Okapi BM25 with the usual k1 and b; documents are lists of tokens."""

    def __init__(
        self, documents: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75
    ):
        self.k1, self.b = k1, b
        self.term_counts = [Counter(doc) for doc in documents]
        self.lengths = [len(doc) for doc in documents]
        self.average_length = (sum(self.lengths) / len(documents)) if documents else 0.0
        frequency: Counter[str] = Counter()
        for counts in self.term_counts:
            frequency.update(counts.keys())
        n = len(documents)
        self.idf = {
            term: math.log(1 + (n - df + 0.5) / (df + 0.5))
            for term, df in frequency.items()
        }

    def scores(self, query: Sequence[str]) -> list[float]:
        """The score of every document for a query, in document order."""
        unique = set(query)
        result = []
        for counts, length in zip(self.term_counts, self.lengths, strict=True):
            score = 0.0
            norm = self.k1 * (1 - self.b + self.b * length / (self.average_length or 1))
            for term in unique:
                tf = counts.get(term)
                if tf:
                    score += self.idf[term] * tf * (self.k1 + 1) / (tf + norm)
            result.append(score)
        return result
