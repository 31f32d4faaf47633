"""Message-level diff of two transcripts: which messages were added, removed or changed.

Messages are matched by their ``id`` when they have one (same id, other content: changed), else
by their exact content; inside a replaced run, id-less messages of the same role (as
``sessionsgit.messages.role_of`` reads it, whatever the shape) at the same offset count as one changed message rather than a removal plus an addition.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from .messages import role_of
from .metadata import Message

ADDED, REMOVED, CHANGED, UNCHANGED = "added", "removed", "changed", "unchanged"


@dataclass(frozen=True)
class MessageChange:
    """One message's fate: ``kind`` plus its 0-based position (and value) on each side."""

    kind: str
    old_index: int | None
    new_index: int | None
    old: Message | None = None
    new: Message | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with 1-based positions (``old``/``new`` messages included)."""
        return {"kind": self.kind,
                "old_index": None if self.old_index is None else self.old_index + 1,
                "new_index": None if self.new_index is None else self.new_index + 1,
                "old": self.old, "new": self.new}


@dataclass
class MessageDiff:
    """Every message of both transcripts, in order, each classified once."""

    changes: list[MessageChange] = field(default_factory=list)

    def count(self, kind: str) -> int:
        """How many changes are of ``kind``."""
        return sum(1 for change in self.changes if change.kind == kind)

    def stat(self) -> dict[str, int]:
        """Counts of added, removed, changed and unchanged messages."""
        return {kind: self.count(kind) for kind in (ADDED, REMOVED, CHANGED, UNCHANGED)}

    @property
    def is_empty(self) -> bool:
        """Whether the two transcripts are equal."""
        return all(change.kind == UNCHANGED for change in self.changes)

    def to_dict(self, *, include_unchanged: bool = False) -> dict[str, Any]:
        """``{"stat": {...}, "changes": [...]}`` (unchanged messages left out by default)."""
        return {"stat": self.stat(),
                "changes": [c.to_dict() for c in self.changes
                            if include_unchanged or c.kind != UNCHANGED]}


def _key(message: Any) -> tuple[str, str]:
    if isinstance(message, dict) and isinstance(message.get("id"), str):
        return ("id", message["id"])
    return ("json", json.dumps(message, sort_keys=True, ensure_ascii=False, default=repr))


def _has_id(message: Any) -> bool:
    return isinstance(message, dict) and isinstance(message.get("id"), str)


def diff_messages(old: Sequence[Message], new: Sequence[Message]) -> MessageDiff:
    """Classify every message of ``old`` and ``new`` as added, removed, changed or unchanged."""
    old_keys = [_key(m) for m in old]
    new_keys = [_key(m) for m in new]
    matcher = difflib.SequenceMatcher(None, old_keys, new_keys, autojunk=False)
    changes: list[MessageChange] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2)):
                kind = UNCHANGED if old[i] == new[j] else CHANGED
                changes.append(MessageChange(kind, i, j, old[i], new[j]))
            continue
        removed: list[MessageChange] = []
        added: list[MessageChange] = []

        def flush() -> None:
            changes.extend(removed + added)
            removed.clear()
            added.clear()

        for offset in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + offset, j1 + offset
            if (i < i2 and j < j2 and not _has_id(old[i]) and not _has_id(new[j])
                    and role_of(old[i]) == role_of(new[j])):
                flush()
                changes.append(MessageChange(CHANGED, i, j, old[i], new[j]))
                continue
            if i < i2:
                removed.append(MessageChange(REMOVED, i, None, old[i], None))
            if j < j2:
                added.append(MessageChange(ADDED, None, j, None, new[j]))
        flush()
    return MessageDiff(changes)
