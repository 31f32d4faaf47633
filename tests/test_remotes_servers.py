"""push / pull / sync through the two transports real teams use, against real servers on
127.0.0.1: smart HTTP (nginx + fcgiwrap + git http-backend, basic auth) and ssh (OpenSSH's
sshd, key auth). Each scenario runs on both (see tests/servers.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from sessionsgit import DiskFullError, GitSessionStore, RemoteError
from sessionsgit.sync import Credentials, add_remote, pull, push, sync

from .conftest import git
from .servers import HTTP_PASSWORD, HTTP_USER, Server, Served, SmartHttp, Sshd, running

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", params=["http", "ssh"])
def real(request, tmp_path_factory) -> Iterator[Server]:
    """The smart-HTTP server, then the ssh server."""
    yield from running(request.param, tmp_path_factory.mktemp(f"real-{request.param}"))


_names = iter(range(1_000_000))


def fresh(server: Server, what: str) -> Served:
    return server.bare(f"{what}-{next(_names)}")


def msgs(*texts: str) -> list[dict]:
    roles = ("user", "assistant")
    return [{"id": f"m-{t}", "role": roles[i % 2], "content": [{"type": "text", "text": t}]}
            for i, t in enumerate(texts)]


def heads(store: GitSessionStore) -> dict[str, str]:
    return {m.id: m.head for m in store.list()}


def remote_heads(path: Path) -> dict[str, str]:
    out = git("--git-dir", str(path), "for-each-ref", "--format=%(refname) %(objectname)",
              "refs/heads/sessions/")
    return {line.split()[0].rsplit("/", 1)[1]: line.split()[1] for line in out.splitlines()}


def cli_env(server: Server) -> dict[str, str]:
    """Environment that hands the server's credentials to the CLI the documented way."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSGIT_")}
    if isinstance(server, SmartHttp):
        env.update(SESSIONSGIT_USERNAME=HTTP_USER, SESSIONSGIT_PASSWORD=HTTP_PASSWORD)
    else:
        env.update(SESSIONSGIT_SSH_KEY=str(server.key),  # type: ignore[attr-defined]
                   SESSIONSGIT_SSH_KNOWN_HOSTS=str(server.known_hosts))  # type: ignore
    return env


def sessionsgit(repo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sessionsgit", "--repo", str(repo), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def git_clone_mirror(server: Server, served: Served, target: Path) -> None:
    """Clone with the real git CLI, the way a teammate without sessionsgit would."""
    env = dict(os.environ)
    url = served.url
    if isinstance(server, SmartHttp):
        url = url.replace("http://", f"http://{HTTP_USER}:{HTTP_PASSWORD.replace(' ', '%20')}@")
    else:
        env["GIT_SSH_COMMAND"] = (f"ssh -i {server.key} -o IdentitiesOnly=yes "  # type: ignore
                                  "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                                  "-o LogLevel=ERROR")
    subprocess.run(["git", "clone", "-q", "--mirror", url, str(target)], env=env, check=True,
                   capture_output=True, timeout=60)


def test_clone_push_pull_sync_and_prune(tmp_path, real: Server):
    served = fresh(real, "roundtrip")
    creds = served.credentials
    a, b = GitSessionStore(tmp_path / "a"), GitSessionStore(tmp_path / "b")
    for store in (a, b):
        add_remote(store, "origin", served.url)
    a.save("s1", msgs("hi", "hello"), {"label": "first"})
    a.save("s2", msgs("yo"))
    fork = a.fork("s1", at=1)
    assert sorted(push(a, credentials=creds).pushed) == sorted(["s1", "s2", fork])
    assert remote_heads(served.path) == heads(a)

    # clone: an empty store pulls everything; the git CLI's mirror clone reads the same
    assert sorted(pull(b, credentials=creds).created) == sorted(["s1", "s2", fork])
    assert heads(b) == heads(a)
    assert b.load("s1").messages == a.load("s1").messages
    git_clone_mirror(real, served, tmp_path / "mirror.git")
    assert heads(GitSessionStore(tmp_path / "mirror.git", create=False)) == heads(a)

    # both extend the same session: sync keeps both sides and converges
    a.save("s1", msgs("hi", "hello", "from A"))
    b.load("s1")
    b.save("s1", msgs("hi", "hello", "from B"))
    assert sync(a, credentials=creds).pushed == ["s1"]
    report = sync(b, credentials=creds)
    (sid, fork_b), = report.diverged
    assert sid == "s1" and report.pushed == [fork_b]
    assert sync(a, credentials=creds).created == [fork_b]
    assert heads(a) == heads(b) == remote_heads(served.path)

    # deletions travel with --prune only, through the CLI and the environment's credentials
    a.delete("s2")
    env = cli_env(real)
    done = sessionsgit(a.path, "push", env=env)
    assert done.returncode == 0, done.stderr
    assert "s2" in remote_heads(served.path)  # without --prune a deletion stays here
    done = sessionsgit(a.path, "sync", "--prune", env=env)
    assert done.returncode == 0, done.stderr
    assert "s2" not in remote_heads(served.path)
    assert sync(b, prune=True, credentials=creds).pruned == ["s2"]
    assert heads(a) == heads(b) == remote_heads(served.path)
    assert git("--git-dir", str(served.path), "fsck", "--strict", "--no-progress",
               "--no-dangling") == ""


def bad_credentials(server: Server, tmp_path: Path) -> Credentials:
    if isinstance(server, SmartHttp):
        return Credentials(username=HTTP_USER, password="wrong")
    key = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return Credentials(ssh_privkey=str(key), ssh_known_hosts=str(server.known_hosts))  # type: ignore


def test_refused_credentials_fail_after_three_attempts_with_one_clear_error(tmp_path,
                                                                            real: Server):
    served = fresh(real, "auth")
    store = GitSessionStore(tmp_path / "s")
    add_remote(store, "origin", served.url)
    store.save("s", msgs("q"))
    wrong = bad_credentials(real, tmp_path)
    log = real.base / "access.log"
    before = log.read_text().count(" 401 ") if log.exists() else 0
    for action in (pull, push, sync):
        started = time.monotonic()
        with pytest.raises(RemoteError, match="authentication refused after 3 attempts") as info:
            action(store, credentials=wrong)
        assert time.monotonic() - started < 20
        assert "\n" not in str(info.value) and "wrong" not in str(info.value)
    if isinstance(real, SmartHttp):  # three tries per command, never a loop
        refused = log.read_text().count(" 401 ") - before
        assert 3 <= refused <= 3 * 5, refused
    assert remote_heads(served.path) == {}

    env = cli_env(real)
    if isinstance(real, SmartHttp):
        env["SESSIONSGIT_PASSWORD"] = "wrong"
    else:
        env["SESSIONSGIT_SSH_KEY"] = wrong.ssh_privkey or ""
    done = sessionsgit(store.path, "sync", env=env)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()
             and not line.startswith(("Syncing", "Pulling", "Pushing"))]
    assert len(lines) == 1 and "authentication refused after 3 attempts" in lines[0], done.stderr


def test_a_push_refused_by_a_server_hook_changes_nothing(tmp_path, real: Server):
    served = fresh(real, "hooked")
    hook = served.path / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'sessions are read-only here' >&2\nexit 1\n")
    hook.chmod(0o755)
    store = GitSessionStore(tmp_path / "s")
    add_remote(store, "origin", served.url)
    store.save("s1", msgs("1"))
    store.save("s2", msgs("2"))
    before = heads(store)
    with pytest.raises(RemoteError, match="pre-receive hook declined") as info:
        sync(store, credentials=served.credentials)
    assert "read-only here" in str(info.value) and "\n" not in str(info.value)
    assert sorted(sid for sid, _ in info.value.report.rejected) == ["s1", "s2"]
    assert heads(store) == before
    assert not [r for r in store.repo.references if r.startswith("refs/remotes/")]
    assert remote_heads(served.path) == {}


def test_ssh_key_from_the_environment_and_a_clear_error_without_one(tmp_path, monkeypatch,
                                                                    ssh_server: Sshd):
    """SESSIONSGIT_SSH_KEY is enough (its .pub is optional); without any key and no agent,
    the error says authentication failed, in one line."""
    served = ssh_server.bare(f"envkey-{next(_names)}")
    store = GitSessionStore(tmp_path / "s")
    add_remote(store, "origin", served.url)
    store.save("s", msgs("q"))
    lone = tmp_path / "lone_key"
    lone.write_bytes(ssh_server.key.read_bytes())
    lone.chmod(0o600)  # the private half only: libssh2 derives the public one
    monkeypatch.setenv("SESSIONSGIT_SSH_KEY", str(lone))
    monkeypatch.setenv("SESSIONSGIT_SSH_KNOWN_HOSTS", str(ssh_server.known_hosts))
    assert push(store).pushed == ["s"]
    monkeypatch.delenv("SESSIONSGIT_SSH_KEY")
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    store.save("s", msgs("q", "a"))
    with pytest.raises(RemoteError, match="push to origin .*failed") as info:
        push(store)
    assert "\n" not in str(info.value)


def test_ssh_host_keys_are_checked_against_known_hosts(tmp_path, monkeypatch,
                                                       ssh_server: Sshd):
    """The server's host key must be the one known_hosts records for 127.0.0.1 and its port
    (plain or hashed, the configured file or ~/.ssh/known_hosts): a different key (a machine
    posing as the server) or an unknown host is refused in one line, and nothing is sent."""
    served = ssh_server.bare(f"hostkey-{next(_names)}")
    store = GitSessionStore(tmp_path / "s")
    add_remote(store, "origin", served.url)
    store.save("s", msgs("q"))
    key = str(ssh_server.key)
    impostor = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)],
                   check=True)
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{ssh_server.port} "
                     + " ".join(Path(f"{impostor}.pub").read_text().split()[:2]) + "\n")
    other_port = tmp_path / "other_port"
    other_port.write_text(ssh_server.known_hosts.read_text().replace(
        f"]:{ssh_server.port} ", f"]:{ssh_server.port + 1} "))
    for known_hosts, why in ((wrong, "differs from the one in"), (other_port, "is not in"),
                             (tmp_path / "absent", "is not in")):
        for action in (pull, push, sync):
            with pytest.raises(RemoteError, match=why) as info:
                action(store, credentials=Credentials(ssh_privkey=key,
                                                      ssh_known_hosts=str(known_hosts)))
            assert "\n" not in str(info.value) and "SHA256:" in str(info.value)
    assert remote_heads(served.path) == {}

    hashed = tmp_path / "hashed"
    hashed.write_text(ssh_server.known_hosts.read_text())
    subprocess.run(["ssh-keygen", "-H", "-f", str(hashed)], check=True, capture_output=True)
    assert "|1|" in hashed.read_text() and "127.0.0.1" not in hashed.read_text()
    assert push(store, credentials=Credentials(ssh_privkey=key,
                                               ssh_known_hosts=str(hashed))).pushed == ["s"]
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no file configured: ~/.ssh/known_hosts
    (tmp_path / "home" / ".ssh").mkdir(parents=True)
    (tmp_path / "home" / ".ssh" / "known_hosts").write_text(
        "# comment\n" + wrong.read_text().replace("[127.0.0.1]", "[example.com]")
        + ssh_server.known_hosts.read_text())
    store.save("s", msgs("q", "a"))
    assert push(store, credentials=Credentials(ssh_privkey=key)).pushed == ["s"]

    env = cli_env(ssh_server)
    env["SESSIONSGIT_SSH_KNOWN_HOSTS"] = str(wrong)
    store.save("s", msgs("q", "a", "b"))
    done = sessionsgit(store.path, "push", env=env)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()
             and not line.startswith(("Syncing", "Pulling", "Pushing"))]
    assert len(lines) == 1 and "differs from the one in" in lines[0], done.stderr
    assert remote_heads(served.path)["s"] != heads(store)["s"]


from .servers import ssh_server  # noqa: E402,F401  (fixture)


def test_a_server_killed_mid_fetch_or_mid_push_leaves_everything_usable(tmp_path):
    """The smart-HTTP server dies during a pull, then during a push: each fails with one line,
    nothing changes on either side, and once it is back the next sync completes."""
    base = tmp_path / "server"
    servers = running("http", base)
    server = next(servers)
    served = server.bare("interrupted")
    creds = served.credentials
    a, b = GitSessionStore(tmp_path / "a"), GitSessionStore(tmp_path / "b")
    for n in range(10):  # ~4 MB packed: more than the socket buffers hold
        a.save(f"s{n}", msgs(*(os.urandom(20_000).hex() for i in range(10))))
    push(a, served.url, credentials=creds)
    b.save("mine", msgs("local"))
    before = heads(b)

    def kill(*args) -> None:
        for proc in server.procs:  # nginx and fcgiwrap die at once, mid-transfer
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        servers.close()

    from sessionsgit.git import transport

    with pytest.MonkeyPatch.context() as patch:  # killed at the server's first progress line
        patch.setattr(transport.Callbacks, "sideband_progress", lambda self, text: kill())
        with pytest.raises(RemoteError, match="fetch from") as info:
            pull(b, served.url, credentials=creds, progress=kill)
    assert "\n" not in str(info.value)
    assert heads(b) == before
    assert not list((b.path / "sessionsgit-quarantine").iterdir())
    assert git("--git-dir", str(b.path), "fsck", "--strict", "--no-progress",
               "--no-dangling") == ""

    servers = running("http", base)
    server = next(servers)
    url = server.url("interrupted")
    assert len(pull(b, url, credentials=creds).created) == 10
    b.save("mine", msgs("local", "more"))
    remote_before = remote_heads(served.path)
    with pytest.raises(RemoteError, match="push to"):
        push(b, url, credentials=creds, progress=kill)
    assert remote_heads(served.path) == remote_before
    servers = running("http", base)
    server = next(servers)
    try:
        report = sync(b, server.url("interrupted"), credentials=creds)
        assert "mine" in report.pushed
        assert remote_heads(served.path) == heads(b)
    finally:
        servers.close()


def test_a_missing_server_binary_skips_but_fails_under_ci(monkeypatch):
    from _pytest.outcomes import Failed, Skipped

    from .servers import need

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(Skipped, match="no-such-server-binary not installed"):
        need("no-such-server-binary")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match="CI=true but no-such-server-binary not installed"):
        need("no-such-server-binary")
    assert need("git")[0].endswith("/git")


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 32 MiB tmpfs of its own (root only: ``mount -t tmpfs``), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(disk)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        reason = f"cannot mount a small tmpfs here: {done.stderr.strip()[:100]}"
        if os.environ.get("CI", "").lower() == "true" and os.geteuid() == 0:
            pytest.fail(f"CI=true as root but {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` up to ``leave`` free bytes; the filler file is returned (delete it to
    free the space again)."""
    filler = disk / "filler"
    stats = os.statvfs(disk)
    with open(filler, "wb") as handle:
        handle.write(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave))
    return filler


@pytest.mark.parametrize("kind,leave", [("http", 256 << 10), ("path", 256 << 10), ("http", 0)])
def test_a_full_disk_during_fetch_changes_nothing_and_the_next_sync_completes(
        tmp_path, small_disk, kind, leave):
    """The store's disk fills up while a pull fetches ~4 MB: one typed line, the local store
    unchanged and usable (its sessions load, ``git fsck --strict`` is clean, no quarantine
    left); once space is freed, the next sync takes everything in. ``leave``: the free bytes
    the pull starts with (0: not even its quarantine can be made)."""
    servers = running(kind, tmp_path / "server")
    server = next(servers)
    try:
        served = server.bare("full")
        creds = served.credentials
        a = GitSessionStore(tmp_path / "a")
        for n in range(10):  # ~4 MB packed
            a.save(f"s{n}", msgs(*(os.urandom(20_000).hex() for i in range(10))))
        push(a, served.url, credentials=creds)
        b = GitSessionStore(small_disk / "b")
        b.save("mine", msgs("local"))
        before = heads(b)
        filler = fill(small_disk, leave)
        with pytest.raises(DiskFullError, match="^fetch .* the disk is full here") as info:
            pull(b, served.url, credentials=creds)
        assert "\n" not in str(info.value) and "quarantine" not in str(info.value)
        assert heads(b) == before
        assert b.load("mine").messages == msgs("local")
        assert not list((b.path / "sessionsgit-quarantine").glob("*"))
        assert git("--git-dir", str(b.path), "fsck", "--strict", "--no-progress",
                   "--no-dangling") == ""
        filler.unlink()
        b.save("mine", msgs("local", "more"))
        report = sync(b, served.url, credentials=creds)
        assert sorted(report.created) == [f"s{n}" for n in range(10)]
        assert report.pushed == ["mine"]
        assert remote_heads(served.path) == heads(b)
        assert git("--git-dir", str(b.path), "fsck", "--strict", "--no-progress",
                   "--no-dangling") == ""
    finally:
        servers.close()
