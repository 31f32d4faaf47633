"""pydantic-ai's ``ConversationStore`` on sessionsgit: a conversation is a session, each of its
messages one blob, each save one commit.

A conversation's transcript is its history (``ModelMessage`` JSON, with the entry id pydantic-ai
minted as the message's ``id``); its ``ConversationRecord`` (revision, usage, scope, fork origin,
the branches it left) rides in the head commit's metadata under ``extra["pydantic_ai"]``. So:

* a save that extends the history is one ``append`` (cost flat in the transcript's length),
  checked against the stored revision by compare-and-swap on the session's head;
* ``fork`` is a sessionsgit fork (``sessionsgit tree`` draws it, the objects are shared);
* ``branch`` (and a save that rewrites the history) commits the kept history as the new head and
  keeps the history it left under ``refs/sessionsgit-branches/<conversation>/<tip entry id>``,
  so nothing is lost and ``branch(from_entry=...)`` can go back to it;
* ``read_entry``/``read_history`` look an entry up in a small derived table (entry id -> commit,
  position; ``pydantic_ai_index``) and read only that commit's blobs.

``delete`` moves the session to sessionsgit's trash (``sessionsgit restore`` brings it back):
this backend never erases entries; ``sessionsgit purge`` and ``gc`` do.
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Sequence

import pygit2
from pydantic import TypeAdapter, ValidationError
from pydantic_ai.conversation_store import (
    ConversationConflict,
    ConversationEntry,
    ConversationRecord,
    ConversationStore,
)
from pydantic_ai.messages import ModelMessagesTypeAdapter

from .. import codec, idcodec
from ..errors import (
    CorruptSessionError,
    InvalidRevisionError,
    SessionConflictError,
    SessionNotFoundError,
)
from ..git import layout, validate
from ..git.refs import RefMoved, compare_and_swap
from ..metadata import Message, SessionMetadata
from ..stores.base import MUST_NOT_EXIST
from ..stores.git import GitSessionStore
from .pydantic_ai_index import EntryIndex

__all__ = ["GitConversationStore", "BRANCH_PREFIX", "MARK"]

#: The metadata key (in ``extra``) holding a conversation's record.
MARK = "pydantic_ai"
#: Where the histories a conversation left (``branch``, a rewriting save) stay reachable.
BRANCH_PREFIX = "refs/sessionsgit-branches/"
_RECORD = TypeAdapter(ConversationRecord)


def message_to_dict(entry: ConversationEntry) -> Message:
    """An entry as the stored message: its ``ModelMessage`` JSON with the entry id as ``id``."""
    data = ModelMessagesTypeAdapter.dump_python([entry.message], mode="json")[0]
    return {"id": entry.id, **data}


def entry_from_dict(data: Message, parent_id: str | None) -> ConversationEntry:
    """The entry a stored message holds (``parent_id``: the id of the message before it)."""
    body = {key: value for key, value in data.items() if key != "id"}
    message = ModelMessagesTypeAdapter.validate_python([body])[0]
    return ConversationEntry(id=data["id"], parent_id=parent_id, message=message)


def record_to_dict(record: ConversationRecord) -> dict[str, Any]:
    data = _RECORD.dump_python(record, mode="json")
    data.pop("conversation_id", None)
    return data


def record_from_metadata(metadata: SessionMetadata | None) -> ConversationRecord | None:
    """The record a session's metadata carries, or None for no session or a session that is
    not a pydantic-ai conversation."""
    if metadata is None or not isinstance(metadata.extra.get(MARK), dict):
        return None
    try:
        return _RECORD.validate_python({**metadata.extra[MARK], "conversation_id": metadata.id})
    except ValidationError as exc:
        raise CorruptSessionError(metadata.id, f"unreadable pydantic-ai record: {exc}") from None


def branch_ref(conversation_id: str, tip_id: str) -> str:
    """The ref keeping a history the conversation left, named by its last entry."""
    return f"{BRANCH_PREFIX}{idcodec.encode(conversation_id)}/{idcodec.encode(tip_id)}"


class GitConversationStore(ConversationStore):
    """A pydantic-ai ``ConversationStore`` in a Git repository (see the module docstring).

    ``path_or_store``: the repository's path (created if missing) or a ``GitSessionStore``.
    The primitives run in the calling thread; each is a few object reads and at most one commit.
    """

    def __init__(self, path_or_store: str | os.PathLike[str] | GitSessionStore) -> None:
        self._owns_store = not isinstance(path_or_store, GitSessionStore)
        if isinstance(path_or_store, GitSessionStore):
            self.store = path_or_store
        elif isinstance(path_or_store, (str, os.PathLike)):
            self.store = GitSessionStore(path_or_store)
        else:
            raise TypeError("expected a repository path or a GitSessionStore, not "
                            f"{type(path_or_store).__name__}")
        self.index = EntryIndex(self.store.repo.path)

    @property
    def repo(self) -> pygit2.Repository:
        return self.store.repo

    def close(self) -> None:
        """Close the entry table, and the store if this object opened it."""
        self.index.close()
        if self._owns_store:
            self.store.close()

    # ---- ConversationStore primitives ------------------------------------------------------
    async def read_record(self, conversation_id: str) -> ConversationRecord | None:
        return record_from_metadata(self.store.head_metadata(conversation_id))

    async def read_records(self, *, scope: str | None = None,
                           limit: int | None = None) -> Sequence[ConversationRecord]:
        records = []
        for metadata in self.store.list():
            try:
                record = record_from_metadata(metadata)
            except CorruptSessionError:
                continue  # one damaged record does not hide the others
            if record is not None and (scope is None or record.scope == scope):
                records.append(record)
        records.sort(key=lambda record: record.updated_at, reverse=True)
        return records[:limit]

    async def write_record(self, record: ConversationRecord, *,
                           new_entries: Sequence[ConversationEntry] = (),
                           expected_revision: str | None) -> None:
        conversation_id = record.conversation_id
        current = self.store.head_metadata(conversation_id)
        stored = record_from_metadata(current)
        if current is not None and stored is None:
            raise ConversationConflict(conversation_id)  # a session that is no conversation
        if (stored.revision if stored is not None else None) != expected_revision:
            raise ConversationConflict(conversation_id)
        chain, base_id = _new_chain(record.head_id, new_entries)
        new_messages = [message_to_dict(entry) for entry in chain]
        metadata = {"extra": {MARK: record_to_dict(record)}}
        try:
            if current is None or stored is None:
                saved, base_count = self._git_create(record, base_id, new_messages, metadata)
            elif base_id == stored.head_id:
                saved = self.store.append(conversation_id, new_messages, metadata,
                                          expected_head=current.head)
                base_count = current.message_count
            else:
                base = self._git_history(base_id, conversation_id) if base_id is not None else []
                if stored.head_id is not None and stored.head_id not in {m["id"] for m in base}:
                    self._git_keep_branch(conversation_id, stored.head_id, current.head)
                saved = self.store.save(conversation_id, base + new_messages, metadata,
                                        expected_head=current.head)
                base_count = len(base)
        except (SessionConflictError, SessionNotFoundError):
            raise ConversationConflict(conversation_id) from None
        assert saved.head is not None
        self.index.put((entry.id, saved.head, base_count + offset)
                       for offset, entry in enumerate(chain))

    async def delete_record(self, conversation_id: str, *, expected_revision: str) -> None:
        stored = record_from_metadata(self.store.head_metadata(conversation_id))
        if stored is None or stored.revision != expected_revision:
            raise ConversationConflict(conversation_id)
        if not self.store.delete(conversation_id):
            raise ConversationConflict(conversation_id)

    async def read_entry(self, entry_id: str) -> ConversationEntry:
        found = self._git_read(entry_id, limit=2)
        if found is None:
            raise KeyError(entry_id)
        return entry_from_dict(found[-1], found[-2]["id"] if len(found) == 2 else None)

    async def read_history(self, head_id: str | None, *,
                           limit: int | None = None) -> list[ConversationEntry]:
        """The history up to ``head_id`` in one read of the commit holding it (not one
        ``read_entry`` per message)."""
        if head_id is None or limit == 0:
            return []
        found = self._git_read(head_id, limit=None if limit is None else limit + 1)
        if found is None:
            raise KeyError(head_id)
        first_parent: str | None = None
        if limit is not None and len(found) == limit + 1:
            first_parent = found.pop(0)["id"]
        entries = []
        for data in found:
            entries.append(entry_from_dict(data, first_parent))
            first_parent = data["id"]
        return entries

    # ---- writing helpers -------------------------------------------------------------------
    def _git_create(self, record: ConversationRecord, base_id: str | None,
                new_messages: list[Message], metadata: dict[str, Any]
                ) -> tuple[SessionMetadata, int]:
        """A new conversation: a sessionsgit fork of the conversation it was forked from (when
        its history starts there), else a new session. Returns its metadata and how many
        messages came before ``new_messages``."""
        conversation_id = record.conversation_id
        source = record.forked_from
        forked: SessionMetadata | None = None
        if source is not None and self.store.exists(source):
            at: int | str = 0 if base_id is None else base_id
            try:
                self.store.fork(source, conversation_id, at=at, metadata=metadata)
                forked = self.store.head_metadata(conversation_id)
            except InvalidRevisionError:
                forked = None  # the entry is not in the source's history now (a left branch)
        if forked is None:
            base = self._git_history(base_id, conversation_id) if base_id is not None else []
            saved = self.store.save(conversation_id, base + new_messages, metadata,
                                    expected_head=MUST_NOT_EXIST)  # created by no one else
            return saved, len(base)
        assert forked is not None and forked.head is not None
        if not new_messages:
            return forked, forked.message_count
        saved = self.store.append(conversation_id, new_messages, metadata,
                                  expected_head=forked.head)
        return saved, forked.message_count

    def _git_keep_branch(self, conversation_id: str, tip_id: str, head: str | None) -> None:
        """Keep the history ending at ``tip_id`` (the session's ``head``) under a ref."""
        if head is None:
            return
        try:
            compare_and_swap(self.repo, branch_ref(conversation_id, tip_id), pygit2.Oid(hex=head),
                             None, "sessionsgit: pydantic-ai branch left",
                             stale_after=self.store.stale_lock_seconds)
        except RefMoved:
            pass  # kept already (the same tip left before)

    def _read_blob(self, blob: pygit2.Oid) -> bytes:
        """A message blob, bounded as every reader bounds it (``SESSIONSGIT_MAX_BLOB_BYTES``)."""
        return validate.read_blob(self.repo.odb, blob, validate.max_blob_bytes())

    def _git_history(self, entry_id: str, conversation_id: str) -> list[Message]:
        """The stored messages from the first up to ``entry_id``; a conflict when it is gone
        (a concurrent delete released it)."""
        found = self._git_read(entry_id)
        if found is None:
            raise ConversationConflict(conversation_id)
        return found

    # ---- reading helpers -------------------------------------------------------------------
    def _git_read(self, entry_id: str, limit: int | None = None) -> list[Message] | None:
        """The stored messages up to ``entry_id`` (the last ``limit`` of them), or None when no
        commit holds it. A miss in the index (or a stale row) rebuilds the index once."""
        location = self.index.get(entry_id)
        found = self._git_read_at(location, entry_id, limit) if location else None
        if found is None:
            self.rebuild_index()
            location = self.index.get(entry_id)
            found = self._git_read_at(location, entry_id, limit) if location else None
        return found

    def _git_read_at(self, location: tuple[str, int], entry_id: str,
                 limit: int | None) -> list[Message] | None:
        commit_hex, position = location
        try:
            blobs = self._git_blobs(pygit2.Oid(hex=commit_hex))
        except (KeyError, ValueError, pygit2.GitError, layout.LayoutError):
            return None
        if position >= len(blobs):
            return None
        start = 0 if limit is None else max(0, position + 1 - limit)
        try:
            messages = [codec.loads(self._read_blob(blob), what="message")
                        for blob in blobs[start:position + 1]]
        except (KeyError, ValueError, pygit2.GitError, validate.Invalid):
            return None
        if not messages or not isinstance(messages[-1], dict) or \
                messages[-1].get("id") != entry_id:
            return None
        return messages

    def _git_blobs(self, commit_id: pygit2.Oid) -> list[pygit2.Oid]:
        commit = self.repo[commit_id]
        if not isinstance(commit, pygit2.Commit):
            raise ValueError(f"{commit_id} is not a commit")
        return layout.read_state(self.repo, commit.tree_id).blobs

    def rebuild_index(self) -> int:
        """Record where every entry of every conversation is stored, and the last entry of
        every save in their histories (the tips of the histories they left, which a clone has
        without the ``refs/sessionsgit-branches/`` refs); returns how many rows were written."""
        rows: dict[str, tuple[str, str, int]] = {}
        heads = list(self._git_conversation_heads())
        for head in heads:  # older saves first, so the heads' own rows win
            walker = self.repo.walk(head, pygit2.enums.SortMode.TOPOLOGICAL)
            walker.simplify_first_parent()
            for commit in walker:
                for entry_id, position in self._git_entries(commit.id, last_only=True):
                    rows.setdefault(entry_id, (entry_id, str(commit.id), position))
        for head in heads:
            for entry_id, position in self._git_entries(head):
                rows[entry_id] = (entry_id, str(head), position)
        self.index.put(rows.values())
        return len(rows)

    def _git_entries(self, commit_id: pygit2.Oid, *, last_only: bool = False
                     ) -> list[tuple[str, int]]:
        """(entry id, position) of the messages a save holds (only its last one)."""
        try:
            blobs = self._git_blobs(commit_id)
            start = max(0, len(blobs) - 1) if last_only else 0
            found = []
            for position in range(start, len(blobs)):
                message = codec.loads(self._read_blob(blobs[position]), what="message")
                if isinstance(message, dict) and isinstance(message.get("id"), str):
                    found.append((message["id"], position))
            return found
        except (KeyError, ValueError, pygit2.GitError, layout.LayoutError, validate.Invalid):
            return []  # damaged: `sessionsgit list` reports it

    def _git_conversation_heads(self) -> Iterator[pygit2.Oid]:
        for metadata in self.store.list():
            if isinstance(metadata.extra.get(MARK), dict) and metadata.head:
                yield pygit2.Oid(hex=metadata.head)
        for name in self.repo.references:
            if name.startswith(BRANCH_PREFIX):
                target = self.repo.references[name].target
                if isinstance(target, pygit2.Oid):
                    yield target


def _new_chain(head_id: str | None, new_entries: Sequence[ConversationEntry]
               ) -> tuple[list[ConversationEntry], str | None]:
    """The new entries on the path to ``head_id``, oldest first, and the stored entry they
    continue from (None: from the start)."""
    fresh = {entry.id: entry for entry in new_entries}
    chain: list[ConversationEntry] = []
    entry_id = head_id
    while entry_id is not None and entry_id in fresh:
        chain.append(fresh.pop(entry_id))
        entry_id = chain[-1].parent_id
    chain.reverse()
    return chain, entry_id
