"""Properties (Hypothesis) of the reply path and the store's search, over any text.

Whatever a patient types, the action decides an outcome the domain has a response for,
the response keeps the reply contract, search ranks sensibly and never raises, and the
REST channel's body check either accepts or refuses with a reason (never crashes).
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasa.shared.core.domain import Domain

from actions.answers import decide
from bot import channels, rest
from bot.nlg import ANSWER_TYPES, CONTRACT_SECTION_KEYS, ClinicNLG
from clinic import privacy
from clinic import settings as bot_settings
from knowledge import queries
from tests.test_nlg_and_nlu_component import ROOT, tracker

OUTCOMES = {
    "knowledge",
    "overview",
    "clarify",
    "topic_only",
    "not_covered",
    "handoff",
    "empty",
    "too_long",
}
INTENTS = [
    None,
    "ask_what",
    "ask_why",
    "ask_condition_help",
    "ask_safety",
    "ask_section",
    "ask_injection_info",
    "nlu_fallback",
    "out_of_scope",
    "greet",
    "ask_unknown_intent",
]
SLOW = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
patient_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=60).map(lambda t: t * 40),
    st.sampled_from(
        [
            "what is prp",
            "knee",
            "why injections instead of pills",
            "{{x}}",
            "'; DROP TABLE sections; --",
            "<b>hi</b>",
            "🙂",
            "\u202e",
        ]
    ),
)


@pytest.fixture(scope="module")
def rasa_domain() -> Domain:
    return Domain.load(str(ROOT / "domain.yml"))


@SLOW
@given(text=patient_text, intent=st.sampled_from(INTENTS), misses=st.integers(0, 3))
def test_any_message_gets_an_outcome_with_well_formed_sections(
    session, text, intent, misses
):
    answer = decide(session, intent, [], text, misses)
    assert answer.outcome in OUTCOMES
    for section in answer.cited + answer.offered:
        assert {"document", "number", "title"} <= set(section)
        assert 0 <= section["number"] <= 10
    if answer.outcome == "knowledge":
        assert answer.cited and answer.text


@SLOW
@given(text=patient_text)
def test_search_never_raises_and_ranks_by_score(session, text):
    hits = queries.search(session, text)
    assert len(hits) <= 5
    scores = [hit.score for hit in hits]
    assert all(math.isfinite(s) and s > 0 for s in scores)
    assert scores == sorted(scores, reverse=True)


def answer_responses(domain: Domain) -> list[str]:
    return sorted(
        name
        for name, variants in domain.responses.items()
        if any((v.get("custom") or {}).get("answer") for v in variants)
    )


@SLOW
@given(
    text=patient_text,
    intent=st.sampled_from(INTENTS[1:]),
    confidence=st.floats(0, 1),
    spoken=st.booleans(),
    data=st.data(),
)
async def test_every_reply_keeps_the_contract(
    session, rasa_domain, text, intent, confidence, spoken, data
):
    answer = decide(session, intent, [], text, 0)
    name = data.draw(st.sampled_from(answer_responses(rasa_domain)))
    state = tracker(
        rasa_domain, intent, confidence, list(answer.slots().items()), spoken
    )
    nlg = ClinicNLG(domain=rasa_domain)
    reply = await nlg.generate(name, state, "rest")
    contract = reply["custom"]["answer"]
    assert contract["type"] in ANSWER_TYPES
    assert set(contract) == {"type", "sections", "category", "intent", "confidence"}
    # the document as well as the section: title, file, number, section title, headings
    assert all(
        {"document", "number", "title"} <= set(s) <= set(CONTRACT_SECTION_KEYS)
        for s in contract["sections"]
    )
    assert 0.0 <= contract["confidence"] <= 1.0


scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
json_values = st.recursive(
    scalars | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    raw=st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {"sender": json_values | st.text(max_size=300), "message": json_values},
            optional={"metadata": json_values},
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_the_rest_body_check_accepts_or_gives_a_reason(raw):
    try:
        sender, text, metadata = rest.parse_rest_body(
            raw, bot_settings.max_socket_bytes()
        )
    except rest.BadRequestError as refused:
        assert str(refused)
        return
    assert isinstance(sender, str) and 0 < len(sender) <= 255
    assert isinstance(text, str) and channels.clean_text(text) == text
    assert metadata is None or isinstance(metadata, dict)


@given(st.text())
def test_cleaning_and_masking_are_idempotent(text):
    cleaned = channels.clean_text(text)
    assert channels.clean_text(cleaned) == cleaned
    cleaned.encode("utf-8")  # no lone surrogates left
    masked = privacy.mask(text)
    assert privacy.mask(masked) == masked
    assert not privacy.EMAIL.search(masked)
