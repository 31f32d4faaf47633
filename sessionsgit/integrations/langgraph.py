"""``GitCheckpointSaver``: LangGraph checkpoints in a sessionsgit repository.

A thread is a sessionsgit session (id = ``thread_id``); each checkpoint is one commit whose
parent is its parent checkpoint's commit. A root-namespace ``messages`` channel of LangChain
messages is the session's transcript (one blob per message, shared by every checkpoint holding
it), so ``sessionsgit show <thread>`` and ``git log`` read as the conversation. Everything else
lives in the commit's ``langgraph/`` subtree::

    session.json, messages/0000/000000.json …    (root namespace, as every session)
    langgraph/checkpoint                          the checkpoint record (no channel values)
                                                  and its metadata
    langgraph/channel.<name>                      one blob per channel value (reused while
                                                  its version is unchanged)
    langgraph/parent-writes/<task>.<idx>          the pending writes of the parent checkpoint
    langgraph/late-writes.<id>/<task>.<idx>       those of the grandparent ``<id>``, when they
                                                  landed after the parent was put (all of them)

Where the refs and the checkpoint-id index live: ``langgraph_refs``. Needs the ``langgraph``
extra (``pip install 'sessionsgit[langgraph]'``).
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import functools
import heapq
import json
import operator
import os
import random
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from itertools import repeat
from typing import Any, Callable, TypeVar

import pygit2
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from .. import idcodec
from ..codec import dumps_exact, encode_message
from ..errors import SerializationError, SessionConflictError, StoreError
from ..git.savepack import SavePack
from ..git import commitmeta, layout
from ..git.identity import signatures
from ..git.refs import RefMoved, current_target, read_refs
from ..messages import summary
from ..metadata import SessionMetadata, fork_metadata, merge_metadata
from ..stores.git import GitSessionStore, session_ref
from .langgraph_refs import (
    LANGGRAPH_PREFIX,
    LATE_WRITES,
    LG_DIR,
    PARENT_WRITES,
    ThreadIndex,
    Trailer,
    commit_trailer,
    compose_trailer,
    is_writes_ref,
    leaves_prefix,
    parse_trailer,
    thread_prefix,
    writes_ref,
)
from .langgraph_trash import drop_ref, move_ref, thread_refs, trash_thread

__all__ = ["GitCheckpointSaver"]

MESSAGES_CHANNEL = "messages"
#: The type a channel blob names when its value is the session transcript (``messages/``).
TRANSCRIPT = "sessionsgit-transcript"
#: The checkpoint record and its metadata, one blob in ``langgraph/``.
RECORD = "checkpoint"
#: Each channel value is ``langgraph/channel.<name>``.
CHANNEL_PREFIX = "channel."
_TREE_FIELDS = ("provider", "model", "is_checkpoint", "checkpoint_state", "extra")
_BLOB = pygit2.GIT_FILEMODE_BLOB
_TREE = pygit2.GIT_FILEMODE_TREE
_ATTEMPTS = 50
_MESSAGE_CACHE = 50_000
#: Transcripts kept whole: of the checkpoints read last (``list`` reads ten or so at a
#: time), and of the threads written last.
_TRANSCRIPTS = 64
_T = TypeVar("_T")


class _Desc(str):
    """A checkpoint id that sorts newest first in a heap."""

    def __lt__(self, other: str) -> bool:  # type: ignore[override]
        return str.__gt__(self, other)


class GitCheckpointSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer on a Git repository (``path_or_store``: a path, created if
    missing, or a ``GitSessionStore``). History, forks and sharing come from Git:
    ``copy_thread`` is a new set of refs on the same commits, ``git gc`` packs a long thread
    into deltas, ``sessionsgit push/pull`` carries threads to other machines.

    Safe for several threads of one process (one lock) and for several processes (every ref
    moves by compare-and-swap; a writer that loses the race starts a sibling leaf instead of
    overwriting). ``delete_thread`` keeps the thread in sessionsgit's trash
    (``sessionsgit restore``) until ``purge()``; ``prune`` and ``delete_for_runs`` rewrite the
    thread's commits without the dropped checkpoints, so ``gc()`` reclaims their space."""

    def __init__(self, path_or_store: str | os.PathLike[str] | GitSessionStore, *,
                 serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        if isinstance(path_or_store, GitSessionStore):
            self.store = path_or_store
        else:
            self.store = GitSessionStore(path_or_store)
        self.index = ThreadIndex(self.store.repo.path)
        self._lock = threading.RLock()
        #: message id -> (a copy of the message as encoded, its blob)
        self._message_blobs: dict[str, tuple[BaseMessage, pygit2.Oid]] = {}
        #: thread -> the leaf commits its index was last completed for by a walk
        self._complete: dict[str, frozenset[pygit2.Oid]] = {}
        #: thread -> its leaf refs as this process last moved them (a stale view only costs a
        #: failed compare-and-swap and a fresh read)
        self._leaf_refs: dict[str, dict[str, pygit2.Oid]] = {}
        self._known: set[pygit2.Oid] = set()
        #: blob -> the message it holds (handed out as shallow copies)
        self._messages_by_blob: dict[pygit2.Oid, BaseMessage] = {}
        #: commit -> its transcript (the messages kept in ``_messages_by_blob``), newest last
        self._transcripts: OrderedDict[pygit2.Oid, builtins.list[BaseMessage]] = OrderedDict()
        #: thread -> (commit, its root transcript as copies, their blobs) this process last
        #: wrote: the next checkpoint compares against it instead of looking each message up
        self._written: dict[str, tuple[pygit2.Oid, builtins.list[BaseMessage],
                                       builtins.list[pygit2.Oid]]] = {}
        #: thread -> (commit, the session metadata in its message) this process last wrote
        self._session_meta: dict[str, tuple[pygit2.Oid, SessionMetadata]] = {}
        #: the fields ``session.json`` holds, as last written, and the bytes written
        self._session_file: tuple[dict[str, Any] | None, bytes] = (None, b"")
        #: thread -> the commit this process last moved its session branch to
        self._heads: dict[str, pygit2.Oid] = {}

    @property
    def repo(self) -> pygit2.Repository:
        return self.store.repo  # re-read: the store reopens its repository after packing

    # ---- LangGraph API: reading ---------------------------------------------------------
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, ns, checkpoint_id = _address(config)
        with self._lock:
            if checkpoint_id:
                commit = self._find(thread_id, ns, checkpoint_id)
            else:
                commit = self._latest(thread_id, ns)
            return None if commit is None else self._tuple(thread_id, commit)

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None
             ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (per thread and namespace), walking back from the leaves
        only as far as ``limit`` needs."""
        with self._lock:
            found = self._list(config, filter, before, limit)
        yield from found

    def _list(self, config: RunnableConfig | None, filter: dict[str, Any] | None,
              before: RunnableConfig | None, limit: int | None) -> builtins.list[CheckpointTuple]:
        if config is not None:
            threads = [str(config["configurable"]["thread_id"])]
            wanted_ns = config["configurable"].get("checkpoint_ns")
            wanted_id = get_checkpoint_id(config)
        else:
            threads, wanted_ns, wanted_id = self._threads(), None, None
        before_id = get_checkpoint_id(before) if before else None
        found: builtins.list[CheckpointTuple] = []
        for thread_id in threads:
            by_ns = self._leaves_by_ns(thread_id)
            for ns in sorted(by_ns):
                if wanted_ns is not None and ns != wanted_ns:
                    continue
                for commit, trailer in self._walk_newest_first(by_ns[ns]):
                    if limit is not None and len(found) >= limit:
                        return found
                    if wanted_id and trailer.checkpoint_id != wanted_id:
                        continue
                    if before_id and trailer.checkpoint_id >= before_id:
                        continue
                    if filter and not _matches(self._metadata(commit), filter):
                        continue
                    found.append(self._tuple(thread_id, commit))
        return found

    # ---- LangGraph API: writing ---------------------------------------------------------
    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        """One commit for the checkpoint, its parent the parent checkpoint's commit; the leaf
        ref (and for the root namespace the session branch) moves to it by compare-and-swap."""
        thread_id, ns, parent_id = _address(config)
        checkpoint_id = str(checkpoint["id"])
        with self._lock:
            self._check_is_thread(thread_id)
            parent = self._find(thread_id, ns, parent_id) if parent_id else None
            writes_name = writes_ref(thread_id, ns, parent_id) if parent_id else None
            parent_writes = self._writes_tree(thread_id, ns, parent_id) if parent_id else None
            batch = SavePack()
            late = self._late_writes(thread_id, ns, parent, batch) if parent is not None \
                else None
            full_metadata = dict(get_checkpoint_metadata(config, metadata))
            commit = self._write_checkpoint(thread_id, ns, checkpoint, full_metadata,
                                            new_versions, parent, parent_id, parent_writes,
                                            batch, late)
            pack = self.store.publish(batch)
            try:
                self._move_leaf(thread_id, ns, checkpoint_id, commit, parent)
                if not ns:
                    self._advance_session(thread_id, checkpoint_id, commit, parent)
            finally:
                pack.release()
            entries: builtins.list[builtins.list[Any]] = [["C", ns, checkpoint_id, str(commit)]]
            if parent_writes is not None:
                entries.append(["W", ns, parent_id, str(parent_writes[0])])
            if late is not None:
                entries.append(["W", ns, late[0], str(late[1])])
            self.index.append(thread_id, entries)
            if parent_writes is not None and parent_writes[1] and writes_name:
                self._drop(writes_name, parent_writes[0])  # the child's tree holds them now
            if late is not None:
                self._drop(writes_ref(thread_id, ns, late[0]), late[2])
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns,
                                 "checkpoint_id": checkpoint_id}}

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                   task_id: str, task_path: str = "") -> None:
        """Pending writes go into a tree named by a ref of their own (no commit, so they add
        no entry to ``git log``); the next checkpoint takes that tree into its commit."""
        thread_id, ns, checkpoint_id = _address(config)
        if not checkpoint_id:
            raise SerializationError("put_writes needs a config with a checkpoint_id")
        name = writes_ref(thread_id, ns, checkpoint_id)
        task_name = idcodec.encode(str(task_id), idcodec.FILE)
        with self._lock:
            for _attempt in range(_ATTEMPTS):
                current = current_target(self.repo, name)
                base = current
                if base is None:
                    found = self.index.writes_tree(thread_id, ns, checkpoint_id)
                    base = pygit2.Oid(hex=found) if found else None
                entries = _entries(self._tree(base)) if base else {}
                batch = SavePack()
                for idx, (channel, value) in enumerate(writes):
                    slot = WRITES_IDX_MAP.get(channel, idx)
                    entry = f"{task_name}.{slot}"
                    if slot >= 0 and entry in entries:
                        continue
                    header = {"task_id": task_id, "channel": channel, "idx": slot,
                              "path": task_path}
                    entries[entry] = (self._typed_blob(value, header, batch, allow_json=False),
                                      _BLOB)
                if not len(batch):
                    return
                tree = _write_tree(batch, entries)
                pack = self.store.publish(batch)
                try:
                    self._cas(name, tree, current)
                except RefMoved:
                    continue
                finally:
                    pack.release()
                return
            raise SessionConflictError(thread_id, f"writes of {checkpoint_id} kept moving")

    def delete_thread(self, thread_id: str) -> None:
        """Remove the thread (every namespace) from LangGraph's view. It stays recoverable in
        sessionsgit's trash until purged: the session branch moves to
        ``refs/sessions-trash/`` holding a commit whose parents are all of the thread's
        leaves, so ``sessionsgit restore <thread>`` brings back every checkpoint."""
        thread_id = str(thread_id)
        with self._lock:
            head = current_target(self.repo, session_ref(thread_id))
            is_thread = head is None or self._session_leaves(head) is not None or any(
                not is_writes_ref(name) for name in self._thread_refs(thread_id))
            if not is_thread:
                return  # a session that is no LangGraph thread: not ours to delete
            if not trash_thread(self.store, thread_id, self.index):
                if head is None:
                    return
                self.store.delete(thread_id)  # a pulled thread: its branch is all there is
                self.index.forget(thread_id)
            self._complete.pop(thread_id, None)
            self._leaf_refs.pop(thread_id, None)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """O(1) in the thread's length: the target gets refs to the same commits (every
        namespace, every fork, pending writes) and its session branch is a sessionsgit fork."""
        source, target = str(source_thread_id), str(target_thread_id)
        with self._lock:
            self._leaves_by_ns(source)  # recovers the refs of a pulled or restored thread
            refs = self._thread_refs(source)
            if not refs:
                return
            self._check_is_thread(target)
            src_prefix, dst_prefix = thread_prefix(source), thread_prefix(target)
            for name, oid in refs.items():
                dst = dst_prefix + name[len(src_prefix):]
                self._cas(dst, oid, current_target(self.repo, dst))
            self.index.copy(source, target)
            head = current_target(self.repo, session_ref(source))
            if head is not None:
                if current_target(self.repo, session_ref(target)) is not None:
                    self.store.delete(target)  # the copy replaces it; the trash keeps it
                self._fork_commit(source, target, head)
            self._complete.pop(target, None)
            self._leaf_refs.pop(target, None)

    def _fork_commit(self, source: str, target: str, head: pygit2.Oid) -> None:
        """The target's session branch: one commit on the source's head with the same tree
        and fork metadata (as ``sessionsgit fork`` makes), reading no message."""
        commit = self._commit(head)
        data = commitmeta.parse(commit.raw_message) or {}
        data.pop("id", None)
        parent_meta = SessionMetadata.from_dict(data, session_id=source)
        given = fork_metadata(parent_meta, target, detached=False, fork_message_id=None,
                              given=None)
        meta = merge_metadata(target, None, parent_meta.message_count, given)
        author, committer = signatures(self.repo)
        message = commitmeta.compose(f"copy of {source}", meta)
        batch = SavePack()
        fork = batch.commit(commit.tree_id, [head], author, committer, message)
        pack = self.store.publish(batch)
        try:
            self._cas(session_ref(target), fork, None)
        finally:
            pack.release()

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Drop every checkpoint (and its writes) whose metadata ``run_id`` is one of
        ``run_ids``, in every thread; later checkpoints are re-parented onto the nearest kept
        ancestor."""
        wanted = {str(r) for r in run_ids}
        if not wanted:
            return
        with self._lock:
            for thread_id in self._threads():
                def drop(commit: pygit2.Oid, trailer: Trailer, _latest: dict[str, str]) -> bool:
                    return str(self._metadata(commit).get("run_id")) in wanted
                self._rewrite(thread_id, drop)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: keep only the newest checkpoint of each namespace (its commit
        becomes a root, so ``gc()`` frees the rest); ``delete``: ``delete_thread``."""
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r} (keep_latest or delete)")
        with self._lock:
            for thread_id in thread_ids:
                if strategy == "delete":
                    self.delete_thread(thread_id)
                    continue

                def drop(commit: pygit2.Oid, trailer: Trailer, latest: dict[str, str]) -> bool:
                    return latest.get(trailer.checkpoint_ns) != trailer.checkpoint_id
                self._rewrite(str(thread_id), drop)

    def get_next_version(self, current: str | None, channel: None = None) -> str:
        """Versions as ``InMemorySaver`` makes them: a zero-padded counter plus a random tail."""
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(str(current).split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"

    # ---- async API: the same work in a worker thread --------------------------------------
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await _in_thread(self.get_tuple, config)

    async def alist(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None, limit: int | None = None
                    ) -> AsyncIterator[CheckpointTuple]:
        items = await _in_thread(lambda: builtins.list(
            self.list(config, filter=filter, before=before, limit=limit)))
        for item in items:
            yield item

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint,
                   metadata: CheckpointMetadata, new_versions: ChannelVersions) -> RunnableConfig:
        return await _in_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                          task_id: str, task_path: str = "") -> None:
        await _in_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await _in_thread(self.delete_thread, thread_id)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await _in_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await _in_thread(self.delete_for_runs, run_ids)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await _in_thread(lambda: self.prune(thread_ids, strategy=strategy))

    # ---- refs -------------------------------------------------------------------------------
    def _cas(self, name: str, new: pygit2.Oid, expected: pygit2.Oid | None) -> None:
        move_ref(self.store, name, new, expected)

    def _drop(self, name: str, expected: pygit2.Oid) -> None:
        drop_ref(self.store, name, expected)

    def _thread_refs(self, thread_id: str) -> dict[str, pygit2.Oid]:
        return thread_refs(self.store, thread_id)

    def _threads(self) -> builtins.list[str]:
        """Every thread with checkpoint refs (ids read back from their encoded names)."""
        names = {name[len(LANGGRAPH_PREFIX):].split("/", 1)[0]
                 for name in read_refs(self.repo.path, LANGGRAPH_PREFIX)[0]}
        threads = []
        for name in sorted(names):
            thread_id = idcodec.decode(name)
            if thread_id is None:  # a hashed (very long) id: its session branch names it
                target = current_target(self.repo, "refs/heads/sessions/" + name)
                data = commitmeta.parse(self._commit(target).raw_message) if target else None
                found = (data or {}).get("id")
                if not isinstance(found, str) or not idcodec.matches(name, found):
                    continue
                thread_id = found
            threads.append(thread_id)
        return threads

    def _leaves_by_ns(self, thread_id: str) -> dict[str, builtins.list[tuple[pygit2.Oid, Trailer]]]:
        """The leaf commits of each namespace of a thread. A thread with no leaf refs but a
        session branch (pulled from a remote, restored from the trash) gets them back from
        the branch: its checkpoint commit, and every parent of a delete commit."""
        refs = {n: o for n, o in self._thread_refs(thread_id).items() if not is_writes_ref(n)}
        if not refs:
            self._leaf_refs.pop(thread_id, None)
            head = current_target(self.repo, session_ref(thread_id))
            recovered = self._session_leaves(head) if head is not None else None
            for commit, trailer in recovered or []:
                name = leaves_prefix(thread_id, trailer.checkpoint_ns) + trailer.checkpoint_id
                try:
                    self._cas(name, commit, None)
                except RefMoved:
                    pass
                refs[name] = commit
        by_ns: dict[str, builtins.list[tuple[pygit2.Oid, Trailer]]] = {}
        for commit in dict.fromkeys(refs.values()):
            leaf = commit_trailer(self.repo, commit)
            if leaf is not None:
                by_ns.setdefault(leaf.checkpoint_ns, []).append((commit, leaf))
        return by_ns

    def _session_leaves(self, head: pygit2.Oid) -> builtins.list[tuple[pygit2.Oid, Trailer]] | None:
        """The checkpoint commits a session branch leads to through commits that are not
        checkpoints (fork, rename, delete commits); None when it leads to none (a session
        that is no LangGraph thread)."""
        found: builtins.list[tuple[pygit2.Oid, Trailer]] = []
        pending, seen = [head], 0
        while pending and seen < 64:
            oid = pending.pop()
            seen += 1
            try:
                commit = self._commit(oid)
            except (KeyError, ValueError, StoreError):
                continue
            trailer = parse_trailer(commit.raw_message)
            if trailer is not None:
                found.append((oid, trailer))
            else:
                pending.extend(commit.parent_ids)
        return found or None

    def _check_is_thread(self, thread_id: str) -> None:
        """Refuse to write checkpoints onto a session that is not a LangGraph thread."""
        head = current_target(self.repo, session_ref(thread_id))
        if head is None or commit_trailer(self.repo, head) is not None:
            return  # a new thread, or one whose branch is at a checkpoint (the usual case)
        if self._thread_refs(thread_id):
            return
        if self._session_leaves(head) is None:
            raise SessionConflictError(
                thread_id, f"session {thread_id!r} exists and is not a LangGraph thread; use "
                           "another thread_id (or delete that session first)")

    def _latest(self, thread_id: str, ns: str) -> pygit2.Oid | None:
        leaves = self._leaves_by_ns(thread_id).get(ns, [])
        if not leaves:
            return None
        return max(leaves, key=lambda item: item[1].checkpoint_id)[0]

    def _find(self, thread_id: str, ns: str, checkpoint_id: str) -> pygit2.Oid | None:
        """The commit of a checkpoint id: the index, else a walk of the thread that brings
        the index up to date (skipped when nothing changed since the last complete walk)."""
        found = self.index.commit(thread_id, ns, checkpoint_id)
        if found is not None:
            oid = pygit2.Oid(hex=found)
            if self.repo.odb.exists(oid):
                return oid
        self._reindex(thread_id)
        found = self.index.commit(thread_id, ns, checkpoint_id)
        if found is None or not self.repo.odb.exists(pygit2.Oid(hex=found)):
            return None
        return pygit2.Oid(hex=found)

    def _reindex(self, thread_id: str) -> None:
        """Bring the index up to date by walking the whole thread (skipped when its leaves
        did not change since the last complete walk): for an index that was lost, damaged,
        or never written here (a pulled or restored thread)."""
        by_ns = self._leaves_by_ns(thread_id)
        leaves = frozenset(c for items in by_ns.values() for c, _t in items)
        if self._complete.get(thread_id) == leaves:
            return
        entries: builtins.list[builtins.list[Any]] = []
        #: (ns, id) -> (late: a superset of what the child folded, tree)
        writes: dict[tuple[str, str], tuple[bool, pygit2.Oid]] = {}
        for commit, trailer in self._walk_all(leaves):
            key = (trailer.checkpoint_ns, trailer.checkpoint_id)
            if self.index.commit(thread_id, *key) != str(commit):
                entries.append(["C", *key, str(commit)])
            lg = self._entry(commit, LG_DIR)
            held = self._tree(lg) if lg is not None else None
            if held is not None and PARENT_WRITES in held and trailer.parent_id:
                parent_key = (trailer.checkpoint_ns, trailer.parent_id)
                if not writes.get(parent_key, (False,))[0]:
                    writes[parent_key] = (False, held[PARENT_WRITES].id)
            for grand_id, tree in _late_trees(held):
                writes[(trailer.checkpoint_ns, grand_id)] = (True, tree)
        for key, (_late, tree) in writes.items():
            if self.index.writes_tree(thread_id, *key) is None:
                entries.append(["W", *key, str(tree)])
        self.index.append(thread_id, entries)
        self._complete[thread_id] = leaves

    def _walk_all(self, leaves: frozenset[pygit2.Oid]) -> Iterator[tuple[pygit2.Oid, Trailer]]:
        seen: set[pygit2.Oid] = set()
        stack = list(leaves)
        while stack:
            oid = stack.pop()
            if oid in seen:
                continue
            seen.add(oid)
            commit = self._commit(oid)
            trailer = parse_trailer(commit.raw_message)
            if trailer is None:
                continue
            yield oid, trailer
            stack.extend(commit.parent_ids)

    def _walk_newest_first(self, leaves: builtins.list[tuple[pygit2.Oid, Trailer]]
                           ) -> Iterator[tuple[pygit2.Oid, Trailer]]:
        """Every checkpoint reachable from ``leaves``, newest id first, reading only as many
        commits as the caller consumes (a parent's id is older than its child's)."""
        heap = [(_Desc(t.checkpoint_id), str(c), c, t) for c, t in leaves]
        heapq.heapify(heap)
        seen_ids: set[str] = set()
        seen: set[pygit2.Oid] = set(c for c, _t in leaves)
        while heap:
            _key, _hex, oid, trailer = heapq.heappop(heap)
            if trailer.checkpoint_id not in seen_ids:
                seen_ids.add(trailer.checkpoint_id)
                yield oid, trailer
            for parent in self._commit(oid).parent_ids:
                if parent in seen:
                    continue
                seen.add(parent)
                parent_trailer = commit_trailer(self.repo, parent)
                if parent_trailer is not None:
                    heapq.heappush(heap, (_Desc(parent_trailer.checkpoint_id), str(parent),
                                          parent, parent_trailer))

    # ---- writing a checkpoint ---------------------------------------------------------------
    def _write_checkpoint(self, thread_id: str, ns: str, checkpoint: Checkpoint,
                          metadata: dict[str, Any], new_versions: ChannelVersions,
                          parent: pygit2.Oid | None, parent_id: str | None,
                          parent_writes: tuple[pygit2.Oid, bool] | None, batch: SavePack,
                          late: tuple[str, pygit2.Oid, pygit2.Oid] | None = None) -> pygit2.Oid:
        """The checkpoint's commit and every new object under it, put into ``batch``."""
        repo = self.repo
        values = checkpoint["channel_values"]
        versions = checkpoint["channel_versions"]
        parent_commit = self._commit(parent) if parent is not None else None
        parent_versions: dict[str, Any] = {}
        parent_lg: pygit2.Tree | None = None
        if parent is not None:
            tree_id = self._entry(parent, LG_DIR)
            parent_lg = self._tree(tree_id) if tree_id is not None else None
            record = self._record(parent)
            parent_versions = dict(record.get("channel_versions") or {}) if record else {}
        lg: dict[str, tuple[pygit2.Oid, int]] = {}
        transcript: builtins.list[pygit2.Oid] | None = None
        written: tuple[builtins.list[BaseMessage], builtins.list[pygit2.Oid]] | None = None
        unchanged_transcript = False
        messages_tree: pygit2.Oid | None = None
        for channel, version in versions.items():
            name = _channel_entry(str(channel))
            if channel not in new_versions and parent_lg is not None and \
                    parent_versions.get(channel) == version and name in parent_lg:
                lg[name] = (parent_lg[name].id, _BLOB)
                if not ns and channel == MESSAGES_CHANNEL and parent_commit is not None:
                    messages_tree = self._entry(parent, layout.MESSAGES_DIR)
                    transcript = []  # unchanged: the parent's messages/ tree as it is
                    unchanged_transcript = True
                continue
            if channel not in values:
                continue  # a channel with no value at this version
            value = values[channel]
            header = {"channel": channel}  # the version is in the record: equal values share
            if not ns and channel == MESSAGES_CHANNEL and _is_transcript(value):
                written = self._transcript_blobs(thread_id, parent, value, batch)
                transcript = written[1]
                lg[name] = (self._known_blob(_header({**header, "type": TRANSCRIPT}), batch),
                            _BLOB)
                continue
            lg[name] = (self._typed_blob(value, header, batch, allow_json=False), _BLOB)
        record = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        lg[RECORD] = (self._typed_blob({"checkpoint": record, "metadata": metadata}, {}, batch),
                      _BLOB)
        if parent_writes is not None:
            lg[PARENT_WRITES] = (parent_writes[0], _TREE)
        if late is not None:
            lg[LATE_WRITES + idcodec.encode(late[0], idcodec.FILE)] = (late[1], _TREE)
        root: dict[str, tuple[pygit2.Oid, int]] = {LG_DIR: (_write_tree(batch, lg), _TREE)}
        trailer = compose_trailer(ns, str(checkpoint["id"]), parent_id)
        if ns:
            step = metadata.get("step")
            message = f"{ns}: step {step} ({metadata.get('source')})\n\n{trailer}\n"
        else:
            if transcript:
                messages_tree = self._messages_tree(transcript, parent, batch)
                count = len(transcript)
            else:  # none, or the parent's messages/ tree as it is
                count = self._message_count(messages_tree)
            session_meta = self._session_metadata(thread_id, parent_commit, count)
            session_json = {key: getattr(session_meta, key) for key in _TREE_FIELDS}
            if self._session_file[0] != session_json:  # (the same for most checkpoints)
                text = dumps_exact(session_json, indent=2, what="metadata")[0] + "\n"
                self._session_file = (copy.deepcopy(session_json), text.encode())
            root[layout.SESSION_FILE] = (self._known_blob(self._session_file[1], batch), _BLOB)
            if messages_tree is not None:
                root[layout.MESSAGES_DIR] = (messages_tree, _TREE)
            subject = self._subject(values, new_versions, metadata)
            message = commitmeta.compose(subject, session_meta) + trailer + "\n"
        author, committer = signatures(repo)
        parents = [parent] if parent is not None else []
        commit = batch.commit(_write_tree(batch, root), parents, author, committer, message)
        if not ns:
            if len(self._session_meta) >= _TRANSCRIPTS:
                self._session_meta.clear()
            self._session_meta[thread_id] = (commit, session_meta)
        last = self._written.pop(thread_id, None)
        if written is None and unchanged_transcript and last is not None and last[0] == parent:
            written = last[1], last[2]
        if not ns and written is not None:
            while len(self._written) >= _TRANSCRIPTS:
                self._written.pop(next(iter(self._written)))
            self._written[thread_id] = (commit, *written)
        return commit

    def _transcript_blobs(self, thread_id: str, parent: pygit2.Oid | None,
                          messages: builtins.list[BaseMessage], batch: SavePack
                          ) -> tuple[builtins.list[BaseMessage], builtins.list[pygit2.Oid]]:
        """(the copies as encoded, the blob) of each message of a root transcript. A message
        equal to the one at its place in the parent's transcript, as this process wrote it,
        reuses its blob: the parent's commit keeps it (no existence check, no encoding)."""
        last = self._written.get(thread_id)
        known, blobs = (last[1], last[2]) if last is not None and last[0] == parent else ([], [])
        same = builtins.list(map(operator.eq, map(_message_state, known),
                                 map(_message_state, messages)))  # (one pass in C)
        kept = same.index(False) if False in same else len(same)
        copies, out = known[:kept], blobs[:kept]
        for index in range(kept, len(messages)):
            message = messages[index]
            if index < len(same) and same[index]:
                copies.append(known[index])
                out.append(blobs[index])
                continue
            blob = self._message_blob(message, index, batch)
            copies.append(self._messages_by_blob.get(blob) or message.model_copy(deep=True))
            out.append(blob)
        return copies, out

    def _message_blob(self, message: BaseMessage, index: int, batch: SavePack) -> pygit2.Oid:
        """One message as a readable JSON blob (LangChain's ``message_to_dict`` form), encoded
        once per message id in this process."""
        key = message.id
        cached = self._message_blobs.get(key) if key else None
        if cached is not None and _same_message(cached[0], message) and \
                self.repo.odb.exists(cached[1]):
            return cached[1]  # (a gc with prune may have dropped it since: then write again)
        data, _parsed = encode_message(message_to_dict(message), index)
        blob = batch.blob(data)
        if key:
            if len(self._message_blobs) >= 20_000:
                self._message_blobs.clear()
            self._message_blobs[key] = (message.model_copy(deep=True), blob)
            self._messages_by_blob.setdefault(blob, self._message_blobs[key][0])
        return blob

    def _messages_tree(self, blobs: builtins.list[pygit2.Oid], parent: pygit2.Oid | None,
                       batch: SavePack) -> pygit2.Oid:
        """The ``messages/`` tree of a transcript, reusing every full chunk the parent's has."""
        old_chunks: builtins.list[pygit2.Oid] = []
        old_tree = self._entry(parent, layout.MESSAGES_DIR) if parent is not None else None
        if old_tree is not None:
            old_chunks = [entry.id for entry in self._tree(old_tree)]
        chunks = []
        for number in range((len(blobs) + layout.CHUNK - 1) // layout.CHUNK):
            lo = number * layout.CHUNK
            part = blobs[lo:lo + layout.CHUNK]
            if number < len(old_chunks) and len(part) == layout.CHUNK and \
                    list(layout.chunk_blobs(self.repo, old_chunks[number], lo)) == part:
                chunks.append(old_chunks[number])
            else:
                chunks.append(layout.write_chunk(batch, number, blobs))
        return layout.write_messages_tree(batch, chunks)

    def _message_count(self, messages_tree: pygit2.Oid | None) -> int:
        if messages_tree is None:
            return 0
        chunks = builtins.list(self._tree(messages_tree))
        if not chunks:
            return 0
        return (len(chunks) - 1) * layout.CHUNK + len(self._tree(chunks[-1].id))

    def _session_metadata(self, thread_id: str, parent: pygit2.Commit | None,
                          count: int) -> SessionMetadata:
        previous = None
        known = self._session_meta.get(thread_id)
        if parent is not None and known is not None and known[0] == parent.id:
            previous = known[1]  # what this process wrote into the parent's message
        elif parent is not None:
            data = commitmeta.parse(parent.raw_message)
            if data is not None:
                data.pop("id", None)
                try:
                    previous = SessionMetadata.from_dict(data, session_id=thread_id)
                except (TypeError, ValueError):
                    previous = None
        merged = merge_metadata(thread_id, previous, count, None)
        merged.provider = merged.provider or "langgraph"
        return merged

    def _subject(self, values: dict[str, Any], new_versions: ChannelVersions,
                 metadata: dict[str, Any]) -> str:
        step = f"step {metadata.get('step')} ({metadata.get('source')})"
        messages = values.get(MESSAGES_CHANNEL)
        if MESSAGES_CHANNEL in new_versions and _is_transcript(messages) and messages:
            try:
                return summary(message_to_dict(messages[-1]), 72, words=True) or step
            except (TypeError, ValueError):
                return step
        return step

    def _advance_session(self, thread_id: str, checkpoint_id: str, commit: pygit2.Oid,
                         parent: pygit2.Oid | None) -> None:
        """Point the session branch at ``commit`` unless another writer already put a newer
        root checkpoint there ("latest" is the newest checkpoint across all leaves). Where
        this process last left it at the parent, the compare-and-swap alone checks that."""
        name = session_ref(thread_id)
        guess = parent if parent is not None and self._heads.get(thread_id) == parent else None
        for _attempt in range(_ATTEMPTS):
            head, guess = (guess, None) if guess is not None else \
                (current_target(self.repo, name), None)
            if head is not None and head != parent:
                trailer = commit_trailer(self.repo, head)
                if trailer is not None and trailer.checkpoint_id > checkpoint_id:
                    self._heads.pop(thread_id, None)
                    return
            try:
                self._cas(name, commit, head)
            except RefMoved:
                continue
            if len(self._heads) >= _TRANSCRIPTS:
                self._heads.clear()
            self._heads[thread_id] = commit
            return

    def _move_leaf(self, thread_id: str, ns: str, checkpoint_id: str, commit: pygit2.Oid,
                   parent: pygit2.Oid | None) -> None:
        """Advance the leaf ref that points at the parent, else start a new leaf (a fork, a
        first checkpoint, or a writer that lost the race for the parent's leaf)."""
        prefix = leaves_prefix(thread_id, ns)
        refs = self._leaf_refs.pop(thread_id, None)  # as this process last left them
        for _attempt in range(_ATTEMPTS):
            if refs is None:
                refs = {n: o for n, o in self._thread_refs(thread_id).items()
                        if not is_writes_ref(n)}
            before = frozenset(refs.values())
            match = next((n for n, o in refs.items() if o == parent and n.startswith(prefix)),
                         None) if parent is not None else None
            name = match or prefix + checkpoint_id
            try:
                self._cas(name, commit, refs.get(name))
            except RefMoved:  # another process moved a leaf: read them all again
                refs = None
                continue
            if self._complete.get(thread_id) == before:
                after = set(before) | {commit}
                if match:
                    after.discard(refs[match])
                self._complete[thread_id] = frozenset(after)
            self._leaf_refs[thread_id] = {**refs, name: commit}
            return
        raise SessionConflictError(thread_id, f"the leaf of {checkpoint_id} kept moving")

    def _rewrite(self, thread_id: str,
                 drop: Callable[[pygit2.Oid, Trailer, dict[str, str]], bool]) -> None:
        """Rebuild a thread's commits without those ``drop`` picks (given the newest id of
        each namespace), each kept commit re-parented onto its nearest kept ancestor."""
        by_ns = self._leaves_by_ns(thread_id)
        if not by_ns:
            return
        refs = {n: o for n, o in self._thread_refs(thread_id).items() if not is_writes_ref(n)}
        latest = {ns: max(t.checkpoint_id for _c, t in items) for ns, items in by_ns.items()}
        walker = self.repo.walk(None, pygit2.enums.SortMode.TOPOLOGICAL |
                                pygit2.enums.SortMode.REVERSE)
        for oid in set(refs.values()):
            walker.push(oid)
        new_of: dict[pygit2.Oid, pygit2.Oid | None] = {}
        dropped: builtins.list[tuple[pygit2.Oid, Trailer]] = []
        kept_ids: dict[tuple[str, str], pygit2.Oid] = {}
        entries: builtins.list[builtins.list[Any]] = []
        batch = SavePack()
        for commit in walker:
            trailer = parse_trailer(commit.raw_message)
            parents = [q for p in commit.parent_ids if (q := new_of.get(p, p)) is not None]
            if trailer is not None and drop(commit.id, trailer, latest):
                new_of[commit.id] = parents[0] if parents else None
                dropped.append((commit.id, trailer))
                entries.append(["D", trailer.checkpoint_ns, trailer.checkpoint_id])
                continue
            kept = commit.id
            if parents != builtins.list(commit.parent_ids):
                kept = batch.commit(commit.tree_id, parents, commit.author, commit.committer,
                                    commit.raw_message.decode("utf-8"))
                if trailer is not None:
                    entries.append(["C", trailer.checkpoint_ns, trailer.checkpoint_id, str(kept)])
            new_of[commit.id] = kept
            if trailer is not None:
                kept_ids[(trailer.checkpoint_ns, trailer.checkpoint_id)] = kept
        if not dropped:
            return
        pack = self.store.publish(batch) if len(batch) else None
        try:
            self._apply_rewrite(thread_id, refs, new_of, dropped, kept_ids, entries)
        finally:
            if pack is not None:
                pack.release()

    def _apply_rewrite(self, thread_id: str, refs: dict[str, pygit2.Oid],
                       new_of: dict[pygit2.Oid, pygit2.Oid | None],
                       dropped: builtins.list[tuple[pygit2.Oid, Trailer]],
                       kept_ids: dict[tuple[str, str], pygit2.Oid],
                       entries: builtins.list[builtins.list[Any]]) -> None:
        """Move the thread's refs onto the rewritten commits (``_rewrite``), hand the writes
        of dropped checkpoints back to their kept parents, and note it all in the index."""
        # writes a dropped child held for a kept parent get a ref of their own again
        # (late writes include what the parent folded, so they win)
        held: dict[tuple[str, str], tuple[bool, pygit2.Oid]] = {}
        for oid, trailer in dropped:
            folded = self._entry(oid, LG_DIR, PARENT_WRITES)
            if folded is not None and trailer.parent_id:
                held.setdefault((trailer.checkpoint_ns, trailer.parent_id), (False, folded))
            lg = self._entry(oid, LG_DIR)
            for owner, tree in _late_trees(self._tree(lg) if lg is not None else None):
                held[(trailer.checkpoint_ns, owner)] = (True, tree)
        for key, (_late, tree) in held.items():
            if key in kept_ids:
                name = writes_ref(thread_id, *key)
                if current_target(self.repo, name) is None:
                    self._cas(name, tree, None)
        for oid, trailer in dropped:
            name = writes_ref(thread_id, trailer.checkpoint_ns, trailer.checkpoint_id)
            target = current_target(self.repo, name)
            if target is not None:
                self._drop(name, target)
        self.index.append(thread_id, entries)
        moves: dict[str, pygit2.Oid | None] = {}
        targets: set[pygit2.Oid] = set()
        for name, old in refs.items():
            new = new_of.get(old, old)
            moves[name] = None if new is None or new in targets else new
            if new is not None:
                targets.add(new)
        root = [(oid, t) for oid in targets
                if (t := commit_trailer(self.repo, oid)) is not None and not t.checkpoint_ns]
        head = current_target(self.repo, session_ref(thread_id))
        if not root and head is not None:
            self.store.delete(thread_id)  # before the refs go: nothing to recover it from
        for name, new in moves.items():
            old = refs[name]
            if new is None:
                self._drop(name, old)
            elif new != old:
                try:
                    self._cas(name, new, old)
                except RefMoved:
                    raise SessionConflictError(thread_id, f"thread {thread_id!r} changed while "
                                                          "being pruned; try again") from None
        self._complete.pop(thread_id, None)
        self._leaf_refs.pop(thread_id, None)
        if root:
            newest = max(root, key=lambda item: item[1].checkpoint_id)[0]
            if head != newest:
                try:
                    self._cas(session_ref(thread_id), newest, head)
                except RefMoved:
                    pass  # a newer put moved it meanwhile

    # ---- reading a checkpoint ---------------------------------------------------------------
    def _commit(self, oid: pygit2.Oid) -> pygit2.Commit:
        found = self.repo[oid]
        if not isinstance(found, pygit2.Commit):
            raise StoreError(f"{oid} in {self.store.path} is not a commit")
        return found

    def _tree(self, oid: pygit2.Oid) -> pygit2.Tree:
        found = self.repo[oid]
        if not isinstance(found, pygit2.Tree):
            raise StoreError(f"{oid} in {self.store.path} is not a tree")
        return found

    def _entry(self, commit: pygit2.Oid | None, *path: str) -> pygit2.Oid | None:
        if commit is None:
            return None
        try:
            tree = self._commit(commit).tree
            for part in path[:-1]:
                tree = self._tree(tree[part].id)
            return tree[path[-1]].id
        except (KeyError, ValueError):
            return None

    def _record_and_metadata(self, commit: pygit2.Oid) -> dict[str, Any]:
        blob = self._entry(commit, LG_DIR, RECORD)
        return {} if blob is None else self._load_blob(blob)[1]

    def _record(self, commit: pygit2.Oid) -> dict[str, Any]:
        return self._record_and_metadata(commit).get("checkpoint") or {}

    def _metadata(self, commit: pygit2.Oid) -> dict[str, Any]:
        return self._record_and_metadata(commit).get("metadata") or {}

    def _writes_tree(self, thread_id: str, ns: str, checkpoint_id: str
                     ) -> tuple[pygit2.Oid, bool] | None:
        """(tree of a checkpoint's pending writes, whether it is held by its own ref)."""
        current = current_target(self.repo, writes_ref(thread_id, ns, checkpoint_id))
        if current is not None:
            return current, True
        found = self.index.writes_tree(thread_id, ns, checkpoint_id)
        if found is None and self.index.commit(thread_id, ns, checkpoint_id) is None:
            self._reindex(thread_id)  # an index that does not know the checkpoint: rebuild it
            found = self.index.writes_tree(thread_id, ns, checkpoint_id)
        return (pygit2.Oid(hex=found), False) if found else None

    def _late_writes(self, thread_id: str, ns: str, parent: pygit2.Oid, batch: SavePack
                     ) -> tuple[str, pygit2.Oid, pygit2.Oid] | None:
        """Writes of the grandparent that landed after the parent was put (durability
        "async" runs ``put_writes`` beside the next ``put``): (its id, a tree holding them and
        those the parent folded, the ref's tree) for the new checkpoint to take in."""
        trailer = parse_trailer(self._commit(parent).raw_message)
        grand_id = trailer.parent_id if trailer is not None else None
        if not grand_id:
            return None
        held = current_target(self.repo, writes_ref(thread_id, ns, grand_id))
        if held is None:
            return None
        folded = self._entry(parent, LG_DIR, PARENT_WRITES)
        if folded is None:
            return grand_id, held, held
        entries = _entries(self._tree(held))
        for name, entry in _entries(self._tree(folded)).items():
            entries.setdefault(name, entry)
        return grand_id, _write_tree(batch, entries), held

    def _tuple(self, thread_id: str, commit: pygit2.Oid) -> CheckpointTuple:
        trailer = commit_trailer(self.repo, commit)
        if trailer is None:
            raise StoreError(f"commit {commit} of thread {thread_id!r} is no checkpoint")
        both = self._record_and_metadata(commit)
        record = both.get("checkpoint") or {}
        channel_values: dict[str, Any] = {}
        lg = self._entry(commit, LG_DIR)
        for entry in self._tree(lg) if lg is not None else []:
            if not (entry.name or "").startswith(CHANNEL_PREFIX):
                continue
            header, value = self._load_blob(entry.id)
            if header.get("type") == TRANSCRIPT:
                value = self._transcript(thread_id, commit)
            channel_values[header["channel"]] = value
        writes: builtins.list[tuple[str, str, Any]] = []
        found = self._writes_tree(thread_id, trailer.checkpoint_ns, trailer.checkpoint_id)
        if found is not None:
            loaded = [self._load_blob(entry.id) for entry in self._tree(found[0])]
            loaded.sort(key=lambda item: writes_sort_key(item[0].get("path", ""),
                                                         item[0]["task_id"], item[0]["idx"]))
            writes = [(h["task_id"], h["channel"], v) for h, v in loaded]
        address = {"thread_id": thread_id, "checkpoint_ns": trailer.checkpoint_ns}
        return CheckpointTuple(
            config={"configurable": {**address, "checkpoint_id": trailer.checkpoint_id}},
            checkpoint={**record, "channel_values": channel_values},  # type: ignore[typeddict-item]
            metadata=both.get("metadata") or {},  # type: ignore[arg-type]
            parent_config=({"configurable": {**address, "checkpoint_id": trailer.parent_id}}
                           if trailer.parent_id else None),
            pending_writes=writes,
        )

    def _transcript(self, thread_id: str, commit: pygit2.Oid) -> builtins.list[BaseMessage]:
        """The messages of a checkpoint: a shallow copy of each message this process already
        read or wrote (by blob id, so never stale), the rest parsed from their blobs."""
        last = self._written.get(thread_id)
        if last is not None and last[0] == commit:  # the checkpoint this process just wrote
            return [_shallow_copy(message) for message in last[1]]
        known = self._transcripts.get(commit)  # a commit never changes: nor does its list
        if known is not None:
            self._transcripts.move_to_end(commit)
            return [_shallow_copy(message) for message in known]
        state = layout.read_state(self.repo, self._commit(commit).tree_id)
        missing = [blob for blob in state.blobs if blob not in self._messages_by_blob]
        if missing:
            read = self.repo.odb.read
            parsed = messages_from_dict(json.loads(
                b"[" + b",".join(read(blob)[1] for blob in missing) + b"]"))
            if len(self._messages_by_blob) + len(missing) > _MESSAGE_CACHE:
                self._messages_by_blob.clear()
            self._messages_by_blob.update(zip(missing, parsed))
            if any(blob not in self._messages_by_blob for blob in state.blobs):
                return messages_from_dict(json.loads(
                    b"[" + b",".join(read(blob)[1] for blob in state.blobs) + b"]"))
        known = [self._messages_by_blob[blob] for blob in state.blobs]
        self._transcripts[commit] = known
        if len(self._transcripts) > _TRANSCRIPTS:
            self._transcripts.popitem(last=False)
        return [_shallow_copy(message) for message in known]

    # ---- blobs -------------------------------------------------------------------------------
    def _typed_blob(self, value: Any, header: dict[str, Any], batch: SavePack, *,
                    allow_json: bool = True) -> pygit2.Oid:
        """A value as one blob: a JSON header line, then the value (readable JSON when it
        reads back exactly, else the serializer's bytes)."""
        if allow_json:
            try:
                text = dumps_exact(value, what="value")[0]
                return batch.blob(_header({**header, "type": "json"}) + text.encode())
            except SerializationError:
                pass
        kind, data = self.serde.dumps_typed(value)
        return batch.blob(_header({**header, "type": kind}) + data)

    def _known_blob(self, data: bytes, batch: SavePack) -> pygit2.Oid:
        """A blob that is usually already stored (the same bytes every checkpoint): written only
        when this process has not seen it yet."""
        oid = pygit2.hash(data)
        if oid not in self._known or not self.repo.odb.exists(oid):
            oid = batch.blob(data)
            if len(self._known) > 1000:
                self._known.clear()
            self._known.add(oid)
        return oid

    def _load_blob(self, blob: pygit2.Oid) -> tuple[dict[str, Any], Any]:
        data = self.repo.odb.read(blob)[1]
        line, _, body = data.partition(b"\n")
        header = json.loads(line)
        kind = header.get("type")
        if kind == "json":
            return header, json.loads(body)
        if kind == TRANSCRIPT:
            return header, None
        return header, self.serde.loads_typed((kind, body))


# ---- helpers ---------------------------------------------------------------------------------


def _address(config: RunnableConfig) -> tuple[str, str, str | None]:
    configurable = config.get("configurable") or {}
    if "thread_id" not in configurable:
        raise SerializationError("a LangGraph config needs configurable.thread_id")
    checkpoint_id = configurable.get("checkpoint_id")
    return (str(configurable["thread_id"]), str(configurable.get("checkpoint_ns") or ""),
            str(checkpoint_id) if checkpoint_id else None)


def _header(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"


def _is_transcript(value: Any) -> bool:
    return isinstance(value, builtins.list) and all(map(isinstance, value,
                                                        repeat(BaseMessage, len(value))))


def _entries(tree: pygit2.Tree) -> dict[str, tuple[pygit2.Oid, int]]:
    """A tree's entries as {name: (id, mode)}, to add to before writing a new tree."""
    return {entry.name: (entry.id, entry.filemode) for entry in tree if entry.name}


def _write_tree(batch: SavePack, entries: dict[str, tuple[pygit2.Oid, int]]) -> pygit2.Oid:
    return layout.write_tree(batch, [(name, oid, mode) for name, (oid, mode) in entries.items()])


def _late_trees(lg: pygit2.Tree | None) -> builtins.list[tuple[str, pygit2.Oid]]:
    """(grandparent id, tree) of each ``late-writes.<id>`` entry of a ``langgraph/`` tree."""
    found = []
    for entry in lg if lg is not None else []:
        name = entry.name or ""
        if name.startswith(LATE_WRITES) and entry.filemode == _TREE:
            owner = idcodec.decode(name[len(LATE_WRITES):], idcodec.FILE)
            if owner:
                found.append((owner, entry.id))
    return found


@functools.lru_cache(maxsize=4096)
def _channel_entry(channel: str) -> str:
    """The name of a channel's blob in ``langgraph/``."""
    return CHANNEL_PREFIX + idcodec.encode(channel, idcodec.FILE)


_new_object = object.__new__
_set_attribute = object.__setattr__


def _shallow_copy(message: BaseMessage) -> BaseMessage:
    """``message.model_copy()`` (what pydantic's ``__copy__`` does) without its per-call
    overhead: a checkpoint's transcript is handed out as fresh copies on every read."""
    if getattr(message, "__pydantic_private__", None) is not None:
        return message.model_copy()
    fresh = _new_object(type(message))
    _set_attribute(fresh, "__dict__", message.__dict__.copy())
    extra = message.__pydantic_extra__
    _set_attribute(fresh, "__pydantic_extra__", None if extra is None else extra.copy())
    _set_attribute(fresh, "__pydantic_fields_set__", message.__pydantic_fields_set__.copy())
    _set_attribute(fresh, "__pydantic_private__", None)
    return fresh


#: What pydantic's ``==`` compares of a message (type, fields, extra fields), as one tuple.
_message_state = operator.attrgetter("__class__", "__dict__", "__pydantic_extra__")


def _same_message(known: BaseMessage, message: BaseMessage) -> bool:
    """Whether ``message`` still equals the copy encoded for its id, without pydantic's
    per-call overhead."""
    return bool(_message_state(known) == _message_state(message))


def _matches(metadata: dict[str, Any], filter: dict[str, Any]) -> bool:
    return all(metadata.get(key) == value for key, value in filter.items())


async def _in_thread(function: Callable[..., _T], *args: Any) -> _T:
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)
