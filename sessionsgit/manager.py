"""SessionManager: keeps a conversation in step with any ``SessionStore`` (save, load, fork, label,
auto-save, child sessions), a port of @simulacra-ai/session's manager.

Events (listeners get one dict, except ``dispose`` which gets no argument):

* ``load`` ``{"id", "messages"}`` and ``save`` ``{"id", "messages"}``: ``messages`` is a tuple of
  deep copies, never the live transcript.
* ``lifecycle_error`` ``{"error", "operation", "context"}``: a save or fork the manager ran on its
  own (auto-save, ``start_new``, a child session) failed, or a message completed while no session
  was current (``NoActiveSessionError``: none started, or the current one deleted). ``operation``
  is ``"save"`` (``context`` ``{"session_id": id or None}``) or ``"fork"`` (``context``
  ``{"parent_id": id}``). Such failures never raise into the conversation; a listener that
  raises does, which is how a caller opts into failing loudly.
* ``dispose``: the manager was closed (once).
"""

from __future__ import annotations

import builtins
import copy
import threading
from typing import Any, Callable, Mapping, Sequence

from .conversation import ConversationLike
from .errors import NoActiveSessionError, SessionNotFoundError
from .events import EventEmitter
from .ids import new_session_id
from .messages import message_parts, one_line, role_of
from .metadata import STORE_OWNED_KEYS, Message, SessionMetadata, fork_metadata
from .stores.base import ForkPoint, SessionStore

#: Longest label ``auto_slug`` derives from the first user message.
SLUG_LENGTH = 60


def derive_slug(messages: Sequence[Message]) -> str | None:
    """A label from the first user message's first text (of any shape ``messages`` reads):
    whitespace and control characters collapsed, at most ``SLUG_LENGTH`` characters, cut back
    to a word boundary (a single long word is cut hard)."""
    first_user = next((m for m in messages if role_of(m) == "user"), None)
    if first_user is None:
        return None
    text = next((one_line(text, None) for kind, text in message_parts(first_user)
                 if kind == "text" and text.strip()), "")
    if len(text) <= SLUG_LENGTH:
        return text or None
    boundary = text.rfind(" ", 0, SLUG_LENGTH + 1)  # a space right after the limit is a boundary
    return text[:boundary] if boundary > 0 else text[:SLUG_LENGTH]


def _fork_point(metadata: SessionMetadata, messages: Sequence[Message]) -> int:
    """How many leading messages an attached fork inherited (0 for any other session)."""
    if not metadata.parent_id or metadata.detached or not metadata.fork_message_id:
        return 0
    return next((index + 1 for index, message in enumerate(messages)
                 if isinstance(message, dict) and message.get("id") == metadata.fork_message_id),
                0)


_MISSING = object()


def _frozen(messages: Sequence[Message]) -> tuple[Message, ...]:
    return tuple(copy.deepcopy(list(messages)))


class SessionManager:
    """Binds one conversation to one store: tracks the current session, saves after every
    ``message_complete`` (``auto_save``), labels a session from its first user message
    (``auto_slug``), and gives every child conversation its own detached-fork session."""

    def __init__(self, store: SessionStore, conversation: ConversationLike, *,
                 auto_save: bool = True, auto_slug: bool = True) -> None:
        self._store = store
        self._conversation = conversation
        self._auto_save = auto_save
        self._auto_slug = auto_slug
        self._events = EventEmitter()
        self._lock = threading.RLock()
        self._session_id: str | None = None
        #: the head this manager last loaded or saved (stores that track heads): its next save
        #: must start there, so two managers sharing one store can't overwrite each other
        self._head: str | None = None
        self._has_label = False
        self._pending_label: str | None = None  # from start_new, until a save stores it
        #: what the store holds for the current session, as last loaded or saved here (None:
        #: not stored yet), so a save that would change nothing writes nothing
        self._stored: SessionMetadata | None = None
        self._stored_messages: builtins.list[Message] = []
        #: auto-slug reads user messages from here on: a fork's own, not the inherited ones
        self._slug_from = 0
        self._disposed = False
        self._children: list[tuple[SessionManager, ConversationLike, Callable[[], None]]] = []
        if auto_save:
            conversation.on("message_complete", self._on_message_complete)
        conversation.on("create_child", self._on_create_child)
        conversation.once("dispose", self.close)

    # ---- state --------------------------------------------------------------------------
    @property
    def current_session_id(self) -> str | None:
        """The id of the session the conversation belongs to, or None."""
        return self._session_id

    @property
    def is_loaded(self) -> bool:
        """Whether a session is current."""
        return self._session_id is not None

    @property
    def store(self) -> SessionStore:
        """The store sessions are read from and written to."""
        return self._store

    # ---- sessions -----------------------------------------------------------------------
    def start_new(self, label: str | None = None) -> str:
        """Begin a new session (fresh UUID) with an empty conversation; saved at once when
        labelled or auto-saving (a failed save is reported as ``lifecycle_error``, not raised).
        Raises ``NoActiveSessionError`` once the manager is closed."""
        with self._lock:
            self._refuse_if_closed()
            session_id = self._session_id = new_session_id()
            self._head = None
            self._has_label = bool(label)
            self._pending_label = label or None
            self._remember(None, [], 0)
            if self._conversation.messages:
                self._conversation.clear()
        if label or self._auto_save:
            self._save_reporting(None, session_id)
        return session_id

    def load(self, session_id: str | None = None) -> str:
        """Make a stored session current and put its transcript and checkpoint state into the
        conversation; None loads the most recently updated one (or starts a new session when the
        store is empty). Returns the id; raises ``SessionNotFoundError`` for a missing one."""
        self._refuse_if_closed()
        if session_id is None:
            sessions = self._store.list()
            if not sessions:
                return self.start_new()
            session_id = sessions[0].id
        with self._lock:
            session = self._store.load(session_id)
            if session is None:
                raise SessionNotFoundError(session_id)
            self._session_id = session_id
            self._head = session.metadata.head
            self._has_label = bool(session.metadata.label)
            self._pending_label = None
            self._conversation.clear()
            self._conversation.load(session.messages)
            self._conversation.checkpoint_state = copy.deepcopy(session.metadata.checkpoint_state)
            self._remember(session.metadata, list(self._conversation.messages),
                           _fork_point(session.metadata, session.messages))
        self._emit_messages("load", session_id, session.messages)
        return session_id

    def save(self, metadata: Mapping[str, Any] | None = None) -> SessionMetadata:
        """Store the conversation's transcript as the current session, with ``metadata`` plus a
        derived label, checkpoint state and provider/model, and return the stored metadata. When
        that would change nothing the store holds, nothing is written (and no ``save`` event).
        Raises ``NoActiveSessionError`` (no current session, or the manager is closed)."""
        self._refuse_if_closed()
        session_id, messages, stored, written = self._write(metadata)
        if written:
            self._emit_messages("save", session_id, messages)
        return stored

    def fork(self, parent_id: str, *, detached: bool = False, at: ForkPoint = None) -> str:
        """Branch ``parent_id`` (up to ``at``) into a new current session, written as one commit.
        Attached, the conversation then holds the fork's transcript; detached, the conversation
        is kept and stored as the new session's own transcript. The parent's checkpoint state
        carries over. A fork starts unlabelled: its auto-slug comes from its own first user
        message after the fork point, so it never repeats the parent's label."""
        with self._lock:
            self._refuse_if_closed()
            own = self._fork_metadata()
            if detached and self._conversation.messages:
                new_id = self._fork_detached_with_messages(parent_id, own)
            else:
                new_id = self._store.fork(parent_id, at=at, detached=detached, metadata=own)
            forked = self._store.load(new_id)
            if forked is None:
                raise SessionNotFoundError(new_id, f"fork {new_id!r} vanished from the store")
            if not detached:
                self._conversation.clear()
                self._conversation.load(forked.messages)
            if forked.metadata.checkpoint_state is not None:
                self._conversation.checkpoint_state = copy.deepcopy(
                    forked.metadata.checkpoint_state)
            self._session_id = new_id
            self._head = forked.metadata.head
            self._has_label = bool(forked.metadata.label)
            self._pending_label = None
            messages = list(self._conversation.messages)
            self._remember(forked.metadata, messages, len(messages))
        self._emit_messages("save", new_id, messages)
        return new_id

    def _fork_metadata(self) -> dict[str, Any]:
        """What a fork records of this conversation (its provider, model, checkpoint flag)."""
        meta: dict[str, Any] = {}
        if getattr(self._conversation, "is_checkpoint", False):
            meta["is_checkpoint"] = True
        provider = getattr(self._conversation, "provider", None)
        for key, attribute in (("provider", "name"), ("model", "model")):
            value = getattr(provider, attribute, None)
            if isinstance(value, str) and value:
                meta[key] = value
        return meta

    def _fork_detached_with_messages(self, parent_id: str, own: dict[str, Any]) -> str:
        """A detached fork holding the conversation's transcript, saved in one write: a
        detached fork shares no history with its parent, so it is a save with fork metadata."""
        parent = self._store.load(parent_id)
        if parent is None:
            raise SessionNotFoundError(parent_id)
        new_id = new_session_id()
        given = fork_metadata(parent.metadata, new_id, detached=True, fork_message_id=None,
                              given=own)
        self._store.save(new_id, list(self._conversation.messages), given)
        return new_id

    def list(self) -> list[SessionMetadata]:
        """Every stored session's metadata, most recently updated first."""
        return self._store.list()

    def delete(self, session_id: str) -> bool:
        """Delete a session (False when there was none); deleting the current one clears the
        conversation and leaves no session current."""
        with self._lock:
            deleted = self._store.delete(session_id)
            if session_id == self._session_id:
                self._session_id = None
                self._head = None
                self._remember(None, [], 0)
                self._conversation.clear()
            return deleted

    def rename(self, session_id: str, label: str | None) -> SessionMetadata:
        """Set a session's label; an explicit label is never replaced by a derived one."""
        with self._lock:
            stored = self._store.rename(session_id, label)
            if session_id == self._session_id:
                self._has_label = True
                self._pending_label = None
                self._head = stored.head
                self._stored = stored
            return stored

    # ---- events -------------------------------------------------------------------------
    def on(self, event: str, listener: Callable[..., Any]) -> "SessionManager":
        """Listen for ``load``, ``save``, ``lifecycle_error`` or ``dispose``; returns self."""
        self._events.on(event, listener)
        return self

    def off(self, event: str, listener: Callable[..., Any]) -> "SessionManager":
        """Stop listening; returns self."""
        self._events.off(event, listener)
        return self

    # ---- disposal -----------------------------------------------------------------------
    def close(self) -> None:
        """Dispose: close child managers, detach from the conversation, emit ``dispose`` once.
        Also runs when the conversation is disposed. Idempotent."""
        with self._lock:
            if self._disposed:
                return
            self._disposed = True
            self._session_id = None
            children, self._children = self._children, []
        for child, child_conversation, on_child_dispose in children:
            child_conversation.off("dispose", on_child_dispose)
            child.close()
        self._conversation.off("message_complete", self._on_message_complete)
        self._conversation.off("create_child", self._on_create_child)
        self._conversation.off("dispose", self.close)
        try:
            self._events.emit("dispose")
        finally:
            self._events.remove_all_listeners()

    def __enter__(self) -> "SessionManager":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ----------------------------------------------------------------------
    def _write(self, metadata: Mapping[str, Any] | None
               ) -> tuple[str, builtins.list[Message], SessionMetadata, bool]:
        """Save under the lock so concurrent saves never interleave; events are emitted later.
        Returns (id, messages, stored metadata, whether anything was written)."""
        with self._lock:
            if self._session_id is None:
                raise NoActiveSessionError()
            messages = list(self._conversation.messages)
            meta = self._metadata_for(messages, metadata)
            if self._stored is not None and self._unchanged(messages, meta, self._stored):
                return self._session_id, messages, self._stored, False
            if self._head is not None:  # a store that reports heads takes them back
                stored = self._store.save(self._session_id, messages, meta,
                                          expected_head=self._head)
            else:
                stored = self._store.save(self._session_id, messages, meta)
            self._head = stored.head
            if meta.get("label"):
                self._has_label = True
            self._pending_label = None
            self._stored, self._stored_messages = stored, messages
            return self._session_id, messages, stored, True

    def _unchanged(self, messages: builtins.list[Message], meta: Mapping[str, Any],
                   stored: SessionMetadata) -> bool:
        """Whether saving ``messages`` with ``meta`` would leave the stored session as it is."""
        if len(messages) != len(self._stored_messages) or any(
                new is not old and new != old for new, old in zip(messages, self._stored_messages)):
            return False
        current = stored.to_dict()
        extra = current["extra"]
        for key, value in meta.items():
            if key in ("created_at", "updated_at"):
                return False  # an explicit timestamp is a change the caller asks for
            if key == "extra":
                if not isinstance(value, Mapping) or any(
                        extra.get(k, _MISSING) != v for k, v in value.items()):
                    return False
            elif key in current:
                if key not in STORE_OWNED_KEYS and current[key] != value:
                    return False
            elif extra.get(key, _MISSING) != value:
                return False
        return True

    def _remember(self, stored: SessionMetadata | None, messages: builtins.list[Message],
                  slug_from: int) -> None:
        self._stored, self._stored_messages, self._slug_from = stored, messages, slug_from

    def _refuse_if_closed(self) -> None:
        if self._disposed:
            raise NoActiveSessionError("this session manager is closed: create a new "
                                       "SessionManager to keep working with sessions")

    def _metadata_for(self, messages: Sequence[Message],
                      given: Mapping[str, Any] | None) -> dict[str, Any]:
        meta = dict(given or {})
        if self._pending_label and "label" not in meta:
            meta["label"] = self._pending_label
        if not meta.get("label") and self._auto_slug and not self._has_label:
            slug = derive_slug(messages[self._slug_from:])
            if slug:
                meta["label"] = slug
        conversation = self._conversation
        if getattr(conversation, "is_checkpoint", False):
            meta.setdefault("is_checkpoint", True)
        state = getattr(conversation, "checkpoint_state", None)
        if state is not None:
            meta.setdefault("checkpoint_state", copy.deepcopy(state))
        provider = getattr(conversation, "provider", None)
        for key, attribute in (("provider", "name"), ("model", "model")):
            value = getattr(provider, attribute, None)
            if isinstance(value, str) and value:
                meta.setdefault(key, value)
        return meta

    def _save_reporting(self, metadata: Mapping[str, Any] | None, session_id: str) -> None:
        """Save; a failure becomes a ``lifecycle_error`` instead of an exception."""
        try:
            written = self._write(metadata)
        except Exception as error:
            self._report(error, "save", {"session_id": session_id})
            return
        if written[3]:
            self._emit_messages("save", written[0], written[1])

    def _emit_messages(self, event: str, session_id: str, messages: Sequence[Message]) -> None:
        if self._events.listener_count(event):
            self._events.emit(event, {"id": session_id, "messages": _frozen(messages)})

    def _report(self, error: BaseException, operation: str, context: dict[str, Any]) -> None:
        self._events.emit("lifecycle_error",
                          {"error": error, "operation": operation, "context": context})

    def _on_message_complete(self, *_: Any) -> None:
        if self._disposed:
            return
        session_id = self._session_id
        if session_id is None:  # never started, or the current session was deleted
            self._report(NoActiveSessionError(
                "a message completed but no session is current (none was started or loaded, "
                "or it was deleted), so it was not saved: call start_new() or load()"),
                "save", {"session_id": None})
            return
        self._save_reporting(None, session_id)

    def _on_create_child(self, child: ConversationLike) -> None:
        """Give a child conversation its own session: a detached fork of the current one."""
        parent_id = self._session_id
        if parent_id is None or self._disposed:
            return
        manager = SessionManager(
            self._store, child, auto_save=self._auto_save,
            auto_slug=self._auto_slug and not getattr(child, "is_checkpoint", False))
        manager.on("lifecycle_error", lambda payload: self._events.emit("lifecycle_error", payload))

        def on_child_dispose() -> None:
            with self._lock:
                self._children = [entry for entry in self._children if entry[0] is not manager]
            manager.close()

        child.once("dispose", on_child_dispose)
        with self._lock:
            self._children.append((manager, child, on_child_dispose))
        try:
            manager.fork(parent_id, detached=True)
        except Exception as error:
            self._report(error, "fork", {"parent_id": parent_id})
