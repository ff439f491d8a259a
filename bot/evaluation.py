"""Measuring the assistant on held-out questions (used by `make bench` and the tests).

Everything runs the real components: the trained Rasa model (with the red-flag detector
inside it), the answering logic of the actions, and the knowledge store.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from actions.answers import decide
from clinic.intents import EMERGENCY_INTENTS
from knowledge.environment import session_scope

NOT_COVERED = "not_covered"
#: Outcomes that answer from a cited section.
ANSWERED_OUTCOMES = {"knowledge", "overview"}
#: Outcomes that honestly say the documents do not answer (a "did you mean" is honest too).
HONEST_OUTCOMES = {"not_covered", "topic_only", "handoff", "clarify"}


@dataclass
class Example:
    """A held-out message and its intent."""

    text: str
    intent: str


@dataclass
class IntentReport:
    """Intent classification figures."""

    total: int
    accuracy: float
    macro_f1: float
    per_intent_f1: dict[str, float] = field(default_factory=dict)
    confusions: list[tuple[str, str, str]] = field(default_factory=list)


def load_examples(path: Path) -> list[Example]:
    """Read Rasa NLU YAML (`- intent: x / examples: |`) into examples."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    examples = []
    for block in data.get("nlu", []):
        if "intent" not in block:
            continue
        for line in str(block.get("examples", "")).splitlines():
            line = line.strip()
            if line.startswith("- "):
                examples.append(Example(text=line[2:].strip(), intent=block["intent"]))
    return examples


def parse_messages(model_path: Path, texts: list[str]) -> list[dict[str, Any]]:
    """Parse messages with the trained model (NLU pipeline only)."""
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # no per-message debug lines in reports

    async def _parse() -> list[dict[str, Any]]:
        agent = Agent.load(str(model_path))
        return [await agent.parse_message(text) for text in texts]

    return asyncio.run(_parse())


def intent_report(gold: list[str], predicted: list[str]) -> IntentReport:
    """Accuracy and macro-F1 over the gold intents."""
    labels = sorted(set(gold))
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for g, p in zip(gold, predicted, strict=True):
        if g == p:
            tp[g] += 1
        else:
            fn[g] += 1
            fp[p] += 1
    f1 = {}
    for label in labels:
        precision = (
            tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 0.0
        )
        recall = tp[label] / (tp[label] + fn[label]) if tp[label] + fn[label] else 0.0
        f1[label] = (
            2 * precision * recall / (precision + recall) if precision + recall else 0.0
        )
    correct = sum(tp.values())
    return IntentReport(
        total=len(gold),
        accuracy=correct / len(gold) if gold else 0.0,
        macro_f1=sum(f1.values()) / len(f1) if f1 else 0.0,
        per_intent_f1=f1,
    )


@dataclass(frozen=True)
class LabelledQuestion:
    """A test question and the section it is owed (None: no document covers it).

    `section` is `<document file>#<number>`; a leaflet's question may name its section by
    `heading` instead (the deepest heading of the section that answers it).
    """

    text: str
    section: str | None
    document: str | None = None
    heading: str | None = None
    #: Other sections that answer it as well, (document, heading) each: a question that
    #: names no injection may be answered alike by two leaflets.
    also: tuple[tuple[str | None, str], ...] = ()

    @property
    def covered(self) -> bool:
        """Whether some document answers it."""
        return self.section is not None or self.heading is not None

    def answered_by(self, cited: dict[str, Any]) -> bool:
        """Whether a cited section (as the reply contract lists it) is the owed one."""
        if self.section is not None:
            file, _, number = self.section.rpartition("#")
            return cited.get("file", file) == file and str(cited["number"]) == number
        if self.heading is None:
            return False
        owed = ((self.document, self.heading), *self.also)
        return any(_cites(cited, document, heading) for document, heading in owed)


def _cites(cited: dict[str, Any], document: str | None, heading: str) -> bool:
    """Whether a cited section is the one of `document` under this deepest heading."""
    path = cited.get("heading_path") or [cited.get("title")]
    same_doc = document is None or cited.get("file") == document
    return same_doc and heading.lower() in {str(h).lower() for h in path[-1:]} | {
        str(cited.get("title", "")).lower()
    }


def load_labelled(path: Path) -> list[LabelledQuestion]:
    """Read a test set: `questions:` of {text, section | document + heading}.

    A question answered alike by other sections lists them under `also:`, each a
    {document, heading}.
    """
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    questions = []
    for row in data.get("questions") or []:
        section = row.get("section")
        heading = row.get("heading")
        not_covered = section == NOT_COVERED or heading == NOT_COVERED
        questions.append(
            LabelledQuestion(
                text=str(row["text"]),
                section=None if not_covered or section is None else str(section),
                document=row.get("document"),
                heading=None if not_covered or heading is None else str(heading),
                also=tuple(
                    (other.get("document"), str(other["heading"]))
                    for other in row.get("also") or ()
                ),
            )
        )
    return questions


@dataclass
class AnswerReport:
    """How the questions were answered, end to end through the answering logic."""

    covered_questions: int
    right_section: float
    not_covered_questions: int
    honest_not_covered: float
    wrong: list[tuple[str, str, str]] = field(default_factory=list)


def answer_report(
    questions: list[LabelledQuestion], parses: list[dict[str, Any]]
) -> AnswerReport:
    """Right-section share for covered questions, honesty for the rest.

    Args:
        questions: the test questions with the sections they are owed.
        parses: the model's parse of each question.
    """
    right = covered = honest = uncovered = 0
    wrong = []
    with session_scope() as session:
        for question, parse in zip(questions, parses, strict=True):
            intent = parse["intent"]["name"]
            if intent in EMERGENCY_INTENTS:
                answer_outcome, cited = "emergency", None
            else:
                answer = decide(
                    session,
                    intent,
                    parse.get("entities") or [],
                    question.text,
                    0,
                    parse.get("intent_ranking"),
                    language=str((parse.get("language") or {}).get("code") or "en"),
                )
                answer_outcome = answer.outcome
                cited = answer.cited[0] if answer.cited else None
            if question.covered:
                covered += 1
                if (
                    answer_outcome in ANSWERED_OUTCOMES
                    and cited
                    and question.answered_by(cited)
                ):
                    right += 1
                    continue
            else:
                uncovered += 1
                if answer_outcome in HONEST_OUTCOMES:
                    honest += 1
                    continue
            got = f"{intent}: {answer_outcome} {cited['title'] if cited else ''}"
            wrong.append(
                (
                    question.text,
                    question.section or question.heading or NOT_COVERED,
                    got,
                )
            )
    return AnswerReport(
        covered_questions=covered,
        right_section=right / covered if covered else 0.0,
        not_covered_questions=uncovered,
        honest_not_covered=honest / uncovered if uncovered else 0.0,
        wrong=wrong,
    )
