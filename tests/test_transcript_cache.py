"""The transcript cache (issue 16): resuming reads one file, and the cache can be deleted,
truncated, garbled or left behind by another writer without a load ever returning anything but
the session's true transcript."""

from __future__ import annotations

import pygit2
import pytest

from sessionsgit import GitSessionStore
from sessionsgit.git import transcriptcache

from .helpers import loosen
from .store_contract import transcript


@pytest.fixture
def repo(tmp_path):
    return tmp_path / "repo"


def cache_file(repo, name="s"):
    return repo / "sessionsgit" / "transcripts" / f"{name}.log"


def fresh(repo):
    return GitSessionStore(repo, create=False, auto_pack=False)


def no_object_reads(store, monkeypatch):
    """Fail the test if the store reads a message object (a cache hit reads none)."""
    def refuse(oids, read):
        raise AssertionError("a message object was read")
    monkeypatch.setattr("sessionsgit.git.blobcache.shared.read_all", refuse)


def test_a_resumed_session_is_read_from_one_file(repo, monkeypatch):
    store = GitSessionStore(repo, auto_pack=False)
    store.save("s", transcript(3))
    store.save("s", transcript(5))            # an append: one small record
    store.append("s", transcript(7)[5:])       # another
    store.rename("s", "renamed")              # a record without messages
    assert cache_file(repo).exists()
    reader = fresh(repo)
    no_object_reads(reader, monkeypatch)
    loaded = reader.load("s")
    assert loaded.messages == transcript(7) and loaded.metadata.label == "renamed"


def test_an_edit_is_a_miss_that_rebuilds(repo):
    store = GitSessionStore(repo, auto_pack=False)
    store.save("s", transcript(4))
    edited = transcript(4)
    edited[1] = {"role": "user", "content": "changed"}
    store.save("s", edited)
    assert fresh(repo).load("s").messages == edited
    store.save("s", edited[:2])               # a truncation
    assert fresh(repo).load("s").messages == edited[:2]


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage", "flip"])
def test_a_damaged_cache_costs_one_slow_load(repo, damage):
    store = GitSessionStore(repo, auto_pack=False)
    store.save("s", transcript(3))
    store.save("s", transcript(6))
    path = cache_file(repo)
    data = path.read_bytes()
    if damage == "delete":
        path.unlink()
    elif damage == "truncate":
        path.write_bytes(data[:len(data) - 7])
    elif damage == "garbage":
        path.write_bytes(b"garbage" * 50)
    else:
        path.write_bytes(data[:-3] + bytes([data[-3] ^ 0x55]) + data[-2:])
    assert fresh(repo).load("s").messages == transcript(6)
    assert fresh(repo).load("s").messages == transcript(6)  # rebuilt


def test_a_save_by_another_program_is_a_miss_never_a_stale_answer(repo):
    store = GitSessionStore(repo, auto_pack=False)
    store.save("s", transcript(3))
    store.load("s")
    # another writer whose saves the cache never heard of (as after a plain `git fetch`)
    other = GitSessionStore(repo, create=False, auto_pack=False)
    other._transcripts = transcriptcache.TranscriptCache(repo / "elsewhere")
    other.save("s", transcript(3) + [{"role": "user", "content": "theirs"}])
    assert fresh(repo).load("s").messages[-1] == {"role": "user", "content": "theirs"}


def test_a_hit_never_vouches_for_a_deleted_object(repo):
    store = GitSessionStore(repo, auto_pack=False)
    store.save("s", transcript(3))
    blob = pygit2.hash(store._read_texts("s", store._tree_state("s", store._head("s")).blobs)[1])
    store.close()
    loosen(repo)
    (repo / "objects" / str(blob)[:2] / str(blob)[2:]).unlink()
    from sessionsgit import CorruptSessionError
    from sessionsgit.git import blobcache
    blobcache.shared.clear()
    with pytest.raises(CorruptSessionError):
        fresh(repo).load("s")


def test_forks_and_deleted_sessions(repo):
    store = GitSessionStore(repo, auto_pack=False)
    store.save("s", transcript(4))
    store.fork("s", "f", at=2)
    store.append("f", [{"role": "user", "content": "fork"}])
    assert fresh(repo).load("f").messages == transcript(2) + [{"role": "user", "content": "fork"}]
    store.delete("s")
    assert not cache_file(repo).exists()
    store.save("s", transcript(1))
    assert fresh(repo).load("s").messages == transcript(1)
