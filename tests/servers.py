"""Real Git servers on 127.0.0.1 for the remote tests, started and stopped by the tests:
``git daemon`` (git://), nginx + fcgiwrap + ``git http-backend`` with HTTP basic auth (smart
HTTP) and OpenSSH's ``sshd`` with throwaway host and user keys (ssh://).

Each server serves bare repositories made with ``bare(name)``, which returns a ``Served``
(path, URL, the credentials that work). A server whose binaries are missing makes its tests
skip with the reason, except under ``CI=true``, where that is a failure (``need``)."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from sessionsgit.sync import Credentials

from .conftest import git

HTTP_USER, HTTP_PASSWORD = "alice", "correct horse"
HTTP_BACKEND_CANDIDATES = ("/usr/lib/git-core/git-http-backend",
                           "/usr/libexec/git-core/git-http-backend")


def need(*programs: str) -> list[str]:
    """The full paths of ``programs`` (names on PATH, in /usr/sbin, or absolute paths). A missing
    one skips the calling test with the reason, or fails it when ``CI=true``: in CI every
    server test must run."""
    found, missing = [], []
    for program in programs:
        path = (program if os.path.isabs(program) and os.access(program, os.X_OK)
                else shutil.which(program, path=os.pathsep.join(
                    [os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])))
        (found if path else missing).append(path or program)
    if missing:
        reason = (f"{', '.join(missing)} not installed (apt-get install -y nginx fcgiwrap "
                  "openssh-server)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, procs: list[subprocess.Popen], what: str, log: Path | None = None,
                  timeout: float = 15.0) -> None:
    """Wait until something accepts connections on ``port``; fail naming ``what`` (and its log)
    if a process exits first or it takes longer than ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            dead = [p for p in procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                detail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
                raise RuntimeError(f"{what} did not start on port {port}: {detail}") from None
            time.sleep(0.05)


def stop(procs: list[subprocess.Popen]) -> None:
    """Stop processes started with ``start_new_session=True``, with their whole process group
    (fcgiwrap's children outlive it otherwise)."""
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group, if any
        except (ProcessLookupError, PermissionError):
            pass


def start(args: list[str], log: Path, **kwargs) -> subprocess.Popen:
    with open(log, "ab") as handle:
        return subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)


@dataclass
class Served:
    """One bare repository behind a server."""

    path: Path
    url: str
    credentials: Credentials | None = None

    def __iter__(self) -> Iterator[Path | str]:
        """``path, url = server.bare(name)`` (as the old git daemon fixture returned)."""
        return iter((self.path, self.url))


class Server:
    """Serves bare repositories under ``base``; ``bare(name)`` makes one."""

    scheme = ""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.repos = base / "repos"
        self.repos.mkdir(parents=True, exist_ok=True)

    def url(self, name: str) -> str:
        raise NotImplementedError

    def credentials(self) -> Credentials | None:
        return None

    def bare(self, name: str) -> Served:
        path = self.repos / f"{name}.git"
        git("init", "-q", "--bare", str(path))
        return Served(path, self.url(name), self.credentials())


class LocalPath(Server):
    """No server: libgit2's local transport, reached by a plain path."""

    scheme = "path"

    def url(self, name: str) -> str:
        return str(self.repos / f"{name}.git")


class FileUrl(LocalPath):
    """No server: libgit2's local transport, reached by a file:// URL."""

    scheme = "file"

    def url(self, name: str) -> str:
        return f"file://{self.repos / f'{name}.git'}"


class GitDaemon(Server):
    scheme = "git"

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.port = free_port()
        self.procs = [start(["git", "daemon", "--export-all", "--enable=receive-pack",
                             f"--base-path={self.repos}", "--reuseaddr", "--listen=127.0.0.1",
                             f"--port={self.port}", str(self.repos)], base / "daemon.log")]
        wait_for_port(self.port, self.procs, "git daemon", base / "daemon.log")

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}.git"


class SmartHttp(Server):
    """nginx in front of fcgiwrap running ``git http-backend``, HTTP basic auth required for
    every request (so push works: http-backend allows receive-pack to an authenticated user)."""

    scheme = "http"

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        nginx, fcgiwrap = need("nginx", "fcgiwrap")
        backend = next((p for p in HTTP_BACKEND_CANDIDATES if os.access(p, os.X_OK)), None)
        if backend is None:
            need(HTTP_BACKEND_CANDIDATES[0])
        self.port = free_port()
        digest = base64.b64encode(hashlib.sha1(HTTP_PASSWORD.encode()).digest()).decode()
        (base / "htpasswd").write_text(f"{HTTP_USER}:{{SHA}}{digest}\n")
        for name in ("body", "fastcgi", "proxy", "uwsgi", "scgi"):
            (base / "tmp" / name).mkdir(parents=True, exist_ok=True)
        sock = base / "fcgiwrap.sock"
        user = "user root root;" if os.geteuid() == 0 else ""
        (base / "nginx.conf").write_text(f"""
worker_processes 1;
daemon off;
pid {base}/nginx.pid;
error_log {base}/nginx.log;
{user}
events {{ worker_connections 256; }}
http {{
  log_format timed '$request $status $body_bytes_sent $request_time $request_length "$http_user_agent"';
  access_log {base}/access.log timed;
  client_body_temp_path {base}/tmp/body;
  fastcgi_temp_path {base}/tmp/fastcgi;
  proxy_temp_path {base}/tmp/proxy;
  uwsgi_temp_path {base}/tmp/uwsgi;
  scgi_temp_path {base}/tmp/scgi;
  server {{
    listen 127.0.0.1:{self.port};
    client_max_body_size 0;
    location / {{
      auth_basic "sessions";
      auth_basic_user_file {base}/htpasswd;
      fastcgi_pass unix:{sock};
      fastcgi_read_timeout 60s;
      fastcgi_param SCRIPT_FILENAME {backend};
      fastcgi_param GIT_PROJECT_ROOT {self.repos};
      fastcgi_param GIT_HTTP_EXPORT_ALL "";
      fastcgi_param PATH_INFO $uri;
      fastcgi_param REMOTE_USER $remote_user;
      fastcgi_param REMOTE_ADDR $remote_addr;
      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param CONTENT_TYPE $content_type;
      fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_param HTTP_CONTENT_ENCODING $http_content_encoding;
      fastcgi_param GIT_PROTOCOL $http_git_protocol;
    }}
  }}
}}
""")
        sock.unlink(missing_ok=True)  # left by an earlier server on this base
        self.procs = [start([fcgiwrap, "-s", f"unix:{sock}", "-c", "4"], base / "fcgiwrap.log")]
        deadline = time.monotonic() + 10
        while not sock.exists():
            if self.procs[0].poll() is not None or time.monotonic() > deadline:
                stop(self.procs)
                raise RuntimeError("fcgiwrap did not start: "
                                   + (base / "fcgiwrap.log").read_text(errors="replace"))
            time.sleep(0.02)
        self.procs.append(start([nginx, "-e", f"{base}/nginx.log", "-p", str(base), "-c",
                                 f"{base}/nginx.conf"], base / "nginx.out"))
        try:
            wait_for_port(self.port, self.procs, "nginx", base / "nginx.log")
        except RuntimeError:
            stop(self.procs)
            raise

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}.git"

    def credentials(self) -> Credentials:
        return Credentials(username=HTTP_USER, password=HTTP_PASSWORD)


class Sshd(Server):
    """OpenSSH's sshd for the current user only: a throwaway host key (recorded in
    ``known_hosts``), a throwaway user key in ``AuthorizedKeysFile`` (a temp dir,
    ``StrictModes no``), public key auth only."""

    scheme = "ssh"

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        sshd, keygen = need("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else "sshd",
                            "ssh-keygen")
        self.user = _user_name()
        self.key = base / "id_ed25519"
        for key in (base / "host_ed25519", self.key):
            subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "sessionsgit-test",
                            "-f", str(key)], check=True, capture_output=True)
        shutil.copy(str(self.key) + ".pub", base / "authorized_keys")
        self.port = free_port()
        #: What an ssh client should know of this server (``SESSIONSGIT_SSH_KNOWN_HOSTS``).
        self.known_hosts = base / "known_hosts"
        host_key = " ".join((base / "host_ed25519.pub").read_text().split()[:2])
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_key}\n")
        (base / "sshd_config").write_text(f"""
Port {self.port}
ListenAddress 127.0.0.1
HostKey {base}/host_ed25519
PidFile {base}/sshd.pid
AuthorizedKeysFile {base}/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
AllowUsers {self.user}
MaxStartups 64
""")
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
        self.procs = [start([sshd, "-D", "-e", "-f", f"{base}/sshd_config"], base / "sshd.log")]
        try:
            wait_for_port(self.port, self.procs, "sshd", base / "sshd.log")
        except RuntimeError:
            stop(self.procs)
            raise

    def url(self, name: str) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{self.repos / f'{name}.git'}"

    def credentials(self) -> Credentials:
        return Credentials(ssh_privkey=str(self.key), ssh_known_hosts=str(self.known_hosts))


def _user_name() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


SERVERS = {"path": LocalPath, "file": FileUrl, "git": GitDaemon, "http": SmartHttp,
           "ssh": Sshd}
TRANSPORTS = list(SERVERS)


def running(kind: str, base: Path) -> Iterator[Server]:
    """A started server of ``kind`` (a key of ``SERVERS``), stopped afterwards."""
    server = SERVERS[kind](base)
    try:
        yield server
    finally:
        stop(getattr(server, "procs", []))


@pytest.fixture(scope="module", params=TRANSPORTS)
def server(request, tmp_path_factory) -> Iterator[Server]:
    """Every transport in turn: path, file://, git://, smart HTTP, ssh."""
    yield from running(request.param, tmp_path_factory.mktemp(f"server-{request.param}"))


@pytest.fixture(scope="module")
def http_server(tmp_path_factory) -> Iterator[SmartHttp]:
    yield from running("http", tmp_path_factory.mktemp("server-http"))  # type: ignore[misc]


@pytest.fixture(scope="module")
def ssh_server(tmp_path_factory) -> Iterator[Sshd]:
    yield from running("ssh", tmp_path_factory.mktemp("server-ssh"))  # type: ignore[misc]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory) -> Iterator[GitDaemon]:
    yield from running("git", tmp_path_factory.mktemp("server-git"))  # type: ignore[misc]
