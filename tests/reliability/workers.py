"""Writer processes for the reliability tests, run as ``python -m tests.reliability.workers``
(from the repository root) so each is a real, separate, killable process.

Every message a worker writes follows one pattern, ``pattern(i)``, and a save only ever appends
one message to what it loaded, so any transcript a reader sees must be exactly
``[pattern(0), ..., pattern(n - 1)]`` with ``message_count == n``. Workers print one JSON line
per acknowledged save (after ``save()`` returned), flushed at once, so a parent that kills a
worker still knows every save it acknowledged."""

from __future__ import annotations

import json
import logging
import os
import signal
import random
import sys
import time
import traceback

from sessionsgit import (GitSessionStore, SessionConflictError, SessionNotFoundError,
                         SessionsGitError)


def pattern(i: int) -> dict:
    return {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}", "i": i}


def ack(**fields) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def append_one(store, session_id: str, **metadata) -> int:
    """load → append the next pattern message → save; returns the new length (raises
    SessionConflictError when another writer got there first)."""
    loaded = store.load(session_id)
    messages = loaded.messages if loaded else []
    messages.append(pattern(len(messages)))
    meta = store.save(session_id, messages, metadata or None)
    assert meta.message_count == len(messages)
    return len(messages)


def distinct(repo: str, session_id: str, saves: str) -> None:
    """Append ``saves`` messages to one session, no other writer expected on it."""
    store = GitSessionStore(repo, create=False, pack_threshold=50)
    for _ in range(int(saves)):
        count = append_one(store, session_id)
        ack(session=session_id, count=count)


def shared(repo: str, session_id: str, writer: str, saves: str, pack_threshold: str) -> None:
    """Append ``saves`` messages tagged with ``writer`` to a session other writers share:
    load → append → save, and on SessionConflictError load again and retry."""
    store = GitSessionStore(repo, create=False, pack_threshold=int(pack_threshold))
    conflicts = 0
    for n in range(int(saves)):
        while True:
            loaded = store.load(session_id)
            messages = loaded.messages + [{"role": "user", "writer": writer, "n": n}]
            try:
                meta = store.save(session_id, messages)
            except SessionConflictError:
                conflicts += 1
                continue
            ack(writer=writer, n=n, head=meta.head, count=meta.message_count)
            break
    ack(writer=writer, done=True, conflicts=conflicts)


def crash(repo: str, seed: str, pack_threshold: str, durable: str) -> None:
    """Save, rename, fork, delete and pack in a loop until killed."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
    rng = random.Random(int(seed))
    store = GitSessionStore(repo, pack_threshold=int(pack_threshold), durable=durable == "1",
                            stale_lock_seconds=0.5)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sessions = ["s0", "s1", "s2", "s3"]
    while True:
        roll = rng.random()
        session_id = rng.choice(sessions)
        try:
            if roll < 0.8:
                ack(session=session_id, count=append_one(store, session_id))
            elif roll < 0.88:
                if store.exists(session_id):
                    store.rename(session_id, f"label {rng.random()}")
            elif roll < 0.94:
                if store.exists(session_id):
                    store.fork(session_id, f"{session_id}-fork-{rng.randrange(3)}")
            elif roll < 0.96:
                store.delete(f"{session_id}-fork-{rng.randrange(3)}")
            elif roll < 0.98:
                store.list()
            else:
                store.gc(merge_packs=rng.random() < 0.5)
        except SessionConflictError:
            time.sleep(0.001)  # another writer (or a lock left by a killed one): go again


def maintainer(repo: str, seconds: str) -> None:
    """sessionsgit gc (merging or not, automatic-size or full) in a loop for ``seconds``."""
    store = GitSessionStore(repo, create=False, auto_pack=False)
    deadline = time.monotonic() + float(seconds)
    rounds = 0
    while time.monotonic() < deadline:
        store.gc(merge_packs=rounds % 2 == 0)
        rounds += 1
    ack(maintainer=True, rounds=rounds)


def chaos(repo: str, seconds: str, *session_ids: str) -> None:
    """Fork, rename, delete and restore forks, rename the shared sessions, and gc, in a loop
    for ``seconds``: the other half of the stress run."""
    store = GitSessionStore(repo, create=False, pack_threshold=20)
    rng = random.Random(7)
    deadline = time.monotonic() + float(seconds)
    actions = 0
    while time.monotonic() < deadline:
        session_id = rng.choice(session_ids)
        fork_id = f"{session_id}-fork{rng.randrange(4)}"
        roll = rng.random()
        try:
            if roll < 0.25:
                store.fork(session_id, fork_id)
            elif roll < 0.45:
                store.rename(session_id, f"label {actions}")
            elif roll < 0.6:
                store.delete(fork_id)
            elif roll < 0.75:
                store.restore(fork_id)
            elif roll < 0.9:
                store.list()
            else:
                store.gc(merge_packs=rng.random() < 0.5)
            actions += 1
        except (SessionConflictError, SessionNotFoundError):
            store.load(session_id)  # refresh this instance's view and go on
    ack(chaos=True, actions=actions)


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def gc_killed_at(repo: str, phase: str, *options: str) -> None:
    """Run ``gc()`` (``prune`` in options: ``gc(prune=3600)``; ``nomerge``: no full merge)
    and SIGKILL this process at ``phase``, a precise point inside maintenance."""
    from pathlib import Path

    from sessionsgit.git import packing

    def after(function, count=1):
        calls = []

        def wrapper(*args, **kwargs):
            result = function(*args, **kwargs)
            calls.append(1)
            if len(calls) >= count:
                _die()
            return result
        return wrapper

    if phase == "after-write-pack":  # the new pack is written, nothing deleted yet
        packing.write_pack = after(packing.write_pack)
    elif phase == "between-idx-and-pack":  # an old pack's .idx deleted, its .pack not yet
        real_unlink = Path.unlink

        def unlink(self, *args, **kwargs):
            real_unlink(self, *args, **kwargs)
            if self.suffix == ".idx":
                _die()
        Path.unlink = unlink  # type: ignore[method-assign]
    elif phase == "mid-loose-unlink":  # some packed loose objects deleted, others not
        real_unlink = Path.unlink
        seen = []

        def unlink(self, *args, **kwargs):
            real_unlink(self, *args, **kwargs)
            if len(self.name) == 38:
                seen.append(1)
                if len(seen) == 3:
                    _die()
        Path.unlink = unlink  # type: ignore[method-assign]
    elif phase == "mid-explode":  # prune: an unreachable young object written loose
        packing._write_loose = after(packing._write_loose)
    elif phase == "packing-refs":  # killed inside libgit2's ref packing: its locks stay
        def pack_refs(repository):
            git_dir = Path(repository.path)
            (git_dir / "packed-refs.lock").write_bytes(b"")
            for ref in sorted((git_dir / "refs" / "heads" / "sessions").iterdir())[:1]:
                ref.with_name(ref.name + ".lock").write_bytes(b"")
            _die()
        packing.pack_refs = pack_refs
    else:
        raise SystemExit(f"unknown phase {phase}")
    store = GitSessionStore(repo, create=False, auto_pack=False)
    store.gc(merge_packs="nomerge" not in options,
             prune=3600 if "prune" in options else None)
    ack(phase=phase, reached=False)


def main(argv: list[str]) -> int:
    command, *args = argv
    try:
        {"distinct": distinct, "shared": shared, "crash": crash,
         "gc_killed_at": gc_killed_at, "maintainer": maintainer,
         "chaos": chaos}[command](*args)
    except SessionsGitError:
        traceback.print_exc()
        return 3
    except BaseException:
        traceback.print_exc()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
