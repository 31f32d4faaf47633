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
