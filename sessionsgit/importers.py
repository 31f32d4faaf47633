"""Import transcripts into any ``SessionStore``: JSON and JSONL files (their format is
``sessionsgit.transcripts``, which reads and writes them), and a directory written by the npm
package's ``FileSessionStore`` (whose attached forks become real forks here).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import (
    CorruptSessionError,
    InvalidRevisionError,
    InvalidSessionIdError,
    SerializationError,
    SessionConflictError,
)
from .ids import new_session_id, validate_session_id
from .frozen import freeze
from .codec import copy_messages, encode_metadata
from .metadata import Message, merge_metadata
from .stores.base import SessionStore, fork_slice
from .stores.file import FileSessionStore
from .stores.npmrecord import inherited_part, mend_surrogates
from .transcripts import (  # noqa: F401  (the parsers' names here before transcripts.py)
    ImportFormatError, Transcript, is_session_header, parse_document, parse_jsonl, parse_text,
    parse_transcript, read_transcript)

Progress = Callable[[int, int], None]
#: Metadata keys never copied from an imported file (the store owns them, or they are file-only).
_DROPPED_KEYS = frozenset({"id", "head", "message_count", "transcript"})


@dataclass
class ImportResult:
    """What an import did: ids imported, (id, reason) for sessions skipped, and (id, what)
    for sessions imported with something to say (a missing parent, a mended label)."""

    imported: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)


def clean_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Imported metadata without the keys a store owns (id, head, message_count)."""
    return {k: v for k, v in metadata.items() if k not in _DROPPED_KEYS}


# ---- writing into a store -----------------------------------------------------------------
def import_transcript(store: SessionStore, transcript: Transcript, *,
                      session_id: str | None = None, label: str | None = None) -> str:
    """Save a transcript as a new session (a fork when its parent is in the store and its
    transcript starts with the parent's); returns the id. An existing id is a conflict."""
    target = validate_session_id(session_id or transcript.id or new_session_id())
    if store.exists(target):
        raise SessionConflictError(target, f"session {target!r} already exists; import it "
                                           "under another id with --id")
    metadata = clean_metadata(transcript.metadata)
    if label is not None:
        metadata["label"] = label
    save_imported(store, target, transcript.messages, metadata)
    return target


def save_imported(store: SessionStore, session_id: str, messages: Sequence[Message],
                  metadata: dict[str, Any]) -> None:
    """Save ``messages``; an attached fork whose parent is in the store is first forked from
    it at its fork point, so the stores share history (Git: a common merge base)."""
    copy_messages(messages)  # every message and the metadata are checked before a write:
    encode_metadata(merge_metadata(session_id, None, len(messages), metadata))
    keep = _fork_point(store, messages, metadata)
    if keep is None:
        store.save(session_id, list(messages), metadata)
        return
    store.fork(metadata["parent_id"], session_id, at=keep)
    try:
        store.save(session_id, list(messages), metadata)
    except BaseException:  # all or nothing: no half-imported fork left under the id
        store.delete(session_id)
        purge = getattr(store, "purge", None)
        if callable(purge):
            purge(session_id)
        raise


def _fork_point(store: SessionStore, messages: Sequence[Message],
                metadata: dict[str, Any]) -> int | None:
    """How many of the parent's messages an attached fork shares, or None if it is no fork."""
    parent_id = metadata.get("parent_id")
    if not isinstance(parent_id, str) or metadata.get("detached"):
        return None
    try:
        parent = store.load(parent_id)
    except (InvalidSessionIdError, CorruptSessionError):
        return None
    if parent is None:
        return None
    fork_message_id = metadata.get("fork_message_id")
    if isinstance(fork_message_id, str):
        keep = fork_slice(parent.messages, fork_message_id)
    else:
        keep = _common_prefix(parent.messages, messages)
    if keep is None or list(messages[:keep]) != parent.messages[:keep]:
        return None
    return keep


def _common_prefix(a: Sequence[Message], b: Sequence[Message]) -> int:
    count = 0
    for left, right in zip(a, b):
        if left != right:
            break
        count += 1
    return count


def import_npm_directory(store: SessionStore, directory: str | os.PathLike[str], *,
                         progress: Progress | None = None) -> ImportResult:
    """Import every session of a directory the original package's ``FileSessionStore`` wrote,
    parents before forks, each attached fork as a fork of its parent at its true fork point
    (the parent's history gets a save holding exactly the inherited messages). Reads each
    file once; time is linear in the directory's size. Sessions already in the store, damaged
    files, symlinks leading outside the directory and ndjson sessions are skipped (and
    reported); forks with a missing parent and mended labels are imported with a warning."""
    directory = Path(directory)
    if not any(name.endswith(".json") for name in os.listdir(directory)):
        raise ImportFormatError(f"{directory}: no session files (<id>.json) in this directory")
    source = FileSessionStore(directory)
    sessions = source.load_all()
    result = ImportResult(skipped=[(sid, f"damaged: {why}") for sid, why in source.last_damaged])
    for session_id, why in source.last_warnings:
        (result.warnings if session_id in sessions else result.skipped).append((session_id, why))
    ordered = _parents_first(list(sessions.values()))
    keeps = {s.id: _inherited_count(s, sessions) for s in ordered}
    stages: dict[str, set[int]] = {}
    for session in ordered:
        keep = keeps[session.id]
        if keep is not None:
            stages.setdefault(session.metadata.parent_id, set()).add(keep)
    imported: set[str] = set()
    mender = _Mender()
    total = len(ordered)
    for done, session in enumerate(ordered, 1):
        session_id = session.id
        try:
            if store.exists(session_id):
                result.skipped.append((session_id, "already in the repository"))
                continue
            parent_id = session.metadata.parent_id
            keep = keeps[session_id] if parent_id in imported else None
            messages, metadata = mender.mend(session, result, parent_id if keep else None, keep)
            if keep is not None:
                store.fork(parent_id, session_id, at=keep)
            elif parent_id is not None and not session.metadata.detached and \
                    parent_id not in sessions:
                result.warnings.append((session_id, f"its parent {parent_id!r} is not in the "
                                                     "directory: imported as a session of its own"))
            start = keep or 0
            for stage in sorted(stages.get(session_id, ())):
                if start < stage < len(messages):  # a save at each fork point of its forks
                    store.save(session_id, messages[:stage], metadata)
            if keep is None:
                save_imported(store, session_id, messages, metadata)
            else:
                store.save(session_id, messages, metadata)
            imported.add(session_id)
            result.imported.append(session_id)
        except (CorruptSessionError, InvalidSessionIdError, InvalidRevisionError,
                SerializationError, SessionConflictError, RecursionError) as exc:
            result.skipped.append((session_id, str(exc) or type(exc).__name__))
        finally:
            if progress is not None:
                progress(done, total)
    return result


def _inherited_count(session: Any, sessions: dict[str, Any]) -> int | None:
    """How many of its parent's messages an attached fork's transcript starts with, as the
    original resolves it; None when it is no fork of a session in ``sessions``."""
    meta = session.metadata
    parent = sessions.get(meta.parent_id) if meta.parent_id is not None else None
    if parent is None or meta.detached:
        return None
    inherited, _ = inherited_part(parent.messages, meta.fork_message_id)
    if session.messages[:len(inherited)] != inherited:
        return None
    return len(inherited)


class _Mender:
    """Makes each source message once into what is saved: read-only (``freeze``: forks share
    their inherited message objects, so the Git store skips them by identity and a chain of
    forks imports in linear time) and free of unpaired UTF-16 surrogates (the original cuts
    auto-labels by code unit, so text can hold half an emoji), which become U+FFFD."""

    def __init__(self) -> None:
        self._done: dict[int, tuple[Any, int, Any]] = {}
        self._transcripts: dict[str, list[Message]] = {}

    def _one(self, value: Any) -> tuple[Any, int]:
        key = id(value)
        if key not in self._done:
            mended, broken = mend_surrogates(value)
            self._done[key] = (freeze(mended), broken, value)  # value: keeps id() unique
        return self._done[key][:2]

    def mend(self, session: Any, result: ImportResult, parent_id: str | None = None,
             keep: int | None = None) -> tuple[list[Message], dict[str, Any]]:
        """The session's messages and metadata to save, with a warning for what was mended;
        a fork's first ``keep`` messages are its parent's, already mended."""
        metadata, broken_meta = mend_surrogates(clean_metadata(session.metadata.stored_dict()))
        inherited = self._transcripts[parent_id][:keep] if parent_id and keep else []
        messages, broken = inherited, 0
        for message in session.messages[len(inherited):]:
            mended, count = self._one(message)
            messages.append(mended)
            broken += count
        self._transcripts[session.id] = messages
        for what, count in (("metadata", broken_meta), ("messages", broken)):
            if count:
                result.warnings.append((session.id, f"replaced {count} broken UTF-16 code "
                                                    f"unit(s) in its {what} with U+FFFD"))
        return messages, metadata


def _parents_first(sessions: list[Any]) -> list[Any]:
    """Oldest first, but every attached fork after its parent (iterative: chains of any
    length; a fork cycle is broken where it is found)."""
    by_id = {s.id: s for s in sessions}
    ordered: list[Any] = []
    placed: set[str] = set()
    for first in sorted(sessions, key=lambda s: (s.metadata.created_at or "", s.id)):
        chain, current, seen = [], first, set()
        while current is not None and current.id not in placed and current.id not in seen:
            chain.append(current)
            seen.add(current.id)
            parent_id = current.metadata.parent_id
            current = by_id.get(parent_id) if isinstance(parent_id, str) else None
        for session in reversed(chain):
            placed.add(session.id)
            ordered.append(session)
    return ordered


def import_path(store: SessionStore, path: str | os.PathLike[str], *,
                session_id: str | None = None, label: str | None = None,
                progress: Progress | None = None) -> ImportResult:
    """Import a file (one session) or an npm store directory (all its sessions)."""
    path = Path(path)
    if path.is_dir():
        if session_id is not None or label is not None:
            raise ImportFormatError("--id and --label apply to a single file, not a directory")
        return import_npm_directory(store, path, progress=progress)
    transcript = read_transcript(path)
    imported = import_transcript(store, transcript, session_id=session_id, label=label)
    if progress is not None:
        progress(1, 1)
    return ImportResult(imported=[imported])
