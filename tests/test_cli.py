"""The ``sessionsgit`` command line, driven through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner, Result

from sessionsgit import GitSessionStore, SessionMetadata
from sessionsgit.cli import cli
from sessionsgit.resolve import AmbiguousSessionError
from tests.helpers import git, loosen


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No user setup leaks in: the default repository is a temp dir, no OpenAI settings."""
    home = tmp_path / "env-repo"
    monkeypatch.setenv("SESSIONSGIT_REPO", str(home))
    for name in ("OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return tmp_path / "repo"


class Cli:
    """Runs the CLI against one repository."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo

    def __call__(self, *args: str, input: str | None = None, ok: bool = True) -> Result:
        result = CliRunner().invoke(cli, ["--repo", str(self.repo), *args], input=input,
                                    catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        return json.loads(self(*args, "--json", input=input).stdout)

    def new(self, label: str | None = None) -> str:
        return self("new", *(["--label", label] if label else [])).stdout.strip()


@pytest.fixture
def run(repo: Path) -> Cli:
    """The CLI on an initialised repository."""
    cli_ = Cli(repo)
    cli_("init")
    return cli_


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def messages_of(run: Cli, session: str) -> list[dict[str, Any]]:
    return json.loads(run("show", session, "--format", "json").stdout)["messages"]


def conversation(run: Cli, label: str = "trip") -> str:
    """A session of four saves: empty, then user, assistant, user."""
    session_id = run.new(label)
    run("append", session_id, "Plan a weekend in Lisbon")
    run("append", session_id, "--role", "assistant", "Alfama, then Sintra.")
    run("append", session_id, "Add a food tour")
    return session_id


# ---- help, version, repository -------------------------------------------------------------
def _walk(command: click.Command, path: list[str]):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _walk(sub, path + [name])


def test_every_command_and_subcommand_has_help() -> None:
    seen = []
    for path, command in _walk(cli, []):
        result = CliRunner().invoke(cli, [*path, "--help"], catch_exceptions=False)
        assert result.exit_code == 0, (path, result.output)
        assert (command.help or "").strip(), f"{' '.join(path) or 'cli'} has no help text"
        assert "Usage:" in result.output
        seen.append(" ".join(path))
    for name in ("init", "new", "list", "show", "log", "diff", "fork", "tree", "rename", "delete",
                 "restore", "append", "chat", "export", "import", "remote", "remote add",
                 "remote list", "remote remove", "push", "pull", "sync", "gc",
                 "install-diff-driver"):
        assert name in seen


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and "sessionsgit" in result.output


def test_init_creates_a_bare_repository(repo: Path) -> None:
    run = Cli(repo)
    assert "Initialized empty" in run("init").stdout
    assert (repo / "HEAD").is_file() and not (repo / ".git").exists()
    assert "Reinitialized existing" in run("init").stdout
    assert git("--git-dir", str(repo), "rev-parse", "--is-bare-repository").strip() == "true"



def test_init_inside_a_code_repository_says_to_ignore_it(tmp_path: Path) -> None:
    code = tmp_path / "code"
    git("init", "-q", str(code))
    result = Cli(code / ".sessions")("init")
    assert ".gitignore" in result.stderr and ".sessions/" in result.stderr
    (code / ".gitignore").write_text(".sessions/\n")
    assert Cli(code / ".sessions")("init").stderr == ""
    assert Cli(tmp_path / "elsewhere")("init").stderr == ""


def test_missing_repository_is_a_clear_error(repo: Path) -> None:
    run = Cli(repo)
    for args in (["list"], ["show", "x"], ["tree"], ["gc"]):
        assert_one_line_error(run(*args, ok=False), "no sessions repository at",
                              "sessionsgit init")
    assert not repo.exists()


def test_only_init_or_an_explicit_create_makes_a_repository(tmp_path: Path) -> None:
    source = tmp_path / "t.json"
    source.write_text(json.dumps([{"role": "user", "content": "hi"}]))
    for index, args in enumerate((["new"], ["chat", "--new"], ["import", str(source)])):
        target = Cli(tmp_path / "typo" / f"r{index}")
        assert_one_line_error(target(*args, input="hi\n", ok=False),
                              "no sessions repository at", "sessionsgit init", "--create")
        assert not (tmp_path / "typo" / f"r{index}").exists()
        target(*args, "--create", input="")
        assert len(target.json("list")) == 1


def test_repo_defaults_to_the_environment(isolated_env: Path) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["init"], catch_exceptions=False)
    session_id = runner.invoke(cli, ["new"], catch_exceptions=False).stdout.strip()
    assert GitSessionStore(isolated_env, create=False).exists(session_id)


def test_a_file_as_repository_is_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("not a repo")
    assert_one_line_error(Cli(path)("list", ok=False), "no Git repository")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    assert_one_line_error(Cli(busy)("new", ok=False), "no Git repository")
    assert_one_line_error(Cli(busy)("new", "--create", ok=False), "not a Git repository")



# ---- repositories this user cannot write, held locks, other owners -------------------------
_CHILD = """
import sys, pygit2
pygit2.option(pygit2.enums.Option.SET_OWNER_VALIDATION, 0)  # a shared repository, trusted
from sessionsgit.cli import main
sys.argv[0] = "sessionsgit"
main()
"""


@pytest.fixture
def shared_dir():
    """A directory every user can enter (pytest's own tmp dirs are private to their owner)."""
    import os
    import shutil
    import tempfile
    base = Path(tempfile.mkdtemp(prefix="sessionsgit-shared-"))
    base.chmod(0o755)
    yield base
    for path in [base, *base.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(base, ignore_errors=True)


def _as_reader(base: Path, repo: Path, *args: str):
    """The CLI run by a user who can read ``repo`` but not write it: as root, the user nobody;
    otherwise this user with every file of ``repo`` made read-only."""
    import os
    import subprocess
    import sys
    if os.geteuid() == 0:
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    else:
        prefix = []
        for path in [repo, *repo.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
    env = {**os.environ, "HOME": str(base),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([*prefix, sys.executable, "-c", _CHILD, "--repo", str(repo), *args],
                          capture_output=True, text=True, env=env, cwd=base)


def test_a_repository_this_user_cannot_write_says_permission_denied(shared_dir: Path) -> None:
    repo = shared_dir / "repo"
    run = Cli(repo)
    run("init")
    session_id = run.new("kept")
    gone = run.new("gone")
    run("delete", gone)
    before = git("--git-dir", str(repo), "for-each-ref")
    for args in (["append", session_id, "hi"], ["rename", session_id, "x"],
                 ["fork", session_id], ["delete", session_id], ["restore", gone], ["new"]):
        result = _as_reader(shared_dir, repo, *args)
        assert result.returncode == 1, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), (args, result.stderr)
        assert "permission denied" in lines[0].lower() and str(repo) in lines[0], lines[0]
        assert "permissions" in lines[0], lines[0]  # what to do
        for wrong in ("another writer", "changed while", "Traceback"):
            assert wrong not in lines[0], (args, lines[0])
    assert git("--git-dir", str(repo), "for-each-ref") == before


def test_a_held_ref_lock_names_the_lock_file(run: Cli, repo: Path) -> None:
    session_id = conversation(run)
    gone = run.new("gone")
    run("delete", gone)
    for ref, args in ((session_id, ["append", session_id, "hi"]),
                      (session_id, ["delete", session_id]), (gone, ["restore", gone])):
        lock = repo / "refs" / "heads" / "sessions" / f"{ref}.lock"
        lock.write_text("")
        try:
            result = run(*args, ok=False)
        finally:
            lock.unlink()
        assert_one_line_error(result, str(lock), "locked")
        assert "changed while" not in result.stderr
    assert len(messages_of(run, session_id)) == 3


def test_a_repository_owned_by_another_user_names_safe_directory(run: Cli, repo: Path) -> None:
    import os
    if os.geteuid() != 0:
        pytest.skip("making a file owned by another user needs root")
    run.new()
    for path in [repo, *repo.rglob("*")]:
        os.chown(path, 65534, 65534)
    result = run("list", ok=False)
    assert_one_line_error(result, "not owned by the current user", "safe.directory", str(repo))
    assert "no Git repository" not in result.stderr
    assert_one_line_error(run("init", ok=False), "not owned by the current user")


# ---- new, list ----------------------------------------------------------------------------
def test_list_json_yaml_nl_are_metadata_dicts(run: Cli) -> None:
    first = run.new("first")
    second = run.new()
    records = run.json("list")
    fields = set(SessionMetadata.from_dict({"id": "x"}).to_dict())
    assert [r["id"] for r in records] == [second, first]
    assert all(set(r) == fields for r in records)
    assert records[1]["label"] == "first" and records[1]["message_count"] == 0
    assert yaml.safe_load(run("list", "--yaml").stdout) == records
    lines = run("list", "--nl").stdout.splitlines()
    assert [json.loads(line) for line in lines] == records
    assert [r["id"] for r in run.json("list", "--limit", "1")] == [second]
    both = run("list", "--json", "--yaml", ok=False)
    assert both.exit_code == 2 and "Error: choose one of --json" in both.stderr


def test_list_table_has_short_ids_counts_labels_and_parents(run: Cli) -> None:
    parent = conversation(run, "lisbon")
    child = run("fork", parent, "--label", "porto").stdout.strip()
    lines = run("list").stdout.splitlines()
    assert lines[0].split() == ["id", "updated", "messages", "label", "parent"]
    child_line = next(line for line in lines if line.startswith(child[:8]))
    assert "porto" in child_line and child_line.rstrip().endswith(parent[:8])
    assert child[8:] not in child_line
    assert " 3  lisbon" in next(line for line in lines if line.startswith(parent[:8]))



def test_list_and_tree_show_custom_ids_whole_and_labels_on_one_clean_line(
        run: Cli, tmp_path: Path) -> None:
    source = tmp_path / "t.json"
    source.write_text(json.dumps([{"role": "user", "content": "hi"}]))
    run("import", str(source), "--id", "list-of-things", "--label", "bell\x07 and\x1b[31m red")
    child = run("fork", "list-of-things", "--label", "two\nlines").stdout.strip()
    table = run("list").stdout
    assert "list-of-things" in table and child[:8] in table and child not in table
    tree = run("tree").stdout
    assert tree.splitlines()[0].startswith("list-of-things")
    assert len(tree.splitlines()) == 2 and "two lines" in tree
    for text in (table, tree):
        assert not any(ord(ch) < 32 and ch != "\n" or ord(ch) == 127 for ch in text), repr(text)
    undo = run("delete", "list-of-things").stdout
    assert "restore list-of-things" in undo
    assert run("restore", undo.rsplit("restore ", 1)[1].rstrip(")\n")).exit_code == 0


def test_list_limit_zero_does_not_claim_there_are_no_sessions(run: Cli) -> None:
    run.new()
    out = run("list", "--limit", "0").stdout
    assert "No sessions" not in out and "0 of 1" in out
    assert run.json("list", "--limit", "0") == []


# ---- resolution ---------------------------------------------------------------------------
def test_sessions_resolve_by_id_prefix_and_label(run: Cli, tmp_path: Path) -> None:
    session_id = conversation(run, "my label")
    for argument in (session_id, session_id[:4], session_id[:8], "my label"):
        assert len(messages_of(run, argument)) == 3
    assert_one_line_error(run("show", session_id[:3], ok=False), "no session matches",
                          "at least 4 characters", session_id)


def test_a_too_short_prefix_names_the_minimum_and_the_matches(run: Cli, tmp_path: Path) -> None:
    source = tmp_path / "t.json"
    source.write_text(json.dumps([{"role": "user", "content": "hi"}]))
    for session_id in ("a8aa1111", "a8bb2222"):
        run("import", str(source), "--id", session_id)
    assert_one_line_error(run("show", "a8", ok=False), "'a8'", "at least 4 characters",
                          "a8aa1111", "a8bb2222")
    assert_one_line_error(run("show", "zz", ok=False), "no session matches 'zz'")


def test_ambiguous_arguments_list_the_candidates(run: Cli, tmp_path: Path) -> None:
    source = tmp_path / "t.json"
    source.write_text(json.dumps([{"role": "user", "content": "hi"}]))
    for session_id in ("abcd1111", "abcd2222"):
        run("import", str(source), "--id", session_id, "--label", "twin")
    result = run("show", "abcd", ok=False)
    assert_one_line_error(result, "ambiguous", "abcd1111", "abcd2222")
    assert_one_line_error(run("delete", "twin", ok=False), "ambiguous", "abcd1111", "abcd2222")
    assert messages_of(run, "abcd1")[0]["content"] == "hi"


def test_ambiguous_error_is_a_key_error_with_a_readable_message() -> None:
    meta = [SessionMetadata.from_dict({"label": "x"}, session_id=i) for i in ("aaaa1", "aaaa2")]
    error = AmbiguousSessionError("aaaa", meta)
    assert isinstance(error, KeyError) and error.candidates == ["aaaa1", "aaaa2"]
    assert str(error).startswith("'aaaa' is ambiguous") and "aaaa2 ('x')" in str(error)


# ---- show ---------------------------------------------------------------------------------
TOOL_MESSAGES = [
    {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
    {"role": "assistant", "content": [
        {"type": "text", "text": "Let me check."},
        {"type": "tool", "tool_request_id": "t1", "tool": "weather", "params": {"city": "Paris"}}]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool": "weather", "tool_request_id": "t1", "result": "18C"}]},
    {"role": "assistant", "content": None,
     "tool_calls": [{"id": "c1", "type": "function",
                     "function": {"name": "lookup", "arguments": "{\"q\": 1}"}}]},
]


def test_show_formats(run: Cli) -> None:
    session_id = run.new("tools")
    run("append", session_id, "--json", input=json.dumps(TOOL_MESSAGES))
    text = run("show", session_id).stdout
    assert "'tools'" in text and "[1] user" in text and "Weather in Paris?" in text
    assert '→ tool call: weather({"city": "Paris"})' in text
    assert "← tool result: weather: 18C" in text
    assert "lookup(" in text
    markdown = run("show", session_id, "--format", "markdown").stdout
    assert markdown.startswith("# tools\n") and "## assistant" in markdown
    document = json.loads(run("show", session_id, "--format", "json").stdout)
    assert document["id"] == session_id and document["metadata"]["label"] == "tools"
    assert [m["content"] for m in document["messages"]] == [m["content"] for m in TOOL_MESSAGES]
    assert yaml.safe_load(run("show", session_id, "--format", "yaml").stdout) == document



def test_show_json_flag(run: Cli) -> None:
    session_id = conversation(run)
    assert run("show", session_id, "--json").stdout == \
        run("show", session_id, "--format", "json").stdout
    assert len(run.json("show", f"{session_id}@~1")["messages"]) == 2
    assert run("show", session_id, "--json", "--format", "yaml", ok=False).exit_code == 2


def test_show_at_a_save(run: Cli) -> None:
    session_id = conversation(run)
    log = run.json("log", session_id)
    assert len(messages_of(run, f"{session_id}@~1")) == 2
    assert len(json.loads(run("show", session_id, "--at", log[3]["commit"][:10], "--format",
                              "json").stdout)["messages"]) == 0
    assert "[1] user" in run("show", f"trip@{log[2]['commit']}").stdout
    assert_one_line_error(run("show", session_id, "--at", "~9", ok=False), "saves")
    assert_one_line_error(run("show", session_id, "--at", "nope", ok=False))


# ---- log, diff ----------------------------------------------------------------------------
def test_log_prints_one_line_per_save(run: Cli) -> None:
    session_id = conversation(run)
    lines = run("log", session_id).stdout.splitlines()
    assert len(lines) == 4
    assert "user: Add a food tour" in lines[0] and "empty session" in lines[-1]
    records = run.json("log", session_id)
    assert [r["message_count"] for r in records] == [3, 2, 1, 0]
    assert lines[0].startswith(records[0]["commit"][:8])
    run("rename", session_id, "renamed")
    assert len(run("log", session_id).stdout.splitlines()) == 5


def test_diff_head_against_previous_save(run: Cli) -> None:
    session_id = conversation(run)
    out = run("diff", session_id).stdout
    assert "+ [3] user: Add a food tour" in out
    assert "1 added, 0 removed, 0 changed, 2 unchanged" in out
    assert run("diff", session_id, "--stat").stdout.strip().endswith(
        "1 added, 0 removed, 0 changed, 2 unchanged")
    stat = run.json("diff", session_id, "--stat")
    assert (stat["added"], stat["unchanged"]) == (1, 2)


def test_diff_between_sessions_and_revisions(run: Cli) -> None:
    parent = conversation(run, "parent")
    child = run("fork", parent, "--at", "2", "--label", "child").stdout.strip()
    run("append", child, "Porto instead")
    out = run("diff", "parent", "child").stdout
    assert "- [3] user: Add a food tour" in out and "+ [3] user: Porto instead" in out
    changes = run.json("diff", "parent", "child")
    assert sorted(c["kind"] for c in changes) == ["added", "removed"]
    # A revision of the first session as the second argument, and SESSION@REV.
    first_save = run.json("log", parent)[-1]["commit"]
    assert run.json("diff", parent, first_save, "--stat")["removed"] == 3
    assert run.json("diff", f"{parent}@~2", parent, "--stat")["added"] == 2
    assert "no message changes" in run("diff", parent, parent).stdout
    assert_one_line_error(run("diff", parent, "nothing-like-this", ok=False), "neither")


def test_diff_marks_edited_messages_as_changed(run: Cli, tmp_path: Path) -> None:
    session_id = run.new()
    run("append", session_id, "--json", input=json.dumps(
        [{"id": "a", "role": "user", "content": "one"}, {"id": "b", "role": "assistant",
                                                         "content": "two"}]))
    messages = messages_of(run, session_id)
    messages[1]["content"] = "TWO"
    store = GitSessionStore(run.repo)
    store.save(session_id, messages)
    store.close()
    out = run("diff", session_id).stdout
    assert "~ [2] assistant: TWO" in out and "was: assistant: two" in out


# ---- fork, tree ---------------------------------------------------------------------------
def test_fork_points_and_git_merge_base(run: Cli, repo: Path) -> None:
    parent = conversation(run)
    messages = messages_of(run, parent)
    by_count = run("fork", parent, "--at", "1").stdout.strip()
    by_message = run("fork", parent, "--at", messages[1]["id"], "--label", "second").stdout.strip()
    by_rev = run("fork", parent, "--at", "~3").stdout.strip()
    whole = run("fork", parent).stdout.strip()
    detached = run("fork", parent, "--detached").stdout.strip()
    counts = {r["id"]: r for r in run.json("list")}
    assert [counts[i]["message_count"] for i in (by_count, by_message, by_rev, whole, detached)] \
        == [1, 2, 0, 3, 0]
    assert counts[by_message]["label"] == "second"
    assert counts[detached]["detached"] and counts[detached]["parent_id"] == parent
    base = git("--git-dir", str(repo), "merge-base", f"refs/heads/sessions/{parent}",
               f"refs/heads/sessions/{by_count}").strip()
    assert base == run.json("log", parent)[2]["commit"]
    assert_one_line_error(run("fork", parent, "--at", "99", ok=False), "outside")


def test_tree_indents_children_under_parents(run: Cli) -> None:
    parent = run.new("root")
    run("append", parent, "hello")
    child = run("fork", parent, "--label", "kid").stdout.strip()
    grandchild = run("fork", child, "--label", "grandkid").stdout.strip()
    other = run.new("other")
    lines = run("tree").stdout.splitlines()
    index = {line.strip("│ ├└─"): i for i, line in enumerate(lines)}
    parent_line = next(i for k, i in index.items() if k.startswith(parent[:8]))
    child_line = lines[parent_line + 1]
    assert child_line.startswith("└─ " + child[:8]) and "kid" in child_line
    assert lines[parent_line + 2].startswith("   └─ " + grandchild[:8])
    assert any(line.startswith(other[:8]) for line in lines)
    records = run.json("tree")
    assert {r["id"]: r["depth"] for r in records} == {parent: 0, child: 1, grandchild: 2, other: 0}



def test_tree_of_a_thousand_deep_fork_chain(run: Cli, repo: Path) -> None:
    store = GitSessionStore(repo, auto_pack=False)
    chain = ["root"]
    store.save("root", [{"role": "user", "content": "hi"}])
    for depth in range(1, 1000):
        chain.append(store.fork(chain[-1], f"f{depth}"))
    store.close()
    records = run.json("tree")
    assert [r["id"] for r in records] == chain
    assert [r["depth"] for r in records] == list(range(1000))
    lines = run("tree").stdout.splitlines()
    assert len(lines) == 1000 and lines[-1].endswith("f999  (1 message)")
    assert lines[2] == "   └─ f2  (1 message)"


def test_fork_at_a_non_ascii_digit_is_a_clean_error(run: Cli) -> None:
    session_id = conversation(run)
    assert_one_line_error(run("fork", session_id, "--at", "\u00b2", ok=False), "\u00b2")
    assert len(run.json("list")) == 1


# ---- rename, delete, restore --------------------------------------------------------------
def test_rename_delete_list_all_restore(run: Cli) -> None:
    session_id = conversation(run)
    run("rename", session_id[:6], "new name")
    assert run.json("list")[0]["label"] == "new name"
    assert "Deleted" in run("delete", "new name").stdout
    assert run.json("list") == []
    everything = run.json("list", "--all")
    assert [(r["id"], r["deleted"]) for r in everything] == [(session_id, True)]
    table = run("list", "--all").stdout.splitlines()
    assert table[0].split()[-2:] == ["deleted", "version"] and table[1].rstrip().endswith(" 1")
    assert_one_line_error(run("show", session_id, ok=False))
    assert "Restored" in run("restore", session_id[:6]).stdout
    assert [r["id"] for r in run.json("list")] == [session_id]
    assert len(messages_of(run, session_id)) == 3
    assert_one_line_error(run("restore", session_id, ok=False), "no deleted session")



def test_trash_versions_restore_as_and_purge(run: Cli, tmp_path: Path) -> None:
    session_id = conversation(run)  # 3 messages
    run("delete", session_id)
    source = tmp_path / "t.json"
    source.write_text(json.dumps([{"role": "user", "content": "hi"}] * 4))
    run("import", str(source), "--id", session_id)
    run("delete", session_id)  # versions, newest first: 4 messages, then 3
    deleted = run.json("list", "--deleted")
    assert [(r["id"], r["message_count"], r["version"]) for r in deleted] == \
        [(session_id, 4, 1), (session_id, 3, 2)]
    assert all(r["deleted"] and r["deleted_at"] for r in deleted)
    table = run("list", "--deleted").stdout
    assert "version" in table.splitlines()[0] and len(table.splitlines()) == 3
    assert_one_line_error(run("restore", session_id, "--version", "5", ok=False), "version")
    # an older version comes back with --version
    run("restore", session_id, "--version", "2")
    assert len(messages_of(run, session_id)) == 3
    # with a live session of that id, list --all still shows the trashed version
    everything = run.json("list", "--all")
    assert sorted((r["deleted"], r["message_count"]) for r in everything
                  if r["id"] == session_id) == [(False, 3), (True, 4)]
    # the advice names a way that works, and it works
    result = run("restore", session_id, ok=False)
    assert_one_line_error(result, "restore --as NEW_ID")
    assert "rename" not in result.stderr
    assert run("restore", session_id, "--as", "older-copy").stdout.strip() == \
        f"Restored {session_id} as older-copy"
    assert len(messages_of(run, "older-copy")) == 4
    assert run.json("list", "--deleted") == []
    # purge forgets deleted versions for good
    run("delete", "older-copy")
    run("delete", session_id)
    assert_one_line_error(run("purge", ok=False), "--all")
    assert "Purged 1 deleted version" in run("purge", "older-copy").stdout
    assert [r["id"] for r in run.json("list", "--deleted")] == [session_id]
    assert "Purged 1 deleted version" in run("purge", "--all").stdout
    assert run.json("list", "--deleted") == []


def test_restore_as_an_existing_id_is_refused(run: Cli) -> None:
    kept = run.new("kept")
    gone = run.new("gone")
    run("delete", gone)
    assert_one_line_error(run("restore", gone, "--as", kept, ok=False), "exists")
    assert [r["id"] for r in run.json("list", "--deleted")] == [gone]


# ---- append -------------------------------------------------------------------------------
def test_append_text_and_stdin(run: Cli) -> None:
    session_id = run.new()
    ids = run("append", session_id, "hello").stdout.split()
    run("append", session_id, "--json", input=json.dumps(
        {"role": "assistant", "content": "hi", "id": "keep-me"}))
    two = run("append", session_id, "--json", input=json.dumps(
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])).stdout.split()
    run("append", session_id, "--role", "assistant", input="plain text\n")
    messages = messages_of(run, session_id)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "assistant"]
    assert messages[0]["content"] == [{"type": "text", "text": "hello"}]
    assert messages[0]["id"] == ids[0] and messages[1]["id"] == "keep-me"
    assert [m["id"] for m in messages[2:4]] == two and len(two[0]) == 32
    assert all(isinstance(m["timestamp"], int) and m["timestamp"] > 1e12 for m in messages)
    assert messages[4]["content"][0]["text"] == "plain text"
    assert len(run.json("log", session_id)) == 5
    result = run("append", session_id, "--json", input="not json", ok=False)
    assert_one_line_error(result, "JSON")


def test_append_text_is_text_and_json_is_messages(run: Cli) -> None:
    session_id = run.new()
    as_text = json.dumps({"role": "system", "note": "no content"})
    run("append", session_id, "--role", "assistant", input=as_text)
    run("append", session_id, input="plain stdin, no --role\n")
    run("append", session_id, "--role", "tool", "tool output")
    messages = messages_of(run, session_id)
    assert [m["role"] for m in messages] == ["assistant", "user", "tool"]
    assert messages[0]["content"] == [{"type": "text", "text": as_text}]
    assert messages[1]["content"][0]["text"] == "plain stdin, no --role"
    help_text = " ".join(run("append", "--help").stdout.split())
    assert "--json" in help_text and "tool" in help_text and "default: user" in help_text


@pytest.mark.parametrize("args, stdin, fragment", [
    (["--json"], "{}", "role"),
    (["--json"], json.dumps({"role": "wizard", "content": "x"}), "wizard"),
    (["--json"], json.dumps([{"role": "user", "content": "ok"}, {"role": "user"}]), "content"),
    (["--json"], json.dumps({"role": "user", "content": ""}), "empty"),
    (["--json"], "[]", "no messages"),
    (["--json", "--role", "user"], json.dumps({"role": "user", "content": "x"}), "--role"),
    ([""], None, "empty"),
    (["   "], None, "empty"),
    ([], "", "empty"),
])
def test_append_refuses_empty_and_invalid_messages(run: Cli, args: list[str], stdin: str | None,
                                                   fragment: str) -> None:
    session_id = run.new()
    before = run.json("log", session_id)
    result = run("append", session_id, *args, input=stdin, ok=False)
    if "--role" in args:  # a usage error: usage line, then the error
        assert result.exit_code == 2 and fragment in result.stderr.splitlines()[-1]
    else:
        assert_one_line_error(result, fragment)
    assert run.json("log", session_id) == before


# ---- chat ---------------------------------------------------------------------------------
def test_chat_with_the_echo_provider(run: Cli) -> None:
    session_id = run.new("chatty")
    result = run("chat", session_id, input="hello\n\n/exit\nnot sent\n")
    assert result.stdout == "Echo: hello\n"
    messages = messages_of(run, session_id)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["content"][0]["text"] == "Echo: hello"
    assert run.json("list")[0]["provider"] == "echo"


def test_chat_new_and_usage_errors(run: Cli) -> None:
    result = run("chat", "--new", "--label", "fresh", input="one\ntwo\n")
    assert result.stdout == "Echo: one\nEcho: two\n"
    (record,) = run.json("list")
    assert record["label"] == "fresh" and record["message_count"] == 4
    assert run("chat", ok=False).exit_code == 2
    assert run("chat", record["id"], "--new", ok=False).exit_code == 2


def test_chat_openai_without_a_model_is_one_error_line(run: Cli) -> None:
    session_id = run.new()
    assert_one_line_error(run("chat", session_id, "--provider", "openai", input="hi\n", ok=False),
                          "model")



def test_chat_keeps_typed_text_when_another_writer_appends(run: Cli, repo: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionsgit.providers import EchoProvider
    session_id = run.new("busy")
    original = EchoProvider.complete
    calls = []

    def interfering(self, messages):
        calls.append(1)
        if len(calls) == 2:  # while "two" is being answered, another process appends
            other = GitSessionStore(repo)
            current = other.load(session_id)
            other.save(session_id, current.messages + [
                {"role": "user", "content": [{"type": "text", "text": "from elsewhere"}]}])
            other.close()
        return original(self, messages)

    monkeypatch.setattr(EchoProvider, "complete", interfering)
    result = run("chat", session_id, input="one\ntwo\nthree\n")
    assert result.stdout == "Echo: one\nEcho: two\nEcho: three\n"
    assert "changed by another writer" in result.stderr and "appended" in result.stderr
    texts = [m["content"][0]["text"] for m in messages_of(run, session_id)]
    assert texts == ["one", "Echo: one", "from elsewhere", "two", "Echo: two", "three",
                     "Echo: three"]


def _openai_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("OPENAI_MODEL", "some-model")


def test_chat_provider_errors_keep_the_prompts(run: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    _openai_unreachable(monkeypatch)
    result = run("chat", "--new", "--label", "offline", input="first\nsecond\n", ok=False)
    banner, error = result.stderr.strip().splitlines()
    assert banner.startswith("Session ") and result.exit_code == 1
    for fragment in ("Error: 2 of 2 prompts got no reply", "saved", "cannot reach"):
        assert fragment in error
    (record,) = run.json("list")
    assert record["label"] == "offline"
    assert [m["content"][0]["text"] for m in messages_of(run, record["id"])] == \
        ["first", "second"]


def test_chat_usage_and_model_errors_say_what_to_do(run: Cli,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    result = run("chat", "--new", "my label", ok=False)
    assert result.exit_code == 2 and "--label" in result.stderr
    assert "give a SESSION to continue, or --new" not in result.stderr
    session_id = run.new()
    result = run("chat", session_id, "--provider", "openai", input="hi\n", ok=False)
    assert_one_line_error(result, "--model", "OPENAI_MODEL")
    assert "model=" not in result.stderr
    assert messages_of(run, session_id) == []


# ---- export, import -----------------------------------------------------------------------
def test_export_json_import_round_trip(run: Cli, tmp_path: Path) -> None:
    session_id = run.new("exported")
    run("append", session_id, "--json", input=json.dumps(TOOL_MESSAGES))
    out = tmp_path / "s.json"
    run("export", session_id, "--output", str(out))
    assert json.loads(out.read_text()) == json.loads(run("export", session_id).stdout)
    other = Cli(tmp_path / "other")
    other("init")
    assert other("import", str(out)).stdout.strip() == session_id
    original = json.loads(out.read_text())
    imported = json.loads(other("export", session_id).stdout)
    assert imported["messages"] == original["messages"]
    for key in ("label", "created_at", "updated_at", "message_count"):
        assert imported["metadata"][key] == original["metadata"][key]
    assert_one_line_error(other("import", str(out), ok=False), "already exists")
    copy_id = other("import", str(out), "--id", "copy-1", "--label", "copy").stdout.strip()
    assert copy_id == "copy-1" and messages_of(other, "copy") == original["messages"]


def test_export_jsonl_round_trip(run: Cli, tmp_path: Path) -> None:
    session_id = conversation(run, "lines")
    text = run("export", session_id, "--format", "jsonl").stdout
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["type"] == "session" and lines[0]["id"] == session_id
    assert len(lines) == 4 and all("role" in line for line in lines[1:])
    path = tmp_path / "s.jsonl"
    path.write_text(text)
    other = Cli(tmp_path / "other")
    other("init")
    other("import", str(path))
    assert messages_of(other, session_id) == messages_of(run, session_id)
    assert other.json("list")[0]["label"] == "lines"
    # Without the .jsonl suffix, and from stdin.
    path.rename(tmp_path / "s.txt")
    other("import", str(tmp_path / "s.txt"), "--id", "again")
    other("import", "-", "--id", "stdin", input=text)
    expected = messages_of(run, session_id)
    assert messages_of(other, "again") == messages_of(other, "stdin") == expected


def test_export_markdown_and_yaml(run: Cli) -> None:
    session_id = conversation(run, "md")
    assert run("export", session_id, "--format", "markdown").stdout.startswith("# md\n")
    assert yaml.safe_load(run("export", session_id, "--format", "yaml").stdout)["id"] == session_id


def test_import_plain_message_array_and_bad_files(run: Cli, tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps([{"role": "user", "content": "x"}]))
    (session_id,) = run("import", str(plain), "--label", "plain").stdout.split()
    assert messages_of(run, "plain") == [{"role": "user", "content": "x"}]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert_one_line_error(run("import", str(bad), ok=False), "not valid JSON")
    assert_one_line_error(run("import", str(tmp_path / "missing.json"), ok=False),
                          "No such file")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"hello": 1}))
    assert_one_line_error(run("import", str(wrong), ok=False), "messages")
    assert_one_line_error(run("import", str(plain), "--id", "bad\tid", ok=False), "invalid")


def _npm_file(directory: Path, session_id: str, messages: list[dict[str, Any]],
              **metadata: Any) -> None:
    meta = {"created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-02T00:00:00.000Z",
            "message_count": len(messages), **metadata}
    (directory / f"{session_id}.json").write_text(json.dumps({"metadata": meta,
                                                               "messages": messages}))


def _msg(message_id: str, role: str = "user") -> dict[str, Any]:
    return {"id": message_id, "role": role, "content": [{"type": "text", "text": message_id}],
            "timestamp": 1700000000000}


def test_import_npm_directory_keeps_forks_as_git_forks(run: Cli, repo: Path,
                                                       tmp_path: Path) -> None:
    npm = tmp_path / "npm-sessions"
    npm.mkdir()
    parent = [_msg("m1"), _msg("m2", "assistant"), _msg("m3"), _msg("m4", "assistant")]
    _npm_file(npm, "parent", parent, label="root")
    # An attached fork holds only its own messages, after the parent's m2.
    _npm_file(npm, "child", [_msg("c1"), _msg("c2", "assistant")], label="branch",
              parent_id="parent", fork_message_id="m2", detached=False,
              created_at="2023-01-01T00:00:00.000Z")
    _npm_file(npm, "loner", [_msg("d1")], parent_id="parent", detached=True)
    (npm / "broken.json").write_text("{")
    result = run("import", str(npm), ok=False)  # all but broken imported; exit 1 says so
    assert result.exit_code == 1 and "skipped broken: damaged" in result.stderr
    assert sorted(result.stdout.split()) == ["child", "loner", "parent"]
    assert "skipped broken" in result.stderr and "Traceback" not in result.output
    assert [m["id"] for m in messages_of(run, "child")] == ["m1", "m2", "c1", "c2"]
    assert [m["id"] for m in messages_of(run, "loner")] == ["d1"]
    records = {r["id"]: r for r in run.json("list")}
    assert records["child"]["label"] == "branch" and records["child"]["parent_id"] == "parent"
    assert records["child"]["fork_message_id"] == "m2"
    assert records["child"]["created_at"] == "2023-01-01T00:00:00.000Z"
    assert records["loner"]["detached"] is True
    base = git("--git-dir", str(repo), "merge-base", "refs/heads/sessions/parent",
               "refs/heads/sessions/child").strip()
    # the fork point is the parent's save holding exactly m1, m2, not its later head
    assert base == [r["commit"] for r in run.json("log", "parent") if r["message_count"] == 2][0]
    assert base != run.json("log", "parent")[0]["commit"]
    assert git("--git-dir", str(repo), "merge-base", "refs/heads/sessions/parent",
               "refs/heads/sessions/loner", check=False).strip() == ""
    assert [line.strip("│ ├└─").split()[0] for line in run("tree").stdout.splitlines()][:2] == \
        ["parent", "child"]
    again = run("import", str(npm), "--skip-damaged")
    assert again.stdout == "" and "already in the repository" in again.stderr
    assert_one_line_error(run("import", str(npm), "--id", "x", ok=False), "single file")


def test_import_of_a_directory_without_sessions_is_an_error(run: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run("import", str(empty), ok=False), "no session files")


def test_no_progress_bar_when_stderr_is_not_a_terminal(run: Cli, tmp_path: Path) -> None:
    npm = tmp_path / "npm"
    npm.mkdir()
    _npm_file(npm, "one", [_msg("m1")])
    result = run("import", str(npm))
    assert result.stderr == ""


# ---- gc, remotes --------------------------------------------------------------------------
def test_gc(run: Cli) -> None:
    conversation(run)
    assert isinstance(run.json("gc"), dict)
    assert run("gc").stdout.strip()


def test_remote_push_pull(run: Cli, tmp_path: Path) -> None:
    pytest.importorskip("sessionsgit.sync")
    remote = tmp_path / "remote.git"
    git("init", "--bare", "-q", str(remote))
    session_id = conversation(run, "shared")
    run("remote", "add", "origin", str(remote))
    assert run.json("remote", "list") == [{"name": "origin", "url": str(remote)}]
    pushed = run.json("push")
    assert session_id in json.dumps(pushed)
    assert run("push", "origin", "shared").stdout.strip()
    other = Cli(tmp_path / "other")
    other("init")
    other("remote", "add", "origin", str(remote))
    other("pull")
    assert messages_of(other, session_id) == messages_of(run, session_id)
    assert run("sync").stdout.strip()
    run("remote", "remove", "origin")
    assert run.json("remote", "list") == []



def test_push_pull_output_and_help_say_what_happened(run: Cli, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git("init", "--bare", "-q", str(remote))
    session_id = conversation(run, "shared")
    pushed = run.json("push", str(remote))  # a path, as git accepts
    assert pushed["pushed"] == [session_id]
    assert all(isinstance(value, list) for value in pushed.values())
    assert run.json("push", str(remote))["unchanged"] == [session_id]
    other = Cli(tmp_path / "other")
    other("init")
    other("remote", "add", "origin", str(remote))
    other("pull")
    run("append", session_id, "mine")
    other("append", session_id, "theirs")
    other("push")
    text = run("pull", str(remote)).stdout
    assert "pushed" not in text and "diverged 1" in text
    fork = next(r["id"] for r in run.json("list") if r["parent_id"] == session_id)
    line = next(line for line in text.splitlines() if "diverged:" in line)
    assert "remote version" in line and f"local continuation is now fork {fork}" in line
    assert messages_of(run, fork)[-1]["content"][0]["text"] == "mine"
    assert "fetched" not in run("push", str(remote)).stdout
    help_text = " ".join(run("pull", "--help").stdout.split())
    assert "the remote one becomes a fork" not in help_text
    assert "local continuation" in help_text


def test_push_to_a_missing_path_says_git_init_bare(run: Cli, tmp_path: Path) -> None:
    conversation(run)
    assert_one_line_error(run("push", str(tmp_path / "new.git"), ok=False), "git init --bare")



def test_a_plain_git_clone_says_how_to_get_its_sessions(run: Cli, tmp_path: Path) -> None:
    session_id = conversation(run, "cloned")
    clone = tmp_path / "clone"
    git("clone", "-q", str(run.repo), str(clone))
    cloned = Cli(clone)
    result = cloned("list")
    assert "No sessions." in result.stdout
    hint = " ".join(result.stderr.split())
    assert "1 session" in hint and "refs/remotes/origin/sessions/" in hint
    assert "sessionsgit pull origin" in hint and "git clone --mirror" in hint
    assert "sessionsgit pull origin" in " ".join(cloned("tree").stderr.split())
    cloned("pull", "origin")
    assert [r["id"] for r in cloned.json("list")] == [session_id]
    assert messages_of(cloned, session_id) == messages_of(run, session_id)
    mirror = tmp_path / "mirror.git"
    git("clone", "-q", "--mirror", str(run.repo), str(mirror))
    assert [r["id"] for r in Cli(mirror).json("list")] == [session_id]


def test_install_diff_driver(run: Cli) -> None:
    pytest.importorskip("sessionsgit.sync")
    run("init")
    assert run("install-diff-driver").stdout.strip()


def test_install_diff_driver_uses_the_entry_point_and_says_what_it_edits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import sys
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "sessionsgit").exists()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    code = tmp_path / "code"
    git("init", "-q", str(code))
    run = Cli(code)
    session_id = run.new("in a code repo")
    run("append", session_id, "hello")
    out = run("install-diff-driver").stdout
    assert git("-C", str(code), "config", "diff.sessionsgit.textconv").strip() == \
        "sessionsgit textconv"
    assert sys.executable not in out
    assert str(code / ".git" / "config") in out and str(code / ".git" / "info" / "attributes") in out
    assert "working tree" in out and "session.json" in out
    shown = git("-C", str(code), "log", "-p", f"refs/heads/sessions/{session_id}")
    assert "+user:" in shown and "+hello" in shown



def test_importing_a_fork_whose_parent_is_present_makes_a_git_fork(run: Cli, repo: Path,
                                                                   tmp_path: Path) -> None:
    parent = conversation(run, "parent")
    child = run("fork", parent, "--at", "2").stdout.strip()
    run("append", child, "a different turn")
    exported = tmp_path / "child.json"
    run("export", child, "-o", str(exported))
    run("import", str(exported), "--id", "child-copy")
    assert messages_of(run, "child-copy") == messages_of(run, child)
    base = git("--git-dir", str(repo), "merge-base", f"refs/heads/sessions/{parent}",
               "refs/heads/sessions/child-copy").strip()
    assert base == run.json("log", parent)[1]["commit"]


# ---- environment --------------------------------------------------------------------------
def test_test_helpers_in_child_processes_leave_no_home_folders(tmp_path: Path) -> None:
    """A spawned child that imports tests.conftest (multiprocessing workers do) must reuse the
    session's isolated home, not make a new /tmp/sessionsgit-test-home-* it never removes."""
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[1]
    env = {**__import__("os").environ, "TMPDIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", "import tests.conftest"], cwd=root, env=env,
                   check=True)
    assert list(tmp_path.glob("sessionsgit-test-home-*")) == []


def test_a_missing_save_is_one_line_not_a_traceback(run: Cli, repo: Path) -> None:
    session_id = conversation(run)
    commits = [r["commit"] for r in run.json("log", session_id)]
    loosen(repo)
    (repo / "objects" / commits[1][:2] / commits[1][2:]).unlink()
    for args in (["log", session_id], ["diff", session_id], ["show", f"{session_id}@~3"]):
        assert_one_line_error(run(*args, ok=False), "is damaged", commits[1][:8])
    assert run("fork", session_id, "--at", "1").stdout.strip()
