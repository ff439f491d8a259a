"""The patient pages on the Rasa server: the chat page at `/`, its assets, the embed script.

Every asset comes from the project (web/) or from the front-end packages npm installed
into web/node_modules from web/package-lock.json; nothing from a CDN. Every response of
the server gets the security headers below; the pages run no inline script.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import BaseHTTPResponse, HTTPResponse

from bot.training import ROOT
from clinic import settings

WEB_DIR = ROOT / "web"
# URL path under /assets/ -> file. Only these files are served.
ASSETS: dict[str, Path] = {
    "chat.css": WEB_DIR / "chat.css",
    "chat.js": WEB_DIR / "chat.js",
    "embed.js": WEB_DIR / "embed.js",
    "socket.io.min.js": WEB_DIR
    / "node_modules"
    / "socket.io-client"
    / "dist"
    / "socket.io.min.js",
}
PAGE = WEB_DIR / "index.html"


def content_security_policy() -> str:
    """The pages' CSP: own scripts and styles only, no inline script, framing as configured."""
    ancestors = " ".join(["'self'", *settings.allowed_origins()])
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self' ws: wss:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {ancestors}",
        ]
    )


def add_security_headers(request: Request, resp: BaseHTTPResponse) -> None:
    """Headers every response carries."""
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    resp.headers.setdefault("Content-Security-Policy", content_security_policy())
    resp.headers.setdefault(
        "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
    )


def _file_response(path: Path, cache: str) -> HTTPResponse:
    if not path.is_file():
        return response.text("not found", status=404)
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind.endswith("javascript"):
        kind += "; charset=utf-8"
    return response.raw(
        path.read_bytes(), content_type=kind, headers={"Cache-Control": cache}
    )


async def serve_page(request: Request) -> HTTPResponse | None:
    """The chat page for GET / (Rasa's own "/" hello stays for other methods)."""
    if request.path == "/" and request.method in {"GET", "HEAD"}:
        return _file_response(PAGE, "no-cache")
    return None


def page_config() -> dict[str, object]:
    """What the chat page and the widget need from the clinic's settings.

    Served as JSON (GET /chat/config) rather than written into the page, so the page
    needs no inline script and the widget on another site reads the same values.
    """
    return {
        "clinic_name": settings.clinic_name(),
        "clinic_phone": settings.clinic_phone(),
        "emergency_number": settings.emergency_number(),
        "crisis_line": settings.crisis_line(),
        "max_message_chars": settings.max_message_chars(),
    }


def install(app: Sanic) -> None:
    """Add the chat page, its settings, its assets and the security headers to the server."""

    @app.get("/chat/config")
    async def chat_config(request: Request) -> HTTPResponse:
        return response.json(page_config(), headers={"Cache-Control": "no-cache"})

    @app.get("/assets/<name:str>")
    async def asset(request: Request, name: str) -> HTTPResponse:
        path = ASSETS.get(name)
        if path is None:
            return response.text("not found", status=404)
        return _file_response(path, "no-cache")

    app.register_middleware(serve_page, "request")
    app.register_middleware(add_security_headers, "response")
