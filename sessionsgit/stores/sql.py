"""SQLSessionStore: sessions as rows behind a small adapter (port of the npm DrizzleSessionStore),
plus ``SQLiteAdapter``, an adapter on the standard library's sqlite3.

The store imports no database library: any object with ``list``, ``load``, ``upsert`` and
``delete`` (see ``SQLSessionAdapter``) will do. A row is::

    {"id": str, "metadata": {...flat, without id...}, "messages": [...], "updated_at": str}

Rows follow the original's rules (``npmrecord``), so the original's ``DrizzleSessionStore`` and
this store can share one table: the id is the key as given (bound as a parameter, so any valid
id is safe), an attached fork's row holds only its own messages, custom keys sit flat.
"""

from __future__ import annotations

import builtins
import copy
import json
import os
import re
import sqlite3
import threading
import weakref
from contextlib import contextmanager, nullcontext
from typing import Any, Iterator, Mapping, NotRequired, Protocol, Sequence, TypedDict

from dataclasses import replace

from ..codec import copy_messages, encode_metadata
from ..errors import CorruptSessionError, InvalidSessionIdError, SerializationError
from ..ids import validate_session_id
from ..metadata import Message, SessionMetadata, StoredSession, merge_metadata, sort_newest_first
from .base import SessionStore, check_expected_head, revision_token
from .npmrecord import (Record, Resolver, is_legacy, own_messages, parse_metadata, parse_record,
                        stored_metadata)


class SQLSessionRow(TypedDict):
    """One session as a table row; ``updated_at`` is copied out of metadata for ORDER BY."""

    id: str
    metadata: dict[str, Any]
    messages: NotRequired[list[Message]]  # rows from list() need not carry messages
    updated_at: str


class SQLSessionAdapter(Protocol):
    """What SQLSessionStore needs from a database: four calls, no library. An adapter may also
    offer ``transaction()``, a context manager the store holds around each read-merge-write so
    concurrent writers in other processes can't lose each other's metadata (SQLiteAdapter does)."""

    def list(self) -> Sequence[Mapping[str, Any]]:
        """Every row (``id``, ``metadata``, ``updated_at``), most recently updated first."""

    def load(self, session_id: str) -> Mapping[str, Any] | None:
        """``{"metadata": ..., "messages": ...}`` for one session, or None."""

    def upsert(self, row: SQLSessionRow) -> None:
        """Insert the row, or replace metadata, messages and updated_at of the existing one."""

    def delete(self, session_id: str) -> bool:
        """Delete one row; True if there was one."""


class SQLSessionStore(SessionStore):
    """A SessionStore over any ``SQLSessionAdapter``; it owns the merge rule and validation."""

    def __init__(self, adapter: SQLSessionAdapter) -> None:
        self.adapter = adapter
        self._lock = _adapter_lock(adapter)
        #: ``(id, reason)`` for every damaged row the last ``list()`` skipped.
        self.last_damaged: list[tuple[str, str]] = []
        #: ``(id, reason)`` for forks the last ``list()`` loaded as the original would, though
        #: their parent is missing or lacks the fork point.
        self.last_warnings: list[tuple[str, str]] = []

    def list(self) -> list[SessionMetadata]:
        """Metadata of every readable row, newest first; damaged rows go to last_damaged, forks
        whose parent is missing or lacks the fork point to last_warnings."""
        found: list[SessionMetadata] = []
        rows = self.adapter.list()
        damaged = list(getattr(self.adapter, "last_damaged", None) or [])  # rows it skipped
        resolver = Resolver(self._read)
        for row in rows:
            try:
                session_id = validate_session_id(row.get("id"))
                metadata = _metadata(session_id, row.get("metadata"))
                record = Record(metadata, [], is_legacy(row["metadata"]))
                count = row["metadata"].get("message_count")
                if record.inherits or not isinstance(count, int) or count < 0:
                    count = len(resolver.transcript(session_id))
                found.append(replace(metadata, message_count=count,
                                     head=revision_token(row["metadata"])))
            except (InvalidSessionIdError, CorruptSessionError) as exc:
                damaged.append((str(row.get("id")), exc.reason))
        self.last_damaged = damaged
        self.last_warnings = resolver.warnings
        return sort_newest_first(found)

    def damaged(self) -> builtins.list[tuple[str, str]]:
        """``(id, reason)`` for each row that cannot be read (runs a fresh ``list()``)."""
        self.list()
        return list(self.last_damaged)

    def load(self, session_id: str) -> StoredSession | None:
        """The session from its row (a fork's through its parents), checked and copied so
        callers can't alter adapter data."""
        validate_session_id(session_id)
        record = self._read(session_id)
        if record is None:
            return None
        transcript = Resolver(self._read, {session_id: record}).transcript(session_id)
        return StoredSession(replace(record.metadata, message_count=len(transcript),
                                     head=revision_token(record.raw)),
                             copy_messages(transcript))

    def save(self, session_id: str, messages: Sequence[Message],
             metadata: Mapping[str, Any] | SessionMetadata | None = None, *,
             expected_head: str | None = None) -> SessionMetadata:
        """Merge with the stored metadata, validate everything, then upsert one row holding
        what the original would (a fork's own messages, custom keys flat)."""
        validate_session_id(session_id)
        stored_messages = copy_messages(messages)
        transaction = getattr(self.adapter, "transaction", None)
        with self._lock, (transaction() if callable(transaction) else nullcontext()):
            existing = self._read(session_id)
            check_expected_head(session_id, revision_token(existing.raw) if existing else None,
                                expected_head)
            merged = merge_metadata(session_id, existing.metadata if existing else None,
                                    len(stored_messages), metadata)
            encode_metadata(merged)
            merged.extra = {k: v for k, v in merged.extra.items() if v is not None}  # as stored
            parent = None
            if merged.parent_id is not None and not merged.detached:
                resolver = Resolver(self._read)
                try:
                    if resolver.record(merged.parent_id) is not None:
                        parent = resolver.transcript(merged.parent_id)
                except CorruptSessionError:
                    parent = None
            own = own_messages(stored_messages, merged, parent)
            stored = stored_metadata(merged, len(own), existing.raw if existing else None)
            self.adapter.upsert({"id": session_id, "metadata": stored, "messages": own,
                                 "updated_at": merged.updated_at})
            merged.head = revision_token(stored)
        return merged

    def _read(self, session_id: str) -> Record | None:
        """The row as a ``Record`` (messages checked and copied), None if there is none."""
        row = self.adapter.load(session_id)
        if row is None:
            return None
        if not isinstance(row.get("metadata"), Mapping):
            raise CorruptSessionError(session_id, "metadata is not an object")
        if not isinstance(row.get("messages"), list):
            raise CorruptSessionError(session_id, "messages is not a list")
        try:
            messages = copy_messages(row["messages"])
        except SerializationError as exc:
            raise CorruptSessionError(session_id, f"bad messages: {exc}") from None
        return parse_record(session_id, {"metadata": copy.deepcopy(dict(row["metadata"])),
                                         "messages": messages})

    def delete(self, session_id: str) -> bool:
        """Delete the session's row."""
        validate_session_id(session_id)
        return bool(self.adapter.delete(session_id))

    def close(self) -> None:
        """Close the adapter when it has a ``close()``."""
        close = getattr(self.adapter, "close", None)
        if callable(close):
            close()


_ADAPTER_LOCKS: "weakref.WeakKeyDictionary[Any, threading.Lock]" = weakref.WeakKeyDictionary()
_ADAPTER_LOCKS_GUARD = threading.Lock()


def _adapter_lock(adapter: Any) -> threading.Lock:
    """One lock per adapter, shared by every store over it, so a read-merge-write (and its
    compare-and-swap) is atomic between them in this process even when the adapter has no
    ``transaction()`` to make it atomic between processes."""
    with _ADAPTER_LOCKS_GUARD:
        try:
            return _ADAPTER_LOCKS.setdefault(adapter, threading.Lock())
        except TypeError:  # not weakly referenceable: a lock of this store's own
            return threading.Lock()


def _metadata(session_id: str, stored: Any) -> SessionMetadata:
    """SessionMetadata from a row's metadata (deep-copied), or CorruptSessionError."""
    if not isinstance(stored, Mapping):
        raise CorruptSessionError(session_id, "metadata is not an object")
    return parse_metadata(session_id, stored, legacy=is_legacy(stored))


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class SQLiteAdapter:
    """``SQLSessionAdapter`` on stdlib sqlite3: one table of JSON text columns, safe across
    threads (one shared connection behind a lock) and processes (busy timeout)."""

    def __init__(self, path: str | os.PathLike[str], *, table: str = "sessions",
                 timeout: float = 5.0) -> None:
        if not _IDENTIFIER.fullmatch(table) or table.lower().startswith("sqlite_"):
            raise ValueError(f"invalid table name {table!r}")
        self.table = table
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(os.fspath(path), timeout=timeout, isolation_level=None,
                                     check_same_thread=False)
        #: ``(id, reason)`` for every row the last ``list()`` could not parse.
        self.last_damaged: list[tuple[str, str]] = []
        with self._lock:
            self._conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{table}" (id TEXT PRIMARY KEY, '
                "metadata TEXT NOT NULL, messages TEXT NOT NULL, updated_at TEXT NOT NULL)")
            self._conn.execute(f'CREATE INDEX IF NOT EXISTS "{table}_updated_at" '
                               f'ON "{table}" (updated_at)')

    def list(self) -> list[SQLSessionRow]:
        """Rows without messages, newest first; rows whose metadata won't parse are skipped."""
        with self._lock:
            rows = self._conn.execute(f'SELECT id, metadata, updated_at FROM "{self.table}" '
                                      "ORDER BY updated_at DESC").fetchall()
        result: list[SQLSessionRow] = []
        damaged: list[tuple[str, str]] = []
        for session_id, metadata, updated_at in rows:
            try:
                result.append({"id": session_id, "metadata": _parse(metadata, dict, "metadata"),
                               "updated_at": updated_at})
            except ValueError as exc:
                damaged.append((str(session_id), str(exc)))
        self.last_damaged = damaged
        return result

    def load(self, session_id: str) -> dict[str, Any] | None:
        """``{"metadata", "messages"}`` parsed from the row, or None; CorruptSessionError if bad."""
        with self._lock:
            row = self._conn.execute(f'SELECT metadata, messages FROM "{self.table}" WHERE id = ?',
                                     (session_id,)).fetchone()
        if row is None:
            return None
        try:
            return {"metadata": _parse(row[0], dict, "metadata"),
                    "messages": _parse(row[1], list, "messages")}
        except ValueError as exc:
            raise CorruptSessionError(session_id, str(exc)) from None

    def upsert(self, row: SQLSessionRow) -> None:
        """INSERT ... ON CONFLICT(id) DO UPDATE, in one statement (so one transaction)."""
        values = (row["id"], _dump(row["metadata"]), _dump(row.get("messages", [])),
                  row["updated_at"])
        with self._lock:
            self._conn.execute(
                f'INSERT INTO "{self.table}" (id, metadata, messages, updated_at) '
                "VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET metadata = excluded.metadata, "
                "messages = excluded.messages, updated_at = excluded.updated_at", values)

    def delete(self, session_id: str) -> bool:
        """Delete one row; True if there was one."""
        with self._lock:
            cursor = self._conn.execute(f'DELETE FROM "{self.table}" WHERE id = ?', (session_id,))
        return cursor.rowcount > 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold SQLite's write lock across a read-merge-write (``BEGIN IMMEDIATE``), so another
        process saving the same session waits instead of losing this one's metadata."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _parse(text: Any, kind: type, what: str) -> Any:
    """Parse a JSON column that must hold a ``kind``; ValueError saying what is wrong if not."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{what} column is not valid JSON: {exc}") from None
    if not isinstance(value, kind):
        raise ValueError(f"{what} column is not a JSON {'object' if kind is dict else 'array'}")
    return value
