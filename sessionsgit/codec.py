"""Exact JSON for messages and metadata: what is stored must read back equal, or be refused."""

from __future__ import annotations

import json
from typing import Any, Iterable

from .errors import SerializationError
from .frozen import is_frozen
from .metadata import Message, SessionMetadata


#: Deepest nesting of lists/objects accepted: far below the interpreter's recursion limit, so
#: whatever is stored can always be parsed, compared and copied back, however deep the stack.
MAX_NESTING = 400


def _nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether containers nest deeper than ``limit`` (iterative: visits containers, not text)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def loads(text: str | bytes, *, what: str = "input") -> Any:
    """Parse JSON that came from outside (a file, stdin, a remote's commit): every JSON entry
    point uses this. Raises ``SerializationError`` (a ValueError) when the text is not JSON
    (its ``__cause__`` is the ``json.JSONDecodeError``) or nests deeper than ``MAX_NESTING``;
    never ``RecursionError``, however deep the input."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise SerializationError(f"{what} is nested more than {MAX_NESTING} levels deep") from None
    except (ValueError, TypeError) as exc:
        raise SerializationError(f"{what} is not valid JSON: {exc}") from exc
    if isinstance(value, (dict, list)) and _nesting_exceeds(value, MAX_NESTING):
        raise SerializationError(f"{what} is nested more than {MAX_NESTING} levels deep")
    return value


def _reject(value: object) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps_exact(value: Any, *, indent: int | None = None, what: str = "value") -> tuple[str, Any]:
    """Serialise ``value`` and return ``(text, parsed_copy)``; raise ``SerializationError`` unless
    the text parses back equal (this catches NaN/Infinity, bytes, non-string keys, tuples, cycles
    and nesting too deep to read back). The parsed copy is independent of the caller's object."""
    try:
        text = json.dumps(value, indent=indent, ensure_ascii=False, allow_nan=False,
                          default=_reject, separators=(",", ": ") if indent is not None else (",", ":"))
        parsed = json.loads(text)
    except (TypeError, ValueError, RecursionError) as exc:
        raise SerializationError(f"{what} cannot be stored as JSON: {exc}") from None
    if _nesting_exceeds(parsed, MAX_NESTING):
        raise SerializationError(f"{what} is nested more than {MAX_NESTING} levels deep")
    try:
        equal = parsed == value
    except RecursionError:
        equal = False
    if not equal:
        raise SerializationError(
            f"{what} would not read back exactly as JSON (non-string keys, tuples or other "
            "non-JSON types)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SerializationError(f"{what} holds text that is not valid Unicode: {exc}") from None
    return text, parsed


def detach(value: Any) -> Any:
    """A copy of a JSON value's containers that shares its (immutable) leaves with the original.
    Comparing the caller's message with such a copy hits the identity shortcut on every
    unchanged string, so telling an unchanged message from an edited one is cheap. Frozen
    (read-only) values are kept as they are: they cannot change, so identity suffices."""
    if is_frozen(value):
        return value
    if isinstance(value, dict):
        return {key: detach(item) for key, item in value.items()}
    if isinstance(value, list):
        return [detach(item) for item in value]
    return value


def encode_message(message: Any, index: int) -> tuple[bytes, Message]:
    """A message as stored (pretty JSON, so ``git diff`` is line by line) plus an exact copy."""
    if not isinstance(message, dict):
        raise SerializationError(f"message {index} must be a dict, not {type(message).__name__}")
    text, parsed = dumps_exact(message, indent=2, what=f"message {index}")
    return (text + "\n").encode("utf-8"), parsed


def copy_messages(messages: Iterable[Any]) -> list[Message]:
    """Validate a whole transcript and return an exact, independent copy of it."""
    return [encode_message(message, i)[1] for i, message in enumerate(as_message_list(messages))]


def as_message_list(messages: Any) -> list[Any]:
    """Accept any sequence of messages (list, tuple) but never a lone string or dict."""
    if isinstance(messages, (str, bytes, dict)) or messages is None:
        raise SerializationError("messages must be a list of dicts")
    try:
        return list(messages)
    except TypeError:
        raise SerializationError("messages must be a list of dicts") from None


def encode_metadata(metadata: SessionMetadata) -> str:
    """Metadata as compact JSON (everything but id and head), refusing what would not read back."""
    return dumps_exact(metadata.stored_dict(), what="metadata")[0]
