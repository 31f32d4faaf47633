"""A metadata cache keyed by head commit id, so ``list()`` of thousands of sessions reads no
commit it has read before, even from a fresh process.

Commits never change, so an entry can never go stale: a ref moved by ``git fetch`` simply
points at a commit the cache has not seen yet. The file (``<git dir>/sessionsgit/list-cache``)
is private to this repository (never pushed or cloned) and append-only: each flush appends
one record naming its fields; a torn record (a crash or a full disk mid-append) ends the read
and makes the next flush rewrite the file, as does a file holding far more entries than there
are live sessions (it is then compacted to exactly the live heads). It holds only data this
library wrote itself, in ``marshal`` format for speed."""

from __future__ import annotations

import marshal
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..metadata import SessionMetadata

#: The fields cached per commit, in order (``id`` comes from the ref name, ``head`` from the key).
CACHED_FIELDS = tuple(f.name for f in fields(SessionMetadata) if f.name not in ("id", "head"))
# ``build`` passes the values by position: they must be every field between ``id`` and ``head``
assert [f.name for f in fields(SessionMetadata)] == ["id", *CACHED_FIELDS, "head"]
_FORMAT = 2
_COMPACT_MIN = 2000


class ListCache:
    """Head commit id (20 raw bytes) → metadata field values, persisted beside the repository."""

    def __init__(self, git_dir: str | os.PathLike[str]) -> None:
        self.path = Path(git_dir) / "sessionsgit" / "list-cache"
        self._entries: dict[bytes, tuple[Any, ...]] | None = None
        self._pending: dict[bytes, tuple[Any, ...]] = {}
        #: the file ended in a record that could not be read whole: rewrite it on next flush
        self.torn = False

    def get(self, commit: bytes) -> tuple[Any, ...] | None:
        if self._entries is None:
            self._entries = self._read()
        return self._entries.get(commit)

    def put(self, commit: bytes, metadata: SessionMetadata) -> tuple[Any, ...]:
        values = tuple(getattr(metadata, name) for name in CACHED_FIELDS)
        if self._entries is None:
            self._entries = self._read()
        self._entries[commit] = values
        self._pending[commit] = values
        return values

    def flush(self, live_heads: set[bytes] | None = None) -> None:
        """Append what was learned since the last flush. The file is rewritten instead when it
        ended in a torn record, or (given the ``live_heads`` of a full listing) when it holds
        far more entries than live sessions: then it keeps exactly those heads. A cache that
        cannot be written is skipped."""
        if self._entries is None or not (self._pending or self.torn):
            return
        try:
            self.path.parent.mkdir(exist_ok=True)
            bloated = live_heads is not None and \
                len(self._entries) > max(_COMPACT_MIN, 3 * len(live_heads))
            if self.torn or bloated:
                keep = self._entries if live_heads is None else \
                    {key: self._entries[key] for key in live_heads if key in self._entries}
                self._rewrite(keep)
            else:
                with open(self.path, "ab") as handle:
                    handle.write(_record(self._pending))
        except (OSError, ValueError):
            pass
        self._pending = {}

    def _rewrite(self, keep: dict[bytes, tuple[Any, ...]]) -> None:
        temp = self.path.with_name(f"list-cache.{os.getpid()}.tmp")
        try:
            temp.write_bytes(_record(keep))
            os.replace(temp, self.path)
        finally:
            temp.unlink(missing_ok=True)
        self._entries = dict(keep)
        self.torn = False

    def _read(self) -> dict[bytes, tuple[Any, ...]]:
        entries: dict[bytes, tuple[Any, ...]] = {}
        try:
            with open(self.path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                while handle.tell() < size:
                    try:
                        record = marshal.load(handle)
                    except (EOFError, ValueError, TypeError):
                        self.torn = True
                        break
                    if not (isinstance(record, tuple) and len(record) == 3
                            and record[0] == _FORMAT and isinstance(record[1], tuple)
                            and isinstance(record[2], dict)):
                        self.torn = True  # an older format or garbage: start afresh
                        break
                    _merge(entries, record[1], record[2])
        except OSError:
            pass
        return entries


def _record(entries: dict[bytes, tuple[Any, ...]]) -> bytes:
    return marshal.dumps((_FORMAT, CACHED_FIELDS, entries))


def _merge(entries: dict[bytes, tuple[Any, ...]], names: tuple[Any, ...],
           found: dict[Any, Any]) -> None:
    """Add a record's entries, mapping its fields by name: a record written with other fields
    is reordered, and dropped when a field we need is missing."""
    if names == CACHED_FIELDS:
        order = None
    else:
        position = {name: i for i, name in enumerate(names)}
        if not all(name in position for name in CACHED_FIELDS):
            return
        order = [position[name] for name in CACHED_FIELDS]
    for key, values in found.items():
        if not (isinstance(key, bytes) and isinstance(values, tuple)
                and len(values) == len(names)):
            continue
        entries[key] = values if order is None else tuple(values[i] for i in order)


def build(session_id: str, head: str, values: tuple[Any, ...]) -> SessionMetadata:
    """A fresh SessionMetadata from cached values (mutable values copied, so callers can't
    change the cache)."""
    metadata = SessionMetadata(session_id, *values, head=head)  # type: ignore[arg-type, misc]
    if metadata.extra:
        metadata.extra = marshal.loads(marshal.dumps(metadata.extra))
    if isinstance(metadata.checkpoint_state, (dict, list)):
        metadata.checkpoint_state = marshal.loads(marshal.dumps(metadata.checkpoint_state))
    return metadata
