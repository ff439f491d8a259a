"""Silence dependencies' deprecation chatter in normal runs.

Sanic's import adds `filterwarnings("once", category=DeprecationWarning)` in front of
the interpreter's filters, which undoes PYTHONWARNINGS=ignore; importing it first and
then putting our filters back in front keeps the logs to what matters. UserWarnings
(Rasa's own messages, e.g. from the data validator) stay visible.
"""

from __future__ import annotations

import warnings


def silence_deprecations() -> None:
    """Ignore deprecation warnings from here on, even after Sanic is imported."""
    import pyparsing
    import sanic  # noqa: F401  (imported for its side effect on the warning filters)

    categories: list[type[Warning]] = [
        DeprecationWarning,
        PendingDeprecationWarning,
        FutureWarning,
    ]
    # pyparsing 3.3's own deprecation category (used by matplotlib and packaging).
    extra = getattr(pyparsing, "PyparsingDeprecationWarning", None)
    if isinstance(extra, type) and issubclass(extra, Warning):
        categories.append(extra)
    for category in categories:
        warnings.filterwarnings("ignore", category=category)
    # Rasa's recipe validator looks for RulePolicy itself (`uses == RulePolicy`), not a
    # subclass; config.yml names bot.policies.ClinicRulePolicy, a RulePolicy, so the
    # warning that restart and back will not work is untrue (tests/test_speed.py checks restart).
    warnings.filterwarnings(
        "ignore",
        message="'RulePolicy' is not included in the model's policy configuration",
        category=UserWarning,
    )
