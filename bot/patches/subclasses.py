"""Rasa's class-tree walk, remembered per class.

Rasa looks event and slot classes up by walking the class tree on every event it
deserialises; a profile of the server under load found a fifth of its time there. The
tree does not change once the server is running, so the walk is remembered per class.
"""

from __future__ import annotations

from collections.abc import Callable

from sanic import Sanic

from bot.patches import put_in_place, rasa_original

REPLACES = ("rasa.shared.utils.common.all_subclasses",)
CHECKED_RASA_VERSION = "3.6.21"


def memoize_all_subclasses() -> None:
    """Remember Rasa's class-tree walk: classes are all imported before serving."""
    import rasa.shared.utils.common as common

    walk: Callable[[type], list[type]] = rasa_original(common, "all_subclasses")
    known: dict[type, list[type]] = {}

    def all_subclasses(cls: type) -> list[type]:
        if cls not in known:
            known[cls] = walk(cls)
        return list(known[cls])

    put_in_place(common, "all_subclasses", all_subclasses, walk)


def install(_app: Sanic) -> None:
    """Apply the patch."""
    memoize_all_subclasses()
