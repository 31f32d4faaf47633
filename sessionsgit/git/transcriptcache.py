"""A cache of whole transcripts by head commit, so resuming a session in a new process reads
one file instead of one Git object per message.

One append-only file per session (``<git dir>/sessionsgit/transcripts/<ref name>.log``), private
to the repository (never pushed). Each record says: commit C holds the transcript of its parent
commit P cut to ``start`` messages, followed by these messages (their blob ids and their exact
stored bytes). A save that appends adds one small record; a load walks the records back from
the head to one that starts at 0 and replays them. Commits never change, so a record can't go
stale: a head no record names (a save by a process that did not write one, a ``git fetch``) is
simply a miss, the store reads the objects, and rewrites the file as one record. A torn or
damaged record (checked by CRC-32) ends the read; a file that is deleted, truncated or garbage
costs one slow load. The blob ids let a hit check that the repository still has every message
object without hashing the messages again (a third of a load's time)."""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pygit2

_MAGIC = b"SGTC2\n"
_HEADER = struct.Struct(">20s20sIIII")  # commit, parent, start, count, body bytes, crc32
_NO_PARENT = b"\0" * 20
_ID = 20
#: Records a load may replay before it rewrites the file as one record.
MAX_CHAIN = 256


@dataclass
class Hit:
    """A transcript read from the cache: each message's blob id (raw) and their stored bytes
    joined by NUL (which JSON text never holds raw)."""

    blob_ids: list[bytes]
    body: bytes
    #: the file holds many records: the caller should rewrite it as one
    compact: bool

    def texts(self) -> list[bytes]:
        return _split(self.body, len(self.blob_ids))

    def json_array(self) -> bytes:
        """The messages as one JSON array (one C-level pass, no per-message copy)."""
        return b"".join((b"[", self.body.replace(b"\0", b","), b"]"))


class TranscriptCache:
    """Per-session record files under ``<git dir>/sessionsgit/transcripts/``."""

    def __init__(self, git_dir: str | os.PathLike[str]) -> None:
        self.directory = Path(git_dir) / "sessionsgit" / "transcripts"

    def read(self, name: str, head: pygit2.Oid, count: int) -> Hit | None:
        """The transcript at ``head`` (which must hold ``count`` messages); None on a miss."""
        try:
            data = (self.directory / f"{name}.log").read_bytes()
        except OSError:
            return None
        records = _parse(data)
        chain: list[tuple[int, list[bytes], bytes]] = []
        commit = head.raw
        while commit in records and len(chain) <= 100_000:
            parent, start, ids, body = records[commit]
            chain.append((start, ids, body))
            if start == 0:
                break
            commit = parent
        else:
            return None
        blob_ids: list[bytes] = []
        bodies: list[bytes] = []
        for start, ids, body in reversed(chain):
            if start > len(blob_ids):
                return None
            if start < len(blob_ids):  # an edit cut the transcript: split what came before
                texts = _split(b"\0".join(bodies), len(blob_ids))[:start]
                bodies = [b"\0".join(texts)] if texts else []
                del blob_ids[start:]
            blob_ids += ids
            if ids:
                bodies.append(body)
        if len(blob_ids) != count:
            return None
        return Hit(blob_ids, b"\0".join(bodies),
                   len(chain) > MAX_CHAIN or len(records) > 4 * MAX_CHAIN)

    def add(self, name: str, commit: pygit2.Oid, parent: pygit2.Oid | None, start: int,
            messages: list[bytes], blob_ids: list[pygit2.Oid]) -> None:
        """Record that ``commit`` is ``parent``'s transcript cut to ``start`` plus
        ``messages`` (with their ``blob_ids``). Best effort: a cache that cannot be written is
        skipped."""
        record = _record(commit, parent, start, [oid.raw for oid in blob_ids],
                         b"\0".join(messages))
        path = self.directory / f"{name}.log"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError:
            return  # no file yet (the first load writes a whole one), or unwritable
        try:
            os.write(fd, record)
        except OSError:
            pass
        finally:
            os.close(fd)

    def replace(self, name: str, commit: pygit2.Oid, messages: list[bytes],
                blob_ids: list[pygit2.Oid]) -> None:
        """Make the file one record: the whole transcript at ``commit`` (best effort)."""
        self._write(name, _record(commit, None, 0, [oid.raw for oid in blob_ids],
                                  b"\0".join(messages)))

    def compact(self, name: str, commit: pygit2.Oid, hit: Hit) -> None:
        """Rewrite the file as the one record of a hit at ``commit``."""
        self._write(name, _record(commit, None, 0, hit.blob_ids, hit.body))

    def _write(self, name: str, record: bytes) -> None:
        path = self.directory / f"{name}.log"
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            temp.write_bytes(_MAGIC + record)
            os.replace(temp, path)
        except OSError:
            temp.unlink(missing_ok=True)

    def forget(self, name: str) -> None:
        """Drop a session's file (after a delete)."""
        try:
            (self.directory / f"{name}.log").unlink()
        except OSError:
            pass


def _split(body: bytes, count: int) -> list[bytes]:
    return body.split(b"\0") if count else []


def _record(commit: pygit2.Oid, parent: pygit2.Oid | None, start: int, blob_ids: list[bytes],
            body: bytes) -> bytes:
    payload = b"".join(blob_ids) + body
    header = _HEADER.pack(commit.raw, parent.raw if parent is not None else _NO_PARENT,
                          start, len(blob_ids), len(payload), zlib.crc32(payload))
    return header + payload


def _parse(data: bytes) -> dict[bytes, tuple[bytes, int, list[bytes], bytes]]:
    """commit -> (parent, start, blob ids, body) for every whole, intact record."""
    records: dict[bytes, tuple[bytes, int, list[bytes], bytes]] = {}
    if not data.startswith(_MAGIC):
        return records  # absent, garbage or an older format: a miss, rewritten by the load
    position = len(_MAGIC)
    while position + _HEADER.size <= len(data):
        commit, parent, start, count, size, crc = _HEADER.unpack_from(data, position)
        position += _HEADER.size
        payload = data[position:position + size]
        position += size
        if len(payload) != size or zlib.crc32(payload) != crc or size < _ID * count:
            break  # torn or damaged: nothing after it is trusted
        ids_end = _ID * count
        body = payload[ids_end:]
        ids = [payload[i:i + _ID] for i in range(0, ids_end, _ID)]
        records[commit] = (parent, start, ids, body)
    return records
