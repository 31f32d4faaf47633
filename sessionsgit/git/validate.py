"""Checks what a remote sent before any of it lands in this store: a session's new commits,
trees and blobs must have exactly the sessionsgit shape, read with bounded work.

Every object's size comes from ``odb.read_header`` before it is inflated (so a blob that
claims a gigabyte, or a zip bomb, costs nothing); the walk is iterative (a history 100,000
commits deep needs no recursion) and skips objects this store already holds (they were checked
when they arrived, or written here). Refused: a branch at a tag or blob; tree entries other
than ``session.json``, ``messages/NNNN/NNNNNN.json`` and an integration's subtree
(``INTEGRATION_DIRS``) with their exact modes (so ``..``,
``.git``, symlinks, submodules and blobs where trees belong never arrive); commit headers that
``git fsck --strict`` would reject (dates past year 9999 included); more than
``MAX_PARENTS`` parents; metadata or messages that are not JSON objects, nest too deeply or
hold values the store cannot read back (``message_count: 1e400``)."""

from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any, Callable

import pygit2

from ..codec import loads
from ..errors import SerializationError, SessionsGitError
from ..metadata import SessionMetadata
from . import commitmeta
from .layout import CHUNK, MESSAGES_DIR, SESSION_FILE, chunk_name, message_name

#: Largest message or ``session.json`` blob accepted, in bytes (environment:
#: ``SESSIONSGIT_MAX_BLOB_BYTES``).
DEFAULT_MAX_BLOB_BYTES = 32 * 1024 * 1024
#: Largest commit or tree object, in bytes: far above anything sessionsgit writes.
MAX_OBJECT_BYTES = 1024 * 1024
#: Most parents a commit may have (sessionsgit writes one; a hand merge two).
MAX_PARENTS = 8
#: Most messages in one session.
MAX_MESSAGES = 1_000_000
#: Latest commit timestamp accepted: the end of year 9999 (git's own date range).
MAX_TIMESTAMP = 253402300799
_COMMIT, _TREE, _BLOB = (pygit2.enums.ObjectType.COMMIT, pygit2.enums.ObjectType.TREE,
                         pygit2.enums.ObjectType.BLOB)
_BLOB_MODE, _TREE_MODE = pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_TREE
_IDENT = re.compile(rb"(author|committer) [^<>\n]*[^<>\n ] <[^<>\n]*> (0|[1-9][0-9]{0,11}) "
                    rb"[+-][0-9]{4}")
_HEX = re.compile(rb"[0-9a-f]{40}")
_MODES = {b"100644": _BLOB_MODE, b"40000": _TREE_MODE}
_TYPE_NAMES = {_COMMIT: "commit", _TREE: "tree", _BLOB: "blob",
               pygit2.enums.ObjectType.TAG: "tag"}
#: A subtree an integration keeps beside the transcript (``sessionsgit.integrations.langgraph``
#: writes ``langgraph/``): plain blobs and trees at most two levels deep, safe names, sizes
#: bounded by header; its blobs are the integration's to read, not JSON checked here.
INTEGRATION_DIRS = ("langgraph",)
_INTEGRATION_DEPTH = 2


class Invalid(SessionsGitError):
    """Why a fetched session may not be taken in (one line)."""


def max_blob_bytes() -> int:
    """The configured largest message blob (``SESSIONSGIT_MAX_BLOB_BYTES``, else the default)."""
    try:
        return max(1, int(os.environ.get("SESSIONSGIT_MAX_BLOB_BYTES", "")))
    except ValueError:
        return DEFAULT_MAX_BLOB_BYTES


def read_bounded(odb: pygit2.Odb, oid: pygit2.Oid, want: Any, limit: int, what: str) -> bytes:
    """The contents of object ``oid`` of type ``want``, refused (``Invalid``) when missing, of
    another type, or larger than ``limit`` bytes by its header (so it is never inflated)."""
    try:
        kind, size = odb.read_header(oid)
    except (KeyError, ValueError, pygit2.GitError) as exc:
        raise Invalid(f"{what} {oid} is missing: {exc}") from None
    if kind != want:
        raise Invalid(f"{what} {oid} is a {_TYPE_NAMES.get(kind, kind)}, not a "
                      f"{_TYPE_NAMES[want]}")
    if size > limit:
        raise Invalid(f"{what} {oid} is {size} bytes (at most {limit} accepted; see "
                      "SESSIONSGIT_MAX_BLOB_BYTES)")
    return odb.read(oid)[1]


def check_size(data: bytes, limit: int, what: str) -> None:
    """Refuse (``SerializationError``) to store a blob readers would refuse as too large."""
    if len(data) > limit:
        raise SerializationError(f"{what} is {len(data)} bytes encoded (at most {limit} "
                                 "accepted; see SESSIONSGIT_MAX_BLOB_BYTES)")


def read_blob(odb: pygit2.Odb, oid: pygit2.Oid, limit: int) -> bytes:
    """A stored blob's bytes for a local reader, its size read from the header first: one
    larger than ``limit`` (a zip bomb already in the store) is ``Invalid`` without being
    inflated. A missing object raises as ``odb.read`` does, so callers' retries still apply."""
    kind, size = odb.read_header(oid)
    if kind != _BLOB:
        raise Invalid(f"object {oid} is a {_TYPE_NAMES.get(kind, kind)}, not a blob")
    if size > limit:
        raise Invalid(f"blob {oid} is {size} bytes (at most {limit} accepted; see "
                      "SESSIONSGIT_MAX_BLOB_BYTES)")
    return odb.read(oid)[1]


def check_session(repo: pygit2.Repository, head: pygit2.Oid,
                  known: Callable[[pygit2.Oid], bool], *,
                  metadata: bool = True) -> set[pygit2.Oid]:
    """Raise ``Invalid`` unless the session at ``head`` and every object it brings that
    ``known`` says this store lacks have the sessionsgit shape; return those objects.
    ``metadata=False``: the head may carry no sessionsgit metadata (a LangGraph subgraph
    checkpoint, whose commits hold only ``langgraph/``); what it carries is checked alike."""
    odb, limit = repo.odb, max_blob_bytes()
    try:
        kind = odb.read_header(head)[0]
    except (KeyError, ValueError, pygit2.GitError) as exc:
        raise Invalid(f"the branch's target {head} is missing: {exc}") from None
    if kind != _COMMIT:
        raise Invalid(f"the branch points at a {_TYPE_NAMES.get(kind, kind)}, not a commit")
    seen: set[pygit2.Oid] = set()
    pending, first = [head], True
    while pending:
        oid = pending.pop()
        if oid in seen or known(oid):
            continue
        seen.add(oid)
        raw = read_bounded(odb, oid, _COMMIT, MAX_OBJECT_BYTES, "commit")
        tree, parents = _commit_header(oid, raw)
        data = commitmeta.parse(raw)
        if first and data is None and metadata:
            raise Invalid(f"commit {oid} carries no sessionsgit metadata")
        if first and data is not None:
            check_metadata(data, oid)
        elif data is not None:
            _check_old_metadata(data, oid)
        _check_tree(repo, tree, known, seen, limit)
        pending.extend(parents)
        first = False
    return seen


def check_flat_tree(repo: pygit2.Repository, tree: pygit2.Oid,
                    known: Callable[[pygit2.Oid], bool], what: str) -> set[pygit2.Oid]:
    """Raise ``Invalid`` unless ``tree`` is a tree of plain blobs only (safe names, no subtree,
    each blob's size bounded by its header), as an integration's subtree entries are checked;
    return the objects ``known`` says this store lacks. (LangGraph's pending writes.)"""
    try:
        kind = repo.odb.read_header(tree)[0]
    except (KeyError, ValueError, pygit2.GitError) as exc:
        raise Invalid(f"the target {tree} of the {what} is missing: {exc}") from None
    if kind != _TREE:
        raise Invalid(f"the {what} name a {_TYPE_NAMES.get(kind, kind)}, not a tree")
    seen: set[pygit2.Oid] = set()
    _check_plain_tree(repo, tree, known, seen, max_blob_bytes(), what, _INTEGRATION_DEPTH)
    return seen


def _commit_header(oid: pygit2.Oid, raw: bytes) -> tuple[pygit2.Oid, list[pygit2.Oid]]:
    """(tree, parents) from a raw commit whose header ``git fsck --strict`` would accept."""
    header = raw.split(b"\n\n", 1)[0].split(b"\n")
    if len(header) < 3 or not header[0].startswith(b"tree ") or \
            not _HEX.fullmatch(header[0][5:]):
        raise Invalid(f"commit {oid} has a malformed header")
    position = 1
    parents = []
    while position < len(header) and header[position].startswith(b"parent "):
        if not _HEX.fullmatch(header[position][7:]):
            raise Invalid(f"commit {oid} has a malformed parent line")
        parents.append(pygit2.Oid(hex=header[position][7:].decode()))
        position += 1
        if len(parents) > MAX_PARENTS:
            raise Invalid(f"commit {oid} has more than {MAX_PARENTS} parents")
    for role in (b"author", b"committer"):
        line = header[position] if position < len(header) else b""
        match = _IDENT.fullmatch(line)
        if match is None or match.group(1) != role:
            raise Invalid(f"commit {oid} has a malformed {role.decode()} line")
        if int(match.group(2)) > MAX_TIMESTAMP:
            raise Invalid(f"commit {oid} is dated after the year 9999")
        position += 1
    return pygit2.Oid(hex=header[0][5:].decode()), parents


def check_metadata(data: dict[str, Any], where: object) -> None:
    """Raise ``Invalid`` unless ``data`` reads back as metadata every command can show."""
    try:
        metadata = SessionMetadata.from_dict(data)
    except (TypeError, ValueError, OverflowError, RecursionError, SessionsGitError) as exc:
        raise Invalid(f"bad metadata in {where}: {exc}") from None
    if not 0 <= metadata.message_count <= MAX_MESSAGES:
        raise Invalid(f"bad metadata in {where}: message_count {metadata.message_count}")
    for name in ("label", "provider", "model", "parent_id", "fork_message_id"):
        value = getattr(metadata, name)
        if value is not None and not isinstance(value, str):
            raise Invalid(f"bad metadata in {where}: {name} is not text")
    for name in ("created_at", "updated_at"):
        value = getattr(metadata, name)
        try:
            datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise Invalid(f"bad metadata in {where}: {name} {str(value)[:40]!r} is not an "
                          "ISO 8601 date") from None


def _check_old_metadata(data: dict[str, Any], where: object) -> None:
    """The fields ``history`` reads from an older save (cheaper than ``check_metadata``)."""
    count, label, when = data.get("message_count"), data.get("label"), data.get("updated_at")
    if not (count is None or (isinstance(count, int) and not isinstance(count, bool)
                              and 0 <= count <= MAX_MESSAGES)):
        raise Invalid(f"bad metadata in {where}: message_count {str(count)[:40]}")
    if not isinstance(label, (str, type(None))) or not isinstance(when, (str, type(None))):
        raise Invalid(f"bad metadata in {where}: label or updated_at is not text")


def _check_tree(repo: pygit2.Repository, root: pygit2.Oid, known: Callable[[pygit2.Oid], bool],
                seen: set[pygit2.Oid], limit: int) -> None:
    if root in seen or known(root):
        return
    seen.add(root)
    entries = _entries(repo, root, "tree")
    allowed = {MESSAGES_DIR: _TREE_MODE, SESSION_FILE: _BLOB_MODE,
               **{name: _TREE_MODE for name in INTEGRATION_DIRS}}
    names = [name for name, _, _ in entries]
    if names != sorted(set(names)) or any(allowed.get(n) != m for n, m, _ in entries):
        odd = next((n for n, m, _ in entries if allowed.get(n) != m), names)
        raise Invalid(f"tree {root} holds an unexpected entry {str(odd)[:60]!r}")
    for name, _, oid in entries:
        if name == SESSION_FILE:
            _check_json(repo, oid, known, seen, limit, "session.json")
        elif name in INTEGRATION_DIRS:
            _check_plain_tree(repo, oid, known, seen, limit, name, 1)
        else:
            _check_messages(repo, oid, known, seen, limit)


def _check_plain_tree(repo: pygit2.Repository, tree: pygit2.Oid,
                      known: Callable[[pygit2.Oid], bool], seen: set[pygit2.Oid], limit: int,
                      where: str, depth: int) -> None:
    if tree in seen or known(tree):
        return
    seen.add(tree)
    entries = _entries(repo, tree, where)
    names = [name for name, _, _ in entries]
    for name, mode, oid in entries:
        if name in (".", "..") or name.lower() == ".git" or names != sorted(set(names)) or \
                mode not in (_BLOB_MODE, _TREE_MODE) or \
                (mode == _TREE_MODE and depth >= _INTEGRATION_DEPTH):
            raise Invalid(f"unexpected entry {name[:60]!r} in {where}/")
        if mode == _TREE_MODE:
            _check_plain_tree(repo, oid, known, seen, limit, f"{where}/{name}", depth + 1)
        elif oid not in seen and not known(oid):
            seen.add(oid)
            read_bounded(repo.odb, oid, _BLOB, limit, f"{where}/{name}")


def _check_messages(repo: pygit2.Repository, tree: pygit2.Oid,
                    known: Callable[[pygit2.Oid], bool], seen: set[pygit2.Oid],
                    limit: int) -> None:
    if tree in seen or known(tree):
        return
    seen.add(tree)
    chunks = _entries(repo, tree, MESSAGES_DIR)
    if len(chunks) * CHUNK > MAX_MESSAGES + CHUNK:
        raise Invalid(f"{MESSAGES_DIR}/ holds more than {MAX_MESSAGES} messages")
    for number, (name, mode, chunk) in enumerate(chunks):
        if name != chunk_name(number) or mode != _TREE_MODE:
            raise Invalid(f"unexpected entry {name[:60]!r} in {MESSAGES_DIR}/")
        blobs = _entries(repo, chunk, f"{MESSAGES_DIR}/{name}")
        if len(blobs) > CHUNK or (number < len(chunks) - 1 and len(blobs) != CHUNK):
            raise Invalid(f"{MESSAGES_DIR}/{name}/ holds {len(blobs)} messages")
        if chunk in seen or known(chunk):
            continue
        seen.add(chunk)
        for offset, (blob_name, blob_mode, blob) in enumerate(blobs):
            if blob_name != message_name(number * CHUNK + offset) or blob_mode != _BLOB_MODE:
                raise Invalid(f"unexpected entry {blob_name[:60]!r} in {MESSAGES_DIR}/{name}/")
            _check_json(repo, blob, known, seen, limit, f"{MESSAGES_DIR}/{name}/{blob_name}")


def _entries(repo: pygit2.Repository, tree: pygit2.Oid, what: str
             ) -> list[tuple[str, int, pygit2.Oid]]:
    """(name, mode, id) of a tree's entries, parsed from the raw object (its size checked
    before it is read); a mode other than git's canonical ``100644`` or ``40000`` (a
    zero-padded one included) reads as -1, so it is refused."""
    raw = read_bounded(repo.odb, tree, _TREE, MAX_OBJECT_BYTES, what)
    entries, position = [], 0
    while position < len(raw):
        space = raw.find(b" ", position)
        nul = raw.find(b"\0", space + 1)
        if space < 0 or nul < 0 or nul + 21 > len(raw):
            raise Invalid(f"{what} {tree} is malformed")
        mode = _MODES.get(raw[position:space], -1)
        try:
            name = raw[space + 1:nul].decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid(f"{what} {tree} holds a name that is not UTF-8") from None
        entries.append((name, mode, pygit2.Oid(raw=raw[nul + 1:nul + 21])))
        position = nul + 21
    return entries


def _check_json(repo: pygit2.Repository, blob: pygit2.Oid, known: Callable[[pygit2.Oid], bool],
                seen: set[pygit2.Oid], limit: int, what: str) -> None:
    if blob in seen or known(blob):
        return
    seen.add(blob)
    text = read_bounded(repo.odb, blob, _BLOB, limit, what)
    try:
        value = loads(text, what=what)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if not isinstance(value, dict):
        raise Invalid(f"{what} is not a JSON object")
