"""sessionsgit: durable LLM conversations stored in Git.

Every session is a branch, every save a commit; forks are branches at an earlier commit.

Every public name below is importable from ``sessionsgit``; each is loaded on first use (PEP
562), so ``import sessionsgit`` (and the CLI) pays only for what it touches: ``list`` never
loads providers, sync or yaml.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the submodule that defines it (``module:attribute`` when named otherwise there:
#: ``sync_sessions`` is ``sessionsgit.sync.sync``, since ``sessionsgit.sync`` is the module).
_LAZY: dict[str, str] = {
    # errors
    **dict.fromkeys((
        "SessionsGitError", "SessionNotFoundError", "InvalidSessionIdError",
        "InvalidRevisionError", "SessionConflictError", "SerializationError",
        "CorruptSessionError", "StoreError", "DiskFullError", "StorePermissionError",
        "NoActiveSessionError", "RemoteError"), "errors"),
    "AmbiguousSessionError": "resolve",
    "ImportFormatError": "transcripts",
    "ProviderError": "providers",
    # stores and their records
    "SessionStore": "stores.base",
    "InMemorySessionStore": "stores.memory",
    "FileSessionStore": "stores.file",
    "GitSessionStore": "stores.git",
    "SaveRecord": "stores.git",
    "DeletedSession": "stores.git",
    "SQLSessionStore": "stores.sql",
    "SQLSessionAdapter": "stores.sql",
    "SQLiteAdapter": "stores.sql",
    "SessionMetadata": "metadata",
    "StoredSession": "metadata",
    # conversations
    "SessionManager": "manager",
    "Conversation": "conversation",
    "ConversationLike": "conversation",
    "Provider": "providers",
    "EchoProvider": "providers",
    "OpenAICompatibleProvider": "providers",
    "freeze": "frozen",
    "FrozenDict": "frozen",
    "FrozenList": "frozen",
    # ids, messages
    "new_session_id": "ids",
    "validate_session_id": "ids",
    "stamp_message": "stamps",
    "new_message_id": "stamps",
    "message_text": "messages",
    "message_parts": "messages",
    "diff_messages": "msgdiff",
    "MessageDiff": "msgdiff",
    "MessageChange": "msgdiff",
    # resolving session arguments and listing
    "resolve_id": "resolve",
    "resolve_deleted_id": "resolve",
    "resolve_session": "resolve",
    "resolve_revision": "resolve",
    "split_revision": "resolve",
    "list_sessions": "listing",
    "deleted_version_ref": "listing",
    "delete_session": "listing",
    "unignored_in_worktree": "hints",
    "remote_only_sessions": "hints",
    # transcripts: export and import
    "EXPORT_FORMATS": "transcripts",
    "export_session": "transcripts",
    "Transcript": "transcripts",
    "read_transcript": "transcripts",
    "parse_transcript": "transcripts",
    "ImportResult": "importers",
    "import_transcript": "importers",
    "import_path": "importers",
    "import_npm_directory": "importers",
    # remotes
    "Credentials": "sync",
    "SyncReport": "sync",
    "push": "sync",
    "pull": "sync",
    "sync_sessions": "sync:sync",
    "add_remote": "sync",
    "list_remotes": "sync",
    "remove_remote": "sync",
    "install_diff_driver": "sync",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    """Load a public name's module on first use and keep the name here."""
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, _, attribute = where.partition(":")
    value = getattr(importlib.import_module(f".{module}", __name__), attribute or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and IDEs see: every name, eagerly
    from .conversation import Conversation, ConversationLike
    from .errors import (CorruptSessionError, DiskFullError, InvalidRevisionError,
                         InvalidSessionIdError, NoActiveSessionError, RemoteError,
                         SerializationError, SessionConflictError, SessionNotFoundError,
                         SessionsGitError, StoreError, StorePermissionError)
    from .frozen import FrozenDict, FrozenList, freeze
    from .hints import remote_only_sessions, unignored_in_worktree
    from .ids import new_session_id, validate_session_id
    from .importers import ImportResult, import_npm_directory, import_path, import_transcript
    from .listing import deleted_version_ref, list_sessions
    from .manager import SessionManager
    from .messages import message_parts, message_text
    from .metadata import SessionMetadata, StoredSession
    from .msgdiff import MessageChange, MessageDiff, diff_messages
    from .providers import EchoProvider, OpenAICompatibleProvider, Provider, ProviderError
    from .resolve import (AmbiguousSessionError, resolve_deleted_id, resolve_id,
                          resolve_revision, resolve_session, split_revision)
    from .stamps import new_message_id, stamp_message
    from .stores.base import SessionStore
    from .stores.file import FileSessionStore
    from .stores.git import DeletedSession, GitSessionStore, SaveRecord
    from .stores.memory import InMemorySessionStore
    from .stores.sql import SQLiteAdapter, SQLSessionAdapter, SQLSessionStore
    from .sync import (Credentials, SyncReport, add_remote, install_diff_driver, list_remotes,
                       pull, push, remove_remote)
    from .sync import sync as sync_sessions
    from .transcripts import (EXPORT_FORMATS, ImportFormatError, Transcript, export_session,
                              parse_transcript, read_transcript)
