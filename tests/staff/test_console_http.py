"""The staff console over HTTP, on the running assistant (tests/staff/conftest.py)."""

from __future__ import annotations

import csv
import io
import uuid

import pytest

from tests.staff.conftest import PASSWORD, csrf_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PATIENT_PAGES = [
    "/staff/",
    "/staff/callbacks",
    "/staff/ask",
    "/staff/export.csv",
]


def sender() -> str:
    return f"patient-{uuid.uuid4().hex[:12]}"


def add_callback(console, conversation_id: str) -> int:
    console.sql(
        "INSERT INTO callback_requests (conversation_id, name, phone, best_time, consent,"
        " urgency, status, created_at, updated_at)"
        " VALUES (?, 'Pat Doe', '+15550109999', 'mornings', 1, 'emergency', 'new',"
        " datetime('now'), datetime('now'))",
        conversation_id,
    )
    return console.sql(
        "SELECT id FROM callback_requests WHERE conversation_id = ?", conversation_id
    )[0][0]


def test_nothing_about_patients_without_a_login(console) -> None:
    patient = sender()
    console.say(patient, "how much does a nerve block cost")
    client = console.client()
    for path in [*PATIENT_PAGES, f"/staff/conversations/{patient}"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["location"].startswith("/staff/login?next=")
        assert patient not in response.text
    posted = client.post("/staff/ask", data={"question": "fever"})
    assert posted.status_code == 403
    forged = client.get("/staff/", cookies={"staff_session": "made-up"})
    assert forged.status_code == 302


def test_login_sets_a_safe_cookie_and_shows_the_urgent_conversation_first(
    console,
) -> None:
    calm, urgent = sender(), sender()
    console.say(calm, "what helps my knee?")
    console.say(urgent, "I have had a fever and chills since my epidural yesterday")
    client, response = console.login("nurse")
    assert response.status_code == 303 and response.headers["location"] == "/staff"
    cookie = response.headers["set-cookie"]
    assert (
        "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/staff" in cookie
    )
    assert "Secure" not in cookie  # plain http on localhost (STAFF_COOKIE_SECURE=auto)
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    rows = page.text.split('data-conversation="')[1:]
    assert rows[0].startswith(urgent) and "badge emergency" in rows[0]
    assert any(r.startswith(calm) for r in rows)
    assert 'data-refresh="2"' in page.text and "/staff/static/console.js" in page.text
    transcript = client.get(f"/staff/conversations/{urgent}")
    assert (
        "fever and chills" in transcript.text
        and 'badge type">emergency' in transcript.text
    )


def test_secure_cookie_behind_an_https_proxy(console) -> None:
    client = console.client()
    form = client.get("/staff/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in form.headers["set-cookie"]


def test_login_form_without_the_csrf_token_or_from_another_site_is_rejected(
    console,
) -> None:
    client = console.client()
    form = client.get("/staff/login")
    token = csrf_of(form.text)
    missing = client.post("/staff/login", data={"name": "nurse", "password": PASSWORD})
    assert missing.status_code == 403 and "staff_session=" not in missing.headers.get(
        "set-cookie", ""
    )
    other_site = client.post(
        "/staff/login",
        data={"csrf": token, "name": "nurse", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status_code == 403
    hidden_origin = client.post(
        "/staff/login",
        data={"csrf": token, "name": "nurse", "password": PASSWORD},
        headers={"Origin": "null"},
    )
    assert hidden_origin.status_code == 403


def test_callback_status_change_needs_csrf_and_persists(console) -> None:
    patient = sender()
    console.say(patient, "I want to end my life")
    callback = add_callback(console, patient)
    client, _ = console.login("nurse")
    page = client.get("/staff/callbacks")
    assert "+15550109999" in page.text
    token = csrf_of(page.text)
    forged = client.post(
        f"/staff/callbacks/{callback}/status",
        data={"status": "called", "csrf": "x" * 43},
    )
    assert forged.status_code == 403
    no_token = client.post(
        f"/staff/callbacks/{callback}/status", data={"status": "called"}
    )
    assert no_token.status_code == 403
    assert console.sql("SELECT status FROM callback_requests WHERE id=?", callback) == [
        ("new",)
    ]
    bad = client.post(
        f"/staff/callbacks/{callback}/status", data={"status": "gone", "csrf": token}
    )
    assert bad.status_code == 400
    for status in ("called", "closed"):
        done = client.post(
            f"/staff/callbacks/{callback}/status",
            data={"status": status, "csrf": token},
        )
        assert done.status_code == 303
        assert console.sql(
            "SELECT status FROM callback_requests WHERE id=?", callback
        ) == [(status,)]
    listed = client.get("/staff/", params={"urgency": "emergency"}).text
    assert patient in listed


def test_wrong_passwords_are_slowed_down(console) -> None:
    assert console.add_account("throttled").returncode == 0
    client = console.client()
    statuses = [
        console.login("throttled", "wrong password!!", client)[1].status_code
        for _ in range(5)
    ]
    assert statuses == [401] * 5
    _, locked = console.login("throttled", PASSWORD, client)
    assert locked.status_code == 429
    assert "Try again in" in locked.text
    assert "staff_session=" not in locked.headers.get("set-cookie", "")
    # Let the others in again (the client address is throttled too).
    console.sql("DELETE FROM staff_login_failures")
    _, allowed = console.login("throttled", PASSWORD)
    assert allowed.status_code == 303


def test_a_session_expires_and_logout_ends_it(console) -> None:
    client, _ = console.login("nurse")
    assert client.get("/staff/").status_code == 200
    console.sql(
        "UPDATE staff_sessions SET expires_at = datetime('now', '-1 minute')"
        " WHERE token_digest = (SELECT token_digest FROM staff_sessions"
        " ORDER BY created_at DESC LIMIT 1)"
    )
    assert client.get("/staff/").status_code == 302
    client, _ = console.login("nurse")
    page = client.get("/staff/")
    assert page.status_code == 200
    out = client.post("/staff/logout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303
    client.cookies.clear()
    stale = console.client()
    stale.cookies.update(
        {"staff_session": out.request.headers["cookie"].split("=", 1)[1]}
    )
    assert stale.get("/staff/").status_code == 302


def test_unknown_accounts_and_bad_new_accounts(console) -> None:
    _, response = console.login("nobody-here")
    assert response.status_code == 401
    assert "Wrong name or password" in response.text
    short = console.add_account("shorty", "short")
    assert short.returncode == 1 and "12 characters" in short.stderr
    listed = console.add_account("nurse")  # a new password for an existing account
    assert listed.returncode == 0


def test_export_of_unanswered_questions_is_safe_csv(console) -> None:
    patient = sender()
    console.say(patient, '=HYPERLINK("http://evil.example") how much does it cost')
    console.say(patient, "how long does relief last? call me on 555 201 3344")
    client, _ = console.login("nurse")
    export = client.get("/staff/export.csv")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    rows = [
        r
        for r in csv.DictReader(io.StringIO(export.text))
        if r["conversation"] == patient
    ]
    questions = [r["question"] for r in rows]
    assert questions[0].startswith("'=HYPERLINK")
    assert any("[phone]" in q and "201 3344" not in q for q in questions)
    assert all(r["answer_type"] in {"not_covered", "handoff", "clarify"} for r in rows)
    empty = client.get(
        "/staff/export.csv", params={"since": "2000-01-01", "until": "2000-01-02"}
    )
    assert empty.text.strip().count("\n") == 0


def test_ask_the_assistant_writes_no_conversation(console) -> None:
    client, _ = console.login("nurse")
    page = client.get("/staff/ask")
    before = console.sql("SELECT count(*), count(DISTINCT sender_id) FROM events")
    flagged = client.post(
        "/staff/ask",
        data={
            "csrf": csrf_of(page.text),
            "question": "I have a fever after my injection",
        },
    )
    assert flagged.status_code == 200
    assert "RED FLAG" in flagged.text and "report_red_flag" in flagged.text
    assert 'badge type">emergency' in flagged.text
    answered = client.post(
        "/staff/ask", data={"csrf": csrf_of(page.text), "question": "what is PRP?"}
    )
    assert "no red flag" in answered.text
    assert "Regenerative Medicine" in answered.text
    assert 'badge type">knowledge' in answered.text
    empty = client.post(
        "/staff/ask", data={"csrf": csrf_of(page.text), "question": "  "}
    )
    assert "Type a question first" in empty.text
    after = console.sql("SELECT count(*), count(DISTINCT sender_id) FROM events")
    assert after == before


def test_the_chat_form_makes_a_callback_and_a_cancelled_one_does_not(console) -> None:
    asked, cancelled, halfway = sender(), sender(), sender()
    for text in [
        "can someone call me back?",
        "Sam Lee",
        "(212) 555-0177",
        "evenings",
        "yes",
    ]:
        console.say(asked, text)
    console.say(cancelled, "can someone call me back?")
    console.say(cancelled, "never mind")
    console.say(halfway, "can someone call me back?")
    console.say(halfway, "Kim")
    assert console.sql(
        "SELECT count(*) FROM callback_requests WHERE conversation_id = ?", asked
    ) == [(1,)]
    client, _ = console.login("nurse")
    listed = client.get("/staff/", params={"urgency": "callback"}).text
    assert asked in listed and halfway in listed
    assert cancelled not in listed


def test_the_server_log_has_no_contact_details(console) -> None:
    """Runs last: the tests above showed phone numbers and names on the console."""
    patient = sender()
    console.say(patient, "my email is pat.doe@mail.example.org, phone 555 201 7788")
    client, _ = console.login("nurse")
    assert (
        "pat.doe@mail.example.org" in client.get(f"/staff/conversations/{patient}").text
    )
    log = console.log.read_text(errors="replace")
    assert "staff" in log or "assistant ready" in log  # the log is being written
    for secret in [
        "+15550109999",
        "pat.doe@mail.example.org",
        "201 7788",
        "201 3344",
        "555-0177",
        "+12125550177",
        "Sam Lee",
        PASSWORD,
    ]:
        assert secret not in log


def test_the_list_and_the_transcript_show_the_language(console) -> None:
    spanish, english = sender(), sender()
    console.say(spanish, "hola")
    console.say(spanish, "¿cuánto cuesta una inyección?")
    console.say(english, "what helps my knee?")
    client, _ = console.login("nurse")
    page = client.get("/staff")
    rows = {r[: len(spanish)]: r for r in page.text.split('data-conversation="')[1:]}
    assert '<td class="language">es</td>' in rows[spanish]
    assert '<td class="language">en</td>' in rows[english]
    transcript = client.get(f"/staff/conversations/{spanish}").text
    assert "language es" in transcript and "patient · es · intent" in transcript
