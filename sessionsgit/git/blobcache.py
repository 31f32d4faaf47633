"""A process-wide cache of message blob bytes by object id. Blobs are content-addressed, so an
entry is valid in every repository and can never go stale; it spares a resumed session the
per-object read (~10 µs each, most of a 5,000-message load). Bounded in bytes, oldest out."""

from __future__ import annotations

import threading
from typing import Callable, Iterable

import pygit2

DEFAULT_LIMIT_BYTES = 64 * 1024 * 1024


class BlobCache:
    """Object id → raw blob bytes, at most ``limit`` bytes in total."""

    def __init__(self, limit: int = DEFAULT_LIMIT_BYTES) -> None:
        self.limit = limit
        self._data: dict[pygit2.Oid, bytes] = {}
        self._size = 0
        self._lock = threading.Lock()

    def put(self, oid: pygit2.Oid, data: bytes) -> None:
        self._put_many([(oid, data)])

    def read_all(self, oids: Iterable[pygit2.Oid],
                 read: Callable[[pygit2.Oid], bytes]) -> list[bytes]:
        """The bytes of every object, from the cache where present, else through ``read``
        (what was read is cached in one pass at the end)."""
        found = self._data.get
        texts: list[bytes] = []
        missed: list[tuple[pygit2.Oid, bytes]] = []
        for oid in oids:
            data = found(oid)
            if data is None:
                data = read(oid)
                missed.append((oid, data))
            texts.append(data)
        if missed:
            self._put_many(missed)
        return texts

    def _put_many(self, items: list[tuple[pygit2.Oid, bytes]]) -> None:
        largest = self.limit // 8
        with self._lock:
            for oid, data in items:
                if len(data) <= largest and oid not in self._data:
                    self._data[oid] = data
                    self._size += len(data)
            while self._size > self.limit and self._data:
                _, evicted = _pop_oldest(self._data)
                self._size -= len(evicted)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._size = 0


def _pop_oldest(data: dict[pygit2.Oid, bytes]) -> tuple[pygit2.Oid, bytes]:
    oldest = next(iter(data))
    return oldest, data.pop(oldest)


#: The cache every GitSessionStore in this process shares.
shared = BlobCache()
