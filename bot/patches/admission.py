"""At most MESSAGES_IN_PROGRESS messages worked on at once, first come first served.

Rasa starts every message the moment it arrives, so under load each message's steps take
turns with those of every other message on the one event loop, and a knowledge answer,
which waits for the action server half-way, queues twice. Three at a time (the default)
still let one message use the CPU while another waits for the action server.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from bot.patches import put_in_place, rasa_original

REPLACES = ("rasa.core.agent.Agent.handle_message",)
CHECKED_RASA_VERSION = "3.6.21"

logger = logging.getLogger(__name__)


def messages_in_progress() -> int:
    """MESSAGES_IN_PROGRESS: how many messages one server works on at once (>= 1)."""
    from clinic import settings

    return max(1, settings.current().messages_in_progress)


def admit_messages_in_turn(limit: int) -> None:
    """Let at most `limit` messages through Agent.handle_message at once, in order."""
    from rasa.core.agent import Agent

    original = rasa_original(Agent, "handle_message")
    gates: dict[int, asyncio.Semaphore] = {}  # one per event loop (Sanic worker)

    async def handle_message(self: Agent, message: UserMessage) -> Any:
        loop = id(asyncio.get_running_loop())
        gate = gates.get(loop)
        if gate is None:
            gate = gates[loop] = asyncio.Semaphore(limit)
        async with gate:  # waiters are let in first come, first served
            return await original(self, message)

    put_in_place(Agent, "handle_message", handle_message, original)


def install(_app: Sanic) -> None:
    """Apply the patch."""
    admit_messages_in_turn(messages_in_progress())
