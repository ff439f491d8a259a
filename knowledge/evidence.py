"""How much of a question a section covers: evidence that holds for any document.

BM25 scores grow with the question's length and the store's size, so a fixed threshold
on them means something else for every new leaflet. The share of the question's content
that a section holds does not. Each content word of the question (a lemma, after the
project's pipeline, with the words the vocabulary's search synonyms give for it) counts
by how rare it is among the sections of the store (its idf), and a section covers the
share of that weight whose words it holds, in its headings or its text. A vocabulary
term the question names ("a facet joint injection") is one concept, held by the
sections that name the term itself (not through a related term): a section about
"joint" injections does not cover a question about a facet joint injection, and every
section of a document whose title names a term holds it ("Steroid injection: what to
expect" is about steroid injections throughout). A word no
section holds ("parking", "insurance") weighs most and is covered by none, unless it is
one slip of the keyboard from a word the sections hold ("nekc" for "neck": one letter
left out, added, changed or two swapped), when it stands for that word too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from spacy.language import Language
from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge import model, pipeline, queries
from knowledge.vocabulary import project_vocabulary

#: The pseudo-word a section holds for each vocabulary term it names itself.
TERM_PREFIX = "term:"
#: Shorter words are not corrected: one letter off makes another word too often.
TYPO_MIN_LENGTH = 4
#: Shorter words are not taken for a word one letter changed: "park" is not "pack".
SUBSTITUTION_MIN_LENGTH = 5
#: spaCy's English stop words that name what a question is about ("who do I call",
#: "side effects", "lie on your front", "an empty stomach", "come off warfarin"):
#: evidence counts them, the search does not.
CONTENT_STOP_WORDS = frozenset(
    {"call", "side", "front", "empty", "off", "alone", "move"}
)
#: The kind of term a document's title makes the topic of all of it: an injection.
TOPIC_KIND = "injection_type"


def _one_left_out(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _substituted(word: str, other: str) -> bool:
    """Whether two words of one length differ by one letter changed (not two swapped)."""
    if len(word) != len(other):
        return False
    differ = [i for i, (a, b) in enumerate(zip(word, other, strict=True)) if a != b]
    return len(differ) == 1


@dataclass(frozen=True)
class Concept:
    """One content word (or named term) of a question, and the words that stand for it.

    `forms` stand for it alone (the lemma, or the word it misspells); `synonyms` are the
    guide's words for it from the vocabulary ("warfarin": blood, thinner), each of which
    holds a share of it: "blood sugar" is not half of a blood thinner's credit and more.
    """

    lemma: str
    forms: frozenset[str]
    synonyms: frozenset[str] = frozenset()

    def credit(self, held: frozenset[str]) -> float:
        """How much of the concept a set of words holds, from 0 to 1."""
        if self.forms & held:
            return 1.0
        if not self.synonyms:
            return 0.0
        return len(self.synonyms & held) / len(self.synonyms)


@dataclass(frozen=True)
class SectionWords:
    """The lemmas (and named terms) of each section of one language.

    Its headings' lemmas apart too, and how many of those sections hold each word.
    """

    words: dict[tuple[str, int], frozenset[str]]
    headings: dict[tuple[str, int], frozenset[str]]
    frequency: dict[str, int]
    #: Each word the sections hold (of TYPO_MIN_LENGTH letters or more) by the forms it
    #: takes with one letter left out, and by itself.
    deletions: dict[str, frozenset[str]] = field(default_factory=dict)
    #: The injections (TOPIC_KIND terms, as pseudo-words) each section's document title
    #: names: what the whole document is about.
    topics: dict[tuple[str, int], frozenset[str]] = field(default_factory=dict)

    def near(self, word: str) -> frozenset[str]:
        """The sections' words one slip from an unknown word (none for a known one)."""
        if word in self.frequency or len(word) < TYPO_MIN_LENGTH:
            return frozenset()
        found: set[str] = set()
        for form in {word, *_one_left_out(word)}:
            found.update(self.deletions.get(form, ()))
        if len(word) < SUBSTITUTION_MIN_LENGTH:
            found = {w for w in found if not _substituted(word, w)}
        return frozenset(found)

    def idf(self, concept: Concept) -> float:
        """How informative the concept is in this store (its idf over the sections).

        Its commonest form decides ("shot" stands for "injection", which every section
        names). A word no section holds weighs most: it may be a patient's way of
        talking ("terrified"), but weighing it less answered more of the dev set's
        uncovered questions wrongly.
        """
        n = len(self.words)
        every = concept.forms | concept.synonyms
        df = max((self.frequency.get(f, 0) for f in every), default=0)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))


@dataclass(frozen=True)
class Coverage:
    """The share of a question's weight a section holds: anywhere, and in its headings.

    `off_topic`: the question names an injection, and the section is of a document
    about another one (its title names it) and names none the question does ("can I
    drive home after my epidural" and a joint injection leaflet's "Can I drive home?").
    """

    share: float = 0.0
    heading_share: float = 0.0
    off_topic: bool = False


def question_concepts(
    text: str, language: str = pipeline.DEFAULT_LANGUAGE
) -> list[Concept]:
    """The content words of a question, each with the forms that stand for it."""
    nlp = pipeline.load(language)
    doc = nlp(text[:2000])
    english = language == pipeline.DEFAULT_LANGUAGE
    vocabulary = project_vocabulary()
    concepts: dict[str, frozenset[str]] = {}
    in_term: set[int] = set()
    if english:
        for entity in doc.ents:
            if vocabulary.term(entity.ent_id_) is None:
                continue
            concepts.setdefault(TERM_PREFIX + entity.ent_id_, frozenset())
            in_term.update(token.i for token in entity)
    for token in doc:
        word = pipeline.token_lemma(token, nlp, CONTENT_STOP_WORDS)
        if word is None or token.i in in_term or _says_nothing(word, nlp):
            continue
        if english and word in vocabulary.search_ignore:
            continue
        synonyms = vocabulary.search_synonyms.get(word, ()) if english else ()
        concepts.setdefault(word, frozenset(synonyms) - {word})
    return [
        Concept(lemma, frozenset({lemma}), synonyms)
        for lemma, synonyms in concepts.items()
    ]


def _says_nothing(lemma: str, nlp: Language) -> bool:
    """A lemma that is a stop word ("i'm" gives "be") or a number ("type 2", "17")."""
    if lemma in CONTENT_STOP_WORDS:
        return False
    return lemma in nlp.Defaults.stop_words or lemma.isdigit()


def _lemmas(text: str, language: str) -> set[str]:
    nlp = pipeline.load(language)
    return set(pipeline.lemmas(nlp(text), nlp, CONTENT_STOP_WORDS))


def _named_terms(session: Session) -> dict[tuple[str, int], set[str]]:
    """The terms each section names itself, as pseudo-words."""
    rows = session.execute(
        select(model.Document.file, model.Section.number, model.Term.name)
        .join(model.Section, model.Section.document_id == model.Document.id)
        .join(model.Mention, model.Mention.section_id == model.Section.id)
        .join(model.Term, model.Term.id == model.Mention.term_id)
        .where(model.Mention.via.is_(None))
    ).all()
    named: dict[tuple[str, int], set[str]] = {}
    for file, number, name in rows:
        named.setdefault((file, number), set()).add(TERM_PREFIX + name)
    return named


def _title_terms(title: str, language: str) -> set[str]:
    """The terms a document's title names: every section of it is about them."""
    if language != pipeline.DEFAULT_LANGUAGE:
        return set()
    vocabulary = project_vocabulary()
    return {
        TERM_PREFIX + e.ent_id_
        for e in pipeline.load(language)(title).ents
        if vocabulary.term(e.ent_id_) is not None
    }


def _is_topic(word: str) -> bool:
    """Whether a pseudo-word names a term of TOPIC_KIND (an injection)."""
    if not word.startswith(TERM_PREFIX):
        return False
    term = project_vocabulary().term(word[len(TERM_PREFIX) :])
    return term is not None and term.kind == TOPIC_KIND


def _section_words(session: Session, language: str) -> SectionWords:
    named = _named_terms(session)
    titles: dict[str, set[str]] = {}
    words: dict[tuple[str, int], frozenset[str]] = {}
    headings: dict[tuple[str, int], frozenset[str]] = {}
    topics: dict[tuple[str, int], frozenset[str]] = {}
    for section in queries.all_sections(session):
        if section.language != language:
            continue
        key = (section.file, section.number)
        heading = _lemmas(" ".join(section.heading_path) or section.title, language)
        headings[key] = frozenset(heading)
        if section.document not in titles:
            titles[section.document] = _title_terms(section.document, language)
        topics[key] = frozenset(filter(_is_topic, titles[section.document]))
        words[key] = frozenset(
            heading
            | _lemmas(section.body, language)
            | named.get(key, set())
            | titles[section.document]
        )
    frequency: dict[str, int] = {}
    for held in words.values():
        for word in held:
            frequency[word] = frequency.get(word, 0) + 1
    deletions: dict[str, set[str]] = {}
    for word in frequency:
        if len(word) >= TYPO_MIN_LENGTH and not word.startswith(TERM_PREFIX):
            for form in {word, *_one_left_out(word)}:
                deletions.setdefault(form, set()).add(word)
    return SectionWords(
        words=words,
        headings=headings,
        frequency=frequency,
        deletions={k: frozenset(v) for k, v in deletions.items()},
        topics=topics,
    )


#: The sections' words of each language, worked out again when the store is rebuilt.
_WORDS = queries.BuildMemo(capacity=8)


def section_words(session: Session, language: str) -> SectionWords:
    """The sections' lemmas of one language, once per build of the store."""
    return _WORDS.get(
        session, ("words", language), lambda: _section_words(session, language)
    )


def coverage(
    session: Session, text: str, language: str = pipeline.DEFAULT_LANGUAGE
) -> dict[tuple[str, int], Coverage]:
    """How much of the question each section of its language covers, by section key.

    A question with no content words is covered by no section (every share 0).
    """
    store = section_words(session, language)
    concepts = [
        Concept(c.lemma, c.forms | store.near(c.lemma), c.synonyms)
        for c in question_concepts(text, language)
    ]
    weighted = [(c, store.idf(c)) for c in concepts]
    total = sum(w for _, w in weighted)
    asked = {c.lemma for c in concepts if _is_topic(c.lemma)}
    found = {}
    for key, held in store.words.items():
        heading = store.headings[key]
        about = store.topics.get(key, frozenset())
        if not total:
            found[key] = Coverage()
            continue
        found[key] = Coverage(
            share=sum(w * c.credit(held) for c, w in weighted) / total,
            heading_share=sum(w * c.credit(heading) for c, w in weighted) / total,
            off_topic=bool(asked and about) and not asked & held,
        )
    return found
