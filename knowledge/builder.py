"""`python -m knowledge build`: documents in, a fresh store swapped in atomically.

Every document is parsed before anything is written, so a malformed one fails the build
with its file, line and reason and the previous store stays as it was. The new store is
written beside the live one (a new SQLite file, or a new PostgreSQL schema) and swapped in
with one atomic step, so a running assistant never sees a half-built store.

The module holds the whole build, a little over 400 lines: writing the rows
(`_populate` and the links it makes) is called by the two atomic swaps only, and shares
their report and error; apart, each half would need the other's types.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from knowledge import model, pipeline, settings
from knowledge.environment import PG_SCHEMA, is_sqlite
from knowledge.kinds import (
    FROM_HEADING,
    FROM_MAP,
    SectionMap,
    SectionMapError,
    load_section_map,
)
from knowledge.parser import FORMATS, DocumentError, ParsedDocument, parse_document
from knowledge.vocabulary import Vocabulary, load_vocabulary

DOCUMENT_SUFFIXES = tuple(FORMATS)


@dataclass
class BuildReport:
    """What a build did."""

    url: str
    built: bool
    documents: int = 0
    sections: int = 0
    passages: int = 0
    terms: int = 0
    mentions: int = 0
    seconds: float = 0.0


class BuildError(RuntimeError):
    """The build could not complete; the previous store is untouched."""


def _documents_in(folder: Path) -> list[Path]:
    """The documents directly in a folder, by name (hidden and lock files left out)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.suffix.lower() in DOCUMENT_SUFFIXES
        and not p.name.startswith((".", "~"))
    )


def language_folders(sources_dir: Path) -> dict[str, Path]:
    """The sources' language folders (`es/`, ...), by language code.

    A folder named by a two-letter code holds documents in that language; any other
    folder is not the builder's.
    """
    return {
        p.name: p
        for p in sorted(sources_dir.iterdir())
        if p.is_dir()
        and re.fullmatch(r"[a-z]{2}", p.name)
        and p.name != pipeline.DEFAULT_LANGUAGE
    }


def document_language(path: Path, sources_dir: Path) -> str:
    """The language of a source file: its language folder's code, else English."""
    if path.parent.resolve() == sources_dir.resolve():
        return pipeline.DEFAULT_LANGUAGE
    return path.parent.name


def document_key(path: Path, sources_dir: Path) -> str:
    """How the store names a source file: its path in the sources folder."""
    if path.parent.resolve() == sources_dir.resolve():
        return path.name
    return f"{path.parent.name}/{path.name}"


def source_files(sources_dir: Path) -> list[Path]:
    """The documents to ingest, the clinic's guide first.

    Then the other top-level documents by name, then each language folder's documents.

    Hidden files and office lock files (`.x`, `~$x.docx`) are not documents.
    """
    if not sources_dir.is_dir():
        raise BuildError(f"{sources_dir}: sources folder not found")
    files = _documents_in(sources_dir)
    files.sort(key=lambda p: p.name != settings.PRIMARY_DOCUMENT)
    for folder in language_folders(sources_dir).values():
        files.extend(_documents_in(folder))
    if not files:
        kinds = ", ".join(f"*{suffix}" for suffix in DOCUMENT_SUFFIXES)
        raise BuildError(f"{sources_dir}: no documents ({kinds}) to build from")
    return files


@dataclass(frozen=True)
class SourceDocument:
    """A parsed source file, with its name in the store and its language."""

    key: str
    language: str
    parsed: ParsedDocument


def _inputs_hash(docs: list[SourceDocument], extra_files: list[Path]) -> str:
    digest = hashlib.sha256(model.SCHEMA_VERSION.encode())
    for doc in docs:
        digest.update(doc.key.encode() + b"\0" + doc.parsed.digest.encode())
    for path in extra_files:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _live_inputs_hash(url: str) -> str | None:
    engine = _engine_for(url, PG_SCHEMA)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("store_info", schema=_schema_of(url)):
                return None
            row = conn.execute(
                select(model.StoreInfo.value).where(
                    model.StoreInfo.key == "inputs_hash"
                )
            ).first()
            return row[0] if row else None
    finally:
        engine.dispose()


def _schema_of(url: str) -> str | None:
    return None if is_sqlite(url) else PG_SCHEMA


def _engine_for(url: str, schema: str):  # type: ignore[no-untyped-def]
    if is_sqlite(url):
        return create_engine(url, future=True)
    return create_engine(
        url, future=True, execution_options={"schema_translate_map": {None: schema}}
    )


def build_store(
    url: str | None = None,
    sources_dir: Path | None = None,
    vocabulary_file: Path | None = None,
    sections_file: Path | None = None,
    force: bool = False,
) -> BuildReport:
    """Build the knowledge store from the sources, unless it is already up to date."""
    started = time.perf_counter()
    url = url or settings.database_url()
    vocab_path = vocabulary_file or settings.VOCABULARY_FILE
    sections_path = sections_file or settings.SECTIONS_FILE
    sources = sources_dir or settings.SOURCES_DIR
    docs = [
        SourceDocument(
            document_key(p, sources), document_language(p, sources), parse_document(p)
        )
        for p in source_files(sources)
    ]
    for language in sorted({d.language for d in docs}):
        try:
            pipeline.load(language)
        except pipeline.UnsupportedLanguageError as exc:
            raise BuildError(f"{sources / language}: {exc}") from exc
    inputs_hash = _inputs_hash(
        docs, [vocab_path, sections_path, settings.ENTITY_PATTERNS_FILE]
    )
    if not force and _live_inputs_hash(url) == inputs_hash:
        return BuildReport(url=url, built=False, seconds=time.perf_counter() - started)

    vocabulary = load_vocabulary(vocab_path)
    try:
        section_map = load_section_map(sections_path)
    except SectionMapError as exc:
        raise BuildError(str(exc)) from exc
    report = BuildReport(url=url, built=True)
    if is_sqlite(url):
        _build_sqlite(url, docs, vocabulary, section_map, inputs_hash, report)
    else:
        _build_postgres(url, docs, vocabulary, section_map, inputs_hash, report)
    report.seconds = time.perf_counter() - started
    return report


def _build_sqlite(
    url: str,
    docs: list[SourceDocument],
    vocabulary: Vocabulary,
    section_map: SectionMap,
    inputs_hash: str,
    report: BuildReport,
) -> None:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BuildError("the SQLite knowledge store needs a file path")
    live = Path(database)
    live.parent.mkdir(parents=True, exist_ok=True)
    staging = live.with_name(f"{live.name}.building-{uuid.uuid4().hex[:8]}")
    engine = create_engine(f"sqlite:///{staging}", future=True)
    try:
        model.Base.metadata.create_all(engine)
        with Session(engine) as session, session.begin():
            _populate(session, docs, vocabulary, section_map, inputs_hash, report)
        engine.dispose()
        os.replace(staging, live)
    finally:
        engine.dispose()
        staging.unlink(missing_ok=True)


def _build_postgres(
    url: str,
    docs: list[SourceDocument],
    vocabulary: Vocabulary,
    section_map: SectionMap,
    inputs_hash: str,
    report: BuildReport,
) -> None:
    staging, retired = f"{PG_SCHEMA}_building", f"{PG_SCHEMA}_retired"
    engine = _engine_for(url, staging)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{staging}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{staging}"'))
            model.Base.metadata.create_all(conn)
        with Session(engine) as session, session.begin():
            _populate(session, docs, vocabulary, section_map, inputs_hash, report)
        with engine.begin() as conn:  # DDL is transactional: readers see old or new
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{retired}" CASCADE'))
            if PG_SCHEMA in inspect(conn).get_schema_names():
                conn.execute(text(f'ALTER SCHEMA "{PG_SCHEMA}" RENAME TO "{retired}"'))
            conn.execute(text(f'ALTER SCHEMA "{staging}" RENAME TO "{PG_SCHEMA}"'))
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{retired}" CASCADE'))
    finally:
        engine.dispose()


def _populate(
    session: Session,
    docs: list[SourceDocument],
    vocabulary: Vocabulary,
    section_map: SectionMap,
    inputs_hash: str,
    report: BuildReport,
) -> None:
    terms = {t.name: model.Term(kind=t.kind, name=t.name) for t in vocabulary.terms}
    for vterm in vocabulary.terms:
        for phrase in vterm.synonyms:
            session.add(model.Synonym(term=terms[vterm.name], phrase=phrase.lower()))
    session.add_all(terms.values())

    sections_by_doc: dict[str, list[model.Section]] = {}
    direct: dict[tuple[str, int], Counter[str]] = {}
    titled: dict[tuple[str, int], set[str]] = {}
    built_at = datetime.now(timezone.utc).replace(tzinfo=None)
    for position, source in enumerate(docs):
        doc = source.parsed
        nlp = pipeline.load(source.language)
        english = source.language == pipeline.DEFAULT_LANGUAGE
        row = model.Document(
            file=source.key,
            title=doc.title,
            format=doc.format,
            language=source.language,
            content_hash=doc.digest,
            built_at=built_at,
            position=position,
        )
        session.add(row)
        sections = []
        for parsed in doc.sections:
            section = model.Section(
                document=row,
                number=parsed.number,
                position=parsed.position,
                title=parsed.title,
                heading_path=json.dumps(list(parsed.heading_path)),
                body=parsed.body,
                line=parsed.line,
            )
            sections.append(section)
            title_doc = nlp(parsed.title)
            body_doc = nlp(parsed.body)
            # every passage is found by its headings too: a subsection by its parent's
            headings = pipeline.lemmas(nlp(" ".join(parsed.heading_path)), nlp)
            for i, sentence in enumerate(body_doc.sents):
                lemma_text = " ".join(
                    (headings or pipeline.lemmas(title_doc, nlp))
                    + pipeline.lemmas(sentence.as_doc(), nlp)
                )
                section.passages.append(
                    model.Passage(
                        position=i, text=sentence.text.strip(), lemmas=lemma_text
                    )
                )
                report.passages += 1
            # The vocabulary's terms are English: other languages' sections name none.
            counts: Counter[str] = Counter(e.ent_id_ for e in body_doc.ents if english)
            in_title = {e.ent_id_ for e in title_doc.ents if english}
            counts.update(in_title)
            direct[(source.key, parsed.number)] = counts
            titled[(source.key, parsed.number)] = in_title
            for name, count in counts.items():
                session.add(
                    model.Mention(
                        term=terms[name],
                        section=section,
                        count=count,
                        in_title=int(name in in_title),
                    )
                )
                report.mentions += 1
        session.add_all(sections)
        sections_by_doc[source.key] = sections
        report.documents += 1
        report.sections += len(sections)

    _link_related(session, vocabulary, terms, sections_by_doc, direct, titled, report)
    _link_kinds(session, section_map, sections_by_doc)
    report.terms = len(terms)
    session.add_all(
        [
            model.StoreInfo(key="schema_version", value=model.SCHEMA_VERSION),
            model.StoreInfo(key="inputs_hash", value=inputs_hash),
            model.StoreInfo(key="build_id", value=uuid.uuid4().hex),
            model.StoreInfo(key="built_at", value=built_at.isoformat()),
        ]
    )


def _link_related(
    session: Session,
    vocabulary: Vocabulary,
    terms: dict[str, model.Term],
    sections_by_doc: dict[str, list[model.Section]],
    direct: dict[tuple[str, int], Counter[str]],
    titled: dict[tuple[str, int], set[str]],
    report: BuildReport,
) -> None:
    """A term the guide never names answers through its related terms' sections."""
    for vterm in vocabulary.terms:
        for file, sections in sections_by_doc.items():
            for section in sections:
                counts = direct[(file, section.number)]
                if counts.get(vterm.name):
                    continue
                via = [r for r in vterm.related if counts.get(r)]
                if not via:
                    continue
                title_hit = any(r in titled[(file, section.number)] for r in via)
                session.add(
                    model.Mention(
                        term=terms[vterm.name],
                        section=section,
                        count=sum(counts[r] for r in via),
                        in_title=int(title_hit),
                        via=", ".join(via),
                    )
                )
                report.mentions += 1


def _link_kinds(
    session: Session,
    section_map: SectionMap,
    sections_by_doc: dict[str, list[model.Section]],
) -> None:
    """Each section's kinds: reviewed in sections.yml, else cued by its headings."""
    for file, titles in section_map.documents.items():
        if file not in sections_by_doc:
            continue  # a mapped document the clinic has not added (yet)
        known = {s.title.lower() for s in sections_by_doc[file]}
        missing = [t for t in titles if t.lower() not in known]
        if missing:
            raise BuildError(
                f"sections.yml maps {file} sections {missing}, which it does not have"
            )
    for file, sections in sections_by_doc.items():
        for section in sections:
            kinds = section_map.mapped(file, section.title)
            source = FROM_MAP
            if kinds is None:
                kinds, source = (
                    section_map.kinds_from_headings(_heading_path(section)),
                    FROM_HEADING,
                )
            for kind in kinds:
                session.add(
                    model.SectionKind(section=section, kind=kind, source=source)
                )


def _heading_path(section: model.Section) -> list[str]:
    """The headings down to a section (its title alone for an introduction)."""
    path = json.loads(section.heading_path or "[]")
    return [str(h) for h in path] or [str(section.title)]


__all__ = ["BuildError", "BuildReport", "DocumentError", "build_store", "source_files"]
