"""Checks behind the CLI's hints, as library functions: a sessions repository left unignored
inside a code repository's working tree, and sessions a plain ``git clone`` left under
``refs/remotes/`` where the store does not see them."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import pygit2

if TYPE_CHECKING:
    from .stores.git import GitSessionStore


def unignored_in_worktree(path: str | Path) -> tuple[Path, str] | None:
    """``(working tree, path relative to it)`` when the repository at ``path`` sits inside
    another Git repository's working tree and is not ignored there (so ``git add -A`` would
    commit it); None otherwise, or when that cannot be told."""
    where = Path(path).resolve()
    with contextlib.suppress(pygit2.GitError, ValueError, KeyError, OSError):
        found = pygit2.discover_repository(str(where.parent))
        if found is None:
            return None
        outer = pygit2.Repository(found)
        if outer.workdir is None:
            return None
        workdir = Path(outer.workdir).resolve()
        relative = where.relative_to(workdir).as_posix()
        if relative and relative != "." and not outer.path_is_ignored(relative + "/"):
            return workdir, relative
    return None


def remote_only_sessions(store: "GitSessionStore") -> dict[str, int]:
    """``{remote: count}`` of sessions under ``refs/remotes/<remote>/sessions/`` (what a plain
    ``git clone`` makes) that are not local sessions yet; remotes that sessionsgit itself
    fetches into are left out (their sessions were deleted here on purpose)."""
    found: dict[str, int] = {}
    with contextlib.suppress(pygit2.GitError, OSError):
        for name in store.repo.references:
            parts = name.split("/")
            if len(parts) >= 5 and parts[:2] == ["refs", "remotes"] and parts[3] == "sessions":
                found[parts[2]] = found.get(parts[2], 0) + 1
    if not found:
        return found
    from .sync import fetch_refspec

    for remote in list(found):
        with contextlib.suppress(KeyError, ValueError, pygit2.GitError):
            if fetch_refspec(remote) in store.repo.remotes[remote].fetch_refspecs:
                del found[remote]
    return found
