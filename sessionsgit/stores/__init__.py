"""Session stores: every backend implements ``SessionStore`` and passes the same contract.

Each store's module is imported on first use (PEP 562), so opening a Git store does not load
the SQL or file stores."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {"SessionStore": "base", "GitSessionStore": "git", "FileSessionStore": "file",
         "InMemorySessionStore": "memory", "SQLSessionStore": "sql",
         "SQLSessionAdapter": "sql", "SQLiteAdapter": "sql"}

__all__ = ["SessionStore", "GitSessionStore", "FileSessionStore", "InMemorySessionStore",
           "SQLSessionStore", "SQLSessionAdapter", "SQLiteAdapter"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from .base import SessionStore
    from .file import FileSessionStore
    from .git import GitSessionStore
    from .memory import InMemorySessionStore
    from .sql import SQLiteAdapter, SQLSessionAdapter, SQLSessionStore
