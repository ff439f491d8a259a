"""One running assistant (`python -m bot run`) for the staff console's HTTP and browser tests.

It has its own conversations database, sources folder (a copy of knowledge/sources),
knowledge store and uploads folder in a temporary folder, so that the Documents page's
tests add leaflets there only; accounts are made with the real command line
(`python -m bot staff add NAME --password-stdin`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot.serve import free_port, start_process, stop_process, wait_until_ready
from bot.training import model_is_current
from knowledge import settings
from knowledge.builder import build_store

PASSWORD = "a long test password 42"


@dataclass
class Console:
    base: str
    env: dict[str, str]
    db: Path
    log: Path
    sources: Path
    store: Path
    uploads: Path

    def add_account(
        self, name: str, password: str = PASSWORD
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bot", "staff", "add", name, "--password-stdin"],
            input=password + "\n",
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def say(self, sender: str, text: str) -> list[dict]:
        reply = httpx.post(
            f"{self.base}/webhooks/rest/webhook",
            json={"sender": sender, "message": text},
            timeout=60,
        )
        reply.raise_for_status()
        return reply.json()

    def sql(self, query: str, *params: object) -> list[tuple]:
        with sqlite3.connect(self.db) as connection:
            return connection.execute(query, params).fetchall()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=60, follow_redirects=False)

    def login(
        self, name: str, password: str = PASSWORD, client: httpx.Client | None = None
    ):
        client = client or self.client()
        form = client.get("/staff/login")
        response = client.post(
            "/staff/login",
            data={"csrf": csrf_of(form.text), "name": name, "password": password},
        )
        return client, response


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


@pytest.fixture(scope="session")
def console(tmp_path_factory) -> Console:
    if not model_is_current():
        pytest.fail(
            "the trained model is missing or stale: run `make model` (make test does)"
        )
    folder = tmp_path_factory.mktemp("staff")
    db = folder / "conversations.db"
    sources = folder / "sources"
    shutil.copytree(settings.SOURCES_DIR, sources)
    store = folder / "knowledge.db"
    assert build_store(url=f"sqlite:///{store}", sources_dir=sources).built
    env = {
        **os.environ,
        "KNOWLEDGE_DB_URL": f"sqlite:///{store}",
        "KNOWLEDGE_SOURCES_DIR": str(sources),
        "STAFF_UPLOADS_DIR": str(folder / "uploads"),
        "CONVERSATIONS_DB": str(db),
        "ACTION_PORT": str(free_port()),
        "RASA_PORT": str(free_port()),
        "RASA_INTERFACE": "127.0.0.1",
        "RASA_TELEMETRY_ENABLED": "false",
        "STAFF_REFRESH_SECONDS": "2",
        # As behind the scaled profile's nginx: the tests may say, as a proxy on this
        # machine would, which address a request came from (X-Forwarded-For).
        "TRUSTED_PROXIES": "127.0.0.1",
    }
    env.pop("CONVERSATIONS_DB_URL", None)
    env.pop("STAFF_COOKIE_SECURE", None)
    log = db.parent / "server.log"
    output = open(log, "wb")  # noqa: SIM115
    process = start_process(
        [sys.executable, "-m", "bot", "run"], env=env, output=output
    )
    try:
        assert wait_until_ready(int(env["RASA_PORT"]), timeout=240), "no server"
        console = Console(
            f"http://127.0.0.1:{env['RASA_PORT']}",
            env,
            db,
            log,
            sources,
            store,
            folder / "uploads",
        )
        created = console.add_account("nurse")
        assert created.returncode == 0, created.stderr
        yield console
    finally:
        stop_process(process, signal.SIGINT, timeout=30)
        output.close()
