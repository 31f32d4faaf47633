"""A remote may hold anything. Sessions forged object by object with the git CLI (unexpected
tree entries, ``..`` and ``.git``, symlinks, submodules, huge and non-JSON blobs, malformed
commits and metadata, bad ref names, branches at tags and blobs) are refused at fetch time:
one clear line per bad session, never a traceback, nothing of them in the store (so
``git fsck --strict`` stays clean), no change to a healthy local session, and the good
sessions of the same remote arrive."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from sessionsgit import CorruptSessionError, GitSessionStore, SerializationError
from sessionsgit.git.commitmeta import compose
from sessionsgit.metadata import SessionMetadata
from sessionsgit.sync import add_remote, pull, push, sync

from .conftest import git
from .servers import LocalPath, Server, daemon, running  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
IDENT = "Mallory <m@example.com> 1700000000 +0000"


@pytest.fixture(scope="module", params=["path", "http"])
def host(request, tmp_path_factory) -> Iterator[Server]:
    yield from running(request.param, tmp_path_factory.mktemp(f"hostile-{request.param}"))


class Forge:
    """Writes arbitrary objects and refs into a bare repository with the git CLI."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def run(self, *args: str, data: bytes | None = None) -> str:
        result = subprocess.run(["git", "--git-dir", str(self.path), *args], input=data,
                                capture_output=True, check=True)
        return result.stdout.decode().strip()

    def blob(self, data: bytes) -> str:
        return self.run("hash-object", "-w", "--stdin", data=data)

    def tree(self, *entries: tuple[str, str, str, str]) -> str:
        """(mode, type, id, name) entries, written as given (``--literally`` keeps ``..``)."""
        body = b"".join(f"{mode} {name}".encode() + b"\0" + bytes.fromhex(oid)
                        for mode, _type, oid, name in entries)
        return self.run("hash-object", "-w", "--literally", "-t", "tree", "--stdin", data=body)

    def commit(self, tree: str, parents: list[str] = (), message: str | None = None,
               ident: str = IDENT) -> str:
        if message is None:
            message = meta_message()
        head = f"tree {tree}\n" + "".join(f"parent {p}\n" for p in parents)
        raw = f"{head}author {ident}\ncommitter {ident}\n\n{message}".encode()
        return self.run("hash-object", "-w", "--literally", "-t", "commit", "--stdin", data=raw)

    def ref(self, name: str, oid: str) -> None:
        """Written as a file: ``update-ref`` refuses a branch at a tag or a blob."""
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(oid + "\n")

    def packed_ref(self, name: str, oid: str) -> None:
        """A ref git itself would never create (``refs/heads/sessions/..``)."""
        with open(self.path / "packed-refs", "a") as handle:
            handle.write(f"{oid} {name}\n")

    def session_tree(self, *messages: bytes, session: bytes = b"{}") -> str:
        blobs = [("100644", "blob", self.blob(m), f"{i:06d}.json") for i, m in enumerate(messages)]
        chunk = self.tree(*blobs)
        return self.tree(("40000", "tree", self.tree(("40000", "tree", chunk, "0000")),
                          "messages"), ("100644", "blob", self.blob(session), "session.json"))


def meta_message(**fields) -> str:
    metadata = SessionMetadata.from_dict({"created_at": "2025-01-01T00:00:00Z",
                                          "message_count": 1})
    base = compose("user: hello", metadata)
    if not fields:
        return base
    data = json.loads(base.split("Sessionsgit-Meta: ", 1)[1])
    data.update(fields)
    return "user: hello\n\nSessionsgit-Meta: " + json.dumps(data) + "\n"


MESSAGE = b'{"role": "user", "content": "hello"}'


def forge_hostile(forge: Forge, victim_head: str, host: Server) -> dict[str, str]:
    """Every bad session this test refuses: {session id: what is wrong}."""
    ok_tree = forge.session_tree(MESSAGE)
    blob = forge.blob(MESSAGE)
    good_commit = forge.commit(ok_tree)
    sub_tree = forge.tree(("100644", "blob", blob, "x"))
    bad: dict[str, tuple[str, str]] = {}

    def tree_session(name: str, *entries: tuple[str, str, str, str], why: str) -> None:
        bad[name] = (forge.commit(forge.tree(*entries)), why)

    session_blob = ("100644", "blob", forge.blob(b"{}"), "session.json")
    tree_session("messages-blob", ("100644", "blob", blob, "messages"), session_blob,
                 why="unexpected entry")
    tree_session("dotdot", ("100644", "blob", blob, ".."), session_blob, why="unexpected entry")
    tree_session("dotgit", ("40000", "tree", sub_tree, ".git"), session_blob,
                 why="unexpected entry")
    tree_session("symlink", ("120000", "blob", forge.blob(b"/etc/passwd"), "session.json"),
                 why="unexpected entry")
    tree_session("gitlink", ("160000", "commit", good_commit, "messages"), session_blob,
                 why="unexpected entry")
    bad["zero-padded-mode"] = (forge.commit(forge.tree(
        ("040000", "tree", forge.tree(("40000", "tree", forge.tree(
            ("100644", "blob", blob, "000000.json")), "0000")), "messages"), session_blob)),
        "unexpected entry")
    bad["not-json"] = (forge.commit(forge.session_tree(b"not json {")), "not valid JSON")
    bad["two-messages-one-blob"] = (forge.commit(forge.session_tree(MESSAGE + b"\n" + MESSAGE)),
                                    "not valid JSON")
    bad["deep-message"] = (forge.commit(forge.session_tree(b"[" * 5000 + b"]" * 5000)),
                           "nested more than")
    bad["array-message"] = (forge.commit(forge.session_tree(b"[1, 2]")), "not a JSON object")
    bad["big-blob"] = (forge.commit(forge.session_tree(b" " * (3 << 20) + MESSAGE)),
                       "at most")  # 3 MB of spaces (limit 2 MB here): zlib makes it ~3 KB
    bad["count-1e400"] = (forge.commit(ok_tree, message=meta_message().replace(
        '"message_count":1', '"message_count":1e400')), "bad metadata")
    bad["year-10000"] = (forge.commit(ok_tree, message=meta_message(
        updated_at="10000-01-01T00:00:00Z")), "not an ISO 8601 date")
    bad["label-number"] = (forge.commit(ok_tree, message=meta_message(label=5)), "not text")
    bad["extra-number"] = (forge.commit(ok_tree, message=meta_message(extra=5)), "bad metadata")
    bad["no-meta"] = (forge.commit(ok_tree, message="hand made\n"), "no sessionsgit metadata")
    bad["broken-meta"] = (forge.commit(ok_tree, message="x\n\nSessionsgit-Meta: {\"a\":\n"),
                          "no sessionsgit metadata")
    bad["far-future"] = (forge.commit(ok_tree, ident="M <m@x> 999999999999 +0000"),
                         "after the year 9999")
    bad["bad-ident"] = (forge.commit(ok_tree, ident="no email here"), "malformed author")
    bad["many-parents"] = (forge.commit(ok_tree, parents=[good_commit] * 10_000),
                           "more than 8 parents")
    tag = forge.run("hash-object", "-w", "--literally", "-t", "tag", "--stdin", data=(
        f"object {good_commit}\ntype commit\ntag t\ntagger {IDENT}\n\nt\n").encode())
    bad["at-a-tag"] = (tag, "points at a tag")
    bad["at-a-blob"] = (blob, "points at a blob")
    # a fast-forward of a healthy local session whose new commit is damaged
    bad["victim"] = (forge.commit(forge.tree(("100644", "blob", blob, "..")),
                                  parents=[victim_head]), "unexpected entry")
    for name, (oid, _) in bad.items():
        forge.ref(f"refs/heads/sessions/{name}", oid)
    if isinstance(host, LocalPath):  # git's own upload-pack will not serve these names
        forge.packed_ref("refs/heads/sessions/..", good_commit)
        forge.packed_ref("refs/heads/sessions/nested/path", good_commit)
    return {name: why for name, (_, why) in bad.items()}


def store_refs(store: GitSessionStore) -> dict[str, str]:
    return {r.name: str(r.target) for r in store.repo.references.iterator()
            if r.name.startswith(("refs/heads/", "refs/sessions-trash/"))}


def fsck(path: Path) -> str:
    result = subprocess.run(["git", "--git-dir", str(path), "fsck", "--strict", "--no-progress",
                             "--no-dangling"], capture_output=True, text=True)
    return "" if result.returncode == 0 and not result.stdout else result.stdout + result.stderr


def cli(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSGIT_")}
    return subprocess.run([sys.executable, "-m", "sessionsgit", "--repo", str(repo), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_a_hostile_remote_s_bad_sessions_are_refused_and_nothing_here_changes(
        tmp_path, host: Server, monkeypatch):
    monkeypatch.setenv("SESSIONSGIT_MAX_BLOB_BYTES", str(2 << 20))
    served = host.bare(f"hostile-{len(list(host.repos.iterdir()))}")
    creds = served.credentials
    mine = GitSessionStore(tmp_path / "mine")
    mine.save("victim", [{"role": "user", "content": "mine"}], {"label": "healthy"})
    mine.save("good", [{"role": "user", "content": "shared"}])
    assert push(mine, str(served.path)).pushed == ["good", "victim"]
    mine.save("good-here-only", [{"role": "user", "content": "local"}])
    victim_before = mine.load("victim")
    refs_before = store_refs(mine)
    forge = Forge(served.path)
    bad = forge_hostile(forge, victim_before.metadata.head, host)
    good_remote = mine.load("good").metadata.head
    forge.run("update-ref", "refs/heads/sessions/good", forge.commit(
        forge.session_tree(MESSAGE, MESSAGE), parents=[good_remote]))  # a healthy update too

    add_remote(mine, "origin", served.url)
    started = time.monotonic()
    report = pull(mine, credentials=creds)
    elapsed = time.monotonic() - started
    refused = dict(report.rejected)
    assert len(report.rejected) == len(refused)  # one line per bad session
    for name, why in bad.items():
        assert name in refused, (name, report.rejected)
        assert why in refused[name] and refused[name].startswith("not taken in"), refused[name]
    names = {"..", "nested/path"} if isinstance(host, LocalPath) else set()
    assert set(refused) - set(bad) <= {"..", "nested/path"} and names <= set(refused)
    assert report.fetched == ["good"]
    assert elapsed < 30

    after = store_refs(mine)
    assert after["refs/heads/sessions/victim"] == refs_before["refs/heads/sessions/victim"]
    assert {k: v for k, v in after.items() if k != "refs/heads/sessions/good"} == \
        {k: v for k, v in refs_before.items() if k != "refs/heads/sessions/good"}
    assert mine.load("victim").messages == victim_before.messages
    assert fsck(mine.path) == ""
    assert not list((mine.path / "sessionsgit-quarantine").iterdir())
    assert not [r for r in mine.repo.references if r.startswith("refs/remotes/origin/")
                and r.rsplit("/", 1)[1] in bad]

    # every command still works, without a traceback
    for args in (["list"], ["tree"], ["show", "victim"], ["show", "good"], ["log", "victim"],
                 ["export", "good", "--format", "json"]):
        done = cli(mine.path, *args)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (args, done.stderr)
    env_creds = creds  # sync: the bad sessions are reported once, never pushed over
    report = sync(mine, credentials=env_creds)
    assert sorted(sid for sid, _ in report.rejected) == sorted(refused)
    assert report.pushed == ["good-here-only"]
    assert fsck(mine.path) == ""
    assert mine.load("victim").messages == victim_before.messages


def test_a_history_100000_commits_deep_is_checked_without_recursion(tmp_path, daemon):
    served = daemon.bare(f"deep-{time.time_ns()}")
    bare = served.path
    forge = Forge(bare)
    blob, session = forge.blob(MESSAGE), forge.blob(b"{}")
    message = meta_message()
    stream = []
    for n in range(100_000):
        stream.append(f"commit refs/heads/sessions/deep\nmark :{n + 1}\ncommitter {IDENT}\n"
                      f"data {len(message)}\n{message}\n")
        if n == 0:
            stream.append(f"M 100644 {blob} messages/0000/000000.json\n"
                          f"M 100644 {session} session.json\n")
    subprocess.run(["git", "--git-dir", str(bare), "fast-import", "--quiet"],
                   input="".join(stream).encode(), check=True)
    store = GitSessionStore(tmp_path / "s")
    started = time.monotonic()
    assert pull(store, served.url).created == ["deep"]
    assert time.monotonic() - started < 60
    assert store.load("deep").messages == [json.loads(MESSAGE)]
    done = cli(store.path, "show", "deep")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert fsck(store.path) == ""


def test_a_configurable_blob_limit(tmp_path, monkeypatch):
    bare = tmp_path / "r.git"
    git("init", "-q", "--bare", str(bare))
    forge = Forge(bare)
    forge.ref("refs/heads/sessions/s", forge.commit(forge.session_tree(
        b'{"role": "user", "content": "' + b"x" * 5000 + b'"}')))
    monkeypatch.setenv("SESSIONSGIT_MAX_BLOB_BYTES", "4096")
    store = GitSessionStore(tmp_path / "s")
    (sid, why), = pull(store, str(bare)).rejected
    assert sid == "s" and "at most 4096" in why and "SESSIONSGIT_MAX_BLOB_BYTES" in why
    monkeypatch.delenv("SESSIONSGIT_MAX_BLOB_BYTES")
    assert pull(store, str(bare)).created == ["s"]


def test_metadata_that_overflows_reads_as_a_damaged_session_not_a_crash(tmp_path):
    """Sessions that reached a store some other way (a plain ``git fetch``, an older version)
    are read with the same care: ``message_count: 1e400`` is a damaged session."""
    store = GitSessionStore(tmp_path / "s")
    store.save("fine", [{"role": "user", "content": "hi"}])
    forge = Forge(store.path)
    forge.ref("refs/heads/sessions/inf", forge.commit(forge.session_tree(MESSAGE),
              message=meta_message().replace('"message_count":1', '"message_count":1e400')))
    assert [m.id for m in store.list()] == ["fine"]
    (sid, why), = store.last_damaged
    assert sid == "inf" and "bad metadata" in why
    done = cli(store.path, "list")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


def test_an_oversized_message_blob_already_here_reads_as_damaged_without_inflating_it(
        tmp_path, monkeypatch):
    """A zip bomb that reached the store without a pull (a plain ``git fetch``, a copy) is
    refused by its header's size at load: ``load`` raises ``CorruptSessionError``,
    ``damaged()`` names it, ``show``/``export`` say one line, and the process never inflates
    it (its peak memory stays far below the blob's size)."""
    store = GitSessionStore(tmp_path / "s")
    store.save("fine", [{"role": "user", "content": "hi"}])
    forge = Forge(store.path)
    bomb = b'{"role": "user", "content": "' + b" " * (160 << 20) + b'"}'  # zlib: ~160 KB
    forge.ref("refs/heads/sessions/bomb", forge.commit(forge.session_tree(MESSAGE, bomb)))
    del bomb
    monkeypatch.setenv("SESSIONSGIT_MAX_BLOB_BYTES", str(1 << 20))
    fresh = GitSessionStore(store.path)
    with pytest.raises(CorruptSessionError, match="at most 1048576") as caught:
        fresh.load("bomb")
    assert caught.value.session_id == "bomb" and "SESSIONSGIT_MAX_BLOB_BYTES" in str(caught.value)
    assert fresh.load("fine").messages == [{"role": "user", "content": "hi"}]
    assert [sid for sid, _ in fresh.damaged()] == ["bomb"]
    assert sorted(m.id for m in fresh.list()) == ["bomb", "fine"]  # metadata alone is fine

    limited = {**os.environ, "SESSIONSGIT_MAX_BLOB_BYTES": str(1 << 20)}
    for args, ok in ((["list"], True), (["show", "fine"], True), (["search", "hi"], True),
                     (["show", "bomb"], False),
                     (["export", "bomb", "--format", "json"], False)):
        done = subprocess.run([sys.executable, "-c", _PEAK, str(tmp_path / "peak"), "--repo",
                               str(store.path), *args], cwd=ROOT, env=limited,
                              capture_output=True, text=True, timeout=120)
        assert (done.returncode == 0) == ok and "Traceback" not in done.stderr, (args, done)
        if not ok:
            assert len(done.stderr.strip().splitlines()) == 1 and "damaged" in done.stderr \
                and "at most 1048576" in done.stderr, done.stderr
        peak_kib = int((tmp_path / "peak").read_text().split()[1])
        assert peak_kib < 100 << 10, (args, peak_kib)  # the blob inflated would be 160 MiB


#: Runs the CLI (argv: a file for the peak, then the CLI's arguments) and writes the process's
#: own peak resident memory (VmHWM: fresh after exec, unlike ru_maxrss) to that file.
_PEAK = """
import atexit, runpy, sys
out = sys.argv.pop(1)
def peak():
    with open("/proc/self/status") as status, open(out, "w") as handle:
        handle.write(next(line for line in status if line.startswith("VmHWM")))
atexit.register(peak)
sys.argv[0] = "sessionsgit"
runpy.run_module("sessionsgit", run_name="__main__")
"""


def test_a_message_over_the_blob_limit_is_refused_at_save_so_no_save_reads_back_damaged(
        tmp_path, monkeypatch):
    """The bound readers apply is also the writers': a message that would read back as
    damaged is a ``SerializationError`` on ``save`` and ``append``, and nothing changes."""
    monkeypatch.setenv("SESSIONSGIT_MAX_BLOB_BYTES", "4096")
    store = GitSessionStore(tmp_path / "s")
    store.save("s", [{"role": "user", "content": "small"}])
    head = store.load("s").metadata.head
    big = {"role": "user", "content": "x" * 5000}
    with pytest.raises(SerializationError, match="at most 4096"):
        store.save("s", [{"role": "user", "content": "small"}, big])
    with pytest.raises(SerializationError, match="SESSIONSGIT_MAX_BLOB_BYTES"):
        store.append("s", [big])
    with pytest.raises(SerializationError):
        store.save("new", [big])
    assert store.load("s").metadata.head == head and not store.exists("new")
    assert GitSessionStore(store.path).damaged() == []
