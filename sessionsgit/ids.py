"""Session ids: generated as UUID4; any text a caller picks is accepted when it is not empty, at
most ``MAX_ID_LENGTH`` characters and free of control characters. Where a store needs a safe
name for an id (a Git ref, a file name) it uses ``idcodec``, which maps safe ids to themselves."""

from __future__ import annotations

import unicodedata
import uuid

from .errors import InvalidSessionIdError

MAX_ID_LENGTH = 1024


def new_session_id() -> str:
    """A fresh random session id."""
    return str(uuid.uuid4())


def validate_session_id(session_id: object) -> str:
    """Return ``session_id`` unchanged if it is a valid id, else raise ``InvalidSessionIdError``:
    a non-empty ``str`` of at most ``MAX_ID_LENGTH`` characters, holding no NUL or other control
    character and no unpaired surrogate (which is not text and cannot be stored as UTF-8)."""
    if not isinstance(session_id, str):
        raise InvalidSessionIdError(session_id, "must be a string")
    if not session_id:
        raise InvalidSessionIdError(session_id, "must not be empty")
    if len(session_id) > MAX_ID_LENGTH:
        raise InvalidSessionIdError(session_id, f"longer than {MAX_ID_LENGTH} characters")
    for char in session_id:
        category = unicodedata.category(char)
        if category == "Cc":
            raise InvalidSessionIdError(session_id, "must not contain control characters")
        if category == "Cs":
            raise InvalidSessionIdError(session_id, "must not contain unpaired surrogates")
    return session_id


def is_valid_session_id(session_id: object) -> bool:
    """Whether ``validate_session_id`` accepts ``session_id``."""
    try:
        validate_session_id(session_id)
    except InvalidSessionIdError:
        return False
    return True
