"""The Git store's trash: a deleted session's head kept under
``refs/sessions-trash/<encoded id>/<stamp>`` (every deleted version, until purged), so a delete
is a ref move that ``restore`` undoes and only ``purge`` plus ``gc(prune=...)`` makes final."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pygit2

from .. import idcodec
from ..errors import CorruptSessionError, SessionConflictError, SessionNotFoundError
from ..git.refs import RefLocked, RefMoved
from ..ids import validate_session_id
from ..metadata import SessionMetadata, now_iso

if TYPE_CHECKING:
    from .git import GitSessionStore

TRASH_PREFIX = "refs/sessions-trash/"


def trash_prefix(session_id: str) -> str:
    """The folder of refs holding a session's deleted versions (``<prefix><stamp>``)."""
    return f"{TRASH_PREFIX}{idcodec.encode(session_id)}/"


@dataclass(frozen=True)
class DeletedSession:
    """A deleted session kept recoverable under ``refs/sessions-trash/<id>/<stamp>``."""

    id: str
    ref: str
    deleted_at: str
    metadata: SessionMetadata


class Trash:
    """Delete, restore, list and purge the deleted versions of one store's sessions; every ref
    moves through the store's compare-and-swap (``GitSessionStore._move``)."""

    def __init__(self, store: GitSessionStore) -> None:
        self.store = store

    def delete(self, session_id: str) -> bool:
        from .git import session_ref, write_error
        store = self.store
        store._forget_ref(session_ref(session_id))
        store._transcripts.forget(idcodec.encode(session_id))
        head = store._head(session_id)
        if head is None:
            return False
        trash = f"{trash_prefix(session_id)}{_stamp()}"
        try:
            store._move(trash, head, None, "sessionsgit: delete")
            store._move(session_ref(session_id), None, head, "sessionsgit: delete")
        except RefMoved as exc:
            self.store.drop_ref(trash)
            raise SessionConflictError(session_id, f"session {session_id!r} changed while "
                                                   f"being deleted: {exc}") from None
        except (RefLocked, OSError, pygit2.GitError) as exc:
            self.store.drop_ref(trash)
            raise write_error(store.path, session_id, exc) from None
        return True

    def restore(self, session_id: str, ref: str | None, as_id: str | None) -> SessionMetadata:
        from .git import session_ref, write_error
        store = self.store
        new_id = session_id if as_id is None else validate_session_id(as_id)
        versions = [d for d in self.list_deleted() if d.id == session_id]
        if ref is not None:
            versions = [d for d in versions if d.ref == ref]
        if not versions:
            raise SessionNotFoundError(session_id, f"no deleted session {session_id!r} to restore")
        chosen = versions[0]
        target = store.ref_target(chosen.ref)
        if target is None:
            raise SessionNotFoundError(session_id, f"deleted version {chosen.ref} vanished "
                                                   "meanwhile (purged by another process?)")
        try:
            store._move(session_ref(new_id), target, None, "sessionsgit: restore")
        except RefMoved:
            raise SessionConflictError(
                new_id, f"a live session {new_id!r} exists; restore the deleted one under "
                        "a new id (`restore(..., as_id=NEW_ID)`, `sessionsgit restore "
                        "--as NEW_ID`)") from None
        except (RefLocked, OSError, pygit2.GitError) as exc:
            raise write_error(store.path, new_id, exc) from None
        self.store.drop_ref(chosen.ref)
        return store._metadata_at(new_id, target)  # already a fresh copy

    def list_deleted(self) -> builtins.list[DeletedSession]:
        from .git import ref_name_id
        store = self.store
        found = []
        for name, target in store.refs(TRASH_PREFIX).items():
            encoded, _, stamp = name[len(TRASH_PREFIX):].rpartition("/")
            session_id = ref_name_id(store.repo, encoded, target)
            if session_id is None:
                continue
            try:
                metadata = store._metadata_at(session_id, target)
            except CorruptSessionError:
                continue
            found.append(DeletedSession(session_id, name, _stamp_to_iso(stamp), metadata))
        found.sort(key=lambda d: d.ref.rpartition("/")[2], reverse=True)
        return found

    def purge(self, session_id: str | None) -> int:
        dropped = 0
        for deleted in self.list_deleted():
            if session_id is None or deleted.id == session_id:
                self.store.drop_ref(deleted.ref)
                dropped += 1
        return dropped


def _stamp() -> str:
    """A sortable, unique-enough name for a deleted version: UTC time in microseconds."""
    return now_iso().replace("-", "").replace(":", "").replace(".", "")


def _stamp_to_iso(stamp: str) -> str:
    if len(stamp) >= 22 and stamp[8] == "T":
        return (f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:"
                f"{stamp[13:15]}.{stamp[15:21]}Z")
    return stamp
