"""Two pushers of the same session at once, on every transport: the remote ref moves only by
compare-and-swap from the value the push connection advertised, so exactly one push is
acknowledged and the other is rejected ("pull first"); nothing acknowledged is lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sessionsgit import GitSessionStore, RemoteError
from sessionsgit import sync as sync_module
from sessionsgit.sync import add_remote, pull, push, sync

from .conftest import git
from .servers import Server, server  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent


def msgs(*texts: str) -> list[dict]:
    roles = ("user", "assistant")
    return [{"id": f"m-{t}", "role": roles[i % 2], "content": [{"type": "text", "text": t}]}
            for i, t in enumerate(texts)]


def remote_head(path: Path, session_id: str) -> str:
    return git("--git-dir", str(path), "rev-parse", f"refs/heads/sessions/{session_id}").strip()


def clone(tmp_path: Path, name: str, url: str) -> GitSessionStore:
    store = GitSessionStore(tmp_path / name)
    add_remote(store, "origin", url)
    return store


def test_a_push_between_another_push_s_advertisement_and_its_update_wins(
        tmp_path, server: Server, monkeypatch):
    """B pushes after A's push connection read the remote's refs and before A's update: A's
    update must be refused, never written over B's acknowledged push."""
    served = server.bare(f"interleave-{len(list(server.repos.iterdir()))}")
    creds = served.credentials
    a, b = clone(tmp_path, "a", served.url), clone(tmp_path, "b", served.url)
    a.save("s", msgs("q"))
    assert push(a, credentials=creds).pushed == ["s"]
    assert pull(b, credentials=creds).created == ["s"]
    a.save("s", msgs("q", "from A"))
    b.load("s")
    b.save("s", msgs("q", "from B"))
    b_head = b.load("s").metadata.head

    original = sync_module._advertisement
    interleaved: list[str] = []

    def read_then_let_b_push(remote, local, push_callbacks):
        heads = original(remote, local, push_callbacks)
        if push_callbacks is not None and not interleaved:
            interleaved.append("b")
            assert push(b, credentials=creds).pushed == ["s"]
        return heads

    monkeypatch.setattr(sync_module, "_advertisement", read_then_let_b_push)
    with pytest.raises(RemoteError, match="pull first") as info:
        push(a, credentials=creds)
    monkeypatch.undo()
    assert interleaved == ["b"]
    assert [sid for sid, _ in info.value.report.rejected] == ["s"]
    assert info.value.report.pushed == []
    assert remote_head(served.path, "s") == b_head  # B's acknowledged push stands

    report = sync(a, credentials=creds)  # A's news survive as a fork, then travel
    (sid, fork_id), = report.diverged
    assert sid == "s" and report.pushed == [fork_id]
    assert a.load(fork_id).messages == msgs("q", "from A")
    assert remote_head(served.path, "s") == b_head
    assert git("--git-dir", str(served.path), "fsck", "--strict", "--no-progress",
               "--no-dangling") == ""


_PUSHER = """
import json, sys
from sessionsgit import GitSessionStore, RemoteError
from sessionsgit.sync import Credentials, push
store = GitSessionStore(sys.argv[1], create=False)
creds = Credentials(**json.loads(sys.argv[2])) if sys.argv[2] != "null" else None
go = sys.argv[3]
while True:  # a start line: every pusher has its repository open before anyone pushes
    try:
        open(go).close()
        break
    except FileNotFoundError:
        pass
try:
    report = push(store, credentials=creds)
    print(json.dumps({"pushed": report.pushed, "head": store.load("s").metadata.head}))
except RemoteError as exc:
    print(json.dumps({"pushed": [], "error": str(exc)}))
"""


def test_concurrent_pushers_in_separate_processes_one_is_acknowledged(tmp_path, server: Server):
    """Four processes push four different continuations of one session at once: exactly one
    reports ``pushed``, and the remote holds exactly that one."""
    served = server.bare(f"processes-{len(list(server.repos.iterdir()))}")
    creds = served.credentials
    first = clone(tmp_path, "first", served.url)
    first.save("s", msgs("q"))
    push(first, credentials=creds)
    stores = []
    for n in range(4):
        store = clone(tmp_path, f"w{n}", served.url)
        pull(store, credentials=creds)
        store.load("s")
        store.save("s", msgs("q", f"from writer {n}"))
        stores.append(store)
    go = tmp_path / "go"
    given = "null" if creds is None else json.dumps(
        {k: v for k, v in vars(creds).items() if v is not None})
    procs = [subprocess.Popen([sys.executable, "-c", _PUSHER, str(store.path), given, str(go)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for store in stores]
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    winners = [r for r in results if r["pushed"] == ["s"]]
    assert len(winners) == 1, results
    assert remote_head(served.path, "s") == winners[0]["head"]
    for loser in (r for r in results if not r["pushed"]):
        assert "pull first" in loser["error"]
