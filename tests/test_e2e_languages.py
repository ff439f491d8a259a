"""End to end over REST: Spanish and other languages, with and without the action server."""

import shutil
import signal
import sys
from pathlib import Path

import pytest

from bot.serve import free_port, wait_until_ready
from knowledge import settings
from knowledge.builder import build_store
from tests.test_e2e import (  # noqa: F401 (env: the fixture)
    contract,
    env,
    rasa_without_actions,
    say,
    start,
    stop,
    text,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SPANISH_LEAFLETS = Path(__file__).parent / "fixtures" / "documents" / "es"


@pytest.fixture(scope="module")
def assistant(env):  # noqa: F811
    """`python -m bot run`: the Rasa server and the action server."""
    process = start([sys.executable, "-m", "bot", "run"], env)
    try:
        assert wait_until_ready(int(env["RASA_PORT"]), timeout=180)
        yield f"http://127.0.0.1:{env['RASA_PORT']}"
    finally:
        stop(process, signal.SIGINT)


@pytest.fixture(scope="module")
def rasa_alone(env):  # noqa: F811
    """The Rasa server with its action server unreachable."""
    with rasa_without_actions(env) as base:
        yield base


SPANISH_EMERGENCY = "tengo fiebre y el cuello rígido después de la inyección"


def test_a_spanish_emergency_gets_the_spanish_emergency_reply(assistant):
    reply = say(assistant, "es-flag", SPANISH_EMERGENCY)
    assert contract(reply)["type"] == "emergency"
    assert reply[0]["text"].startswith("Esto podría ser una emergencia")
    assert "llame al 911" in reply[0]["text"].lower()


def test_spanish_self_harm_gets_the_crisis_line_in_spanish(assistant):
    reply = say(assistant, "es-crisis", "ya no quiero vivir")
    assert contract(reply)["type"] == "emergency"
    assert "988" in text(reply) and "Siento mucho" in text(reply)


def test_hola_a_spanish_question_and_a_call_back_in_spanish(assistant):
    hola = say(assistant, "es-chat", "hola")
    assert "¡Hola!" in text(hola) and "inglés" in text(hola)
    note = say(assistant, "es-chat", "¿cuánto cuesta una inyección en la rodilla?")
    assert "solo puedo responder preguntas en inglés" in text(note)
    assert "(555) 123-9876" in text(note) and "¿Quiere que le llamemos?" in text(note)
    assert "¿por qué nombre" in text(say(assistant, "es-chat", "sí"))
    assert "¿A qué número" in text(say(assistant, "es-chat", "me llamo María López"))
    reask = say(assistant, "es-chat", "mi celular")
    assert "Lo siento, eso no parece un número" in text(reask)
    assert "mejor hora" in text(say(assistant, "es-chat", "212 555 0147"))
    consent = say(assistant, "es-chat", "por la tarde, después de las 5")
    assert "Responda sí o no" in text(consent)
    done = say(assistant, "es-chat", "sí")
    assert "Gracias, María López" in text(done) and "después de las 5" in text(done)


def test_gracias_and_adios_get_spanish_small_talk(assistant):
    assert "De nada" in text(say(assistant, "es-bye", "muchas gracias"))
    assert "Cuídese" in text(say(assistant, "es-bye", "adiós"))


def test_another_language_gets_the_english_note_and_the_emergency_number(assistant):
    reply = say(
        assistant, "de-chat", "ich habe starke Rückenschmerzen nach der Spritze"
    )
    assert "only answer questions in English" in text(reply) and "911" in text(reply)


def test_english_after_spanish_is_answered_in_english(assistant):
    say(assistant, "es-then-en", "hola")
    reply = say(assistant, "es-then-en", "what can help my knee")
    assert contract(reply)["type"] == "knowledge"
    emergency = say(
        assistant, "es-then-en", "my throat is swelling and i can't breathe"
    )
    assert contract(emergency)["type"] == "emergency"
    assert emergency[0]["text"].startswith("This could be an emergency")


def test_without_the_action_server_spanish_emergencies_still_work(rasa_alone):
    reply = say(rasa_alone, "es-offline", SPANISH_EMERGENCY)
    assert contract(reply)["type"] == "emergency"
    assert "llame al 911" in reply[0]["text"].lower()
    crisis = say(rasa_alone, "es-offline-2", "quiero morirme")
    assert "988" in text(crisis) and "Siento mucho" in text(crisis)
    # A Spanish question needs the action server (it may have Spanish documents to
    # answer from): without it, the apology in Spanish, with the clinic's number.
    apology = say(rasa_alone, "es-offline-3", "¿qué es el PRP?")
    assert "Lo siento, no puedo responder eso aquí" in text(apology)
    assert "(555) 123-9876" in text(apology) and "911" in text(apology)


@pytest.fixture(scope="module")
def assistant_with_spanish_documents(env, tmp_path_factory):  # noqa: F811
    """`python -m bot run` on a store with the Spanish fixture leaflet (sources/es/)."""
    folder = tmp_path_factory.mktemp("spanish-store")
    sources = folder / "sources"
    shutil.copytree(settings.SOURCES_DIR, sources)
    shutil.copytree(SPANISH_LEAFLETS, sources / "es")
    url = f"sqlite:///{folder / 'knowledge.db'}"
    build_store(url=url, sources_dir=sources)
    spanish_env = {
        **env,
        "KNOWLEDGE_DB_URL": url,
        "CONVERSATIONS_DB": str(folder / "c.db"),
        "ACTION_PORT": str(free_port()),
        "RASA_PORT": str(free_port()),
    }
    process = start([sys.executable, "-m", "bot", "run"], spanish_env)
    try:
        assert wait_until_ready(int(spanish_env["RASA_PORT"]), timeout=180)
        yield f"http://127.0.0.1:{spanish_env['RASA_PORT']}"
    finally:
        stop(process, signal.SIGINT)


def test_with_spanish_documents_a_spanish_question_is_answered_from_them(
    assistant_with_spanish_documents,
):
    base = assistant_with_spanish_documents
    reply = say(base, "es-docs", "tomo anticoagulantes, cuando los vuelvo a tomar?")
    answer = contract(reply)
    assert answer["type"] == "knowledge", reply
    assert answer["sections"][0]["file"] == "es/cuidados-despues-de-la-inyeccion.md"
    assert "Fuente: Cuidados después de su inyección" in text(reply)
    english = say(base, "en-docs", "can injections help my knee arthritis")
    assert contract(english)["type"] == "knowledge"
    assert contract(english)["sections"][0]["file"].endswith(".txt")
    emergency = say(base, "es-docs", SPANISH_EMERGENCY)
    assert contract(emergency)["type"] == "emergency"
