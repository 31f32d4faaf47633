#!/usr/bin/env python3
"""``GitSession.add_items`` against the OpenAI Agents SDK's own ``SQLiteSession`` (file-backed),
on sessions already holding 10 / 1,000 / 5,000 items; the ratio is taken within this one run.

    make bench                                   # runs this after tests/bench/bench.py
    .venv/bin/python tests/bench/bench_agents.py --rounds 40

Goal (issue 14): within 1.5x of SQLiteSession and flat as the session grows. Each round adds
one turn (a user item and an assistant item) to both, alternating who goes first; medians.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
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

from sessionsgit import GitSessionStore
from sessionsgit.integrations.openai_agents import GitSession

SIZES = (10, 1_000, 5_000)


def turn(n: int) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"question {n}: what about the next leg of the trip?"},
            {"id": f"msg_{n}", "type": "message", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "annotations": [],
                          "text": f"answer {n}: take the morning train, it is faster."}]}]


async def timed(session: Any, items: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    await session.add_items(items)
    return (time.perf_counter() - start) * 1000


async def measure(scratch: Path, size: int, rounds: int) -> tuple[float, float]:
    prefill = [item for n in range(size // 2) for item in turn(n)]
    store = GitSessionStore(scratch / f"git-{size}.git")
    store.save("bench", prefill)
    store.gc()  # measure the steady state, not the one-off packing of the prefill
    git = GitSession("bench", store)
    sqlite = SQLiteSession("bench", scratch / f"agents-{size}.db")
    await sqlite.add_items(prefill)
    times: dict[str, list[float]] = {"git": [], "sqlite": []}
    for round_ in range(rounds):
        items = turn(size + round_)
        order = [("git", git), ("sqlite", sqlite)]
        for name, session in order if round_ % 2 == 0 else reversed(order):
            times[name].append(await timed(session, items))
    sqlite.close()
    return statistics.median(times["git"]), statistics.median(times["sqlite"])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="add_items calls per size")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="sessionsgit-bench-agents-"))
    try:
        print("add_items of one turn (2 items), median ms")
        print(f"{'items before':>12} {'GitSession':>11} {'SQLiteSession':>14} {'ratio':>6}")
        for size in SIZES:
            git_ms, sqlite_ms = await measure(scratch, size, args.rounds)
            print(f"{size:>12,} {git_ms:>11.2f} {sqlite_ms:>14.2f} {git_ms / sqlite_ms:>6.2f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
