"""Who commits: the GIT_* environment, else the repository's configured user, else a default."""

from __future__ import annotations

import os

import pygit2

DEFAULT_NAME = "sessionsgit"
DEFAULT_EMAIL = "sessionsgit@localhost"


def _configured(repo: pygit2.Repository, key: str) -> str | None:
    try:
        value = repo.config[key]
    except (KeyError, pygit2.GitError, OSError):
        return None
    return value or None


def signatures(repo: pygit2.Repository) -> tuple[pygit2.Signature, pygit2.Signature]:
    """(author, committer) for a new commit; works on a machine with no git identity at all."""
    name = _configured(repo, "user.name") or DEFAULT_NAME
    email = _configured(repo, "user.email") or DEFAULT_EMAIL
    author = pygit2.Signature(os.environ.get("GIT_AUTHOR_NAME") or name,
                              os.environ.get("GIT_AUTHOR_EMAIL") or email)
    committer = pygit2.Signature(os.environ.get("GIT_COMMITTER_NAME") or name,
                                 os.environ.get("GIT_COMMITTER_EMAIL") or email)
    return author, committer
