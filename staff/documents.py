"""The console's Documents page: add a leaflet to the knowledge store, with no retraining.

- GET  /staff/documents: the documents in the sources folder, and the upload form.
- POST /staff/documents/preview: the file is checked (type, size, a plain file name),
  held aside (STAFF_UPLOADS_DIR, default build/uploads) and parsed; the page shows the
  sections it gives (heading path and first words). Nothing is stored yet.
- POST /staff/documents/confirm: the held file goes into the sources folder and the
  store is rebuilt beside the live one and swapped in (knowledge.builder). If the build
  fails, the file is taken out again (a file it replaced is put back) and the live
  store is untouched. The action server reads the new store with its next question.

Same login, CSRF token and Origin check as the rest of the console (views.staff_only).
Builds are one at a time, across the server's workers too (a lock file).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from clinic import settings as clinic_settings
from knowledge import settings
from knowledge.builder import BuildError, BuildReport, build_store, source_files
from knowledge.parser import (
    FORMATS,
    DocumentError,
    SectionPreview,
    max_bytes,
    parse_document,
    preview,
)
from staff import auth
from staff.web import page, staff_only

logger = logging.getLogger(__name__)

ALLOWED_SUFFIXES = tuple(FORMATS)
MAX_NAME_CHARS = 100
HOLD_SECONDS = 3600
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._]+")


class UploadRefusedError(ValueError):
    """An upload the console will not take; the message is for the staff member."""


@dataclass(frozen=True)
class Held:
    """An uploaded file held aside until its uploader confirms it."""

    token: str
    name: str
    owner: str
    path: Path


def uploads_dir() -> Path:
    """Where uploads wait for confirmation (STAFF_UPLOADS_DIR, default build/uploads)."""
    configured = clinic_settings.current().staff_uploads_dir
    return Path(configured) if configured else settings.BUILD_DIR / "uploads"


def safe_name(given: str) -> str:
    """A plain file name for the sources folder, or UploadRefusedError saying why not.

    Names with a folder in them ("../x.md", a Windows path) are refused, not trimmed:
    the staff member sees that the name was not taken as given. Spaces and other
    characters become hyphens, accents are dropped ("Épidural leaflet.MD" ->
    "Epidural-leaflet.md").
    """
    name = unicodedata.normalize("NFKC", given or "").strip()
    if not name:
        raise UploadRefusedError("Choose a file to upload.")
    if any(c in name for c in "/\\\x00") or ".." in name:
        raise UploadRefusedError(
            "The file name must be a plain name, without any folder."
        )
    stem, dot, suffix = name.rpartition(".")
    if not dot or f".{suffix.lower()}" not in ALLOWED_SUFFIXES:
        kinds = ", ".join(ALLOWED_SUFFIXES)
        raise UploadRefusedError(f"Only these kinds of file can be added: {kinds}.")
    plain = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    stem = _UNSAFE.sub("-", plain).strip("-.")
    if not stem or name.startswith(("~", ".")):
        raise UploadRefusedError("Give the file a name made of letters and numbers.")
    safe = f"{stem[: MAX_NAME_CHARS - len(suffix) - 1]}.{suffix.lower()}"
    return safe


def check_upload(name: str, body: bytes) -> str:
    """The safe name of an acceptable upload (type, name, size), else UploadRefusedError."""
    safe = safe_name(name)
    limit = max_bytes(Path(safe).suffix)
    if len(body) > limit:
        raise UploadRefusedError(
            f"The file is larger than {limit // 1_000_000} MB; "
            "save it without large images and try again."
        )
    if not body.strip():
        raise UploadRefusedError("The file is empty.")
    return safe


def _remove_stale(folder: Path) -> None:
    cutoff = time.time() - HOLD_SECONDS
    for held in folder.iterdir() if folder.is_dir() else []:
        if held.is_dir() and held.stat().st_mtime < cutoff:
            shutil.rmtree(held, ignore_errors=True)


def hold(name: str, body: bytes, owner: str) -> Held:
    """Keep an upload aside under a fresh random token."""
    folder = uploads_dir()
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale(folder)
    token = secrets.token_urlsafe(24)
    place = folder / token
    place.mkdir(mode=0o700)
    (place / name).write_bytes(body)
    (place / "held.json").write_text(json.dumps({"name": name, "owner": owner}))
    return Held(token, name, owner, place / name)


def held(token: str, owner: str) -> Held | None:
    """The upload held under `token` for `owner`, if there is one."""
    if not _TOKEN.match(token or ""):
        return None
    place = uploads_dir() / token
    try:
        facts = json.loads((place / "held.json").read_text())
    except (OSError, ValueError):
        return None
    name = str(facts.get("name", ""))
    if facts.get("owner") != owner or name != Path(name).name:
        return None
    path = place / name
    return Held(token, name, owner, path) if path.is_file() else None


def release(item: Held) -> None:
    """Forget a held upload."""
    shutil.rmtree(item.path.parent, ignore_errors=True)


def refusal(name: str, error: DocumentError) -> str:
    """A DocumentError as the staff member reads it: their file's name, not our path."""
    where = "" if error.place == "file" else f" ({error.place})"
    return f"{name} cannot be used{where}: {error.reason}."


def install_document(item: Held, sources: Path | None = None) -> BuildReport:
    """Put a held upload into the sources folder and rebuild the store, or undo it.

    Runs on a worker thread; a lock file keeps builds one at a time.
    """
    sources = sources or settings.SOURCES_DIR
    target = sources / item.name
    if target.resolve().parent != sources.resolve():
        raise UploadRefusedError(
            "The file name must be a plain name, without any folder."
        )
    lock_path = uploads_dir() / "build.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        previous = target.read_bytes() if target.exists() else None
        _put(target, item.path.read_bytes(), item.token)
        try:
            return build_store(sources_dir=sources)
        except BaseException:
            if previous is None:
                target.unlink(missing_ok=True)
            else:
                _put(target, previous, item.token)
            raise


def _put(target: Path, content: bytes, token: str) -> None:
    """Write a source file in one step: a build never reads half of it."""
    incoming = target.with_name(f".{target.name}.{token[:8]}.incoming")
    incoming.write_bytes(content)
    os.replace(incoming, target)


def listed_documents(sources: Path | None = None) -> list[dict[str, object]]:
    """The documents in the sources folder with their section counts in the store."""
    from knowledge import queries
    from knowledge.environment import session_scope

    sources = sources or settings.SOURCES_DIR
    try:
        files = source_files(sources)
    except BuildError:
        files = []
    counts: Counter[str] = Counter()
    titles: dict[str, str] = {}
    try:
        with session_scope() as session:
            queries.check_store(session)
            for section in queries.all_sections(session):
                counts[section.file] += 1
                titles[section.file] = section.document
    except queries.StoreNotReadyError:
        pass
    return [
        {
            "file": path.name,
            "title": titles.get(path.name, ""),
            "sections": counts.get(path.name, 0),
            "kilobytes": max(1, path.stat().st_size // 1000),
        }
        for path in files
    ]


def _documents_page(
    user: auth.LoggedIn, status: int = 200, error: str | None = None, **values: object
) -> HTTPResponse:
    return page(
        "documents.html",
        status,
        user=user,
        error=error,
        documents=listed_documents(),
        allowed=", ".join(ALLOWED_SUFFIXES),
        **values,
    )


def blueprint() -> Blueprint:
    """The Documents page's routes."""
    bp = Blueprint("staff_documents", url_prefix="/staff/documents")

    @bp.get("/")
    @staff_only
    async def documents(request: Request, user: auth.LoggedIn) -> HTTPResponse:
        return await asyncio.to_thread(_documents_page, user)

    @bp.post("/preview")
    @staff_only
    async def preview_upload(request: Request, user: auth.LoggedIn) -> HTTPResponse:
        upload = request.files.get("document") if request.files else None
        try:
            if upload is None:
                raise UploadRefusedError("Choose a file to upload.")
            name = check_upload(upload.name, upload.body)
        except UploadRefusedError as exc:
            return await asyncio.to_thread(_documents_page, user, 400, str(exc))
        item = await asyncio.to_thread(hold, name, upload.body, user.name)
        try:
            document = await asyncio.to_thread(parse_document, item.path)
        except DocumentError as exc:
            release(item)
            message = refusal(upload.name, exc)
            return await asyncio.to_thread(_documents_page, user, 400, message)
        except BaseException:
            release(item)
            raise
        sections: list[SectionPreview] = preview(document)
        return page(
            "document_preview.html",
            user=user,
            token=item.token,
            saved_as=name,
            given=upload.name,
            title=document.title,
            sections=sections,
            replaces=(settings.SOURCES_DIR / name).exists(),
        )

    @bp.post("/confirm")
    @staff_only
    async def confirm(request: Request, user: auth.LoggedIn) -> HTTPResponse:
        item = held(request.form.get("token") or "", user.name)
        if item is None:
            message = "That upload has expired; please upload the file again."
            return await asyncio.to_thread(_documents_page, user, 400, message)
        if request.form.get("action") == "cancel":
            release(item)
            return response.redirect("/staff/documents", status=303)
        try:
            report = await asyncio.to_thread(install_document, item)
        except UploadRefusedError as exc:
            return await asyncio.to_thread(_documents_page, user, 400, str(exc))
        except DocumentError as exc:
            message = refusal(item.name, exc) + " The knowledge store was not changed."
            return await asyncio.to_thread(_documents_page, user, 400, message)
        except BuildError as exc:  # e.g. sections.yml maps a section the file lacks
            message = (
                f"The knowledge store could not be rebuilt with {item.name}: {exc}. "
                "It was not changed, and the file was not kept."
            )
            return await asyncio.to_thread(_documents_page, user, 400, message)
        except Exception:
            logger.exception("building the knowledge store with %s failed", item.name)
            message = (
                f"The knowledge store could not be rebuilt with {item.name}; it was "
                "not changed. The server's log says why."
            )
            return await asyncio.to_thread(_documents_page, user, 500, message)
        finally:
            release(item)
        logger.info("%s added %s to the knowledge store", user.name, item.name)
        return await asyncio.to_thread(
            _documents_page, user, added=item.name, report=report
        )

    return bp
