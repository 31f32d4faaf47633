"""Many machines, one server: four writers, each its own clone in its own process, save to
sessions of their own and to sessions they all share, and sync through the smart-HTTP server in
rounds, at the same time. Afterwards every repository holds the same sessions, every
acknowledged save is reachable (as the session or as a ``diverged sync`` fork), and
``git fsck --strict`` is clean everywhere."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from sessionsgit import GitSessionStore
from sessionsgit.sync import add_remote, sync

from .conftest import git
from .servers import SmartHttp, http_server  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
WRITERS, ROUNDS, SHARED = 4, 5, 2

_WRITER = r"""
import json, sys, time
from sessionsgit import GitSessionStore, RemoteError
from sessionsgit.sync import Credentials, sync

repo, writer, rounds, shared, user, password = sys.argv[1:7]
store = GitSessionStore(repo, create=False)
creds = Credentials(username=user, password=password)

def out(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()

def append(session_id, text):
    loaded = store.load(session_id)
    messages = loaded.messages if loaded else []
    messages.append({"role": "user", "content": text})
    meta = store.save(session_id, messages)
    out(ack=session_id, head=meta.head)  # acknowledged: this commit must never be lost

for r in range(int(rounds)):
    append(f"w{writer}-r{r}", f"writer {writer} round {r}")
    append(f"w{writer}-log", f"writer {writer} round {r}")
    append(f"shared-{r % int(shared)}", f"writer {writer} round {r}")
    for attempt in range(8):
        try:
            report = sync(store, credentials=creds)
            out(synced=r, diverged=len(report.diverged), pushed=len(report.pushed),
                rejected=len(report.rejected))
            if not report.rejected:
                break
        except RemoteError as exc:  # nothing could be pushed: another writer got there first
            out(retry=r, error=str(exc))
        time.sleep(0.05 * (attempt + 1))
"""


def test_four_writers_sync_in_rounds_through_smart_http(tmp_path, http_server: SmartHttp):
    served = http_server.bare("team")
    creds = served.credentials
    assert creds is not None
    stores = []
    for n in range(WRITERS):
        store = GitSessionStore(tmp_path / f"writer{n}")
        add_remote(store, "origin", served.url)
        stores.append(store)
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(store.path), str(n),
                               str(ROUNDS), str(SHARED), creds.username or "",
                               creds.password or ""],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n, store in enumerate(stores)]
    events = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "Traceback" not in err, err
        events += [json.loads(line) for line in out.splitlines()]
    concurrent = time.monotonic() - started

    passes = settled_forks = 0
    while True:  # settle: everyone syncs once more until nothing moves
        passes += 1
        for store in stores:
            settled_forks += len(sync(store, credentials=creds).diverged)
        if len({json.dumps(heads(s), sort_keys=True) for s in stores}) == 1 or passes == 3:
            break

    final = heads(stores[0])
    for store in stores:
        assert heads(store) == final
    assert remote_heads(served.path) == final
    for path in [served.path] + [s.path for s in stores]:
        result = subprocess.run(["git", "--git-dir", str(path), "fsck", "--strict",
                                 "--no-progress", "--no-dangling"], capture_output=True,
                                text=True)
        assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr
    reachable = set(git("--git-dir", str(stores[0].path), "rev-list",
                        "--glob=refs/heads/sessions/*").split())
    acks = [e for e in events if "ack" in e]
    lost = [e for e in acks if e["head"] not in reachable]
    assert not lost, lost
    forks = [m for m in stores[0].list() if m.label and "(diverged sync" in m.label]
    diverged = sum(e.get("diverged", 0) for e in events) + settled_forks
    assert len(forks) == diverged
    for fork in forks:  # every fork is the local continuation of a shared session
        assert fork.parent_id in final
    own = {f"w{n}-r{r}" for n in range(WRITERS) for r in range(ROUNDS)} | \
        {f"w{n}-log" for n in range(WRITERS)} | {f"shared-{i}" for i in range(SHARED)}
    assert own <= set(final)
    numbers = (f"{WRITERS} writers x {ROUNDS} rounds over smart HTTP: {len(final)} sessions, "
               f"{len(acks)} acknowledged saves (all reachable), "
               f"{sum(1 for e in events if 'synced' in e)} syncs + "
               f"{sum(1 for e in events if 'retry' in e)} retried, {diverged} conflicts turned "
               f"into forks, settled in {passes} passes; {concurrent:.1f} s concurrent")
    print(numbers)
    (tmp_path / "numbers.txt").write_text(numbers)
    assert time.monotonic() - started < 40


def heads(store: GitSessionStore) -> dict[str, str]:
    return {m.id: m.head for m in store.list()}


def remote_heads(path: Path) -> dict[str, str]:
    return {m.id: m.head for m in GitSessionStore(path, create=False).list()}
