"""The knowledge store's tables.

Document 1--* Section 1--* Passage        a document, its sections, their sentences
Term 1--* Synonym                         the vocabulary's canonical terms
Term *--* Section  (through Mention)      which sections name a term, how often
SectionKind *--1 Section                  the kinds of question a section answers
StoreInfo                                 schema version and build facts
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import declarative_base, relationship

#: Bumped whenever the tables change; a store built by another version is refused.
SCHEMA_VERSION = "3"

Base = declarative_base()


class Document(Base):  # type: ignore[valid-type,misc]
    """A source document (the clinic's guide, a leaflet) as it was when the store was built.

    `format` is the parser that read it: "text", "markdown", "pdf" or "docx".
    `file` is its path in the sources folder ("aftercare.md", or "es/aftercare.md" for a
    document in a language folder); `language` its ISO 639-1 code ("en" at the top level).
    """

    __tablename__ = "documents"
    id = Column(Integer, primary_key=True)
    file = Column(String(255), nullable=False, unique=True)
    title = Column(String(255), nullable=False)
    format = Column(String(16), nullable=False, default="text")
    language = Column(String(8), nullable=False, default="en", index=True)
    content_hash = Column(String(64), nullable=False)
    built_at = Column(DateTime, nullable=False, default=datetime.utcnow)
    position = Column(Integer, nullable=False)
    sections = relationship(
        "Section", back_populates="document", order_by="Section.position"
    )


class Section(Base):  # type: ignore[valid-type,misc]
    """A section of a document: a numbered item, or the text under a heading.

    - `number`: the item's number in a numbered text; in a document with headings a
      running number 1..n. 0 is the introduction (the text before the first item or
      heading).
    - `position`: the section's order in its document, from 0.
    - `heading_path`: a JSON array of the titles of the headings above the section and
      its own, outermost first (`["Going home", "Driving"]`); `[]` for the
      introduction, `[title]` for a numbered item. JSON keeps a title that contains
      any separator intact.
    - `line`: where it starts: the line (text, Markdown), page (PDF) or paragraph (Word).
    """

    __tablename__ = "sections"
    __table_args__ = (
        UniqueConstraint("document_id", "number"),
        UniqueConstraint("document_id", "position"),
    )
    id = Column(Integer, primary_key=True)
    document_id = Column(
        Integer, ForeignKey("documents.id"), nullable=False, index=True
    )
    number = Column(Integer, nullable=False)
    position = Column(Integer, nullable=False)
    title = Column(String(255), nullable=False)
    heading_path = Column(Text, nullable=False, default="[]")
    body = Column(Text, nullable=False)
    line = Column(Integer, nullable=False)
    document = relationship("Document", back_populates="sections")
    passages = relationship(
        "Passage", back_populates="section", order_by="Passage.position"
    )


class Passage(Base):  # type: ignore[valid-type,misc]
    """A sentence of a section, with the lemmas that search ranks it by."""

    __tablename__ = "passages"
    id = Column(Integer, primary_key=True)
    section_id = Column(Integer, ForeignKey("sections.id"), nullable=False, index=True)
    position = Column(Integer, nullable=False)
    text = Column(Text, nullable=False)
    lemmas = Column(Text, nullable=False)
    section = relationship("Section", back_populates="passages")


class Term(Base):  # type: ignore[valid-type,misc]
    """A canonical vocabulary term: an injection type, a condition or a body area."""

    __tablename__ = "terms"
    id = Column(Integer, primary_key=True)
    kind = Column(String(32), nullable=False, index=True)
    name = Column(String(128), nullable=False, unique=True)
    synonyms = relationship("Synonym", back_populates="term")
    mentions = relationship("Mention", back_populates="term")


class Synonym(Base):  # type: ignore[valid-type,misc]
    """Another way to say a term."""

    __tablename__ = "synonyms"
    id = Column(Integer, primary_key=True)
    term_id = Column(Integer, ForeignKey("terms.id"), nullable=False, index=True)
    phrase = Column(String(128), nullable=False, index=True)
    term = relationship("Term", back_populates="synonyms")


class Mention(Base):  # type: ignore[valid-type,misc]
    """A term named in a section: directly, or through a related term."""

    __tablename__ = "mentions"
    __table_args__ = (UniqueConstraint("term_id", "section_id"),)
    id = Column(Integer, primary_key=True)
    term_id = Column(Integer, ForeignKey("terms.id"), nullable=False, index=True)
    section_id = Column(Integer, ForeignKey("sections.id"), nullable=False, index=True)
    count = Column(Integer, nullable=False)
    in_title = Column(Integer, nullable=False, default=0)
    via = Column(String(128), nullable=True)
    term = relationship("Term", back_populates="mentions")
    section = relationship("Section")


class StoreInfo(Base):  # type: ignore[valid-type,misc]
    """Facts about the store itself (schema version, build time)."""

    __tablename__ = "store_info"
    key = Column(String(64), primary_key=True)
    value = Column(Text, nullable=False)


class SectionKind(Base):  # type: ignore[valid-type,misc]
    """A kind of question a section answers ("what", "safety"), and how that is known."""

    __tablename__ = "section_kinds"
    __table_args__ = (UniqueConstraint("section_id", "kind"),)
    id = Column(Integer, primary_key=True)
    section_id = Column(Integer, ForeignKey("sections.id"), nullable=False, index=True)
    kind = Column(String(32), nullable=False, index=True)
    #: "map" (knowledge/sections.yml) or "heading" (a cue word in its heading path).
    source = Column(String(16), nullable=False)
    section = relationship("Section")
