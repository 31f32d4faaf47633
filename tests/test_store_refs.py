"""The Git store's public ref primitives (``refs``, ``ref_target``, ``move_ref``, ``fork`` at an
exact commit) and the rule they exist for: sync moves refs and makes commits only through them."""

from __future__ import annotations

import ast
from pathlib import Path

import pygit2
import pytest

import sessionsgit.sync
from sessionsgit import GitSessionStore, InvalidRevisionError, StoreError
from sessionsgit.stores.git import session_ref

from .helpers import git, transcript


@pytest.fixture
def store(tmp_path):
    return GitSessionStore(tmp_path / "repo")


def test_refs_lists_the_direct_refs_under_a_prefix_by_full_name(store):
    one = pygit2.Oid(hex=store.save("one", transcript(1)).head)
    two = pygit2.Oid(hex=store.save("two", transcript(2)).head)
    assert store.refs("refs/heads/sessions/") == {session_ref("one"): one,
                                                  session_ref("two"): two}
    assert store.refs("refs/nothing/") == {}


def test_move_ref_creates_moves_and_deletes_only_from_the_expected_value(store):
    first = pygit2.Oid(hex=store.save("s", transcript(1)).head)
    second = pygit2.Oid(hex=store.save("s", transcript(2)).head)
    name = "refs/remotes/origin/sessions/s"
    assert store.move_ref(name, first, None)
    assert store.ref_target(name) == first
    assert not store.move_ref(name, second, None)  # exists already
    assert not store.move_ref(name, second, second)  # not at second
    assert store.ref_target(name) == first
    assert store.move_ref(name, second, first)
    assert not store.move_ref(name, None, first)  # moved on
    assert not store.move_ref(name, None, None)  # a delete must say what it deletes
    assert store.move_ref(name, None, second)
    assert store.ref_target(name) is None


def test_move_ref_refuses_to_point_a_session_at_an_object_that_is_no_commit(store):
    store.save("s", transcript(1))
    blob = store.repo.create_blob(b"not a commit")
    with pytest.raises(StoreError, match="no such commit"):
        store.move_ref(session_ref("s"), blob, store.ref_target(session_ref("s")))
    assert store.load("s").messages == transcript(1)


def test_moving_a_session_ref_refreshes_what_the_instance_saw(store):
    first = pygit2.Oid(hex=store.save("s", transcript(1)).head)
    store.save("s", transcript(2))
    assert store.move_ref(session_ref("s"), first, store.ref_target(session_ref("s")))
    saved = store.save("s", transcript(1) + [{"role": "user", "content": "again"}])
    assert store.repo[pygit2.Oid(hex=saved.head)].parent_ids == [first]


def test_fork_at_an_exact_commit_of_the_history(store):
    first = pygit2.Oid(hex=store.save("s", transcript(2)).head)
    store.save("s", transcript(5))
    child = store.fork("s", "child", at=first)
    assert store.load("child").messages == transcript(2)
    assert store.repo[pygit2.Oid(hex=store.load("child").metadata.head)].parent_ids == [first]
    store.save("other", transcript(1))
    elsewhere = pygit2.Oid(hex=store.load("other").metadata.head)
    with pytest.raises(InvalidRevisionError, match="not in the history"):
        store.fork("s", at=elsewhere)
    assert child == "child"


@pytest.mark.parametrize("module", ["sync", "integrations/langgraph_sync"])
def test_sync_reaches_no_store_internals_and_writes_no_commit_or_ref_itself(module):
    source = (Path(sessionsgit.sync.__file__).parent / f"{module}.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    private = sorted({node.attr for node in ast.walk(tree)
                      if isinstance(node, ast.Attribute) and node.attr.startswith("_")
                      and ((isinstance(node.value, ast.Name) and node.value.id == "store")
                           or (isinstance(node.value, ast.Attribute)
                               and node.value.attr == "store"))})
    assert private == []
    called = {node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
              for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert not called & {"create_commit", "compare_and_swap", "delete_if"}
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert not imported & {"compare_and_swap", "delete_if", "current_target", "signatures"}


def test_one_packed_ref_is_found_exactly_whatever_its_place_in_packed_refs(store, tmp_path):
    from sessionsgit.git.refs import read_ref

    heads = {sid: pygit2.Oid(hex=store.save(sid, transcript(1 + n)).head)
             for n, sid in enumerate(["a", "ab", "b", "zz"])}
    git("pack-refs", "--all", cwd=store.path)
    assert not (store.path / "refs" / "heads" / "sessions" / "a").exists()
    for sid, head in heads.items():
        assert read_ref(store.path, session_ref(sid)) == head
    assert read_ref(store.path, session_ref("abc")) is None
    packed = store.path / "packed-refs"
    packed.write_bytes(packed.read_bytes().rstrip(b"\n"))  # the last line without its newline
    assert read_ref(store.path, session_ref("zz")) == heads["zz"]
    packed.write_bytes(packed.read_bytes().replace(str(heads["b"]).encode(), b"x" * 40))
    with pytest.raises(ValueError, match="damaged"):
        read_ref(store.path, session_ref("b"))
    assert read_ref(store.path, session_ref("ab")) == heads["ab"]  # other lines still read
