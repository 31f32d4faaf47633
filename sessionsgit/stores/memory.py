"""InMemorySessionStore: a dict of sessions, for tests and throwaway work."""

from __future__ import annotations

import copy
import threading
from typing import Any, Mapping, Sequence

from ..codec import copy_messages, encode_metadata
from ..ids import validate_session_id
from ..metadata import Message, SessionMetadata, StoredSession, merge_metadata, sort_newest_first
from .base import SessionStore, check_expected_head


class InMemorySessionStore(SessionStore):
    """Keeps sessions in a dict; hands out deep copies so callers can't change what is stored."""

    def __init__(self) -> None:
        self._sessions: dict[str, StoredSession] = {}
        self._lock = threading.Lock()
        self._revision = 0  # the head of a save: a counter over the whole store

    def list(self) -> list[SessionMetadata]:
        with self._lock:
            return sort_newest_first([copy.deepcopy(s.metadata) for s in self._sessions.values()])

    def load(self, session_id: str) -> StoredSession | None:
        validate_session_id(session_id)
        with self._lock:
            session = self._sessions.get(session_id)
            return copy.deepcopy(session) if session else None

    def save(self, session_id: str, messages: Sequence[Message],
             metadata: Mapping[str, Any] | SessionMetadata | None = None, *,
             expected_head: str | None = None) -> SessionMetadata:
        validate_session_id(session_id)
        stored_messages = copy_messages(messages)
        with self._lock:
            existing = self._sessions.get(session_id)
            check_expected_head(session_id, existing.metadata.head if existing else None,
                                expected_head)
            merged = merge_metadata(session_id, existing.metadata if existing else None,
                                    len(stored_messages), metadata)
            encode_metadata(merged)
            self._revision += 1
            merged.head = str(self._revision)
            self._sessions[session_id] = StoredSession(merged, stored_messages)
            return copy.deepcopy(merged)

    def delete(self, session_id: str) -> bool:
        validate_session_id(session_id)
        with self._lock:
            return self._sessions.pop(session_id, None) is not None

    def exists(self, session_id: str) -> bool:
        validate_session_id(session_id)
        return session_id in self._sessions

