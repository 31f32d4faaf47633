"""Keep the repository small without ever losing an object, on git's own principles.

- Only loose objects reachable from a ref are packed. An unreachable loose object may belong
  to a save in flight (written, its branch not moved yet): it stays loose, where git's prune
  grace period protects it, so a later ``git repack -a -d`` cannot drop it.
- Small packs are merged geometrically (git's ``repack --geometric``), keeping every object.
- Nothing is deleted unless each of its objects is proven present in a pack whose ``.idx`` and
  ``.pack`` were written and fsynced; a pack is deleted ``.idx`` first, which makes it invisible
  at once to git and libgit2 (both find packs by their index). A ``.pack`` left without its index
  by a kill is ignored, and removed once it is old enough that no writer can still be busy with it.
- Unreachable objects are dropped only by an explicit ``gc(prune=...)``, and only once older
  than its grace period (git's ``gc.pruneExpire``)."""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pygit2

from .savepack import KEEP_MARKER, SavePack, WrittenPack
from .refs import (RefLocked, read_refs, recover_stale_locks, stale_lock_files,
                   with_lock_retry)

logger = logging.getLogger("sessionsgit")

#: Fewest loose objects (about five per save, each taking a 4 KB block) before a save packs
#: them; a larger repository allows more (see ``loose_budget``).
LOOSE_OBJECT_THRESHOLD = 256
#: Loose session refs before they are folded into ``packed-refs``.
LOOSE_REF_THRESHOLD = 512
#: Most loose objects a save lets pile up before packing (bounds the pause packing causes).
LOOSE_OBJECT_CEILING = 1024
#: Most loose objects one automatic pass packs: a save never pauses for a whole-repository
#: pack (the rest follows in later passes; ``gc()`` packs everything at once).
AUTO_PACK_OBJECT_LIMIT = 4 * LOOSE_OBJECT_CEILING
#: Geometric factor: a pack is merged into the ones below it unless it is this much larger.
GEOMETRIC_FACTOR = 2
#: Packs at least this big are left to an explicit ``gc()``: automatic maintenance runs inside a
#: save and must not pause it for seconds rewriting most of the repository.
AUTO_MERGE_MAX_PACK_BYTES = 8 * 1024 * 1024
#: Most bytes one automatic merge rewrites (the packs it rolls up, together): what bounds the
#: pause of the save that runs it. Larger roll-ups wait for ``gc()``.
AUTO_MERGE_BUDGET_BYTES = 4 * 1024 * 1024
#: Age after which a leftover temp file or index-less pack is certainly abandoned.
STALE_TEMP_SECONDS = 3600.0
_HEX = frozenset("0123456789abcdef")
_TYPE_NAMES = {pygit2.enums.ObjectType.COMMIT: b"commit", pygit2.enums.ObjectType.TREE: b"tree",
               pygit2.enums.ObjectType.BLOB: b"blob", pygit2.enums.ObjectType.TAG: b"tag"}
_GITLINK_MODE = b"160000"
#: Pack entry types stored whole (commit, tree, blob, tag), not as deltas.
_WHOLE = frozenset((1, 2, 3, 4))


@dataclass
class MaintenanceReport:
    """What one maintenance pass did, and the objects it had to leave alone."""

    packed_objects: int = 0
    merged_packs: int = 0
    pruned_objects: int = 0
    refs_packed: bool = False
    damaged_objects: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"packed_objects": self.packed_objects, "merged_packs": self.merged_packs,
                "pruned_objects": self.pruned_objects, "refs_packed": int(self.refs_packed),
                "damaged_objects": len(self.damaged_objects)}


def _objects_dir(repo: pygit2.Repository) -> Path:
    return Path(repo.path) / "objects"


def loose_objects(repo: pygit2.Repository) -> dict[pygit2.Oid, Path]:
    """Every loose object file in the repository, by id."""
    found: dict[pygit2.Oid, Path] = {}
    objects = _objects_dir(repo)
    for name in _names(objects):
        if len(name) != 2 or not set(name) <= _HEX:
            continue
        for entry in _names(objects / name):
            if len(entry) == 38 and set(entry) <= _HEX:
                found[pygit2.Oid(hex=name + entry)] = objects / name / entry
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
        return os.stat(os.path.join(repo.path, "objects", "pack")).st_mtime_ns
    except OSError:
        return 0


def index_names(repo: pygit2.Repository) -> set[str]:
    """The names of the pack indexes in the repository (what makes a pack visible)."""
    try:
        names = os.listdir(os.path.join(repo.path, "objects", "pack"))
    except OSError:
        return set()
    return {name for name in names if name.endswith(".idx")}


def pack_files(repo: pygit2.Repository) -> list[Path]:
    """Every usable pack (a ``.pack`` with its ``.idx``), as git and libgit2 find them."""
    pack_dir = _objects_dir(repo) / "pack"
    names = set(_names(pack_dir))
    return sorted(pack_dir / (name[:-4] + ".pack") for name in names
                  if name.startswith("pack-") and name.endswith(".idx")
                  and name[:-4] + ".pack" in names)


def pack_object_ids(pack: Path) -> list[pygit2.Oid]:
    """The object ids a pack holds, read from its version-2 ``.idx``."""
    data = pack.with_suffix(".idx").read_bytes()
    if data[:8] != b"\xfftOc\x00\x00\x00\x02":
        raise ValueError(f"{pack.name}: unsupported pack index")
    count = struct.unpack_from(">I", data, 8 + 255 * 4)[0]
    start = 8 + 256 * 4
    return [pygit2.Oid(raw=data[start + 20 * i:start + 20 * (i + 1)]) for i in range(count)]


def pack_index(pack: Path) -> list[tuple[bytes, int, int]]:
    """(raw id, CRC-32 of its entry, offset in the pack) of every object of a pack, read from
    its version-2 ``.idx``."""
    data = pack.with_suffix(".idx").read_bytes()
    if data[:8] != b"\xfftOc\x00\x00\x00\x02":
        raise ValueError(f"{pack.name}: unsupported pack index")
    count = struct.unpack_from(">I", data, 8 + 255 * 4)[0]
    ids_at = 8 + 256 * 4
    crcs = struct.unpack_from(f">{count}I", data, ids_at + 20 * count)
    offsets = list(struct.unpack_from(f">{count}I", data, ids_at + 24 * count))
    large_at = ids_at + 28 * count
    for i, offset in enumerate(offsets):
        if offset & 0x80000000:
            offsets[i] = struct.unpack_from(">Q", data, large_at + 8 * (offset & 0x7FFFFFFF))[0]
    return [(data[ids_at + 20 * i:ids_at + 20 * (i + 1)], crcs[i], offsets[i])
            for i in range(count)]


def concatenate_packs(repo: pygit2.Repository, packs: list[Path]) -> WrittenPack | None:
    """One new pack holding every object of ``packs``, their entries copied byte for byte:
    no inflating, no delta search, so rolling up a hundred small save packs takes a
    millisecond or two instead of a PackBuilder pass. None (nothing written) when an entry is
    a delta, whose base offset would change, or fails its CRC: then PackBuilder merges. The
    new pack is kept (``.keep``) until the caller releases it, once the old packs are gone."""
    batch = SavePack()
    for pack in packs:
        located = sorted(pack_index(pack), key=lambda item: item[2])
        data = pack.read_bytes()
        ends = [offset for _raw, _crc, offset in located[1:]] + [len(data) - 20]
        for (raw, crc, offset), end in zip(located, ends):
            entry = data[offset:end]
            if not entry or (entry[0] >> 4) & 7 not in _WHOLE or zlib.crc32(entry) != crc:
                return None
            batch.add_entry(raw, entry)
    if not len(batch):
        return None
    return batch.publish(repo.path, durable=True)


def _pack_count(pack: Path) -> int:
    with open(pack.with_suffix(".idx"), "rb") as handle:
        head = handle.read(8 + 256 * 4)
    return struct.unpack_from(">I", head, 8 + 255 * 4)[0] if len(head) == 8 + 256 * 4 else -1


def fsync_path(path: Path, *, strict: bool = False) -> None:
    """Flush one file or directory to disk: best effort where the file system can't, unless
    ``strict`` (a durable save must not claim a flush that failed)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        if strict:
            raise
    finally:
        os.close(fd)


def write_pack(repo: pygit2.Repository, oids: list[pygit2.Oid]) -> Path:
    """Write ``oids`` into one pack, flush it to disk, and return it once its index is proven
    to list every one of them. The pack may come out byte-identical to an existing pack (its
    name is the hash of its content): that pack is then the one returned."""
    pack_dir = _objects_dir(repo) / "pack"
    pack_dir.mkdir(exist_ok=True)
    before = set(pack_files(repo))
    builder = pygit2.PackBuilder(repo)
    for oid in oids:
        builder.add(oid)
    builder.write(str(pack_dir))
    wanted = set(oids)
    after = set(pack_files(repo))
    candidates = sorted(after - before) + sorted(after & before)
    for pack in candidates:
        if _pack_count(pack) == len(wanted) and set(pack_object_ids(pack)) == wanted:
            for path in (pack, pack.with_suffix(".idx"), pack_dir):
                fsync_path(path)
            return pack
    # PackBuilder wrote it, so another program's repack -d has taken it since (its new pack
    # holds what it kept of ours); nothing was deleted on our side yet
    raise FileNotFoundError(f"the pack written for {len(wanted)} objects is gone from "
                            f"{pack_dir}: repacked meanwhile")


def remove_pack(pack: Path) -> None:
    """Delete a pack, its index first: with the ``.idx`` gone nobody finds the pack any more,
    and a ``.pack`` a kill leaves behind is ignored until ``remove_orphan_packs`` takes it."""
    for suffix in (".idx", ".pack", ".rev", ".bitmap", ".mtimes"):
        try:
            pack.with_suffix(suffix).unlink()
        except FileNotFoundError:
            pass


def remove_orphan_packs(repo: pygit2.Repository, older_than: float = STALE_TEMP_SECONDS) -> int:
    """Delete pack files whose partner is missing (a ``.pack`` without ``.idx`` or the other
    way round) once older than ``older_than`` seconds: a younger one may be mid-write."""
    pack_dir = _objects_dir(repo) / "pack"
    cutoff = time.time() - older_than
    removed = 0
    for path in sorted(pack_dir / name for name in _names(pack_dir) if name.startswith("pack-")):
        if path.suffix == ".keep":
            continue
        partner = path.with_suffix(".idx" if path.suffix == ".pack" else ".pack")
        try:
            if not partner.exists() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed


# ---- reachability -------------------------------------------------------------------------
def roots(repo: pygit2.Repository, *, with_logs: bool = False) -> set[pygit2.Oid]:
    """What keeps objects alive: every ref (read loose-first, so none is missed while refs are
    packed), HEAD, and with ``with_logs`` the reflogs and a working tree's index too."""
    found = set(read_refs(repo.path, "refs/")[0].values())
    try:
        head = repo.references.get("HEAD")
        target = head.resolve().target if head is not None else None
        if isinstance(target, pygit2.Oid):
            found.add(target)
    except (pygit2.GitError, KeyError, ValueError):
        pass
    if with_logs:
        for name in read_refs(repo.path, "refs/")[0]:
            try:
                for entry in repo.references[name].log():
                    found.update((entry.oid_old, entry.oid_new))
            except (pygit2.GitError, KeyError, ValueError):
                continue
        if not repo.is_bare:
            try:
                found.update(entry.id for entry in repo.index)
            except (pygit2.GitError, OSError):
                pass
    found.discard(pygit2.Oid(hex="0" * 40))
    return found


def _children(object_type: int, data: bytes) -> Iterable[pygit2.Oid]:
    """The objects a commit, tree or tag names (gitlinks aside: they live in other repos)."""
    if object_type == pygit2.enums.ObjectType.TREE:
        position = 0
        while position < len(data):
            space = data.index(b" ", position)
            nul = data.index(b"\0", space)
            if data[position:space] != _GITLINK_MODE:
                yield pygit2.Oid(raw=data[nul + 1:nul + 21])
            position = nul + 21
    elif object_type in (pygit2.enums.ObjectType.COMMIT, pygit2.enums.ObjectType.TAG):
        for line in data.split(b"\n"):
            if not line:
                break  # the headers end at the first blank line
            key, _, value = line.partition(b" ")
            if key in (b"tree", b"parent", b"object"):
                yield pygit2.Oid(hex=value.decode("ascii"))


def walk(repo: pygit2.Repository, start: Iterable[pygit2.Oid], *, within: set[pygit2.Oid] | None,
         damaged: list[str]) -> set[pygit2.Oid]:
    """Every object reachable from ``start``. With ``within``, the walk stays inside that set
    (the loose objects): an object outside it is packed, and so is everything it names. An
    object that cannot be read is noted in ``damaged`` and its subtree skipped."""
    seen: set[pygit2.Oid] = set()
    unreadable: set[pygit2.Oid] = set()
    stack = list(start)
    read = repo.odb.read
    while stack:
        oid = stack.pop()
        if oid in seen or oid in unreadable or (within is not None and oid not in within):
            continue
        try:
            object_type, data = read(oid)
        except (KeyError, ValueError, pygit2.GitError, OSError) as exc:
            unreadable.add(oid)
            if within is not None or not isinstance(exc, KeyError):
                damaged.append(f"{oid}: {exc}")
            continue
        seen.add(oid)
        try:
            stack.extend(_children(object_type, data))
        except (ValueError, UnicodeDecodeError) as exc:
            damaged.append(f"{oid}: unparsable {exc}")
    return seen


# ---- the passes ---------------------------------------------------------------------------
def loose_closure_bottom_up(repo: pygit2.Repository, start: Iterable[pygit2.Oid],
                            loose: set[pygit2.Oid], damaged: list[str],
                            limit: int | None = None) -> list[pygit2.Oid]:
    """The loose objects reachable from ``start``, every object after all it names (blobs
    before their trees, trees before their commits), stopping once ``limit`` are found.
    Packing any prefix of this order keeps the rule the walk relies on: whatever a packed
    object names is packed too."""
    order: list[pygit2.Oid] = []
    done: set[pygit2.Oid] = set()
    read = repo.odb.read
    for root in start:
        if root in done or root not in loose:
            continue
        stack: list[tuple[pygit2.Oid, list[pygit2.Oid] | None]] = [(root, None)]
        while stack:
            oid, children = stack.pop()
            if oid in done:
                continue
            if children is None:
                try:
                    object_type, data = read(oid)
                    named = [c for c in _children(object_type, data) if c in loose and c not in done]
                except (KeyError, ValueError, UnicodeDecodeError, pygit2.GitError, OSError) as exc:
                    damaged.append(f"{oid}: {exc}")
                    done.add(oid)  # left loose, and nothing that names it is packed
                    loose.discard(oid)
                    continue
                stack.append((oid, []))
                stack.extend((child, None) for child in named)
                continue
            done.add(oid)
            if oid in loose:
                order.append(oid)
                if limit is not None and len(order) >= limit:
                    return order
    return order


def pack_loose_objects(repo: pygit2.Repository, report: MaintenanceReport,
                       limit: int | None = None) -> None:
    """Pack the loose objects reachable from a ref (at most ``limit``, bottom-up, so an
    automatic pass inside a save stays short) into one new pack, then delete exactly those
    loose files. Unreachable ones (saves in flight, or garbage) stay loose."""
    loose = loose_objects(repo)
    if not loose:
        return
    reachable = loose_closure_bottom_up(repo, roots(repo), set(loose), report.damaged_objects,
                                        limit)
    if not reachable:
        return
    write_pack(repo, reachable)
    for oid in reachable:
        try:
            loose[oid].unlink()
        except FileNotFoundError:
            pass
    report.packed_objects = len(reachable)


def packs_to_merge(sizes: list[int], everything: bool = False) -> int:
    """How many of the smallest packs (``sizes`` ascending) to roll up into one so that every
    pack left is at least GEOMETRIC_FACTOR times all the packs below it (git's ``repack
    --geometric``): each object is rewritten O(log n) times over the repository's life. An
    automatic merge (not ``everything``) rewrites at most ``AUTO_MERGE_BUDGET_BYTES``."""
    if len(sizes) < 2:
        return 0
    if everything:
        return len(sizes)
    return within_budget(sizes, _geometric_count(sizes), AUTO_MERGE_BUDGET_BYTES)


def within_budget(sizes: list[int], count: int, budget: int) -> int:
    """The first ``count`` packs (``sizes`` ascending), cut back until they total at most
    ``budget`` bytes; 0 when fewer than two fit (nothing worth a merge)."""
    total = 0
    for fitting, size in enumerate(sizes[:count]):
        total += size
        if total > budget:
            count = fitting
            break
    return count if count >= 2 else 0


def _geometric_count(sizes: list[int]) -> int:
    split = len(sizes) - 1
    while split > 0 and sizes[split] >= GEOMETRIC_FACTOR * sizes[split - 1]:
        split -= 1
    total = sum(sizes[:split + 1])
    count = split + 1
    while count < len(sizes) and sizes[count] < GEOMETRIC_FACTOR * total:
        total += sizes[count]
        count += 1
    return count if count >= 2 else 0


def _mergeable_packs(repo: pygit2.Repository) -> list[Path]:
    """Packs sessionsgit may roll up, smallest first: not those a ``.keep`` file protects."""
    packs = [p for p in pack_files(repo) if not p.with_suffix(".keep").exists()]
    return sorted(packs, key=lambda p: p.stat().st_size)


def merge_packs(repo: pygit2.Repository, report: MaintenanceReport, *,
                everything: bool = False) -> None:
    """Merge the small packs into one (all packs with ``everything``), keeping every object
    they held, reachable or not. A merged pack is deleted only once the new one holds all of
    its objects."""
    packs = _mergeable_packs(repo)
    if not everything:
        packs = [p for p in packs if p.stat().st_size < AUTO_MERGE_MAX_PACK_BYTES]
    count = packs_to_merge([p.stat().st_size for p in packs], everything)
    if count == 0:
        return
    merged = packs[:count]
    contents = {pack: set(pack_object_ids(pack)) for pack in merged}
    union: set[pygit2.Oid] = set().union(*contents.values())
    concatenated = None if everything else concatenate_packs(repo, merged)
    try:
        if concatenated is not None and set(pack_object_ids(concatenated.pack)) >= union:
            written = concatenated.pack
        else:
            written = write_pack(repo, sorted(union))
        for pack, held in contents.items():
            if pack != written and held <= union:
                remove_pack(pack)
    finally:
        if concatenated is not None:
            concatenated.release()
    report.merged_packs = count


def prune(repo: pygit2.Repository, report: MaintenanceReport, grace_seconds: float) -> None:
    """Drop unreachable objects older than ``grace_seconds``: every pack is rewritten as one
    pack of what is reachable from refs, reflogs and the index; unreachable objects of packs
    younger than the grace period are kept as loose objects with the pack's age, and loose
    objects past it are deleted. Like ``git gc --prune=<date>``, a grace of 0 is unsafe
    while other processes write."""
    cutoff = time.time() - grace_seconds
    reachable = walk(repo, roots(repo, with_logs=True), within=None,
                     damaged=report.damaged_objects)
    old_packs = _mergeable_packs(repo)
    packed: dict[Path, set[pygit2.Oid]] = {p: set(pack_object_ids(p)) for p in old_packs}
    loose = loose_objects(repo)
    written = write_pack(repo, sorted(reachable)) if reachable else None
    for pack, held in packed.items():
        if pack == written:
            continue
        mtime = pack.stat().st_mtime
        for oid in held - reachable:
            if mtime >= cutoff and oid not in loose:
                _write_loose(repo, oid, mtime)
            elif mtime < cutoff:
                report.pruned_objects += 1
        remove_pack(pack)
    for oid, path in loose.items():
        try:
            if oid in reachable or path.stat().st_mtime < cutoff:
                path.unlink()
                report.pruned_objects += oid not in reachable
        except FileNotFoundError:
            pass


def _write_loose(repo: pygit2.Repository, oid: pygit2.Oid, mtime: float) -> None:
    """Write ``oid`` (read from its pack) as a loose object aged ``mtime``, flushed to disk.
    libgit2 won't: it skips writing an object any pack already holds."""
    object_type, data = repo.odb.read(oid)
    raw = _TYPE_NAMES[object_type] + b" " + str(len(data)).encode() + b"\0" + data
    hexid = str(oid)
    directory = _objects_dir(repo) / hexid[:2]
    directory.mkdir(exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix="tmp_obj_", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(zlib.compress(raw))
            handle.flush()
            os.fsync(handle.fileno())
        os.utime(temp, (mtime, mtime))
        os.replace(temp, directory / hexid[2:])
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    fsync_path(directory)


def remove_stale_keeps(repo: pygit2.Repository, older_than: float = STALE_TEMP_SECONDS) -> int:
    """Delete the ``.keep`` markers of saves a kill interrupted (ours only, by their content,
    once older than ``older_than`` seconds): the pack becomes an ordinary one, merged and,
    if its save never landed, pruned like any unreachable object. Another program's keeps
    are its business."""
    pack_dir = _objects_dir(repo) / "pack"
    cutoff = time.time() - older_than
    removed = 0
    for name in _names(pack_dir):
        if not name.endswith(".keep"):
            continue
        path = pack_dir / name
        try:
            if path.stat().st_mtime >= cutoff:
                continue
            with open(path, "rb") as handle:
                if not handle.read(len(KEEP_MARKER)) == KEEP_MARKER:
                    continue
            path.unlink()
            removed += 1
        except OSError:
            continue
    return removed


def remove_stale_temp_files(repo: pygit2.Repository, older_than: float = STALE_TEMP_SECONDS) -> int:
    """Delete temp files a killed writer or packer left (libgit2 names them ``tmp_object_git2_*``
    and ``pack_git2_*``) once they are old enough that no live process can still be writing.
    Directories may vanish meanwhile (``git prune-packed`` removes empty fan-outs)."""
    objects = _objects_dir(repo)
    cutoff = time.time() - older_than
    candidates = [objects / "pack" / name for name in _names(objects / "pack")
                  if name.startswith(("pack_git2_", "tmp_"))]
    for fanout in _names(objects):
        if len(fanout) == 2:
            candidates += [objects / fanout / name for name in _names(objects / fanout)
                           if name.startswith(("tmp_object_git2_", "tmp_obj_"))]
    removed = 0
    for path in candidates:
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def _names(directory: Path) -> list[str]:
    """The entries of a directory, none if it is gone."""
    try:
        return os.listdir(directory)
    except OSError:
        return []


def loose_ref_count(repo: pygit2.Repository) -> int:
    try:
        return sum(1 for _ in os.scandir(Path(repo.path) / "refs" / "heads" / "sessions"))
    except OSError:
        return 0


def pack_refs(repo: pygit2.Repository) -> None:
    """Fold loose refs into ``packed-refs`` so listing thousands of sessions reads one file."""
    repo.compress_references()


def maintain(repo: pygit2.Repository, *, full: bool = False, prune_after: float | None = None,
             stale_lock_seconds: float | None = None,
             object_limit: int | None = None) -> MaintenanceReport:
    """Pack reachable loose objects, merge small packs (everything into one with ``full``),
    prune unreachable objects older than ``prune_after`` seconds when given, clean up what
    killed processes left, and pack refs once many are loose. Only one process maintains a
    repository at a time; another one finding it busy skips."""
    report = MaintenanceReport()
    lock_path = Path(repo.path) / "sessionsgit-maintenance.lock"
    with open(lock_path, "a+b") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return report
        recover_stale_locks(repo.path, stale_lock_seconds)
        remove_orphan_packs(repo)
        remove_stale_keeps(repo)
        remove_stale_temp_files(repo)
        packs_before = pack_dir_stamp(repo)
        try:
            if prune_after is not None:
                prune(repo, report, prune_after)
            else:
                pack_loose_objects(repo, report, object_limit)
                merge_packs(repo, report, everything=full)
        except (FileNotFoundError, KeyError, pygit2.GitError) as exc:
            # Another program (git repack -a -d, git gc) removed a pack or object this pass was
            # reading (git drops unreachable ones): it has just done the same work, and nothing
            # was deleted before the read. Any other failure is reported.
            if not isinstance(exc, FileNotFoundError) and pack_dir_stamp(repo) == packs_before:
                raise
            logger.info("maintenance of %s stopped early: repacked meanwhile (%s)", repo.path, exc)
        if full or prune_after is not None or loose_ref_count(repo) >= LOOSE_REF_THRESHOLD:
            report.refs_packed = _pack_refs_if_free(repo, stale_lock_seconds)
    return report


def _pack_refs_if_free(repo: pygit2.Repository, stale_lock_seconds: float | None) -> bool:
    """Pack refs, waiting briefly for a live writer's ref lock; housekeeping that a busy ref
    only postpones (a locked ref would otherwise fail the whole pass). libgit2 reads every
    ref's object while packing, and a scan of the pack directory racing another process's
    merge can see neither the old pack nor the new one: such a miss is tried again."""
    for attempt in range(_PACK_REFS_ATTEMPTS):
        try:
            with_lock_retry(lambda: pack_refs(repo), 0.2, locks=stale_lock_files(repo.path),
                            stale_after=stale_lock_seconds, repo=repo)
            return True
        except RefLocked as exc:
            logger.warning("refs of %s not packed this time (a ref is locked): %s",
                           repo.path, exc)
            return False
        except pygit2.GitError as exc:
            if "not found" not in str(exc) or attempt == _PACK_REFS_ATTEMPTS - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
    return False


#: Tries of ``pack_refs`` when libgit2 misses a ref's object (see ``_pack_refs_if_free``).
_PACK_REFS_ATTEMPTS = 5
