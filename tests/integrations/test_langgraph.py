"""GitCheckpointSaver with real LangGraph graphs, a real Git repository and the real ``git`` and
``sessionsgit`` command lines (offline: ``GenericFakeChatModel`` answers)."""

from __future__ import annotations

import asyncio
import json
import operator
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

pytest.importorskip("langgraph.graph")

from click.testing import CliRunner  # noqa: E402
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage  # noqa: E402
from langgraph.graph import START, MessagesState, StateGraph  # noqa: E402

from sessionsgit import GitSessionStore, SessionConflictError  # noqa: E402
from sessionsgit.cli import cli  # noqa: E402
from sessionsgit.integrations.langgraph import GitCheckpointSaver  # noqa: E402

THREAD = "user:42/trip planning"


def answers(*texts: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(content=t) for t in texts]))


def chat_graph(saver: GitCheckpointSaver, model: GenericFakeChatModel) -> Any:
    def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", call_model)
    builder.add_edge(START, "model")
    return builder.compile(checkpointer=saver)


def config(thread: str = THREAD, **extra: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread, **extra}}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def fsck_clean(repo: Path) -> None:
    result = subprocess.run(["git", "-C", str(repo), "fsck", "--strict", "--no-dangling"],
                            capture_output=True, text=True)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if line.strip() and not line.startswith("notice: HEAD points to an unborn")]
    assert result.returncode == 0 and not problems, problems


def show(repo: Path, thread: str) -> str:
    result = CliRunner().invoke(cli, ["--repo", str(repo), "show", thread])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return tmp_path / "threads.git"


def test_import_sessionsgit_never_imports_langgraph() -> None:
    code = ("import sys, sessionsgit, sessionsgit.integrations; "
            "assert not [m for m in sys.modules if m.split('.')[0] in "
            "('langgraph', 'langchain_core')], 'langgraph imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## LangGraph"):]
    code = section[section.index("```python\n") + 10:section.index("```\n", section.index(
        "```python\n") + 10)]
    assert len(code.strip().splitlines()) <= 12
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert "Take tram 28." in show(tmp_path / "threads.git", THREAD)


def test_example_script_runs(tmp_path: Path) -> None:
    script = Path(__file__).parents[2] / "examples" / "langgraph_chat.py"
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "demo.git")],
                         capture_output=True, text=True, check=True).stdout
    assert "fork: Porto is lovely too." in out
    fsck_clean(tmp_path / "demo.git")


def test_conformance_suite_passes_every_capability(tmp_path: Path) -> None:
    from langgraph.checkpoint.conformance import checkpointer_test, validate

    count = iter(range(100))

    @checkpointer_test(name="GitCheckpointSaver")
    async def factory():  # type: ignore[no-untyped-def]
        yield GitCheckpointSaver(tmp_path / f"conformance-{next(count)}")

    report = asyncio.run(validate(factory))
    failures = {name: r.failures for name, r in report.results.items() if r.failures}
    assert report.passed_all(), failures
    for capability in ("copy_thread", "delete_for_runs", "prune", "put", "put_writes",
                       "get_tuple", "list", "delete_thread"):
        assert report.results[capability].detected and report.results[capability].passed


def test_chat_history_show_and_git_log(repo: Path) -> None:
    saver = GitCheckpointSaver(repo)
    graph = chat_graph(saver, answers("Lisbon is lovely in May.", "Take the tram 28.",
                                      "Pastéis de nata, of course."))
    for question in ("Where should I go?", "How do I get around?", "What should I eat?"):
        graph.invoke({"messages": [HumanMessage(question)]}, config())
    state = graph.get_state(config())
    assert [m.content for m in state.values["messages"]] == [
        "Where should I go?", "Lisbon is lovely in May.", "How do I get around?",
        "Take the tram 28.", "What should I eat?", "Pastéis de nata, of course."]
    history = list(graph.get_state_history(config()))
    assert len(history) == 9  # input, START and model step for each of three turns
    assert [len(s.values.get("messages", [])) for s in history[:3]] == [6, 5, 4]

    text = show(repo, THREAD)
    for line in ("Where should I go?", "Lisbon is lovely in May.", "Pastéis de nata"):
        assert line in text
    assert "user" in text.lower() and "assistant" in text.lower()
    branch = "sessions/user%3A42%2Ftrip%20planning"
    log = git(repo, "log", "--format=%s", branch).splitlines()
    assert len(log) == 9  # one commit per checkpoint: no commits for pending writes
    assert log[0].startswith("assistant") and "nata" in log[0]
    # one blob per message, shared by every checkpoint that holds it
    tree = git(repo, "ls-tree", "-r", "--name-only", branch)
    assert "messages/0000/000005.json" in tree and "langgraph/checkpoint" in tree
    first = git(repo, "rev-parse", f"{branch}:messages/0000/000000.json")
    assert git(repo, "rev-parse", f"{branch}~3:messages/0000/000000.json") == first
    fsck_clean(repo)


def test_replay_and_fork_inside_a_thread_keep_the_original(repo: Path) -> None:
    saver = GitCheckpointSaver(repo)
    graph = chat_graph(saver, answers("one", "two", "fork answer"))
    graph.invoke({"messages": [HumanMessage("first")]}, config())
    graph.invoke({"messages": [HumanMessage("second")]}, config())
    history = list(graph.get_state_history(config()))
    after_first = next(s for s in history if len(s.values.get("messages", [])) == 2
                       and not s.next)
    # replay: same checkpoint, no new model call
    replayed = graph.invoke(None, after_first.config)
    assert [m.content for m in replayed["messages"]] == ["first", "one"]
    # fork: edit the old state, run on from it
    forked = graph.update_state(after_first.config, {"messages": [HumanMessage("other")]},
                                as_node=START)
    result = graph.invoke(None, forked)
    assert [m.content for m in result["messages"]] == ["first", "one", "other", "fork answer"]
    # latest is the fork; the original branch is intact and reachable
    assert graph.get_state(config()).values["messages"][-1].content == "fork answer"
    contents = {tuple(m.content for m in s.values.get("messages", []))
                for s in graph.get_state_history(config())}
    assert ("first", "one", "second", "two") in contents
    assert ("first", "one", "other", "fork answer") in contents
    leaves = git(repo, "for-each-ref", "--format=%(refname)", "refs/langgraph/").split()
    assert len([r for r in leaves if "/w/" not in r]) >= 2  # the fork and the original
    subprocess.run(["git", "-C", str(repo), "gc", "--prune=now", "-q"], check=True)
    fresh = chat_graph(GitCheckpointSaver(repo), answers())
    assert len(list(fresh.get_state_history(config()))) == len(
        list(graph.get_state_history(config())))
    fsck_clean(repo)


def test_copy_delete_restore_and_a_fresh_process(repo: Path) -> None:
    saver = GitCheckpointSaver(repo)
    graph = chat_graph(saver, answers("hello", "again"))
    graph.invoke({"messages": [HumanMessage("hi")]}, config())
    graph.invoke({"messages": [HumanMessage("more")]}, config())
    saver.copy_thread(THREAD, "copy")
    original = [c.checkpoint["id"] for c in saver.list(config())]
    assert [c.checkpoint["id"] for c in saver.list(config("copy"))] == original
    assert "again" in show(repo, "copy")

    script = textwrap.dedent(f"""
        from sessionsgit.integrations.langgraph import GitCheckpointSaver
        saver = GitCheckpointSaver({str(repo)!r})
        latest = saver.get_tuple({{"configurable": {{"thread_id": {THREAD!r}}}}})
        print(len(list(saver.list({{"configurable": {{"thread_id": "copy"}}}}))))
        print("|".join(m.content for m in latest.checkpoint["channel_values"]["messages"]))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == str(len(original)) and out[1] == "hi|hello|more|again"

    saver.delete_thread(THREAD)
    assert saver.get_tuple(config()) is None and list(saver.list(config())) == []
    assert len(list(saver.list(config("copy")))) == len(original)  # the copy is independent
    GitSessionStore(repo).restore(THREAD)  # the trash kept it
    back = GitCheckpointSaver(repo)
    assert [c.checkpoint["id"] for c in back.list(config())] == original
    fsck_clean(repo)


def test_async_graph_and_subgraph_namespace(repo: Path) -> None:
    class Inner(TypedDict):
        log: Annotated[list[str], operator.add]

    inner = StateGraph(Inner)
    inner.add_node("step", lambda state: {"log": ["inner ran"]})
    inner.add_edge(START, "step")

    outer = StateGraph(Inner)
    outer.add_node("sub", inner.compile())
    outer.add_node("after", lambda state: {"log": ["outer ran"]})
    outer.add_edge(START, "sub")
    outer.add_edge("sub", "after")
    saver = GitCheckpointSaver(repo)
    graph = outer.compile(checkpointer=saver)

    async def run() -> tuple[dict[str, Any], list[Any]]:
        result = await graph.ainvoke({"log": []}, config("sub"))
        history = [s async for s in graph.aget_state_history(config("sub"))]
        return result, history

    result, history = asyncio.run(run())
    assert result["log"] == ["inner ran", "outer ran"]
    assert history and history[0].values["log"] == ["inner ran", "outer ran"]
    namespaces = {c.config["configurable"]["checkpoint_ns"]
                  for c in saver.list({"configurable": {"thread_id": "sub"}})}
    assert "" in namespaces and any(ns.startswith("sub:") for ns in namespaces)
    saver.delete_thread("sub")
    assert list(saver.list({"configurable": {"thread_id": "sub"}})) == []
    fsck_clean(repo)


def test_create_agent_with_a_tool_call(repo: Path) -> None:
    langchain_agents = pytest.importorskip("langchain.agents")
    from langchain_core.tools import tool

    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    class ToolModel(GenericFakeChatModel):
        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self

    model = ToolModel(messages=iter([
        AIMessage(content="", tool_calls=[{"name": "weather", "args": {"city": "Lisbon"},
                                           "id": "call_1"}]),
        AIMessage(content="It is sunny in Lisbon."),
    ]))
    agent = langchain_agents.create_agent(model, tools=[weather],
                                          checkpointer=GitCheckpointSaver(repo))
    result = agent.invoke({"messages": [HumanMessage("Weather in Lisbon?")]}, config("agent"))
    kinds = [type(m) for m in result["messages"]]
    assert kinds == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    fresh = GitCheckpointSaver(repo).get_tuple(config("agent"))
    messages = fresh.checkpoint["channel_values"]["messages"]
    assert messages[1].tool_calls[0]["args"] == {"city": "Lisbon"}
    assert messages[2].content == "sunny in Lisbon"
    text = show(repo, "agent")
    assert "weather" in text and "It is sunny in Lisbon." in text
    fsck_clean(repo)


def test_soak_200_turns_async_durability_loses_nothing(repo: Path) -> None:
    turns = 200
    saver = GitCheckpointSaver(repo)
    graph = chat_graph(saver, answers(*(f"answer {i} " + "word " * 20 for i in range(turns))))
    for i in range(turns):
        graph.invoke({"messages": [HumanMessage(f"question {i}")]}, config("soak"),
                     durability="async")
    fresh = GitCheckpointSaver(repo)
    latest = fresh.get_tuple(config("soak"))
    messages = latest.checkpoint["channel_values"]["messages"]
    assert len(messages) == 2 * turns
    assert [m.content for m in messages[::2]] == [f"question {i}" for i in range(turns)]
    # every checkpoint is a commit on the thread's branch, each id once
    trailers = [line for line in git(repo, "log", "--format=%B", "sessions/soak").splitlines()
                if line.startswith("Langgraph-Checkpoint: ")]
    ids = [json.loads(line.split(": ", 1)[1])["id"] for line in trailers]
    assert len(ids) == 3 * turns and len(set(ids)) == len(ids)
    oldest = ids[-1]
    assert fresh.get_tuple(config("soak", checkpoint_id=oldest)).checkpoint["id"] == oldest
    assert [c.checkpoint["id"] for c in fresh.list(config("soak"), limit=10)] == ids[:10]
    store = GitSessionStore(repo)
    assert store.load("soak").metadata.message_count == 2 * turns
    fsck_clean(repo)


def test_two_processes_on_one_thread_and_their_own_lose_nothing(repo: Path) -> None:
    GitCheckpointSaver(repo)  # create the repository
    script = textwrap.dedent(f"""
        import sys
        from langgraph.checkpoint.conformance.test_utils import (
            generate_checkpoint, generate_config, generate_metadata)
        from sessionsgit.integrations.langgraph import GitCheckpointSaver
        saver = GitCheckpointSaver({str(repo)!r})
        parent = None
        for i in range(40):
            cfg = generate_config("shared")
            if parent:
                cfg["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
            parent = saver.put(cfg, generate_checkpoint(channel_values={{"x": i}},
                                                        channel_versions={{"x": i + 1}}),
                               generate_metadata(step=i, writer=sys.argv[1]), {{"x": i + 1}})
            saver.put_writes(parent, [("x", i)], f"task-{{sys.argv[1]}}")
            own = generate_config("own-" + sys.argv[1])
            if i:
                own["configurable"]["checkpoint_id"] = mine["configurable"]["checkpoint_id"]
            mine = saver.put(own, generate_checkpoint(), generate_metadata(step=i), {{}})
    """)
    workers = [subprocess.Popen([sys.executable, "-c", script, str(n)]) for n in range(2)]
    assert all(w.wait(timeout=120) == 0 for w in workers)
    saver = GitCheckpointSaver(repo)
    found = list(saver.list(config("shared")))
    assert len(found) == 80
    assert {c.metadata["writer"] for c in found} == {"0", "1"}
    assert all(len(c.pending_writes) == 1 for c in found)
    for n in range(2):  # and each its own thread beside it
        assert len(list(saver.list(config(f"own-{n}")))) == 40
    fsck_clean(repo)


def test_a_session_that_is_no_thread_is_left_alone(repo: Path) -> None:
    store = GitSessionStore(repo)
    store.save("notes", [{"role": "user", "content": "mine"}])
    saver = GitCheckpointSaver(store)
    graph = chat_graph(saver, answers("x"))
    with pytest.raises(SessionConflictError):
        graph.invoke({"messages": [HumanMessage("hi")]}, config("notes"))
    assert store.load("notes").messages == [{"role": "user", "content": "mine"}]


def test_the_index_is_a_cache_and_never_outlives_its_thread(repo: Path) -> None:
    from langgraph.checkpoint.conformance.test_utils import (generate_checkpoint,
                                                             generate_config, generate_metadata)
    writer, reader = GitCheckpointSaver(repo), GitCheckpointSaver(repo)
    old = writer.put(generate_config("t"), generate_checkpoint(), generate_metadata(), {})
    assert reader.get_tuple(old) is not None  # the reader has read the index now
    for index in (repo / "sessionsgit" / "langgraph").iterdir():
        index.unlink()
    assert GitCheckpointSaver(repo).get_tuple(old).config == old  # found by walking the thread
    writer.delete_thread("t")
    writer.put(generate_config("t"), generate_checkpoint(), generate_metadata(), {})
    assert reader.get_tuple(old) is None  # the same thread id, made anew
    assert len(list(reader.list(config("t")))) == 1


def test_a_thread_pushed_and_pulled_reads_back_elsewhere(tmp_path: Path) -> None:
    from sessionsgit import sync

    here, remote, there = tmp_path / "here.git", tmp_path / "remote.git", tmp_path / "there.git"
    graph = chat_graph(GitCheckpointSaver(here), answers("hello", "again"))
    graph.invoke({"messages": [HumanMessage("hi")]}, config())
    graph.invoke({"messages": [HumanMessage("more")]}, config())
    ours = [c.checkpoint["id"] for c in GitCheckpointSaver(here).list(config())]
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    sync.add_remote(GitSessionStore(here), "origin", str(remote))
    sync.push(GitSessionStore(here), "origin")
    elsewhere = GitSessionStore(there)
    sync.add_remote(elsewhere, "origin", str(remote))
    sync.pull(elsewhere, "origin")
    saver = GitCheckpointSaver(elsewhere)
    assert [c.checkpoint["id"] for c in saver.list(config())] == ours
    graph = chat_graph(saver, answers("from there"))
    result = graph.invoke({"messages": [HumanMessage("and there?")]}, config())
    assert [m.content for m in result["messages"]] == ["hi", "hello", "more", "again",
                                                       "and there?", "from there"]
    fsck_clean(there)


def test_blobs_remembered_by_the_saver_are_written_again_after_a_prune(repo: Path) -> None:
    saver = GitCheckpointSaver(repo)
    graph = chat_graph(saver, answers("first answer", "second answer"))
    question = HumanMessage("same question", id="q-1")
    graph.invoke({"messages": [question]}, config("a"))
    saver.delete_thread("a")
    saver.store.purge()
    saver.store.gc(prune=0)  # the thread's objects are gone for good
    graph.invoke({"messages": [question]}, config("b"))  # the same message, the same process
    fresh = GitCheckpointSaver(repo).get_tuple(config("b"))
    assert [m.content for m in fresh.checkpoint["channel_values"]["messages"]] == [
        "same question", "second answer"]
    fsck_clean(repo)


def test_a_pull_refuses_a_langgraph_subtree_with_a_symlink(tmp_path: Path) -> None:
    import pygit2

    from sessionsgit import sync

    here, remote, there = tmp_path / "here.git", tmp_path / "remote.git", tmp_path / "there.git"
    chat_graph(GitCheckpointSaver(here), answers("hello")).invoke(
        {"messages": [HumanMessage("hi")]}, config())
    store = GitSessionStore(here)
    repo = store.repo
    head = repo.references["refs/heads/sessions/user%3A42%2Ftrip%20planning"]
    commit = repo[head.target]
    lg = repo.TreeBuilder(repo[commit.tree["langgraph"].id])
    lg.insert("evil", repo.create_blob(b"/etc/passwd"), pygit2.GIT_FILEMODE_LINK)
    root = repo.TreeBuilder(commit.tree)
    root.insert("langgraph", lg.write(), pygit2.GIT_FILEMODE_TREE)
    forged = repo.create_commit(None, commit.author, commit.committer, commit.message,
                                root.write(), [commit.id])
    head.set_target(forged)
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    sync.add_remote(store, "origin", str(remote))
    sync.push(store, "origin")
    elsewhere = GitSessionStore(there)
    sync.add_remote(elsewhere, "origin", str(remote))
    report = sync.pull(elsewhere, "origin")
    assert report.rejected and "unexpected entry 'evil'" in report.rejected[0][1]
    assert not elsewhere.exists(THREAD)


def test_writes_that_land_after_the_next_checkpoint_leave_no_ref_behind(repo: Path) -> None:
    """With durability="async" a step's writes can land after the next checkpoint was put;
    the checkpoint after that takes them in, so writes refs do not pile up (every read that
    lists a thread's refs would grow with it) and no write is lost, index or not."""
    turns = 25
    saver = GitCheckpointSaver(repo)
    graph = chat_graph(saver, answers(*(f"answer {i}" for i in range(turns))))
    for i in range(turns):
        graph.invoke({"messages": [HumanMessage(f"question {i}")]}, config("late"),
                     durability="async")

    def writes_by_id(reader: GitCheckpointSaver) -> dict[str, list[tuple[str, str]]]:
        return {t.checkpoint["id"]: [(task, channel) for task, channel, _v in t.pending_writes]
                for t in reader.list(config("late"))}

    seen = writes_by_id(saver)
    assert len(seen) == 3 * turns
    assert sum(1 for w in seen.values() if w) == 2 * turns  # input and model steps: all kept
    writes_refs = [line for line in git(repo, "for-each-ref", "--format=%(refname)",
                                        "refs/langgraph/").splitlines() if "/w/" in line]
    assert len(writes_refs) <= 1, writes_refs  # at most the last step's, with no grandchild
    for index in (repo / "sessionsgit" / "langgraph").iterdir():
        index.unlink()
    assert writes_by_id(GitCheckpointSaver(repo)) == seen  # found again by walking the thread
    fsck_clean(repo)


def test_late_writes_are_taken_in_by_the_grandchild_and_all_read_back(repo: Path) -> None:
    from langgraph.checkpoint.conformance.test_utils import (generate_checkpoint,
                                                             generate_config, generate_metadata)
    saver = GitCheckpointSaver(repo)
    first = saver.put(generate_config("t"), generate_checkpoint(), generate_metadata(), {})
    saver.put_writes(first, [("a", 1)], "task-1")
    second = saver.put(first, generate_checkpoint(), generate_metadata(), {})
    saver.put_writes(first, [("b", 2)], "task-2")  # lands after its child was put
    writes_refs = lambda: [n for n in git(repo, "for-each-ref", "--format=%(refname)",  # noqa
                                          "refs/langgraph/t/w/").splitlines()]
    assert len(writes_refs()) == 1
    saver.put(second, generate_checkpoint(), generate_metadata(), {})
    assert writes_refs() == []
    expected = [("task-1", "a", 1), ("task-2", "b", 2)]
    assert saver.get_tuple(first).pending_writes == expected
    for index in (repo / "sessionsgit" / "langgraph").iterdir():
        index.unlink()
    assert GitCheckpointSaver(repo).get_tuple(first).pending_writes == expected
    fsck_clean(repo)


def test_a_message_changed_in_place_between_checkpoints_is_stored_as_changed(repo: Path) -> None:
    """Blobs of the parent's transcript are reused only for messages still equal to it."""
    from langgraph.checkpoint.conformance.test_utils import (generate_checkpoint,
                                                             generate_config, generate_metadata)
    saver = GitCheckpointSaver(repo)
    first_message = HumanMessage("before", id="m1")
    one = generate_checkpoint(channel_values={"messages": [first_message]},
                              channel_versions={"messages": "1"})
    first = saver.put(generate_config("t"), one, generate_metadata(), {"messages": "1"})
    first_message.content = "after"  # the caller changes the message it passed
    two = generate_checkpoint(channel_values={"messages": [first_message, AIMessage("hi", id="m2")]},
                              channel_versions={"messages": "2"})
    second = saver.put(first, two, generate_metadata(), {"messages": "2"})
    for reader in (saver, GitCheckpointSaver(repo)):
        assert [m.content for m in
                reader.get_tuple(first).checkpoint["channel_values"]["messages"]] == ["before"]
        assert [m.content for m in reader.get_tuple(second).checkpoint["channel_values"]
                ["messages"]] == ["after", "hi"]


def test_the_cli_delete_of_a_thread_trashes_every_branch_and_restore_brings_it_back(
        repo: Path) -> None:
    saver = GitCheckpointSaver(repo)
    graph = chat_graph(saver, answers("one", "two", "fork answer"))
    graph.invoke({"messages": [HumanMessage("first")]}, config())
    graph.invoke({"messages": [HumanMessage("second")]}, config())
    after_first = next(s for s in graph.get_state_history(config())
                       if len(s.values.get("messages", [])) == 2 and not s.next)
    graph.invoke(None, graph.update_state(after_first.config,
                                          {"messages": [HumanMessage("other")]}, as_node=START))
    before = sorted(c.checkpoint["id"] for c in saver.list(config()))
    runner = CliRunner()
    result = runner.invoke(cli, ["--repo", str(repo), "delete", THREAD])
    assert result.exit_code == 0, result.output
    assert git(repo, "for-each-ref", "refs/langgraph/") == ""
    assert not list((repo / "sessionsgit" / "langgraph").glob("*.idx"))
    assert GitCheckpointSaver(repo).get_tuple(config()) is None
    subprocess.run(["git", "-C", str(repo), "gc", "--prune=now", "-q"], check=True)
    fsck_clean(repo)
    result = runner.invoke(cli, ["--repo", str(repo), "restore", THREAD])
    assert result.exit_code == 0, result.output
    assert sorted(c.checkpoint["id"] for c in GitCheckpointSaver(repo).list(config())) == before
    # a session that is no thread is deleted as before
    GitSessionStore(repo).save("plain", [{"role": "user", "content": "hi"}])
    assert runner.invoke(cli, ["--repo", str(repo), "delete", "plain"]).exit_code == 0
    assert GitSessionStore(repo).load("plain") is None


def test_late_writes_survive_dropping_the_checkpoint_that_took_them_in(repo: Path) -> None:
    from langgraph.checkpoint.conformance.test_utils import (generate_checkpoint,
                                                             generate_config, generate_metadata)
    saver = GitCheckpointSaver(repo)
    first = saver.put(generate_config("t"), generate_checkpoint(),
                      generate_metadata(run_id="keep"), {})
    saver.put_writes(first, [("a", 1)], "task-1")
    second = saver.put(first, generate_checkpoint(), generate_metadata(run_id="drop"), {})
    saver.put_writes(first, [("b", 2)], "task-2")
    saver.put(second, generate_checkpoint(), generate_metadata(run_id="drop"), {})
    saver.delete_for_runs(["drop"])
    assert [t.config["configurable"]["checkpoint_id"] for t in saver.list(config("t"))] == \
        [first["configurable"]["checkpoint_id"]]
    expected = [("task-1", "a", 1), ("task-2", "b", 2)]
    assert saver.get_tuple(first).pending_writes == expected
    assert GitCheckpointSaver(repo).get_tuple(first).pending_writes == expected
    fsck_clean(repo)


def test_a_copy_s_index_is_one_line_and_outlives_its_source(repo: Path) -> None:
    saver = GitCheckpointSaver(repo)
    graph = chat_graph(saver, answers(*(f"answer {i}" for i in range(5))))
    for i in range(5):
        graph.invoke({"messages": [HumanMessage(f"question {i}")]}, config("src"))
    ids = [t.checkpoint["id"] for t in saver.list(config("src"))]
    saver.copy_thread("src", "copy")
    saver.copy_thread("copy", "copy of copy")
    index_dir = repo / "sessionsgit" / "langgraph"
    assert len((index_dir / "copy.idx").read_bytes().splitlines()) == 2  # header + one line
    for reader in (saver, GitCheckpointSaver(repo)):
        for thread in ("copy", "copy of copy"):
            assert [reader.get_tuple(config(thread, checkpoint_id=i)).checkpoint["id"]
                    for i in ids] == ids
    saver.delete_thread("src")
    saver.delete_thread("copy")
    fresh = GitCheckpointSaver(repo)
    assert [fresh.get_tuple(config("copy of copy", checkpoint_id=i)).checkpoint["id"]
            for i in ids] == ids
    assert fresh.get_tuple(config("src", checkpoint_id=ids[0])) is None
    fsck_clean(repo)


def test_a_thread_with_late_writes_passes_a_pull_s_validation(tmp_path: Path) -> None:
    from langgraph.checkpoint.conformance.test_utils import (generate_checkpoint,
                                                             generate_config, generate_metadata)

    from sessionsgit import sync
    here, remote, there = tmp_path / "here.git", tmp_path / "remote.git", tmp_path / "there.git"
    saver = GitCheckpointSaver(here)
    first = saver.put(generate_config("t"), generate_checkpoint(), generate_metadata(), {})
    second = saver.put(first, generate_checkpoint(), generate_metadata(), {})
    saver.put_writes(first, [("b", 2)], "task-2")  # late: taken in by the next checkpoint
    saver.put(second, generate_checkpoint(), generate_metadata(), {})
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    sync.add_remote(GitSessionStore(here), "origin", str(remote))
    sync.push(GitSessionStore(here), "origin")
    elsewhere = GitSessionStore(there)
    sync.add_remote(elsewhere, "origin", str(remote))
    report = sync.pull(elsewhere, "origin")
    assert not report.rejected, report.rejected
    assert GitCheckpointSaver(there).get_tuple(first).pending_writes == [("task-2", "b", 2)]


def test_the_viewer_deletes_a_thread_with_every_branch_as_the_cli_does(repo: Path) -> None:
    import re

    from sessionsgit.web.app import create_app
    saver = GitCheckpointSaver(repo)
    graph = chat_graph(saver, answers("one", "two"))
    graph.invoke({"messages": [HumanMessage("first")]}, config())
    graph.invoke({"messages": [HumanMessage("second")]}, config())
    before = sorted(c.checkpoint["id"] for c in saver.list(config()))
    client = create_app(repo).test_client()
    html = client.get(f"/session?id={THREAD}").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf is not None, html[:500]
    assert client.post("/delete", data={"id": THREAD, "csrf": csrf.group(1)}).status_code == 302
    assert git(repo, "for-each-ref", "refs/langgraph/") == ""
    assert GitCheckpointSaver(repo).get_tuple(config()) is None
    GitSessionStore(repo).restore(THREAD)
    assert sorted(c.checkpoint["id"] for c in GitCheckpointSaver(repo).list(config())) == before


def test_a_durable_store_flushes_each_checkpoint_before_a_ref_names_it(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``durable=True`` only the saver's ref moves were flushed, not its commits: a
    power cut could leave a leaf ref naming a checkpoint that never reached the disk."""
    import os

    from sessionsgit.git import packing

    saver = GitCheckpointSaver(GitSessionStore(repo, durable=True))
    events: list[tuple[str, Any]] = []
    real_fsync, real_move = os.fsync, GitSessionStore._move

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def move(self: GitSessionStore, name: str, new: Any, *args: Any) -> None:
        events.append(("ref", new))
        real_move(self, name, new, *args)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(GitSessionStore, "_move", move)
    chat_graph(saver, answers("Hello!", "Again!")).invoke(
        {"messages": [HumanMessage("hi")]}, config())
    monkeypatch.undo()
    moves = [(at, new) for at, (kind, new) in enumerate(events) if kind == "ref" and new]
    assert len(moves) >= 3
    packs = {pack: set(packing.pack_object_ids(pack))
             for pack in packing.pack_files(saver.store.repo)}
    for at, new in moves:
        holding = [pack for pack, held in packs.items() if new in held]
        flushed = {path for kind, path in events[:at] if kind == "fsync"}
        assert holding and str(holding[0]) in flushed, f"ref moved to unflushed {new}"
