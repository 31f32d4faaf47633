"""Read-only message values (``FrozenDict`` / ``FrozenList``) inside metadata, for example
``conversation.checkpoint_state = {"last": reply}``, are stored as plain JSON in every store:
``list()`` and ``load()`` keep working on the same store object and after reopening."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from sessionsgit import (
    Conversation,
    FileSessionStore,
    FrozenDict,
    FrozenList,
    GitSessionStore,
    InMemorySessionStore,
    SessionManager,
    SessionStore,
    SQLiteAdapter,
    SQLSessionStore,
    freeze,
)
from sessionsgit.metadata import SessionMetadata, merge_metadata

Opener = Callable[[], SessionStore]


@pytest.fixture(params=["memory", "file", "git", "sql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """A function opening the store over the same data (the same object for memory)."""
    opened: list[SessionStore] = []
    memory = InMemorySessionStore()

    def open_store() -> SessionStore:
        if request.param == "memory":
            return memory
        store: SessionStore = {
            "file": lambda: FileSessionStore(tmp_path / "files"),
            "git": lambda: GitSessionStore(tmp_path / "repo"),
            "sql": lambda: SQLSessionStore(SQLiteAdapter(tmp_path / "db.sqlite")),
        }[request.param]()
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        close = getattr(store, "close", None)
        if close is not None:
            close()


def _frozen_anywhere(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, (FrozenDict, FrozenList)):
            return True
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _check(store: SessionStore, session_id: str) -> SessionMetadata:
    listed = {meta.id: meta for meta in store.list()}
    assert session_id in listed
    assert not _frozen_anywhere(listed[session_id].to_dict())
    loaded = store.load(session_id)
    assert loaded is not None
    assert not _frozen_anywhere(loaded.metadata.to_dict())
    assert type(loaded.metadata.checkpoint_state) is dict
    return loaded.metadata


REPLY = freeze({"role": "assistant", "content": [{"type": "text", "text": "hi"}], "id": "r1"})


def test_frozen_values_in_metadata_are_stored_plain(stores: Opener) -> None:
    store = stores()
    store.save("s", [{"role": "user", "content": "x"}],
               {"checkpoint_state": {"last": REPLY}, "label": "l",
                "notes": FrozenList([REPLY]), "extra": {"deep": FrozenDict({"k": REPLY})}})
    for _ in range(2):  # and again, when a list cache answers
        meta = _check(store, "s")
    assert meta.checkpoint_state == {"last": dict(REPLY)}
    assert meta.extra == {"notes": [dict(REPLY)], "deep": {"k": dict(REPLY)}}
    # metadata read back (and frozen again by a caller) saves and forks cleanly too
    store.save("s", [{"role": "user", "content": "x"}, REPLY],
               freeze(meta.to_dict()) | {"checkpoint_state": freeze({"n": [REPLY]})})
    store.rename("s", "renamed")
    fork = store.fork("s")
    for session_id in ("s", fork):
        _check(store, session_id)
    reopened = stores()
    for session_id in ("s", fork):
        assert _check(reopened, session_id).checkpoint_state == {"n": [dict(REPLY)]}


def test_manager_saves_a_checkpoint_state_holding_a_reply(stores: Opener) -> None:
    store = stores()
    conversation = Conversation()
    with SessionManager(store, conversation) as manager:
        session_id = manager.start_new()
        reply = conversation.prompt("hello")
        conversation.checkpoint_state = {"last": reply, "history": conversation.messages}
        conversation.prompt("again")  # auto-saves with the checkpoint state
        _check(store, session_id)
        manager.fork(session_id)
        assert len(store.list()) == 2
    meta = _check(stores(), session_id)
    assert meta.checkpoint_state["last"] == dict(reply)


def test_merge_metadata_thaws_every_value() -> None:
    existing = SessionMetadata.from_dict({"created_at": "t", "checkpoint_state": FrozenDict(a=1),
                                          "extra": {"x": FrozenList([1])}}, session_id="s")
    assert not _frozen_anywhere(existing.to_dict())
    merged = merge_metadata("s", existing, 1, {"label": "l", "y": FrozenDict(b=FrozenList([2]))})
    assert not _frozen_anywhere(merged.to_dict())
    assert merged.extra == {"x": [1], "y": {"b": [2]}}
