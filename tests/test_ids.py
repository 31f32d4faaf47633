"""Session ids and their names on disk (sessionsgit/idcodec.py), checked against real Git."""

from __future__ import annotations

import json

import pygit2
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionsgit import GitSessionStore, InvalidSessionIdError, idcodec
from sessionsgit.cli import cli as main
from sessionsgit.ids import MAX_ID_LENGTH, is_valid_session_id, validate_session_id
from sessionsgit.sync import add_remote, pull, push, tracking_ref

from .helpers import git
from .store_contract import BAD_IDS, ODD_IDS, transcript

TEXT_IDS = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1,
                   max_size=MAX_ID_LENGTH)


# ---- the rules ----------------------------------------------------------------------------
@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_only_empty_control_surrogate_and_overlong_ids_are_refused(bad_id):
    with pytest.raises(InvalidSessionIdError):
        validate_session_id(bad_id)
    assert not is_valid_session_id(bad_id)


@pytest.mark.parametrize("odd_id", ODD_IDS)
def test_odd_ids_are_valid(odd_id):
    assert validate_session_id(odd_id) == odd_id


@pytest.mark.parametrize("session_id, ref_name, file_stem", [
    ("chat:7", "chat%3A7", "chat:7"),
    ("user:42/trip planning", "user%3A42%2Ftrip%20planning", "user:42%2Ftrip planning"),
    ("café/☕", "café%2F☕", "café%2F☕"),
    ("notes 2024-01", "notes%202024-01", "notes 2024-01"),
    ("50%", "50%25", "50%25"),
    (".hidden", "%2Ehidden", "%2Ehidden"),
    ("-x", "%2Dx", "-x"),
    ("x.lock", "x%2Elock", "x.lock"),
    ("a..b", "a.%2Eb", "a..b"),
    ("a@{b", "a@%7Bb", "a@{b"),
    ("@", "%40", "@"),
])
def test_documented_examples(session_id, ref_name, file_stem):
    assert idcodec.encode(session_id) == ref_name
    assert idcodec.encode(session_id, idcodec.FILE) == file_stem
    assert idcodec.decode(ref_name) == session_id
    assert idcodec.decode(file_stem, idcodec.FILE) == session_id


@pytest.mark.parametrize("safe_id", ["s1", "0b9d6a3e-7a43-4b0e-9d55-6c1d3f6f0c11", "my_session.v2",
                                     "ÄÖÜ-日本語", "a+b=c,d@e"])
def test_safe_ids_are_their_own_names(safe_id):
    assert idcodec.encode(safe_id) == safe_id
    assert idcodec.encode(safe_id, idcodec.FILE) == safe_id


@pytest.mark.parametrize("name", ["a%3a", "a%2", "%", "a%C3", "x%00y", "", "a%2Fb%2F%2E%2E"])
def test_names_that_are_not_canonical_decode_to_none(name):
    decoded = idcodec.decode(name)
    assert decoded is None or idcodec.encode(decoded) == name


@settings(max_examples=300, deadline=None)
@given(session_id=TEXT_IDS)
def test_encoding_round_trips_and_names_are_safe(session_id):
    for kind in (idcodec.REF, idcodec.FILE):
        name = idcodec.encode(session_id, kind)
        assert "/" not in name and not name.startswith(".") and "\x00" not in name
        assert len(name.encode("utf-8")) <= idcodec.MAX_NAME_BYTES
        assert idcodec.matches(name, session_id, kind)
        if idcodec.is_hashed(name):
            assert idcodec.decode(name, kind) is None
        else:
            assert idcodec.decode(name, kind) == session_id


@settings(max_examples=60, deadline=None)
@given(session_ids=st.lists(TEXT_IDS, min_size=1, max_size=20, unique=True))
def test_encoded_names_are_valid_git_refs(session_ids):
    # one `git check-ref-format` call per batch keeps this fast
    names = [f"refs/heads/sessions/{idcodec.encode(i)}" for i in session_ids]
    for name in names:
        assert pygit2.reference_is_valid_name(name), name


def test_distinct_ids_get_distinct_names():
    ids = ODD_IDS + ["x" * 1023 + "y", "x" * 1023 + "z", "%2F", "/"]
    for kind in (idcodec.REF, idcodec.FILE):
        names = [idcodec.encode(i, kind) for i in ids]
        assert len(set(names)) == len(ids)


# ---- the Git store ------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path):
    return GitSessionStore(tmp_path / "repo")


@pytest.mark.parametrize("odd_id", ["user:42/trip planning", "café/☕", "x.lock", "é" * 1024])
def test_git_log_and_check_ref_format_accept_the_branch(store, odd_id):
    store.save(odd_id, transcript(2), {"label": "odd"})
    name = idcodec.encode(odd_id)
    git("check-ref-format", f"refs/heads/sessions/{name}")
    log = git("log", "--format=%s", f"sessions/{name}", cwd=store.path)
    assert log.strip()
    body = git("log", "-1", "--format=%B", f"sessions/{name}", cwd=store.path)
    assert json.dumps(odd_id, ensure_ascii=True) in body  # the commit records the exact id


def test_existing_safe_refs_keep_their_names(store):
    store.save("0b9d6a3e-7a43-4b0e-9d55-6c1d3f6f0c11", transcript(1))
    store.save("old.style_id", transcript(1))
    names = sorted(r.name for r in store.repo.references.iterator())
    assert names == ["refs/heads/sessions/0b9d6a3e-7a43-4b0e-9d55-6c1d3f6f0c11",
                     "refs/heads/sessions/old.style_id"]


def test_delete_restore_and_purge_odd_ids(store):
    odd = "user:42/trip planning"
    store.save(odd, transcript(2))
    store.save("user:42", transcript(1))  # a prefix of the other id's encoding
    assert store.delete(odd) is True
    trash = [r.name for r in store.repo.references.iterator()
             if r.name.startswith("refs/sessions-trash/")]
    assert len(trash) == 1 and trash[0].startswith("refs/sessions-trash/user%3A42%2Ftrip%20planning/")
    assert [d.id for d in store.list_deleted()] == [odd]
    assert store.restore(odd).id == odd
    assert store.delete(odd) and store.purge(odd) == 1
    assert [m.id for m in store.list()] == ["user:42"]


def test_hand_made_ref_that_encodes_no_id_is_reported(store):
    store.save("ok", transcript(1))
    head = store.repo.references["refs/heads/sessions/ok"].target
    store.repo.references.create("refs/heads/sessions/bad%3a", head)  # lower-case escape
    assert [m.id for m in store.list()] == ["ok"]
    assert [name for name, _ in store.last_damaged] == ["bad%3a"]


def test_push_and_pull_odd_and_long_ids(tmp_path):
    remote = tmp_path / "remote.git"
    pygit2.init_repository(str(remote), bare=True)
    a, b = GitSessionStore(tmp_path / "a"), GitSessionStore(tmp_path / "b")
    add_remote(a, "origin", str(remote))
    add_remote(b, "origin", str(remote))
    ids = ["café/☕", "chat:7", "é" * 1024]
    for session_id in ids:
        a.save(session_id, transcript(2))
    assert sorted(push(a).pushed) == sorted(ids)
    assert sorted(pull(b).created) == sorted(ids)
    assert sorted(m.id for m in b.list()) == sorted(ids)
    assert b.load("é" * 1024).messages == transcript(2)
    assert tracking_ref("origin", "chat:7") == "refs/remotes/origin/sessions/chat%3A7"
    b.save("chat:7", transcript(3))
    assert push(b).pushed == ["chat:7"]
    assert pull(a).fetched == ["chat:7"]
    assert a.load("chat:7").messages == transcript(3)


def test_cli_shows_and_resolves_odd_ids(tmp_path, store):
    odd = "user:42/trip planning"
    store.save(odd, transcript(2), {"label": "trip"})
    store.close()
    runner = CliRunner()
    base = ["--repo", str(tmp_path / "repo")]
    listed = runner.invoke(main, base + ["list", "--json"])
    assert listed.exit_code == 0 and [r["id"] for r in json.loads(listed.output)] == [odd]
    for argument in (odd, "user:4", "trip"):
        shown = runner.invoke(main, base + ["show", argument])
        assert shown.exit_code == 0, shown.output
        assert "m text 1" in shown.output
