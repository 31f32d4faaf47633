"""Trees are written as their canonical bytes in one call (issue 16): the ids must be exactly
those libgit2's TreeBuilder and git itself give the same entries, or forks and repeated saves
would stop sharing objects; and the chunk list of a long session is remembered by tree id."""

from __future__ import annotations

import subprocess

import pygit2

from sessionsgit import GitSessionStore
from sessionsgit.git import layout


def builder_tree(repo: pygit2.Repository, entries) -> pygit2.Oid:
    builder = repo.TreeBuilder()
    for name, oid, mode in entries:
        builder.insert(name, oid, mode)
    return builder.write()


def test_raw_trees_match_the_tree_builder_and_git_fsck(tmp_path):
    repo = pygit2.init_repository(str(tmp_path / "r"), bare=True)
    blobs = [repo.create_blob(f"message {i}".encode()) for i in range(130)]
    chunk = [(layout.message_name(i), blobs[i], layout.BLOB) for i in range(128)]
    inner = builder_tree(repo, chunk)
    # names that sort differently as directories ("a-b" < "a/" but "a" tree sorts after "a-b")
    odd = [("a", inner, layout.TREE), ("a-b", blobs[0], layout.BLOB), ("a.c", blobs[1], layout.BLOB),
           ("é", blobs[2], layout.BLOB), ("Z", inner, layout.TREE)]
    messages = [(layout.chunk_name(c), inner, layout.TREE) for c in range(12)]
    for entries in (chunk, odd, messages, [(layout.SESSION_FILE, blobs[0], layout.BLOB)], []):
        assert layout.write_tree(repo.odb, list(reversed(entries))) == builder_tree(repo, entries)
    assert layout.write_messages_tree(repo, [inner] * 12) == builder_tree(repo, messages)
    result = subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=repo.path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_appends_to_a_long_session_reuse_its_chunk_list(tmp_path, monkeypatch):
    store = GitSessionStore(tmp_path / "repo", auto_pack=False)
    store.save("long", [{"role": "user", "content": str(i)} for i in range(700)])
    store.append("long", [{"role": "user", "content": "a"}])
    walked = []
    tree_at = layout.tree_at
    monkeypatch.setattr(layout, "tree_at", lambda repo, oid: walked.append(oid) or tree_at(repo, oid))
    store.append("long", [{"role": "user", "content": "b"}])
    assert len(set(walked)) == 1  # the root tree alone: the chunks were remembered
    layout._messages_cache.clear()
    layout._chunk_cache.clear()
    store.append("long", [{"role": "user", "content": "c"}])
    fresh = GitSessionStore(tmp_path / "repo", create=False)
    fresh._transcripts.directory = tmp_path / "no-cache"
    messages = fresh.load("long").messages
    assert len(messages) == 703 and messages[-3:] == [{"role": "user", "content": c} for c in "abc"]
    result = subprocess.run(["git", "fsck", "--strict"], cwd=tmp_path / "repo",
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_save_reusing_chunks_writes_the_tree_a_save_from_scratch_writes(tmp_path):
    """Chunks below the first change are reused, the rest rewritten: whatever the lengths
    (full, partial, shorter, longer) and wherever the change, the root is the one a save of
    the same messages from nothing gives."""
    repo = pygit2.init_repository(str(tmp_path / "r"), bare=True)
    blobs = [repo.create_blob(f"message {i}".encode()) for i in range(700)]
    edited = [repo.create_blob(f"edited {i}".encode()) for i in range(700)]
    session = repo.create_blob(b"{}")
    chunk = layout.CHUNK
    for old_count in (0, 1, chunk - 1, chunk, 3 * chunk, 3 * chunk + 5, 5 * chunk):
        previous = layout.write_state(repo.odb, blobs[:old_count], session)
        for new_count in (0, 1, chunk, 3 * chunk, 3 * chunk + 5, 3 * chunk + 6, 4 * chunk + 1):
            for change in sorted({0, 1, chunk - 1, chunk, 2 * chunk + 3, old_count, new_count}):
                if change > new_count:
                    continue
                new = blobs[:change] + edited[change:new_count]
                unchanged = min(change, old_count)
                state = layout.write_state(repo.odb, new, session, previous, unchanged)
                assert state.root == layout.write_state(repo.odb, new, session).root, \
                    (old_count, new_count, change)
                assert len(state.chunks) == -(-new_count // chunk)
