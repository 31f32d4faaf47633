#!/usr/bin/env python3
"""Search benchmark (issue 17): a repository of N sessions x M messages; times the first index
build, a search after one session changed, and warm searches, as PASS/MISS rows.

    make bench                                   # the issue's size: 10,000 sessions x 50 messages
    .venv/bin/python tests/bench/bench_search.py --sessions 200    # a quick look

Goal: a warm search answers in under 100 ms at 10,000 x 50; later searches pay only for what
changed. Building 500,000 messages one ``save`` at a time would take most of an hour here (one
loose object per message), so the repository is written in bulk by ``git fast-import`` with
exactly the objects ``GitSessionStore.save`` writes (the same blob bytes, ``session.json``,
tree layout and commit metadata); the build is checked against the store itself (a session
saved through it has the identical tree, and loads back the same). ``--keep DIR`` reuses a
built repository between runs (the index is always removed first: the first build is timed).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
_HOME = os.path.join(tempfile.gettempdir(), "sessionsgit-bench-no-home")
os.environ.update({"HOME": _HOME, "XDG_CONFIG_HOME": os.path.join(_HOME, ".config"),
                   "GIT_CONFIG_NOSYSTEM": "1"})

from sessionsgit import GitSessionStore  # noqa: E402
from sessionsgit.codec import encode_message  # noqa: E402
from sessionsgit.git import commitmeta, layout  # noqa: E402
from sessionsgit.metadata import merge_metadata  # noqa: E402
from sessionsgit.search import index_path  # noqa: E402
from sessionsgit.stores.git import _tree_metadata, session_ref  # noqa: E402

WARM_TARGET_MS = 100.0
#: Ordinary words, drawn with Zipf-like weights (a few very common, most rare), so queries
#: match as many messages as words in real transcripts do.
VOCABULARY = ("the a to of and is in it you that for on with this be can what how do train "
              "day hotel trip city time plan code file error test run query index branch "
              "commit merge tree cache data user model tool call result function value list "
              "river bridge museum coffee wine budget flight station ticket morning evening "
              "parser crash stack trace build deploy server client request response token "
              "lisbon madrid paris berlin rome vienna prague tram ferry market castle beach "
              "porto itinerary").split()
QUERIES = (("common word", "the"), ("rare word", "porto"), ("phrase", '"porto itinerary"'),
           ("two words", "coffee tram"), ("one message", "s4321m7"),
           ("no match", "zeppelinfahrt"))


def transcript(rng: random.Random, s: int, messages: int) -> list[dict[str, Any]]:
    weights = [1 / (rank + 1) for rank in range(len(VOCABULARY))]
    return [{"role": "user" if i % 2 == 0 else "assistant",
             "content": " ".join(rng.choices(VOCABULARY, weights, k=30)) + f" s{s}m{i}"}
            for i in range(messages)]


def session_id(s: int) -> str:
    return f"bench-{s:05d}"


def fast_import_stream(sessions: int, messages: int, seed: int) -> Iterator[bytes]:
    """The objects and commits ``GitSessionStore.save`` would write for each new session."""
    rng = random.Random(seed)
    stamp = int(time.time())
    who = f"sessionsgit <sessionsgit@localhost> {stamp} +0000\n".encode()
    for s in range(sessions):
        items = transcript(rng, s, messages)
        encoded = [encode_message(m, i) for i, m in enumerate(items)]
        meta = merge_metadata(session_id(s), None, len(items), {"label": f"bench {s}"})
        text = commitmeta.compose(commitmeta.save_subject([p for _d, p in encoded]),
                                  meta).encode()
        out = [b"commit ", session_ref(session_id(s)).encode(), b"\nauthor ", who,
               b"committer ", who, b"data %d\n" % len(text), text]
        files = [(layout.SESSION_FILE, _tree_metadata(meta))] + [
            (f"{layout.MESSAGES_DIR}/{layout.chunk_name(i // layout.CHUNK)}/"
             f"{layout.message_name(i)}", data) for i, (data, _p) in enumerate(encoded)]
        for path, data in files:
            out += [b"M 100644 inline ", path.encode(), b"\ndata %d\n" % len(data), data, b"\n"]
        out.append(b"\n")
        yield b"".join(out)


def build(path: Path, sessions: int, messages: int, seed: int = 7) -> None:
    """Write the repository in bulk (``git fast-import``), refs packed as the store's
    maintenance leaves them once many are loose."""
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    process = subprocess.Popen(["git", "--git-dir", str(path), "fast-import", "--quiet",
                                "--done"], stdin=subprocess.PIPE)
    assert process.stdin is not None
    for chunk in fast_import_stream(sessions, messages, seed):
        process.stdin.write(chunk)
    process.stdin.write(b"done\n")
    process.stdin.close()
    if process.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "--git-dir", str(path), "pack-refs", "--all"], check=True)


def check_build(path: Path, sessions: int, messages: int, seed: int) -> None:
    """The bulk-written sessions are what the store itself writes and reads."""
    rng = random.Random(seed)
    first = transcript(rng, 0, messages)
    store = GitSessionStore(path)
    loaded = store.load(session_id(0))
    assert loaded is not None and loaded.messages == first, "bulk build does not load back"
    with tempfile.TemporaryDirectory(prefix="bench-search-check-") as scratch:
        own = GitSessionStore(Path(scratch) / "repo")
        own.save(session_id(0), first, {"label": "bench 0"})
        assert own.repo.revparse_single(session_ref(session_id(0))).tree_id == \
            store.repo.revparse_single(session_ref(session_id(0))).tree_id, \
            "bulk build wrote a different tree than save() does"
        own.close()
    assert len(store.list()) == sessions and not store.last_damaged
    store.close()


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


class Progress:
    """The first build's progress bar (what ``sessionsgit search`` shows), on stderr."""

    def __init__(self) -> None:
        self.last = -1

    def __call__(self, done: int, total: int) -> None:
        percent = done * 100 // max(total, 1)
        if percent != self.last and sys.stderr.isatty():
            self.last = percent
            print(f"\r  indexing {done:,}/{total:,} sessions ({percent}%)", end="",
                  file=sys.stderr, flush=True)
        if done == total and sys.stderr.isatty():
            print(file=sys.stderr)


def row(name: str, ms: float, target: float | None, note: str = "") -> str:
    verdict = "" if target is None else ("PASS" if ms < target else "MISS")
    goal = "" if target is None else f"< {target:.0f} ms"
    return f"{name:34} {ms:10.1f} ms  {goal:>9}  {verdict:4}  {note}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=15, help="warm searches per query")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the repository here")
    args = parser.parse_args()
    seed = 7
    scratch = None
    if args.keep is not None:
        path = args.keep / f"search-{args.sessions}x{args.messages}.git"
    else:
        scratch = Path(tempfile.mkdtemp(prefix="bench-search-"))
        path = scratch / "repo.git"
    try:
        if not (path / "packed-refs").exists():
            shutil.rmtree(path, ignore_errors=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            build(path, args.sessions, args.messages, seed)
            built = time.perf_counter() - start
            check_build(path, args.sessions, args.messages, seed)
            print(f"built {args.sessions:,} sessions x {args.messages} messages in {built:.0f} s "
                  f"(git fast-import; checked against GitSessionStore)")
        else:
            print(f"reusing {path}")
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(str(index_path(path)) + suffix).unlink(missing_ok=True)
        store = GitSessionStore(path)
        total = args.sessions * args.messages
        print(f"search over {args.sessions:,} sessions x {args.messages} messages "
              f"({total:,} messages), median of {args.repeat}")
        first = timed(lambda: store.search("porto", progress=Progress()))
        print(row("first index build + search", first, None,
                  f"{store._search_index.blobs_read:,} blobs read"))  # type: ignore[attr-defined]
        warm = []
        for name, query in QUERIES:
            store.search(query)
            samples = [timed(lambda: store.search(query)) for _ in range(args.repeat)]
            hits = len(store.search(query))
            warm.append((name, query, statistics.median(samples), hits))
        # one session changes (a save by another process), then a search: several times
        other = GitSessionStore(path)
        changed, read = [], 0
        for n in range(1, 6):
            word = f"zeppelin{time.time_ns()}"  # new to the index even in a reused repository
            other.append(session_id(n), [{"role": "user", "content": f"a new {word}"}])
            changed.append(timed(lambda: store.search(word)))
            read = max(read, store._search_index.blobs_read)  # type: ignore[attr-defined]
            hits = store.search(word)
            assert [h.session_id for h in hits] == [session_id(n)], hits
        other.close()
        print(row("search after 1 session changed", statistics.median(changed),
                  WARM_TARGET_MS, f"median of {len(changed)}; at most {read} blob read"))
        for name, query, ms, count in warm:
            print(row(f"warm {name} {query}", ms, WARM_TARGET_MS, f"{count} hits (limit 20)"))
        store.close()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
