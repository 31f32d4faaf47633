"""Session stores: every backend implements ``SessionStore`` and passes the same contract."""

from .base import SessionStore
from .file import FileSessionStore
from .git import GitSessionStore
from .memory import InMemorySessionStore
from .sql import SQLiteAdapter, SQLSessionAdapter, SQLSessionStore

__all__ = ["SessionStore", "GitSessionStore", "FileSessionStore", "InMemorySessionStore",
           "SQLSessionStore", "SQLSessionAdapter", "SQLiteAdapter"]
