"""FileSessionStore: one JSON file per session, the on-disk format of @simulacra-ai/session.

Layout of the directory::

    <id>.json                   {"metadata": {...without id...}, "messages": [...]}
    <parent-id>-forks/<id>.json hard link to a fork's file: an index of a parent's forks only
    .sessions.lock              held (flock) during save and delete

Files this store writes hold the whole transcript and say so with ``"transcript": "full"`` in
their metadata. Files written by the npm package hold, for an attached fork, only the fork's own
messages; ``load`` rebuilds the transcript through the parent chain for those.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ..codec import copy_messages, dumps_exact, encode_metadata
from ..errors import CorruptSessionError, InvalidSessionIdError
from .. import idcodec
from ..ids import is_valid_session_id, validate_session_id
from ..metadata import Message, SessionMetadata, StoredSession, merge_metadata, sort_newest_first
from .base import SessionStore, fork_slice

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the in-process lock is all we have
    fcntl = None  # type: ignore[assignment]

#: Metadata key (and value) marking a file that holds its session's whole transcript.
TRANSCRIPT_KEY = "transcript"
FULL_TRANSCRIPT = "full"
LOCK_FILE = ".sessions.lock"
FORKS_SUFFIX = "-forks"

_dir_locks: dict[str, threading.Lock] = {}
_dir_locks_guard = threading.Lock()


def _thread_lock(directory: Path) -> threading.Lock:
    """One in-process lock per directory, shared by every store instance over it."""
    with _dir_locks_guard:
        return _dir_locks.setdefault(str(directory), threading.Lock())


class FileSessionStore(SessionStore):
    """Sessions as ``<id>.json`` files in one directory, readable by and from the npm package."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = _thread_lock(self.directory)
        #: ``(id, reason)`` for every damaged file the last ``list()`` skipped.
        self.last_damaged: list[tuple[str, str]] = []

    # ---- SessionStore -------------------------------------------------------------------
    def list(self) -> list[SessionMetadata]:
        """Metadata of every readable session, newest first; damaged files go to last_damaged."""
        found: list[SessionMetadata] = []
        damaged: list[tuple[str, str]] = []
        for entry in os.scandir(self.directory):
            if not entry.name.endswith(".json") or not entry.is_file():
                continue
            session_id = self._session_id_of(entry.name[:-len(".json")])
            if session_id is None:
                continue
            try:
                record = self._read(session_id)
            except CorruptSessionError as exc:
                damaged.append((session_id, exc.reason))
                continue
            if record is not None:  # None: removed since scandir saw it
                found.append(record[0])
        self.last_damaged = damaged
        return sort_newest_first(found)

    def damaged(self) -> list[tuple[str, str]]:
        """``(id, reason)`` for each session that cannot be loaded: files that cannot be read
        (rescans the directory), plus npm forks whose parent chain is broken."""
        found = self.list()
        damaged = list(self.last_damaged)
        for meta in found:
            try:
                self.load(meta.id)
            except CorruptSessionError as exc:
                damaged.append((meta.id, exc.reason))
        return damaged

    def load(self, session_id: str) -> StoredSession | None:
        """The session with its whole transcript, rebuilt through the parents for npm forks."""
        validate_session_id(session_id)
        record = self._read(session_id)
        if record is None:
            return None
        metadata, messages, full = record
        # Walk up while the file only holds a fork's own messages, then replay downwards.
        links: list[tuple[str, SessionMetadata, list[Message]]] = []
        current, seen = session_id, {session_id}
        while not full and metadata.parent_id is not None and not metadata.detached:
            links.append((current, metadata, messages))
            parent_id = metadata.parent_id
            if not _is_valid_id(parent_id):
                raise CorruptSessionError(session_id, f"{current!r} names an invalid parent id "
                                                      f"{parent_id!r}")
            if parent_id in seen:
                raise CorruptSessionError(session_id, f"fork cycle through {parent_id!r}")
            seen.add(parent_id)
            parent = self._read(parent_id)
            if parent is None:
                raise CorruptSessionError(
                    session_id, f"{current!r} holds only its own messages and its parent "
                                f"{parent_id!r} is missing")
            current, (metadata, messages, full) = parent_id, parent
        transcript = messages
        for child_id, child_meta, own in reversed(links):
            keep = _fork_point(transcript, child_meta.fork_message_id)
            if keep is None:
                raise CorruptSessionError(
                    session_id, f"{child_id!r} forks at message {child_meta.fork_message_id!r}, "
                                f"which its parent {child_meta.parent_id!r} does not have")
            transcript = transcript[:keep] + own
        return StoredSession(record[0], transcript)

    def save(self, session_id: str, messages: Sequence[Message],
             metadata: Mapping[str, Any] | SessionMetadata | None = None) -> SessionMetadata:
        """Write the whole transcript atomically (temp file, fsync, replace) under the lock.
        A damaged existing file raises ``CorruptSessionError`` (delete it first to replace it)."""
        validate_session_id(session_id)
        stored_messages = copy_messages(messages)
        with self._locked():
            existing = self._read(session_id)
            merged = merge_metadata(session_id, existing[0] if existing else None,
                                    len(stored_messages), metadata)
            encode_metadata(merged)
            stored = merged.stored_dict()
            stored[TRANSCRIPT_KEY] = FULL_TRANSCRIPT
            if idcodec.is_hashed(self._path(session_id).stem):
                stored["id"] = session_id  # a hashed file name does not say which id it holds
            text = dumps_exact({"metadata": stored, "messages": stored_messages}, indent=2,
                               what=f"session {session_id!r}")[0]
            self._write_atomic(self._path(session_id), text.encode("utf-8"))
            old_parent = existing[0].parent_id if existing else None
            if old_parent is not None and old_parent != merged.parent_id:
                self._unlink_fork_link(old_parent, session_id)
            if merged.parent_id is not None:
                self._link_fork(merged.parent_id, session_id)
        return merged

    def delete(self, session_id: str) -> bool:
        """Remove the file and its fork-index links; the session's own forks are kept."""
        validate_session_id(session_id)
        with self._locked():
            try:
                self._path(session_id).unlink()
            except FileNotFoundError:
                return False
            # Any parent's index may link it (metadata can be damaged or may have changed);
            # this also drops the session's own <id>-forks/ folder when it is empty.
            for entry in os.scandir(self.directory):
                if entry.name.endswith(FORKS_SUFFIX) and entry.is_dir(follow_symlinks=False):
                    parent_id = self._session_id_of(entry.name[:-len(FORKS_SUFFIX)])
                    if parent_id is not None:
                        self._unlink_fork_link(parent_id, session_id)
        return True

    def exists(self, session_id: str) -> bool:
        """Whether ``<id>.json`` exists (no parsing)."""
        validate_session_id(session_id)
        return self._path(session_id).is_file()

    # ---- files --------------------------------------------------------------------------
    def _path(self, session_id: str) -> Path:
        return self.directory / f"{idcodec.encode(session_id, idcodec.FILE)}.json"

    def _session_id_of(self, stem: str) -> str | None:
        """The id a file stem stands for (a hashed stem: the id its metadata records), or None
        for names that encode no id (temp, lock and foreign files)."""
        if not idcodec.is_hashed(stem):
            return idcodec.decode(stem, idcodec.FILE)
        try:
            data = json.loads((self.directory / f"{stem}.json").read_bytes())
            session_id = data["metadata"]["id"]
        except (OSError, ValueError, TypeError, KeyError, RecursionError):
            return None
        return session_id if idcodec.matches(stem, session_id, idcodec.FILE) else None

    def _read(self, session_id: str) -> tuple[SessionMetadata, list[Message], bool] | None:
        """Parse one file: (metadata, messages as stored, whole transcript?); None if absent."""
        try:
            raw = self._path(session_id).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CorruptSessionError(session_id, f"cannot read file: {exc}") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise CorruptSessionError(session_id, f"not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict):
            raise CorruptSessionError(session_id, "no 'metadata' object")
        messages = data.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise CorruptSessionError(session_id, "'messages' is not a list of objects")
        stored = dict(data["metadata"])
        full = stored.pop(TRANSCRIPT_KEY, None) == FULL_TRANSCRIPT
        stored.pop("id", None)
        stored.pop("head", None)
        try:
            metadata = SessionMetadata.from_dict(stored, session_id=session_id)
        except (TypeError, ValueError) as exc:
            raise CorruptSessionError(session_id, f"bad metadata: {exc}") from None
        return metadata, messages, full

    def _write_atomic(self, path: Path, data: bytes) -> None:
        """Write a temp file beside ``path``, fsync it, then rename it over ``path``."""
        temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def _link_fork(self, parent_id: str, session_id: str) -> None:
        """Point ``<parent>-forks/<id>.json`` at the fork's current file (best effort)."""
        if not _is_valid_id(parent_id):
            return
        link = self._forks_dir(parent_id) / self._path(session_id).name
        with contextlib.suppress(OSError):
            link.parent.mkdir(exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                link.unlink()  # os.replace gave the fork a new inode: the old link is stale
            os.link(self._path(session_id), link)

    def _unlink_fork_link(self, parent_id: str, session_id: str) -> None:
        """Drop ``<parent>-forks/<id>.json``, and the folder once empty if the parent is gone."""
        if not _is_valid_id(parent_id):
            return
        fork_dir = self._forks_dir(parent_id)
        with contextlib.suppress(OSError):
            (fork_dir / self._path(session_id).name).unlink()
        if not self._path(parent_id).exists():
            with contextlib.suppress(OSError):
                fork_dir.rmdir()

    def _forks_dir(self, parent_id: str) -> Path:
        return self.directory / f"{idcodec.encode(parent_id, idcodec.FILE)}{FORKS_SUFFIX}"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise writers: a lock per directory in this process, flock across processes."""
        with self._lock:
            if fcntl is None:  # pragma: no cover
                yield
                return
            fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the flock


_is_valid_id = is_valid_session_id


def _fork_point(messages: list[Message], fork_message_id: object) -> int | None:
    """How many of the parent's messages an npm fork inherits: all when it names no message."""
    if fork_message_id is None:
        return len(messages)
    if not isinstance(fork_message_id, str):
        return None
    return fork_slice(messages, fork_message_id)
