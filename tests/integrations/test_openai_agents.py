"""GitSession against the real OpenAI Agents SDK (offline: the SDK's own ScriptedModel), and its
branching against the SDK's AdvancedSQLiteSession given the same calls."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("agents")

from agents import Agent, Runner, function_tool, set_tracing_disabled  # noqa: E402
from agents.extensions.memory import AdvancedSQLiteSession  # noqa: E402
from agents.memory import Session, SessionSettings  # noqa: E402
from agents.testing import ScriptedModel, assistant_message, function_call  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from sessionsgit import (  # noqa: E402
    FileSessionStore,
    GitSessionStore,
    InMemorySessionStore,
    StoreError,
)
from sessionsgit.cli import cli  # noqa: E402
from sessionsgit.git import packing  # noqa: E402
from sessionsgit.integrations.openai_agents import BranchError, GitSession  # noqa: E402
from sessionsgit.stores.git import session_ref  # noqa: E402
from tests.conftest import git  # noqa: E402

set_tracing_disabled(True)  # the SDK would otherwise try to export traces over the network


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def reply(text: str, item_id: str = "msg") -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def weather_agent(*steps: list[Any]) -> Agent[Any]:
    return Agent(name="travel", instructions="Help plan trips.", tools=[get_weather],
                 model=ScriptedModel(list(steps)))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return tmp_path / "repo.git"


def test_it_is_an_agents_sdk_session(repo: Path) -> None:
    session = GitSession("chat", repo, session_settings=SessionSettings(limit=3))
    assert isinstance(session, Session)
    assert session.session_id == "chat"
    assert session.session_settings == SessionSettings(limit=3)
    assert isinstance(session.store, GitSessionStore)
    shared = GitSession("chat", session.store)
    assert shared.store is session.store
    shared.close()  # the caller's store stays open
    run(session.add_items([user("still open")]))
    session.close()  # the store it opened is closed
    with pytest.raises(StoreError):
        run(session.get_items())


def test_runner_run_with_a_tool_call_stores_every_item(repo: Path) -> None:
    session = GitSession("user:1/trip", repo)
    agent = weather_agent(
        [function_call("get_weather", {"city": "Paris"}, call_id="call_1")],
        [assistant_message("It is sunny in Paris.")])
    result = run(Runner.run(agent, "Weather in Paris?", session=session))
    assert result.final_output == "It is sunny in Paris."
    items = run(session.get_items())
    assert [i.get("type", i.get("role")) for i in items] == \
        ["user", "function_call", "function_call_output", "message"]
    assert items[0]["content"] == "Weather in Paris?"
    assert items[1]["name"] == "get_weather" and json.loads(items[1]["arguments"]) == \
        {"city": "Paris"}
    assert items[2]["output"] == "Sunny in Paris"
    # A store opened afresh on the same repository reads the same items, as stored.
    assert GitSessionStore(repo).load("user:1/trip").messages == items
    # One add_items, one commit.
    assert len(GitSessionStore(repo).history("user:1/trip")) >= 1


def test_run_sync_and_run_streamed_continue_the_conversation(repo: Path) -> None:
    session = GitSession("chat", repo)
    model = ScriptedModel([[assistant_message("Hello!")], [assistant_message("Still here.")],
                           [assistant_message("Streamed.")]])
    agent = Agent(name="a", model=model)
    assert Runner.run_sync(agent, "hi", session=session).final_output == "Hello!"
    assert Runner.run_sync(agent, "again", session=session).final_output == "Still here."
    # The second call was sent the history stored by the first.
    sent = model.last_call.input
    assert [i.get("content") for i in sent if i.get("role") == "user"] == ["hi", "again"]

    async def streamed() -> str:
        result = Runner.run_streamed(agent, "stream", session=session)
        async for _event in result.stream_events():
            pass
        return str(result.final_output)

    assert run(streamed()) == "Streamed."
    items = run(session.get_items())
    assert [i["content"] for i in items if i.get("role") == "user"] == ["hi", "again", "stream"]
    assert len(items) == 6


def test_get_items_limit_pop_and_clear_keep_history(repo: Path) -> None:
    session = GitSession("chat", repo)
    run(session.add_items([user("a"), reply("b")]))
    run(session.add_items([user("c"), reply("d")]))
    assert run(session.get_items(limit=3)) == [reply("b"), user("c"), reply("d")]
    assert run(session.get_items(limit=0)) == []
    assert GitSession("chat", repo, session_settings=SessionSettings(limit=1)) \
        .store.load("chat") is not None
    limited = GitSession("chat", repo, session_settings=SessionSettings(limit=1))
    assert run(limited.get_items()) == [reply("d")]
    assert run(limited.get_items(limit=2)) == [user("c"), reply("d")]
    assert run(GitSession("chat", repo, session_settings=SessionSettings(limit=0))
               .get_items()) == []

    assert run(session.pop_item()) == reply("d")
    assert run(session.get_items()) == [user("a"), reply("b"), user("c")]
    run(session.clear_session())
    assert run(session.get_items()) == []
    assert run(session.pop_item()) is None
    counts = [r.message_count for r in GitSessionStore(repo).history("chat")]
    assert counts == [0, 3, 4, 2]  # newest first: clear, pop, then the two add_items


def test_sessions_are_isolated_by_id(repo: Path) -> None:
    ids = ["user:1/trip", "user:1/trip planning", "user:2/trip", "café/☕"]
    for n, session_id in enumerate(ids):
        run(GitSession(session_id, repo).add_items([user(f"message {n}")]))
    for n, session_id in enumerate(ids):
        assert run(GitSession(session_id, repo).get_items()) == [user(f"message {n}")]
    assert sorted(m.id for m in GitSessionStore(repo).list()) == sorted(ids)


def test_four_concurrent_writers_lose_nothing(repo: Path) -> None:
    GitSessionStore(repo)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        session = GitSession("shared", GitSessionStore(repo))  # one store (process view) each
        barrier.wait()
        try:
            for k in range(8):
                run(session.add_items([user(f"w{n}-{k}"), reply(f"r{n}-{k}")]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    items = run(GitSession("shared", repo).get_items())
    assert len(items) == 64
    for n in range(4):
        mine = [i for i in items if (i.get("content") if i.get("role") == "user"
                                     else i["content"][0]["text"])[1:].startswith(f"{n}-")]
        assert mine == [x for k in range(8) for x in (user(f"w{n}-{k}"), reply(f"r{n}-{k}"))]
    assert len(GitSessionStore(repo).history("shared")) == 32


def _turns(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in t.items() if k != "timestamp"} for t in turns]


def _branches(branches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Without ``created_at``, by name: SQLite stamps whole seconds, so its order among
    branches made in the same second is arbitrary."""
    return sorted(({k: v for k, v in b.items() if k != "created_at"} for b in branches),
                  key=lambda b: b["branch_id"])


async def branching_scenario(session: Any) -> list[Any]:
    """The same calls on any session with AdvancedSQLiteSession's branching API; every result
    and every error message, in order."""
    out: list[Any] = []

    async def attempt(call: Any) -> None:
        try:
            out.append(("ok", await call))
        except ValueError as exc:
            out.append(("ValueError", str(exc)))

    tool = [{"type": "function_call", "call_id": "c1", "name": "get_weather",
             "arguments": '{"city": "Paris"}', "id": "fc1"},
            {"type": "function_call_output", "call_id": "c1", "output": "Sunny in Paris"}]
    await session.add_items([user("Plan a trip"), reply("Where to?", "m1")])
    await session.add_items([user("Paris, please"), *tool, reply("Sunny there.", "m2")])
    await session.add_items([user("Book a HOTEL"), reply("Booked.", "m3")])
    out.append(_turns(await session.get_conversation_turns()))
    await attempt(session.create_branch_from_turn(2, "rome"))
    out.append(await session.get_items())
    await session.add_items([user("Rome instead"), reply("Ciao!", "m4")])
    out.append(await session.get_items())
    out.append(_branches(await session.list_branches()))
    out.append(_turns(await session.get_conversation_turns("main")))
    await attempt(session.create_branch_from_content("hotel"))       # not on branch rome
    await attempt(session.switch_to_branch("nowhere"))
    await attempt(session.switch_to_branch("main"))
    await attempt(session.create_branch_from_content("hotel", "hotel-redo"))
    out.append(await session.get_items())
    await attempt(session.create_branch_from_turn(9, "nine"))
    await attempt(session.create_branch_from_turn(1, "rome"))        # name already used
    await attempt(session.create_branch_from_turn(1, "  "))
    await attempt(session.delete_branch("main"))
    await attempt(session.delete_branch("hotel-redo"))                # current, no force
    await attempt(session.delete_branch("nowhere"))
    await attempt(session.delete_branch("rome"))
    await attempt(session.create_branch_from_turn(1, "rome"))        # still used once deleted
    await session.add_items([user("Any hotel with a pool?"), reply("Yes.", "m5")])
    out.append(_branches(await session.list_branches()))
    await attempt(session.delete_branch("hotel-redo", force=True))   # back to main
    out.append(await session.get_items(limit=2))
    out.append(await session.pop_item())
    out.append(await session.get_items())
    out.append(_branches(await session.list_branches()))
    await attempt(session.create_branch_from_turn(2, "again"))
    out.append(await session.get_items())
    await session.clear_session()
    out.append(await session.get_items())
    await attempt(session.switch_to_branch("again"))
    return out


def test_branching_gives_what_advanced_sqlite_session_gives(repo: Path, tmp_path: Path) -> None:
    sqlite = AdvancedSQLiteSession(session_id="user:1/trip", db_path=tmp_path / "agents.db",
                                   create_tables=True)
    try:
        expected = run(branching_scenario(sqlite))
    finally:
        sqlite.close()
    got = run(branching_scenario(GitSession("user:1/trip", repo)))
    for step, (mine, theirs) in enumerate(zip(got, expected)):
        assert mine == theirs, f"step {step}"
    assert len(got) == len(expected)
    assert ("ok", "hotel-redo") in got and ("ValueError", "Branch 'nowhere' does not exist") in got


def test_branches_are_fork_sessions_git_and_the_cli_understand(repo: Path) -> None:
    session = GitSession("user:1/trip", repo)
    run(session.add_items([user("Plan a trip"), reply("Where to?")]))
    run(session.add_items([user("Paris"), reply("Sunny.")]))
    assert run(session.create_branch_from_turn(2, "rome")) == "rome"
    assert session.current_branch_id == "rome"
    run(session.add_items([user("Rome"), reply("Ciao!")]))
    store = GitSessionStore(repo)
    branch = store.load("user:1/trip#rome")
    assert branch.metadata.parent_id == "user:1/trip"
    assert branch.messages == [user("Plan a trip"), reply("Where to?"), user("Rome"),
                               reply("Ciao!")]
    # git merge-base finds the branch point: the save holding the first turn.
    main_history = store.history("user:1/trip")
    base = git("--git-dir", str(repo), "merge-base", session_ref("user:1/trip"),
               session_ref("user:1/trip#rome")).strip()
    assert base == main_history[-1].commit
    tree = CliRunner().invoke(cli, ["--repo", str(repo), "tree"])
    assert tree.exit_code == 0, tree.output
    lines = tree.output.splitlines()
    parent = next(i for i, line in enumerate(lines) if line.lstrip().startswith("user:1/trip "))
    assert "user:1/trip#rome" in lines[parent + 1]
    with pytest.raises(BranchError):
        run(session.switch_to_branch("nowhere"))


def test_sessionsgit_show_renders_the_items(repo: Path) -> None:
    session = GitSession("user:1/trip", repo)
    agent = weather_agent(
        [function_call("get_weather", {"city": "Paris"}, call_id="call_1")],
        [assistant_message("It is sunny in Paris.")])
    run(Runner.run(agent, "Weather in Paris?", session=session))
    shown = CliRunner().invoke(cli, ["--repo", str(repo), "show", "user:1/trip"])
    assert shown.exit_code == 0, shown.output
    text = shown.output
    for expected in ("Weather in Paris?", "get_weather", "Paris", "Sunny in Paris",
                     "It is sunny in Paris."):
        assert expected in text, text
    assert "[output_text]" not in text and "?" != text.strip()[-1:]


def test_importing_sessionsgit_imports_no_framework() -> None:
    code = ("import sys, sessionsgit, sessionsgit.cli, sessionsgit.integrations; "
            "loaded = [m for m in ('agents', 'pydantic_ai', 'openai') if m in sys.modules]; "
            "assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_example_runs_offline(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "examples" / "openai_agents_chat.py"
    out = subprocess.run([sys.executable, str(example), str(tmp_path / "repo.git")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "└─ user:1/trip#rome" in out.stdout and "Rome is sunny too." in out.stdout


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_other_stores_work_too(kind: str, tmp_path: Path) -> None:
    store = InMemorySessionStore() if kind == "memory" else FileSessionStore(tmp_path)
    session = GitSession("user:1/trip", store)
    run(session.add_items([user("a"), reply("b")]))
    run(session.add_items([user("c"), reply("d")]))
    assert run(session.create_branch_from_turn(2, "alt")) == "alt"
    run(session.add_items([user("e")]))
    assert run(session.get_items()) == [user("a"), reply("b"), user("e")]
    assert run(session.pop_item()) == user("e")
    assert [b["branch_id"] for b in run(session.list_branches())] == ["main", "alt"]
    assert session.store.load("user:1/trip#alt").metadata.parent_id == "user:1/trip"
    run(session.clear_session())
    assert run(session.get_items()) == [] and session.current_branch_id == "main"


def _loose_objects(repo: Path) -> set[str]:
    return {f"{d.name}{f.name}" for d in (repo / "objects").iterdir()
            if len(d.name) == 2 for f in d.iterdir()}


def test_add_items_writes_one_commit_and_counts_only_its_objects(repo: Path) -> None:
    """A turn is one pack of two blobs, the last chunk, ``messages`` and root trees and a commit; the
    ``session.json`` the head already holds is neither rewritten nor counted towards packing."""
    store = GitSessionStore(repo, auto_pack=False)
    session = GitSession("user:1/trip", store)
    run(session.add_items([user("hello"), reply("hi")]))
    before, estimate = set(packing.pack_files(store.repo)), store._autopack.loose_estimate
    run(session.add_items([user("and tomorrow?"), reply("rain")]))
    new_packs = set(packing.pack_files(store.repo)) - before
    assert len(new_packs) == 1 and _loose_objects(repo) == set()
    assert len(packing.pack_object_ids(new_packs.pop())) == 6
    assert store._autopack.loose_estimate - estimate == 6
    assert [item["content"] for item in run(session.get_items())][2:3] == ["and tomorrow?"]
    assert store.load("user:1/trip").messages[-1] == reply("rain")
