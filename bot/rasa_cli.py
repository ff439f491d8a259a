"""`python -m bot.rasa_cli ...`: Rasa's own command line, without the deprecation noise.

Rasa's CLI sets its warning filters when it starts (UserWarnings "once", in front of
ours); pyparsing's deprecation warnings are UserWarnings too, so our filters are put back
in front right after Rasa's.
"""

from __future__ import annotations

import sys
from typing import Any

from clinic.quiet import silence_deprecations

if __name__ == "__main__":
    silence_deprecations()
    import rasa.utils.common

    rasa_configure = rasa.utils.common.configure_logging_and_warnings

    def configure_then_silence(*args: Any, **kwargs: Any) -> None:
        """Rasa's logging and warning set-up, then our filters in front."""
        rasa_configure(*args, **kwargs)
        silence_deprecations()

    rasa.utils.common.configure_logging_and_warnings = configure_then_silence
    from rasa.__main__ import main  # binds the wrapped function

    sys.argv[0] = "rasa"
    sys.exit(main())
