"""The staff console in a real browser (Debian's Chromium driven by Playwright).

A patient has just reported a red flag (through the running assistant) and asked for a
call back; a nurse logs in, finds that conversation at the top of the triage list, opens
it and marks the call-back done.
"""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

# The browser tests' Chromium, profile and error-checking page (tests/browser).
from tests.browser.conftest import browser, context, page  # noqa: F401
from tests.staff.conftest import PASSWORD
from tests.staff.test_console_http import add_callback

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]


def test_nurse_sees_the_urgent_conversation_first_and_marks_its_callback_done(
    console,
    page: Page,  # noqa: F811
) -> None:
    urgent = f"patient-{uuid.uuid4().hex[:12]}"
    calm = f"patient-{uuid.uuid4().hex[:12]}"
    reply = console.say(
        urgent, "I've had a fever and chills since my epidural yesterday"
    )
    assert any(
        m.get("custom", {}).get("answer", {}).get("type") == "emergency" for m in reply
    )
    callback = add_callback(console, urgent)  # as the chat's call-back form stores it
    console.say(calm, "what helps my knee?")  # more recent, but not urgent

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

    page.get_by_role("link", name="Call-backs").click()
    expect(page.locator(f'tr[data-callback="{callback}"] .badge')).to_have_text(
        "closed"
    )
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{console.base}/staff/login")
    page.goto(f"{console.base}/staff/callbacks")
    expect(page).to_have_url(f"{console.base}/staff/login?next=/staff/callbacks")
