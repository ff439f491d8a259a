"""The assistant's response generator: domain responses, completed with the reply contract.

Configured in `endpoints.yml` (`nlg: type: bot.nlg.ClinicNLG`). It renders the domain's
responses like Rasa's own templated generator and in addition
  - fills `{clinic_phone}`, `{emergency_number}`, `{crisis_line}`, `{clinic_name}` from
    the environment (clinic.settings), so numbers are configured without retraining;
  - fills `{source_document}`, `{source_number}`, `{source_title}` from the cited section;
  - completes `custom.answer` (the reply contract) for every response that declares an
    answer type: intent and confidence of the message being answered, the cited or offered
    sections, the not-covered category; and adds a button for each offered section.
  - opens the first reply of every session with the disclaimer (utter_disclaimer), except
    an emergency reply, whose guidance must come first;
  - picks, among the conditional variations that match, the most specific one: one in
    the patient's language (a `language` condition) first, then the one with the most
    conditions. A Spanish re-ask (`language: es` and `callback_invalid`) wins over both
    the English re-ask and the Spanish first ask, and the Spanish not-covered reply over
    the English one for the category, where Rasa would pick one at random.
It runs inside the Rasa server, so neither the disclaimer nor emergency replies need
anything from the action server.
"""

from __future__ import annotations

import json
import random
from typing import Any

from rasa.core.nlg.generator import ResponseVariationFilter
from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from clinic import settings

#: Every answer type of the reply contract (`custom.answer.type`).
ANSWER_TYPES = frozenset(
    {
        "knowledge",
        "overview",
        "clarify",
        "not_covered",
        "handoff",
        "emergency",
        "smalltalk",
        "form",
        "feedback",
    }
)
#: Answer types whose `sections` are the cited ones; the rest list offered sections.
CITING = {"knowledge", "not_covered"}
OFFERING = {"knowledge", "overview", "clarify"}
#: What the reply contract says of each section (the document as well as the section).
CONTRACT_SECTION_KEYS = ("document", "file", "number", "title", "heading_path")
DISCLAIMER = "utter_disclaimer"
NO_DISCLAIMER_BEFORE = {"emergency"}


def said_anything_this_session(tracker: DialogueStateTracker) -> bool:
    """Whether the bot has spoken since the session started."""
    for event in reversed(tracker.events):
        if isinstance(event, BotUttered):
            return True
        if isinstance(event, SessionStarted):
            return False
    return False


def answer_type(response: dict[str, Any]) -> str | None:
    """The answer type a response declares in `custom.answer.type`, if any."""
    answer = (response.get("custom") or {}).get("answer")
    return answer.get("type") if isinstance(answer, dict) else None


def section_button(section: dict[str, Any]) -> dict[str, str]:
    """A quick-reply button that asks for one section by its reference."""
    payload = json.dumps({"section_ref": section["ref"]}, separators=(",", ":"))
    return {"title": str(section["title"]), "payload": f"/ask_section{payload}"}


def contract_section(section: dict[str, Any]) -> dict[str, Any]:
    """A section as the reply contract lists it."""
    return {k: section[k] for k in CONTRACT_SECTION_KEYS if k in section}


def source_values(slots: dict[str, Any]) -> dict[str, Any]:
    """Template values describing the first cited section."""
    cited = slots.get("cited_sections") or []
    if not cited:
        return {}
    first = cited[0]
    return {
        "source_document": first["document"],
        "source_number": first["number"],
        "source_title": first["title"],
    }


def complete_answer(
    response: dict[str, Any], tracker: DialogueStateTracker, slots: dict[str, Any]
) -> dict[str, Any]:
    """Fill the reply contract of a response that declares `custom.answer.type`."""
    kind = answer_type(response)
    if kind is None:
        return response
    intent = tracker.latest_message.intent if tracker.latest_message else {}
    cited = slots.get("cited_sections") or []
    offered = slots.get("offered_sections") or []
    if kind in CITING:
        sections = cited
    elif kind in OFFERING:
        sections = offered
    else:
        sections = []
    response["custom"] = {
        **response["custom"],
        "answer": {
            "type": kind,
            "sections": [contract_section(s) for s in sections],
            "category": slots.get("not_covered_category")
            if kind == "not_covered"
            else None,
            "intent": intent.get("name"),
            "confidence": round(float(intent.get("confidence") or 0.0), 4),
        },
    }
    if kind in OFFERING and offered:
        response["buttons"] = [
            *(response.get("buttons") or []),
            *map(section_button, offered),
        ]
    return response


def _specificity(variation: dict[str, Any]) -> tuple[bool, int]:
    """How specific a matching variation is: its language, then its conditions.

    A variation in the patient's language comes first, then the one with most conditions.
    """
    conditions = variation.get("condition") or []
    return (any(c.get("name") == "language" for c in conditions), len(conditions))


class ClinicNLG(TemplatedNaturalLanguageGenerator):
    """Templated responses plus clinic settings and the reply contract."""

    def __init__(
        self,
        endpoint_config: EndpointConfig | None = None,
        domain: Domain | None = None,
        **_: Any,
    ) -> None:
        super().__init__((domain or Domain.empty()).responses)

    def _random_response_for(
        self, utter_action: str, output_channel: str, filled_slots: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The most specific matching variation (Rasa 3.6's method: any matching one)."""
        if utter_action not in self.responses:
            return None
        suitable = ResponseVariationFilter(self.responses).responses_for_utter_action(
            utter_action, output_channel, filled_slots
        )
        if not suitable:
            return None
        most = max(map(_specificity, suitable))
        return random.choice([r for r in suitable if _specificity(r) == most])

    async def generate(
        self,
        utter_action: str,
        tracker: DialogueStateTracker,
        output_channel: str,
        **kwargs: Any,
    ) -> dict[str, Any] | None:
        """Render a response for the tracker's current state."""
        slots = tracker.current_slot_values()
        values = {**settings.template_values(), **source_values(slots), **kwargs}
        response = self.generate_from_slots(
            utter_action, slots, output_channel, **values
        )
        if response is None:
            return None
        if (
            utter_action != DISCLAIMER
            and answer_type(response) not in NO_DISCLAIMER_BEFORE
            and not said_anything_this_session(tracker)
        ):
            disclaimer = self.generate_from_slots(
                DISCLAIMER, slots, output_channel, **values
            )
            if disclaimer and disclaimer.get("text") and response.get("text"):
                response["text"] = f"{disclaimer['text']}\n{response['text']}"
        return complete_answer(response, tracker, slots)
