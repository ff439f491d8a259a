"""The intents the code itself names, in one place (the domain lists every intent).

tests/test_vocabulary_and_pipeline.py checks that each is an intent of domain.yml.
"""

from __future__ import annotations

#: A red flag reported now (bot.nlu.RedFlagDetector): the emergency reply.
RED_FLAG_INTENT = "report_red_flag"
#: Thoughts of self-harm: the crisis reply.
SELF_HARM_INTENT = "report_self_harm"
#: The intents whose reply is emergency guidance; nothing may interrupt or demote them.
EMERGENCY_INTENTS = frozenset({RED_FLAG_INTENT, SELF_HARM_INTENT})
#: A message in another language (bot.nlu.LanguageIdentifier).
OTHER_LANGUAGE_INTENT = "other_language"
