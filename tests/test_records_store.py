"""records.store creates the tables of the packages above it without importing them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from knowledge.settings import PROJECT_ROOT

LATE_DECLARATION = """
import sys
import sqlalchemy as sa
from records import store

url = sys.argv[1]
engine = store.get_engine(url)  # made before the console's models are imported
assert "staff" not in sys.modules, "records imported the staff console"
tables = set(sa.inspect(engine).get_table_names())
assert "callback_requests" in tables and "staff_accounts" not in tables, tables

from staff import auth
from staff.models import StaffAccount

with store.session_scope(url) as session:
    auth.add_account(session, "nurse", "a long enough password")
with store.session_scope(url) as session:
    print(session.query(StaffAccount).count())
"""


def test_tables_declared_after_the_engine_are_created_at_the_next_session(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    result = subprocess.run(
        [sys.executable, "-c", LATE_DECLARATION, url],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "1"


def test_servers_starting_together_on_a_fresh_postgresql_all_get_their_tables() -> None:
    """Rasa and action servers create the records tables at once on a new database; the
    loser of each CREATE TABLE race retries instead of failing its server's start."""
    import threading

    import sqlalchemy as sa

    from bench.scaled import fresh_database
    from records import store

    errors: list[BaseException] = []
    with fresh_database("pytest") as url:
        engines = [sa.create_engine(url, future=True) for _ in range(6)]
        start = threading.Barrier(len(engines))

        def create(engine: sa.engine.Engine) -> None:
            start.wait()
            try:
                store.create_tables(engine)
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=create, args=(e,)) for e in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        tables = set(sa.inspect(engines[0]).get_table_names())
        for engine in engines:
            engine.dispose()
    assert errors == []
    assert {"callback_requests", "conversation_summaries"} <= tables
