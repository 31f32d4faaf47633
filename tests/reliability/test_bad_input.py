"""Bad input, on all four stores: any session id round-trips or is refused with nothing written
and can never escape the store; any JSON round-trips exactly; what is not exact JSON is refused
with nothing written; labels and metadata are stored as given and cannot forge anything."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionsgit import (
    GitSessionStore,
    InvalidSessionIdError,
    SerializationError,
    idcodec,
)
from sessionsgit.git import commitmeta
from sessionsgit.ids import validate_session_id

from ..store_contract import msg, transcript

SETTINGS = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

# ---- strategies ---------------------------------------------------------------------------
TRAVERSAL = ["..", "../x", "..\\x", "/etc/passwd", "/abs", "a/../../b", "a/b", "\\\\server\\x",
             "C:\\x", "C:", "x\x00y", "\x00", ".", "./x", "x/.", "~", "~/x", "refs/heads/x",
             "HEAD", "@", "@{0}", "x.lock", "x.", ".x", "-x", "x..y", "a\nb", " ", "\u202e",
             "\ud800", "x" * 129, "x" * 128, "sessions", "..json", "x.json", "x-forks", "%2e%2e",
             "\uff0e\uff0e", "\u2024\u2024", "a\u3000b", "a\x7fb", "a\tb", "a\u2028b"]
SPECIAL = "./\\\x00~^:?*[]@{} \n\t-_.%ab\u00e9\u2603\U0001F600"
session_ids = st.one_of(
    st.sampled_from(TRAVERSAL),
    st.text(max_size=40),
    st.text(alphabet=SPECIAL, max_size=12),
    st.lists(st.sampled_from(["..", ".", "a", "/", "\\", "x.lock", "\x00", "-", "@{"]),
             max_size=6).map("".join),
)

json_leaves = (st.none() | st.booleans() | st.integers() | st.text(max_size=20)
               | st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8),
                                                                      children, max_size=5),
    max_leaves=40)
messages_strategy = st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=6),
                             max_size=6)

_cycle: dict = {"role": "user"}
_cycle["self"] = _cycle
POISON = [float("nan"), float("inf"), -float("inf"), b"bytes", bytearray(b"x"), {1: "int key"},
          {None: "null key"}, {True: "bool key"}, {1.5: "float key"}, (1, 2), {1, 2}, frozenset(),
          object(), _cycle, "\ud800 lone surrogate", {"\udfff": "surrogate key"}, 1 + 2j,
          range(3), Exception("x")]


def exact(value) -> str:
    """A canonical text that tells apart what == does not: key order, -0.0, 1 vs 1.0 vs True."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def with_poison(messages: list[dict], data) -> list:
    """``messages`` with one bad value planted somewhere in it (a copy)."""
    messages = json.loads(json.dumps(messages)) or [{}]
    poison = data.draw(st.sampled_from(POISON), label="poison")
    index = data.draw(st.integers(0, len(messages) - 1), label="message")
    node = messages[index]
    while True:  # walk down to a random container
        children = [v for v in (node.values() if isinstance(node, dict) else node)
                    if isinstance(v, (dict, list))]
        if not children or not data.draw(st.booleans(), label="deeper"):
            break
        node = data.draw(st.sampled_from(children))
    if isinstance(node, dict):
        node[data.draw(st.text(max_size=4), label="key")] = poison
    else:
        node.append(poison)
    return messages


# ---- session ids --------------------------------------------------------------------------
def test_any_session_id_round_trips_or_is_refused_with_nothing_written(any_store):
    store = any_store.store
    accepted: set[str] = set()

    @SETTINGS
    @given(session_id=session_ids)
    def check(session_id):
        before = any_store.fingerprint()
        try:
            validate_session_id(session_id)
            valid = True
        except InvalidSessionIdError:
            valid = False
        if not valid:
            with pytest.raises(InvalidSessionIdError):
                store.save(session_id, [msg("user", "x")])
            for call in (store.load, store.delete, store.exists):
                with pytest.raises(InvalidSessionIdError):
                    call(session_id)
            if accepted:
                with pytest.raises(InvalidSessionIdError):
                    store.fork(sorted(accepted)[0], session_id)
            assert any_store.fingerprint() == before, f"{session_id!r} wrote something"
            return
        store.save(session_id, [msg("user", session_id)], {"label": session_id})
        accepted.add(session_id)
        loaded = any_store.reopen().load(session_id)
        assert loaded.metadata.id == session_id
        assert loaded.messages == [msg("user", session_id)]
        assert store.exists(session_id)
        assert {m.id for m in store.list()} == accepted
        # Ids land exactly where they should and nowhere else.
        on_disk = any_store.session_files()
        if any_store.kind == "git":
            assert on_disk == {f"refs/heads/sessions/{idcodec.encode(i)}" for i in accepted}
        elif any_store.kind == "file":
            names = {f"{idcodec.encode(i, idcodec.FILE)}.json" for i in accepted}
            assert on_disk <= names | {".sessions.lock"}
            assert names <= on_disk
        else:
            assert on_disk == accepted

    check()
    for outside in ("/abs.json", "/etc/passwd.json", "/x.json"):
        assert not os.path.exists(outside)
    if any_store.kind == "git":
        escaped = [p for p in (any_store.data / "refs").rglob("*")
                   if p.is_file() and not str(p.relative_to(any_store.data)).startswith(
                       "refs/heads/sessions/")]
        assert escaped == []


def test_generated_ids_always_round_trip(any_store):
    store = any_store.store
    from sessionsgit.ids import new_session_id
    for _ in range(20):
        session_id = new_session_id()
        store.save(session_id, transcript(1))
        assert any_store.reopen().load(session_id).messages == transcript(1)


# ---- messages -----------------------------------------------------------------------------
def test_arbitrary_json_round_trips_exactly(any_store):
    store = any_store.store
    counter = itertools.count()

    @settings(SETTINGS, max_examples=40)
    @given(first=messages_strategy, second=messages_strategy)
    def check(first, second):
        session_id = f"s{next(counter)}"
        store.save(session_id, first)
        loaded = any_store.reopen().load(session_id)
        assert exact(loaded.messages) == exact(first)
        assert loaded.metadata.message_count == len(first)
        # A second save that keeps a prefix, edits and appends (the Git store's reuse path).
        updated = first[:1] + second
        store.save(session_id, updated)
        assert exact(any_store.reopen().load(session_id).messages) == exact(updated)

    check()


def test_poisoned_messages_are_refused_and_nothing_is_written(any_store):
    store = any_store.store
    store.save("existing", transcript(2), {"label": "before"})

    @settings(SETTINGS, max_examples=40)
    @given(messages=messages_strategy, data=st.data(), new=st.booleans())
    def check(messages, data, new):
        bad = with_poison(messages, data)
        before = any_store.fingerprint()
        with pytest.raises(SerializationError):
            store.save("fresh" if new else "existing", bad)
        assert any_store.fingerprint() == before
        s = any_store.reopen()
        assert s.load("fresh") is None
        assert s.load("existing").messages == transcript(2)
        assert s.load("existing").metadata.label == "before"

    check()


@pytest.mark.parametrize("bad", POISON, ids=lambda v: type(v).__name__)
def test_poisoned_metadata_is_refused_and_nothing_is_written(any_store, bad):
    store = any_store.store
    store.save("existing", transcript(2), {"label": "before"})
    before = any_store.fingerprint()
    for metadata in ({"label": bad} if isinstance(bad, str) else {"checkpoint_state": bad},
                     {"extra": {"k": bad}}, {"custom": [bad]}):
        for session_id in ("existing", "fresh"):
            with pytest.raises(SerializationError):
                store.save(session_id, transcript(3), metadata)
    assert any_store.fingerprint() == before
    assert any_store.reopen().load("existing").messages == transcript(2)
    assert any_store.reopen().load("fresh") is None


def test_ten_megabyte_message(any_store):
    store = any_store.store
    text = ("héllo ☃ \U0001F600 \"quoted\" \\ back\nslash\ttab " * 300_000)[:10_000_000]
    big = {"role": "user", "content": text, "blocks": [{"type": "text", "text": text[:1000]}]}
    store.save("big", [msg("user", "before"), big])
    loaded = any_store.reopen().load("big")
    assert loaded.messages[1]["content"] == text and loaded.messages[1] == big
    store.save("big", [msg("user", "before"), big, msg("assistant", "after")])
    assert any_store.reopen().load("big").messages[2] == msg("assistant", "after")


def nested(depth: int):
    value: object = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return {"role": "user", "deep": value}


@pytest.mark.parametrize("depth", [10, 100, 300])
def test_deep_nesting_round_trips(any_store, depth):
    any_store.store.save("deep", [nested(depth)])
    assert any_store.reopen().load("deep").messages == [nested(depth)]


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_too_deep_nesting_is_refused(any_store, depth):
    before = any_store.fingerprint()
    with pytest.raises(SerializationError):
        any_store.store.save("deep", [nested(depth)])
    assert any_store.fingerprint() == before


def call_deeper(frames: int, function):
    """Call ``function`` with ``frames`` more frames on the stack (a caller inside a framework)."""
    return function() if frames == 0 else call_deeper(frames - 1, function)


def test_deepest_accepted_message_loads_back(any_store):
    """The nesting cap (codec.MAX_NESTING) sits far enough below the recursion limit that the
    deepest message save() accepts loads back even from a caller deep in its own stack."""
    store = any_store.store
    low, high = 1, 2000
    while low < high:  # the deepest nesting save() accepts here
        mid = (low + high + 1) // 2
        try:
            store.save("probe", [nested(mid)])
            low = mid
        except SerializationError:
            high = mid - 1
    store.save("deep", [nested(low)])
    reopened = any_store.reopen()
    assert call_deeper(40, lambda: reopened.load("deep")).messages == [nested(low)]


# ---- labels and metadata ------------------------------------------------------------------
EVIL = ['line one\nparent_id: evil', 'Sessionsgit-Meta: {"parent_id": "evil"}',
        '\n\nSessionsgit-Meta: {"parent_id": "evil", "detached": true}\n', "tree 0000\nparent x",
        "\r\n\x00\x07\x1b[31m\x7f\u2028\u2029", "Signed-off-by: x <y>", "label\n\nkey: value\n"]
evil_text = st.one_of(st.sampled_from(EVIL), st.text(max_size=60),
                      st.lists(st.sampled_from(EVIL + ["\n", ": ", "x", "Sessionsgit-Meta"]),
                               max_size=5).map("".join))


def test_labels_and_metadata_stored_as_given_and_cannot_forge(any_store):
    store = any_store.store
    counter = itertools.count()

    @settings(SETTINGS, max_examples=60)
    @given(label=evil_text, value=evil_text, content=evil_text)
    def check(label, value, content):
        session_id = f"s{next(counter)}"
        store.save(session_id, [msg("user", content)],
                   {"label": label, "provider": value, "note": value, "extra": {value: label}})
        meta = any_store.reopen().load(session_id).metadata
        assert meta.label == label and meta.provider == value
        expected_extra = {"note": value}
        expected_extra.update({value: label})
        assert meta.extra == expected_extra
        assert meta.parent_id is None and meta.detached is False and meta.id == session_id
        assert meta.fork_message_id is None and meta.is_checkpoint is False
        listed = {m.id: m for m in any_store.reopen().list()}[session_id]
        assert listed.label == label
        store.rename(session_id, value)
        assert any_store.reopen().load(session_id).metadata.label == value
        if any_store.kind == "git":
            check_git_commit(any_store.data, session_id, label, value)

    check()


def check_git_commit(repo, session_id: str, label: str, value: str) -> None:
    """What the real git sees: plain headers, a one-line subject, one metadata line."""
    ref = f"refs/heads/sessions/{session_id}"
    for rev, parents in ((ref, 1), (ref + "~1", 0)):  # the rename and the save before it
        raw = subprocess.run(["git", "cat-file", "commit", rev], cwd=repo, capture_output=True,
                             check=True).stdout.decode("utf-8")
        headers, _, message = raw.partition("\n\n")
        assert [line.split(" ", 1)[0] for line in headers.splitlines()] == (
            ["tree"] + ["parent"] * parents + ["author", "committer"])
        subject, _, body = message.partition("\n\n")
        assert "\n" not in subject and not any(ord(c) < 32 for c in subject)
        meta_lines = [line for line in message.splitlines()
                      if line.startswith(commitmeta.META_KEY.strip())]
        assert len(meta_lines) == 1 and body == meta_lines[0] + "\n"
        assert meta_lines[0].isascii()
        trailer = subprocess.run(
            ["git", "log", "-1", "--format=%(trailers:key=Sessionsgit-Meta,valueonly)", rev],
            cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
        data = json.loads(trailer)
        assert data["id"] == session_id and data.get("parent_id") is None
    assert data["label"] == label and data["provider"] == value
    log = subprocess.run(["git", "log", "--format=%s", ref], cwd=repo, capture_output=True,
                         check=True).stdout.decode()
    assert len(log.splitlines()) == 2


def test_git_store_rejects_nothing_that_json_accepts(tmp_path):
    """Exact JSON values at the edges: huge ints, tiny floats, -0.0, every Unicode plane."""
    store = GitSessionStore(tmp_path / "repo")
    edge = {"big": 2 ** 200, "neg": -(2 ** 70), "tiny": 5e-324, "max": 1.7976931348623157e308,
            "negzero": -0.0, "one_float": 1.0, "true": True, "text": "".join(
                chr(c) for c in (0, 9, 10, 13, 0x7f, 0x85, 0xa0, 0x2028, 0xfeff, 0xffff, 0x10ffff)),
            "": "empty key", "nested": [[], {}, [[]], [{}]]}
    store.save("edge", [edge])
    loaded = GitSessionStore(tmp_path / "repo", create=False).load("edge").messages[0]
    assert exact(loaded) == exact(edge)
    assert math.copysign(1, loaded["negzero"]) == -1
