"""The fetch quarantine's ref borrowing: a fetch of sessions the store already holds
negotiates with just their heads (a have per ref is what makes libgit2's negotiation slow on
1,000 sessions); one of a session new here, or of unnamed sessions, with every ref."""

from __future__ import annotations

from sessionsgit import GitSessionStore
from sessionsgit.git.quarantine import Quarantine
from sessionsgit.stores.git import session_ref


def borrowed(quarantine: Quarantine) -> dict[str, str]:
    lines = (quarantine.path / "packed-refs").read_text().splitlines()[1:]
    return {name: oid for oid, name in (line.split() for line in lines)}


def test_borrowing_only_the_heads_of_sessions_the_store_holds(tmp_path):
    store = GitSessionStore(tmp_path / "s")
    for n in range(5):
        store.save(f"s{n}", [{"role": "user", "content": str(n)}])
    heads = {session_ref("s1"): store.load("s1").metadata.head,
             session_ref("s3"): store.load("s3").metadata.head}
    store.repo.references.create("refs/remotes/origin/sessions/s1", heads[session_ref("s1")])
    quarantine = Quarantine(store.repo)
    try:
        quarantine.borrow_refs(["s1", "s3"])
        assert borrowed(quarantine) == heads
        every = {session_ref(f"s{n}") for n in range(5)} | {"refs/remotes/origin/sessions/s1"}
        quarantine.borrow_refs(["s1", "new-here"])
        assert set(borrowed(quarantine)) == every
        quarantine.borrow_refs()
        assert set(borrowed(quarantine)) == every
    finally:
        quarantine.close()
    assert not quarantine.path.exists()
