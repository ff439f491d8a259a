"""Helpers of the tests that start the servers: their environment, a REST turn."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from bot.serve import free_port


def server_env(store_url: str, folder: Path, **extra: str) -> dict[str, str]:
    """The environment of servers on free ports with their own conversations database."""
    return {
        **os.environ,
        "KNOWLEDGE_DB_URL": store_url,
        "CONVERSATIONS_DB": str(folder / "c.db"),
        "ACTION_PORT": str(free_port()),
        "RASA_PORT": str(free_port()),
        "RASA_INTERFACE": "127.0.0.1",
        "CLINIC_PHONE": "(555) 123-9876",
        "EMERGENCY_NUMBER": "911",
        **extra,
    }


def say(base: str, sender: str, text: str, timeout: float = 30) -> list[dict]:
    """Send one message over REST; the reply's messages."""
    response = httpx.post(
        f"{base}/webhooks/rest/webhook",
        json={"sender": sender, "message": text},
        timeout=timeout,
    )
    response.raise_for_status()
    return response.json()


def answer_type(messages: list[dict]) -> str:
    """The reply contract's answer type (exactly one message carries it)."""
    (answer,) = [m["custom"]["answer"] for m in messages if "custom" in m]
    return answer["type"]
