"""Where the LangGraph checkpointer keeps things in Git, apart from the commits themselves: ref
names, the trailer each checkpoint commit carries, and the per-thread index of checkpoint ids.
Stdlib and pygit2 only (no LangGraph), so it can be read and tested on its own.

Refs of a thread ``T`` (its id encoded as one ref component, see ``sessionsgit.idcodec``):

* ``refs/heads/sessions/T``: the session branch, at the newest root-namespace checkpoint (what
  ``sessionsgit show/log`` and ``git log`` read);
* ``refs/langgraph/T/<N>/<B>``: one ref per leaf of the checkpoint tree of namespace ``N``
  (``=`` for the root namespace, ``=<encoded ns>`` otherwise), named after the checkpoint that
  started that branch, so every fork stays reachable;
* ``refs/langgraph/T/w/<N>/<checkpoint id>``: the tree of pending writes of a checkpoint that
  has no child yet (a child commit takes them into its own tree and the ref is dropped).
"""

from __future__ import annotations

import functools
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pygit2

from .. import idcodec

LANGGRAPH_PREFIX = "refs/langgraph/"
#: A checkpoint commit's subtree, and where in it the pending writes it took in are: the
#: parent's, and (``late-writes.<id>``) those of the grandparent that landed late, beside the
#: others, as a pull's validation allows two levels only.
LG_DIR = "langgraph"
PARENT_WRITES = "parent-writes"
LATE_WRITES = "late-writes."
TRAILER_KEY = "Langgraph-Checkpoint: "
_TRAILER_MARKER = ("\n" + TRAILER_KEY).encode()


@functools.lru_cache(maxsize=4096)
def thread_prefix(thread_id: str) -> str:
    """Every ref of a thread's checkpoints and writes lies under this prefix."""
    return f"{LANGGRAPH_PREFIX}{idcodec.encode(thread_id)}/"


@functools.lru_cache(maxsize=4096)
def ns_component(checkpoint_ns: str) -> str:
    """The namespace as one ref component: ``=`` for the root, ``=<encoded>`` otherwise."""
    return "=" + (idcodec.encode(checkpoint_ns) if checkpoint_ns else "")


def leaves_prefix(thread_id: str, checkpoint_ns: str) -> str:
    return f"{thread_prefix(thread_id)}{ns_component(checkpoint_ns)}/"


def writes_ref(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> str:
    return f"{thread_prefix(thread_id)}w/{ns_component(checkpoint_ns)}/{checkpoint_id}"


def is_writes_ref(name: str) -> bool:
    """Whether a ref name (relative to the thread prefix or absolute) holds pending writes."""
    return name.startswith("w/") or "/w/=" in name


@dataclass(frozen=True)
class Trailer:
    """What a checkpoint commit says about itself (read without opening its tree)."""

    checkpoint_ns: str
    checkpoint_id: str
    parent_id: str | None


def compose_trailer(checkpoint_ns: str, checkpoint_id: str, parent_id: str | None) -> str:
    data = {"ns": checkpoint_ns, "id": checkpoint_id, "parent": parent_id}
    return TRAILER_KEY + json.dumps(data, ensure_ascii=True, separators=(",", ":"))


def parse_trailer(raw_message: bytes) -> Trailer | None:
    """The trailer of a raw commit message, or None for a commit that is no checkpoint (a fork,
    rename or delete commit sessionsgit made on the branch)."""
    position = raw_message.rfind(_TRAILER_MARKER)
    if position < 0:
        return None
    start = position + len(_TRAILER_MARKER)
    end = raw_message.find(b"\n", start)
    try:
        data = json.loads(raw_message[start:] if end < 0 else raw_message[start:end])
        return Trailer(str(data["ns"]), str(data["id"]),
                       None if data.get("parent") is None else str(data["parent"]))
    except (ValueError, KeyError, TypeError):
        return None


def commit_trailer(repo: pygit2.Repository, commit_id: pygit2.Oid) -> Trailer | None:
    try:
        object_type, raw = repo.odb.read(commit_id)
    except (KeyError, ValueError, pygit2.GitError):
        return None
    if object_type != pygit2.enums.ObjectType.COMMIT:
        return None
    return parse_trailer(raw)


@dataclass
class _Cache:
    token: bytes = b""  # the file's first line: a file made anew (a thread deleted and
    offset: int = 0     # created again) never passes for the one already read
    #: (inode, size, mtime) of the file when last read to its end: unchanged, nothing to read
    seen: tuple[int, int, int] = (0, -1, 0)
    commits: dict[tuple[str, str], str] = field(default_factory=dict)
    writes: dict[tuple[str, str], str] = field(default_factory=dict)


class ThreadIndex:
    """Checkpoint id -> commit (and -> folded pending-writes tree) for each thread, in an
    append-only file per thread under ``<git dir>/sessionsgit/langgraph/``. It is a cache: a
    process appends a line after its ref moved, reads only what others appended since, and a
    lookup that misses falls back to walking the thread's commits. Lines are JSON arrays:
    ``["C", ns, id, commit]``, ``["W", ns, id, tree]``, ``["D", ns, id]`` (deleted), and
    ``["S", source thread, its index's first line, offset]`` (a copy: the source's lines up to
    that offset, which appends never change, hold for this thread too); the last line for an id
    wins."""

    def __init__(self, git_dir: str | os.PathLike[str]) -> None:
        self.root = Path(git_dir) / "sessionsgit" / "langgraph"
        self._caches: dict[str, _Cache] = {}
        self._paths: dict[str, Path] = {}

    def path(self, thread_id: str) -> Path:
        found = self._paths.get(thread_id)
        if found is None:
            if len(self._paths) >= 4096:
                self._paths.clear()
            found = self._paths[thread_id] = \
                self.root / (idcodec.encode(thread_id, idcodec.FILE) + ".idx")
        return found

    def _load(self, thread_id: str) -> _Cache:
        cache = self._caches.setdefault(thread_id, _Cache())
        path = self.path(thread_id)
        try:
            stat = os.stat(path)
            if (stat.st_ino, stat.st_size, stat.st_mtime_ns) == cache.seen:
                return cache  # a stat instead of open, read and seek: a put looks up twice
            with open(path, "rb") as handle:
                token = handle.readline()
                if token != cache.token or not token.endswith(b"\n"):
                    cache = self._caches[thread_id] = _Cache(token, len(token))
                handle.seek(cache.offset)
                data = handle.read()
        except FileNotFoundError:
            self._caches[thread_id] = _Cache()
            return self._caches[thread_id]
        complete = data[:data.rfind(b"\n") + 1]  # a line being appended is read next time
        for line in complete.splitlines():
            self._apply(cache, line)
        cache.offset += len(complete)
        if cache.offset == stat.st_size:
            cache.seen = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        return cache

    def _inherit(self, cache: _Cache, source: str, token: str, end: int, depth: int) -> None:
        """Apply a source thread's lines up to ``end`` (a copy's "S" line), if its index is
        still the one the copy was made from; else the walk fallback covers the copy."""
        try:
            with open(self.path(source), "rb") as handle:
                if handle.readline().decode("ascii", "replace") != token:
                    return
                data = handle.read(max(0, end - handle.tell()))
        except (FileNotFoundError, OSError):
            return
        for line in data[:data.rfind(b"\n") + 1].splitlines():
            self._apply(cache, line, depth + 1)

    def _apply(self, cache: _Cache, line: bytes, depth: int = 0) -> None:
        try:
            entry = json.loads(line)
            kind, key = entry[0], (entry[1], entry[2])
        except (ValueError, IndexError, TypeError):
            return  # a damaged line: the walk fallback covers what it said
        if kind == "S":
            if depth < 16 and isinstance(entry[1], str) and isinstance(entry[2], str) and \
                    isinstance(entry[3], int):
                self._inherit(cache, entry[1], entry[2], entry[3], depth)
        elif kind == "C":
            cache.commits[key] = entry[3]
        elif kind == "W":
            cache.writes[key] = entry[3]
        elif kind == "D":
            cache.commits.pop(key, None)
            cache.writes.pop(key, None)

    def commit(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> str | None:
        return self._load(thread_id).commits.get((checkpoint_ns, checkpoint_id))

    def writes_tree(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> str | None:
        return self._load(thread_id).writes.get((checkpoint_ns, checkpoint_id))

    def append(self, thread_id: str, entries: list[list[Any]]) -> None:
        """Add lines in one ``O_APPEND`` write, so concurrent writers never interleave them."""
        if not entries:
            return
        data = b"".join(json.dumps(e, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"
                        for e in entries)
        self._write(self.path(thread_id), data)

    def _write(self, path: Path, data: bytes) -> None:
        """Append ``data``; a new file is made whole (a random first line, then ``data``) and
        linked into place, so no reader sees it without its first line."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            self.root.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
            temp.write_bytes(json.dumps(["H", uuid.uuid4().hex]).encode() + b"\n" + data)
            try:
                os.link(temp, path)
                return
            except FileExistsError:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            finally:
                temp.unlink()
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def forget(self, thread_id: str) -> None:
        """Drop a thread's index (its thread was deleted)."""
        self._caches.pop(thread_id, None)
        try:
            self.path(thread_id).unlink()
        except FileNotFoundError:
            pass

    def copy(self, source: str, target: str) -> None:
        """Give ``target`` the index of ``source`` (a copied thread shares every commit): one
        line naming the source's lines as they are now, whatever their number."""
        try:
            with open(self.path(source), "rb") as handle:
                token = handle.readline()
                end = os.fstat(handle.fileno()).st_size
        except FileNotFoundError:
            return
        self.forget(target)
        if token.endswith(b"\n"):
            self.append(target, [["S", source, token.decode("ascii", "replace"), end]])
