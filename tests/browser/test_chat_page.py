"""The patient chat page at / in a real browser (Debian's Chromium, headless).

Each test gets a fresh browser profile, so its own conversation; all run against one
`python -m bot run` (see conftest.py).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import Assistant
from tests.browser.pages import (
    PHONE,
    ask,
    bot_messages,
    screenshot,
    serious_accessibility_problems,
    user_messages,
    wait_for_more_answers,
)

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# The id the server issues (bot.sessions.new_id): 192 random bits, base64url.
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")
HOSTILE = [
    "<script>window.__pwned = 1</script>",
    '<img src=x onerror="window.__pwned = 2">',
]


def stored_session(page: Page) -> str | None:
    return page.evaluate(
        "() => Object.entries(localStorage)"
        ".filter(([k]) => k.startsWith('clinic-chat:session:')).map(([, v]) => v)[0] || null"
    )


def watch_typing_indicator(page: Page) -> None:
    """Record in window.__typingShown whether the typing indicator is ever shown."""
    page.evaluate(
        """() => {
            const dots = document.querySelector(".cc-typing");
            window.__typingShown = false;
            new MutationObserver(() => { if (!dots.hidden) window.__typingShown = true; })
                .observe(dots, {attributes: true});
        }"""
    )


def test_disclaimer_then_an_answer_with_its_source_line(
    page: Page, assistant: Assistant
):
    page.goto(assistant.url)
    disclaimer = page.locator(".cc-disclaimer")
    expect(disclaimer).to_be_visible()
    expect(disclaimer).to_contain_text("not medical advice")
    expect(disclaimer.locator('a[href="tel:911"]')).to_be_visible()

    watch_typing_indicator(page)
    answer = ask(page, "what can help my knee")
    expect(answer).to_contain_text("lubricating and cushioning the affected joint")
    expect(answer.locator(".cc-msg__source")).to_have_text(
        "Source: clinic guide, section 5 \u2014 Joint Pain"
    )
    # The bot's own "Source: ..." line is replaced by the source line, not shown twice.
    expect(answer).not_to_contain_text("Source: Pain Management Injections")
    # Screen readers hear the answer; the dots showed while the bot worked, then went.
    expect(page.locator('.cc-visually-hidden[aria-live="polite"]')).to_contain_text(
        "Assistant: I'm an automated assistant"
    )
    assert page.evaluate("window.__typingShown") is True
    expect(page.locator(".cc-typing")).to_be_hidden()
    screenshot(page, "page-1280")


def test_a_quick_reply_asks_its_topic_and_is_then_disabled(
    page: Page, assistant: Assistant
):
    page.goto(assistant.url)
    first = ask(page, "what can help my knee")
    reply = first.get_by_role("button", name="Inflammatory Conditions")
    reply.click()
    expect(user_messages(page).last).to_have_text("You: Inflammatory Conditions")
    second = wait_for_more_answers(page, 2)
    expect(second.locator(".cc-msg__source")).to_contain_text("Inflammatory Conditions")
    for button in first.get_by_role("button").all():
        expect(button).to_be_disabled()
    # History shows the button's title, not its payload; only the last replies stay usable.
    page.reload()
    expect(user_messages(page)).to_have_text(
        ["You: what can help my knee", "You: Inflammatory Conditions"]
    )
    expect(bot_messages(page).first.get_by_role("button").first).to_be_disabled()
    expect(bot_messages(page).last.get_by_role("button").first).to_be_enabled()


def test_reload_and_a_new_tab_continue_the_conversation(
    context: BrowserContext, page: Page, assistant: Assistant, browser: Browser
):
    page.goto(assistant.url)
    ask(page, "what is prp")
    session = stored_session(page)
    assert session and SESSION_ID.match(session), session

    page.reload()
    expect(user_messages(page)).to_have_text(["You: what is prp"])
    expect(bot_messages(page).locator(".cc-msg__source")).to_contain_text(
        ["Regenerative Medicine"]
    )
    tab = context.new_page()
    tab.goto(assistant.url)
    expect(user_messages(tab)).to_have_text(["You: what is prp"])
    assert stored_session(tab) == session
    # Both tabs stay in step: a question in one shows, with its answer, in the other.
    expect(tab.locator(".cc-status")).to_be_empty()
    ask(tab, "what helps joint pain")
    expect(user_messages(page)).to_have_text(
        ["You: what is prp", "You: what helps joint pain"]
    )
    expect(bot_messages(page)).to_have_count(2)

    other = browser.new_context()
    try:
        stranger = other.new_page()
        stranger.goto(assistant.url)
        expect(stranger.locator(".cc-status")).to_be_empty()
        stranger.wait_for_function(
            "() => Object.keys(localStorage).some(k => k.startsWith('clinic-chat:'))"
        )
        assert stored_session(stranger) not in (None, session)
        expect(user_messages(stranger)).to_have_count(0)
    finally:
        other.close()


def test_hostile_html_is_shown_as_text_and_never_runs(page: Page, assistant: Assistant):
    page.goto(assistant.url)
    for text in HOSTILE:
        ask(page, text)
    expect(user_messages(page).locator(".cc-msg__text")).to_have_text(HOSTILE)
    page.reload()
    expect(user_messages(page).locator(".cc-msg__text")).to_have_text(HOSTILE)
    assert page.evaluate("window.__pwned") is None
    assert page.locator(".cc-log img, .cc-log script").count() == 0


def test_links_in_bot_text_are_plain_safe_links_only(page: Page, assistant: Assistant):
    page.goto(assistant.url)
    links = page.evaluate(
        """() => {
            const box = ClinicChat.renderText(document.createElement("div"),
                "Read [our guide](https://example.org/guide) or https://example.org/b. " +
                "[click](javascript:alert(1)) <b>bold</b> javascript:alert(2) call 911",
                ["911"]);
            return {
                hrefs: [...box.querySelectorAll("a")].map(a => a.getAttribute("href")),
                rels: [...box.querySelectorAll("a[target]")].map(a => a.rel),
                elements: [...box.querySelectorAll("*")].map(e => e.tagName),
                text: box.textContent,
            };
        }"""
    )
    assert links["hrefs"] == [
        "https://example.org/guide",
        "https://example.org/b",
        "tel:911",
    ]
    assert all("noopener" in rel and "noreferrer" in rel for rel in links["rels"])
    assert set(links["elements"]) == {"A"}
    assert (
        "[click](javascript:alert(1)) <b>bold</b> javascript:alert(2)" in links["text"]
    )


def test_a_red_flag_is_styled_as_an_emergency_with_a_tel_link(
    page: Page, assistant: Assistant
):
    page.set_viewport_size(PHONE)
    page.goto(assistant.url)
    answer = ask(page, "i've had a fever and chills since my epidural yesterday")
    expect(answer).to_have_class(re.compile(r"\bcc-msg--emergency\b"))
    expect(answer.locator(".cc-msg__alert")).to_contain_text("Urgent")
    expect(answer.locator('a[href="tel:911"]')).to_be_visible()
    colour = answer.evaluate("e => getComputedStyle(e).borderLeftColor")
    assert colour == "rgb(163, 0, 27)", colour
    screenshot(page, "page-360-emergency")

    crisis = ask(page, "i just want to end my life")
    expect(crisis).to_have_class(re.compile(r"\bcc-msg--emergency\b"))
    expect(crisis.locator('a[href="tel:988"]')).to_be_visible()
    ordinary = ask(page, "what is prp")
    expect(ordinary).not_to_have_class(re.compile(r"\bcc-msg--emergency\b"))


def focused(page: Page) -> dict:
    return page.evaluate(
        """() => {
            const e = document.activeElement;
            const s = getComputedStyle(e);
            return {tag: e.tagName, text: (e.textContent || "").trim(),
                    label: e.getAttribute("aria-label") || (e.labels && e.labels[0]
                        && e.labels[0].textContent) || "",
                    outline: s.outlineStyle, width: parseFloat(s.outlineWidth)};
        }"""
    )


def test_keyboard_alone_reaches_and_uses_every_control(
    page: Page, assistant: Assistant
):
    page.goto(assistant.url)
    for _ in range(6):
        page.keyboard.press("Tab")
        if focused(page)["tag"] == "TEXTAREA":
            break
    now = focused(page)
    assert now["tag"] == "TEXTAREA" and now["label"] == "Your question"
    assert now["outline"] != "none" and now["width"] >= 2
    page.keyboard.type("what can help my knee")
    page.keyboard.press("Enter")
    wait_for_more_answers(page, 1)
    expect(bot_messages(page).first.get_by_role("button").first).to_be_enabled()

    page.keyboard.press("Shift+Tab")  # back from the text box to the last quick reply
    reply = focused(page)
    assert reply["tag"] == "BUTTON" and reply["text"] == "Inflammatory Conditions", (
        reply
    )
    assert reply["outline"] != "none" and reply["width"] >= 2
    page.keyboard.press("Enter")
    expect(user_messages(page).last).to_have_text("You: Inflammatory Conditions")
    wait_for_more_answers(page, 2)
    assert focused(page)["tag"] == "TEXTAREA"  # back in the box, ready to type

    page.keyboard.press("Tab")
    send = focused(page)
    assert send["tag"] == "BUTTON" and send["text"] == "Send"
    assert send["outline"] != "none"


def test_empty_is_ignored_too_long_gets_a_note_and_the_box_grows(
    page: Page, assistant: Assistant
):
    page.set_viewport_size(PHONE)
    page.goto(assistant.url)
    box = page.get_by_label("Your question")
    short_height = box.evaluate("e => e.offsetHeight")
    box.press("Enter")
    box.fill("   \n  ")
    page.get_by_role("button", name="Send").click()

    too_long = "a" * 2001
    box.fill(too_long)
    box.press("Enter")
    note = page.locator(".cc-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("limit is 2,000")
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(box).to_have_value(too_long)  # kept, for the patient to shorten
    expect(user_messages(page)).to_have_count(0)

    box.fill("line\n" * 6)
    tall_height = box.evaluate("e => e.offsetHeight")
    assert tall_height > short_height * 1.5, (short_height, tall_height)
    expect(note).to_be_hidden()

    # Had the empty messages gone out, their "came through empty" replies would come first.
    answer = ask(page, "what is prp")
    expect(user_messages(page)).to_have_count(1)
    expect(bot_messages(page)).to_have_count(1)
    expect(answer).not_to_contain_text("came through empty")
    expect(answer.locator(".cc-msg__source")).to_contain_text("Regenerative Medicine")
    screenshot(page, "page-360")


def test_when_the_server_is_unreachable_the_page_says_so_and_keeps_the_message(
    page: Page, assistant: Assistant
):
    page.goto(assistant.relayed_url)
    ask(page, "hello")
    assistant.relay.cut()
    try:
        status = page.locator(".cc-status")
        expect(status).to_contain_text("Trying again")
        box = page.get_by_label("Your question")
        box.fill("what is prp")
        box.press("Enter")
        pending = page.locator(".cc-msg--pending")
        expect(pending).to_contain_text("what is prp")
        expect(pending).to_contain_text("Not sent yet")
    finally:
        assistant.relay.start()
    expect(page.locator(".cc-status")).to_contain_text(
        "Connected again", timeout=20_000
    )
    answer = wait_for_more_answers(page, 2)
    expect(answer.locator(".cc-msg__source")).to_contain_text("Regenerative Medicine")
    expect(page.locator(".cc-msg--pending")).to_have_count(0)
    expect(user_messages(page)).to_have_text(["You: hello", "You: what is prp"])


@pytest.mark.parametrize("viewport", [PHONE, {"width": 1280, "height": 800}])
def test_axe_finds_no_serious_problems(
    browser: Browser, assistant: Assistant, viewport
):
    # axe is injected as an inline script, which the page's CSP rightly refuses.
    context = browser.new_context(viewport=viewport, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(assistant.url)
        assert serious_accessibility_problems(page) == []
        ask(page, "what can help my knee")
        ask(page, "i can't feel my legs")
        page.get_by_label("Your question").fill("a" * 2001)  # the error note shows
        assert serious_accessibility_problems(page) == []
    finally:
        context.close()
