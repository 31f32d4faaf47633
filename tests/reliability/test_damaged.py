"""Damaged stores: one broken session never hides or breaks the others. ``list()`` keeps listing
every healthy session and names the damaged one (``last_damaged`` / ``damaged()``), ``load`` of
the damaged one raises ``CorruptSessionError`` (a ``SessionsGitError``), and the healthy ones
still load and save."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pygit2
import pytest

from sessionsgit import (
    CorruptSessionError,
    FileSessionStore,
    GitSessionStore,
    SessionsGitError,
    SQLiteAdapter,
    SQLSessionStore,
    StoreError,
)
from sessionsgit.git import commitmeta

from ..helpers import git, loosen
from ..store_contract import msg, transcript

HEALTHY = ("h1", "h2")


def ids(metas) -> list[str]:
    return sorted(m.id for m in metas)


def forget_process_caches() -> None:
    """Look at the repository as a fresh process would: objects a store wrote are cached in
    this process by id, which would hide a message object deleted behind its back."""
    try:
        from sessionsgit.git import blobcache
    except ImportError:
        return
    blobcache.shared.clear()


def assert_isolated(store, bad: str, reopen, *, reported_by_damaged: bool = True) -> None:
    """The damage is reported, confined to ``bad``, and the store keeps working."""
    for s in (store, reopen()):
        forget_process_caches()
        assert set(HEALTHY) <= set(ids(s.list()))
        reported = dict(s.damaged())
        if reported_by_damaged:
            assert bad in reported and reported[bad], f"{bad!r} not reported: {reported}"
        assert not set(reported) & set(HEALTHY)
        with pytest.raises(CorruptSessionError) as info:
            s.load(bad)
        assert isinstance(info.value, SessionsGitError)
        assert info.value.session_id == bad and bad in str(info.value)
        for healthy in HEALTHY:
            assert s.load(healthy).messages == transcript(3, healthy)
    s = reopen()
    s.save("h1", transcript(4, "h1"))
    s.save("after", transcript(1))
    assert s.load("h1").messages == transcript(4, "h1")
    assert s.load("after").messages == transcript(1)
    assert {"h1", "h2", "after"} <= set(ids(s.list()))


# ---- Git --------------------------------------------------------------------------------
@pytest.fixture
def git_store(tmp_path):
    store = GitSessionStore(tmp_path / "repo", auto_pack=False)
    for session_id in HEALTHY:
        store.save(session_id, transcript(3, session_id))
    store.save("bad", transcript(3, "bad"))
    store.close()
    loosen(tmp_path / "repo")  # one loose file per object, so a test can damage one
    return GitSessionStore(tmp_path / "repo", auto_pack=False)


def reopen_git(store):
    return lambda: GitSessionStore(store.path, create=False, auto_pack=False)


def loose_path(store: GitSessionStore, oid) -> Path:
    hexid = str(oid)
    return Path(store.repo.path) / "objects" / hexid[:2] / hexid[2:]


def message_blob(store: GitSessionStore, session_id: str, index: int):
    head = store.repo.references[f"refs/heads/sessions/{session_id}"].target
    return store.repo[head].tree[f"messages/0000/{index:06d}.json"].id


def ref_file(store: GitSessionStore, session_id: str) -> Path:
    return Path(store.repo.path) / "refs" / "heads" / "sessions" / session_id


def test_missing_message_object(git_store):
    path = loose_path(git_store, message_blob(git_store, "bad", 1))
    os.chmod(path, 0o644)
    path.unlink()
    # damaged() checks the repository, even while this process still has the object cached.
    assert "missing" in dict(git_store.damaged())["bad"]
    assert_isolated(git_store, "bad", reopen_git(git_store))


def test_corrupt_loose_object(git_store):
    path = loose_path(git_store, message_blob(git_store, "bad", 2))
    os.chmod(path, 0o644)
    path.write_bytes(b"this is not zlib data")
    # The transcript cache still holds the message's exact bytes: a load is served from it,
    # while damaged() (which reads the repository itself) names the corrupt object.
    assert reopen_git(git_store)().load("bad").messages == transcript(3, "bad")
    assert "bad" in dict(git_store.damaged())
    shutil.rmtree(Path(git_store.repo.path) / "sessionsgit" / "transcripts")
    assert_isolated(git_store, "bad", reopen_git(git_store))


def test_corrupt_head_commit_object(git_store):
    head = git_store.repo.references["refs/heads/sessions/bad"].target
    path = loose_path(git_store, head)
    os.chmod(path, 0o644)
    path.write_bytes(b"\x78\x9c garbage")
    git_store.close()
    store = GitSessionStore(git_store.path, create=False, auto_pack=False)
    assert_isolated(store, "bad", reopen_git(store))


@pytest.mark.parametrize("content", [b"", b"0123abc", b"garbage\n", b"\x00\xff" * 30,
                                     b"0" * 40 + b"\n", b"ref: refs/heads/nowhere\n"],
                         ids=["empty", "truncated", "garbage", "binary", "zero-oid", "symbolic"])
def test_truncated_or_garbage_ref_file(git_store, content):
    ref_file(git_store, "bad").write_bytes(content)
    store = GitSessionStore(git_store.path, create=False, auto_pack=False)
    assert ids(store.list()) == ["h1", "h2"]
    assert [name for name, _ in store.last_damaged] == ["bad"]
    assert_isolated(store, "bad", reopen_git(store))


def test_ref_to_a_missing_commit(git_store):
    ref_file(git_store, "bad").write_text("0123456789abcdef0123456789abcdef01234567\n")
    assert_isolated(git_store, "bad", reopen_git(git_store))


def test_branch_made_by_hand_with_plain_git(git_store):
    repo_dir = str(git_store.path)
    empty_tree = git("hash-object", "-t", "tree", "-w", "/dev/null", cwd=repo_dir).strip()
    commit = git("-c", "user.name=Someone", "-c", "user.email=someone@example.com",
                 "commit-tree", empty_tree, "-m", "made by hand", cwd=repo_dir).strip()
    git("update-ref", "refs/heads/sessions/bad2", commit, cwd=repo_dir)
    git("update-ref", "refs/heads/sessions/bad", commit, cwd=repo_dir)
    store = GitSessionStore(git_store.path, create=False, auto_pack=False)
    assert ids(store.list()) == ["h1", "h2"]
    assert sorted(name for name, _ in store.last_damaged) == ["bad", "bad2"]
    assert "by hand" in dict(store.last_damaged)["bad"]
    assert_isolated(store, "bad", reopen_git(store))


def commit_with_message(store: GitSessionStore, session_id: str, message: str) -> None:
    """Point the session at a commit with its tree and the given message (a corrupt save)."""
    head = store.repo[store.repo.references[f"refs/heads/sessions/{session_id}"].target]
    sig = pygit2.Signature("t", "t@example.com")
    new = store.repo.create_commit(None, sig, sig, message, head.tree_id, [head.id])
    store.repo.references[f"refs/heads/sessions/{session_id}"].set_target(new)


@pytest.mark.parametrize("line", [
    '{"label": "unterminated',
    '["a list"]',
    '{"message_count": "many"}',
    '{"extra": "not a dict"}',
    '{"extra": [1, 2]}',
    "\x00\x01",
], ids=["bad-json", "not-object", "bad-count", "bad-extra", "list-extra", "binary"])
def test_corrupt_metadata_in_head_commit(git_store, line):
    commit_with_message(git_store, "bad", f"save\n\n{commitmeta.META_KEY}{line}\n")
    store = GitSessionStore(git_store.path, create=False, auto_pack=False)
    assert ids(store.list()) == ["h1", "h2"]
    assert [name for name, _ in store.last_damaged] == ["bad"]
    assert_isolated(store, "bad", reopen_git(store))


def test_corrupt_message_blob_content(git_store):
    """A valid object whose content is not JSON: list() reads heads only, damaged() finds it."""
    repo = git_store.repo
    head = repo[repo.references["refs/heads/sessions/bad"].target]
    messages = repo[head.tree["messages"].id]
    chunk = repo[messages["0000"].id]
    chunk_builder = repo.TreeBuilder(chunk)
    chunk_builder.insert("000001.json", repo.create_blob(b"{not json"), pygit2.GIT_FILEMODE_BLOB)
    messages_builder = repo.TreeBuilder(messages)
    messages_builder.insert("0000", chunk_builder.write(), pygit2.GIT_FILEMODE_TREE)
    root = repo.TreeBuilder(head.tree)
    root.insert("messages", messages_builder.write(), pygit2.GIT_FILEMODE_TREE)
    sig = pygit2.Signature("t", "t@example.com")
    new = repo.create_commit(None, sig, sig, head.message, root.write(), [head.id])
    repo.references["refs/heads/sessions/bad"].set_target(new)
    assert_isolated(git_store, "bad", reopen_git(git_store))
    assert "JSON" in dict(git_store.damaged())["bad"]


def test_corrupt_session_json_mirror_is_harmless(git_store):
    """session.json only mirrors metadata for people browsing the tree: garbage there does
    not damage the session."""
    repo = git_store.repo
    head = repo[repo.references["refs/heads/sessions/bad"].target]
    root = repo.TreeBuilder(head.tree)
    root.insert("session.json", repo.create_blob(b"\x00garbage"), pygit2.GIT_FILEMODE_BLOB)
    sig = pygit2.Signature("t", "t@example.com")
    new = repo.create_commit(None, sig, sig, head.message, root.write(), [head.id])
    repo.references["refs/heads/sessions/bad"].set_target(new)
    store = GitSessionStore(git_store.path, create=False)
    assert store.damaged() == []
    assert store.load("bad").messages == transcript(3, "bad")


def test_corrupt_packed_refs_is_a_clear_store_error(git_store):
    git_store.gc()
    packed = Path(git_store.repo.path) / "packed-refs"
    lines = packed.read_text().splitlines(keepends=True)
    packed.write_text(lines[0] + "garbage line\n" + "".join(lines[2:]))
    store = GitSessionStore(git_store.path, create=False)
    with pytest.raises(StoreError, match="refs"):
        store.list()


def test_damage_leaves_fsck_naming_only_the_damaged_object(git_store):
    blob = message_blob(git_store, "bad", 0)
    path = loose_path(git_store, blob)
    os.chmod(path, 0o644)
    path.unlink()
    result = subprocess.run(["git", "fsck", "--strict"], cwd=git_store.path,
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert str(blob) in result.stdout + result.stderr


# ---- File -------------------------------------------------------------------------------
@pytest.fixture
def file_store(tmp_path):
    store = FileSessionStore(tmp_path / "files")
    for session_id in HEALTHY:
        store.save(session_id, transcript(3, session_id))
    store.save("bad", transcript(3, "bad"))
    return store


@pytest.mark.parametrize("content", [
    b"", b"{", b'{"metadata": {}, "messages": [', b"\xff\xfe not utf-8", b"[]",
    b'{"metadata": [], "messages": []}', b'{"metadata": {}, "messages": [1, 2]}',
    b'{"metadata": {"label": 5}, "messages": []}',
    b'{"metadata": {"parent_id": ["x"]}, "messages": []}',
], ids=["empty", "brace", "truncated", "not-utf8", "list", "metadata-list", "messages-not-objects",
        "bad-label", "bad-parent"])
def test_corrupt_json_file(file_store, content):
    (file_store.directory / "bad.json").write_bytes(content)
    store = FileSessionStore(file_store.directory)
    assert ids(store.list()) == ["h1", "h2"]
    assert [name for name, _ in store.last_damaged] == ["bad"]
    assert_isolated(store, "bad", lambda: FileSessionStore(file_store.directory))
    with pytest.raises(CorruptSessionError):  # never silently overwritten
        store.save("bad", transcript(1))
    assert store.delete("bad") is True  # but it can be removed, and then replaced
    store.save("bad", transcript(1))
    assert store.load("bad").messages == transcript(1)


def test_npm_fork_with_missing_parent(file_store):
    """An npm-written fork holds only its own messages; without its parent it loads those, as
    the original does, with a warning."""
    fork = {"metadata": {"created_at": "2024-01-01T00:00:00.000Z",
                         "updated_at": "2024-01-01T00:00:00.000Z", "message_count": 1,
                         "parent_id": "gone", "fork_message_id": "gone1", "detached": False},
            "messages": [msg("user", "own")]}
    (file_store.directory / "bad.json").write_text(json.dumps(fork))
    assert file_store.load("bad").messages == [msg("user", "own")]
    assert file_store.damaged() == []
    assert "'gone' is missing" in dict(file_store.last_warnings)["bad"]


def test_file_store_ignores_temp_and_foreign_files(file_store):
    directory = file_store.directory
    (directory / ".bad.json.1234.tmp").write_bytes(b"{half a wri")  # a writer killed mid-write
    (directory / "notes.txt").write_text("hello")
    (directory / "..json").write_text("{")  # not a valid id: not a session at all
    store = FileSessionStore(directory)
    assert ids(store.list()) == ["bad", "h1", "h2"]
    assert store.last_damaged == []


# ---- SQL --------------------------------------------------------------------------------
@pytest.fixture
def sql_store(tmp_path):
    store = SQLSessionStore(SQLiteAdapter(tmp_path / "db.sqlite"))
    for session_id in HEALTHY:
        store.save(session_id, transcript(3, session_id))
    store.save("bad", transcript(3, "bad"))
    yield store
    store.close()


@pytest.mark.parametrize("column,value", [
    ("metadata", "{not json"), ("metadata", "[]"), ("metadata", '{"label": 5}'),
    ("messages", "{not json"), ("messages", '{"a": 1}'), ("messages", "[1, 2]"),
    ("messages", '[{"x": NaN}]'),
])
def test_corrupt_sql_row(sql_store, tmp_path, column, value):
    sql_store.adapter._conn.execute(f"UPDATE sessions SET {column} = ? WHERE id = 'bad'", (value,))
    opened = []

    def reopen():
        opened.append(SQLSessionStore(SQLiteAdapter(tmp_path / "db.sqlite")))
        return opened[-1]

    try:
        # SQLSessionStore.damaged() reads metadata only (as list() does): a row whose messages
        # are damaged is found when it is loaded.
        assert_isolated(sql_store, "bad", reopen, reported_by_damaged=column == "metadata")
    finally:
        for store in opened:
            store.close()
