"""A LangGraph chat whose every step is a Git commit (offline: a fake model answers).

    python examples/langgraph_chat.py [REPO]      # then: sessionsgit --repo REPO show "user:42/trip planning"
"""

import sys
import tempfile

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import START, MessagesState, StateGraph

from sessionsgit.integrations.langgraph import GitCheckpointSaver

repo = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp() + "/threads.git"
model = GenericFakeChatModel(messages=iter([AIMessage("Lisbon: trams, tiles and pastéis."),
                                            AIMessage("Take tram 28 up to the castle.")]))
builder = StateGraph(MessagesState)
builder.add_node("model", lambda state: {"messages": [model.invoke(state["messages"])]})
builder.add_edge(START, "model")
graph = builder.compile(checkpointer=GitCheckpointSaver(repo))

config = {"configurable": {"thread_id": "user:42/trip planning"}}
for question in ("Where should I go in May?", "How do I get around?"):
    reply = graph.invoke({"messages": [HumanMessage(question)]}, config)
    print(f"user: {question}\nassistant: {reply['messages'][-1].content}")

# Time travel: fork the thread at the first answer and ask something else there.
first_answer = [s for s in graph.get_state_history(config)
                if len(s.values.get("messages", [])) == 2 and not s.next][0]
model.messages = iter([AIMessage("Porto is lovely too.")])
fork = graph.update_state(first_answer.config, {"messages": [HumanMessage("Anywhere else?")]},
                          as_node=START)
print("fork:", graph.invoke(None, fork)["messages"][-1].content)
print(f"\nstored in {repo}; try:\n  git -C {repo} log --oneline 'sessions/user%3A42%2Ftrip%20planning'"
      f"\n  sessionsgit --repo {repo} show 'user:42/trip planning'")
