"""The behaviour every SessionStore must have, written once and run against every store.

A subclass names the ``kind`` of store (``helpers.StoreUnderTest``, the same stores the
reliability tests' ``any_store`` runs) and the contract's ``store`` (a fresh, empty store) and
``reopen`` (a new instance over the same data; the same instance for non-persistent stores)
come from it; a store of no such kind (a custom SQL adapter) overrides the two fixtures.
"""

from __future__ import annotations


import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sessionsgit import (
    InvalidRevisionError,
    InvalidSessionIdError,
    SerializationError,
    SessionConflictError,
    SessionMetadata,
    SessionNotFoundError,
    SessionsGitError,
    StoredSession,
)

from .helpers import StoreUnderTest, msg, transcript  # noqa: F401  (msg: re-exported)


#: The only ids every store refuses: empty, control characters (NUL, C0, DEL, C1), unpaired
#: surrogates, more than 1,024 characters, and what is not a str.
BAD_IDS = ["", "nul\x00", "tab\there", "nl\n", "cr\r", "del\x7f", "c1\x85", "x" * 1025,
           "lone\ud800", 42]

#: Ids that are unsafe as ref components or file names as given, and must still just work.
ODD_IDS = ["user:42/trip planning", "chat:7", "notes 2024-01", "café/☕", "a@b.example",
           "https://example.com/x?y=1&z=[2]#frag", "50%", "%41", "..", ".hidden", "-x", "x.lock",
           "x.", "@", "a@{b", "a..b", "../etc/passwd", "/abs", "a\\b", "~^:?*[", "x" * 1024,
           "é" * 1024, "☕" * 300 + "/" + "x" * 50, "p-forks", "x.meta", ".sessions.lock", " "]

_TEXT_IDS = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=1024)


class StoreContract:
    #: the ``StoreUnderTest`` kind this class runs against, and options for the store
    kind = ""
    options: dict = {}

    @pytest.fixture
    def under_test(self, tmp_path):
        under_test = StoreUnderTest(self.kind, tmp_path, **self.options)
        yield under_test
        under_test.close()

    @pytest.fixture
    def store(self, under_test):
        return under_test.store

    @pytest.fixture
    def reopen(self, under_test):
        return under_test.reopen

    # ---- heads, compare-and-swap and append (every store) --------------------------------
    def test_head_is_an_opaque_revision_that_every_save_changes(self, store, reopen):
        first = store.save("s1", transcript(1))
        assert isinstance(first.head, str) and first.head
        assert store.load("s1").metadata.head == first.head
        assert [m.head for m in store.list()] == [first.head]
        second = store.save("s1", transcript(2))
        assert second.head != first.head
        assert reopen().load("s1").metadata.head == second.head

    def test_expected_head_is_a_compare_and_swap(self, store):
        first = store.save("s1", transcript(1))
        store.save("s1", transcript(2), expected_head=first.head)
        with pytest.raises(SessionConflictError):
            store.save("s1", transcript(9), expected_head=first.head)
        assert store.load("s1").messages == transcript(2)

    def test_append_creates_and_extends(self, store, reopen):
        meta = store.append("s1", transcript(2), {"label": "l"})
        assert meta.message_count == 2 and meta.label == "l" and meta.head
        meta = store.append("s1", transcript(4)[2:])
        assert meta.message_count == 4
        assert reopen().load("s1").messages == transcript(4)
        assert reopen().load("s1").metadata.label == "l"

    def test_append_with_a_stale_expected_head_is_refused(self, store):
        first = store.append("s1", transcript(1))
        store.append("s1", [msg("user", "theirs")])
        with pytest.raises(SessionConflictError):
            store.append("s1", [msg("user", "mine")], expected_head=first.head)
        assert [m["content"][0]["text"] for m in store.load("s1").messages][-1] == "theirs"

    def test_concurrent_appends_from_threads_all_land(self, store, reopen):
        import threading

        store.save("s1", [])
        errors = []

        def run(writer: str) -> None:
            own = reopen()
            try:
                for n in range(8):
                    own.append("s1", [msg("user", f"{writer}:{n}")])
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        texts = [m["content"][0]["text"] for m in reopen().load("s1").messages]
        for writer in ("w0", "w1", "w2", "w3"):
            assert [t for t in texts if t.startswith(writer + ":")] == \
                [f"{writer}:{n}" for n in range(8)]
        assert len(texts) == 32

    def test_damaged_is_part_of_every_store(self, store):
        store.save("s1", transcript(1))
        assert store.damaged() == []
        assert store.last_damaged == []

    # ---- basics -------------------------------------------------------------------------
    def test_empty_store_lists_nothing(self, store):
        assert store.list() == []
        assert store.load("nope") is None

    def test_save_then_load_round_trips(self, store, reopen):
        messages = transcript(3)
        meta = store.save("s1", messages, {"label": "first"})
        assert isinstance(meta, SessionMetadata)
        loaded = reopen().load("s1")
        assert isinstance(loaded, StoredSession)
        assert loaded.messages == messages
        assert loaded.metadata.id == "s1"
        assert loaded.metadata.label == "first"
        assert loaded.metadata.message_count == 3

    def test_any_json_object_round_trips(self, store, reopen):
        messages = [
            {"role": "user", "content": "plain OpenAI style"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "args": {"x": [1, 2.5, -0.0]}}]},
            {"weird": {"nested": [[[]], {}], "unicode": "héllo ☃ \U0001F600", "big": 2**70},
             "bool": True, "null": None, "float": 1e-300},
        ]
        store.save("s1", messages)
        loaded = reopen().load("s1").messages
        assert loaded == messages
        assert [list(m) for m in loaded] == [list(m) for m in messages]  # key order kept

    def test_metadata_fields_and_to_dict(self, store):
        store.save("s1", transcript(1), {"provider": "echo", "model": "m1", "custom": {"a": 1},
                                          "checkpoint_state": {"summary": "x"}, "is_checkpoint": True})
        meta = store.load("s1").metadata
        d = meta.to_dict()
        for key in ("id", "created_at", "updated_at", "message_count", "label", "provider", "model",
                    "parent_id", "fork_message_id", "detached", "is_checkpoint", "checkpoint_state",
                    "extra", "head"):
            assert key in d
        assert meta.provider == "echo" and meta.model == "m1"
        assert meta.extra == {"custom": {"a": 1}}
        assert meta.checkpoint_state == {"summary": "x"}
        assert meta.is_checkpoint is True
        assert meta.created_at.endswith("Z") and "T" in meta.created_at

    # ---- merge rule ---------------------------------------------------------------------
    def test_save_merges_metadata(self, store, reopen, clock):
        first = store.save("s1", transcript(1), {"label": "keep me", "provider": "p"})
        second = reopen().save("s1", transcript(2), {"model": "m"})
        assert second.created_at == first.created_at
        assert second.updated_at > first.updated_at
        assert second.message_count == 2
        assert (second.label, second.provider, second.model) == ("keep me", "p", "m")
        assert reopen().load("s1").metadata.label == "keep me"

    def test_explicit_timestamps_win(self, store):
        store.save("s1", transcript(1), {"created_at": "2020-01-01T00:00:00.000Z",
                                          "updated_at": "2021-01-01T00:00:00.000Z"})
        meta = store.load("s1").metadata
        assert meta.created_at == "2020-01-01T00:00:00.000Z"
        assert meta.updated_at == "2021-01-01T00:00:00.000Z"

    def test_list_is_newest_first(self, store):
        for i, sid in enumerate(["a", "b", "c"]):
            store.save(sid, transcript(1), {"updated_at": f"2024-01-0{i + 1}T00:00:00.000000Z"})
        assert [m.id for m in store.list()] == ["c", "b", "a"]
        store.save("a", transcript(2))
        assert [m.id for m in store.list()][0] == "a"

    def test_in_place_edit_is_saved(self, store, reopen):
        messages = transcript(4)
        store.save("s1", messages)
        messages[1]["content"][0]["text"] = "edited in place"
        messages.append(msg("user", "more"))
        store.save("s1", messages)
        assert reopen().load("s1").messages == messages

    def test_shrinking_transcript_is_saved(self, store, reopen):
        store.save("s1", transcript(5))
        store.save("s1", transcript(2))
        assert reopen().load("s1").messages == transcript(2)

    def test_loaded_data_is_a_copy(self, store):
        store.save("s1", transcript(2))
        loaded = store.load("s1")
        loaded.messages[0]["content"][0]["text"] = "mutated"
        loaded.messages.append({"x": 1})
        assert store.load("s1").messages == transcript(2)

    def test_caller_mutation_after_save_does_not_leak(self, store):
        messages = transcript(2)
        store.save("s1", messages)
        messages[0]["role"] = "mutated"
        assert store.load("s1").messages == transcript(2)

    def test_new_id_is_uuid_when_forking_without_id(self, store):
        store.save("p", transcript(2))
        child = store.fork("p")
        assert len(child) == 36 and child.count("-") == 4

    # ---- delete -------------------------------------------------------------------------
    def test_delete(self, store, reopen):
        store.save("s1", transcript(1))
        store.save("s2", transcript(1))
        assert store.delete("s1") is True
        assert store.delete("s1") is False
        assert reopen().load("s1") is None
        assert [m.id for m in reopen().list()] == ["s2"]

    # ---- fork ---------------------------------------------------------------------------
    def test_fork_whole_transcript(self, store, reopen):
        store.save("p", transcript(4), {"label": "parent", "provider": "prov", "model": "mod",
                                         "checkpoint_state": {"k": [1]}})
        child = store.fork("p", "c")
        assert child == "c"
        loaded = reopen().load("c")
        assert loaded.messages == transcript(4)
        meta = loaded.metadata
        assert meta.parent_id == "p"
        assert meta.fork_message_id == "m3"
        assert (meta.provider, meta.model, meta.checkpoint_state) == ("prov", "mod", {"k": [1]})
        assert meta.label is None
        assert meta.detached is False

    def test_fork_at_count(self, store):
        store.save("p", transcript(5))
        store.fork("p", "c", at=2)
        loaded = store.load("c")
        assert loaded.messages == transcript(2)
        assert loaded.metadata.fork_message_id == "m1"
        store.fork("p", "zero", at=0)
        assert store.load("zero").messages == []

    def test_fork_at_message_id(self, store):
        store.save("p", transcript(5))
        store.fork("p", "c", at="m2")
        assert store.load("c").messages == transcript(3)
        assert store.load("c").metadata.fork_message_id == "m2"

    def test_fork_without_message_ids_records_none(self, store):
        store.save("p", [{"role": "user", "content": "hi"}])
        store.fork("p", "c")
        assert store.load("c").metadata.fork_message_id is None

    def test_fork_detached(self, store):
        store.save("p", transcript(3), {"provider": "prov"})
        store.fork("p", "c", detached=True, metadata={"label": "child"})
        loaded = store.load("c")
        assert loaded.messages == []
        assert loaded.metadata.parent_id == "p"
        assert loaded.metadata.detached is True
        assert loaded.metadata.label == "child"
        assert loaded.metadata.provider == "prov"

    def test_fork_is_independent(self, store, reopen):
        store.save("p", transcript(3))
        store.fork("p", "c")
        store.save("p", transcript(3) + [msg("user", "parent only")])
        store.save("c", transcript(3) + [msg("user", "child only")])
        s = reopen()
        assert s.load("p").messages[-1]["content"][0]["text"] == "parent only"
        assert s.load("c").messages[-1]["content"][0]["text"] == "child only"
        assert len(s.load("c").messages) == 4

    def test_fork_of_fork_loads_whole_transcript(self, store, reopen):
        store.save("a", transcript(2))
        store.fork("a", "b")
        store.save("b", transcript(2) + [msg("user", "b1", "b1")])
        store.fork("b", "c")
        store.save("c", transcript(2) + [msg("user", "b1", "b1"), msg("assistant", "c1")])
        assert len(reopen().load("c").messages) == 4

    def test_fork_errors(self, store):
        store.save("p", transcript(3))
        with pytest.raises(SessionNotFoundError):
            store.fork("missing")
        with pytest.raises(InvalidRevisionError):
            store.fork("p", at=10)
        with pytest.raises(InvalidRevisionError):
            store.fork("p", at=-1)
        with pytest.raises(InvalidRevisionError):
            store.fork("p", at="no-such-message-or-rev")
        store.save("taken", transcript(1))
        with pytest.raises(SessionConflictError):
            store.fork("p", "taken")
        assert store.load("taken").messages == transcript(1)
        assert sorted(m.id for m in store.list()) == ["p", "taken"]

    def test_missing_session_errors_are_keyerrors(self, store):
        with pytest.raises(KeyError):
            store.fork("nope")
        with pytest.raises(SessionNotFoundError):
            store.rename("nope", "x")

    def test_rename(self, store, reopen):
        store.save("s1", transcript(2), {"label": "old"})
        store.rename("s1", "new name")
        loaded = reopen().load("s1")
        assert loaded.metadata.label == "new name"
        assert loaded.messages == transcript(2)

    # ---- bad input ----------------------------------------------------------------------
    @pytest.mark.parametrize("bad_id", BAD_IDS)
    def test_bad_ids_rejected_and_nothing_written(self, store, bad_id):
        store.save("ok", transcript(1))
        with pytest.raises(InvalidSessionIdError) as info:
            store.save(bad_id, transcript(1))
        assert isinstance(info.value, ValueError) and isinstance(info.value, SessionsGitError)
        with pytest.raises(InvalidSessionIdError):
            store.fork("ok", bad_id)
        with pytest.raises(InvalidSessionIdError):
            store.load(bad_id)
        with pytest.raises(InvalidSessionIdError):
            store.delete(bad_id)
        assert [m.id for m in store.list()] == ["ok"]

    @pytest.mark.parametrize("odd_id", ODD_IDS)
    def test_odd_ids_round_trip(self, store, reopen, odd_id):
        self._round_trip(store, reopen, odd_id)

    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.differing_executors])
    @given(session_id=_TEXT_IDS)
    @example(session_id="x" * 1024)
    def test_any_text_id_round_trips(self, store, reopen, session_id):
        self._round_trip(store, reopen, session_id)

    def _round_trip(self, store, reopen, session_id):
        """Save, list, load, fork and delete under ``session_id``, reopening in between;
        nothing else appears in the store and the id comes back exactly as given."""
        child_id = session_id[:1000] + "/fork"
        meta = store.save(session_id, transcript(2), {"label": "odd"})
        assert meta.id == session_id
        s = reopen()
        assert [m.id for m in s.list()] == [session_id]
        loaded = s.load(session_id)
        assert loaded.metadata.id == session_id and loaded.messages == transcript(2)
        assert s.exists(session_id)
        assert s.fork(session_id, child_id) == child_id
        s = reopen()
        assert sorted(m.id for m in s.list()) == sorted([session_id, child_id])
        child = s.load(child_id)
        assert child.metadata.parent_id == session_id and child.messages == transcript(2)
        assert s.delete(child_id) is True
        assert s.delete(session_id) is True
        assert reopen().load(session_id) is None
        assert reopen().list() == []

    @pytest.mark.parametrize("bad", [
        [{"x": float("nan")}], [{"x": float("inf")}], [{"x": b"bytes"}], [{1: "int key"}],
        [{"x": (1, 2)}], [{"x": object()}], ["not a dict"], "a string", [{"x": {1, 2}}],
    ])
    def test_bad_messages_rejected_and_nothing_written(self, store, reopen, bad):
        store.save("s1", transcript(2), {"label": "before"})
        with pytest.raises(SerializationError):
            store.save("s1", bad)
        with pytest.raises(SerializationError):
            store.save("new", bad)
        s = reopen()
        assert s.load("s1").messages == transcript(2)
        assert s.load("s1").metadata.label == "before"
        assert s.load("new") is None

    def test_cyclic_and_deep_messages_rejected(self, store):
        cyclic: dict = {"role": "user"}
        cyclic["self"] = cyclic
        with pytest.raises(SerializationError):
            store.save("s1", [cyclic])
        deep: list = []
        node = deep
        for _ in range(100_000):
            node.append([])
            node = node[0]
        with pytest.raises(SerializationError):
            store.save("s1", [{"deep": deep}])
        assert store.load("s1") is None

    def test_bad_metadata_rejected(self, store):
        store.save("s1", transcript(1), {"label": "before"})
        with pytest.raises(SerializationError):
            store.save("s1", transcript(2), {"checkpoint_state": float("nan")})
        assert store.load("s1").messages == transcript(1)

    def test_labels_with_newlines_and_fake_metadata_stored_as_given(self, store, reopen):
        label = 'line one\nparent_id: evil\nSessionsgit-Meta: {"parent_id": "evil"}\r\n\x07'
        store.save("s1", transcript(1), {"label": label})
        meta = reopen().load("s1").metadata
        assert meta.label == label
        assert meta.parent_id is None
        assert [m.label for m in reopen().list()] == [label]
