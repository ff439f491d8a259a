"""What the browser tests do on the chat: ask, read the answers, take screenshots, run axe."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

from bot.training import ROOT

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "build" / "screenshots"
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
ANSWER_WAIT_MS = 45_000


def bot_messages(page: Page) -> Locator:
    return page.locator(".cc-msg--bot")


def user_messages(page: Page) -> Locator:
    return page.locator(".cc-msg--user")


def ask(page: Page, question: str) -> Locator:
    """Type `question`, press Enter, and return the assistant's next message."""
    before = bot_messages(page).count()
    box = page.get_by_label("Your question")
    box.fill(question)
    box.press("Enter")
    expect(bot_messages(page)).to_have_count(before + 1, timeout=ANSWER_WAIT_MS)
    return bot_messages(page).nth(before)


def wait_for_more_answers(page: Page, count: int) -> Locator:
    expect(bot_messages(page)).to_have_count(count, timeout=ANSWER_WAIT_MS)
    return bot_messages(page).nth(count - 1)


def screenshot(page: Page, name: str) -> Path:
    """Save a screenshot under build/screenshots/ (the tests' artifacts)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def serious_accessibility_problems(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical WCAG 2.1 A/AA violations on the page (with shadow DOM)."""
    if page.evaluate("typeof window.axe") == "undefined":
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {
                runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                                "best-practice"]},
            });
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(" ")),
            }));
        }"""
    )
    return [v for v in result if v["impact"] in {"serious", "critical"}]
