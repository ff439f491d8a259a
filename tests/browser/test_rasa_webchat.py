"""rasa-webchat 1.0.1, unmodified, on a clinic site of another origin, chats with the assistant.

The widget is the npm package's own bundle (tests/browser/webchat, `make webchat`),
served by the test site itself (nothing from a CDN), configured as its README says. The
site's origin is in ALLOWED_ORIGINS (conftest.py). It gets an answer, a quick reply
button that asks the next question, and emergency guidance for a red flag: the replies
arrive in Rasa's own socket.io shapes (bot/channels.py).
"""

from __future__ import annotations

import json
import shutil

import pytest
from playwright.sync_api import Locator, Page, expect

from bot.training import ROOT
from tests.browser.conftest import Assistant
from tests.browser.pages import ANSWER_WAIT_MS, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

BUNDLE = ROOT / "tests/browser/webchat/node_modules/rasa-webchat/lib/index.js"

SITE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Riverside Pain Clinic</title></head>
<body><h1>Riverside Pain Clinic</h1>
<script src="rasa-webchat.js"></script>
<script>
  window.WebChat.default({{
    customData: {{ language: "en" }},
    socketUrl: {server},
    socketPath: "/socket.io/",
    title: "Riverside Pain Clinic",
    params: {{ storage: "session" }}
  }}, null);
</script>
</body></html>
"""


@pytest.fixture()
def webchat(assistant: Assistant, page: Page) -> Page:
    if not BUNDLE.exists():
        pytest.fail("rasa-webchat is missing: run `make webchat` (make test does)")
    shutil.copyfile(BUNDLE, assistant.sites_dir / "rasa-webchat.js")
    (assistant.sites_dir / "webchat.html").write_text(
        SITE.format(server=json.dumps(assistant.url))
    )
    page.goto(f"{assistant.allowed_site}/webchat.html")
    page.locator(".rw-launcher").click()
    expect(page.locator(".rw-new-message")).to_be_visible()
    return page


def responses(page: Page) -> Locator:
    return page.locator(".rw-response")


def send(page: Page, text: str) -> None:
    box = page.locator(".rw-new-message")
    box.fill(text)
    box.press("Enter")


def next_response(page: Page, before: int, containing: str) -> Locator:
    """The first of the replies after `before` that contains `containing`."""
    later = responses(page).filter(has_text=containing)
    expect(later.last).to_be_visible(timeout=ANSWER_WAIT_MS)
    assert responses(page).count() > before
    return later.last


def test_rasa_webchat_gets_an_answer_a_quick_reply_and_emergency_guidance(webchat):
    page = webchat
    send(page, "what is prp")
    prp = next_response(page, 0, "Platelet-Rich Plasma")
    expect(prp).to_contain_text("section 9 (Regenerative Medicine)")

    before = responses(page).count()
    send(page, "what helps my knee")
    next_response(page, before, "lubricating and cushioning")
    reply = page.locator(".rw-reply", has_text="Inflammatory Conditions")
    expect(reply).to_be_visible(timeout=ANSWER_WAIT_MS)
    screenshot(page, "rasa-webchat-quick-replies")
    before = responses(page).count()
    reply.click()
    next_response(page, before, "(Inflammatory Conditions)")

    before = responses(page).count()
    send(page, "I have a fever and a stiff neck since my epidural")
    emergency = next_response(page, before, "This could be an emergency")
    expect(emergency).to_contain_text("911")
    screenshot(page, "rasa-webchat-emergency")


def test_rasa_webchat_shows_did_this_help_and_no_offers_a_call_back(webchat):
    page = webchat
    send(page, "what is prp")
    next_response(page, 0, "Did this help?")
    helped = page.locator(".rw-reply", has_text="Yes, this helped")
    expect(helped).to_be_visible(timeout=ANSWER_WAIT_MS)
    before = responses(page).count()
    page.locator(".rw-reply", has_text="No, it didn't").click()
    next_response(page, before, "call you back")
    screenshot(page, "rasa-webchat-feedback")
