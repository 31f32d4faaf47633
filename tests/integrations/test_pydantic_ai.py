"""GitConversationStore against real pydantic-ai (offline: FunctionModel / TestModel), and the
same scenario on pydantic-ai's own InMemoryConversationStore giving the same results."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from click.testing import CliRunner  # noqa: E402
from pydantic_ai import Agent  # noqa: E402
from pydantic_ai.conversation import Conversation  # noqa: E402
from pydantic_ai.conversation_store import (  # noqa: E402
    ConversationConflict,
    ConversationEntry,
    ConversationRecord,
    ConversationStore,
    InMemoryConversationStore,
)
from pydantic_ai.messages import (  # noqa: E402
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel  # noqa: E402
from pydantic_ai.models.test import TestModel  # noqa: E402

from sessionsgit import CorruptSessionError, GitSessionStore  # noqa: E402
from sessionsgit.cli import cli  # noqa: E402
from sessionsgit.integrations import pydantic_ai_index  # noqa: E402
from sessionsgit.integrations.pydantic_ai import BRANCH_PREFIX, GitConversationStore  # noqa: E402
from tests.conftest import git  # noqa: E402

CID = "user:1/trip"


def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """A deterministic model: asks for the weather tool when told to, else echoes."""
    part = messages[-1].parts[-1]
    if isinstance(part, ToolReturnPart):
        return ModelResponse(parts=[TextPart(f"It is {part.content}.")])
    prompt = part.content if isinstance(part, UserPromptPart) else "?"
    if isinstance(prompt, str) and "weather" in prompt:
        return ModelResponse(parts=[ToolCallPart("get_weather", {"city": "Paris"},
                                                 tool_call_id="call-1")])
    return ModelResponse(parts=[TextPart(f"echo {prompt} after {len(messages)} messages")])


def make_agent() -> Agent[None, str]:
    agent: Agent[None, str] = Agent(FunctionModel(respond))

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    return agent


#: pydantic-ai 2.78 added the request time and duration of each response
_VOLATILE = {"timestamp", "request_timestamp", "duration", "run_id", "conversation_id"}


def norm(messages: list[ModelMessage]) -> list[Any]:
    """Messages as JSON without what differs between two runs (times, run ids)."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in _VOLATILE}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return strip(ModelMessagesTypeAdapter.dump_python(messages, mode="json"))


class Canon:
    """Entry ids and revisions minted at random, numbered in order of first appearance so two
    runs of the same scenario compare equal."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, value: str | None) -> int | None:
        if value is None:
            return None
        return self.seen.setdefault(value, len(self.seen))

    def record(self, record: ConversationRecord) -> dict[str, Any]:
        return {"id": record.conversation_id, "head": self(record.head_id),
                "forked_from": record.forked_from, "forked_at": self(record.forked_at),
                "branches": [self(tip) for tip in record.branches], "scope": record.scope,
                "requests": record.usage.requests, "format": record.format_version}

    def entries(self, entries: list[ConversationEntry] | None) -> Any:
        if entries is None:
            return None
        return [(self(e.id), self(e.parent_id), norm([e.message])[0]) for e in entries]


async def scenario(store: ConversationStore) -> list[Any]:
    """Run, save, load, run again, fork at 2, branch at 2 (a stale revision first), branch back,
    list, delete: every result, normalized."""
    agent, canon, out = make_agent(), Canon(), []
    first = await agent.run("Hello", conversation=Conversation(conversation_id=CID))
    out.append(("saved", canon.entries(await store.save(first, scope="user:1"))))
    loaded = await store.load(CID)
    assert loaded is not None
    out.append(("loaded", norm(loaded.messages)))
    second = await agent.run("What is the weather?", conversation=loaded)
    out.append(("saved again", canon.entries(await store.save(second))))
    current = await store.load(CID)
    assert current is not None
    out.append(("resaved, nothing new", await store.save(current)))
    out.append(("history", canon.entries(await store.load_entries(CID))))
    out.append(("window", norm((await store.load(CID, limit=3)).messages)))  # type: ignore[union-attr]
    fork = await store.fork(CID, at=2, new_conversation_id="user:1/trip (fork)")
    out.append(("fork", norm(fork.messages), fork.conversation_id))
    forked_run = await agent.run("And tomorrow?", conversation=fork)
    out.append(("fork saved", canon.entries(await store.save(forked_run))))
    try:
        await store.branch(CID, at=2, expected_revision=loaded.revision)
        out.append("stale branch allowed")
    except ConversationConflict as exc:
        out.append(("stale", exc.conversation_id))
    branched = await store.branch(CID, at=2, expected_revision=current.revision)
    out.append(("branched", norm(branched.messages)))
    redo = await agent.run("Rather the weather in Rome", conversation=branched)
    out.append(("redo saved", canon.entries(await store.save(redo))))
    record = await store.read_record(CID)
    assert record is not None
    out.append(("record", canon.record(record)))
    back = await store.branch(CID, from_entry=record.branches[0], expected_revision=record.revision)
    out.append(("back", norm(back.messages), norm(back.messages) == norm(current.messages)))
    out.append(("list", [canon.record(r) for r in await store.list_conversations()]))
    out.append(("scoped", [r.conversation_id for r in
                           await store.list_conversations(scope="user:1")]))
    out.append(("fork history", canon.entries(await store.load_entries("user:1/trip (fork)"))))
    await store.delete(CID)
    out.append(("deleted", await store.load(CID)))
    out.append(("after delete", [canon.record(r) for r in await store.list_conversations()]))
    out.append(("fork survives", norm((await store.load("user:1/trip (fork)")).messages)))  # type: ignore[union-attr]
    return out


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return tmp_path / "repo.git"


def test_the_scenario_matches_the_in_memory_store(repo: Path) -> None:
    expected = run(scenario(InMemoryConversationStore()))
    got = run(scenario(GitConversationStore(repo)))
    for step, (mine, theirs) in enumerate(zip(got, expected)):
        assert mine == theirs, f"step {step}: {mine!r:.300}"
    assert len(got) == len(expected)
    assert ("stale", CID) in got


def test_git_holds_it_readably(repo: Path) -> None:
    run(scenario(GitConversationStore(repo)))
    store = GitSessionStore(repo)
    fork = store.load("user:1/trip (fork)")
    assert fork is not None and fork.metadata.parent_id == CID
    # Each message is one blob holding ModelMessage JSON and the entry id pydantic-ai minted.
    assert all(m["id"] and m["kind"] in ("request", "response") for m in fork.messages)
    assert git("--git-dir", str(repo), "fsck", "--strict", "--no-dangling").strip() == ""
    kept = git("--git-dir", str(repo), "for-each-ref", "--format=%(refname)", BRANCH_PREFIX)
    assert len(kept.split()) == 2  # the history `branch` left, and the one branching back left
    tree = CliRunner().invoke(cli, ["--repo", str(repo), "tree"])
    assert tree.exit_code == 0 and "user:1/trip (fork)" in tree.output, tree.output


def test_a_fresh_store_reads_the_same(repo: Path) -> None:
    async def check() -> None:
        store = GitConversationStore(repo)
        agent = make_agent()
        result = await agent.run("What is the weather?", conversation=Conversation(
            conversation_id=CID))
        entries = await store.save(result)
        loaded = await store.load(CID)
        again = await agent.run("Thanks!", conversation=loaded)
        await store.save(again)
        expected = await store.load_entries(CID)
        record = await store.read_record(CID)
        store.close()
        (Path(GitSessionStore(repo).repo.path) / pydantic_ai_index.FILE_NAME).unlink()
        fresh = GitConversationStore(repo)  # its entry table is rebuilt from Git
        assert await fresh.load_entries(CID) == expected
        assert await fresh.read_record(CID) == record
        assert await fresh.read_entry(entries[1].id) == entries[1]
        assert [r.conversation_id for r in await fresh.list_conversations()] == [CID]

    run(check())


def test_read_entry_is_a_lookup_and_a_save_one_append(repo: Path, monkeypatch: Any) -> None:
    async def check() -> None:
        store = GitConversationStore(repo)
        agent = make_agent()
        conversation = Conversation(conversation_id=CID)
        for n in range(3):
            result = await agent.run(f"turn {n}", conversation=conversation)
            await store.save(result)
            conversation = result.conversation
        history = GitSessionStore(repo).history(CID)
        assert [r.message_count for r in history] == [6, 4, 2]  # one commit a save
        entries = await store.load_entries(CID)
        assert entries is not None

        def no_scan() -> Any:
            raise AssertionError("read_entry scanned the sessions")

        monkeypatch.setattr(store.store, "list", no_scan)
        for entry in entries:
            assert await store.read_entry(entry.id) == entry
        with pytest.raises(KeyError):
            monkeypatch.undo()
            await store.read_entry("no-such-entry")

    run(check())


def test_a_stale_revision_conflicts_and_changes_nothing(repo: Path) -> None:
    async def check() -> None:
        store = GitConversationStore(repo)
        agent = make_agent()
        first = await agent.run("hello", conversation=Conversation(conversation_id=CID))
        await store.save(first)
        a = await store.load(CID)
        b = await store.load(CID)
        await store.save(await agent.run("from a", conversation=a))
        with pytest.raises(ConversationConflict):
            await store.save(await agent.run("from b", conversation=b))
        with pytest.raises(ConversationConflict):
            await store.delete_record(CID, expected_revision=b.revision)  # type: ignore[arg-type]
        with pytest.raises(ConversationConflict):  # exists already, not loaded from the store
            await store.save(await agent.run("new", conversation=Conversation(
                conversation_id=CID)))
        # A plain sessionsgit session is no conversation: never overwritten.
        GitSessionStore(repo).save("notes", [{"role": "user", "content": "mine"}])
        assert await store.read_record("notes") is None
        with pytest.raises(ConversationConflict):
            await store.save(await agent.run("x", conversation=Conversation(
                conversation_id="notes")))
        assert GitSessionStore(repo).load("notes").messages == [{"role": "user",
                                                                 "content": "mine"}]
        final = await store.load(CID)
        assert [m.parts[0].content for m in final.messages if isinstance(m, ModelRequest)] \
            == ["hello", "from a"]

    run(check())


def test_test_model_runs_and_sessionsgit_show_renders_the_parts(repo: Path) -> None:
    async def check() -> None:
        store = GitConversationStore(repo)
        agent = make_agent()
        result = await agent.run("What is the weather?", conversation=Conversation(
            conversation_id=CID))
        await store.save(result)
        plain: Agent[None, str] = Agent(TestModel(custom_output_text="fine"))
        loaded = await store.load(CID)
        await store.save(await plain.run("How are you?", conversation=loaded))

    run(check())
    shown = CliRunner().invoke(cli, ["--repo", str(repo), "show", CID])
    assert shown.exit_code == 0, shown.output
    for expected in ("What is the weather?", "get_weather", "Paris", "sunny in Paris",
                     "It is sunny in Paris.", "How are you?", "fine"):
        assert expected in shown.output, shown.output


def test_a_head_no_one_has_conflicts(repo: Path) -> None:
    async def check() -> None:
        store = GitConversationStore(repo)
        orphan = ConversationRecord(conversation_id="c", head_id="no-such-entry")
        with pytest.raises(ConversationConflict):
            await store.write_record(orphan, expected_revision=None)
        assert await store.read_record("c") is None
        assert GitSessionStore(repo).list() == []
        with pytest.raises(KeyError):
            await store.read_history("no-such-entry")

    run(check())


def test_the_example_runs_offline(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "examples" / "pydantic_ai_chat.py"
    out = subprocess.run([sys.executable, str(example), str(tmp_path / "repo.git")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "└─ user:1/trip (ideas)" in out.stdout and "Let us go to Rome" in out.stdout


def test_a_clone_without_the_branch_refs_can_branch_back(repo: Path, tmp_path: Path) -> None:
    run(scenario(GitConversationStore(repo)))  # ends with the original deleted: use the fork
    async def branch_fork() -> list[str]:
        store = GitConversationStore(repo)
        fork = await store.load("user:1/trip (fork)")
        again = await store.branch("user:1/trip (fork)", at=2, expected_revision=fork.revision)
        await store.save(await make_agent().run("Something else", conversation=again))
        listed = [r.conversation_id for r in await store.list_conversations()]
        store.close()
        return listed

    assert run(branch_fork()) == ["user:1/trip (fork)"]
    clone = tmp_path / "clone.git"
    git("clone", "--bare", "--quiet", str(repo), str(clone))
    assert git("--git-dir", str(clone), "for-each-ref", BRANCH_PREFIX) == ""

    async def back() -> None:
        store = GitConversationStore(clone)
        record = await store.read_record("user:1/trip (fork)")
        assert record is not None and len(record.branches) == 1
        back = await store.branch("user:1/trip (fork)", from_entry=record.branches[0],
                                  expected_revision=record.revision)
        assert [m.parts[0].content for m in back.messages if isinstance(m, ModelRequest)] == \
            ["Hello", "And tomorrow?"]

    run(back())


def test_deferred_tool_requests_and_usage_survive(repo: Path) -> None:
    from pydantic_ai import DeferredToolRequests

    agent: Agent[None, Any] = Agent(TestModel(), output_type=[str, DeferredToolRequests])

    @agent.tool_plain(requires_approval=True)
    def delete_file(path: str) -> str:
        """Delete a file."""
        return "deleted"

    async def check() -> None:
        result = await agent.run("delete it", conversation=Conversation(conversation_id=CID))
        assert isinstance(result.output, DeferredToolRequests)
        await GitConversationStore(repo).save(result)
        loaded = await GitConversationStore(repo).load(CID)
        assert loaded is not None
        assert loaded.deferred_tool_requests == result.output
        assert loaded.usage == result.usage
        assert loaded.messages == result.all_messages()

    run(check())


def test_a_damaged_record_is_a_typed_error_and_hides_no_other(repo: Path) -> None:
    async def check() -> None:
        store = GitConversationStore(repo)
        result = await make_agent().run("Hello", conversation=Conversation(conversation_id=CID))
        await store.save(result)
        GitSessionStore(repo).save("broken", [], {"extra": {"pydantic_ai": {"usage": "junk"}}})
        with pytest.raises(CorruptSessionError):
            await store.read_record("broken")
        assert [r.conversation_id for r in await store.list_conversations()] == [CID]

    run(check())


def test_two_writers_creating_one_new_conversation_one_conflicts(repo: Path) -> None:
    """Both see no conversation; the second to commit must conflict, not overwrite the first."""
    import threading

    GitSessionStore(repo)  # the repository exists before either writer opens it
    first, second = GitConversationStore(repo), GitConversationStore(repo)
    first_done = threading.Event()
    real_head_metadata = second.store.head_metadata

    def head_metadata_then_wait(session_id: str) -> Any:
        found = real_head_metadata(session_id)  # the check sees no conversation yet...
        first_done.wait(10)  # ...then the other writer creates it
        return found

    second.store.head_metadata = head_metadata_then_wait  # type: ignore[method-assign]

    def entries(text: str) -> list[ConversationEntry]:
        message = ModelRequest(parts=[UserPromptPart(content=text)])
        return [ConversationEntry(id=f"e-{text}", parent_id=None, message=message)]

    outcome: list[BaseException | None] = []

    def write_second() -> None:
        try:
            run(second.write_record(ConversationRecord(conversation_id=CID, head_id="e-two"),
                                    new_entries=entries("two"), expected_revision=None))
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - checked below
            outcome.append(exc)

    thread = threading.Thread(target=write_second)
    thread.start()
    run(first.write_record(ConversationRecord(conversation_id=CID, head_id="e-one"),
                           new_entries=entries("one"), expected_revision=None))
    first_done.set()
    thread.join()
    assert len(outcome) == 1 and isinstance(outcome[0], ConversationConflict), outcome
    stored = GitSessionStore(repo).load(CID)
    assert stored is not None and [m["id"] for m in stored.messages] == ["e-one"]
    assert len(GitSessionStore(repo).history(CID)) == 1


def test_message_blobs_over_the_bound_are_not_read(repo: Path, monkeypatch: Any) -> None:
    """Entry lookups read message blobs through the bounded reader every local reader uses
    (``SESSIONSGIT_MAX_BLOB_BYTES``): one over the bound counts as damaged, never inflated."""
    async def check() -> None:
        store = GitConversationStore(repo)
        result = await make_agent().run("Hello", conversation=Conversation(conversation_id=CID))
        entries = await store.save(result)
        store.close()
        (Path(GitSessionStore(repo).repo.path) / pydantic_ai_index.FILE_NAME).unlink()
        monkeypatch.setenv("SESSIONSGIT_MAX_BLOB_BYTES", "16")
        bounded = GitConversationStore(repo)
        with pytest.raises(KeyError):
            await bounded.read_entry(entries[0].id)
        monkeypatch.delenv("SESSIONSGIT_MAX_BLOB_BYTES")
        (Path(GitSessionStore(repo).repo.path) / pydantic_ai_index.FILE_NAME).unlink(
            missing_ok=True)
        assert await GitConversationStore(repo).read_entry(entries[0].id) == entries[0]

    run(check())
