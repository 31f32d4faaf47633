"""Compare-and-swap ref updates. A ref moves only from the value the caller expects, so a writer
working from a stale head can never overwrite another writer's commit. libgit2 does not wait for
a ref lock held by someone else, so lock contention is retried briefly here.

A process killed while holding a ref lock leaves ``<ref>.lock`` (or ``packed-refs.lock``) behind,
which would block that ref forever. libgit2 lock files carry no PID, but a live writer holds a
ref lock for microseconds, so a lock file that is old (``STALE_LOCK_SECONDS``), owned by this
user, and unchanged when looked at again is taken to be stale: it is removed, with a warning on
the ``sessionsgit`` logger naming the file, and the update is retried."""

from __future__ import annotations

import logging
import os
import stat
import time
from pathlib import Path
from typing import Callable, Iterable, TypeVar

import pygit2

from .oserrors import access_denied
from .reffiles import parse_target, read_packed_ref, read_ref_files

#: How long an update waits for a ref lock held by another writer before giving up.
LOCK_RETRY_SECONDS = 2.0
#: A ref lock file at least this old (by mtime) is treated as left behind by a dead process.
STALE_LOCK_SECONDS = 10.0
T = TypeVar("T")

logger = logging.getLogger("sessionsgit")


class RefMoved(Exception):
    """The ref was not at the expected value (or already existed / no longer exists)."""


class RefLocked(Exception):
    """The ref stayed locked by another writer for longer than the retry window."""


def _is_lock_error(exc: BaseException) -> bool:
    """Whether a failure looks like lock contention (callers also check for the lock files
    themselves, so a change of libgit2's wording can only cost a retry, never a conflict)."""
    return isinstance(exc, OSError) or "lock" in str(exc).lower()


def _retryable(exc: BaseException, locks: list[Path]) -> bool:
    """Whether waiting may help: lock contention, not the OS refusing access (a read-only
    repository fails at once instead of after the whole retry window)."""
    if isinstance(exc, pygit2.AlreadyExistsError) or access_denied(exc):
        return False
    return _is_lock_error(exc) or any(path.exists() for path in locks)


def lock_files(repo: pygit2.Repository, name: str | None = None) -> list[Path]:
    """The lock files an update of ref ``name`` (or of ``packed-refs``) can trip over."""
    git_dir = Path(repo.path)
    files = [git_dir / (name + ".lock")] if name else []
    files.append(git_dir / "packed-refs.lock")
    return files


def remove_stale_lock(path: Path, stale_after: float | None = None) -> bool:
    """Remove ``path`` if it is a lock file left behind by a dead writer: a regular file owned
    by this user whose mtime is at least ``stale_after`` seconds old and did not change when
    checked again right before removal. Returns whether it was removed."""
    stale_after = STALE_LOCK_SECONDS if stale_after is None else stale_after
    if path.suffix != ".lock":
        return False
    try:
        first = os.lstat(path)
    except OSError:
        return False
    age = time.time() - first.st_mtime
    if not stat.S_ISREG(first.st_mode) or age < stale_after:
        return False
    if hasattr(os, "geteuid") and first.st_uid != os.geteuid():
        logger.warning("lock file %s is %.0f s old but owned by uid %d, not this "
                       "user; leaving it (remove it by hand if its writer is dead)",
                       path, age, first.st_uid)
        return False
    try:
        again = os.lstat(path)
    except OSError:
        return False
    if (again.st_ino, again.st_mtime_ns, again.st_size) != \
            (first.st_ino, first.st_mtime_ns, first.st_size):
        return False  # someone is using it after all
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False  # another process recovered it first
    except OSError as exc:
        logger.warning("cannot remove stale lock file %s: %s", path, exc)
        return False
    logger.warning("removed stale lock file %s (%.1f s old, left by a writer that "
                   "died); retrying", path, age)
    return True


def reload_refdb(repo: pygit2.Repository) -> None:
    """Drop libgit2's in-memory view of the refs. A delete that fails to lock
    ``packed-refs`` leaves the ref removed from libgit2's cached packed refs but not from the
    file; without a reload the retried delete "succeeds" as a no-op and ``list`` stops seeing a
    ref that still exists."""
    repo.set_refdb(pygit2.Refdb.open(repo))


def with_lock_retry(action: Callable[[], T], timeout: float | None = None, *,
                    locks: Iterable[Path] = (), stale_after: float | None = None,
                    repo: pygit2.Repository | None = None) -> T:
    """Run ``action``, retrying while a ref lock file is held by another writer (for at most
    ``timeout`` seconds, default ``LOCK_RETRY_SECONDS``). Any of ``locks`` found stale on the
    way (see ``remove_stale_lock``) is removed and the action retried at once. With ``repo``,
    its ref cache is reloaded after every failed attempt and before giving up."""
    timeout = LOCK_RETRY_SECONDS if timeout is None else timeout
    deadline = time.monotonic() + timeout
    delay = 0.001
    locks = list(locks)
    while True:
        try:
            return action()
        except (OSError, pygit2.GitError) as exc:
            if not _retryable(exc, locks):
                raise
            if repo is not None:
                reload_refdb(repo)
            if any(remove_stale_lock(path, stale_after) for path in locks):
                continue
            if time.monotonic() >= deadline:
                raise RefLocked(str(exc)) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def current_target(repo: pygit2.Repository, name: str, *, strict: bool = False
                   ) -> pygit2.Oid | None:
    """The commit a direct ref points at, or None when the ref does not exist (or, unless
    ``strict``, is symbolic; ``strict`` raises ValueError for a symbolic ref instead)."""
    ref = repo.references.get(name)
    if ref is None:
        return None
    if ref.type != pygit2.enums.ReferenceType.DIRECT:
        if strict:
            raise ValueError(f"{name} is a symbolic ref, not a commit")
        return None
    target = ref.target
    return target if isinstance(target, pygit2.Oid) else None


def compare_and_swap(repo: pygit2.Repository, name: str, new: pygit2.Oid,
                     expected: pygit2.Oid | None, log_message: str, *,
                     stale_after: float | None = None) -> None:
    """Point ``name`` at ``new`` only if it now points at ``expected`` (None: must not exist).
    Lock files older than ``stale_after`` seconds (default ``STALE_LOCK_SECONDS``) are
    treated as left by a dead writer and removed."""

    def attempt() -> None:
        if expected is None:
            try:
                repo.create_reference_direct(name, new, False, message=log_message)
            except pygit2.AlreadyExistsError as exc:
                raise RefMoved(f"{name} already exists") from exc
            return
        ref = repo.references.get(name)
        if ref is None or ref.type != pygit2.enums.ReferenceType.DIRECT or ref.target != expected:
            raise RefMoved(f"{name} moved")
        try:
            ref.set_target(new, log_message)
        except (pygit2.GitError, OSError) as exc:
            _raise_moved_if_moved(repo, name, expected, exc)
            raise

    with_lock_retry(attempt, locks=lock_files(repo, name), stale_after=stale_after, repo=repo)


def _raise_moved_if_moved(repo: pygit2.Repository, name: str, expected: pygit2.Oid | None,
                          exc: BaseException) -> None:
    """After a failed update, decide by the ref's state, not by libgit2's wording: if the ref no
    longer points at ``expected``, another writer moved it (``RefMoved``); otherwise the
    failure is something else (a held lock, the file system) and the caller re-raises it."""
    reload_refdb(repo)
    try:
        now = current_target(repo, name)
    except (pygit2.GitError, ValueError):
        return
    if now != expected:
        raise RefMoved(f"{name} moved") from exc


def delete_if(repo: pygit2.Repository, name: str, expected: pygit2.Oid, *,
              stale_after: float | None = None) -> None:
    """Delete ``name`` only if it still points at ``expected``."""

    def attempt() -> None:
        ref = repo.references.get(name)
        if ref is None or ref.type != pygit2.enums.ReferenceType.DIRECT or ref.target != expected:
            raise RefMoved(f"{name} moved")
        try:
            ref.delete()
        except (pygit2.GitError, OSError) as exc:
            _raise_moved_if_moved(repo, name, expected, exc)
            raise

    with_lock_retry(attempt, locks=lock_files(repo, name), stale_after=stale_after, repo=repo)


def read_refs(git_dir: str | os.PathLike[str], prefix: str = "refs/"
              ) -> tuple[dict[str, pygit2.Oid], list[str]]:
    """Every direct ref under ``prefix`` as {full name: target}, plus the names of loose ref
    files that do not read as a direct ref (truncated, garbage, symbolic); read loose-first
    (see ``reffiles``)."""
    found, unreadable = read_ref_files(git_dir, prefix)
    return {name: pygit2.Oid(hex=target) for name, target in found.items()}, unreadable


def read_ref(git_dir: str | os.PathLike[str], name: str) -> pygit2.Oid | None:
    """One direct ref, read loose first and then from ``packed-refs`` (None: absent, or not a
    direct ref)."""
    root = Path(git_dir)
    try:
        with open(root / name, "rb") as handle:
            target = parse_target(handle.read(128))
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        target = read_packed_ref(root, name)
    return pygit2.Oid(hex=target) if target is not None else None


def stale_lock_files(git_dir: str | os.PathLike[str]) -> list[Path]:
    """Every lock file sessionsgit (or git) can leave in a repository's ref store:
    ``packed-refs.lock`` and ``<ref>.lock`` anywhere under ``refs/``."""
    root = Path(git_dir)
    found = [root / "packed-refs.lock"] if (root / "packed-refs.lock").exists() else []
    # os.walk, not Path.rglob: a ref directory that another process removes meanwhile (git
    # pack-refs prunes empty ones) is skipped instead of failing the walk
    found += sorted(Path(directory) / name for directory, _dirs, names in os.walk(root / "refs")
                    for name in names if name.endswith(".lock"))
    return found


def recover_stale_locks(git_dir: str | os.PathLike[str], stale_after: float | None = None) -> int:
    """Remove every stale ref lock (see ``remove_stale_lock``) in ``git_dir``; how many."""
    return sum(remove_stale_lock(path, stale_after) for path in stale_lock_files(git_dir))
