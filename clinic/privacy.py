"""Keep patients' phone numbers and e-mail addresses out of the logs.

Patients type their number or address into the chat (for a call back, or just because).
Nothing in the project logs message text at the default level, but libraries do at
debug level or in an exception's message, and a log file outlives the conversation. So
both servers install `install()` at start-up: a log-record factory that masks every
record's formatted message and traceback before any handler sees it. A factory (not a
handler filter) because Sanic and Rasa replace handlers after start-up; every record,
from every logger, is made by the factory.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# North-American style numbers with or without country code, brackets, dots, dashes or
# spaces (555-201-3344, (555) 201-3344, +1 555 201 3344, 5552013344), international
# numbers (+44 20 7946 0958) and 7-digit local numbers written with a separator (201-3344).
PHONE = re.compile(
    r"(?<![\w.])(?:"
    r"\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5}"
    r"|(?:1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-]?)\d{3}[\s.-]?\d{4}"
    r"|\d{3}[\s.-]\d{4}"
    r")(?![\w.])"
)
EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"


def mask(text: str) -> str:
    """`text` with e-mail addresses and phone numbers replaced by placeholders."""
    return PHONE.sub(PHONE_MASK, EMAIL.sub(EMAIL_MASK, text))


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask a record in place: its message (args merged in) and its traceback."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: keep Python's own error reporting
        return record
    masked = mask(message)
    if masked != message or record.args:
        record.msg, record.args = masked, None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = mask("".join(traceback.format_exception(*record.exc_info)))
        record.exc_text = record.exc_text.rstrip("\n")
    elif record.exc_text:
        record.exc_text = mask(record.exc_text)
    if record.stack_info:
        record.stack_info = mask(record.stack_info)
    return record


class PrivacyFilter(logging.Filter):
    """The same masking as a filter, for handlers set up outside this process's start."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record; never drop it."""
        mask_record(record)
        return True


_installed = False


def install() -> None:
    """Mask every log record this process makes from now on (idempotent)."""
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return mask_record(make_record(*args, **kwargs))

    logging.setLogRecordFactory(masked_record)
    _installed = True
