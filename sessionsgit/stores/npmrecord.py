"""The session record of the original npm package (``@simulacra-ai/session`` 0.0.9), shared by
``FileSessionStore`` (one ``<id>.json`` per record) and ``SQLSessionStore`` (one row per record),
so that both programs can work on one directory or one table.

A record is ``{"metadata": {...}, "messages": [...]}`` where, as the original writes it:

* metadata is flat: the known fields, then the caller's custom keys beside them (no ``extra``
  object, no ``id``); a key whose value is None is left out (JavaScript drops ``undefined``);
* ``message_count`` counts the record's own messages;
* an attached fork (``parent_id`` set, ``detached`` not true) holds only its own messages; its
  transcript is the parent's transcript up to and including the message ``fork_message_id``
  names (all of it when that is absent or not found; nothing when the parent is missing), then
  its own messages, recursively, exactly as the original's ``SessionManager`` resolves it;
* a detached fork (a child session) holds all of its messages.

Records sessionsgit wrote before it followed this format (``"transcript": "full"`` in files, or
every field present with an ``extra`` object) hold whole transcripts and nested custom keys;
they are read as such and rewritten in the original's format on their next save.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..errors import CorruptSessionError
from ..metadata import Message, SessionMetadata
from .base import fork_slice

#: Marker of a whole-transcript record written by sessionsgit before 0.2 (files only).
LEGACY_TRANSCRIPT_KEY = "transcript"
_LEGACY_FIELDS = frozenset({"created_at", "updated_at", "message_count", "label", "provider",
                            "model", "parent_id", "fork_message_id", "detached", "is_checkpoint",
                            "checkpoint_state", "extra"})
_TEXT_FIELDS = ("label", "provider", "model", "parent_id", "fork_message_id")
#: Field order of a new record: what the original's store and manager write, in their order.
_ORDER = ("created_at", "updated_at", "message_count", "label", "provider", "model", "parent_id",
          "fork_message_id", "detached", "is_checkpoint", "checkpoint_state")
#: Keys of the stored metadata that are not custom keys.
_NOT_CUSTOM = frozenset(_ORDER) | {"id"}


@dataclass
class Record:
    """One stored record: metadata as sessionsgit sees it, the messages it holds itself, whether
    those are the whole transcript, and the raw metadata dict (to keep its key order)."""

    metadata: SessionMetadata
    own: list[Message]
    whole: bool
    raw: dict[str, Any] = field(default_factory=dict)
    #: How many unpaired UTF-16 surrogates the metadata held (now U+FFFD).
    mended: int = 0

    @property
    def inherits(self) -> bool:
        """Whether the transcript starts with the parent's messages."""
        return not self.whole and self.metadata.parent_id is not None and not self.metadata.detached


def is_legacy(raw: Mapping[str, Any]) -> bool:
    """Whether a record's metadata was written by an older sessionsgit (whole transcript)."""
    return raw.get(LEGACY_TRANSCRIPT_KEY) == "full" or (
        _LEGACY_FIELDS <= raw.keys() and isinstance(raw.get("extra"), dict))


def parse_record(session_id: str, data: Any) -> Record:
    """A ``Record`` from a parsed ``{"metadata", "messages"}`` object; ``CorruptSessionError``
    naming what is wrong when it is not one."""
    if not isinstance(data, Mapping) or not isinstance(data.get("metadata"), Mapping):
        raise CorruptSessionError(session_id, "no 'metadata' object")
    messages = data.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise CorruptSessionError(session_id, "'messages' is not a list of objects")
    raw, mended = mend_surrogates(dict(data["metadata"]))
    legacy = is_legacy(raw)
    return Record(parse_metadata(session_id, raw, legacy=legacy), messages,
                  legacy or bool(raw.get("detached")), raw, mended)


_SURROGATE = re.compile("[\ud800-\udfff]")


def mend_surrogates(value: Any) -> tuple[Any, int]:
    """``value`` with every unpaired UTF-16 surrogate replaced by U+FFFD, and how many there
    were. The original cuts auto-labels by UTF-16 code unit, so a label can end in half an
    emoji; such text cannot be stored as UTF-8 (in Git, or by sessionsgit)."""
    text = json.dumps(value, ensure_ascii=False)
    broken = len(_SURROGATE.findall(text))
    return (json.loads(_SURROGATE.sub("\ufffd", text)), broken) if broken else (value, 0)


def parse_metadata(session_id: str, raw: Mapping[str, Any], *, legacy: bool = False
                   ) -> SessionMetadata:
    """SessionMetadata from a record's flat metadata: known fields by name (type-checked),
    every other key (``extra`` and ``head`` included) a custom key. ``message_count`` is
    ignored: the store counts the transcript."""
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("id", "message_count") or (legacy and key == LEGACY_TRANSCRIPT_KEY):
            continue
        if legacy and key == "extra":
            extra.update(copy.deepcopy(value))
        elif key in _NOT_CUSTOM:
            values[key] = copy.deepcopy(value)
        else:
            extra[key] = copy.deepcopy(value)
    for key in ("created_at", "updated_at"):
        if not isinstance(values.get(key), (str, type(None))):
            raise CorruptSessionError(session_id, f"bad metadata: {key} is not a string")
    for key in _TEXT_FIELDS:
        if not isinstance(values.get(key), (str, type(None))):
            raise CorruptSessionError(session_id, f"bad metadata: {key} is not a string")
    created = values.get("created_at") or values.get("updated_at") or ""
    return SessionMetadata(
        id=session_id, created_at=created, updated_at=values.get("updated_at") or created,
        label=values.get("label"), provider=values.get("provider"), model=values.get("model"),
        parent_id=values.get("parent_id"), fork_message_id=values.get("fork_message_id"),
        detached=bool(values.get("detached")), is_checkpoint=bool(values.get("is_checkpoint")),
        checkpoint_state=values.get("checkpoint_state"), extra=extra)


def stored_metadata(metadata: SessionMetadata, own_count: int,
                    existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """The flat metadata the original would store for ``metadata``: the existing record's keys
    keep their order, new keys follow in the original's order, None-valued keys are left out;
    ``detached`` is kept on forks and where it was, ``is_checkpoint`` when true or where it was."""
    existing = {} if existing is None or is_legacy(existing) else existing
    values: dict[str, Any] = {
        "created_at": metadata.created_at, "updated_at": metadata.updated_at,
        "message_count": own_count, "label": metadata.label, "provider": metadata.provider,
        "model": metadata.model, "parent_id": metadata.parent_id,
        "fork_message_id": metadata.fork_message_id,
        "detached": metadata.detached if (metadata.detached or metadata.parent_id is not None
                                          or "detached" in existing) else None,
        "is_checkpoint": metadata.is_checkpoint if (metadata.is_checkpoint
                                                    or "is_checkpoint" in existing) else None,
        "checkpoint_state": metadata.checkpoint_state,
    }
    values.update({k: v for k, v in metadata.extra.items() if k not in _NOT_CUSTOM})
    ordered = [k for k in existing if k in values] + [k for k in values if k not in existing]
    return {key: copy.deepcopy(values[key]) for key in ordered if values[key] is not None}


def inherited_part(parent: list[Message], fork_message_id: object) -> tuple[list[Message], bool]:
    """What a fork inherits from its parent's transcript, as the original computes it, and
    whether ``fork_message_id`` was found (True when there is none to find)."""
    if isinstance(fork_message_id, str) and fork_message_id:
        keep = fork_slice(parent, fork_message_id)
        if keep is not None:
            return parent[:keep], True
        return parent, False
    return parent, True


Reader = Callable[[str], "Record | None"]


class Resolver:
    """Rebuilds transcripts through parent chains, reading each record once and remembering
    every transcript it built, so a chain of N forks costs N reads, without recursion.
    ``warnings`` collects (id, reason) for a missing or damaged parent and a fork point the
    parent does not have: the transcript is then what the original would load."""

    def __init__(self, read: Reader, known: Mapping[str, Record] | None = None) -> None:
        self._read = read
        self._records: dict[str, Record | None] = dict(known or {})
        self._failed: dict[str, str] = {}
        self._transcripts: dict[str, list[Message]] = {}
        self.warnings: list[tuple[str, str]] = []

    def record(self, session_id: str) -> Record | None:
        """The record, read once (None when absent or damaged: see ``failure``)."""
        if session_id not in self._records:
            try:
                self._records[session_id] = self._read(session_id)
            except CorruptSessionError as exc:
                self._records[session_id] = None
                self._failed[session_id] = exc.reason
        return self._records[session_id]

    def transcript(self, session_id: str) -> list[Message]:
        """The whole transcript of a readable record (raise ``CorruptSessionError`` for a fork
        cycle)."""
        if session_id in self._transcripts:
            return self._transcripts[session_id]
        chain: list[str] = []
        current: str | None = session_id
        base: list[Message] = []
        orphan = None
        while current is not None and current not in self._transcripts:
            record = self.record(current)
            if record is None:
                if current == session_id:
                    raise CorruptSessionError(session_id, self._failed.get(current, "missing"))
                child = chain[-1]
                why = (f"damaged ({self._failed[current]})" if current in self._failed
                       else "missing")
                self.warnings.append((child, f"its parent {current!r} is {why}: loaded its own "
                                             "messages only, as the original does"))
                base, current, orphan = [], None, child
                break
            if current in chain:
                raise CorruptSessionError(session_id, f"fork cycle through {current!r}")
            chain.append(current)
            current = record.metadata.parent_id if record.inherits else None
        if current is not None:
            base = self._transcripts[current]
        transcript = base
        for link in reversed(chain):
            record = self._records[link]
            assert record is not None
            if record.inherits and link != orphan:
                inherited, found = inherited_part(transcript, record.metadata.fork_message_id)
                if not found:
                    self.warnings.append((link, f"its fork point "
                                                f"{record.metadata.fork_message_id!r} is not in "
                                                f"{record.metadata.parent_id!r}: inherits all of "
                                                "it, as the original does"))
                transcript = inherited + record.own
            else:
                transcript = record.own
            self._transcripts[link] = transcript
        return self._transcripts[session_id]


def own_messages(messages: Sequence[Message], metadata: SessionMetadata,
                 parent: list[Message] | None) -> list[Message]:
    """The messages a record of ``metadata`` (a whole transcript ``messages``) holds itself.
    For an attached fork that is what follows the part inherited from ``parent`` (the parent's
    transcript, None when missing). When the transcript no longer starts with what the
    original would inherit, the fork point moves to the longest shared prefix whose last
    message has an id; failing that the fork is stored detached, holding every message (so
    the original loads exactly this transcript). ``metadata`` is updated to match."""
    messages = list(messages)
    if metadata.parent_id is None or metadata.detached:
        return messages
    parent = parent or []
    inherited, _ = inherited_part(parent, metadata.fork_message_id)
    if messages[:len(inherited)] == inherited:
        return messages[len(inherited):]
    shared = 0
    for ours, theirs in zip(messages, parent):
        if ours != theirs:
            break
        shared += 1
    last = messages[shared - 1].get("id") if shared else None
    if isinstance(last, str) and last and fork_slice(parent, last) == shared:
        metadata.fork_message_id = last
        return messages[shared:]
    metadata.detached = True
    metadata.fork_message_id = None
    return messages
