"""The tree of one save: ``session.json`` plus ``messages/<chunk>/<index>.json``, one pretty-printed
blob per message, CHUNK messages per subtree, so a save rewrites O(CHUNK + n/CHUNK) tree entries
instead of O(n) and ``git diff`` of a save shows only the messages that changed."""

from __future__ import annotations

from dataclasses import dataclass, field

import pygit2

from .savepack import ObjectSink

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


_messages_cache: dict[pygit2.Oid, tuple[pygit2.Oid, ...]] = {}
_MESSAGES_CACHE_LIMIT = 2_000


def _remember_messages(messages_id: pygit2.Oid, chunks: list[pygit2.Oid]) -> None:
    """Remember a ``messages`` tree's chunk ids (content-addressed, so never stale): the next
    append to a long session need not walk its hundreds of entries again."""
    if len(_messages_cache) >= _MESSAGES_CACHE_LIMIT:
        _messages_cache.clear()
    _messages_cache[messages_id] = tuple(chunks)


def tree_bytes(entries: list[tuple[str, pygit2.Oid, int]]) -> bytes:
    """The canonical bytes of a git tree (``<octal mode> <name>NUL<raw id>`` per entry, in
    git's order: names compared as bytes, a directory's as if it ended in ``/``)."""
    keyed = sorted((name.encode("utf-8") + (b"/" if mode == TREE else b""), name, oid, mode)
                   for name, oid, mode in entries)
    return b"".join(b"%o %s\0%s" % (mode, name.encode("utf-8"), oid.raw)
                    for _key, name, oid, mode in keyed)


_chunk_entry_heads: list[bytes] = []


def write_messages_tree(sink: ObjectSink, chunks: list[pygit2.Oid]) -> pygit2.Oid:
    """The ``messages`` tree of these chunk trees (named 0000, 0001...: equal-length digits,
    so their order is git's), its entry heads built once per process."""
    while len(_chunk_entry_heads) < len(chunks):
        _chunk_entry_heads.append(b"40000 %s\0" % chunk_name(len(_chunk_entry_heads)).encode())
    if len(chunks) > 10_000:  # names of five digits and more: let the general path sort them
        return write_tree(sink, [(chunk_name(c), oid, TREE) for c, oid in enumerate(chunks)])
    data = b"".join([head + oid.raw for head, oid in zip(_chunk_entry_heads, chunks)])
    return sink.write(pygit2.enums.ObjectType.TREE, data)


def write_tree(sink: ObjectSink, entries: list[tuple[str, pygit2.Oid, int]]) -> pygit2.Oid:
    """Write a tree from scratch, as its canonical bytes in one call (the same object a
    TreeBuilder writes, without an insert call per entry). Cheaper than editing the previous
    version: reading that back means resolving a delta chain once it is packed."""
    return sink.write(pygit2.enums.ObjectType.TREE, tree_bytes(entries))


def write_chunk(sink: ObjectSink, chunk: int, blobs: list[pygit2.Oid]) -> pygit2.Oid:
    """The tree of one chunk of messages."""
    lo = chunk * CHUNK
    return write_tree(sink, [(message_name(i), blobs[i], BLOB)
                              for i in range(lo, min(lo + CHUNK, len(blobs)))])


def write_state(sink: ObjectSink, blobs: list[pygit2.Oid], session_blob: pygit2.Oid,
                previous: TreeState | None = None, unchanged_below: int = 0) -> TreeState:
    """Write the trees for ``blobs``, reusing every chunk of ``previous`` that lies wholly below
    ``unchanged_below`` (the first message whose blob differs) and has the same length."""
    state = TreeState(blobs=list(blobs), session_blob=session_blob)
    old_count = len(previous.blobs) if previous else 0
    old_chunks = previous.chunks if previous else []
    # Every chunk full in both versions and wholly below the first change is reused as is:
    # one slice, not a step per chunk (a 10,000-message session has 79).
    kept = min(min(unchanged_below, old_count, len(blobs)) // CHUNK, len(old_chunks))
    state.chunks = old_chunks[:kept]
    for chunk in range(kept, (len(blobs) + CHUNK - 1) // CHUNK):
        lo = chunk * CHUNK
        hi = min(lo + CHUNK, len(blobs))
        reusable = (chunk < len(old_chunks) and hi <= unchanged_below
                    and min(lo + CHUNK, old_count) == hi)
        if reusable:
            state.chunks.append(old_chunks[chunk])
            continue
        state.chunks.append(write_chunk(sink, chunk, blobs))
        _remember_chunk(state.chunks[-1], tuple(blobs[lo:hi]))
    old_messages = previous.messages_tree if previous is not None else None
    if not state.chunks:
        state.messages_tree = None
    elif old_messages is not None and state.chunks == old_chunks:
        state.messages_tree = old_messages
    else:
        state.messages_tree = write_messages_tree(sink, state.chunks)
        _remember_messages(state.messages_tree, state.chunks)
    if previous is not None and previous.root is not None and \
            state.messages_tree == previous.messages_tree and session_blob == previous.session_blob:
        state.root = previous.root
        return state
    root = [(SESSION_FILE, session_blob, BLOB)]
    if state.messages_tree is not None:  # an empty transcript has no messages/ directory
        root.append((MESSAGES_DIR, state.messages_tree, TREE))
    state.root = write_tree(sink, root)
    return state


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
    cached = _messages_cache.get(entry.id)
    if cached is not None:
        return list(cached)
    chunks = []
    for expected, chunk_entry in enumerate(tree_at(repo, entry.id)):
        if chunk_entry.name != chunk_name(expected) or \
                chunk_entry.type != pygit2.enums.ObjectType.TREE:
            raise LayoutError(f"unexpected chunk {chunk_entry.name!r} in {MESSAGES_DIR}/")
        chunks.append(chunk_entry.id)
    _remember_messages(entry.id, chunks)
    return chunks


def count_messages(repo: pygit2.Repository, root_id: pygit2.Oid | None) -> int:
    """How many messages a save holds, from its ``messages`` tree and last chunk only."""
    chunks = _chunk_ids(repo, root_id)
    if not chunks:
        return 0
    return (len(chunks) - 1) * CHUNK + len(chunk_blobs(repo, chunks[-1], (len(chunks) - 1) * CHUNK))


def append_state(repo: pygit2.Repository, sink: ObjectSink, root_id: pygit2.Oid | None,
                 new_blobs: list[pygit2.Oid], session_blob: pygit2.Oid) -> pygit2.Oid:
    """The root tree of ``root_id``'s save (read from ``repo``) plus ``new_blobs`` at the end,
    written to ``sink``, reading only the root, the ``messages`` tree and the last chunk: no
    message and no other chunk is read, so appending costs the same at message 100,000 as at
    message 10 (but for the one ``messages`` tree, an entry per 128 messages)."""
    chunks = _chunk_ids(repo, root_id)
    last: list[pygit2.Oid] = []
    if chunks:
        last = list(chunk_blobs(repo, chunks[-1], (len(chunks) - 1) * CHUNK))
        if len(last) < CHUNK or new_blobs:
            chunks.pop()
        else:
            last = []
    pending = last + list(new_blobs)
    index = len(chunks) * CHUNK
    while pending:
        part, pending = pending[:CHUNK], pending[CHUNK:]
        chunk_id = write_tree(sink, [(message_name(index + i), blob, BLOB)
                                      for i, blob in enumerate(part)])
        _remember_chunk(chunk_id, tuple(part))
        chunks.append(chunk_id)
        index += len(part)
    entries = [(SESSION_FILE, session_blob, BLOB)]
    if chunks:
        messages_tree = write_messages_tree(sink, chunks)
        _remember_messages(messages_tree, chunks)
        entries.append((MESSAGES_DIR, messages_tree, TREE))
    return write_tree(sink, entries)
