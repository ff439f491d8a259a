"""The medical vocabulary and the files generated from it.

`knowledge/vocabulary.yml` is the single source of truth; from it come the spaCy entity
ruler patterns (`knowledge/entity_patterns.jsonl`) and the Rasa synonyms and lookup tables
(`data/nlu/lookups/vocabulary.yml`). `python -m knowledge generate` writes both;
`generated_files()` gives their expected contents, so a test can tell when they are stale.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from knowledge import settings

ENTITY_KINDS = ("injection_type", "condition", "body_area")
_TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


@dataclass(frozen=True)
class Term:
    """A canonical medical term with its synonyms and related terms."""

    kind: str
    name: str
    synonyms: tuple[str, ...] = ()
    related: tuple[str, ...] = ()

    @property
    def phrases(self) -> tuple[str, ...]:
        """The canonical name followed by every synonym, lowercased."""
        return (self.name.lower(), *(s.lower() for s in self.synonyms))


@dataclass(frozen=True)
class RedFlagKind:
    """A kind of red-flag symptom with the patterns that report it, per language."""

    name: str
    reply: str
    patterns: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class ContextRules:
    """One language's rules for a symptom mentioned but not reported as happening now."""

    negations: tuple[str, ...] = ()
    #: Phrases with a negation word that do not negate what follows ("didn't even notice").
    pseudo_negations: tuple[str, ...] = ()
    #: A negation inside the matched words themselves ("las piernas no las tengo débiles").
    negated_inside: tuple[str, ...] = ()
    not_current: tuple[str, ...] = ()
    general_question: tuple[str, ...] = ()
    hypothetical: tuple[str, ...] = ()
    past_clause: tuple[str, ...] = ()
    first_person_report: tuple[str, ...] = ()
    #: Said anywhere in a message that matches no symptom pattern, these say the writer is
    #: well or it is over ("fully recovered now", "nothing new", "ya estoy bien"): the
    #: classifier's emergency guess is not taken (bot.nlu.RedFlagDetector).
    all_clear: tuple[str, ...] = ()


@dataclass(frozen=True)
class Vocabulary:
    """Everything `vocabulary.yml` holds, validated."""

    terms: tuple[Term, ...]
    red_flags: tuple[RedFlagKind, ...]
    red_flag_rules: dict[str, ContextRules]
    #: Words that say a message is about a symptom, per language (small talk never
    #: swallows one: bot.nlu.RedFlagDetector).
    symptom_words: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Words that mark a message as a language when the language identifier has no
    #: evidence either way ("hola"), per language.
    language_cues: dict[str, tuple[str, ...]] = field(default_factory=dict)
    search_synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    search_ignore: frozenset[str] = frozenset()
    by_name: dict[str, Term] = field(default_factory=dict, compare=False)

    def term(self, name: str) -> Term | None:
        """The term with this canonical name (case-insensitive), if any."""
        return self.by_name.get(name.lower())


class VocabularyError(ValueError):
    """The vocabulary file is not well formed."""


def _as_strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise VocabularyError(f"{where}: expected a list of strings")
    return tuple(value)


def parse_vocabulary(raw: dict[str, Any]) -> Vocabulary:
    """Validate the YAML structure of a vocabulary and build its dataclasses."""
    terms: list[Term] = []
    for kind in ENTITY_KINDS:
        entries = (raw.get("terms") or {}).get(kind) or {}
        for name, spec in entries.items():
            spec = spec or {}
            terms.append(
                Term(
                    kind=kind,
                    name=str(name),
                    synonyms=_as_strings(spec.get("synonyms"), f"{kind}.{name}"),
                    related=_as_strings(spec.get("related"), f"{kind}.{name}.related"),
                )
            )
    by_name = {t.name.lower(): t for t in terms}
    for t in terms:
        for r in t.related:
            if r.lower() not in by_name:
                raise VocabularyError(f"{t.kind}.{t.name}: unknown related term {r!r}")

    words = {
        str(k): "(?:" + "|".join(_as_strings(v, f"red_flag_words.{k}")) + ")"
        for k, v in (raw.get("red_flag_words") or {}).items()
    }
    flags = []
    for name, spec in (raw.get("red_flags") or {}).items():
        patterns = {
            _language_of(key, "patterns"): tuple(
                _with_words(p, words, f"red_flags.{name}")
                for p in _as_strings(value, f"red_flags.{name}.{key}")
            )
            for key, value in spec.items()
            if key.startswith("patterns")
        }
        for p in (p for ps in patterns.values() for p in ps):
            try:
                re.compile(p)
            except re.error as exc:
                raise VocabularyError(
                    f"red_flags.{name}: bad pattern {p!r}: {exc}"
                ) from exc
        reply = spec.get("reply", "emergency")
        if reply not in ("emergency", "crisis"):
            raise VocabularyError(
                f"red_flags.{name}: reply must be emergency or crisis"
            )
        flags.append(RedFlagKind(name=str(name), reply=reply, patterns=patterns))

    return Vocabulary(
        terms=tuple(terms),
        red_flags=tuple(flags),
        red_flag_rules={
            _language_of(key, "red_flag_rules"): _context_rules(rules or {}, key)
            for key, rules in raw.items()
            if key.startswith("red_flag_rules")
        },
        symptom_words=_per_language(raw.get("symptom_words"), "symptom_words"),
        language_cues=_per_language(raw.get("language_cues"), "language_cues"),
        search_synonyms={
            str(k).lower(): _as_strings(v, f"search_synonyms.{k}")
            for k, v in (raw.get("search_synonyms") or {}).items()
        },
        search_ignore=frozenset(
            w.lower() for w in _as_strings(raw.get("search_ignore"), "search_ignore")
        ),
        by_name=by_name,
    )


#: `<name>` in a red-flag pattern stands for the word set `red_flag_words.name`; `(?<!`
#: and `(?<name>` are the regular expression's own.
_WORD_SET = re.compile(r"(?<!\(\?)<([a-z_]+)>")


def _with_words(pattern: str, words: dict[str, str], where: str) -> str:
    """The pattern with each `<name>` replaced by its word set's alternation."""

    def word_set(match: re.Match[str]) -> str:
        if match.group(1) not in words:
            raise VocabularyError(f"{where}: unknown word set <{match.group(1)}>")
        return words[match.group(1)]

    return _WORD_SET.sub(word_set, pattern)


def _language_of(key: str, stem: str) -> str:
    """`patterns` and `red_flag_rules` are English; `patterns_es`, `..._es` Spanish."""
    return key[len(stem) + 1 :] if key.startswith(stem + "_") else "en"


def _context_rules(rules: dict[str, Any], where: str) -> ContextRules:
    fields = ContextRules.__dataclass_fields__
    unknown = set(rules) - set(fields)
    if unknown:
        raise VocabularyError(f"{where}: unknown rules {sorted(unknown)}")
    return ContextRules(**{k: _as_strings(v, f"{where}.{k}") for k, v in rules.items()})


def _per_language(raw: Any, where: str) -> dict[str, tuple[str, ...]]:
    return {
        str(lang): _as_strings(words, f"{where}.{lang}")
        for lang, words in (raw or {}).items()
    }


def load_vocabulary(path: Path | None = None) -> Vocabulary:
    """Read and validate a vocabulary file (the project's by default)."""
    with open(path or settings.VOCABULARY_FILE, encoding="utf-8") as handle:
        return parse_vocabulary(yaml.safe_load(handle) or {})


@lru_cache(maxsize=1)
def project_vocabulary() -> Vocabulary:
    """The project's vocabulary, read once per process."""
    return load_vocabulary()


def tokens(phrase: str) -> list[str]:
    """Split a lowercase phrase the way spaCy's English tokenizer splits these terms."""
    return _TOKEN.findall(phrase.lower())


def _plural_forms(word: str) -> list[str]:
    if not word.isalpha() or len(word) < 3 or word.endswith("s"):
        return [word]
    if word.endswith("y") and word[-2] not in "aeiou":
        return [word, word[:-1] + "ies"]
    return [word, word + "s", word + "es"]


def _with_plural(phrase: str) -> list[str]:
    words = phrase.split(" ")
    return [" ".join([*words[:-1], form]) for form in _plural_forms(words[-1])]


def entity_patterns(vocabulary: Vocabulary) -> list[dict[str, Any]]:
    """Entity-ruler patterns: one per phrase, the last word also matching its plural."""
    patterns = []
    seen: set[tuple[str, str]] = set()
    for term in vocabulary.terms:
        for phrase in term.phrases:
            words = tokens(phrase)
            if not words or (term.kind, phrase) in seen:
                continue
            seen.add((term.kind, phrase))
            pattern: list[dict[str, Any]] = [{"LOWER": w} for w in words[:-1]]
            forms = _plural_forms(words[-1])
            last: dict[str, Any] = (
                {"LOWER": forms[0]} if len(forms) == 1 else {"LOWER": {"IN": forms}}
            )
            pattern.append(last)
            patterns.append({"label": term.kind, "pattern": pattern, "id": term.name})
    return patterns


def rasa_lookups(vocabulary: Vocabulary) -> dict[str, Any]:
    """Rasa training data: a synonym block per term and a lookup table per kind."""
    nlu: list[dict[str, Any]] = []
    for term in vocabulary.terms:
        others = sorted(
            {form for phrase in term.phrases for form in _with_plural(phrase)}
            - {term.name.lower()}
        )
        if others:
            nlu.append({"synonym": term.name, "examples": _examples(others)})
    for kind in ENTITY_KINDS:
        phrases = sorted(
            {p for t in vocabulary.terms if t.kind == kind for p in t.phrases}
        )
        nlu.append({"lookup": kind, "examples": _examples(phrases)})
    return {"version": "3.1", "nlu": nlu}


def _examples(items: list[str]) -> str:
    return "".join(f"- {item}\n" for item in items)


class _LiteralDumper(yaml.SafeDumper):
    pass


def _literal_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _literal_str)

GENERATED_HEADER = (
    "# Generated from knowledge/vocabulary.yml by `python -m knowledge generate`.\n"
    "# Do not edit: edit the vocabulary and regenerate.\n"
)


def generated_files(vocabulary: Vocabulary | None = None) -> dict[Path, str]:
    """The generated files' paths and the contents they should have."""
    vocab = vocabulary or load_vocabulary()
    patterns = "".join(
        json.dumps(p, sort_keys=True) + "\n" for p in entity_patterns(vocab)
    )
    lookups = GENERATED_HEADER + yaml.dump(
        rasa_lookups(vocab), Dumper=_LiteralDumper, sort_keys=False, allow_unicode=True
    )
    return {
        settings.ENTITY_PATTERNS_FILE: patterns,
        settings.RASA_LOOKUPS_FILE: lookups,
    }


def write_generated_files() -> list[Path]:
    """(Re)write the generated files; returns the paths that changed."""
    changed = []
    for path, content in generated_files().items():
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            changed.append(path)
    return changed
