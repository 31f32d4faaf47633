"""Session metadata inside a commit message: a readable subject line for ``git log --oneline``
and one JSON line in the body that ``list()`` reads without opening the tree.

The JSON is ASCII-escaped, so a label holding newlines or ``Key: value`` text stays inside its
string and can never forge another field."""

from __future__ import annotations

import json
import re
from typing import Any

from ..messages import message_text
from ..metadata import SessionMetadata

META_KEY = "Sessionsgit-Meta: "
_META_MARKER = ("\n" + META_KEY).encode()
_SUBJECT_LIMIT = 72
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def one_line(text: str, limit: int = _SUBJECT_LIMIT) -> str:
    """Collapse whitespace and control characters; cut at ``limit`` on a word boundary."""
    text = " ".join(_UNPRINTABLE.sub(" ", text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut[:cut.rindex(" ")]
    return cut + "…"


def _summary(message: Any) -> str:
    """A message's text, or the kinds of its blocks when it has no text (a tool call, say)."""
    text = message_text(message)
    content = message.get("content") if isinstance(message, dict) else None
    if text or not isinstance(content, list):
        return text
    kinds = [str(block.get("type")) for block in content if isinstance(block, dict)]
    return f"[{', '.join(kinds)}]" if kinds else ""


def save_subject(messages: list[Any]) -> str:
    """``role: first words`` of the last message, or a note for an empty transcript."""
    if not messages:
        return "empty session"
    last = messages[-1]
    role = last.get("role", "message") if isinstance(last, dict) else "message"
    return one_line(f"{role}: {_summary(last)}")


def compose(subject: str, metadata: SessionMetadata) -> str:
    """The full commit message for a save of ``metadata``."""
    data = {"id": metadata.id, **metadata.stored_dict()}
    payload = json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return f"{one_line(subject) or 'save'}\n\n{META_KEY}{payload}\n"


def parse(raw_message: bytes) -> dict[str, Any] | None:
    """The metadata dict stored in a raw commit message (or whole raw commit), or None."""
    position = raw_message.rfind(_META_MARKER)
    if position < 0:
        return None
    start = position + len(_META_MARKER)
    end = raw_message.find(b"\n", start)
    line = raw_message[start:] if end < 0 else raw_message[start:end]
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def subject_of(raw_message: str) -> str:
    """The first line of a commit message."""
    return raw_message.split("\n", 1)[0]
