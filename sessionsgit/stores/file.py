"""FileSessionStore: one JSON file per session, the on-disk format of @simulacra-ai/session, so
the original package (0.0.9) and sessionsgit can share one directory.

Layout of the directory::

    <name>.json                   {"metadata": {...flat, without id...}, "messages": [...]}
    <parent-name>-forks/<name>.json hard link to a fork's file: an index of a parent's forks
    .sessions.lock                held (flock) during save and delete

``<name>`` is the session id, percent-encoded where it is unsafe as a file name
(``idcodec.FILE``). Records follow the original's rules (``npmrecord``): an attached fork's file
holds only its own messages and ``load`` rebuilds its transcript through the parent chain; custom
metadata keys sit flat beside the known ones.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import os
import secrets
import shutil
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .. import idcodec
from ..codec import copy_messages, dumps_exact, encode_metadata
from ..errors import CorruptSessionError
from ..ids import validate_session_id
from ..metadata import Message, SessionMetadata, StoredSession, merge_metadata, sort_newest_first
from .base import SessionStore, check_expected_head, revision_token
from .npmrecord import Record, Resolver, own_messages, parse_record, stored_metadata

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the in-process lock is all we have
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("sessionsgit")
LOCK_FILE = ".sessions.lock"
FORKS_SUFFIX = "-forks"
#: Sidecar of the original's newer ndjson format (``<id>.ndjson`` + ``<id>.meta.json``).
NDJSON_META_SUFFIX = ".meta"

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
        #: ``(id, reason)`` for what the last ``list()`` read but flags: forks whose parent is
        #: missing or lacks the fork point (loaded as the original loads them), and ndjson
        #: sessions of the original's newer format (skipped: not supported yet).
        self.last_warnings: list[tuple[str, str]] = []

    # ---- SessionStore -------------------------------------------------------------------
    def list(self) -> list[SessionMetadata]:
        """Metadata of every readable session, newest first, each file read once; damaged
        files go to ``last_damaged``, warnings to ``last_warnings``."""
        return sort_newest_first([s.metadata for s in self.load_all().values()])

    def load_all(self) -> dict[str, StoredSession]:
        """Every readable session with its whole transcript, reading each file once and
        building each transcript once (linear in the directory's size, however long its fork
        chains); sets ``last_damaged`` and ``last_warnings`` like ``list()``. A fork's
        transcript shares its inherited message objects with its parent's: read them, or copy
        before changing them."""
        records: dict[str, Record] = {}
        damaged: list[tuple[str, str]] = []
        warnings: list[tuple[str, str]] = []
        for entry in sorted(os.scandir(self.directory), key=lambda e: e.name):
            if not entry.name.endswith(".json") or not (entry.is_symlink() or entry.is_file()):
                continue
            stem = entry.name[:-len(".json")]
            if self._is_ndjson_meta(stem):
                pair = stem[:-len(NDJSON_META_SUFFIX)]
                warnings.append((pair, f"{pair}.ndjson + {entry.name} is the original's newer "
                                       "ndjson format, not supported yet: skipped"))
                continue
            found_id = self._session_id_of(stem)
            if found_id is None:
                continue
            session_id = found_id
            try:
                record = self._read(session_id)
            except CorruptSessionError as exc:
                damaged.append((session_id, exc.reason))
                continue
            if record is not None:  # None: removed since scandir saw it
                records[session_id] = record
                if record.mended:
                    warnings.append((session_id, f"replaced {record.mended} broken UTF-16 code "
                                                 "unit(s) in its metadata with U+FFFD (half an "
                                                 "emoji in a label the original cut)"))
        resolver = Resolver(self._read, records)
        found: dict[str, StoredSession] = {}
        for session_id, record in records.items():
            try:
                transcript = resolver.transcript(session_id)
            except CorruptSessionError as exc:
                damaged.append((session_id, exc.reason))
                continue
            found[session_id] = StoredSession(
                replace(record.metadata, message_count=len(transcript),
                        head=revision_token(record.raw)), list(transcript))
        self.last_damaged = damaged
        self.last_warnings = warnings + resolver.warnings
        return found

    def damaged(self) -> builtins.list[tuple[str, str]]:
        """``(id, reason)`` for each session that cannot be loaded (rescans the directory)."""
        self.list()
        return list(self.last_damaged)

    def load(self, session_id: str) -> StoredSession | None:
        """The session with its whole transcript, rebuilt through the parents for forks (a
        missing parent contributes nothing, as in the original; that is logged)."""
        validate_session_id(session_id)
        record = self._read(session_id)
        if record is None:
            return None
        resolver = Resolver(self._read, {session_id: record})
        transcript = resolver.transcript(session_id)
        for warned_id, reason in resolver.warnings:
            logger.warning("session %r: %s", warned_id, reason)
        return StoredSession(replace(record.metadata, message_count=len(transcript),
                                     head=revision_token(record.raw)), list(transcript))

    def save(self, session_id: str, messages: Sequence[Message],
             metadata: Mapping[str, Any] | SessionMetadata | None = None, *,
             expected_head: str | None = None) -> SessionMetadata:
        """Write the session atomically (temp file, fsync, replace) under the lock, as the
        original would: a fork's own messages only, custom keys flat. A damaged existing file
        raises ``CorruptSessionError`` (delete it first to replace it)."""
        validate_session_id(session_id)
        stored_messages = copy_messages(messages)
        with self._locked():
            existing = self._read(session_id)
            check_expected_head(session_id, revision_token(existing.raw) if existing else None,
                                expected_head)
            merged = merge_metadata(session_id, existing.metadata if existing else None,
                                    len(stored_messages), metadata)
            encode_metadata(merged)
            merged.extra = {k: v for k, v in merged.extra.items() if v is not None}  # as stored
            own = own_messages(stored_messages, merged, self._parent_transcript(merged))
            stored = stored_metadata(merged, len(own), existing.raw if existing else None)
            if existing is not None or idcodec.is_hashed(self._path(session_id).stem):
                # The original writes the id first when it saves over a file (its loader adds
                # it); a hashed file name needs it to say which id the file holds.
                stored = {"id": session_id, **stored}
            text = dumps_exact({"metadata": stored, "messages": own}, indent=2,
                               what=f"session {session_id!r}")[0]
            self._write_atomic(self._path(session_id), text.encode("utf-8"))
            merged.head = revision_token(stored)
            old_parent = existing.metadata.parent_id if existing else None
            if old_parent is not None and old_parent != merged.parent_id:
                self._unlink_fork_link(old_parent, session_id)
            if merged.parent_id is not None:
                self._link_fork(merged.parent_id, session_id)
        return merged

    def delete(self, session_id: str) -> bool:
        """Remove the file, its fork-index links and its own ``<name>-forks/`` index folder
        (as the original does); the forks' own files are kept."""
        validate_session_id(session_id)
        with self._locked():
            try:
                self._path(session_id).unlink()
            except FileNotFoundError:
                return False
            # Any parent's index may link it (metadata can be damaged or may have changed).
            for entry in os.scandir(self.directory):
                if entry.name.endswith(FORKS_SUFFIX) and entry.is_dir(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(entry.path, self._path(session_id).name))
            with contextlib.suppress(OSError):
                shutil.rmtree(self._forks_dir(session_id))
        return True

    def exists(self, session_id: str) -> bool:
        """Whether ``<name>.json`` exists (no parsing)."""
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

    def _is_ndjson_meta(self, stem: str) -> bool:
        """Whether ``<stem>.json`` is the metadata sidecar of an ndjson session (the original's
        newer format): named ``<id>.meta.json`` next to ``<id>.ndjson``, or holding no
        ``messages``."""
        if not stem.endswith(NDJSON_META_SUFFIX) or len(stem) == len(NDJSON_META_SUFFIX):
            return False
        if (self.directory / f"{stem[:-len(NDJSON_META_SUFFIX)]}.ndjson").exists():
            return True
        try:
            data = json.loads((self.directory / f"{stem}.json").read_bytes())
        except (OSError, ValueError, RecursionError):
            return False
        return isinstance(data, dict) and "messages" not in data and "metadata" not in data

    def _read(self, session_id: str) -> Record | None:
        """Parse one file into a ``Record``; None if absent. A symlink leading outside the
        directory, a loop or anything unreadable raises ``CorruptSessionError``."""
        path = self._path(session_id)
        try:
            if path.is_symlink() and not path.resolve(strict=True).is_relative_to(self.directory):
                raise CorruptSessionError(session_id, "a symlink to a file outside the "
                                                      "directory: skipped")
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except (OSError, RuntimeError) as exc:
            raise CorruptSessionError(session_id, f"cannot read file: {exc}") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise CorruptSessionError(session_id, f"not valid JSON: {exc}") from None
        return parse_record(session_id, data)

    def _parent_transcript(self, metadata: SessionMetadata) -> builtins.list[Message] | None:
        """The transcript a fork of ``metadata`` inherits from (None: no parent to read)."""
        if metadata.parent_id is None or metadata.detached:
            return None
        resolver = Resolver(self._read)
        try:
            if resolver.record(metadata.parent_id) is None:
                return None
            return resolver.transcript(metadata.parent_id)
        except CorruptSessionError:
            return None

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
        link = self._forks_dir(parent_id) / self._path(session_id).name
        with contextlib.suppress(OSError):
            link.parent.mkdir(exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                link.unlink()  # os.replace gave the fork a new inode: the old link is stale
            os.link(self._path(session_id), link)

    def _unlink_fork_link(self, parent_id: str, session_id: str) -> None:
        """Drop ``<parent>-forks/<id>.json``, and the folder once empty if the parent is gone."""
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
