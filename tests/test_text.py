"""``sessionsgit.messages``: every message shape read as text, hostile values never raising, and
``show``, ``log``/commit subjects, ``diff``, the textconv driver and auto-slugs all using it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sessionsgit import GitSessionStore
from sessionsgit.cli import cli
from sessionsgit.git.commitmeta import save_subject
from sessionsgit.manager import derive_slug
from sessionsgit.messages import (
    COMPACT_LIMIT,
    compact,
    message_parts,
    message_text,
    one_line,
    plain_text,
    role_of,
    summary,
)
from sessionsgit.msgdiff import diff_messages
from sessionsgit.textconv import render
from tests.helpers import git

# ---- one fixture per shape: (message, role, parts) ----------------------------------------
ANTHROPIC = [
    ({"role": "assistant", "content": [
        {"type": "thinking", "thinking": "They want weather.", "signature": "sig"},
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
     "assistant",
     [("thinking", "They want weather."), ("text", "Let me check."),
      ("tool_call", 'get_weather({"city": "Paris"})')]),
    ({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
         "content": [{"type": "text", "text": "18C"}]},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVB"}},
        {"type": "redacted_thinking", "data": "xx"}]},
     "user",
     [("tool_result", "toolu_1: 18C (error)"), ("image", "image/png"),
      ("thinking", "(redacted)")]),
]
SIMULACRA = [
    ({"role": "assistant", "content": [
        {"type": "thinking", "thought": "hmm"},
        {"type": "tool", "tool_request_id": "t1", "tool": "ls", "params": {"path": "/"}}]},
     "assistant", [("thinking", "hmm"), ("tool_call", 'ls({"path": "/"})')]),
    ({"role": "user", "content": [
        {"type": "tool_result", "tool_request_id": "t1", "tool": "ls", "result": {"files": 2}}]},
     "user", [("tool_result", 'ls: {"files": 2}')]),
]
OPENAI_CHAT = [
    ({"role": "developer", "content": "Be brief."}, "system", [("text", "Be brief.")]),
    ({"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]},
     "user", [("text", "What is this?"), ("image", "https://example.com/cat.png")]),
    ({"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "lookup", "arguments": "{\"q\": \"cats\"}"}}]},
     "assistant", [("tool_call", 'lookup({"q": "cats"})')]),
    ({"role": "tool", "tool_call_id": "call_1", "content": "a small feline"},
     "tool", [("tool_result", "call_1: a small feline")]),
    ({"role": "assistant", "content": None, "refusal": "I can't help with that."},
     "assistant", [("refusal", "I can't help with that.")]),
]
RESPONSES = [
    ({"type": "message", "role": "user",
      "content": [{"type": "input_text", "text": "Plan a trip"},
                  {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/"}]},
     "user", [("text", "Plan a trip"), ("image", "image/jpeg")]),
    ({"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
      "content": [{"type": "output_text", "text": "Sure: Lisbon.", "annotations": []}]},
     "assistant", [("text", "Sure: Lisbon.")]),
    ({"type": "function_call", "id": "fc_1", "call_id": "call_9", "name": "book",
      "arguments": "{\"city\": \"Lisbon\"}"},
     "assistant", [("tool_call", 'book({"city": "Lisbon"})')]),
    ({"type": "function_call_output", "call_id": "call_9", "output": "booked"},
     "tool", [("tool_result", "call_9: booked")]),
    ({"type": "reasoning", "id": "rs_1",
      "summary": [{"type": "summary_text", "text": "Lisbon is cheap in May."}]},
     "assistant", [("thinking", "Lisbon is cheap in May.")]),
    ({"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "gAAA"},
     "assistant", [("thinking", "(encrypted)")]),
    ({"type": "web_search_call", "id": "ws_1", "status": "completed",
      "action": {"type": "search", "query": "lisbon weather"}},
     "assistant",
     [("tool_call", 'web_search_call({"action": {"type": "search", "query": "lisbon weather"}})')]),
]
PYDANTIC_AI = [
    ({"kind": "request", "instructions": None, "parts": [
        {"part_kind": "system-prompt", "content": "You are terse.", "dynamic_ref": None},
        {"part_kind": "user-prompt", "content": "Roll a die", "timestamp": "2025-01-01T00:00:00Z"}]},
     "user", [("system", "You are terse."), ("text", "Roll a die")]),
    ({"kind": "response", "model_name": "gpt-4o", "parts": [
        {"part_kind": "thinking", "content": "use the tool"},
        {"part_kind": "text", "content": "Rolling."},
        {"part_kind": "tool-call", "tool_name": "roll", "args": {"sides": 6},
         "tool_call_id": "c1"}]},
     "assistant",
     [("thinking", "use the tool"), ("text", "Rolling."), ("tool_call", 'roll({"sides": 6})')]),
    ({"kind": "request", "parts": [
        {"part_kind": "tool-return", "tool_name": "roll", "content": 4, "tool_call_id": "c1"},
        {"part_kind": "retry-prompt", "tool_name": "roll", "tool_call_id": "c2",
         "content": [{"type": "missing", "loc": ["sides"], "msg": "Field required"}]}]},
     "tool",
     [("tool_result", "roll: 4"),
      ("retry", 'roll: {"type": "missing", "loc": ["sides"], "msg": "Field required"}')]),
    ({"kind": "request", "parts": [
        {"part_kind": "user-prompt", "content": [
            "Describe", {"kind": "image-url", "url": "https://example.com/a.png"}]}]},
     "user", [("text", "Describe [image] https://example.com/a.png")]),
]
LANGCHAIN = [
    ({"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", "HumanMessage"],
      "kwargs": {"content": "hi there", "type": "human"}},
     "user", [("text", "hi there")]),
    ({"lc": 1, "type": "constructor", "id": ["langchain_core", "messages", "AIMessage"],
      "kwargs": {"content": "", "type": "ai", "tool_calls": [
          {"name": "search", "args": {"q": "x"}, "id": "t1", "type": "tool_call"}]}},
     "assistant", [("tool_call", 'search({"q": "x"})')]),
    ({"type": "human", "content": [{"type": "text", "text": "dict shape"}],
      "additional_kwargs": {}, "response_metadata": {}, "name": None, "id": None},
     "user", [("text", "dict shape")]),
    ({"type": "ai", "content": "calling", "tool_calls": [
        {"name": "calc", "args": {"x": 1}, "id": "t2", "type": "tool_call"}]},
     "assistant", [("text", "calling"), ("tool_call", 'calc({"x": 1})')]),
    ({"type": "tool", "content": "2", "tool_call_id": "t2", "name": "calc"},
     "tool", [("tool_result", "t2: 2")]),
    ({"type": "system", "data": {"content": "from messages_to_dict", "type": "system"}},
     "system", [("text", "from messages_to_dict")]),
    ({"type": "AIMessageChunk", "content": "chunk"}, "assistant", [("text", "chunk")]),
]
SHAPES = {"anthropic": ANTHROPIC, "simulacra": SIMULACRA, "openai-chat": OPENAI_CHAT,
          "openai-responses": RESPONSES, "pydantic-ai": PYDANTIC_AI, "langchain": LANGCHAIN}
CASES = [pytest.param(m, r, p, id=f"{shape}-{i}") for shape, cases in SHAPES.items()
         for i, (m, r, p) in enumerate(cases)]


@pytest.mark.parametrize("message, role, parts", CASES)
def test_every_shape_reads_as_role_and_parts(message: Any, role: str, parts: list[Any]) -> None:
    assert role_of(message) == role
    assert message_parts(message) == parts
    line = summary(message, None)
    assert line.startswith(f"{role}: ") and "?" not in line.split(":")[0]
    for block_type in ("output_text", "input_text", "tool_use", "function_call"):
        assert f"[{block_type}]" not in plain_text(message)


def test_text_is_only_what_was_said() -> None:
    request = PYDANTIC_AI[0][0]
    assert message_text(request) == "Roll a die"  # not the system prompt
    assert message_text(ANTHROPIC[0][0]) == "Let me check."
    assert message_text(RESPONSES[2][0]) == ""
    assert plain_text(ANTHROPIC[0][0]).splitlines() == [
        "[thinking] They want weather.", "Let me check.",
        '[tool call] get_weather({"city": "Paris"})']


def test_summary_puts_text_and_tool_calls_before_thinking() -> None:
    assert summary(ANTHROPIC[0][0]) == ('assistant: Let me check. [tool call] '
                                        'get_weather({"city": "Paris"})')
    assert summary(RESPONSES[4][0]) == "assistant: [thinking] Lisbon is cheap in May."
    assert summary({"role": "user", "content": "x" * 200}, 20) == "user: " + "x" * 13 + "…"


def test_roles_map_aliases_and_keep_custom_ones() -> None:
    assert [role_of({"role": r, "content": ""}) for r in
            ("human", "ai", "model", "developer", "function", "Assistant")] == [
        "user", "assistant", "assistant", "system", "tool", "assistant"]
    assert role_of({"role": "critic\x1b[31m", "content": "x"}) == "critic [31m"
    assert role_of({"lc": 1, "type": "constructor", "id": ["ChatMessage"],
                    "kwargs": {"role": "narrator", "content": "x"}}) == "narrator"
    assert role_of({"content": "no role"}) is None
    assert role_of({"kind": "response", "parts": []}) == "assistant"


# ---- hostile values -----------------------------------------------------------------------
def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def _cyclic() -> dict[str, Any]:
    loop: dict[str, Any] = {"role": "user"}
    loop["content"] = [loop]
    return loop


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")

    __repr__ = __str__


HOSTILE = [
    {"role": "assistant", "content": "x", "tool_calls": 5},
    {"role": "assistant", "tool_calls": ["not a call", 3, None, {"function": 7}, {"name": {}}]},
    {"role": "user", "content": _deep(5000)},
    {"role": "user", "content": [{"type": "text", "text": _deep(5000)}]},
    {"role": "user", "content": [1, None, ["x"], 2.5, True]},
    {"role": 7, "content": {"type": "mystery", "payload": list(range(10_000))}},
    {"role": "tool", "content": _deep(3000)},
    {"role": None, "content": None},
    _cyclic(),
    {"kind": "request", "parts": [None, 3, {"part_kind": "user-prompt", "content": _deep(900)},
                                  {"part_kind": "tool-call", "tool_name": None, "args": _deep(9)}]},
    {"kind": "response", "parts": "not a list"},
    {"lc": 1, "type": "constructor", "id": 5, "kwargs": {"content": 5, "tool_calls": {}}},
    {"type": "function_call", "name": ["x"], "arguments": {"a": _deep(2000)}},
    {"type": "function_call_output", "output": [{"type": "input_text", "text": 3}]},
    {"type": "reasoning", "summary": [None, {"text": 5}]},
    {1: "int key", (2, 3): "tuple key", "role": "user"},
    {"role": "user", "content": [{_Unprintable(): 1}], "x": _Unprintable()},
    {"role": "user", "content": "y" * 1_000_000},
    {"role": "user", "content": [{"type": "image", "source": {"url": _deep(100)}}]},
    {"role": "user", "content": [{"type": "tool_result", "content": {"a": [1] * 100_000}}]},
    {"role": "assistant", "content": [{"type": "text", "text": 10 ** 5000}]},
    None, 42, "just a string", ["a", "list"], _deep(10_000), float("nan"),
]


@pytest.mark.parametrize("message", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_never_raise_and_stay_bounded(message: Any) -> None:
    parts = message_parts(message)
    assert isinstance(parts, list)
    for kind, text in parts:
        assert isinstance(kind, str) and isinstance(text, str)
        if kind != "text":
            assert len(text) <= 2 * COMPACT_LIMIT + 200
    role_of(message)
    message_text(message)
    plain_text(message)
    assert len(summary(message)) <= 72
    save_subject([message])
    derive_slug([message])
    if isinstance(message, dict):
        render(json.dumps(message, default=repr)) if _dumpable(message) else None


def _dumpable(value: Any) -> bool:
    try:
        json.dumps(value, default=repr)
    except (ValueError, RecursionError, TypeError):
        return False
    return True


def test_unknown_shapes_fall_back_to_compact_json_never_a_bare_type() -> None:
    mystery = {"role": "user", "content": [{"type": "output_audio", "transcript": "hello"}]}
    assert message_parts(mystery) == [
        ("other", '{"type": "output_audio", "transcript": "hello"}')]
    assert summary({"foo": 1, "bar": [1, 2]}) == '{"foo": 1, "bar": [1, 2]}'
    assert summary({"role": "assistant", "content": None, "tool_calls": 5}) == \
        'assistant: {"tool_calls": 5}'
    huge = compact({"k": "v" * 10_000})
    assert len(huge) == COMPACT_LIMIT and huge.endswith("…")
    assert compact(_deep(50)).count("[") <= 17 and "[…]" in compact(_deep(50))


def test_one_line_strips_control_characters_and_cuts_on_words() -> None:
    assert one_line("a\n\tb\x07c\x1b[1m \u2028d") == "a b c [1m d"
    assert one_line("word " * 30, 20, words=True) == "word word word word…"
    assert one_line("x" * 30, 10) == "x" * 9 + "…"
    assert one_line("keep all of it", None) == "keep all of it"


@pytest.mark.parametrize("limit", [1, 10, 72])
def test_one_line_of_a_long_text_is_the_whole_text_collapsed_then_cut(limit: int) -> None:
    """A long text is only partly scanned: what comes out must not depend on that, however the
    whitespace and control characters fall around the scanned prefix."""
    import random
    import re
    rng = random.Random(limit)

    def reference(text: str) -> str:
        flat = " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+", " ", text).split())
        if len(flat) <= limit:
            return flat
        cut = flat[:limit - 1]
        if flat[len(cut)] != " " and " " in cut[limit // 2:]:
            cut = cut[:cut.rindex(" ")]
        return cut + "…"

    pieces = ["word", "x" * 40, " ", "\n\t ", "\x07", " " * 500, "\u2028", "é"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randrange(1, 400))) for _ in range(300)]
    texts += [" " * (4 * limit + 64) + "tail words here", "ab " * 200 + "\n" * 1000 + "end"]
    for text in texts:
        assert one_line(text, limit, words=True) == reference(text), repr(text[:80])


# ---- the commands use it ------------------------------------------------------------------
MIXED = [RESPONSES[0][0], RESPONSES[2][0], RESPONSES[3][0], PYDANTIC_AI[1][0], LANGCHAIN[1][0],
         {"foo": "bar"}]


@pytest.fixture
def store(tmp_path: Path) -> GitSessionStore:
    store = GitSessionStore(tmp_path / "repo")
    yield store
    store.close()


def _cli(store: GitSessionStore, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--repo", str(store.path), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_show_reads_every_shape(store: GitSessionStore) -> None:
    store.save("mixed", MIXED)
    text = _cli(store, "show", "mixed")
    assert "[1] user" in text and "Plan a trip" in text and "[image] image/jpeg" in text
    assert "[2] assistant" in text and '→ tool call: book({"city": "Lisbon"})' in text
    assert "[3] tool" in text and "← tool result: call_9: booked" in text
    assert "[4] assistant" in text and "(thinking) use the tool" in text and "Rolling." in text
    assert '→ tool call: search({"q": "x"})' in text
    assert "[6] message" in text and '{"foo": "bar"}' in text
    assert "?" not in text and "[output_text]" not in text and "[input_text]" not in text
    markdown = _cli(store, "show", "mixed", "--format", "markdown")
    assert "## tool" in markdown and "**tool call**" in markdown


def test_commit_subjects_and_log_read_every_shape(store: GitSessionStore) -> None:
    for count in range(1, len(MIXED)):
        store.save("mixed", MIXED[:count])
    subjects = git("--git-dir", str(store.path), "log", "--format=%s", "sessions/mixed")
    assert subjects.splitlines() == [
        'assistant: [tool call] search({"q": "x"})',
        'assistant: Rolling. [tool call] roll({"sides": 6})',
        "tool: [tool result] call_9: booked",
        'assistant: [tool call] book({"city": "Lisbon"})',
        "user: Plan a trip [image] image/jpeg"]
    assert 'search({"q": "x"})' in _cli(store, "log", "mixed").splitlines()[0]
    assert save_subject([{"role": "user", "content": "a\nb " + "word " * 30}]).endswith("word…")
    assert save_subject([]) == "empty session"


def test_diff_reads_every_shape_and_pairs_by_role(store: GitSessionStore) -> None:
    old = [RESPONSES[2][0]]
    new = [dict(RESPONSES[2][0], arguments="{\"city\": \"Porto\"}")]
    assert [c.kind for c in diff_messages(old, new).changes] == ["changed"]
    store.save("a", old)
    store.save("b", new)
    out = _cli(store, "diff", "a", "b")
    assert '~ [1] assistant: [tool call] book({"city": "Porto"})' in out


def test_auto_slug_reads_every_shape() -> None:
    assert derive_slug([PYDANTIC_AI[0][0]]) == "Roll a die"
    assert derive_slug([RESPONSES[2][0], RESPONSES[0][0]]) == "Plan a trip"
    assert derive_slug([LANGCHAIN[0][0]]) == "hi there"
    assert derive_slug([{"role": "user", "content": "tab\there\x07"}]) == "tab here"


def test_textconv_driver_reads_every_shape(tmp_path: Path) -> None:
    item = tmp_path / "000001.json"
    item.write_text(json.dumps(RESPONSES[2][0], indent=2))
    result = subprocess.run([sys.executable, "-m", "sessionsgit.textconv", str(item)],
                            capture_output=True, text=True, check=True)
    assert result.stdout == 'assistant:  #fc_1\n[tool call] book({"city": "Lisbon"})\n'
    assert render(json.dumps(PYDANTIC_AI[1][0])) == (
        'assistant:\n[thinking] use the tool\nRolling.\n[tool call] roll({"sides": 6})\n'
        "-- model_name: gpt-4o\n")
    assert render(json.dumps(LANGCHAIN[4][0])) == "tool: (calc)\n[tool result] t2: 2\n"
    deep = "[" * 100_000 + "]" * 100_000
    assert render(deep) == deep  # too deep to read: shown as it is, no RecursionError
