"""Full-text search: the Git store's FTS5 index (a cache kept up to date from moved heads), the
scanning default of other stores, and ``sessionsgit search``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sessionsgit import GitSessionStore
from sessionsgit.cli import cli
from sessionsgit.search import SearchHit, SearchQueryError, index_path
from sessionsgit.stores.memory import InMemorySessionStore

from .conftest import git

TRIP = [
    {"role": "system", "content": "You plan trips."},
    {"role": "user", "content": "Make me a Porto itinerary for three days"},
    {"role": "assistant", "content": [
        {"type": "text", "text": "Day one: Ribeira and the PORTO ITINERARY classics."},
        {"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Lisbon"}}]},
]
CODE = [
    {"role": "user", "content": "Why does my itinerary parser crash in Porto?"},
    {"role": "assistant", "content": "The parser reads an empty line."},
]


@pytest.fixture
def store(tmp_path: Path) -> GitSessionStore:
    store = GitSessionStore(tmp_path / "repo")
    store.save("trip", TRIP, {"label": "Porto trip"})
    store.save("code", CODE)
    return store


def found(hits: list[SearchHit]) -> set[tuple[str, int]]:
    return {(hit.session_id, hit.index) for hit in hits}


def test_words_match_anywhere_in_a_message_case_insensitively(store: GitSessionStore) -> None:
    hits = store.search("porto ITINERARY")
    assert found(hits) == {("trip", 1), ("trip", 2), ("code", 0)}
    trip = next(hit for hit in hits if hit.session_id == "trip" and hit.index == 1)
    assert trip.label == "Porto trip" and trip.role == "user"
    assert trip.commit == store.load("trip").metadata.head and trip.time
    assert "«Porto»" in trip.snippet and "«itinerary»" in trip.snippet
    assert trip.parts()[1] == ("Porto", True)


def test_a_phrase_matches_only_the_words_together(store: GitSessionStore) -> None:
    hits = store.search('"porto itinerary"')
    assert found(hits) == {("trip", 1), ("trip", 2)}
    assert "«PORTO ITINERARY»" in next(h for h in hits if h.index == 2).snippet
    assert store.search('"itinerary porto"') == []


def test_tool_calls_are_searched_through_the_messages_text(store: GitSessionStore) -> None:
    assert found(store.search("lisbon")) == {("trip", 2)}


def test_role_session_limit_and_since_filters(store: GitSessionStore) -> None:
    assert found(store.search("itinerary", role="assistant")) == {("trip", 2)}
    assert found(store.search("itinerary", session="code")) == {("code", 0)}
    assert len(store.search("itinerary", limit=1)) == 1
    assert store.search("itinerary", since="2999-01-01T00:00:00Z") == []
    assert len(store.search("itinerary", since="2000-01-01")) == 3


def test_bad_queries_are_typed_errors(store: GitSessionStore) -> None:
    for query in ("", "  ", '""', "!!"):
        with pytest.raises(SearchQueryError):
            store.search(query)
    with pytest.raises(SearchQueryError):
        store.search("porto", limit=0)
    with pytest.raises(SearchQueryError):
        store.search("porto", since="yesterday-ish")
    # FTS5 operators in a query are plain words, never syntax
    assert store.search('porto AND OR NOT NEAR "(" *') == []


def test_the_index_lives_in_the_git_dir_and_is_never_pushed(store: GitSessionStore,
                                                             tmp_path: Path) -> None:
    store.search("porto")
    assert index_path(store.repo.path).is_file()
    assert git("for-each-ref", cwd=store.repo.path).count("sessionsgit/search") == 0
    clone = tmp_path / "clone"
    git("clone", "--bare", "-q", str(store.repo.path), str(clone))
    assert not index_path(clone).exists()


def test_new_saves_are_indexed_incrementally(store: GitSessionStore, tmp_path: Path) -> None:
    store.search("porto")
    index = store._search_index
    assert store.search("porto") and index.blobs_read == 0  # nothing changed: nothing read
    store.save("trip", TRIP + [{"role": "user", "content": "Add a day in Braga"}])
    assert found(store.search("braga")) == {("trip", 3)}
    assert index.blobs_read == 1  # only the new message's blob
    store.fork("trip", "trip-2", at=2)
    assert found(store.search('"porto itinerary"', session="trip-2")) == {("trip-2", 1)}
    assert index.blobs_read == 0  # a fork shares its parent's blobs
    other = GitSessionStore(tmp_path / "repo", create=False)  # another process's view
    other.save("code", CODE + [{"role": "user", "content": "Braga again"}])
    assert found(store.search("braga")) == {("trip", 3), ("code", 2)}


def test_a_git_fetch_moving_refs_is_noticed(store: GitSessionStore, tmp_path: Path) -> None:
    remote = GitSessionStore(tmp_path / "remote")
    remote.save("far", [{"role": "user", "content": "Reykjavik in winter"}])
    assert store.search("porto") and store.search("reykjavik") == []
    git("fetch", "-q", str(tmp_path / "remote"), "refs/heads/sessions/*:refs/heads/sessions/*",
        cwd=store.repo.path)
    assert found(store.search("reykjavik")) == {("far", 0)}
    remote.save("far", [{"role": "user", "content": "Oslo in winter"}])
    git("fetch", "-q", str(tmp_path / "remote"), "+refs/heads/sessions/*:refs/heads/sessions/*",
        cwd=store.repo.path)
    assert store.search("reykjavik") == [] and found(store.search("oslo")) == {("far", 0)}


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage", "empty"])
def test_a_lost_or_damaged_index_is_rebuilt(store: GitSessionStore, tmp_path: Path,
                                           damage: str) -> None:
    assert store.search("porto")
    path = index_path(store.repo.path)
    store._search_index.close()
    if damage == "delete":
        path.unlink()
    elif damage == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 3])
    elif damage == "garbage":
        path.write_bytes(b"this is not sqlite" * 500)
    else:
        path.write_bytes(b"")
    fresh = GitSessionStore(tmp_path / "repo", create=False)
    assert found(fresh.search("porto itinerary")) == {("trip", 1), ("trip", 2), ("code", 0)}
    store.save("code", CODE + [{"role": "user", "content": "porto"}])
    assert ("code", 2) in found(store.search("porto"))


def test_deleted_sessions_and_earlier_saves_only_with_all_history(store: GitSessionStore) -> None:
    store.save("code", [{"role": "user", "content": "A question about Lyon"}])
    assert store.search("parser") == []  # the earlier save's words are gone from the head
    old = store.search("parser", all_history=True)
    assert found(old) == {("code", 0), ("code", 1)}
    assert all(not hit.current and not hit.deleted for hit in old)
    assert old[0].commit != store.load("code").metadata.head
    store.delete("trip")
    assert store.search("ribeira") == []
    gone = store.search("ribeira", all_history=True)
    assert found(gone) == {("trip", 2)} and gone[0].deleted and gone[0].label == "Porto trip"
    assert found(store.search("lyon", all_history=True)) == {("code", 0)}
    assert store.search("lyon", all_history=True)[0].current
    store.restore("trip")
    assert found(store.search("ribeira")) == {("trip", 2)}
    assert not store.search("ribeira", all_history=True)[0].deleted


def test_other_stores_scan_with_the_same_query_rules() -> None:
    store = InMemorySessionStore()
    store.save("trip", TRIP, {"label": "Porto trip"})
    store.save("code", CODE)
    assert found(store.search("porto ITINERARY")) == {("trip", 1), ("trip", 2), ("code", 0)}
    assert found(store.search('"porto itinerary"')) == {("trip", 1), ("trip", 2)}
    assert found(store.search("itinerary", role="assistant")) == {("trip", 2)}
    hit = store.search("lisbon")[0]
    assert hit.label == "Porto trip" and "«Lisbon»" in hit.snippet


def test_cli_search(store: GitSessionStore, tmp_path: Path) -> None:
    runner = CliRunner()
    repo = str(tmp_path / "repo")
    result = runner.invoke(cli, ["--repo", repo, "search", '"porto itinerary"'])
    assert result.exit_code == 0, result.output
    assert "trip (Porto trip) #2 user: " in result.output and "«Porto itinerary»" in result.output
    result = runner.invoke(cli, ["--repo", repo, "search", "itinerary", "--json", "--role",
                                 "assistant"])
    assert [hit["session_id"] for hit in json.loads(result.output)] == ["trip"]
    result = runner.invoke(cli, ["--repo", repo, "search", "itinerary", "--session", "Porto trip",
                                 "--limit", "1", "--json"])
    assert [(h["session_id"], h["index"]) for h in json.loads(result.output)] in (
        [("trip", 1)], [("trip", 2)])
    store.delete("code")
    result = runner.invoke(cli, ["--repo", repo, "search", "parser"])
    assert result.output == "No matches.\n"
    result = runner.invoke(cli, ["--repo", repo, "search", "parser", "--all-history"])
    assert "[deleted]" in result.output
    result = runner.invoke(cli, ["--repo", repo, "search", '""'])
    assert result.exit_code == 1 and result.output.startswith("Error: nothing to search for")
    assert "Traceback" not in result.output


def test_concurrent_searchers_share_one_index(store: GitSessionStore, tmp_path: Path) -> None:
    import threading

    errors: list[BaseException] = []
    stores = [GitSessionStore(tmp_path / "repo", create=False) for _ in range(4)]

    def search_after_save(n: int) -> None:
        try:
            for round_ in range(5):
                stores[n].save(f"s{n}", [{"role": "user", "content": f"kiwi{n} round{round_}"}])
                assert found(stores[n].search(f"kiwi{n}")) == {(f"s{n}", 0)}
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=search_after_save, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.search("round4")) == 4


def test_an_unwritable_index_falls_back_to_scanning(store: GitSessionStore, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from sessionsgit import search as search_module

    def refuse(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(search_module.SearchIndex, "_open", refuse)
    assert found(store.search('"porto itinerary"')) == {("trip", 1), ("trip", 2)}
    with pytest.raises(search_module.StoreError, match="cannot use the search index"):
        store.search("porto", all_history=True)


def test_a_warm_search_reads_only_ref_files(store: GitSessionStore,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert store.search("porto")

    def no_listing() -> None:
        raise AssertionError("a warm search listed the sessions")

    monkeypatch.setattr(store, "list", no_listing)
    assert found(store.search("lisbon")) == {("trip", 2)}
    monkeypatch.undo()
    store.save("code", CODE + [{"role": "user", "content": "lisbon too"}])
    assert found(store.search("lisbon")) == {("trip", 2), ("code", 2)}


def test_a_warm_search_reads_no_ref_when_no_ref_file_changed(
        store: GitSessionStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionsgit import search as search_module
    from sessionsgit.git import reffiles, refs

    # as if the last save was seconds ago (files changed within RACY_SECONDS are not vouched for)
    monkeypatch.setattr(search_module, "RACY_SECONDS", 0.0)
    assert store.search("porto")

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a warm search read the refs")

    with monkeypatch.context() as patched:
        patched.setattr(reffiles, "read_ref_files", no_reading)
        patched.setattr(refs, "read_refs", no_reading)
        assert found(store.search("lisbon")) == {("trip", 2)}
    other = GitSessionStore(tmp_path / "repo", create=False)  # another process saves
    other.save("code", CODE + [{"role": "user", "content": "lisbon too"}])
    assert found(store.search("lisbon")) == {("trip", 2), ("code", 2)}
    git("pack-refs", "--all", cwd=store.repo.path)  # a ref moved into packed-refs
    assert found(store.search("lisbon")) == {("trip", 2), ("code", 2)}
    git("update-ref", "-d", "refs/heads/sessions/trip", cwd=store.repo.path)  # packed only
    assert found(store.search("lisbon")) == {("code", 2)}


def test_a_ref_file_rewritten_in_place_is_noticed(store: GitSessionStore) -> None:
    assert found(store.search("ribeira")) == {("trip", 2)}
    ref = Path(store.repo.path) / "refs/heads/sessions/trip"
    code_head = (Path(store.repo.path) / "refs/heads/sessions/code").read_bytes()
    with open(ref, "r+b") as handle:  # same inode, same size: not how git writes refs
        handle.write(code_head)
    assert store.search("ribeira") == []
    assert ("trip", 0) in found(store.search("parser"))


def test_many_matches_rank_the_newest_and_filters_still_find_every_hit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionsgit import search as search_module

    monkeypatch.setattr(search_module, "RANK_WINDOW", 2)
    store = GitSessionStore(tmp_path / "repo")
    for n in range(6):
        store.save(f"s{n}", [{"role": "user", "content": f"kiwi number {n}"},
                             {"role": "assistant", "content": f"a kiwi reply {n}"}])
    # 12 matches, a window of 2: the best 2 of the newest 2 (ranked alone, the shorter user
    # messages of any session would come first)
    assert found(store.search("kiwi", limit=2)) == {("s5", 0), ("s5", 1)}
    monkeypatch.setattr(search_module, "RANK_WINDOW", 100)
    assert {hit.role for hit in store.search("kiwi", limit=2)} == {"user"}
    monkeypatch.setattr(search_module, "RANK_WINDOW", 2)
    assert len(store.search("kiwi")) == 12  # the window widens: every hit is found
    assert found(store.search("kiwi", session="s0")) == {("s0", 0), ("s0", 1)}
    assert found(store.search("kiwi", role="user", limit=6)) == {(f"s{n}", 0) for n in range(6)}


def test_the_first_build_indexes_the_oldest_session_first(tmp_path: Path) -> None:
    store = GitSessionStore(tmp_path / "repo")
    for n in range(3):
        store.save(f"s{n}", [{"role": "user", "content": f"mango {n}"}])
    store.search("mango")
    db = store._search_index._connect()
    order = [session for (session,) in db.execute(
        "SELECT live.session FROM live ORDER BY live.doc")]
    assert order == ["s0", "s1", "s2"]


def test_a_session_whose_updated_at_is_no_time_is_still_searched(tmp_path: Path) -> None:
    store = GitSessionStore(tmp_path / "repo")
    store.save("odd", [{"role": "user", "content": "kiwi"}], {"updated_at": "not a time"})
    store.save("plain", [{"role": "user", "content": "kiwi"}])
    assert found(store.search("kiwi")) == {("odd", 0), ("plain", 0)}
