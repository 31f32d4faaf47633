"""A remote that is a repository on this machine (a path or ``file://`` URL), read and written
in place rather than through libgit2's local transport, which force-updates refs (so a stale
push would overwrite another's) and fails outright on a single invalid ref name.

Its refs are read loose-first (``refs.read_refs``); a push copies the new objects as one pack
(data first, index last), then moves each ref by compare-and-swap under that repository's own
ref lock, from the value read before."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Callable, Iterable

import pygit2

from .refs import RefLocked, RefMoved, compare_and_swap, delete_if

#: Why a ref update was refused because the remote ref is no longer what was read.
STALE_REMOTE = "the remote has changes not pulled here (another push got there first); pull first"


def new_objects(repo: pygit2.Repository, heads: Iterable[pygit2.Oid],
                known: Callable[[pygit2.Oid], bool]) -> list[pygit2.Oid]:
    """Every object reachable from ``heads`` in ``repo`` that ``known`` says the other side
    lacks (a known commit or tree is taken to come with everything below it). Iterative."""
    found: list[pygit2.Oid] = []
    seen: set[pygit2.Oid] = set()
    pending = list(heads)
    while pending:
        oid = pending.pop()
        if oid in seen or known(oid):
            continue
        seen.add(oid)
        found.append(oid)
        obj = repo[oid]
        if isinstance(obj, pygit2.Commit):
            pending.append(obj.tree_id)
            pending.extend(obj.parent_ids)
        elif isinstance(obj, pygit2.Tree):
            pending.extend(entry.id for entry in obj
                           if entry.filemode != pygit2.GIT_FILEMODE_COMMIT)
    return found


def copy_objects(repo: pygit2.Repository, oids: list[pygit2.Oid], objects_dir: Path) -> None:
    """Write ``oids`` of ``repo`` as one pack into ``objects_dir/pack`` (index last)."""
    if not oids:
        return
    staging = objects_dir / "pack" / f"tmp-sessionsgit-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        builder = pygit2.PackBuilder(repo)
        for oid in oids:
            builder.add(oid)
        builder.write(str(staging))
        for suffix in (".pack", ".rev", ".idx"):
            for path in sorted(staging.glob(f"*{suffix}")):
                os.replace(path, objects_dir / "pack" / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def push(repo: pygit2.Repository, git_dir: Path,
         updates: dict[str, tuple[pygit2.Oid | None, pygit2.Oid | None]],
         rejected: dict[str, str], progress: Callable[[int, int], None] | None = None) -> None:
    """Move each ref of the repository at ``git_dir`` (name -> (new target or None to delete,
    the target read before or None)) only if it still holds the target read before; refusals
    go to ``rejected``."""
    target = pygit2.Repository(str(git_dir))
    news = [new for new, _ in updates.values() if new is not None]
    oids = new_objects(repo, news, target.odb.exists)
    if progress is not None:
        progress(0, len(oids))
    copy_objects(repo, oids, git_dir / "objects")
    if progress is not None:
        progress(len(oids), len(oids))
    for ref, (new, expected) in updates.items():
        try:
            if new is None:
                if expected is not None:
                    delete_if(target, ref, expected)
            else:
                compare_and_swap(target, ref, new, expected, "sessionsgit: push")
        except RefMoved:
            rejected[ref] = STALE_REMOTE
        except RefLocked:
            rejected[ref] = "the remote ref stayed locked by another writer; retry"
