"""Refs read straight from their files, without libgit2 (so the CLI's fast paths need not
import pygit2): loose ref files first, then ``packed-refs``, as git itself reads them, so a ref
that ``pack-refs`` moves from a loose file into ``packed-refs`` meanwhile is seen in one or the
other (libgit2's iterator reads them the other way round and can miss it in both)."""

from __future__ import annotations

import os
from pathlib import Path

_HEX = frozenset(b"0123456789abcdef")


def read_ref_files(git_dir: str | os.PathLike[str], prefix: str = "refs/"
                   ) -> tuple[dict[str, str], list[str]]:
    """({full ref name: target commit hex} of every direct ref under ``prefix``, the names of
    loose ref files that do not read as a direct ref). A damaged ``packed-refs`` line raises
    ``ValueError``."""
    root = Path(git_dir)
    loose: dict[str, str] = {}
    unreadable: list[str] = []
    start = len(os.path.join(str(root), ""))  # names are sliced off paths: no pathlib per ref
    pending = [str(root / prefix.rstrip("/"))]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue
        for entry in entries:
            if entry.name.endswith(".lock"):
                continue
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
                continue
            name = entry.path[start:].replace(os.sep, "/")
            try:
                with open(entry.path, "rb") as handle:
                    target = parse_target(handle.read(128))
            except OSError:
                continue  # deleted meanwhile (or packed now): packed-refs, read next, has it
            if target is None:
                unreadable.append(name)
            else:
                loose[name] = target
    found = read_packed_ref_file(root, prefix)
    found.update(loose)
    return found, sorted(unreadable)


def read_packed_ref_file(git_dir: Path, prefix: str) -> dict[str, str]:
    """{name: target hex} of the refs under ``prefix`` in ``packed-refs`` (peeled ``^`` lines
    and comments skipped); a damaged line raises ``ValueError``."""
    try:
        data = (git_dir / "packed-refs").read_bytes()
    except OSError:
        return {}
    wanted = prefix.encode()
    found: dict[str, str] = {}
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line or line[:1] in (b"#", b"^"):
            continue
        target = parse_target(line[:40])
        if len(line) < 42 or line[40:41] != b" " or target is None:
            raise ValueError(f"packed-refs line {number} is damaged: not '<id> <name>'")
        if line[41:].startswith(wanted):
            try:
                found[line[41:].decode("utf-8")] = target
            except UnicodeDecodeError:
                raise ValueError(f"packed-refs line {number} is damaged: not UTF-8") from None
    return found


def read_packed_ref(git_dir: Path, name: str) -> str | None:
    """The target hex of one ref in ``packed-refs``, found by a byte search rather than by
    parsing every line (a repository of 10,000 sessions asks this of every new session); a
    damaged line for ``name`` raises ``ValueError``."""
    try:
        data = (git_dir / "packed-refs").read_bytes()
    except OSError:
        return None
    needle = b" " + name.encode("utf-8")
    at = data.find(needle + b"\n")
    if at < 0 and data.endswith(needle):
        at = len(data) - len(needle)
    if at < 0:
        return None
    start = data.rfind(b"\n", 0, at) + 1
    target = parse_target(data[start:at]) if at - start == 40 else None
    if target is None:
        raise ValueError(f"packed-refs line for {name} is damaged: not '<id> <name>'")
    return target


def parse_target(data: bytes) -> str | None:
    """The commit hex a loose ref file holds, or None (symbolic, truncated, garbage)."""
    text = data.strip()
    return text.decode("ascii") if len(text) == 40 and set(text) <= _HEX else None
