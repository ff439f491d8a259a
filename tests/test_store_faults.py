"""The knowledge store's faults: the action server refuses a store it cannot serve, and
a rebuild while serving never shows readers a half-built store."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from sqlalchemy import create_engine, text

from bot.serve import free_port
from knowledge import model, queries
from knowledge.builder import build_store
from knowledge.environment import session_scope
from tests.conftest import ROOT


def empty_store(path, schema_version: str) -> str:
    engine = create_engine(f"sqlite:///{path}")
    model.Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO store_info (key, value) VALUES ('schema_version', :v)"),
            {"v": schema_version},
        )
    engine.dispose()
    return f"sqlite:///{path}"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("schema_version", "reason"),
    [(None, "missing"), ("0", "schema '0'"), (model.SCHEMA_VERSION, "empty")],
)
def test_action_server_refuses_a_missing_empty_or_old_store(
    tmp_path, schema_version, reason
):
    url = (
        f"sqlite:///{tmp_path / 'none.db'}"
        if schema_version is None
        else empty_store(tmp_path / "k.db", schema_version)
    )
    result = subprocess.run(
        [sys.executable, "-m", "actions"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KNOWLEDGE_DB_URL": url, "ACTION_PORT": str(free_port())},
    )
    assert result.returncode == 2
    assert reason in result.stderr and "make knowledge" in result.stderr


def test_readers_never_see_a_half_built_store(tmp_path, sources):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    assert build_store(url=url, sources_dir=sources).built
    failures: list[BaseException] = []
    done = threading.Event()

    def rebuild() -> None:
        try:
            for _ in range(3):
                assert build_store(url=url, sources_dir=sources, force=True).built
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            done.set()

    builder = threading.Thread(target=rebuild)
    builder.start()
    reads = 0
    while not done.is_set() or reads == 0:
        with session_scope(url) as session:
            queries.check_store(session)
            assert len(queries.all_sections(session)) == 11
            assert queries.section_by_ref(session, "pain-management-injections.txt#5")
        reads += 1
    builder.join()
    assert not failures, failures
    assert reads > 3  # the readers really ran during the rebuilds
