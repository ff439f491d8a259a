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
