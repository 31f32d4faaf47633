"""A cache of whole transcripts by head commit, so resuming a session in a new process reads
one file instead of one Git object per message.

One append-only file per session (``<git dir>/sessionsgit/transcripts/<ref name>.log``), private
to the repository (never pushed). Each record says: commit C holds the transcript of its parent
commit P cut to ``start`` messages, followed by these messages (their exact stored bytes). A save
that appends adds one small record; a load walks the records back from the head to one that
starts at 0 and replays them. Commits never change, so a record can't go stale: a head no record
names (a save by a process that did not write one, a ``git fetch``) is simply a miss, the store
reads the objects, and rewrites the file as one record. A torn or damaged record (checked by
CRC-32) ends the read; a file that is deleted, truncated or garbage costs one slow load."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pygit2

_MAGIC = b"SGTC1\n"
_HEADER = struct.Struct(">20s20sIIII")  # commit, parent, start, count, payload bytes, crc32
_NO_PARENT = b"\0" * 20
#: Records a load may replay before it rewrites the file as one record.
MAX_CHAIN = 256


class TranscriptCache:
    """Per-session record files under ``<git dir>/sessionsgit/transcripts/``."""

    def __init__(self, git_dir: str | os.PathLike[str]) -> None:
        self.directory = Path(git_dir) / "sessionsgit" / "transcripts"

    def read(self, name: str, head: pygit2.Oid, count: int) -> tuple[list[bytes], bool] | None:
        """The stored bytes of each message of the transcript at ``head`` (which must hold
        ``count`` messages), and whether the file should be compacted; None on a miss."""
        try:
            data = (self.directory / f"{name}.log").read_bytes()
        except OSError:
            return None
        records = _parse(data)
        chain: list[tuple[int, list[bytes]]] = []
        commit = head.raw
        while commit in records and len(chain) <= 100_000:
            parent, start, messages = records[commit]
            chain.append((start, messages))
            if start == 0:
                break
            commit = parent
        else:
            return None
        transcript: list[bytes] = []
        for start, messages in reversed(chain):
            if start > len(transcript):
                return None
            transcript[start:] = messages
        if len(transcript) != count:
            return None
        return transcript, len(chain) > MAX_CHAIN or len(records) > 4 * MAX_CHAIN

    def add(self, name: str, commit: pygit2.Oid, parent: pygit2.Oid | None, start: int,
            messages: list[bytes]) -> None:
        """Record that ``commit`` is ``parent``'s transcript cut to ``start`` plus
        ``messages``. Best effort: a cache that cannot be written is skipped."""
        record = _record(commit, parent, start, messages)
        path = self.directory / f"{name}.log"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            return  # no file yet: the first load writes a whole one
        except OSError:
            return
        try:
            os.write(fd, record)
        except OSError:
            pass
        finally:
            os.close(fd)

    def replace(self, name: str, commit: pygit2.Oid, messages: list[bytes]) -> None:
        """Make the file one record: the whole transcript at ``commit`` (best effort)."""
        path = self.directory / f"{name}.log"
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            temp.write_bytes(_MAGIC + _record(commit, None, 0, messages))
            os.replace(temp, path)
        except OSError:
            temp.unlink(missing_ok=True)

    def forget(self, name: str) -> None:
        """Drop a session's file (after a delete)."""
        try:
            (self.directory / f"{name}.log").unlink()
        except OSError:
            pass


def _record(commit: pygit2.Oid, parent: pygit2.Oid | None, start: int,
            messages: list[bytes]) -> bytes:
    payload = b"\0".join(messages)
    header = _HEADER.pack(commit.raw, parent.raw if parent is not None else _NO_PARENT,
                          start, len(messages), len(payload), zlib.crc32(payload))
    return header + payload


def _parse(data: bytes) -> dict[bytes, tuple[bytes, int, list[bytes]]]:
    """commit -> (parent, start, messages) for every whole, intact record."""
    records: dict[bytes, tuple[bytes, int, list[bytes]]] = {}
    if not data.startswith(_MAGIC):
        return records
    position = len(_MAGIC)
    while position + _HEADER.size <= len(data):
        commit, parent, start, count, size, crc = _HEADER.unpack_from(data, position)
        position += _HEADER.size
        payload = data[position:position + size]
        position += size
        if len(payload) != size or zlib.crc32(payload) != crc:
            break  # torn or damaged: nothing after it is trusted
        messages = payload.split(b"\0") if count else []
        if len(messages) != count:
            break
        records[commit] = (parent, start, messages)
    return records
