"""Reading messages as text: the one place that knows the message shapes people store, so
``show``, ``log``, ``diff``, commit subjects, auto-slugs, the textconv driver and the providers all
read a message the same way. Standard library only (git runs the textconv driver per blob).

Shapes understood:

* chat messages with a ``role`` and a ``content`` string or block list, in the Anthropic shape
  (``text``, ``tool_use``, ``tool_result``, ``thinking``, ``image``/``document``), the simulacra
  shape (``tool`` with ``tool``/``params``, ``tool_result`` with ``result``, ``thinking`` with
  ``thought``) and the OpenAI chat shape (``tool_calls``, ``function_call``, role ``tool``);
* OpenAI Responses items: ``message`` (``input_text``/``output_text``/``refusal``),
  ``function_call``, ``function_call_output``, ``reasoning`` and other ``*_call`` items, which
  may have no ``role``;
* pydantic-ai ``ModelMessage`` JSON (``kind`` ``request``/``response`` with ``parts`` of a
  ``part_kind``);
* LangChain serialized messages, both ``{"lc": 1, "type": "constructor", "id": [...], "kwargs":
  {...}}`` and ``{"type": "human"|"ai"|..., "content", "tool_calls"}`` (or with ``data``).

Nothing here raises on any value: an unknown shape is shown as compact JSON of bounded length.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

#: A readable piece of a message: (kind, text). Kinds: ``text``, ``thinking``, ``tool_call``,
#: ``tool_result``, ``system``, ``retry``, ``refusal``, ``image``, ``file`` and ``other``
#: (compact JSON of something not understood).
Part = tuple[str, str]

#: Longest compact JSON shown for a value this module does not read (tool arguments included).
COMPACT_LIMIT = 1000
#: How deep compact JSON descends before writing ``…`` for the rest.
_COMPACT_DEPTH = 16
#: How many blocks / parts / tool calls of one message are read (the rest are counted).
_MAX_ITEMS = 1000
#: Labels of non-text parts, as in ``[tool call] search({"q": 1})``.
LABELS = {"tool_call": "tool call", "tool_result": "tool result", "thinking": "thinking",
          "system": "system", "retry": "retry", "refusal": "refusal", "image": "image",
          "file": "file"}

_ROLE_ALIASES = {"user": "user", "human": "user", "assistant": "assistant", "ai": "assistant",
                 "model": "assistant", "system": "system", "developer": "system", "tool": "tool",
                 "function": "tool", "ipython": "tool"}
_LC_TYPES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool",
             "function": "tool", "developer": "system", "chat": None, "remove": None}
_LC_CLASSES = {"HumanMessage": "user", "AIMessage": "assistant", "SystemMessage": "system",
               "ToolMessage": "tool", "FunctionMessage": "tool", "ChatMessage": None}
_TEXT_BLOCKS = {"text", "input_text", "output_text", "summary_text", "reasoning_text"}
_THINKING_BLOCKS = {"thinking", "redacted_thinking", "reasoning"}
_CALL_BLOCKS = {"tool", "tool_use", "server_tool_use", "mcp_tool_use", "function_call",
                "tool_call", "custom_tool_call"}
_RESULT_BLOCKS = {"tool_result", "function_call_output", "custom_tool_call_output",
                  "mcp_tool_result"}
_IMAGE_BLOCKS = {"image", "image_url", "input_image"}
_FILE_BLOCKS = {"document", "file", "input_file", "input_audio", "audio", "video"}
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


# ---- one line, compact JSON ---------------------------------------------------------------
def _collapsed(text: str) -> str:
    return " ".join(_UNPRINTABLE.sub(" ", text).split())


def one_line(text: Any, limit: int | None = 72, *, words: bool = False) -> str:
    """``text`` on one line: whitespace and control characters collapsed to single spaces, cut
    at ``limit`` characters (None: no limit) with ``…``; ``words`` cuts on a word boundary."""
    text = text if isinstance(text, str) else str(text)
    if limit is not None and len(text) > 4 * limit + 64:
        # Collapsing a prefix gives a prefix of the collapsed whole: when that is already over
        # the limit, the rest of a long text (a whole message, say) need not be scanned.
        head = _collapsed(text[:4 * limit + 64])
        text = head if len(head) > limit else _collapsed(text)
    else:
        text = _collapsed(text)
    if limit is None or len(text) <= limit:
        return text
    cut = text[:max(limit - 1, 0)]
    if words and text[len(cut)] != " " and " " in cut[limit // 2:]:
        cut = cut[:cut.rindex(" ")]
    return cut + "…"


def compact(value: Any, limit: int = COMPACT_LIMIT) -> str:
    """``value`` as one-line JSON of at most ``limit`` characters (a string as itself);
    never raises, whatever the value (deep, cyclic, huge or not JSON at all)."""
    try:
        if isinstance(value, str):
            text = value
        else:
            out: list[str] = []
            _encode(value, out, _COMPACT_DEPTH, [limit + 1])
            text = "".join(out)
        text = one_line(text, None)
    except Exception:  # noqa: BLE001 - a key whose str() raises, say
        text = f"<unreadable {type(value).__name__}>"
    return text if len(text) <= limit else text[:max(limit - 1, 0)] + "…"


def _encode(value: Any, out: list[str], depth: int, budget: list[int]) -> None:
    """Append JSON for ``value`` to ``out`` until ``budget[0]`` characters are spent."""
    if budget[0] <= 0:
        return
    if isinstance(value, dict):
        if depth <= 0:
            piece = "{…}"
        else:
            _emit("{", out, budget)
            for index, (key, item) in enumerate(value.items()):
                if budget[0] <= 0:
                    return
                _emit((", " if index else "") + _scalar(str(key)) + ": ", out, budget)
                _encode(item, out, depth - 1, budget)
            piece = "}"
    elif isinstance(value, (list, tuple)):
        if depth <= 0:
            piece = "[…]"
        else:
            _emit("[", out, budget)
            for index, item in enumerate(value):
                if budget[0] <= 0:
                    return
                if index:
                    _emit(", ", out, budget)
                _encode(item, out, depth - 1, budget)
            piece = "]"
    else:
        piece = _scalar(value)
    _emit(piece, out, budget)


def _emit(piece: str, out: list[str], budget: list[int]) -> None:
    out.append(piece[:budget[0]])
    budget[0] -= len(piece)


def _scalar(value: Any) -> str:
    if value is None or isinstance(value, (bool, int, float, str)):
        try:
            return json.dumps(value, ensure_ascii=False)
        except (ValueError, TypeError):  # an int too long to print, say
            return "…"
    return json.dumps(f"<{type(value).__name__}>")


# ---- roles --------------------------------------------------------------------------------
def role_of(message: Any) -> str | None:
    """The role of a message of any understood shape: ``user``, ``assistant``, ``system`` or
    ``tool`` (aliases such as ``human``/``ai``/``developer`` mapped), another role string as
    given (on one line), or None when the shape tells no role."""
    try:
        return _shape(message)[0]
    except Exception:  # noqa: BLE001 - reading text must never fail
        return None


def _shape(message: Any) -> tuple[str | None, str, Any]:
    """(role, shape, body): shape is ``chat``, ``pydantic``, ``item`` or ``unknown``; body is
    the dict holding the content (LangChain's ``kwargs``/``data``, else the message itself)."""
    if not isinstance(message, dict):
        return None, "unknown", message
    kwargs = message.get("kwargs")
    if message.get("lc") is not None and message.get("type") == "constructor" \
            and isinstance(kwargs, dict):
        ids = message.get("id")
        name = ids[-1] if isinstance(ids, list) and ids and isinstance(ids[-1], str) else ""
        name = name[:-len("Chunk")] if name.endswith("Chunk") else name
        role = _LC_CLASSES.get(name)
        if role is None:
            role = _role_name(kwargs.get("role"))
        return role, "chat", kwargs
    parts = message.get("parts")
    if isinstance(parts, list) and (message.get("kind") in ("request", "response") or any(
            isinstance(p, dict) and "part_kind" in p for p in parts[:_MAX_ITEMS])):
        return _pydantic_role(message.get("kind"), parts), "pydantic", message
    if isinstance(message.get("role"), str):
        return _role_name(message["role"]), "chat", message
    kind = message.get("type")
    if isinstance(kind, str):
        lc_type = kind.lower().removesuffix("messagechunk").removesuffix("message")
        if lc_type in _LC_TYPES and ("content" in message or "data" in message):
            data = message.get("data")
            body: dict[str, Any] = data if isinstance(data, dict) else message
            role = _LC_TYPES[lc_type] or _role_name(body.get("role"))
            return role, "chat", body
        if kind == "message":
            return "assistant", "chat", message
        if kind in ("function_call_output", "custom_tool_call_output") \
                or kind.endswith("_call_output"):
            return "tool", "item", message
        if kind == "reasoning" or kind.endswith("_call"):
            return "assistant", "item", message
    if "content" in message or "tool_calls" in message:
        return None, "chat", message
    return None, "unknown", message


def _role_name(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return _ROLE_ALIASES.get(value.strip().lower()) or one_line(value, 40)


def _pydantic_role(kind: Any, parts: list[Any]) -> str:
    if kind == "response":
        return "assistant"
    kinds = {p.get("part_kind") for p in parts[:_MAX_ITEMS] if isinstance(p, dict)}
    if "user-prompt" in kinds:
        return "user"
    if kinds and kinds <= {"tool-return", "retry-prompt", "builtin-tool-return"}:
        return "tool"
    if kinds and kinds <= {"system-prompt"}:
        return "system"
    return "user" if kind == "request" else "assistant"


# ---- parts --------------------------------------------------------------------------------
def message_parts(message: Any) -> list[Part]:
    """The readable parts of a message, in order, as (kind, text); see ``Part``."""
    try:
        role, shape, body = _shape(message)
        if shape == "chat":
            return _chat_parts(body, role)
        if shape == "pydantic":
            return _limited(_pydantic_part(part) for part in body["parts"])
        if shape == "item":
            return [_item_part(body)]
    except Exception:  # noqa: BLE001 - reading text must never fail
        pass
    return [("other", compact(message))]


def _limited(parts: Iterable[Part]) -> list[Part]:
    out: list[Part] = []
    for part in parts:
        if len(out) == _MAX_ITEMS:
            out.append(("other", "… (more not shown)"))
            break
        out.append(part)
    return out


def _chat_parts(message: dict[str, Any], role: str | None) -> list[Part]:
    content = message.get("content")
    if role == "tool":
        source = message.get("tool_call_id") or message.get("name")
        parts = [("tool_result", _sourced(source, _content_text(content)))]
    else:
        parts = _content_parts(content)
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append(("refusal", message["refusal"]))
    calls = message.get("tool_calls")
    if calls not in (None, [], {}):
        if isinstance(calls, list):
            parts += _limited(_call_part(call) for call in calls)
        else:
            parts.append(("other", compact({"tool_calls": calls})))
    if message.get("function_call") not in (None, {}):
        parts.append(_call_part({"function": message["function_call"]}))
    return parts


def _content_parts(content: Any) -> list[Part]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [("text", content)]
    if isinstance(content, list):
        return _limited(_block_part(block) for block in content)
    if isinstance(content, dict):
        return [_block_part(content)]
    return [("other", compact(content))]


def _content_text(content: Any) -> str:
    """The text of a tool result's content: a string, text blocks joined, or compact JSON."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = _content_parts(content)
    if parts and all(kind == "text" for kind, _ in parts):
        return "\n".join(text for _, text in parts)
    return "\n".join(render_part(part) for part in parts)


def _sourced(source: Any, text: str) -> str:
    if source in (None, ""):
        return text
    return f"{source if isinstance(source, str) else compact(source, 80)}: {text}"


def _arguments(value: Any) -> str:
    """Tool arguments: a JSON string as written, anything else as compact JSON."""
    return compact(value if value is not None else {})


def _call_text(name: Any, arguments: Any) -> str:
    shown = name if isinstance(name, str) and name else compact(name, 80) if name else "tool"
    return f"{shown}({_arguments(arguments)})"


def _call_part(call: Any) -> Part:
    """One entry of ``tool_calls``: OpenAI ``{"function": {"name", "arguments"}}`` or a flat
    ``{"name", "args"|"arguments"|"input"}`` (LangChain, pydantic-ai-like)."""
    if not isinstance(call, dict):
        return ("other", compact(call))
    function = call.get("function")
    if isinstance(function, dict):
        return ("tool_call", _call_text(function.get("name"), function.get("arguments")))
    if "name" in call:
        arguments = next((call[key] for key in ("args", "arguments", "input", "params")
                          if key in call), None)
        return ("tool_call", _call_text(call["name"], arguments))
    return ("other", compact(call))


def _first(block: dict[str, Any], *keys: str) -> Any:
    return next((block[key] for key in keys if block.get(key) not in (None, "")), None)


def _block_part(block: Any) -> Part:
    """One content block of any understood shape."""
    if isinstance(block, str):
        return ("text", block)
    if not isinstance(block, dict):
        return ("other", compact(block))
    kind = block.get("type")
    if kind in _TEXT_BLOCKS or (kind is None and isinstance(block.get("text"), str)):
        text = block.get("text")
        return ("text", text) if isinstance(text, str) else ("other", compact(block))
    if kind == "refusal" and isinstance(block.get("refusal"), str):
        return ("refusal", block["refusal"])
    if kind in _THINKING_BLOCKS:
        if kind == "redacted_thinking":
            return ("thinking", "(redacted)")
        thought = _first(block, "thinking", "thought", "reasoning", "text")
        if thought is None and isinstance(block.get("summary"), list):
            thought = _content_text(block["summary"])
        return ("thinking", thought if isinstance(thought, str) else compact(thought or ""))
    if kind in _CALL_BLOCKS:
        return ("tool_call", _call_text(_first(block, "tool", "name"),
                                        _first(block, "params", "input", "arguments", "args")))
    if kind in _RESULT_BLOCKS or (isinstance(kind, str) and kind.endswith("_tool_result")):
        source = _first(block, "tool", "tool_use_id", "tool_request_id", "tool_call_id",
                        "call_id")
        result = _first(block, "result", "content", "output")
        error = " (error)" if block.get("is_error") is True else ""
        return ("tool_result", _sourced(source, _content_text(result)) + error)
    if kind in _IMAGE_BLOCKS:
        return ("image", _media(block))
    if kind in _FILE_BLOCKS:
        return ("file", _media(block))
    return ("other", compact(block))


def _media(block: dict[str, Any]) -> str:
    """What an image or file block holds, briefly: a URL, a file name or a media type."""
    found: list[str] = []
    stack: list[Any] = [block]
    while stack and len(found) < 1:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        for key in ("filename", "url", "image_url", "file_url", "file_id", "media_type",
                    "mime_type", "format"):
            value = node.get(key)
            if isinstance(value, dict):
                stack.append(value)
            elif isinstance(value, str) and value:
                found.append(_data_url(value))
                break
        if not found:
            stack.extend(v for k, v in node.items() if isinstance(v, dict) and k != "type")
        if len(stack) > 16:
            break
    return found[0] if found else ""


def _data_url(value: str) -> str:
    if value.startswith("data:"):
        return value[5:].split(";", 1)[0].split(",", 1)[0]
    return one_line(value, 120)


def _pydantic_part(part: Any) -> Part:
    """One part of a pydantic-ai ``ModelRequest``/``ModelResponse``."""
    if not isinstance(part, dict):
        return ("other", compact(part))
    kind = part.get("part_kind")
    content = part.get("content")
    if kind == "user-prompt":
        if isinstance(content, list):
            texts = [_pydantic_user_item(item) for item in content[:_MAX_ITEMS]]
            if all(k == "text" for k, _ in texts):
                return ("text", "\n".join(text for _, text in texts))
            return ("text", " ".join(render_part(t) for t in texts))
        return ("text", content) if isinstance(content, str) else ("other", compact(content))
    if kind in ("system-prompt", "text", "thinking"):
        part_kind = {"system-prompt": "system", "text": "text", "thinking": "thinking"}[kind]
        return (part_kind, content if isinstance(content, str) else compact(content))
    if kind in ("tool-call", "builtin-tool-call"):
        return ("tool_call", _call_text(part.get("tool_name"), part.get("args")))
    if kind in ("tool-return", "builtin-tool-return"):
        return ("tool_result", _sourced(part.get("tool_name"), _content_text(content)))
    if kind == "retry-prompt":
        return ("retry", _sourced(part.get("tool_name"), _content_text(content)))
    return ("other", compact(part))


def _pydantic_user_item(item: Any) -> Part:
    if isinstance(item, str):
        return ("text", item)
    if isinstance(item, dict):
        kind = str(item.get("kind", ""))
        if kind == "image-url" or (kind == "binary" and str(item.get("media_type", ""))
                                   .startswith("image/")):
            return ("image", _media(item))
        if kind.endswith("-url") or kind == "binary":
            return ("file", _media(item))
    return ("other", compact(item))


def _item_part(item: dict[str, Any]) -> Part:
    """An OpenAI Responses item other than ``message``."""
    kind = item.get("type")
    if kind in ("function_call", "custom_tool_call"):
        return ("tool_call", _call_text(item.get("name"), _first(item, "arguments", "input")))
    if kind == "reasoning":
        texts = [text for key in ("summary", "content") if isinstance(item.get(key), list)
                 for text in [_content_text(item[key])] if text]
        shown = "\n".join(texts) or ("(encrypted)" if item.get("encrypted_content") else "")
        return ("thinking", shown)
    if isinstance(kind, str) and kind.endswith("_call_output"):
        return ("tool_result", _sourced(item.get("call_id"), _content_text(item.get("output"))))
    rest = {k: v for k, v in item.items() if k not in ("type", "id", "status")}
    return ("tool_call", f"{kind}({compact(rest)})")


# ---- whole messages -----------------------------------------------------------------------
def render_part(part: Part) -> str:
    """A part as one piece of text: text as itself, others as ``[label] text``."""
    kind, text = part
    if kind in ("text", "other"):
        return text
    label = f"[{LABELS.get(kind, kind)}]"
    return f"{label} {text}" if text else label


def message_text(message: Any) -> str:
    """What the speaker said: the message's text parts joined by newlines ('' when none), as a
    model provider or a label wants it (no tool calls, thinking or system prompts)."""
    return "\n".join(text for kind, text in message_parts(message) if kind == "text")


def plain_text(message: Any) -> str:
    """The whole message as text, one line per part (tool calls, results, thinking labelled)."""
    return "\n".join(render_part(part) for part in message_parts(message))


def summary(message: Any, limit: int | None = 72, *, words: bool = False) -> str:
    """``role: first words`` of a message on one line (tool calls and results labelled; thinking
    only when there is nothing else)."""
    role = role_of(message)
    parts = [part for part in message_parts(message) if part[1] or part[0] != "text"]
    shown = [part for part in parts if part[0] != "thinking"] or parts
    body = " ".join(render_part(part) for part in shown)
    return one_line(f"{role}: {body}" if role else body, limit, words=words)
