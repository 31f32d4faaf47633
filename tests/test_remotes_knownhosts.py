"""known_hosts lookups for ssh remotes (``git/knownhosts.py``) on files ssh-keygen writes:
ports, wildcards, negations, hashed names, ``@revoked`` and ``@cert-authority`` lines. (The
check against a real sshd is in test_remotes_servers.py.)"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from pathlib import Path

from sessionsgit.git import knownhosts


def keypair(tmp_path: Path, name: str) -> tuple[str, bytes]:
    """('ssh-ed25519 AAAA...', SHA-256 of the key blob) of a fresh key."""
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    kind, blob = Path(f"{path}.pub").read_text().split()[:2]
    return f"{kind} {blob}", hashlib.sha256(base64.b64decode(blob)).digest()


def test_known_hosts_matching(tmp_path):
    (key, digest), (other, other_digest) = keypair(tmp_path, "a"), keypair(tmp_path, "b")
    known = tmp_path / "known_hosts"
    known.write_text(f"# a comment\n\n[git.example.com]:2222 {key}\n*.corp,!evil.corp {key}\n"
                     f"@cert-authority * {other}\nplain.example {key}\n")
    files = [known]
    assert knownhosts.check(files, "git.example.com", 2222, digest) is None
    assert "is not in" in knownhosts.check(files, "git.example.com", 22, digest)
    assert "differs" in knownhosts.check(files, "git.example.com", 2222, other_digest)
    assert knownhosts.check(files, "build.corp", 22, digest) is None
    assert "is not in" in knownhosts.check(files, "evil.corp", 22, digest)
    assert knownhosts.check(files, "PLAIN.example", 22, digest) is None
    assert "is not in" in knownhosts.check(files, "other.example", 22, other_digest)  # CA only

    subprocess.run(["ssh-keygen", "-H", "-f", str(known)], check=True, capture_output=True)
    assert "git.example.com" not in known.read_text()
    assert knownhosts.check(files, "git.example.com", 2222, digest) is None
    assert "differs" in knownhosts.check(files, "git.example.com", 2222, other_digest)

    with open(known, "a") as handle:
        handle.write(f"@revoked * {key}\n")
    assert "revoked" in knownhosts.check(files, "git.example.com", 2222, digest)
    assert "is not in" in knownhosts.check([tmp_path / "absent"], "h", 22, digest)
    assert knownhosts.files(None)[0] == Path.home() / ".ssh" / "known_hosts"
    assert knownhosts.files(str(known)) == [known]


def test_a_host_key_that_cannot_be_read_fails_closed_for_ssh_only():
    """Called where pygit2's C callback is not (so no certificate can be read): an ssh remote
    is refused, an https one left to libgit2's own certificate check."""
    import pygit2
    import pytest

    from sessionsgit.git.transport import Callbacks, _AuthFailed

    callbacks = Callbacks(None, None)
    callbacks.url = "ssh://git@example.com:2222/r.git"
    with pytest.raises(_AuthFailed, match="cannot check the ssh host key"):
        callbacks.certificate_check(None, False, b"example.com")
    callbacks.url = "https://example.com/r.git"
    with pytest.raises(pygit2.Passthrough):
        callbacks.certificate_check(None, True, b"example.com")
