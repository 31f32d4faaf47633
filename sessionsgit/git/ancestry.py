"""Whether one commit is in another's history: what pull and push decide every ref move by."""

from __future__ import annotations

import pygit2


def contains(repo: pygit2.Repository, newer: pygit2.Oid, older: pygit2.Oid) -> bool:
    """Whether ``older`` is a strict ancestor of ``newer`` (False if either is missing here,
    or is no commit)."""
    if newer == older or older not in repo.odb or newer not in repo.odb:
        return False
    try:
        return repo.descendant_of(newer, older)
    except (KeyError, ValueError, pygit2.GitError):
        return False
