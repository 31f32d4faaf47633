"""The OpenAI Agents SDK's ``Session`` on sessionsgit: every ``add_items`` a commit, branches as
fork sessions.

``GitSession`` implements ``agents.memory.Session`` (pass it as ``Runner.run(...,
session=...)``) and the branching methods of the SDK's ``AdvancedSQLiteSession`` with the same
names, arguments, results and errors, so code can switch stores unchanged. Items (Responses
input items, plain JSON dicts) are stored as given, one message each.

Any ``SessionStore`` works (a path opens a ``GitSessionStore``); the Git store adds the history
that keeps popped and cleared items, and the trash. Branch ``main`` is the session
``session_id`` itself; a branch ``B`` is the sessionsgit fork session ``"<session_id>#B"`` (its
``parent_id`` the session it came from), so ``sessionsgit tree`` draws it and ``git
merge-base`` finds the branch point. Like ``AdvancedSQLiteSession``,
the current branch is a property of this object (a new ``GitSession`` starts on ``main``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from typing import Any, Callable, TypeVar

from agents.memory.session_settings import SessionSettings, resolve_session_limit

from ..errors import SessionConflictError, SessionsGitError
from ..ids import validate_session_id
from ..metadata import Message, SessionMetadata
from ..stores.base import SessionStore
from ..stores.git import GitSessionStore

__all__ = ["GitSession", "BranchError"]

#: The metadata key (in ``extra``) marking a session as a branch of an Agents SDK session.
MARK = "openai_agents"
MAIN = "main"
#: Separator between the session id and a branch name in the branch's sessionsgit id.
BRANCH_SEPARATOR = "#"
_T = TypeVar("_T")


class BranchError(SessionsGitError, ValueError):
    """A branch operation that cannot be done (unknown turn or branch, a name already used, the
    main or current branch deleted): a ``ValueError`` like ``AdvancedSQLiteSession`` raises."""


def open_store(path_or_store: str | os.PathLike[str] | SessionStore) -> SessionStore:
    """A store given as is, or a ``GitSessionStore`` opened (created if missing) at a path."""
    if isinstance(path_or_store, SessionStore):
        return path_or_store
    if isinstance(path_or_store, (str, os.PathLike)):
        return GitSessionStore(path_or_store)
    raise TypeError("expected a repository path or a SessionStore, not "
                    f"{type(path_or_store).__name__}")


def _is_user(item: Any) -> bool:
    return isinstance(item, dict) and item.get("role") == "user"


def _preview(content: Any, max_length: int | None = None) -> str:
    """A user message's content as text, cut to ``max_length`` (as the SDK previews it)."""
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    if max_length is not None and len(text) > max_length:
        return text[:max_length] + "..."
    return text


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [part.get("text", "") for part in content if isinstance(part, dict)]
    return []


class GitSession:
    """An Agents SDK session stored in sessionsgit (see the module docstring)."""

    def __init__(self, session_id: str,
                 path_or_store: str | os.PathLike[str] | SessionStore, *,
                 session_settings: SessionSettings | None = None) -> None:
        self.session_id = validate_session_id(session_id)
        self.session_settings = session_settings
        self._owns_store = not isinstance(path_or_store, SessionStore)
        self.store = open_store(path_or_store)
        self._branch = MAIN

    def close(self) -> None:
        """Close the store if this session opened it (given a store, the caller owns it)."""
        if self._owns_store:
            self.store.close()

    # ---- names -----------------------------------------------------------------------------
    @property
    def current_branch_id(self) -> str:
        """The branch ``get_items``/``add_items``/``pop_item`` work on."""
        return self._branch

    def branch_session_id(self, branch_id: str | None = None) -> str:
        """The sessionsgit id holding a branch (the current one by default)."""
        branch = self._branch if branch_id is None else branch_id
        if branch == MAIN:
            return self.session_id
        return validate_session_id(f"{self.session_id}{BRANCH_SEPARATOR}{branch}")

    def _mark(self, branch_id: str) -> dict[str, Any]:
        return {"extra": {MARK: {"session": self.session_id, "branch": branch_id}}}

    def _is_branch(self, metadata: SessionMetadata, branch_id: str) -> bool:
        mark = metadata.extra.get(MARK)
        if branch_id == MAIN:
            return metadata.id == self.session_id
        return (isinstance(mark, dict) and mark.get("session") == self.session_id
                and mark.get("branch") == branch_id)

    # ---- the Session protocol --------------------------------------------------------------
    async def get_items(self, limit: int | None = None,
                        branch_id: str | None = None) -> list[Any]:
        """The items of the current branch (or ``branch_id``), the latest ``limit`` of them
        (``SessionSettings.limit`` when ``limit`` is None; 0 gives ``[]``)."""
        limit = resolve_session_limit(limit, self.session_settings)
        session_id = self.branch_session_id(branch_id)
        messages = await self._run(self._messages, session_id)
        if limit is None or limit < 0:
            return messages
        return messages[-limit:] if limit else []

    async def add_items(self, items: list[Any]) -> None:
        """Add items at the end of the current branch: one commit made with ``append``, so
        concurrent writers (threads, processes) lose nothing."""
        if not items:
            return
        branch = self._branch
        metadata = None if branch == MAIN else self._mark(branch)  # a branch stays marked
        await self._run(self.store.append, self.branch_session_id(branch), list(items), metadata)

    async def pop_item(self) -> Any | None:
        """Remove and return the latest item of the current branch (a commit: the history keeps
        it), or None when the branch is empty."""
        return await self._run(self._pop, self.branch_session_id())

    async def clear_session(self) -> None:
        """Empty the session like ``AdvancedSQLiteSession`` does: ``main`` gets an empty commit
        (its history keeps every item), every other branch is deleted (recoverable with
        ``sessionsgit restore``), and the session is back on ``main``."""
        await self._run(self._clear)
        self._branch = MAIN

    # ---- branching (AdvancedSQLiteSession's API) -------------------------------------------
    async def create_branch_from_turn(self, turn_number: int,
                                      branch_name: str | None = None) -> str:
        """A new branch holding the turns before user turn ``turn_number`` of the current
        branch; switches to it and returns its id."""
        if branch_name is not None and not branch_name.strip():
            raise BranchError("Branch name cannot be empty")
        branch = await self._run(self._create_branch, self._branch, turn_number, branch_name)
        self._branch = branch
        return branch

    async def create_branch_from_content(self, search_term: str,
                                         branch_name: str | None = None) -> str:
        """A new branch from the first user turn containing ``search_term``."""
        matches = await self.find_turns_by_content(search_term)
        if not matches:
            raise BranchError(f"No user turns found containing '{search_term}'")
        return await self.create_branch_from_turn(matches[0]["turn"], branch_name)

    async def switch_to_branch(self, branch_id: str) -> None:
        """Make ``branch_id`` the current branch."""
        if not await self._run(self._branch_exists, branch_id):
            raise BranchError(f"Branch '{branch_id}' does not exist")
        self._branch = branch_id

    async def delete_branch(self, branch_id: str, force: bool = False) -> None:
        """Delete a branch (its session goes to sessionsgit's trash). ``main`` cannot be
        deleted, nor the current branch unless ``force`` (which switches to ``main``)."""
        if not branch_id or not branch_id.strip():
            raise BranchError("Branch ID cannot be empty")
        if branch_id == MAIN:
            raise BranchError("Cannot delete the 'main' branch")
        if not await self._run(self._branch_exists, branch_id):
            raise BranchError(f"Branch '{branch_id}' does not exist")
        if branch_id == self._branch:
            if not force:
                raise BranchError(f"Cannot delete current branch '{branch_id}'. Use force=True "
                                  "or switch branches first")
            self._branch = MAIN
        if not await self._run(self.store.delete, self.branch_session_id(branch_id)):
            raise BranchError(f"Branch '{branch_id}' does not exist")

    async def list_branches(self) -> list[dict[str, Any]]:
        """Every branch as ``{branch_id, message_count, user_turns, is_current, created_at}``,
        oldest first."""
        return await self._run(self._list_branches)

    async def get_conversation_turns(self, branch_id: str | None = None) -> list[dict[str, Any]]:
        """The user turns of a branch as ``{turn, content, full_content, timestamp,
        can_branch}`` (``timestamp``: when the save that added the turn was made)."""
        return await self._run(self._turns, self.branch_session_id(branch_id))

    async def find_turns_by_content(self, search_term: str,
                                    branch_id: str | None = None) -> list[dict[str, Any]]:
        """The user turns whose text contains ``search_term`` (ASCII case-insensitive)."""
        pattern = re.compile(re.escape(search_term), re.IGNORECASE | re.ASCII)
        turns = await self.get_conversation_turns(branch_id)
        return [dict(turn, content=_preview(turn["full_content"])) for turn in turns
                if any(pattern.search(text) for text in _texts(turn["full_content"]))]

    # ---- blocking work (run in a thread) ---------------------------------------------------
    @staticmethod
    async def _run(function: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.to_thread(function, *args)

    def _messages(self, session_id: str) -> list[Message]:
        stored = self.store.load(session_id)
        return stored.messages if stored is not None else []

    def _pop(self, session_id: str) -> Any | None:
        while True:
            stored = self.store.load(session_id)
            if stored is None or not stored.messages:
                return None
            try:
                self.store.save(session_id, stored.messages[:-1],
                                expected_head=stored.metadata.head)
            except SessionConflictError:
                continue  # another writer got in first: pop what is latest now
            return stored.messages[-1]

    def _clear(self) -> None:
        for metadata in self._branch_sessions():
            if metadata.id != self.session_id:
                self.store.delete(metadata.id)
        while True:
            stored = self.store.load(self.session_id)
            if stored is None or not stored.messages:
                return
            try:
                self.store.save(self.session_id, [], expected_head=stored.metadata.head)
                return
            except SessionConflictError:
                continue

    def _branch_sessions(self) -> list[SessionMetadata]:
        """The metadata of every live session holding a branch of this session."""
        found = []
        for metadata in self.store.list():
            mark = metadata.extra.get(MARK)
            if metadata.id == self.session_id or (
                    isinstance(mark, dict) and mark.get("session") == self.session_id):
                found.append(metadata)
        return found

    def _branch_exists(self, branch_id: str) -> bool:
        stored = self.store.load(self.branch_session_id(branch_id))
        return stored is not None and self._is_branch(stored.metadata, branch_id)

    def _branch_used(self, branch_id: str) -> bool:
        """Whether a branch name was ever used here (live, or deleted into the Git store's trash):
        names are not reused."""
        session_id = self.branch_session_id(branch_id)
        if self.store.exists(session_id):
            return True
        return isinstance(self.store, GitSessionStore) and \
            any(d.id == session_id for d in self.store.list_deleted())

    def _create_branch(self, source_branch: str, turn_number: int,
                       branch_name: str | None) -> str:
        source_id = self.branch_session_id(source_branch)
        messages = self._messages(source_id)
        user_turns = [i for i, item in enumerate(messages) if _is_user(item)]
        if not isinstance(turn_number, int) or not 1 <= turn_number <= len(user_turns):
            raise BranchError(f"Turn {turn_number} does not contain a user message in branch "
                              f"'{source_branch}'")
        keep = user_turns[turn_number - 1]
        if branch_name is not None:
            candidates: Any = [branch_name]
        else:
            base = f"branch_from_turn_{turn_number}_{int(time.time())}"
            candidates = (base if n == 1 else f"{base}_{n}" for n in range(1, 10_000))
        for name in candidates:
            if name == MAIN or self._branch_used(name):
                if branch_name is not None:
                    raise BranchError(f"Branch ID '{name}' has already been used. Choose a new "
                                      "branch ID.")
                continue
            try:
                self.store.fork(source_id, self.branch_session_id(name), at=keep,
                                metadata=self._mark(name))
            except SessionConflictError:
                if branch_name is not None:
                    raise BranchError(f"Branch ID '{name}' has already been used. Choose a new "
                                      "branch ID.") from None
                continue
            return name
        raise BranchError("no free branch name")  # pragma: no cover - 10,000 names a second

    def _list_branches(self) -> list[dict[str, Any]]:
        branches = []
        for metadata in self._branch_sessions():
            branch = MAIN if metadata.id == self.session_id else metadata.extra[MARK]["branch"]
            stored = self.store.load(metadata.id)
            messages = stored.messages if stored is not None else []
            branches.append({
                "branch_id": branch,
                "message_count": len(messages),
                "user_turns": sum(1 for item in messages if _is_user(item)),
                "is_current": branch == self._branch,
                "created_at": metadata.created_at,
            })
        branches.sort(key=lambda b: (b["branch_id"] != MAIN, b["created_at"]))
        return branches

    def _turns(self, session_id: str) -> list[dict[str, Any]]:
        stored = self.store.load(session_id)
        if stored is None:
            return []
        indices = [i for i, item in enumerate(stored.messages) if _is_user(item)]
        times = self._added_at(session_id, indices, stored.metadata.updated_at)
        turns = []
        for number, index in enumerate(indices, start=1):
            content = stored.messages[index].get("content", "")
            turns.append({"turn": number, "content": _preview(content, 100),
                          "full_content": content, "timestamp": times[index],
                          "can_branch": True})
        return turns

    def _added_at(self, session_id: str, indices: list[int], fallback: str) -> dict[int, str]:
        """When each message at ``indices`` was added: the oldest save of the latest unbroken
        run of saves (newest first) that all held it (stores without history: ``fallback``)."""
        if not isinstance(self.store, GitSessionStore):
            return {i: fallback for i in indices}
        records = self.store.history(session_id) if indices else []
        times: dict[int, str] = {}
        pending = sorted(indices, reverse=True)
        held = 1 << 62
        for position, record in enumerate(records):
            held = min(held, record.message_count)
            while pending and pending[0] >= held:
                times[pending.pop(0)] = records[max(position - 1, 0)].time
        for index in pending:
            times[index] = records[-1].time if records else fallback
        return times
