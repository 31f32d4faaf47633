#!/usr/bin/env python3
"""sessionsgit benchmark: GitSessionStore against SQLite (shaped like the OpenAI Agents SDK's
``SQLiteSession``), the npm-style FileSessionStore and SQLSessionStore, in one run.

    make bench-quick      # about a minute: every save up to 1,000 messages, then a jump to 5,000
    make bench            # every save up to 10,000 messages, list() of 10,000 sessions
    .venv/bin/python tests/bench/bench.py --quick --markdown --json /tmp/bench.json

The machine is assumed to be noisy (other processes, 2 cores), so nothing is asserted on time:
contenders are interleaved (round-robin per step, rotating who goes first) so noise hits them
alike, medians are quoted, and the targets are ratios measured within this one run.
Only the stdlib and the project's own dependencies are used. Temporary stores live under one
temp dir that is removed at exit.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import math
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

# Isolate Git from the user's configuration (as tests/conftest.py does) before pygit2 loads it:
# HOME points at a directory that does not exist, so no ~/.gitconfig is read (nothing is created).
_HOME = os.path.join(tempfile.gettempdir(), "sessionsgit-bench-no-home")
os.environ.update({"HOME": _HOME, "XDG_CONFIG_HOME": os.path.join(_HOME, ".config"),
                   "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull,
                   "GIT_CONFIG_NOSYSTEM": "1"})
for _name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL",
              "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "SESSIONSGIT_REPO"):
    os.environ.pop(_name, None)

import pygit2  # noqa: E402

for _level in (pygit2.enums.ConfigLevel.GLOBAL, pygit2.enums.ConfigLevel.XDG,
               pygit2.enums.ConfigLevel.SYSTEM, pygit2.enums.ConfigLevel.PROGRAMDATA):
    try:
        pygit2.settings.search_path[_level] = os.path.join(_HOME, "empty-config")
    except (ValueError, pygit2.GitError):  # pragma: no cover - levels vary by libgit2
        pass

from sessionsgit import FileSessionStore, GitSessionStore, SQLiteAdapter, SQLSessionStore, freeze  # noqa: E402
from sessionsgit.git import blobcache, layout, packing  # noqa: E402

import diskprobe  # noqa: E402  (beside this script)

try:
    from sessionsgit import sync as _sync  # noqa: E402
    SYNC_ERROR = None
except Exception as _exc:  # the module is being written; rows say n/a without it
    _sync = None
    SYNC_ERROR = f"{type(_exc).__name__}: {_exc}"

MS = 1e3
T0 = time.perf_counter()

#: (seconds, objects packed, packs merged) of every automatic packing pass run inside a save
AUTO_PACKS: list[tuple[float, int, int]] = []
_maintain = packing.maintain


def _recording_maintain(repo: Any, **options: Any) -> Any:
    """packing.maintain, timing the passes saves run (``object_limit`` set) for the pause row."""
    start = time.perf_counter()
    report = _maintain(repo, **options)
    if options.get("object_limit") is not None:
        AUTO_PACKS.append((time.perf_counter() - start, report.packed_objects,
                           report.merged_packs))
    return report


packing.maintain = _recording_maintain


# ================================================================================================
# configuration
# ================================================================================================
class Config:
    def __init__(self, quick: bool, seed: int) -> None:
        self.quick = quick
        self.seed = seed
        if quick:
            self.every_save_cap = 2000        # every save, every contender, up to here
            self.checkpoints = [10, 100, 250, 1000, 2000, 5000]  # 5,000 by one bulk save
            self.window = 30                  # timed saves ending at a checkpoint
            self.slow_window = 8              # File/SQLSessionStore (O(n) per save) at >= 1,000
            self.short_conversations = 4      # extra 10-message conversations for the @10 window
            self.load_reps = 5
            self.process_load_reps = 3
            self.fork_reps = 5
            self.slow_fork_reps = 3
            self.list_sizes = [1000, 10000]   # 10,000 only if it fits the budget
            self.list_reps = 6
            self.push_reps = 2
            self.incremental_reps = 5
            self.disk_every = 25
            self.append_sizes = [10, 20000]   # append() at 10 and at 20,000 messages
            self.append_reps = 30
            self.startup_runs = 8
            self.budget = 90.0                # seconds; optional parts are skipped past it
        else:
            self.every_save_cap = 10000
            self.checkpoints = [10, 100, 250, 1000, 2000, 5000, 10000]
            self.window = 50
            self.slow_window = 20
            self.short_conversations = 6
            self.load_reps = 9
            self.process_load_reps = 5
            self.fork_reps = 9
            self.slow_fork_reps = 5
            self.list_sizes = [1000, 10000]
            self.list_reps = 10
            self.push_reps = 5
            self.incremental_reps = 10
            self.disk_every = 25
            self.append_sizes = [10, 100000]
            self.append_reps = 50
            self.startup_runs = 20
            self.budget = float("inf")
        self.disk_checkpoint = 5000           # disk before/after maintenance is taken here
        self.fork_checkpoints = [10, 5000]
        self.load_checkpoints = [c for c in self.checkpoints if c >= 1000]
        self.max_messages = self.checkpoints[-1]

    def jumped(self, count: int) -> bool:
        """Whether a checkpoint is reached by one bulk save rather than save after save."""
        return count > self.every_save_cap


def elapsed() -> float:
    return time.perf_counter() - T0


def log(text: str) -> None:
    print(f"[{elapsed():6.1f}s] {text}", file=sys.stderr, flush=True)


# ================================================================================================
# deterministic, realistic messages (1-2 KB of JSON each)
# ================================================================================================
_WORDS = ("the model returned a summary of tool output with several fields and the user asked "
          "for more detail about performance latency storage branch commit fork session message "
          "context window token budget retry error handling schema validation request response "
          "stream chunk parser index query result document search ranking embedding vector "
          "cache eviction policy config flag default timeout network socket retry backoff "
          "naïve café déjà 東京 данные ✓ 🚀").split()
_TOOLS = ("search_docs", "read_file", "run_sql", "http_get", "calculator")


class MessageFactory:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def _text(self, length: int) -> str:
        if length <= 0:
            return ""
        words = self.rng.choices(_WORDS, k=length // 5 + 2)
        text = " ".join(words)
        while len(text) < length:
            text += " " + " ".join(self.rng.choices(_WORDS, k=8))
        return text[:length].rstrip() + "."

    def _call_id(self) -> str:
        return f"call_{self.rng.getrandbits(96):024x}"

    def message(self, index: int) -> dict[str, Any]:
        """A user turn, an assistant tool call, a tool result, an assistant answer, repeating."""
        rng = self.rng
        base_time = _dt.datetime(2025, 3, 1, tzinfo=_dt.timezone.utc)
        stamp = (base_time + _dt.timedelta(seconds=7 * index, microseconds=rng.randrange(10**6))
                 ).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        kind = index % 4
        msg_id = f"msg_{index:06d}_{rng.getrandbits(32):08x}"
        if kind == 0:
            message = {"id": msg_id, "role": "user", "created_at": stamp,
                       "content": [{"type": "text", "text": ""}]}
            slot = message["content"][0]
        elif kind == 1:
            self._last_call = self._call_id()
            self._last_tool = rng.choice(_TOOLS)
            message = {"id": msg_id, "role": "assistant", "created_at": stamp,
                       "model": "gpt-4.1-2025-04-14",
                       "content": [{"type": "text", "text": ""},
                                   {"type": "tool_use", "id": self._last_call,
                                    "name": self._last_tool,
                                    "input": {"query": self._text(rng.randint(20, 80)),
                                              "top_k": rng.randint(3, 20),
                                              "filters": {"lang": "en", "after": stamp[:10]}}}],
                       "stop_reason": "tool_use",
                       "usage": {"input_tokens": rng.randint(500, 120000),
                                 "output_tokens": rng.randint(10, 800)}}
            slot = message["content"][0]
        elif kind == 2:
            message = {"id": msg_id, "role": "tool", "created_at": stamp,
                       "tool_call_id": getattr(self, "_last_call", self._call_id()),
                       "name": getattr(self, "_last_tool", "search_docs"),
                       "content": [{"type": "tool_result",
                                    "tool_use_id": getattr(self, "_last_call", ""),
                                    "is_error": rng.random() < 0.05,
                                    "content": [{"type": "text", "text": ""}]}]}
            slot = message["content"][0]["content"][0]
        else:
            message = {"id": msg_id, "role": "assistant", "created_at": stamp,
                       "model": "gpt-4.1-2025-04-14",
                       "content": [{"type": "text", "text": ""}],
                       "stop_reason": "end_turn",
                       "usage": {"input_tokens": rng.randint(500, 120000),
                                 "output_tokens": rng.randint(50, 1500)}}
            slot = message["content"][0]
        target = rng.randint(1024, 2000)   # bytes of compact JSON (non-ASCII counts as UTF-8)
        skeleton = len(json.dumps(message, ensure_ascii=False).encode())
        slot["text"] = self._text(max(64, target - skeleton - 40))
        return message

    def short(self, index: int) -> list[dict[str, Any]]:
        """Two short messages: the body of one list() fixture session."""
        return [{"id": f"u{index}", "role": "user",
                 "content": [{"type": "text", "text": self._text(60)}]},
                {"id": f"a{index}", "role": "assistant",
                 "content": [{"type": "text", "text": self._text(160)}]}]


# ================================================================================================
# an SQLite session store shaped like the OpenAI Agents SDK's SQLiteSession
# ================================================================================================
class AgentsSQLiteStore:
    """What ``agents.memory.SQLiteSession`` does, for many sessions in one file: a sessions table
    and an append-only messages table; ``add_items`` is one transaction appending the new items
    and touching ``updated_at``; ``get_items`` reads the rows in id order and parses each."""

    def __init__(self, path: str | os.PathLike[str], *, wal: bool = False) -> None:
        self.path = os.fspath(path)
        self.conn = sqlite3.connect(self.path, check_same_thread=False)
        if wal and self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            # set once, when the file is created: re-setting it while another connection holds
            # the WAL open failed here with "disk I/O error"
            self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript("""
            CREATE TABLE IF NOT EXISTS agent_sessions (
                session_id TEXT PRIMARY KEY,
                created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
            CREATE TABLE IF NOT EXISTS agent_messages (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                session_id TEXT NOT NULL,
                message_data TEXT NOT NULL,
                created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                FOREIGN KEY (session_id) REFERENCES agent_sessions (session_id) ON DELETE CASCADE);
            CREATE INDEX IF NOT EXISTS idx_agent_messages_session_id
                ON agent_messages (session_id, id);
        """)
        self.conn.commit()

    def add_items(self, session_id: str, items: list[dict[str, Any]]) -> None:
        conn = self.conn
        conn.execute("INSERT OR IGNORE INTO agent_sessions (session_id) VALUES (?)", (session_id,))
        conn.executemany("INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)",
                         [(session_id, json.dumps(item)) for item in items])
        conn.execute("UPDATE agent_sessions SET updated_at = CURRENT_TIMESTAMP "
                     "WHERE session_id = ?", (session_id,))
        conn.commit()

    def get_items(self, session_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT message_data FROM agent_messages WHERE session_id = ? "
                                 "ORDER BY id ASC", (session_id,)).fetchall()
        return [json.loads(row[0]) for row in rows]

    def list_sessions(self) -> list[tuple[str, str, str]]:
        return self.conn.execute("SELECT session_id, created_at, updated_at FROM agent_sessions "
                                 "ORDER BY updated_at DESC").fetchall()

    def fork(self, parent_id: str, child_id: str, at: int | None = None) -> None:
        """Copy the parent's first ``at`` rows (all by default) inside the database."""
        conn = self.conn
        conn.execute("INSERT INTO agent_sessions (session_id) VALUES (?)", (child_id,))
        conn.execute("INSERT INTO agent_messages (session_id, message_data) "
                     "SELECT ?, message_data FROM agent_messages WHERE session_id = ? "
                     "ORDER BY id LIMIT ?", (child_id, parent_id, -1 if at is None else at))
        conn.commit()

    def delete(self, session_id: str) -> None:
        self.conn.execute("DELETE FROM agent_messages WHERE session_id = ?", (session_id,))
        self.conn.execute("DELETE FROM agent_sessions WHERE session_id = ?", (session_id,))
        self.conn.commit()

    def maintain(self) -> None:
        self.conn.execute("VACUUM")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def close(self) -> None:
        self.conn.close()


# ================================================================================================
# contenders: one interface over every store
# ================================================================================================
def disk_bytes(path: Path) -> int:
    """Bytes allocated (st_blocks * 512) by every file and directory below ``path``."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def settle_heap() -> None:
    """Collect, then freeze what is alive: the harness's own long-lived objects (the corpus,
    every contender's store and what it cached) stay out of the full collections that a timed
    call's allocations trigger, so no contender is charged for traversing the others' heap."""
    gc.collect()
    gc.freeze()


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


class Contender:
    key = ""
    label = ""
    whole_transcript = True   # save() takes the whole transcript (else: only the new items)

    def __init__(self, directory: Path, *, open_now: bool = True) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.store: Any = self.open() if open_now else None

    # the store API, as each contender's users would call it
    def open(self) -> Any:
        raise NotImplementedError

    def save(self, sid: str, transcript: list, new: list) -> None:
        self.store.save(sid, transcript)

    def catch_up(self, sid: str, transcript: list, new: list) -> None:
        """Bring the session to ``transcript`` in one write (a bulk save / add_items)."""
        self.save(sid, transcript, new)

    def load(self, store: Any, sid: str) -> list:
        return store.load(sid).messages

    def list(self, store: Any) -> list:
        return store.list()

    def fork(self, sid: str, child: str, at: int | None) -> None:
        self.store.fork(sid, child, at=at)

    def delete(self, sid: str) -> None:
        self.store.delete(sid)

    def maintain(self, store: Any) -> None:
        """The store's maintenance (gc / VACUUM); nothing by default."""

    def close_store(self, store: Any) -> None:
        close = getattr(store, "close", None)
        if close:
            close()

    # measurements
    def fresh_load(self, sid: str) -> tuple[float, int]:
        store = self.open()
        try:
            seconds, messages = timed(lambda: self.load(store, sid))
        finally:
            self.close_store(store)
        return seconds, len(messages)

    def fresh_list(self) -> tuple[float, int]:
        store = self.open()
        try:
            seconds, rows = timed(lambda: self.list(store))
        finally:
            self.close_store(store)
        return seconds, len(rows)

    def warm_list(self) -> tuple[float, int]:
        seconds, rows = timed(lambda: self.list(self.store))
        return seconds, len(rows)

    def disk(self) -> int:
        return disk_bytes(self.dir)

    def maintained_disk(self, scratch: Path) -> int:
        """Disk after maintenance, measured on a copy so the live store is left as it is."""
        copy_dir = scratch / f"maint-{self.key}"
        shutil.rmtree(copy_dir, ignore_errors=True)
        shutil.copytree(self.dir, copy_dir)
        saved_dir, self.dir = self.dir, copy_dir
        try:
            store = self.open()
            try:
                self.maintain(store)
            finally:
                self.close_store(store)
            return disk_bytes(copy_dir)
        finally:
            self.dir = saved_dir
            shutil.rmtree(copy_dir, ignore_errors=True)

    def close(self) -> None:
        if self.store is not None:
            self.close_store(self.store)
            self.store = None


class GitContender(Contender):
    key, label = "git", "Git"
    durable = False

    def open(self) -> GitSessionStore:
        return GitSessionStore(self.dir / "repo", durable=self.durable)

    def maintain(self, store: GitSessionStore) -> None:
        store.gc()

    def disk(self) -> int:
        return disk_bytes(self.dir / "repo")

    def clone_from(self, other: "GitContender") -> None:
        """Become a copy of another Git contender's repository (same history, this one's options)."""
        self.close()
        shutil.rmtree(self.dir / "repo", ignore_errors=True)
        shutil.copytree(other.dir / "repo", self.dir / "repo")
        self.store = self.open()


class GitDurableContender(GitContender):
    key, label = "gitd", "Git durable"
    durable = True


class GitReadOnlyContender(GitContender):
    """The Git store as SessionManager + Conversation use it: read-only (frozen) messages, each
    frozen once when it joins the transcript, which the store trusts by identity."""
    key, label = "gitro", "Git read-only msgs"

    def __init__(self, directory: Path, *, open_now: bool = True) -> None:
        super().__init__(directory, open_now=open_now)
        self._frozen: dict[str, list] = {}

    def save(self, sid: str, transcript: list, new: list) -> None:
        frozen = self._frozen.setdefault(sid, [])
        del frozen[len(transcript):]
        frozen.extend(freeze(m) for m in transcript[len(frozen):])
        self.store.save(sid, list(frozen))


class AgentsContender(Contender):
    key, label = "sdk", "SQLite SDK"
    whole_transcript = False
    wal = False

    def open(self) -> AgentsSQLiteStore:
        return AgentsSQLiteStore(self.dir / "sessions.db", wal=self.wal)

    def save(self, sid: str, transcript: list, new: list) -> None:
        self.store.add_items(sid, new)

    def catch_up(self, sid: str, transcript: list, new: list) -> None:
        self.store.add_items(sid, new)

    def load(self, store: AgentsSQLiteStore, sid: str) -> list:
        return store.get_items(sid)

    def list(self, store: AgentsSQLiteStore) -> list:
        return store.list_sessions()

    def fork(self, sid: str, child: str, at: int | None) -> None:
        self.store.fork(sid, child, at)

    def maintain(self, store: AgentsSQLiteStore) -> None:
        store.maintain()


class AgentsWalContender(AgentsContender):
    key, label = "sdkwal", "SQLite SDK WAL"
    wal = True


class FileContender(Contender):
    key, label = "file", "File (npm)"

    def open(self) -> FileSessionStore:
        return FileSessionStore(self.dir / "sessions")


class SQLStoreContender(Contender):
    key, label = "sqlstore", "SQLSessionStore"

    def open(self) -> SQLSessionStore:
        return SQLSessionStore(SQLiteAdapter(self.dir / "sessions.db"))

    def maintain(self, store: SQLSessionStore) -> None:
        conn = store.adapter._conn  # the adapter has no maintenance call: VACUUM its connection
        conn.execute("VACUUM")


ALL_KEYS = ["git", "gitro", "gitd", "sdk", "sdkwal", "file", "sqlstore"]
LABELS = {"git": "Git", "gitro": "Git read-only msgs", "gitd": "Git durable", "sdk": "SQLite SDK", "sdkwal": "SQLite SDK WAL",
          "file": "File (npm)", "sqlstore": "SQLSessionStore", "cli": "git CLI"}


CONTENDERS: dict[str, type[Contender]] = {c.key: c for c in (
    GitContender, GitReadOnlyContender, GitDurableContender, AgentsContender, AgentsWalContender, FileContender,
    SQLStoreContender)}


def load_in_new_process(sid: str, contenders: list[Contender]) -> list[tuple[str, float, int]]:
    """Time load() of each store, in this order, in a new Python process: what resuming a
    session after a restart costs, without any cache this process built while saving."""
    spec = json.dumps({"sid": sid, "stores": [[c.key, str(c.dir)] for c in contenders]})
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child-load", spec],
                          capture_output=True, text=True, check=True)
    return [tuple(row) for row in json.loads(done.stdout.strip().splitlines()[-1])]


def child_load(spec_text: str) -> int:
    spec = json.loads(spec_text)
    out = []
    for key, directory in spec["stores"]:
        # two Git stores hold the same blobs: forget what the previous one read, so each load
        # here is as cold as the first after a restart
        blobcache.shared.clear()
        layout._chunk_cache.clear()
        layout._messages_cache.clear()
        contender = CONTENDERS[key](Path(directory), open_now=False)
        seconds, count = contender.fresh_load(spec["sid"])
        out.append([key, seconds, count])
    print(json.dumps(out))
    return 0


def rotated(items: list, step: int) -> list:
    if not items:
        return items
    shift = step % len(items)
    return items[shift:] + items[:shift]


# ================================================================================================
# results
# ================================================================================================
class Results:
    def __init__(self) -> None:
        self.samples: dict[str, dict[str, list[float]]] = {}   # workload -> contender -> seconds
        self.values: dict[str, dict[str, Any]] = {}            # workload -> contender -> value
        self.notes: list[str] = []
        self.errors: dict[str, str] = {}
        self.series: dict[str, list[tuple[int, int]]] = {}     # disk samples (messages, bytes)

    def add(self, workload: str, key: str, seconds: float) -> None:
        self.samples.setdefault(workload, {}).setdefault(key, []).append(seconds)

    def set(self, workload: str, key: str, value: Any) -> None:
        self.values.setdefault(workload, {})[key] = value

    def get(self, workload: str, key: str) -> list[float]:
        return self.samples.get(workload, {}).get(key, [])

    def median(self, workload: str, key: str) -> float | None:
        data = self.get(workload, key)
        return statistics.median(data) if data else None

    def p99(self, workload: str, key: str) -> float | None:
        data = sorted(self.get(workload, key))
        if not data:
            return None
        return data[max(0, math.ceil(0.99 * len(data)) - 1)]


# ================================================================================================
# workload 1: one conversation, saved after every message
# ================================================================================================
def conversation(cfg: Config, res: Results, root: Path, messages: list[dict]) -> None:
    base = root / "conversation"
    every = [GitContender(base / "git"), AgentsContender(base / "sdk"),
             AgentsWalContender(base / "sdkwal"), GitReadOnlyContender(base / "gitro")]
    git, sdk = every[0], every[1]
    gitd = GitDurableContender(base / "gitd")
    joining = [gitd, FileContender(base / "file"), SQLStoreContender(base / "sqlstore")]
    contenders = {c.key: c for c in every + joining}

    def window(c: Contender, checkpoint: int) -> int:
        if checkpoint <= 10:
            return checkpoint - 1          # saves 2..10 (the first save creates the session)
        if c.key in ("file", "sqlstore") and checkpoint >= 1000:
            return cfg.slow_window
        return cfg.window

    disk_max = {"ratio": 0.0, "at": 0, "git": 0, "sdk": 0}
    totals: dict[str, list] = {}   # every-save contenders: [sum, max, count] over the main run
    disk_max_1000 = dict(disk_max)

    def sample_disk(count: int) -> None:
        sizes = {c.key: c.disk() for c in every}
        for key, size in sizes.items():
            res.series.setdefault(key, []).append((count, size))
        if count >= 100 and sizes["sdk"]:
            ratio = sizes["git"] / sizes["sdk"]
            if ratio > disk_max["ratio"]:
                disk_max.update(ratio=ratio, at=count, git=sizes["git"], sdk=sizes["sdk"])
            if count >= 1000 and ratio > disk_max_1000["ratio"]:
                disk_max_1000.update(ratio=ratio, at=count, git=sizes["git"], sdk=sizes["sdk"])

    def run(sid: str, upto: int, checkpoints: list[int], main: bool) -> None:
        transcript: list[dict] = []
        step = 1
        while step <= upto:
            target = next(c for c in checkpoints if c >= step)
            longest = max(window(c, target) for c in every + joining)
            if main and cfg.jumped(target) and step == cfg.every_save_cap + 1:
                # --quick: one bulk save up to just before the window (recorded in the table)
                jump_to = target - longest - 1
                new = messages[len(transcript):jump_to]
                transcript.extend(new)
                log(f"jump: one bulk save of {len(new)} messages to reach {jump_to}")
                for c in every:
                    c.catch_up(sid, transcript, new)
                step = jump_to + 1
                continue
            new = [messages[step - 1]]
            transcript.append(new[0])
            active = list(every)
            for c in joining:
                start = target - window(c, target) + 1    # first timed save
                if step == start - 1:                     # join: untimed catch-up save
                    if isinstance(c, GitContender):
                        c.clone_from(git) if step > 1 else None
                        c.save(sid, transcript, new)
                    else:
                        c.catch_up(sid, transcript, new)
                elif start <= step <= target:
                    active.append(c)
            for c in rotated(active, step):
                seconds, _ = timed(lambda c=c: c.save(sid, transcript, new))
                if step > target - window(c, target):
                    res.add(f"save@{target}", c.key, seconds)
                if main and step <= cfg.every_save_cap and c in every:
                    total = totals.setdefault(c.key, [0.0, 0.0, 0])
                    total[0] += seconds
                    total[1] = max(total[1], seconds)
                    total[2] += 1
            if main and step % cfg.disk_every == 0:
                sample_disk(step)
            if main and step == target:
                checkpoint_actions(sid, target, transcript)
            step += 1

    def checkpoint_actions(sid: str, count: int, transcript: list[dict]) -> None:
        log(f"checkpoint {count:,}: " + ", ".join(
            f"{LABELS[k]} p50 {fmt_ms(res.median(f'save@{count}', k))}"
            for k in ALL_KEYS if res.get(f"save@{count}", k)))
        if count == cfg.disk_checkpoint:
            for c in every + joining[1:]:
                res.set("disk_before", c.key, c.disk())
                res.set("disk_after", c.key, c.maintained_disk(root))
        if count in cfg.load_checkpoints:
            readers = [c for c in every + joining if c is not gitd]  # gitd: Git's read path
            for rep in range(cfg.load_reps):
                for c in rotated(readers, rep):
                    try:
                        seconds, n = c.fresh_load(sid)
                    except sqlite3.Error as exc:  # one contender's failure must not end the run
                        res.notes.append(f"{c.label} load at {count} failed: {exc}")
                        continue
                    if n != count:
                        res.notes.append(f"{c.label} loaded {n} of {count} messages")
                    res.add(f"load@{count}", c.key, seconds)
            for rep in range(cfg.process_load_reps):
                for key, seconds, n in load_in_new_process(sid, rotated(readers, rep)):
                    if n != count:
                        res.notes.append(f"{LABELS[key]} loaded {n} of {count} messages "
                                         "(new process)")
                    res.add(f"pload@{count}", key, seconds)
            loaded = git.load(git.store, sid)
            if loaded != transcript:
                res.notes.append(f"SANITY: Git load at {count} differs from what was saved")
        if count in cfg.fork_checkpoints:
            points = [None, 10] if count > 10 else [None]
            children = []
            for at in points:
                name = f"fork@{count}" if at is None else f"fork10of{count}"
                for rep in range(cfg.fork_reps):
                    for c in rotated(every + joining, rep):
                        if c.key in ("file", "sqlstore") and count >= 1000 \
                                and rep >= cfg.slow_fork_reps:
                            continue
                        child = f"{sid}-fork-{count}-{at}-{rep}"
                        seconds, _ = timed(lambda c=c: c.fork(sid, child, at))
                        res.add(name, c.key, seconds)
                        children.append((c, child))
            for c, child in children:
                c.delete(child)
            # The copies the SQLite forks made would otherwise inflate every later disk sample.
            for c in every + joining:
                if isinstance(c, (AgentsContender, SQLStoreContender)):
                    c.maintain(c.store)

    try:
        for k in range(cfg.short_conversations):
            run(f"warmup-{k}", 10, [10], main=False)
        log("short conversations done")
        run("main", cfg.max_messages, cfg.checkpoints, main=True)
        res.set("disk_max_ratio", "git", disk_max)
        for key, (total, worst, count) in totals.items():
            res.set("save_total", key, {"seconds": total, "max": worst, "saves": count})
        res.set("disk_max_ratio_from_1000", "git", disk_max_1000)
    finally:
        for c in contenders.values():
            c.close()
        shutil.rmtree(base, ignore_errors=True)


# ================================================================================================
# workload 2: list() of many sessions
# ================================================================================================
def list_sessions(cfg: Config, res: Results, root: Path, factory: MessageFactory,
                  after_first: Callable[[Path], None] | None) -> None:
    base = root / "list"
    contenders = [GitContender(base / "git"), AgentsContender(base / "sdk"),
                  AgentsWalContender(base / "sdkwal"), FileContender(base / "file"),
                  SQLStoreContender(base / "sqlstore")]
    created = 0
    try:
        for size_index, size in enumerate(cfg.list_sizes):
            if size_index > 0 and cfg.quick:
                per_session = sum(statistics.mean(res.get("create", c.key)) for c in contenders)
                estimate = (size - created) * per_session * 1.2 + 5
                if elapsed() + estimate > cfg.budget:
                    res.set(f"list_skipped@{size}", "all",
                            f"needs ~{estimate:.0f}s more than the --quick budget")
                    log(f"list of {size:,} skipped (would take ~{estimate:.0f}s)")
                    continue
            log(f"building {size:,} sessions")
            while created < size:
                sid = f"s{created:05d}"
                body = factory.short(created)
                for c in rotated(contenders, created):
                    seconds, _ = timed(lambda c=c: c.save(sid, body, body))
                    res.add("create", c.key, seconds)
                created += 1
            settle_heap()
            for rep in range(cfg.list_reps):
                for c in rotated(contenders, rep):
                    seconds, n = c.fresh_list()
                    # the first one is the first list() ever over these sessions (for Git: no
                    # persisted list index yet); the median is taken over the others
                    res.add(f"list_{'first' if rep == 0 else 'cold'}@{size}", c.key, seconds)
                    if n != size:
                        res.notes.append(f"{c.label} list() returned {n} of {size} sessions")
            for c in contenders:
                c.warm_list()
            settle_heap()
            for rep in range(cfg.list_reps):
                for c in rotated(contenders, rep):
                    seconds, _ = c.warm_list()
                    res.add(f"list_warm@{size}", c.key, seconds)
            log(f"list of {size:,}: " + ", ".join(
                f"{c.label} cold {fmt_ms(res.median(f'list_cold@{size}', c.key))} "
                f"warm {fmt_ms(res.median(f'list_warm@{size}', c.key))}" for c in contenders))
            if size_index == 0 and after_first is not None:
                after_first(contenders[0].dir / "repo")
    finally:
        for c in contenders:
            c.close()
        shutil.rmtree(base, ignore_errors=True)


# ================================================================================================
# workload 2b: append() to a short session and to a very long one
# ================================================================================================
def append_workload(cfg: Config, res: Results, root: Path) -> None:
    """GitSessionStore.append of one message to sessions of each size in ``append_sizes``,
    interleaved, in one repository (automatic packing on, as users run it). The long session
    is made of short messages by one bulk save: append reads only the head commit, the
    messages tree and the last chunk, so its cost must not depend on the length."""
    base = root / "append"
    store = GitSessionStore(base / "repo")
    try:
        for size in cfg.append_sizes:
            log(f"append: building a session of {size:,} messages")
            body = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}"}
                    for i in range(size)]
            seconds, _ = timed(lambda body=body, size=size: store.save(f"len-{size}", body))
            res.add(f"append_build@{size}", "git", seconds)
        for rep in range(cfg.append_reps):
            for size in rotated(cfg.append_sizes, rep):
                message = {"role": "user", "content": f"appended {rep}"}
                seconds, _ = timed(lambda size=size, message=message:
                                   store.append(f"len-{size}", [message]))
                res.add(f"append@{size}", "git", seconds)
        for size in cfg.append_sizes:
            count = store.head_metadata(f"len-{size}").message_count
            if count != size + cfg.append_reps:
                res.notes.append(f"SANITY: append session of {size} holds {count} messages")
        log("append: " + ", ".join(f"@{s:,} p50 {fmt_ms(res.median(f'append@{s}', 'git'))}"
                                    for s in cfg.append_sizes))
    finally:
        store.close()
        shutil.rmtree(base, ignore_errors=True)


# ================================================================================================
# workload 2c: CLI start-up (tests/bench/bench_startup.py, fewer runs)
# ================================================================================================
def startup_workload(cfg: Config, res: Results) -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_startup
    times = bench_startup.measure(cfg.startup_runs, 100)
    for name, values in times.items():
        for ms in values:
            res.add(f"startup:{name}", "cli", ms / MS)


# ================================================================================================
# workload 3: push and fetch of 1,000 sessions (sessionsgit.sync against the git CLI)
# ================================================================================================
REFSPEC = "refs/heads/sessions/*:refs/heads/sessions/*"


def git_cli(*args: str | os.PathLike[str]) -> None:
    subprocess.run(["git", *map(os.fspath, args)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def push_fetch(cfg: Config, res: Results, root: Path, fixture_repo: Path,
               factory: MessageFactory) -> None:
    base = root / "sync"
    base.mkdir(parents=True, exist_ok=True)
    source = base / "source"
    shutil.copytree(fixture_repo, source)
    sessions = sum(1 for name in pygit2.Repository(str(source)).references
                   if name.startswith("refs/heads/sessions/"))
    res.set("sync_sessions", "git", sessions)
    store = GitSessionStore(source)
    remote_no = [0]

    def bare() -> Path:
        remote_no[0] += 1
        path = base / f"remote-{remote_no[0]}"
        pygit2.init_repository(str(path), bare=True)
        return path

    def sync_push(remote: Path) -> float:
        name = f"r{remote.name.rsplit('-', 1)[1]}"
        if name not in {r.name for r in store.repo.remotes}:
            _sync.add_remote(store, name, str(remote))
        return timed(lambda: _sync.push(store, name))[0]

    def cli_push(remote: Path) -> float:
        return timed(lambda: git_cli("-C", source, "push", "--quiet", remote, REFSPEC))[0]

    def sync_pull(dest: GitSessionStore) -> float:
        return timed(lambda: _sync.pull(dest, "origin"))[0]

    def cli_fetch(dest: Path, remote: Path) -> float:
        return timed(lambda: git_cli("-C", dest, "fetch", "--quiet", remote, REFSPEC))[0]

    try:
        have_sync = _sync is not None
        sync_remote = cli_remote = None
        for rep in range(cfg.push_reps):
            order = ["sync", "cli"] if rep % 2 == 0 else ["cli", "sync"]
            for who in order:
                if who == "sync" and not have_sync:
                    continue
                remote = bare()
                seconds = sync_push(remote) if who == "sync" else cli_push(remote)
                res.add("push_full", "git" if who == "sync" else "cli", seconds)
                if who == "sync":
                    sync_remote = remote
                else:
                    cli_remote = remote
        log("full push done")
        dests: dict[str, Any] = {}
        for rep in range(cfg.push_reps):
            order = ["sync", "cli"] if rep % 2 == 0 else ["cli", "sync"]
            for who in order:
                if who == "sync" and not have_sync:
                    continue
                path = base / f"dest-{who}-{rep}"
                if who == "sync":
                    dest = GitSessionStore(path)
                    _sync.add_remote(dest, "origin", str(sync_remote))
                    res.add("fetch_full", "git", sync_pull(dest))
                    if "sync" in dests:
                        dests["sync"].close()
                    dests["sync"] = dest
                else:
                    pygit2.init_repository(str(path), bare=True)
                    res.add("fetch_full", "cli", cli_fetch(path, cli_remote))
                    dests["cli"] = path
        log("full fetch done")
        ids = sorted(name[len("refs/heads/sessions/"):] for name in store.repo.references
                     if name.startswith("refs/heads/sessions/"))
        for rep in range(cfg.incremental_reps):
            sid = ids[(rep * 37) % len(ids)]
            session = store.load(sid)
            store.save(sid, session.messages + [factory.short(10**6 + rep)[0]])
            order = ["sync", "cli"] if rep % 2 == 0 else ["cli", "sync"]
            for who in order:
                if who == "sync" and have_sync:
                    res.add("push_incr", "git", sync_push(sync_remote))
                elif who == "cli":
                    res.add("push_incr", "cli", cli_push(cli_remote))
            for who in order:
                if who == "sync" and have_sync:
                    res.add("fetch_incr", "git", sync_pull(dests["sync"]))
                elif who == "cli":
                    res.add("fetch_incr", "cli", cli_fetch(dests["cli"], cli_remote))
        if have_sync:
            dest = dests["sync"]
            got = dest.load(ids[0])
            if got is None or got.messages != store.load(ids[0]).messages:
                res.notes.append("SANITY: a pulled session differs from the pushed one")
            dest.close()
        log("incremental push/fetch done")
    finally:
        store.close()
        shutil.rmtree(base, ignore_errors=True)


# ================================================================================================
# report
# ================================================================================================
def fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    ms = seconds * MS
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def fmt_mb(size: int | None) -> str:
    return "—" if size is None else f"{size / 1e6:.2f}"


def machine_line() -> str:
    try:
        git_version = subprocess.run(["git", "--version"], capture_output=True, text=True,
                                     check=True).stdout.strip().replace("git version ", "")
    except (OSError, subprocess.CalledProcessError):
        git_version = "?"
    load = ""
    if hasattr(os, "getloadavg"):
        load = " load %.2f" % os.getloadavg()[0]
    return (f"{platform.platform()} | {os.cpu_count()} CPUs{load} | Python "
            f"{platform.python_version()} | pygit2 {pygit2.__version__} / libgit2 "
            f"{pygit2.LIBGIT2_VERSION} | SQLite {sqlite3.sqlite_version} | git {git_version} | "
            f"{_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")


def build_table(cfg: Config, res: Results) -> tuple[list[str], list[list[str]]]:
    columns = ALL_KEYS + ["cli"]
    header = ["workload (ms unless noted; median)"] + [LABELS[k] for k in columns]
    rows: list[list[str]] = []
    dag = lambda n: f"{n:,}" + (" †" if cfg.jumped(n) else "")  # noqa: E731

    def row(name: str, cell: Callable[[str], str]) -> None:
        rows.append([name] + [cell(k) for k in columns])

    for cp in cfg.checkpoints:
        w = f"save@{cp}"
        if w in res.errors:
            row(f"save p50 / p99 @ {dag(cp)} msgs", lambda k: "error")
            continue
        row(f"save p50 / p99 @ {dag(cp)} msgs",
            lambda k, w=w: (f"{fmt_ms(res.median(w, k))} / {fmt_ms(res.p99(w, k))}"
                            if res.get(w, k) else ""))
    totals = res.values.get("save_total", {})
    if totals:
        saves = max(t["saves"] for t in totals.values())
        row(f"all {saves:,} saves of the conversation: total s / max ms",
            lambda k: f"{totals[k]['seconds']:.2f} / {fmt_ms(totals[k]['max'])}"
            if k in totals else "")
    for cp in cfg.load_checkpoints:
        for w, where in ((f"pload@{cp}", "new process"), (f"load@{cp}", "new instance")):
            row(f"load {dag(cp)} msgs ({where})",
                lambda k, w=w: fmt_ms(res.median(w, k)) if res.get(w, k) else "")
    for cp in cfg.fork_checkpoints:
        w = f"fork@{cp}"
        row(f"fork whole session @ {dag(cp)} msgs",
            lambda k, w=w: fmt_ms(res.median(w, k)) if res.get(w, k) else "")
        if cp > 10:
            w = f"fork10of{cp}"
            row(f"fork at msg 10 of {dag(cp)}",
                lambda k, w=w: fmt_ms(res.median(w, k)) if res.get(w, k) else "")
    for cp in cfg.checkpoints:
        if cp < 100 or cp == cfg.disk_checkpoint:
            continue
        live = {k: dict(series).get(cp) for k, series in res.series.items()}
        row(f"disk MB @ {dag(cp)} msgs (live)",
            lambda k, live=live: fmt_mb(live[k]) if live.get(k) is not None else "")
    cp = cfg.disk_checkpoint
    before, after = res.values.get("disk_before", {}), res.values.get("disk_after", {})
    row(f"disk MB @ {dag(cp)} msgs", lambda k: fmt_mb(before[k]) if k in before else "")
    row(f"disk MB @ {dag(cp)} after gc/VACUUM",
        lambda k: fmt_mb(after[k]) if k in after else "")
    for size in cfg.list_sizes:
        skipped = res.values.get(f"list_skipped@{size}")
        for kind in ("first", "cold", "warm"):
            w = f"list_{kind}@{size}"
            label = f"list() {size:,} sessions, {'first call ever' if kind == 'first' else kind}"
            if skipped:
                row(label, lambda k: "skipped" if k in ("git", "sdk") else "")
                continue
            row(label, lambda k, w=w: fmt_ms(res.median(w, k)) if res.get(w, k) else "")
    row("new session save (2 short msgs)",
        lambda k: fmt_ms(res.median("create", k)) if res.get("create", k) else "")
    for size in cfg.append_sizes:
        w = f"append@{size}"
        row(f"append 1 msg to a session of {size:,} short msgs p50 / p99",
            lambda k, w=w: f"{fmt_ms(res.median(w, k))} / {fmt_ms(res.p99(w, k))}"
            if res.get(w, k) else "")
    for name in [w for w in res.samples if w.startswith("startup:")]:
        row(f"CLI wall: {name[len('startup:'):]}",
            lambda k, name=name: fmt_ms(res.median(name, k)) if res.get(name, k) else "")
    sessions = res.values.get("sync_sessions", {}).get("git")
    n = f"{sessions:,}" if sessions else "1,000"
    for w, label in (("push_full", f"push {n} sessions, full"),
                     ("push_incr", "push after 1 session changed"),
                     ("fetch_full", f"fetch {n} sessions, full"),
                     ("fetch_incr", "fetch after 1 session changed")):
        def cell(k: str, w: str = w) -> str:
            if k == "git" and _sync is None:
                return "n/a (sync not available)"
            if w in res.errors and k in ("git", "cli"):
                return "error"
            return fmt_ms(res.median(w, k)) if res.get(w, k) else ""
        row(label, cell)
    return header, rows


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b not in (None, 0) else None


def targets(cfg: Config, res: Results) -> list[tuple[str, str, str]]:
    """(PASS/MISS/n/a, target, measured)."""
    out: list[tuple[str, str, str]] = []
    top = cfg.disk_checkpoint
    dag = lambda n: f"{n:,}" + ("†" if cfg.jumped(n) else "")  # noqa: E731

    def check(name: str, value: float | None, limit: float, text: str, unit: str = "×") -> None:
        if value is None:
            out.append(("n/a", name, "not measured"))
            return
        verdict = "PASS" if value <= limit else "MISS"
        shown = f"{value:.2f}{unit}" if unit == "×" else f"{value:.1f} {unit}"
        out.append((verdict, name, f"{text} = {shown} (limit {limit:g}{unit if unit == '×' else ' ' + unit})"))

    med = res.median
    # ---- issue 16: resume, list and save at SQLite's speed ----
    for cp in (2000, 5000):
        check(f"#16 resume: Git load of {dag(cp)} msgs in a NEW process ≤ 1.2× SQLite",
              ratio(med(f"pload@{cp}", "git"), med(f"pload@{cp}", "sdk")), 1.2,
              f"{fmt_ms(med(f'pload@{cp}', 'git'))} / {fmt_ms(med(f'pload@{cp}', 'sdk'))} ms")
    for size in (10000, 1000):
        skipped = f" ({res.values[f'list_skipped@{size}']['all']})" \
            if f"list_skipped@{size}" in res.values else ""
        check(f"#16 Git list() of {size:,} sessions, cold (new store object), ≤ 2× SQLite "
              f"cold{skipped}",
              ratio(med(f"list_cold@{size}", "git"), med(f"list_cold@{size}", "sdk")), 2.0,
              f"{fmt_ms(med(f'list_cold@{size}', 'git'))} / "
              f"{fmt_ms(med(f'list_cold@{size}', 'sdk'))} ms")
    for key in ("git", "gitro"):
        check(f"#16 {LABELS[key]} save p50 @{dag(2000)} ≤ 1.5× SQLite append p50",
              ratio(med("save@2000", key), med("save@2000", "sdk")), 1.5,
              f"{fmt_ms(med('save@2000', key))} / {fmt_ms(med('save@2000', 'sdk'))} ms")
        check(f"#16 {LABELS[key]} save flat: p50 @{dag(2000)} ≤ 1.3× p50 @250",
              ratio(med("save@2000", key), med("save@250", key)), 1.3,
              f"{fmt_ms(med('save@2000', key))} / {fmt_ms(med('save@250', key))} ms; p99 "
              f"{fmt_ms(res.p99('save@2000', key))} / {fmt_ms(res.p99('save@250', key))} ms")
    small, big = cfg.append_sizes[0], cfg.append_sizes[-1]
    check(f"#16 append p50 at {big:,} msgs ≤ 1.3× at {small}",
          ratio(med(f"append@{big}", "git"), med(f"append@{small}", "git")), 1.3,
          f"{fmt_ms(med(f'append@{big}', 'git'))} / {fmt_ms(med(f'append@{small}', 'git'))} "
          f"ms; p99 {fmt_ms(res.p99(f'append@{big}', 'git'))} / "
          f"{fmt_ms(res.p99(f'append@{small}', 'git'))} ms")
    if AUTO_PACKS:
        worst = max(AUTO_PACKS, key=lambda p: p[0])
        most = max(p[1] for p in AUTO_PACKS)
        verdict = "PASS" if most <= packing.AUTO_PACK_OBJECT_LIMIT else "MISS"
        out.append((verdict, "#16 no save pauses for a whole-repository pack (each automatic "
                             f"pass packs ≤ {packing.AUTO_PACK_OBJECT_LIMIT:,} objects)",
                    f"{len(AUTO_PACKS)} passes in saves; largest {most:,} objects; longest "
                    f"{worst[0] * MS:.0f} ms ({worst[1]:,} objects, {worst[2]} packs merged)"))
        check("#16 longest automatic packing pause inside one save ≤ 250 ms",
              worst[0] * MS, 250, "max", "ms")
    else:
        out.append(("n/a", "#16 no save pauses for a whole-repository pack", "not measured"))
    wall = [w for w in res.samples if w.startswith("startup:sessionsgit list")]
    check("#16 `sessionsgit list` wall (100 sessions) ≤ 100 ms",
          None if not wall else med(wall[0], "cli") * MS, 100, "median", "ms")
    # ---- earlier targets ----
    check(f"Git save stays flat (p50 @{dag(top)} ≤ 1.3× p50 @10)",
          ratio(med(f"save@{top}", "git"), med("save@10", "git")), 1.3,
          f"{fmt_ms(med(f'save@{top}', 'git'))} / {fmt_ms(med('save@10', 'git'))} ms")
    check(f"Git read-only msgs (as SessionManager saves) stays flat (p50 @{dag(top)} ≤ 1.3× @10)",
          ratio(med(f"save@{top}", "gitro"), med("save@10", "gitro")), 1.3,
          f"{fmt_ms(med(f'save@{top}', 'gitro'))} / {fmt_ms(med('save@10', 'gitro'))} ms")
    for cp in sorted({1000, top}):
        for key in ("git", "gitro"):
            check(f"{LABELS[key]} save p50 ≤ 1.5× SQLite append p50 @{dag(cp)}",
                  ratio(med(f"save@{cp}", key), med(f"save@{cp}", "sdk")), 1.5,
                  f"{fmt_ms(med(f'save@{cp}', key))} / {fmt_ms(med(f'save@{cp}', 'sdk'))} ms")
    totals = res.values.get("save_total", {})
    if "git" in totals and "sdk" in totals:
        g, q = totals["git"], totals["sdk"]
        out.append(("info", f"mean save over all {g['saves']:,} saves (incl. packing) Git / SQLite",
                    f"{fmt_ms(g['seconds'] / g['saves'])} / {fmt_ms(q['seconds'] / q['saves'])} ms"
                    f" = {g['seconds'] / q['seconds']:.2f}×"))
    in_process = ratio(med(f"load@{top}", "git"), med(f"load@{top}", "sdk"))
    if in_process is not None:
        out.append(("info", f"Git / SQLite load of {dag(top)} msgs, new instance in the "
                            "saving process (Git's process-wide caches warm)",
                    f"{in_process:.2f}×"))
    sizes = [s for s in cfg.list_sizes if res.get(f"list_warm@{s}", "git")]
    size = max(sizes) if sizes else 10000
    note = "" if size == 10000 else f" (measured at {size:,}; 10,000 skipped)"
    warm = med(f"list_warm@{size}", "git")
    check(f"Git list() of 10,000 sessions warm ≤ 50 ms{note}",
          None if warm is None else warm * MS, 50, "median", "ms")
    fork_top = med(f"fork@{top}", "git")
    check(f"Git fork ≤ 1 ms (whole session @{dag(top)})",
          None if fork_top is None else fork_top * MS, 1.0, "median", "ms")
    check(f"Git fork about the same @{dag(top)} as @10 (≤ 1.5×)",
          ratio(fork_top, med("fork@10", "git")), 1.5,
          f"{fmt_ms(fork_top)} / {fmt_ms(med('fork@10', 'git'))} ms")
    before, after = res.values.get("disk_before", {}), res.values.get("disk_after", {})
    check(f"Git disk ≤ 1.5× SQLite after maintenance @{dag(top)}",
          ratio(after.get("git"), after.get("sdk")), 1.5,
          f"{fmt_mb(after.get('git'))} / {fmt_mb(after.get('sdk'))} MB")
    peak = res.values.get("disk_max_ratio", {}).get("git")
    check("Git disk never > 3× SQLite (max over samples ≥100 msgs, every "
          f"{cfg.disk_every} saves)", peak["ratio"] if peak and peak["ratio"] else None, 3.0,
          f"at {peak['at']:,} msgs {fmt_mb(peak['git'])} / {fmt_mb(peak['sdk'])} MB"
          if peak and peak["ratio"] else "")
    later = res.values.get("disk_max_ratio_from_1000", {}).get("git")
    if later and later["ratio"]:
        out.append(("info", "Git/SQLite disk max from 1,000 msgs on",
                    f"{later['ratio']:.2f}× at {later['at']:,} msgs "
                    f"({fmt_mb(later['git'])} / {fmt_mb(later['sdk'])} MB)"))
    if _sync is None:
        out.append(("n/a", "incremental push ≤ 100 ms; full push ≤ git push",
                     "n/a (sync not available)"))
    else:
        inc = med("push_incr", "git")
        check("incremental push (1 of 1,000 changed) ≤ 100 ms",
              None if inc is None else inc * MS, 100, "median", "ms")
        check("full push no slower than git push",
              ratio(med("push_full", "git"), med("push_full", "cli")), 1.0,
              f"{fmt_ms(med('push_full', 'git'))} / {fmt_ms(med('push_full', 'cli'))} ms")
    return out


def render(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    # drop columns that are empty in every row
    keep = [0] + [i for i in range(1, len(header)) if any(r[i] for r in rows)]
    header = [header[i] for i in keep]
    rows = [[r[i] or ("" if markdown else "") for i in keep] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
        lines += ["| " + " | ".join(c or " " for c in r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(  # noqa: E731
        (c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])) for i, c in enumerate(cells))
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), sep] + [fmt(r) for r in rows])


def legend(cfg: Config, res: Results) -> list[str]:
    lines = [
        f"mode: {'--quick' if cfg.quick else 'full'}; messages 1-2 KB JSON (seed {cfg.seed}); "
        "contenders interleaved round-robin per step; medians.",
        f"save: p50 / p99 over the {cfg.window} saves ending at that count (@10: saves 2-10 of "
        f"{cfg.short_conversations + 1} conversations); File and SQLSessionStore rewrite the "
        f"whole transcript, so from 1,000 on they join {cfg.slow_window} saves before the "
        "checkpoint (after one untimed catch-up save); Git durable joins "
        f"{cfg.window} saves before, on a copy of the Git repository.",
        "p99 is nearest-rank: with 30-50 samples it is the largest or second largest.",
        "SQLite SDK = a store shaped like OpenAI Agents SQLiteSession (append rows; load = "
        "SELECT ... ORDER BY id + json.loads); fork there = INSERT ... SELECT of the rows.",
        "load 'new process' = load() timed inside a fresh Python process (resume after a "
        "restart; the OS page cache is warm); 'new instance' = a new store object in the "
        "process that saved (Git's process-wide blob/chunk caches are warm there).",
        "list 'first call ever' = one new store object right after the sessions were written "
        "(Git: no list index yet; one sample); 'cold' = further new store objects "
        "(Git answers from the list index the first call wrote); 'warm' = the same object again. "
        "Before they are timed, the heap is collected and frozen (gc.freeze): a full collection "
        "that one call's allocations trigger would otherwise traverse every contender's stores "
        "and cost 50-80 ms at 10,000 sessions, whichever call it lands in (Git returns 10,000 "
        "dataclass objects, which Python's GC tracks; SQLite's rows are tuples of strings, "
        "which it untracks).",
        "disk = st_blocks*512 of the store's files; maintenance: GitSessionStore.gc(), "
        "SQLite VACUUM (+ wal_checkpoint), on a copy. Fork children are deleted after timing "
        "(and the SQLite files vacuumed) so they do not inflate later disk samples.",
        "append: GitSessionStore.append of one message, alternating between a 10-message "
        "session and a long one of short messages made by one bulk save (automatic packing "
        "on); automatic packing passes are timed inside every save of the run. CLI wall: "
        "tests/bench/bench_startup.py's commands, each a fresh process, interleaved.",
        "push/fetch: sessionsgit.sync.push/pull (Git column) vs git push/fetch with "
        f"'{REFSPEC}' (git CLI column), into fresh bare repos on this disk.",
    ]
    jumped = [c for c in cfg.checkpoints if cfg.jumped(c)]
    if jumped:
        lines.append(f"† every save up to {cfg.every_save_cap:,} messages (the --quick cap), "
                     f"then ONE bulk save up to {jumped[0] - cfg.window - 1:,}, then every save "
                     "again: a shorter history than saving each message (`make bench` saves "
                     "every message).")
    if _sync is None:
        lines.append(f"sync: n/a (sync not available: {SYNC_ERROR})")
    for name, error in res.errors.items():
        lines.append(f"ERROR in {name}: {error}")
    lines += res.notes
    return lines


# ================================================================================================
# main
# ================================================================================================
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument("--json", metavar="PATH", dest="json_", help="dump raw results here")
    parser.add_argument("--only", metavar="WORKLOAD", action="append",
                        choices=["conversation", "save", "load", "fork", "disk", "list", "sync",
                                 "append", "startup"],
                        help="run only this workload (repeatable); save/load/fork/disk all "
                             "run the conversation")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--cap", type=int, metavar="N",
                        help="save after every message up to N (default: 1,000 with --quick, "
                             "all the way otherwise); checkpoints past N are reached by one "
                             "bulk save and marked †")
    parser.add_argument("--seed", type=int, default=20250301)
    parser.add_argument("--tmpdir", help="where the stores go (default: the system temp dir)")
    parser.add_argument("--child-load", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_load:
        return child_load(args.child_load)

    cfg = Config(args.quick, args.seed)
    if args.cap is not None:
        cfg.every_save_cap = max(10, args.cap)
    only = set(args.only or ["conversation", "list", "sync", "append", "startup"])
    if only & {"save", "load", "fork", "disk"}:
        only.add("conversation")
    res = Results()
    machine = machine_line()
    disk_start = diskprobe.file_create_us(args.tmpdir)
    root = Path(tempfile.mkdtemp(prefix="sessionsgit-bench-", dir=args.tmpdir))
    try:
        log(f"building {cfg.max_messages:,} messages")
        factory = MessageFactory(cfg.seed)
        messages = [factory.message(i) for i in range(cfg.max_messages)]
        sizes = [len(json.dumps(m, ensure_ascii=False).encode()) for m in messages]
        res.set("message_bytes", "all", {"min": min(sizes), "max": max(sizes),
                                         "mean": statistics.mean(sizes)})
        settle_heap()   # the corpus is long-lived: keep it out of every later collection
        if "conversation" in only:
            try:
                conversation(cfg, res, root, messages)
            except Exception as exc:
                traceback.print_exc()
                res.errors["conversation"] = f"{type(exc).__name__}: {exc}"
        del messages

        def after_first(repo: Path) -> None:
            if "sync" not in only:
                return
            try:
                push_fetch(cfg, res, root, repo, factory)
            except Exception as exc:
                traceback.print_exc()
                for w in ("push_full", "push_incr", "fetch_full", "fetch_incr"):
                    res.errors[w] = f"{type(exc).__name__}: {exc}"

        for workload, run_it in (("append", lambda: append_workload(cfg, res, root)),
                                 ("startup", lambda: startup_workload(cfg, res))):
            if workload in only:
                try:
                    run_it()
                except Exception as exc:
                    traceback.print_exc()
                    res.errors[workload] = f"{type(exc).__name__}: {exc}"
        if "list" in only or "sync" in only:
            if "list" not in only:
                cfg.list_sizes = cfg.list_sizes[:1]
            try:
                list_sessions(cfg, res, root, factory, after_first)
            except Exception as exc:
                traceback.print_exc()
                res.errors["list"] = f"{type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(root, ignore_errors=True)
    machine += " | disk: " + diskprobe.describe(disk_start, diskprobe.file_create_us(args.tmpdir))

    header, rows = build_table(cfg, res)
    if "conversation" not in only:
        rows = [r for r in rows if not r[0].startswith(("save", "load", "fork", "disk"))]
    if not ({"list", "sync"} & only):
        rows = [r for r in rows if not r[0].startswith(("list", "new session", "push", "fetch"))]
    if "sync" not in only:
        rows = [r for r in rows if not r[0].startswith(("push", "fetch"))]
    if "list" not in only:
        rows = [r for r in rows if not r[0].startswith(("list", "new session"))]
    if "append" not in only:
        rows = [r for r in rows if not r[0].startswith("append")]
    out = []
    out.append(("**Machine:** " if args.markdown else "machine: ") + machine)
    out.append("")
    out.append(render(header, rows, args.markdown))
    out.append("")
    out.append("Targets:" if not args.markdown else "**Targets**")
    for verdict, name, measured in targets(cfg, res):
        if args.only and measured == "not measured":
            continue
        out.append(f"{'- ' if args.markdown else '  '}{verdict:<4}  {name}: {measured}")
    out.append("")
    for line in legend(cfg, res):
        out.append(("- " if args.markdown else "") + line)
    bytes_info = res.values.get("message_bytes", {}).get("all")
    if bytes_info:
        out.append(("- " if args.markdown else "") +
                   f"message size: {bytes_info['min']}-{bytes_info['max']} bytes, mean "
                   f"{bytes_info['mean']:.0f}")
    out.append(("- " if args.markdown else "") + f"wall time: {elapsed():.1f}s")
    print("\n".join(out))

    if args.json_:
        with open(args.json_, "w", encoding="utf-8") as handle:
            json.dump({"machine": machine, "quick": cfg.quick, "seed": cfg.seed,
                       "samples_seconds": res.samples, "values": res.values,
                       "disk_series": res.series, "notes": res.notes, "errors": res.errors,
                       "targets": targets(cfg, res), "wall_seconds": elapsed()},
                      handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
