"""Search benchmark: build a repository of N sessions × M messages, time the first index build,
an incremental refresh after one save, and warm searches (target: under 100 ms warm).

    python tests/bench/bench_search.py                 # small: 200 sessions × 50 messages
    python tests/bench/bench_search.py --sessions 10000 --messages 50   # the issue's size (slow)
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sessionsgit import GitSessionStore  # noqa: E402

WORDS = ("porto lisbon itinerary parser crash train museum wine river bridge tram coffee "
         "database index query branch commit merge tree blob cache budget hotel flight").split()


def build(path: Path, sessions: int, messages: int, seed: int = 7) -> GitSessionStore:
    rng = random.Random(seed)
    store = GitSessionStore(path, auto_pack=True)
    for s in range(sessions):
        transcript = [{"role": "user" if i % 2 == 0 else "assistant",
                       "content": " ".join(rng.choice(WORDS) for _ in range(30)) + f" s{s}m{i}"}
                      for i in range(messages)]
        store.save(f"bench-{s:05d}", transcript, {"label": f"bench {s}"})
    return store


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        t = time.perf_counter()
        store = build(Path(tmp) / "repo", args.sessions, args.messages)
        print(f"built {args.sessions} sessions × {args.messages} messages in "
              f"{time.perf_counter() - t:.1f} s")
        print(f"first index build + search:   {timed(lambda: store.search('porto')):9.1f} ms")
        store.save("bench-00000", [{"role": "user", "content": "a new zeppelin"}])
        print(f"search after one new save:    {timed(lambda: store.search('zeppelin')):9.1f} ms")
        rows = []
        for query in ("porto", '"porto itinerary"', "zeppelin", "s17m3", "coffee tram"):
            samples = [timed(lambda: store.search(query)) for _ in range(args.repeat)]
            rows.append((query, statistics.median(samples)))
        for query, ms in rows:
            verdict = "ok" if ms < 100 else "SLOW"
            print(f"warm search {query!r:22} {ms:9.1f} ms  (target < 100 ms: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
