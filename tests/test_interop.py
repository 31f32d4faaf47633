"""Sessions and plain git: clone, fetch, push, fsck and the diff driver, with the real git CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sessionsgit import GitSessionStore
from sessionsgit.sync import add_remote, install_diff_driver, pull, push, sync
from sessionsgit.textconv import render

from .helpers import git
from .test_sync import daemon, heads, msgs  # noqa: F401  (daemon is a fixture)

SESSIONS = "refs/heads/sessions/*:refs/heads/sessions/*"


def filled_store(path) -> GitSessionStore:
    store = GitSessionStore(path)
    store.save("s1", msgs("hi", "hello", "how are you"), {"label": "one", "provider": "echo"})
    store.save("s2", msgs("yo"))
    store.fork("s1", "s1-fork", at=2, metadata={"label": "what if"})
    return store


def assert_same_sessions(copy: GitSessionStore, original: GitSessionStore) -> None:
    assert heads(copy) == heads(original)
    for session_id in heads(original):
        assert copy.load(session_id).messages == original.load(session_id).messages
        assert copy.load(session_id).metadata == original.load(session_id).metadata
        assert [r.commit for r in copy.history(session_id)] == \
            [r.commit for r in original.history(session_id)]


def test_pushed_sessions_clone_with_plain_git_and_open_intact(tmp_path, daemon):  # noqa: F811
    _, url = daemon.bare("cloneme")
    store = filled_store(tmp_path / "store")
    add_remote(store, "origin", url)
    assert len(push(store).pushed) == 3

    git("clone", "-q", "--mirror", url, str(tmp_path / "mirror.git"))
    assert_same_sessions(GitSessionStore(tmp_path / "mirror.git", create=False), store)

    checkout = tmp_path / "checkout"
    git("clone", "-q", url, str(checkout))
    git("fetch", "-q", "origin", SESSIONS, cwd=checkout)
    assert_same_sessions(GitSessionStore(checkout, create=False), store)


def test_plain_git_push_and_fetch_of_the_sessions_refspec(tmp_path):
    store = filled_store(tmp_path / "store")
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote))
    git("--git-dir", str(store.path), "push", "-q", str(remote), SESSIONS)
    assert_same_sessions(GitSessionStore(remote, create=False), store)

    other = GitSessionStore(tmp_path / "other")
    add_remote(other, "origin", str(remote))
    assert sorted(pull(other).created) == ["s1", "s1-fork", "s2"]
    assert_same_sessions(other, store)

    # the configured refspec makes a bare `git fetch origin` fetch sessions into tracking refs
    store.save("s2", msgs("yo", "new"))
    git("--git-dir", str(store.path), "push", "-q", str(remote), SESSIONS)
    git("--git-dir", str(other.path), "fetch", "-q", "origin")
    tracking = git("--git-dir", str(other.path), "rev-parse", "refs/remotes/origin/sessions/s2")
    assert tracking.strip() == heads(store)["s2"]
    assert pull(other).fetched == ["s2"]


def test_fsck_is_clean_on_both_sides_after_a_diverged_sync(tmp_path, daemon):  # noqa: F811
    remote, url = daemon.bare("fsck")
    a, b = filled_store(tmp_path / "a"), GitSessionStore(tmp_path / "b")
    add_remote(a, "origin", url)
    add_remote(b, "origin", url)
    sync(a)
    sync(b)
    a.save("s2", msgs("yo", "from a"))
    b.load("s2")
    b.save("s2", msgs("yo", "from b"))
    sync(a)
    assert len(sync(b).diverged) == 1
    sync(a)
    assert heads(a) == heads(b) == heads(GitSessionStore(remote, create=False))
    for path in (a.path, b.path, remote):
        result = subprocess.run(
            ["git", "--git-dir", str(path), "fsck", "--strict", "--no-dangling"],
            capture_output=True, text=True)
        assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_git_log_shows_rendered_messages_after_install_diff_driver(tmp_path):
    store = GitSessionStore(tmp_path / "store")
    store.save("s", [{"role": "user", "content": "what is 2+2?"}])
    store.save("s", [{"role": "user", "content": "what is 2+2?"},
                     {"role": "assistant", "id": "msg_1",
                      "content": [{"type": "text", "text": "It is 4."},
                                  {"type": "tool_use", "name": "calc", "input": {"expr": "2+2"}}]}])
    log = ["--git-dir", str(store.path), "log", "-p", "sessions/s"]
    assert '"role": "assistant"' in git(*log)

    description = install_diff_driver(store)
    assert "sessionsgit" in description
    install_diff_driver(store)  # idempotent
    attributes = (store.path / "info" / "attributes").read_text().splitlines()
    assert attributes.count("messages/**/*.json diff=sessionsgit") == 1
    output = git(*log)
    assert "+assistant:  #msg_1" in output
    assert "+It is 4." in output
    assert '+[tool call] calc({"expr": "2+2"})' in output
    assert '"role": "assistant"' not in output
    assert "user:" in git("--git-dir", str(store.path), "show", "sessions/s~1")


def test_textconv_command_line(tmp_path):
    message = tmp_path / "000001.json"
    message.write_text(json.dumps({
        "role": "assistant", "content": "checking",
        "tool_calls": [{"id": "c1", "type": "function",
                        "function": {"name": "search", "arguments": "{\"q\": \"git\"}"}}],
        "model": "gpt-x"}))
    result = subprocess.run([sys.executable, "-m", "sessionsgit.textconv", str(message)],
                            capture_output=True, text=True, check=True)
    assert result.stdout == ('assistant:\nchecking\n[tool call] search({"q": "git"})\n'
                             "-- model: gpt-x\n")
    other = tmp_path / "other.json"
    other.write_text('[1, 2, {"a": true}]\n')
    result = subprocess.run([sys.executable, "-m", "sessionsgit.textconv", str(other)],
                            capture_output=True, text=True, check=True)
    assert result.stdout == '[1, 2, {"a": true}]\n'


@pytest.mark.parametrize("text, expected", [
    ("not json", "not json"),
    ('{"role": "tool", "tool_call_id": "c1", "content": "42"}', "tool:\n[tool result] c1: 42\n"),
    ('{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", '
     '"content": [{"type": "text", "text": "ok"}]}, {"type": "image", "source": {}}]}',
     "user:\n[tool result] t: ok\n[image]\n"),
    ('{"role": "assistant", "content": [{"type": "thinking", "thought": "hmm"}, '
     '{"type": "tool", "tool": "ls", "params": {"path": "/"}}, '
     '{"type": "tool_result", "tool": "ls", "result": "a b"}]}',
     'assistant:\n[thinking] hmm\n[tool call] ls({"path": "/"})\n[tool result] ls: a b\n'),
    ('{"id": "s", "created_at": "2024-01-01", "parent_id": null, "model": "m"}',
     "id: s\ncreated_at: 2024-01-01\nmodel: m\n"),
])
def test_render(text, expected):
    assert render(text) == expected
