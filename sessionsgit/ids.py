"""Session ids: generated as UUID4, accepted only when safe as a Git ref component and file name."""

from __future__ import annotations

import re
import uuid

from .errors import InvalidSessionIdError

MAX_ID_LENGTH = 128
_FORBIDDEN_CHARS = set("~^:?*[\\/")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f\s]")


def new_session_id() -> str:
    """A fresh random session id."""
    return str(uuid.uuid4())


def validate_session_id(session_id: object) -> str:
    """Return ``session_id`` unchanged if it is safe everywhere a store puts it, else raise
    ``InvalidSessionIdError``. The rules are Git's ref-name rules for one path component, plus a
    length cap, so an id can never escape ``refs/heads/sessions/`` or a store's directory."""
    if not isinstance(session_id, str):
        raise InvalidSessionIdError(session_id, "must be a string")
    if not session_id:
        raise InvalidSessionIdError(session_id, "must not be empty")
    if len(session_id) > MAX_ID_LENGTH:
        raise InvalidSessionIdError(session_id, f"longer than {MAX_ID_LENGTH} characters")
    if session_id[0] in ".-":
        raise InvalidSessionIdError(session_id, "must not start with '.' or '-'")
    if session_id.endswith(".lock"):
        raise InvalidSessionIdError(session_id, "must not end with '.lock'")
    if session_id.endswith("."):
        raise InvalidSessionIdError(session_id, "must not end with '.'")
    if ".." in session_id:
        raise InvalidSessionIdError(session_id, "must not contain '..'")
    if "@{" in session_id or session_id == "@":
        raise InvalidSessionIdError(session_id, "must not contain '@{' or be '@'")
    if _CONTROL_OR_SPACE.search(session_id):
        raise InvalidSessionIdError(session_id, "must not contain whitespace or control characters")
    bad = sorted(set(session_id) & _FORBIDDEN_CHARS)
    if bad:
        raise InvalidSessionIdError(session_id, f"must not contain {''.join(bad)!r}")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in session_id):
        raise InvalidSessionIdError(session_id, "must not contain unpaired surrogates")
    return session_id
