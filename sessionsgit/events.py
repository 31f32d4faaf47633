"""A tiny synchronous event emitter (on / off / once / emit), shaped after Node's EventEmitter.

Listeners run in registration order, on the emitting thread. A listener that raises does not stop
the others: every listener still runs, then the first exception is re-raised out of ``emit`` (any
later ones are attached to it as notes). Errors are never swallowed, so a host such as
``Conversation`` sees a failing listener, and a caller can opt into failing loudly.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

Listener = Callable[..., Any]


class EventEmitter:
    """Named events with ordered listeners; adding or removing listeners during ``emit`` is safe."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}
        self._listeners_lock = threading.Lock()

    def on(self, event: str, listener: Listener) -> "EventEmitter":
        """Call ``listener(*args)`` on every ``emit(event, *args)``; returns self for chaining."""
        if not callable(listener):
            raise TypeError(f"listener must be callable, not {type(listener).__name__}")
        with self._listeners_lock:
            self._listeners[event] = [*self._listeners.get(event, []), listener]
        return self

    def once(self, event: str, listener: Listener) -> "EventEmitter":
        """Like ``on``, but removed before its first call; ``off(listener)`` also removes it."""

        def wrapper(*args: Any) -> Any:
            self.off(event, wrapper)
            return listener(*args)

        wrapper.listener = listener  # type: ignore[attr-defined]
        return self.on(event, wrapper)

    def off(self, event: str, listener: Listener) -> "EventEmitter":
        """Remove the most recently added registration of ``listener`` (a no-op when absent).
        Listeners match by ``==``, so ``off(obj.method)`` removes ``on(obj.method)``."""
        with self._listeners_lock:
            current = self._listeners.get(event, [])
            for index in range(len(current) - 1, -1, -1):
                candidate = current[index]
                if candidate == listener or getattr(candidate, "listener", None) == listener:
                    remaining = current[:index] + current[index + 1:]
                    if remaining:
                        self._listeners[event] = remaining
                    else:
                        del self._listeners[event]
                    break
        return self

    def emit(self, event: str, *args: Any) -> bool:
        """Call the event's listeners in order; True when there were any. Re-raises the first
        listener exception after all listeners have run."""
        with self._listeners_lock:
            listeners = self._listeners.get(event, [])  # replaced, never mutated: a safe snapshot
        first: BaseException | None = None
        for listener in listeners:
            try:
                listener(*args)
            except Exception as exc:
                if first is None:
                    first = exc
                else:
                    first.add_note(f"another {event!r} listener also raised: {exc!r}")
        if first is not None:
            raise first
        return bool(listeners)

    def listener_count(self, event: str) -> int:
        """How many listeners are registered for ``event``."""
        with self._listeners_lock:
            return len(self._listeners.get(event, []))

    def remove_all_listeners(self, event: str | None = None) -> None:
        """Drop every listener of ``event``, or of every event when None."""
        with self._listeners_lock:
            if event is None:
                self._listeners.clear()
            else:
                self._listeners.pop(event, None)
