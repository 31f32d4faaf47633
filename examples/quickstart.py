"""Quickstart: a conversation auto-saved to a Git store, a fork, a rename, list() and the log.

Usage: python examples/quickstart.py [REPO_PATH]
(no network, no API key: the embedded EchoProvider answers; REPO_PATH defaults to a temp dir)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from sessionsgit import Conversation, EchoProvider, GitSessionStore, SessionManager


def main() -> None:
    repo = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "sessions"
    store = GitSessionStore(repo)

    with Conversation(EchoProvider()) as conversation, \
            SessionManager(store, conversation) as manager:
        session_id = manager.start_new()
        for text in ("How do I keep LLM conversations durable?",
                     "And can I branch them like code?",
                     "What does a save cost?"):
            conversation.prompt(text)  # every model response is auto-saved as one commit

        # Branch the conversation after its first exchange and take it elsewhere.
        fork_id = manager.fork(session_id, at=2)
        conversation.prompt("Let's talk about remotes instead.")
        manager.rename(fork_id, "remotes tangent")

        print(f"repository: {repo}\n")
        print("sessions (most recent first):")
        for meta in manager.list():
            parent = f"  fork of {meta.parent_id[:8]}" if meta.parent_id else ""
            print(f"  {meta.id[:8]}  {meta.message_count:2d} messages  {meta.label!r}{parent}")

        for sid in (session_id, fork_id):
            print(f"\ngit log --oneline sessions/{sid}")
            for save in store.history(sid):
                print(f"  {save.commit[:7]} {save.subject}")

    print(f"\nTry it with plain git:  git --git-dir {repo} log --oneline sessions/{session_id}")


if __name__ == "__main__":
    main()
