"""The outside probe's findings on the staff console, over HTTP (docs/security.md).

Lock-out by someone else's wrong tries, accounts disabled and removed from the command
line, transcripts of conversations with odd ids, and dates outside 1970-2100. The
console runs as behind a proxy on this machine (TRUSTED_PROXIES=127.0.0.1), so a test
says which address each request came from as that proxy would.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from urllib.parse import unquote

import httpx
import pytest

from tests.staff.conftest import PASSWORD, csrf_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WRONG = "not the password at all"


def login_from(console, name: str, password: str, forwarded_for: str):
    """Log in as `name` from the address a proxy names: (client, response)."""
    client = console.client()
    headers = {"X-Forwarded-For": forwarded_for}
    form = client.get("/staff/login", headers=headers)
    # Behind a proxy the cookies are Secure (the proxy speaks https to the browser);
    # this test talks plain http to the server, so it sends the form's cookie itself.
    cookie = "; ".join(f"{key}={value}" for key, value in form.cookies.items())
    response = client.post(
        "/staff/login",
        data={"csrf": csrf_of(form.text), "name": name, "password": password},
        headers={**headers, "Cookie": cookie},
    )
    return client, response


def staff_command(console, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", "staff", *args],
        env=console.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_someone_elses_wrong_tries_never_refuse_the_right_password(console) -> None:
    name = f"frontdesk-{uuid.uuid4().hex[:6]}"
    assert console.add_account(name).returncode == 0
    attacker = "203.0.113.66"
    statuses = [
        login_from(console, name, WRONG, attacker)[1].status_code for _ in range(7)
    ]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429] * 2
    # Writing another address in front of the proxy's does not get the attacker out.
    spoofed = login_from(console, name, PASSWORD, f"198.51.100.7, {attacker}")[1]
    assert spoofed.status_code == 429
    # The member of staff, from their own address, gets in at once.
    _, staff = login_from(console, name, PASSWORD, "198.51.100.7")
    assert staff.status_code == 303, staff.text
    assert "staff_session=" in staff.headers.get("set-cookie", "")


def test_many_addresses_guessing_one_name_slow_it_down_but_never_lock_it(
    console,
) -> None:
    name = f"nurse-{uuid.uuid4().hex[:6]}"
    assert console.add_account(name).returncode == 0
    for address in range(24):
        _, refused = login_from(console, name, WRONG, f"203.0.113.{address}")
        assert refused.status_code == 401
    _, staff = login_from(console, name, PASSWORD, "198.51.100.9")
    assert staff.status_code == 303


def test_accounts_are_disabled_and_removed_from_the_command_line(console) -> None:
    name = f"temp-{uuid.uuid4().hex[:6]}"
    assert console.add_account(name).returncode == 0
    client, logged = console.login(name)
    assert logged.status_code == 303 and client.get("/staff/").status_code == 200
    disabled = staff_command(console, "disable", name)
    assert disabled.returncode == 0 and "disabled" in disabled.stdout
    assert client.get("/staff/").status_code == 302  # its session ended at once
    assert console.login(name)[1].status_code == 401
    assert f"{name}\tdisabled" in staff_command(console, "list").stdout
    removed = staff_command(console, "remove", name)
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert name not in staff_command(console, "list").stdout
    unknown = staff_command(console, "disable", name)
    assert unknown.returncode == 1 and "no staff account" in unknown.stderr
    assert staff_command(console, "remove", "nobody-here").returncode == 1


ODD_IDS = [
    "pat smith {}",
    "dr/who/{}",
    "josé ñ 中文 {}",
    "<b>{}</b>",
    "a%2Fb {}",
    "?x=1#{}",
]


def test_every_conversation_in_the_triage_list_opens(console) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = [pattern.format(tag) for pattern in ODD_IDS]
    for conversation in ids:
        console.say(conversation, "I have a fever and a stiff neck after my injection")
    client, _ = console.login("nurse")
    listing = client.get("/staff/")
    assert listing.status_code == 200
    links = {
        unquote(href): href
        for href in re.findall(r'href="(/staff/conversations/[^"]+)"', listing.text)
    }
    for conversation in ids:
        href = links.get(f"/staff/conversations/{conversation}")
        assert href, f"{conversation!r} is not linked from the triage list"
        transcript = client.get(href)
        assert transcript.status_code == 200, (conversation, href)
        assert "stiff neck" in transcript.text
        assert "<b>" + tag not in transcript.text  # the id is shown escaped
    # An odd id's emergency can be acknowledged from its transcript.
    href = links[f"/staff/conversations/{ids[1]}"]
    page = client.get(href).text
    action = re.search(r'<form method="post" action="([^"]+/acknowledge)"', page)
    assert action, page
    done = client.post(
        action.group(1).replace("&amp;", "&"),
        data={"csrf": csrf_of(page), "next": href},
    )
    assert done.status_code == 303 and done.headers["location"] == href
    assert "Acknowledged by nurse" in client.get(href).text


@pytest.mark.parametrize(
    "path",
    ["/staff/", "/staff/export.csv", "/staff/insights", "/staff/insights/questions"],
)
@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("until=9999-12-31", "between 1970-01-01 and 2100-12-31"),
        ("since=0001-01-01", "between 1970-01-01 and 2100-12-31"),
        ("since=1969-12-31&until=2026-01-01", "between"),
        ("until=31/12/2026", "YYYY-MM-DD"),
    ],
)
def test_dates_outside_1970_to_2100_get_400_with_the_reason(
    console, path, query, reason
) -> None:
    client = logged_in_client(console)
    response = client.get(f"{path}?{query}")
    assert response.status_code == 400, response.text[:300]
    assert reason in response.text
    assert client.get(f"{path}?since=2026-01-01&until=2026-01-31").status_code == 200


_clients: dict[str, httpx.Client] = {}


def logged_in_client(console) -> httpx.Client:
    if "nurse" not in _clients:
        _clients["nurse"] = console.login("nurse")[0]
    return _clients["nurse"]


# --- what the probe found sound, kept so -------------------------------------------

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(2)> what is prp'


def test_no_stored_xss_patient_text_is_escaped_in_the_list_and_transcript(
    console,
) -> None:
    conversation = f"xss-{uuid.uuid4().hex[:8]}"
    console.say(conversation, HOSTILE)
    client = logged_in_client(console)
    for path in ("/staff/", f"/staff/conversations/{conversation}"):
        html = client.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html, path
    assert "&lt;script&gt;" in client.get(f"/staff/conversations/{conversation}").text


@pytest.mark.parametrize(
    "path",
    [
        "/staff/static/..%2F..%2Fviews.py",
        "/staff/static/%2e%2e%2fauth.py",
        "/staff/static/..%2F..%2F..%2F.env",
        "/assets/..%2F..%2Fbot%2Fserver.py",
        "/assets/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/staff/static/../../staff/auth.py",
    ],
)
def test_no_path_traversal_out_of_the_static_folders(console, path) -> None:
    response = console.client().get(path)
    assert response.status_code == 404, path
    assert "def " not in response.text and "root:" not in response.text


def test_a_login_does_not_tell_which_names_exist(console) -> None:
    wrong = login_from(console, "nurse", WRONG, "192.0.2.77")[1]
    unknown = login_from(
        console, f"nobody-{uuid.uuid4().hex[:6]}", WRONG, "192.0.2.78"
    )[1]
    assert wrong.status_code == unknown.status_code == 401

    def without_tokens(html: str) -> str:
        html = re.sub(r'name="csrf" value="[^"]+"', "", html)
        return re.sub(r'name="name" value="[^"]*"', "", html)

    assert without_tokens(wrong.text) == without_tokens(unknown.text)


@pytest.mark.parametrize(
    "target",
    ["//evil.example/staff", "https://evil.example/", "/elsewhere", "javascript:x"],
)
def test_no_open_redirect_after_login(console, target) -> None:
    client = console.client()
    form = client.get("/staff/login")
    response = client.post(
        "/staff/login",
        data={
            "csrf": csrf_of(form.text),
            "name": "nurse",
            "password": PASSWORD,
            "next": target,
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/staff"
