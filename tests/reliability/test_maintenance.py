"""Maintenance never loses data (issue 9): sessionsgit's own packing beside plain git's
maintenance commands, in-flight saves, killed packers, left-over locks, purge for good."""

from __future__ import annotations

import errno
import os
import subprocess
import threading
import time
from pathlib import Path

import pygit2
import pytest

from sessionsgit import GitSessionStore, SessionConflictError, StoreError
from sessionsgit.git import packing, savepack

from ..helpers import git, loosen
from ..store_contract import transcript
from ._util import fsck


def loose_count(repo: Path) -> int:
    return sum(1 for d in (repo / "objects").iterdir() if len(d.name) == 2
               for _ in d.iterdir())


def pack_names(repo: Path) -> set[str]:
    return {p.name for p in (repo / "objects" / "pack").glob("*.pack")}


@pytest.fixture
def repo(tmp_path) -> Path:
    return tmp_path / "repo"


def five_sessions(repo: Path) -> GitSessionStore:
    store = GitSessionStore(repo, auto_pack=False)
    for n in range(5):
        store.save(f"s{n}", transcript(n + 2))
    return store


def assert_all_load(repo: Path, expected: dict[str, int]) -> None:
    store = GitSessionStore(repo, create=False, auto_pack=False)
    try:
        listed = {meta.id: meta.message_count for meta in store.list()}
        assert store.last_damaged == []
        assert listed == expected
        for session_id, count in expected.items():
            assert store.load(session_id).messages == transcript(count)
    finally:
        store.close()


def test_gc_after_plain_git_repack_keeps_every_object(repo):
    """#9.1: a merged pack byte-identical to an input pack was deleted with its inputs."""
    five_sessions(repo).close()
    for _ in range(2):
        git("repack", "-a", "-q", cwd=repo)
        store = GitSessionStore(repo, create=False)
        store.gc()
        store.close()
    assert pack_names(repo)
    fsck(repo, "--strict")
    assert_all_load(repo, {f"s{n}": n + 2 for n in range(5)})


def hold_ref_lock(repo: Path, session_id: str) -> Path:
    lock = repo / "refs" / "heads" / "sessions" / f"{session_id}.lock"
    lock.write_bytes(b"")
    return lock


def save_in_thread(store: GitSessionStore, session_id: str, messages) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["meta"] = store.save(session_id, messages)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def keeps(repo: Path) -> int:
    """Packs of saves in flight: written, their branch not moved yet."""
    return len(list((repo / "objects" / "pack").glob("*.keep")))


def wait_for_the_save_in_flight(repo: Path) -> None:
    """Until a save's objects are written (its pack kept) and it waits for its ref lock."""
    deadline = time.monotonic() + 5
    while keeps(repo) == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert keeps(repo) == 1


def test_in_flight_save_survives_sessionsgit_gc_then_git_repack_ad(repo):
    """#9.2: sessionsgit packed a waiting writer's objects; `git repack -a -d` then dropped them
    and the writer's save returned a head that pointed at nothing."""
    writer = GitSessionStore(repo, auto_pack=False)
    writer.save("a", transcript(2))
    lock = hold_ref_lock(repo, "a")
    thread, outcome = save_in_thread(writer, "a", transcript(3))
    wait_for_the_save_in_flight(repo)
    other = GitSessionStore(repo, create=False, auto_pack=False)
    other.gc()
    other.close()
    git("repack", "-a", "-d", "-q", cwd=repo)
    lock.unlink()
    thread.join()
    assert "error" not in outcome, outcome
    assert_all_load(repo, {"a": 3})
    fsck(repo, "--strict")


def test_a_save_pack_appears_with_its_keep(repo, monkeypatch):
    """git 2.39's repack lists packs by their ``.pack`` file: one it saw before its ``.keep``
    existed it deleted once done, with a save's commit in it that its pack-objects run had
    left out (seen as broken links with several writers beside `git repack -a -d`). The
    ``.keep`` is written first, the index last (aside, then renamed in)."""
    store = GitSessionStore(repo, auto_pack=False)
    created: list[str] = []
    real = savepack._write_new

    def record(path, *args, **kwargs):
        name = os.path.basename(path)
        created.append("temp" if name.startswith("tmp_") else os.path.splitext(name)[1])
        return real(path, *args, **kwargs)

    monkeypatch.setattr(savepack, "_write_new", record)
    store.save("a", transcript(2))
    assert created == [".keep", ".pack", "temp"]
    assert keeps(repo) == 0  # released once the branch moved
    assert_all_load(repo, {"a": 2})


def test_save_beside_git_gc_prune_now_never_returns_an_unreadable_head(repo):
    """#9.9: `git gc --prune=now` deletes a waiting writer's objects; the save must re-write
    them (or fail loudly), never report success for a head that cannot be read."""
    writer = GitSessionStore(repo, auto_pack=False)
    writer.save("a", transcript(2))
    lock = hold_ref_lock(repo, "a")
    thread, outcome = save_in_thread(writer, "a", transcript(3))
    wait_for_the_save_in_flight(repo)
    git("gc", "-q", "--prune=now", cwd=repo)
    assert keeps(repo) == 1, "git gc leaves a kept pack alone"
    lock.unlink()
    thread.join()
    assert "error" not in outcome, outcome
    assert keeps(repo) == 0
    assert_all_load(repo, {"a": 3})
    fsck(repo, "--strict")


def test_a_pack_without_its_index_is_ignored_and_cleaned_up(repo):
    """#9.3 / #11.1: a kill between deleting `.idx` and `.pack` left an orphan pack that made
    every later gc fail."""
    store = five_sessions(repo)
    store.gc()
    orphan = repo / "objects" / "pack" / ("pack-" + "0" * 40 + ".pack")
    orphan.write_bytes(b"PACK\x00\x00\x00\x02\x00\x00\x00\x00")
    store.save("s0", transcript(9))
    store.gc()  # must not fail
    assert orphan.exists(), "a young orphan may still be being written: left alone"
    old = time.time() - 2 * packing.STALE_TEMP_SECONDS
    os.utime(orphan, (old, old))
    store.gc()
    assert not orphan.exists()
    store.close()
    expected = {f"s{n}": n + 2 for n in range(5)} | {"s0": 9}
    assert_all_load(repo, expected)
    fsck(repo, "--strict")


def make_stale(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    old = time.time() - 3600
    os.utime(path, (old, old))
    return path


def test_gc_recovers_every_stale_ref_lock_a_killed_gc_leaves(repo):
    """#9.4: packed-refs.lock and per-ref locks left by a gc killed while packing refs."""
    store = five_sessions(repo)
    locks = [make_stale(repo / "packed-refs.lock"),
             make_stale(repo / "refs" / "heads" / "sessions" / "s1.lock")]
    store.gc()
    assert not any(lock.exists() for lock in locks)
    store.save("s1", transcript(7))
    store.close()
    fsck(repo, "--strict")


def test_list_never_misses_a_session_while_refs_are_packed(repo):
    """#9.5: libgit2 reads packed-refs before loose refs, so a ref moving between them was
    seen in neither."""
    store = GitSessionStore(repo, auto_pack=False)
    ids = [f"s{n:03d}" for n in range(60)]
    for session_id in ids:
        store.save(session_id, transcript(1))
    stop = time.monotonic() + 4
    packer = subprocess.Popen(
        ["bash", "-c", "while true; do git pack-refs --all; "
                       "for r in $(git for-each-ref --format='%(refname)' refs/heads/sessions); do "
                       "git update-ref \"$r\" \"$(git rev-parse $r)\" --no-deref; done; done"],
        cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    misses = 0
    try:
        reader = GitSessionStore(repo, create=False, auto_pack=False)
        while time.monotonic() < stop:
            if len(reader.list()) != len(ids):
                misses += 1
    finally:
        packer.kill()
        packer.wait()
    assert misses == 0


def test_gc_prune_drops_purged_sessions_for_good(repo):
    """#9.7: after purge() and gc(prune=...) a purged transcript is gone."""
    store = GitSessionStore(repo, auto_pack=False)
    secret = [{"role": "user", "content": "my secret diagnosis 8841"}]
    store.save("private", secret)
    store.save("keep", transcript(3))
    blob = str(pygit2.hash(b"x"))  # placeholder, replaced below
    tree = store.repo[store.repo.references["refs/heads/sessions/private"].target].tree
    blob = str(tree["messages"][0][0].id)
    store.gc()
    store.delete("private")
    assert store.purge() == 1
    store.gc(prune=0)
    assert subprocess.run(["git", "cat-file", "-e", blob], cwd=repo).returncode != 0
    out = subprocess.run(["git", "grep", "-I", "8841", "--all"], cwd=repo,
                         capture_output=True, text=True).stdout
    assert "8841" not in out
    store.close()
    assert_all_load(repo, {"keep": 3})
    fsck(repo, "--strict")


def test_gc_prune_keeps_young_unreachable_objects(repo):
    """The grace period protects in-flight saves as git's gc.pruneExpire does."""
    store = GitSessionStore(repo, auto_pack=False)
    store.save("a", transcript(2))
    orphan = store.repo.create_blob(b'{"in": "flight"}\n')
    store.gc(prune=3600)
    assert store.repo.odb.exists(orphan)
    store.gc(prune=0)
    store.close()
    assert subprocess.run(["git", "cat-file", "-e", str(orphan)], cwd=repo).returncode != 0


def test_torn_list_cache_record_is_rewritten(repo):
    """#9.8: a torn record made the cache grow forever and be re-read on every call. The list
    index (issue 16) is rewritten whole by the first list() that finds it torn."""
    store = five_sessions(repo)
    store.list()
    cache = repo / "sessionsgit" / "list-index"
    whole = cache.read_bytes()
    cache.write_bytes(whole[:len(whole) - 7])  # a write cut short
    store.close()
    fresh = GitSessionStore(repo, create=False, auto_pack=False)
    fresh.save("s0", transcript(5))
    assert {m.id: m.message_count for m in fresh.list()}["s0"] == 5
    time.sleep(0.05)  # past the clock tick of the save (a stamp that new is not trusted)
    fresh.list()
    fresh.close()
    again = GitSessionStore(repo, create=False, auto_pack=False)
    again._list_cache.load()
    assert again._list_cache._stamp is not None  # whole and trusted again
    assert {m.id: m.message_count for m in again.list()}["s0"] == 5
    again.close()


def test_list_cache_never_vouches_for_a_missing_head_commit(repo):
    """#9.14: after objects were lost, list() showed the session as healthy from its cache."""
    store = five_sessions(repo)
    store.list()
    head = str(store.repo.references["refs/heads/sessions/s2"].target)
    store.close()
    loosen(repo)
    (repo / "objects" / head[:2] / head[2:]).unlink()
    fresh = GitSessionStore(repo, create=False, auto_pack=False)
    assert "s2" not in {m.id for m in fresh.list()}
    assert [session for session, _reason in fresh.last_damaged] == ["s2"]
    fresh.close()


def test_save_racing_a_delete_is_a_conflict_and_the_id_can_be_saved_again(repo):
    """#9.10: a raw KeyError/GitError, and an instance that could never save that id again."""
    writer = GitSessionStore(repo, auto_pack=False)
    writer.save("a", transcript(2))
    other = GitSessionStore(repo, create=False, auto_pack=False)
    other.delete("a")
    with pytest.raises(SessionConflictError):
        writer.save("a", transcript(3))
    assert writer.load("a") is None
    writer.save("a", transcript(1))
    assert other.load("a").messages == transcript(1)
    writer.close()
    other.close()


def test_save_whose_ref_vanishes_while_it_waits_for_the_lock_is_a_conflict(repo):
    writer = GitSessionStore(repo, auto_pack=False)
    writer.save("a", transcript(2))
    lock = hold_ref_lock(repo, "a")
    thread, outcome = save_in_thread(writer, "a", transcript(3))
    wait_for_the_save_in_flight(repo)
    (repo / "refs" / "heads" / "sessions" / "a").unlink()
    lock.unlink()
    thread.join()
    assert isinstance(outcome.get("error"), SessionConflictError), outcome


def test_concurrent_save_survives_fanout_directories_being_removed(repo, monkeypatch):
    """#9.6: `git prune-packed` removing an empty fan-out directory made a save fail with a
    raw OSError ("failed to rename"); object writes are retried (a save's pack too)."""
    store = GitSessionStore(repo, auto_pack=False)
    store.save("a", transcript(1))
    real = savepack._replace
    failures = []

    def flaky(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise OSError(errno.ENOENT, "No such file or directory")
        return real(*args, **kwargs)

    monkeypatch.setattr(savepack, "_replace", flaky)
    store.save("a", transcript(2))
    assert failures == [1]
    assert store.load("a").messages == transcript(2)


def test_full_disk_is_a_typed_error_and_leaves_the_session_as_it_was(repo, monkeypatch):
    """#9.13: ENOSPC mid-save raised a raw OSError."""
    store = GitSessionStore(repo, auto_pack=False)
    store.save("a", transcript(2))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(savepack, "_write_new", full)
    with pytest.raises(StoreError, match="disk is full|no space"):
        store.save("a", transcript(3))
    monkeypatch.undo()
    assert store.load("a").messages == transcript(2)
    store.save("a", transcript(3))
    assert store.load("a").messages == transcript(3)


# ---- a gc killed at every phase ------------------------------------------------------------
PHASES = ["after-write-pack", "between-idx-and-pack", "mid-loose-unlink", "mid-explode",
          "packing-refs"]


def repository_for_phase(repo: Path, phase: str) -> dict[str, int]:
    """Sessions, several packs and loose objects (and, for the prune phase, a purged session
    in a young pack), so that ``phase`` is reached."""
    store = GitSessionStore(repo, auto_pack=False)
    expected = {}
    for n in range(6):
        store.save(f"s{n}", transcript(3))  # a pack each
        expected[f"s{n}"] = 3
    for n in range(3):
        store.save(f"s{n}", transcript(5))
        expected[f"s{n}"] = 5
    if phase == "mid-explode":
        store.save("gone", [{"role": "user", "content": "purge me"}])
        store.gc()
        store.delete("gone")
        store.purge()
    store.close()
    if phase != "mid-explode":  # (there the purged session's pack must stay a pack)
        loosen(repo, newest=3)  # loose objects to pack too
    return expected


@pytest.mark.parametrize("phase", PHASES)
def test_gc_killed_at_every_phase_loses_nothing_and_blocks_nothing(repo, phase):
    """#9.3, #9.4, #11.1: after a SIGKILL at any point of gc, every session loads, and gc and
    saves work again (an index-less pack ignored, left locks recovered)."""
    from ._util import start_worker

    expected = repository_for_phase(repo, phase)
    options = ["prune"] if phase == "mid-explode" else []
    worker = start_worker("gc_killed_at", repo, phase, *options)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == -9, f"phase {phase} was not reached: {out}{err}"
    assert_all_load(repo, expected)
    fsck(repo, "--connectivity-only")
    store = GitSessionStore(repo, create=False, auto_pack=False, stale_lock_seconds=0)
    store.gc()
    store.gc(prune=3600)
    for session_id in expected:
        store.save(session_id, transcript(expected[session_id] + 1))
        expected[session_id] += 1
    store.gc()
    store.close()
    assert_all_load(repo, expected)
    assert not list(repo.rglob("*.lock")) or [p.name for p in repo.rglob("*.lock")] == \
        ["sessionsgit-maintenance.lock"]
    fsck(repo, "--strict")


# ---- locks a killed pull or push leaves ----------------------------------------------------
def test_pull_and_push_recover_locks_a_killed_transfer_left(tmp_path):
    """#9.4: a killed pull left refs/remotes/origin/sessions/<id>.lock and a killed push to a
    path remote left <remote>/refs/heads/sessions/<id>.lock; every later transfer failed."""
    from sessionsgit.sync import add_remote, pull, push

    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote))
    first = GitSessionStore(tmp_path / "one", auto_pack=False)
    first.save("a", transcript(2))
    add_remote(first, "origin", str(remote))
    push(first, "origin")
    second = GitSessionStore(tmp_path / "two", auto_pack=False)
    add_remote(second, "origin", str(remote))
    pull(second, "origin")
    first.save("a", transcript(3))
    push(first, "origin")
    make_stale(Path(second.repo.path) / "refs" / "remotes" / "origin" / "sessions" / "a.lock")
    assert pull(second, "origin").fetched == ["a"]
    assert second.load("a").messages == transcript(3)
    second.save("a", transcript(4))
    make_stale(remote / "refs" / "heads" / "sessions" / "a.lock")
    assert push(second, "origin").pushed == ["a"]
    assert not list(remote.rglob("*.lock")) and not list((tmp_path / "two").rglob("refs/**/*.lock"))
    fsck(remote, "--strict")


def test_a_corrupt_loose_object_stays_local_and_packing_goes_on(repo, caplog):
    """#11.2: one unreadable loose object made every gc fail while loose objects piled up."""
    store = GitSessionStore(repo, auto_pack=False)
    good = [{"role": "user", "content": f"good {i}"} for i in range(3)]
    store.save("bad", transcript(2))
    store.save("good", good)
    store.close()
    loosen(repo)
    store = GitSessionStore(repo, auto_pack=False)
    tree = store.repo[store.repo.references["refs/heads/sessions/bad"].target].tree
    blob = str(tree["messages"][0][1].id)
    path = repo / "objects" / blob[:2] / blob[2:]
    os.chmod(path, 0o644)
    path.write_bytes(b"not zlib at all")
    result = store.gc()
    assert result["damaged_objects"] == 1 and result["packed_objects"] > 0
    assert blob in caplog.text
    assert loose_count(repo) == 1  # only the damaged object is left loose
    fresh = GitSessionStore(repo, create=False, auto_pack=False)
    assert fresh.load("good").messages == good
    assert [session for session, _ in fresh.damaged()] == ["bad"]
    fresh.close()
    store.close()


def test_list_cache_compacts_to_exactly_the_live_heads(repo):
    """#11.6: compaction kept superseded heads and dropped live ones. The list index (issue
    16) holds exactly one row per live session, at its head."""
    from sessionsgit.git import listcache

    store = GitSessionStore(repo, auto_pack=False)
    for n in range(4):
        store.save(f"s{n}", transcript(1))
    for n in range(12):
        store.save("s0", transcript(n + 2))
    store.list()
    store.close()
    fresh = GitSessionStore(repo, create=False, auto_pack=False)
    live = {str(fresh.repo.references[name].target) for name in fresh.repo.references
            if name.startswith("refs/heads/sessions/")}
    cache = listcache.ListCache(fresh.repo.path)
    cache.load()
    assert {bytes(k).hex() for k in listcache._entries(cache._rows_data)} == live
    assert {m.id: m.message_count for m in fresh.list()} == {"s0": 13, "s1": 1, "s2": 1, "s3": 1}
    fresh.close()


def test_saving_loaded_metadata_moves_updated_at(repo, clock):
    """#11.7: save(id, msgs, loaded.metadata) froze updated_at, so the session never moved up."""
    store = GitSessionStore(repo, auto_pack=False)
    store.save("a", transcript(1))
    loaded = store.load("a")
    meta = store.save("a", transcript(2), loaded.metadata)
    assert meta.updated_at > loaded.metadata.updated_at
    assert store.list()[0].updated_at == meta.updated_at


def test_cli_purge_then_gc_prune_forgets_a_session_for_good(repo):
    from click.testing import CliRunner

    from sessionsgit.cli import cli

    store = GitSessionStore(repo, auto_pack=False)
    store.save("private", [{"role": "user", "content": "secret 5521"}])
    blob = str(store.repo[store.repo.references["refs/heads/sessions/private"].target]
               .tree["messages"][0][0].id)
    store.close()
    runner = CliRunner()
    for args in (["delete", "private"], ["purge", "private"], ["gc", "--prune", "0"]):
        result = runner.invoke(cli, ["--repo", str(repo), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    assert subprocess.run(["git", "cat-file", "-e", blob], cwd=repo).returncode != 0


def test_automatic_packing_is_bounded_and_packs_bottom_up(repo, monkeypatch):
    """Issue 16: the first save of a huge transcript made the next save pack every object at
    once. An automatic pass packs at most AUTO_PACK_OBJECT_LIMIT objects, children before what
    names them, and later passes (or gc) pack the rest; nothing is lost on the way."""
    monkeypatch.setattr(packing, "AUTO_PACK_OBJECT_LIMIT", 50)
    store = GitSessionStore(repo, auto_pack=False)
    store.save("big", transcript(400))
    loose_before = loose_count(repo)
    store.auto_pack, store.pack_threshold = True, 1
    store.save("small", transcript(1))
    assert loose_before - loose_count(repo) <= 50 + 5
    packed = set()
    for pack in packing.pack_files(store.repo):
        packed |= set(packing.pack_object_ids(pack))
    for oid in packed:  # whatever a packed object names is packed too
        object_type, data = store.repo.odb.read(oid)
        assert set(packing._children(object_type, data)) <= packed
    for n in range(20):
        store.save("small", transcript(n + 2))
    store.gc()
    assert loose_count(repo) == 0
    store.close()
    assert_all_load(repo, {"big": 400, "small": 21})
    fsck(repo, "--strict")


def test_a_keep_a_killed_save_left_is_removed_once_old_and_others_keeps_stay(repo):
    """A save killed between writing its pack and moving its branch leaves the pack kept; git
    and sessionsgit never merge a kept pack, so maintenance removes our own `.keep` once it is
    old enough that no writer can still be busy with it, and leaves another program's alone."""
    store = five_sessions(repo)
    batch = savepack.SavePack()
    orphan = batch.blob(b"a save that never moved its branch\n")
    left = batch.publish(store.repo.path)  # (no release: the process "died" here)
    theirs = repo / "objects" / "pack" / "pack-theirs.keep"
    theirs.write_bytes(b"receive-pack 1234 on elsewhere\n")
    store.gc()
    assert Path(left.keep).exists() and left.present(), "a young keep may be a live save's"
    old = time.time() - 2 * packing.STALE_TEMP_SECONDS
    for path in (Path(left.keep), theirs):
        os.utime(path, (old, old))
    store.gc()
    assert not Path(left.keep).exists() and theirs.exists()
    assert store.repo.odb.exists(orphan)  # merged like any object: only a prune drops it
    store.close()
    assert_all_load(repo, {f"s{n}": n + 2 for n in range(5)})
    fsck(repo, "--strict")


def test_a_merge_that_meets_a_deltified_pack_falls_back_to_packbuilder(repo):
    """Small save packs are rolled up by copying their entries; a pack git wrote with deltas
    cannot be copied that way (an entry's base offset would change): that merge goes through
    PackBuilder, and every object is still there."""
    store = GitSessionStore(repo, auto_pack=False)
    for n in range(4):
        store.save(f"s{n}", transcript(6))  # alike: git deltifies them
    git("repack", "-a", "-d", "-q", cwd=repo)
    git_pack = next(iter(packing.pack_files(store.repo)))
    assert "chain length" in git("verify-pack", "-v", str(git_pack.with_suffix(".idx")))
    big = [{"role": "user", "content": f"{n} " + "long text " * 2000} for n in range(4)]
    for n in range(4):
        store.save(f"s{n}", transcript(6) + [big[n]])  # four small packs, more bytes than git's
    before = set(packing.pack_files(store.repo))
    assert packing.concatenate_packs(store.repo, sorted(before)) is None
    assert set(packing.pack_files(store.repo)) == before  # nothing written
    report = packing.MaintenanceReport()
    packing.merge_packs(store.repo, report)
    assert report.merged_packs == 5 and len(packing.pack_files(store.repo)) == 1
    assert not list((repo / "objects" / "pack").glob("*.keep"))
    store.close()
    fresh = GitSessionStore(repo, create=False, auto_pack=False)
    for n in range(4):
        assert fresh.load(f"s{n}").messages == transcript(6) + [big[n]]
    fresh.close()
    fsck(repo, "--strict")
