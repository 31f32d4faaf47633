"""Full-text search over sessions: the query language, the hit record, a scanning matcher any
store can use, and the Git store's index.

The Git store's index is a cache: an SQLite FTS5 database at ``<git dir>/sessionsgit/
search.sqlite`` (never pushed or cloned). It is keyed by head commit ids, so whatever moved a
ref (a save, another process, a ``git fetch``) is noticed on the next search, and brought up to
date incrementally: only sessions whose head changed are looked at, and only message blobs it has
never indexed are read (blobs are content-addressed, so a fork's inherited messages cost
nothing). A missing, corrupt or foreign file is rebuilt from the repository. Message text comes
from ``sessionsgit.messages.plain_text`` (tool calls and results included, labelled).

A warm search does not even read the refs: the index keeps a fingerprint of the files that hold
them (``packed-refs`` and each loose session ref, by inode, size and times), taken before the
refs it indexed were read; while the fingerprint is unchanged nothing moved. Files changed in the
last seconds are not vouched for (timestamps are coarse), so those searches read the refs."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .errors import SessionsGitError, StoreError
from .messages import plain_text, role_of
from .metadata import parse_time

if TYPE_CHECKING:  # pragma: no cover
    import pygit2

    from .stores.base import SessionStore
    from .stores.git import GitSessionStore

#: Marks around a match in ``SearchHit.snippet``.
MARK_OPEN, MARK_CLOSE = "«", "»"
_OPEN, _CLOSE = "\x01", "\x02"  # internal marks: never part of indexed text
_SCHEMA = 2
#: Most matching messages (newest first) a query ranks before widening: ranking every match of a
#: word found in nearly every message would cost a second at 500,000 messages.
RANK_WINDOW = 5_000
#: Ref files changed this recently are not vouched for by the fingerprint (coarse timestamps).
RACY_SECONDS = 2.0
logger = logging.getLogger("sessionsgit")
_SNIPPET_TOKENS = 16
Progress = Callable[[int, int], None]


class SearchQueryError(SessionsGitError, ValueError):
    """A search query with nothing to search for, or a bad filter."""


@dataclass(frozen=True)
class SearchHit:
    """One message that matches: where it is, who said it, and a snippet around the match."""

    session_id: str
    label: str | None
    index: int  #: 0-based position of the message in the save ``commit``
    role: str | None
    snippet: str  #: the text around the match, matches between ``«`` and ``»``
    commit: str | None  #: the save the message came from (None for stores without commits)
    time: str | None  #: when that save was made
    current: bool = True  #: the message is in the session's current transcript
    deleted: bool = False  #: the session is deleted (found in the trash with all-history)

    def parts(self) -> list[tuple[str, bool]]:
        """The snippet as (text, is_match) pieces, for renderers that mark matches themselves."""
        return _split_marked(self.snippet, MARK_OPEN, MARK_CLOSE)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- queries ------------------------------------------------------------------------------
_TERM = re.compile(r'"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+", re.UNICODE)


def parse_query(query: str) -> list[list[str]]:
    """A query as terms, each a list of lowercase words: a quoted ``"phrase"`` is one term,
    any other word its own. Every term must match. Punctuation separates words."""
    if not isinstance(query, str):
        raise SearchQueryError(f"a search query must be text, not {type(query).__name__}")
    terms = []
    for match in _TERM.finditer(query):
        words = _WORD.findall((match.group(1) if match.group(1) is not None
                               else match.group(2)).casefold())
        if words:
            terms.append(words)
    if not terms:
        raise SearchQueryError(f"nothing to search for in {query!r}: give a word or a "
                               '"phrase"')
    return terms


def fts_query(terms: list[list[str]]) -> str:
    """The FTS5 MATCH expression for parsed terms: each a quoted phrase, all required."""
    return " AND ".join('"' + " ".join(words).replace('"', '""') + '"' for words in terms)


def since_text(since: Any) -> str | None:
    """``since`` (a datetime or ISO 8601 text) as sortable UTC text like ``now_iso()``."""
    if since is None:
        return None
    if isinstance(since, datetime):
        moment = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    elif isinstance(since, str):
        moment = parse_time(since)
        if moment == parse_time(None):
            raise SearchQueryError(f"since must be an ISO 8601 time, not {since!r}")
    else:
        raise SearchQueryError(f"since must be a datetime or ISO 8601 text, not {since!r}")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise SearchQueryError(f"limit must be a positive integer, not {limit!r}")
    return limit


def index_text(message: Any) -> str:
    """The text of a message as searched and shown in snippets."""
    return plain_text(message).replace(_OPEN, " ").replace(_CLOSE, " ")


def _split_marked(text: str, opening: str, closing: str) -> list[tuple[str, bool]]:
    parts: list[tuple[str, bool]] = []
    for index, piece in enumerate(re.split(f"[{re.escape(opening)}{re.escape(closing)}]", text)):
        if piece:
            parts.append((piece, index % 2 == 1))
    return parts


def _public_snippet(raw: str) -> str:
    return raw.replace(_OPEN, MARK_OPEN).replace(_CLOSE, MARK_CLOSE)


# ---- scanning (any store) -----------------------------------------------------------------
def scan_snippet(text: str, terms: list[list[str]], width: int = 60) -> str | None:
    """A marked snippet of ``text`` when every term occurs in it (as whole words), else None."""
    spans = []
    for words in terms:
        pattern = r"(?<!\w)" + r"\W+".join(re.escape(w) for w in words) + r"(?!\w)"
        found = [m.span() for m in re.finditer(pattern, text, re.IGNORECASE)]
        if not found:
            return None
        spans += found
    spans.sort()
    first = spans[0][0]
    lo = max(0, first - width)
    hi = min(len(text), spans[0][1] + width)
    out, cursor = [], lo
    for start, end in spans:
        if start < cursor or end > hi:
            continue
        out += [text[cursor:start], MARK_OPEN, text[start:end], MARK_CLOSE]
        cursor = end
    out.append(text[cursor:hi])
    body = " ".join("".join(out).split())
    return ("…" if lo else "") + body + ("…" if hi < len(text) else "")


def scan(store: "SessionStore", query: str, *, limit: int = 20, session: str | None = None,
         role: str | None = None, since: Any = None) -> list[SearchHit]:
    """Search by loading every session (the default for stores without an index): the same
    terms, filters and hits as the Git store's index, newest session first."""
    terms = parse_query(query)
    limit = _check_limit(limit)
    after = since_text(since)
    hits: list[SearchHit] = []
    for meta in store.list():
        if session is not None and meta.id != session:
            continue
        if after is not None and (since_text(meta.updated_at) or "") < after:
            continue
        stored = store.load(meta.id)
        if stored is None:
            continue
        for index, message in enumerate(stored.messages):
            if role is not None and role_of(message) != role:
                continue
            snippet = scan_snippet(index_text(message), terms)
            if snippet is None:
                continue
            hits.append(SearchHit(meta.id, meta.label, index, role_of(message), snippet,
                                  meta.head, meta.updated_at))
            if len(hits) >= limit:
                return hits
    return hits


# ---- the Git store's index ----------------------------------------------------------------
_TABLES = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
CREATE VIRTUAL TABLE docs USING fts5(body, tokenize = 'unicode61 remove_diacritics 2');
CREATE TABLE docinfo(oid BLOB PRIMARY KEY, doc INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE roles(doc INTEGER PRIMARY KEY, role TEXT);
CREATE TABLE heads(session TEXT PRIMARY KEY, ref TEXT NOT NULL, commit_id TEXT NOT NULL,
                   label TEXT, updated_at TEXT);
CREATE TABLE live(session TEXT NOT NULL, idx INTEGER NOT NULL, doc INTEGER NOT NULL,
                  PRIMARY KEY(session, idx)) WITHOUT ROWID;
CREATE INDEX live_doc ON live(doc);
CREATE TABLE hist_heads(ref TEXT PRIMARY KEY, commit_id TEXT NOT NULL);
CREATE TABLE commits(commit_id TEXT PRIMARY KEY, session TEXT, label TEXT, time TEXT)
    WITHOUT ROWID;
CREATE TABLE hist(doc INTEGER NOT NULL, session TEXT NOT NULL, idx INTEGER NOT NULL,
                  commit_id TEXT NOT NULL, PRIMARY KEY(doc, session, idx)) WITHOUT ROWID;
"""


def index_path(git_dir: str | os.PathLike[str]) -> Path:
    """Where a repository's search index lives."""
    return Path(git_dir) / "sessionsgit" / "search.sqlite"


#: The live hits among the newest matching messages (``_ranked`` fills in the window).
_LIVE_SQL = """
    WITH cand(doc, rank) AS (SELECT rowid, rank FROM docs WHERE docs MATCH ?
                             ORDER BY rowid DESC LIMIT ?)
    SELECT live.session, h.label, live.idx, r.role, h.commit_id, h.updated_at, cand.rank,
           live.doc
    FROM cand JOIN live ON live.doc = cand.doc JOIN heads h ON h.session = live.session
         JOIN roles r ON r.doc = cand.doc
    WHERE 1 {filters} ORDER BY cand.rank LIMIT ?"""
#: The same among earlier saves and deleted sessions.
_HISTORY_SQL = """
    WITH cand(doc, rank) AS (SELECT rowid, rank FROM docs WHERE docs MATCH ?
                             ORDER BY rowid DESC LIMIT ?)
    SELECT hist.session, c.label, hist.idx, r.role, hist.commit_id, c.time, cand.rank, hist.doc
    FROM cand JOIN hist ON hist.doc = cand.doc JOIN commits c ON c.commit_id = hist.commit_id
         JOIN roles r ON r.doc = cand.doc
    WHERE 1 {filters} ORDER BY cand.rank LIMIT ?"""


def refs_fingerprint(git_dir: str | os.PathLike[str]) -> str | None:
    """A fingerprint of every file that can hold a session ref: ``packed-refs`` and each loose
    ref file (inode, size, modification and change times), or None when it cannot vouch for
    them: one changed less than ``RACY_SECONDS`` ago (a rewrite within the same timestamp tick
    would look unchanged), or anything but plain files where the loose refs live."""
    from .stores.git import SESSION_PREFIX

    root = Path(git_dir)
    newest = 0
    parts: list[tuple[Any, ...]] = []

    def add(name: str, info: os.stat_result) -> None:
        nonlocal newest
        parts.append((name, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
        newest = max(newest, info.st_mtime_ns, info.st_ctime_ns)

    now = time.time_ns()
    try:
        for name, path in (("packed-refs", root / "packed-refs"), ("/", root / SESSION_PREFIX)):
            try:
                add(name, os.stat(path))
            except FileNotFoundError:
                parts.append((name,))
        if parts[-1] != ("/",):
            with os.scandir(root / SESSION_PREFIX) as entries:
                for entry in entries:
                    if not entry.is_file(follow_symlinks=False):
                        return None
                    add(entry.name, entry.stat(follow_symlinks=False))
    except OSError:
        return None
    if now - newest < RACY_SECONDS * 1e9:
        return None
    parts.sort()
    return hashlib.sha1(repr(parts).encode("utf-8")).hexdigest()


@dataclass
class _Plan:
    """One refresh's work: (ref name, head) of each session ref that moved, the sessions gone,
    history refs to walk; ``known`` maps the index's ref names to their sessions."""

    changed: list[tuple[str, str]]
    gone: set[str]
    known: dict[str, str] = field(default_factory=dict)
    hist_refs: list[tuple[str, str]] = field(default_factory=list)
    stale_refs: set[str] = field(default_factory=set)

    @property
    def work(self) -> bool:
        return bool(self.changed or self.gone or self.hist_refs or self.stale_refs)


class SearchIndex:
    """The search index of one Git store (see the module docstring)."""

    def __init__(self, store: "GitSessionStore") -> None:
        self.store = store
        self.path = index_path(store.repo.path)
        self._db: sqlite3.Connection | None = None
        #: how many message blobs the last refresh read (tests check incrementality)
        self.blobs_read = 0
        self._known_heads: tuple[int, dict[str, tuple[str, str]]] | None = None

    # -- opening ----------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError:
            self._discard()
            self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                             check_same_thread=False)
        try:
            db.execute("PRAGMA synchronous = OFF")  # a cache: a lost write is rebuilt
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version != _SCHEMA:
                names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
                if names:  # another version's or someone else's file: start afresh
                    raise sqlite3.DatabaseError("not this version's search index")
                db.execute("BEGIN IMMEDIATE")
                if db.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA:
                    for statement in _TABLES.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(f"PRAGMA user_version = {_SCHEMA}")
                db.execute("COMMIT")
            db.execute("SELECT count(*) FROM heads").fetchone()
            db.execute("PRAGMA quick_check(1)").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def _discard(self) -> None:
        self.close()
        for suffix in ("", "-journal", "-wal", "-shm"):
            try:
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            except OSError:
                pass  # a read-only directory: the next open fails and search scans instead

    def close(self) -> None:
        self._known_heads = None  # data_version is per connection
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- searching --------------------------------------------------------------------------
    def search(self, query: str, *, limit: int = 20, session: str | None = None,
               role: str | None = None, since: Any = None, all_history: bool = False,
               progress: Progress | None = None) -> list[SearchHit]:
        """Bring the index up to date, then the best ``limit`` hits (see ``SearchHit``)."""
        terms = parse_query(query)
        limit = _check_limit(limit)
        after = since_text(since)
        for attempt in (1, 2):
            try:
                self.refresh(all_history=all_history, progress=progress)
                return self._query(fts_query(terms), limit, session, role, after, all_history)
            except (sqlite3.DatabaseError, OSError) as exc:
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                    raise StoreError(f"the search index {self.path} is busy (another process "
                                     "is updating it): try again") from None
                if attempt == 1:
                    self._discard()  # corrupt or unusable: rebuild once from the repository
                    continue
                if all_history:
                    raise StoreError(f"cannot use the search index {self.path}: {exc}") from None
                logger.warning("search index %s unusable (%s): scanning instead", self.path, exc)
                self.close()
                return scan(self.store, query, limit=limit, session=session, role=role,
                            since=since)
        raise AssertionError("unreachable")

    def _query(self, match: str, limit: int, session: str | None, role: str | None,
               after: str | None, all_history: bool) -> list[SearchHit]:
        db = self._connect()
        live_rows = self._ranked(db, _LIVE_SQL, match, limit, session, role, after,
                                 "live.session", "h.updated_at")
        hits = [(rank, SearchHit(sid, label, idx, rl, snip, commit, when))
                for sid, label, idx, rl, commit, when, rank, _doc, snip in live_rows]
        if all_history:
            current = {(sid, idx, doc) for sid, _l, idx, _r, _c, _t, _rk, doc, _s in live_rows}
            live_ids = {row[0] for row in db.execute("SELECT session FROM heads")}
            old_rows = self._ranked(db, _HISTORY_SQL, match, limit + len(live_rows), session,
                                    role, after, "hist.session", "c.time")
            for sid, label, idx, rl, commit, when, rank, doc, snip in old_rows:
                if (sid, idx, doc) in current:
                    continue
                in_live = db.execute("SELECT 1 FROM live WHERE session = ? AND idx = ? AND "
                                     "doc = ?", (sid, idx, doc)).fetchone() is not None
                hits.append((rank, SearchHit(sid, label, idx, rl, snip, commit, when,
                                             current=in_live, deleted=sid not in live_ids)))
            hits.sort(key=lambda pair: pair[0])
        return [hit for _rank, hit in hits[:limit]]

    @staticmethod
    def _ranked(db: sqlite3.Connection, sql: str, match: str, limit: int, session: str | None,
                role: str | None, after: str | None, session_col: str, time_col: str
                ) -> list[tuple[Any, ...]]:
        """The best ``limit`` rows of ``sql`` by rank, each with its snippet last. Only the
        newest ``RANK_WINDOW`` matching messages are ranked; the window widens while it was
        full and the filters left fewer than ``limit`` rows, so no hit is ever missed."""
        filters, args = [], []
        if session is not None:
            filters.append(f"AND {session_col} = ?")
            args.append(session)
        if role is not None:
            filters.append("AND r.role = ?")
            args.append(role)
        if after is not None:
            filters.append(f"AND {time_col} >= ?")
            args.append(after)
        query = sql.format(filters=" ".join(filters))
        window = RANK_WINDOW
        while True:
            rows = db.execute(query, (match, window, *args, limit)).fetchall()
            if len(rows) >= limit or window < 0 or db.execute(
                    "SELECT count(*) FROM (SELECT rowid FROM docs WHERE docs MATCH ? "
                    "ORDER BY rowid DESC LIMIT ?)", (match, window)).fetchone()[0] < window:
                break
            window = window * 16 if window < 1_000_000 else -1  # -1: every match
        snippets: dict[int, str] = {}
        for doc in {row[-1] for row in rows}:
            found = db.execute("SELECT snippet(docs, 0, ?, ?, '…', ?) FROM docs WHERE docs "
                               "MATCH ? AND rowid = ?",
                               (_OPEN, _CLOSE, _SNIPPET_TOKENS, match, doc)).fetchone()
            snippets[doc] = _public_snippet(found[0] if found else "")
        return [(*row, snippets[row[-1]]) for row in rows]

    # -- updating ---------------------------------------------------------------------------
    def refresh(self, *, all_history: bool = False, progress: Progress | None = None) -> int:
        """Index what changed since the last refresh (live sessions; with ``all_history`` also
        every earlier save and the trash). Returns how many sessions were (re)indexed. The work
        is planned again under SQLite's write lock, so concurrent searchers in other processes
        never index the same head twice."""
        self.blobs_read = 0
        db = self._connect()
        repo = self.store.repo
        fingerprint = refs_fingerprint(repo.path)  # before the refs are read: see the module doc
        if not all_history and fingerprint is not None and \
                fingerprint == self._stored_fingerprint(db):
            return 0
        live = self._live_refs()
        sessions = self.store.list() if all_history else []
        deleted = [(d.ref, d.metadata.head) for d in self.store.list_deleted()
                   if d.metadata.head] if all_history else []
        if not self._plan(db, live, sessions, deleted, all_history).work and \
                fingerprint in (None, self._stored_fingerprint(db)):
            return 0  # nothing to write: no lock taken (a read-only index still answers)
        db.execute("BEGIN IMMEDIATE")
        try:
            plan = self._plan(db, live, sessions, deleted, all_history)
            changed = self._changed_metadata(plan.changed)
            indexed = {ref for ref, _meta in changed}
            plan.gone |= {plan.known[ref] for ref, _c in plan.changed  # no longer a session
                          if ref not in indexed and ref in plan.known}
            total = len(changed) + len(plan.hist_refs)
            for sid in plan.gone:
                db.execute("DELETE FROM live WHERE session = ?", (sid,))
                db.execute("DELETE FROM heads WHERE session = ?", (sid,))
            for done, (ref, meta) in enumerate(changed, 1):
                self._index_live(db, repo, meta.id, ref, meta.head or "", meta.label,
                                 meta.updated_at)
                if progress is not None:
                    progress(done, total)
            for stale in plan.stale_refs:
                db.execute("DELETE FROM hist_heads WHERE ref = ?", (stale,))
            if plan.hist_refs:
                self._index_history(db, repo, plan.hist_refs, len(changed), total, progress)
            if fingerprint != self._stored_fingerprint(db):
                db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('refs', ?)",
                           (fingerprint,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            self._known_heads = None  # this connection's own writes leave data_version alone
        return total

    @staticmethod
    def _stored_fingerprint(db: sqlite3.Connection) -> str | None:
        row = db.execute("SELECT value FROM meta WHERE key = 'refs'").fetchone()
        return row[0] if row is not None else None

    def _live_refs(self) -> dict[str, str]:
        """Every session ref as {name below the session prefix: head commit}, read loose-first;
        an unreadable ref file is no session (``list()`` reports it as damaged)."""
        from .git.reffiles import read_ref_files
        from .stores.git import SESSION_PREFIX

        try:
            found, _unreadable = read_ref_files(self.store.repo.path, SESSION_PREFIX)
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read the refs of {self.store.path}: {exc}") from None
        cut = len(SESSION_PREFIX)
        return {name[cut:]: target for name, target in found.items()}

    def _changed_metadata(self, changed: list[tuple[str, str]]) -> list[tuple[str, Any]]:
        """(ref name, head metadata) of each session whose ref moved, oldest first, so the
        newest sessions' messages get the highest document ids (ranked first: ``RANK_WINDOW``).
        Refs that name no session, or a damaged head, are left out."""
        import pygit2

        from .errors import CorruptSessionError
        from .stores.git import ref_name_id

        found = []
        for name, target in changed:
            session_id = ref_name_id(self.store.repo, name, pygit2.Oid(hex=target))
            if session_id is None:
                continue
            try:
                meta = self.store.head_metadata(session_id)
            except CorruptSessionError:
                continue
            if meta is not None:
                found.append((name, meta))
        found.sort(key=lambda pair: parse_time(pair[1].updated_at))  # no time: oldest
        return found

    def _known(self, db: sqlite3.Connection) -> dict[str, tuple[str, str]]:
        """The index's heads as {ref name: (session, commit)}, kept in memory until another
        connection commits (SQLite's ``data_version``) or this one does (``refresh``)."""
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if self._known_heads is None or self._known_heads[0] != version:
            self._known_heads = (version, {ref: (session, commit) for session, ref, commit in
                                           db.execute("SELECT session, ref, commit_id "
                                                      "FROM heads")})
        return self._known_heads[1]

    def _plan(self, db: sqlite3.Connection, live: dict[str, str], sessions: list[Any],
              deleted: list[tuple[str, str]], all_history: bool) -> "_Plan":
        """What differs between the repository's heads and the index's."""
        known = self._known(db)
        plan = _Plan(changed=[(ref, c) for ref, c in live.items()
                              if known.get(ref, (None, None))[1] != c],
                     gone={session for ref, (session, _c) in known.items() if ref not in live},
                     known={ref: session for ref, (session, _c) in known.items()})
        if all_history:
            refs = [(f"live:{m.id}", m.head) for m in sessions if m.head] + deleted
            indexed = dict(db.execute("SELECT ref, commit_id FROM hist_heads"))
            plan.stale_refs = set(indexed) - {ref for ref, _c in refs}
            plan.hist_refs = [(ref, c) for ref, c in refs if indexed.get(ref) != c]
        return plan

    def _index_live(self, db: sqlite3.Connection, repo: "pygit2.Repository", session_id: str,
                    ref: str, head: str, label: str | None, updated_at: str) -> None:
        db.execute("DELETE FROM live WHERE session = ?", (session_id,))
        blobs = self._blobs_at(repo, head)
        if blobs is None:  # damaged: leave it out until its head moves
            db.execute("DELETE FROM heads WHERE session = ?", (session_id,))
            return
        db.executemany("INSERT INTO live(session, idx, doc) VALUES (?, ?, ?)",
                       [(session_id, idx, self._doc(db, repo, blob))
                        for idx, blob in enumerate(blobs)])
        db.execute("INSERT OR REPLACE INTO heads(session, ref, commit_id, label, updated_at) "
                   "VALUES (?, ?, ?, ?, ?)", (session_id, ref, head, label, updated_at))

    def _index_history(self, db: sqlite3.Connection, repo: "pygit2.Repository",
                       refs: list[tuple[str, str]], done: int, total: int,
                       progress: Progress | None) -> None:
        """Every save reachable from ``refs`` not indexed before: each message recorded in the
        save that introduced it at its position (with that save's session and label)."""
        import pygit2

        from .git import commitmeta

        old_heads = [pygit2.Oid(hex=c) for (c,) in db.execute("SELECT commit_id FROM hist_heads")]
        for ref, head in refs:
            walker = repo.walk(pygit2.Oid(hex=head), pygit2.enums.SortMode.TOPOLOGICAL)
            for old in old_heads:
                if old in repo:
                    walker.hide(old)
            for commit in walker:
                commit_id = str(commit.id)
                if db.execute("SELECT 1 FROM commits WHERE commit_id = ?",
                              (commit_id,)).fetchone():
                    continue
                data = commitmeta.parse(commit.raw_message) or {}
                session_id = data.get("id")
                blobs = self._blobs_at(repo, commit_id)
                if not isinstance(session_id, str) or blobs is None:
                    db.execute("INSERT INTO commits VALUES (?, NULL, NULL, NULL)", (commit_id,))
                    continue
                parent = self._blobs_at(repo, str(commit.parent_ids[0])) \
                    if commit.parent_ids else []
                parent = parent or []
                db.execute("INSERT INTO commits VALUES (?, ?, ?, ?)",
                           (commit_id, session_id, data.get("label"), data.get("updated_at")))
                db.executemany(
                    "INSERT OR IGNORE INTO hist(doc, session, idx, commit_id) VALUES (?, ?, ?, ?)",
                    [(self._doc(db, repo, blob), session_id, idx, commit_id)
                     for idx, blob in enumerate(blobs)
                     if idx >= len(parent) or parent[idx] != blob])
            db.execute("INSERT OR REPLACE INTO hist_heads(ref, commit_id) VALUES (?, ?)",
                       (ref, head))
            old_heads.append(pygit2.Oid(hex=head))
            done += 1
            if progress is not None:
                progress(done, total)

    @staticmethod
    def _blobs_at(repo: "pygit2.Repository", commit_id: str) -> list[Any] | None:
        import pygit2

        from .git import layout

        try:
            return list(layout.read_state(repo, repo[commit_id].peel(pygit2.Commit).tree_id).blobs)
        except Exception:  # noqa: BLE001 - a damaged session is skipped, never fatal
            return None

    def _doc(self, db: sqlite3.Connection, repo: "pygit2.Repository", blob: Any) -> int:
        """The document of a message blob, indexing it the first time it is seen."""
        row = db.execute("SELECT doc FROM docinfo WHERE oid = ?", (blob.raw,)).fetchone()
        if row is not None:
            return int(row[0])
        from .git import validate

        self.blobs_read += 1
        try:
            message = json.loads(validate.read_blob(repo.odb, blob, validate.max_blob_bytes()))
        except Exception:  # noqa: BLE001 - unreadable or over the blob bound: indexed as empty
            message = None
        text = index_text(message) if message is not None else ""
        doc = db.execute("INSERT INTO docs(body) VALUES (?)", (text,)).lastrowid
        db.execute("INSERT INTO docinfo(oid, doc) VALUES (?, ?)", (blob.raw, doc))
        db.execute("INSERT INTO roles(doc, role) VALUES (?, ?)",
                   (doc, role_of(message) if message is not None else None))
        return int(doc or 0)


def search_git(store: "GitSessionStore", query: str, *, limit: int = 20,
               session: str | None = None, role: str | None = None, since: Any = None,
               all_history: bool = False, progress: Progress | None = None
               ) -> list[SearchHit]:
    """``GitSessionStore.search``: through the store's index (opened once per store)."""
    index = getattr(store, "_search_index", None)
    if index is None or index.store is not store:
        index = SearchIndex(store)
        store._search_index = index  # type: ignore[attr-defined]
    return index.search(query, limit=limit, session=session, role=role, since=since,
                        all_history=all_history, progress=progress)


def hits_json(hits: Sequence[SearchHit]) -> str:
    """Hits as a JSON array (for ``sessionsgit search --json``)."""
    return json.dumps([hit.to_dict() for hit in hits], ensure_ascii=False, indent=2)
