"""Reading message dicts: the text a person (or a model) sees in one."""

from __future__ import annotations

from typing import Any


def message_text(message: Any) -> str:
    """The text of a message: a plain string ``content``, or its text blocks joined by newlines."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(block["text"] for block in content
                         if isinstance(block, dict) and block.get("type") == "text"
                         and isinstance(block.get("text"), str))
    return ""
