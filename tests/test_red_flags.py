"""The red-flag detector against tables of emergencies and near misses.

Every tests/nlu/red_flags*.yml is read by its format (bench.quality.red_flag_tables):
`language:`, `emergencies: [{text, kind}]`, `near_misses:`. red_flags.yml,
red_flags_holdout.yml and red_flags_blind.yml were each written by someone who had not seen
the detector, measured (docs/benchmarks.md), and then used to improve it; the dev tables
(red_flags_dev*_en.yml, red_flags_dev*_es.yml: patients' phone English and Spanish, issue 13)
were written with it. Every tuning table must meet the targets: recall 1.00 and at most 4 %
false alarms. red_flags_final.yml was written blind and measured once, untuned: it has
floors from that measurement, not a full pass. The patients' tables
(bench.quality.BLIND_RED_FLAG_TABLES) are measured by `make bench` only.
"""

from pathlib import Path

import pytest
import yaml

from bench.quality import BLIND_RED_FLAG_TABLES, red_flag_tables
from bot.red_flags import RedFlagDetector, project_detector
from knowledge.vocabulary import load_vocabulary

TABLES = Path(__file__).parent / "nlu"
#: Measured once and never tuned on: floors below, not the targets.
# Tables written apart from the detector and never used to tune it: `make bench` reports
# them (bench.quality); gating on them would make them tuning tables.
UNTUNED = {"red_flags_final.yml", *BLIND_RED_FLAG_TABLES}
TARGET_RECALL = 1.0
TARGET_FALSE_ALARMS = 0.04


def load(name):
    return yaml.safe_load((TABLES / name).read_text())


def emergencies(name):
    return [
        pytest.param(e["text"], e["kind"], id=e["text"][:40])
        for e in load(name)["emergencies"]
    ]


def near_misses(name):
    return [pytest.param(t, id=t[:40]) for t in load(name)["near_misses"]]


@pytest.fixture(scope="module")
def detector() -> RedFlagDetector:
    return project_detector()


TUNED = ["red_flags.yml", "red_flags_holdout.yml", "red_flags_blind.yml"]


@pytest.mark.parametrize(("text", "kind"), [p for t in TUNED for p in emergencies(t)])
def test_emergencies_are_detected_with_the_right_reply(detector, text, kind):
    flag = detector.detect(text)
    assert flag is not None, text
    assert flag.reply == ("crisis" if kind == "self_harm" else "emergency")


@pytest.mark.parametrize("text", [p for t in TUNED for p in near_misses(t)])
def test_near_misses_are_not_emergencies(detector, text):
    assert detector.detect(text) is None


@pytest.mark.parametrize(
    "table",
    [t for t in red_flag_tables(TABLES) if t.name not in UNTUNED],
    ids=lambda t: t.name,
)
def test_every_table_meets_the_targets(detector, table):
    missed = [
        t for t in table.emergencies if detector.detect(t, table.language) is None
    ]
    alarms = [t for t in table.near_misses if detector.detect(t, table.language)]
    assert 1 - len(missed) / len(table.emergencies) >= TARGET_RECALL, missed
    assert len(alarms) / len(table.near_misses) <= TARGET_FALSE_ALARMS, alarms


def test_the_patients_phone_tables_are_gated_in_both_languages():
    gated = {t.name: t for t in red_flag_tables(TABLES) if t.name not in UNTUNED}
    for name in ("red_flags_dev2", "red_flags_dev3"):
        assert gated[f"{name}_en.yml"].language == "en"
        assert gated[f"{name}_es.yml"].language == "es"
    sizes = [
        len(gated[f"red_flags_dev2_{lang}.yml"].emergencies) for lang in ("en", "es")
    ]
    assert min(sizes) >= 100


def test_every_table_is_read_with_its_language():
    languages = {t.name: t.language for t in red_flag_tables(TABLES)}
    assert languages["red_flags.yml"] == "en"
    assert languages["red_flags_dev_es.yml"] == "es"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("I think I'm having an allergic reaction to the shot", "allergic_reaction"),
        ("I fainted and feel like I'm going to pass out again", "fainting"),
        ("tengo fiebre y el cuello rígido después de la inyección", "stiff_neck"),
        ("se me están hinchando los labios", "breathing_swelling"),
        ("quiero morirme", "self_harm"),
    ],
)
def test_the_issues_phrasings_are_caught(detector, text, kind):
    flag = detector.detect(text)
    assert flag is not None and flag.kind == kind


@pytest.mark.parametrize(
    "text",
    [
        "stiff neck in the mornings, can trigger point injections help?",
        "what if I have an allergic reaction?",
        "I had an allergic reaction to penicillin last year",
        "no tengo fiebre ni escalofríos",
        "¿y si me da fiebre después de la inyección?",
        "tuve fiebre la semana pasada pero ya estoy bien",
        "i'm not suicidal, just frustrated",  # a Spanish pattern, an English negation
    ],
)
def test_questions_negations_the_past_and_suppositions_are_not(detector, text):
    assert detector.detect(text) is None


def test_a_supposition_after_the_report_does_not_hide_it(detector):
    assert detector.detect("I have a fever now, what if it gets worse?") is not None


def test_a_flag_in_the_messages_language_comes_first(detector):
    # "pus" is an English and a Spanish pattern; with Spanish known, the Spanish one.
    assert detector.detect("sale pus", "es").language == "es"
    assert detector.detect("pus coming out", "en").language == "en"


@pytest.mark.parametrize(
    "text",
    [
        "can injections help headaches?",
        "my sciatica is killing me",
        "what helps my knee",
        "I don't have a fever, just a sore back",
        "never had chest pain, only back pain",
        "i think im allergic to the dye, is that a problem",
        "i could die of boredom waiting for my appointment",
        "",
        "   ",
    ],
)
def test_ordinary_questions_named_in_the_issue_are_not_emergencies(detector, text):
    assert detector.detect(text) is None


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("I have had a FEVER and chills since the epidural", "fever"),
        ("worst headache of my life, worse when I sit up", "headache"),
        ("sudden numbness in my groin after the shot", "saddle_numbness"),
        ("i want to kill myself", "self_harm"),
        ("honestly i just want to die", "self_harm"),
        ("i wish i was dead", "self_harm"),
        ("chest pian since this morning", "chest_pain"),  # typo folded
        ("my throat is swelling and i cant breathe", "breathing_swelling"),
    ],
)
def test_kinds(detector, text, kind):
    flag = detector.detect(text)
    assert flag is not None and flag.kind == kind


def test_self_harm_outranks_other_flags_and_is_not_suppressed_by_a_question(detector):
    flag = detector.detect("is it normal to have a fever and want to end my life?")
    assert flag is not None and flag.kind == "self_harm"


def test_common_words_are_not_folded_into_symptoms(detector):
    assert (
        detector.fold_typos("never mind, dumb question") == "never mind, dumb question"
    )
    assert detector.fold_typos("chils and temprature") == "chills and temperature"


def test_remembered_typo_checks_are_bounded(monkeypatch):
    """A long-running server does not keep every word patients typed (issue 14)."""
    from bot import red_flags

    monkeypatch.setattr(red_flags, "_FOLDED_CAPACITY", 50)
    detector = RedFlagDetector(load_vocabulary())
    for number in range(200):
        detector.fold_typos("word" + "".join(chr(97 + int(d)) for d in str(number)))
    assert len(detector._folded) == 50
    assert detector.fold_typos("chils") == "chills"  # still folds after forgetting


def test_final_blind_table_floors(detector):
    """Measured once, never tuned on (docs/benchmarks.md); floors, not targets."""
    path = TABLES / "red_flags_final.yml"
    if not path.exists():
        pytest.skip("no blind table")
    table = yaml.safe_load(path.read_text())
    found = [detector.detect(e["text"]) is not None for e in table["emergencies"]]
    alarms = [detector.detect(t) is not None for t in table["near_misses"]]
    assert sum(found) / len(found) >= BLIND_RECALL_FLOOR
    assert sum(alarms) / len(alarms) <= BLIND_FALSE_ALARM_CEILING


# From the one measurement (28/36 found, 2/30 false alarms; docs/benchmarks.md): a change
# that makes the detector generalise worse fails here.
BLIND_RECALL_FLOOR = 0.75
BLIND_FALSE_ALARM_CEILING = 0.10


def test_vocabulary_rejects_a_bad_pattern(tmp_path):
    bad = tmp_path / "v.yml"
    bad.write_text("red_flags:\n  x:\n    patterns: ['(unclosed']\n")
    with pytest.raises(ValueError, match="bad pattern"):
        load_vocabulary(bad)


def test_the_worst_headache_ever_is_an_emergency(detector):
    # "ever had" after a symptom is how the worst headache of a life is described,
    # not a sign that it is past.
    assert (
        detector.detect("worst headache i've ever had, since the epidural") is not None
    )
    assert detector.detect("have you ever had a stroke?") is None


def test_a_word_set_stands_for_its_words(tmp_path):
    path = tmp_path / "v.yml"
    path.write_text(
        "red_flag_words:\n  limb: ['legs?', 'arms?']\n"
        "red_flags:\n  x:\n    patterns: ['\\b<limb> gave out\\b', '(?<!no )numb']\n"
    )
    detector = RedFlagDetector(load_vocabulary(path))
    assert detector.detect("my arm gave out") is not None
    assert detector.detect("my legs gave out") is not None
    assert detector.detect("my head gave out") is None
    assert detector.detect("feels numb") is not None  # (?<! is the regex's own


def test_an_unknown_word_set_is_an_error(tmp_path):
    path = tmp_path / "v.yml"
    path.write_text("red_flags:\n  x:\n    patterns: ['<nothing> here']\n")
    with pytest.raises(ValueError, match="unknown word set <nothing>"):
        load_vocabulary(path)


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("i didnt pass out, just felt tired", False),
        ("i wet myself and didn't even notice", True),
        ("not sure why but my legs gave out on the stairs", True),
        ("las piernas no las tengo débiles", False),
        ("las piernas no me responden desde la inyección", True),
        ("me da miedo desmayarme con las agujas", False),
        ("tengo miedo, me desmayé en el baño", True),
        ("is it normal tener fiebre después del shot?", False),
    ],
)
def test_negations_fears_and_mixed_questions(detector, text, flagged):
    assert (detector.detect(text) is not None) == flagged


def test_spanish_typos_are_folded_too_but_not_common_words_or_inflections(detector):
    assert detector.fold_typos("tengo fiebra", "es") == "tengo fiebre"
    assert detector.fold_typos("me duele el pexho", "es") == "me duele el pecho"
    # "techo" and "pelo" are Spanish words; "entumida" is the pattern stem's inflection.
    assert detector.fold_typos("el techo y el pelo", "es") == "el techo y el pelo"
    assert detector.fold_typos("pierna entumida", "es") == "pierna entumida"
    flag = detector.detect("no siento las nalagas desde el bloqueo", "es")
    assert flag is not None and flag.kind == "saddle_numbness"


def test_an_inflection_is_not_folded_onto_a_neighbouring_keyword(detector):
    # "entumido" inflects the stem "entumid"; one letter from "entumio", it stays itself.
    assert detector.fold_typos("el brazo entumido", "es") == "el brazo entumido"
    # A word that only begins with a short keyword ("temp") is still a typo to fold.
    assert "temperature" in detector.fold_typos("a high temprature", "en")


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        # An article or pronoun first makes a question only when it is asked as one.
        ("la herida del piquete no deja de sangrar desde anoche", True),
        ("la inyeccion deja marca?", False),
        ("me va a reventar la cabeza del dolor", True),
        ("me va a doler la cabeza despues?", False),
        ("si me da comezon en todo el cuerpo debo llamar?", False),
        # Past, checked or named as a side effect: not a report.
        ("the chest tightness was checked last month and it was reflux", False),
        ("passing out is a known side effect, right?", False),
        ("fever-free since sunday, can i keep my appointment?", False),
        ("me durmieron la pierna para la cirugia y ya se me paso", False),
        # Worse than before the procedure is not "before the procedure".
        (
            "the pain is much worse than before the injection and i cant sleep, unbearable",
            True,
        ),
        ("el dolor antes del bloqueo era horrible, ahora casi nada", False),
        ("if i pass out in the chair, what happens?", False),
        ("my one worry is the needle hole getting infected", False),
        ("the nurse said many patients feel faint afterwards", False),
        ("the numbness turned out to be a trapped nerve in my wrist", False),
        ("i cant sit up without my head pounding like crazy", True),
        ("si me salen ronchas que hago?", False),
        ("tengo historial de desmayos, me puedo acostar?", False),
        ("nunca en mi vida me han dado escalofrios asi, estoy temblando", True),
        ("nunca en mi vida me he desmayado", False),
        # A match spanning "the site ... no redness" says the site is fine.
        ("the needle spot seems fine, no swelling", False),
        ("el piquete luce bien, nada hinchado", False),
        ("how likely is it to faint during the procedure?", False),
        ("i used to get hives from wool", False),
        ("me dio urticaria de chiquita con los mariscos", False),
        ("i don't have any thoughts of ending my life", False),
        ("no creo que pueda seguir viviendo con este dolor", True),
        ("sin avisar me hice pipi en el autobus", True),
        ("my neck goes stiff when i drive for hours", False),
        ("my arms have gone to mush since the block", True),
        ("would chills after a nerve block be something to worry about?", False),
        ("escalofrios ninguno, todo bien", False),
        ("seria preocupante que se me hinche el piquete?", False),
    ],
)
def test_context_rules_of_the_fifth_to_eighth_rounds(detector, text, flagged):
    """Each case is one general rule (dev5-dev8 rounds), in words of no table."""
    assert (detector.detect(text) is not None) == flagged, text


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        # Pain out of control now needs no procedure named: a <severe> word with an
        # <uncontrolled> one ("nothing helps", "screaming", "can't move", "on the floor").
        ("the pain is off the scale, 10/10, the tablets are doing nothing", True),
        ("el dolor sigue en 10 y ni los calmantes me sirven", True),
        ("me duele tantisimo la cadera que no puedo ni caminar", True),
        # Relatives' words for confusion and stroke signs.
        ("my grandad is so muddled today, thinks its 1990", True),
        ("i'm a bit muddled about which form to fill in", False),
        ("she didn't recognise her own sister at lunch", True),
        ("his words won't come out properly since this afternoon", True),
        ("my left side has gone numb and floppy", True),
        # Blacking out something on paper is not blacking out.
        ("crossed out and blacked out my old address on the letter", False),
        ("blacked out in the kitchen this morning", True),
        # Spanish verb forms of other people and other regions.
        ("a mi papa le revienta la cabeza desde la manana", True),
        ("se le durmio toda la pierna a mi esposo", True),
        ("me prive en la fila del banco", True),
        ("me privo de los dulces por la dieta", False),
        ("se me puso todo borroso el ojo derecho", True),
        ("mi hija dice que se quiere hacer dano", True),
        # A long-standing condition or an everyday cause named as the cause, unless asked.
        (
            "my uncle lost the sight in one eye because of glaucoma, is the steroid safe?",
            False,
        ),
        ("i cant see out of my left eye, is it from my diabetes?", True),
        ("tengo la mano dormida de estar en la compu", False),
        # Someone else's episode told by a writer who expects to be fine; people in general.
        ("my brother fainted at his appointment but i'm confident i'll be fine", False),
        (
            "mi primo se desmayo en su cita pero estoy segura de que voy a estar bien",
            False,
        ),
        ("booked in for thursday, do patients usually faint", False),
        ("la gente se desmaya con esto?", False),
    ],
)
def test_context_rules_of_the_ninth_round(detector, text, flagged):
    """Each case is one general rule of the dev9 round, in words of no table."""
    assert (detector.detect(text) is not None) == flagged, text
