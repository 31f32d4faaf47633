"""Every timestamp a store writes comes from one replaceable clock (``metadata.set_clock``)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from sessionsgit.metadata import now_iso, set_clock

from .helpers import STORE_KINDS, StoreUnderTest, transcript


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_stores_stamp_sessions_with_the_clock_given(kind, tmp_path, clock):
    clock.now = datetime(2030, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    under_test = StoreUnderTest(kind, tmp_path)
    try:
        first = under_test.store.save("s", transcript(1))
        clock.advance(3600)
        second = under_test.store.save("s", transcript(2))
    finally:
        under_test.close()
    assert first.created_at == second.created_at == "2030-05-06T07:08:09.001000Z"
    assert second.updated_at == "2030-05-06T08:08:09.002000Z"


def test_set_clock_returns_the_clock_it_replaced_and_none_restores_the_system_clock():
    fixed = datetime(2001, 2, 3, tzinfo=timezone.utc)
    previous = set_clock(lambda: fixed)
    try:
        assert now_iso() == "2001-02-03T00:00:00.000000Z"
    finally:
        set_clock(None)
    assert now_iso() > "2026"
    set_clock(previous)
