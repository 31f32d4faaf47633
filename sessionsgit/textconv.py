"""The ``sessionsgit`` git diff driver: ``python -m sessionsgit.textconv FILE`` prints a stored
message as readable text (a role header, then its text, tool calls and results as
``sessionsgit.messages`` reads them) so ``git diff`` and
``git log -p`` read like a conversation. Other files are printed unchanged. It imports nothing
but the standard library, since git runs it once per blob.

Installed per repository by ``sessionsgit.sync.install_diff_driver``."""

from __future__ import annotations

import sys
from typing import Any

from .codec import loads
from .messages import compact, one_line, plain_text, role_of

SUMMARY_LIMIT = 200
#: Keys the text of a message already shows, per shape; any other key is listed after it.
_SHOWN_KEYS = {"role", "content", "id", "tool_calls", "tool_call_id", "name", "function_call",
               "refusal", "type", "parts", "kind", "lc", "kwargs", "data", "arguments",
               "call_id", "output", "summary", "input", "encrypted_content", "status"}


def render_message(message: dict[str, Any]) -> str:
    """A message as text: ``role:`` header (with its name and id), each part on its own lines
    (tool calls, results and thinking labelled), then any other keys as ``-- key: value``."""
    header = f"{role_of(message) or 'message'}:"
    if isinstance(message.get("name"), str) and message["name"] and "content" in message:
        header += f" ({one_line(message['name'], 80)})"
    if message.get("id") and isinstance(message.get("id"), (str, int)):
        header += f"  #{one_line(message['id'], 80)}"
    lines = [header]
    body = plain_text(message)
    if body:
        lines.append(body)
    for key in sorted(str(k) for k in message if k not in _SHOWN_KEYS):
        lines.append(f"-- {one_line(key, 80)}: {compact(message[key], SUMMARY_LIMIT)}")
    return "\n".join(lines) + "\n"


def render_session(data: dict[str, Any]) -> str:
    """``session.json`` as ``key: value`` lines (empty values left out)."""
    return "".join(f"{key}: {compact(value, SUMMARY_LIMIT)}\n" for key, value in data.items()
                   if value not in (None, "", {}, [], False))


def render(text: str) -> str:
    """The readable form of a stored file's text; the text itself when it is not ours."""
    try:
        data = loads(text, what="file")
    except ValueError:
        return text
    if isinstance(data, dict) and role_of(data) is not None:
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
