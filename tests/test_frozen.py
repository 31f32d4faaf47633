"""Read-only conversation messages: immutable, still plain JSON, trusted by identity on save."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from sessionsgit import Conversation, GitSessionStore, SessionManager
from sessionsgit.frozen import FrozenDict, FrozenList, freeze, is_frozen


def sample() -> dict:
    return {"role": "assistant", "content": [{"type": "text", "text": "hi"}],
            "tool_calls": [{"id": "c1", "args": {"x": [1, 2]}}]}


def test_frozen_messages_are_deeply_read_only():
    message = freeze(sample())
    for change in (lambda: message.__setitem__("role", "user"),
                   lambda: message.pop("role"),
                   lambda: message.update(role="user"),
                   lambda: message["content"].append({}),
                   lambda: message["content"][0].__setitem__("text", "edited"),
                   lambda: message["tool_calls"][0]["args"]["x"].sort()):
        with pytest.raises(TypeError, match="read-only"):
            change()
    assert message == sample()


def test_frozen_messages_are_still_json_and_copy_cheaply():
    message = freeze(sample())
    assert json.loads(json.dumps(message)) == sample()
    assert copy.deepcopy(message) is message
    restored = pickle.loads(pickle.dumps(message))
    assert restored == message and is_frozen(restored)
    source = {"a": [1]}
    frozen = FrozenDict(source)
    source["a"].append(2)  # the frozen copy does not share the caller's containers
    assert frozen == {"a": [1]} and isinstance(frozen["a"], FrozenList)


def test_conversation_hands_out_frozen_messages():
    with Conversation() as conversation:
        reply = conversation.prompt("hello")
        assert is_frozen(reply) and all(is_frozen(m) for m in conversation.messages)
        conversation.load([sample()])
        assert is_frozen(conversation.messages[0]) and conversation.messages[0] == sample()


def test_git_store_trusts_frozen_messages_by_identity(tmp_path):
    store = GitSessionStore(tmp_path / "repo")
    messages = [freeze({"role": "user", "content": f"m{i}"}) for i in range(300)]
    store.save("s", messages)
    snapshot = store._snapshots["s"]
    assert all(kept is given for kept, given in zip(snapshot.values, messages))
    edited = list(messages)
    edited[5] = freeze({"role": "user", "content": "edited"})  # a replaced message is rewritten
    store.save("s", edited)
    assert GitSessionStore(tmp_path / "repo").load("s").messages == edited


def test_manager_saves_stay_exact_with_frozen_messages(tmp_path):
    store = GitSessionStore(tmp_path / "repo")
    with Conversation() as conversation, SessionManager(store, conversation) as manager:
        session_id = manager.start_new()
        for i in range(20):
            conversation.prompt(f"message {i}")
        manager.load(session_id)
        conversation.prompt("after reload")
        assert store.load(session_id).messages == conversation.messages
