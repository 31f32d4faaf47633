#!/usr/bin/env python3
"""Sync benchmark over smart HTTP on 127.0.0.1: ``sync()`` of 1,000 sessions with 1 changed
(here, so it is pushed; there, so it is fetched; none) through nginx + fcgiwrap +
``git http-backend`` from tests/servers.py, next to ``git fetch`` and ``git push`` of the same
refs through the same server. Rounds are interleaved so machine noise hits all alike; prints
medians, each sync's ratio to the git commands doing the same work (a fetch plus a push), and
PASS/MISS against the 200 ms target (``--strict``: exit 1 on a MISS). Needs nginx and fcgiwrap.

    .venv/bin/python tests/bench/bench_remotes.py [--sessions 1000] [--rounds 9] [--strict]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sessionsgit import GitSessionStore  # noqa: E402
from sessionsgit.sync import add_remote, pull, push, sync  # noqa: E402
from tests import conftest  # noqa: E402  (isolates git from the user's configuration)
from tests.servers import HTTP_PASSWORD, HTTP_USER, SmartHttp, stop  # noqa: E402

TARGET_MS = 200.0
REFS = "refs/heads/sessions/*:refs/heads/sessions/*"


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


IDENTITY = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True,
                          env={**os.environ, **IDENTITY})
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds (default 9)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a sync misses")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="sessionsgit-bench-remotes-"))
    try:
        server = SmartHttp(scratch / "server")
    except (pytest.skip.Exception, pytest.fail.Exception) as exc:  # nginx or fcgiwrap missing
        shutil.rmtree(scratch, ignore_errors=True)
        print(f"sync over smart HTTP: not measured: {exc}")
        return 1 if args.strict else 0
    try:
        times = run(server, scratch, args.sessions, args.rounds)
    finally:
        stop(server.procs)
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(conftest._ISOLATED_HOME, ignore_errors=True)
    return report(times, args.sessions, args.rounds, args.strict)


def run(server: SmartHttp, scratch: Path, sessions: int, rounds: int) -> dict[str, list[float]]:
    creds = server.credentials()
    served = server.bare("sessions")
    here = GitSessionStore(scratch / "here")
    for n in range(sessions):
        here.save(f"session-{n:04d}", [{"role": "user", "content": f"hello {n}"},
                                       {"role": "assistant", "content": f"hi {n}"}])
    here.gc()
    add_remote(here, "origin", served.url)
    push(here, credentials=creds)
    there = GitSessionStore(scratch / "there")
    add_remote(there, "origin", served.url)
    pull(there, credentials=creds)
    shutil.copytree(served.path, server.repos / "plain.git")  # the same refs, for plain git
    url = server.url("plain").replace("http://",
                                      f"http://{HTTP_USER}:{HTTP_PASSWORD.replace(' ', '%20')}@")
    pusher, fetcher = scratch / "pusher.git", scratch / "fetcher.git"
    git("clone", "-q", "--mirror", url, str(pusher))
    git("clone", "-q", "--mirror", url, str(fetcher))

    names = ["sync: 1 changed here (pushed)", "sync: 1 changed there (fetched)",
             "sync: nothing changed", "git push: 1 ref changed", "git push: nothing new",
             "git fetch: 1 ref changed", "git fetch: nothing new"]
    times: dict[str, list[float]] = {name: [] for name in names}
    for number in range(rounds + 1):  # round 0 warms up
        session = f"session-{(number * 37) % sessions:04d}"
        here.append(session, [{"role": "user", "content": f"round {number}"}])
        got = {names[0]: timed(lambda: sync(here, credentials=creds)),
               names[1]: timed(lambda: sync(there, credentials=creds)),
               names[2]: timed(lambda: sync(here, credentials=creds))}
        ref = f"refs/heads/sessions/{session}"
        tree = git("--git-dir", str(pusher), "rev-parse", f"{ref}^{{tree}}").strip()
        commit = git("--git-dir", str(pusher), "commit-tree", tree, "-p", ref, "-m",
                     f"round {number}").strip()
        git("--git-dir", str(pusher), "update-ref", ref, commit)
        got[names[3]] = timed(lambda: git("--git-dir", str(pusher), "push", "-q", url, REFS))
        got[names[4]] = timed(lambda: git("--git-dir", str(pusher), "push", "-q", url, REFS))
        got[names[5]] = timed(lambda: git("--git-dir", str(fetcher), "fetch", "-q", url,
                                          "+" + REFS))
        got[names[6]] = timed(lambda: git("--git-dir", str(fetcher), "fetch", "-q", url,
                                          "+" + REFS))
        if number:
            for name, value in got.items():
                times[name].append(value)
    assert {m.id: m.head for m in here.list()} == {m.id: m.head for m in there.list()}
    return times


def report(times: dict[str, list[float]], sessions: int, rounds: int, strict: bool) -> int:
    median = {name: statistics.median(values) for name, values in times.items()}
    push1, push0 = median["git push: 1 ref changed"], median["git push: nothing new"]
    fetch1, fetch0 = median["git fetch: 1 ref changed"], median["git fetch: nothing new"]
    baseline = {"sync: 1 changed here (pushed)": fetch0 + push1,
                "sync: 1 changed there (fetched)": fetch1 + push0,
                "sync: nothing changed": fetch0 + push0}
    print(f"sync over smart HTTP (nginx + git http-backend, 127.0.0.1), {sessions} sessions, "
          f"median of {rounds} rounds (min in brackets):")
    missed = False
    for name, values in times.items():
        line = f"  {name:<34} {median[name]:7.1f} ms  [{min(values):6.1f}]"
        if name in baseline:
            verdict = "PASS" if median[name] < TARGET_MS else "MISS"
            missed |= verdict == "MISS"
            line += (f"  {median[name] / baseline[name]:4.1f}x git fetch + push   {verdict} "
                     f"(< {TARGET_MS:.0f} ms)")
        print(line)
    return 1 if missed and strict else 0


if __name__ == "__main__":
    sys.exit(main())
