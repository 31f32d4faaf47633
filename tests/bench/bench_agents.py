#!/usr/bin/env python3
"""``GitSession.add_items`` against the OpenAI Agents SDK's own ``SQLiteSession`` (file-backed),
on sessions already holding 10 / 1,000 / 5,000 items; every ratio is taken within this one run.

    make bench                                   # runs this after tests/bench/bench.py
    .venv/bin/python tests/bench/bench_agents.py --rounds 60 --repeat 5

Goal (issue 14): within 1.5x of SQLiteSession and flat as the session grows. Each round adds
one turn (a user item and an assistant item) to every session measured, rotating who goes
first; a repetition's figure is the median of its rounds, and the row shows the median of the
repetitions (each in fresh files). What each side guarantees when ``add_items`` returns:

- SQLiteSession as shipped: WAL with ``synchronous=FULL``, one fsync per call: survives a
  power cut.
- GitSession (``GitSessionStore`` default): objects and ref written, no fsync: survives the
  process being killed (SIGKILL), not a power cut; concurrent writers lose nothing.
- GitSession ``durable=True``: every object, directory and the ref fsynced: survives a power cut.
- SQLiteSession ``synchronous=NORMAL``: no fsync at commit: survives the process, not a power
  cut (the same guarantee as GitSession's default).

The last row is the floor of one commit in this layout: pygit2 alone writing the same objects
and moving the ref, with none of sessionsgit's checks around it (``LibGit2Floor``).

Automatic packing (a Git store packs its loose objects every few hundred written) is not in the
medians; the ``mean`` column includes it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HOME = os.path.join(tempfile.gettempdir(), "sessionsgit-bench-no-home")
os.environ.update({"HOME": _HOME, "XDG_CONFIG_HOME": os.path.join(_HOME, ".config"),
                   "GIT_CONFIG_NOSYSTEM": "1", "OPENAI_AGENTS_DISABLE_TRACING": "1"})

try:
    from agents import SQLiteSession
except ImportError:  # pragma: no cover - the openai-agents extra is not installed
    print("bench_agents: openai-agents is not installed (pip install 'sessionsgit[openai-agents]')")
    sys.exit(0)

import pygit2  # noqa: E402

from sessionsgit import GitSessionStore  # noqa: E402
from sessionsgit.integrations.openai_agents import GitSession  # noqa: E402
from sessionsgit.stores.git import session_ref  # noqa: E402

SIZES = (10, 1_000, 5_000)
GOAL_RATIO = 1.5
#: Flat: adding to a 5,000-item session costs at most this much more than to a 10-item one.
GOAL_FLAT = 1.25
SIDES = ("git", "git_durable", "sqlite", "sqlite_normal", "floor")
PHASE = ("git", "sqlite", "sqlite_normal", "floor")
DURABLE_PHASE = ("git_durable", "sqlite")


class NormalSyncSQLiteSession(SQLiteSession):  # type: ignore[misc]
    """SQLiteSession without the fsync at each commit (WAL, ``synchronous=NORMAL``)."""

    @staticmethod
    def _configure_connection(conn: sqlite3.Connection) -> None:
        SQLiteSession._configure_connection(conn)
        conn.execute("PRAGMA synchronous=NORMAL")


class LibGit2Floor:
    """The least a commit of one turn costs in this layout: pygit2 alone writes the two blobs,
    the last chunk, ``messages`` and root trees and the commit, then moves the ref, with no
    sessionsgit code around it (no checks, caches, metadata or concurrency handling)."""

    def __init__(self, path: Path) -> None:
        self.repo = pygit2.Repository(str(path))
        self.ref = self.repo.references[session_ref("bench")]
        self.who = pygit2.Signature("bench", "bench@localhost")

    async def add_items(self, items: list[dict[str, Any]]) -> None:
        await asyncio.to_thread(self._write, items)

    def _write(self, items: list[dict[str, Any]]) -> None:
        repo, head = self.repo, self.ref.target
        root = repo[head].peel(pygit2.Commit).tree
        messages = root["messages"]
        chunks = list(repo[messages.id])
        last = repo[chunks[-1].id]
        count = (len(chunks) - 1) * 128 + len(last)
        chunk = repo.TreeBuilder(last) if len(last) < 128 else repo.TreeBuilder()
        for offset, item in enumerate(items):
            text = json.dumps(item, indent=2, ensure_ascii=False) + "\n"
            chunk.insert(f"{count + offset:06d}.json", repo.create_blob(text.encode()),
                         pygit2.GIT_FILEMODE_BLOB)
        tree = repo.TreeBuilder(repo[messages.id])
        tree.insert(f"{count // 128:04d}", chunk.write(), pygit2.GIT_FILEMODE_TREE)
        top = repo.TreeBuilder(root)
        top.insert("messages", tree.write(), pygit2.GIT_FILEMODE_TREE)
        commit = repo.create_commit(None, self.who, self.who, "turn", top.write(), [head])
        self.ref.set_target(commit)


def turn(n: int) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"question {n}: what about the next leg of the trip?"},
            {"id": f"msg_{n}", "type": "message", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "annotations": [],
                          "text": f"answer {n}: take the morning train, it is faster."}]}]


async def timed(session: Any, items: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    await session.add_items(items)
    return (time.perf_counter() - start) * 1000


async def measure(scratch: Path, size: int, rounds: int) -> dict[str, tuple[float, float]]:
    """(median, mean) ms of each side's ``add_items`` on sessions holding ``size`` items."""
    prefill = [item for n in range(size // 2) for item in turn(n)]
    sessions: dict[str, Any] = {}
    for name, durable in (("git", False), ("git_durable", True)):
        store = GitSessionStore(scratch / f"{name}-{size}.git", durable=durable)
        store.save("bench", prefill)
        store.gc()  # the steady state, not the one-off packing of the prefill
        sessions[name] = GitSession("bench", store)
    floor = GitSessionStore(scratch / f"floor-{size}.git")
    floor.save("bench", prefill)
    floor.gc()
    floor.close()
    sessions["floor"] = LibGit2Floor(scratch / f"floor-{size}.git")
    sessions["sqlite"] = SQLiteSession("bench", scratch / f"agents-{size}.db")
    sessions["sqlite_normal"] = NormalSyncSQLiteSession("bench", scratch / f"normal-{size}.db")
    for name in ("sqlite", "sqlite_normal"):
        await sessions[name].add_items(prefill)
    times: dict[str, list[float]] = {name: [] for name in SIDES}
    times["sqlite_durable_phase"] = []
    # durable saves fsync a dozen files each: measured apart so their journal flushes do not
    # slow the others down
    for phase in (PHASE, DURABLE_PHASE):
        for round_ in range(rounds):
            items = turn(size + round_ + (rounds if phase is DURABLE_PHASE else 0))
            shift = round_ % len(phase)
            for name in phase[shift:] + phase[:shift]:
                side = "sqlite_durable_phase" if phase is DURABLE_PHASE and \
                    name == "sqlite" else name
                times[side].append(await timed(sessions[name], items))
    for name in ("sqlite", "sqlite_normal"):
        sessions[name].close()
    for name in ("git", "git_durable"):
        sessions[name].store.close()
    return {name: (statistics.median(t), statistics.mean(t)) for name, t in times.items()}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60, help="add_items calls per size")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (median taken)")
    args = parser.parse_args()
    runs: dict[int, list[dict[str, tuple[float, float]]]] = {size: [] for size in SIZES}
    for _ in range(args.repeat):
        scratch = Path(tempfile.mkdtemp(prefix="sessionsgit-bench-agents-"))
        try:
            for size in SIZES:
                runs[size].append(await measure(scratch, size, args.rounds))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def ms(size: int, side: str, which: int = 0) -> float:
        return statistics.median(run[side][which] for run in runs[size])

    print(f"add_items of one turn (2 items): median ms of {args.rounds} rounds, median of "
          f"{args.repeat} repetitions; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    print(f"{'items before':>12} {'GitSession':>11} {'(mean)':>7} {'SQLiteSession':>14} "
          f"{'ratio':>6}  goal")
    for size in SIZES:
        ratio = ms(size, "git") / ms(size, "sqlite")
        print(f"{size:>12,} {ms(size, 'git'):>11.2f} {ms(size, 'git', 1):>7.2f} "
              f"{ms(size, 'sqlite'):>14.2f} {ratio:>6.2f}  <= {GOAL_RATIO}x "
              f"{verdict(ratio <= GOAL_RATIO)}")
    flat = ms(SIZES[-1], "git") / ms(SIZES[0], "git")
    print(f"{'flat':>12} GitSession at {SIZES[-1]:,} / at {SIZES[0]}: {flat:.2f}  "
          f"<= {GOAL_FLAT}x {verdict(flat <= GOAL_FLAT)}")
    print("same guarantee on both sides (informational):")
    for label, git_side, sqlite_side in (
            ("no fsync (survives a kill)", "git", "sqlite_normal"),
            ("fsync (survives a power cut)", "git_durable", "sqlite_durable_phase")):
        cells = "  ".join(f"{size:,}: {ms(size, git_side):.2f} / {ms(size, sqlite_side):.2f} "
                          f"= {ms(size, git_side) / ms(size, sqlite_side):.1f}x" for size in SIZES)
        print(f"  {label:30} {cells}")
    cells = "  ".join(f"{size:,}: {ms(size, 'floor'):.2f} = {ms(size, 'floor') / ms(size, 'sqlite'):.1f}x"
                      for size in SIZES)
    print(f"  {'libgit2 alone, same commit':30} {cells} of SQLiteSession as shipped")


if __name__ == "__main__":
    asyncio.run(main())
