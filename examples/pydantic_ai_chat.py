#!/usr/bin/env python3
"""pydantic-ai keeping its conversations in Git, offline (a FunctionModel plays the model): two
runs saved, a fork after the first turn, a branch that redoes the second turn, then what Git
shows.

    .venv/bin/python examples/pydantic_ai_chat.py [REPO]    # default: a temporary repository
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile

from pydantic_ai import Agent
from pydantic_ai.conversation import Conversation
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from sessionsgit.integrations.pydantic_ai import GitConversationStore


def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Calls the weather tool when asked about the weather, else answers by itself."""
    part = messages[-1].parts[-1]
    if isinstance(part, ToolReturnPart):
        return ModelResponse(parts=[TextPart(f"It is {part.content}.")])
    if "weather" in str(part.content):
        return ModelResponse(parts=[ToolCallPart("get_weather", {"city": "Paris"})])
    return ModelResponse(parts=[TextPart(f"You said: {part.content}")])


agent = Agent(FunctionModel(model))


@agent.tool_plain
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


async def chat(repo: str) -> None:
    store = GitConversationStore(repo)
    conversation = await store.load("user:1/trip") or Conversation(conversation_id="user:1/trip")
    for prompt in ("Hello, I am planning a trip", "What is the weather?"):
        result = await agent.run(prompt, conversation=conversation)
        await store.save(result)
        conversation = result.conversation
    await store.fork("user:1/trip", at=2, new_conversation_id="user:1/trip (ideas)")
    branched = await store.branch("user:1/trip", at=2, expected_revision=conversation.revision)
    await store.save(await agent.run("Let us go to Rome", conversation=branched))
    for record in await store.list_conversations():
        print(record.conversation_id, "forked from", record.forked_from, "left", record.branches)


def main(repo: str) -> None:
    asyncio.run(chat(repo))

    def show(*command: str) -> None:
        print(f"\n$ {' '.join(command)}", flush=True)
        subprocess.run(command, check=True)

    show("git", "--git-dir", repo, "log", "--oneline", "--graph", "--all")
    show(sys.executable, "-m", "sessionsgit", "--repo", repo, "tree")
    show(sys.executable, "-m", "sessionsgit", "--repo", repo, "show", "user:1/trip")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="pydantic-ai-") + "/repo.git")
