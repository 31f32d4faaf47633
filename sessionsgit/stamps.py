"""Message stamping: every message the library or the CLI writes gets an ``id`` and a
``timestamp`` (milliseconds since the epoch) here, in one way. Standard library only."""

from __future__ import annotations

import time
import uuid
from typing import Any, MutableMapping, TypeVar

_M = TypeVar("_M", bound=MutableMapping[str, Any])


def new_message_id() -> str:
    """A fresh random message id (32 hex digits)."""
    return uuid.uuid4().hex


def now_ms() -> int:
    """The current time in milliseconds since the epoch, as message timestamps store it."""
    return time.time_ns() // 1_000_000


def stamp_message(message: _M, *, now: int | None = None) -> _M:
    """Give ``message`` an ``id`` and a ``timestamp`` unless it has them (in place); returns it.
    ``now`` fixes the timestamp, so a batch of messages can share one."""
    message.setdefault("id", new_message_id())
    message.setdefault("timestamp", now_ms() if now is None else now)
    return message
