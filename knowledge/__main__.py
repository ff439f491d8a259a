"""Command line: `python -m knowledge {generate,pipeline,build,check,search,show}`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from knowledge import settings


def _generate(_: argparse.Namespace) -> int:
    from knowledge.vocabulary import write_generated_files

    changed = write_generated_files()
    for path in changed:
        print(f"wrote {path.relative_to(settings.PROJECT_ROOT)}")
    if not changed:
        print("generated files are up to date")
    return 0


def _pipeline(_: argparse.Namespace) -> int:
    from knowledge import pipeline

    built = pipeline.build()
    state = "built" if built else "up to date"
    print(f"spaCy pipeline {state}: {settings.SPACY_PIPELINE_DIR}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from knowledge.builder import BuildError, DocumentError, build_store

    try:
        report = build_store(force=args.force)
    except (DocumentError, BuildError) as exc:
        print(f"knowledge build failed: {exc}", file=sys.stderr)
        print(
            "the previous knowledge store (if any) was left unchanged", file=sys.stderr
        )
        return 1
    where = report.url.split("@")[-1]
    if not report.built:
        print(f"knowledge store up to date ({where})")
    else:
        print(
            f"knowledge store built ({where}): {report.documents} document(s), "
            f"{report.sections} sections, {report.passages} passages, {report.terms} terms, "
            f"{report.mentions} term links in {report.seconds:.2f}s"
        )
    return 0


def _check(args: argparse.Namespace) -> int:
    from knowledge.parser import DocumentError, parse_document, preview

    failed = 0
    for name in args.files:
        try:
            document = parse_document(Path(name))
        except DocumentError as exc:
            print(f"{exc}", file=sys.stderr)
            failed += 1
            continue
        print(
            f"{name}: {document.format}, title {document.title!r}, "
            f"{len(document.sections)} section(s)"
        )
        for s in preview(document):
            print(f"  §{s.number:<3} {s.heading}  ({s.place})\n        {s.first_words}")
    return 1 if failed else 0


def _search(args: argparse.Namespace) -> int:
    from knowledge import queries
    from knowledge.environment import session_scope

    with session_scope() as session:
        queries.check_store(session)
        hits = queries.search(session, args.question, limit=args.limit)
    if not hits:
        print("no passage matches")
    for hit in hits:
        s = hit.section
        print(f"{hit.score:7.3f}  [{s.document} §{s.number} {s.title}] {hit.passage}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from knowledge import queries
    from knowledge.environment import session_scope

    with session_scope() as session:
        queries.check_store(session)
        sections = queries.all_sections(session)
        kinds = queries.kinds_by_section(session)
    for s in sections:
        if args.number is None or s.number == args.number:
            heading = " > ".join(s.heading_path) or s.title
            answers = (
                ", ".join(sorted(kinds.get((s.file, s.number), ()))) or "any (search)"
            )
            print(
                f"[{s.document} §{s.number}] {heading}  (kinds: {answers})\n    {s.body}\n"
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the knowledge command line."""
    parser = argparse.ArgumentParser(prog="python -m knowledge")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "generate", help="write spaCy patterns and Rasa lookups from the vocabulary"
    )
    sub.add_parser("pipeline", help="build the project's spaCy pipeline")
    build = sub.add_parser(
        "build", help="build the knowledge store from knowledge/sources"
    )
    build.add_argument(
        "--force", action="store_true", help="rebuild even when up to date"
    )
    check = sub.add_parser(
        "check", help="print the sections a document would give, without building"
    )
    check.add_argument("files", nargs="+", metavar="FILE")
    search = sub.add_parser("search", help="print the ranked passages for a question")
    search.add_argument("question")
    search.add_argument("--limit", type=int, default=5)
    show = sub.add_parser("show", help="print the store's sections")
    show.add_argument("number", nargs="?", type=int)
    args = parser.parse_args(argv)
    handlers = {
        "generate": _generate,
        "pipeline": _pipeline,
        "build": _build,
        "check": _check,
        "search": _search,
        "show": _show,
    }
    try:
        return handlers[args.command](args)
    except Exception as exc:  # the store's errors explain themselves; no traceback
        from knowledge.queries import StoreNotReadyError

        if isinstance(exc, StoreNotReadyError):
            print(f"error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
