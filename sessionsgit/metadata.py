"""Session metadata and the stored-session record, with the merge rule every store shares."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from .errors import SerializationError

Message = dict[str, Any]

_IMMUTABLE = (str, int, float, bool, type(None))


def plain(value: Any) -> Any:
    """A deep copy of a metadata value as plain ``dict``/``list`` (a ``FrozenDict`` or any other
    dict/list subclass becomes the plain type), so no store ever holds a read-only message value
    (the Git store's list cache could not marshal it). Raises ``SerializationError`` when nested
    too deeply to copy."""
    try:
        return _plain(value)
    except RecursionError:
        raise SerializationError("metadata is nested too deeply to store") from None


def _plain(value: Any) -> Any:
    if isinstance(value, _IMMUTABLE):
        return value
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return copy.deepcopy(value)  # not JSON (a tuple, a date...): the codec refuses it on save

#: Keys a caller may not set through ``save(metadata=...)``: the store owns them.
STORE_OWNED_KEYS = frozenset({"id", "head", "message_count"})


def _system_clock() -> datetime:
    return datetime.now(timezone.utc)


#: Where every session timestamp comes from (``set_clock`` replaces it).
_clock: Callable[[], datetime] = _system_clock


def set_clock(clock: Callable[[], datetime] | None) -> Callable[[], datetime]:
    """Make ``clock`` (an aware UTC ``datetime`` each call) the source of every timestamp the
    stores write, or the system clock again with None; returns the clock it replaced. For
    tests and replays that need ordered or fixed times without sleeping."""
    global _clock
    previous, _clock = _clock, clock or _system_clock
    return previous


def now_iso() -> str:
    """The current UTC time as ISO 8601 with microseconds and a ``Z`` suffix (sorts as text)."""
    return _clock().astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str | None) -> datetime:
    """Parse an ISO 8601 timestamp for ordering; anything unparseable sorts as the oldest."""
    if not value:
        return datetime.min.replace(tzinfo=timezone.utc)
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return datetime.min.replace(tzinfo=timezone.utc)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


@dataclass
class SessionMetadata:
    """What a store knows about a session besides its messages."""

    id: str
    created_at: str
    updated_at: str
    message_count: int = 0
    label: str | None = None
    provider: str | None = None
    model: str | None = None
    parent_id: str | None = None
    fork_message_id: str | None = None
    detached: bool = False
    is_checkpoint: bool = False
    checkpoint_state: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    head: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of every field (deep-copied, so callers can't change this object)."""
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, session_id: str | None = None,
                  head: str | None = None) -> "SessionMetadata":
        """Build metadata from a stored dict; keys that are not fields land in ``extra``."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        extra: dict[str, Any] = dict(data.get("extra") or {})
        for key, value in data.items():
            if key == "extra":
                continue
            if key in known:
                values[key] = plain(value)
            else:
                extra[key] = value
        if session_id is not None:
            values["id"] = session_id
        values.setdefault("created_at", values.get("updated_at") or now_iso())
        values.setdefault("updated_at", values["created_at"])
        values["detached"] = bool(values.get("detached", False))
        values["is_checkpoint"] = bool(values.get("is_checkpoint", False))
        values["message_count"] = int(values.get("message_count") or 0)
        values["extra"] = plain(extra)
        if head is not None:
            values["head"] = head
        values.setdefault("id", "")
        return cls(**values)

    def stored_dict(self) -> dict[str, Any]:
        """The dict a store persists: every field but ``id`` and ``head`` (the store knows those)."""
        data = self.to_dict()
        data.pop("id")
        data.pop("head")
        return data


@dataclass
class StoredSession:
    """A session as loaded from a store: its metadata and its whole transcript."""

    metadata: SessionMetadata
    messages: list[Message]

    @property
    def id(self) -> str:
        return self.metadata.id


def merge_metadata(session_id: str, existing: SessionMetadata | None, message_count: int,
                   given: Mapping[str, Any] | SessionMetadata | None) -> SessionMetadata:
    """Apply the save rule: keep what exists, keep ``created_at``, stamp ``updated_at`` and the
    count, then let the caller's keys win (an explicit ``created_at``/``updated_at`` in a
    mapping too; a ``SessionMetadata`` passed back as loaded never freezes ``updated_at``)."""
    now = now_iso()
    base: dict[str, Any] = existing.to_dict() if existing else {"created_at": now}
    base["updated_at"] = now
    base["message_count"] = message_count
    base.pop("head", None)
    if isinstance(given, SessionMetadata):  # metadata as loaded: its time is not a request
        given = given.to_dict()
        given.pop("updated_at", None)
    extra = dict(base.get("extra") or {})
    for key, value in (given or {}).items():
        if key in STORE_OWNED_KEYS:
            continue
        if key == "extra":
            extra.update(plain(dict(value or {})))
        elif key in _FIELD_NAMES:
            base[key] = plain(value)
        else:
            extra[key] = plain(value)
    base["extra"] = extra
    return SessionMetadata.from_dict(base, session_id=session_id)


_FIELD_NAMES = {f.name for f in fields(SessionMetadata)}


def fork_metadata(parent: SessionMetadata, child_id: str, *, detached: bool,
                  fork_message_id: str | None,
                  given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The metadata a fork starts with: provider, model and checkpoint state come from the
    parent (the label does not), plus where it forked; the caller's keys then win."""
    data: dict[str, Any] = {
        "provider": parent.provider,
        "model": parent.model,
        "checkpoint_state": plain(parent.checkpoint_state),
        "parent_id": parent.id,
        "fork_message_id": fork_message_id,
        "detached": detached,
    }
    data.update(dict(given or {}))
    return data


def sort_newest_first(items: list[SessionMetadata]) -> list[SessionMetadata]:
    """Most recently updated first; ties broken by id so the order is stable. Timestamps this
    library wrote sort as text; anything else (a caller's own format) is parsed."""
    items.sort(key=lambda m: m.id)
    if all(isinstance(m.updated_at, str) and _CANONICAL.fullmatch(m.updated_at) for m in items):
        items.sort(key=lambda m: m.updated_at, reverse=True)
    else:
        items.sort(key=lambda m: parse_time(m.updated_at), reverse=True)
    return items


_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
