"""Every JSON entry point (stdin of ``append``, ``import`` files, the textconv driver, commit
metadata, provider replies) parses through ``codec.loads``: deep nesting is a typed error, never
a ``RecursionError``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sessionsgit import GitSessionStore, SerializationError
from sessionsgit.cli import cli
from sessionsgit.codec import MAX_NESTING, loads
from sessionsgit.git import commitmeta
from sessionsgit.importers import ImportFormatError, parse_text
from sessionsgit.textconv import render

DEEP = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 5_000 + "1" + "}" * 5_000


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_loads_refuses_deep_nesting_with_a_typed_error() -> None:
    assert loads(_nested(MAX_NESTING)) is not None
    for text in (_nested(MAX_NESTING + 1), _nested(900), DEEP, DEEP_OBJECT,
                 '{"role": "user", "content": ' + DEEP + "}"):
        with pytest.raises(SerializationError, match=f"nested more than {MAX_NESTING} levels"):
            loads(text, what="stdin")


def test_loads_reports_invalid_json_with_its_cause() -> None:
    with pytest.raises(SerializationError, match="stdin is not valid JSON") as info:
        loads("{nope", what="stdin")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value.__cause__, json.JSONDecodeError)
    assert loads(b'{"a": [1, 2]}') == {"a": [1, 2]}


def test_append_with_deeply_nested_json_on_stdin_is_a_clean_error(tmp_path: Path) -> None:
    store = GitSessionStore(tmp_path / "repo")
    store.save("s", [{"role": "user", "content": "hi"}])
    head = store.load("s").metadata.head
    store.close()
    for stdin in (DEEP, DEEP_OBJECT, '[{"role": "user", "content": ' + DEEP + "}]"):
        result = CliRunner().invoke(cli, ["--repo", str(tmp_path / "repo"), "append", "s", "--json"],
                                    input=stdin, catch_exceptions=False)
        assert result.exit_code != 0
        assert "Traceback" not in result.output and "RecursionError" not in result.output
        assert len(result.output.strip().splitlines()) <= 4  # a usage line and an error line
    reopened = GitSessionStore(tmp_path / "repo")
    assert reopened.load("s").metadata.head == head
    reopened.close()


def test_import_of_deep_json_and_jsonl_is_an_import_format_error() -> None:
    with pytest.raises(ImportFormatError, match="nested more than"):
        parse_text(DEEP, source="deep.json")
    with pytest.raises(ImportFormatError, match="line 2 is nested more than"):
        parse_text('{"role": "user", "content": "x"}\n' + DEEP, source="deep.jsonl", jsonl=True)
    with pytest.raises(ImportFormatError, match="not valid JSON"):
        parse_text("{nope", source="bad.json")
    # JSONL is still recognised by JSON's "extra data"
    transcript = parse_text('{"role": "user", "content": "a"}\n{"role": "user", "content": "b"}')
    assert [m["content"] for m in transcript.messages] == ["a", "b"]


def test_textconv_and_commit_metadata_read_deep_json_without_recursion_error() -> None:
    assert render(DEEP) == DEEP
    assert render(DEEP_OBJECT) == DEEP_OBJECT
    raw = b"subject\n\n" + commitmeta.META_KEY.encode() + DEEP_OBJECT.encode() + b"\n"
    assert commitmeta.parse(raw) is None
