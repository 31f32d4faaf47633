"""GitSessionStore: the shared contract, plus what only a Git store promises."""

from __future__ import annotations

import pytest

from sessionsgit import GitSessionStore

from .store_contract import StoreContract


class TestGitStoreContract(StoreContract):
    kind = "git"
    options = {"auto_pack": True}


# ---- what only the Git store promises --------------------------------------------------------
import json  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402

import pygit2  # noqa: E402

from sessionsgit import (  # noqa: E402
    InvalidRevisionError,
    SessionConflictError,
    SessionNotFoundError,
    StoreError,
)
from sessionsgit.git import layout  # noqa: E402

from .helpers import git  # noqa: E402
from .store_contract import msg, transcript  # noqa: E402


@pytest.fixture
def repo_path(tmp_path):
    return tmp_path / "repo"


@pytest.fixture
def store(repo_path):
    return GitSessionStore(repo_path)


def grow(store, session_id, count, start=0, **meta):
    """Save a conversation one message at a time, as the manager does."""
    messages = store.load(session_id).messages if store.exists(session_id) else []
    for i in range(start, start + count):
        messages.append(msg("user" if i % 2 == 0 else "assistant", f"message number {i}", f"m{i}"))
        store.save(session_id, messages, meta or None)
    return messages


def test_creates_bare_repo_and_one_commit_per_save(store, repo_path):
    grow(store, "s1", 3)
    assert pygit2.Repository(str(repo_path)).is_bare
    assert git("rev-list", "--count", "sessions/s1", cwd=repo_path).strip() == "3"
    oneline = git("log", "--format=%s", "sessions/s1", cwd=repo_path).splitlines()
    assert oneline[0] == "user: message number 2"
    assert oneline[-1] == "user: message number 0"
    body = git("log", "-1", "--format=%b", "sessions/s1", cwd=repo_path)
    assert body.startswith("Sessionsgit-Meta: ")
    assert json.loads(body.split(": ", 1)[1])["message_count"] == 3


def test_tree_layout_is_one_pretty_blob_per_message(store, repo_path):
    messages = grow(store, "s1", 2)
    files = git("ls-tree", "-r", "--name-only", "sessions/s1", cwd=repo_path).split()
    assert files == ["messages/0000/000000.json", "messages/0000/000001.json", "session.json"]
    blob = git("show", "sessions/s1:messages/0000/000001.json", cwd=repo_path)
    assert json.loads(blob) == messages[1]
    assert "\n  " in blob  # pretty-printed, so git diff is line by line
    meta = json.loads(git("show", "sessions/s1:session.json", cwd=repo_path))
    assert meta["provider"] is None and "label" not in meta and "id" not in meta


def test_large_transcripts_fan_out_into_chunks(store, repo_path):
    n = layout.CHUNK * 2 + 5
    store.save("big", transcript(n))
    chunks = git("ls-tree", "--name-only", "sessions/big:messages", cwd=repo_path).split()
    assert chunks == ["0000", "0001", "0002"]
    assert store.load("big").messages == transcript(n)


def test_save_writes_only_changed_objects(store, repo_path):
    messages = transcript(layout.CHUNK + 10)
    store.save("s1", messages)
    before = set(store.repo.odb)
    messages.append(msg("user", "one more"))
    store.save("s1", messages)
    new = set(store.repo.odb) - before
    # message blob, its chunk tree, messages tree, root tree, commit (session.json unchanged)
    assert len(new) == 5
    first_chunk = git("rev-parse", "sessions/s1:messages/0000", cwd=repo_path).strip()
    previous_chunk = git("rev-parse", "sessions/s1~1:messages/0000", cwd=repo_path).strip()
    assert first_chunk == previous_chunk


def test_in_place_edit_rewrites_that_message_only(store, repo_path):
    messages = transcript(10)
    store.save("s1", messages)
    messages[3]["content"][0]["text"] = "changed"
    store.save("s1", messages)
    changed = git("diff", "--name-only", "sessions/s1~1", "sessions/s1", cwd=repo_path).split()
    assert changed == ["messages/0000/000003.json"]


def test_fork_shares_objects_and_parent_commit(store, repo_path):
    grow(store, "p", 6)
    child = store.fork("p", "c")
    parent_head = store.repo.references["refs/heads/sessions/p"].target
    child_commit = store.repo[store.repo.references["refs/heads/sessions/c"].target]
    assert child_commit.parents[0].id == parent_head
    assert child_commit.tree["messages"].id == store.repo[parent_head].tree["messages"].id
    assert git("merge-base", "sessions/p", "sessions/c", cwd=repo_path).strip() == str(parent_head)
    assert child == "c"
    # git log of the fork shows the inherited history
    assert git("rev-list", "--count", "sessions/c", cwd=repo_path).strip() == "7"


def test_fork_at_count_uses_the_save_with_that_transcript(store, repo_path):
    grow(store, "p", 6)
    store.fork("p", "c", at=3)
    base = git("merge-base", "sessions/p", "sessions/c", cwd=repo_path).strip()
    assert base == git("rev-parse", "sessions/p~3", cwd=repo_path).strip()
    assert store.load("c").messages == store.load("p").messages[:3]


def test_fork_at_commitish_and_message_id_wins(store, repo_path):
    grow(store, "p", 5)
    old = git("rev-parse", "sessions/p~2", cwd=repo_path).strip()
    store.fork("p", "c1", at=old[:10])
    assert len(store.load("c1").messages) == 3
    store.fork("p", "c2", at="sessions/p~4")
    assert len(store.load("c2").messages) == 1
    store.fork("p", "c3", at="m1")  # a message id, not a revision
    assert len(store.load("c3").messages) == 2
    grow(store, "other", 2)
    with pytest.raises(InvalidRevisionError):
        store.fork("p", "c4", at="sessions/other")  # not in p's history
    assert not store.exists("c4")


def test_fork_cost_does_not_depend_on_transcript_length(store):
    store.save("long", transcript(3000))
    before = set(store.repo.odb)
    store.fork("long", "child")
    # only the commit: the child shares the parent's whole tree
    assert len(set(store.repo.odb) - before) == 1


def test_detached_fork_is_a_new_root(store):
    grow(store, "p", 2)
    store.fork("p", "d", detached=True)
    commit = store.repo[store.repo.references["refs/heads/sessions/d"].target]
    assert commit.parents == []
    assert store.load("d").metadata.parent_id == "p"


def test_rename_is_a_commit_with_the_same_tree(store, repo_path):
    grow(store, "s1", 2)
    store.rename("s1", "A better\nname")
    assert git("rev-parse", "sessions/s1^{tree}", cwd=repo_path) == \
        git("rev-parse", "sessions/s1~1^{tree}", cwd=repo_path)
    assert git("log", "-1", "--format=%s", "sessions/s1", cwd=repo_path).strip() == \
        "rename: A better name"
    assert store.history("s1")[0].label == "A better\nname"


def test_history_and_load_at_older_save(store, repo_path):
    grow(store, "s1", 4, label="lab")
    history = store.history("s1")
    assert [h.message_count for h in history] == [4, 3, 2, 1]
    assert history[0].subject == "assistant: message number 3"
    assert history[0].commit == git("rev-parse", "sessions/s1", cwd=repo_path).strip()
    assert all(h.label == "lab" and h.time.endswith("Z") for h in history)
    old = store.load("s1", at=history[2].commit)
    assert len(old.messages) == 2 and old.metadata.message_count == 2
    assert len(store.load("s1", at="sessions/s1~1").messages) == 3
    # load(at=...) does not move the compare-and-swap base: a save still works
    store.save("s1", transcript(1))
    with pytest.raises(InvalidRevisionError):
        store.load("s1", at="not-a-rev")
    with pytest.raises(SessionNotFoundError):
        store.history("nope")


def test_delete_restore_and_purge(store):
    grow(store, "s1", 2)
    assert store.delete("s1")
    assert not store.exists("s1")
    deleted = store.list_deleted()
    assert [d.id for d in deleted] == ["s1"]
    store.restore("s1")
    assert len(store.load("s1").messages) == 2
    # every deleted version stays recoverable
    store.delete("s1")
    grow(store, "s1", 3)
    store.delete("s1")
    assert len(store.list_deleted()) == 2
    restored = store.restore("s1")
    assert restored.message_count == 3
    store.delete("s1")
    assert store.purge("s1") == 2
    assert store.list_deleted() == []
    with pytest.raises(SessionNotFoundError):
        store.restore("s1")


def test_restore_refuses_to_overwrite_a_live_session(store):
    grow(store, "s1", 2)
    store.delete("s1")
    grow(store, "s1", 1)
    with pytest.raises(SessionConflictError):
        store.restore("s1")
    assert len(store.load("s1").messages) == 1
    assert len(store.list_deleted()) == 1


def test_stale_instance_cannot_overwrite_another_writers_commit(repo_path):
    a = GitSessionStore(repo_path)
    b = GitSessionStore(repo_path)
    a.save("s1", transcript(1))
    b.load("s1")
    a.save("s1", transcript(2))
    with pytest.raises(SessionConflictError):
        b.save("s1", transcript(1) + [msg("user", "from b")])
    assert a.load("s1").messages == transcript(2)
    b.load("s1")
    b.save("s1", transcript(3))
    assert GitSessionStore(repo_path).load("s1").messages == transcript(3)


@pytest.mark.parametrize("looked", ["exists", "load"])
def test_a_save_after_seeing_the_session_absent_never_overwrites_one_created_meanwhile(
        repo_path, looked):
    """Seen in CI as a lost acknowledged save: writer A found the session absent (``exists``
    or ``load``), B created it, and A's save built on B's head, dropping B's message."""
    a = GitSessionStore(repo_path)
    b = GitSessionStore(repo_path)
    assert (a.exists("s") if looked == "exists" else a.load("s")) in (False, None)
    b.save("s", [msg("user", "from b")])
    with pytest.raises(SessionConflictError):
        a.save("s", [msg("user", "from a")])
    assert a.load("s").messages == [msg("user", "from b")]
    a.save("s", [msg("user", "from b"), msg("user", "from a")])  # loaded: builds on it
    assert b.load("s").messages == [msg("user", "from b"), msg("user", "from a")]
    c = GitSessionStore(repo_path)
    assert not c.exists("new")
    c.save("new", [msg("user", "mine")])  # absent, still absent: it creates
    c.save("new", [msg("user", "mine"), msg("user", "again")])
    assert GitSessionStore(repo_path).load("new").metadata.message_count == 2


def _writer(path, session_id, count, queue):
    store = GitSessionStore(path)
    acknowledged, conflicts = [], 0
    for i in range(count):
        for _attempt in range(200):
            try:
                messages = store.load(session_id).messages if store.exists(session_id) else []
                messages.append(msg("user", f"{os.getpid()}-{i}"))
                store.save(session_id, messages)
                acknowledged.append(f"{os.getpid()}-{i}")
                break
            except SessionConflictError:
                conflicts += 1
    queue.put((acknowledged, conflicts))


@pytest.mark.parametrize("shared", [True, False])
def test_two_processes_never_lose_a_commit(repo_path, shared):
    GitSessionStore(repo_path)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    ids = ["same", "same"] if shared else ["one", "two"]
    procs = [ctx.Process(target=_writer, args=(str(repo_path), sid, 15, queue)) for sid in ids]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    store = GitSessionStore(repo_path, create=False)
    acknowledged = [a for acks, _ in results for a in acks]
    assert len(acknowledged) == 30
    stored = {m["content"][0]["text"] for sid in set(ids) for m in store.load(sid).messages}
    assert set(acknowledged) <= stored
    assert git("fsck", "--strict", cwd=repo_path, check=True) is not None


def test_existing_non_bare_repo_keeps_worktree_and_head(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    (work / "README").write_text("hello\n")
    git("add", "README", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init", cwd=work)
    head = git("rev-parse", "HEAD", cwd=work)
    store = GitSessionStore(work)
    grow(store, "s1", 2)
    store.fork("s1", "s2")
    assert git("rev-parse", "HEAD", cwd=work) == head
    assert git("status", "--porcelain", cwd=work) == ""
    assert git("symbolic-ref", "HEAD", cwd=work).strip() == "refs/heads/main"
    assert len(GitSessionStore(work / ".git", create=False).load("s2").messages) == 2


def test_open_errors_are_typed(tmp_path):
    with pytest.raises(StoreError):
        GitSessionStore(tmp_path / "missing", create=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError):
        GitSessionStore(tmp_path / "file")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(StoreError):
        GitSessionStore(tmp_path / "full")


def test_commit_identity(repo_path, monkeypatch):
    store = GitSessionStore(repo_path)
    store.save("default", transcript(1))
    assert git("log", "-1", "--format=%an <%ae>", "sessions/default", cwd=repo_path).strip() == \
        "sessionsgit <sessionsgit@localhost>"
    git("config", "user.name", "Repo User", cwd=repo_path)
    git("config", "user.email", "repo@example.com", cwd=repo_path)
    store.save("configured", transcript(1))
    assert git("log", "-1", "--format=%an <%ae>", "sessions/configured", cwd=repo_path).strip() == \
        "Repo User <repo@example.com>"
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Env Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "env@example.com")
    store.save("env", transcript(1))
    assert git("log", "-1", "--format=%an <%ae>|%cn", "sessions/env", cwd=repo_path).strip() == \
        "Env Author <env@example.com>|Repo User"


def test_auto_pack_keeps_repo_packed_and_fsck_clean(repo_path):
    store = GitSessionStore(repo_path, pack_threshold=60)
    grow(store, "s1", 40)
    store.fork("s1", "s2", at=20)
    grow(store, "s2", 5, start=100)
    count = dict(line.split(": ") for line in git("count-objects", "-v", cwd=repo_path).splitlines())
    assert int(count["count"]) < 60
    assert int(count["packs"]) >= 1
    git("fsck", "--strict", cwd=repo_path)
    fresh = GitSessionStore(repo_path, create=False)
    assert len(fresh.load("s1").messages) == 40
    assert len(fresh.load("s2").messages) == 25
    result = fresh.gc()
    assert git("count-objects", "-v", cwd=repo_path).count("packs: 1") == 1
    assert (repo_path / "packed-refs").exists()
    assert not (repo_path / "refs" / "heads" / "sessions" / "s1").exists()
    assert result["packed_objects"] >= 0
    git("fsck", "--strict", cwd=repo_path)


def test_auto_pack_packs_refs_once_many_are_loose(repo_path, monkeypatch):
    from sessionsgit.git import packing
    monkeypatch.setattr(packing, "LOOSE_REF_THRESHOLD", 8)
    store = GitSessionStore(repo_path, pack_threshold=20)
    for i in range(12):
        store.save(f"s{i}", transcript(1))
    assert (repo_path / "packed-refs").exists()
    assert len(list((repo_path / "refs" / "heads" / "sessions").iterdir())) < 8
    assert len(GitSessionStore(repo_path).list()) == 12


def test_geometric_merge_keeps_pack_count_logarithmic(repo_path):
    from sessionsgit.git import autopack, packing
    assert packing.packs_to_merge([1, 3, 7, 20]) == 0
    assert packing.packs_to_merge([1, 1, 10, 100]) == 2
    assert packing.packs_to_merge([5, 6]) == 2
    mib = 1 << 20
    assert packing.packs_to_merge([mib, mib, 3 * mib]) == 2  # all three would rewrite 5 MiB
    assert packing.packs_to_merge([3 * mib, 3 * mib]) == 0  # over the budget: left to gc()
    assert packing.packs_to_merge([3 * mib, 3 * mib], everything=True) == 2
    assert packing.within_budget([1, 2, 3, 4], 4, 6) == 3
    store = GitSessionStore(repo_path, pack_threshold=10)
    grow(store, "s1", 300)
    packs = int(dict(line.split(": ") for line in
                     git("count-objects", "-v", cwd=repo_path).splitlines())["packs"])
    # the small packs of the saves since the last pass, plus a geometric series of merged ones
    assert 1 <= packs <= autopack.SMALL_PACK_LIMIT + 8
    assert len(GitSessionStore(repo_path).load("s1").messages) == 300
    git("fsck", "--strict", cwd=repo_path)


def test_fsck_strict_clean_after_everything(store, repo_path):
    grow(store, "a", 5)
    store.fork("a", "b", at=2)
    store.fork("a", "c", detached=True)
    store.save("c", [])
    store.rename("a", "label")
    store.delete("b")
    store.save("empty", [])
    result = subprocess.run(["git", "fsck", "--strict"], cwd=repo_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_list_cache_survives_a_fresh_instance_and_notices_plain_git_changes(repo_path):
    store = GitSessionStore(repo_path)
    for i in range(5):
        store.save(f"s{i}", transcript(2), {"label": f"label {i}"})
    assert len(store.list()) == 5
    assert (repo_path / "sessionsgit" / "list-index").stat().st_size > 0
    # a ref moved behind the store's back (as plain `git fetch` or `git update-ref` would)
    git("update-ref", "refs/heads/sessions/s0", "refs/heads/sessions/s1", cwd=repo_path)
    git("update-ref", "refs/heads/sessions/copy", "refs/heads/sessions/s2", cwd=repo_path)
    fresh = GitSessionStore(repo_path, create=False)
    listed = {m.id: m for m in fresh.list()}
    assert listed["s0"].label == "label 1"
    assert listed["copy"].label == "label 2" and listed["copy"].id == "copy"
    assert listed["s0"].head == git("rev-parse", "sessions/s1", cwd=repo_path).strip()
    # callers get copies: changing one never changes the cache
    listed["s3"].extra["x"] = 1
    assert fresh.list()[0].extra == {}


def test_garbage_list_cache_is_ignored(repo_path):
    store = GitSessionStore(repo_path)
    store.save("s1", transcript(1), {"label": "real"})
    store.list()
    (repo_path / "sessionsgit" / "list-index").write_bytes(b"\x00garbage" * 100)
    assert [m.label for m in GitSessionStore(repo_path).list()] == ["real"]


def test_maintenance_removes_abandoned_temp_files_only(repo_path):
    import os
    import time as time_module
    store = GitSessionStore(repo_path)
    store.save("s1", transcript(2))
    fanout = repo_path / "objects" / "ab"
    fanout.mkdir(exist_ok=True)
    old = fanout / "tmp_object_git2_old"
    fresh = fanout / "tmp_object_git2_fresh"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    an_hour_ago = time_module.time() - 7200
    os.utime(old, (an_hour_ago, an_hour_ago))
    store.gc()
    assert not old.exists() and fresh.exists()
    git("fsck", "--strict", cwd=repo_path)


def test_store_reopens_the_repository_after_packs_change(repo_path):
    """libgit2 keeps every pack it ever loaded; after a repack the store reopens the repository
    so object lookups (done before every write) don't grow with the number of merges."""
    store = GitSessionStore(repo_path, pack_threshold=10)
    first = store.repo
    grow(store, "s1", 30)
    assert store.repo is not first
    other = GitSessionStore(repo_path)
    before = other.repo
    grow(store, "s3", 1)  # a second pack, whatever automatic packing left
    store.gc()  # another instance repacks
    grow(other, "s2", 1)
    assert other.repo is not before
    assert len(other.load("s1").messages) == 30


def test_closed_store_raises_a_typed_error(repo_path):
    store = GitSessionStore(repo_path)
    store.save("s1", transcript(1))
    with store:
        pass  # the context manager closes it
    store.close()  # idempotent
    for call in (lambda: store.load("s1"), store.list, lambda: store.save("s1", transcript(2))):
        with pytest.raises(StoreError, match="closed"):
            call()
    assert GitSessionStore(repo_path).load("s1").messages == transcript(1)


def test_automatic_maintenance_leaves_big_packs_to_gc(repo_path, monkeypatch):
    from sessionsgit.git import packing
    store = GitSessionStore(repo_path, auto_pack=False)
    store.save("big", transcript(400))
    store.gc()
    big_pack = packing.pack_files(store.repo)
    assert len(big_pack) == 1
    monkeypatch.setattr(packing, "AUTO_MERGE_MAX_PACK_BYTES", big_pack[0].stat().st_size)
    store.auto_pack, store.pack_threshold = True, 10
    grow(store, "small", 60)
    assert big_pack[0].exists()  # automatic packing never rewrote it
    store.gc(merge_packs=True)
    assert packing.pack_files(store.repo) != big_pack and len(packing.pack_files(store.repo)) == 1
    assert len(GitSessionStore(repo_path).load("big").messages) == 400
    git("fsck", "--strict", cwd=repo_path)


def test_a_few_loose_objects_never_read_as_a_full_packing_budget(repo_path):
    """The estimate sampled one fan-out directory: with a budget of 256, one loose object that
    happened to land in ``objects/17`` read as 256, so a fresh store packed after a handful of
    saves (and a CLI test deleting a loose commit found it packed)."""
    import hashlib

    from sessionsgit.git import autopack, packing
    store = GitSessionStore(repo_path, auto_pack=False)
    n = 0
    while True:  # a blob whose id starts with 17, found by hashing as git does
        data = f"blob {n}".encode()
        if hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest().startswith("17"):
            break
        n += 1
    assert str(store.repo.create_blob(data)).startswith("17")
    for extra in range(8):
        store.repo.create_blob(f"another {extra}".encode())
    assert autopack.estimate_loose_objects(store.repo) < packing.LOOSE_OBJECT_THRESHOLD
