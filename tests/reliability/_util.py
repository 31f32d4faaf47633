"""Shared helpers: worker processes, transcript checks, fsck."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..helpers import fsck  # noqa: F401  (re-exported for the reliability tests)
from .workers import pattern

ROOT = Path(__file__).resolve().parents[2]


def start_worker(*args: object, **popen) -> subprocess.Popen:
    """``python -m tests.reliability.workers <args>`` as a separate process (same interpreter,
    same isolated git environment)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, "-m", "tests.reliability.workers",
                             *map(str, args)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def finish(process: subprocess.Popen, timeout: float = 60) -> tuple[list[dict], str]:
    """Wait for a worker; its acknowledged saves (JSON lines) and stderr."""
    out, err = process.communicate(timeout=timeout)
    return parse_acks(out), err


def parse_acks(out: str) -> list[dict]:
    acks = []
    for line in out.splitlines():
        if line.startswith("{"):
            try:
                acks.append(json.loads(line))
            except ValueError:  # the last line of a killed worker may be cut short
                pass
    return acks


def assert_pattern_transcript(session) -> None:
    """A complete save of the pattern: count matches and messages are exactly the prefix."""
    messages = session.messages
    assert session.metadata.message_count == len(messages), session.metadata
    assert messages == [pattern(i) for i in range(len(messages))], session.metadata.id
