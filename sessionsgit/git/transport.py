"""Talking to a remote through pygit2: credentials (arguments, environment, ssh-agent) with a cap
on attempts so bad ones never loop, progress reporting, server rejections collected from the
callbacks, and every failure turned into one ``RemoteError`` line with secrets redacted."""

from __future__ import annotations

import errno
import os
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import unquote, urlsplit

import cffi  # type: ignore[import-untyped]  # pygit2 is built on it

import pygit2
from pygit2.enums import CredentialType

from ..errors import DiskFullError, RemoteError
from ..messages import one_line
from . import knownhosts
from . import layout
from .identity import signatures
from .savepack import SavePack, WrittenPack

Progress = Callable[[int, int], None]
#: How many times a remote may ask for credentials before the operation gives up.
MAX_CREDENTIAL_ATTEMPTS = 3
_DIRECTION_PUSH = 1  # libgit2's GIT_DIRECTION_PUSH
_URL_SECRET = re.compile(r"(://[^/@\s:]*):[^/@\s]*@")


def redact(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@host`` URL replaced by ***."""
    return _URL_SECRET.sub(r"\1:***@", text)


@dataclass
class Credentials:
    """How to authenticate: a username and password or token for https, or an ssh key pair
    (paths) with an optional passphrase; with no key given, ssh uses the running ssh-agent."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssh_pubkey: str | None = None
    ssh_privkey: str | None = None
    ssh_passphrase: str | None = field(default=None, repr=False)
    #: The known_hosts file ssh servers' host keys are checked against (default: OpenSSH's
    #: ``~/.ssh/known_hosts`` and ``/etc/ssh/ssh_known_hosts``).
    ssh_known_hosts: str | None = None

    @classmethod
    def from_env(cls) -> "Credentials":
        """SESSIONSGIT_USERNAME and SESSIONSGIT_PASSWORD (or SESSIONSGIT_TOKEN) for https;
        SESSIONSGIT_SSH_KEY (a private key file; its public half is KEY.pub when that exists),
        SESSIONSGIT_SSH_PASSPHRASE and SESSIONSGIT_SSH_KNOWN_HOSTS for ssh."""
        env = os.environ.get
        return cls(username=env("SESSIONSGIT_USERNAME") or None,
                   password=env("SESSIONSGIT_PASSWORD") or env("SESSIONSGIT_TOKEN") or None,
                   ssh_privkey=env("SESSIONSGIT_SSH_KEY") or None,
                   ssh_passphrase=env("SESSIONSGIT_SSH_PASSPHRASE") or None,
                   ssh_known_hosts=env("SESSIONSGIT_SSH_KNOWN_HOSTS") or None)


class _AuthFailed(Exception):
    """Raised inside the credentials callback to stop libgit2 from asking again."""


class _HostKeyRefused(_AuthFailed):
    """Raised inside the certificate callback: the ssh server's host key is not the known one."""


#: libgit2 1.9's ``git_cert_hostkey`` (pygit2 declares only its first fields and hands Python
#: callbacks no certificate at all), read to get the key's SHA-256.
_CERT_FFI = cffi.FFI()
_CERT_FFI.cdef("""typedef struct {
    int cert_type; int type; unsigned char hash_md5[16]; unsigned char hash_sha1[20];
    unsigned char hash_sha256[32]; int raw_type; const char *hostkey; size_t hostkey_len;
} sessionsgit_cert_hostkey;""")
_CERT_HOSTKEY_LIBSSH2, _CERT_SSH_SHA256 = 2, 1 << 2
#: The libgit2 release whose struct layout is declared above: under any other the certificate
#: is not read (ssh then fails closed rather than trusting a misread key).
_CERT_LAYOUT_VERSION = (1, 9)


def _ssh_host_key_sha256(url: str) -> bytes | None:
    """The SHA-256 of the host key libgit2 is asking about, read from the ``git_cert`` in
    pygit2's C callback (the frame calling ``certificate_check``); None when it is not an ssh
    host key. Fails closed for an ssh ``url`` when that certificate cannot be read."""
    cert = sys._getframe(2).f_locals.get("cert_i")
    if cert is None or pygit2.LIBGIT2_VER[:2] != _CERT_LAYOUT_VERSION:
        if url.startswith("https://"):
            return None
        raise _HostKeyRefused("cannot check the ssh host key: this pygit2 (libgit2 "
                              f"{'.'.join(map(str, pygit2.LIBGIT2_VER))}) does not pass the "
                              "certificate where sessionsgit reads it")
    address = int(pygit2.ffi.cast("uintptr_t", cert))
    hostkey = _CERT_FFI.cast("sessionsgit_cert_hostkey *", address)
    if hostkey.cert_type != _CERT_HOSTKEY_LIBSSH2:
        return None
    if not hostkey.type & _CERT_SSH_SHA256:
        raise _HostKeyRefused("cannot check the ssh host key: libgit2 gave no SHA-256 of it")
    return bytes(_CERT_FFI.buffer(hostkey.hash_sha256, 32))


class Callbacks(pygit2.RemoteCallbacks):
    """Credentials with an attempt cap, progress, and per-ref server rejections."""

    def __init__(self, credentials: Credentials | None, progress: Progress | None) -> None:
        super().__init__()
        self._given = credentials or Credentials.from_env()
        self._progress = progress
        self.attempts = 0
        self.rejected: dict[str, str] = {}
        self.server_messages: list[str] = []
        self.url = ""  # the remote's, set by ``translated`` (its port picks the known host)

    def credentials(self, url: str, username_from_url: str | None,
                    allowed_types: CredentialType):  # type: ignore[override]
        self.attempts += 1
        if self.attempts > MAX_CREDENTIAL_ATTEMPTS:
            raise _AuthFailed(f"authentication refused after {MAX_CREDENTIAL_ATTEMPTS} attempts")
        given = self._given
        user = username_from_url or given.username
        if allowed_types & CredentialType.USERPASS_PLAINTEXT and given.password:
            return pygit2.UserPass(user or "x-access-token", given.password)
        if allowed_types & CredentialType.SSH_KEY:
            if given.ssh_privkey:
                derived = given.ssh_privkey + ".pub"
                pubkey: str | None = given.ssh_pubkey or derived
                if not given.ssh_pubkey and not os.path.exists(derived):
                    pubkey = None  # libssh2 derives it from the private key
                return pygit2.Keypair(user or "git", pubkey, given.ssh_privkey,
                                      given.ssh_passphrase or "")
            return pygit2.KeypairFromAgent(user or "git")
        if allowed_types & CredentialType.USERNAME:
            return pygit2.Username(user or "git")
        raise _AuthFailed("authentication required: pass credentials or set SESSIONSGIT_USERNAME "
                          "and SESSIONSGIT_PASSWORD (or SESSIONSGIT_TOKEN)")

    def certificate_check(self, certificate: None, valid: bool,  # type: ignore[override]
                          host: bytes) -> bool:
        """An ssh server's host key must be the one known_hosts records for its host and port
        (``_HostKeyRefused`` otherwise); TLS certificates are left to libgit2."""
        digest = _ssh_host_key_sha256(self.url)
        if digest is None:
            raise pygit2.Passthrough
        port = urlsplit(self.url).port if "://" in self.url else None
        refused = knownhosts.check(knownhosts.files(self._given.ssh_known_hosts),
                                   host.decode(errors="replace"), port or 22, digest)
        if refused is not None:
            raise _HostKeyRefused(refused)
        return True

    def transfer_progress(self, stats: pygit2.remotes.TransferProgress) -> None:
        if self._progress is not None:
            self._progress(stats.received_objects, stats.total_objects)

    def push_transfer_progress(self, objects_pushed: int, total_objects: int,
                               bytes_pushed: int) -> None:
        if self._progress is not None:
            self._progress(objects_pushed, total_objects)

    def push_update_reference(self, refname: str, message: str | None) -> None:
        if message is not None:
            self.rejected[refname] = message

    def sideband_progress(self, string: str) -> None:
        text = one_line(string, None)
        if text:
            self.server_messages.append(text)


def open_remote(repo: pygit2.Repository, name: str) -> pygit2.Remote:
    """The configured remote ``name``, or ``RemoteError``."""
    try:
        return repo.remotes[name]
    except (KeyError, ValueError, pygit2.GitError):
        raise RemoteError(f"no remote named {name!r} (add it first)") from None


def connect_for_push(remote: pygit2.Remote, callbacks: Callbacks) -> None:
    """Open a push connection, so its ref advertisement and the push share one round trip."""
    remote.connect(callbacks=callbacks, direction=_DIRECTION_PUSH)


def push_updates(remote: pygit2.Remote,
                 updates: dict[str, tuple[pygit2.Oid | None, pygit2.Oid | None]],
                 callbacks: Callbacks, repo: pygit2.Repository | None = None) -> None:
    """Push each ref (name -> (new target or None to delete, the target this connection
    advertised)) over the network: the server's receive-pack moves a ref only if it still
    holds the advertised target, so the callers' checks decide, not libgit2's (whose
    fast-forward test knows commits only: with ``repo``, a ref may also name a tree, e.g.
    LangGraph's pending writes, and move to what does not descend from its old value).
    (A remote on this machine goes through ``local.push``.)"""
    if not updates:
        return
    specs, trees = [], []
    for ref, (new, old) in updates.items():
        forced = False
        if new is not None and repo is not None:
            is_tree = repo.odb.read_header(new)[0] == pygit2.enums.ObjectType.TREE
            trees += [new] if is_tree else []
            forced = is_tree or (old is not None and not _descends(repo, new, old))
        specs.append(f"{'+' if forced else ''}{new if new is not None else ''}:{ref}")
    carrier = _carrier(repo, trees) if repo is not None and trees else None
    if carrier is None:
        remote.push(specs, callbacks=callbacks, threads=0)
        return
    name, commit, pack = carrier
    try:
        remote.push(specs + [f"+{commit}:{name}"], callbacks=callbacks, threads=0)
        try:
            remote.push([f":{name}"], callbacks=callbacks, threads=0)
        except pygit2.GitError:
            pass  # a stray ref of no session, in a folder nothing reads: harmless
    finally:
        pack.release()  # unreachable here: gc(prune=...) drops it


#: Where a push parks, for its own length, the commit that carries the objects of refs that
#: name trees: libgit2 packs only what the pushed commits reach.
CARRIER_PREFIX = "refs/sessionsgit-carrier/"


def _carrier(repo: pygit2.Repository, trees: list[pygit2.Oid]
             ) -> tuple[str, pygit2.Oid, WrittenPack]:
    """(a fresh ref name, a commit whose tree holds each of ``trees``, the pack holding it,
    kept until released), never referenced here."""
    batch = SavePack()
    entries = [(str(number), tree, layout.TREE)
               for number, tree in enumerate(dict.fromkeys(trees))]
    author, committer = signatures(repo)
    commit = batch.commit(layout.write_tree(batch, entries), [], author, committer,
                          "sessionsgit: carrier of trees\n")
    pack = batch.publish(repo.path)
    return f"{CARRIER_PREFIX}{os.getpid()}-{os.urandom(8).hex()}", commit, pack


def _descends(repo: pygit2.Repository, new: pygit2.Oid, old: pygit2.Oid) -> bool:
    try:
        return new == old or repo.descendant_of(new, old)
    except (KeyError, ValueError, pygit2.GitError):
        return False


def local_path(url: str) -> Path | None:
    """The repository path a path or ``file://`` URL names; None for a network URL."""
    if url.startswith("file://"):
        return Path(unquote(url[len("file://"):]))
    return Path(url) if url and _looks_like_path(url) else None


@contextmanager
def translated(action: str, remote: pygit2.Remote,
               callbacks: Callbacks | None = None) -> Iterator[None]:
    """Turn anything a transfer raises into a one-line ``RemoteError`` naming the remote (and,
    when the server refused the credentials given, saying so with how many were tried).

    (No connect timeout is set here: with libgit2 1.9, GIT_OPT_SET_SERVER_CONNECT_TIMEOUT leaves
    sockets non-blocking and reads then fail with EAGAIN, libgit2 issue #7072.)"""
    url = redact(remote.url or "?")
    where = f"{remote.name} ({url})" if remote.name else url
    if callbacks is not None:
        callbacks.url = remote.url or ""
    try:
        yield
    except RemoteError:
        raise
    except _AuthFailed as exc:
        raise RemoteError(f"{action} {where} failed: {exc}") from None
    except (pygit2.GitError, OSError, ValueError, TypeError) as exc:
        full = disk_full(exc)
        if full is not None:  # this machine's disk, not the remote: nothing was taken in
            raise DiskFullError(f"{action} {where} failed: the disk is full here ({full}); "
                                "nothing was changed, free some space and try again") from None
        reason = redact(one_line(str(exc), None))
        if reason == "unsupported URL protocol" and _looks_like_path(remote.url or ""):
            reason = "no Git repository at that path"
        elif callbacks is not None and callbacks.attempts and "authentication" in reason:
            # ssh: the server hangs up after its own MaxAuthTries, before a 4th ask
            tried = min(callbacks.attempts, MAX_CREDENTIAL_ATTEMPTS)
            reason = f"authentication refused after {tried} attempts ({reason})"
        raise RemoteError(f"{action} {where} failed: {reason}") from None
    except Exception as exc:  # e.g. a progress callback that raised: the transfer was cut off
        raise RemoteError(f"{action} {where} interrupted: "
                          f"{redact(one_line(f'{type(exc).__name__}: {exc}', None))}") from None


def disk_full(exc: BaseException) -> str | None:
    """The system's words when ``exc`` says a local disk (or quota) is full, else None (the
    file libgit2 names, a quarantine's, is left out)."""
    text = one_line(str(exc), None) or ""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return exc.strerror or text
    lowered = text.lower()
    if "no space left" in lowered or "quota exceeded" in lowered:
        return text.rsplit(": ", 1)[-1]
    return None


def _looks_like_path(url: str) -> bool:
    """A local path rather than ``scheme://...`` or scp-style ``host:path``."""
    return "://" not in url and ":" not in url.split("/", 1)[0]
