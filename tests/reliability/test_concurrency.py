"""Concurrent writers and readers on one Git repository, in threads and in processes.

* Writers on distinct sessions never fail and never lose a commit.
* Writers sharing one session (each with its own store instance, load → append → save, reload
  and retry on SessionConflictError) lose no acknowledged save; conflicts surface only as
  SessionConflictError, never as a raw OSError / GitError.
* Readers running meanwhile only ever see complete saves.
* A SessionManager auto-saving under contention reports lifecycle_error and never raises into
  the conversation.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict

import pytest

from sessionsgit import (
    FileSessionStore,
    GitSessionStore,
    SessionConflictError,
    SQLiteAdapter,
    SQLSessionStore,
)

from ..helpers import git
from ._util import assert_pattern_transcript, finish, fsck, start_worker
from .workers import append_one

WRITERS = 4
SAVES = 25
DEADLINE = 60  # seconds: a hung writer fails the test instead of hanging CI


def run_threads(targets) -> list[BaseException]:
    """Run callables in threads at once; every exception they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(targets))

    def wrap(target):
        def run():
            try:
                barrier.wait()
                target()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
        return run

    threads = [threading.Thread(target=wrap(t), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
        assert not thread.is_alive(), "a writer hung"
    return errors


class PatternReader:
    """A thread that keeps listing and loading every session while writers run, checking each
    transcript is a complete save of the pattern (workers.pattern)."""

    def __init__(self, repo) -> None:
        self.repo = repo
        self.stop = threading.Event()
        self.reads = 0
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        store = GitSessionStore(self.repo, create=False, auto_pack=False)
        try:
            while not self.stop.is_set():
                for meta in store.list():
                    assert meta.message_count >= 1
                    session = store.load(meta.id)
                    assert_pattern_transcript(session)
                    self.reads += 1
                assert store.last_damaged == []
                time.sleep(0.001)  # a spinning reader would starve writers of the GIL
        except BaseException as exc:  # noqa: BLE001
            self.errors.append(exc)

    def __enter__(self) -> "PatternReader":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(DEADLINE)
        assert not self.errors, self.errors
        assert self.reads > 0


def assert_sessions_complete(repo, expected: dict[str, int]) -> None:
    store = GitSessionStore(repo, create=False)
    assert sorted(m.id for m in store.list()) == sorted(expected)
    for session_id, count in expected.items():
        session = store.load(session_id)
        assert_pattern_transcript(session)
        assert len(session.messages) == count
        assert len(store.history(session_id)) == count  # one commit per save, none lost
        assert git("rev-list", "--count", f"refs/heads/sessions/{session_id}",
                   cwd=repo).strip() == str(count)
    fsck(repo, "--strict")


# ---- distinct sessions ------------------------------------------------------------------
@pytest.mark.parametrize("shared_instance", [False, True], ids=["own-store", "shared-store"])
def test_threads_on_distinct_sessions(tmp_path, shared_instance):
    repo = tmp_path / "repo"
    shared = GitSessionStore(repo, pack_threshold=60)

    def writer(session_id):
        def run():
            store = shared if shared_instance else GitSessionStore(repo, pack_threshold=60)
            for _ in range(SAVES):
                append_one(store, session_id)
        return run

    with PatternReader(repo):
        errors = run_threads([writer(f"t{i}") for i in range(WRITERS)])
    assert errors == []
    assert_sessions_complete(repo, {f"t{i}": SAVES for i in range(WRITERS)})


def test_processes_on_distinct_sessions(tmp_path):
    repo = tmp_path / "repo"
    GitSessionStore(repo)
    with PatternReader(repo):
        workers = [start_worker("distinct", repo, f"p{i}", SAVES) for i in range(WRITERS)]
        results = [finish(w, DEADLINE) for w in workers]
    for worker, (acks, err) in zip(workers, results):
        assert worker.returncode == 0, err
        assert [a["count"] for a in acks] == list(range(1, SAVES + 1))
    assert_sessions_complete(repo, {f"p{i}": SAVES for i in range(WRITERS)})


@pytest.mark.parametrize("kind", ["file", "sql"])
def test_file_and_sql_stores_under_concurrent_writers_and_readers(tmp_path, kind):
    """The other persistent stores: 4 writer threads (own store instances) on distinct sessions
    and a reader meanwhile; every save lands and the reader only sees complete transcripts."""
    opened = []

    def open_store():
        store = (FileSessionStore(tmp_path / "files") if kind == "file"
                 else SQLSessionStore(SQLiteAdapter(tmp_path / "db.sqlite", timeout=30)))
        opened.append(store)
        return store

    open_store()
    stop = threading.Event()
    reads = []

    def reader():
        store = open_store()
        while not stop.is_set():
            for meta in store.list():
                session = store.load(meta.id)
                assert_pattern_transcript(session)
                reads.append(meta.id)
            assert store.last_damaged == []
            time.sleep(0.001)

    def writer(session_id):
        def run():
            store = open_store()
            for _ in range(SAVES):
                append_one(store, session_id)
        return run

    reader_errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(reader, reader_errors), daemon=True)
    thread.start()
    errors = run_threads([writer(f"{kind}{i}") for i in range(WRITERS)])
    stop.set()
    thread.join(DEADLINE)
    assert errors == [] and reader_errors == []
    assert reads
    final = open_store()
    for i in range(WRITERS):
        session = final.load(f"{kind}{i}")
        assert_pattern_transcript(session)
        assert len(session.messages) == SAVES
    for store in opened:
        store.close()


# ---- one shared session -----------------------------------------------------------------
def check_shared_transcript(messages, writers) -> None:
    """A transcript of the shared session: no duplicates, and each writer's messages are its
    n = 0, 1, ... k in order (a save always carries every save it loaded)."""
    keys = [(m["writer"], m["n"]) for m in messages]
    assert len(keys) == len(set(keys))
    for writer in writers:
        ns = [n for w, n in keys if w == writer]
        assert ns == list(range(len(ns))), (writer, ns)


@pytest.mark.parametrize("writers", [2, 4])
def test_threads_on_one_session_lose_no_acknowledged_save(tmp_path, writers):
    repo = tmp_path / "repo"
    GitSessionStore(repo).save("shared", [])
    saves = 12
    acked: dict[str, list] = {}          # head -> transcript it committed
    acked_keys: list[tuple[str, int]] = []
    conflicts = Counter()
    seen: list[tuple[str, list]] = []
    stop = threading.Event()
    names = [f"w{i}" for i in range(writers)]

    def writer(name):
        def run():
            store = GitSessionStore(repo, create=False, pack_threshold=30)
            for n in range(saves):
                while True:
                    messages = store.load("shared").messages + [
                        {"role": "user", "writer": name, "n": n}]
                    try:
                        meta = store.save("shared", messages)
                    except SessionConflictError:
                        conflicts[name] += 1
                        continue
                    acked[meta.head] = messages
                    acked_keys.append((name, n))
                    break
        return run

    def reader():
        store = GitSessionStore(repo, create=False, auto_pack=False)
        while not stop.is_set():
            session = store.load("shared")
            assert session.metadata.message_count == len(session.messages)
            check_shared_transcript(session.messages, names)
            seen.append((session.metadata.head, session.messages))
            time.sleep(0.001)

    reader_errors: list[BaseException] = []
    reader_thread = threading.Thread(
        target=lambda: _capture(reader, reader_errors), daemon=True)
    reader_thread.start()
    errors = run_threads([writer(name) for name in names])
    stop.set()
    reader_thread.join(DEADLINE)
    assert errors == [], errors  # only SessionConflictError, and it was retried
    assert reader_errors == []

    final = GitSessionStore(repo, create=False).load("shared")
    keys = [(m["writer"], m["n"]) for m in final.messages]
    assert sorted(keys) == sorted(acked_keys) == sorted((w, n) for w in names for n in range(saves))
    check_shared_transcript(final.messages, names)
    history = GitSessionStore(repo, create=False).history("shared")
    assert len(history) == writers * saves + 1  # every acknowledged save is a commit
    # Readers only ever saw complete, acknowledged saves.
    assert seen
    for head, messages in seen:
        assert head == history[-1].commit or acked[head] == messages
    fsck(repo, "--strict")


def _capture(target, errors):
    try:
        target()
    except BaseException as exc:  # noqa: BLE001
        errors.append(exc)


@pytest.mark.parametrize("writers", [2, 3])
def test_processes_on_one_session_lose_no_acknowledged_save(tmp_path, writers):
    repo = tmp_path / "repo"
    GitSessionStore(repo).save("shared", [])
    saves = 10
    names = [f"w{i}" for i in range(writers)]
    observed = 0
    store = GitSessionStore(repo, create=False, auto_pack=False)
    procs = [start_worker("shared", repo, "shared", name, saves, 15) for name in names]
    deadline = time.monotonic() + DEADLINE
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        session = store.load("shared")  # readers see complete saves only
        assert session.metadata.message_count == len(session.messages)
        check_shared_transcript(session.messages, names)
        observed += 1
        time.sleep(0.002)
    results = [finish(p, DEADLINE) for p in procs]
    acked = []
    for proc, (acks, err) in zip(procs, results):
        assert proc.returncode == 0, err  # exit 0: no error but SessionConflictError, retried
        assert "Traceback" not in err, err
        acked += [(a["writer"], a["n"]) for a in acks if "n" in a]
        assert acks[-1]["done"] is True
    final = GitSessionStore(repo, create=False).load("shared")
    keys = [(m["writer"], m["n"]) for m in final.messages]
    assert sorted(keys) == sorted(acked) == sorted((w, n) for w in names for n in range(saves))
    assert len(GitSessionStore(repo, create=False).history("shared")) == writers * saves + 1
    assert observed > 0
    fsck(repo, "--strict")


def test_conflict_is_a_session_conflict_error_and_nothing_is_overwritten(tmp_path):
    repo = tmp_path / "repo"
    a = GitSessionStore(repo)
    b = GitSessionStore(repo, create=False)
    a.save("s", [{"role": "user", "content": "a1"}])
    loaded = b.load("s").messages
    a.save("s", [{"role": "user", "content": "a1"}, {"role": "user", "content": "a2"}])
    with pytest.raises(SessionConflictError):
        b.save("s", loaded + [{"role": "user", "content": "b2"}])
    assert [m["content"] for m in GitSessionStore(repo, create=False).load("s").messages] == [
        "a1", "a2"]
    # A store that never loaded a session saves on top of its current head (upsert), and the
    # save it built on stays in the history.
    a.save("new", [{"role": "user", "content": "a"}])
    b.save("new", [{"role": "user", "content": "b"}])
    history = GitSessionStore(repo, create=False).history("new")
    assert [h.message_count for h in history] == [1, 1] and len(history) == 2


# ---- SessionManager ---------------------------------------------------------------------
def test_manager_auto_save_under_contention_reports_lifecycle_error(tmp_path):
    manager_module = pytest.importorskip("sessionsgit.manager")
    conversation_module = pytest.importorskip("sessionsgit.conversation")
    SessionManager, Conversation = manager_module.SessionManager, conversation_module.Conversation
    repo = tmp_path / "repo"

    first = Conversation()
    first_manager = SessionManager(GitSessionStore(repo), first)
    session_id = first_manager.start_new()
    second = Conversation()
    second_manager = SessionManager(GitSessionStore(repo, create=False), second)
    second_manager.load(session_id)
    errors: list[dict] = []
    second_manager.on("lifecycle_error", errors.append)

    first.prompt("from the first window")          # auto-saves
    reply = second.prompt("from the second window")  # its auto-save conflicts: no raise
    assert reply["role"] == "assistant"
    assert len(errors) == 1
    assert isinstance(errors[0]["error"], SessionConflictError)
    assert errors[0]["operation"] == "save"
    stored = GitSessionStore(repo, create=False).load(session_id)
    assert stored.messages == first.messages  # the first window's save is intact

    # The second window recovers by reloading, and its next turn is saved.
    second_manager.load(session_id)
    second.prompt("again from the second window")
    assert GitSessionStore(repo, create=False).load(session_id).messages == second.messages


def test_managers_in_threads_never_raise_into_the_conversation(tmp_path):
    manager_module = pytest.importorskip("sessionsgit.manager")
    conversation_module = pytest.importorskip("sessionsgit.conversation")
    SessionManager, Conversation = manager_module.SessionManager, conversation_module.Conversation
    repo = tmp_path / "repo"
    session_id = SessionManager(GitSessionStore(repo), Conversation()).start_new()
    lifecycle: dict[str, list] = defaultdict(list)
    saved: Counter = Counter()

    def window(name):
        def run():
            conversation = Conversation()
            manager = SessionManager(GitSessionStore(repo, create=False), conversation)
            manager.load(session_id)

            def on_error(payload):
                lifecycle[name].append(payload["error"])
                manager.load(session_id)  # catch up with the other windows

            manager.on("lifecycle_error", on_error)
            manager.on("save", lambda payload: saved.update([name]))
            for turn in range(8):
                conversation.prompt(f"{name} turn {turn}")
        return run

    errors = run_threads([window(f"win{i}") for i in range(3)])
    assert errors == []  # nothing ever raised out of prompt()
    for errs in lifecycle.values():
        assert all(isinstance(e, SessionConflictError) for e in errs), errs
    assert sum(saved.values()) >= 8
    stored = GitSessionStore(repo, create=False).load(session_id)
    assert stored.metadata.message_count == len(stored.messages)
    fsck(repo, "--strict")


# ---- one store instance shared by several writers of one session ----------------------------
def test_one_store_instance_shared_by_two_writers_of_one_session(tmp_path):
    """Callers sharing one instance say which head they built on (``expected_head``)."""
    store = GitSessionStore(tmp_path / "repo")
    store.save("s", [{"role": "user", "content": "start"}])
    seen_by_a = store.load("s")       # writer A loads
    seen_by_b = store.load("s")       # writer B loads
    store.save("s", seen_by_a.messages + [{"role": "user", "content": "from A"}],
               expected_head=seen_by_a.metadata.head)  # acknowledged
    with pytest.raises(SessionConflictError):
        store.save("s", seen_by_b.messages + [{"role": "user", "content": "from B"}],
                   expected_head=seen_by_b.metadata.head)
    contents = [m["content"] for m in store.load("s").messages]
    assert "from A" in contents


def test_two_managers_sharing_one_store_on_one_session(tmp_path):
    manager_module = pytest.importorskip("sessionsgit.manager")
    conversation_module = pytest.importorskip("sessionsgit.conversation")
    SessionManager, Conversation = manager_module.SessionManager, conversation_module.Conversation
    store = GitSessionStore(tmp_path / "repo")
    first, second = Conversation(), Conversation()
    first_manager, second_manager = SessionManager(store, first), SessionManager(store, second)
    session_id = first_manager.start_new()
    second_manager.load(session_id)
    first.prompt("first window")    # acknowledged: a save event fires
    second.prompt("second window")  # built on a stale transcript
    stored = [m["content"][0]["text"] if isinstance(m["content"], list) else m["content"]
              for m in GitSessionStore(tmp_path / "repo", create=False).load(session_id).messages]
    assert any("first window" in text for text in stored)
