"""What ``sessionsgit pull``/``push``/``sync`` do with a LangGraph thread's own refs (layout:
``langgraph_refs``): every checkpoint branch ``refs/langgraph/<thread>/=<ns>/<name>`` and every
pending-writes tree ``refs/langgraph/<thread>/w/=<ns>/<id>`` travels with the thread's session
(the same selection, refused with it), checked on arrival as strictly as the session, never
forced. ``sessionsgit.sync`` calls ``PullThreads`` and ``PushThreads``; stdlib and pygit2 only.

* A branch new on one side is created on the other; one side's ancestor of the other's is
  fast-forwarded (a push sends it, a pull takes it). Both sides went on from one checkpoint: a
  pull keeps both, the ref taking the remote's branch and the local one moving to a new ref
  named after its first checkpoint, which the next push adds to the remote; a push leaves such
  a remote ref alone and reports it ("pull first").
* The session branch of a diverged thread whose branches hold both versions goes to the newer
  checkpoint (LangGraph's "latest" is the newest across branches), without a fork session; a
  push may move the remote's session branch to a newer checkpoint while a remote branch that it
  keeps holds the one replaced.
* Pending writes only grow: the side holding a superset wins. Writes a later checkpoint already
  took into its tree are not taken in again, and such a local ref is dropped (as the saver drops
  it); other differences keep each side's own and are reported.
* With prune and a configured remote (whose ``refs/remotes/<remote>/langgraph/...`` remember
  the last sync), a ref deleted (or rewritten by ``prune``) on one side goes on the other only if
  that side did not move it since.
* A pull that adds or moves a thread's branches drops its checkpoint-id index first (a cache: the
  saver rebuilds it by walking), so every saver, new or running, finds every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import pygit2

from .. import idcodec
from ..git import validate
from ..git.ancestry import contains
from ..stores.git import GitSessionStore, session_ref
from .langgraph_refs import (LANGGRAPH_PREFIX, LATE_WRITES, LG_DIR, PARENT_WRITES, ThreadIndex,
                             commit_trailer, ns_component)

_ROOT = "="

#: {name below the thread's prefix (``=/<b>``, ``w/=<ns>/<id>``): target}
Refs = dict[str, pygit2.Oid]
#: {encoded thread: its refs}
ByThread = dict[str, Refs]


@dataclass(frozen=True)
class Kind:
    """What a ref below a thread's prefix is: pending writes or a branch, of which namespace
    component, and its last component (a branch's name, the writes' checkpoint id)."""

    writes: bool
    ns: str
    last: str


def kind(rel: str) -> Kind | None:
    """The kind of ``rel`` (a name below a thread's prefix), None for any other shape."""
    parts = rel.split("/")
    if len(parts) == 2 and _is_ns(parts[0]) and parts[1]:
        return Kind(False, parts[0], parts[1])
    if len(parts) == 3 and parts[0] == "w" and _is_ns(parts[1]) and parts[2]:
        return Kind(True, parts[1], parts[2])
    return None


def _is_ns(component: str) -> bool:
    return component == _ROOT or (component.startswith(_ROOT) and _is_name(component[1:]))


def _is_name(component: str) -> bool:
    return idcodec.decode(component) is not None or idcodec.is_hashed(component)


def tracking_prefix(remote: str) -> str:
    """Where a configured remote's LangGraph refs are remembered as of the last sync."""
    return f"refs/remotes/{remote}/langgraph/"


def group(refs: dict[str, pygit2.Oid], prefix: str = LANGGRAPH_PREFIX) -> ByThread:
    """Full-named refs under ``prefix`` by encoded thread; names of any other shape left out."""
    found: ByThread = {}
    for name, target in refs.items():
        thread, _, rel = name[len(prefix):].partition("/")
        if name.startswith(prefix) and _is_name(thread) and kind(rel) is not None:
            found.setdefault(thread, {})[rel] = target
    return found


# ---- pull ---------------------------------------------------------------------------------
class PullThreads:
    """One pull's LangGraph refs: read from the remote's advertisement (``read``), checked in
    quarantine together with their thread's session (``check``), then taken in (``settle``
    for a diverged session branch, ``take_in`` for the rest). What it did is in ``changed``
    (thread ids), ``diverged`` (thread id -> the ref that holds the local branch) and
    ``rejected``."""

    def __init__(self, store: GitSessionStore, remote: str | None, prune: bool) -> None:
        """``remote``: a configured remote's name (it has tracking refs), else None."""
        self.store, self.remote, self.prune = store, remote, prune
        self._tracked = group(store.refs(tracking_prefix(remote)), tracking_prefix(remote)) \
            if remote is not None else {}
        self._here = group(store.refs(LANGGRAPH_PREFIX))  # as the pull starts
        self._advertised: ByThread = {}
        self._bad: dict[str, str] = {}
        self._others = False  # refs of threads the remote has no session of
        self._accepted: ByThread = {}
        self._done: set[str] = set()
        self.changed: set[str] = set()
        self.diverged: dict[str, str] = {}
        self.rejected: list[tuple[str, str]] = []

    def read(self, advertised: Iterable[Any], sessions: Iterable[str]) -> None:
        """Note the LangGraph refs of the advertised ``sessions`` (encoded names); refs of a
        thread the remote has no session of are not this pull's to take."""
        threads = set(sessions)
        for head in advertised:
            name = head.name
            thread, _, rel = name[len(LANGGRAPH_PREFIX):].partition("/")
            if not name.startswith(LANGGRAPH_PREFIX) or name.endswith("^{}"):
                continue
            if thread not in threads:
                self._others = True
                continue
            if not pygit2.reference_is_valid_name(name) or kind(rel) is None:
                self._bad.setdefault(thread, name)
            else:
                self._advertised.setdefault(thread, {})[rel] = head.oid

    @property
    def may_glob(self) -> bool:
        """Whether one ``refs/langgraph/*`` refspec fetches only refs this pull checks (and
        no bad name trips libgit2's matching of every ref against it)."""
        return not self._bad and not self._others

    def wanted(self, repo: pygit2.Repository) -> list[str]:
        """The full names of the refs whose targets ``repo`` (the store) lacks: to fetch."""
        return [f"{LANGGRAPH_PREFIX}{thread}/{rel}"
                for thread, refs in sorted(self._advertised.items())
                for rel, oid in sorted(refs.items()) if not repo.odb.exists(oid)]

    def check(self, repo: pygit2.Repository, thread: str,
              known: Callable[[pygit2.Oid], bool], session: set[pygit2.Oid]) -> set[pygit2.Oid]:
        """Raise ``validate.Invalid`` unless every LangGraph ref of ``thread`` is what the saver
        writes: a branch names a checkpoint commit of its namespace with the session shape (a
        subgraph's carry no session metadata), pending writes a flat tree of bounded blobs.
        ``session``: the objects its session brought (checked already). Returns the objects
        the refs bring."""
        bad = self._bad.get(thread)
        if bad is not None:
            raise validate.Invalid(f"its LangGraph ref {bad[:160]!r} is not the name of a "
                                   "checkpoint branch or of pending writes")
        refs = self._advertised.get(thread, {})
        here = self._here.get(thread, {})
        checked = set(session)
        for rel, oid in sorted(refs.items()):
            if here.get(rel) == oid:
                continue  # this very ref is here already: checked when it came, or made here
            what = kind(rel)
            assert what is not None  # (read() kept only these)

            def seen(candidate: pygit2.Oid, head: pygit2.Oid = oid) -> bool:
                return known(candidate) or (candidate != head and candidate in checked)
            try:
                if what.writes:
                    checked |= validate.check_flat_tree(repo, oid, seen, "pending writes")
                    continue
                checked |= validate.check_session(repo, oid, seen, metadata=what.ns == _ROOT)
                trailer = commit_trailer(repo, oid)
                if trailer is None or ns_component(trailer.checkpoint_ns) != what.ns:
                    raise validate.Invalid(f"commit {oid} is no checkpoint of that namespace")
            except validate.Invalid as exc:
                raise validate.Invalid(f"its LangGraph ref {rel}: {exc}") from None
        if refs or thread in self._tracked:
            self._accepted[thread] = refs
        return checked

    def settle(self, session_id: str, ours: pygit2.Oid, theirs: pygit2.Oid) -> bool | None:
        """A session branch that diverged: None unless it is a thread whose branches (the
        remote's taken in first) hold both versions; then it goes to the newer checkpoint
        (True; False when a local writer moved it meanwhile), and no fork session is made."""
        self._take_in_thread(session_id)
        repo = self.store.repo
        mine, other = commit_trailer(repo, ours), commit_trailer(repo, theirs)
        if mine is None or other is None or mine.checkpoint_ns or other.checkpoint_ns:
            return None
        roots = {rel: oid for rel, oid in self._local(session_id).items()
                 if (k := kind(rel)) is not None and not k.writes and k.ns == _ROOT}
        holder = _holder(repo, roots, ours)
        if holder is None or _holder(repo, roots, theirs) is None:
            return None
        self.diverged.setdefault(session_id, holder)
        self.changed.add(session_id)
        if mine.checkpoint_id > other.checkpoint_id:
            return True  # ours is the latest: the push moves the remote's session branch
        return self.store.move_ref(session_ref(session_id), theirs, ours,
                                   message="sessionsgit: pull (diverged thread: newer checkpoint)")

    def take_in(self, sessions: Iterable[str], moved: Iterable[str],
                pruned: Iterable[str] = ()) -> None:
        """Take in the LangGraph refs of every accepted thread among ``sessions`` that is here
        now; of those whose session branch ``moved``, make sure a branch holds its head (a
        remote written by a sessionsgit that pushed session branches only). Then remember
        what the remote holds (and forget the ``pruned`` sessions')."""
        sessions = sorted(sessions)
        for session_id in sessions:
            self._take_in_thread(session_id)
        for session_id in sorted(set(moved)):
            self._hold_head(session_id)
        self._track(sessions, pruned)

    # ---- one thread ---------------------------------------------------------------------
    def _local(self, session_id: str) -> Refs:
        prefix = _prefix(session_id)
        return {name[len(prefix):]: oid for name, oid in self.store.refs(prefix).items()
                if kind(name[len(prefix):]) is not None}

    def _take_in_thread(self, session_id: str) -> None:
        if session_id in self._done:
            return
        self._done.add(session_id)
        thread = idcodec.encode(session_id)
        theirs_all = self._accepted.get(thread)
        if theirs_all is None or self.store.ref_target(session_ref(session_id)) is None:
            return  # refused, or its session is not taken in (deleted here, with prune)
        repo = self.store.repo
        ours_all = self._local(session_id)
        tracked = self._tracked.get(thread, {})
        final = dict(ours_all)
        steps: list[list[tuple[str, pygit2.Oid | None, pygit2.Oid | None]]] = []
        for rel, theirs in sorted(theirs_all.items()):
            what = kind(rel)
            if what is None or what.writes:
                continue
            ours = ours_all.get(rel)
            if ours is None:
                if not (self.prune and tracked.get(rel) == theirs):  # else deleted here since
                    steps.append([(rel, theirs, None)])
                    final[rel] = theirs
            elif ours == theirs or contains(repo, ours, theirs):
                continue  # the same, or only ours has news: push sends them
            elif contains(repo, theirs, ours) or (self.prune and tracked.get(rel) == ours):
                steps.append([(rel, theirs, ours)])  # (with prune: rewritten there, not here)
                final[rel] = theirs
            else:
                siblings = {r: o for r, o in final.items() if r != rel and
                            (k := kind(r)) is not None and not k.writes and k.ns == what.ns}
                holder = _holder(repo, siblings, ours)
                group_steps = []
                if holder is None:
                    holder = _unique(f"{what.ns}/{_branch_start(repo, ours, theirs)}",
                                     set(final) | set(theirs_all))
                    group_steps.append((holder, ours, None))
                    final[holder] = ours
                steps.append(group_steps + [(rel, theirs, ours)])
                final[rel] = theirs
                self.diverged.setdefault(session_id, holder)
        if self.prune:
            head = self.store.ref_target(session_ref(session_id))
            for rel, known in sorted(tracked.items()):
                if rel not in theirs_all and ours_all.get(rel) == known and \
                        (head is None or _holder(repo, {rel: known}, head) is None):
                    steps.append([(rel, None, known)])  # deleted there, not moved here since
                    final.pop(rel)  # (but never the branch of the session's head)
        planned = {rel for group_steps in steps for rel, _new, _old in group_steps}
        changed_ns = {k.ns for rel in planned if (k := kind(rel)) is not None}
        folds = _Folds(repo, final)
        writes_steps = []
        for rel in sorted(set(theirs_all) | set(ours_all)):
            what = kind(rel)
            if what is None or not what.writes or rel in planned or \
                    (rel not in theirs_all and what.ns not in changed_ns):
                continue
            mine, other = ours_all.get(rel), theirs_all.get(rel)
            if not (self.prune and mine is None and tracked.get(rel) == other):
                step = self._writes_step(session_id, rel, what, mine, other, folds,
                                         what.ns in changed_ns or mine is None)
                if step is not None:
                    writes_steps.append(step)
        if not steps and not writes_steps:
            return
        if steps:
            ThreadIndex(repo.path).forget(session_id)  # before the branches move (see module)
        failed = not all(self._move(session_id, group_steps) for group_steps in steps)
        for step in writes_steps:
            if not (failed and step[1] is None):  # a drop relies on the branches that moved
                self._move(session_id, [step])

    def _move(self, session_id: str,
              steps: list[tuple[str, pygit2.Oid | None, pygit2.Oid | None]]) -> bool:
        """Move refs of a thread in turn by compare-and-swap, stopping at the first that a
        local writer moved meanwhile (reported)."""
        prefix = _prefix(session_id)
        for rel, new, expected in steps:
            if not self.store.move_ref(prefix + rel, new, expected,
                                       message="sessionsgit: pull (langgraph)"):
                self.rejected.append((session_id, f"LangGraph ref {rel} changed here during "
                                                  "pull; pull again"))
                return False
            self.changed.add(session_id)
        return True

    def _writes_step(self, session_id: str, rel: str, what: Kind, ours: pygit2.Oid | None,
                     theirs: pygit2.Oid | None, folds: _Folds, look: bool
                     ) -> tuple[str, pygit2.Oid | None, pygit2.Oid | None] | None:
        """The move of one pending-writes ref (``look``: whether checkpoints that may have taken
        them in arrived), or None to leave it."""
        repo = self.store.repo
        mine, other = _entries(repo, ours), _entries(repo, theirs)
        keep = ours
        if ours is None or (ours != theirs and other is not None and mine is not None and
                            _covers(other, mine)):
            keep = theirs
        elif ours != theirs and theirs is not None and not _covers(mine or {}, other or {}):
            self.rejected.append((session_id, f"LangGraph ref {rel}: the pending writes differ "
                                              "here and there; kept this store's (the remote "
                                              "keeps its own)"))
        folded = folds.of(what.ns, what.last) if look else {}
        held = _entries(repo, keep) or {}
        if folded and _covers(folded, held):
            keep = None  # a later checkpoint holds them (the saver drops such a ref)
        elif folded and ours is None and not _covers(held, folded):
            self.rejected.append((session_id, f"LangGraph ref {rel}: pending writes of a "
                                              "checkpoint that has another child here; not "
                                              "taken in (the remote keeps them)"))
            keep = None
        return None if keep == ours else (rel, keep, ours)

    def _hold_head(self, session_id: str) -> None:
        repo = self.store.repo
        head = self.store.ref_target(session_ref(session_id))
        trailer = commit_trailer(repo, head) if head is not None else None
        if head is None or trailer is None or trailer.checkpoint_ns:
            return  # no checkpoint at its head
        refs = self._local(session_id)
        if not refs:
            return  # no LangGraph refs: the saver reads the thread from its branch
        roots = {rel: oid for rel, oid in refs.items()
                 if (k := kind(rel)) is not None and not k.writes and k.ns == _ROOT}
        if _holder(repo, roots, head) is not None:
            return
        ThreadIndex(repo.path).forget(session_id)
        name = _unique(f"{_ROOT}/{trailer.checkpoint_id}", set(refs))
        if self.store.move_ref(_prefix(session_id) + name, head, None,
                               message="sessionsgit: pull (langgraph: the session's head)"):
            self.changed.add(session_id)

    def _track(self, sessions: list[str], pruned: Iterable[str]) -> None:
        if self.remote is None:
            return
        prefix = tracking_prefix(self.remote)
        gone = {idcodec.encode(session_id) for session_id in pruned}
        for session_id in sessions + sorted(pruned):
            thread = idcodec.encode(session_id)
            theirs_all = {} if thread in gone else self._accepted.get(thread)
            tracked = self._tracked.get(thread, {})
            if theirs_all is None:
                continue
            for rel in sorted(set(theirs_all) | (set(tracked) if self.prune else set())):
                if theirs_all.get(rel) != tracked.get(rel):  # (as for sessions: without prune
                    # a ref gone there is remembered, so a later prune still knows it)
                    self.store.move_ref(f"{prefix}{thread}/{rel}", theirs_all.get(rel),
                                        tracked.get(rel), message="sessionsgit: pull")


# ---- push ---------------------------------------------------------------------------------
class PushThreads:
    """One push's LangGraph refs: ``read`` the remote's from the push connection's
    advertisement, ``replaces_head`` for a session branch that is no fast-forward, ``moves``
    for the ref updates to send with the sessions', ``finish`` with what the remote refused."""

    def __init__(self, store: GitSessionStore, remote: str | None,
                 skip: frozenset[str] = frozenset()) -> None:
        """``remote``: a configured remote's name (it has tracking refs), else None; ``skip``:
        threads a pull just refused."""
        self.store, self.remote, self.skip = store, remote, skip
        self._local = group(store.refs(LANGGRAPH_PREFIX))
        self._tracked = group(store.refs(tracking_prefix(remote)), tracking_prefix(remote)) \
            if remote is not None else {}
        self._remote: ByThread = {}
        #: ref -> (session id, or "" for a deleted one's, name below the thread, new, old)
        self._planned: dict[str, tuple[str, str, pygit2.Oid | None, pygit2.Oid | None]] = {}
        self._same: list[tuple[str, str, pygit2.Oid]] = []
        self.rejected: list[tuple[str, str]] = []
        self.pushed: set[str] = set()

    def read(self, advertised: Iterable[Any]) -> None:
        self._remote = group({head.name: head.oid for head in advertised
                              if head.name.startswith(LANGGRAPH_PREFIX)})

    def replaces_head(self, session_id: str, ours: pygit2.Oid, theirs: pygit2.Oid) -> bool:
        """Whether the remote's session branch, at ``theirs``, may move to ``ours`` though it is
        no fast-forward: both root checkpoints of a thread, ours the newer and held by a branch
        this push sends or the remote has, theirs held by a remote branch it keeps (one we have
        too: a push moves it only forward)."""
        if session_id in self.skip:
            return False
        repo = self.store.repo
        mine, other = commit_trailer(repo, ours), commit_trailer(repo, theirs)
        if mine is None or other is None or mine.checkpoint_ns or other.checkpoint_ns or \
                mine.checkpoint_id <= other.checkpoint_id:
            return False
        thread = idcodec.encode(session_id)
        local, remote = self._local.get(thread, {}), self._remote.get(thread, {})
        roots = {rel: oid for rel, oid in local.items()
                 if (k := kind(rel)) is not None and not k.writes and k.ns == _ROOT}
        kept = {rel: oid for rel, oid in remote.items() if rel in roots}
        sent = {rel: oid for rel, oid in roots.items()
                if (old := remote.get(rel)) is None or old == oid or contains(repo, oid, old)}
        return _holder(repo, sent, ours) is not None and _holder(repo, kept, theirs) is not None

    def moves(self, selected: Iterable[str], deleted: Iterable[str], prune: bool,
              deleted_here: Callable[[str, pygit2.Oid], bool]
              ) -> dict[str, tuple[pygit2.Oid | None, pygit2.Oid | None]]:
        """{ref: (new target or None to delete, the remote's target)} for the threads of the
        ``selected`` sessions, and (with prune) of the ``deleted`` ones whose remote refs this
        store's trash holds (``deleted_here``)."""
        repo = self.store.repo
        for session_id in selected:
            if session_id in self.skip:
                continue
            thread = idcodec.encode(session_id)
            local, remote = self._local.get(thread, {}), self._remote.get(thread, {})
            tracked = self._tracked.get(thread, {})
            for rel, ours in sorted(local.items()):
                self._plan_one(session_id, rel, ours, remote.get(rel))
            folds = _Folds(repo, remote)
            for rel, theirs in sorted(remote.items()):
                what = kind(rel)
                if rel in local or what is None:
                    continue
                if prune and self.remote is not None and tracked.get(rel) == theirs:
                    self._plan(session_id, rel, None, theirs)  # deleted here since
                elif what.writes and (entries := _entries(repo, theirs)) is not None and \
                        (folded := folds.of(what.ns, what.last)) and _covers(folded, entries):
                    self._plan(session_id, rel, None, theirs)  # a remote checkpoint holds them
        for session_id in deleted:
            thread = idcodec.encode(session_id)
            tracked = self._tracked.get(thread, {})
            for rel, theirs in sorted(self._remote.get(thread, {}).items()):
                what = kind(rel)
                if what is not None and (tracked.get(rel) == theirs or
                                         (not what.writes and deleted_here(session_id, theirs))):
                    self._plan(session_id, rel, None, theirs, report=False)
        return {name: (new, old) for name, (_sid, _rel, new, old) in self._planned.items()}

    def _plan_one(self, session_id: str, rel: str, ours: pygit2.Oid,
                  theirs: pygit2.Oid | None) -> None:
        repo = self.store.repo
        what = kind(rel)
        assert what is not None
        if theirs is None:
            self._plan(session_id, rel, ours, None)
        elif ours == theirs:
            self._same.append((session_id, rel, theirs))
        elif what.writes:
            mine, other = _entries(repo, ours), _entries(repo, theirs)
            if mine is not None and other is not None and _covers(mine, other):
                self._plan(session_id, rel, ours, theirs)
            elif mine is not None and other is not None and _covers(other, mine):
                self._same.append((session_id, rel, theirs))
            else:
                self.rejected.append((session_id, f"LangGraph ref {rel}: the remote's pending "
                                                  "writes differ from these; pull first"))
        elif contains(repo, ours, theirs):
            self._plan(session_id, rel, ours, theirs)
        elif contains(repo, theirs, ours):
            self._same.append((session_id, rel, theirs))
        else:
            self.rejected.append((session_id, f"LangGraph ref {rel}: the remote has changes "
                                              "not pulled here; pull first"))

    def _plan(self, session_id: str, rel: str, new: pygit2.Oid | None, old: pygit2.Oid | None,
              report: bool = True) -> None:
        name = f"{LANGGRAPH_PREFIX}{idcodec.encode(session_id)}/{rel}"
        self._planned[name] = (session_id if report else "", rel, new, old)

    def finish(self, refused: Callable[[str], str | None]) -> None:
        """Note what the remote took (``refused``: why it refused a ref, or None) in
        ``pushed`` and ``rejected``, and remember it in the tracking refs."""
        prefix = tracking_prefix(self.remote) if self.remote is not None else None
        for name, (session_id, rel, new, _old) in sorted(self._planned.items()):
            why = refused(name)
            thread = name[len(LANGGRAPH_PREFIX):].split("/", 1)[0]
            if why is not None:
                if session_id:
                    self.rejected.append((session_id, f"LangGraph ref {rel}: {why}"))
                continue
            if session_id:
                self.pushed.add(session_id)
            if prefix is not None:
                self._set_tracking(f"{prefix}{thread}/{rel}", new)
        if prefix is not None:
            for session_id, rel, theirs in self._same:
                self._set_tracking(f"{prefix}{idcodec.encode(session_id)}/{rel}", theirs)

    def _set_tracking(self, name: str, target: pygit2.Oid | None) -> None:
        current = self.store.ref_target(name)
        if current != target:
            self.store.move_ref(name, target, current, message="sessionsgit: push")


# ---- helpers ------------------------------------------------------------------------------
def _prefix(session_id: str) -> str:
    return f"{LANGGRAPH_PREFIX}{idcodec.encode(session_id)}/"


def _holder(repo: pygit2.Repository, refs: Refs, oid: pygit2.Oid) -> str | None:
    """The first of ``refs`` whose target is ``oid`` or has it in its history."""
    return next((rel for rel, target in sorted(refs.items())
                 if target == oid or contains(repo, target, oid)), None)


def _unique(name: str, taken: set[str]) -> str:
    found, number = name, 1
    while found in taken:
        number += 1
        found = f"{name}.{number}"
    return found


def _branch_start(repo: pygit2.Repository, ours: pygit2.Oid, theirs: pygit2.Oid) -> str:
    """The checkpoint id of the first commit of ``ours`` after where it parted from
    ``theirs`` (what the saver names a branch after)."""
    try:
        base = repo.merge_base(ours, theirs)
    except (KeyError, ValueError, pygit2.GitError):
        base = None
    first = ours
    for _step in range(100_000):
        commit = repo[first]
        parents: list[pygit2.Oid] = commit.parent_ids if isinstance(commit, pygit2.Commit) else []
        if not parents or parents[0] == base:
            break
        first = parents[0]
    trailer = commit_trailer(repo, first)
    name = trailer.checkpoint_id if trailer is not None else str(first)
    return name if pygit2.reference_is_valid_name(f"refs/x/{name}") else str(first)


def _entries(repo: pygit2.Repository, tree: pygit2.Oid | None) -> dict[str, pygit2.Oid] | None:
    """{name: id} of a tree here (None: no such tree)."""
    if tree is None:
        return None
    try:
        found = repo[tree]
    except (KeyError, ValueError):
        return None
    return {entry.name or "": entry.id for entry in found} \
        if isinstance(found, pygit2.Tree) else None


def _covers(big: dict[str, pygit2.Oid], small: dict[str, pygit2.Oid]) -> bool:
    return all(big.get(name) == oid for name, oid in small.items())


class _Folds:
    """The pending writes of a checkpoint that later checkpoints took into their trees (its
    children's ``parent-writes``, its grandchildren's ``late-writes.<id>``), found walking
    back from a thread's branches only as far as checkpoints newer than it."""

    def __init__(self, repo: pygit2.Repository, refs: Refs) -> None:
        self.repo = repo
        self.leaves: dict[str, list[pygit2.Oid]] = {}
        for rel, oid in refs.items():
            what = kind(rel)
            if what is not None and not what.writes:
                self.leaves.setdefault(what.ns, []).append(oid)
        self._found: dict[tuple[str, str], dict[str, pygit2.Oid]] = {}

    def of(self, ns: str, checkpoint_id: str) -> dict[str, pygit2.Oid]:
        key = (ns, checkpoint_id)
        if key not in self._found:
            self._found[key] = self._walk(ns, checkpoint_id)
        return self._found[key]

    def _walk(self, ns: str, checkpoint_id: str) -> dict[str, pygit2.Oid]:
        late = LATE_WRITES + idcodec.encode(checkpoint_id, idcodec.FILE)
        found: dict[str, pygit2.Oid] = {}
        pending, seen = list(self.leaves.get(ns, [])), set[pygit2.Oid]()
        while pending:
            oid = pending.pop()
            if oid in seen:
                continue
            seen.add(oid)
            trailer = commit_trailer(self.repo, oid)
            if trailer is None or trailer.checkpoint_id <= checkpoint_id or \
                    ns_component(trailer.checkpoint_ns) != ns:
                continue  # older than the checkpoint: no child of it below
            commit = self.repo[oid]
            assert isinstance(commit, pygit2.Commit)  # (it has a trailer)
            lg = _entries(self.repo, (_entries(self.repo, commit.tree_id) or {}).get(LG_DIR))
            for name in ([PARENT_WRITES] if trailer.parent_id == checkpoint_id else []) + [late]:
                found.update(_entries(self.repo, (lg or {}).get(name)) or {})
            pending.extend(commit.parent_ids)
        return found
