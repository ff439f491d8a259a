"""Text normalisation shared by the store, its queries and the red-flag detector."""

from __future__ import annotations

import unicodedata


def fold_accents(text: str) -> str:
    """The text without combining accents: "rígido" -> "rigido", "adiós" -> "adios".

    Patients often type Spanish without accents, so what is matched or searched in
    another language is folded on both sides.
    """
    decomposed = unicodedata.normalize("NFD", text)
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", kept)
