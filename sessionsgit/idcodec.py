"""How a session id becomes a name on disk, and back: the one place the encoding lives.

Any valid id (see ``ids.validate_session_id``) has a name that is safe where a store puts it:

* ``REF``: one Git ref component (``refs/heads/sessions/<name>``, ``refs/sessions-trash/<name>/…``);
* ``FILE``: a file stem in ``FileSessionStore``'s directory (``<name>.json``).

The encoding is percent-encoding of the UTF-8 bytes of the characters that are unsafe there,
with ``%`` itself always encoded, so an id that was already safe is its own name (existing
repositories and the npm package's directories read unchanged), and every name decodes back
to exactly one id. Examples (``REF``)::

    chat:7                 -> chat%3A7
    user:42/trip planning  -> user%3A42%2Ftrip%20planning
    café/☕                -> café%2F☕
    50%                    -> 50%25

Unsafe for ``REF``: whitespace, ``~^:?*[\\/%``, a leading ``.`` or ``-``, a ``.`` after a ``.``,
a trailing ``.`` or ``.lock``, a ``{`` after ``@``, and the id ``@``. Unsafe for ``FILE``: ``/``,
``%`` and a leading ``.`` (hidden, temp and lock files). A name never contains ``/``.

A name is at most ``MAX_NAME_BYTES`` bytes of UTF-8 (file systems cap a name at 255). A longer
encoding is cut and ends in ``%%`` plus 40 hex digits of the id's SHA-256 instead: such a
*hashed* name does not decode by itself (``decode`` returns None); the store records the id in
what it stores (the commit's metadata, the file's ``metadata.id``) and checks it with
``matches``.
"""

from __future__ import annotations

import hashlib
import re

from .ids import is_valid_session_id

REF = "ref"
FILE = "file"
#: Longest name in UTF-8 bytes (leaves room for ``.json``, ``.lock`` and temp-file affixes).
MAX_NAME_BYTES = 200
#: How much of the encoding a hashed name keeps before its ``%%`` marker.
_HASHED_PREFIX_BYTES = 150
HASH_MARKER = "%%"
_HASH_DIGITS = 40

_REF_UNSAFE = frozenset("~^:?*[\\/%")
_FILE_UNSAFE = frozenset("/%")
_ESCAPE = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
#: Names made only of characters no kind ever escapes, not starting with '.' or '-'.
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_HASHED = re.compile(rf"{re.escape(HASH_MARKER)}[0-9a-f]{{{_HASH_DIGITS}}}\Z")


def _quote(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))


def _pieces(session_id: str, kind: str) -> list[str]:
    """Each character of the id as it appears in the name (itself, or its escapes)."""
    if kind not in (REF, FILE):
        raise ValueError(f"unknown name kind {kind!r}")
    last = len(session_id) - 1
    forced = {0} if session_id[:1] == "." else set()
    if kind == REF:
        if session_id[:1] == "-" or session_id == "@":
            forced.add(0)
        if session_id.endswith("."):
            forced.add(last)
        if session_id.endswith(".lock"):
            forced.add(last - 4)
    unsafe = _REF_UNSAFE if kind == REF else _FILE_UNSAFE
    pieces: list[str] = []
    previous = ""
    for index, char in enumerate(session_id):
        encode = index in forced or char in unsafe
        if kind == REF and not encode:
            encode = (char.isspace() or (char == "." and previous == ".")
                      or (char == "{" and previous == "@"))
        piece = _quote(char) if encode else char
        pieces.append(piece)
        previous = piece[-1]
    return pieces


def encode(session_id: str, kind: str = REF) -> str:
    """The name of a valid id (call ``validate_session_id`` first)."""
    pieces = _pieces(session_id, kind)
    name = "".join(pieces)
    if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    kept, size = [], 0
    for piece in pieces:
        size += len(piece.encode("utf-8"))
        if size > _HASHED_PREFIX_BYTES:
            break
        kept.append(piece)
    digest = hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:_HASH_DIGITS]
    return "".join(kept) + HASH_MARKER + digest


def is_hashed(name: str) -> bool:
    """Whether ``name`` is the hashed name of a long id (its id is recorded elsewhere)."""
    return _HASHED.search(name) is not None


def decode(name: str, kind: str = REF) -> str | None:
    """The id whose name is ``name``, or None: for a hashed name, and for a name that is no id's
    name (not canonical, e.g. a lower-case escape, or an id that ``validate_session_id``
    refuses)."""
    if _PLAIN.match(name) and ".." not in name and not name.endswith((".lock", ".")) and \
            len(name) <= MAX_NAME_BYTES:
        return name  # the common case (UUIDs, slugs): a name that is its own id
    if not name or is_hashed(name):
        return None
    try:
        session_id = _ESCAPE.sub(lambda m: _unquote(m.group(0)), name)
    except UnicodeDecodeError:
        return None
    if not is_valid_session_id(session_id) or encode(session_id, kind) != name:
        return None
    return session_id


def matches(name: str, session_id: object, kind: str = REF) -> bool:
    """Whether ``session_id`` is a valid id whose name is ``name`` (checks a hashed name)."""
    return (isinstance(session_id, str) and is_valid_session_id(session_id)
            and encode(session_id, kind) == name)


def _unquote(escapes: str) -> str:
    return bytes(int(escapes[i + 1:i + 3], 16) for i in range(0, len(escapes), 3)).decode("utf-8")
