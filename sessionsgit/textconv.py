"""The ``sessionsgit`` git diff driver: ``python -m sessionsgit.textconv FILE`` prints a stored
message as readable text (a role header, its text, tool calls summarized) so ``git diff`` and
``git log -p`` read like a conversation. Other files are printed unchanged. It imports nothing
but the standard library, since git runs it once per blob.

Installed per repository by ``sessionsgit.sync.install_diff_driver``."""

from __future__ import annotations

import json
import sys
from typing import Any

SUMMARY_LIMIT = 200
_SHOWN_KEYS = {"role", "content", "id", "tool_calls", "tool_call_id", "name", "function_call"}


def _compact(value: Any, limit: int = SUMMARY_LIMIT) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           sort_keys=True)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _block(block: Any) -> str:
    """One content block as text."""
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return _compact(block)
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        return block["text"]
    if kind in ("tool", "tool_use", "server_tool_use", "function_call"):
        name = block.get("tool") or block.get("name") or "?"
        args = block.get("params", block.get("input", block.get("arguments", {})))
        return f"[tool call] {name}({_compact(args)})"
    if kind == "tool_result":
        inner = block.get("result", block.get("content"))
        body = (_content(inner) if isinstance(inner, (list, str)) else _compact(inner)) or ""
        error = " (error)" if block.get("is_error") else ""
        return f"[tool result{error}] {_compact(body)}"
    if kind in ("thinking", "redacted_thinking"):
        return f"[thinking] {block.get('thinking', block.get('thought', ''))}".rstrip()
    if kind in ("image", "document", "image_url", "input_image", "file"):
        return f"[{kind}]"
    return f"[{kind or 'block'}] {_compact({k: v for k, v in block.items() if k != 'type'})}"


def _content(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, list):
        return "\n".join(_block(block) for block in content)
    return _block(content)


def render_message(message: dict[str, Any]) -> str:
    """A message as text: ``role:`` header (with its id), content, tool calls, other keys."""
    header = f"{message.get('role')}:"
    if message.get("name"):
        header += f" ({message['name']})"
    if message.get("tool_call_id"):
        header += f" [result of {message['tool_call_id']}]"
    if message.get("id"):
        header += f"  #{message['id']}"
    lines = [header]
    body = _content(message.get("content"))
    if body:
        lines.append(body)
    calls = list(message.get("tool_calls") or [])
    if message.get("function_call"):
        calls.append({"function": message["function_call"]})
    for call in calls:
        function = call.get("function", {}) if isinstance(call, dict) else {}
        lines.append(f"[tool call] {function.get('name', '?')}"
                     f"({_compact(function.get('arguments', ''))})")
    for key in sorted(k for k in message if k not in _SHOWN_KEYS):
        lines.append(f"-- {key}: {_compact(message[key])}")
    return "\n".join(lines) + "\n"


def render_session(data: dict[str, Any]) -> str:
    """``session.json`` as ``key: value`` lines (empty values left out)."""
    return "".join(f"{key}: {_compact(value)}\n" for key, value in data.items()
                   if value not in (None, "", {}, [], False))


def render(text: str) -> str:
    """The readable form of a stored file's text; the text itself when it is not ours."""
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict) and isinstance(data.get("role"), str):
        return render_message(data)
    if isinstance(data, dict) and "id" in data and "created_at" in data:
        return render_session(data)
    return text


def main(argv: list[str] | None = None) -> int:
    """Print the rendering of the file named on the command line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sessionsgit.textconv FILE", file=sys.stderr)
        return 2
    try:
        with open(args[0], "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        print(f"sessionsgit.textconv: {exc}", file=sys.stderr)
        return 1
    text = raw.decode("utf-8", errors="replace")
    sys.stdout.buffer.write(render(text).encode("utf-8"))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
