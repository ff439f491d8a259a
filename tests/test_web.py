"""The chat page's files and settings without a browser (tests/browser drives the real thing)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from bot import web


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if self.tags and self.tags[-1][0] == "script":
            self.script_text += data.strip()


def test_the_page_needs_no_inline_script_or_style_so_the_csp_can_forbid_them():
    parser = Tags()
    parser.feed(web.PAGE.read_text())
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert scripts and all(
        attrs.get("src", "").startswith("/assets/") for attrs in scripts
    )
    assert parser.script_text == ""
    assert not any(tag == "style" for tag, _ in parser.tags)
    for _, attrs in parser.tags:
        assert "style" not in attrs
        assert not [name for name in attrs if name.startswith("on")]
    policy = web.content_security_policy()
    assert "script-src 'self';" in policy and "style-src 'self';" in policy


def test_every_asset_the_pages_load_is_on_the_allow_list():
    parser = Tags()
    parser.feed(web.PAGE.read_text())
    loaded = [
        (attrs.get("src") or attrs.get("href") or "")
        for tag, attrs in parser.tags
        if tag in {"script", "link"} and attrs.get("rel") != "icon"
    ]
    names = [path.removeprefix("/assets/") for path in loaded]
    assert names and set(names) <= set(web.ASSETS)
    embed = (web.WEB_DIR / "embed.js").read_text()
    assert set(re.findall(r'"/assets/([\w.]+)"', embed)) <= set(web.ASSETS)


def test_the_page_settings_come_from_the_clinics_settings(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("CLINIC_NAME", "Riverside Pain Clinic")
    monkeypatch.setenv("CLINIC_PHONE", "(555) 201-3344")
    monkeypatch.setenv("MAX_MESSAGE_CHARS", "500")
    config = web.page_config()
    assert config["clinic_name"] == "Riverside Pain Clinic"
    assert config["clinic_phone"] == "(555) 201-3344"
    assert config["max_message_chars"] == 500
    assert json.loads(json.dumps(config)) == config


def test_the_front_end_packages_are_pinned_by_a_lock_file():
    package = json.loads((web.WEB_DIR / "package.json").read_text())
    lock = json.loads((web.WEB_DIR / "package-lock.json").read_text())
    client = lock["packages"]["node_modules/socket.io-client"]["version"]
    assert client.startswith("4.")  # Engine.IO 4, as python-socketio 5 speaks
    assert package["dependencies"]["socket.io-client"] == client
    assert "axe-core" in package["devDependencies"]
    assert "axe-core" not in package.get("dependencies", {})
