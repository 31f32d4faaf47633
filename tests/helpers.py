"""What many test modules share: messages, the real ``git`` CLI, ``git fsck``, one store of each
kind (``StoreUnderTest``, behind both the contract classes and ``any_store``) and a clock that
ticks on demand so no test sleeps to order timestamps."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sessionsgit import (
    FileSessionStore,
    GitSessionStore,
    InMemorySessionStore,
    SQLiteAdapter,
    SQLSessionStore,
)

# ---- messages ------------------------------------------------------------------------------


def msg(role: str, text: str, mid: str | None = None) -> dict:
    """One Anthropic-style message (text content block), with an id when given."""
    message: dict[str, Any] = {"role": role, "content": [{"type": "text", "text": text}]}
    if mid is not None:
        message["id"] = mid
    return message


def transcript(n: int, prefix: str = "m") -> list[dict]:
    """``n`` alternating user/assistant messages with ids ``<prefix><i>``."""
    return [msg("user" if i % 2 == 0 else "assistant", f"{prefix} text {i}", f"{prefix}{i}")
            for i in range(n)]


def msgs(*texts: str) -> list[dict]:
    """Alternating user/assistant messages, one per text, with ids ``m-<text>``."""
    return [msg(("user", "assistant")[i % 2], t, f"m-{t}") for i, t in enumerate(texts)]


def heads(store: GitSessionStore) -> dict[str, str | None]:
    """{session id: head commit} of every live session."""
    return {m.id: m.head for m in store.list()}


# ---- the real git CLI ----------------------------------------------------------------------
def git(*args: str, cwd: str | Path | None = None, check: bool = True) -> str:
    """Run the real git CLI (for interoperability checks) and return its stdout."""
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def fsck(repo: Path, *extra: str) -> str:
    """``git fsck`` of ``repo`` (plus ``extra`` flags), asserting it reports no problem."""
    result = subprocess.run(["git", "fsck", "--no-progress", *extra], cwd=repo,
                            capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    bad = [line for line in output.splitlines()
           if line.split(" ", 1)[0].rstrip(":") in ("error", "missing", "broken", "fatal",
                                                     "warning")]
    assert not bad, output
    return output


# ---- one store of each kind ----------------------------------------------------------------
STORE_KINDS = ["memory", "file", "sql", "git"]


class StoreUnderTest:
    """A store of one kind in its own directory, reopened as a new instance on demand, with a
    fingerprint of what it has written (so a test can prove a rejected call wrote nothing)."""

    def __init__(self, kind: str, root: Path, **options: Any) -> None:
        self.kind = kind
        self.root = root
        self.data = root / "data"
        self.options = options
        self._memory: InMemorySessionStore | None = None
        self.opened: list[Any] = []
        self.store = self.reopen()

    def reopen(self) -> Any:
        """A new instance over the same data (the same instance for the in-memory store)."""
        if self.kind == "memory":
            self._memory = self._memory or InMemorySessionStore()
            return self._memory
        store: Any
        if self.kind == "file":
            store = FileSessionStore(self.data)
        elif self.kind == "sql":
            self.data.mkdir(parents=True, exist_ok=True)
            store = SQLSessionStore(SQLiteAdapter(self.data / "sessions.db"))
        else:
            store = GitSessionStore(self.data, **{"auto_pack": False, **self.options})
        self.opened.append(store)
        return store

    def fingerprint(self) -> dict[str, str]:
        """Every file under the store's root with a hash of its content, plus the logical
        content of the store."""
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


# ---- time ------------------------------------------------------------------------------------
class TickingClock:
    """A clock for ``sessionsgit.metadata.set_clock``: each reading is one millisecond after
    the last, so timestamps are strictly ordered without sleeping; ``advance`` jumps ahead."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def loosen(repo: Path, newest: int | None = None) -> None:
    """Turn the packs of ``repo`` (all, or the ``newest`` few) into loose objects, so a test
    can damage a single object or have loose objects to pack (saves write a pack each)."""
    pack_dir = Path(repo) / "objects" / "pack"
    indexes = sorted(pack_dir.glob("pack-*.idx"), key=lambda path: path.stat().st_mtime_ns)
    for index in indexes[-newest:] if newest else indexes:
        pack = index.with_suffix(".pack")
        data = pack.read_bytes()
        for suffix in (".idx", ".pack", ".keep", ".rev", ".bitmap"):
            index.with_suffix(suffix).unlink(missing_ok=True)
        subprocess.run(["git", "unpack-objects", "-q"], input=data, cwd=repo, check=True)
