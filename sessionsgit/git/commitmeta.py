"""Session metadata inside a commit message: a readable subject line for ``git log --oneline``
and one JSON line in the body that ``list()`` reads without opening the tree.

The JSON is ASCII-escaped, so a label holding newlines or ``Key: value`` text stays inside its
string and can never forge another field."""

from __future__ import annotations

import json
from typing import Any

from ..codec import loads
from ..messages import one_line, summary
from ..metadata import SessionMetadata

META_KEY = "Sessionsgit-Meta: "
_META_MARKER = ("\n" + META_KEY).encode()
_SUBJECT_LIMIT = 72


def save_subject(messages: list[Any]) -> str:
    """``role: first words`` of the last message (its tool calls when it has no text), or a
    note for an empty transcript."""
    if not messages:
        return "empty session"
    return summary(messages[-1], _SUBJECT_LIMIT, words=True) or "message"


def compose(subject: str, metadata: SessionMetadata) -> str:
    """The full commit message for a save of ``metadata``."""
    data = {"id": metadata.id, **metadata.stored_dict()}
    payload = json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return f"{one_line(subject, _SUBJECT_LIMIT, words=True) or 'save'}\n\n{META_KEY}{payload}\n"


def parse(raw_message: bytes) -> dict[str, Any] | None:
    """The metadata dict stored in a raw commit message (or whole raw commit), or None."""
    position = raw_message.rfind(_META_MARKER)
    if position < 0:
        return None
    start = position + len(_META_MARKER)
    end = raw_message.find(b"\n", start)
    line = raw_message[start:] if end < 0 else raw_message[start:end]
    try:
        data = loads(line, what="commit metadata")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def subject_of(raw_message: str) -> str:
    """The first line of a commit message."""
    return raw_message.split("\n", 1)[0]
