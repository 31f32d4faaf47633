"""``append``: messages added at the end in one commit, without reading the transcript, and
without losing a concurrent writer's messages (issue 10 §2)."""

from __future__ import annotations

import multiprocessing
import os
import threading

import pytest

from sessionsgit import GitSessionStore, SessionConflictError

from .helpers import loosen
from .store_contract import transcript


@pytest.fixture
def store(tmp_path):
    s = GitSessionStore(tmp_path / "repo", auto_pack=False)
    yield s
    s.close()


def test_append_creates_then_extends_in_one_commit_each(store):
    meta = store.append("a", transcript(2))
    assert meta.message_count == 2
    meta = store.append("a", transcript(5)[2:], {"label": "five"})
    assert meta.message_count == 5 and meta.label == "five"
    assert store.load("a").messages == transcript(5)
    assert len(store.history("a")) == 2


def test_append_writes_the_same_tree_a_save_of_the_whole_transcript_would(store):
    store.append("a", transcript(130))  # crosses a chunk boundary
    for n in range(130, 260, 43):
        store.append("a", transcript(n + 43)[n:])
    store.save("b", store.load("a").messages)
    tree = lambda sid: store.repo[store.repo.references[f"refs/heads/sessions/{sid}"].target].tree_id
    assert tree("a") == tree("b")


def test_append_reads_no_earlier_message(store, tmp_path):
    """Its cost does not grow with the transcript: an early message blob is never read."""
    store.append("a", transcript(300))
    early = store.repo[store.repo.references["refs/heads/sessions/a"].target].tree["messages"][0][0].id
    store.close()
    loosen(tmp_path / "repo")
    path = tmp_path / "repo" / "objects" / str(early)[:2] / str(early)[2:]
    os.chmod(path, 0o644)
    path.write_bytes(b"damaged")
    from sessionsgit.git import blobcache
    blobcache.shared.clear()
    fresh = GitSessionStore(tmp_path / "repo", create=False, auto_pack=False)
    assert fresh.append("a", [{"role": "user", "content": "more"}]).message_count == 301


def test_append_then_save_on_one_instance(store):
    store.save("a", transcript(2))
    store.append("a", transcript(3)[2:])
    store.save("a", transcript(4))
    assert store.load("a").messages == transcript(4)


def test_expected_head_makes_append_a_strict_compare_and_swap(store, tmp_path):
    first = store.append("a", transcript(1))
    other = GitSessionStore(tmp_path / "repo", create=False, auto_pack=False)
    other.append("a", [{"role": "user", "content": "theirs"}])
    with pytest.raises(SessionConflictError):
        store.append("a", [{"role": "user", "content": "mine"}], expected_head=first.head)
    assert [m.get("content") for m in store.load("a").messages][-1] == "theirs"


def test_append_on_a_stale_instance_builds_on_the_other_writers_commit(store, tmp_path):
    store.append("a", transcript(1))
    other = GitSessionStore(tmp_path / "repo", create=False, auto_pack=False)
    other.append("a", [{"role": "user", "content": "theirs"}])
    store.append("a", [{"role": "user", "content": "mine"}])
    assert [m.get("content") for m in store.load("a").messages][1:] == ["theirs", "mine"]


def _writer_messages(writer: str, count: int) -> list[dict]:
    return [{"role": "user", "content": f"{writer}:{n}"} for n in range(count)]


def _check_all_landed(messages, writers, count):
    by_writer: dict[str, list[int]] = {}
    for message in messages:
        writer, n = message["content"].split(":")
        by_writer.setdefault(writer, []).append(int(n))
    assert by_writer == {w: list(range(count)) for w in writers}


def test_concurrent_appends_from_threads_all_land_in_order(tmp_path):
    GitSessionStore(tmp_path / "repo").close()
    writers = [f"t{n}" for n in range(6)]

    def run(writer):
        s = GitSessionStore(tmp_path / "repo", create=False, pack_threshold=40)
        for message in _writer_messages(writer, 15):
            s.append("shared", [message])
        s.close()

    threads = [threading.Thread(target=run, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    s = GitSessionStore(tmp_path / "repo", create=False)
    _check_all_landed(s.load("shared").messages, writers, 15)
    assert s.load("shared").metadata.message_count == 90


def _process_writer(path, writer):
    s = GitSessionStore(path, create=False, pack_threshold=40)
    for message in _writer_messages(writer, 15):
        s.append("shared", [message])


def test_concurrent_appends_from_processes_all_land_in_order(tmp_path):
    GitSessionStore(tmp_path / "repo").close()
    writers = [f"p{n}" for n in range(4)]
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_process_writer, args=(str(tmp_path / "repo"), w))
                 for w in writers]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    s = GitSessionStore(tmp_path / "repo", create=False)
    _check_all_landed(s.load("shared").messages, writers, 15)


def test_tune_libgit2_false_leaves_process_wide_settings_alone(tmp_path):
    import pygit2

    from sessionsgit.stores import git as git_module

    calls = []
    real = pygit2.option
    try:
        pygit2.option = lambda *args: calls.append(args)  # type: ignore[assignment]
        s = GitSessionStore(tmp_path / "repo", tune_libgit2=False)
        s.save("a", transcript(2))
        s.gc()
        assert calls == []
        GitSessionStore(tmp_path / "repo")
        assert calls, "the default tunes libgit2"
    finally:
        pygit2.option = real
    assert git_module.GitSessionStore(tmp_path / "repo", tune_libgit2=False).load("a").messages \
        == transcript(2)


def test_ten_parallel_cli_appends_all_land(tmp_path):
    """#11.10: ten parallel `sessionsgit append` runs: four failed with "changed by another
    writer"."""
    import subprocess
    import sys

    repo = tmp_path / "repo"
    GitSessionStore(repo).save("s", [])
    processes = [subprocess.Popen([sys.executable, "-m", "sessionsgit", "--repo", str(repo),
                                   "append", "s", f"message {n}"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for n in range(10)]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    texts = sorted(m["content"][0]["text"] for m in GitSessionStore(repo).load("s").messages)
    assert texts == sorted(f"message {n}" for n in range(10))


def test_import_is_all_or_nothing_per_session(tmp_path):
    """#9.11: an import whose save was refused left the fork of its parent behind, and the
    re-run said "already exists"."""
    import json
    import subprocess
    import sys

    repo = tmp_path / "repo"
    s = GitSessionStore(repo)
    s.save("parent", [{"role": "user", "content": "hi", "id": "m1"}])
    s.close()
    bad = {"metadata": {"id": "child", "parent_id": "parent", "fork_message_id": "m1",
                        "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"},
           "messages": [{"role": "user", "content": "hi", "id": "m1"},
                        {"role": "assistant", "content": "x", "score": "NaN"}]}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(bad).replace('"NaN"', "NaN"))
    for _ in range(2):
        result = subprocess.run([sys.executable, "-m", "sessionsgit", "--repo", str(repo),
                                 "import", str(path), "--id", "child"],
                                capture_output=True, text=True)
        assert result.returncode == 1 and "already exists" not in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    store = GitSessionStore(repo)
    assert [m.id for m in store.list()] == ["parent"]
    assert store.list_deleted() == []
