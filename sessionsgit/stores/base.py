"""The store contract (``SessionStore``) and the fork logic every store shares."""

from __future__ import annotations

import abc
import hashlib
import json
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


#: ``expected_head`` value meaning "the session must not exist yet" (used by ``append``).
MUST_NOT_EXIST = "\x00new"


def revision_token(stored_metadata: Mapping[str, Any]) -> str:
    """The ``head`` of a store without commits: a hash of the metadata it stored, which every
    save changes (``updated_at`` is stamped to the microsecond)."""
    text = json.dumps(stored_metadata, sort_keys=True, ensure_ascii=True, default=repr)
    return hashlib.blake2b(text.encode("ascii"), digest_size=10).hexdigest()


def check_expected_head(session_id: str, current: str | None, expected: str | None) -> None:
    """Raise ``SessionConflictError`` unless the session is at ``expected`` (None: anything;
    ``MUST_NOT_EXIST``: absent). Stores call it under their write lock."""
    if expected is None or (expected == MUST_NOT_EXIST and current is None) or \
            (current is not None and current == expected):
        return
    if expected == MUST_NOT_EXIST:
        raise SessionConflictError(session_id, f"session {session_id!r} was created by "
                                               "another writer meanwhile")
    raise SessionConflictError(session_id, f"session {session_id!r} is no longer at "
                                           f"{expected[:12]}: another writer saved it; load "
                                           "it again")


class SessionStore(abc.ABC):
    """Where sessions live. Every store keeps whole transcripts plus ``SessionMetadata`` and
    passes the same contract tests (tests/store_contract.py). Every store's metadata carries
    a ``head``: an opaque revision token (a commit id for Git) that ``save``/``append`` take as
    ``expected_head=`` to compare and swap."""

    #: Whether ``save()`` takes ``expected_head=`` (every store does now).
    tracks_heads = True
    #: ``(id, reason)`` for each damaged session the last ``list()`` left out.
    last_damaged: "list[tuple[str, str]]" = []

    def damaged(self) -> "list[tuple[str, str]]":
        """Sessions that exist but cannot be loaded, as ``(id, reason)``."""
        self.list()
        return [*self.last_damaged]

    @abc.abstractmethod
    def list(self) -> list[SessionMetadata]:
        """Every session's metadata, most recently updated first."""

    @abc.abstractmethod
    def load(self, session_id: str) -> StoredSession | None:
        """The session with its whole transcript, or None when there is no such session."""

    @abc.abstractmethod
    def save(self, session_id: str, messages: Sequence[Message],
             metadata: Mapping[str, Any] | SessionMetadata | None = None, *,
             expected_head: str | None = None) -> SessionMetadata:
        """Create or update a session with exactly ``messages``; returns the stored metadata.
        With ``expected_head`` the session must still be at that head (else
        ``SessionConflictError``, nothing written)."""

    def append(self, session_id: str, messages: Sequence[Message],
               metadata: Mapping[str, Any] | SessionMetadata | None = None, *,
               expected_head: str | None = None) -> SessionMetadata:
        """Add ``messages`` at the end of the session (created if missing); returns the new
        metadata. Without ``expected_head`` a concurrent writer's change is built upon (the
        append is retried on top of it, so concurrent appends all land, each writer's in its
        own order); with it, a strict compare-and-swap like ``save``. This default reads the
        transcript; the Git store's costs the same however long the session is."""
        added = list(messages)
        while True:
            current = self.load(session_id)
            head = current.metadata.head if current is not None else None
            check_expected_head(session_id, head, expected_head)
            transcript = (list(current.messages) if current is not None else []) + added
            try:
                return self.save(session_id, transcript, metadata,
                                 expected_head=head if head is not None else MUST_NOT_EXIST)
            except SessionConflictError:
                if expected_head is not None:
                    raise

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
