"""clinic.settings.Settings: one typed object for every setting, and .env.example from it."""

from __future__ import annotations

from pathlib import Path

from bot.__main__ import main
from clinic import settings
from clinic.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_env_example_is_generated_from_the_settings_and_current():
    written = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert written == settings.env_example(), (
        "run `python -m bot settings > .env.example`"
    )


def test_every_setting_is_in_env_example_once_with_its_default():
    text = settings.env_example()
    for name, default in (
        ("CLINIC_PHONE", "(555) 010-4477"),
        ("ACTION_TIMEOUT", "4"),
        ("SESSION_SECRET", ""),
    ):
        assert text.count(f"{name}=") == 1
        assert f"{name}={default}" in text


def test_values_are_read_by_their_type_and_a_mistyped_one_is_the_default():
    values = Settings.from_environ(
        {"MAX_MESSAGE_CHARS": "500", "ACTION_TIMEOUT": "2.5", "RASA_PORT": "port"}
    )
    assert values.max_message_chars == 500
    assert values.action_timeout == 2.5
    assert values.rasa_port == 5005
    assert Settings.from_environ({}).clinic_name == "our pain management clinic"


def test_a_secret_may_come_from_a_file(tmp_path):
    secret = tmp_path / "rest"
    secret.write_text("a-long-enough-secret-token\n")
    values = Settings.from_environ({"REST_TOKEN_FILE": str(secret)})
    assert values.rest_token == "a-long-enough-secret-token"


def test_the_functions_read_the_same_object(monkeypatch):
    monkeypatch.setenv("CLINIC_PHONE", "(555) 999-0000")
    monkeypatch.setenv("ACTION_TIMEOUT", "0.1")
    assert settings.clinic_phone() == "(555) 999-0000"
    assert settings.template_values()["clinic_phone"] == "(555) 999-0000"
    assert settings.action_timeout() == 0.5  # never below half a second


def test_the_command_prints_env_example(capsys):
    assert main(["settings"]) == 0
    assert capsys.readouterr().out == settings.env_example()
