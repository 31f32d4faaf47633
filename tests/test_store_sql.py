import copy
import json
import sqlite3
import threading

import pytest

from sessionsgit import CorruptSessionError, SerializationError
from sessionsgit.stores.sql import SQLiteAdapter, SQLSessionStore

from .store_contract import StoreContract, msg, transcript


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "sessions.db"


@pytest.fixture
def opened():
    """Close every store a test opened."""
    stores = []
    yield stores
    for store in stores:
        store.close()


def open_store(path, opened, **kwargs):
    store = SQLSessionStore(SQLiteAdapter(path, **kwargs))
    opened.append(store)
    return store


class TestSQLiteStore(StoreContract):
    kind = "sql"


class DictAdapter:
    """A dict-backed adapter written against the SQLSessionAdapter surface only."""

    def __init__(self):
        self.rows = {}
        self.calls = []

    def list(self):
        self.calls.append("list")
        rows = sorted(self.rows.values(), key=lambda r: r["updated_at"], reverse=True)
        return [{"id": r["id"], "metadata": r["metadata"], "updated_at": r["updated_at"]}
                for r in rows]

    def load(self, session_id):
        self.calls.append("load")
        row = self.rows.get(session_id)
        return None if row is None else {"metadata": row["metadata"], "messages": row["messages"]}

    def upsert(self, row):
        self.calls.append("upsert")
        self.rows[row["id"]] = row  # kept as given: the store must hand in independent data

    def delete(self, session_id):
        self.calls.append("delete")
        return self.rows.pop(session_id, None) is not None


class TestCustomAdapterStore(StoreContract):
    @pytest.fixture
    def adapter(self):
        return DictAdapter()

    @pytest.fixture
    def store(self, adapter):
        return SQLSessionStore(adapter)

    @pytest.fixture
    def reopen(self, adapter):
        return lambda: SQLSessionStore(adapter)


def test_custom_adapter_receives_rows_in_the_documented_shape():
    adapter = DictAdapter()
    store = SQLSessionStore(adapter)
    meta = store.save("s1", transcript(2), {"label": "x"})
    row = adapter.rows["s1"]
    assert sorted(row) == ["id", "messages", "metadata", "updated_at"]
    assert "id" not in row["metadata"] and "head" not in row["metadata"]
    assert row["updated_at"] == meta.updated_at == row["metadata"]["updated_at"]
    assert row["messages"] == transcript(2)
    assert adapter.calls == ["load", "upsert"]
    snapshot = copy.deepcopy(adapter.rows)
    store.list()[0].extra["x"] = 1
    store.load("s1").messages[0]["role"] = "mutated"
    assert adapter.rows == snapshot


def test_bad_message_never_reaches_the_adapter():
    adapter = DictAdapter()
    store = SQLSessionStore(adapter)
    with pytest.raises(SerializationError):
        store.save("s1", [{"x": float("nan")}])
    with pytest.raises(SerializationError):
        store.save("s1", transcript(1), {"checkpoint_state": {"x": b"bytes"}})
    assert "upsert" not in adapter.calls and adapter.rows == {}


def test_damaged_rows_from_a_custom_adapter():
    adapter = DictAdapter()
    store = SQLSessionStore(adapter)
    store.save("good", transcript(1))
    adapter.rows["bad"] = {"id": "bad", "metadata": "not a dict", "messages": [],
                           "updated_at": "x"}
    adapter.rows["bad\x00id"] = {"id": "bad\x00id", "metadata": {}, "messages": [], "updated_at": "x"}
    adapter.rows["msgs"] = {"id": "msgs", "metadata": {}, "messages": ["not a dict"],
                            "updated_at": "x"}
    adapter.rows["counted"] = {"id": "counted", "metadata": {"message_count": 1},
                               "messages": ["not a dict"], "updated_at": "x"}
    # a row without a usable message_count is counted from its messages, so it is checked
    assert sorted(m.id for m in store.list()) == ["counted", "good"]
    assert sorted(sid for sid, _ in store.last_damaged) == ["bad", "bad\x00id", "msgs"]
    with pytest.raises(CorruptSessionError):
        store.load("bad")
    with pytest.raises(CorruptSessionError):
        store.load("msgs")


# ---- SQLiteAdapter -------------------------------------------------------------------------
def test_data_is_really_in_the_sqlite_file(db_path, opened):
    store = open_store(db_path, opened)
    meta = store.save("s1", transcript(2), {"label": "héllo", "custom": [1]})
    store.close()
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT id, metadata, messages, updated_at FROM sessions").fetchall()
        indexes = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions' "
            "AND sql LIKE '%updated_at%'")]
    conn.close()
    assert len(rows) == 1
    sid, metadata, messages, updated_at = rows[0]
    assert sid == "s1" and updated_at == meta.updated_at
    metadata = json.loads(metadata)
    assert "id" not in metadata
    assert metadata == {"created_at": meta.created_at, "updated_at": meta.updated_at,
                        "message_count": 2, "label": "héllo", "custom": [1]}
    assert json.loads(messages) == transcript(2)
    assert indexes


def test_list_does_not_read_messages(db_path, opened):
    adapter = SQLiteAdapter(db_path)
    opened.append(adapter)
    SQLSessionStore(adapter).save("s1", transcript(2))
    assert [sorted(row) for row in adapter.list()] == [["id", "metadata", "updated_at"]]


def test_memory_database(opened):
    store = open_store(":memory:", opened)
    store.save("a", transcript(1))
    store.fork("a", "b")
    assert sorted(m.id for m in store.list()) == ["a", "b"]


def test_custom_table_name(db_path, opened):
    open_store(db_path, opened, table="chat_sessions").save("s1", transcript(1))
    assert open_store(db_path, opened).list() == []  # the default table is separate
    assert [m.id for m in open_store(db_path, opened, table="chat_sessions").list()] == ["s1"]


@pytest.mark.parametrize("table", ["", "1abc", "a b", 'x"; DROP TABLE sessions; --', "a-b",
                                   "sqlite_master"])
def test_bad_table_names_rejected(db_path, table):
    with pytest.raises(ValueError):
        SQLiteAdapter(db_path, table=table)


def test_corrupt_row_is_reported_not_fatal(db_path, opened):
    store = open_store(db_path, opened)
    store.save("good", transcript(1))
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO sessions VALUES ('bad', '{not json', '[]', '2030')")
        conn.execute("INSERT INTO sessions VALUES ('badmsgs', '{}', '{\"x\": 1}', '2029')")
        conn.execute("INSERT INTO sessions VALUES ('array', '[]', '[]', '2028')")
    conn.close()
    assert sorted(m.id for m in store.list()) == ["good"]
    assert sorted(sid for sid, _ in store.last_damaged) == ["array", "bad", "badmsgs"]
    assert sorted(sid for sid, _ in store.damaged()) == ["array", "bad", "badmsgs"]
    for sid in ("bad", "badmsgs", "array"):
        with pytest.raises(CorruptSessionError) as info:
            store.load(sid)
        assert info.value.session_id == sid
    assert store.delete("bad") is True


def test_threads_saving_different_sessions(db_path, opened):
    store = open_store(db_path, opened)
    errors = []

    def worker(n):
        try:
            for i in range(30):
                store.save(f"t{n}", transcript(i + 1), {f"k{i}": i})
                store.list()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    fresh = open_store(db_path, opened)
    assert sorted(m.id for m in fresh.list()) == ["t0", "t1", "t2", "t3"]
    for n in range(4):
        loaded = fresh.load(f"t{n}")
        assert len(loaded.messages) == 30 and len(loaded.metadata.extra) == 30


def test_two_connections_to_one_file_wait_instead_of_failing(db_path, opened):
    """Separate adapters (as two processes would have) writing at once: busy timeout, no error."""
    errors = []

    def worker(n):
        store = open_store(db_path, opened)
        try:
            for i in range(30):
                store.save(f"c{n}-{i}", [msg("user", str(i))])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(open_store(db_path, opened).list()) == 90


SQL_WRITER = """
import sys
from sessionsgit.stores.sql import SQLiteAdapter, SQLSessionStore
store = SQLSessionStore(SQLiteAdapter(sys.argv[1]))
for i in range(25):
    store.save("shared", [{"role": "user", "content": str(i)}], {f"{sys.argv[2]}{i}": i})
"""


def test_processes_updating_one_session_lose_no_metadata(tmp_path):
    """The read-merge-write of a save runs in one BEGIN IMMEDIATE transaction: every key each
    process added must survive."""
    import subprocess
    import sys

    path = tmp_path / "db.sqlite"
    SQLSessionStore(SQLiteAdapter(path)).save("shared", [])
    procs = [subprocess.Popen([sys.executable, "-c", SQL_WRITER, str(path), name])
             for name in ("a", "b")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    extra = SQLSessionStore(SQLiteAdapter(path)).load("shared").metadata.extra
    assert sorted(extra) == sorted([f"a{i}" for i in range(25)] + [f"b{i}" for i in range(25)])


def test_failed_save_inside_the_transaction_rolls_back(tmp_path):
    store = SQLSessionStore(SQLiteAdapter(tmp_path / "db.sqlite"))
    store.save("s", [{"role": "user", "content": "kept"}], {"label": "before"})
    with pytest.raises(SerializationError):
        store.save("s", [{"role": "user", "content": "x"}], {"checkpoint_state": float("nan")})
    store.save("t", [])  # the connection is usable again: no transaction left open
    assert store.load("s").metadata.label == "before"
