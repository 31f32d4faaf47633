"""Fetch into quarantine: a temporary repository inside the store's Git directory that borrows
the store's objects (``objects/info/alternates``) and, when there is something to fetch, its
refs (so the fetch negotiates as the store would and downloads only what is new). What arrives
is checked there (``validate``); only the objects of accepted sessions then move into the
store, and the rest is deleted with the quarantine, so a hostile remote's objects never reach
the store (nor its ``git fsck``)."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable

import pygit2

from ..errors import DiskFullError, StoreError
from ..messages import one_line
from ..stores.git import SESSION_PREFIX
from .refs import read_ref, read_refs
from .transport import disk_full

#: Folder of quarantines inside a store's Git directory.
QUARANTINE_DIR = "sessionsgit-quarantine"
#: A quarantine this old was left by a killed pull: removed by the next one.
STALE_SECONDS = 3600.0


class Quarantine:
    """One fetch's quarantine; ``admit`` moves accepted objects in, ``close`` deletes it."""

    def __init__(self, store: pygit2.Repository, borrow: Path | None = None) -> None:
        """``borrow``: another objects directory to read from (a remote on this machine, whose
        objects are then checked and copied without libgit2's local transport)."""
        self.store = store
        base = Path(store.path) / QUARANTINE_DIR
        _drop_stale(base)
        self.path = base / uuid.uuid4().hex
        try:
            self.path.mkdir(parents=True)
            pygit2.init_repository(str(self.path), bare=True)
            objects = Path(store.path, "objects").resolve()
            (self.path / "objects" / "info").mkdir(parents=True, exist_ok=True)
            borrowed = f"{borrow.resolve()}\n" if borrow is not None else ""
            (self.path / "objects" / "info" / "alternates").write_text(f"{objects}\n{borrowed}")
            self.repo = pygit2.Repository(str(self.path))
        except (OSError, pygit2.GitError) as exc:
            self.close()
            full = disk_full(exc)
            if full is not None:
                raise DiskFullError(f"fetch failed before it started: the disk is full here "
                                    f"({full}); nothing was changed, free some space and try "
                                    "again") from None
            raise StoreError(f"fetch failed: cannot make its quarantine in {base}: "
                             f"{one_line(str(exc), None)}") from None
        self._fetched: set[bytes] | None = None

    def borrow_refs(self, sessions: Iterable[str] | None = None) -> None:
        """Copy the store's refs in (before a fetch), so the fetch negotiates as the store
        would and downloads only what the store lacks. ``sessions``: the encoded names of the
        sessions to be fetched; when the store holds each, only their heads are borrowed (each
        borrowed ref costs libgit2's negotiation ~60 µs, 60 ms for 1,000 sessions), else every
        ref (a new session may be a fork of any of them)."""
        names = [SESSION_PREFIX + name for name in sessions] if sessions is not None else None
        heads = {name: read_ref(self.store.path, name) for name in names or []}
        refs = {name: head for name, head in heads.items() if head is not None}
        if names is None or len(refs) < len(names):
            refs = read_refs(self.store.path, "refs/")[0]
        (self.path / "packed-refs").write_text(
            "# pack-refs with: peeled sorted \n"
            + "".join(f"{refs[name]} {name}\n" for name in sorted(refs)))

    def known(self, oid: pygit2.Oid) -> bool:
        """Whether the store itself holds ``oid`` (so it was checked or written there). An
        object the fetch just brought is new without asking the store (a miss there costs a
        rescan of its pack folder)."""
        if self._fetched is None:
            self._fetched = _pack_ids(self.path / "objects" / "pack")
        if oid.raw in self._fetched:
            return False
        return self.store.odb.exists(oid)

    def admit(self, objects: set[pygit2.Oid], everything: bool,
              progress: Callable[[int, int], None] | None = None) -> None:
        """Move into the store the new ``objects`` of the accepted sessions: every fetched
        file when ``everything`` was accepted, else a pack of exactly those (``progress``
        hears how many of them are packed)."""
        source = self.path / "objects"
        packs = source / "pack"
        if not everything:
            packs = self.path / "admit"
            packs.mkdir()
            wanted = sorted(objects, key=lambda oid: oid.raw)
            if progress is not None:
                progress(0, len(wanted))
            if wanted:
                builder = pygit2.PackBuilder(self.repo)
                for oid in wanted:
                    builder.add(oid)
                builder.write(str(packs))
            if progress is not None:
                progress(len(wanted), len(wanted))
        target = Path(self.store.path) / "objects"
        # data first, index last: a reader only uses a pack once its index is there
        for suffix in (".pack", ".rev", ".idx"):
            for path in sorted(packs.glob(f"*{suffix}")):
                os.replace(path, target / "pack" / path.name)
        if not everything:
            return
        for folder in source.glob("[0-9a-f][0-9a-f]"):
            for path in folder.iterdir():
                destination = target / folder.name / path.name
                if not destination.exists():
                    destination.parent.mkdir(exist_ok=True)
                    os.replace(path, destination)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _pack_ids(pack_dir: Path) -> set[bytes]:
    """The raw ids of every object in the version-2 pack indexes in ``pack_dir``."""
    ids: set[bytes] = set()
    for index in pack_dir.glob("*.idx"):
        data = index.read_bytes()
        if data[:8] != b"\377tOc\0\0\0\2" or len(data) < 8 + 1024:
            continue
        count = int.from_bytes(data[8 + 1020:8 + 1024], "big")
        start = 8 + 1024
        ids.update(data[start + 20 * i:start + 20 * (i + 1)] for i in range(count))
    return ids


def _drop_stale(base: Path) -> None:
    try:
        entries = list(base.iterdir())
    except OSError:
        return
    for entry in entries:
        try:
            if time.time() - entry.stat().st_mtime >= STALE_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            pass
