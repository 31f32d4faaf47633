"""Moving a LangGraph thread to sessionsgit's trash, and the ref moves that needs, without
LangGraph: ``GitCheckpointSaver.delete_thread`` and the CLI's ``sessionsgit delete`` share it,
so deleting a thread either way keeps every checkpoint branch recoverable and leaves no
``refs/langgraph/`` ref or index behind."""

from __future__ import annotations

import pygit2

from ..errors import SessionConflictError, StoreError
from ..git.savepack import SavePack
from ..git import commitmeta
from ..git.identity import signatures
from ..git.refs import RefMoved, current_target, read_refs
from ..metadata import SessionMetadata, merge_metadata
from ..stores.git import GitSessionStore, session_ref
from .langgraph_refs import ThreadIndex, is_writes_ref, thread_prefix


def move_ref(store: GitSessionStore, name: str, new: pygit2.Oid,
             expected: pygit2.Oid | None) -> None:
    """Compare-and-swap ``name`` from ``expected`` to ``new`` through the store's one ref
    mover (``RefMoved`` if another writer moved or holds it)."""
    if not store.move_ref(name, new, expected, message="sessionsgit: langgraph"):
        raise RefMoved(name)


def drop_ref(store: GitSessionStore, name: str, expected: pygit2.Oid) -> None:
    """Delete ``name`` if it still names ``expected`` (moved by another writer: it holds newer
    data, so it is kept)."""
    store.move_ref(name, None, expected, message="sessionsgit: langgraph")


def thread_refs(store: GitSessionStore, thread_id: str) -> dict[str, pygit2.Oid]:
    """Every leaf and pending-writes ref of a thread: {full name: target}."""
    try:
        return read_refs(store.repo.path, thread_prefix(thread_id))[0]
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read the refs of {store.path}: {exc}") from None


def trash_thread(store: GitSessionStore, thread_id: str, index: ThreadIndex | None = None
                 ) -> bool:
    """Move a thread with LangGraph refs to the trash: the session branch gets a commit whose
    parents are its head and every other leaf, moves to ``refs/sessions-trash/``, and the
    thread's refs and index go. False (nothing done) when the session has no LangGraph refs:
    then ``store.delete`` alone is right (a plain session, or a pulled thread whose branch is
    all there is)."""
    refs = thread_refs(store, thread_id)
    if not refs:
        return False
    leaves = [oid for name, oid in refs.items() if not is_writes_ref(name)]
    head = current_target(store.repo, session_ref(thread_id))
    others = [oid for oid in dict.fromkeys(leaves) if oid != head]
    if leaves and (others or head is None):
        _tombstone(store, thread_id, head, others)
    if current_target(store.repo, session_ref(thread_id)) is not None:
        store.delete(thread_id)
    for name, oid in refs.items():
        drop_ref(store, name, oid)
    (index or ThreadIndex(store.repo.path)).forget(thread_id)
    return True


def _tombstone(store: GitSessionStore, thread_id: str, head: pygit2.Oid | None,
               others: list[pygit2.Oid]) -> None:
    """A commit on the session branch whose parents are the head and every other leaf, so
    moving the branch to the trash keeps all of them."""
    repo = store.repo
    base = head if head is not None else others[0]
    commit = repo[base]
    if not isinstance(commit, pygit2.Commit):
        raise StoreError(f"{base} in {store.path} is not a commit")
    data = commitmeta.parse(commit.raw_message) if head is not None else None
    if data is not None:
        data.pop("id", None)
        meta = SessionMetadata.from_dict(data, session_id=thread_id)
    else:
        meta = merge_metadata(thread_id, None, 0, {"provider": "langgraph"})
    subject = f"delete_thread: keeps {len(others) + (head is not None)} checkpoint branches"
    author, committer = signatures(repo)
    parents = ([head] if head is not None else []) + others
    batch = SavePack()
    tombstone = batch.commit(commit.tree_id, parents, author, committer,
                             commitmeta.compose(subject, meta))
    pack = store.publish(batch)
    try:
        move_ref(store, session_ref(thread_id), tombstone, head)
    except RefMoved:
        raise SessionConflictError(thread_id, f"thread {thread_id!r} changed while being "
                                              "deleted; try again") from None
    finally:
        pack.release()
