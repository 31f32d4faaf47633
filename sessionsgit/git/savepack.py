"""The objects of one save, written to disk as one small pack instead of one loose file each.

A save makes five or six objects (message blobs, ``session.json``, the trees above them, the
commit). Loose, each costs a temp file, a rename and libgit2's pack-directory rescan; as one
pack they cost a ``.keep`` marker, one ``.pack`` and one ``.idx`` (written aside and renamed in:
libgit2 and git's readers find a pack by its index, so it appears whole or not at all).

The ``.keep`` is git's own protocol for packs in flight (``receive-pack`` and ``fetch`` do the
same): until the save's branch names its commit the objects are unreachable, and ``git repack
-a -d``, ``git gc`` and sessionsgit's own maintenance leave a kept pack alone. ``release()``
drops the marker once the branch moved (or the save gave up); a kill in between leaves a
marker that maintenance removes once it is old (``packing.remove_stale_keeps``).

Small packs are rolled up by automatic maintenance (``packing.merge_packs``, geometric), so
their number stays bounded."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import pygit2

#: The first bytes of every ``.keep`` this module writes: how maintenance knows one of ours.
KEEP_MARKER = b"sessionsgit: save in flight"

_COMMIT, _TREE, _BLOB = (pygit2.enums.ObjectType.COMMIT, pygit2.enums.ObjectType.TREE,
                         pygit2.enums.ObjectType.BLOB)
_TYPE_NAMES: dict[int, bytes] = {_COMMIT: b"commit", _TREE: b"tree", _BLOB: b"blob"}
#: zlib levels: git's default for blobs and commits; the fastest for trees, which are mostly
#: object ids that no level compresses, and none for a big tree (the ``messages`` tree of
#: 100,000 messages is 24 KB, rewritten by every append: level 6 took 0.47 ms and level 1
#: 0.28 ms to save a quarter of it). ``gc()`` compresses everything again.
_LEVEL = zlib.Z_DEFAULT_COMPRESSION
_BIG_TREE = 8192


class ObjectSink(Protocol):
    """Where new objects go: ``pygit2.Odb`` (a loose file each) or a ``SavePack``."""

    def write(self, object_type: int, data: bytes) -> pygit2.Oid: ...


@dataclass
class WrittenPack:
    """A save's pack on disk, kept from repacks until ``release()``."""

    #: the pack's path without its ``.pack`` / ``.idx`` / ``.keep`` ending (a ``str``: paths
    #: are built once per save, and ``pathlib`` costs more than the rest of the bookkeeping)
    base: str
    keep: str | None
    #: how many objects it holds
    objects: int

    @property
    def pack(self) -> Path:
        return Path(self.base + ".pack")

    def present(self) -> bool:
        """Whether the pack is still in place (its index is deleted first when it goes)."""
        return os.path.exists(self.base + ".idx")

    def release(self) -> None:
        """Drop the ``.keep``: the pack is an ordinary pack from now on. Idempotent."""
        if self.keep is not None:
            try:
                os.unlink(self.keep)
            except FileNotFoundError:
                pass
            self.keep = None


class SavePack:
    """Objects collected in memory (their ids computed as git does), then written as one pack."""

    def __init__(self) -> None:
        self._entries: list[tuple[bytes, bytes]] = []  # (raw id, pack entry), in write order
        self._ids: set[bytes] = set()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def ids(self) -> list[pygit2.Oid]:
        return [pygit2.Oid(raw=raw) for raw, _entry in self._entries]

    def write(self, object_type: int, data: bytes) -> pygit2.Oid:
        """Add one object (a commit, tree or blob) and return its id; adding one twice keeps one."""
        name = _TYPE_NAMES[object_type]
        raw = hashlib.sha1(b"%s %d\0%s" % (name, len(data), data)).digest()
        if raw not in self._ids:
            level = _LEVEL if object_type != _TREE else 1 if len(data) < _BIG_TREE else 0
            self.add_entry(raw, _entry_header(object_type, len(data)) + zlib.compress(data, level))
        return pygit2.Oid(raw=raw)

    def add_entry(self, raw: bytes, entry: bytes) -> None:
        """Add an object as a pack entry already encoded (copied from another pack: it must
        be whole, not a delta, whose base offset would change)."""
        if raw not in self._ids:
            self._ids.add(raw)
            self._entries.append((raw, entry))

    def blob(self, data: bytes) -> pygit2.Oid:
        return self.write(_BLOB, data)

    def commit(self, tree: pygit2.Oid, parents: Sequence[pygit2.Oid], author: pygit2.Signature,
               committer: pygit2.Signature, message: str) -> pygit2.Oid:
        """A commit object, byte for byte as libgit2's ``create_commit`` writes it."""
        lines = [b"tree %s\n" % str(tree).encode()]
        lines += [b"parent %s\n" % str(parent).encode() for parent in parents]
        lines += [b"author %s\n" % _signature(author), b"committer %s\n" % _signature(committer),
                  b"\n", message.encode("utf-8")]
        return self.write(_COMMIT, b"".join(lines))

    def publish(self, git_dir: str | os.PathLike[str], *, durable: bool = False) -> WrittenPack:
        """Write the pack's ``.keep``, then the pack, then its index into ``objects/pack``;
        with ``durable``, each file and the directory are flushed to disk before this
        returns. The ``.keep`` comes first because ``git repack`` (2.39) finds packs by their
        ``.pack`` file: one it saw without a ``.keep`` it would delete once done."""
        if not self._entries:
            raise ValueError("an empty save pack")
        pack_dir = os.path.join(git_dir, "objects", "pack")
        pack_data, index_data, name = self._encode()
        base = os.path.join(pack_dir, name)
        pack_path, index_path = base + ".pack", base + ".idx"
        keep: str | None = base + ".keep"
        marker = KEEP_MARKER + b" (pid %d)\n" % os.getpid()
        try:
            _write_new(base + ".keep", marker, False)
        except FileNotFoundError:
            os.makedirs(pack_dir, exist_ok=True)
            _write_new(base + ".keep", marker, False)
        except FileExistsError:
            keep = None  # an identical pack in flight elsewhere holds it already
        written = WrittenPack(base, keep, len(self._entries))
        try:
            try:
                _write_new(pack_path, pack_data, durable)
            except FileExistsError:
                # the same bytes (identical objects), unless a kill left it half-written
                if os.stat(pack_path).st_size != len(pack_data):
                    _replace(pack_dir, pack_path, pack_data, durable)
            _replace(pack_dir, index_path, index_data, durable)
            if durable:
                _fsync(pack_dir)
        except BaseException:
            written.release()
            raise
        return written

    def _encode(self) -> tuple[bytes, bytes, str]:
        """The pack's bytes, its version-2 index, and its name (``pack-<checksum>``)."""
        parts = [b"PACK" + struct.pack(">II", 2, len(self._entries))]
        offset = 12
        located = []
        for raw, entry in self._entries:
            located.append((raw, zlib.crc32(entry), offset))
            parts.append(entry)
            offset += len(entry)
        body = b"".join(parts)
        checksum = hashlib.sha1(body).digest()
        if offset >= 1 << 31:
            raise ValueError("a save pack over 2 GiB")  # never: blobs are bounded far below
        located.sort()
        fanout = [0] * 256
        for raw, _crc, _offset in located:
            fanout[raw[0]] += 1
        total = 0
        for byte in range(256):
            total += fanout[byte]
            fanout[byte] = total
        count = len(located)
        index = b"".join([b"\xfftOc\x00\x00\x00\x02", struct.pack(">256I", *fanout),
                          b"".join(raw for raw, _crc, _offset in located),
                          struct.pack(f">{count}I", *(crc for _raw, crc, _offset in located)),
                          struct.pack(f">{count}I", *(off for _raw, _crc, off in located)),
                          checksum])
        return body + checksum, index + hashlib.sha1(index).digest(), f"pack-{checksum.hex()}"


def _entry_header(object_type: int, size: int) -> bytes:
    """A pack entry's type and size: 3 bits of type, then the size 4 + 7n bits at a time."""
    out = bytearray()
    byte = (object_type << 4) | (size & 0x0F)
    size >>= 4
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


def _signature(signature: pygit2.Signature) -> bytes:
    offset = signature.offset
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset), 60)
    return b"%s <%s> %d %s%02d%02d" % (signature.raw_name, signature.raw_email, signature.time,
                                       sign.encode(), hours, minutes)


def _replace(directory: str, path: str, data: bytes, durable: bool) -> None:
    """Put ``data`` at ``path`` atomically: written aside under a temp name, then renamed."""
    temp = os.path.join(directory, f"tmp_{os.urandom(6).hex()}_{os.path.basename(path)}.tmp")
    _write_new(temp, data, durable)  # (a temp name with no .pack/.idx ending: git skips it)
    try:
        os.replace(temp, path)
    except BaseException:
        _unlink(temp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _write_new(path: str, data: bytes, durable: bool) -> None:
    """Create ``path`` (it must not exist yet) holding ``data``, read-only as git's object
    files are."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink(path)
        raise
    os.close(fd)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
