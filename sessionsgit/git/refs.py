"""Compare-and-swap ref updates. A ref moves only from the value the caller expects, so a writer
working from a stale head can never overwrite another writer's commit. libgit2 does not wait for
a ref lock held by someone else, so lock contention is retried briefly here."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

import pygit2

LOCK_RETRY_SECONDS = 2.0
T = TypeVar("T")


class RefMoved(Exception):
    """The ref was not at the expected value (or already existed / no longer exists)."""


class RefLocked(Exception):
    """The ref stayed locked by another writer for longer than the retry window."""


def _is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) or "lock" in str(exc).lower()


def with_lock_retry(action: Callable[[], T], timeout: float = LOCK_RETRY_SECONDS) -> T:
    """Run ``action``, retrying while a ref lock file is held by another writer."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            return action()
        except (OSError, pygit2.GitError) as exc:
            if isinstance(exc, pygit2.AlreadyExistsError) or not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise RefLocked(str(exc)) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def current_target(repo: pygit2.Repository, name: str) -> pygit2.Oid | None:
    """The commit a direct ref points at, or None when the ref does not exist."""
    ref = repo.references.get(name)
    if ref is None or ref.type != pygit2.enums.ReferenceType.DIRECT:
        return None
    return ref.target


def compare_and_swap(repo: pygit2.Repository, name: str, new: pygit2.Oid,
                     expected: pygit2.Oid | None, log_message: str) -> None:
    """Point ``name`` at ``new`` only if it now points at ``expected`` (None: must not exist)."""

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
        except pygit2.GitError as exc:
            if "does not match" in str(exc) or "modified" in str(exc):
                raise RefMoved(f"{name} moved") from exc
            raise

    with_lock_retry(attempt)


def delete_if(repo: pygit2.Repository, name: str, expected: pygit2.Oid) -> None:
    """Delete ``name`` only if it still points at ``expected``."""

    def attempt() -> None:
        ref = repo.references.get(name)
        if ref is None or ref.type != pygit2.enums.ReferenceType.DIRECT or ref.target != expected:
            raise RefMoved(f"{name} moved")
        try:
            ref.delete()
        except pygit2.GitError as exc:
            if "does not match" in str(exc) or "modified" in str(exc):
                raise RefMoved(f"{name} moved") from exc
            raise

    with_lock_retry(attempt)
