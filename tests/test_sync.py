"""push / pull / sync against real remotes: a bare repository on disk and a `git daemon` (smart
HTTP, ssh and hostile remotes: tests/test_remotes_*.py)."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pygit2
import pytest

from sessionsgit import GitSessionStore, RemoteError, SessionConflictError
from sessionsgit.sync import (
    Credentials,
    SyncReport,
    add_remote,
    list_remotes,
    pull,
    push,
    remove_remote,
    sync,
    tracking_ref,
)

from .helpers import git
from .servers import daemon, free_port  # noqa: F401  (fixture)


# ---- fixtures -----------------------------------------------------------------------------
def msgs(*texts: str) -> list[dict]:
    roles = ("user", "assistant")
    return [{"id": f"m-{t}", "role": roles[i % 2], "content": [{"type": "text", "text": t}]}
            for i, t in enumerate(texts)]


def heads(store: GitSessionStore) -> dict[str, str]:
    return {m.id: m.head for m in store.list()}


def session_refs(store: GitSessionStore) -> dict[str, str]:
    return {r.name: str(r.target) for r in store.repo.references.iterator()
            if r.name.startswith(("refs/heads/", "refs/sessions-trash/"))}


@pytest.fixture
def remote(tmp_path):
    """A bare repository on disk (reached through libgit2's local transport)."""
    path = tmp_path / "remote.git"
    pygit2.init_repository(str(path), bare=True)
    return path


@pytest.fixture
def pair(tmp_path, remote):
    """Two stores, A and B, both with `origin` at the same bare remote."""
    a, b = GitSessionStore(tmp_path / "a"), GitSessionStore(tmp_path / "b")
    add_remote(a, "origin", str(remote))
    add_remote(b, "origin", str(remote))
    return a, b


# ---- remotes ------------------------------------------------------------------------------
def test_add_list_remove_remote(tmp_path):
    store = GitSessionStore(tmp_path / "s")
    add_remote(store, "origin", "/srv/x.git")
    add_remote(store, "web", "https://alice:s3cret@example.com/x.git")
    assert list_remotes(store) == [("origin", "/srv/x.git"),
                                   ("web", "https://alice:***@example.com/x.git")]
    assert store.repo.remotes["origin"].fetch_refspecs == [
        "+refs/heads/sessions/*:refs/remotes/origin/sessions/*"]
    with pytest.raises(RemoteError, match="already exists"):
        add_remote(store, "origin", "/elsewhere")
    with pytest.raises(RemoteError, match="cannot add remote"):
        add_remote(store, "bad name", "/x")
    remove_remote(store, "web")
    assert [name for name, _ in list_remotes(store)] == ["origin"]
    with pytest.raises(RemoteError, match="no remote named 'web'"):
        remove_remote(store, "web")
    with pytest.raises(RemoteError, match="no remote named 'nope'"):
        push(store, "nope")
    with pytest.raises(RemoteError, match="no remote named 'nope'"):
        pull(store, "nope")


# ---- push and pull ------------------------------------------------------------------------
def test_push_then_pull_into_another_store_round_trips_everything(pair, remote):
    a, b = pair
    a.save("s1", msgs("hi", "hello"), {"label": "first", "model": "m1"})
    a.save("s2", msgs("yo"))
    fork = a.fork("s1", at=1, metadata={"label": "branch"})
    progress: list[tuple[int, int]] = []
    report = push(a, progress=lambda done, total: progress.append((done, total)))
    assert sorted(report.pushed) == sorted(["s1", "s2", fork])
    assert progress and progress[-1][0] == progress[-1][1]
    assert heads(GitSessionStore(remote, create=False)) == heads(a)
    assert str(a.repo.references[tracking_ref("origin", "s1")].target) == heads(a)["s1"]

    progress.clear()
    report = pull(b, progress=lambda done, total: progress.append((done, total)))
    assert sorted(report.created) == sorted(["s1", "s2", fork])
    assert progress
    assert heads(b) == heads(a)
    for session_id in heads(a):
        assert b.load(session_id).messages == a.load(session_id).messages
        assert b.load(session_id).metadata == a.load(session_id).metadata
    assert pull(b).unchanged == sorted(["s1", "s2", fork])
    json.dumps(report.to_dict())


def test_incremental_push_sends_only_what_changed(pair):
    a, _ = pair
    for i in range(5):
        a.save(f"s{i}", msgs(f"q{i}"))
    assert len(push(a).pushed) == 5
    a.save("s3", msgs("q3", "a3"))
    report = push(a)
    assert report.pushed == ["s3"] and report.unchanged == ["s0", "s1", "s2", "s4"]
    assert push(a) == SyncReport(unchanged=[f"s{i}" for i in range(5)])
    assert push(a, ids=["s1"]) == SyncReport(unchanged=["s1"])
    with pytest.raises(RemoteError, match="no session 'zzz'"):
        push(a, ids=["zzz"])


def test_pull_fast_forwards_and_leaves_local_news_for_push(pair):
    a, b = pair
    a.save("s", msgs("1"))
    push(a)
    pull(b)
    b.load("s")
    b.save("s", msgs("1", "2"))
    push(b)
    report = pull(a)
    assert report.fetched == ["s"]
    assert [m["content"][0]["text"] for m in a.load("s").messages] == ["1", "2"]
    a.save("s", msgs("1", "2", "3"))
    report = pull(a)
    assert report.fetched == [] and report.unchanged == ["s"]  # only ours has news
    assert push(a).pushed == ["s"]


def test_divergent_pull_keeps_both_sides_and_sync_converges(pair, remote):
    a, b = pair
    a.save("s", msgs("q", "a"), {"label": "chat"})
    push(a)
    pull(b)
    b.load("s")
    b.save("s", msgs("q", "a", "from B"))
    push(b)
    a.save("s", msgs("q", "a", "from A"))
    local_head = heads(a)["s"]

    report = pull(a)
    (session_id, fork_id), = report.diverged
    assert session_id == "s"
    assert heads(a)["s"] == heads(b)["s"]  # the remote version keeps the id
    assert a.load("s").messages == msgs("q", "a", "from B")
    moved = a.load(fork_id)
    assert moved.messages == msgs("q", "a", "from A")
    assert moved.metadata.parent_id == "s"
    assert moved.metadata.fork_message_id == "m-a"
    assert moved.metadata.label.startswith("chat (diverged sync ")
    fork_commit = a.repo[pygit2.Oid(hex=moved.metadata.head)]
    assert [str(p) for p in fork_commit.parent_ids] == [local_head]
    assert fork_commit.tree_id == a.repo[pygit2.Oid(hex=local_head)].tree_id  # shares the tree

    assert sync(a).pushed == [fork_id]
    assert sync(b).created == [fork_id]
    assert heads(a) == heads(b) == heads(GitSessionStore(remote, create=False))


def test_pull_refreshes_the_instance_so_it_saves_on_top_of_what_it_pulled(pair):
    a, b = pair
    a.save("s", msgs("1"))
    push(a)
    pull(b)
    b.load("s")
    b.save("s", msgs("1", "2"))
    push(b)
    assert pull(a).fetched == ["s"]  # the same instance moved its own branch
    a.save("s", msgs("1", "2", "3"))  # no SessionConflictError: the view was refreshed
    assert [r.message_count for r in a.history("s")] == [3, 2, 1]


def test_a_caller_holding_the_head_from_before_the_pull_gets_a_conflict(pair):
    a, b = pair
    old = a.save("s", msgs("1")).head
    push(a)
    pull(b)
    b.load("s")
    b.save("s", msgs("1", "2"))
    push(b)
    pull(a)
    with pytest.raises(SessionConflictError):
        a.save("s", msgs("1", "stale"), expected_head=old)
    assert a.load("s").messages == msgs("1", "2")


def test_push_never_forces_over_a_remote_session(pair, remote):
    a, b = pair
    a.save("s", msgs("1"))
    push(a)
    pull(b)
    b.load("s")
    b.save("s", msgs("1", "B"))
    push(b)
    a.save("s", msgs("1", "A"))
    with pytest.raises(RemoteError, match="pull first") as info:
        push(a)
    assert info.value.report.rejected[0][0] == "s"
    assert heads(GitSessionStore(remote, create=False))["s"] == heads(b)["s"]
    a.save("t", msgs("new"))
    report = push(a)  # the rest still goes out
    assert report.pushed == ["t"] and [sid for sid, _ in report.rejected] == ["s"]


def test_prune_on_push_deletes_only_what_was_deleted_here(pair, remote):
    a, _ = pair
    a.save("keep", msgs("k"))
    a.save("gone", msgs("g"))
    push(a)
    a.delete("gone")
    assert push(a).pruned == []  # without prune nothing is deleted
    assert "gone" in heads(GitSessionStore(remote, create=False))
    report = push(a, prune=True)
    assert report.pruned == ["gone"]
    assert set(heads(GitSessionStore(remote, create=False))) == {"keep"}
    assert tracking_ref("origin", "gone") not in a.repo.references


def test_push_prune_leaves_a_remote_session_that_moved_on(pair, remote):
    a, b = pair
    a.save("s", msgs("1"))
    push(a)
    pull(b)
    b.load("s")
    b.save("s", msgs("1", "2"))
    push(b)
    a.delete("s")
    assert push(a, prune=True).pruned == []
    assert "s" in heads(GitSessionStore(remote, create=False))
    assert pull(a, prune=True).created == ["s"]  # its news come back; nothing lost


def test_sync_without_prune_is_a_union(pair, remote):
    a, b = pair
    a.save("s", msgs("1"))
    sync(a)
    sync(b)
    b.delete("s")
    assert sync(b).created == ["s"]  # deletions travel only with prune
    b.delete("s")
    report = sync(b, prune=True)
    assert report.pruned == ["s"] and report.created == []
    assert heads(GitSessionStore(remote, create=False)) == {}
    assert sync(a, prune=True).pruned == ["s"]
    assert heads(a) == {} and [d.id for d in a.list_deleted()] == ["s"]


def test_prune_on_pull(pair):
    a, b = pair
    a.save("x", msgs("x"))
    a.save("y", msgs("y"))
    a.save("z", msgs("z"))
    push(a)
    pull(b)
    a.delete("x")
    a.delete("z")
    push(a, prune=True)
    b.load("z")
    b.save("z", msgs("z", "extended here"))
    assert pull(b).pruned == []
    assert set(heads(b)) == {"x", "y", "z"}
    report = pull(b, prune=True)
    assert report.pruned == ["x"]  # z was extended here: kept, push sends it back
    assert set(heads(b)) == {"y", "z"}
    assert [d.id for d in b.list_deleted()] == ["x"]
    assert tracking_ref("origin", "x") not in b.repo.references
    assert push(b).pushed == ["z"]


# ---- over git:// ---------------------------------------------------------------------------
def test_sync_over_git_daemon(tmp_path, daemon):
    url = daemon.bare("sync").url
    a, b = GitSessionStore(tmp_path / "a"), GitSessionStore(tmp_path / "b")
    add_remote(a, "origin", url)
    add_remote(b, "origin", url)
    a.save("s", msgs("q"))
    assert sync(a).pushed == ["s"]
    assert sync(b).created == ["s"]
    a.save("s", msgs("q", "A"))
    b.load("s")
    b.save("s", msgs("q", "B"))
    sync(a)
    report = sync(b)
    (sid, fork_id), = report.diverged
    assert report.pushed == [fork_id]
    sync(a)
    assert heads(a) == heads(b)
    assert b.load("s").messages == msgs("q", "A")
    assert b.load(fork_id).messages == msgs("q", "B")


def test_server_hook_rejection_raises_and_leaves_the_store_unchanged(tmp_path, daemon):
    served = daemon.bare("hooked")
    path, url = served.path, served.url
    hook = path / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'sessions are read-only here' >&2\nexit 1\n")
    hook.chmod(0o755)
    store = GitSessionStore(tmp_path / "s")
    add_remote(store, "origin", url)
    store.save("s1", msgs("1"))
    store.save("s2", msgs("2"))
    before = session_refs(store)
    with pytest.raises(RemoteError, match="pre-receive hook declined") as info:
        sync(store)
    assert "read-only here" in str(info.value) and "\n" not in str(info.value)
    assert sorted(sid for sid, _ in info.value.report.rejected) == ["s1", "s2"]
    assert session_refs(store) == before
    assert not [r for r in store.repo.references if r.startswith("refs/remotes/")]
    assert git("--git-dir", str(path), "for-each-ref") == ""


def test_unreachable_remote_fails_fast(tmp_path):
    store = GitSessionStore(tmp_path / "s")
    store.save("s", msgs("1"))
    add_remote(store, "dead", f"git://127.0.0.1:{free_port()}/x.git")
    add_remote(store, "nowhere", str(tmp_path / "missing.git"))
    before = session_refs(store)
    started = time.monotonic()
    for action in (push, pull, sync):
        with pytest.raises(RemoteError, match="dead"):
            action(store, "dead")
        with pytest.raises(RemoteError, match="nowhere.*no Git repository at that path"):
            action(store, "nowhere")
    assert time.monotonic() - started < 10
    assert session_refs(store) == before


def test_unexported_repository_on_daemon(tmp_path, daemon):
    store = GitSessionStore(tmp_path / "s")
    add_remote(store, "origin", f"git://127.0.0.1:{daemon.port}/does-not-exist.git")
    with pytest.raises(RemoteError, match="fetch from origin"):
        pull(store)


def test_a_progress_callback_that_raises_interrupts_cleanly(pair):
    a, b = pair
    a.save("s", msgs("1", "2"))
    push(a)

    def boom(done: int, total: int) -> None:
        raise RuntimeError("cancelled by user")

    with pytest.raises(RemoteError, match="interrupted.*cancelled by user"):
        pull(b, progress=boom)
    assert heads(b) == {}


# ---- credentials --------------------------------------------------------------------------
class _AuthServer(BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802
        self.seen.append(self.headers.get("Authorization"))
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="sessions"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def auth_server():
    _AuthServer.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AuthServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", _AuthServer.seen
    finally:
        server.shutdown()
        server.server_close()


def test_refused_credentials_give_up_after_a_few_attempts(tmp_path, auth_server, monkeypatch):
    host, seen = auth_server
    monkeypatch.setenv("SESSIONSGIT_USERNAME", "envuser")
    monkeypatch.setenv("SESSIONSGIT_TOKEN", "envtoken")
    monkeypatch.delenv("SESSIONSGIT_PASSWORD", raising=False)
    store = GitSessionStore(tmp_path / "s")
    add_remote(store, "origin", f"http://{host}/r.git")
    with pytest.raises(RemoteError, match="authentication") as info:
        pull(store)
    assert "envtoken" not in str(info.value)
    sent = [base64.b64decode(h.split()[1]).decode() for h in seen if h]
    assert sent and set(sent) == {"envuser:envtoken"} and len(seen) <= 5

    seen.clear()
    with pytest.raises(RemoteError, match="authentication"):
        pull(store, credentials=Credentials(username="bob", password="pw"))
    assert {base64.b64decode(h.split()[1]).decode() for h in seen if h} == {"bob:pw"}
    assert "pw" not in repr(Credentials(username="bob", password="pw"))


def test_missing_credentials_and_url_passwords_are_never_shown(tmp_path, auth_server, monkeypatch):
    host, _ = auth_server
    for name in ("SESSIONSGIT_USERNAME", "SESSIONSGIT_PASSWORD", "SESSIONSGIT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    store = GitSessionStore(tmp_path / "s")
    add_remote(store, "origin", f"http://{host}/r.git")
    with pytest.raises(RemoteError, match="authentication required"):
        pull(store)
    add_remote(store, "leaky", f"http://alice:hunter2@127.0.0.1:{free_port()}/r.git")
    with pytest.raises(RemoteError) as info:
        pull(store, "leaky")
    assert "hunter2" not in str(info.value) and "alice:***@" in str(info.value)
    assert "hunter2" not in repr(list_remotes(store))


def test_credentials_callback_choices_and_attempt_cap(monkeypatch, tmp_path):
    from pygit2.enums import CredentialType

    from sessionsgit.git.transport import Callbacks

    for name in ("SESSIONSGIT_USERNAME", "SESSIONSGIT_PASSWORD", "SESSIONSGIT_TOKEN",
                 "SESSIONSGIT_SSH_KEY", "SESSIONSGIT_SSH_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    agent = Callbacks(None, None).credentials("ssh://git@host/r.git", "git", CredentialType.SSH_KEY)
    assert isinstance(agent, pygit2.KeypairFromAgent)
    assert agent.credential_tuple[:3] == ("git", None, None)
    keys = Callbacks(Credentials(ssh_privkey="/k/id", ssh_passphrase="pp"), None)
    pair = keys.credentials("ssh://host/r.git", None, CredentialType.SSH_KEY)
    assert pair.credential_tuple == ("git", None, "/k/id", "pp")  # no /k/id.pub: derived
    (tmp_path / "id").write_text("private")
    (tmp_path / "id.pub").write_text("public")
    monkeypatch.setenv("SESSIONSGIT_SSH_KEY", str(tmp_path / "id"))
    monkeypatch.setenv("SESSIONSGIT_SSH_PASSPHRASE", "env pp")
    from_env = Callbacks(None, None).credentials("ssh://h/r", "me", CredentialType.SSH_KEY)
    assert from_env.credential_tuple == ("me", str(tmp_path / "id.pub"), str(tmp_path / "id"),
                                         "env pp")
    monkeypatch.delenv("SESSIONSGIT_SSH_KEY")
    assert isinstance(keys.credentials("ssh://h/r", "me", CredentialType.USERNAME), pygit2.Username)
    token = Callbacks(Credentials(password="tok"), None).credentials(
        "https://h/r", None, CredentialType.USERPASS_PLAINTEXT | CredentialType.SSH_KEY)
    assert token.credential_tuple == ("x-access-token", "tok")
    capped = Callbacks(None, None)
    for _ in range(3):
        capped.credentials("ssh://host/r.git", None, CredentialType.SSH_KEY)
    with pytest.raises(Exception, match="refused after 3 attempts"):
        capped.credentials("ssh://host/r.git", None, CredentialType.SSH_KEY)


# ---- issue 11: reporting, paths and URLs, damaged sessions --------------------------------
def test_report_lists_unchanged_ids_like_every_other_key(pair):
    a, _ = pair
    a.save("s1", msgs("q"))
    a.save("s2", msgs("q"))
    push(a)
    report = push(a)
    assert report.unchanged == ["s1", "s2"]
    assert all(isinstance(value, list) for value in report.to_dict().values())


def test_push_to_a_path_or_url_that_is_not_a_configured_remote(tmp_path, remote, daemon):
    store = GitSessionStore(tmp_path / "s")
    store.save("s1", msgs("q"))
    assert push(store, str(remote)).pushed == ["s1"]
    assert heads(GitSessionStore(remote, create=False)) == heads(store)
    assert push(store, f"file://{remote}").unchanged == ["s1"]
    served = daemon.bare("by-url")
    bare, url = served.path, served.url
    assert push(store, url).pushed == ["s1"]
    assert git("--git-dir", str(bare), "rev-parse", "refs/heads/sessions/s1").strip() == \
        heads(store)["s1"]
    assert not [r for r in store.repo.references if r.startswith("refs/remotes/")
                and "origin" not in r]  # no tracking refs named after a path
    other = GitSessionStore(tmp_path / "other")
    assert pull(other, str(remote)).created == ["s1"]
    assert other.load("s1").messages == store.load("s1").messages
    with pytest.raises(RemoteError, match="no remote named 'nope'"):
        push(store, "nope")


def test_push_to_a_missing_path_says_how_to_create_it(tmp_path):
    store = GitSessionStore(tmp_path / "s")
    store.save("s1", msgs("q"))
    missing = tmp_path / "nowhere.git"
    add_remote(store, "origin", str(missing))
    for target in ("origin", str(missing)):
        with pytest.raises(RemoteError, match=r"git init --bare"):
            push(store, target)
    assert not missing.exists()


def test_push_skips_and_reports_damaged_sessions(pair, remote, tmp_path):
    a, _ = pair
    a.save("good", msgs("q"))
    work = tmp_path / "work"
    git("init", "-q", str(work))
    (work / "f.txt").write_text("hand made")
    git("add", "f.txt", cwd=work)
    git("-c", "user.name=x", "-c", "user.email=x@example.com", "commit", "-qm", "by hand",
        cwd=work)
    git("push", "-q", str(a.path), "HEAD:refs/heads/sessions/handmade", cwd=work)
    a.list()
    assert [sid for sid, _ in a.last_damaged] == ["handmade"]
    report = push(a)
    assert report.pushed == ["good"]
    assert [sid for sid, _ in report.damaged] == ["handmade"]
    assert "no sessionsgit metadata" in report.damaged[0][1]
    assert git("--git-dir", str(remote), "for-each-ref", "--format=%(refname)").split() == \
        ["refs/heads/sessions/good"]
