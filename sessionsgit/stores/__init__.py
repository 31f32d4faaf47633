"""Session stores: every backend implements ``SessionStore`` and passes the same contract."""

from .base import SessionStore
from .memory import InMemorySessionStore

__all__ = ["SessionStore", "InMemorySessionStore"]
