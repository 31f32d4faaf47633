"""Test isolation: no test reads the user's git config, home directory or sessionsgit setup."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pygit2
import pytest

#: Child processes that import this module (multiprocessing "spawn" workers) inherit the test
#: session's home through this variable instead of each making a folder nobody removes.
_HOME_VARIABLE = "SESSIONSGIT_TEST_HOME"
_OWNS_HOME = not os.environ.get(_HOME_VARIABLE)
_ISOLATED_HOME = (Path(tempfile.mkdtemp(prefix="sessionsgit-test-home-")) if _OWNS_HOME
                  else Path(os.environ[_HOME_VARIABLE]))
_GIT_ENV_OVERRIDES = {
    _HOME_VARIABLE: str(_ISOLATED_HOME),
    "HOME": str(_ISOLATED_HOME),
    "XDG_CONFIG_HOME": str(_ISOLATED_HOME / ".config"),
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_SYSTEM": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
os.environ.update(_GIT_ENV_OVERRIDES)
for _name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL",
              "GIT_DIR", "GIT_WORK_TREE", "SESSIONSGIT_REPO"):
    os.environ.pop(_name, None)
for _level in (pygit2.enums.ConfigLevel.GLOBAL, pygit2.enums.ConfigLevel.XDG,
               pygit2.enums.ConfigLevel.SYSTEM, pygit2.enums.ConfigLevel.PROGRAMDATA):
    pygit2.settings.search_path[_level] = str(_ISOLATED_HOME / "empty-config")

from .helpers import TickingClock, git  # noqa: E402,F401  (git: modules still import it here)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _OWNS_HOME:
        shutil.rmtree(_ISOLATED_HOME, ignore_errors=True)


@pytest.fixture
def clock():
    """The clock every session timestamp comes from, ticking one millisecond per reading."""
    from sessionsgit.metadata import set_clock

    ticking = TickingClock()
    previous = set_clock(ticking)
    yield ticking
    set_clock(previous)
