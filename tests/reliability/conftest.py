"""Fixtures for the reliability tests: every store kind, plus a fingerprint of what a store has
written (so a test can prove a rejected call wrote nothing)."""

from __future__ import annotations

import os

import pytest

from ..helpers import STORE_KINDS, StoreUnderTest

@pytest.fixture(params=STORE_KINDS)
def any_store(request, tmp_path):
    under_test = StoreUnderTest(request.param, tmp_path)
    yield under_test
    under_test.close()


@pytest.fixture(autouse=True)
def _no_stray_files_outside(tmp_path):
    """Nothing a test does may write outside its own tmp_path (path traversal)."""
    parent = tmp_path.parent
    before = set(os.listdir(parent))
    yield
    after = set(os.listdir(parent))
    assert after <= before | {tmp_path.name}, after - before
