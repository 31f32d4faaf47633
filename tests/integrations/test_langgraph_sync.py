"""``sessionsgit push``/``pull``/``sync`` carry a LangGraph thread whole: every checkpoint branch
(forks inside the thread, subgraph namespaces) and its pending writes, with real graphs
(``GenericFakeChatModel``), real repositories and real remotes (a bare repository on disk, a
``git daemon``, the CLI)."""

from __future__ import annotations

import json
import operator
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import pygit2
import pytest

pytest.importorskip("langgraph.graph")

from click.testing import CliRunner  # noqa: E402
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage  # noqa: E402
from langgraph.graph import START, MessagesState, StateGraph  # noqa: E402
from langgraph.types import Command, interrupt  # noqa: E402

from sessionsgit import GitSessionStore, render, sync  # noqa: E402
from sessionsgit.cli import cli  # noqa: E402
from sessionsgit.integrations import langgraph_sync  # noqa: E402
from sessionsgit.integrations.langgraph import GitCheckpointSaver  # noqa: E402
from sessionsgit.integrations.langgraph_refs import thread_prefix  # noqa: E402

from ..servers import daemon  # noqa: E402,F401  (fixture)
from .test_langgraph import THREAD, config, fsck_clean  # noqa: E402

WRITES = "/w/"


class State(MessagesState):
    log: Annotated[list[str], operator.add]


def graph_of(saver: GitCheckpointSaver, *answers: str) -> Any:
    """A chat model, then a subgraph (its own checkpoint namespace), then a review step that
    waits for a human (``interrupt``: pending writes) when asked to."""
    model = GenericFakeChatModel(messages=iter([AIMessage(content=t) for t in answers]))
    inner = StateGraph(State)
    inner.add_node("note", lambda state: {"log": [f"noted {len(state['messages'])}"]})
    inner.add_edge(START, "note")

    def review(state: State) -> dict[str, Any]:
        if state["messages"][-2].content == "review please":
            return {"log": [f"reviewed: {interrupt('approve?')}"]}
        return {}

    builder = StateGraph(State)
    builder.add_node("model", lambda state: {"messages": [model.invoke(state["messages"])]})
    builder.add_node("notes", inner.compile())
    builder.add_node("review", review)
    builder.add_edge(START, "model")
    builder.add_edge("model", "notes")
    builder.add_edge("notes", "review")
    return builder.compile(checkpointer=saver)


def a_thread_with_everything(repo: Path) -> GitCheckpointSaver:
    """Two turns, a fork from the first one, then a turn waiting for review."""
    saver = GitCheckpointSaver(repo)
    graph = graph_of(saver, "one", "two", "fork answer", "three")
    graph.invoke({"messages": [HumanMessage("first")]}, config())
    graph.invoke({"messages": [HumanMessage("second")]}, config())
    after_first = next(s for s in graph.get_state_history(config())
                       if len(s.values.get("messages", [])) == 2 and not s.next)
    forked = graph.update_state(after_first.config, {"messages": [HumanMessage("other")]},
                                as_node=START)
    graph.invoke(None, forked)
    assert graph.invoke({"messages": [HumanMessage("review please")]}, config())[
        "__interrupt__"]
    return saver


def refs(repo: Path, prefix: str = "refs/") -> dict[str, str]:
    out = subprocess.run(["git", "--git-dir", str(repo), "for-each-ref",
                          "--format=%(refname) %(objectname)", prefix],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split(" ") for line in out.splitlines())


def thread_refs(repo: Path, thread: str = THREAD) -> dict[str, str]:
    return refs(repo, thread_prefix(thread))


def everything(saver: GitCheckpointSaver, thread: str = THREAD) -> list[Any]:
    """What LangGraph reads of a thread: every checkpoint of every namespace, newest first,
    with its values, metadata, parent and pending writes."""
    return [(t.config, t.parent_config, t.metadata, t.pending_writes, t.checkpoint)
            for t in saver.list(config(thread))]


def history(saver: GitCheckpointSaver, thread: str = THREAD) -> list[Any]:
    return list(graph_of(saver).get_state_history(config(thread)))


def namespaces(saver: GitCheckpointSaver) -> set[str]:
    return {t.config["configurable"]["checkpoint_ns"] for t in saver.list(config())}


def bare(path: Path) -> Path:
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    return path


@pytest.fixture
def sides(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Repositories A and B, each with `origin` at one bare remote."""
    a, b, remote = tmp_path / "a.git", tmp_path / "b.git", bare(tmp_path / "remote.git")
    for path in (a, b):
        sync.add_remote(GitSessionStore(path), "origin", str(remote))
    return a, b, remote


# ---- the whole thread travels -----------------------------------------------------------
def test_push_and_pull_carry_every_branch_namespace_and_pending_writes(sides) -> None:
    a, b, remote = sides
    saver_a = a_thread_with_everything(a)
    mine = thread_refs(a)
    assert len([r for r in mine if "/=/" in r and WRITES not in r]) == 2  # the fork
    assert any("/=notes" in r for r in mine) and any(WRITES in r for r in mine)
    report = sync.push(GitSessionStore(a))
    assert report.pushed == [THREAD] and not report.rejected
    assert refs(remote, "refs/langgraph/") == mine

    report = sync.pull(GitSessionStore(b))
    assert report.created == [THREAD] and not report.rejected
    assert thread_refs(b) == mine
    assert {r.replace("refs/remotes/origin/", "refs/", 1): oid
            for r, oid in refs(b, "refs/remotes/origin/langgraph/").items()} == mine
    saver_b = GitCheckpointSaver(b)
    assert everything(saver_b) == everything(saver_a)
    assert history(saver_b) == history(saver_a)
    assert namespaces(saver_b) == namespaces(saver_a) and len(namespaces(saver_a)) > 2
    for ns in namespaces(saver_a):
        wanted = {"configurable": {"thread_id": THREAD, "checkpoint_ns": ns}}
        assert list(saver_b.list(wanted)) == list(saver_a.list(wanted))
    assert sync.pull(GitSessionStore(b)).unchanged == [THREAD]
    assert sync.push(GitSessionStore(a)).unchanged == [THREAD]

    # B answers the review and goes on; A, whose saver read the thread before, sees it all
    waiting = saver_a.get_tuple(config()).config  # its pending writes: the interrupt
    assert saver_a.get_tuple(waiting).pending_writes
    graph_b = graph_of(saver_b, "four")
    resumed = graph_b.invoke(Command(resume="approved"), config())
    assert resumed["log"][-1] == "reviewed: approved"
    graph_b.invoke({"messages": [HumanMessage("thanks")]}, config())
    assert sync.push(GitSessionStore(b)).pushed == [THREAD]
    report = sync.pull(GitSessionStore(a))
    assert report.fetched == [THREAD] and not report.rejected
    # (first: a checkpoint A's index knew, whose writes ref the pull dropped as B's took them)
    assert saver_a.get_tuple(waiting).pending_writes == \
        GitCheckpointSaver(b).get_tuple(waiting).pending_writes
    assert everything(saver_a) == everything(GitCheckpointSaver(b))
    assert history(saver_a) == history(GitCheckpointSaver(b))
    for t in saver_b.list(config()):
        found = saver_a.get_tuple(t.config)
        assert found is not None and found.pending_writes == t.pending_writes
    assert GitSessionStore(a).load(THREAD).messages == GitSessionStore(b).load(THREAD).messages
    # the writes the resumed step took in hold no ref here, and (after A's next sync) there
    assert {r for r in thread_refs(a) if WRITES in r} == {r for r in thread_refs(b)
                                                          if WRITES in r}
    sync.sync(GitSessionStore(a))
    assert refs(remote, "refs/langgraph/") == thread_refs(a) == thread_refs(b)
    for repo in (a, b, remote):
        fsck_clean(repo)
    sync.remove_remote(GitSessionStore(b), "origin")
    assert not refs(b, "refs/remotes/")


def test_a_git_daemon_remote_carries_pending_writes_too(tmp_path: Path, daemon) -> None:
    served = daemon.bare("threads")
    a, b = tmp_path / "a.git", tmp_path / "b.git"
    saver_a = a_thread_with_everything(a)
    assert sync.push(GitSessionStore(a), served.url).pushed == [THREAD]
    assert refs(served.path, "refs/langgraph/") == thread_refs(a)
    assert not refs(served.path, "refs/sessionsgit-carrier/")
    assert sync.pull(GitSessionStore(b), served.url).created == [THREAD]
    assert everything(GitCheckpointSaver(b)) == everything(saver_a)
    # the writes grow here (a tree, no fast-forward: the remote still moves only from what
    # it advertised), then reach B, whose own writes refs (trees) the fetch negotiates with
    saver_a.put_writes(saver_a.get_tuple(config()).config, [("log", ["late"])], "extra-task")
    assert sync.push(GitSessionStore(a), served.url).pushed == [THREAD]
    assert refs(served.path, "refs/langgraph/") == thread_refs(a)
    assert sync.pull(GitSessionStore(b), served.url).fetched == [THREAD]
    assert everything(GitCheckpointSaver(b)) == everything(saver_a)
    assert not refs(served.path, "refs/sessionsgit-carrier/")
    fsck_clean(served.path)
    fsck_clean(b)


def test_many_refs_over_the_network_and_refs_of_no_session_are_never_taken_in(
        tmp_path: Path, daemon) -> None:
    served = daemon.bare("many")
    a = tmp_path / "a.git"
    saver = a_thread_with_everything(a)
    threads = sorted([THREAD, "other", "third"])
    saver.copy_thread(THREAD, "other")
    saver.copy_thread(THREAD, "third")
    graph_of(saver, "more").invoke(Command(resume="ok"), config("other"))
    assert len(refs(a, "refs/langgraph/")) > 16  # one refspec fetches them all
    sync.push(GitSessionStore(a), served.url)
    assert sync.pull(GitSessionStore(tmp_path / "b.git"), served.url).created == threads
    orphan = forge(served.path, "hash-object", "-w", "--stdin", data=b"of no session")
    forge(served.path, "update-ref", "refs/langgraph/nobody/=/x", orphan)
    c = GitSessionStore(tmp_path / "c.git")
    assert sync.pull(c, served.url).created == threads
    assert not c.repo.odb.exists(pygit2.Oid(hex=orphan)) and "nobody" not in str(refs(c.path))
    for repo in (tmp_path / "b.git", c.path):
        for thread in threads:
            assert everything(GitCheckpointSaver(repo), thread) == everything(saver, thread)
        fsck_clean(repo)


def test_a_long_thread_id_travels_under_its_hashed_name(sides) -> None:
    a, b, _remote = sides
    long_id = "a very long thread id " * 20
    saver = GitCheckpointSaver(a)
    graph_of(saver, "one").invoke({"messages": [HumanMessage("first")]}, config(long_id))
    assert "%%" in next(iter(thread_refs(a, long_id)))
    sync.push(GitSessionStore(a))
    assert sync.pull(GitSessionStore(b)).created == [long_id]
    assert everything(GitCheckpointSaver(b), long_id) == everything(saver, long_id)
    assert thread_refs(b, long_id) == thread_refs(a, long_id)


def test_a_fork_inside_the_thread_after_a_push_is_pushed_without_a_pull(sides) -> None:
    """The session branch follows the newest checkpoint onto the fork: no fast-forward of
    the remote's, yet a remote branch keeps what it pointed at, so the push moves it."""
    a, b, remote = sides
    saver = GitCheckpointSaver(a)
    graph = graph_of(saver, "one", "two", "fork answer")
    graph.invoke({"messages": [HumanMessage("first")]}, config())
    graph.invoke({"messages": [HumanMessage("second")]}, config())
    sync.sync(GitSessionStore(a))
    sync.sync(GitSessionStore(b))
    after_first = next(s for s in graph.get_state_history(config())
                       if len(s.values.get("messages", [])) == 2 and not s.next)
    graph.invoke(None, graph.update_state(after_first.config,
                                          {"messages": [HumanMessage("other")]}, as_node=START))
    old_head = refs(remote, "refs/heads/")
    report = sync.push(GitSessionStore(a))
    assert report.pushed == [THREAD] and not report.rejected, report
    assert refs(remote, "refs/heads/") == refs(a, "refs/heads/") != old_head
    report = sync.pull(GitSessionStore(b))
    assert report.fetched == [THREAD] and not report.diverged and not report.rejected
    assert [m.id for m in GitSessionStore(b).list()] == [THREAD]
    assert everything(GitCheckpointSaver(b)) == everything(saver)
    assert GitSessionStore(b).load(THREAD).messages == GitSessionStore(a).load(THREAD).messages


def test_a_thread_continued_elsewhere_and_pulled_back(sides) -> None:
    a, b, _remote = sides
    saver_a = GitCheckpointSaver(a)
    graph_of(saver_a, "one").invoke({"messages": [HumanMessage("first")]}, config())
    sync.sync(GitSessionStore(a))
    sync.sync(GitSessionStore(b))
    graph_of(GitCheckpointSaver(b), "two").invoke({"messages": [HumanMessage("second")]},
                                                  config())
    sync.sync(GitSessionStore(b))
    assert sync.sync(GitSessionStore(a)).fetched == [THREAD]
    graph = graph_of(saver_a, "three")  # the saver that existed before the pull
    result = graph.invoke({"messages": [HumanMessage("third")]}, config())
    assert [m.content for m in result["messages"]] == ["first", "one", "second", "two",
                                                       "third", "three"]
    sync.sync(GitSessionStore(a))
    sync.sync(GitSessionStore(b))
    assert everything(GitCheckpointSaver(b)) == everything(saver_a)


# ---- diverged ---------------------------------------------------------------------------
@pytest.mark.parametrize("newer", ["a", "b"])
def test_both_sides_went_on_from_one_checkpoint_and_keep_both(sides, newer: str) -> None:
    a, b, remote = sides
    graph_of(GitCheckpointSaver(a), "one").invoke({"messages": [HumanMessage("first")]},
                                                  config())
    sync.sync(GitSessionStore(a))
    sync.sync(GitSessionStore(b))
    order = [(a, "from A"), (b, "from B")]
    for repo, text in order if newer == "b" else order[::-1]:  # the later one is newer
        graph_of(GitCheckpointSaver(repo), f"{text}: answer").invoke(
            {"messages": [HumanMessage(text)]}, config())
    ids = {repo: {(t.config["configurable"]["checkpoint_ns"], t.checkpoint["id"])
                  for t in GitCheckpointSaver(repo).list(config())} for repo in (a, b)}
    assert ids[a] != ids[b]

    sync.sync(GitSessionStore(b))
    report = sync.sync(GitSessionStore(a))
    assert [thread for thread, _ref in report.diverged_threads] == [THREAD]
    assert not report.diverged and not report.rejected, report
    assert f"diverged: thread {THREAD} keeps both checkpoint branches (the local one is " \
        f"{report.diverged_threads[0][1]})" in render.sync_summary([report.to_dict()])
    report = sync.sync(GitSessionStore(b))
    assert not report.diverged and not report.rejected, report

    for repo in (a, b):
        saver = GitCheckpointSaver(repo)
        for ns, checkpoint_id in ids[a] | ids[b]:
            found = saver.get_tuple(config(checkpoint_ns=ns, checkpoint_id=checkpoint_id))
            assert found is not None and found.checkpoint["id"] == checkpoint_id
        assert [m.id for m in GitSessionStore(repo).list()] == [THREAD]  # no fork session
    assert everything(GitCheckpointSaver(a)) == everything(GitCheckpointSaver(b))
    assert thread_refs(a) == thread_refs(b) == refs(remote, "refs/langgraph/")
    assert refs(a, "refs/heads/") == refs(b, "refs/heads/") == refs(remote, "refs/heads/")
    latest = GitCheckpointSaver(a).get_tuple(config()).checkpoint["channel_values"]["messages"]
    assert latest[-1].content == f"from {newer.upper()}: answer"
    assert GitSessionStore(a).load(THREAD).messages[-1]["data"]["content"] == \
        f"from {newer.upper()}: answer"  # the session branch: the latest too

    # going on from the latest on either side converges again without another fork
    graph_of(GitCheckpointSaver(a), "later").invoke({"messages": [HumanMessage("on")]},
                                                    config())
    assert not sync.sync(GitSessionStore(a)).rejected
    assert not sync.sync(GitSessionStore(b)).diverged_threads
    assert everything(GitCheckpointSaver(a)) == everything(GitCheckpointSaver(b))
    for repo in (a, b, remote):
        fsck_clean(repo)


def test_a_push_never_forces_a_diverged_branch(sides) -> None:
    a, b, remote = sides
    graph_of(GitCheckpointSaver(a), "one").invoke({"messages": [HumanMessage("first")]},
                                                  config())
    sync.sync(GitSessionStore(a))
    sync.sync(GitSessionStore(b))
    for repo in (b, a):
        graph_of(GitCheckpointSaver(repo), "more").invoke({"messages": [HumanMessage("x")]},
                                                          config())
    sync.push(GitSessionStore(b))
    before = refs(remote)
    report = sync.push(GitSessionStore(a))
    assert sorted(why.split(":")[0] for thread, why in report.rejected) == [
        "LangGraph ref =/" + next(r for r in thread_refs(a) if "/=/" in r).rsplit("/", 1)[1],
        "the remote has changes not pulled here; pull first"]
    after = refs(remote)
    assert {r: after[r] for r in before} == before  # nothing there moved
    new = set(after) - set(before)  # A's subgraph namespaces and pending writes: new refs
    assert new and all("/=notes" in r or WRITES in r for r in new)
    report = sync.sync(GitSessionStore(a))
    assert report.diverged_threads and not report.rejected


# ---- a hostile remote -------------------------------------------------------------------
def forge(remote: Path, *args: str, data: bytes | None = None) -> str:
    return subprocess.run(["git", "-c", "user.name=Mallory", "-c", "user.email=m@example.com",
                           "--git-dir", str(remote), *args], input=data,
                          capture_output=True, check=True).stdout.decode().strip()


def forged_target(remote: Path, what: str, leaf: str) -> str:
    """An object for a LangGraph ref to name: what a hostile remote could send."""
    if what == "blob":
        return forge(remote, "hash-object", "-w", "--stdin", data=b"not a checkpoint")
    if what == "missing":
        return "1" * 40
    if what in ("bad tree", "huge blob", "commit as writes"):
        commit = forge(remote, "cat-file", "-p", leaf).split("\n")
        tree = commit[0].split(" ")[1]
        data = b"x" * (3 << 20) if what == "huge blob" else b"evil"
        blob = forge(remote, "hash-object", "-w", "--stdin", data=data)
        if what == "huge blob":
            return forge(remote, "mktree", data=f"100644 blob {blob}\ttask.0\n".encode())
        if what == "commit as writes":
            return leaf
        listing = forge(remote, "ls-tree", tree) + f"\n100644 blob {blob}\tevil\n"
        bad = forge(remote, "mktree", data=listing.encode())
        message = forge(remote, "log", "-1", "--format=%B", leaf)  # metadata and trailer
        return forge(remote, "commit-tree", bad, "-p", leaf, "-F", "-", data=message.encode())
    if what == "subtree in writes":
        inner = forge(remote, "mktree", data=b"")
        return forge(remote, "mktree", data=f"040000 tree {inner}\tnested\n".encode())
    raise AssertionError(what)


REASONS = {"blob": "points at a blob, not a commit", "missing": "is missing",
           "bad tree": "unexpected entry 'evil'", "huge blob": "3145728 bytes",
           "commit as writes": "name a commit, not a tree",
           "subtree in writes": "unexpected entry 'nested'",
           "root as subgraph": "no checkpoint of that namespace",
           "bad name": "is not the name of a checkpoint branch"}


@pytest.mark.parametrize("what", sorted(REASONS))
def test_a_hostile_langgraph_ref_is_refused_and_nothing_here_changes(
        sides, what: str, monkeypatch) -> None:
    monkeypatch.setenv("SESSIONSGIT_MAX_BLOB_BYTES", str(2 << 20))
    a, b, remote = sides
    saver_a = a_thread_with_everything(a)
    graph_of(saver_a).invoke(Command(resume="fine"), config())
    sync.push(GitSessionStore(a))
    sync.pull(GitSessionStore(b))
    graph_of(saver_a, "more").invoke({"messages": [HumanMessage("again")]}, config())
    sync.push(GitSessionStore(a))  # a healthy update of the thread, beside the forged ref
    before, seen = refs(b), everything(GitCheckpointSaver(b))
    prefix = thread_prefix(THREAD)
    leaf = next(oid for name, oid in refs(remote, prefix).items() if "/=/" in name)
    if what == "root as subgraph":
        name, target = f"{prefix}=notes%3Aforged/x", leaf
    elif what == "bad name":
        name, target = f"{prefix}=/nested/path", leaf
    elif what in ("huge blob", "commit as writes", "subtree in writes"):
        name, target = f"{prefix}w/=/forged", forged_target(remote, what, leaf)
    else:
        name, target = f"{prefix}=/forged", forged_target(remote, what, leaf)
    ref_file = remote / name
    ref_file.parent.mkdir(parents=True, exist_ok=True)
    ref_file.write_text(target + "\n")  # as a file: update-ref refuses most of these

    report = sync.pull(GitSessionStore(b))
    assert [thread for thread, _why in report.rejected] == [THREAD], report
    why = report.rejected[0][1]
    assert why.startswith("not taken in") and "LangGraph ref" in why, why
    assert REASONS[what] in why, why
    assert refs(b) == before  # not even the healthy update: the thread is refused whole
    assert everything(GitCheckpointSaver(b)) == seen
    assert not list((b / "sessionsgit-quarantine").iterdir())
    fsck_clean(b)
    result = CliRunner().invoke(cli, ["--repo", str(b), "pull"])
    assert result.exit_code == 0 and "Traceback" not in result.output
    assert "not taken in" in result.output
    report = sync.sync(GitSessionStore(b))  # reported once, never pushed over
    assert [thread for thread, _why in report.rejected] == [THREAD]
    assert refs(remote, name) == {name: target}


# ---- prune ------------------------------------------------------------------------------
def test_pull_prune_deletes_a_branch_deleted_there_unless_it_moved_here(sides) -> None:
    a, b, remote = sides
    a_thread_with_everything(a)
    sync.sync(GitSessionStore(a))
    sync.sync(GitSessionStore(b))
    branches = sorted(r for r in refs(remote, thread_prefix(THREAD)) if "/=notes" in r)
    gone, moved = branches[0], branches[1]
    head = refs(remote, "refs/heads/")[next(iter(refs(remote, "refs/heads/")))]
    at_head = next(r for r, oid in refs(remote, thread_prefix(THREAD)).items() if oid == head)
    for ref in (gone, moved, at_head):
        forge(remote, "update-ref", "-d", ref)
    store_b = GitSessionStore(b)
    tip = store_b.ref_target(moved)
    child = store_b.repo.create_commit(None, store_b.repo[tip].author,
                                       store_b.repo[tip].committer, "moved here",
                                       store_b.repo[tip].tree_id, [tip])
    assert store_b.move_ref(moved, child, tip)

    assert sync.pull(GitSessionStore(b)).unchanged == [THREAD]  # without prune: a union
    assert gone in refs(b)
    sync.pull(GitSessionStore(b), prune=True)
    assert gone not in refs(b) and refs(b)[moved] == str(child)
    assert refs(b)[at_head] == head  # never the branch that holds the session's head


def test_a_thread_deleted_with_prune_goes_on_the_other_side_with_every_branch(sides) -> None:
    a, b, remote = sides
    saver_a = a_thread_with_everything(a)
    before = {t.checkpoint["id"] for t in saver_a.list(config())}
    sync.sync(GitSessionStore(a))
    sync.sync(GitSessionStore(b))
    GitCheckpointSaver(b).delete_thread(THREAD)
    assert sync.sync(GitSessionStore(b), prune=True).pruned == [THREAD]
    assert not refs(remote, "refs/langgraph/") and not refs(remote, "refs/heads/")
    assert sync.sync(GitSessionStore(a), prune=True).pruned == [THREAD]
    assert not refs(a, "refs/langgraph/") and GitCheckpointSaver(a).get_tuple(config()) is None
    GitSessionStore(a).restore(THREAD)  # the trash kept every branch
    assert {t.checkpoint["id"] for t in GitCheckpointSaver(a).list(config())} == before


# ---- the CLI and the module's own rules -----------------------------------------------------
def test_the_cli_push_and_pull_carry_the_thread(tmp_path: Path) -> None:
    a, b, remote = tmp_path / "a.git", tmp_path / "b.git", bare(tmp_path / "remote.git")
    saver_a = a_thread_with_everything(a)
    runner = CliRunner()
    pushed = runner.invoke(cli, ["--repo", str(a), "push", str(remote)])
    assert pushed.exit_code == 0 and "pushed 1" in pushed.output, pushed.output
    assert runner.invoke(cli, ["--repo", str(b), "init"]).exit_code == 0
    pulled = runner.invoke(cli, ["--repo", str(b), "pull", str(remote)])
    assert pulled.exit_code == 0 and "created 1" in pulled.output, pulled.output
    assert everything(GitCheckpointSaver(b)) == everything(saver_a)
    assert thread_refs(b) == thread_refs(a)

    for repo, text in ((a, "from A"), (b, "from B")):  # both go on from the same checkpoint
        graph_of(GitCheckpointSaver(repo), text).invoke({"messages": [HumanMessage(text)]},
                                                        config())
    assert runner.invoke(cli, ["--repo", str(b), "sync", str(remote)]).exit_code == 0
    synced = runner.invoke(cli, ["--repo", str(a), "pull", str(remote), "--json"])
    assert synced.exit_code == 0, synced.output
    [(thread, branch)] = json.loads(synced.output)["diverged_threads"]
    assert thread == THREAD and f"{thread_prefix(THREAD)}{branch}" in thread_refs(a)
    synced = runner.invoke(cli, ["--repo", str(a), "sync", str(remote)])
    assert synced.exit_code == 0 and "pushed 1" in synced.output, synced.output
    synced = runner.invoke(cli, ["--repo", str(b), "sync", str(remote)])
    assert synced.exit_code == 0 and "fetched 1" in synced.output, synced.output
    assert everything(GitCheckpointSaver(a)) == everything(GitCheckpointSaver(b))


def test_sync_never_imports_langgraph() -> None:
    code = ("import sys, sessionsgit, sessionsgit.sync, sessionsgit.integrations.langgraph_sync; "
            "assert not [m for m in sys.modules if m.split('.')[0] in "
            "('langgraph', 'langchain_core')], 'langgraph imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_layout_names_are_the_saver_s() -> None:
    from sessionsgit.integrations import langgraph

    assert (langgraph_sync.LG_DIR, langgraph_sync.PARENT_WRITES, langgraph_sync.LATE_WRITES) \
        == (langgraph.LG_DIR, langgraph.PARENT_WRITES, langgraph.LATE_WRITES)
