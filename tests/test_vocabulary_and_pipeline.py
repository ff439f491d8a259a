import pytest

from knowledge import pipeline, settings
from knowledge.vocabulary import (
    ENTITY_KINDS,
    entity_patterns,
    generated_files,
    load_vocabulary,
    parse_vocabulary,
    project_vocabulary,
)


def test_generated_files_are_up_to_date():
    """Fails when vocabulary.yml changed without `make generate`."""
    for path, expected in generated_files().items():
        assert path.read_text(encoding="utf-8") == expected, (
            f"{path.relative_to(settings.PROJECT_ROOT)} is stale: run `make generate`"
        )


def test_vocabulary_has_the_terms_the_issue_names():
    names = {t.name for t in project_vocabulary().terms}
    for expected in [
        "epidural steroid injection",
        "nerve block",
        "selective nerve root block",
        "trigger point injection",
        "hyaluronic acid injection",
        "platelet-rich plasma",
        "bone marrow aspirate",
        "osteoarthritis",
        "rheumatoid arthritis",
        "bursitis",
        "tendonitis",
        "sciatica",
        "myofascial pain syndrome",
        "knee",
        "hip",
        "shoulder",
        "back",
        "neck",
    ]:
        assert expected in names


def test_unknown_related_term_is_rejected():
    with pytest.raises(ValueError, match="unknown related term"):
        parse_vocabulary({"terms": {"body_area": {"knee": {"related": ["nothing"]}}}})


def test_patterns_cover_every_phrase_with_its_kind():
    vocab = load_vocabulary()
    patterns = entity_patterns(vocab)
    assert {p["label"] for p in patterns} == set(ENTITY_KINDS)
    assert any(
        p["id"] == "hyaluronic acid injection" and p["pattern"][0] == {"LOWER": "gel"}
        for p in patterns
    )


@pytest.fixture(scope="module")
def nlp():
    pipeline.build()
    return pipeline.load()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "I had a PRP shot in both Knees",
            {("injection_type", "platelet-rich plasma"), ("body_area", "knee")},
        ),
        (
            "would a gel shot help my osteoarthritis",
            {
                ("injection_type", "hyaluronic acid injection"),
                ("condition", "osteoarthritis"),
            },
        ),
        (
            "Platelet-Rich Plasma for tendonitis",
            {("injection_type", "platelet-rich plasma"), ("condition", "tendonitis")},
        ),
        ("my lower back and neck", {("body_area", "back"), ("body_area", "neck")}),
        (
            "selective nerve root block vs nerve block",
            {
                ("injection_type", "selective nerve root block"),
                ("injection_type", "nerve block"),
            },
        ),
        ("my sciatica is killing me", {("condition", "sciatica")}),
        ("the weather is nice", set()),
    ],
)
def test_entity_ruler_finds_vocabulary_terms(nlp, text, expected):
    assert {(e.label_, e.ent_id_) for e in nlp(text).ents} == expected


def test_patterns_survive_initialize_and_a_reload(nlp):
    # nlp.initialize() clears entity-ruler patterns added before it; the build adds them after.
    assert len(nlp.get_pipe("entity_ruler").patterns) == len(
        entity_patterns(load_vocabulary())
    )


def test_lemmas_are_lowercase_and_drop_stop_words(nlp):
    doc = nlp("Injections help the Knees")
    assert pipeline.lemmas(doc, nlp) == ["injection", "help", "knee"]


def test_build_is_skipped_when_up_to_date(tmp_path):
    target = tmp_path / "pipe"
    assert pipeline.build(target) is True
    assert pipeline.build(target) is False


def test_the_intents_the_code_names_are_the_domains():
    import yaml

    from clinic import intents

    domain_file = settings.PROJECT_ROOT / "domain.yml"
    domain = yaml.safe_load(domain_file.read_text(encoding="utf-8"))
    named = {
        intents.RED_FLAG_INTENT,
        intents.SELF_HARM_INTENT,
        intents.OTHER_LANGUAGE_INTENT,
        *intents.EMERGENCY_INTENTS,
    }
    assert named <= set(domain["intents"])
