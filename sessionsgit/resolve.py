"""Resolve a session argument: a full id, a unique id prefix (like a short Git hash) or a label,
optionally with a save after ``@`` (``SESSION@REV``), as the CLI and library callers take them."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterable

from .errors import InvalidSessionIdError, SessionNotFoundError, SessionsGitError

if TYPE_CHECKING:
    from .metadata import SessionMetadata
    from .stores.base import SessionStore
    from .stores.git import GitSessionStore

#: Shortest id prefix accepted (as Git does for abbreviated hashes); exact ids may be shorter.
MIN_PREFIX = 4
#: How many candidates an ambiguity error names before it says "and N more".
MAX_LISTED = 8


class AmbiguousSessionError(SessionsGitError, KeyError):
    """A session argument that matches more than one session (by id prefix or label)."""

    def __init__(self, argument: str, candidates: list["SessionMetadata"]) -> None:
        self.argument = argument
        self.candidates = [c.id for c in candidates]
        shown = ", ".join(_describe(c) for c in candidates[:MAX_LISTED])
        more = len(candidates) - MAX_LISTED
        if more > 0:
            shown += f", and {more} more"
        super().__init__(f"{argument!r} is ambiguous: it matches {len(candidates)} sessions: "
                         f"{shown}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def _describe(metadata: "SessionMetadata") -> str:
    return f"{metadata.id} ({metadata.label!r})" if metadata.label else metadata.id


def match_sessions(argument: str, sessions: Iterable["SessionMetadata"]) -> list["SessionMetadata"]:
    """The sessions ``argument`` names: the one with that exact id, else every session whose id
    starts with it (at least ``MIN_PREFIX`` characters) or whose label equals it."""
    by_id: dict[str, SessionMetadata] = {}
    for metadata in sessions:
        by_id.setdefault(metadata.id, metadata)
    if argument in by_id:
        return [by_id[argument]]
    found = [m for m in by_id.values()
             if m.label == argument or (len(argument) >= MIN_PREFIX and m.id.startswith(argument))]
    return sorted(found, key=lambda m: m.id)


def resolve_session(argument: str, sessions: Iterable["SessionMetadata"], *,
                    what: str = "session") -> str:
    """The one session id ``argument`` names; raises ``SessionNotFoundError`` when none does and
    ``AmbiguousSessionError`` (listing the candidates) when several do."""
    sessions = list(sessions)
    found = match_sessions(argument, sessions)
    if not found:
        raise SessionNotFoundError(argument, _not_found(argument, sessions, what))
    if len(found) > 1:
        raise AmbiguousSessionError(argument, found)
    return found[0].id


def _not_found(argument: str, sessions: list["SessionMetadata"], what: str) -> str:
    """Why nothing matched; a prefix under ``MIN_PREFIX`` that ids do start with says so."""
    message = f"no {what} matches {argument!r} (by id, id prefix or label)"
    if not argument or len(argument) >= MIN_PREFIX:
        return message
    starting = sorted({m.id for m in sessions if m.id.startswith(argument)})
    if not starting:
        return message
    shown = ", ".join(starting[:MAX_LISTED])
    more = len(starting) - MAX_LISTED
    if more > 0:
        shown += f", and {more} more"
    return (f"{message}: an id prefix needs at least {MIN_PREFIX} characters; "
            f"{_plural(len(starting), what)} start with {argument!r}: {shown}")


def _plural(count: int, noun: str) -> str:
    """``1 session``, ``2 sessions``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def resolve_id(store: "SessionStore", argument: str) -> str:
    """The id of the live session ``argument`` names in ``store``: an existing id as it is
    (read without listing the store), else a unique id prefix or an exact label."""
    with contextlib.suppress(InvalidSessionIdError):
        if store.exists(argument):
            return argument
    return resolve_session(argument, store.list())


def resolve_deleted_id(store: "GitSessionStore", argument: str) -> str:
    """The id of the deleted session ``argument`` names (id, id prefix or label) in the trash."""
    return resolve_session(argument, [d.metadata for d in store.list_deleted()],
                           what="deleted session")


def split_revision(argument: str) -> tuple[str, str | None]:
    """``SESSION@REV`` as ``(SESSION, REV)``, split at the last ``@``; ``(argument, None)`` when
    there is no ``@`` or either side would be empty. Ids may hold ``@`` (e-mail addresses), so
    ``resolve_revision`` tries the whole argument as a session first."""
    name, at, rev = argument.rpartition("@")
    if not at or not name or not rev:
        return argument, None
    return name, rev


def resolve_revision(store: "SessionStore", argument: str) -> tuple[str, str | None]:
    """``SESSION`` or ``SESSION@REV`` as ``(session id, revision or None)``: the whole argument
    when it names a session, else the part before the last ``@`` with the revision after it.
    The revision is for ``GitSessionStore.load(id, at=REV)`` / ``fork(id, at=REV)``."""
    try:
        return resolve_id(store, argument), None
    except SessionNotFoundError:
        name, rev = split_revision(argument)
        if rev is None:
            raise
        return resolve_id(store, name), rev
