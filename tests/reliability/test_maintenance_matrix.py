"""Interleavings (issue 9): sessionsgit saves in several processes while sessionsgit's own gc
and plain git's maintenance commands run in others. After every round each acknowledged save
loads, `git fsck --strict` is clean, and `list()` never missed a live session."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from sessionsgit import GitSessionStore

from ._util import fsck, parse_acks, start_worker
from .workers import pattern

ROUNDS = int(os.environ.get("SESSIONSGIT_MATRIX_ROUNDS", "20"))
GIT_MAINTENANCE = [
    ["repack", "-a", "-q"],
    ["repack", "-a", "-d", "-q"],
    ["gc", "-q"],
    ["pack-refs", "--all"],
    ["prune-packed"],
    ["repack", "-d", "-q", "--geometric=2"],
    ["repack", "-A", "-d", "-q"],
    ["maintenance", "run"],
]


def run_git_in_loop(repo: Path, command: list[str]) -> subprocess.Popen:
    script = 'while true; do git "$@" >/dev/null 2>&1; sleep 0.01; done'
    return subprocess.Popen(["bash", "-c", script, "git-loop", *command], cwd=repo,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_saves_beside_every_maintenance_command(tmp_path):
    repo = tmp_path / "repo"
    store = GitSessionStore(repo)
    for n in range(4):
        store.save(f"base{n}", [pattern(0)])
    acked: dict[str, int] = {f"base{n}": 1 for n in range(4)}
    missed_listings = 0
    for round_number in range(ROUNDS):
        command = GIT_MAINTENANCE[round_number % len(GIT_MAINTENANCE)]
        live_before = set(acked)
        writers = [start_worker("distinct", repo, f"r{round_number}w{w}", 6) for w in range(2)]
        writers.append(start_worker("distinct", repo, f"base{round_number % 4}", 4))
        helpers = [run_git_in_loop(repo, command),
                   start_worker("maintainer", repo, 1.0)]
        while any(w.poll() is None for w in writers):
            listed = {meta.id for meta in store.list()}
            missed_listings += len(live_before - listed)
        for helper in helpers[:1]:
            helper.kill()
            helper.wait()
        for process in writers + helpers[1:]:
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, f"{command}: {err}"
            for ack in parse_acks(out):
                if "session" in ack:
                    acked[ack["session"]] = max(acked.get(ack["session"], 0), ack["count"])
        check = GitSessionStore(repo, create=False, auto_pack=False)
        listed = {meta.id: meta for meta in check.list()}
        assert check.last_damaged == [], (command, check.last_damaged)
        for session_id, count in acked.items():
            session = check.load(session_id)
            assert session is not None, (command, session_id)
            assert session.messages == [pattern(i) for i in range(len(session.messages))]
            assert len(session.messages) >= count, (command, session_id)
            assert listed[session_id].head == session.metadata.head
        check.close()
        fsck(repo, "--strict")
        assert missed_listings == 0, f"list() missed a live session beside git {command}"
    store.close()


def test_mixed_stress_loses_no_acknowledged_save(tmp_path):
    """#9.15: twelve writers on four shared sessions, a process forking, renaming, deleting,
    restoring and packing, and plain git maintenance in a third, all at once. Every save a
    writer was told succeeded is still reachable from a session or trash ref afterwards."""
    repo = tmp_path / "repo"
    store = GitSessionStore(repo)
    sessions = [f"shared{n}" for n in range(4)]
    for session_id in sessions:
        store.save(session_id, [pattern(0)])
    store.close()
    writers = [start_worker("shared", repo, sessions[w % 4], f"w{w}", 8, 30) for w in range(12)]
    chaos = start_worker("chaos", repo, 6.0, *sessions)
    git_loop = subprocess.Popen(
        ["bash", "-c", "end=$((SECONDS+6)); while [ $SECONDS -lt $end ]; do "
                       "git repack -a -d -q; git pack-refs --all; git gc -q; git prune-packed; "
                       "sleep 0.05; done"],
        cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    heads: list[str] = []
    for process in writers + [chaos]:
        out, err = process.communicate(timeout=240)
        assert process.returncode == 0, err
        heads += [ack["head"] for ack in parse_acks(out) if "head" in ack]
    git_loop.wait(timeout=60)
    reachable = set(subprocess.run(["git", "rev-list", "--all"], cwd=repo, capture_output=True,
                                   text=True, check=True).stdout.split())
    lost = [head for head in heads if head not in reachable]
    assert len(heads) == 12 * 8
    assert lost == []
    check = GitSessionStore(repo, create=False, auto_pack=False)
    assert check.damaged() == []
    packs = len(list((repo / "objects" / "pack").glob("*.pack")))
    check.gc()
    assert len(list((repo / "objects" / "pack").glob("*.pack"))) <= 2, packs
    check.close()
    fsck(repo, "--strict")
