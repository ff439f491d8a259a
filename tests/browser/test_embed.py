"""The widget on another site: one script tag, CORS from ALLOWED_ORIGINS (conftest.py).

Two plain "clinic website" pages carry the snippet: one from the allowed origin, where the
chat works; one from an origin not allowed, where the server refuses the socket and REST.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Assistant
from tests.browser.pages import (
    DESKTOP,
    PHONE,
    ask,
    bot_messages,
    screenshot,
    serious_accessibility_problems,
)

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SITE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Riverside Pain Clinic</title></head>
<body><main><h1>Riverside Pain Clinic</h1><p>Opening hours: Monday to Friday.</p></main>
{snippet}
</body></html>
"""


def snippet(server: str) -> str:
    """The tag the README tells the clinic's web person to paste."""
    return (
        f'<script src="{server}/assets/embed.js" defer data-server="{server}" '
        'data-clinic-name="Riverside Pain Clinic" data-colour="#1d6b46"></script>'
    )


@pytest.fixture()
def site(assistant: Assistant) -> str:
    (assistant.sites_dir / "index.html").write_text(
        SITE.format(snippet=snippet(assistant.url))
    )
    return "/index.html"


def rest_from(page: Page, server: str) -> str:
    """What a script of this page gets when it calls the REST channel: ok or refused."""
    return page.evaluate(
        """async (server) => {
            try {
                const r = await fetch(server + "/webhooks/rest/webhook", {
                    method: "POST", headers: {"content-type": "application/json"},
                    body: JSON.stringify({sender: "embed-test", message: "hello"})});
                return r.ok ? "ok" : "status " + r.status;
            } catch (e) { return "refused"; }
        }""",
        server,
    )


def open_widget(page: Page) -> None:
    launcher = page.get_by_role("button", name="Chat with Riverside Pain Clinic")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    launcher.click()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(
        page.get_by_role("dialog", name="Chat with Riverside Pain Clinic")
    ).to_be_visible()


def test_the_widget_works_on_an_allowed_site(
    page: Page, assistant: Assistant, site: str
):
    page.goto(assistant.allowed_site + site)
    launcher = page.get_by_role("button", name="Chat with Riverside Pain Clinic")
    expect(launcher).to_have_css("background-color", "rgb(29, 107, 70)")  # data-colour
    open_widget(page)
    expect(page.get_by_label("Your question")).to_be_focused()
    answer = ask(page, "what can help my knee")
    expect(answer.locator(".cc-msg__source")).to_have_text(
        "Source: clinic guide, section 5 \u2014 Joint Pain"
    )
    screenshot(page, "embed-1280")
    assert rest_from(page, assistant.url) == "ok"
    assert websocket_from(page, assistant.url) == "connected"

    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(launcher).to_be_focused()
    page.reload()  # the same conversation on the clinic's site too
    open_widget(page)
    expect(bot_messages(page)).to_have_count(1)


def test_a_site_not_in_allowed_origins_is_refused(
    page: Page, assistant: Assistant, site: str
):
    page.goto(assistant.refused_site + site)
    open_widget(page)
    expect(page.locator(".cc-status")).to_contain_text("Can't reach")
    box = page.get_by_label("Your question")
    box.fill("what is prp")
    box.press("Enter")
    expect(page.locator(".cc-msg--pending")).to_contain_text("Not sent yet")
    assert rest_from(page, assistant.url) == "refused"
    expect(bot_messages(page)).to_have_count(0)
    # Browsers do not apply CORS to WebSockets: the server itself must say no.
    assert websocket_from(page, assistant.url) == "refused"


def websocket_from(page: Page, server: str) -> str:
    """Whether a script of this page gets a socket.io connection over WebSocket only."""
    return page.evaluate(
        """(server) => new Promise((resolve) => {
            const socket = io(server, {transports: ["websocket"], reconnection: false});
            socket.on("connect", () => { socket.close(); resolve("connected"); });
            socket.on("connect_error", () => resolve("refused"));
        })""",
        server,
    )


def test_the_widget_on_a_phone_and_axe(
    browser: Browser, assistant: Assistant, site: str
):
    context = browser.new_context(viewport=PHONE, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(assistant.allowed_site + site)
        open_widget(page)
        ask(page, "what can help my knee")
        panel = page.locator(".cc-panel").bounding_box()
        assert panel and panel["width"] == PHONE["width"], (
            panel
        )  # full screen on a phone
        screenshot(page, "embed-360")
        assert serious_accessibility_problems(page) == []
        page.set_viewport_size(DESKTOP)
        assert serious_accessibility_problems(page) == []
    finally:
        context.close()


def test_a_colour_too_pale_or_mid_toned_for_readable_text_is_not_used(
    page: Page, assistant: Assistant
):
    server = assistant.url
    (assistant.sites_dir / "pale.html").write_text(
        SITE.format(snippet=snippet(server).replace("#1d6b46", "#777777"))
    )
    page.goto(assistant.allowed_site + "/pale.html")
    launcher = page.get_by_role("button", name=re.compile("Chat with"))
    expect(launcher).to_be_visible()
    expect(launcher).not_to_have_css("background-color", "rgb(119, 119, 119)")
