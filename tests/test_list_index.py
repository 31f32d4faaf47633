"""The list index (issue 16): a fresh process answers ``list()`` from one file, and the index can
be deleted, truncated, garbled or left stale by plain git (``update-ref``, ``fetch``,
``pack-refs``, ``gc``) without ``list()`` ever returning anything but the refs' true answer."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sessionsgit import GitSessionStore
from sessionsgit.git import listcache
from sessionsgit.quicklist import quick_list

from .conftest import git
from .helpers import loosen
from .store_contract import transcript


def settle() -> None:
    """Let the file system's clock move past the last write (a stamp taken in the same tick as
    a change is, rightly, not trusted)."""
    time.sleep(0.05)


def index_file(repo: Path) -> Path:
    return repo / "sessionsgit" / "list-index"


def fresh(repo: Path) -> GitSessionStore:
    return GitSessionStore(repo, create=False, auto_pack=False)


def truth(repo: Path) -> dict[str, tuple[str, str | None]]:
    """{id: (head, label)} as the refs and commits say, through a store with no index."""
    store = fresh(repo)
    store._list_cache = listcache.ListCache(repo / "no-index-here")
    try:
        return {m.id: (m.head or "", m.label) for m in store.list()}
    finally:
        store.close()


def listed(store: GitSessionStore) -> dict[str, tuple[str, str | None]]:
    return {m.id: (m.head or "", m.label) for m in store.list()}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    store = GitSessionStore(tmp_path / "repo", auto_pack=False)
    for n in range(6):
        store.save(f"s{n}", transcript(n + 1), {"label": f"label {n}"})
    settle()
    store.list()  # writes a trusted index
    store.close()
    return tmp_path / "repo"


def refuse_refs(store: GitSessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(prefix: str) -> None:
        raise AssertionError("the refs were read")
    monkeypatch.setattr(store, "_refs", refuse)


def test_a_fresh_process_lists_from_the_index_alone(repo, monkeypatch):
    store = fresh(repo)
    refuse_refs(store, monkeypatch)
    sessions = store.list()
    assert [m.id for m in sessions] == [f"s{n}" for n in reversed(range(6))]
    assert sessions[0].label == "label 5" and sessions[0].message_count == 6
    assert store.last_damaged == []
    # callers get copies: changing one never changes the next answer
    sessions[0].extra["x"] = 1
    assert store.list()[0].extra == {}


def test_quick_list_answers_from_the_index_without_reading_refs(repo, monkeypatch):
    monkeypatch.setattr("sessionsgit.quicklist._session_heads",
                        lambda git_dir: (_ for _ in ()).throw(AssertionError("refs read")))
    quick = quick_list(repo)
    assert quick is not None
    assert [m.to_dict() for m in quick] == [m.to_dict() for m in fresh(repo).list()]


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage", "flip"])
def test_a_damaged_index_costs_one_slow_list_and_is_rebuilt(repo, damage, monkeypatch):
    path = index_file(repo)
    data = path.read_bytes()
    if damage == "delete":
        path.unlink()
    elif damage == "truncate":
        path.write_bytes(data[:len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00garbage" * 100)
    else:  # one bit flipped in a label: only the CRC can tell
        at = data.rindex(b"label 3") + 6
        path.write_bytes(data[:at] + b"4" + data[at + 1:])
    expected = truth(repo)
    assert listed(fresh(repo)) == expected
    settle()
    assert listed(fresh(repo)) == expected  # rebuilt: whole, trusted, and answering alone
    store = fresh(repo)
    refuse_refs(store, monkeypatch)
    assert listed(store) == expected


def test_refs_moved_by_plain_git_are_seen(repo, tmp_path):
    before = truth(repo)
    git("update-ref", "refs/heads/sessions/s0", "refs/heads/sessions/s1", cwd=repo)
    git("update-ref", "refs/heads/sessions/copy", "refs/heads/sessions/s2", cwd=repo)
    git("update-ref", "-d", "refs/heads/sessions/s5", cwd=repo)
    now = listed(fresh(repo))
    assert now["s0"] == before["s1"] and now["copy"] == before["s2"] and "s5" not in now
    assert now == truth(repo)


def test_a_plain_git_fetch_behind_the_index_is_seen(repo, tmp_path):
    other = GitSessionStore(tmp_path / "other", auto_pack=False)
    other.save("s1", transcript(9), {"label": "fetched"})
    other.save("new", transcript(2), {"label": "new one"})
    other.close()
    git("fetch", "--quiet", "--force", str(tmp_path / "other"),
        "refs/heads/sessions/*:refs/heads/sessions/*", cwd=repo)
    now = listed(fresh(repo))
    assert now["s1"][1] == "fetched" and now["new"][1] == "new one" and "s4" in now
    assert now == truth(repo)


@pytest.mark.parametrize("command", [["pack-refs", "--all"], ["gc", "--quiet"],
                                     ["repack", "-a", "-d", "-q"]])
def test_packing_refs_and_objects_keeps_the_answer(repo, command):
    expected = truth(repo)
    git(*command, cwd=repo)
    assert listed(fresh(repo)) == expected
    settle()
    assert listed(fresh(repo)) == expected


def test_a_save_by_another_process_is_seen_and_only_its_commit_is_read(repo, monkeypatch):
    writer = fresh(repo)
    writer.save("s2", transcript(4), {"label": "moved"})
    writer.close()
    reads = []
    from sessionsgit.git import commitmeta
    parse = commitmeta.parse
    monkeypatch.setattr(commitmeta, "parse", lambda raw: reads.append(raw) or parse(raw))
    assert listed(fresh(repo))["s2"][1] == "moved"
    assert len(reads) == 1  # the other five heads came from the index's rows


def test_a_deleted_head_object_is_reported_even_with_a_trusted_index(repo):
    head = truth(repo)["s2"][0]
    loosen(repo)
    (repo / "objects" / head[:2] / head[2:]).unlink()
    store = fresh(repo)
    assert "s2" not in listed(store)
    assert [session for session, _reason in store.last_damaged] == ["s2"]
    assert quick_list(repo) is None


def test_a_stamp_as_new_as_the_probe_is_not_trusted(repo):
    """A change in the same clock tick as the index build could leave every stat as it was:
    such a stamp is kept out, so the next list() reads the refs again."""
    refs = repo / "refs" / "heads" / "sessions"
    future = time.time_ns() + 10**9
    os.utime(refs, ns=(future, future))
    store = fresh(repo)
    assert listed(store) == truth(repo)
    assert store._list_cache._stamp is None
    assert store._list_cache.answer() is None


def test_an_unwritable_index_directory_still_lists(repo):
    index_file(repo).unlink()
    cache_dir = repo / "sessionsgit"
    os.chmod(cache_dir, 0o500)
    try:
        if os.access(cache_dir, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        assert listed(fresh(repo)) == truth(repo)
    finally:
        os.chmod(cache_dir, 0o700)
