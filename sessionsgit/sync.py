"""Push, pull and sync sessions with Git remotes.

Sessions travel as ``refs/heads/sessions/*`` (so plain ``git push``/``git fetch``/``git clone``
with that refspec work too) and are fetched into ``refs/remotes/<remote>/sessions/*``.

* ``pull`` fetches, then per remote session: creates it locally if missing, fast-forwards the
  local branch, or, when both sides extended it, keeps the remote version under the id and moves
  the local continuation to a new fork session (``parent_id`` = the id, label
  "... (diverged sync <date>)"). Nothing is lost and nothing is merged.
* ``push`` sends only sessions that are new on the remote or fast-forwards of it, judged
  against the ref advertisement of the push connection itself (fresher than the tracking refs,
  at no extra round trip); it never forces. A session the remote has moved on is reported in
  ``rejected`` ("pull first"). Tracking refs are updated after a push.
* Every remote ref moves only by compare-and-swap from the value read at the start of the
  push: the server's receive-pack checks it over HTTP, ssh and git://, and a remote on this
  machine (a path or file:// URL) is written in place (``git.local``): libgit2's local
  transport would force the update.
* ``pull`` fetches into a quarantine (``git.quarantine``) and takes in only sessions whose new
  objects pass ``git.validate``; the others are reported in ``rejected`` ("not taken in: ...")
  and none of their objects reach the store.
* ``sync`` is pull then push; afterwards both sides hold the same sessions.
* A LangGraph thread's other refs (every checkpoint branch, subgraph namespace and pending
  writes under ``refs/langgraph/<thread>/``) travel with its session, checked and refused with
  it, by the same rules (``integrations.langgraph_sync``); a diverged thread keeps both
  branches, reported in ``diverged_threads``.
* Deletions travel only with ``prune=True``: push deletes remote sessions this store deleted
  (its trash holds that very version, or a later one); pull deletes (to the local trash) local
  sessions whose remote-tracking ref disappeared from the remote, unless they were extended
  here since. Without prune the sides converge to the union: a session deleted on one side
  only comes back with the next sync.

``remote`` is a configured remote's name or, as with git, a path or URL (nothing is
configured then, and no remote-tracking refs are kept for it).

Rejections (by a server hook, or "pull first") are listed in ``SyncReport.rejected``; when
nothing at all could be pushed, ``push`` raises ``RemoteError`` listing them (the error's
``report`` attribute holds the report). Every failure raises ``RemoteError`` with one line.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pygit2

from .errors import (InvalidRevisionError, InvalidSessionIdError, RemoteError,
                     SessionConflictError, SessionNotFoundError, SessionsGitError)
from .git import layout, local as local_remote, validate
from .git.ancestry import contains as _contains
from .git.quarantine import Quarantine
from .git.refs import read_refs, recover_stale_locks
from .git.transport import (
    Callbacks,
    Credentials,
    Progress,
    connect_for_push,
    local_path,
    open_remote,
    push_updates,
    redact,
    translated,
)
from .ids import validate_session_id
from .integrations.langgraph_refs import LANGGRAPH_PREFIX
from .integrations.langgraph_sync import PullThreads, PushThreads
from .integrations.langgraph_sync import tracking_prefix as tracking_prefix_of_threads
from .listing import delete_session
from .metadata import now_iso
from .stores.base import last_message_id
from . import idcodec
from .stores.git import SESSION_PREFIX, GitSessionStore, ref_name_id, session_ref
from .stores.gittrash import trash_prefix

__all__ = ["Credentials", "SyncReport", "add_remote", "list_remotes", "remove_remote", "push",
           "pull", "sync", "install_diff_driver", "tracking_ref"]


@dataclass
class SyncReport:
    """What a push, pull or sync did, by session id: every field a list (``diverged`` holds
    (id, fork id) pairs; ``diverged_threads`` (thread id, the ``refs/langgraph/<thread>/``
    ref that holds this store's branch beside the remote's) pairs; ``rejected`` and
    ``damaged`` hold (id, reason) pairs; ``damaged`` sessions were not pushed). A thread
    counts as pushed or fetched when any of its refs was."""

    pushed: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    diverged: list[tuple[str, str]] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    damaged: list[tuple[str, str]] = field(default_factory=list)
    diverged_threads: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (pairs as lists)."""
        data = asdict(self)
        for key in ("diverged", "rejected", "damaged", "diverged_threads"):
            data[key] = [list(pair) for pair in getattr(self, key)]
        return data


#: How a pull's report starts the reason of a remote session it refused.
NOT_TAKEN_IN = "not taken in"


# ---- remotes ------------------------------------------------------------------------------
def fetch_refspec(remote: str) -> str:
    """The refspec that maps the remote's sessions to this repository's tracking refs."""
    return f"+{SESSION_PREFIX}*:refs/remotes/{remote}/sessions/*"


def tracking_ref(remote: str, session_id: str) -> str:
    """The remote-tracking ref of one session."""
    return f"refs/remotes/{remote}/sessions/{idcodec.encode(session_id)}"


def add_remote(store: GitSessionStore, name: str, url: str) -> None:
    """Configure remote ``name`` (plain ``git fetch <name>`` then fetches sessions only)."""
    try:
        store.repo.remotes.create(name, url, fetch_refspec(name))
    except pygit2.AlreadyExistsError:
        raise RemoteError(f"a remote named {name!r} already exists") from None
    except (ValueError, pygit2.GitError) as exc:
        raise RemoteError(f"cannot add remote {name!r}: {redact(str(exc))}") from None


def list_remotes(store: GitSessionStore) -> list[tuple[str, str]]:
    """(name, url) of every configured remote, passwords in URLs redacted."""
    return [(remote.name or "", redact(remote.url or "")) for remote in store.repo.remotes]


def _open(repo: pygit2.Repository, name: str) -> tuple[pygit2.Remote, bool]:
    """(remote, whether it keeps tracking refs): a configured remote, else (as git does) a
    path or URL given directly."""
    if name not in repo.remotes.names() and ("/" in name or ":" in name or "\\" in name
                                              or Path(name).exists()):
        try:
            return repo.remotes.create_anonymous(name), False
        except (ValueError, pygit2.GitError) as exc:
            raise RemoteError(f"cannot use {redact(name)!r} as a remote: "
                              f"{redact(str(exc))}") from None
    return open_remote(repo, name), True


def _require_target(name: str, remote: pygit2.Remote) -> None:
    """A push to a local path that does not exist yet fails saying how to create it."""
    url = remote.url or ""
    path = local_path(url)
    if path is not None and not path.exists():
        where = redact(name) if name == url else f"{name} ({redact(url)})"
        raise RemoteError(f"push to {where} failed: no Git repository at that path; create "
                          f"one with `git init --bare {shlex.quote(str(path))}`")


def remove_remote(store: GitSessionStore, name: str) -> None:
    """Forget remote ``name`` and its remote-tracking refs (its LangGraph ones too, which no
    refspec maps)."""
    open_remote(store.repo, name)
    try:
        store.repo.remotes.delete(name)
    except (KeyError, ValueError, pygit2.GitError) as exc:
        raise RemoteError(f"cannot remove remote {name!r}: {exc}") from None
    for ref in store.refs(tracking_prefix_of_threads(name)):
        store.drop_ref(ref)


# ---- pull ---------------------------------------------------------------------------------
def pull(store: GitSessionStore, remote: str = "origin", *, prune: bool = False,
         credentials: Credentials | None = None, progress: Progress | None = None) -> SyncReport:
    """Fetch the remote's sessions and bring them into the store (see the module docstring)."""
    return _pull(store, remote, prune, credentials, progress)[0]


def _pull(store: GitSessionStore, name: str, prune: bool, credentials: Credentials | None,
          progress: Progress | None) -> tuple[SyncReport, set[str]]:
    """Fetch into quarantine, check every session that brought new objects (with its
    LangGraph refs), admit the good ones' objects, then take their heads in; refused sessions
    are reported in ``rejected`` and change nothing here."""
    repo = store.repo
    remote, tracked = _open(repo, name)
    _recover_stale_locks(store, remote)
    callbacks = Callbacks(credentials, progress)
    before = _tracking(store, name) if tracked else {}
    threads = PullThreads(store, name if tracked else None, prune)
    refused: list[tuple[str, str]] = []
    heads: dict[str, pygit2.Oid] = {}
    present: set[str] = set()
    local = _local_git_dir(remote, "fetch from")
    quarantine = Quarantine(repo, borrow=local / "objects" if local is not None else None)
    try:
        with translated("fetch from", remote, callbacks):
            if local is not None:  # read in place: libgit2 fails on a single bad ref name
                fetching = remote
            else:
                fetching = quarantine.repo.remotes.create_anonymous(remote.url or "")
                fetching.connect(callbacks=callbacks)
            listed = _advertisement(fetching, local, None)
            advertised = _advertised_sessions(listed, refused)
            threads.read(listed, advertised)
            if local is None:
                wanted = [enc for enc, oid in advertised.items() if not repo.odb.exists(oid)]
                extra = threads.wanted(repo)
                if wanted or extra:
                    quarantine.borrow_refs(wanted if not extra else None)
                    # one glob unless a bad name must be left out (libgit2 matches every ref
                    # against every refspec); a refspec without destination writes no ref
                    specs = ([f"+{SESSION_PREFIX}*:refs/fetched/*"]
                             if not refused and threads.may_glob and len(wanted) > 16
                             else [f"+{SESSION_PREFIX}{e}" for e in wanted])
                    specs += ([f"+{LANGGRAPH_PREFIX}*:refs/fetched-langgraph/*"]
                              if not refused and threads.may_glob and len(extra) > 16
                              else [f"+{ref}" for ref in extra])
                    fetching.fetch(specs, callbacks=callbacks,
                                   prune=pygit2.enums.FetchPrune.NO_PRUNE,
                                   message="sessionsgit: fetch")
        bad = False
        admitted: set[pygit2.Oid] = set()
        for enc, oid in sorted(advertised.items()):
            label = idcodec.decode(enc) or enc
            try:
                new = validate.check_session(quarantine.repo, oid, quarantine.known)
                new |= threads.check(quarantine.repo, enc, quarantine.known, new)
            except validate.Invalid as exc:
                refused.append((label, f"{NOT_TAKEN_IN}: the remote's version is damaged: "
                                       f"{exc}"))
                present.add(label)
                bad = True
                continue
            session_id = ref_name_id(quarantine.repo, enc, oid)
            if session_id is None:
                refused.append((enc, f"{NOT_TAKEN_IN}: the remote's ref name encodes no "
                                     "session id"))
                continue
            heads[session_id] = oid
            present.add(session_id)
            admitted |= new
        with translated("fetch from", remote, callbacks):
            quarantine.admit(admitted, everything=not bad and local is None,
                             progress=progress)
    finally:
        quarantine.close()
    report, unchanged = _take_in(store, name, heads, before, prune, present, threads)
    if tracked:
        for session_id, oid in heads.items():
            if before.get(session_id) != oid:
                _set_tracking(store, name, session_id, oid)
    threads.take_in(heads, report.fetched + report.created + [d for d, _ in report.diverged],
                    report.pruned)
    unchanged -= threads.changed
    report.fetched = sorted(set(report.fetched) | (threads.changed - set(report.created)))
    report.unchanged = sorted(unchanged)
    report.diverged_threads = sorted(threads.diverged.items())
    report.rejected = refused + report.rejected + threads.rejected
    return report, unchanged


@dataclass
class _Head:
    """One ref as a remote advertises it."""

    name: str
    oid: pygit2.Oid


def _advertisement(remote: pygit2.Remote, local: Path | None,
                   push_callbacks: Callbacks | None) -> list[Any]:
    """The remote's refs (objects with ``name`` and ``oid``): read in place for a remote on
    this machine, else from the connection (opened here for a push, with
    ``push_callbacks``), whose updates then compare against exactly this advertisement."""
    if local is not None:
        return [_Head(n, o) for prefix in (SESSION_PREFIX, LANGGRAPH_PREFIX)
                for n, o in read_refs(local, prefix)[0].items()]
    if push_callbacks is not None:
        connect_for_push(remote, push_callbacks)
    return list(remote.list_heads(connect=False))


def _local_git_dir(remote: pygit2.Remote, action: str) -> Path | None:
    """The Git directory of a remote on this machine (a path or file:// URL), else None;
    ``RemoteError`` when that path holds no repository."""
    path = local_path(remote.url or "")
    if path is None:
        return None
    git_dir = path / ".git" if (path / ".git").is_dir() else path
    if not (git_dir / "objects").is_dir() or not (git_dir / "refs").is_dir():
        where = f"{remote.name} ({redact(remote.url or '')})" if remote.name else redact(str(path))
        raise RemoteError(f"{action} {where} failed: no Git repository at that path")
    return git_dir


def _advertised_sessions(advertised: Iterable[Any], refused: list[tuple[str, str]]
                         ) -> dict[str, pygit2.Oid]:
    """{ref name below refs/heads/sessions/: target} of a ref advertisement; names that cannot
    be a session's (``..``, nested paths, invalid ref names) are added to ``refused``."""
    found = {}
    for head in advertised:
        name = head.name
        if not name.startswith(SESSION_PREFIX):
            continue
        encoded = name[len(SESSION_PREFIX):]
        if name.endswith("^{}"):
            continue  # the peeled value of an annotated tag: its ref is listed on its own
        if ("/" in encoded or not pygit2.reference_is_valid_name(name)
                or (idcodec.decode(encoded) is None and not idcodec.is_hashed(encoded))):
            refused.append((encoded[:80], f"{NOT_TAKEN_IN}: the remote's ref {name[:120]!r} "
                                          "is not the name of a session"))
            continue
        found[encoded] = head.oid
    return found


def _take_in(store: GitSessionStore, name: str, heads: dict[str, pygit2.Oid],
             before: dict[str, pygit2.Oid], prune: bool, present: set[str],
             threads: PullThreads) -> tuple[SyncReport, set[str]]:
    """Bring fetched remote heads into the store (``before``: the tracking refs before;
    ``present``: every session the remote has, refused ones included)."""
    repo = store.repo
    report, unchanged = SyncReport(), set[str]()
    for session_id, theirs in sorted(heads.items()):
        if not _pull_one(store, session_id, theirs, prune, report, unchanged, threads):
            report.rejected.append((session_id, "changed locally during pull; pull again"))
    if prune:
        for session_id, known in sorted(before.items()):
            if session_id in present:
                continue
            ours = store.ref_target(session_ref(session_id))
            if ours is not None and (ours == known or _contains(repo, known, ours)):
                try:
                    delete_session(store, session_id)  # a thread: with all its branches
                    report.pruned.append(session_id)
                except SessionsGitError as exc:
                    report.rejected.append((session_id, f"not deleted here: {exc}"))
            store.move_ref(tracking_ref(name, session_id), None, known)
    report.unchanged = sorted(unchanged)
    return report, unchanged


def _pull_one(store: GitSessionStore, session_id: str, theirs: pygit2.Oid, prune: bool,
              report: SyncReport, unchanged: set[str], threads: PullThreads) -> bool:
    """Bring one remote head in; False when a local writer moved the session meanwhile. A
    diverged LangGraph thread whose branches hold both versions makes no fork session."""
    repo = store.repo
    ref = session_ref(session_id)
    ours = store.ref_target(ref)
    if ours is None:
        if prune and _deleted_here(store, session_id, theirs):
            return True  # deleted in this store: push --prune removes it from the remote
        if not store.move_ref(ref, theirs, None, message="sessionsgit: pull (new session)"):
            return False
        report.created.append(session_id)
    elif ours == theirs or _contains(repo, ours, theirs):
        unchanged.add(session_id)  # same, or only ours has news: push sends them
    elif _contains(repo, theirs, ours):
        if not store.move_ref(ref, theirs, ours, message="sessionsgit: pull (fast-forward)"):
            return False
        report.fetched.append(session_id)
    else:
        settled = threads.settle(session_id, ours, theirs)
        if settled is not None:
            return settled
        fork_id = _move_to_fork(store, session_id, ours, theirs)
        if fork_id is None:
            return False
        report.diverged.append((session_id, fork_id))
    return True


def _move_to_fork(store: GitSessionStore, session_id: str, ours: pygit2.Oid,
                  theirs: pygit2.Oid) -> str | None:
    """Fork the local continuation ``ours`` off as a new session (``parent_id`` = the id), then
    move the session to the remote version. Returns the fork's id, or None (and no fork) when
    a local writer moved the session meanwhile."""
    try:
        local = store.head_metadata(session_id)
    except SessionsGitError:
        return None
    if local is None or local.head != str(ours):
        return None
    when = now_iso()[:16].replace("T", " ")
    try:
        fork_id = store.fork(session_id, at=ours, metadata={
            "label": f"{local.label or session_id} (diverged sync {when})",
            "fork_message_id": _last_shared_message_id(store.repo, ours, theirs),
            "extra": local.extra})
    except (InvalidRevisionError, SessionConflictError, SessionNotFoundError):
        return None
    if store.move_ref(session_ref(session_id), theirs, ours,
                      message="sessionsgit: pull (diverged; local continuation moved to a fork)"):
        return fork_id
    store.move_ref(session_ref(fork_id), None, store.ref_target(session_ref(fork_id)))
    return None


def _last_shared_message_id(repo: pygit2.Repository, ours: pygit2.Oid,
                            theirs: pygit2.Oid) -> str | None:
    """The id of the last message both versions hold (read from trees and one blob)."""
    try:
        mine = layout.read_state(repo, repo[ours].peel(pygit2.Commit).tree_id).blobs
        other = layout.read_state(repo, repo[theirs].peel(pygit2.Commit).tree_id).blobs
        shared = next((i for i, (x, y) in enumerate(zip(mine, other)) if x != y),
                      min(len(mine), len(other)))
        if shared == 0:
            return None
        return last_message_id([json.loads(repo.odb.read(mine[shared - 1])[1])])
    except (KeyError, ValueError, pygit2.GitError, layout.LayoutError):
        return None


# ---- push ---------------------------------------------------------------------------------
def push(store: GitSessionStore, remote: str = "origin", ids: Iterable[str] | None = None, *,
         prune: bool = False, credentials: Credentials | None = None,
         progress: Progress | None = None) -> SyncReport:
    """Send new and fast-forwarded sessions (all, or ``ids``) to the remote; never forces."""
    return _push(store, remote, ids, prune, credentials, progress)[0]


def _push(store: GitSessionStore, name: str, ids: Iterable[str] | None, prune: bool,
          credentials: Credentials | None, progress: Progress | None,
          skip: frozenset[str] = frozenset()) -> tuple[SyncReport, set[str]]:
    """Push (see ``push``); sessions in ``skip`` (refused by the pull before) are left out. A
    LangGraph thread's refs go with its session."""
    repo = store.repo
    remote, tracked = _open(repo, name)
    _recover_stale_locks(store, remote)
    _require_target(name, remote)
    wanted = _wanted_ids(store, ids)
    report, unchanged = SyncReport(), set()
    store.list()
    report.damaged = [(sid, why) for sid, why in store.last_damaged
                      if wanted is None or sid in wanted]
    skipped = {sid for sid, _ in report.damaged}
    ours_all = {sid: oid for sid, oid in _ids_below(store, SESSION_PREFIX).items()
                if (wanted is None or sid in wanted) and sid not in skipped}
    callbacks = Callbacks(credentials, progress)
    local = _local_git_dir(remote, "push to")
    threads = PushThreads(store, name if tracked else None, skip)
    if not tracked:
        name = redact(name)
    updates: dict[str, pygit2.Oid | None] = {}  # session id -> new remote head (None: delete)
    with translated("push to", remote, callbacks):
        listed = _advertisement(remote, local, callbacks)
        heads = _session_heads(repo, listed)
        threads.read(listed)
        for session_id, ours in sorted(ours_all.items()):
            if session_id in skip:
                continue
            theirs = heads.get(session_id)
            if theirs is None or _contains(repo, ours, theirs):
                updates[session_id] = ours
            elif theirs == ours or _contains(repo, theirs, ours):
                unchanged.add(session_id)
                if tracked:
                    _set_tracking(store, name, session_id, theirs)
            elif threads.replaces_head(session_id, ours, theirs):
                updates[session_id] = ours  # a thread: a remote branch keeps theirs
            else:
                report.rejected.append((session_id, "the remote has changes not pulled here; "
                                                    "pull first"))
        if prune:
            for session_id, theirs in sorted(heads.items()):
                if (session_id not in ours_all and session_id not in skip
                        and (wanted is None or session_id in wanted)
                        and _deleted_here(store, session_id, theirs)):
                    updates[session_id] = None
        # the source is the exact commit checked above, even if a save moves the branch now;
        # the remote ref moves only from what this connection advertised
        moves = {session_ref(sid): (new, heads.get(sid)) for sid, new in updates.items()}
        moves.update(threads.moves([sid for sid in sorted(ours_all) if sid not in skip],
                                   [sid for sid, new in updates.items() if new is None], prune,
                                   lambda sid, oid: _deleted_here(store, sid, oid)))
        if local is None:
            push_updates(remote, moves, callbacks, repo)
        elif moves:
            local_remote.push(repo, local, moves, callbacks.rejected, progress)
    for session_id, new in updates.items():
        refused = callbacks.rejected.get(session_ref(session_id))
        if refused is not None:
            report.rejected.append((session_id, _refusal(refused)))
        elif new is None:
            report.pruned.append(session_id)
            if tracked:
                store.drop_ref(tracking_ref(name, session_id))
        else:
            report.pushed.append(session_id)
            if tracked:
                _set_tracking(store, name, session_id, new)
    threads.finish(lambda ref: _refusal(callbacks.rejected[ref])
                   if ref in callbacks.rejected else None)
    report.pushed = sorted(set(report.pushed) | threads.pushed)
    report.rejected += threads.rejected
    unchanged -= threads.pushed | {sid for sid, _ in threads.rejected}
    report.unchanged = sorted(unchanged)
    if report.rejected and not report.pushed and not report.pruned:
        details = "; ".join(f"{sid}: {why}" for sid, why in report.rejected)
        hints = " ".join(callbacks.server_messages)
        error = RemoteError(redact(f"push to {name} ({remote.url}) rejected: {details}"
                                   + (f" (remote said: {hints})" if hints else "")))
        error.report = report  # type: ignore[attr-defined]
        raise error
    return report, unchanged


def _refusal(refused: str) -> str:
    """Why the remote refused one ref update, with what to do when it moved meanwhile."""
    if refused == local_remote.STALE_REMOTE:
        return refused
    if "failed to update ref" in refused or "stale info" in refused:
        return f"refused by the remote: {refused} (another push got there first?); pull first"
    return f"refused by the remote: {refused}"


def _wanted_ids(store: GitSessionStore, ids: Iterable[str] | None) -> set[str] | None:
    if ids is None:
        return None
    wanted = set()
    for session_id in ([ids] if isinstance(ids, str) else ids):
        try:
            validate_session_id(session_id)
        except InvalidSessionIdError as exc:
            raise RemoteError(str(exc)) from None
        if store.ref_target(session_ref(session_id)) is None and \
                not store.refs(trash_prefix(session_id)):
            raise RemoteError(f"no session {session_id!r} in this store")
        wanted.add(session_id)
    return wanted


# ---- sync ---------------------------------------------------------------------------------
def sync(store: GitSessionStore, remote: str = "origin", *, prune: bool = False,
         credentials: Credentials | None = None, progress: Progress | None = None) -> SyncReport:
    """Pull, then push: afterwards both sides hold the same sessions."""
    pulled, pull_unchanged = _pull(store, remote, prune, credentials, progress)
    try:
        refused = frozenset(sid for sid, why in pulled.rejected if why.startswith(NOT_TAKEN_IN))
        pushed, push_unchanged = _push(store, remote, None, prune, credentials, progress,
                                       refused)
    except RemoteError as exc:
        partial = getattr(exc, "report", None)
        if partial is not None:
            exc.report = _merge(pulled, partial, set())  # type: ignore[attr-defined]
        raise
    return _merge(pulled, pushed, pull_unchanged & push_unchanged)


def _recover_stale_locks(store: GitSessionStore, remote: pygit2.Remote) -> None:
    """Remove ref locks a killed pull or push left, here and, for a remote that is a path on
    this machine, in that repository too (only stale ones: see ``refs.remove_stale_lock``)."""
    store.recover_stale_locks()
    path = local_path(remote.url or "")
    if path is not None and path.is_dir():
        git_dir = path / ".git" if (path / ".git").is_dir() else path
        if (git_dir / "refs").is_dir():
            recover_stale_locks(git_dir, store.stale_lock_seconds)


def _merge(pulled: SyncReport, pushed: SyncReport, unchanged: set[str]) -> SyncReport:
    return SyncReport(pushed=pushed.pushed, fetched=pulled.fetched, created=pulled.created,
                      diverged=pulled.diverged, pruned=pulled.pruned + pushed.pruned,
                      unchanged=sorted(unchanged), rejected=pulled.rejected + pushed.rejected,
                      damaged=pushed.damaged, diverged_threads=pulled.diverged_threads)


# ---- diff driver --------------------------------------------------------------------------
ATTRIBUTES = ("messages/**/*.json diff=sessionsgit", "session.json diff=sessionsgit")


def install_diff_driver(store: GitSessionStore) -> str:
    """Make ``git diff``/``git log -p`` render message blobs as text (repo config + attributes).
    The driver runs ``sessionsgit textconv`` from PATH (it survives a moved virtualenv); only
    when no ``sessionsgit`` is on PATH, this Python's ``-m sessionsgit.textconv``. Returns
    what it edited, one line each."""
    on_path = shutil.which("sessionsgit") is not None
    command = ("sessionsgit textconv" if on_path
               else f"{shlex.quote(sys.executable)} -m sessionsgit.textconv")
    config = Path(store.repo.path) / "config"
    store.repo.config["diff.sessionsgit.textconv"] = command
    attributes = Path(store.repo.path) / "info" / "attributes"
    attributes.parent.mkdir(parents=True, exist_ok=True)
    existing = attributes.read_text(encoding="utf-8").splitlines() if attributes.exists() else []
    missing = [line for line in ATTRIBUTES if line not in existing]
    if missing:
        with open(attributes, "a", encoding="utf-8") as handle:
            if existing and not attributes.read_text(encoding="utf-8").endswith("\n"):
                handle.write("\n")
            handle.write("".join(line + "\n" for line in missing))
    lines = [f"edited {config}: diff.sessionsgit.textconv = {command}",
             f"edited {attributes}: " + (f"added {', '.join(missing)}" if missing
                                          else f"already has {', '.join(ATTRIBUTES)}")]
    if not on_path:
        lines.append("note: no `sessionsgit` on PATH, so the driver runs this Python by its "
                     "path: run install-diff-driver again if this environment moves")
    if not store.repo.is_bare:
        lines.append(f"note: {store.repo.workdir} has a working tree: these attributes also "
                     "apply to its own files named session.json and messages/**/*.json")
    return "\n".join(lines)


# ---- helpers ------------------------------------------------------------------------------
def _session_heads(repo: pygit2.Repository, heads: Iterable[Any]) -> dict[str, pygit2.Oid]:
    """Remote sessions (id -> head) from a ref advertisement (fetched already, so a hashed name's
    commit is here); names that encode no id (nested paths and the like) are left alone."""
    found = {}
    for head in heads:
        name = head.name
        if not name.startswith(SESSION_PREFIX):
            continue
        session_id = ref_name_id(repo, name[len(SESSION_PREFIX):], head.oid)
        if session_id is not None:
            found[session_id] = head.oid
    return found


def _ids_below(store: GitSessionStore, prefix: str) -> dict[str, pygit2.Oid]:
    """{session id: target} of the refs directly under ``prefix`` whose names encode an id."""
    found = {}
    for name, target in store.refs(prefix).items():
        encoded = name[len(prefix):]
        session_id = ref_name_id(store.repo, encoded, target) if "/" not in encoded else None
        if session_id is not None:
            found[session_id] = target
    return found


def _tracking(store: GitSessionStore, remote: str) -> dict[str, pygit2.Oid]:
    return _ids_below(store, f"refs/remotes/{remote}/sessions/")


def _deleted_here(store: GitSessionStore, session_id: str, theirs: pygit2.Oid) -> bool:
    """Whether this store deleted the session holding everything the remote version holds."""
    return any(trashed == theirs or _contains(store.repo, trashed, theirs)
               for trashed in store.refs(trash_prefix(session_id)).values())


def _set_tracking(store: GitSessionStore, remote: str, session_id: str,
                  target: pygit2.Oid) -> None:
    """Point a remote-tracking ref at what the remote holds; if another process moved it
    meanwhile, the next fetch settles it."""
    name = tracking_ref(remote, session_id)
    current = store.ref_target(name)
    if current != target:
        store.move_ref(name, target, current, message="sessionsgit: push")
