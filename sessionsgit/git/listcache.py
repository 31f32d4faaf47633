"""The list index: ``list()``'s whole answer, sorted, in one file beside the repository, so a
fresh process lists 10,000 sessions with one read instead of a ref file and a commit each.

The file (``<git dir>/sessionsgit/list-index``) is private to this repository (never pushed or
cloned) and only a cache: it holds the live sessions' metadata rows, newest first, and a
*stamp* of what they were built from (the ``stat`` of the session ref directories, of
``packed-refs``, of the pack directory and of the loose-object directories of the head
commits). It answers only while every part of the stamp is unchanged: any ref update (ours,
``git fetch``, ``update-ref``, ``pack-refs``), any pack added or removed and any loose head
object deleted renames or removes a file in one of those directories, which changes its
``stat``. Git writes refs by lock file and rename, so an edit of a ref file in place is the one
change it cannot see. A stamp is trusted only when every part of it is older than a probe file
touched before it was taken (the file system's own clock, as git's "racy index" rule): a change
in the same clock tick can't pass unseen. A missing, truncated, damaged (a CRC-32 tells),
garbage or stale file only costs one slow ``list()``, which rebuilds it, reusing the rows of
heads that did not move, so a rebuild reads only the commits that are new. Rows are plain data
this library wrote, in ``marshal`` format for speed."""

from __future__ import annotations

import marshal
import os
import struct
import zlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable

from ..metadata import SessionMetadata

#: The fields cached per commit, in order (``id`` comes from the ref name, ``head`` from the key).
CACHED_FIELDS = tuple(f.name for f in fields(SessionMetadata) if f.name not in ("id", "head"))
# rows are passed to SessionMetadata by position: id, every cached field, head
assert [f.name for f in fields(SessionMetadata)] == ["id", *CACHED_FIELDS, "head"]
_MAGIC = b"SGLI3\n"
#: after the magic: the header's length and the CRC-32 of the rows
_PREFIX = struct.Struct(">II")
#: marshal version 2 shares no object between rows, so no caller's row aliases another's
_MARSHAL = 2
SESSION_REFS = "refs/heads/sessions"
#: Heads learned in this process (saves, commits read) kept before starting afresh.
_LEARNED_LIMIT = 100_000
Stamp = tuple[tuple[str, Any], ...]
Row = tuple[Any, ...]


@dataclass
class Build:
    """A rebuild in progress: the probe time and the stamp parts taken before refs were read."""

    probe_ns: int | None
    parts: dict[str, Any]


class ListCache:
    """The list index of one repository, and the metadata of every head commit it knows."""

    def __init__(self, git_dir: str | os.PathLike[str]) -> None:
        self.git_dir = Path(git_dir)
        self._root = os.fspath(self.git_dir)
        self.path = self.git_dir / "sessionsgit" / "list-index"
        self._probe = self.git_dir / "sessionsgit" / "list-index.probe"
        self._file: tuple[Any, ...] | None = None     # the stat of the file last read
        self._stamp: Stamp | None = None
        self._rows_data = b""                          # the marshalled rows
        self._entries: dict[bytes, tuple[Any, ...]] | None = None
        self._learned: dict[bytes, tuple[Any, ...]] = {}

    # ---- the whole answer ---------------------------------------------------------------
    def answer(self) -> list[SessionMetadata] | None:
        """Every live session, newest first, when the index is current; else None."""
        self.load()
        if self._stamp is None or current_stamp(self._root, self._stamp) != self._stamp:
            return None
        try:
            return [SessionMetadata(*row) for row in marshal.loads(self._rows_data)]
        except (EOFError, ValueError, TypeError):
            return None

    def begin(self) -> Build:
        """Start a rebuild: touch the probe, then stat the ref and pack directories (before
        the refs are read, so a change made while reading shows as a stale stamp)."""
        probe_ns: int | None = None
        try:
            self._probe.parent.mkdir(exist_ok=True)
            self._probe.touch()
            os.utime(self._probe)
            probe_ns = os.stat(self._probe).st_mtime_ns
        except OSError:
            pass
        parts = {name: _stat(os.path.join(self._root, name))
                 for name in [*_ref_dirs(self.git_dir), "packed-refs", "objects/pack"]}
        return Build(probe_ns, parts)

    def cover(self, build: Build, heads: Iterable[str]) -> None:
        """Stat the loose-object directories of the head commits (hex) that are loose, before
        the caller checks that every head exists: a loose head deleted afterwards changes its
        directory, and a packed one can only go with its pack (the pack directory's stamp)."""
        wanted: dict[str, set[str]] = {}
        for head in heads:
            wanted.setdefault(head[:2], set()).add(head[2:])
        for fanout, rests in sorted(wanted.items()):
            name = f"objects/{fanout}"
            path = os.path.join(self._root, name)
            state = _stat(path)  # before listing it: a deletion after the listing shows
            try:
                loose = not rests.isdisjoint(os.listdir(path))
            except OSError:
                loose = False
            if loose:
                build.parts[name] = state

    def store(self, build: Build, sessions: list[SessionMetadata], *, trusted: bool) -> None:
        """Write the index of a full listing (``sessions`` newest first). Its stamp is kept
        only when ``trusted`` (nothing damaged or unreadable) and older than the probe; else
        the rows still serve as the per-commit cache of the next rebuild. Best effort."""
        stamp: Stamp | None = tuple(sorted(build.parts.items()))
        newest = max((max(part[2], part[3]) for _name, part in stamp or () if part), default=0)
        if not trusted or build.probe_ns is None or newest >= build.probe_ns:
            stamp = None
        rows = [_row(m) for m in sessions]
        try:
            rows_data = marshal.dumps(rows, _MARSHAL)
            header = marshal.dumps((CACHED_FIELDS, stamp), _MARSHAL)
        except ValueError:
            return  # a value marshal cannot hold (the codec refuses those on save anyway)
        temp = self.path.with_name(f"list-index.{os.getpid()}.{id(self)}.tmp")
        try:
            temp.write_bytes(_MAGIC + _PREFIX.pack(len(header), zlib.crc32(rows_data)) +
                             header + rows_data)
            os.replace(temp, self.path)
            self._file = _stat(self.path)
            self.path.with_name("list-cache").unlink(missing_ok=True)  # this index's forerunner
        except OSError:
            temp.unlink(missing_ok=True)
        # what was written, as a fresh process would read it (nothing shared with the caller)
        self._stamp, self._rows_data, self._entries = stamp, rows_data, None

    # ---- metadata by head commit --------------------------------------------------------
    def get(self, commit: bytes) -> tuple[Any, ...] | None:
        """The cached field values of a head commit (20 raw bytes): one this process saved, or
        one the index file (once ``load``-ed) lists."""
        found = self._learned.get(commit)
        if found is None and self._entries is None and self._rows_data:
            self._entries = _entries(self._rows_data)
        return found if found is not None else (self._entries or {}).get(commit)

    def take(self, commit: bytes) -> tuple[Any, ...] | None:
        """The index file's values for a head commit, handed out once (nothing else holds
        them, so they need no copy): for a rebuild, which reads only heads that moved."""
        if self._entries is None and self._rows_data:
            self._entries = _entries(self._rows_data)
        return (self._entries or {}).pop(commit, None)

    def put(self, commit: bytes, metadata: SessionMetadata) -> tuple[Any, ...]:
        values = tuple(getattr(metadata, name) for name in CACHED_FIELDS)
        if len(self._learned) >= _LEARNED_LIMIT:
            self._learned.clear()
        self._learned[commit] = values
        return values

    def load(self) -> None:
        """Read the index file, unless the copy read last is still the file on disk. A file
        that is missing, truncated or of another format reads as empty."""
        state = _stat(self.path)
        if state is not None and state == self._file:
            return
        self._file, self._stamp, self._rows_data, self._entries = state, None, b"", None
        try:
            data = self.path.read_bytes()
        except OSError:
            return
        start = len(_MAGIC) + _PREFIX.size
        if not data.startswith(_MAGIC) or len(data) < start:
            return  # absent, garbage or another format
        size, crc = _PREFIX.unpack_from(data, len(_MAGIC))
        rows_data = data[start + size:]
        if zlib.crc32(rows_data) != crc:
            return  # torn or damaged
        try:
            header = marshal.loads(data[start:start + size])
        except (EOFError, ValueError, TypeError):
            return
        if not (isinstance(header, tuple) and len(header) == 2 and header[0] == CACHED_FIELDS):
            return
        self._rows_data = rows_data
        self._stamp = header[1] if isinstance(header[1], tuple) else None


def current_stamp(root: str, like: Stamp) -> Stamp:
    """The stamp of the same parts as ``like``, as they are now."""
    join = os.path.join
    return tuple((name, _stat(join(root, name))) for name, _part in like)


_FIELD_COUNT = len(CACHED_FIELDS) + 2


def _row(metadata: SessionMetadata) -> Row:
    """(id, every cached field, head): a dataclass's attributes in field order."""
    values = tuple(vars(metadata).values())
    if len(values) == _FIELD_COUNT:
        return values
    return (metadata.id, *(getattr(metadata, name) for name in CACHED_FIELDS), metadata.head)


def _entries(rows_data: bytes) -> dict[bytes, tuple[Any, ...]]:
    try:
        rows = marshal.loads(rows_data)
    except (EOFError, ValueError, TypeError):
        return {}
    found: dict[bytes, tuple[Any, ...]] = {}
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, tuple) and len(row) == len(CACHED_FIELDS) + 2:
            try:
                found[bytes.fromhex(row[-1])] = row[1:-1]
            except (TypeError, ValueError):
                continue
    return found


def _ref_dirs(git_dir: Path) -> list[str]:
    """The session ref directory and every directory below it (relative names)."""
    found = [SESSION_REFS]
    for root, dirs, _files in os.walk(git_dir / SESSION_REFS):
        found += [Path(root, d).relative_to(git_dir).as_posix() for d in dirs]
    return found


def _stat(path: str | Path) -> tuple[int, int, int, int] | None:
    try:
        s = os.stat(path)
    except OSError:
        return None
    return (s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns)


def build(session_id: str, head: str, values: tuple[Any, ...]) -> SessionMetadata:
    """A fresh SessionMetadata from cached values (mutable values copied, so callers can't
    change the cache)."""
    metadata = SessionMetadata(session_id, *values, head=head)  # type: ignore[arg-type, misc]
    if metadata.extra:
        metadata.extra = marshal.loads(marshal.dumps(metadata.extra))
    if isinstance(metadata.checkpoint_state, (dict, list)):
        metadata.checkpoint_state = marshal.loads(marshal.dumps(metadata.checkpoint_state))
    return metadata
