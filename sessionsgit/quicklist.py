"""``sessionsgit list`` without loading pygit2: the Git store's list index when it is current,
else live sessions read from the plain files Git keeps (loose refs, ``packed-refs``, pack
indexes) and the metadata rows of that index.

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
    without pygit2 (then nothing was written or changed)."""
    try:
        git_dir = _git_dir(Path(path))
        if git_dir is None:
            return None
        cache = ListCache(git_dir)
        answer = cache.answer()
        if answer is not None:
            return answer  # the list index is current: no ref or object is read
        heads = _session_heads(git_dir)
        if heads is None:
            return None
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
        return sort_newest_first(sessions)
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
    """Whether a commit is in the object store: a loose object file, or in a pack's index."""

    def __init__(self, git_dir: Path) -> None:
        self.objects = git_dir / "objects"
        self._indexes: list[mmap.mmap] | None = None

    def has(self, hex_id: str) -> bool:
        if (self.objects / hex_id[:2] / hex_id[2:]).is_file():
            return True
        if self._indexes is None:
            pack_dir = self.objects / "pack"
            names = sorted(os.listdir(pack_dir)) if pack_dir.is_dir() else []
            self._indexes = [_mapped(pack_dir / n) for n in names
                             if n.endswith(".idx") and (pack_dir / (n[:-4] + ".pack")).exists()]
        raw = bytes.fromhex(hex_id)
        return any(_in_index(index, raw) for index in self._indexes)

    def loose_metadata(self, session_id: str, hex_id: str) -> SessionMetadata | None:
        """The metadata a loose head commit carries (a save since the list index was last
        written), as the store reads it; None when it is packed, or not a sessionsgit commit."""
        try:
            data = zlib.decompress((self.objects / hex_id[:2] / hex_id[2:]).read_bytes())
        except (OSError, zlib.error):
            return None
        header, _, body = data.partition(b"\0")
        fields = commitmeta.parse(body) if header.startswith(b"commit ") else None
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


def _in_index(index: mmap.mmap, raw: bytes) -> bool:
    """Whether the object id ``raw`` is listed in a version 2 pack index (fan-out table, then
    the sorted ids); raises ValueError on any other format."""
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
            return True
        if found < raw:
            low = middle + 1
        else:
            high = middle
    return False
