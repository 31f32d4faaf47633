import time

import pytest

from sessionsgit.conversation import Conversation, ConversationLike
from sessionsgit.events import EventEmitter
from sessionsgit.providers import EchoProvider


class RecordingProvider:
    name = "recording"
    model = "rec-1"

    def __init__(self, fail: bool = False):
        self.calls: list[list[dict]] = []
        self.fail = fail

    def complete(self, messages):
        self.calls.append([dict(m) for m in messages])
        if self.fail:
            raise RuntimeError("provider down")
        text = f"reply {len(self.calls)}"
        return ({"role": "assistant", "content": [{"type": "text", "text": text}],
                 "stop_reason": "length"}, {"output_tokens": 2})


# ---- EventEmitter -------------------------------------------------------------------------
def test_listeners_run_in_registration_order_with_args():
    events, seen = EventEmitter(), []
    events.on("x", lambda *a: seen.append(("a", a)))
    events.on("x", lambda *a: seen.append(("b", a)))
    assert events.emit("x", 1, 2) is True
    assert seen == [("a", (1, 2)), ("b", (1, 2))]
    assert events.emit("nobody") is False


def test_once_fires_once_and_can_be_removed_by_the_original_listener():
    events, seen = EventEmitter(), []
    listener = seen.append
    events.once("x", listener)
    events.emit("x", 1)
    events.emit("x", 2)
    assert seen == [1]
    events.once("y", listener)
    events.off("y", listener)
    assert events.listener_count("y") == 0
    events.emit("y", 3)
    assert seen == [1]


def test_off_removes_bound_methods_and_only_one_registration():
    class Target:
        def __init__(self):
            self.calls = 0

        def hit(self):
            self.calls += 1

    target, events = Target(), EventEmitter()
    events.on("x", target.hit)
    events.on("x", target.hit)
    events.off("x", target.hit)  # a fresh bound-method object, equal but not identical
    events.emit("x")
    assert target.calls == 1
    events.off("x", target.hit)
    assert events.listener_count("x") == 0


def test_removing_a_listener_during_emit_does_not_skip_others():
    events, seen = EventEmitter(), []

    def first():
        seen.append("first")
        events.off("x", second)

    def second():
        seen.append("second")

    events.on("x", first).on("x", second)
    events.emit("x")
    assert seen == ["first", "second"]  # the snapshot still held it
    events.emit("x")
    assert seen == ["first", "second", "first"]


def test_raising_listener_does_not_stop_the_others_and_the_error_propagates():
    events, seen = EventEmitter(), []

    def boom():
        raise ValueError("first failure")

    def boom2():
        raise KeyError("second failure")

    events.on("x", boom).on("x", lambda: seen.append("ran")).on("x", boom2)
    with pytest.raises(ValueError, match="first failure") as info:
        events.emit("x")
    assert seen == ["ran"]
    assert any("second failure" in note for note in info.value.__notes__)


def test_on_rejects_non_callables():
    with pytest.raises(TypeError):
        EventEmitter().on("x", "not callable")


# ---- Conversation -------------------------------------------------------------------------
def test_default_provider_is_echo_and_conversation_is_conversation_like():
    conversation = Conversation()
    assert isinstance(conversation.provider, EchoProvider)
    assert isinstance(conversation, ConversationLike)


def test_prompt_appends_stamped_messages_and_emits_message_complete():
    conversation, completed = Conversation(), []
    conversation.on("message_complete", completed.append)
    before = time.time_ns() // 1_000_000
    reply = conversation.prompt("hello there")
    after = time.time_ns() // 1_000_000
    user, assistant = conversation.messages
    assert assistant is reply
    assert user["role"] == "user" and user["content"] == [{"type": "text", "text": "hello there"}]
    assert assistant["content"] == [{"type": "text", "text": "Echo: hello there"}]
    assert list(assistant) == ["role", "content", "id", "timestamp"]
    for message in (user, assistant):
        assert isinstance(message["id"], str) and len(message["id"]) == 32
        assert isinstance(message["timestamp"], int) and before <= message["timestamp"] <= after
    assert user["id"] != assistant["id"]
    assert len(completed) == 1
    payload = completed[0]
    assert payload["message"] is assistant and payload["stop_reason"] == "end_turn"
    assert payload["usage"]["output_tokens"] > 0 and payload["usage"]["input_tokens"] > 0


def test_provider_sees_the_whole_history_and_stop_reason_is_reported():
    provider, completed = RecordingProvider(), []
    conversation = Conversation(provider)
    conversation.on("message_complete", completed.append)
    conversation.prompt("one")
    conversation.prompt("two")
    assert [m["role"] for m in provider.calls[1]] == ["user", "assistant", "user"]
    assert provider.calls[1][-1]["content"][0]["text"] == "two"
    assert completed[-1]["stop_reason"] == "length"
    assert completed[-1]["usage"] == {"output_tokens": 2}
    assert len(conversation.messages) == 4


def test_failed_provider_takes_the_user_message_back_and_emits_nothing():
    conversation, completed = Conversation(RecordingProvider(fail=True)), []
    conversation.load([{"role": "user", "content": "earlier", "id": "u0"}])
    conversation.on("message_complete", completed.append)
    with pytest.raises(RuntimeError, match="provider down"):
        conversation.prompt("lost")
    assert conversation.messages == [{"role": "user", "content": "earlier", "id": "u0"}]
    assert completed == []


def test_a_raising_message_complete_listener_reaches_the_caller_but_the_reply_is_kept():
    conversation = Conversation()

    def fail(_payload):
        raise RuntimeError("listener bug")

    conversation.on("message_complete", fail)
    with pytest.raises(RuntimeError, match="listener bug"):
        conversation.prompt("hi")
    assert len(conversation.messages) == 2


def test_load_clear_and_messages_are_read_only_copies():
    source = [{"role": "user", "content": [{"type": "text", "text": "a"}], "id": "1"}]
    conversation = Conversation()
    conversation.load(source)
    source[0]["content"][0]["text"] = "changed"
    assert conversation.messages[0]["content"][0]["text"] == "a"
    with pytest.raises(TypeError, match="read-only"):
        conversation.messages.append({"role": "user"})
    with pytest.raises(TypeError, match="read-only"):
        del conversation.messages[0]
    with pytest.raises(TypeError, match="read-only"):
        conversation.messages[0] = {"role": "user"}
    with pytest.raises(TypeError, match="read-only"):
        conversation.messages.clear()
    assert conversation.messages == [
        {"role": "user", "content": [{"type": "text", "text": "a"}], "id": "1"}]
    assert conversation.messages is conversation.messages  # one view until the next change
    conversation.load([])
    assert conversation.messages == []
    conversation.load(source)
    conversation.clear()
    assert conversation.messages == []


def test_spawn_child_shares_provider_and_emits_create_child():
    provider = RecordingProvider()
    conversation, children = Conversation(provider), []
    conversation.on("create_child", children.append)
    child = conversation.spawn_child()
    checkpoint = conversation.spawn_child(is_checkpoint=True)
    assert children == [child, checkpoint]
    assert child.provider is provider and child.messages == []
    assert not child.is_checkpoint and checkpoint.is_checkpoint
    child.prompt("x")
    assert conversation.messages == []


def test_close_emits_dispose_once_and_works_as_context_manager():
    calls = []
    with Conversation() as conversation:
        conversation.on("dispose", lambda: calls.append("disposed"))
    assert calls == ["disposed"] and conversation.closed
    conversation.close()
    assert calls == ["disposed"]


def test_checkpoint_state_is_a_plain_attribute():
    conversation = Conversation(checkpoint_state={"summary": "s"})
    assert conversation.checkpoint_state == {"summary": "s"}
    conversation.checkpoint_state = {"summary": "t"}
    assert conversation.checkpoint_state == {"summary": "t"}
