"""The console's CSV downloads: cells no spreadsheet runs as formulas, contacts masked."""

from __future__ import annotations

import csv
import io

from sanic import response
from sanic.response import HTTPResponse

from clinic import privacy
from records import triage
from staff.web import local_time


def redact(text: str) -> str:
    """The question with e-mail addresses and phone numbers replaced (as in the logs)."""
    return privacy.mask(text)


def csv_cell(value: object) -> str:
    """A cell no spreadsheet will run as a formula (= + - @, tab, CR prefixed by ')."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def csv_download(text: str, name: str) -> HTTPResponse:
    """A CSV file to download, not kept by the browser's cache."""
    return response.text(
        text,
        content_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def unanswered_csv(rows: list[tuple[str, triage.Exchange]]) -> str:
    """The export: one line per missed question."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "asked_at",
            "conversation",
            "question",
            "answer_type",
            "category",
            "intent",
            "confidence",
        ]
    )
    for sender, exchange in rows:
        writer.writerow(
            [
                csv_cell(local_time(exchange.timestamp)),
                csv_cell(sender),
                csv_cell(redact(exchange.text or "")),
                csv_cell(exchange.answer_type),
                csv_cell(exchange.category),
                csv_cell(exchange.intent),
                csv_cell(
                    f"{exchange.confidence:.2f}"
                    if exchange.confidence is not None
                    else ""
                ),
            ]
        )
    return buffer.getvalue()
