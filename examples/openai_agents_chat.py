#!/usr/bin/env python3
"""The OpenAI Agents SDK keeping its session in Git, offline (the SDK's ScriptedModel plays the
model): a run with a tool call, a second run, a branch from the second turn, then what Git shows.

    .venv/bin/python examples/openai_agents_chat.py [REPO]    # default: a temporary repository
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message, function_call

from sessionsgit.integrations.openai_agents import GitSession
from sessionsgit.stores.git import session_ref

set_tracing_disabled(True)  # no trace export: this example never touches the network


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def main(repo: str) -> None:
    model = ScriptedModel([
        [function_call("get_weather", {"city": "Paris"}, call_id="call_1")],
        [assistant_message("It is sunny in Paris: pack light.")],
        [assistant_message("The Louvre opens at nine.")],
        [assistant_message("Rome is sunny too.")],
    ])
    agent = Agent(name="travel", instructions="Help plan trips.", tools=[get_weather], model=model)
    session = GitSession("user:1/trip", repo)
    print(Runner.run_sync(agent, "Weather in Paris?", session=session).final_output)
    print(Runner.run_sync(agent, "What opens first?", session=session).final_output)
    asyncio.run(session.create_branch_from_turn(2, "rome"))  # keeps turn 1, switches to "rome"
    print(Runner.run_sync(agent, "And Rome?", session=session).final_output)

    def show(*command: str) -> None:
        print(f"\n$ {' '.join(command)}", flush=True)
        subprocess.run(command, check=True)

    sessionsgit = [sys.executable, "-m", "sessionsgit", "--repo", repo]
    show("git", "--git-dir", repo, "log", "--oneline", "--graph", session_ref("user:1/trip"),
         session_ref("user:1/trip#rome"))
    show(*sessionsgit, "tree")
    show(*sessionsgit, "show", "user:1/trip#rome")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="agents-") + "/repo.git")
