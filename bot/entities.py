"""The assistant's entity extractor: SpacyEntityExtractor without the second parse.

SpacyEntityExtractor parses every message with the spaCy pipeline a second time,
because SpacyNLP's parse is of the lowercased text ("bad for NER"). This project's
entity ruler (knowledge/entity_patterns.jsonl) matches on lowercase forms only, so the
entities of the lowercased parse are the same spans; their values are taken from the
message as written. A message whose lowercase form has another length (e.g. "İ") keeps
the second parse. tests/test_speed.py compares the entities with Rasa's on every patient
message of the project.

Named in config.yml in place of SpacyEntityExtractor, with the same parameters; the
entities name it as their extractor. SPEED_MEASURES without `entitydoc` makes it parse
twice, as Rasa does.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.constants import SPACY_DOCS
from rasa.nlu.extractors.spacy_entity_extractor import SpacyEntityExtractor
from rasa.nlu.utils.spacy_utils import SpacyModel
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.patches import measure_enabled


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR,
    is_trainable=False,
    model_from="SpacyNLP",
)
class ClinicEntityExtractor(SpacyEntityExtractor):
    """Entities from SpacyNLP's parse, values as the patient wrote them."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.reuse_parse = measure_enabled("entitydoc")

    def process(self, messages: list[Message], model: SpacyModel) -> list[Message]:
        """Add the entities of each message's SpacyNLP parse (see the module)."""
        if not self.reuse_parse:
            return super().process(messages, model)
        for message in messages:
            text, doc = message.get(TEXT), message.get(SPACY_DOCS[TEXT])
            if not (
                isinstance(text, str)
                and doc is not None
                and doc.text == text.lower()
                and len(doc.text) == len(text)
            ):
                super().process([message], model)
                continue
            found = [
                {**entity, "value": text[entity["start"] : entity["end"]]}
                for entity in self._extract_entities(doc)
            ]
            extracted = self.filter_irrelevant_entities(
                self.add_extractor_name(found), self._config["dimensions"]
            )
            message.set(
                ENTITIES, message.get(ENTITIES, []) + extracted, add_to_output=True
            )
        return messages
