"""Keep the repository small: move loose objects into packs (as ``git gc --auto`` would), merge
small packs geometrically (so the work stays proportional to what is new, not to all history),
and pack refs once many are loose. Packing only adds packs and removes loose objects or packs
whose every object a newly written pack holds, so no writer loses an object it relies on."""

from __future__ import annotations

import fcntl
import os
import struct
import time
from pathlib import Path

import pygit2

#: Fewest loose objects (about five per save, each taking a 4 KB block) before a save packs
#: them; a larger repository allows more (see ``loose_budget``).
LOOSE_OBJECT_THRESHOLD = 256
#: Loose session refs before they are folded into ``packed-refs``.
LOOSE_REF_THRESHOLD = 512
#: Most loose objects a save lets pile up before packing (bounds the pause packing causes).
LOOSE_OBJECT_CEILING = 1024
#: Geometric factor: a pack is merged into the ones below it unless it is this much larger.
GEOMETRIC_FACTOR = 2
#: Packs at least this big are left to an explicit ``gc()``: automatic maintenance runs inside a
#: save and must not pause it for seconds rewriting most of the repository.
AUTO_MERGE_MAX_PACK_BYTES = 8 * 1024 * 1024
#: Age after which a leftover temp file in objects/ is certainly abandoned.
STALE_TEMP_SECONDS = 3600.0
_HEX = frozenset("0123456789abcdef")


def _objects_dir(repo: pygit2.Repository) -> Path:
    return Path(repo.path) / "objects"


def loose_objects(repo: pygit2.Repository) -> list[tuple[pygit2.Oid, Path]]:
    """Every loose object file in the repository, with its id."""
    found = []
    objects = _objects_dir(repo)
    for fanout in objects.iterdir() if objects.is_dir() else []:
        name = fanout.name
        if len(name) != 2 or not set(name) <= _HEX:
            continue
        try:
            entries = os.listdir(fanout)
        except OSError:
            continue
        for entry in entries:
            if len(entry) == 38 and set(entry) <= _HEX:
                found.append((pygit2.Oid(hex=name + entry), fanout / entry))
    return found


def loose_budget(minimum: int, packed: int) -> int:
    """Loose objects to allow before packing: their 4 KB blocks may add up to half of what is
    packed (up to a ceiling that bounds the pause), so the repository stays near 1.5 times its
    packed size while a big repository packs (and merges packs) rarely."""
    return max(minimum, min(packed // (2 * 4096), LOOSE_OBJECT_CEILING))


def packed_bytes(repo: pygit2.Repository) -> int:
    """The size of every pack, read from the file system."""
    total = 0
    for pack in pack_files(repo):
        try:
            total += pack.stat().st_size
        except OSError:
            continue
    return total


def pack_dir_stamp(repo: pygit2.Repository) -> int:
    """Changes whenever a pack is added to or removed from the repository."""
    try:
        return os.stat(_objects_dir(repo) / "pack").st_mtime_ns
    except OSError:
        return 0


def pack_files(repo: pygit2.Repository) -> list[Path]:
    pack_dir = _objects_dir(repo) / "pack"
    return sorted(pack_dir.glob("pack-*.pack")) if pack_dir.is_dir() else []


def pack_object_ids(pack: Path) -> list[pygit2.Oid]:
    """The object ids a pack holds, read from its version-2 ``.idx``."""
    data = pack.with_suffix(".idx").read_bytes()
    if data[:8] != b"\xfftOc\x00\x00\x00\x02":
        raise ValueError(f"{pack.name}: unsupported pack index")
    count = struct.unpack_from(">I", data, 8 + 255 * 4)[0]
    start = 8 + 256 * 4
    return [pygit2.Oid(raw=data[start + 20 * i:start + 20 * (i + 1)]) for i in range(count)]


def _write_pack(repo: pygit2.Repository, oids: list[pygit2.Oid]) -> None:
    builder = pygit2.PackBuilder(repo)
    for oid in oids:
        builder.add(oid)
    pack_dir = _objects_dir(repo) / "pack"
    pack_dir.mkdir(exist_ok=True)
    builder.write(str(pack_dir))


def pack_loose_objects(repo: pygit2.Repository) -> int:
    """Write every loose object into one new pack, then delete those loose files. Returns how
    many objects were packed."""
    loose = loose_objects(repo)
    if not loose:
        return 0
    _write_pack(repo, [oid for oid, _path in loose])
    for _oid, path in loose:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    return len(loose)


def packs_to_merge(sizes: list[int], everything: bool = False) -> int:
    """How many of the smallest packs (``sizes`` ascending) to roll up into one so that every
    pack left is at least GEOMETRIC_FACTOR times all the packs below it (git's ``repack
    --geometric``): each object is rewritten O(log n) times over the repository's life."""
    if len(sizes) < 2:
        return 0
    if everything:
        return len(sizes)
    split = len(sizes) - 1
    while split > 0 and sizes[split] >= GEOMETRIC_FACTOR * sizes[split - 1]:
        split -= 1
    total = sum(sizes[:split + 1])
    count = split + 1
    while count < len(sizes) and sizes[count] < GEOMETRIC_FACTOR * total:
        total += sizes[count]
        count += 1
    return count if count >= 2 else 0


def merge_packs(repo: pygit2.Repository, *, everything: bool = False) -> int:
    """Merge the small packs into one (all packs with ``everything``), keeping every object they
    held, reachable or not (pruning is for an explicit gc). Returns how many packs were merged."""
    packs = sorted(pack_files(repo), key=lambda p: p.stat().st_size)
    if not everything:
        packs = [p for p in packs if p.stat().st_size < AUTO_MERGE_MAX_PACK_BYTES]
    count = packs_to_merge([p.stat().st_size for p in packs], everything)
    if count == 0:
        return 0
    merged = packs[:count]
    oids: list[pygit2.Oid] = []
    for pack in merged:
        oids.extend(pack_object_ids(pack))
    _write_pack(repo, oids)
    written = set(pack_files(repo)) - set(packs)
    for pack in merged:
        if pack in written:
            continue
        for suffix in (".keep", ".bitmap", ".rev", ".idx", ".pack"):
            try:
                pack.with_suffix(suffix).unlink()
            except FileNotFoundError:
                pass
    return count


def remove_stale_temp_files(repo: pygit2.Repository, older_than: float = STALE_TEMP_SECONDS) -> int:
    """Delete temp files a killed writer or packer left (libgit2 names them ``tmp_object_git2_*``
    and ``pack_git2_*``) once they are old enough that no live process can still be writing."""
    objects = _objects_dir(repo)
    cutoff = time.time() - older_than
    removed = 0
    for pattern in ("??/tmp_object_git2_*", "pack/pack_git2_*", "pack/tmp_*"):
        for path in objects.glob(pattern):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
    return removed


def loose_ref_count(repo: pygit2.Repository) -> int:
    try:
        return sum(1 for _ in os.scandir(Path(repo.path) / "refs" / "heads" / "sessions"))
    except OSError:
        return 0


def pack_refs(repo: pygit2.Repository) -> None:
    """Fold loose refs into ``packed-refs`` so listing thousands of sessions reads one file."""
    repo.compress_references()


def maintain(repo: pygit2.Repository, *, full: bool = False) -> dict[str, int]:
    """Pack loose objects, merge small packs, and pack refs once many are loose (everything into
    one pack and all refs packed with ``full``). Only one process maintains a repository at a
    time; another one finding it busy skips."""
    lock_path = Path(repo.path) / "sessionsgit-maintenance.lock"
    with open(lock_path, "a+b") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return {"packed_objects": 0, "merged_packs": 0}
        packed = pack_loose_objects(repo)
        merged = merge_packs(repo, everything=full)
        remove_stale_temp_files(repo)
        if full or loose_ref_count(repo) >= LOOSE_REF_THRESHOLD:
            pack_refs(repo)
    return {"packed_objects": packed, "merged_packs": merged}
