"""The test sets stay apart from the training data, and their labels are well formed.

Every question of tests/nlu/ (real patients' questions, the leaflet questions, the held-out
file and the red-flag files) is compared with every training example of data/nlu/: a
training example that is the same question, or a near copy of it, would make the reported
scores measure memory instead of understanding.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.evaluation import load_labelled
from knowledge.parser import parse_document

ROOT = Path(__file__).resolve().parent.parent
TRAINING_DIR = ROOT / "data" / "nlu"
TEST_SETS_DIR = ROOT / "tests" / "nlu"
SOURCES_DIR = ROOT / "knowledge" / "sources"
FIXTURE_DOCUMENTS = ROOT / "tests" / "fixtures" / "documents"
DEV_DOCUMENTS = ROOT / "tests" / "fixtures" / "dev_documents"
DEV_QUESTIONS = TEST_SETS_DIR / "dev_leaflet_questions.yml"
REAL_QUESTIONS = TEST_SETS_DIR / "real_questions.yml"
LEAFLET_QUESTIONS = TEST_SETS_DIR / "leaflet_questions.yml"

NEAR_COPY_RATIO = 0.9
NEAR_COPY_MIN_WORDS = 4
NOT_COVERED = "not_covered"
KINDS = {
    "what",
    "why",
    "condition",
    "candidate",
    "safety",
    "duration",
    "procedure_day",
    "aftercare",
    "cost",
    "medication",
    "other",
}

# `[text](entity)`, `[text](entity:value)` and `[text]{"entity": ...}` keep only `text`.
_ANNOTATION = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")
_APOSTROPHES = re.compile(r"['\u2019`]")
_PUNCTUATION = re.compile(r"[^\w\s]|_")


@dataclass(frozen=True)
class Text:
    """A text and where it came from, normalised once for comparison."""

    text: str
    origin: str

    @property
    def normal(self) -> str:
        return normalise(self.text)


def normalise(text: str) -> str:
    """Lowercase, punctuation out (apostrophes joined: "don't" -> "dont"), spaces collapsed."""
    text = _APOSTROPHES.sub("", text.lower())
    return " ".join(_PUNCTUATION.sub(" ", text).split())


def _example_lines(block: str) -> Iterator[str]:
    """The `- ` lines of a Rasa `examples: |` block, annotations stripped."""
    for line in block.splitlines():
        line = line.strip()
        if line.startswith("- "):
            yield _ANNOTATION.sub(r"\1", line[2:]).strip()


def training_examples() -> list[Text]:
    """Every intent example of data/nlu (lookups and synonyms are vocabulary, not examples)."""
    examples = []
    for path in sorted(TRAINING_DIR.rglob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for item in data.get("nlu") or []:
            if isinstance(item, dict) and "intent" in item:
                origin = f"{path.relative_to(ROOT)} ({item['intent']})"
                examples += [
                    Text(line, origin)
                    for line in _example_lines(item.get("examples", ""))
                ]
    return examples


def _texts_in(node: Any) -> Iterator[str]:
    """Question texts wherever a test file keeps them: `text:` values, plain strings in a
    list, and the lines of Rasa `examples:` blocks, at any depth under any key."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield value
            elif key == "examples" and isinstance(value, str):
                yield from _example_lines(value)
            else:
                yield from _texts_in(value)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, str):
                yield item
            else:
                yield from _texts_in(item)


def set_files() -> list[Path]:
    """The test sets: real and leaflet questions, the held-out file, the red-flag files."""
    files = [REAL_QUESTIONS, LEAFLET_QUESTIONS, TEST_SETS_DIR / "heldout.yml"]
    return files + sorted(TEST_SETS_DIR.glob("red_flags*.yml"))


def questions_by_file() -> dict[Path, list[Text]]:
    questions = {}
    for path in set_files():
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        origin = str(path.relative_to(ROOT))
        questions[path] = [Text(text, origin) for text in _texts_in(data)]
    return questions


def near_copies(
    training: list[Text], tests: list[Text]
) -> list[tuple[Text, Text, float]]:
    """(training example, test question, ratio) for every identical or near-copy pair."""
    by_normal: dict[str, list[Text]] = {}
    for example in training:
        by_normal.setdefault(example.normal, []).append(example)
    normals = sorted(by_normal, key=len)
    lengths = [len(n) for n in normals]
    found = []
    for question in tests:
        normal = question.normal
        for example in by_normal.get(normal, []):
            found.append((example, question, 1.0))
        if len(normal.split()) < NEAR_COPY_MIN_WORDS:
            continue
        matcher = SequenceMatcher(None, autojunk=False)
        matcher.set_seq2(normal)
        # ratio = 2M / (|a| + |b|) <= 2 min / (|a| + |b|): only similar lengths can reach it.
        shortest = len(normal) * NEAR_COPY_RATIO / (2 - NEAR_COPY_RATIO)
        longest = len(normal) * (2 - NEAR_COPY_RATIO) / NEAR_COPY_RATIO
        for candidate, length in zip(normals, lengths, strict=True):
            if length < shortest or candidate == normal:
                continue
            if length > longest:
                break
            matcher.set_seq1(candidate)
            if (
                matcher.real_quick_ratio() >= NEAR_COPY_RATIO
                and matcher.quick_ratio() >= NEAR_COPY_RATIO
                and (ratio := matcher.ratio()) >= NEAR_COPY_RATIO
            ):
                found += [
                    (example, question, ratio) for example in by_normal[candidate]
                ]
    return found


def test_near_copies_are_found() -> None:
    """The check itself: it catches an identical text, a near copy and an annotated one."""
    block = """
    - Can a [cortisone](injection_type) shot help my [knee]{"entity": "body_part"}?
    - what is prp
    - Why are these injections done at all?
    """
    training = [Text(line, "train") for line in _example_lines(block)]
    tests = [
        Text("can a cortisone shot help my knee", "test"),
        Text("What is PRP?", "test"),
        Text("Why are these injections done at all??!", "test"),
        Text("why were those injections done at all", "test"),
        Text("How long does a nerve block last?", "test"),
    ]
    found = {(t.text, q.text) for t, q, _ in near_copies(training, tests)}
    assert found == {
        ("Can a cortisone shot help my knee?", tests[0].text),
        ("what is prp", "What is PRP?"),
        ("Why are these injections done at all?", tests[2].text),
        ("Why are these injections done at all?", tests[3].text),
    }


def test_no_training_example_copies_a_test_question() -> None:
    training = training_examples()
    assert len(training) > 100, "data/nlu yielded almost no training examples"
    questions = questions_by_file()
    for path, texts in questions.items():
        assert texts, f"no question texts read from {path.relative_to(ROOT)}"
    pairs = near_copies(training, [t for texts in questions.values() for t in texts])
    listing = "\n".join(
        f"  {ratio:.2f}  {example.origin}: {example.text!r}\n"
        f"        ~ {question.origin}: {question.text!r}"
        for example, question, ratio in sorted(pairs, key=lambda p: -p[2])
    )
    assert not pairs, f"{len(pairs)} training examples copy test questions:\n{listing}"


def _load(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("questions"), list)
    return data["questions"]


def _guide_sections() -> dict[str, set[int]]:
    return {
        path.name: {section.number for section in parse_document(path).sections}
        for path in sorted(SOURCES_DIR.glob("*.txt"))
    }


def test_real_questions_are_sourced_and_labelled() -> None:
    questions = _load(REAL_QUESTIONS)
    assert len(questions) >= 200
    sections = _guide_sections()
    covered = 0
    for question in questions:
        text = question.get("text")
        assert isinstance(text, str) and text.strip(), question
        assert re.match(r"https?://\S+$", str(question.get("source", ""))), question
        assert question.get("kind") in KINDS, question
        assert question.get("topic") is None or isinstance(question["topic"], str), (
            question
        )
        label = question.get("section")
        if label == NOT_COVERED:
            continue
        document, _, number = str(label).partition("#")
        assert document in sections, f"no such document: {question}"
        assert number.isdigit() and int(number) in sections[document], question
        covered += 1
    assert covered >= 70, f"only {covered} questions the guide covers"
    normals = [normalise(q["text"]) for q in questions]
    assert len(set(normals)) == len(normals), "duplicate questions"


def markdown_headings(path: Path) -> list[str]:
    return [
        match.group(1).strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if (match := re.match(r"^#{1,6}\s+(.+)$", line))
    ]


def docx_headings(path: Path) -> list[str]:
    docx = pytest.importorskip("docx")
    return [
        p.text.strip()
        for p in docx.Document(str(path)).paragraphs
        if p.style.name == "Title" or p.style.name.startswith("Heading")
    ]


def _headings(path: Path) -> list[str]:
    return docx_headings(path) if path.suffix == ".docx" else markdown_headings(path)


def test_leaflet_questions_name_a_heading_of_their_leaflet() -> None:
    questions = _load(LEAFLET_QUESTIONS)
    headings: dict[str, set[str]] = {}
    covered = not_covered = 0
    for question in questions:
        assert isinstance(question.get("text"), str) and question["text"].strip()
        document = question.get("document")
        if document == NOT_COVERED:
            assert "heading" not in question, question
            not_covered += 1
            continue
        path = FIXTURE_DOCUMENTS / str(document)
        assert path.is_file(), f"no such leaflet: {question}"
        if document not in headings:
            names = _headings(path)
            assert len(names) == len(set(names)), f"{document} repeats a heading"
            headings[document] = set(names)
        assert question.get("heading") in headings[document], question
        covered += 1
    assert covered >= 50 and not_covered >= 10


def test_dev_questions_name_a_heading_of_their_dev_leaflet() -> None:
    """The dev set's labels (and their `also:` alternatives) name real sections."""
    questions = _load(DEV_QUESTIONS)
    sections = _guide_sections()
    headings = {
        path.name: set(markdown_headings(path)) for path in DEV_DOCUMENTS.glob("*.md")
    }
    by_document = dict.fromkeys(headings, 0)
    not_covered = 0
    for question in questions:
        assert isinstance(question.get("text"), str) and question["text"].strip()
        label = question.get("section")
        if label == NOT_COVERED:
            assert "heading" not in question and "also" not in question, question
            not_covered += 1
            continue
        if label is not None:
            document, _, number = str(label).partition("#")
            assert int(number) in sections[document], question
            continue
        owed = [question, *(question.get("also") or [])]
        for other in owed:
            assert other.get("heading") in headings[other["document"]], question
        by_document[question["document"]] += 1
    assert all(count >= 9 for count in by_document.values()), by_document
    assert not_covered >= 70
    normals = [normalise(q["text"]) for q in questions]
    assert len(set(normals)) == len(normals), "duplicate questions"


def test_a_question_two_leaflets_answer_alike_is_owed_either_section(
    tmp_path: Path,
) -> None:
    path = tmp_path / "set.yml"
    path.write_text(
        "questions:\n"
        '  - text: "when can i take the plaster off"\n'
        "    document: a.md\n"
        '    heading: "Can I shower?"\n'
        "    also:\n"
        "      - document: b.md\n"
        '        heading: "Washing and the plaster"\n',
        encoding="utf-8",
    )
    (question,) = load_labelled(path)
    assert question.answered_by({"file": "a.md", "title": "Can I shower?"})
    cited = {"file": "b.md", "heading_path": ["After", "Washing and the plaster"]}
    assert question.answered_by(cited)
    assert not question.answered_by(
        {"file": "a.md", "title": "Washing and the plaster"}
    )


def _make_docx() -> Any:
    spec = importlib.util.spec_from_file_location(
        "make_docx", FIXTURE_DOCUMENTS / "make_docx.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_word_leaflet_holds_the_text_of_its_script() -> None:
    docx = pytest.importorskip("docx")
    make_docx = _make_docx()
    document = docx.Document(str(make_docx.OUTPUT))
    written = [(p.style.name, p.text) for p in document.paragraphs]
    expected = [(style or "Normal", text) for style, text in make_docx.LEAFLET]
    assert written == expected, "run tests/fixtures/documents/make_docx.py again"


def test_markdown_leaflet_has_nested_sections() -> None:
    text = (FIXTURE_DOCUMENTS / "aftercare-after-your-injection.md").read_text("utf-8")
    lines = text.splitlines()
    assert lines[0].startswith("# ")
    assert sum(line.startswith("## ") for line in lines) >= 6
    assert sum(line.startswith("### ") for line in lines) >= 3
