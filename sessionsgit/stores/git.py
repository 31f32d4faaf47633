"""GitSessionStore: every session a branch ``refs/heads/sessions/<id>``, every save a commit.

A save writes only what changed (one blob per new or edited message, the chunk tree holding it,
the small trees above, the commit), so it costs the same at message 5,000 as at message 10.
Forks are branches whose first commit has the fork point as parent, sharing every object.
"""

from __future__ import annotations

import builtins
import copy
import json
import logging
import os
import re
import threading
from dataclasses import dataclass, replace
from pathlib import Path
import errno
import time
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

import pygit2

from ..codec import as_message_list, detach, dumps_exact, encode_message, encode_metadata
from ..errors import (
    CorruptSessionError,
    DiskFullError,
    InvalidRevisionError,
    SessionConflictError,
    SessionNotFoundError,
    SessionsGitError,
    StoreError,
    StorePermissionError,
)
from ..git import blobcache, commitmeta, layout, listcache, packing, validate
from ..git.autopack import AutoPacker
from ..git.savepack import ObjectSink, SavePack, WrittenPack
from ..git.oserrors import access_denied
from ..git.listcache import ListCache
from ..git.transcriptcache import TranscriptCache
from ..git.identity import signatures
from ..git.refs import (STALE_LOCK_SECONDS, RefLocked, RefMoved, compare_and_swap,
                        current_target, delete_if, read_ref, read_refs, recover_stale_locks)
from .. import idcodec
from ..ids import new_session_id, validate_session_id
from ..metadata import (
    Message,
    SessionMetadata,
    StoredSession,
    fork_metadata,
    merge_metadata,
    sort_newest_first,
)
from .gittrash import DeletedSession, Trash
from .base import MUST_NOT_EXIST, ForkPoint, SessionStore, fork_slice, last_message_id

logger = logging.getLogger("sessionsgit")
#: Where the Git store can fork: what every store takes, or one exact commit of the history.
GitForkPoint = ForkPoint | pygit2.Oid
SESSION_PREFIX = "refs/heads/sessions/"
#: Metadata that rarely changes, mirrored into ``session.json`` in the tree for people browsing
#: it. Nothing that tells a fork from its parent is here, so a fork can share the parent's tree.
_TREE_FIELDS = ("provider", "model", "is_checkpoint", "checkpoint_state", "extra")


BLOB = pygit2.enums.ObjectType.BLOB


def _ref_name(session_id: str) -> str:
    """The session's branch name below ``refs/heads/sessions/``."""
    return idcodec.encode(session_id)


def session_ref(session_id: str) -> str:
    """The branch that holds a session: its id encoded as one ref component (``idcodec``)."""
    return SESSION_PREFIX + idcodec.encode(session_id)


def ref_name_id(repo: pygit2.Repository, name: str, target: pygit2.Oid) -> str | None:
    """The session id a ref component ``name`` stands for, or None when it is no id's name. A
    hashed (long-id) name is checked against the id its commit ``target`` records."""
    if not idcodec.is_hashed(name):
        return idcodec.decode(name)
    try:
        object_type, raw = repo.odb.read(target)
    except (KeyError, pygit2.GitError, ValueError):
        return None
    data = commitmeta.parse(raw) if object_type == pygit2.enums.ObjectType.COMMIT else None
    session_id = (data or {}).get("id")
    return session_id if idcodec.matches(name, session_id) else None


@dataclass(frozen=True)
class SaveRecord:
    """One save in a session's history."""

    commit: str
    time: str
    message_count: int
    label: str | None
    subject: str


@dataclass
class _Snapshot:
    """What this store instance last saw of a session: the head it will compare-and-swap from,
    the object ids of its tree, and (when known) exact copies of its messages."""

    head: pygit2.Oid
    #: None after an ``append`` (which never reads the whole tree): read when first needed
    tree: layout.TreeState | None
    metadata: SessionMetadata
    values: list[Message] | None
    #: whether ``values`` share leaves with the caller's messages (fast comparisons)
    shares_leaves: bool = False


class GitSessionStore(SessionStore):
    """Sessions in a Git repository (bare by default when created; an existing non-bare
    repository works too, its working tree and HEAD untouched).

    For speed, opening a store switches two libgit2 checks off for the whole process (git
    itself does neither): re-hashing every object read, and checking that every id put into a
    tree or commit exists. Other pygit2 code in the same process (an agent that also edits
    code repositories) is affected too; pass ``tune_libgit2=False`` to leave libgit2's
    settings alone (loads then cost about a third more)."""

    #: ``save()`` accepts ``expected_head=``: the head a caller loaded, compared and swapped.
    tracks_heads = True

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True, bare: bool = True,
                 durable: bool = False, auto_pack: bool = True,
                 pack_threshold: int = packing.LOOSE_OBJECT_THRESHOLD,
                 stale_lock_seconds: float = STALE_LOCK_SECONDS,
                 tune_libgit2: bool = True) -> None:
        self.path = Path(path)
        self.durable = durable
        #: A ref lock file this old is taken as left by a dead writer and removed (logged).
        self.stale_lock_seconds = stale_lock_seconds
        #: whether this store switched libgit2's process-wide checks off (see the class doc)
        self.tune_libgit2 = tune_libgit2
        self.repo = _open_repository(self.path, create=create, bare=bare, tune=tune_libgit2)
        self.last_damaged: builtins.list[tuple[str, str]] = []
        self._unreadable_refs: builtins.list[str] = []
        self._lock = threading.RLock()
        self._snapshots: dict[str, _Snapshot] = {}
        #: sessions this instance last saw absent: its next save creates, never overwrites
        self._seen_absent: set[str] = set()
        self._list_cache = ListCache(self.repo.path)
        self._transcripts = TranscriptCache(self.repo.path)
        self._autopack = AutoPacker(self.repo, enabled=auto_pack, threshold=pack_threshold)
        self._trash = Trash(self)

    @property
    def auto_pack(self) -> bool:
        """Whether saves pack the repository once enough loose objects piled up."""
        return self._autopack.enabled

    @auto_pack.setter
    def auto_pack(self, value: bool) -> None:
        self._autopack.enabled = value

    @property
    def pack_threshold(self) -> int:
        """Fewest objects written since the last maintenance (loose, or in the small pack
        of each save) before a save runs it again (more in a larger repository)."""
        return self._autopack.threshold

    @pack_threshold.setter
    def pack_threshold(self, value: int) -> None:
        self._autopack.threshold = value

    # ---- reading --------------------------------------------------------------------------
    def list(self) -> builtins.list[SessionMetadata]:
        """Every live session, newest first, read from head commits alone. Damaged sessions are
        left out and reported in ``last_damaged`` as (id, reason): an unreadable ref file, a
        head commit that is missing, corrupt or carries no sessionsgit metadata."""
        with self._lock:
            answer = self._list_cache.answer()
            if answer is not None:  # nothing moved since the index was written
                self.last_damaged = []
                return answer
            build = self._list_cache.begin()
            sessions: builtins.list[SessionMetadata] = []
            damaged: builtins.list[tuple[str, str]] = []
            seen: set[str] = set()
            live = list(self._refs(SESSION_PREFIX))
            self._list_cache.cover(build, (str(target) for _name, target in live))
            exists = self.repo.odb.exists
            for name, target in live:
                seen.add(name)
                session_id = ref_name_id(self.repo, name, target)
                if session_id is None:
                    damaged.append((name, "ref name is not the encoding of a session id"))
                    continue
                indexed = self._list_cache.take(target.raw)  # a head that did not move
                if indexed is not None and exists(target):
                    sessions.append(SessionMetadata(  # type: ignore[misc]
                        session_id, *indexed, head=str(target)))
                    continue
                try:
                    metadata = self._metadata_at(session_id, target)
                except CorruptSessionError as exc:
                    damaged.append((session_id, exc.reason))
                    continue
                sessions.append(metadata)
            damaged += [(idcodec.decode(name) or name,
                         "unreadable ref file (truncated, garbage or not a direct ref)")
                        for name in self._skipped_ref_files(SESSION_PREFIX, seen)]
            self.last_damaged = damaged
            sort_newest_first(sessions)
            self._list_cache.store(build, sessions,
                                   trusted=not damaged and not self._unreadable_refs)
            return sessions

    def damaged(self) -> builtins.list[tuple[str, str]]:
        """Sessions that exist but cannot be loaded, as (id, reason): what ``list()`` reports,
        plus sessions whose trees or message objects are missing or corrupt (this reads every
        session in full, so it costs what loading them all would)."""
        with self._lock:
            found = {meta.id: meta for meta in self.list()}
            damaged = list(self.last_damaged)
            for session_id, meta in found.items():
                try:
                    commit_id = pygit2.Oid(hex=meta.head or "")
                    self._read_messages(session_id, self._tree_state(session_id, commit_id).blobs,
                                        from_disk=True)
                except CorruptSessionError as exc:
                    damaged.append((session_id, exc.reason))
            return damaged

    def load(self, session_id: str, at: str | None = None) -> StoredSession | None:
        """The session's whole transcript (a fork's includes what it inherited), or the save
        named by ``at``: ``~N`` (N saves back from the head) or a commit (prefix) in its
        history."""
        validate_session_id(session_id)
        with self._lock:
            head = self._head(session_id)
            if head is None:
                self._snapshots.pop(session_id, None)  # deleted elsewhere: a save may start anew
                self._seen_absent.add(session_id)
                return None
            commit_id = head if at is None else self._resolve_in_history(session_id, head, at)
            metadata = self._metadata_at(session_id, commit_id)
            if at is not None:
                tree = self._tree_state(session_id, commit_id)
                texts = self._read_texts(session_id, tree.blobs)
                return StoredSession(_copy_metadata(metadata), self._parse(session_id, texts))
            name = _ref_name(session_id)
            hit = self._transcripts.read(name, head, metadata.message_count)
            if hit is not None and self._has_blobs(hit.blob_ids):
                # a hit vouches only for objects the repository still has
                try:
                    messages = self._parse_array(session_id, hit.json_array())
                except CorruptSessionError:  # (the CRC makes this unlikely): read the objects
                    messages = []
                if len(messages) == len(hit.blob_ids):
                    if hit.compact:
                        self._transcripts.compact(name, head, hit)
                    self._snapshots[session_id] = _Snapshot(head, None, metadata, None)
                    self._seen_absent.discard(session_id)
                    return StoredSession(_copy_metadata(metadata), messages)
            tree = self._tree_state(session_id, head)
            texts = self._read_texts(session_id, tree.blobs)
            self._transcripts.replace(name, head, texts, tree.blobs)
            self._snapshots[session_id] = _Snapshot(head, tree, metadata, None)
            self._seen_absent.discard(session_id)
            return StoredSession(_copy_metadata(metadata), self._parse(session_id, texts))

    def _has_blobs(self, blob_ids: builtins.list[bytes]) -> bool:
        """Whether the repository still has every one of these (raw) object ids."""
        exists, oid = self.repo.odb.exists, pygit2.Oid
        return all(exists(oid(raw=raw)) for raw in blob_ids)

    def exists(self, session_id: str) -> bool:
        validate_session_id(session_id)
        with self._lock:
            if self._head(session_id) is not None:
                return True
            self._seen_absent.add(session_id)  # a save must then create it, not overwrite
            return False

    def history(self, session_id: str) -> builtins.list[SaveRecord]:
        """The saves of a session along first parents, newest first (a fork's includes the
        saves it inherited)."""
        validate_session_id(session_id)
        with self._lock:
            head = self._head(session_id)
            if head is None:
                raise SessionNotFoundError(session_id)
            records = []
            try:
                walker = self.repo.walk(head, pygit2.enums.SortMode.TOPOLOGICAL)
                walker.simplify_first_parent()
                for commit in walker:
                    data = commitmeta.parse(commit.raw_message) or {}
                    records.append(SaveRecord(
                        commit=str(commit.id),
                        time=data.get("updated_at") or _commit_time(commit),
                        message_count=int(data.get("message_count") or 0),
                        label=data.get("label"),
                        subject=commitmeta.subject_of(commit.message)))
            except (KeyError, ValueError, TypeError, pygit2.GitError) as exc:
                raise CorruptSessionError(session_id,
                                          f"its history is unreadable: {exc}") from None
            return records

    # ---- writing --------------------------------------------------------------------------
    def save(self, session_id: str, messages: Sequence[Message],
             metadata: Mapping[str, Any] | SessionMetadata | None = None, *,
             expected_head: str | None = None) -> SessionMetadata:
        """Commit exactly ``messages`` as the session's new head, writing only what changed.
        Raises ``SessionConflictError`` when another writer moved the session since this store
        last loaded or saved it (including creating it after this store found it absent), or
        since ``expected_head`` (the ``head`` of the metadata the caller loaded: lets several
        callers share one store instance safely)."""
        validate_session_id(session_id)
        items = as_message_list(messages)
        with self._lock:
            if (expected_head is None and session_id in self._seen_absent
                    and session_id not in self._snapshots):
                expected_head = MUST_NOT_EXIST  # this instance's view: no such session yet
            snapshot = self._expected_snapshot(session_id, expected_head)
            old_values = self._values(session_id, snapshot)
            old_blobs = _tree(snapshot).blobs if snapshot else []
            plan = _plan_blobs(items, old_values, old_blobs)
            if snapshot is not None and not snapshot.shares_leaves:
                plan.values[:plan.unchanged_below] = [detach(m) for m in
                                                      items[:plan.unchanged_below]]
            merged = merge_metadata(session_id, snapshot.metadata if snapshot else None,
                                    len(items), metadata)
            encode_metadata(merged)
            # Everything is validated: only now are objects written.
            commit, tree = self._commit_tree(
                session_id, snapshot, plan.blobs, merged, commitmeta.save_subject(plan.values),
                plan.pending, unchanged_below=plan.unchanged_below,
                expected=snapshot.head if snapshot else None)
            self._snapshots[session_id] = _Snapshot(commit, tree, merged, plan.values, True)
            self._record_transcript(session_id, commit, snapshot, plan, len(items))
            return _copy_metadata(merged)

    def append(self, session_id: str, messages: Sequence[Message],
               metadata: Mapping[str, Any] | SessionMetadata | None = None, *,
               expected_head: str | None = None) -> SessionMetadata:
        """Add ``messages`` at the end of the session (created if missing) in one commit,
        reading only its head commit, ``messages`` tree and last chunk: the cost does not grow
        with the transcript. Without ``expected_head`` a concurrent writer's commit is built
        upon (the append is retried on top of it, so concurrent appends all land, each in its
        own order); with it, the session must still be at that head (a compare-and-swap,
        ``SessionConflictError`` otherwise)."""
        validate_session_id(session_id)
        items = as_message_list(messages)
        deadline = time.monotonic() + _APPEND_RETRY_SECONDS
        with self._lock:
            while True:
                head = self._head(session_id)
                if expected_head is not None and (head is None or str(head) != expected_head):
                    raise SessionConflictError(
                        session_id, f"session {session_id!r} is no longer at "
                                    f"{expected_head[:12]}: another writer saved it")
                try:
                    return self._append_once(session_id, head, items, metadata)
                except SessionConflictError:
                    # retry only on top of another writer's save; a held lock stays an error
                    if expected_head is not None or time.monotonic() > deadline or \
                            self._head(session_id) == head:
                        raise
                    time.sleep(0.0005)

    def _append_once(self, session_id: str, head: pygit2.Oid | None, items: builtins.list[Any],
                     metadata: Mapping[str, Any] | SessionMetadata | None) -> SessionMetadata:
        """One attempt of ``append`` on top of ``head`` (None: create the session)."""
        base = self._metadata_at(session_id, head) if head is not None else None
        try:
            root_id = _commit_object(self.repo, head).tree_id if head is not None else None
            count = layout.count_messages(self.repo, root_id)
            old_session_blob = _session_blob(self.repo, root_id)
        except (KeyError, ValueError, pygit2.GitError, layout.LayoutError) as exc:
            raise CorruptSessionError(session_id, f"unreadable tree at {head}: {exc}") from None
        encoded = [encode_message(message, count + i) for i, message in enumerate(items)]
        limit = validate.max_blob_bytes()
        for i, (data, _parsed) in enumerate(encoded):
            validate.check_size(data, limit, f"message {count + i}")
        merged = merge_metadata(session_id, base, count + len(items), metadata)
        encode_metadata(merged)
        session_json = _tree_metadata(merged)

        blobs: builtins.list[pygit2.Oid] = []

        def write_tree(sink: ObjectSink) -> pygit2.Oid:
            blobs.clear()
            for data, _parsed in encoded:
                blobs.append(sink.write(BLOB, data))
                blobcache.shared.put(blobs[-1], data)
            session_blob = pygit2.hash(session_json)
            if session_blob != old_session_blob:  # unchanged: the head's tree holds it (as save)
                session_blob = sink.write(BLOB, session_json)
            return layout.append_state(self.repo, sink, root_id, blobs, session_blob)

        subject = (commitmeta.save_subject([parsed for _data, parsed in encoded]) if encoded
                   else "metadata")
        commit = self._commit(session_id, head, write_tree, merged, subject, expected=head)
        self._snapshots[session_id] = _Snapshot(commit, None, merged, None)  # tree read lazily
        datas = [data for data, _parsed in encoded]
        if head is None:
            self._transcripts.replace(_ref_name(session_id), commit, datas, blobs)
        else:
            self._transcripts.add(_ref_name(session_id), commit, head, count, datas, blobs)
        return _copy_metadata(merged)

    def rename(self, session_id: str, label: str | None) -> SessionMetadata:
        """A new commit with the same tree and the new label, so the history shows the rename."""
        validate_session_id(session_id)
        with self._lock:
            snapshot = self._expected_snapshot(session_id)
            if snapshot is None:
                raise SessionNotFoundError(session_id)
            tree = _tree(snapshot)
            merged = merge_metadata(session_id, snapshot.metadata, len(tree.blobs),
                                    {"label": label})
            encode_metadata(merged)
            subject = f"rename: {label}" if label else "rename: (no label)"
            root = tree.root
            assert root is not None
            commit = self._commit(session_id, snapshot.head, lambda _sink: root,
                                  merged, subject, expected=snapshot.head)
            self._snapshots[session_id] = _Snapshot(commit, snapshot.tree, merged, snapshot.values)
            self._transcripts.add(_ref_name(session_id), commit, snapshot.head,
                                  len(tree.blobs), [], [])
            return _copy_metadata(merged)

    # ---- the trash (``gittrash``) -------------------------------------------------------------
    def delete(self, session_id: str) -> bool:
        """Remove the session's branch, keeping its head under ``refs/sessions-trash/`` so
        ``restore()`` can bring it back (every deleted version, until ``purge()``)."""
        validate_session_id(session_id)
        with self._lock:
            return self._trash.delete(session_id)

    def restore(self, session_id: str, ref: str | None = None, *,
                as_id: str | None = None) -> SessionMetadata:
        """Bring back the most recently deleted version of a session (or the trash ``ref``
        given), under its id or as the new id ``as_id``. Fails with ``SessionConflictError``
        if a live session has the id it would take."""
        validate_session_id(session_id)
        with self._lock:
            return self._trash.restore(session_id, ref, as_id)

    def list_deleted(self) -> builtins.list[DeletedSession]:
        """Deleted sessions still recoverable, newest deletion first."""
        with self._lock:
            return self._trash.list_deleted()

    def purge(self, session_id: str | None = None) -> int:
        """Forget deleted sessions (all, or one id's versions); ``gc(prune=...)`` after then
        deletes their data for good and reclaims the space. Returns how many deleted versions
        were dropped."""
        if session_id is not None:
            validate_session_id(session_id)
        with self._lock:
            return self._trash.purge(session_id)

    def fork(self, parent_id: str, new_id: str | None = None, *, at: GitForkPoint = None,
             detached: bool = False, metadata: Mapping[str, Any] | None = None) -> str:
        """A new branch whose first commit has the fork point as parent and shares every
        object with it. ``at`` is a message count, a message id, ``~N`` (N saves back from the
        parent's head) or a commit (prefix) in the parent's history (a message id wins), or a
        ``pygit2.Oid``: exactly that commit of the parent's history."""
        validate_session_id(parent_id)
        child_id = validate_session_id(new_id) if new_id is not None else new_session_id()
        with self._lock:
            parent_head = self._head(parent_id)
            if parent_head is None:
                raise SessionNotFoundError(parent_id)
            if self._head(child_id) is not None:
                raise SessionConflictError(child_id, f"session {child_id!r} already exists")
            known = self._snapshots.get(parent_id)
            if known is not None and known.head == parent_head and known.tree is not None:
                parent_meta, parent_tree = known.metadata, known.tree
            else:
                parent_meta = self._metadata_at(parent_id, parent_head)
                parent_tree = self._tree_state(parent_id, parent_head)
            fork_commit: pygit2.Oid | None
            fork_commit, fork_tree, keep, values = self._fork_point(
                parent_id, parent_head, parent_tree, at)
            if detached:
                keep, fork_commit, fork_tree, values = 0, None, layout.TreeState(), []
            inherited_last = self._message_id_at(parent_id, fork_tree.blobs, keep)
            given = fork_metadata(parent_meta, child_id, detached=detached,
                                  fork_message_id=None if detached else inherited_last,
                                  given=metadata)
            merged = merge_metadata(child_id, None, keep, given)
            encode_metadata(merged)
            kept_blobs = fork_tree.blobs[:keep]
            snapshot = _Snapshot(fork_commit, fork_tree, parent_meta, None) if fork_commit else None
            subject = (f"fork of {parent_id} (detached)" if detached
                       else f"fork of {parent_id} at {keep} messages")
            commit, tree = self._commit_tree(child_id, snapshot, kept_blobs, merged, subject, [],
                                             unchanged_below=keep, expected=None)
            self._snapshots[child_id] = _Snapshot(
                commit, tree, merged, values[:keep] if values is not None else None)
            return child_id

    def gc(self, *, merge_packs: bool = True, prune: float | None = None) -> dict[str, int]:
        """Pack loose objects and refs now, and with ``merge_packs`` roll every pack into one,
        with deltas (saves write a small pack each and roll them up automatically, without).
        ``prune`` (seconds, like git's ``gc.pruneExpire``) also drops unreachable objects older than that, such as sessions
        ``purge()`` forgot: they are then gone for good. ``prune=0`` is unsafe while another
        process saves, as ``git gc --prune=now`` is."""
        if prune is not None and (isinstance(prune, bool) or not prune >= 0):
            raise ValueError(f"prune must be a number of seconds >= 0, not {prune!r}")
        with self._lock:
            try:
                report = self._maintain(full=merge_packs, prune_after=prune)
            except (OSError, pygit2.GitError, ValueError) as exc:
                raise _store_error(f"cannot pack {self.path}", exc) from None
            self._autopack.packed()
            self._after_repack()
            for damaged in report.damaged_objects:
                logger.warning("gc of %s left an unreadable object alone: %s", self.path, damaged)
            return report.as_dict()

    def close(self) -> None:
        """Release the repository; any later call raises ``StoreError``. Idempotent."""
        with self._lock:
            self._snapshots.clear()
            if not isinstance(self.repo, _ClosedRepository):
                self.repo.free()
                self.repo = _ClosedRepository(self.path)  # type: ignore[assignment]

    def _record_transcript(self, session_id: str, commit: pygit2.Oid,
                           snapshot: _Snapshot | None, plan: _SavePlan, count: int) -> None:
        """Tell the transcript cache about a save that created a session or only appended to
        it (any other save is a miss there, and the next load rebuilds the cache)."""
        name = _ref_name(session_id)
        written = [data for _index, data in plan.pending]
        ids = [plan.blobs[index] for index, _data in plan.pending]
        if snapshot is None:
            if len(written) == count:
                self._transcripts.replace(name, commit, written, ids)
            return
        before = len(_tree(snapshot).blobs)
        if plan.unchanged_below == before and len(written) == count - before:
            self._transcripts.add(name, commit, snapshot.head, before, written, ids)

    # ---- internals: commits ----------------------------------------------------------------
    def _commit_tree(self, session_id: str, snapshot: _Snapshot | None, blobs: builtins.list[Any],
                     metadata: SessionMetadata, subject: str, pending: builtins.list[tuple[int, bytes]],
                     *, unchanged_below: int, expected: pygit2.Oid | None
                     ) -> tuple[pygit2.Oid, layout.TreeState]:
        """Write the ``pending`` (index, bytes) message blobs into ``blobs`` and the trees
        above them, and commit them onto the session's branch."""
        session_json = _tree_metadata(metadata)
        trees: builtins.list[layout.TreeState] = []

        def write_tree(sink: ObjectSink) -> pygit2.Oid:
            for index, data in pending:
                blobs[index] = sink.write(BLOB, data)
                blobcache.shared.put(blobs[index], data)
            session_blob = pygit2.hash(session_json)
            if snapshot is None or _tree(snapshot).session_blob != session_blob:
                session_blob = sink.write(BLOB, session_json)
            tree = layout.write_state(sink, blobs, session_blob,
                                      snapshot.tree if snapshot else None, unchanged_below)
            trees[:] = [tree]
            assert tree.root is not None
            return tree.root

        parent = snapshot.head if snapshot else None
        commit = self._commit(session_id, parent, write_tree, metadata, subject,
                              expected=expected)
        return commit, trees[0]

    def _commit(self, session_id: str, parent: pygit2.Oid | None,
                write_tree: Callable[[ObjectSink], pygit2.Oid],
                metadata: SessionMetadata, subject: str, *, expected: pygit2.Oid | None
                ) -> pygit2.Oid:
        """The one place a session commit is made: write its objects (``write_tree`` puts the
        trees and blobs into the sink it is given and returns the root tree) as one pack, then
        move the branch by compare-and-swap from ``expected`` (the parent, unless a fork says
        the branch must not exist yet), then make sure that what the branch now names still
        exists."""
        author, committer = signatures(self.repo)
        message = commitmeta.compose(subject, metadata)
        parents = [parent] if parent is not None else []

        def write() -> tuple[pygit2.Oid, WrittenPack]:
            batch = SavePack()
            commit = batch.commit(write_tree(batch), parents, author, committer, message)
            return commit, batch.publish(self.repo.path, durable=self.durable)

        commit, pack = _retry_object_writes(self.path, session_id, write)
        try:
            self._move(session_ref(session_id), commit, expected, "sessionsgit: save")
        except RefMoved:
            raise SessionConflictError(session_id) from None
        except (RefLocked, OSError, pygit2.GitError) as exc:
            raise write_error(self.path, session_id, exc) from None
        finally:
            pack.release()
        self._seen_absent.discard(session_id)
        self._ensure_present(session_id, commit, pack, write)
        metadata.head = str(commit)
        self._list_cache.put(commit.raw, metadata)
        self._after_write(objects=pack.objects, packs=1)
        return commit

    def _ensure_present(self, session_id: str, commit: pygit2.Oid, pack: WrittenPack,
                        write: Callable[[], tuple[pygit2.Oid, WrittenPack]]) -> None:
        """The save's pack is kept (``.keep``) from repacks until its branch moved; a repack
        after that keeps its objects (they are reachable), but a ``git gc --prune=now`` or
        ``git repack -a -d`` racing the release can still lose them. If they are gone they
        are written again (same bytes, same ids): a save never reports success for a head
        that cannot be read."""
        for _attempt in range(3):
            if pack.present() or _on_disk(self.repo, commit):
                return
            logger.warning("objects of the new save of %r were deleted by a concurrent prune; "
                           "writing them again", session_id)
            again, pack = _retry_object_writes(self.path, session_id, write)
            pack.release()
            if again != commit:
                break
        if not _on_disk(self.repo, commit):
            raise StoreError(f"the save of session {session_id!r} was deleted by a concurrent "
                             "'git gc --prune=now' and could not be written again; its branch "
                             f"names the missing commit {commit}")

    def _after_write(self, *, objects: int = 0, packs: int = 0) -> None:
        """Count what a write added (``objects``, loose or in the ``packs`` small packs it
        wrote) and run automatic maintenance once enough piled up."""
        if self._autopack.repacked_elsewhere(self.repo):
            self._after_repack()
        if self._autopack.wrote(objects=objects, packs=packs):
            try:
                self._maintain(object_limit=packing.AUTO_PACK_OBJECT_LIMIT)
                self._after_repack()
            except (OSError, pygit2.GitError, ValueError) as exc:
                # The save is committed; packing is housekeeping and must not fail it.
                logger.warning("automatic packing of %s skipped: %s", self.path, exc)

    def _after_repack(self) -> None:
        """Reopen the repository once packs were merged or removed: libgit2 keeps searching
        every pack it ever loaded, deleted ones included, so each object write (which first
        looks the object up) would grow slower with every merge."""
        self.repo.free()
        self.repo = _open_repository(self.path, create=False, bare=True,
                                     tune=self.tune_libgit2)
        self._autopack.saw_packs(self.repo)

    def _maintain(self, *, full: bool = False, prune_after: float | None = None,
                  object_limit: int | None = None) -> packing.MaintenanceReport:
        return packing.maintain(self.repo, full=full, prune_after=prune_after,
                                stale_lock_seconds=self.stale_lock_seconds,
                                object_limit=object_limit)

    # ---- internals: reading ----------------------------------------------------------------
    def _refs(self, prefix: str) -> Iterator[tuple[str, pygit2.Oid]]:
        """(name below prefix, target) of every direct ref under ``prefix``, read loose refs
        first so a concurrent ``pack-refs`` can't hide one."""
        try:
            found, unreadable = read_refs(self.repo.path, prefix)
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read the refs of {self.path}: {exc}") from None
        self._unreadable_refs = [name[len(prefix):] for name in unreadable]
        for name, target in found.items():
            yield name[len(prefix):], target

    def _skipped_ref_files(self, prefix: str, seen: set[str]) -> builtins.list[str]:
        """Loose ref files under ``prefix`` (as read by the last ``_refs``) that do not read as
        a direct ref: truncated, garbage or symbolic, each a damaged session to report. One a
        concurrent writer rewrote meanwhile reads fine when looked at again."""
        skipped = []
        for name in self._unreadable_refs:
            if name in seen:
                continue
            try:
                if current_target(self.repo, prefix + name, strict=True) is not None:
                    continue
            except (pygit2.GitError, ValueError):
                pass
            if (Path(self.repo.path) / prefix / name).is_file():
                skipped.append(name)
        return skipped

    def _head(self, session_id: str) -> pygit2.Oid | None:
        """The session's head commit, or None. "None" is checked loose-first (as ``list()``
        reads refs), since libgit2 can miss a ref that ``pack-refs`` is moving meanwhile."""
        name = session_ref(session_id)
        try:
            head = current_target(self.repo, name, strict=True)
        except (pygit2.GitError, ValueError) as exc:
            raise CorruptSessionError(session_id, f"unreadable ref: {exc}") from None
        if head is None:
            try:
                head = read_ref(self.repo.path, name)
            except (OSError, ValueError) as exc:
                raise StoreError(f"cannot read the refs of {self.path}: {exc}") from None
        return head

    def _expected_snapshot(self, session_id: str,
                           expected_head: str | None = None) -> _Snapshot | None:
        """What a write to the session must start from: the head the caller says it built on
        (``expected_head``), else this instance's last view of it; either must still be the
        branch head. A session the instance never touched starts from its current head."""
        head = self._head(session_id)
        snapshot = self._snapshots.get(session_id)
        if expected_head == MUST_NOT_EXIST:
            if head is not None:
                raise SessionConflictError(session_id, f"session {session_id!r} was created "
                                                       "by another writer meanwhile")
            return None
        if expected_head is not None:
            if head is None or str(head) != expected_head:
                raise SessionConflictError(
                    session_id, f"session {session_id!r} is no longer at {expected_head[:12]}: "
                                "another writer saved it; load it again")
            if snapshot is not None and snapshot.head != head:
                snapshot = None
        if snapshot is not None:
            if snapshot.head != head:
                raise SessionConflictError(
                    session_id, f"session {session_id!r} was changed by another writer since "
                                "this store last read it; load it again")
            if snapshot.tree is None:
                snapshot.tree = self._tree_state(session_id, head)
            return snapshot
        if head is None:
            return None
        snapshot = _Snapshot(head, self._tree_state(session_id, head),
                             self._metadata_at(session_id, head), None)
        self._snapshots[session_id] = snapshot
        return snapshot

    def _metadata_at(self, session_id: str, commit_id: pygit2.Oid) -> SessionMetadata:
        """A fresh copy of the metadata a head commit carries (cached by commit id)."""
        cached = self._list_cache.get(commit_id.raw)
        if cached is not None and self.repo.odb.exists(commit_id):  # never vouch for lost data
            return listcache.build(session_id, str(commit_id), cached)
        try:
            object_type, raw = self._read_retrying(lambda: self.repo.odb.read(commit_id))
        except (KeyError, pygit2.GitError, ValueError) as exc:
            raise CorruptSessionError(session_id, f"missing commit {commit_id}: {exc}") from None
        if object_type != pygit2.enums.ObjectType.COMMIT:
            raise CorruptSessionError(session_id, f"{commit_id} is not a commit")
        data = commitmeta.parse(raw)
        if data is None:
            raise CorruptSessionError(session_id, f"commit {commit_id} carries no sessionsgit "
                                                  "metadata (made by hand?)")
        data.pop("id", None)
        try:
            metadata = SessionMetadata.from_dict(data, session_id=session_id, head=str(commit_id))
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise CorruptSessionError(session_id, f"bad metadata in {commit_id}: {exc}") from None
        self._list_cache.put(commit_id.raw, metadata)
        return metadata

    def _read_retrying(self, read: Callable[[], _T]) -> _T:
        """``read()``, tried once more on a fresh view of the repository if it fails while
        packs changed under it: a concurrent ``git repack -d`` or gc can delete the pack
        libgit2 found an object in before it read the object (now in a new pack)."""
        try:
            return read()
        except (KeyError, pygit2.GitError, ValueError, OSError, layout.LayoutError):
            if not self._autopack.repacked_elsewhere(self.repo):
                raise
        self._after_repack()
        return read()

    def _tree_state(self, session_id: str, commit_id: pygit2.Oid) -> layout.TreeState:
        try:
            return self._read_retrying(lambda: layout.read_state(
                self.repo, _commit_object(self.repo, commit_id).tree_id))
        except (KeyError, pygit2.GitError, ValueError, layout.LayoutError) as exc:
            raise CorruptSessionError(session_id, f"unreadable tree at {commit_id}: {exc}") from None

    def _read_messages(self, session_id: str, blobs: builtins.list[pygit2.Oid], *,
                       from_disk: bool = False) -> builtins.list[Message]:
        """Every message blob, parsed in one JSON pass (``from_disk``: bypassing the process's
        blob cache, to check the repository itself)."""
        return self._parse(session_id, self._read_texts(session_id, blobs, from_disk=from_disk))

    def _read_texts(self, session_id: str, blobs: builtins.list[pygit2.Oid], *,
                    from_disk: bool = False) -> builtins.list[bytes]:
        """The stored bytes of every message blob."""
        limit = validate.max_blob_bytes()

        def read_all() -> builtins.list[bytes]:
            odb = self.repo.odb
            if from_disk:
                return [validate.read_blob(odb, blob, limit) for blob in blobs]
            return blobcache.shared.read_all(blobs, lambda blob: validate.read_blob(odb, blob,
                                                                                    limit))

        try:
            return self._read_retrying(read_all)
        except (KeyError, pygit2.GitError, ValueError) as exc:
            raise CorruptSessionError(session_id, f"missing message object: {exc}") from None
        except validate.Invalid as exc:
            raise CorruptSessionError(session_id, f"a message {exc}") from None

    def _parse(self, session_id: str, texts: builtins.list[bytes]) -> builtins.list[Message]:
        """Stored messages, parsed in one JSON pass."""
        return self._parse_array(session_id, b"[" + b",".join(texts) + b"]")

    def _parse_array(self, session_id: str, array: bytes) -> builtins.list[Message]:
        """Stored messages joined as one JSON array, parsed in one pass."""
        try:
            messages = json.loads(array)
        except (ValueError, RecursionError) as exc:
            raise CorruptSessionError(session_id, f"a message is not valid JSON: {exc}") from None
        if not all(isinstance(m, dict) for m in messages):
            raise CorruptSessionError(session_id, "a stored message is not a JSON object")
        return messages

    def _values(self, session_id: str, snapshot: _Snapshot | None) -> builtins.list[Message]:
        """Exact copies of the stored messages, read once per snapshot when not yet known."""
        if snapshot is None:
            return []
        if snapshot.values is None:
            snapshot.values = self._read_messages(session_id, _tree(snapshot).blobs)
        return snapshot.values

    def _resolve_in_history(self, session_id: str, head: pygit2.Oid, rev: str) -> pygit2.Oid:
        """A save of the session: ``~N`` / ``^`` (N saves back from its head, along first
        parents) or a commit-ish (a commit id or unique prefix) in its history."""
        if not isinstance(rev, str) or not rev:
            raise InvalidRevisionError(f"revision must be a non-empty string, not {rev!r}")
        relative = _RELATIVE_REV.fullmatch(rev)
        if relative is not None:
            back = len(relative.group(2)) if relative.group(2) else int(relative.group(1) or 1)
            commit, saves = self.repo[head].peel(pygit2.Commit), 1
            while saves <= back:
                if not commit.parent_ids:
                    raise InvalidRevisionError(f"{rev!r} goes back further than the "
                                               f"{saves} save{'s' if saves != 1 else ''} of "
                                               f"session {session_id!r}")
                try:
                    commit = self.repo[commit.parent_ids[0]].peel(pygit2.Commit)
                    saves += 1
                except (KeyError, ValueError, pygit2.GitError):
                    raise CorruptSessionError(
                        session_id, f"the save {saves} back from its head, commit "
                                    f"{commit.parent_ids[0]}, is missing or unreadable") from None
            return commit.id
        try:
            target = self.repo.revparse_single(rev).peel(pygit2.Commit).id
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError) as exc:
            why = "is an ambiguous commit prefix" if "ambiguous" in str(exc).lower() else \
                "names no save"
            raise InvalidRevisionError(f"{rev!r} {why} of session {session_id!r}") from None
        if target != head and not self.repo.descendant_of(head, target):
            raise InvalidRevisionError(f"{rev!r} is not in the history of session {session_id!r}")
        return target

    def _fork_point(self, parent_id: str, head: pygit2.Oid, tree: layout.TreeState,
                    at: GitForkPoint) -> tuple[pygit2.Oid, layout.TreeState, int, builtins.list[Message] | None]:
        """(fork-point commit, its tree, messages kept, their values when known)."""
        snapshot = self._snapshots.get(parent_id)
        values = snapshot.values if snapshot is not None and snapshot.head == head else None
        if at is None:
            return head, tree, len(tree.blobs), values
        if isinstance(at, pygit2.Oid):
            commit_id = self._resolve_in_history(parent_id, head, str(at))
            fork_tree = self._tree_state(parent_id, commit_id)
            return commit_id, fork_tree, len(fork_tree.blobs), values if commit_id == head else None
        if isinstance(at, str):
            messages = values if values is not None else self._read_messages(parent_id, tree.blobs)
            found = fork_slice(messages, at)
            if found is None:
                commit_id = self._resolve_in_history(parent_id, head, at)
                fork_tree = self._tree_state(parent_id, commit_id)
                return commit_id, fork_tree, len(fork_tree.blobs), None
            keep, values = found, messages
        else:
            keep = fork_slice([{}] * len(tree.blobs), at) or 0  # an int: a count, always found
        return self._earliest_save_with(parent_id, head, tree, keep), tree, keep, values

    def _earliest_save_with(self, session_id: str, head: pygit2.Oid, tree: layout.TreeState,
                            keep: int) -> pygit2.Oid:
        """The save in the parent's history whose transcript is exactly its first ``keep``
        messages, so ``git merge-base`` finds the real fork point; else the head."""
        if keep == len(tree.blobs):
            return head
        commit = self.repo[head].peel(pygit2.Commit)
        while commit.parent_ids:
            try:
                commit = self.repo[commit.parent_ids[0]].peel(pygit2.Commit)
            except (KeyError, ValueError, pygit2.GitError):
                break  # an unreadable earlier save: fork from the head's tree instead
            data = commitmeta.parse(commit.raw_message) or {}
            count = data.get("message_count")
            if not isinstance(count, int) or count < keep:
                break
            if count == keep:
                try:
                    earlier = self._tree_state(session_id, commit.id)
                except CorruptSessionError:
                    break
                if earlier.blobs == tree.blobs[:keep]:
                    return commit.id
                break
        return head

    def _message_id_at(self, session_id: str, blobs: builtins.list[pygit2.Oid], keep: int) -> str | None:
        if keep == 0:
            return None
        return last_message_id(self._read_messages(session_id, [blobs[keep - 1]]))

    def search(self, query: str, *, limit: int = 20, session: str | None = None,
               role: str | None = None, since: Any = None, all_history: bool = False,
               progress: Callable[[int, int], None] | None = None) -> builtins.list[Any]:
        """Messages matching ``query`` (words and ``"phrases"``, case-insensitive), best
        first, as ``sessionsgit.search.SearchHit``; through an index cached under the git dir
        and brought up to date from the heads that moved. ``all_history`` also searches
        earlier saves and deleted sessions."""
        from ..search import search_git
        return search_git(self, query, limit=limit, session=session, role=role, since=since,
                          all_history=all_history, progress=progress)

    # ---- refs: the compare-and-swap primitives sync and integrations use ---------------------
    def refs(self, prefix: str) -> dict[str, pygit2.Oid]:
        """{full ref name: target} of the direct refs under ``prefix``, loose refs read first so
        a concurrent ``pack-refs`` hides none."""
        with self._lock:
            return {prefix + name: target for name, target in self._refs(prefix)}

    def ref_target(self, name: str) -> pygit2.Oid | None:
        """What the direct ref ``name`` names now, or None when there is no such ref."""
        try:
            return current_target(self.repo, name) or read_ref(self.repo.path, name)
        except (OSError, ValueError, pygit2.GitError) as exc:
            raise StoreError(f"cannot read ref {name} of {self.path}: {exc}") from None

    def move_ref(self, name: str, new: pygit2.Oid | None, expected: pygit2.Oid | None, *,
                 message: str = "sessionsgit: move ref") -> bool:
        """Compare-and-swap one ref: point ``name`` at ``new`` (delete it when ``new`` is None)
        only while it names ``expected`` (None: only while it does not exist). Returns False,
        changing nothing, when another writer moved the ref or holds its lock. Honours
        ``durable`` and ``stale_lock_seconds``; a session ref must name a commit here."""
        if name.startswith(SESSION_PREFIX) and new is not None:
            try:
                _commit_object(self.repo, new)  # a branch never names a missing object
            except (KeyError, ValueError, pygit2.GitError):
                raise StoreError(f"cannot point {name} at {new}: no such commit in "
                                 f"{self.path}") from None
        if new is None and expected is None:
            return self.ref_target(name) is None
        with self._lock:
            self._forget_ref(name)
            try:
                self._move(name, new, expected, message)
            except (RefMoved, RefLocked):
                return False
            except (OSError, pygit2.GitError) as exc:
                raise _store_error(f"moving ref {name}", exc, self.path) from None
            return True

    def _move(self, name: str, new: pygit2.Oid | None, expected: pygit2.Oid | None,
              message: str) -> None:
        """The one place refs move: compare-and-swap (``new`` None deletes from ``expected``),
        stale locks recovered, the ref file synced when ``durable``. Raises ``RefMoved`` /
        ``RefLocked`` for a conflict, ``OSError``/``GitError`` for the rest."""
        if new is None:
            assert expected is not None, "a delete names what it deletes"
            delete_if(self.repo, name, expected, stale_after=self.stale_lock_seconds)
            return
        compare_and_swap(self.repo, name, new, expected, message,
                         stale_after=self.stale_lock_seconds)
        if self.durable:
            _fsync_path(Path(self.repo.path) / name)

    def drop_ref(self, name: str) -> None:
        """Delete ``name`` whatever it names now (absent already is fine); a writer moving it
        meanwhile keeps it."""
        target = self.ref_target(name)
        if target is not None:
            self.move_ref(name, None, target, message="sessionsgit: drop ref")

    def recover_stale_locks(self) -> int:
        """Remove ref lock files a killed writer left (older than ``stale_lock_seconds`` and
        unchanged when looked at again); returns how many."""
        return recover_stale_locks(self.repo.path, self.stale_lock_seconds)

    def _forget_ref(self, name: str) -> None:
        """Drop this instance's view of the session whose branch ``name`` is about to move
        (the caches keyed by commit can't go stale and stay)."""
        if name.startswith(SESSION_PREFIX):
            encoded = name[len(SESSION_PREFIX):]
            for session_id in [s for s in self._snapshots if _ref_name(s) == encoded]:
                del self._snapshots[session_id]
            self._seen_absent = {s for s in self._seen_absent if _ref_name(s) != encoded}

    def head_metadata(self, session_id: str) -> SessionMetadata | None:
        """The metadata of a session's head commit alone (no tree or message is read), or None
        when there is no such session: a cheap look at ``head`` and ``extra`` before a write."""
        validate_session_id(session_id)
        with self._lock:
            head = self._head(session_id)
            return None if head is None else self._metadata_at(session_id, head)

    def publish(self, batch: SavePack) -> WrittenPack:
        """Write ``batch`` (objects an integration built, such as its own commits) into the
        repository as one pack, flushed to disk when ``durable``, and count it for automatic
        maintenance. Move the refs that name its objects, then call ``release()`` on the
        result: until then repacks leave the pack alone."""
        with self._lock:
            try:
                written = batch.publish(self.repo.path, durable=self.durable)
            except OSError as exc:
                raise _store_error(f"cannot write objects into {self.path}", exc,
                                   self.path) from None
            self._after_write(objects=written.objects, packs=1)
            return written


# ---- module helpers ---------------------------------------------------------------------
def _tree(snapshot: _Snapshot) -> layout.TreeState:
    """A snapshot's tree, known once ``_expected_snapshot`` has vetted it."""
    assert snapshot.tree is not None, "tree not read yet"
    return snapshot.tree


def _session_blob(repo: pygit2.Repository, root_id: pygit2.Oid | None) -> pygit2.Oid | None:
    """The ``session.json`` blob of a save's tree (None: no tree, or none in it)."""
    if root_id is None:
        return None
    root = layout.tree_at(repo, root_id)
    return root[layout.SESSION_FILE].id if layout.SESSION_FILE in root else None


def _commit_object(repo: pygit2.Repository, oid: pygit2.Oid) -> pygit2.Commit:
    """The commit ``oid`` names (``ValueError`` when it is another kind of object)."""
    found = repo[oid]
    if not isinstance(found, pygit2.Commit):
        raise ValueError(f"{oid} is not a commit")
    return found


_T = TypeVar("_T")
#: Attempts at writing a save's objects when the file system fails transiently (a fan-out
#: directory removed by ``git prune-packed`` between libgit2's mkdir and rename).
_OBJECT_WRITE_ATTEMPTS = 5
#: How long ``append`` keeps building on top of concurrent writers' commits before giving up.
_APPEND_RETRY_SECONDS = 30.0
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


#: ``~``, ``~N`` or ``^``, ``^^``...: saves back from a session's head.
_RELATIVE_REV = re.compile(r"~(\d*)|(\^+)")


def _store_error(context: str, exc: BaseException, path: Path | None = None) -> StoreError:
    """The typed error for an OS or libgit2 failure, naming its real cause: permission denied
    (``StorePermissionError``), a full disk (``DiskFullError``), else ``StoreError``."""
    text = " ".join(str(exc).split())
    if access_denied(exc):
        return StorePermissionError(
            f"permission denied writing to {path or context}: {text}; this user cannot write "
            "there (a read-only repository or file system, or files of another user): fix the "
            "permissions, or work on a copy you can write")
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL or \
            "no space left" in text.lower() or "quota exceeded" in text.lower():
        return DiskFullError(f"{context}: the disk is full ({text}); nothing was changed, free "
                             "some space and try again")
    return StoreError(f"{context}: {text}")


def _retry_object_writes(path: Path, session_id: str, write: Callable[[], _T]) -> _T:
    """Run ``write`` (which only adds content-addressed objects, so it is safe to repeat),
    retrying transient file-system failures; a full disk or a lasting failure is a typed error."""
    for attempt in range(_OBJECT_WRITE_ATTEMPTS):
        try:
            return write()
        except (OSError, pygit2.GitError) as exc:
            error = _store_error(f"cannot write the save of session {session_id!r}", exc, path)
            if type(error) is not StoreError or attempt == _OBJECT_WRITE_ATTEMPTS - 1:
                raise error from None
            time.sleep(0.001 * 2 ** attempt)
    raise AssertionError("unreachable")


class _ClosedRepository:
    """Stands in for the repository of a closed store: every use is a clear, typed error."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __getattr__(self, name: str) -> Any:
        raise StoreError(f"the store for {self._path} is closed")


def _configure_libgit2() -> None:
    """Process-wide libgit2 settings for speed, neither of which git itself applies either:
    no re-hashing of every object read (a third of a 5,000-message load; ``git fsck`` still
    verifies everything), and no existence check of every id put into a tree or commit (10 µs
    an entry; this store only ever references objects it has just written or read)."""
    pygit2.option(pygit2.enums.Option.ENABLE_STRICT_HASH_VERIFICATION, False)
    pygit2.option(pygit2.enums.Option.ENABLE_STRICT_OBJECT_CREATION, False)


def write_error(path: Path, session_id: str, exc: BaseException) -> SessionsGitError:
    """A failed ref update as its real cause: a ref lock file still held
    (``SessionConflictError`` naming the file), else as ``_store_error`` tells."""
    if not isinstance(exc, RefLocked) or access_denied(exc):
        return _store_error(f"cannot update session {session_id!r} in {path}", exc, path)
    text = " ".join(str(exc).split())
    return SessionConflictError(
        session_id, f"session {session_id!r} is locked: {text}; another writer holds that "
                    "lock file: try again, or delete it if no sessionsgit or git process is "
                    "writing to this repository")


def _open_repository(path: Path, *, create: bool, bare: bool, tune: bool = True
                     ) -> pygit2.Repository:
    if tune:
        _configure_libgit2()
    try:
        return pygit2.Repository(str(path), pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
    except (pygit2.GitError, KeyError) as exc:
        if "not owned by current user" in str(exc):
            raise StoreError(
                f"{path} is not owned by the current user, so Git will not open it; if you "
                "trust it, run `git config --global --add safe.directory "
                f"{Path(path).resolve()}`") from None
        if access_denied(exc):
            raise StorePermissionError(f"permission denied reading {path}: {exc}; fix the "
                                       "permissions") from None
    if not create:
        raise StoreError(f"no Git repository at {path}")
    if path.exists() and not path.is_dir():
        raise StoreError(f"{path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        raise StoreError(f"{path} is a non-empty directory that is not a Git repository")
    try:
        return pygit2.init_repository(str(path), bare=bare)
    except (pygit2.GitError, OSError) as exc:
        raise StoreError(f"cannot create a Git repository at {path}: {exc}") from None


@dataclass
class _SavePlan:
    """What a save writes, decided before anything is written."""

    #: the blob of every message; None where the message is still to be written
    blobs: list[Any]
    #: exact copies of every message
    values: list[Message]
    #: (index, encoded bytes) of each message to write
    pending: list[tuple[int, bytes]]
    #: the first index whose blob changes
    unchanged_below: int


def _plan_blobs(items: list[Any], old_values: list[Message], old_blobs: list[pygit2.Oid]
                ) -> _SavePlan:
    """Which messages can reuse their stored blob and which must be encoded and written. The
    common case, an unchanged prefix plus appended messages, costs one C-level list
    comparison."""
    shared = min(len(items), len(old_values))
    mine = items if len(items) == shared else items[:shared]  # (slice only what is longer)
    theirs = old_values if len(old_values) == shared else old_values[:shared]
    try:
        prefix = shared if mine == theirs else 0
    except RecursionError:
        prefix = 0
    blobs: list[Any] = old_blobs[:prefix]
    values: list[Message] = old_values[:prefix]
    pending: list[tuple[int, bytes]] = []
    unchanged_below = prefix
    limit = validate.max_blob_bytes()
    for index in range(prefix, len(items)):
        message = items[index]
        if index < len(old_values) and _same(message, old_values[index]):
            blobs.append(old_blobs[index])
            values.append(old_values[index])
            if unchanged_below == index:
                unchanged_below += 1
        else:
            data, _parsed = encode_message(message, index)
            validate.check_size(data, limit, f"message {index}")
            blobs.append(None)
            values.append(detach(message))
            pending.append((index, data))
    return _SavePlan(blobs, values, pending, unchanged_below)


def _same(message: Any, stored: Message) -> bool:
    """Whether a caller's message equals the stored copy (by value, so in-place edits count)."""
    try:
        return isinstance(message, dict) and message == stored
    except RecursionError:
        return False


def _copy_metadata(metadata: SessionMetadata) -> SessionMetadata:
    return replace(metadata, extra=copy.deepcopy(metadata.extra),
                   checkpoint_state=copy.deepcopy(metadata.checkpoint_state))


def _tree_metadata(metadata: SessionMetadata) -> bytes:
    data = {key: getattr(metadata, key) for key in _TREE_FIELDS}
    return (dumps_exact(data, indent=2, what="metadata")[0] + "\n").encode("utf-8")


def _commit_time(commit: pygit2.Commit) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(commit.commit_time, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


def _fsync_path(path: Path) -> None:
    packing.fsync_path(path, strict=True)


def _on_disk(repo: pygit2.Repository, commit: pygit2.Oid) -> bool:
    """Whether a commit and its tree are in the repository's files now, asked of a fresh
    object database: libgit2's open one may still answer from a pack deleted meanwhile."""
    odb = pygit2.Odb(os.path.join(repo.path, "objects"))
    try:
        object_type, data = odb.read(commit)
        if object_type != pygit2.enums.ObjectType.COMMIT or not data.startswith(b"tree "):
            return False
        return odb.exists(pygit2.Oid(hex=data[5:45].decode("ascii")))
    except (KeyError, ValueError, pygit2.GitError):
        return False
