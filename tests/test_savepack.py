"""A save's objects as one pack (``git/savepack.py``): the bytes git and libgit2 would write,
a pack and index plain git verifies, and nothing half-visible."""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest

from sessionsgit.git import layout, savepack

from .helpers import git


@pytest.fixture
def repo(tmp_path: Path) -> pygit2.Repository:
    return pygit2.init_repository(str(tmp_path / "repo.git"), bare=True)


def test_objects_have_the_ids_libgit2_gives_them(repo: pygit2.Repository) -> None:
    batch = savepack.SavePack()
    blob = batch.blob("Zoë says hi\n".encode())
    entries = [("a.json", blob, layout.BLOB)]
    tree = layout.write_tree(batch, entries)
    author = pygit2.Signature("Zoë Ñandú", "z@example.org", 1_700_000_000, -330)
    committer = pygit2.Signature("CI", "ci@example.org", 1_700_000_123, 120)
    first = batch.commit(tree, [], author, committer, "first\n\nbody\n")
    second = batch.commit(tree, [first], author, committer, "second\n")
    assert blob == repo.create_blob("Zoë says hi\n".encode())
    assert tree == repo.odb.write(pygit2.enums.ObjectType.TREE, layout.tree_bytes(entries))
    assert first == repo.create_commit(None, author, committer, "first\n\nbody\n", tree, [])
    assert second == repo.create_commit(None, author, committer, "second\n", tree, [first])


def test_a_published_pack_is_one_plain_git_verifies_and_reads(tmp_path: Path) -> None:
    path = tmp_path / "other.git"
    git("init", "-q", "--bare", str(path))
    batch = savepack.SavePack()
    small = [(f"{i:06d}.json", batch.blob(b"message %d\n" % i), layout.BLOB) for i in range(3)]
    big = [(f"{i:06d}.json", batch.blob(b"m %d\n" % i), layout.BLOB) for i in range(400)]
    trees = [layout.write_tree(batch, small), layout.write_tree(batch, big)]  # the big one stored
    signature = pygit2.Signature("a", "a@b", 1_700_000_000, 0)
    commit = batch.commit(trees[1], [], signature, signature, "save\n")
    written = batch.publish(path, durable=True)
    assert written.objects == len(batch) == 3 + 400 + 2 + 1 and written.present()
    assert Path(written.keep or "").exists()
    git("verify-pack", str(written.pack.with_suffix(".idx")))
    assert git("cat-file", "-t", str(commit), cwd=path).strip() == "commit"
    assert git("ls-tree", str(trees[1]), cwd=path).count("\n") == 400
    assert git("cat-file", "-p", str(small[2][1]), cwd=path) == "message 2\n"
    written.release()
    written.release()  # idempotent
    assert written.keep is None and not list((path / "objects" / "pack").glob("*.keep"))


def test_an_empty_batch_is_refused(repo: pygit2.Repository) -> None:
    with pytest.raises(ValueError):
        savepack.SavePack().publish(repo.path)
