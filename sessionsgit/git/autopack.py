"""When a save should pack: the schedule of automatic maintenance, in one object.

A store counts the small packs its saves write (one each) and estimates the loose objects
written beside it; once either passes its budget (``SMALL_PACK_LIMIT``; for loose objects one
that grows with the packed size, ``packing.loose_budget``), the next save runs maintenance.
The schedule also notices another process removing packs (a repack), so the store can reopen
its repository (libgit2 keeps searching deleted packs otherwise)."""

from __future__ import annotations

import os
from pathlib import Path

import pygit2

from . import packing


#: Small packs (one per save) let pile up before maintenance rolls them into one: libgit2
#: looks an object up pack by pack, so their number must stay small.
SMALL_PACK_LIMIT = 16


class AutoPacker:
    """Loose objects written since the last pack, and the packed size they are weighed against."""

    def __init__(self, repo: pygit2.Repository, *, enabled: bool = True,
                 threshold: int = packing.LOOSE_OBJECT_THRESHOLD) -> None:
        self.enabled = enabled
        self.threshold = threshold
        self.loose_estimate = estimate_loose_objects(repo)
        self.small_packs = 0
        self.packed_bytes = 0
        self.stamp_seen = 0
        self.packs_seen: set[str] = set()
        self.saw_packs(repo)

    def saw_packs(self, repo: pygit2.Repository) -> None:
        """Remember the packs as they are now (after this process or another one repacked)."""
        self.packed_bytes = packing.packed_bytes(repo)
        self.stamp_seen = packing.pack_dir_stamp(repo)
        self.packs_seen = packing.index_names(repo)

    def repacked_elsewhere(self, repo: pygit2.Repository) -> bool:
        """Whether a pack was removed since ``saw_packs`` (packs only added, as every save
        adds one, don't count). Cheap while the pack directory is unchanged."""
        stamp = packing.pack_dir_stamp(repo)
        if stamp == self.stamp_seen:
            return False
        now = packing.index_names(repo)
        removed = bool(self.packs_seen - now)
        self.stamp_seen, self.packs_seen = stamp, now
        return removed

    def wrote(self, *, objects: int = 0, packs: int = 0) -> bool:
        """Count a write's objects (loose, or in its ``packs`` small packs); True when it is
        time to pack (the counts then restart, so a failed pass is tried again only after
        another budget's worth)."""
        self.loose_estimate += objects
        self.small_packs += packs
        due = (self.small_packs >= SMALL_PACK_LIMIT or self.loose_estimate >=
               packing.loose_budget(self.threshold, self.packed_bytes))
        if not self.enabled or not due:
            return False
        self.loose_estimate = self.small_packs = 0
        return True

    def packed(self) -> None:
        """An explicit gc packed everything loose and merged the packs."""
        self.loose_estimate = self.small_packs = 0


#: Fan-out directories sampled (1/16 of them). Git samples one, fine at its threshold of 6,700;
#: at ours (256) one object in that one directory would already read as a full budget.
_SAMPLED = [f"1{digit}" for digit in "0123456789abcdef"]


def estimate_loose_objects(repo: pygit2.Repository) -> int:
    """Loose objects in the repository, estimated from 16 of the 256 fan-out directories."""
    objects, found = Path(repo.path) / "objects", 0
    for name in _SAMPLED:
        try:
            found += len(os.listdir(objects / name))
        except OSError:
            pass
    return found * 16
