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
from sqlalchemy.orm import Session

from actions.answers import OVERVIEW_TOPIC, TOPIC_PREFIX, decide
from knowledge import queries
from knowledge.environment import session_scope

NOT_COVERED_INTENTS = {
    "ask_cost_insurance",
    "ask_scheduling",
    "ask_procedure_day",
    "ask_aftercare",
    "ask_relief_duration",
    "ask_medications",
    "out_of_scope",
}
HONEST_OUTCOMES = {"not_covered", "handoff", "clarify"}


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


def topic_sections(session: Session, intents: set[str]) -> dict[str, int]:
    """Gold intent -> the number of the section that answers it.

    Only topic intents (`ask_joint_pain`) the store knows; the overview is no one section.
    """
    mapping = {}
    for intent in intents:
        topic = intent.removeprefix(TOPIC_PREFIX)
        if intent.startswith(TOPIC_PREFIX) and topic != OVERVIEW_TOPIC:
            section = queries.section_for_topic(session, topic)
            if section is not None:
                mapping[intent] = section.number
    return mapping


@dataclass
class AnswerReport:
    """How the questions were answered, end to end through the answering logic."""

    topic_questions: int
    right_section: float
    not_covered_questions: int
    honest_not_covered: float
    wrong: list[tuple[str, str, str]] = field(default_factory=list)


def answer_report(
    examples: list[Example],
    parses: list[dict[str, Any]],
    topic_sections: dict[str, int],
) -> AnswerReport:
    """Right-section share for topic questions, honesty for not-covered ones.

    Args:
        examples: the held-out messages with their gold intents.
        parses: the model's parse of each message.
        topic_sections: gold intent -> the section number that answers it.
    """
    right = topic_total = honest = nc_total = 0
    wrong = []
    with session_scope() as session:
        for example, parse in zip(examples, parses, strict=True):
            intent = parse["intent"]["name"]
            if example.intent in topic_sections:
                topic_total += 1
                answer = decide(
                    session, intent, parse.get("entities") or [], example.text, 0
                )
                cited = answer.cited[0]["number"] if answer.cited else None
                if (
                    answer.outcome == "knowledge"
                    and cited == topic_sections[example.intent]
                ):
                    right += 1
                else:
                    wrong.append(
                        (example.text, example.intent, f"{answer.outcome} {cited}")
                    )
            elif example.intent in NOT_COVERED_INTENTS:
                nc_total += 1
                if intent in NOT_COVERED_INTENTS:
                    honest += 1
                    continue
                answer = decide(
                    session, intent, parse.get("entities") or [], example.text, 0
                )
                if answer.outcome in HONEST_OUTCOMES:
                    honest += 1
                else:
                    wrong.append((example.text, example.intent, answer.outcome))
    return AnswerReport(
        topic_questions=topic_total,
        right_section=right / topic_total if topic_total else 0.0,
        not_covered_questions=nc_total,
        honest_not_covered=honest / nc_total if nc_total else 0.0,
        wrong=wrong,
    )
