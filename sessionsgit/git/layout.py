"""The tree of one save: ``session.json`` plus ``messages/<chunk>/<index>.json``, one pretty-printed
blob per message, CHUNK messages per subtree, so a save rewrites O(CHUNK + n/CHUNK) tree entries
instead of O(n) and ``git diff`` of a save shows only the messages that changed."""

from __future__ import annotations

from dataclasses import dataclass, field

import pygit2

CHUNK = 128
MESSAGES_DIR = "messages"
SESSION_FILE = "session.json"
BLOB = pygit2.GIT_FILEMODE_BLOB
TREE = pygit2.GIT_FILEMODE_TREE


def chunk_name(chunk: int) -> str:
    return f"{chunk:04d}"


def message_name(index: int) -> str:
    return f"{index:06d}.json"


@dataclass
class TreeState:
    """The object ids that make up one save's tree, kept so the next save can reuse them."""

    blobs: list[pygit2.Oid] = field(default_factory=list)
    chunks: list[pygit2.Oid] = field(default_factory=list)
    messages_tree: pygit2.Oid | None = None
    session_blob: pygit2.Oid | None = None
    root: pygit2.Oid | None = None
    #: trees this state wrote that its predecessor did not have (for packing and fsync)
    written: list[pygit2.Oid] = field(default_factory=list)


class LayoutError(Exception):
    """A tree that does not have the sessionsgit layout."""


def tree_at(repo: pygit2.Repository, oid: pygit2.Oid) -> pygit2.Tree:
    """The tree ``oid`` names (``LayoutError`` when it is another kind of object)."""
    found = repo[oid]
    if not isinstance(found, pygit2.Tree):
        raise LayoutError(f"{oid} is not a tree")
    return found


def read_state(repo: pygit2.Repository, root_id: pygit2.Oid) -> TreeState:
    """Read the message blob ids of a save (in order) without reading any message."""
    root = tree_at(repo, root_id)
    state = TreeState(root=root_id)
    try:
        state.session_blob = root[SESSION_FILE].id
    except KeyError:
        state.session_blob = None
    try:
        messages_entry = root[MESSAGES_DIR]
    except KeyError:
        return state
    if messages_entry.type != pygit2.enums.ObjectType.TREE:
        raise LayoutError(f"{MESSAGES_DIR} is not a directory")
    state.messages_tree = messages_entry.id
    for expected, chunk_entry in enumerate(tree_at(repo, messages_entry.id)):
        if chunk_entry.name != chunk_name(expected) or chunk_entry.type != pygit2.enums.ObjectType.TREE:
            raise LayoutError(f"unexpected chunk {chunk_entry.name!r} in {MESSAGES_DIR}/")
        if len(state.blobs) != expected * CHUNK:
            raise LayoutError(f"chunk {expected - 1:04d} is not full but is not the last")
        state.chunks.append(chunk_entry.id)
        state.blobs.extend(chunk_blobs(repo, chunk_entry.id, expected * CHUNK))
    return state


_chunk_cache: dict[pygit2.Oid, tuple[pygit2.Oid, ...]] = {}
_CHUNK_CACHE_LIMIT = 20_000


def chunk_blobs(repo: pygit2.Repository, chunk_id: pygit2.Oid, first_index: int
                ) -> tuple[pygit2.Oid, ...]:
    """The message blob ids of one chunk tree, in order. Trees are content-addressed, so the
    answer is cached by tree id: a full chunk is read once per process, not once per load."""
    cached = _chunk_cache.get(chunk_id)
    if cached is not None:
        return cached
    blobs = []
    for offset, entry in enumerate(tree_at(repo, chunk_id)):  # git keeps entries sorted by name
        if entry.name != message_name(first_index + offset) or \
                entry.type != pygit2.enums.ObjectType.BLOB:
            raise LayoutError(f"message {entry.name!r} is out of sequence")
        blobs.append(entry.id)
    result = tuple(blobs)
    _remember_chunk(chunk_id, result)
    return result


def _remember_chunk(chunk_id: pygit2.Oid, blobs: tuple[pygit2.Oid, ...]) -> None:
    if len(_chunk_cache) >= _CHUNK_CACHE_LIMIT:
        _chunk_cache.clear()
    _chunk_cache[chunk_id] = blobs


def _write_tree(repo: pygit2.Repository, entries: list[tuple[str, pygit2.Oid, int]]) -> pygit2.Oid:
    """Write a tree from scratch. Cheaper than editing the previous version: reading that back
    means resolving a delta chain once it is packed."""
    builder = repo.TreeBuilder()
    for name, oid, mode in entries:
        builder.insert(name, oid, mode)
    return builder.write()


def write_chunk(repo: pygit2.Repository, chunk: int, blobs: list[pygit2.Oid]) -> pygit2.Oid:
    """The tree of one chunk of messages."""
    lo = chunk * CHUNK
    return _write_tree(repo, [(message_name(i), blobs[i], BLOB)
                              for i in range(lo, min(lo + CHUNK, len(blobs)))])


def write_state(repo: pygit2.Repository, blobs: list[pygit2.Oid], session_blob: pygit2.Oid,
                previous: TreeState | None = None, unchanged_below: int = 0) -> TreeState:
    """Write the trees for ``blobs``, reusing every chunk of ``previous`` that lies wholly below
    ``unchanged_below`` (the first message whose blob differs) and has the same length."""
    state = TreeState(blobs=list(blobs), session_blob=session_blob)
    old_count = len(previous.blobs) if previous else 0
    old_chunks = previous.chunks if previous else []
    for chunk in range((len(blobs) + CHUNK - 1) // CHUNK):
        lo = chunk * CHUNK
        hi = min(lo + CHUNK, len(blobs))
        reusable = (chunk < len(old_chunks) and hi <= unchanged_below
                    and min(lo + CHUNK, old_count) == hi)
        if reusable:
            state.chunks.append(old_chunks[chunk])
            continue
        state.chunks.append(write_chunk(repo, chunk, blobs))
        state.written.append(state.chunks[-1])
        _remember_chunk(state.chunks[-1], tuple(blobs[lo:hi]))
    old_messages = previous.messages_tree if previous is not None else None
    if not state.chunks:
        state.messages_tree = None
    elif old_messages is not None and state.chunks == old_chunks:
        state.messages_tree = old_messages
    else:
        state.messages_tree = _write_tree(repo, [(chunk_name(c), chunk_id, TREE)
                                                 for c, chunk_id in enumerate(state.chunks)])
        state.written.append(state.messages_tree)
    if previous is not None and previous.root is not None and \
            state.messages_tree == previous.messages_tree and session_blob == previous.session_blob:
        state.root = previous.root
        return state
    root = [(SESSION_FILE, session_blob, BLOB)]
    if state.messages_tree is not None:  # an empty transcript has no messages/ directory
        root.append((MESSAGES_DIR, state.messages_tree, TREE))
    state.root = _write_tree(repo, root)
    state.written.append(state.root)
    return state


def truncated(repo: pygit2.Repository, state: TreeState, keep: int,
              session_blob: pygit2.Oid) -> TreeState:
    """The state of the first ``keep`` messages of ``state`` (a fork point), sharing every
    whole chunk with it."""
    return write_state(repo, state.blobs[:keep], session_blob, state, keep)


@dataclass
class AppendedTree:
    """The tree of a save that appended messages: its root, the message count before the
    append, and the trees written for it."""

    root: pygit2.Oid
    count_before: int
    written: list[pygit2.Oid]


def _chunk_ids(repo: pygit2.Repository, root_id: pygit2.Oid | None) -> list[pygit2.Oid]:
    """The chunk trees of a save, in order, read from its ``messages`` tree alone."""
    if root_id is None:
        return []
    root = tree_at(repo, root_id)
    if MESSAGES_DIR not in root:
        return []
    entry = root[MESSAGES_DIR]
    if entry.type != pygit2.enums.ObjectType.TREE:
        raise LayoutError(f"{MESSAGES_DIR} is not a directory")
    chunks = []
    for expected, chunk_entry in enumerate(tree_at(repo, entry.id)):
        if chunk_entry.name != chunk_name(expected) or \
                chunk_entry.type != pygit2.enums.ObjectType.TREE:
            raise LayoutError(f"unexpected chunk {chunk_entry.name!r} in {MESSAGES_DIR}/")
        chunks.append(chunk_entry.id)
    return chunks


def count_messages(repo: pygit2.Repository, root_id: pygit2.Oid | None) -> int:
    """How many messages a save holds, from its ``messages`` tree and last chunk only."""
    chunks = _chunk_ids(repo, root_id)
    if not chunks:
        return 0
    return (len(chunks) - 1) * CHUNK + len(chunk_blobs(repo, chunks[-1], (len(chunks) - 1) * CHUNK))


def append_state(repo: pygit2.Repository, root_id: pygit2.Oid | None, new_blobs: list[pygit2.Oid],
                 session_blob: pygit2.Oid) -> AppendedTree:
    """The tree of ``root_id``'s save plus ``new_blobs`` at the end, reading only the root, the
    ``messages`` tree and the last chunk: no message and no other chunk is read, so appending
    costs the same at message 100,000 as at message 10 (but for the one ``messages`` tree,
    an entry per 128 messages)."""
    chunks = _chunk_ids(repo, root_id)
    last: list[pygit2.Oid] = []
    if chunks:
        last = list(chunk_blobs(repo, chunks[-1], (len(chunks) - 1) * CHUNK))
        if len(last) < CHUNK or new_blobs:
            chunks.pop()
        else:
            last = []
    count_before = len(chunks) * CHUNK + len(last)
    written: list[pygit2.Oid] = []
    pending = last + list(new_blobs)
    index = len(chunks) * CHUNK
    while pending:
        part, pending = pending[:CHUNK], pending[CHUNK:]
        chunk_id = _write_tree(repo, [(message_name(index + i), blob, BLOB)
                                      for i, blob in enumerate(part)])
        _remember_chunk(chunk_id, tuple(part))
        chunks.append(chunk_id)
        written.append(chunk_id)
        index += len(part)
    entries = [(SESSION_FILE, session_blob, BLOB)]
    if chunks:
        messages_tree = _write_tree(repo, [(chunk_name(c), chunk_id, TREE)
                                           for c, chunk_id in enumerate(chunks)])
        written.append(messages_tree)
        entries.append((MESSAGES_DIR, messages_tree, TREE))
    root_tree = _write_tree(repo, entries)
    written.append(root_tree)
    return AppendedTree(root_tree, count_before, written)
