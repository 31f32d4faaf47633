"""The viewer's Flask application: pages over a sessions repository, read live on every request.

Each request gathers plain data from the store (which takes and releases its own lock), then
renders with no lock held. Actions are POST forms carrying a per-server CSRF token; requests
whose ``Host`` is not the one served are refused (DNS rebinding)."""

from __future__ import annotations

import hmac
import secrets
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..errors import SessionsGitError
from ..listing import delete_session
from ..messages import plain_text, summary
from ..msgdiff import diff_messages
from ..render import local_time, short_id, short_session_id
from ..stores.git import GitSessionStore
from .content import shown_message, tree_layout

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def create_app(repo: str | Path, *, allowed_hosts: set[str] | None = None) -> Flask:
    """The viewer over the repository at ``repo``. ``allowed_hosts``: the host names a request
    may name in ``Host`` (default: loopback names only); an empty set allows any."""
    app = Flask(__name__)
    app.config["CSRF_TOKEN"] = secrets.token_urlsafe(32)
    app.config["ALLOWED_HOSTS"] = LOCAL_HOSTS if allowed_hosts is None else allowed_hosts
    store = GitSessionStore(repo, create=False)
    lock = threading.Lock()  # one reader of the store and its search index at a time
    app.jinja_env.globals.update(short_id=short_id, short_session_id=short_session_id,
                                 local_time=local_time, summary=summary)

    @app.before_request
    def guard() -> None:
        allowed = app.config["ALLOWED_HOSTS"]
        host = urlsplit("//" + (request.host or "")).hostname or ""
        if allowed and host not in allowed:
            abort(400, "unexpected Host header")
        if request.method == "POST":
            token = request.form.get("csrf", "")
            if not hmac.compare_digest(token, app.config["CSRF_TOKEN"]):
                abort(403, "missing or wrong CSRF token: reload the page and try again")
            origin = request.headers.get("Origin")
            if origin and origin != "null" and urlsplit(origin).netloc != request.host:
                abort(403, "cross-origin request refused")

    @app.context_processor
    def globals_() -> dict[str, Any]:
        return {"csrf": app.config["CSRF_TOKEN"], "repo": str(repo)}

    @app.errorhandler(SessionsGitError)
    def library_error(exc: SessionsGitError) -> tuple[str, int]:
        return render_template("error.html", message=str(exc)), 400

    @app.get("/")
    def index() -> str:
        query = request.args.get("q", "").strip()
        all_history = request.args.get("all") == "1"
        with lock:
            sessions = store.list()
            hits = store.search(query, limit=50, all_history=all_history) if query else None
        return render_template("list.html", sessions=sessions, query=query, hits=hits,
                               all_history=all_history)

    fork_points: dict[str, int | None] = {}  # head commit -> messages inherited (immutable)

    @app.get("/tree")
    def tree() -> str:
        with lock:
            sessions = store.list()
            points = {meta.id: _fork_point(store, meta.id, meta.head, fork_points)
                      for meta in sessions if meta.parent_id and not meta.detached}
        nodes, width, height = tree_layout(sessions, points)
        return render_template("tree.html", nodes=nodes, width=width, height=height)

    @app.get("/session")
    def session() -> str:
        session_id, at = _arg("id"), request.args.get("at") or None
        with lock:
            stored = store.load(session_id, at=at)
            if stored is None:
                abort(404, f"no session {session_id!r}")
            assert stored is not None  # abort() raised
            saves = store.history(session_id)
        messages = [shown_message(i, m) for i, m in enumerate(stored.messages)]
        return render_template("session.html", meta=stored.metadata, messages=messages, at=at,
                               saves=saves, highlight=request.args.get("m", type=int))

    @app.get("/history")
    def history() -> str:
        session_id = _arg("id")
        with lock:
            saves = store.history(session_id)
            sessions = store.list()
        return render_template("history.html", session_id=session_id, saves=saves,
                               sessions=sessions)

    @app.get("/diff")
    def diff() -> str:
        a, b = _arg("a"), _arg("b")
        with lock:
            old, new = _load_spec(store, a), _load_spec(store, b)
        changes = [{"kind": c.kind, "old_index": c.old_index, "new_index": c.new_index,
                    "old": plain_text(c.old) if c.old is not None else None,
                    "new": plain_text(c.new) if c.new is not None else None}
                   for c in diff_messages(old, new).changes]
        stat = {kind: sum(1 for c in changes if c["kind"] == kind)
                for kind in ("added", "removed", "changed", "unchanged")}
        return render_template("diff.html", a=a, b=b, changes=changes, stat=stat)

    @app.get("/trash")
    def trash() -> str:
        with lock:
            deleted = store.list_deleted()
        return render_template("trash.html", deleted=deleted)

    @app.get("/confirm")
    def confirm() -> str:
        action = request.args.get("action")
        if action not in ("delete", "restore"):
            abort(400, "unknown action")
        return render_template("confirm.html", action=action, session_id=_arg("id"),
                               ref=request.args.get("ref", ""))

    @app.post("/fork")
    def fork() -> Response:
        session_id = _form("id")
        at = request.form.get("at", type=int)
        with lock:
            child = store.fork(session_id, at=at)
        return redirect(url_for("session", id=child))

    @app.post("/rename")
    def rename() -> Response:
        session_id = _form("id")
        label = request.form.get("label", "").strip() or None
        with lock:
            store.rename(session_id, label)
        return redirect(url_for("session", id=session_id))

    @app.post("/delete")
    def delete() -> Response:
        with lock:
            delete_session(store, _form("id"))
        return redirect(url_for("index"))

    @app.post("/restore")
    def restore() -> Response:
        session_id = _form("id")
        with lock:
            store.restore(session_id, request.form.get("ref") or None)
        return redirect(url_for("session", id=session_id))

    return app


def _fork_point(store: GitSessionStore, session_id: str, head: str | None,
                cache: dict[str, int | None]) -> int | None:
    """How many messages a fork inherited: the message count of its first save (the oldest
    along first parents made under its id; its parent is the save it forked from), None when
    unknown."""
    if head is None:
        return None
    if head not in cache:
        import pygit2

        from ..git import commitmeta

        found = None
        try:
            walker = store.repo.walk(pygit2.Oid(hex=head), pygit2.enums.SortMode.TOPOLOGICAL)
            walker.simplify_first_parent()
            for commit in walker:
                data = commitmeta.parse(commit.raw_message) or {}
                if data.get("id") != session_id:
                    break
                found = int(data.get("message_count") or 0)
        except (KeyError, TypeError, ValueError, pygit2.GitError):
            found = None
        cache[head] = found
    return cache[head]


def _arg(name: str) -> str:
    value = request.args.get(name)
    if not value:
        abort(400, f"missing ?{name}=")
    return value


def _form(name: str) -> str:
    value = request.form.get(name)
    if not value:
        abort(400, f"missing form field {name}")
    return value


def _load_spec(store: GitSessionStore, spec: str) -> list[Any]:
    """``SESSION`` or ``SESSION@COMMIT`` as that save's messages."""
    session_id, at = spec, None
    if not store.exists(spec) and "@" in spec:
        session_id, _, at = spec.rpartition("@")
    stored = store.load(session_id, at=at)
    if stored is None:
        abort(404, f"no session {session_id!r}")
    assert stored is not None  # abort() raised
    return list(stored.messages)
