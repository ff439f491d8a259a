"""The read API of the knowledge store. Every function takes the session first.

Results are plain dataclasses, safe to use after the session has closed.

The module is the store's whole read API, a little over 400 lines: every caller (the
actions, the console, the benches) needs one import, and the free-text search at its end
shares the section rows' conversion (`_ref`, `_sections`) and the per-build memo
(`BuildMemo`) with the queries above it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, contains_eager, joinedload
from sqlalchemy.sql import Select

from knowledge import model, pipeline
from knowledge.search import BM25
from knowledge.vocabulary import project_vocabulary

REBUILD_HINT = "run `make knowledge` (python -m knowledge build)"
T = TypeVar("T")


class StoreNotReadyError(RuntimeError):
    """The store is missing, empty or from another schema version."""


@dataclass(frozen=True)
class SectionRef:
    """A section with its document, as the actions cite it.

    `document` is the document's title, `file` its path in the sources folder;
    `heading_path` the titles of the headings down to the section, outermost first
    (empty for an introduction); `language` the document's language.
    """

    document: str
    file: str
    number: int
    title: str
    body: str
    heading_path: tuple[str, ...] = ()
    language: str = pipeline.DEFAULT_LANGUAGE

    def citation(self) -> dict[str, object]:
        """The section as the actions cite it: document title, file, number, title, path."""
        return {
            "document": self.document,
            "file": self.file,
            "number": self.number,
            "title": self.title,
            "heading_path": list(self.heading_path),
        }


@dataclass(frozen=True)
class SearchHit:
    """A ranked passage."""

    section: SectionRef
    passage: str
    score: float


def _ref(section: model.Section) -> SectionRef:
    return SectionRef(
        document=section.document.title,
        file=section.document.file,
        number=section.number,
        title=section.title,
        body=section.body,
        heading_path=tuple(json.loads(section.heading_path or "[]")),
        language=section.document.language,
    )


def _sections() -> Select:
    return select(model.Section).options(joinedload(model.Section.document))


def check_store(session: Session) -> dict[str, str]:
    """Raise StoreNotReadyError unless the store is built, current and not empty."""
    try:
        info = dict(
            session.execute(select(model.StoreInfo.key, model.StoreInfo.value)).all()
        )
    except (OperationalError, ProgrammingError) as exc:
        raise StoreNotReadyError(
            f"the knowledge store is missing or unreadable ({type(exc.orig).__name__}): "
            f"{REBUILD_HINT}"
        ) from exc
    if info.get("schema_version") != model.SCHEMA_VERSION:
        raise StoreNotReadyError(
            f"the knowledge store has schema {info.get('schema_version')!r}, this code "
            f"needs {model.SCHEMA_VERSION!r}: {REBUILD_HINT}"
        )
    if not session.scalar(select(func.count(model.Section.id))):
        raise StoreNotReadyError(f"the knowledge store is empty: {REBUILD_HINT}")
    return info


def all_sections(session: Session) -> list[SectionRef]:
    """Every section, documents in build order, sections in document order."""
    rows = session.scalars(
        _sections()
        .join(model.Document)
        .order_by(model.Document.position, model.Section.position)
    ).all()
    return [_ref(s) for s in rows]


def section_by_number(
    session: Session, number: int, document_file: str | None = None
) -> SectionRef | None:
    """A section by its number, in the given document (the first document by default)."""
    query = _sections().join(model.Document).where(model.Section.number == number)
    if document_file:
        query = query.where(model.Document.file == document_file)
    section = session.scalars(query.order_by(model.Document.position)).first()
    return _ref(section) if section else None


def section_by_ref(session: Session, ref: str) -> SectionRef | None:
    """A section by its reference `<document file>#<number>` (as buttons carry it)."""
    file, _, number = ref.rpartition("#")
    if not file or not number.isdigit():
        return None
    return section_by_number(session, int(number), file)


def kinds_by_section(
    session: Session, source: str | None = None
) -> dict[tuple[str, int], frozenset[str]]:
    """Every section's kinds of question, by (document file, section number).

    `source` keeps only the kinds from the reviewed map ("map") or from headings
    ("heading"). Sections the store has no kinds for are absent.
    """
    query = (
        select(model.Document.file, model.Section.number, model.SectionKind.kind)
        .join(model.Section, model.SectionKind.section_id == model.Section.id)
        .join(model.Document)
    )
    if source is not None:
        query = query.where(model.SectionKind.source == source)
    rows = session.execute(query).all()
    kinds: dict[tuple[str, int], set[str]] = {}
    for file, number, kind in rows:
        kinds.setdefault((file, number), set()).add(kind)
    return {key: frozenset(value) for key, value in kinds.items()}


def _singulars(phrase: str) -> list[str]:
    """The phrase, then its last word made singular ("knees" -> "knee")."""
    forms = [phrase]
    head, _, last = phrase.rpartition(" ")
    for suffix, replacement in (("ies", "y"), ("es", ""), ("s", "")):
        if last.endswith(suffix) and len(last) > len(suffix) + 2:
            forms.append(f"{head} {last[: -len(suffix)]}{replacement}".strip())
    return forms


def find_term(session: Session, phrase: str) -> model.Term | None:
    """The term a phrase names: its canonical name or a synonym, plural or not."""
    for form in _singulars(phrase.strip().lower()):
        term = (
            session.scalars(
                select(model.Term).where(func.lower(model.Term.name) == form)
            ).first()
            or session.scalars(
                select(model.Term)
                .join(model.Synonym)
                .where(model.Synonym.phrase == form)
            ).first()
        )
        if term is not None:
            return term
    return None


def sections_for_term(session: Session, phrase: str) -> list[SectionRef]:
    """The sections about a term, most specific first.

    Sections naming it in the title come first, then those with most mentions, direct
    mentions before related ones, then document order.
    """
    term = find_term(session, phrase)
    if term is None:
        return []
    rows = session.execute(
        select(model.Section, model.Mention)
        .join(model.Mention, model.Mention.section_id == model.Section.id)
        .join(model.Document)
        .options(joinedload(model.Section.document))
        .where(model.Mention.term_id == term.id)
        .order_by(
            model.Mention.in_title.desc(),
            model.Mention.via.is_not(None),
            model.Mention.count.desc(),
            model.Document.position,
            model.Section.number,
        )
    ).all()
    return [_ref(section) for section, _ in rows]


def sections_naming_terms(session: Session) -> set[tuple[str, int]]:
    """The (document file, number) of every section that names a vocabulary term."""
    rows = session.execute(
        select(model.Document.file, model.Section.number)
        .join(model.Section, model.Section.document_id == model.Document.id)
        .join(model.Mention, model.Mention.section_id == model.Section.id)
        .distinct()
    ).all()
    return {(file, number) for file, number in rows}


def related_sections(
    session: Session, section: SectionRef, limit: int = 3
) -> list[SectionRef]:
    """Other numbered sections that share the most terms with this one."""
    own = (
        select(model.Mention.term_id)
        .join(model.Section)
        .join(model.Document)
        .where(
            model.Section.number == section.number,
            model.Document.file == section.file,
            model.Mention.via.is_(None),
        )
    )
    shared = func.count(model.Mention.term_id)
    rows = session.execute(
        select(model.Section, shared)
        .join(model.Mention, model.Mention.section_id == model.Section.id)
        .join(model.Document)
        # The joined document itself, not a second (joinedload) copy: PostgreSQL
        # accepts its columns beside the count only when they are grouped by.
        .options(contains_eager(model.Section.document))
        .where(
            model.Mention.term_id.in_(own),
            model.Mention.via.is_(None),
            model.Section.number > 0,
            ~(
                (model.Section.number == section.number)
                & (model.Document.file == section.file)
            ),
        )
        .group_by(model.Section.id, model.Document.id)
        .order_by(shared.desc(), model.Section.number)
        .limit(limit)
    ).all()
    return [_ref(s) for s, _ in rows]


def build_id(session: Session) -> str | None:
    """The id of the store's build (a new one each `python -m knowledge build`)."""
    return session.scalar(
        select(model.StoreInfo.value).where(model.StoreInfo.key == "build_id")
    )


class BuildMemo:
    """Values worked out from the store, kept until the store is rebuilt.

    Whatever is computed from the store's contents alone is the same for every
    request until a build replaces the store (its build id changes); one indexed query
    for the build id then stands in for the queries (and spaCy parses) that made it.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._lock = threading.Lock()
        self._capacity = capacity
        self._build: tuple[str, str | None] | None = None
        self._values: dict[Any, Any] = {}

    def get(self, session: Session, key: Any, compute: Callable[[], T]) -> T:
        """The value for `key` in the current build, computed once per build."""
        build = (str(session.get_bind().url), build_id(session))
        with self._lock:
            if build != self._build:
                self._build, self._values = build, {}
            if key in self._values:
                return cast(T, self._values[key])
        value = compute()
        with self._lock:
            if build == self._build and len(self._values) < self._capacity:
                self._values[key] = value
        return value


def document_languages(session: Session) -> frozenset[str]:
    """The languages the store has documents in ("en", and "es" with a Spanish folder)."""
    return frozenset(session.scalars(select(model.Document.language).distinct()).all())


def _passage_index(
    session: Session, language: str
) -> tuple[BM25, list[tuple[SectionRef, str]]]:
    """BM25 over the passages of one language's documents, with the passages in order."""
    rows = session.scalars(
        select(model.Passage)
        .join(model.Section)
        .join(model.Document)
        .where(model.Document.language == language)
        # the joined section and document themselves, not a second (joinedload) copy
        .options(
            contains_eager(model.Passage.section).contains_eager(model.Section.document)
        )
        .order_by(model.Passage.id)
    ).all()
    return BM25([p.lemmas.split() for p in rows]), [
        (_ref(p.section), p.text) for p in rows
    ]


#: The passage index of each language, built again when the store is rebuilt.
_INDEX = BuildMemo(capacity=8)


def _index(
    session: Session, language: str
) -> tuple[BM25, list[tuple[SectionRef, str]]]:
    return _INDEX.get(
        session, ("passages", language), lambda: _passage_index(session, language)
    )


def query_terms(text: str, language: str = pipeline.DEFAULT_LANGUAGE) -> list[str]:
    """The lemmas a query is ranked by, expanded with the vocabulary terms it names.

    Named terms add their canonical names and related terms ("knee" also looks for
    "joint"); patients' words add the guide's words (search_synonyms). The vocabulary is
    English: a question in another language is ranked by its own lemmas alone.
    """
    if language != pipeline.DEFAULT_LANGUAGE:
        nlp = pipeline.load(language)
        return pipeline.lemmas(nlp(text[:2000]), nlp)
    nlp = pipeline.load()
    doc = nlp(text[:2000])
    vocabulary = project_vocabulary()
    words = []
    for word in pipeline.lemmas(doc, nlp):
        if word in vocabulary.search_ignore:
            continue
        words.append(word)
        words.extend(vocabulary.search_synonyms.get(word, ()))
    for entity in doc.ents:
        term = vocabulary.term(entity.ent_id_)
        if term is None:
            continue
        for name in (term.name, *term.related):
            words.extend(pipeline.lemmas(nlp(name), nlp))
    return words


def search(
    session: Session,
    text: str,
    limit: int = 5,
    language: str = pipeline.DEFAULT_LANGUAGE,
) -> list[SearchHit]:
    """Passages ranked by BM25 for a free-text question, best first, score > 0.

    Only the passages of the documents in `language` are ranked.
    """
    words = query_terms(text, language)
    if not words:
        return []
    bm25, passages = _index(session, language)
    scored = sorted(
        zip(bm25.scores(words), range(len(passages)), strict=True),
        key=lambda pair: (-pair[0], pair[1]),
    )
    return [
        SearchHit(section=passages[i][0], passage=passages[i][1], score=round(score, 4))
        for score, i in scored[:limit]
        if score > 0
    ]


def rank_sections(
    session: Session, text: str, language: str = pipeline.DEFAULT_LANGUAGE
) -> list[SearchHit]:
    """Every section that matches the text, best first, with its best passage.

    Only the sections of the documents in `language` are ranked.
    """
    words = query_terms(text, language)
    if not words:
        return []
    bm25, passages = _index(session, language)
    best: dict[tuple[str, int], SearchHit] = {}
    for score, (section, passage) in zip(bm25.scores(words), passages, strict=True):
        key = (section.file, section.number)
        if score > 0 and (key not in best or score > best[key].score):
            best[key] = SearchHit(section, passage, round(score, 4))
    return sorted(best.values(), key=lambda h: -h.score)


def search_sections(session: Session, text: str, limit: int = 3) -> list[SearchHit]:
    """Like search, but one hit per section (its best passage)."""
    seen: set[tuple[str, int]] = set()
    hits = []
    for hit in search(session, text, limit=50):
        key = (hit.section.file, hit.section.number)
        if key not in seen:
            seen.add(key)
            hits.append(hit)
        if len(hits) == limit:
            break
    return hits
