"""GitCheckpointSaver against langgraph-checkpoint-sqlite's SqliteSaver on one chat thread.

    python tests/bench/bench_langgraph.py [--turns 200] [--words 100] [--rounds 3]

Both run the same MessagesState graph (a fake model answering ~``--words`` words, LangGraph's
default durability "async") in this one process, alternating, ``--rounds`` times each; the whole
run counts the fastest round of each, so a burst of load on a shared machine hurts neither side
alone. Ratios come from the same run. Prints a Markdown table and the issue's targets as
PASS/MISS; never fails. About 60 s on a quiet 2-core machine. The whole run's CPU time (this
process, every thread) is shown beside it: other jobs on a shared machine disturb it less.

"Flat" means: the median time of a call at turn ``--turns`` is at most ``FLAT`` (1.3) times
the median at turn 10. A checkpoint's transcript is handed out as fresh message objects (as
SqliteSaver and InMemorySaver do too), so ``get_tuple`` of the latest checkpoint and ``list``
necessarily grow by that copying (about 1 µs a message here); their "own work" rows time the
same call with the copying switched off (the cached messages handed out as they are), which
leaves what the store itself does (refs, index, trees, blobs). Both ratios are shown. Reads
are warm: the median of 25 calls in the process that wrote the thread.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, MessagesState, StateGraph

import diskprobe  # beside this script
import sessionsgit.integrations.langgraph as lg
from sessionsgit.integrations.langgraph import GitCheckpointSaver

THREAD = {"configurable": {"thread_id": "bench"}}
#: A call is "flat" when its time at the last turn is at most this many times that at turn 10.
FLAT = 1.3


def graph_for(saver: Any, turns: int, words: int) -> Any:
    text = " ".join(f"word{i % 97}" for i in range(words))
    model = GenericFakeChatModel(messages=iter([AIMessage(f"{n}: {text}") for n in range(turns)]))
    builder = StateGraph(MessagesState)
    builder.add_node("model", lambda state: {"messages": [model.invoke(state["messages"])]})
    builder.add_edge(START, "model")
    return builder.compile(checkpointer=saver)


def median_ms(action: Callable[[], Any], repeat: int = 25) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def size_mb(path: Path) -> float:
    if not path.is_dir():  # SQLite: the file plus its WAL
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum(4096 * -(-os.path.getsize(os.path.join(root, f)) // 4096) for f in files)
    return total / 1e6


@contextlib.contextmanager
def without_copies() -> Iterator[None]:
    """GitCheckpointSaver handing out its cached messages instead of fresh copies: what is
    left of a read is the store's own work."""
    saved = lg._shallow_copy
    lg._shallow_copy = lambda message: message  # type: ignore[assignment]
    try:
        yield
    finally:
        lg._shallow_copy = saved


def reads(saver: Any, first_id: str, turn: int) -> dict[str, float]:
    old = {"configurable": {"thread_id": "bench", "checkpoint_ns": "",
                            "checkpoint_id": first_id}}
    latest = lambda: saver.get_tuple(THREAD)  # noqa: E731
    ten = lambda: list(saver.list(THREAD, limit=10))  # noqa: E731
    result = {f"get_tuple latest @{turn}": median_ms(latest),
              f"get_tuple old id @{turn}": median_ms(lambda: saver.get_tuple(old)),
              f"list(limit=10) @{turn}": median_ms(ten)}
    if isinstance(saver, GitCheckpointSaver):
        with without_copies():
            result[f"get_tuple latest own work @{turn}"] = median_ms(latest)
            result[f"list(limit=10) own work @{turn}"] = median_ms(ten)
    return result


def run(saver: Any, turns: int, words: int, *, measure: bool) -> dict[str, float]:
    """One chat of ``turns`` turns; with ``measure``, the reads at turn 10 and at the end
    (paused out of the whole run's time)."""
    graph = graph_for(saver, turns, words)
    result: dict[str, float] = {}
    start, cpu = time.perf_counter(), time.process_time()
    first_id = None
    for turn in range(1, turns + 1):
        graph.invoke({"messages": [HumanMessage(f"question {turn}")]}, THREAD)
        if first_id is None:
            first_id = saver.get_tuple(THREAD).checkpoint["id"]
        if measure and turn in (10, turns):
            paused, paused_cpu = time.perf_counter(), time.process_time()
            result.update(reads(saver, first_id, turn))
            start += time.perf_counter() - paused
            cpu += time.process_time() - paused_cpu
    result["whole run s"] = time.perf_counter() - start
    result["whole run CPU s"] = time.process_time() - cpu
    return result


def finish(saver: Any, storage: Path, result: dict[str, float]) -> None:
    """Disk before and after compaction, then copy_thread (copies are not disk use)."""
    result["disk MB"] = size_mb(storage)
    if isinstance(saver, GitCheckpointSaver):
        saver.store.gc()
    else:
        saver.conn.execute("VACUUM")
    result["disk MB after gc/VACUUM"] = size_mb(storage)
    copies = iter(range(1000))
    try:  # SqliteSaver has no copy_thread
        result["copy_thread"] = median_ms(
            lambda: saver.copy_thread("bench", f"copy-{next(copies)}"))
    except NotImplementedError:
        result["copy_thread"] = float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--words", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-langgraph-"))
    disk_before = diskprobe.file_create_us(str(work))
    makers: dict[str, Callable[[Path], tuple[Any, Path]]] = {
        "SqliteSaver": lambda d: (SqliteSaver(sqlite3.connect(d / "c.sqlite",
                                                              check_same_thread=False)),
                                  d / "c.sqlite"),
        "GitCheckpointSaver": lambda d: (GitCheckpointSaver(d / "git"), d / "git"),
    }
    results: dict[str, dict[str, float]] = {}
    for round_ in range(args.rounds):
        for name, make in makers.items():
            directory = work / f"{name}-{round_}"
            directory.mkdir()
            saver, storage = make(directory)
            last = round_ == args.rounds - 1
            result = run(saver, args.turns, args.words, measure=last)
            print(f"  round {round_ + 1} {name}: {result['whole run s']:.1f} s", flush=True)
            whole = ("whole run s", "whole run CPU s")
            best = results.setdefault(name, {key: result[key] for key in whole})
            for key in whole:
                best[key] = min(best[key], result[key])
            if last:
                best.update({k: v for k, v in result.items() if k not in whole})
                finish(saver, storage, best)
            del saver
            gc.collect()  # each round starts clean: no saver of an earlier round lingers
    load = os.getloadavg()[0]
    disk = diskprobe.describe(disk_before, diskprobe.file_create_us(str(work)))
    print(f"\n{platform.platform()} | {os.cpu_count()} CPUs, load {load:.2f} | disk: {disk} | "
          f"{args.turns} turns, answers of {args.words} words, best of {args.rounds} rounds\n")
    print("| measure (ms unless noted; median) | GitCheckpointSaver | SqliteSaver | ratio |")
    print("|---|---:|---:|---:|")
    git, sql = results["GitCheckpointSaver"], results["SqliteSaver"]
    for key in git:
        known = sql.get(key, float("nan")) == sql.get(key, float("nan"))
        other = f"{sql[key]:.3g}" if known else "n/a"
        ratio = f"{git[key] / sql[key]:.2f}×" if known else ""
        print(f"| {key} | {git[key]:.3g} | {other} | {ratio} |")
    turns = args.turns

    def flat(key: str) -> tuple[float, float]:
        nan = float("nan")
        return (git[f"{key} @{turns}"] / git[f"{key} @10"],
                sql.get(f"{key} @{turns}", nan) / sql.get(f"{key} @10", nan))

    checks = [("whole run ≤ 1.5× SqliteSaver", git["whole run s"] / sql["whole run s"], 1.5,
               f" (CPU time: {git['whole run CPU s'] / sql['whole run CPU s']:.3g}×)"),
              ("disk after gc ≤ 1/10 of SQLite",
               git["disk MB after gc/VACUUM"] / sql["disk MB"], 0.1, ""),
              ("disk before gc ≤ 1/3 of SQLite", git["disk MB"] / sql["disk MB"], 1 / 3, "")]
    for key in ("get_tuple latest", "get_tuple latest own work", "get_tuple old id",
                "list(limit=10)", "list(limit=10) own work"):
        ours, theirs = flat(key)
        note = f" (SqliteSaver: {theirs:.3g}×)" if theirs == theirs else ""
        checks.append((f"{key} flat @10 → @{turns} (≤ {FLAT}×)", ours, FLAT, note))
    checks.append(("copy_thread < 5 ms", git["copy_thread"], 5.0, " ms"))
    print()
    print("| goal | measured | |")
    print("|---|---:|---|")
    for label, value, limit, note in checks:
        print(f"| {label} | {value:.3g}{note} | {'PASS' if value <= limit else 'MISS'} |")


if __name__ == "__main__":
    main()
