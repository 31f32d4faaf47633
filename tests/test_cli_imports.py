"""The CLI is only a CLI: ``cli.py`` imports nothing but ``sessionsgit`` (its public API and
submodules), click, yaml and the standard library, and starting it loads no yaml, provider,
sync or HTTP code."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import sessionsgit.cli

ALLOWED_THIRD_PARTY = {"click", "yaml"}
#: Modules that ``import sessionsgit.cli`` (what ``--help`` runs) must not load.
NOT_AT_START = ("yaml", "pygit2", "sessionsgit.providers", "sessionsgit.sync",
                "sessionsgit.conversation", "sessionsgit.manager", "sessionsgit.stores.sql",
                "sessionsgit.stores.file", "http.client", "urllib.request")
#: Modules ``sessionsgit list`` must not load (it does load pygit2 and the Git store).
NOT_FOR_LIST = ("yaml", "sessionsgit.providers", "sessionsgit.sync", "sessionsgit.conversation",
                "sessionsgit.manager", "sessionsgit.stores.sql", "sessionsgit.stores.file",
                "sessionsgit.importers", "sessionsgit.transcripts", "http.client",
                "urllib.request")


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` statement in ``path`` names (relative ones as ``.name``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


def test_cli_imports_only_sessionsgit_click_yaml_and_the_stdlib() -> None:
    modules = imported_modules(Path(sessionsgit.cli.__file__))
    outside = sorted(name for name in modules
                     if not name.startswith(".") and name.split(".")[0] != "sessionsgit"
                     and name.split(".")[0] not in ALLOWED_THIRD_PARTY
                     and name.split(".")[0] not in sys.stdlib_module_names)
    assert outside == []
    # nor the stdlib pieces that would mean it does the library's work itself
    assert not {"uuid", "time", "re"} & modules


def test_the_import_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\ndef f():\n    import pygit2\nfrom . import render\n")
    assert imported_modules(sample) == {"os", "pygit2", "."}


def loaded_after(code: str, cwd: Path) -> set[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPROFILEIMPORTTIME"}
    result = subprocess.run([sys.executable, "-c", code + "\nimport sys\n"
                             "print('\\n'.join(sys.modules), file=sys.stderr)"],
                            capture_output=True, text=True, env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return set(result.stderr.split())


def test_importing_the_cli_loads_no_heavy_modules(tmp_path: Path) -> None:
    loaded = loaded_after("import sessionsgit.cli", tmp_path)
    assert "sessionsgit.cli" in loaded
    assert sorted(name for name in NOT_AT_START if name in loaded) == []


def test_list_loads_only_what_it_prints(tmp_path: Path) -> None:
    from sessionsgit import GitSessionStore

    GitSessionStore(tmp_path / "repo").save("one", [{"role": "user", "content": "hi"}])
    loaded = loaded_after(
        "from sessionsgit.cli import cli\n"
        f"cli(['--repo', {str(tmp_path / 'repo')!r}, 'list'], standalone_mode=False)", tmp_path)
    assert "sessionsgit.stores.git" in loaded
    assert sorted(name for name in NOT_FOR_LIST if name in loaded) == []
