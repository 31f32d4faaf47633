"""When a save should pack: the schedule of automatic maintenance, in one object.

A store counts (estimates) the loose objects its saves write; once they pass a budget that
grows with the packed size (``packing.loose_budget``), the next save runs maintenance. The
schedule also notices another process repacking, so the store can reopen its repository
(libgit2 keeps searching deleted packs otherwise)."""

from __future__ import annotations

import os
from pathlib import Path

import pygit2

from . import packing


class AutoPacker:
    """Loose objects written since the last pack, and the packed size they are weighed against."""

    def __init__(self, repo: pygit2.Repository, *, enabled: bool = True,
                 threshold: int = packing.LOOSE_OBJECT_THRESHOLD) -> None:
        self.enabled = enabled
        self.threshold = threshold
        self.loose_estimate = estimate_loose_objects(repo)
        self.packed_bytes = 0
        self.packs_seen = 0
        self.saw_packs(repo)

    def saw_packs(self, repo: pygit2.Repository) -> None:
        """Remember the packs as they are now (after this process or another one repacked)."""
        self.packed_bytes = packing.packed_bytes(repo)
        self.packs_seen = packing.pack_dir_stamp(repo)

    def repacked_elsewhere(self, repo: pygit2.Repository) -> bool:
        """Whether packs were added or removed since ``saw_packs``."""
        return packing.pack_dir_stamp(repo) != self.packs_seen

    def wrote(self, objects: int) -> bool:
        """Count a save's objects; True when it is time to pack (the count then restarts, so a
        failed pack is tried again only after another budget's worth)."""
        self.loose_estimate += objects
        if not self.enabled or self.loose_estimate < packing.loose_budget(self.threshold,
                                                                          self.packed_bytes):
            return False
        self.loose_estimate = 0
        return True

    def packed(self) -> None:
        """An explicit gc packed everything loose."""
        self.loose_estimate = 0


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
