"""``quick_list`` (``sessionsgit list`` without pygit2) returns exactly what
``GitSessionStore.list()`` does, or None whenever it cannot be sure."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sessionsgit import GitSessionStore
from sessionsgit import quicklist
from sessionsgit.quicklist import quick_list
from tests.conftest import git
from tests.helpers import loosen


def text(value: str) -> dict[str, object]:
    return {"role": "user", "content": [{"type": "text", "text": value}]}


def same_as_store(path: Path) -> list[dict[str, object]]:
    """quick_list's answer equals the store's own, read from refs and commits with no list
    index; and the index quick_list wrote answers the store the same."""
    quick = quick_list(path)
    assert quick is not None
    index = path / "sessionsgit" / "list-index"
    written = index.read_bytes()
    index.unlink()
    expected = [m.to_dict() for m in GitSessionStore(path, create=False).list()]
    assert [m.to_dict() for m in quick] == expected
    index.write_bytes(written)
    assert [m.to_dict() for m in GitSessionStore(path, create=False).list()] == expected
    return expected


@pytest.fixture
def store(tmp_path: Path) -> GitSessionStore:
    store = GitSessionStore(tmp_path / "repo")
    for n, session_id in enumerate(["plain", "user:42/trip planning", "café/☕", "a%b"]):
        store.save(session_id, [text(f"m{k}") for k in range(n + 1)], {"label": f"l{n}"})
    store.fork("plain", "plain-fork", at=1, metadata={"label": "forked"})
    store.delete("a%b")
    store.rename("café/☕", "renamed")
    return store


def test_loose_heads_before_any_listing(store: GitSessionStore) -> None:
    assert not (store.path / "sessionsgit" / "list-index").exists()
    assert len(same_as_store(store.path)) == 4


def test_cached_heads_packed_refs_and_packed_objects(store: GitSessionStore) -> None:
    store.list()  # writes the list cache
    same_as_store(store.path)
    store.gc()
    assert (store.path / "packed-refs").exists()
    assert not list((store.path / "refs" / "heads" / "sessions").rglob("*"))
    same_as_store(store.path)
    store.save("plain", [text("after gc")])  # a loose ref over a packed one
    same_as_store(store.path)


def test_a_listing_built_from_refs_is_written_back_as_the_list_index(
        store: GitSessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    time.sleep(0.05)  # older than the probe by more than a clock tick: a stamp to trust
    first = quick_list(store.path)
    assert first is not None and (store.path / "sessionsgit" / "list-index").exists()
    monkeypatch.setattr(quicklist, "_session_heads", lambda git_dir: pytest.fail("refs read"))
    again = quick_list(store.path)  # one read of the index: no ref, no commit
    assert again is not None and [m.to_dict() for m in again] == [m.to_dict() for m in first]
    monkeypatch.undo()
    store.save("plain", [text("moved")])
    moved = quick_list(store.path)  # the stamp moved with the ref: built again, from refs
    assert moved is not None and moved[0].id == "plain" and moved[0].message_count == 1
    assert [m.to_dict() for m in moved] == [m.to_dict() for m in GitSessionStore(
        store.path, create=False).list()]


def test_a_packed_head_commit_larger_than_the_first_read(store: GitSessionStore) -> None:
    label = os.urandom(30_000).hex()  # incompressible: its pack entry spans several reads
    store.save("big", [text("x")], {"label": label})
    store.list()  # an index for the other heads; "big" is read from its pack
    store.save("big", [text("x"), text("y")], {"label": label + "!"})
    assert [m["label"] for m in same_as_store(store.path) if m["id"] == "big"] == [label + "!"]


def test_a_non_bare_repository(tmp_path: Path) -> None:
    GitSessionStore(tmp_path / "work", bare=False).save("s", [text("x")])
    assert [m.id for m in quick_list(tmp_path / "work") or []] == ["s"]


def test_empty_and_missing_repositories(tmp_path: Path) -> None:
    GitSessionStore(tmp_path / "empty")
    assert quick_list(tmp_path / "empty") == []
    assert quick_list(tmp_path / "missing") is None
    (tmp_path / "plain-dir").mkdir()
    assert quick_list(tmp_path / "plain-dir") is None


def test_anything_it_cannot_vouch_for_is_left_to_the_store(store: GitSessionStore,
                                                            tmp_path: Path) -> None:
    store.list()
    store.gc()
    assert quick_list(store.path) is not None
    store.save("x" * 300, [text("a long id: a hashed ref name")])
    assert quick_list(store.path) is None
    store.delete("x" * 300)
    assert quick_list(store.path) is not None
    (store.path / "refs" / "heads" / "sessions").mkdir(parents=True, exist_ok=True)
    (store.path / "refs" / "heads" / "sessions" / "garbage").write_text("not a ref\n")
    assert quick_list(store.path) is None  # the store reports it as damaged
    (store.path / "refs" / "heads" / "sessions" / "garbage").unlink()
    (store.path / "sessionsgit" / "list-index").unlink()
    assert quick_list(store.path) is None  # packed heads, no cache: needs pygit2


def test_a_missing_head_commit_is_left_to_the_store(store: GitSessionStore) -> None:
    head = store.load("plain").metadata.head
    store.list()
    store.close()
    loosen(store.path)
    (store.path / "objects" / head[:2] / head[2:]).unlink()
    assert quick_list(store.path) is None
    fresh = GitSessionStore(store.path)
    assert "plain" not in [m.id for m in fresh.list()]
    assert "plain" in [session_id for session_id, _ in fresh.last_damaged]


def test_the_cli_lists_without_pygit2(store: GitSessionStore, tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys\nfrom sessionsgit.cli import cli\n"
            f"cli(['--repo', {str(store.path)!r}, 'list', '--json'], standalone_mode=False)\n"
            "print('pygit2' in sys.modules, file=sys.stderr)")
    env = {k: v for k, v in os.environ.items() if k != "SESSIONSGIT_REPO"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.split()[-1] == "False"
    assert '"user:42/trip planning"' in result.stdout
    assert git("--git-dir", str(store.path), "for-each-ref", "refs/heads/sessions/")
