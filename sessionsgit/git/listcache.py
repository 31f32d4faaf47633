"""A metadata cache keyed by head commit id, so ``list()`` of thousands of sessions reads no
commit it has read before, even from a fresh process.

Commits never change, so an entry can never go stale: a ref moved by ``git fetch`` simply
points at a commit the cache has not seen yet. The file (``<git dir>/sessionsgit/list-cache``)
is private to this repository (never pushed or cloned) and append-only: each flush appends
one record; a torn record from a crash ends the read, and the file is rewritten when most of
it is dead. It holds only data this library wrote itself, in ``marshal`` format for speed."""

from __future__ import annotations

import marshal
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..metadata import SessionMetadata

#: The fields cached per commit, in order (``id`` comes from the ref name, ``head`` from the key).
CACHED_FIELDS = tuple(f.name for f in fields(SessionMetadata) if f.name not in ("id", "head"))
_FORMAT = 1
_COMPACT_MIN = 2000


class ListCache:
    """Head commit id (20 raw bytes) → metadata field values, persisted beside the repository."""

    def __init__(self, git_dir: str | os.PathLike[str]) -> None:
        self.path = Path(git_dir) / "sessionsgit" / "list-cache"
        self._entries: dict[bytes, tuple[Any, ...]] | None = None
        self._pending: dict[bytes, tuple[Any, ...]] = {}

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

    def flush(self, live: int) -> None:
        """Append what was learned since the last flush; rewrite the file when it holds far
        more entries than the ``live`` sessions. A cache that cannot be written is skipped."""
        if not self._pending or self._entries is None:
            return
        try:
            self.path.parent.mkdir(exist_ok=True)
            if len(self._entries) > max(_COMPACT_MIN, 3 * live):
                self._rewrite(self._pending)
            else:
                record = marshal.dumps((_FORMAT, self._pending))
                with open(self.path, "ab") as handle:
                    handle.write(record)
        except (OSError, ValueError):
            pass
        self._pending = {}

    def _rewrite(self, keep: dict[bytes, tuple[Any, ...]]) -> None:
        temp = self.path.with_name(f"list-cache.{os.getpid()}.tmp")
        temp.write_bytes(marshal.dumps((_FORMAT, keep)))
        os.replace(temp, self.path)
        self._entries = dict(keep)

    def _read(self) -> dict[bytes, tuple[Any, ...]]:
        entries: dict[bytes, tuple[Any, ...]] = {}
        try:
            with open(self.path, "rb") as handle:
                while True:
                    try:
                        record = marshal.load(handle)
                    except (EOFError, ValueError, TypeError):
                        break
                    if not (isinstance(record, tuple) and len(record) == 2
                            and record[0] == _FORMAT and isinstance(record[1], dict)):
                        break
                    for key, values in record[1].items():
                        if isinstance(key, bytes) and isinstance(values, tuple) \
                                and len(values) == len(CACHED_FIELDS):
                            entries[key] = values
        except OSError:
            pass
        return entries


def build(session_id: str, head: str, values: tuple[Any, ...]) -> SessionMetadata:
    """A fresh SessionMetadata from cached values (mutable values copied, so callers can't
    change the cache)."""
    metadata = SessionMetadata(session_id, *values, head=head)  # type: ignore[misc]
    if metadata.extra:
        metadata.extra = marshal.loads(marshal.dumps(metadata.extra))
    if isinstance(metadata.checkpoint_state, (dict, list)):
        metadata.checkpoint_state = marshal.loads(marshal.dumps(metadata.checkpoint_state))
    return metadata
