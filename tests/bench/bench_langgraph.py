"""GitCheckpointSaver against langgraph-checkpoint-sqlite's SqliteSaver on one chat thread.

    python tests/bench/bench_langgraph.py [--turns 200] [--words 100]

Both run the same MessagesState graph (a fake model answering ~``--words`` words) in this one
process, one after the other; ratios come from the same run. Prints a Markdown table and the
issue's targets (PASS/MISS); never fails.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, MessagesState, StateGraph

from sessionsgit.integrations.langgraph import GitCheckpointSaver

THREAD = {"configurable": {"thread_id": "bench"}}


def graph_for(saver: Any, turns: int, words: int) -> Any:
    text = " ".join(f"word{i % 97}" for i in range(words))
    model = GenericFakeChatModel(messages=iter([AIMessage(f"{n}: {text}") for n in range(turns)]))
    builder = StateGraph(MessagesState)
    builder.add_node("model", lambda state: {"messages": [model.invoke(state["messages"])]})
    builder.add_edge(START, "model")
    return builder.compile(checkpointer=saver)


def median_ms(action: Callable[[], Any], repeat: int = 15) -> float:
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


def run(name: str, saver: Any, turns: int, words: int, storage: Path) -> dict[str, float]:
    graph = graph_for(saver, turns, words)
    result: dict[str, float] = {}
    start = time.perf_counter()
    first_id = None
    for turn in range(1, turns + 1):
        graph.invoke({"messages": [HumanMessage(f"question {turn}")]}, THREAD)
        if first_id is None:
            first_id = saver.get_tuple(THREAD).checkpoint["id"]
        if turn in (10, turns):
            paused = time.perf_counter()
            old = {"configurable": {"thread_id": "bench", "checkpoint_ns": "",
                                    "checkpoint_id": first_id}}
            result[f"get_tuple latest @{turn}"] = median_ms(lambda: saver.get_tuple(THREAD))
            result[f"get_tuple old id @{turn}"] = median_ms(lambda: saver.get_tuple(old))
            result[f"list(limit=10) @{turn}"] = median_ms(
                lambda: list(saver.list(THREAD, limit=10)))
            start += time.perf_counter() - paused
    result["whole run s"] = time.perf_counter() - start
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
    print(f"  {name}: {result['whole run s']:.1f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--words", type=int, default=100)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-langgraph-"))
    db = work / "checkpoints.sqlite"
    sqlite = SqliteSaver(sqlite3.connect(db, check_same_thread=False))
    results = {"SqliteSaver": run("SqliteSaver", sqlite, args.turns, args.words, db)}
    # the copies made for timing copy_thread are not part of the thread's disk use
    results["GitCheckpointSaver"] = run("GitCheckpointSaver", GitCheckpointSaver(work / "git"),
                                        args.turns, args.words, work / "git")
    print(f"\n{platform.platform()} | {os.cpu_count()} CPUs load {os.getloadavg()[0]:.2f} | "
          f"{args.turns} turns, answers of {args.words} words\n")
    print("| measure (ms unless noted; median) | GitCheckpointSaver | SqliteSaver | ratio |")
    print("|---|---:|---:|---:|")
    git, sql = results["GitCheckpointSaver"], results["SqliteSaver"]
    for key in git:
        other = "n/a" if sql[key] != sql[key] else f"{sql[key]:.3g}"
        ratio = "" if sql[key] != sql[key] else f"{git[key] / sql[key]:.2f}×"
        print(f"| {key} | {git[key]:.3g} | {other} | {ratio} |")
    turns = args.turns
    checks = [
        ("whole run ≤ 1.5× SqliteSaver", git["whole run s"] / sql["whole run s"], 1.5),
        ("disk after gc ≤ 1/10 of SQLite", git["disk MB after gc/VACUUM"] / sql["disk MB"], 0.1),
        ("disk before gc ≤ 1/3 of SQLite", git["disk MB"] / sql["disk MB"], 1 / 3),
        (f"get_tuple latest flat @10 → @{turns} (≤ 1.5×)",
         git[f"get_tuple latest @{turns}"] / git["get_tuple latest @10"], 1.5),
        (f"get_tuple old id flat @10 → @{turns} (≤ 1.5×)",
         git[f"get_tuple old id @{turns}"] / git["get_tuple old id @10"], 1.5),
        (f"list(limit=10) flat @10 → @{turns} (≤ 1.5×)",
         git[f"list(limit=10) @{turns}"] / git["list(limit=10) @10"], 1.5),
        ("copy_thread < 5 ms", git["copy_thread"], 5.0),
    ]
    print()
    for label, value, limit in checks:
        print(f"- {'PASS' if value <= limit else 'MISS'}  {label}: {value:.3g}")


if __name__ == "__main__":
    main()
