"""The store contract (``SessionStore``) and the fork logic every store shares."""

from __future__ import annotations

import abc
from typing import Any, Mapping, Sequence

from ..errors import InvalidRevisionError, SessionConflictError, SessionNotFoundError
from ..ids import new_session_id, validate_session_id
from ..metadata import Message, SessionMetadata, StoredSession, fork_metadata

ForkPoint = int | str | None


def fork_slice(messages: Sequence[Message], at: ForkPoint) -> int | None:
    """How many leading messages a fork at ``at`` keeps: all for None, the first N for an int, up
    to and including the message whose ``id`` is ``at`` for a string. None when a string names
    no message (a Git store then tries it as a commit-ish)."""
    if at is None:
        return len(messages)
    if isinstance(at, bool):
        raise InvalidRevisionError(f"fork point must be an int or a string, not {at!r}")
    if isinstance(at, int):
        if not 0 <= at <= len(messages):
            raise InvalidRevisionError(
                f"fork point {at} is outside the transcript (0..{len(messages)})")
        return at
    if isinstance(at, str):
        for index, message in enumerate(messages):
            if isinstance(message, dict) and message.get("id") == at:
                return index + 1
        return None
    raise InvalidRevisionError(f"fork point must be an int or a string, not {type(at).__name__}")


def last_message_id(messages: Sequence[Message]) -> str | None:
    """The ``id`` of the last message, when it has one: the fork point a child records."""
    if messages and isinstance(messages[-1], dict):
        value = messages[-1].get("id")
        return value if isinstance(value, str) else None
    return None


class SessionStore(abc.ABC):
    """Where sessions live. Every store keeps whole transcripts plus ``SessionMetadata`` and
    passes the same contract tests (tests/store_contract.py)."""

    #: Whether ``save()`` takes ``expected_head=`` (stores whose metadata carries a ``head``).
    tracks_heads = False

    @abc.abstractmethod
    def list(self) -> list[SessionMetadata]:
        """Every session's metadata, most recently updated first."""

    @abc.abstractmethod
    def load(self, session_id: str) -> StoredSession | None:
        """The session with its whole transcript, or None when there is no such session."""

    @abc.abstractmethod
    def save(self, session_id: str, messages: Sequence[Message],
             metadata: Mapping[str, Any] | SessionMetadata | None = None) -> SessionMetadata:
        """Create or update a session with exactly ``messages``; returns the stored metadata."""

    @abc.abstractmethod
    def delete(self, session_id: str) -> bool:
        """Remove a session; False when there was none."""

    def exists(self, session_id: str) -> bool:
        """Whether a session with this id is stored."""
        return self.load(session_id) is not None

    def rename(self, session_id: str, label: str | None) -> SessionMetadata:
        """Set a session's label, keeping its transcript."""
        session = self._require(session_id)
        return self.save(session_id, session.messages, {"label": label})

    def fork(self, parent_id: str, new_id: str | None = None, *, at: ForkPoint = None,
             detached: bool = False, metadata: Mapping[str, Any] | None = None) -> str:
        """A new session holding the parent's transcript up to ``at`` (all of it by default);
        ``detached=True`` starts empty and only records the parent. Returns the new id."""
        validate_session_id(parent_id)
        child_id = validate_session_id(new_id) if new_id is not None else new_session_id()
        parent = self._require(parent_id)
        keep = fork_slice(parent.messages, at)
        if keep is None:
            raise InvalidRevisionError(f"no message with id {at!r} in session {parent_id!r}")
        if self.exists(child_id):
            raise SessionConflictError(child_id, f"session {child_id!r} already exists")
        inherited = [] if detached else parent.messages[:keep]
        child_meta = fork_metadata(
            parent.metadata, child_id, detached=detached,
            fork_message_id=None if detached else last_message_id(inherited), given=metadata)
        self.save(child_id, inherited, child_meta)
        return child_id

    def _require(self, session_id: str) -> StoredSession:
        session = self.load(session_id)
        if session is None:
            raise SessionNotFoundError(session_id)
        return session

    def close(self) -> None:
        """Release what the store holds open (a no-op for most stores)."""

    def __enter__(self) -> "SessionStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
