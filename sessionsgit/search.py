"""Full-text search over sessions: the query language, the hit record, a scanning matcher any
store can use, and the Git store's index.

The Git store's index is a cache: an SQLite FTS5 database at ``<git dir>/sessionsgit/
search.sqlite`` (never pushed or cloned). It is keyed by head commit ids, so whatever moved a
ref (a save, another process, a ``git fetch``) is noticed on the next search, and brought up to
date incrementally: only sessions whose head changed are looked at, and only message blobs it has
never indexed are read (blobs are content-addressed, so a fork's inherited messages cost
nothing). A missing, corrupt or foreign file is rebuilt from the repository. Message text comes
from ``sessionsgit.messages.plain_text`` (tool calls and results included, labelled)."""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
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
_SCHEMA = 1
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
CREATE TABLE heads(session TEXT PRIMARY KEY, commit_id TEXT NOT NULL, label TEXT,
                   updated_at TEXT);
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


@dataclass
class _Plan:
    """One refresh's work: sessions whose head moved, sessions gone, history refs to walk."""

    changed: list[Any]
    gone: set[str]
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
        if self._db is not None:
            self._db.close()
            self._db = None
        for suffix in ("", "-journal", "-wal", "-shm"):
            try:
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            except OSError:
                pass  # a read-only directory: the next open fails and search scans instead

    def close(self) -> None:
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
        live_rows = self._rows(db, """
            SELECT live.session, h.label, live.idx, r.role, snippet(docs, 0, ?, ?, '…', ?),
                   h.commit_id, h.updated_at, docs.rank, live.doc
            FROM docs JOIN live ON live.doc = docs.rowid JOIN heads h ON h.session = live.session
                 JOIN roles r ON r.doc = docs.rowid
            WHERE docs MATCH ? {filters} ORDER BY docs.rank LIMIT ?""",
                               match, limit, session, role, after, "live.session",
                               "h.updated_at")
        hits = [(rank, SearchHit(sid, label, idx, rl, _public_snippet(snip), commit, time))
                for sid, label, idx, rl, snip, commit, time, rank, _doc in live_rows]
        if all_history:
            current = {(sid, idx, doc) for sid, _l, idx, _r, _s, _c, _t, _rk, doc in live_rows}
            live_ids = {row[0] for row in db.execute("SELECT session FROM heads")}
            old_rows = self._rows(db, """
                SELECT hist.session, c.label, hist.idx, r.role, snippet(docs, 0, ?, ?, '…', ?),
                       hist.commit_id, c.time, docs.rank, hist.doc
                FROM docs JOIN hist ON hist.doc = docs.rowid
                     JOIN commits c ON c.commit_id = hist.commit_id
                     JOIN roles r ON r.doc = docs.rowid
                WHERE docs MATCH ? {filters} ORDER BY docs.rank LIMIT ?""",
                                  match, limit + len(live_rows), session, role, after,
                                  "hist.session", "c.time")
            for sid, label, idx, rl, snip, commit, time, rank, doc in old_rows:
                if (sid, idx, doc) in current:
                    continue
                in_live = db.execute("SELECT 1 FROM live WHERE session = ? AND idx = ? AND "
                                     "doc = ?", (sid, idx, doc)).fetchone() is not None
                hits.append((rank, SearchHit(sid, label, idx, rl, _public_snippet(snip), commit,
                                             time, current=in_live,
                                             deleted=sid not in live_ids)))
            hits.sort(key=lambda pair: pair[0])
        return [hit for _rank, hit in hits[:limit]]

    @staticmethod
    def _rows(db: sqlite3.Connection, sql: str, match: str, limit: int, session: str | None,
              role: str | None, after: str | None, session_col: str, time_col: str
              ) -> list[tuple[Any, ...]]:
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
        return db.execute(sql.format(filters=" ".join(filters)),
                          (_OPEN, _CLOSE, _SNIPPET_TOKENS, match, *args, limit)).fetchall()

    # -- updating ---------------------------------------------------------------------------
    def refresh(self, *, all_history: bool = False, progress: Progress | None = None) -> int:
        """Index what changed since the last refresh (live sessions; with ``all_history`` also
        every earlier save and the trash). Returns how many sessions were (re)indexed. The work
        is planned again under SQLite's write lock, so concurrent searchers in other processes
        never index the same head twice."""
        self.blobs_read = 0
        db = self._connect()
        if not all_history and self._unchanged(db):
            return 0
        sessions = self.store.list()
        deleted = [(d.ref, d.metadata.head) for d in self.store.list_deleted()
                   if d.metadata.head] if all_history else []
        if not self._plan(db, sessions, deleted, all_history).work:
            return 0
        repo = self.store.repo
        db.execute("BEGIN IMMEDIATE")
        try:
            plan = self._plan(db, sessions, deleted, all_history)
            total = len(plan.changed) + len(plan.hist_refs)
            for sid in plan.gone:
                db.execute("DELETE FROM live WHERE session = ?", (sid,))
                db.execute("DELETE FROM heads WHERE session = ?", (sid,))
            for done, meta in enumerate(plan.changed, 1):
                self._index_live(db, repo, meta.id, meta.head or "", meta.label, meta.updated_at)
                if progress is not None:
                    progress(done, total)
            for ref in plan.stale_refs:
                db.execute("DELETE FROM hist_heads WHERE ref = ?", (ref,))
            if plan.hist_refs:
                self._index_history(db, repo, plan.hist_refs, len(plan.changed), total, progress)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return total

    def _unchanged(self, db: sqlite3.Connection) -> bool:
        """Whether every live head is the one indexed, from the ref files alone (a warm search
        then reads no commit and no metadata). False whenever in doubt."""
        from .git.refs import read_refs
        from .stores.git import SESSION_PREFIX, ref_name_id

        repo = self.store.repo
        try:
            found, unreadable = read_refs(repo.path, SESSION_PREFIX)
        except (OSError, ValueError):
            return False
        if unreadable:
            return False
        heads = {}
        for name, target in found.items():
            session_id = ref_name_id(repo, name[len(SESSION_PREFIX):], target)
            if session_id is None:
                return False
            heads[session_id] = str(target)
        return heads == dict(db.execute("SELECT session, commit_id FROM heads"))

    @staticmethod
    def _plan(db: sqlite3.Connection, sessions: list[Any], deleted: list[tuple[str, str]],
              all_history: bool) -> "_Plan":
        """What differs between the repository's heads and the index's."""
        known = dict(db.execute("SELECT session, commit_id FROM heads"))
        plan = _Plan(changed=[m for m in sessions if known.get(m.id) != m.head],
                     gone=set(known) - {m.id for m in sessions})
        if all_history:
            refs = [(f"live:{m.id}", m.head) for m in sessions if m.head] + deleted
            indexed = dict(db.execute("SELECT ref, commit_id FROM hist_heads"))
            plan.stale_refs = set(indexed) - {ref for ref, _c in refs}
            plan.hist_refs = [(ref, c) for ref, c in refs if indexed.get(ref) != c]
        return plan

    def _index_live(self, db: sqlite3.Connection, repo: "pygit2.Repository", session_id: str,
                    head: str, label: str | None, updated_at: str) -> None:
        db.execute("DELETE FROM live WHERE session = ?", (session_id,))
        blobs = self._blobs_at(repo, head)
        if blobs is None:  # damaged: leave it out until its head moves
            db.execute("DELETE FROM heads WHERE session = ?", (session_id,))
            return
        db.executemany("INSERT INTO live(session, idx, doc) VALUES (?, ?, ?)",
                       [(session_id, idx, self._doc(db, repo, blob))
                        for idx, blob in enumerate(blobs)])
        db.execute("INSERT OR REPLACE INTO heads(session, commit_id, label, updated_at) "
                   "VALUES (?, ?, ?, ?)", (session_id, head, label, updated_at))

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
        self.blobs_read += 1
        try:
            message = json.loads(repo.odb.read(blob)[1])
        except Exception:  # noqa: BLE001 - unreadable: indexed as empty
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
