"""The clinic's knowledge store: documents in, a queryable SQLAlchemy store out.

Modules:
    settings: paths and the database URL, from the environment.
    vocabulary: the medical vocabulary (one YAML file) and what is generated from it.
    pipeline: the project's spaCy pipeline (blank English, lookup lemmatizer, entity ruler).
    parser: clinic documents (text, Markdown, PDF, Word) to sections, with file/place
        errors for malformed ones; the formats' parsers are in knowledge.parsers.
    model: the SQLAlchemy models.
    environment: engines and session factories.
    builder: `python -m knowledge build`, into a new database swapped in atomically.
    queries: the read API the actions use.
    search: BM25 ranking over passages.
"""
