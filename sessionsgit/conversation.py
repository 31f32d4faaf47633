"""A small, engine-agnostic conversation host, and ``ConversationLike``: the duck-typed surface
``SessionManager`` needs, so any engine's conversation object can be made durable.

Events a conversation emits (listeners are called with the payload as the only argument):

* ``message_complete`` ``{"message", "usage", "stop_reason"}``: an assistant reply was appended.
* ``create_child`` ``child``: a child conversation was spawned (the manager gives it a session).
* ``dispose`` (no argument): the conversation was closed; emitted once.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from .events import EventEmitter
from .frozen import FrozenList, freeze
from .metadata import Message
from .providers import EchoProvider, Provider, text_message
from .stamps import stamp_message


@runtime_checkable
class ConversationLike(Protocol):
    """What ``SessionManager`` uses of a conversation. It may also expose ``provider`` (with
    ``name`` and ``model``), which the manager then records in session metadata."""

    checkpoint_state: Any

    @property
    def messages(self) -> Sequence[Message]:
        """The transcript, oldest first."""
        ...

    @property
    def is_checkpoint(self) -> bool:
        """Whether this conversation is an internal checkpoint (its session gets no slug)."""
        ...

    def clear(self) -> None:
        """Drop every message."""
        ...

    def load(self, messages: Sequence[Message]) -> None:
        """Replace the transcript with ``messages``."""
        ...

    def on(self, event: str, listener: Callable[..., Any]) -> Any:
        """Register a listener for ``message_complete``, ``create_child`` or ``dispose``."""
        ...

    def off(self, event: str, listener: Callable[..., Any]) -> Any:
        """Remove a listener registered with ``on`` or ``once``."""
        ...

    def once(self, event: str, listener: Callable[..., Any]) -> Any:
        """Register a listener that is removed before its first call."""
        ...


class Conversation(EventEmitter):
    """A transcript plus a provider: ``prompt`` appends the user message and the provider's reply,
    then emits ``message_complete`` (which is when a ``SessionManager`` auto-saves)."""

    def __init__(self, provider: Provider | None = None, *, messages: Sequence[Message] = (),
                 is_checkpoint: bool = False, checkpoint_state: Any = None) -> None:
        super().__init__()
        self.provider: Provider = provider if provider is not None else EchoProvider()
        self._messages: list[Message] = [freeze(m) for m in messages]
        self._view: FrozenList | None = None  # ``messages``, built once per change
        self._is_checkpoint = is_checkpoint
        self.checkpoint_state = checkpoint_state
        self._closed = False

    @property
    def messages(self) -> FrozenList:
        """The transcript, oldest first, read-only: a ``FrozenList`` of ``FrozenDict`` messages
        (``append``/``del`` raise ``TypeError`` instead of silently changing a copy), so a store
        can recognise unchanged messages by identity. Change it through ``prompt``/``load``."""
        if self._view is None:
            self._view = FrozenList(self._messages)
        return self._view

    @property
    def is_checkpoint(self) -> bool:
        """Whether this is an internal checkpoint conversation."""
        return self._is_checkpoint

    @property
    def closed(self) -> bool:
        """Whether ``close`` has run."""
        return self._closed

    def clear(self) -> None:
        """Drop every message."""
        self._messages = []
        self._view = None

    def load(self, messages: Sequence[Message]) -> None:
        """Replace the transcript with read-only copies of ``messages``."""
        self._messages = [freeze(m) for m in messages]
        self._view = None

    def prompt(self, text: str) -> Message:
        """Send ``text`` as a user message and return the assistant's reply, both appended.
        When the provider fails, the user message is taken back out and the error raised."""
        user = freeze(stamp_message(text_message("user", text)))
        self._messages.append(user)
        self._view = None
        try:
            reply, usage = self.provider.complete(self.messages)
        except BaseException:
            if self._messages and self._messages[-1] is user:
                self._messages.pop()
                self._view = None
            raise
        assistant = freeze(stamp_message(copy.deepcopy(dict(reply))))
        self._messages.append(assistant)
        self._view = None
        self.emit("message_complete", {"message": assistant, "usage": dict(usage or {}),
                                       "stop_reason": assistant.get("stop_reason", "end_turn")})
        return assistant

    def spawn_child(self, *, is_checkpoint: bool = False) -> "Conversation":
        """A new, empty conversation with the same provider; emits ``create_child`` with it."""
        child = Conversation(self.provider, is_checkpoint=is_checkpoint)
        self.emit("create_child", child)
        return child

    def close(self) -> None:
        """Emit ``dispose`` (once; later calls do nothing)."""
        if self._closed:
            return
        self._closed = True
        self.emit("dispose")

    def __enter__(self) -> "Conversation":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

