"""The library API the CLI is built on: every public name importable from ``sessionsgit``,
revisions (``~N``, commit prefixes, ``SESSION@REV``), transcripts in both directions, listing
with the trash, message stamping and the hints' checks."""

from __future__ import annotations

from pathlib import Path

import pytest

import sessionsgit
from sessionsgit import (
    AmbiguousSessionError,
    GitSessionStore,
    InMemorySessionStore,
    InvalidRevisionError,
    SessionNotFoundError,
    export_session,
    list_sessions,
    parse_transcript,
    read_transcript,
    remote_only_sessions,
    resolve_id,
    resolve_revision,
    split_revision,
    stamp_message,
    unignored_in_worktree,
)
from sessionsgit.importers import import_path
from tests.helpers import git, loosen


def text(value: str, role: str = "user") -> dict[str, object]:
    return {"role": role, "content": [{"type": "text", "text": value}]}


@pytest.fixture
def store(tmp_path: Path) -> GitSessionStore:
    return GitSessionStore(tmp_path / "repo")


def three_saves(store: GitSessionStore, session_id: str = "s") -> list[str]:
    """A session saved with 1, 2 and 3 messages; its commits newest first."""
    messages = [text("one"), text("two", "assistant"), text("three")]
    for count in (1, 2, 3):
        store.save(session_id, messages[:count])
    return [record.commit for record in store.history(session_id)]


def test_every_public_name_is_importable_from_the_package() -> None:
    for name in sessionsgit.__all__:
        assert getattr(sessionsgit, name) is not None, name
    assert callable(sessionsgit.sync_sessions) and callable(sessionsgit.push)
    with pytest.raises(AttributeError):
        sessionsgit.no_such_name  # noqa: B018


# ---- revisions ----------------------------------------------------------------------------
def test_load_and_fork_take_saves_back_from_the_head(store: GitSessionStore) -> None:
    commits = three_saves(store)
    assert len(store.load("s", at="~").messages) == 2
    assert len(store.load("s", at="~1").messages) == 2
    assert len(store.load("s", at="~2").messages) == 1
    assert len(store.load("s", at="^^").messages) == 1
    assert store.load("s", at="~0").metadata.head == commits[0]
    assert store.load("s", at=commits[2][:7]).metadata.head == commits[2]
    child = store.fork("s", at="~1")
    assert [m["content"][0]["text"] for m in store.load(child).messages] == ["one", "two"]
    assert store.history(child)[1].commit == commits[1]  # forked at that very save


def test_a_revision_error_names_its_cause_once(store: GitSessionStore) -> None:
    three_saves(store)
    for rev, cause in (("deadbeef", "names no save"), ("~3", "further than the 3 saves"),
                       ("^^^^", "further than the 3 saves")):
        with pytest.raises(InvalidRevisionError) as caught:
            store.load("s", at=rev)
        message = str(caught.value)
        assert cause in message and message.count(rev) == 1, message
    other = three_saves(store, "other")[0]
    with pytest.raises(InvalidRevisionError, match="not in the history"):
        store.load("s", at=other)


def test_session_at_revision_parsing() -> None:
    assert split_revision("s@~2") == ("s", "~2")
    assert split_revision("a@b.example@abc123") == ("a@b.example", "abc123")
    for whole in ("plain", "@x", "x@", "@"):
        assert split_revision(whole) == (whole, None)


def test_resolve_revision_prefers_a_whole_id_that_holds_an_at(store: GitSessionStore) -> None:
    three_saves(store, "me@example.org")
    assert resolve_revision(store, "me@example.org") == ("me@example.org", None)
    assert resolve_revision(store, "me@example.org@~1") == ("me@example.org", "~1")
    store.save("labelled-session", [], {"label": "work"})
    assert resolve_revision(store, "work@~0") == ("labelled-session", "~0")
    assert resolve_id(store, "labe") == "labelled-session"
    with pytest.raises(SessionNotFoundError):
        resolve_revision(store, "nothing@~1")


def test_resolve_id_works_on_any_store() -> None:
    store = InMemorySessionStore()
    store.save("abcd-1", [])
    store.save("abcd-2", [])
    with pytest.raises(AmbiguousSessionError):
        resolve_id(store, "abcd")
    assert resolve_id(store, "abcd-2") == "abcd-2"


# ---- transcripts --------------------------------------------------------------------------
LINE_BREAKING = "a\u2028b\u2029c\u0085d\re\x1cf\x0bg\x0ch"


def test_jsonl_escapes_what_other_line_splitters_break_at(store: GitSessionStore,
                                                         tmp_path: Path) -> None:
    store.save("odd", [text(LINE_BREAKING), text("plain", "assistant")],
               {"label": "x\u2028y"})
    exported = export_session(store.load("odd"), "jsonl")
    assert len(exported.splitlines()) == 3  # header + 2 messages, whatever splits them
    assert not set("\u2028\u2029\u0085") & set(exported)
    path = tmp_path / "odd.jsonl"
    path.write_text(exported, encoding="utf-8")
    back = read_transcript(path)
    assert back.messages == store.load("odd").messages
    assert back.metadata["label"] == "x\u2028y"
    other = GitSessionStore(tmp_path / "other")
    assert import_path(other, path).imported == ["odd"]
    assert other.load("odd").messages == store.load("odd").messages


def test_jsonl_written_raw_by_others_still_reads(tmp_path: Path) -> None:
    raw = '{"role": "user", "content": "a\u2028b\u0085c"}\r\n{"role": "assistant", ' \
          '"content": "ok"}\n'
    transcript = parse_transcript(raw, jsonl=True)
    assert [m["content"] for m in transcript.messages] == ["a\u2028b\u0085c", "ok"]


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_exports_round_trip(store: GitSessionStore, fmt: str) -> None:
    store.save("rt", [text(LINE_BREAKING), {"role": "tool", "content": None, "n": 1.5}],
               {"label": "round\u2029trip", "extra": {"k": [1, "\u0085"]}})
    session = store.load("rt")
    back = parse_transcript(export_session(session, fmt), jsonl=fmt == "jsonl")
    assert back.id == "rt" and back.messages == session.messages
    assert back.metadata == session.metadata.to_dict()


def test_export_formats(store: GitSessionStore) -> None:
    store.save("f", [text("hello")], {"label": "greeting"})
    session = store.load("f")
    assert export_session(session, "markdown").startswith("# greeting\n")
    assert "hello" in export_session(session, "yaml")
    with pytest.raises(ValueError, match="unknown export format"):
        export_session(session, "xml")


# ---- listing, stamping, hints -------------------------------------------------------------
def test_list_sessions_with_the_trash(store: GitSessionStore) -> None:
    store.save("live", [text("a")])
    store.save("gone", [text("b")])
    store.delete("gone")
    store.save("gone", [text("c")])
    store.delete("gone")
    assert [r["id"] for r in list_sessions(store)] == ["live"]
    assert "deleted" not in list_sessions(store)[0]
    deleted = list_sessions(store, only_deleted=True)
    assert [(r["id"], r["version"], r["deleted"]) for r in deleted] == [
        ("gone", 1, True), ("gone", 2, True)]
    everything = list_sessions(store, include_deleted=True)
    assert sorted((r["id"], r["deleted"]) for r in everything) == [
        ("gone", True), ("gone", True), ("live", False)]
    ref = sessionsgit.deleted_version_ref(store, "gone", 2)
    store.restore("gone", ref)
    assert store.load("gone").messages == [text("b")]
    with pytest.raises(InvalidRevisionError, match="1 deleted version, not 3"):
        sessionsgit.deleted_version_ref(store, "gone", 3)


def test_stamp_message_adds_only_what_is_missing() -> None:
    message = stamp_message({"role": "user", "content": "x"}, now=5)
    assert message["timestamp"] == 5 and len(message["id"]) == 32
    kept = stamp_message({"role": "user", "id": "mine", "timestamp": 1})
    assert kept == {"role": "user", "id": "mine", "timestamp": 1}


def test_unignored_in_worktree(tmp_path: Path) -> None:
    code = tmp_path / "code"
    git("init", "-q", str(code))
    GitSessionStore(code / ".sessions")
    assert unignored_in_worktree(code / ".sessions") == (code.resolve(), ".sessions")
    (code / ".gitignore").write_text(".sessions/\n")
    assert unignored_in_worktree(code / ".sessions") is None
    assert unignored_in_worktree(tmp_path / "nowhere") is None


def test_remote_only_sessions_of_a_plain_clone(store: GitSessionStore, tmp_path: Path) -> None:
    three_saves(store)
    assert remote_only_sessions(store) == {}
    clone = tmp_path / "clone"
    git("clone", "-q", str(store.path), str(clone))
    assert remote_only_sessions(GitSessionStore(clone, create=False)) == {"origin": 1}


# ---- damaged history: typed errors, never pygit2's ----------------------------------------
def drop_object(store: GitSessionStore, commit: str) -> None:
    """Delete one object (after making every object loose: saves write a pack each)."""
    store.close()
    loosen(store.path)
    (store.path / "objects" / commit[:2] / commit[2:]).unlink()


def test_a_missing_save_in_the_history_is_a_corrupt_session(store: GitSessionStore) -> None:
    from sessionsgit import CorruptSessionError

    commits = three_saves(store)
    drop_object(store, commits[1])
    fresh = GitSessionStore(store.path)
    with pytest.raises(CorruptSessionError, match="history is unreadable"):
        fresh.history("s")
    with pytest.raises(CorruptSessionError, match=f"the save 1 back .*{commits[1]}"):
        fresh.load("s", at="~2")
    assert len(fresh.load("s").messages) == 3  # the head itself still reads
    child = fresh.fork("s", at=1)  # the fork-point search stops at the gap
    assert len(fresh.load(child).messages) == 1
