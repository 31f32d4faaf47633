"""OpenSSH ``known_hosts`` lookups for ssh remotes: whether a server's host key (compared by its
SHA-256, which libgit2 hands over) is the one recorded for ``host`` and ``port``. Plain, hashed
(``|1|salt|hash``) and wildcard host patterns are read, ``!`` negations and ``@revoked`` keys
honoured; ``@cert-authority`` lines are skipped (certificates are not checked)."""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import os
from pathlib import Path

#: Where keys are looked up when no file is configured (OpenSSH's user and system files).
DEFAULT_FILES = ("~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts")


def files(configured: str | None) -> list[Path]:
    """The known_hosts files to read: the configured one, else OpenSSH's defaults."""
    return [Path(os.path.expanduser(name)) for name in
            ((configured,) if configured else DEFAULT_FILES)]


def check(paths: list[Path], host: str, port: int, sha256: bytes) -> str | None:
    """None when a key recorded for ``host``:``port`` in ``paths`` has the digest ``sha256``
    and no revoked one does; else why the server may not be trusted (one line)."""
    name = host if port == 22 else f"[{host}]:{port}"
    entries = _entries(paths, name)
    where = ", ".join(str(p) for p in paths)
    fingerprint = "SHA256:" + base64.b64encode(sha256).decode().rstrip("=")
    if ("@revoked", sha256) in entries:
        return f"the ssh host key of {name} ({fingerprint}) is marked revoked in {where}"
    if (None, sha256) in entries:
        return None
    if any(marker is None for marker, _ in entries):
        return (f"the ssh host key of {name} ({fingerprint}) differs from the one in {where}: "
                "someone may be posing as the server (if its key really changed, replace the "
                "old line)")
    return (f"ssh host {name} is not in {where} (its key is {fingerprint}): add it, e.g. "
            f"ssh-keyscan -p {port} {host} >> {paths[0]}, after checking that fingerprint")


def _entries(paths: list[Path], name: str) -> list[tuple[str | None, bytes]]:
    """(marker, SHA-256 of the key) of each line recording a key for ``name`` (an
    undecodable key counts, with an empty digest); ``@cert-authority`` lines are left out."""
    found: list[tuple[str | None, bytes]] = []
    for path in paths:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            marker = fields.pop(0) if fields[0].startswith("@") else None
            if len(fields) < 3 or marker == "@cert-authority" or not _matches(fields[0], name):
                continue
            try:
                digest = hashlib.sha256(base64.b64decode(fields[2], validate=True)).digest()
            except (binascii.Error, ValueError):
                digest = b""
            found.append((marker, digest))
    return found


def _matches(patterns: str, name: str) -> bool:
    """Whether a known_hosts host field (comma-separated patterns, or one hashed name) names
    ``name`` (``host`` or ``[host]:port``)."""
    if patterns.startswith("|1|"):
        try:
            salt, wanted = (base64.b64decode(part) for part in patterns[3:].split("|", 1))
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(hmac.new(salt, name.encode(), hashlib.sha1).digest(), wanted)
    found = False
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        glob = pattern.lstrip("!").lower().replace("[", "[[]")  # only * and ? are wildcards
        if fnmatch.fnmatchcase(name.lower(), glob):
            if negated:
                return False
            found = True
    return found
