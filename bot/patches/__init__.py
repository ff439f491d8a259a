"""Run-time patches of Rasa: what no extension point of Rasa 3.6 reaches.

Each module here replaces one Rasa function, names it (`REPLACES`, dotted paths) and the
exact Rasa version it was checked against (`CHECKED_RASA_VERSION`), and has an
`install(app)`. `apply(app)` (called once from bot.server.build_app) installs each
enabled patch only when `rasa.__version__` is its checked version; on any other
version the patch is left out with one log line and the assistant works as Rasa ships
it, only slower (tests/test_patches.py runs conversations with every patch off).

Where Rasa offers an extension point the speed-up lives there instead: the rule index in
the project's policy (bot.policies.ClinicRulePolicy, config.yml), the entities from
SpacyNLP's parse in the project's extractor (bot.entities.ClinicEntityExtractor), and
the tracker cache and SQLite pool in the project's tracker store
(bot.conversation_store.ResilientSQLTrackerStore, endpoints.yml).

Every measure can be switched off for an A/B comparison with SPEED_MEASURES (a
comma-separated list of the names in MEASURES; "none" switches all off, unset means all
on); the classes above read the same switch (`rulekeys`, `entitydoc`, `sqlite`,
`trackercache`), and use
their speed-ups only on the Rasa version those were checked against (EXTENSIONS),
since they override Rasa's methods or options. What each one bought is in docs/benchmarks.md
("What made it faster").
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol, TypeVar, cast

from sanic import Sanic

logger = logging.getLogger(__name__)

#: The run-time patches by their SPEED_MEASURES name, in the order they are applied;
#: each is the module bot.patches.<name>.
PATCHES = (
    "subclasses",
    "keepalive",
    "schema",
    "graphrunner",
    "sparsestack",
    "dietcall",
    "paststates",
    "admission",
)
F = TypeVar("F", bound=Callable[..., Any])


class Checked(Protocol):
    """The Rasa functions a measure replaces and the Rasa it was checked against."""

    REPLACES: tuple[str, ...]
    CHECKED_RASA_VERSION: str


class Patch(Checked, Protocol):
    """What each patch module provides."""

    def install(self, app: Sanic) -> None:
        """Put the replacement in place."""


@dataclass
class Extension:
    """A speed-up in one of the project's own classes that overrides a Rasa method."""

    REPLACES: tuple[str, ...]
    CHECKED_RASA_VERSION: str


#: Speed-ups in the project's own classes (config.yml), switched by the same variable
#: and, like the patches, used only on the Rasa they were checked against.
EXTENSIONS = {
    "rulekeys": Extension(
        ("rasa.core.policies.rule_policy.RulePolicy._get_possible_keys",), "3.6.21"
    ),
    "entitydoc": Extension(
        ("rasa.nlu.extractors.spacy_entity_extractor.SpacyEntityExtractor.process",),
        "3.6.21",
    ),
    # bot.conversation_store.ResilientSQLTrackerStore: its engine's SQLite options
    # and the tracker cache in its retrieve and save (bot.tracker_cache).
    "sqlite": Extension(("rasa.core.tracker_store.create_engine_kwargs",), "3.6.21"),
    "trackercache": Extension(
        (
            "rasa.core.tracker_store.SQLTrackerStore.retrieve",
            "rasa.core.tracker_store.SQLTrackerStore.save",
        ),
        "3.6.21",
    ),
}
MEASURES = (*PATCHES, *EXTENSIONS)


def rasa_original(owner: object, name: str) -> Any:
    """`owner.name` as Rasa ships it, even when a patch has replaced it already."""
    current = getattr(owner, name)
    return getattr(current, "__wrapped__", current)


def put_in_place(owner: object, name: str, replacement: F, original: object) -> None:
    """Replace `owner.name`, remembering the original (so applying twice is harmless)."""
    replacement.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(owner, name, replacement)


def enabled_measures() -> set[str]:
    """The measures switched on by SPEED_MEASURES (all of them when it is unset)."""
    from clinic import settings

    raw = settings.current().speed_measures.strip().lower()
    if not raw or raw == "all":
        return set(MEASURES)
    if raw == "none":
        return set()
    names = {name.strip() for name in raw.split(",") if name.strip()}
    unknown = names - set(MEASURES)
    if unknown:
        logger.warning("unknown SPEED_MEASURES ignored: %s", ", ".join(sorted(unknown)))
    return names & set(MEASURES)


def measure_enabled(name: str) -> bool:
    """Whether the project's class uses speed-up `name` (EXTENSIONS) on this Rasa."""
    return name in enabled_measures() and applies(name, EXTENSIONS[name])


def patch_module(name: str) -> Patch:
    """The module of patch `name`."""
    module: ModuleType = importlib.import_module(f"{__name__}.{name}")
    return cast(Patch, module)


def rasa_version() -> str:
    """The running Rasa's version."""
    import rasa

    return str(rasa.__version__)


def applies(name: str, patch: Checked) -> bool:
    """Whether `patch` was checked against the running Rasa; else says so, once."""
    running = rasa_version()
    if running == patch.CHECKED_RASA_VERSION:
        return True
    logger.warning(
        "speed measure %s not applied: checked against Rasa %s, this is Rasa %s (%s "
        "stays Rasa's own)",
        name,
        patch.CHECKED_RASA_VERSION,
        running,
        ", ".join(patch.REPLACES),
    )
    return False


def apply(app: Sanic) -> set[str]:
    """Apply the enabled patches that fit this Rasa in this process; their names."""
    enabled = enabled_measures()
    applied = set()
    for name in PATCHES:
        if name not in enabled:
            continue
        try:
            patch = patch_module(name)
        except (ImportError, AttributeError) as error:  # Rasa moved what it patches
            logger.warning("patch %s not applied: %s", name, error)
            continue
        if applies(name, patch):
            patch.install(app)
            applied.add(name)
    logger.info("patches applied: %s", ", ".join(sorted(applied)) or "none")
    return applied
