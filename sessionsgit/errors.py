"""The error tree of sessionsgit.

Every error the library raises on purpose derives from ``SessionsGitError``, so callers (and the
CLI) can catch one type::

    SessionsGitError
    ├── SessionNotFoundError      (also KeyError)    no session with that id
    ├── InvalidSessionIdError     (also ValueError)  empty, control characters, > 1,024 chars
    ├── InvalidRevisionError      (also ValueError)  a fork point / revision that does not resolve
    ├── SessionConflictError                         another writer moved the session first
    ├── SerializationError        (also ValueError)  a message or metadata is not exact JSON
    ├── CorruptSessionError                          stored data that cannot be read back
    ├── StoreError                                   a store that cannot be opened or created
    │   └── DiskFullError                            the disk (or quota) is full; nothing changed
    │   └── StorePermissionError                     this user may not write (or read) there
    ├── NoActiveSessionError                         manager has no current session
    ├── RemoteError                                  push / fetch / sync failed
    └── ProviderError (providers.py)                 a model provider call failed
"""

from __future__ import annotations


class SessionsGitError(Exception):
    """Base class of every error sessionsgit raises on purpose."""


class SessionNotFoundError(SessionsGitError, KeyError):
    """No session with the given id exists in the store."""

    def __init__(self, session_id: str, message: str | None = None) -> None:
        self.session_id = session_id
        super().__init__(message or f"session not found: {session_id!r}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class InvalidSessionIdError(SessionsGitError, ValueError):
    """A session id that is not a non-empty str of at most 1,024 characters free of control
    characters (any other text is a valid id; stores encode it where they need to)."""

    def __init__(self, session_id: object, reason: str) -> None:
        self.session_id = session_id
        self.reason = reason
        super().__init__(f"invalid session id {session_id!r}: {reason}")


class InvalidRevisionError(SessionsGitError, ValueError):
    """A fork point or revision that names no message, count or commit of the session."""


class SessionConflictError(SessionsGitError):
    """Another writer changed the session since this store last saw it; nothing was overwritten."""

    def __init__(self, session_id: str, message: str | None = None) -> None:
        self.session_id = session_id
        super().__init__(message or f"session {session_id!r} was changed by another writer")


class SerializationError(SessionsGitError, ValueError):
    """A message or metadata value that cannot be stored as JSON and read back exactly."""


class CorruptSessionError(SessionsGitError):
    """Stored data for a session exists but cannot be read back (damaged object, file or ref)."""

    def __init__(self, session_id: str, reason: str) -> None:
        self.session_id = session_id
        self.reason = reason
        super().__init__(f"session {session_id!r} is damaged: {reason}")


class StoreError(SessionsGitError):
    """A store that cannot be opened or created (not a repository, unwritable path, ...)."""


class DiskFullError(StoreError):
    """A write failed because the disk (or the user's quota) is full; nothing was changed."""


class StorePermissionError(StoreError):
    """The operating system refused this user a file of the store (read-only files or file
    system, or files of another user); nothing was changed."""


class NoActiveSessionError(SessionsGitError):
    """The session manager was asked to act on the current session, but none is loaded."""

    def __init__(self, message: str = "no active session: call start_new() or load() first") -> None:
        super().__init__(message)


class RemoteError(SessionsGitError):
    """A push, fetch or sync against a remote failed; the local store is unchanged."""
