"""Where each pydantic-ai conversation entry is stored: entry id -> (commit, position).

A derived lookup table (SQLite, beside the repository's objects) so ``read_entry`` and
``read_history`` find an entry without scanning every session. The data itself (entry ids in
the message blobs) stays in Git: the table can be deleted at any time and is rebuilt from the
repository on the first lookup that misses (a fresh clone, an entry a pull brought in).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Iterable

#: The table's file name inside the Git directory (``git`` ignores files it does not know).
FILE_NAME = "sessionsgit-pydantic-ai-entries.sqlite3"


class EntryIndex:
    """Entry id -> (commit hex, position in that commit's transcript)."""

    def __init__(self, git_dir: str | Path) -> None:
        self.path = Path(git_dir) / FILE_NAME
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS entries (entry_id TEXT PRIMARY KEY, "
                         "commit_id TEXT NOT NULL, position INTEGER NOT NULL)")

    def get(self, entry_id: str) -> tuple[str, int] | None:
        """Where ``entry_id`` was last recorded, or None."""
        with self._lock:
            row = self._db.execute("SELECT commit_id, position FROM entries WHERE entry_id = ?",
                                   (entry_id,)).fetchone()
        return (row[0], int(row[1])) if row else None

    def put(self, rows: Iterable[tuple[str, str, int]]) -> None:
        """Record (entry id, commit hex, position) rows, newest location winning."""
        rows = list(rows)
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
