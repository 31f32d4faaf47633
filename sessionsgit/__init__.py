"""sessionsgit: durable LLM conversations stored in Git.

Every session is a branch, every save a commit; forks are branches at an earlier commit.
"""

__version__ = "0.1.0"

from .errors import (
    CorruptSessionError,
    InvalidRevisionError,
    InvalidSessionIdError,
    NoActiveSessionError,
    RemoteError,
    SerializationError,
    SessionConflictError,
    SessionNotFoundError,
    SessionsGitError,
    StoreError,
)
from .metadata import SessionMetadata, StoredSession
from .stores import InMemorySessionStore, SessionStore
from .stores.git import DeletedSession, GitSessionStore, SaveRecord

__all__ = [
    "__version__",
    "SessionStore",
    "SessionMetadata",
    "StoredSession",
    "InMemorySessionStore",
    "GitSessionStore",
    "SaveRecord",
    "DeletedSession",
    "StoreError",
    "SessionsGitError",
    "SessionNotFoundError",
    "InvalidSessionIdError",
    "InvalidRevisionError",
    "SessionConflictError",
    "SerializationError",
    "CorruptSessionError",
    "NoActiveSessionError",
    "RemoteError",
]
