"""GitSessionStore: the shared contract, plus what only a Git store promises."""

from __future__ import annotations

import pytest

from sessionsgit import GitSessionStore

from .store_contract import StoreContract


class TestGitStoreContract(StoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        return GitSessionStore(tmp_path / "repo")

    @pytest.fixture
    def reopen(self, tmp_path):
        return lambda: GitSessionStore(tmp_path / "repo", create=False)
