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
    DiskFullError,
    StorePermissionError,
)
from .conversation import Conversation, ConversationLike
from .manager import SessionManager
from .frozen import FrozenDict, FrozenList, freeze
from .metadata import SessionMetadata, StoredSession
from .providers import EchoProvider, OpenAICompatibleProvider, Provider, ProviderError
from .stores import (
    FileSessionStore,
    GitSessionStore,
    InMemorySessionStore,
    SessionStore,
    SQLiteAdapter,
    SQLSessionAdapter,
    SQLSessionStore,
)
from .stores.git import DeletedSession, SaveRecord
from .sync import Credentials, SyncReport

__all__ = [
    "__version__",
    "SessionStore",
    "SessionMetadata",
    "StoredSession",
    "InMemorySessionStore",
    "GitSessionStore",
    "FileSessionStore",
    "SQLSessionStore",
    "SQLSessionAdapter",
    "SQLiteAdapter",
    "SaveRecord",
    "Credentials",
    "SyncReport",
    "SessionManager",
    "Conversation",
    "freeze",
    "FrozenDict",
    "FrozenList",
    "ConversationLike",
    "Provider",
    "EchoProvider",
    "OpenAICompatibleProvider",
    "ProviderError",
    "DeletedSession",
    "StoreError",
    "DiskFullError",
    "StorePermissionError",
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
