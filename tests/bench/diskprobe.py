"""How long creating a small file takes on the disk under a directory, right now.

A Git save creates a handful of files (pack, index, lock files) where SQLite appends to one, and
on these shared machines creating a file swings between about 20 µs and almost 1 ms within
minutes. The benches print this probe beside their tables so a reader can tell a slow disk
from a slow store."""

from __future__ import annotations

import os
import statistics
import tempfile
import time


def file_create_us(directory: str | None = None, files: int = 100) -> float:
    """Median microseconds to create, write 41 bytes to (a ref's size) and close a new file."""
    samples = []
    with tempfile.TemporaryDirectory(prefix="diskprobe-", dir=directory) as scratch:
        for index in range(files):
            path = os.path.join(scratch, f"f{index}")
            start = time.perf_counter()
            handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.write(handle, b"0" * 40 + b"\n")
            os.close(handle)
            samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def describe(start_us: float, end_us: float) -> str:
    """The probe taken at a run's start and end, as one phrase for its caption."""
    return f"creating a file {start_us:.0f} µs at the start, {end_us:.0f} µs at the end"
