"""Security settings and checks, without servers: API, secrets, REST input, sessions, headers.

The same behaviour over running servers is in tests/test_hardening.py.
"""

from __future__ import annotations

import json

import pytest

from bot import channels, rest, server, sessions, web
from clinic import settings

TOKEN = "t" * 32


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in (
        "RASA_ENABLE_API",
        "RASA_API_TOKEN",
        "RASA_JWT_SECRET",
        "ASSISTANT_PROFILE",
        "REST_TOKEN",
        "SESSION_SECRET",
        "ACTION_TOKEN",
        "REST_TOKEN_FILE",
        "SESSION_SECRET_FILE",
        "ACTION_TOKEN_FILE",
        "ALLOWED_ORIGINS",
    ):
        monkeypatch.delenv(name, raising=False)


def test_the_http_api_is_off_by_default():
    assert server.api_settings() == (False, None, None)


def test_the_http_api_is_never_enabled_without_a_secret(monkeypatch):
    monkeypatch.setenv("RASA_ENABLE_API", "true")
    with pytest.raises(server.ConfigurationError, match="RASA_API_TOKEN"):
        server.api_settings()
    monkeypatch.setenv("RASA_API_TOKEN", "from-the-environment")
    assert server.api_settings() == (True, "from-the-environment", None)
    monkeypatch.delenv("RASA_API_TOKEN")
    monkeypatch.setenv("RASA_JWT_SECRET", "jwt-from-the-environment")
    assert server.api_settings() == (True, None, "jwt-from-the-environment")


def test_the_local_profile_needs_no_secrets_but_the_action_token(monkeypatch):
    assert settings.production_problems() == []
    with pytest.raises(server.ConfigurationError, match="ACTION_TOKEN"):
        server.check_secrets()
    monkeypatch.setenv("ACTION_TOKEN", TOKEN)
    server.check_secrets()


def test_production_refuses_to_start_without_its_secrets(monkeypatch):
    monkeypatch.setenv("ASSISTANT_PROFILE", "production")
    monkeypatch.setenv("ACTION_TOKEN", TOKEN)
    monkeypatch.setenv("SESSION_SECRET", "short")
    with pytest.raises(server.ConfigurationError) as refused:
        server.check_secrets()
    assert "REST_TOKEN is not set" in str(refused.value)
    assert "SESSION_SECRET is shorter" in str(refused.value)
    monkeypatch.setenv("REST_TOKEN", TOKEN)
    monkeypatch.setenv("SESSION_SECRET", TOKEN)
    server.check_secrets()


def test_secrets_can_come_from_a_file_outside_git(monkeypatch, tmp_path):
    path = tmp_path / "action.token"
    path.write_text(TOKEN + "\n")
    monkeypatch.setenv("ACTION_TOKEN_FILE", str(path))
    assert settings.secret("ACTION_TOKEN") == TOKEN
    server.check_secrets()  # copied into the environment for endpoints.yml
    import os

    assert os.environ["ACTION_TOKEN"] == TOKEN


def test_bearer_tokens_must_match_exactly():
    assert settings.bearer_matches(f"Bearer {TOKEN}", TOKEN)
    assert settings.bearer_matches(f"bearer {TOKEN}", TOKEN)
    for header in (
        "",
        TOKEN,
        f"Basic {TOKEN}",
        f"Bearer {TOKEN}x",
        "Bearer ",
        "Bearer t",
    ):
        assert not settings.bearer_matches(header, TOKEN), header


def body(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not valid JSON"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (body([1, 2]), "JSON object"),
        (body("hello"), "JSON object"),
        (body(None), "JSON object"),
        (body({"message": "hi"}), '"sender"'),
        (body({"sender": "", "message": "hi"}), '"sender"'),
        (body({"sender": 5, "message": "hi"}), '"sender"'),
        (body({"sender": "s" * 256, "message": "hi"}), "at most 255"),
        (body({"sender": "a\x00b", "message": "hi"}), "printable"),
        (body({"sender": "p", "message": 5}), '"message" must be a string'),
        (body({"sender": "p", "message": None}), '"message" must be a string'),
        (body({"sender": "p", "message": ["hi"]}), '"message" must be a string'),
        (body({"sender": "p", "message": "hi", "metadata": "x"}), '"metadata"'),
        (body({"sender": "p", "message": "x" * 200_000}), "larger than"),
    ],
)
def test_bad_rest_bodies_are_refused_with_a_reason(raw, reason):
    with pytest.raises(rest.BadRequestError, match=reason):
        rest.parse_rest_body(raw, settings.max_socket_bytes())


def test_a_good_rest_body_is_cleaned_not_refused():
    sender, text, metadata = rest.parse_rest_body(
        body(
            {
                "sender": "p1",
                "message": "hi\x00 🙂 \u05e9\u05dc\u05d5\u05dd\ud800",
                "metadata": {"page": "/"},
            }
        ),
        settings.max_socket_bytes(),
    )
    assert (sender, text, metadata) == (
        "p1",
        "hi 🙂 \u05e9\u05dc\u05d5\u05dd",
        {"page": "/"},
    )


def test_client_ids_open_conversations_only_through_the_servers_secret(monkeypatch):
    monkeypatch.setenv("SESSION_SECRET", "s" * 32)
    sessions._secret.cache_clear()
    try:
        issued = sessions.new_id()
        assert sessions.acceptable(issued) and issued != sessions.new_id()
        for usable in (issued, "3f2b9c1e-8d4a-4e57-9b1a-2c7d5e6f8a90", "a" * 128):
            assert sessions.acceptable(usable)
        for unusable in (
            "",
            "1",
            "a" * 15,
            "a" * 129,
            "with space 0123456",
            None,
            42,
            {"session_id": issued},
            "é" * 20,
            "abc\n" * 8,
        ):
            assert not sessions.acceptable(unusable)
        conversation = sessions.conversation_id(issued)
        assert conversation == sessions.conversation_id(issued)  # a reload continues
        assert conversation != issued and issued not in conversation
        assert sessions.conversation_id(conversation) != conversation  # no way back in
        assert sessions.conversation_id(issued + "x") != conversation
        monkeypatch.setenv("SESSION_SECRET", "another-server-secret-0123456789")
        sessions._secret.cache_clear()
        assert sessions.conversation_id(issued) != conversation  # needs the secret
    finally:
        sessions._secret.cache_clear()


def test_the_pages_policy_allows_no_inline_script_and_frames_only_allowed_origins(
    monkeypatch,
):
    policy = web.content_security_policy()
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'self'" in policy and "example" not in policy
    monkeypatch.setenv(
        "ALLOWED_ORIGINS", "https://www.example-clinic.org/, https://b.example"
    )
    policy = web.content_security_policy()
    assert (
        "frame-ancestors 'self' https://www.example-clinic.org https://b.example"
        in policy
    )


def deep_list(depth: int) -> list:
    value: list = [1]
    for _ in range(depth - 1):
        value = [value]
    return value


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (
            b'{"sender": "p", "message": "hi", "metadata": '
            + b'{"a": ' * 5000
            + b"1"
            + b"}" * 5001,
            "nests too deeply|at most 20",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "larger than|nests too deeply"),
        (b"[" * 30_000 + b"]" * 30_000, "nests too deeply"),
        (
            body({"sender": "p", "message": "hi", "metadata": nested(500)}),
            "at most 20 levels",
        ),
        (
            body({"sender": "p", "message": "hi", "metadata": nested(21)}),
            "at most 20 levels",
        ),
        (
            body({"sender": "p", "message": "hi", "metadata": {"x": deep_list(20)}}),
            "at most 20 levels",
        ),
        (
            body({"sender": "p", "message": "hi", "metadata": {"x": "y" * 5000}}),
            "at most 4096 bytes",
        ),
        (body({"sender": "p", "message": "hi", "metadata": [1]}), "JSON object"),
        (
            body(
                {"sender": "0123456789abcdef0123456789abcdef01234567", "message": "hi"}
            ),
            "web chat",
        ),
    ],
)
def test_nested_large_or_web_chat_bodies_are_refused_with_a_reason(raw, reason):
    with pytest.raises(rest.BadRequestError, match=reason):
        rest.parse_rest_body(raw, settings.max_socket_bytes())


def test_metadata_up_to_the_bounds_and_other_senders_pass():
    for metadata in (nested(20), {"customData": {"language": "es"}}, {}):
        _, _, kept = rest.parse_rest_body(
            body({"sender": "p", "message": "hi", "metadata": metadata}),
            settings.max_socket_bytes(),
        )
        assert kept == metadata
    for sender in ("0123456789ABCDEF0123456789ABCDEF01234567", "z" * 40, "f" * 39):
        assert (
            rest.parse_rest_body(
                body({"sender": sender, "message": "hi"}), settings.max_socket_bytes()
            )[0]
            == sender
        )


def test_the_web_chats_conversation_ids_are_what_rest_refuses():
    conversation = sessions.conversation_id(sessions.new_id())
    with pytest.raises(rest.BadRequestError, match="web chat"):
        rest.parse_rest_body(
            body({"sender": conversation, "message": "hi"}), settings.max_socket_bytes()
        )


def test_json_depth_is_counted_without_recursion():
    assert channels.json_depth(1) == 0
    assert channels.json_depth({}) == 1
    assert channels.json_depth({"a": [1, {"b": []}]}) == 4
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert channels.json_depth(deep) == 100_001


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("text/plain", False),
        ("text/plain; charset=utf-8", False),
        ("application/x-www-form-urlencoded", False),
        ("multipart/form-data; boundary=x", False),
        ("", False),
        (None, False),
    ],
)
def test_rest_takes_json_only(content_type, accepted):
    assert rest.is_json_media_type(content_type) is accepted


@pytest.mark.parametrize(
    ("interface", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("clinic.example", False),
    ],
)
def test_which_interfaces_are_loopback(interface, loopback):
    assert rest.is_loopback(interface) is loopback


def test_rest_needs_its_token_beyond_loopback_or_in_production(monkeypatch):
    channel = rest.ClinicRest()
    assert not channel.needs_token()
    channel.listens_beyond_loopback = True
    assert channel.needs_token()
    monkeypatch.setenv("ASSISTANT_PROFILE", "production")
    assert rest.ClinicRest().needs_token()
