"""``sessionsgit list`` without loading pygit2: the Git store's list index when it is current,
else live sessions read from the plain files Git keeps (loose refs, ``packed-refs``, pack
indexes) and the metadata rows of that index, which it then rewrites as ``list()`` does, so
the next listing is one read again.

Importing pygit2 costs about 3.5x a bare Python start, more than everything else the command
does. This reader vouches only for what it can see completely: every session ref readable and
named by a plain (not hashed) id, every head commit in the list index and present in the object
store, a repository of this user with no alternates or reftable. Anything else returns None,
and the caller asks ``GitSessionStore.list()``, which also reports damage."""

from __future__ import annotations

import mmap
import os
import zlib
from pathlib import Path

from . import idcodec
from .git import commitmeta
from .git.listcache import ListCache, build
from .git.reffiles import read_ref_files
from .metadata import SessionMetadata, sort_newest_first

SESSION_PREFIX = "refs/heads/sessions/"


def quick_list(path: str | os.PathLike[str]) -> list[SessionMetadata] | None:
    """The live sessions of the repository at ``path``, newest first, as
    ``GitSessionStore(path).list()`` returns them; None when that cannot be told for sure
    without pygit2 (then no session and no index was written; the index's probe file may
    have been touched). A listing built from the refs is written back as the list index."""
    try:
        git_dir = _git_dir(Path(path))
        if git_dir is None:
            return None
        cache = ListCache(git_dir)
        answer = cache.answer()
        if answer is not None:
            return answer  # the list index is current: no ref or object is read
        build_state = cache.begin()  # before the refs are read, as GitSessionStore.list()
        heads = _session_heads(git_dir)
        if heads is None:
            return None
        cache.cover(build_state, heads.values())
        objects = _Objects(git_dir)
        sessions = []
        for name, head in heads.items():
            if idcodec.is_hashed(name):
                return None  # a long id: its name is checked against its commit
            session_id = idcodec.decode(name)
            if session_id is None:
                return None
            values = cache.get(bytes.fromhex(head))
            metadata = (build(session_id, head, values) if values is not None and objects.has(head)
                        else objects.loose_metadata(session_id, head))
            if metadata is None:
                return None
            sessions.append(metadata)
        sort_newest_first(sessions)
        # every ref read and every head found, or None was returned: an index to trust
        cache.store(build_state, sessions, trusted=True)
        return sessions
    except (OSError, ValueError):
        return None


def _git_dir(path: Path) -> Path | None:
    """The Git directory a store at ``path`` opens (bare, or ``path/.git``), when it is an
    ordinary one owned by this user."""
    for candidate in (path, path / ".git"):
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir() and \
                (candidate / "refs").is_dir():
            break
    else:
        return None
    if hasattr(os, "geteuid") and candidate.stat().st_uid != os.geteuid():
        return None  # libgit2 refuses it (safe.directory): let the store say so
    if (candidate / "reftable").exists() or (candidate / "commondir").exists() or \
            (candidate / "objects" / "info" / "alternates").exists():
        return None
    return candidate


def _session_heads(git_dir: Path) -> dict[str, str] | None:
    """{ref name below the session prefix: head commit hex}, read loose-first as git does;
    None when any session ref file does not read as a direct ref or packed-refs is damaged."""
    try:
        found, unreadable = read_ref_files(git_dir, SESSION_PREFIX)
    except ValueError:
        return None
    if unreadable:
        return None
    return {name[len(SESSION_PREFIX):]: target for name, target in found.items()}


class _Objects:
    """Whether a commit is in the object store (a loose object file, or in a pack's index),
    and the commit itself when it is stored whole (loose, or undeltified in a pack)."""

    def __init__(self, git_dir: Path) -> None:
        self.objects = git_dir / "objects"
        self._packs: list[tuple[mmap.mmap, Path]] | None = None

    def _indexes(self) -> list[tuple[mmap.mmap, Path]]:
        if self._packs is None:
            pack_dir = self.objects / "pack"
            names = sorted(os.listdir(pack_dir)) if pack_dir.is_dir() else []
            self._packs = [(_mapped(pack_dir / n), pack_dir / (n[:-4] + ".pack")) for n in names
                           if n.endswith(".idx") and (pack_dir / (n[:-4] + ".pack")).exists()]
        return self._packs

    def has(self, hex_id: str) -> bool:
        if (self.objects / hex_id[:2] / hex_id[2:]).is_file():
            return True
        raw = bytes.fromhex(hex_id)
        return any(_find(index, raw) is not None for index, _pack in self._indexes())

    def _commit_body(self, hex_id: str) -> bytes | None:
        """The commit's content, loose or from a pack (a save writes its commit undeltified
        into a pack of its own); None when it is deltified, absent, or not a commit."""
        try:
            data = zlib.decompress((self.objects / hex_id[:2] / hex_id[2:]).read_bytes())
        except FileNotFoundError:
            raw = bytes.fromhex(hex_id)
            for index, pack in self._indexes():
                offset = _find(index, raw)
                if offset is not None:
                    return _packed_commit(pack, offset)
            return None
        except (OSError, zlib.error):
            return None
        header, _, body = data.partition(b"\0")
        return body if header.startswith(b"commit ") else None

    def loose_metadata(self, session_id: str, hex_id: str) -> SessionMetadata | None:
        """The metadata a head commit carries (a save since the list index was last written),
        as the store reads it; None when it can't be read here, or is no sessionsgit commit."""
        body = self._commit_body(hex_id)
        fields = commitmeta.parse(body) if body is not None else None
        if fields is None:
            return None
        fields.pop("id", None)
        try:
            return SessionMetadata.from_dict(fields, session_id=session_id, head=hex_id)
        except (TypeError, ValueError, OverflowError, RecursionError):
            return None


def _mapped(path: Path) -> mmap.mmap:
    """A file mapped read-only (an index of a large pack is not read whole)."""
    with open(path, "rb") as handle:
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


def _find(index: mmap.mmap, raw: bytes) -> int | None:
    """The pack offset of the object id ``raw`` per a version 2 pack index (fan-out table,
    sorted ids, CRCs, offsets), None when it is not listed; ValueError on any other format."""
    if index[:8] != b"\xfftOc\x00\x00\x00\x02" or len(index) < 8 + 1024:
        raise ValueError("not a version 2 pack index")
    first = raw[0]
    low = int.from_bytes(index[8 + 4 * (first - 1):12 + 4 * (first - 1)], "big") if first else 0
    high = int.from_bytes(index[8 + 4 * first:12 + 4 * first], "big")
    base = 8 + 1024
    while low < high:
        middle = (low + high) // 2
        found = index[base + 20 * middle:base + 20 * middle + 20]
        if found == raw:
            count = int.from_bytes(index[8 + 4 * 255:12 + 4 * 255], "big")
            at = base + 24 * count + 4 * middle
            offset = int.from_bytes(index[at:at + 4], "big")
            if offset & 0x80000000:
                large = base + 28 * count + 8 * (offset & 0x7FFFFFFF)
                offset = int.from_bytes(index[large:large + 8], "big")
            return offset
        if found < raw:
            low = middle + 1
        else:
            high = middle
    return None


_PACKED_COMMIT = 1
#: Most bytes read for one packed head commit (its metadata line is bounded far below).
_COMMIT_READ_LIMIT = 1 << 20
#: Bytes read first: the whole entry of a usual save's commit; a larger one costs a second read.
_COMMIT_FIRST_READ = 4096


def _packed_commit(pack: Path, offset: int) -> bytes | None:
    """The content of the commit stored whole at ``offset`` of ``pack``; None for a delta
    (resolving one is left to the store) or any other kind of object."""
    with open(pack, "rb") as handle:
        handle.seek(offset)
        data = handle.read(_COMMIT_FIRST_READ)
        header = _entry_header(data)
        if header is None:
            return None
        kind, size, position = header
        if kind != _PACKED_COMMIT or size > _COMMIT_READ_LIMIT:
            return None
        # deflate adds at most 5 bytes per 16 KB block and a few more for its frame
        entry_end = position + size + size // 1000 + 64
        if len(data) < entry_end and len(data) == _COMMIT_FIRST_READ:
            data += handle.read(entry_end - len(data))
    try:
        body = zlib.decompressobj().decompress(data[position:], size)
    except zlib.error:
        return None
    return body if len(body) == size else None


def _entry_header(data: bytes) -> tuple[int, int, int] | None:
    """(object type, size, where the compressed data starts) of the pack entry ``data``
    begins with: 3 bits of type, then the size 4 + 7n bits at a time; None if cut short."""
    if not data:
        return None
    byte = data[0]
    kind, size, shift, position = (byte >> 4) & 7, byte & 0x0F, 4, 1
    while byte & 0x80:
        if position >= len(data):
            return None
        byte = data[position]
        size |= (byte & 0x7F) << shift
        shift, position = shift + 7, position + 1
    return kind, size, position
