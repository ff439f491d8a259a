"""The staff console at /staff: triage, transcripts, call-backs, "ask", documents, more.

Also the insights and the emergencies (staff.insights).

`install(app)` adds it to the Rasa server (bot.server). Accounts are made on the
command line (`python -m bot staff add NAME`); see docs/staff-console.md.
"""

from __future__ import annotations

from typing import Any


def install(app: Any) -> None:
    """Add the console's routes to the Sanic app."""
    from staff import documents, insights, views

    app.blueprint(views.blueprint())
    app.blueprint(documents.blueprint())
    app.blueprint(insights.blueprint())
