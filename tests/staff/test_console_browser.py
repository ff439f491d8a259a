"""The staff console in a real browser (Debian's Chromium driven by Playwright).

A patient has just reported a red flag on the chat page and asked for a call back with
the chat's form; a nurse logs in, finds that conversation at the top of the triage list,
opens it and marks the call-back done.
"""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Browser, Page, expect

# The browser tests' Chromium, profile and error-checking page (tests/browser).
from tests.browser.conftest import browser, context, page  # noqa: F401
from tests.browser.pages import DESKTOP, ask, serious_accessibility_problems
from tests.staff.conftest import PASSWORD
from tests.staff.test_console_http import add_callback

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]


def test_nurse_sees_the_urgent_conversation_first_and_marks_its_callback_done(
    console,
    browser: Browser,  # noqa: F811
    page: Page,  # noqa: F811
) -> None:
    # A patient on the chat page (their own browser profile) reports a red flag, then
    # asks for a call back through the chat's form.
    patient = browser.new_context(viewport=DESKTOP)
    try:
        chat = patient.new_page()
        chat.goto(f"{console.base}/")
        answer = ask(chat, "I've had a fever and chills since my epidural yesterday")
        expect(answer).to_contain_text("emergency")
        expect(ask(chat, "can someone call me back?")).to_contain_text("what name")
        expect(ask(chat, "Pat Doe")).to_contain_text("phone number")
        expect(ask(chat, "(212) 555-0188")).to_contain_text("best time")
        expect(ask(chat, "weekday mornings")).to_contain_text("yes or no")
        ask(chat, "yes")
    finally:
        patient.close()
    calm = f"patient-{uuid.uuid4().hex[:12]}"
    console.say(calm, "what helps my knee?")  # more recent, but not urgent
    # The chat's conversation id is the server's; the form stored its request.
    [(urgent, callback)] = console.sql(
        "SELECT conversation_id, id FROM callback_requests WHERE phone = '+12125550188'"
    )

    page.goto(f"{console.base}/staff/")
    expect(page).to_have_url(f"{console.base}/staff/login?next=/staff/")
    page.get_by_label("Name").fill("nurse")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{console.base}/staff/")

    first = page.locator("table.triage tbody tr").first
    expect(first).to_have_attribute("data-conversation", urgent)
    expect(first.locator(".badge")).to_have_text("emergency")
    expect(page.locator(f'tr[data-conversation="{calm}"] .badge')).to_have_text(
        "answered"
    )

    first.get_by_role("link").click()
    expect(page.get_by_text("fever and chills since my epidural")).to_be_visible()
    row = page.locator(f'tr[data-callback="{callback}"]')
    expect(row.locator(".badge")).to_have_text("new")
    row.get_by_role("button", name="Mark closed").click()
    expect(page).to_have_url(f"{console.base}/staff/conversations/{urgent}")
    expect(page.locator(f'tr[data-callback="{callback}"] .badge')).to_have_text(
        "closed"
    )
    assert console.sql("SELECT status FROM callback_requests WHERE id=?", callback) == [
        ("closed",)
    ]

    # The list reloads itself: a new emergency shows up on top without a click.
    page.get_by_role("link", name="Triage").click()
    newest = f"patient-{uuid.uuid4().hex[:12]}"
    console.say(newest, "I want to end my life")
    expect(page.locator("table.triage tbody tr").first).to_have_attribute(
        "data-conversation", newest, timeout=20_000
    )

    page.get_by_role("link", name="Call-backs").click()
    expect(page.locator(f'tr[data-callback="{callback}"] .badge')).to_have_text(
        "closed"
    )
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{console.base}/staff/login")
    page.goto(f"{console.base}/staff/callbacks")
    expect(page).to_have_url(f"{console.base}/staff/login?next=/staff/callbacks")


def test_console_pages_have_no_serious_accessibility_problems(
    console,
    browser: Browser,  # noqa: F811
) -> None:
    patient = f"patient-{uuid.uuid4().hex[:12]}"
    console.say(patient, "how much does a nerve block cost")
    add_callback(console, patient)
    # axe is injected as a script, which the console's CSP (rightly) refuses.
    profile = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    try:
        page = profile.new_page()
        page.goto(f"{console.base}/staff/login")
        assert serious_accessibility_problems(page) == []
        page.get_by_label("Name").fill("nurse")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        for path in [
            "/staff/",
            f"/staff/conversations/{patient}",
            "/staff/callbacks",
            "/staff/documents",
        ]:
            page.goto(f"{console.base}{path}")
            assert serious_accessibility_problems(page) == [], path
        page.goto(f"{console.base}/staff/ask")
        page.get_by_label("A patient's question").fill("what is PRP?")
        page.get_by_role("button", name="Ask").click()
        expect(page.locator(".answer")).to_contain_text("Regenerative Medicine")
        assert serious_accessibility_problems(page) == []
    finally:
        profile.close()
