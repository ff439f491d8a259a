"""Browser tests' fixtures: the assistant as `make run` starts it, Chromium, two other sites.

The server is `python -m bot run` on free ports with a temporary conversations database
(like tests/test_e2e.py), with ALLOWED_ORIGINS naming one of two plain "clinic website"
pages served from other ports; the other one is not allowed. A relay in front of the
server lets a test cut the network. Chromium is Debian's (/usr/bin/chromium, which
`make chromium` installs); Playwright drives it headless.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from bot.serve import free_port, start_process, stop_process, wait_until_ready
from bot.training import ROOT, model_is_current
from tests.browser.netcut import Relay
from tests.browser.pages import CHROMIUM, DESKTOP


@dataclass
class Assistant:
    """Where the running assistant and the test sites are."""

    url: str  # the server itself
    relayed_url: str  # the same server through the relay
    relay: Relay
    allowed_site: str
    refused_site: str
    sites_dir: Path


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_folder(folder: Path) -> tuple[ThreadingHTTPServer, str]:
    port = free_port()
    handler = functools.partial(QuietHandler, directory=str(folder))
    httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def assistant(
    store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Assistant]:
    if not model_is_current():
        pytest.fail(
            "the trained model is missing or stale: run `make model` (make test does)"
        )
    if not (ROOT / "web" / "node_modules" / "socket.io-client").is_dir():
        pytest.fail("web/node_modules is missing: run `make web` (make test does)")
    sites_dir = tmp_path_factory.mktemp("sites")
    allowed_httpd, allowed_site = serve_folder(sites_dir)
    refused_httpd, refused_site = serve_folder(sites_dir)
    rasa_port = free_port()
    env = {
        **os.environ,
        "KNOWLEDGE_DB_URL": store_url,
        "CONVERSATIONS_DB": str(tmp_path_factory.mktemp("conversations") / "c.db"),
        "ACTION_PORT": str(free_port()),
        "RASA_PORT": str(rasa_port),
        "RASA_INTERFACE": "127.0.0.1",
        "CLINIC_PHONE": "(555) 123-9876",
        "EMERGENCY_NUMBER": "911",
        "ALLOWED_ORIGINS": allowed_site,
    }
    log = open(tmp_path_factory.mktemp("logs") / "server.log", "wb")  # noqa: SIM115
    process = start_process([sys.executable, "-m", "bot", "run"], env=env, output=log)
    relay = Relay(free_port(), rasa_port)
    try:
        if not wait_until_ready(rasa_port, timeout=240):
            pytest.fail("the assistant did not start")
        relay.start()
        yield Assistant(
            url=f"http://127.0.0.1:{rasa_port}",
            relayed_url=f"http://127.0.0.1:{relay.port}",
            relay=relay,
            allowed_site=allowed_site,
            refused_site=refused_site,
            sites_dir=sites_dir,
        )
    finally:
        relay.cut()
        stop_process(process, signal.SIGINT, timeout=30)
        log.close()
        allowed_httpd.shutdown()
        refused_httpd.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (make test does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture()
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (its own localStorage, so its own conversation)."""
    ctx = browser.new_context(viewport=DESKTOP)
    ctx.set_default_timeout(30_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture()
def page(context: BrowserContext) -> Iterator[Page]:
    """A page that fails the test on any uncaught script error (e.g. a CSP violation)."""
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    yield opened
    assert not errors, errors
