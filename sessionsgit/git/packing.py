"""Keep the repository small: move loose objects into packs (as ``git gc --auto`` would) and pack
refs. Packing only ever adds packs and removes loose objects that a written pack now holds, so a
concurrent writer never loses an object it is about to reference."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pygit2

LOOSE_OBJECT_THRESHOLD = 1000
PACK_COUNT_THRESHOLD = 12


def _objects_dir(repo: pygit2.Repository) -> Path:
    return Path(repo.path) / "objects"


def loose_objects(repo: pygit2.Repository) -> list[tuple[pygit2.Oid, Path]]:
    """Every loose object file in the repository, with its id."""
    found = []
    for fanout in _objects_dir(repo).iterdir() if _objects_dir(repo).is_dir() else []:
        name = fanout.name
        if len(name) != 2 or not all(c in "0123456789abcdef" for c in name):
            continue
        try:
            entries = os.listdir(fanout)
        except OSError:
            continue
        for entry in entries:
            if len(entry) == 38 and not entry.startswith("tmp"):
                try:
                    found.append((pygit2.Oid(hex=name + entry), fanout / entry))
                except ValueError:
                    continue
    return found


def pack_files(repo: pygit2.Repository) -> list[Path]:
    pack_dir = _objects_dir(repo) / "pack"
    return sorted(pack_dir.glob("pack-*.pack")) if pack_dir.is_dir() else []


def pack_loose_objects(repo: pygit2.Repository) -> int:
    """Write every loose object into one new pack, then delete those loose files. Returns how
    many objects were packed."""
    loose = loose_objects(repo)
    if not loose:
        return 0
    builder = pygit2.PackBuilder(repo)
    for oid, _path in loose:
        builder.add(oid)
    pack_dir = _objects_dir(repo) / "pack"
    pack_dir.mkdir(exist_ok=True)
    builder.write(str(pack_dir))
    for _oid, path in loose:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    _remove_empty_fanouts(repo)
    return len(loose)


def consolidate_packs(repo: pygit2.Repository) -> int:
    """Rewrite every pack into one, keeping every object they held (reachable or not: pruning
    is for an explicit gc). Returns the number of packs replaced."""
    old_packs = pack_files(repo)
    if len(old_packs) < 2:
        return 0
    builder = pygit2.PackBuilder(repo)
    for oid in repo.odb:
        builder.add(oid)
    builder.write(str(_objects_dir(repo) / "pack"))
    new_packs = set(pack_files(repo)) - set(old_packs)
    for pack in old_packs:
        if pack in new_packs:
            continue
        for suffix in (".pack", ".idx", ".rev", ".bitmap"):
            try:
                pack.with_suffix(suffix).unlink()
            except FileNotFoundError:
                pass
    return len(old_packs)


def _remove_empty_fanouts(repo: pygit2.Repository) -> None:
    for fanout in _objects_dir(repo).iterdir():
        if len(fanout.name) == 2:
            try:
                fanout.rmdir()
            except OSError:
                pass


def pack_refs(repo: pygit2.Repository) -> None:
    """Fold loose refs into ``packed-refs`` so listing thousands of sessions reads one file."""
    repo.compress_references()


def maintain(repo: pygit2.Repository, *, merge_packs: bool = False) -> dict[str, int]:
    """Pack loose objects and refs, and merge packs once there are many (or when asked). Only
    one process maintains a repository at a time; another one finding it busy skips."""
    lock_path = Path(repo.path) / "sessionsgit-maintenance.lock"
    with open(lock_path, "a+b") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return {"packed_objects": 0, "merged_packs": 0}
        packed = pack_loose_objects(repo)
        pack_refs(repo)
        merged = 0
        if merge_packs or len(pack_files(repo)) > PACK_COUNT_THRESHOLD:
            merged = consolidate_packs(repo)
    return {"packed_objects": packed, "merged_packs": merged}
