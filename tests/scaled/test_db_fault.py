"""The conversations database stops and restarts under a running server.

A private PostgreSQL cluster (initdb into a temporary folder, its own port) holds the
tracker store, so stopping it touches nothing else on the machine. While it is down the
patient is told clearly (no empty reply), the log says what happened without the
patient's words, a restart within the retry window is bridged, and service resumes
without restarting the Rasa server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.scaled import audit, profile_environment
from bot import scaled
from bot.serve import free_port

from .conftest import running_profile

pytestmark = [pytest.mark.scaled, pytest.mark.e2e, pytest.mark.slow]

PG_BIN = Path("/usr/lib/postgresql/15/bin")
RETRY_SECONDS = 8  # long enough to bridge a restart on a busy machine


class PrivatePostgres:
    """A throw-away PostgreSQL cluster that this test may stop and start."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="clinic-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        if os.geteuid() == 0:  # initdb refuses root: run it as the postgres user
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(
            PG_BIN / "initdb",
            "-D",
            self.data,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def _run(self, *command: object) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*prefix, *map(str, command)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            PG_BIN / "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.folder / "log",
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL 15 binaries not found in {PG_BIN}")
    database = PrivatePostgres()
    database.start()
    try:
        yield database
    finally:
        database.remove()


@pytest.fixture(scope="module")
def server(
    private_pg: PrivatePostgres,
    profile_db: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[scaled.Cluster, Path]]:
    """One Rasa server on the private cluster; knowledge stays on the shared server."""
    env = profile_environment(private_pg.url)
    env.update(KNOWLEDGE_DB_URL=profile_db, TRACKER_DB_RETRY_SECONDS=str(RETRY_SECONDS))
    env["LOG_LEVEL"] = "INFO"
    log = tmp_path_factory.mktemp("fault") / "server.log"
    with running_profile(env, log) as cluster:
        yield cluster, log


def say(url: str, sender: str, text: str) -> list[dict[str, Any]]:
    response = httpx.post(
        f"{url}/webhooks/rest/webhook",
        json={"sender": sender, "message": text},
        timeout=60,
    )
    assert response.status_code == 200
    return list(response.json())


def answer_of(reply: list[dict[str, Any]]) -> dict[str, Any]:
    answers = [
        part["custom"]["answer"]
        for part in reply
        if "answer" in (part.get("custom") or {})
    ]
    assert len(answers) == 1, reply
    return dict(answers[0])


def test_database_outage_is_reported_bridged_and_recovered(
    server: tuple[scaled.Cluster, Path], private_pg: PrivatePostgres
) -> None:
    cluster, log = server
    url = f"http://127.0.0.1:{cluster.rasa_ports[0]}"
    sender = "fault-patient"
    before = say(url, sender, "what is prp")
    assert answer_of(before)["type"] == "knowledge"

    # Down for longer than the retry window: the patient is told, nothing is silent.
    private_pg.stop()
    while_down = say(url, sender, "what helps my knee")
    assert answer_of(while_down)["type"] == "handoff"
    assert "technical problem" in " ".join(p.get("text", "") for p in while_down)

    # Down, then back within the window: the waiting message is answered normally.
    bridged: dict[str, list[dict[str, Any]]] = {}
    waiting = threading.Thread(
        target=lambda: bridged.setdefault(
            "reply", say(url, sender, "is it better than surgery")
        )
    )
    waiting.start()
    threading.Event().wait(1.0)
    private_pg.start()
    waiting.join(60)
    assert answer_of(bridged["reply"])["type"] != "handoff", bridged

    # And afterwards, with no server restarted.
    after = say(url, sender, "do you do acupuncture")
    assert answer_of(after)["type"] in {"not_covered", "knowledge", "clarify"}
    assert cluster.alive()

    counts = audit(
        private_pg.url,
        {
            sender: {
                "what is prp": before,
                "is it better than surgery": bridged["reply"],
                "do you do acupuncture": after,
            }
        },
    )
    assert counts["stored_once"] == 3 and counts["mismatched"] == 0, counts
    assert counts["duplicated"] == counts["lost"] == counts["out_of_order"] == 0, counts

    logged = log.read_text(errors="replace")
    assert "conversation database unavailable" in logged
    assert "message not handled, patient told to retry" in logged
    assert "what helps my knee" not in logged
