"""The call-back form's rules: what counts as a name, a phone number, a time and consent.

The form's validator (actions.actions.ValidateCallbackForm) asks these functions and the
submit action stores the result through records. No phrasing here: a value that cannot
be used comes back as None, and the form re-asks with the domain's wording for that slot.
Nothing here logs what the patient typed (names and phone numbers are personal data).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import phonenumbers
from sqlalchemy.orm import Session

from clinic import settings
from clinic.intents import EMERGENCY_INTENTS
from records.models import CallbackRequest

MAX_NAME_CHARS = 100
MAX_NAME_WORDS = 6
MAX_TIME_CHARS = 200
#: Leading phrases patients put before their name ("my name is Ann", "it's Bob").
NAME_LEADS = re.compile(
    r"^\s*(?:(?:hi|hello|hey|hola)[,!.]?\s+)?(?:my name is|my name's|name is|name's|"
    r"i am|i'm|it's|its|this is|call me|me llamo|mi nombre es|soy)(?:\s+|$)",
    re.IGNORECASE,
)
#: Characters a name may hold besides letters and combining marks.
NAME_PUNCTUATION = frozenset(" '\u2019-.,")
YES_WORDS = frozenset(
    {"yes", "y", "yeah", "yep", "yup", "ok", "okay", "sure", "agree"}
    | {"si", "claro", "vale", "acuerdo", "bueno"}  # Spanish, accents folded ("sí")
)
NO_WORDS = frozenset({"no", "n", "nope", "nah", "nunca"})
#: Intents whose message means an emergency (bot.nlu.RedFlagDetector sets them).
#: The slots of callback_form, in the order it asks them.
FORM_SLOTS = ("callback_name", "callback_phone", "callback_time", "callback_consent")


def clean_text(value: Any, limit: int) -> str | None:
    """One line of printable text of at most `limit` characters, or None."""
    if not isinstance(value, str):
        return None
    text = "".join(ch for ch in value if ch.isprintable())
    text = " ".join(text.split())
    if not text or len(text) > limit:
        return None
    return text


def normalise_name(value: Any) -> str | None:
    """A person's name as typed, without a lead-in; None if it does not look like one.

    Letters in any script, spaces, apostrophes, hyphens and dots; at most six words. No
    digits or markup, so a phone number or a pasted snippet is not taken for a name.
    """
    text = clean_text(value, MAX_NAME_CHARS * 2)
    if text is None:
        return None
    text = NAME_LEADS.sub("", text).strip(" .,!")
    if not text or len(text) > MAX_NAME_CHARS or len(text.split()) > MAX_NAME_WORDS:
        return None
    if not any(ch.isalpha() for ch in text):
        return None
    allowed = all(
        ch.isalpha()
        or unicodedata.category(ch).startswith("M")
        or ch in NAME_PUNCTUATION
        for ch in text
    )
    return text if allowed else None


def normalise_phone(value: Any, region: str | None = None) -> str | None:
    """The first valid phone number in the text, in E.164 (+12125550147), or None.

    `phonenumbers` finds and validates it, so "call me on (212) 555-0147 pls" and
    "+44 20 7946 0958" both work, and a number that cannot exist is refused. Numbers
    without a country code are read in the clinic's region (CLINIC_PHONE_REGION).
    """
    text = clean_text(value, 200)
    if text is None:
        return None
    region = region or settings.clinic_phone_region()
    for match in phonenumbers.PhoneNumberMatcher(text, region):
        if phonenumbers.is_valid_number(match.number):
            return phonenumbers.format_number(
                match.number, phonenumbers.PhoneNumberFormat.E164
            )
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_time(value: Any) -> str | None:
    """The best time to call, as the patient put it (free text, one short line)."""
    text = clean_text(value, MAX_TIME_CHARS)
    if text is None or not any(ch.isalnum() for ch in text):
        return None
    return text


def normalise_consent(value: Any) -> bool | None:
    """True or False from the yes/no intents (or a plain yes/no word), else None."""
    if isinstance(value, bool):
        return value
    text = clean_text(value, 40)
    if text is None:
        return None
    folded = unicodedata.normalize("NFD", text.lower())
    words = set(re.findall(r"[a-z]+", folded.encode("ascii", "ignore").decode()))
    if words & YES_WORDS and not words & NO_WORDS:
        return True
    if words & NO_WORDS and not words & YES_WORDS:
        return False
    return None


def urgency(intents: Iterable[str | None]) -> str:
    """The conversation's urgency for the request: emergency if a red flag was reported."""
    return "emergency" if EMERGENCY_INTENTS & set(intents) else "callback"


@dataclass(frozen=True)
class CallbackDetails:
    """A completed form, ready to store."""

    conversation_id: str
    name: str
    phone: str
    best_time: str
    consent: bool
    urgency: str
    category: str | None


def store_request(session: Session, details: CallbackDetails) -> int:
    """Store a call-back request (status `new`) and return its id."""
    request = CallbackRequest(
        conversation_id=details.conversation_id,
        name=details.name,
        phone=details.phone,
        best_time=details.best_time,
        consent=details.consent,
        urgency=details.urgency,
        category=details.category,
        status="new",
    )
    session.add(request)
    session.flush()
    return int(request.id)
