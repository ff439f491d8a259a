"""One module per document format; `knowledge.parser.parse_document` picks the module.

Modules:
    common: what every format shares (the parsed types, DocumentError, the limits and
        the sections from a list of headed blocks).
    plaintext: `.txt`, numbered items `N. Title: body`.
    markdown: `.md`, headings (markdown-it-py).
    pdf: `.pdf`, the outline (bookmarks) (pypdf).
    word: `.docx`, Heading styles (python-docx).
"""
