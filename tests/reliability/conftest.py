"""Fixtures for the reliability tests: every store kind, plus a fingerprint of what a store has
written (so a test can prove a rejected call wrote nothing)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from sessionsgit import (
    FileSessionStore,
    GitSessionStore,
    InMemorySessionStore,
    SQLiteAdapter,
    SQLSessionStore,
)

STORE_KINDS = ["memory", "file", "sql", "git"]


class StoreUnderTest:
    """A store of one kind in its own directory, with what it has written on disk."""

    def __init__(self, kind: str, root: Path) -> None:
        self.kind = kind
        self.root = root
        self.data = root / "data"
        self._memory = None
        self.opened: list = []
        self.store = self.reopen()

    def reopen(self):
        if self.kind == "memory":
            self._memory = self._memory or InMemorySessionStore()
            return self._memory
        if self.kind == "file":
            store = FileSessionStore(self.data)
        elif self.kind == "sql":
            self.data.mkdir(exist_ok=True)
            store = SQLSessionStore(SQLiteAdapter(self.data / "sessions.db"))
        else:
            store = GitSessionStore(self.data, auto_pack=False)
        self.opened.append(store)
        return store

    def fingerprint(self) -> dict[str, str]:
        """Every file under the store's root (and the root's siblings inside ``root``) with a
        hash of its content, plus the logical content of the store."""
        files = {}
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.endswith(("-journal", "-wal", "-shm")):
                files[str(path.relative_to(self.root))] = hashlib.sha1(path.read_bytes()).hexdigest()
        if self.kind == "sql":  # the database file's bytes can change on a read; compare rows
            files = {k: v for k, v in files.items() if not k.endswith("sessions.db")}
            rows = self.store.adapter._conn.execute(
                "SELECT id, metadata, messages FROM sessions ORDER BY id").fetchall()
            files["rows"] = hashlib.sha1(repr(rows).encode()).hexdigest()
        if self.kind == "memory":
            files["sessions"] = hashlib.sha1(repr(sorted(
                (repr(m.to_dict()), repr(self.store.load(m.id).messages))
                for m in self.store.list())).encode()).hexdigest()
        return files

    def session_files(self) -> set[str]:
        """Where session ids show up on disk: ref names (git), file names (file), row ids."""
        if self.kind == "git":
            return {ref for ref in self.store.repo.references}
        if self.kind == "file":
            return {str(p.relative_to(self.data)) for p in self.data.rglob("*")}
        if self.kind == "sql":
            return {row[0] for row in self.store.adapter._conn.execute("SELECT id FROM sessions")}
        return {m.id for m in self.store.list()}

    def close(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(params=STORE_KINDS)
def any_store(request, tmp_path):
    under_test = StoreUnderTest(request.param, tmp_path)
    yield under_test
    under_test.close()


@pytest.fixture(autouse=True)
def _no_stray_files_outside(tmp_path):
    """Nothing a test does may write outside its own tmp_path (path traversal)."""
    parent = tmp_path.parent
    before = set(os.listdir(parent))
    yield
    after = set(os.listdir(parent))
    assert after <= before | {tmp_path.name}, after - before
