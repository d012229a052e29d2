"""Which strings the database can store: Postgres text has no NUL, and UTF-8 has no lone surrogates.

JSON can spell both ("\\u0000", "\\ud800") and Python decodes them into a str without complaint; the
failure came only when the row was written (a 500). Requests are checked against this first.
"""

from __future__ import annotations


def unstorable_reason(text: str) -> str | None:
    """Why `text` cannot be stored, or None when it can."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (such as \\ud800), which is not valid Unicode text"
    return None
