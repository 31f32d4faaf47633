"""Listing sessions as records (plain dicts, what ``sessionsgit list`` prints): the live ones,
the deleted ones (every version ``restore`` can bring back), or both, newest first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .metadata import parse_time

if TYPE_CHECKING:
    from .stores.git import GitSessionStore

Record = dict[str, Any]


def newest_first(records: list[Record]) -> list[Record]:
    """Metadata records sorted by ``updated_at``, newest first (ties by id)."""
    return sorted(records, key=lambda r: (parse_time(r.get("updated_at")), r.get("id", "")),
                  reverse=True)


def deleted_records(store: "GitSessionStore") -> list[Record]:
    """Every deleted version as a metadata record with ``deleted: True``, ``deleted_at`` and
    ``version`` (numbered per id from 1, the latest deletion: ``restore(version=N)``)."""
    records: list[Record] = []
    versions: dict[str, int] = {}
    for deleted in store.list_deleted():
        versions[deleted.id] = versions.get(deleted.id, 0) + 1
        records.append({**deleted.metadata.to_dict(), "deleted": True,
                        "deleted_at": deleted.deleted_at, "version": versions[deleted.id]})
    return records


def list_sessions(store: "GitSessionStore", *, include_deleted: bool = False,
                  only_deleted: bool = False) -> list[Record]:
    """The store's sessions as records, newest first: the live ones (``store.list()``), with
    ``include_deleted`` every deleted version too (each record then has ``deleted``), with
    ``only_deleted`` just the deleted versions. Damaged sessions are left out and named by
    ``store.last_damaged``."""
    live = [] if only_deleted else [meta.to_dict() for meta in store.list()]
    if not (include_deleted or only_deleted):
        return live
    for record in live:
        record["deleted"] = False
    return newest_first(live + deleted_records(store))


def deleted_version_ref(store: "GitSessionStore", session_id: str, version: int) -> str:
    """The trash ref of deleted version ``version`` (1: the latest deletion) of ``session_id``,
    for ``store.restore(session_id, ref)``; ``InvalidRevisionError`` when there is no such one."""
    from .errors import InvalidRevisionError

    refs = [d.ref for d in store.list_deleted() if d.id == session_id]
    if not 1 <= version <= len(refs):
        raise InvalidRevisionError(f"{session_id} has {len(refs)} deleted "
                                   f"version{'s' if len(refs) != 1 else ''}, not {version}")
    return refs[version - 1]


def delete_session(store: "GitSessionStore", session_id: str) -> None:
    """Move a session to the trash; a LangGraph thread with every checkpoint branch and its
    ``refs/langgraph/`` refs (what ``delete_thread`` does), so ``restore`` brings all back."""
    from .integrations.langgraph_trash import trash_thread

    if not trash_thread(store, session_id):
        store.delete(session_id)
