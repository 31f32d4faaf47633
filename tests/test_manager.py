"""SessionManager against every store that can be imported (memory, git, file, SQL)."""

import threading
import time

import pytest

from sessionsgit.conversation import Conversation, ConversationLike
from sessionsgit.errors import NoActiveSessionError, SessionNotFoundError, SessionsGitError
from sessionsgit.events import EventEmitter
from sessionsgit.manager import SLUG_LENGTH, SessionManager, derive_slug
from sessionsgit.stores.base import SessionStore
from sessionsgit.stores.memory import InMemorySessionStore


def _optional(module: str, build, name: str):
    try:
        return pytest.param(build(__import__(module, fromlist=["_"])), id=name)
    except ImportError as exc:
        return pytest.param(None, id=name, marks=pytest.mark.skip(reason=f"{module}: {exc}"))


STORES = [
    pytest.param(lambda tmp: InMemorySessionStore(), id="memory"),
    _optional("sessionsgit.stores.git",
              lambda m: lambda tmp: m.GitSessionStore(tmp / "repo"), "git"),
    _optional("sessionsgit.stores.file",
              lambda m: lambda tmp: m.FileSessionStore(tmp / "files"), "file"),
    _optional("sessionsgit.stores.sql",
              lambda m: lambda tmp: m.SQLSessionStore(m.SQLiteAdapter(tmp / "db.sqlite")), "sql"),
]


@pytest.fixture(params=STORES)
def store(request, tmp_path):
    instance = request.param(tmp_path)
    yield instance
    instance.close()


class FlakyStore(SessionStore):
    """Wraps a real store; ``save`` / ``fork`` raise while their flag is set."""

    def __init__(self, inner: SessionStore):
        self.inner = inner
        self.fail_save = False
        self.fail_fork = False

    def list(self):
        return self.inner.list()

    def load(self, session_id):
        return self.inner.load(session_id)

    def save(self, session_id, messages, metadata=None, *, expected_head=None):
        if self.fail_save:
            raise SessionsGitError("disk on fire")
        return self.inner.save(session_id, messages, metadata, expected_head=expected_head)

    def delete(self, session_id):
        return self.inner.delete(session_id)

    def fork(self, parent_id, new_id=None, **kwargs):
        if self.fail_fork:
            raise SessionsGitError("cannot fork")
        return self.inner.fork(parent_id, new_id, **kwargs)


def text_of(message):
    return message["content"][0]["text"]


def user(text, mid=None):
    message = {"role": "user", "content": [{"type": "text", "text": text}]}
    if mid:
        message["id"] = mid
    return message


@pytest.fixture
def conversation():
    with Conversation() as conv:
        yield conv


@pytest.fixture
def manager(store, conversation):
    with SessionManager(store, conversation) as m:
        yield m


def seed(store, session_id, n, **meta):
    messages = [user(f"seed {i}", f"{session_id}-{i}") if i % 2 == 0 else
                {"role": "assistant", "content": [{"type": "text", "text": f"reply {i}"}],
                 "id": f"{session_id}-{i}"} for i in range(n)]
    store.save(session_id, messages, meta or None)
    return messages


# ---- auto-save ------------------------------------------------------------------------------
def test_auto_save_on_every_message_complete(store, manager, conversation):
    session_id = manager.start_new()
    assert manager.current_session_id == session_id and manager.is_loaded
    assert store.load(session_id).messages == []  # auto_save saves a new session at once
    conversation.prompt("hello")
    assert store.load(session_id).messages == conversation.messages
    conversation.prompt("again")
    stored = store.load(session_id)
    assert stored.messages == conversation.messages and stored.metadata.message_count == 4
    assert text_of(stored.messages[-1]) == "Echo: again"


def test_without_auto_save_nothing_is_written_until_save(store, conversation):
    manager = SessionManager(store, conversation, auto_save=False)
    session_id = manager.start_new()
    conversation.prompt("hello")
    assert store.load(session_id) is None
    manager.save()
    assert len(store.load(session_id).messages) == 2


def test_prompt_without_a_session_saves_nothing(store, manager, conversation):
    conversation.prompt("hello")
    assert store.list() == [] and not manager.is_loaded


# ---- labels ---------------------------------------------------------------------------------
def test_slug_is_at_most_60_chars_at_a_word_boundary_and_derived_once(store, manager, conversation):
    session_id = manager.start_new()
    text = "Please   help me\nplan a three week trip through Japan in spring with kids and a dog"
    conversation.prompt(text)
    label = store.load(session_id).metadata.label
    collapsed = " ".join(text.split())
    assert len(label) <= SLUG_LENGTH
    assert collapsed.startswith(label) and collapsed[len(label)] == " "
    assert label == "Please help me plan a three week trip through Japan in"
    conversation.prompt("something else entirely")
    assert store.load(session_id).metadata.label == label


def test_slug_rules():
    assert derive_slug([user("  short   and\n sweet ")]) == "short and sweet"
    assert derive_slug([user("x" * 80)]) == "x" * 60
    exact = "word " * 11 + "abcd"  # 59 chars, then one more word
    assert derive_slug([user(exact + " tail")]) == exact
    assert derive_slug([user("a" * 59 + " " + "b" * 10)]) == "a" * 59
    assert derive_slug([user("a" * 60 + " more")]) == "a" * 60
    assert derive_slug([{"role": "user", "content": "plain string"}]) == "plain string"
    assert derive_slug([{"role": "assistant", "content": "no user"}]) is None
    blocks = [{"type": "image"}, {"type": "text", "text": ""}, {"type": "text", "text": "second"}]
    assert derive_slug([{"role": "user", "content": blocks}]) == "second"
    assert derive_slug([user("   ")]) is None


def test_slug_from_plain_string_content(store, manager, conversation):
    manager.start_new()
    conversation.load([{"role": "user", "content": "a plain string message", "id": "p1"}])
    meta = manager.save()
    assert meta.label == "a plain string message"


def test_start_new_label_wins_over_slug(store, manager, conversation):
    session_id = manager.start_new("my label")
    assert store.load(session_id).metadata.label == "my label"
    conversation.prompt("this would make a slug")
    assert store.load(session_id).metadata.label == "my label"


def test_start_new_with_label_saves_even_without_auto_save(store, conversation):
    manager = SessionManager(store, conversation, auto_save=False)
    session_id = manager.start_new("labelled")
    assert store.load(session_id).metadata.label == "labelled"


def test_rename_wins_over_slug(store, manager, conversation):
    session_id = manager.start_new()
    manager.rename(session_id, "renamed")
    conversation.prompt("would be a slug")
    assert store.load(session_id).metadata.label == "renamed"


def test_save_metadata_label_wins_over_slug(store, manager, conversation):
    session_id = manager.start_new()
    manager.save({"label": "explicit", "custom": 1})
    conversation.prompt("would be a slug")
    meta = store.load(session_id).metadata
    assert meta.label == "explicit" and meta.extra == {"custom": 1}


def test_loaded_label_is_kept_and_unlabelled_session_gets_a_slug(store, manager, conversation):
    seed(store, "labelled", 2, label="kept")
    seed(store, "bare", 2)
    manager.load("labelled")
    conversation.prompt("new words")
    assert store.load("labelled").metadata.label == "kept"
    manager.load("bare")
    conversation.prompt("new words")
    assert store.load("bare").metadata.label == "seed 0"


def test_auto_slug_off_leaves_no_label(store, conversation):
    manager = SessionManager(store, conversation, auto_slug=False)
    session_id = manager.start_new()
    conversation.prompt("hello there")
    assert store.load(session_id).metadata.label is None


def test_rename_missing_raises(store, manager):
    with pytest.raises(SessionNotFoundError):
        manager.rename("missing", "x")


# ---- load / save / delete -------------------------------------------------------------------
def test_load_latest_restores_messages_and_checkpoint_state(store, manager, conversation,
                                                           clock):
    seed(store, "older", 2)
    newer = seed(store, "newer", 3, checkpoint_state={"summary": "so far"})
    loads = []
    manager.on("load", loads.append)
    assert manager.load() == "newer"
    assert manager.current_session_id == "newer"
    assert conversation.messages == newer
    assert conversation.checkpoint_state == {"summary": "so far"}
    assert loads == [{"id": "newer", "messages": tuple(newer)}]
    manager.load("older")
    assert len(conversation.messages) == 2 and conversation.checkpoint_state is None


def test_load_on_empty_store_starts_a_new_session(store, manager, conversation):
    conversation.load([user("stale")])
    session_id = manager.load()
    assert manager.current_session_id == session_id and conversation.messages == []
    assert [m.id for m in store.list()] == [session_id]


def test_load_missing_raises_and_changes_nothing(store, manager, conversation):
    seed(store, "there", 2)
    manager.load("there")
    with pytest.raises(SessionNotFoundError):
        manager.load("missing")
    assert manager.current_session_id == "there" and len(conversation.messages) == 2


def test_save_without_a_session_raises(manager):
    with pytest.raises(NoActiveSessionError):
        manager.save()


def test_delete_current_clears_the_conversation(store, manager, conversation):
    seed(store, "other", 2)
    session_id = manager.start_new()
    conversation.prompt("hello")
    assert manager.delete("other") is True
    assert manager.current_session_id == session_id and len(conversation.messages) == 2
    assert manager.delete(session_id) is True
    assert manager.current_session_id is None and not manager.is_loaded
    assert conversation.messages == [] and store.list() == []
    assert manager.delete(session_id) is False
    conversation.prompt("after delete")
    assert store.list() == []


def test_provider_and_model_recorded(store, manager, conversation):
    session_id = manager.start_new()
    conversation.prompt("hi")
    meta = store.load(session_id).metadata
    assert (meta.provider, meta.model) == ("echo", "echo-1")
    manager.save({"model": "override"})
    assert store.load(session_id).metadata.model == "override"


def test_checkpoint_state_and_flag_saved_from_the_conversation(store, conversation):
    checkpoint = Conversation(is_checkpoint=True, checkpoint_state={"summary": "s"})
    manager = SessionManager(store, checkpoint)
    session_id = manager.start_new()
    meta = store.load(session_id).metadata
    assert meta.is_checkpoint is True and meta.checkpoint_state == {"summary": "s"}


# ---- fork -----------------------------------------------------------------------------------
def test_fork_attached_loads_the_fork_transcript(store, manager, conversation):
    parent = seed(store, "parent", 4, label="parent label", checkpoint_state={"k": 1})
    conversation.load([user("unrelated")])
    child_id = manager.fork("parent")
    assert manager.current_session_id == child_id != "parent"
    assert conversation.messages == parent
    assert conversation.checkpoint_state == {"k": 1}
    meta = store.load(child_id).metadata
    assert (meta.parent_id, meta.fork_message_id, meta.detached) == ("parent", "parent-3", False)
    assert meta.checkpoint_state == {"k": 1}
    conversation.prompt("only in the fork")
    assert len(store.load(child_id).messages) == 6
    assert store.load("parent").messages == parent


def test_fork_at_a_message(store, manager, conversation):
    parent = seed(store, "parent", 5)
    child_id = manager.fork("parent", at="parent-1")
    assert conversation.messages == parent[:2]
    assert store.load(child_id).metadata.fork_message_id == "parent-1"
    manager.fork("parent", at=3)
    assert conversation.messages == parent[:3]


def test_fork_detached_keeps_the_conversation_as_its_own_transcript(store, manager, conversation):
    seed(store, "parent", 4, checkpoint_state={"k": 2})
    conversation.load([user("my own work", "own-1")])
    child_id = manager.fork("parent", detached=True)
    assert conversation.messages == [user("my own work", "own-1")]
    assert conversation.checkpoint_state == {"k": 2}
    stored = store.load(child_id)
    assert stored.messages == [user("my own work", "own-1")]
    assert (stored.metadata.parent_id, stored.metadata.detached) == ("parent", True)
    assert len(store.load("parent").messages) == 4


def test_fork_of_missing_parent_raises_and_keeps_state(store, manager):
    session_id = manager.start_new()
    with pytest.raises(SessionNotFoundError):
        manager.fork("missing")
    assert manager.current_session_id == session_id


# ---- child sessions -------------------------------------------------------------------------
def children_of(store, parent_id):
    return [m for m in store.list() if m.parent_id == parent_id]


def test_child_conversation_gets_a_detached_fork_session(store, manager, conversation):
    parent_id = manager.start_new()
    conversation.prompt("parent work")
    child = conversation.spawn_child()
    (meta,) = children_of(store, parent_id)
    assert meta.detached is True and meta.message_count == 0
    child.prompt("sub task for the child")
    stored = store.load(meta.id)
    assert stored.messages == child.messages and len(stored.messages) == 2
    assert stored.metadata.label == "sub task for the child"
    assert stored.metadata.parent_id == parent_id
    assert len(store.load(parent_id).messages) == 2
    assert manager.current_session_id == parent_id


def test_checkpoint_child_has_no_slug(store, manager, conversation):
    parent_id = manager.start_new()
    child = conversation.spawn_child(is_checkpoint=True)
    child.prompt("summarise everything")
    (meta,) = children_of(store, parent_id)
    assert meta.label is None and meta.is_checkpoint is True and meta.message_count == 2


def test_child_inherits_parent_checkpoint_state(store, manager, conversation):
    manager.start_new()
    conversation.checkpoint_state = {"summary": "parent"}
    manager.save()
    child = conversation.spawn_child()
    assert child.checkpoint_state == {"summary": "parent"}


def test_no_child_session_without_a_current_session(store, manager, conversation):
    child = conversation.spawn_child()
    child.prompt("x")
    assert store.list() == []


def test_child_session_disposed_with_child_conversation(store, manager, conversation):
    parent_id = manager.start_new()
    child = conversation.spawn_child()
    child.prompt("one")
    child.close()
    child.prompt("two")
    (meta,) = children_of(store, parent_id)
    assert meta.message_count == 2
    assert child.listener_count("message_complete") == 0 and child.listener_count("dispose") == 0


def test_closing_the_manager_disposes_children(store, manager, conversation):
    parent_id = manager.start_new()
    child = conversation.spawn_child()
    manager.close()
    child.prompt("after parent closed")
    (meta,) = children_of(store, parent_id)
    assert meta.message_count == 0
    assert child.listener_count("message_complete") == 0 and child.listener_count("dispose") == 0


# ---- lifecycle errors -----------------------------------------------------------------------
def test_failed_auto_save_emits_lifecycle_error_and_never_raises(store, conversation):
    flaky = FlakyStore(store)
    manager = SessionManager(flaky, conversation)
    errors, saves = [], []
    manager.on("lifecycle_error", errors.append).on("save", saves.append)
    session_id = manager.start_new()
    flaky.fail_save = True
    reply = conversation.prompt("hello")  # must not raise
    assert text_of(reply) == "Echo: hello"
    (error,) = errors
    assert error["operation"] == "save" and error["context"] == {"session_id": session_id}
    assert isinstance(error["error"], SessionsGitError) and "disk on fire" in str(error["error"])
    assert len(saves) == 1  # only the start_new save
    flaky.fail_save = False
    conversation.prompt("again")
    assert len(store.load(session_id).messages) == 4


def test_failed_start_new_save_is_reported_not_raised(store, conversation):
    flaky = FlakyStore(store)
    flaky.fail_save = True
    manager = SessionManager(flaky, conversation)
    errors = []
    manager.on("lifecycle_error", errors.append)
    session_id = manager.start_new("label")
    assert manager.current_session_id == session_id
    assert [e["operation"] for e in errors] == ["save"]
    with pytest.raises(SessionsGitError):
        manager.save()  # an explicit save does raise
    flaky.fail_save = False
    conversation.prompt("not the label")
    assert store.load(session_id).metadata.label == "label"  # the label was kept for later


def test_failed_slug_save_retries_the_slug(store, conversation):
    flaky = FlakyStore(store)
    manager = SessionManager(flaky, conversation)
    session_id = manager.start_new()
    flaky.fail_save = True
    conversation.prompt("the first question")
    flaky.fail_save = False
    conversation.prompt("second")
    assert store.load(session_id).metadata.label == "the first question"


def test_failed_child_fork_and_child_save_reported_on_the_parent(store, conversation):
    flaky = FlakyStore(store)
    manager = SessionManager(flaky, conversation)
    errors = []
    manager.on("lifecycle_error", errors.append)
    parent_id = manager.start_new()
    flaky.fail_fork = True
    conversation.spawn_child()
    assert [(e["operation"], e["context"]) for e in errors] == [("fork", {"parent_id": parent_id})]
    flaky.fail_fork = False
    child = conversation.spawn_child()
    flaky.fail_save = True
    child.prompt("child work")
    assert errors[-1]["operation"] == "save"
    assert errors[-1]["context"]["session_id"] != parent_id


def test_a_raising_lifecycle_error_listener_is_how_to_fail_loudly(store, conversation):
    flaky = FlakyStore(store)
    manager = SessionManager(flaky, conversation)
    manager.start_new()

    def fatal(payload):
        raise payload["error"]

    manager.on("lifecycle_error", fatal)
    flaky.fail_save = True
    with pytest.raises(SessionsGitError, match="disk on fire"):
        conversation.prompt("hello")


# ---- events and disposal --------------------------------------------------------------------
def test_event_payloads_are_read_only_copies(store, manager, conversation):
    saves, loads = [], []
    manager.on("save", saves.append).on("load", loads.append)
    session_id = manager.start_new()
    conversation.prompt("hello")
    payload = saves[-1]
    assert payload["id"] == session_id
    assert isinstance(payload["messages"], tuple)
    assert list(payload["messages"]) == conversation.messages
    with pytest.raises(TypeError):  # conversation messages are read-only
        payload["messages"][0]["content"][0]["text"] = "tampered"
    assert text_of(conversation.messages[0]) == "hello"
    assert text_of(store.load(session_id).messages[0]) == "hello"
    manager.load(session_id)
    assert isinstance(loads[0]["messages"], tuple)
    loads[0]["messages"][0]["role"] = "tampered"  # a copy of what was stored: changing it
    assert conversation.messages[0]["role"] == "user"  # changes nothing else


def test_off_removes_a_manager_listener(store, manager, conversation):
    saves = []
    manager.on("save", saves.append)
    manager.start_new()
    manager.off("save", saves.append)
    conversation.prompt("hi")
    assert len(saves) == 1


def test_close_is_idempotent_and_detaches_every_listener(store, conversation):
    events = ("message_complete", "create_child", "dispose")
    baseline = {e: conversation.listener_count(e) for e in events}
    manager = SessionManager(store, conversation)
    disposed = []
    manager.on("dispose", lambda *args: disposed.append(args))
    session_id = manager.start_new()
    assert conversation.listener_count("message_complete") == baseline["message_complete"] + 1
    manager.close()
    manager.close()
    assert disposed == [()]
    assert {e: conversation.listener_count(e) for e in baseline} == baseline
    conversation.prompt("not saved")
    assert store.load(session_id).messages == []
    conversation.spawn_child()
    assert children_of(store, session_id) == []


def test_context_manager_and_conversation_dispose_close_the_manager(store):
    conversation = Conversation()
    disposed = []
    with SessionManager(store, conversation) as manager:
        manager.on("dispose", lambda: disposed.append("ctx"))
    assert disposed == ["ctx"]
    other = SessionManager(store, conversation)
    other.on("dispose", lambda: disposed.append("conv"))
    other.start_new()
    conversation.close()
    assert disposed == ["ctx", "conv"]
    assert conversation.listener_count("message_complete") == 0


# ---- concurrency and duck typing ------------------------------------------------------------
class OverlapDetectingStore(FlakyStore):
    def __init__(self, inner):
        super().__init__(inner)
        self.active = 0
        self.overlaps = 0

    def save(self, session_id, messages, metadata=None, **kwargs):
        self.active += 1
        if self.active > 1:
            self.overlaps += 1
        time.sleep(0.001)
        try:
            return super().save(session_id, messages, metadata, **kwargs)
        finally:
            self.active -= 1


def test_concurrent_saves_never_interleave(store, conversation):
    guarded = OverlapDetectingStore(store)
    manager = SessionManager(guarded, conversation)
    session_id = manager.start_new()
    conversation.prompt("hi")
    failures = []

    def hammer():
        try:
            for _ in range(5):
                manager.save()
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and guarded.overlaps == 0
    assert len(store.load(session_id).messages) == 2


class MinimalConversation(EventEmitter):
    """Another engine's conversation: only the ConversationLike surface, no provider."""

    def __init__(self):
        super().__init__()
        self.items: list[dict] = []
        self.checkpoint_state = None

    @property
    def messages(self):
        return self.items

    @property
    def is_checkpoint(self):
        return False

    def clear(self):
        self.items = []

    def load(self, messages):
        self.items = list(messages)


def test_any_conversation_like_object_works(store):
    conversation = MinimalConversation()
    assert isinstance(conversation, ConversationLike)
    manager = SessionManager(store, conversation)
    session_id = manager.start_new()
    conversation.items.append(user("from another engine"))
    conversation.emit("message_complete", {})
    meta = store.load(session_id).metadata
    assert meta.label == "from another engine" and meta.provider is None and meta.message_count == 1
    conversation.emit("dispose")
    assert conversation.listener_count("message_complete") == 0


def test_manager_saves_from_the_head_it_last_saw(tmp_path):
    """A manager on a head-tracking store passes the head it loaded, so a second manager
    sharing the same store instance cannot silently overwrite it."""
    from sessionsgit import Conversation, GitSessionStore, SessionManager

    store = GitSessionStore(tmp_path / "repo")
    first, second = Conversation(), Conversation()
    errors = []
    with SessionManager(store, first) as a, SessionManager(store, second) as b:
        b.on("lifecycle_error", errors.append)
        session_id = a.start_new("shared")
        b.load(session_id)
        first.prompt("from a")
        second.prompt("from b")  # built on the transcript before "from a"
    stored = [m["content"][0]["text"] for m in store.load(session_id).messages]
    assert "from a" in stored and "from b" not in stored
    assert errors and errors[0]["operation"] == "save"


# ---- no silent no-ops (issue 11 items 21-22) ------------------------------------------------
def _saves(store, session_id):
    """How many writes a session has had: Git commits, else a change of ``updated_at``."""
    if hasattr(store, "history"):
        return len(store.history(session_id))
    return store.load(session_id).metadata.updated_at


def test_prompts_after_deleting_the_current_session_report_lifecycle_error(store, manager,
                                                                         conversation):
    errors = []
    manager.on("lifecycle_error", errors.append)
    session_id = manager.start_new()
    conversation.prompt("kept")
    manager.delete(session_id)
    conversation.prompt("after delete")
    assert store.list() == []
    (payload,) = errors
    assert set(payload) == {"error", "operation", "context"}
    assert isinstance(payload["error"], NoActiveSessionError)
    assert "deleted" in str(payload["error"]) and "start_new" in str(payload["error"])
    assert (payload["operation"], payload["context"]) == ("save", {"session_id": None})
    manager.start_new()
    conversation.prompt("saved again")
    assert len(errors) == 1 and len(store.list()) == 1


def test_a_closed_manager_refuses_to_start_load_save_or_fork(store, conversation):
    seed(store, "parent", 2)
    manager = SessionManager(store, conversation)
    manager.close()
    for call in (manager.start_new, lambda: manager.start_new("label"), manager.save,
                 lambda: manager.load("parent"), lambda: manager.fork("parent")):
        with pytest.raises(NoActiveSessionError, match="closed"):
            call()
    assert [m.id for m in store.list()] == ["parent"]
    assert manager.current_session_id is None


def test_save_with_nothing_changed_writes_nothing(store, manager, conversation):
    events = []
    manager.on("save", events.append)
    session_id = manager.start_new()
    conversation.prompt("hello")
    before, head = _saves(store, session_id), store.load(session_id).metadata.head
    assert manager.save().head == head
    manager.save({"label": store.load(session_id).metadata.label})
    assert _saves(store, session_id) == before and len(events) == 2
    manager.load(session_id)
    manager.save()
    assert _saves(store, session_id) == before
    conversation.checkpoint_state = {"step": 1}  # a real change is written
    manager.save()
    assert store.load(session_id).metadata.checkpoint_state == {"step": 1}
    assert _saves(store, session_id) != before
    changed = _saves(store, session_id)
    manager.save({"custom": 1})
    manager.save({"custom": 1})
    assert store.load(session_id).metadata.extra == {"custom": 1}
    assert _saves(store, session_id) != changed


def test_fork_writes_one_commit_and_never_repeats_the_parent_label(store, manager, conversation):
    parent_id = manager.start_new()
    conversation.prompt("plan a trip to Lisbon")
    conversation.prompt("add a food tour")
    parent = store.load(parent_id)
    assert parent.metadata.label == "plan a trip to Lisbon"
    child_id = manager.fork(parent_id, at=2)
    child = store.load(child_id)
    assert child.metadata.label is None and child.metadata.provider == "echo"
    if hasattr(store, "history"):
        child_saves = store.history(child_id)
        assert len(child_saves) == 2 + 1  # the parent's first two saves, then the fork
        assert child_saves[0].subject.startswith("fork of")
    conversation.prompt("Porto instead")
    assert store.load(child_id).metadata.label == "Porto instead"
    # a new manager loading the fork also derives the slug after the fork point
    second = store.fork(parent_id)
    other_conversation = Conversation()
    with SessionManager(store, other_conversation) as other:
        other.load(second)
        other_conversation.prompt("Madrid maybe")
    assert store.load(second).metadata.label == "Madrid maybe"
    assert len({m.label for m in store.list()}) == 3


def test_detached_fork_with_a_transcript_is_one_write(store, manager, conversation):
    seed(store, "parent", 2, label="seeded")
    conversation.load([user("my own work", "own-1")])
    child_id = manager.fork("parent", detached=True)
    meta = store.load(child_id).metadata
    assert (meta.parent_id, meta.detached, meta.message_count, meta.label) == (
        "parent", True, 1, None)
    if hasattr(store, "history"):
        assert len(store.history(child_id)) == 1
