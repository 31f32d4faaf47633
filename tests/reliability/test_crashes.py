"""Crash safety: writer processes SIGKILLed at random moments during saves, renames, forks,
deletes and packing, over and over. After every kill the repository opens, every session loads
as a complete save, no acknowledged save is lost, and git fsck stays clean. Also durable mode:
objects are fsynced before the ref moves."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pygit2
import pytest

from sessionsgit import GitSessionStore
from sessionsgit.git import packing
from sessionsgit.stores import git as git_store_module

from ._util import assert_pattern_transcript, fsck, parse_acks, start_worker
from .workers import append_one, pattern

ROUNDS = int(os.environ.get("SESSIONSGIT_CRASH_ROUNDS", "100"))
TIME_BUDGET = 90.0  # seconds: stop early (having run at least 20 rounds) on a very slow machine


def kill_at_random(process, rng: random.Random) -> str:
    """Wait until the worker is saving, let it run 0-30 ms, SIGKILL it; its stdout."""
    line = process.stdout.readline()
    assert line == "ready\n", line + process.stderr.read()
    time.sleep(rng.uniform(0, 0.030))
    process.send_signal(signal.SIGKILL)
    out, err = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, err
    return out, err


def check_repository(repo: Path, acked: dict[str, int]) -> None:
    """Opens, every session (and deleted session) loads as a complete save, and no session is
    shorter than its last acknowledged save."""
    store = GitSessionStore(repo, create=False, auto_pack=False)
    try:
        sessions = {meta.id: meta for meta in store.list()}
        assert store.damaged() == []
        for session_id, meta in sessions.items():
            session = store.load(session_id)
            assert_pattern_transcript(session)
            assert session.metadata.head == meta.head
        for session_id, count in acked.items():
            assert session_id in sessions, f"acknowledged session {session_id} vanished"
            assert sessions[session_id].message_count >= count, (session_id, count)
        for deleted in store.list_deleted():
            assert_pattern_transcript(_load_ref(store, deleted.ref))
    finally:
        store.close()


class _Loaded:
    def __init__(self, metadata, messages):
        self.metadata, self.messages = metadata, messages


def _load_ref(store: GitSessionStore, ref: str) -> _Loaded:
    """A deleted version's transcript, read straight from its trash ref."""
    target = store.repo.references[ref].target
    session_id = ref.split("/")[2]
    metadata = store._metadata_at(session_id, target)
    tree = store._tree_state(session_id, target)
    return _Loaded(metadata, store._read_messages(session_id, tree.blobs))


def test_sigkill_during_saves_and_packing(tmp_path):
    repo = tmp_path / "repo"
    GitSessionStore(repo)
    rng = random.Random(int(os.environ.get("SESSIONSGIT_CRASH_SEED", "20240611")))
    acked: dict[str, int] = {}
    started = time.monotonic()
    rounds = recovered_locks = 0
    for rounds in range(1, ROUNDS + 1):
        # A third of the rounds pack every few saves, so kills land during packing too; some
        # run two writers at once; some are durable.
        pack_threshold = 8 if rounds % 3 == 0 else 100_000
        durable = "1" if rounds % 4 == 0 else "0"
        writers = 2 if rounds % 5 == 0 else 1
        processes = [start_worker("crash", repo, rng.randrange(1 << 30), pack_threshold, durable)
                     for _ in range(writers)]
        for process in processes:
            out, err = kill_at_random(process, rng)
            recovered_locks += err.count("removed stale lock file")
            assert "Traceback" not in err, err
            for ack in parse_acks(out):
                acked[ack["session"]] = max(acked.get(ack["session"], 0), ack["count"])
        check_repository(repo, acked)
        if rounds % 10 == 0:
            fsck(repo, "--strict")
        else:
            fsck(repo, "--connectivity-only")
        if time.monotonic() - started > TIME_BUDGET and rounds >= 20:
            break
    assert sum(acked.values()) > 0, "the kills all landed before the first save"
    fsck(repo, "--strict")

    # Nothing is left blocked: a final writer appends to every session and packs.
    store = GitSessionStore(repo, create=False, stale_lock_seconds=1.0)
    for session_id in sorted(m.id for m in store.list()):
        count = append_one(store, session_id)
        assert count == len(store.load(session_id).messages)
    store.gc()
    check_repository(repo, acked)
    fsck(repo, "--strict")
    debris = [p.name for p in (repo / "objects").rglob("*") if "tmp" in p.name or "_git2_" in p.name]
    print(f"{rounds} rounds, {len(acked)} sessions, {sum(acked.values())} messages acknowledged, "
          f"{recovered_locks} stale locks recovered, {len(debris)} temp files left by kills")


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name fds")
def test_durable_saves_fsync_objects_before_the_ref_moves(tmp_path, monkeypatch):
    store = GitSessionStore(tmp_path / "repo", durable=True, auto_pack=False)
    events: list[tuple[str, str]] = []
    real_fsync = os.fsync
    real_cas = git_store_module.compare_and_swap

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(
            f"/proc/self/fd/{fd}") else str(fd)))
        return real_fsync(fd)

    def compare_and_swap(repo, name, new, *args, **kwargs):
        events.append(("ref", f"{name} {new}"))
        return real_cas(repo, name, new, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(git_store_module, "compare_and_swap", compare_and_swap)

    meta = store.save("s", [pattern(0), pattern(1)])
    ref_at = events.index(("ref", f"refs/heads/sessions/s {meta.head}"))
    synced_before = [path for kind, path in events[:ref_at] if kind == "fsync"]
    pack = next(p for p in packing.pack_files(store.repo)
                if pygit2.Oid(hex=meta.head) in packing.pack_object_ids(p))
    held = set(packing.pack_object_ids(pack))
    for index in range(2):  # the commit's pack holds every message blob
        assert store.repo[store.repo[meta.head].tree["messages/0000"].id][f"{index:06d}.json"].id \
            in held
    assert str(pack) in synced_before  # the pack,
    index_name = pack.with_suffix(".idx").name
    assert any(path.endswith(index_name + ".tmp") for path in synced_before)  # its index (aside),
    assert str(pack.parent) in synced_before  # and the directory entries
    synced_after = [path for kind, path in events[ref_at:] if kind == "fsync"]
    assert str(Path(store.repo.path) / "refs/heads/sessions/s") in synced_after

    reopened = GitSessionStore(tmp_path / "repo", create=False, durable=True)
    assert reopened.load("s").messages == [pattern(0), pattern(1)]
    events.clear()
    reopened.save("s", [pattern(0), pattern(1), pattern(2)])
    assert any(kind == "fsync" for kind, _ in events)
    assert reopened.load("s").messages == [pattern(i) for i in range(3)]


def test_not_durable_does_not_fsync(tmp_path, monkeypatch):
    store = GitSessionStore(tmp_path / "repo", auto_pack=False)
    calls = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd))
    store.save("s", [pattern(0)])
    assert calls == []
