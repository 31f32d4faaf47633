"""The transcript file format, both directions: a session written as JSON, JSONL, YAML or
Markdown (``sessionsgit export``, ``show --format``) and JSON / JSONL read back
(``sessionsgit import``). JSON and JSONL round-trip exactly.

* JSON: ``{"id", "metadata", "messages"}``; reading also takes an npm session file
  (``{"metadata", "messages"}``) or a plain array of messages.
* JSONL: a header line ``{"type": "session", "id", "metadata"}``, then one message per line.
  Lines end with ``\\n`` only; U+0085, U+2028 and U+2029 are written escaped, so no line
  splitter (``str.splitlines`` counts them as line ends) breaks a message apart.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dataclasses import dataclass

from .codec import loads
from .errors import SerializationError, SessionsGitError
from .metadata import Message, StoredSession

#: What ``export_session`` writes; json and jsonl are read back by ``parse_transcript``.
EXPORT_FORMATS = ("json", "jsonl", "markdown", "yaml")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
#: Characters ``str.splitlines`` ends a line at that JSON leaves raw inside strings.
_LINE_BREAKS = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


class ImportFormatError(SessionsGitError, ValueError):
    """A file or directory that holds no transcript sessionsgit can read."""


# ---- writing ------------------------------------------------------------------------------
def session_document(session: StoredSession) -> dict[str, Any]:
    """The JSON/YAML shape of a session: ``{"id", "metadata", "messages"}``."""
    return {"id": session.id, "metadata": session.metadata.to_dict(),
            "messages": session.messages}


def to_json(value: Any) -> str:
    """Pretty JSON (UTF-8 kept readable)."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def to_yaml(value: Any) -> str:
    """Block-style YAML in insertion order (yaml is imported only when this runs)."""
    import yaml

    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False)


def jsonl_line(value: Any) -> str:
    """One JSONL line (without its ``\\n``): compact JSON, UTF-8 kept readable except the
    characters other line splitters break at, which are escaped."""
    text = json.dumps(value, ensure_ascii=False)
    for char, escaped in _LINE_BREAKS.items():
        text = text.replace(char, escaped)
    return text


def to_jsonl(session: StoredSession) -> str:
    """A header line ``{"type": "session", "id", "metadata"}`` then one message per line."""
    header = {"type": "session", "id": session.id, "metadata": session.metadata.to_dict()}
    return "".join(jsonl_line(item) + "\n" for item in [header, *session.messages])


def render_markdown(session: StoredSession) -> str:
    """The transcript as Markdown: a title, a facts line, a section per message."""
    from .messages import LABELS, message_parts, role_of
    from .render import header_facts

    meta = session.metadata
    lines = [f"# {meta.label or meta.id}", "", f"*{meta.id} · {' · '.join(header_facts(meta))}*"]
    for message in session.messages:
        role = role_of(message) or "message"
        lines += ([] if lines[-1] == "" else [""]) + [f"## {role}", ""]
        for kind, text in message_parts(message):
            if kind == "text":
                lines += [text, ""]
            elif kind == "thinking":
                lines += ["> " + line for line in text.splitlines() or [""]]
                lines.append("")
            else:
                label = LABELS.get(kind, "data")
                lines += [f"**{label}**", "", "```", text, "```", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def export_session(session: StoredSession, fmt: str) -> str:
    """A session in an export format: json, jsonl, markdown or yaml (see ``EXPORT_FORMATS``)."""
    if fmt == "json":
        return to_json(session_document(session)) + "\n"
    if fmt == "jsonl":
        return to_jsonl(session)
    if fmt == "yaml":
        return to_yaml(session_document(session))
    if fmt == "markdown":
        return render_markdown(session)
    raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(EXPORT_FORMATS)}")


@dataclass
class Transcript:
    """A session read from a file: its id if the file names one, metadata and messages."""

    id: str | None
    metadata: dict[str, Any]
    messages: list[Message]

# ---- reading ---- ------------------------------------------------------------------------
def read_transcript(path: str | os.PathLike[str]) -> Transcript:
    """Read one JSON or JSONL transcript file (JSONL by suffix, or when JSON finds extra data)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{path}: not UTF-8 text: {exc}") from None
    return parse_transcript(text, source=str(path), jsonl=path.suffix.lower() in JSONL_SUFFIXES)


def parse_transcript(text: str, *, source: str = "input", jsonl: bool = False) -> Transcript:
    """A transcript from JSON text, or JSONL (when ``jsonl`` or when JSON finds extra data)."""
    if jsonl:
        return parse_jsonl(text, source=source)
    try:
        data = loads(text, what=source)
    except SerializationError as exc:
        cause = exc.__cause__
        if isinstance(cause, json.JSONDecodeError) and cause.msg == "Extra data":
            return parse_jsonl(text, source=source)
        raise ImportFormatError(str(exc)) from None
    return parse_document(data, source=source)


def parse_document(data: Any, *, source: str = "input") -> Transcript:
    """A transcript from parsed JSON: ``{"id"?, "metadata"?, "messages"}`` or a message array."""
    if isinstance(data, list):
        return Transcript(None, {}, _messages(data, source))
    if isinstance(data, dict) and "messages" in data:
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ImportFormatError(f"{source}: 'metadata' is not an object")
        session_id = data.get("id") if isinstance(data.get("id"), str) else metadata.get("id")
        return Transcript(session_id if isinstance(session_id, str) else None, dict(metadata),
                          _messages(data["messages"], source))
    raise ImportFormatError(f"{source}: expected an object with 'messages' or an array of "
                            "messages")


def parse_jsonl(text: str, *, source: str = "input") -> Transcript:
    """A transcript from JSONL: an optional ``{"type": "session"}`` header, then messages.
    Lines end at ``\n`` (``\r\n`` too) and nowhere else: U+2028 and the like inside a
    message's text are text, as JSON says."""
    items: list[Any] = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            items.append(loads(line, what=f"{source}: line {number}"))
        except SerializationError as exc:
            raise ImportFormatError(str(exc)) from None
    session_id, metadata = None, {}
    if items and is_session_header(items[0]):
        header = items.pop(0)
        session_id = header.get("id") if isinstance(header.get("id"), str) else None
        if isinstance(header.get("metadata"), dict):
            metadata = dict(header["metadata"])
        else:
            metadata = {k: v for k, v in header.items() if k not in ("type", "id")}
    return Transcript(session_id, metadata, _messages(items, source))


def is_session_header(item: Any) -> bool:
    """Whether a JSONL line is the session header rather than a message."""
    return isinstance(item, dict) and item.get("type") == "session" and "role" not in item


def _messages(items: Any, source: str) -> list[Message]:
    if not isinstance(items, list) or not all(isinstance(m, dict) for m in items):
        raise ImportFormatError(f"{source}: messages must be a list of JSON objects")
    return items




#: The name ``parse_transcript`` had before this module owned the format.
parse_text = parse_transcript
