"""One directory (or one Drizzle table), two programs: sessionsgit and the original npm package
``@simulacra-ai/session`` 0.0.9, modelled from its source in ``tests/npm_original.py``.

Both directions: sessionsgit loads what the original wrote, and what sessionsgit writes is
exactly what the original would have written for the same operations (so the original loads the
same transcripts); ``sessionsgit import`` brings such a directory into Git, forks at their true
fork points, nothing skipped silently.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sessionsgit import FileSessionStore, GitSessionStore, SQLSessionStore
from sessionsgit.cli import cli
from sessionsgit.importers import import_npm_directory

from .helpers import git
from .npm_original import (
    Clock,
    OriginalDrizzleStore,
    OriginalFileStore,
    OriginalManager,
    resolve,
    stringify,
)


def m(mid: str, role: str = "user", text: str | None = None) -> dict[str, Any]:
    return {"id": mid, "role": role, "content": [{"type": "text", "text": text or f"text {mid}"}]}


def turns(prefix: str, n: int) -> list[dict[str, Any]]:
    return [m(f"{prefix}{i}", "user" if i % 2 == 0 else "assistant") for i in range(n)]


def file_json(root: Path, name: str) -> dict[str, Any]:
    return json.loads((root / f"{name}.json").read_text("utf-8"))


def without_times(data: dict[str, Any]) -> dict[str, Any]:
    """A session file with its timestamps checked for presence, then removed."""
    meta = dict(data["metadata"])
    assert isinstance(meta.pop("created_at"), str) and isinstance(meta.pop("updated_at"), str)
    return {"metadata": meta, "messages": data["messages"]}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "shared"
    path.mkdir()
    return path


@pytest.fixture
def original(root: Path) -> OriginalFileStore:
    return OriginalFileStore(root, Clock())


@pytest.fixture
def ours(root: Path) -> FileSessionStore:
    return FileSessionStore(root)


def build_everything(original: OriginalFileStore) -> OriginalManager:
    """A directory exercising what the original writes: fork of a fork, a fork whose parent went
    on, a child (detached) and a checkpoint session, a rename, a deleted parent (orphan fork),
    custom keys (``extra``, ``head``), unicode and space ids, a half-surrogate label and a 2 MB
    message."""
    manager = OriginalManager(original)
    manager.start_new("root")
    manager.add(*turns("r", 4))
    manager.fork("root", "fork-a")          # inherits r0..r3
    manager.add(m("a0"), m("a1", "assistant"))
    manager.fork("fork-a", "fork-of-fork")  # inherits r0..r3, a0, a1
    manager.add(m("b0"))
    manager.load("root")
    manager.add(m("r4"), m("r5", "assistant"))  # the parent goes on after its forks
    manager.fork("root", "child", detached=True)
    manager.add(m("c0"))
    manager.is_checkpoint, manager.checkpoint_state = True, {"summary": "so far"}
    manager.fork("root", "checkpoint", detached=True)
    manager.add(m("k0", "assistant"))
    manager.is_checkpoint, manager.checkpoint_state = False, None
    manager.rename("fork-a", "renamed fork")
    manager.start_new("doomed")
    manager.add(m("d0"))
    manager.fork("doomed", "orphan")
    manager.add(m("o0"))
    original.delete("doomed")
    original.save("custom", [m("x0")], {"tags": ["a", "b"], "extra": "a note", "head": "x",
                                        "owner": {"team": 7}})
    for odd in ("notes 2024-01", "café ☕"):
        manager.start_new(odd)
        manager.add(m(f"{odd}-0"))
    manager.start_new("half-emoji")
    manager.add(m("h0", text="x" * 59 + "\U0001F600 and more words"))
    manager.start_new("big")
    manager.add(m("big0", text="y" * 2_000_000))
    return manager


EVERYTHING = ["big", "café ☕", "checkpoint", "child", "custom", "fork-a", "fork-of-fork",
              "half-emoji", "notes 2024-01", "orphan", "root"]


# ---- sessionsgit reads what the original wrote ----------------------------------------------
def test_everything_the_original_wrote_loads_the_same(original, ours, root):
    build_everything(original)
    assert sorted(m["id"] for m in original.list()) == EVERYTHING
    assert sorted(meta.id for meta in ours.list()) == EVERYTHING
    assert ours.last_damaged == []
    warnings = dict(ours.last_warnings)
    assert sorted(warnings) == ["half-emoji", "orphan"]
    assert warnings["orphan"] == ("its parent 'doomed' is missing: loaded its own messages only, "
                                  "as the original does")
    assert "U+FFFD" in warnings["half-emoji"]
    for session_id in EVERYTHING:
        assert ours.load(session_id).messages == resolve(original, session_id), session_id
    assert [x["id"] for x in ours.load("fork-of-fork").messages] == [
        "r0", "r1", "r2", "r3", "a0", "a1", "b0"]
    assert [x["id"] for x in ours.load("root").messages][-2:] == ["r4", "r5"]
    assert ours.load("orphan").messages == [m("o0")]
    assert not (root / "doomed-forks").exists()


def test_metadata_the_original_wrote(original, ours):
    build_everything(original)
    listed = {meta.id: meta for meta in ours.list()}
    assert listed["custom"].extra == {"tags": ["a", "b"], "extra": "a note", "head": "x",
                                      "owner": {"team": 7}}
    assert listed["custom"].head != "x"  # the store's own revision token, not the custom key
    assert listed["custom"].head == ours.load("custom").metadata.head
    assert listed["fork-a"].label == "renamed fork"
    assert (listed["fork-a"].parent_id, listed["fork-a"].fork_message_id) == ("root", "r3")
    assert listed["child"].detached is True and listed["child"].parent_id == "root"
    assert listed["checkpoint"].is_checkpoint is True
    assert listed["checkpoint"].checkpoint_state == {"summary": "so far"}
    assert listed["fork-of-fork"].message_count == 7  # the whole transcript (the file says 1)
    assert listed["half-emoji"].label == "x" * 59 + "\ufffd"  # half an emoji, mended
    assert len(ours.load("big").messages[0]["content"][0]["text"]) == 2_000_000


def test_sessionsgit_continues_a_session_whose_label_holds_half_an_emoji(original, ours):
    manager = OriginalManager(original)
    manager.start_new("h")
    manager.add(m("h0", text="x" * 59 + "\U0001F600 and more words"))
    assert original.load("h")["metadata"]["label"] == "x" * 59 + "\ud83d"
    ours.save("h", ours.load("h").messages + [m("h1")])
    assert original.load("h")["metadata"]["label"] == "x" * 59 + "\ufffd"
    assert resolve(original, "h") == ours.load("h").messages


# ---- the original reads what sessionsgit wrote ----------------------------------------------
def test_a_fork_sessionsgit_makes_is_what_the_original_makes(root, ours, tmp_path):
    theirs_root = tmp_path / "theirs"
    theirs = OriginalFileStore(theirs_root, Clock())
    for store in (theirs, ours):
        store.save("p", turns("p", 2), {"label": "parent"})
    # the original's manager: fork (own messages only), then one more message
    manager = OriginalManager(theirs, auto_slug=False)
    manager.fork("p", "c")
    manager.add(m("c0"))
    # sessionsgit: fork, then save the whole transcript plus one message
    ours.fork("p", "c")
    ours.save("c", ours.load("c").messages + [m("c0")])
    assert without_times(file_json(root, "c")) == without_times(file_json(theirs_root, "c"))
    assert without_times(file_json(root, "p")) == without_times(file_json(theirs_root, "p"))
    assert resolve(OriginalFileStore(root, Clock()), "c") == turns("p", 2) + [m("c0")]
    assert (root / "p-forks" / "c.json").stat().st_ino == (root / "c.json").stat().st_ino


def test_continuing_renaming_and_resaving_the_originals_fork_keeps_its_shape(original, ours,
                                                                             root):
    manager = OriginalManager(original)
    manager.start_new("p")
    manager.add(*turns("p", 6))
    manager.fork("p", "f")
    manager.add(*turns("f", 4))
    assert len(resolve(original, "f")) == 10
    session = ours.load("f")
    assert len(session.messages) == 10
    ours.save("f", session.messages + [m("more")])   # continued in place
    assert len(resolve(original, "f")) == 11          # not 16
    ours.rename("f", "new name")
    ours.save("f", ours.load("f").messages)          # re-saved as is
    data = file_json(root, "f")
    assert data["messages"] == turns("f", 4) + [m("more")]
    assert data["metadata"]["message_count"] == 5
    assert data["metadata"]["fork_message_id"] == "p5"
    assert data["metadata"]["label"] == "new name"
    assert len(resolve(original, "f")) == 11
    # and the original goes on from there
    manager.load("f")
    manager.add(m("theirs"))
    assert ours.load("f").messages == turns("p", 6) + turns("f", 4) + [m("more"), m("theirs")]


def test_no_keys_the_original_never_writes(ours, root):
    ours.save("s", [m("s0")])
    assert file_json(root, "s")["metadata"].keys() == {"created_at", "updated_at",
                                                       "message_count"}
    ours.save("s", [m("s0"), m("s1")], {"label": None, "tags": ["t"]})
    meta = file_json(root, "s")["metadata"]
    assert list(meta) == ["id", "created_at", "updated_at", "message_count", "tags"]
    assert meta["id"] == "s"  # the original writes it too when it saves over a file
    ours.fork("s", "c", detached=True)
    assert file_json(root, "c")["metadata"].keys() == {
        "created_at", "updated_at", "message_count", "parent_id", "detached"}


def test_custom_keys_stay_flat_after_sessionsgit_renames(original, ours, root):
    original.save("custom", [m("x0")], {"tags": ["a"], "extra": "a note", "head": "x"})
    ours.rename("custom", "named")
    meta = file_json(root, "custom")["metadata"]
    assert (meta["tags"], meta["extra"], meta["head"], meta["label"]) == (
        ["a"], "a note", "x", "named")
    assert original.load("custom")["metadata"]["tags"] == ["a"]
    ours.save("custom", [m("x0")], {"tags": ["b"]})
    assert file_json(root, "custom")["metadata"]["tags"] == ["b"]


def test_fork_point_the_original_cannot_express_is_stored_detached(ours, root):
    ours.save("p", [{"role": "user", "content": "no ids"}, {"role": "assistant", "content": "x"}])
    ours.fork("p", "c", at=1)
    data = file_json(root, "c")
    assert data["metadata"]["detached"] is True and "fork_message_id" not in data["metadata"]
    assert resolve(OriginalFileStore(root, Clock()), "c") == ours.load("c").messages == [
        {"role": "user", "content": "no ids"}]


def test_delete_removes_the_forks_index_as_the_original_does(original, ours, root):
    manager = OriginalManager(original)
    manager.start_new("p")
    manager.add(m("p0"))
    manager.fork("p", "c")
    assert (root / "p-forks" / "c.json").exists()
    assert ours.delete("p") is True
    assert not (root / "p-forks").exists()
    assert ours.load("c").messages == [] == resolve(original, "c")
    assert ours.damaged() == []


def test_ids_with_spaces_and_unicode_share_file_names(original, ours, root):
    for session_id in ("notes 2024-01", "café ☕", "chat:7"):
        ours.save(session_id, [m("a")])
        assert original.load(session_id)["messages"] == [m("a")]
    original.save("from them 2", [m("b")])
    assert ours.load("from them 2").messages == [m("b")]


def test_newer_ndjson_pairs_are_skipped_with_one_warning(ours, root):
    ours.save("fine", [m("a")])
    (root / "nd.meta.json").write_text(stringify({"created_at": "2025-01-01T00:00:00.000Z",
                                                  "updated_at": "2025-01-01T00:00:00.000Z",
                                                  "message_count": 1}))
    (root / "nd.ndjson").write_text(json.dumps(m("n0")) + "\n")
    assert [meta.id for meta in ours.list()] == ["fine"]
    assert ours.last_damaged == []
    assert [(sid, "ndjson" in why) for sid, why in ours.last_warnings] == [("nd", True)]


def test_huge_message_count_is_ignored(ours, root, tmp_path):
    (root / "huge.json").write_text('{"metadata": {"created_at": "2024-01-01T00:00:00.000Z", '
                                    '"updated_at": "2024-01-01T00:00:00.000Z", '
                                    '"message_count": 1e400}, "messages": []}')
    assert [(meta.id, meta.message_count) for meta in ours.list()] == [("huge", 0)]
    store = GitSessionStore(tmp_path / "repo")
    assert import_npm_directory(store, root).imported == ["huge"]


# ---- Drizzle rows ---------------------------------------------------------------------------
class RowsAdapter:
    """A sessionsgit adapter over the same rows the original's Drizzle store uses."""

    def __init__(self, rows: dict[str, dict[str, Any]]) -> None:
        self.rows = rows

    def list(self):
        return sorted(({k: v for k, v in row.items() if k != "messages"}
                       for row in self.rows.values()),
                      key=lambda r: r["updated_at"], reverse=True)

    def load(self, session_id):
        row = self.rows.get(session_id)
        return None if row is None else {"metadata": row["metadata"], "messages": row["messages"]}

    def upsert(self, row):
        self.rows[row["id"]] = json.loads(json.dumps(row))

    def delete(self, session_id):
        return self.rows.pop(session_id, None) is not None


def test_drizzle_fork_rows_both_ways():
    rows: dict[str, dict[str, Any]] = {}
    theirs = OriginalDrizzleStore(rows, Clock())
    ours = SQLSessionStore(RowsAdapter(rows))
    manager = OriginalManager(theirs)
    manager.start_new("p")
    manager.add(*turns("p", 4))
    manager.fork("p", "f")
    manager.add(m("f0"), m("f1", "assistant"))
    manager.load("p")
    manager.add(m("p4"))
    assert len(resolve(theirs, "f")) == 6
    assert ours.load("f").messages == resolve(theirs, "f")
    assert {meta.id: meta.message_count for meta in ours.list()} == {"p": 5, "f": 6}
    # sessionsgit continues the fork and forks it: rows the original reads back the same
    ours.save("f", ours.load("f").messages + [m("f2")])
    assert rows["f"]["messages"] == [m("f0"), m("f1", "assistant"), m("f2")]
    assert "extra" not in rows["f"]["metadata"] and "id" not in rows["f"]["metadata"]
    ours.fork("f", "g", at="f0")
    assert rows["g"]["messages"] == [] and rows["g"]["metadata"]["fork_message_id"] == "f0"
    assert resolve(theirs, "g") == ours.load("g").messages == turns("p", 4) + [m("f0")]
    ours.save("custom", [m("c")], {"tags": ["x"]})
    assert rows["custom"]["metadata"]["tags"] == ["x"]


# ---- import ---------------------------------------------------------------------------------
def test_import_brings_everything_in_with_forks_at_their_true_fork_points(original, root,
                                                                          tmp_path):
    build_everything(original)
    store = GitSessionStore(tmp_path / "repo")
    result = import_npm_directory(store, root)
    assert sorted(result.imported) == EVERYTHING
    assert result.skipped == []
    warned = dict(result.warnings)
    assert "'doomed'" in warned["orphan"] and "U+FFFD" in warned["half-emoji"]
    for session_id in EVERYTHING:
        expected = resolve(original, session_id)
        assert len(store.load(session_id).messages) == len(expected), session_id
    assert store.load("half-emoji").metadata.label == "x" * 59 + "\ufffd"
    repo = store.path
    for fork, parent, inherited in (("fork-a", "root", 4), ("fork-of-fork", "fork-a", 6)):
        base = git("merge-base", f"sessions/{fork}", f"sessions/{parent}", cwd=repo).strip()
        count = json.loads(git("log", "-1", "--format=%B", base, cwd=repo)
                           .split("Sessionsgit-Meta: ")[1])["message_count"]
        assert count == inherited, fork
    # git log of the fork shows none of the parent's later messages
    assert "r4" not in git("log", "-p", "sessions/fork-a", cwd=repo)
    assert store.load("fork-a").metadata.parent_id == "root"


def test_cli_import_reports_each_skip_and_exits_1_unless_skip_damaged(original, root,
                                                                      tmp_path):
    original.save("good", [m("g0")])
    (root / "broken.json").write_text("{")
    (root / "nd.meta.json").write_text("{}")
    (root / "nd.ndjson").write_text("")
    outside = tmp_path / "outside.json"
    outside.write_text(stringify({"metadata": {"created_at": "x", "updated_at": "x"},
                                  "messages": []}))
    os.symlink(outside, root / "escape.json")
    os.symlink(root / "loop.json", root / "loop.json")
    runner = CliRunner()
    first = runner.invoke(cli, ["--repo", str(tmp_path / "r1"), "import", "--create", str(root)])
    assert first.exit_code == 1
    assert first.stdout.split() == ["good"]
    lines = sorted(line for line in first.stderr.splitlines() if line.startswith("skipped"))
    assert [line.split(":")[0] for line in lines] == [
        "skipped broken", "skipped escape", "skipped loop", "skipped nd"]
    assert "outside the directory" in lines[1]
    second = runner.invoke(cli, ["--repo", str(tmp_path / "r2"), "import", "--create", str(root),
                                 "--skip-damaged"])
    assert second.exit_code == 0 and second.stdout.split() == ["good"]


def test_import_of_a_long_fork_chain_is_linear_and_never_recursive(root, tmp_path):
    def chain(directory: Path, length: int) -> None:
        directory.mkdir(exist_ok=True)
        store = OriginalFileStore(directory, Clock())
        store.save("s0", [m("s0-0")])
        for i in range(1, length):
            store.save(f"s{i}", [m(f"s{i}-0")], {"parent_id": f"s{i - 1}",
                                                 "fork_message_id": f"s{i - 1}-0",
                                                 "detached": False})

    chain(root, 1100)
    source = FileSessionStore(root)
    assert len(source.list()) == 1100  # no RecursionError
    assert len(source.load("s1099").messages) == 1100
    timings = {}
    for length in (100, 400):
        directory = tmp_path / f"chain{length}"
        chain(directory, length)
        store = GitSessionStore(tmp_path / f"repo{length}")
        started = time.perf_counter()
        result = import_npm_directory(store, directory)
        timings[length] = time.perf_counter() - started
        assert len(result.imported) == length and result.skipped == []
        assert len(store.load(f"s{length - 1}").messages) == length
    # four times the chain: well under the sixteen times a quadratic import would take
    assert timings[400] < 8 * timings[100] + 1.0, timings
