"""Output formatting for the CLI: a session as readable text, and tables of records. The
transcript file formats (JSON, JSONL, YAML, Markdown) belong to ``sessionsgit.transcripts``.

Messages are read by ``sessionsgit.messages`` (every shape it understands: Anthropic, simulacra,
OpenAI chat and Responses, pydantic-ai, LangChain); this module only lays them out.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

from .messages import LABELS, message_parts, one_line, role_of, summary
from .metadata import SessionMetadata, StoredSession, parse_time

SHORT = 8
#: Longest cell a table prints before cutting it with an ellipsis.
CELL_LIMIT = 48


# ---- small helpers ------------------------------------------------------------------------
def short_id(value: str | None, length: int = SHORT) -> str:
    """The first ``length`` characters of an id (or commit), or an empty string."""
    return (value or "")[:length]


_GENERATED_ID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")


def short_session_id(value: str | None) -> str:
    """A session id for tables: generated (UUID) ids cut to ``SHORT`` characters, any other id
    whole, since a cut custom id (``list-of-``) would name nothing."""
    value = value or ""
    return short_id(value) if _GENERATED_ID.fullmatch(value) else value


def local_time(value: str | None) -> str:
    """An ISO timestamp as local time to the second (``2024-05-01 14:03:22``); '' when unset."""
    if not value:
        return ""
    parsed = parse_time(value)
    if parsed.year == 1:
        return str(value)
    return parsed.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def ms_time(value: Any) -> str:
    """A message ``timestamp`` in milliseconds as local time, or '' when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    try:
        return datetime.fromtimestamp(value / 1000, timezone.utc).astimezone().strftime(
            "%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return ""


def plural(count: int, noun: str) -> str:
    """``1 message``, ``2 messages``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


# ---- whole sessions -----------------------------------------------------------------------
def header_facts(metadata: SessionMetadata) -> list[str]:
    """A session's facts for a transcript header: count, update time, model, fork of."""
    facts = [plural(metadata.message_count, "message"),
             f"updated {local_time(metadata.updated_at)}"]
    if metadata.provider or metadata.model:
        facts.append("/".join(x for x in (metadata.provider, metadata.model) if x))
    if metadata.parent_id:
        kind = "detached fork" if metadata.detached else "fork"
        facts.append(f"{kind} of {short_id(metadata.parent_id)}")
    return facts


def render_text(session: StoredSession) -> str:
    """A readable transcript: a header, then each message's role, time, text and tool calls."""
    meta = session.metadata
    title = f"Session {meta.id}" + (f"  {meta.label!r}" if meta.label else "")
    lines = [title, "  " + ", ".join(header_facts(meta))]
    if meta.head:
        lines.append(f"  at {meta.head}")
    for index, message in enumerate(session.messages, 1):
        role = role_of(message) or "message"
        stamp = ms_time(message.get("timestamp")) if isinstance(message, dict) else ""
        lines += ["", f"[{index}] {role}" + (f"  ({stamp})" if stamp else "")]
        for kind, text in message_parts(message):
            prefix = _TEXT_PREFIXES.get(kind, f"[{LABELS.get(kind, kind)}] ")
            for n, line in enumerate((text or "").splitlines() or [""]):
                lines.append("  " + (prefix if n == 0 else " " * len(prefix)) + line)
    return "\n".join(lines) + "\n"


_TEXT_PREFIXES = {"text": "", "other": "", "tool_call": "→ tool call: ",
                  "tool_result": "← tool result: ", "thinking": "(thinking) "}


def render_session(session: StoredSession, fmt: str) -> str:
    """A session as ``show`` prints it: ``text``, or an export format (``transcripts``)."""
    if fmt == "text":
        return render_text(session)
    from .transcripts import export_session

    return export_session(session, fmt)


def to_json(value: Any) -> str:
    """Pretty JSON (UTF-8 kept readable), as transcripts write it."""
    from .transcripts import to_json as transcript_json

    return transcript_json(value)


def to_yaml(value: Any) -> str:
    """Block-style YAML in insertion order, as transcripts write it."""
    from .transcripts import to_yaml as transcript_yaml

    return transcript_yaml(value)


# ---- tables and records -------------------------------------------------------------------
def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                 headers: Sequence[str] | None = None) -> str:
    """Left-aligned columns separated by two spaces, with a header row; numbers right-aligned."""
    headers = list(headers or columns)
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    numeric = [all(isinstance(row.get(c), int) for row in rows) and bool(rows) for c in columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        out = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers)] + [line(r) for r in cells]) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    return one_line(str(value), CELL_LIMIT)


def records_text(records: Iterable[Mapping[str, Any]], fmt: str) -> str:
    """Records as ``json`` (an array), ``yaml`` or ``nl`` (one JSON object per line)."""
    items = [dict(r) for r in records]
    if fmt == "json":
        return to_json(items) + "\n"
    if fmt == "yaml":
        return to_yaml(items) if items else "[]\n"
    if fmt == "nl":
        return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)
    raise ValueError(f"unknown record format {fmt!r}")


def sessions_table(records: Sequence[Mapping[str, Any]]) -> str:
    """The ``list`` table: short id, updated, messages, label, parent (and deleted marks)."""
    if not records:
        return "No sessions.\n"
    rows = []
    show_deleted = any("deleted" in r for r in records)
    for r in records:
        rows.append({"id": short_session_id(r["id"]), "updated": local_time(r.get("updated_at")),
                     "messages": r.get("message_count", 0), "label": r.get("label") or "",
                     "parent": short_session_id(r.get("parent_id")),
                     "deleted": local_time(r.get("deleted_at")) if r.get("deleted") else "",
                     "version": r.get("version", "")})
    columns = ["id", "updated", "messages", "label", "parent"]
    if show_deleted:
        columns += ["deleted", "version"]
    return format_table(rows, columns)


def log_table(records: Sequence[Mapping[str, Any]]) -> str:
    """The ``log`` lines: short commit, local time, message count, subject (and label)."""
    lines = []
    for r in records:
        label = f"  [{r['label']}]" if r.get("label") else ""
        count = r.get("message_count", 0)
        unit = "msg " if count == 1 else "msgs"
        lines.append(f"{short_id(r['commit'])}  {local_time(r.get('time'))}  "
                     f"{count:>4} {unit}  {r.get('subject', '')}{label}")
    return "\n".join(lines) + "\n" if lines else "No saves.\n"


def tree_records(sessions: Sequence[SessionMetadata]) -> list[dict[str, Any]]:
    """Sessions in fork-tree order (depth first, oldest child first) with their ``depth``; a
    session whose parent is gone is a root."""
    ids = {m.id for m in sessions}
    children: dict[str | None, list[SessionMetadata]] = {}
    for meta in sessions:
        parent = meta.parent_id if meta.parent_id in ids and meta.parent_id != meta.id else None
        children.setdefault(parent, []).append(meta)
    for group in children.values():
        group.sort(key=lambda m: (parse_time(m.created_at), m.id))
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    roots = list(children.get(None, []))
    reachable = _reachable(roots, children)
    roots += [meta for meta in sessions if meta.id not in reachable]
    # depth first with an explicit stack: fork chains can be thousands deep
    stack = [(meta, 0) for meta in reversed(roots)]
    while stack:
        meta, depth = stack.pop()
        if meta.id in seen:  # fork cycles have no root: each shows once, from where met first
            continue
        seen.add(meta.id)
        out.append({"id": meta.id, "label": meta.label, "parent_id": meta.parent_id,
                    "detached": meta.detached, "message_count": meta.message_count,
                    "depth": depth})
        stack += [(child, depth + 1) for child in reversed(children.get(meta.id, []))]
    return out


def _reachable(roots: list[SessionMetadata],
               children: dict[str | None, list[SessionMetadata]]) -> set[str]:
    """The ids below (and including) ``roots``."""
    found: set[str] = set()
    todo = list(roots)
    while todo:
        meta = todo.pop()
        if meta.id not in found:
            found.add(meta.id)
            todo += children.get(meta.id, [])
    return found


def tree_text(records: Sequence[Mapping[str, Any]]) -> str:
    """The fork tree drawn with box characters, each line: short id, label, message count."""
    if not records:
        return "No sessions.\n"
    last = _last_siblings(records)
    lines = []
    bars: list[str] = []  # bars[k]: what the ancestor at depth k leaves in the lines below it
    for index, r in enumerate(records):
        depth = r.get("depth", 0)
        prefix = ""
        if depth:
            prefix = "".join(bars[1:depth]) + ("└─ " if last[index] else "├─ ")
        del bars[depth:]
        bars.append("   " if last[index] else "│  ")
        label = f"  {one_line(r['label'], CELL_LIMIT)}" if r.get("label") else ""
        notes = [plural(r.get("message_count", 0), "message")]
        if r.get("detached"):
            notes.append("detached")
        lines.append(f"{prefix}{short_session_id(r['id'])}{label}  ({', '.join(notes)})")
    return "\n".join(lines) + "\n"


def _last_siblings(records: Sequence[Mapping[str, Any]]) -> list[bool]:
    """Whether each record is the last child of its parent, in one backward pass."""
    result = [True] * len(records)
    later: list[bool] = []  # later[d]: a later record at depth d shares the current parent
    for index in range(len(records) - 1, -1, -1):
        depth = records[index].get("depth", 0)
        if len(later) <= depth:
            later += [False] * (depth + 1 - len(later))
        result[index] = not later[depth]
        later[depth] = True
        del later[depth + 1:]
    return result


def report_text(records: Sequence[Mapping[str, Any]]) -> str:
    """A sync report (or any flat dict) as ``key: value`` lines; lists shown by length."""
    lines = []
    for record in records:
        parts = []
        for key, value in record.items():
            if isinstance(value, (list, tuple)):
                if value:
                    shown = ", ".join(_pair(v) for v in value[:5])
                    more = f" (+{len(value) - 5})" if len(value) > 5 else ""
                    parts.append(f"{key}: {len(value)} [{shown}{more}]")
                else:
                    parts.append(f"{key}: 0")
            else:
                parts.append(f"{key}: {value}")
        lines.append("\n".join(parts))
    return "\n".join(lines) + "\n"


def _pair(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"{short_id(str(value[0]))}→{short_id(str(value[1]))}"
    return short_id(str(value))


def remotes_table(records: Sequence[Mapping[str, Any]]) -> str:
    """``name  url`` per remote."""
    if not records:
        return "No remotes.\n"
    return "".join(f"{r['name']}\t{r['url']}\n" for r in records)


def sync_summary(records: Sequence[Mapping[str, Any]]) -> str:
    """A sync report in a line (``pushed 2, fetched 1, ...``), then a line per diverged or
    rejected session and per diverged LangGraph thread."""
    lines = []
    for r in records:
        counts = [f"{key} {len(value) if isinstance(value, (list, tuple)) else value}"
                  for key, value in r.items() if isinstance(value, (int, list, tuple))]
        lines.append(", ".join(counts) if counts else "nothing to do")
        for pair in r.get("diverged") or []:
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                lines.append(f"  diverged: {pair[0]} now holds the remote version; its local "
                             f"continuation is now fork {pair[1]}")
        for pair in r.get("diverged_threads") or []:
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                lines.append(f"  diverged: thread {pair[0]} keeps both checkpoint branches (the "
                             f"local one is {pair[1]}); its latest is the newest checkpoint")
        for pair in r.get("rejected") or []:
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                lines.append(f"  rejected: {pair[0]}: {pair[1]}")
        for pair in r.get("damaged") or []:
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                lines.append(f"  damaged, not pushed: {pair[0]}: {pair[1]}")
    return "\n".join(lines) + "\n"


def diff_stat_line(stat: Mapping[str, int]) -> str:
    """``2 added, 1 removed, 1 changed, 4 unchanged``."""
    return ", ".join(f"{stat.get(k, 0)} {k}" for k in ("added", "removed", "changed", "unchanged"))


def render_diff(diff: Any, old_name: str, new_name: str, old_count: int, new_count: int, *,
                stat: bool = False) -> str:
    """A message-level diff: ``---``/``+++`` headers, then ``+``/``-``/``~`` lines (runs of
    unchanged messages collapsed), then the counts. With ``stat``, only the summary line."""
    summary_line = diff_stat_line(diff.stat())
    if stat:
        return f"{old_name} → {new_name}: {summary_line}\n"
    lines = [f"--- {old_name} ({plural(old_count, 'message')})",
             f"+++ {new_name} ({plural(new_count, 'message')})"]
    run = 0

    def flush() -> None:
        nonlocal run
        if run:
            lines.append(f"  … {run} unchanged message{'s' if run != 1 else ''}")
            run = 0

    for change in diff.changes:
        if change.kind == "unchanged":
            run += 1
            continue
        flush()
        if change.kind == "added":
            lines.append(f"+ [{change.new_index + 1}] {summary(change.new)}")
        elif change.kind == "removed":
            lines.append(f"- [{change.old_index + 1}] {summary(change.old)}")
        else:
            where = (f"{change.new_index + 1}" if change.old_index == change.new_index
                     else f"{change.old_index + 1}→{change.new_index + 1}")
            lines.append(f"~ [{where}] {summary(change.new)}")
            lines.append(f"      was: {summary(change.old)}")
    flush()
    lines.append(summary_line if not diff.is_empty else "no message changes")
    return "\n".join(lines) + "\n"


def diff_line_color(line: str) -> str | None:
    """The colour of a diff line on a terminal: green ``+``, red ``-``, yellow ``~``."""
    if line.startswith(("---", "+++")):
        return None
    return {"+": "green", "-": "red", "~": "yellow"}.get(line[:1])
