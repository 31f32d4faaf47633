import json
import os
import subprocess
import sys
import threading

import pytest

from sessionsgit import CorruptSessionError, SerializationError, idcodec
from sessionsgit.stores.file import FileSessionStore

from .store_contract import StoreContract, msg, transcript


class TestFileStore(StoreContract):
    kind = "file"


@pytest.fixture
def root(tmp_path):
    return tmp_path / "sessions"


@pytest.fixture
def store(root):
    return FileSessionStore(root)


def write_json(path, data):
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def read_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


# ---- layout ---------------------------------------------------------------------------------
def test_creates_directory_with_parents(tmp_path):
    FileSessionStore(tmp_path / "a" / "b" / "c")
    assert (tmp_path / "a" / "b" / "c").is_dir()


def test_on_disk_shape_is_the_originals(store, root):
    store.save("s1", transcript(2), {"label": "hi", "provider": "p", "custom": 1})
    data = read_json(root / "s1.json")
    assert list(data) == ["metadata", "messages"]
    assert data["messages"] == transcript(2)
    meta = data["metadata"]
    assert list(meta) == ["created_at", "updated_at", "message_count", "label", "provider",
                          "custom"]
    assert (meta["label"], meta["provider"], meta["message_count"], meta["custom"]) == (
        "hi", "p", 2, 1)
    loaded = store.load("s1").metadata
    assert loaded.extra == {"custom": 1} and store.list()[0].extra == {"custom": 1}


def test_fork_index_is_a_hard_link_to_current_content(store, root):
    store.save("p", transcript(2))
    store.fork("p", "c")
    link = root / "p-forks" / "c.json"
    assert os.stat(link).st_ino == os.stat(root / "c.json").st_ino
    store.save("c", transcript(3))  # os.replace gives c.json a new inode
    assert os.stat(link).st_ino == os.stat(root / "c.json").st_ino
    assert read_json(link)["messages"] == transcript(3)[2:]  # the fork's own messages


def test_link_failure_is_tolerated(store, root, monkeypatch):
    store.save("p", transcript(1))

    def no_links(*args, **kwargs):
        raise OSError("cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    store.fork("p", "c")
    assert store.load("c").messages == transcript(1)
    assert not (root / "p-forks" / "c.json").exists()


def test_changing_parent_moves_the_index_link(store, root):
    store.save("p1", transcript(1))
    store.save("p2", transcript(1))
    store.fork("p1", "c")
    store.save("c", transcript(1), {"parent_id": "p2"})
    assert not (root / "p1-forks" / "c.json").exists()
    assert (root / "p2-forks" / "c.json").exists()


def test_unsafe_parent_id_never_touches_paths_outside(tmp_path, store, root):
    store.save("c", transcript(1), {"parent_id": "../../evil"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sessions"]
    assert sorted(p.name for p in root.iterdir()) == ["%2E.%2F..%2Fevil-forks", ".sessions.lock",
                                                      "c.json"]


def test_delete_removes_index_link_but_not_children(store, root):
    store.save("p", transcript(2))
    store.fork("p", "c")
    store.fork("c", "g")
    assert store.delete("c") is True
    assert not (root / "c.json").exists()
    assert not (root / "p-forks" / "c.json").exists()
    assert not (root / "c-forks").exists()  # removed with its owner, as the original does
    assert store.load("g").messages == []  # g held no messages of its own: its parent is gone
    assert store.delete("g") is True
    assert list((root / "p-forks").iterdir()) == []
    assert sorted(m.id for m in store.list()) == ["p"]


def test_list_skips_temp_lock_index_and_other_files(store, root):
    store.save("p", transcript(1))
    store.fork("p", "c")
    (root / ".c.json.abc123.tmp").write_text("{partial")
    (root / "notes.txt").write_text("hello")
    (root / ".hidden.json").write_text("{}")
    (root / "dir.json").mkdir()
    assert sorted(m.id for m in store.list()) == ["c", "p"]
    assert store.last_damaged == []


# ---- files written by the npm package ------------------------------------------------------
def npm_meta(**fields):
    meta = {"created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-01T00:00:00.000Z"}
    meta.update(fields)
    return meta


@pytest.fixture
def npm_dir(root):
    root.mkdir(parents=True, exist_ok=True)
    parent = [msg("user", "hello", "a1"), msg("assistant", "hi", "a2"), msg("user", "more", "a3")]
    write_json(root / "p.json", {"metadata": npm_meta(message_count=3, label="parent",
                                                      provider="anthropic"),
                                 "messages": parent})
    write_json(root / "f.json", {"metadata": npm_meta(message_count=1, parent_id="p",
                                                      fork_message_id="a2", detached=False),
                                 "messages": [msg("user", "fork says", "f1")]})
    write_json(root / "d.json", {"metadata": npm_meta(message_count=1, parent_id="p",
                                                      detached=True),
                                 "messages": [msg("user", "detached", "d1")]})
    write_json(root / "all.json", {"metadata": npm_meta(message_count=1, parent_id="p"),
                                   "messages": [msg("user", "after all", "x1")]})
    write_json(root / "g.json", {"metadata": npm_meta(message_count=1, parent_id="f",
                                                      fork_message_id="a2"),
                                 "messages": [msg("user", "grandchild", "g1")]})
    os.mkdir(root / "p-forks")
    os.link(root / "f.json", root / "p-forks" / "f.json")
    return parent


def test_reads_npm_attached_fork_through_its_parent(store, npm_dir):
    loaded = store.load("f")
    assert loaded.messages == npm_dir[:2] + [msg("user", "fork says", "f1")]
    assert loaded.metadata.message_count == 3
    assert loaded.metadata.parent_id == "p" and loaded.metadata.fork_message_id == "a2"


def test_reads_npm_detached_fork_alone(store, npm_dir):
    assert store.load("d").messages == [msg("user", "detached", "d1")]


def test_npm_fork_without_fork_message_id_inherits_everything(store, npm_dir):
    assert store.load("all").messages == npm_dir + [msg("user", "after all", "x1")]


def test_npm_fork_of_fork(store, npm_dir):
    assert [m["id"] for m in store.load("g").messages] == ["a1", "a2", "g1"]


def test_npm_directory_lists_as_stored(store, npm_dir):
    listed = {m.id: m for m in store.list()}
    assert sorted(listed) == ["all", "d", "f", "g", "p"]
    assert listed["f"].message_count == 3  # the transcript's length (the file says 1: its own)
    assert listed["p"].label == "parent" and listed["p"].provider == "anthropic"
    assert listed["p"].extra == {}


def test_resaving_npm_fork_keeps_only_its_own_messages(store, root, npm_dir):
    session = store.load("f")
    store.save("f", session.messages + [msg("assistant", "reply", "f2")])
    data = read_json(root / "f.json")
    assert "transcript" not in data["metadata"]
    assert data["metadata"]["fork_message_id"] == "a2" and data["metadata"]["message_count"] == 2
    assert [m["id"] for m in data["messages"]] == ["f1", "f2"]
    assert os.stat(root / "p-forks" / "f.json").st_ino == os.stat(root / "f.json").st_ino
    assert [m["id"] for m in store.load("f").messages] == ["a1", "a2", "f1", "f2"]


def test_legacy_full_marker_is_never_resolved_through_parent(store, root, npm_dir):
    write_json(root / "m.json", {"metadata": npm_meta(parent_id="p", fork_message_id="a2",
                                                      transcript="full", extra={"k": 1}),
                                 "messages": [msg("user", "own", "m1")]})
    loaded = store.load("m")
    assert loaded.messages == [msg("user", "own", "m1")] and loaded.metadata.extra == {"k": 1}
    store.rename("m", "now in the original's format")
    data = read_json(root / "m.json")
    assert "transcript" not in data["metadata"] and data["metadata"]["k"] == 1
    assert store.load("m").messages == [msg("user", "own", "m1")]


def test_npm_fork_with_missing_parent_loads_own_messages_and_cycle_is_corrupt(store, root):
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / "orphan.json", {"metadata": npm_meta(parent_id="gone"),
                                      "messages": [msg("user", "mine", "o1")]})
    write_json(root / "x.json", {"metadata": npm_meta(parent_id="y"), "messages": []})
    write_json(root / "y.json", {"metadata": npm_meta(parent_id="x"), "messages": []})
    write_json(root / "odd.json", {"metadata": npm_meta(parent_id="../etc"), "messages": []})
    assert store.load("orphan").messages == [msg("user", "mine", "o1")]
    with pytest.raises(CorruptSessionError, match="cycle"):
        store.load("x")
    assert store.load("odd").messages == []
    assert sorted(m.id for m in store.list()) == ["odd", "orphan"]
    assert sorted(sid for sid, _ in store.last_damaged) == ["x", "y"]
    assert sorted(sid for sid, _ in store.last_warnings) == ["odd", "orphan"]
    assert "'gone' is missing" in dict(store.last_warnings)["orphan"]


def test_npm_fork_point_missing_from_parent_inherits_everything(store, root, npm_dir):
    write_json(root / "lost.json", {"metadata": npm_meta(parent_id="p", fork_message_id="zz"),
                                    "messages": []})
    assert store.load("lost").messages == npm_dir
    store.list()
    assert "'zz' is not in 'p'" in dict(store.last_warnings)["lost"]


# ---- atomicity and damage ------------------------------------------------------------------
def test_failed_serialisation_leaves_file_byte_identical(store, root):
    store.save("s1", transcript(2), {"label": "before"})
    before = (root / "s1.json").read_bytes()
    with pytest.raises(SerializationError):
        store.save("s1", transcript(2) + [{"x": float("nan")}])
    with pytest.raises(SerializationError):
        store.save("s1", transcript(1), {"checkpoint_state": {1: "int key"}})
    assert (root / "s1.json").read_bytes() == before
    assert sorted(p.name for p in root.iterdir()) == [".sessions.lock", "s1.json"]


def test_crash_before_rename_keeps_old_file_and_no_temp(store, root, monkeypatch):
    store.save("s1", transcript(2))
    before = (root / "s1.json").read_bytes()

    def crash(*args):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk on fire"):
        store.save("s1", transcript(5))
    assert (root / "s1.json").read_bytes() == before
    assert sorted(p.name for p in root.iterdir()) == [".sessions.lock", "s1.json"]


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'{"metadata": {}}',
                                     b'{"metadata": [], "messages": []}',
                                     b'{"metadata": {}, "messages": [1]}',
                                     b'{"metadata": {"label": 5}, "messages": []}',
                                     b"\xff\xfe"])
def test_corrupt_file_is_reported_not_fatal(store, root, content):
    store.save("good", transcript(1))
    (root / "bad.json").write_bytes(content)
    assert [m.id for m in store.list()] == ["good"]
    assert [sid for sid, _ in store.last_damaged] == ["bad"]
    assert [sid for sid, _ in store.damaged()] == ["bad"]
    with pytest.raises(CorruptSessionError) as info:
        store.load("bad")
    assert info.value.session_id == "bad" and info.value.reason
    with pytest.raises(CorruptSessionError):
        store.save("bad", transcript(1))  # refuses to overwrite what it cannot read
    assert (root / "bad.json").read_bytes() == content
    assert store.delete("bad") is True
    assert store.damaged() == []


@pytest.mark.parametrize("odd_id", ["../x", "../../x", "/tmp/x", "a/../../x", "..", ".x"])
def test_path_traversal_ids_stay_inside_under_encoded_names(tmp_path, store, root, odd_id):
    before = sorted(p.name for p in tmp_path.iterdir())
    store.save(odd_id, transcript(1))
    assert store.load(odd_id).messages == transcript(1)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    name = idcodec.encode(odd_id, idcodec.FILE) + ".json"
    assert sorted(p.name for p in root.iterdir()) == sorted([".sessions.lock", name])
    assert "/" not in name and not name.startswith(".")
    assert store.delete(odd_id) is True
    assert sorted(p.name for p in root.iterdir()) == [".sessions.lock"]


def test_npm_names_with_spaces_and_unicode_are_their_own_file_names(store, root):
    for session_id in ("notes 2024-01", "café ☕", "chat:7", "a..b"):
        store.save(session_id, transcript(1))
        assert (root / f"{session_id}.json").is_file()


def test_long_id_gets_a_hashed_file_name_recording_the_id(store, root):
    long_id = "é" * 1024
    store.save(long_id, transcript(1))
    (path,) = root.glob("*.json")
    assert len(path.name.encode()) <= 255 and "%%" in path.name
    assert read_json(path)["metadata"]["id"] == long_id
    assert [m.id for m in FileSessionStore(root).list()] == [long_id]


def test_exists_is_a_file_check(store, root):
    store.save("s1", transcript(1))
    (root / "broken.json").write_text("{")
    assert store.exists("s1") and store.exists("broken") and not store.exists("s2")


# ---- concurrency ---------------------------------------------------------------------------
def test_threads_saving_different_sessions(root):
    errors = []

    def worker(n):
        store = FileSessionStore(root)  # separate instances share the directory lock
        try:
            for i in range(20):
                store.save(f"t{n}", transcript(i + 1), {f"k{i}": i})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = FileSessionStore(root)
    assert sorted(m.id for m in store.list()) == ["t0", "t1", "t2", "t3"]
    assert all(len(store.load(f"t{n}").messages) == 20 for n in range(4))


WRITER = """
import sys
from sessionsgit.stores.file import FileSessionStore
store = FileSessionStore(sys.argv[1])
for i in range(25):
    store.save("shared", [{"role": "user", "content": str(i)}], {f"{sys.argv[2]}{i}": i})
"""


def test_processes_updating_one_session_lose_no_metadata(root):
    """Read-merge-write under flock: every key each process added must survive."""
    FileSessionStore(root).save("shared", [])
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(root), name])
             for name in ("a", "b")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    extra = FileSessionStore(root).load("shared").metadata.extra
    assert sorted(extra) == sorted([f"a{i}" for i in range(25)] + [f"b{i}" for i in range(25)])
