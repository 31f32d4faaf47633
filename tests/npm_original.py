"""A behavioural model of the original npm package ``@simulacra-ai/session`` 0.0.9, written from
reading its source (``file-session-store.ts``, ``drizzle-session-store.ts``,
``session-manager.ts``): what it writes for each operation and what it loads back. Tests use it
to build fixtures exactly as the original writes them and to check what the original would make
of what sessionsgit writes. It models behaviour only; ``None`` stands for JavaScript's
``undefined`` (dropped by ``JSON.stringify``).

Facts of the original this model encodes:

* ``FileSessionStore.save(id, messages, metadata)`` reads the existing file as
  ``{id, ...file.metadata}`` and writes ``{...existing, created_at: existing ?? now,
  updated_at: now, message_count: messages.length, ...metadata}`` (so a re-saved file's
  metadata starts with ``id``), pretty-printed with two spaces, then hard-links the file into
  ``<parent_id>-forks/`` when it has a parent. ``list()`` reads regular ``*.json`` files only;
  a file that does not parse is skipped silently.
* ``delete(id)`` removes the file, its link in its parent's index and its own ``<id>-forks/``.
* ``DrizzleSessionStore`` does the same merge on ``row.metadata`` (no id added) and upserts
  ``{id, metadata, messages, updated_at}``.
* ``SessionManager`` stores a session's OWN messages (those after ``fork_offset``); ``fork``
  saves ``{parent_id, fork_message_id: last inherited message's id, detached}``; loading
  resolves ``parent messages up to fork_message_id (all when absent or not found) + own``,
  recursively, a missing parent contributing nothing; the auto-label is the first user text,
  trimmed, cut to 60 UTF-16 code units and back to a word boundary.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable


class Clock:
    """``new Date().toISOString()``, one millisecond later on every call."""

    def __init__(self, start: str = "2024-05-01T10:00:00") -> None:
        self.ms = 0
        self.start = start

    def __call__(self) -> str:
        self.ms += 1
        seconds, ms = divmod(self.ms, 1000)
        minutes, seconds = divmod(seconds, 60)
        return f"{self.start[:-5]}{minutes:02d}:{seconds:02d}.{ms:03d}Z"


def stringify(value: Any) -> str:
    """``JSON.stringify(value, null, 2)`` for the values sessions hold (well-formed: a lone
    surrogate is written as a ``\\uXXXX`` escape)."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return re.sub("[\ud800-\udfff]", lambda c: f"\\u{ord(c.group(0)):04x}", text)


def _merge(existing: dict[str, Any], messages: list, metadata: dict[str, Any] | None,
           now: str) -> dict[str, Any]:
    merged = {**existing, "created_at": existing.get("created_at") or now, "updated_at": now,
              "message_count": len(messages), **(metadata or {})}
    return {k: v for k, v in merged.items() if v is not None}


class OriginalFileStore:
    """The original's ``FileSessionStore`` (json format) over a directory."""

    def __init__(self, root: str | os.PathLike[str], clock: Callable[[], str]) -> None:
        self.root = Path(root)
        self.clock = clock

    def _read(self, session_id: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.root / f"{session_id}.json").read_text("utf-8"))
            return {"metadata": {"id": session_id, **data["metadata"]},
                    "messages": data["messages"]}
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def load(self, session_id: str) -> dict[str, Any] | None:
        return self._read(session_id)

    def list(self) -> list[dict[str, Any]]:
        found = []
        for entry in os.scandir(self.root):
            if entry.is_file(follow_symlinks=False) and entry.name.endswith(".json"):
                record = self._read(entry.name[:-len(".json")])
                if record is not None:
                    found.append(record["metadata"])
        return sorted(found, key=lambda m: m["updated_at"], reverse=True)

    def save(self, session_id: str, messages: list, metadata: dict[str, Any] | None = None
             ) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        existing = self._read(session_id)
        existing_metadata = existing["metadata"] if existing else {}
        parent_id = (metadata or {}).get("parent_id") or existing_metadata.get("parent_id")
        merged = _merge(existing_metadata, messages, metadata, self.clock())
        path = self.root / f"{session_id}.json"
        path.write_text(stringify({"metadata": merged, "messages": messages}), "utf-8")
        if parent_id:
            link = self.root / f"{parent_id}-forks" / f"{session_id}.json"
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.exists():
                link.unlink()
            os.link(path, link)

    def delete(self, session_id: str) -> bool:
        record = self._read(session_id)
        try:
            (self.root / f"{session_id}.json").unlink()
        except OSError:
            return False
        parent_id = record["metadata"].get("parent_id") if record else None
        if parent_id:
            try:
                (self.root / f"{parent_id}-forks" / f"{session_id}.json").unlink()
            except OSError:
                pass
        shutil.rmtree(self.root / f"{session_id}-forks", ignore_errors=True)
        return True


class OriginalDrizzleStore:
    """The original's ``DrizzleSessionStore`` over ``rows`` (id -> row dict), the same dict a
    sessionsgit ``SQLSessionStore`` can share through a small adapter."""

    def __init__(self, rows: dict[str, dict[str, Any]], clock: Callable[[], str]) -> None:
        self.rows = rows
        self.clock = clock

    def load(self, session_id: str) -> dict[str, Any] | None:
        row = self.rows.get(session_id)
        if row is None:
            return None
        row = json.loads(json.dumps(row))  # a database hands out fresh rows
        return {"metadata": {"id": session_id, **row["metadata"]}, "messages": row["messages"]}

    def save(self, session_id: str, messages: list, metadata: dict[str, Any] | None = None
             ) -> None:
        now = self.clock()
        row = self.rows.get(session_id)
        merged = _merge(dict(row["metadata"]) if row else {}, messages, metadata, now)
        self.rows[session_id] = json.loads(json.dumps(
            {"id": session_id, "metadata": merged, "messages": messages, "updated_at": now}))

    def delete(self, session_id: str) -> bool:
        return self.rows.pop(session_id, None) is not None


def resolve(store: Any, session_id: str) -> list:
    """``SessionManager``'s transcript of a session: the parent's messages up to the fork point
    (all of them when it names none or one the parent lacks), then the session's own."""
    record = store.load(session_id)
    if record is None:
        return []
    metadata, messages = record["metadata"], record["messages"]
    if metadata.get("parent_id") and not metadata.get("detached"):
        parent = resolve(store, metadata["parent_id"])
        fork_message_id = metadata.get("fork_message_id")
        if fork_message_id:
            for index, message in enumerate(parent):
                if message.get("id") == fork_message_id:
                    return parent[:index + 1] + messages
        return parent + messages
    return messages


def slug(messages: list) -> str | None:
    """The original's auto-label: first user text, trimmed, cut to 60 UTF-16 code units (so it
    can end in half a surrogate pair), then back to the last word boundary."""
    first_user = next((m for m in messages if m.get("role") == "user"), None)
    if first_user is None:
        return None
    text = next((c.get("text") for c in first_user.get("content", []) if c.get("type") == "text"),
                None)
    raw = (text or "").strip()
    if not raw:
        return None
    units = raw.encode("utf-16-le", "surrogatepass")[:120]
    truncated = units.decode("utf-16-le", "surrogatepass")
    at_boundary = re.sub(r"\s+\S*$", "", truncated)
    return at_boundary or truncated


class OriginalManager:
    """The transcript side of the original's ``SessionManager`` (auto-save on every message)."""

    def __init__(self, store: Any, *, auto_slug: bool = True) -> None:
        self.store = store
        self.auto_slug = auto_slug
        self.session_id: str | None = None
        self.messages: list = []
        self.fork_offset = 0
        self.has_label = False
        self.checkpoint_state: Any = None
        self.is_checkpoint = False

    def start_new(self, session_id: str, label: str | None = None) -> str:
        self.session_id, self.messages, self.fork_offset = session_id, [], 0
        self.has_label = bool(label)
        self.save({"label": label})
        return session_id

    def add(self, *messages: dict) -> None:
        for message in messages:
            self.messages.append(message)
            self.save()  # auto_save on message_complete

    def fork(self, parent_id: str, session_id: str, *, detached: bool = False) -> str:
        self.session_id, self.has_label = session_id, False
        fork_message_id = None
        if not detached:
            self.messages = resolve(self.store, parent_id)
            self.fork_offset = len(self.messages)
            if self.messages:
                fork_message_id = self.messages[-1].get("id")
        else:
            self.fork_offset = 0
            self.messages = []
        parent = self.store.load(parent_id)
        if parent and parent["metadata"].get("checkpoint_state"):
            self.checkpoint_state = parent["metadata"]["checkpoint_state"]
        self.save({"parent_id": parent_id, "fork_message_id": fork_message_id,
                   "detached": detached})
        return session_id

    def load(self, session_id: str) -> list:
        messages = resolve(self.store, session_id)
        record = self.store.load(session_id)
        assert record is not None, f"session not found: {session_id}"
        self.session_id, self.has_label = session_id, bool(record["metadata"].get("label"))
        self.fork_offset = len(messages) - len(record["messages"])
        self.messages = list(messages)
        self.checkpoint_state = record["metadata"].get("checkpoint_state")
        return messages

    def save(self, metadata: dict[str, Any] | None = None) -> None:
        assert self.session_id is not None
        owned = self.messages[self.fork_offset:]
        if self.auto_slug and not (metadata or {}).get("label") and not self.has_label:
            label = slug(self.messages)
            if label:
                metadata = {**(metadata or {}), "label": label}
                self.has_label = True
        given = dict(metadata or {})
        if self.is_checkpoint:
            given["is_checkpoint"] = True
        if self.checkpoint_state:
            given["checkpoint_state"] = dict(self.checkpoint_state)
        self.store.save(self.session_id, owned, given)

    def rename(self, session_id: str, label: str) -> None:
        record = self.store.load(session_id)
        assert record is not None
        self.store.save(session_id, record["messages"], {"label": label})
