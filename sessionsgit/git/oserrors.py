"""What an OS or libgit2 failure means, decided once: whether the OS refused access (no
retry helps, and the user must fix permissions)."""

from __future__ import annotations

import errno

_DENIED_ERRNOS = (errno.EPERM, errno.EACCES, errno.EROFS)
_DENIED_WORDS = ("Permission denied", "Read-only file system", "Operation not permitted")


def access_denied(exc: BaseException | None) -> bool:
    """Whether an error (or one it was raised from) is the OS refusing access."""
    while exc is not None:
        if isinstance(exc, PermissionError) or getattr(exc, "errno", None) in _DENIED_ERRNOS:
            return True
        if any(word in str(exc) for word in _DENIED_WORDS):
            return True
        exc = exc.__cause__
    return False
