"""Phone numbers and e-mail addresses never reach a log handler (clinic.privacy)."""

from __future__ import annotations

import logging

import pytest

from clinic import privacy


@pytest.mark.parametrize(
    "number",
    [
        "(555) 201-3344",
        "555-201-3344",
        "555.201.3344",
        "5552013344",
        "+1 555 201 3344",
        "1-555-201-3344",
        "+44 20 7946 0958",
        "201-3344",
    ],
)
def test_phone_numbers_are_masked(number):
    masked = privacy.mask(f"call me on {number} after six")
    assert masked == "call me on [phone] after six"


@pytest.mark.parametrize(
    "address", ["jane.doe@example.com", "j+clinic@mail.example.co.uk", "a_b@x-y.org"]
)
def test_email_addresses_are_masked(address):
    assert privacy.mask(f"write to {address}.") == "write to [email]."


@pytest.mark.parametrize(
    "text",
    [
        "listening on http://127.0.0.1:5055/webhook",
        "2026-11-24 21:19:52 INFO rasa.cli.train",
        "trained in 49.2s, 60 epochs, version 3.6.21",
        "section 5 of 11",
    ],
)
def test_ordinary_log_lines_are_left_alone(text):
    assert privacy.mask(text) == text


def test_installed_factory_masks_args_and_tracebacks(caplog):
    privacy.install()
    logger = logging.getLogger("tests.privacy")
    with caplog.at_level(logging.INFO, logger="tests.privacy"):
        logger.info("patient %s left %s", "jane@example.com", "555-201-3344")
        try:
            raise ValueError("bad number 555-201-3344")
        except ValueError:
            logger.exception("failed for %s", "jane@example.com")
    text = caplog.text
    assert "jane@example.com" not in text and "555-201-3344" not in text
    assert "patient [email] left [phone]" in text
    assert "ValueError: bad number [phone]" in text


def test_the_filter_masks_records_made_elsewhere():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "mail %s", ("a@b.org",), None
    )
    assert privacy.PrivacyFilter().filter(record)
    assert record.getMessage() == "mail [email]"
