#!/usr/bin/env python3
"""CLI start-up benchmark: wall time of ``sessionsgit --help`` and ``sessionsgit list`` (on a
repository of 100 sessions) against ``python -c pass`` and ``git for-each-ref``, each run as a
fresh process, interleaved round-robin so machine noise hits all alike. Prints medians, the
ratios, and PASS/MISS against the 100 ms target (``--strict``: exit 1 on a MISS).

    .venv/bin/python tests/bench/bench_startup.py [--runs 30] [--sessions 100] [--strict]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 100.0

# Isolate Git from the user's configuration, as tests/conftest.py does.
_HOME = os.path.join(tempfile.gettempdir(), "sessionsgit-bench-no-home")
ENV = {**os.environ, "HOME": _HOME, "XDG_CONFIG_HOME": os.path.join(_HOME, ".config"),
       "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull,
       "GIT_CONFIG_NOSYSTEM": "1"}
for _name in ("GIT_DIR", "GIT_WORK_TREE", "SESSIONSGIT_REPO", "PYTHONPROFILEIMPORTTIME",
              "PYTHONDONTWRITEBYTECODE"):
    ENV.pop(_name, None)


def make_repository(path: Path, sessions: int) -> None:
    """A repository of ``sessions`` sessions of four messages each, written by the CLI's store."""
    code = ("import sys\nfrom sessionsgit import GitSessionStore\n"
            "store = GitSessionStore(sys.argv[1])\n"
            "for n in range(int(sys.argv[2])):\n"
            "    store.save(f'session-{n:04d}', [{'role': 'user', 'content': f'hi {n} {k}'}\n"
            "               for k in range(4)], {'label': f'label {n}'})\n")
    subprocess.run([sys.executable, "-c", code, str(path), str(sessions)], env=ENV, check=True)


def cli_command() -> list[str]:
    """The installed ``sessionsgit`` script beside this Python, else ``python -m sessionsgit``."""
    script = Path(sys.executable).with_name("sessionsgit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sessionsgit"]


def wall_ms(argv: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = (time.perf_counter() - start) * 1000
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {result.stderr.decode(errors='replace')}")
    return elapsed


def measure(runs: int, sessions: int) -> dict[str, list[float]]:
    """{command name: wall ms of each run}, interleaved round-robin after two warm-up rounds."""
    scratch = Path(tempfile.mkdtemp(prefix="sessionsgit-bench-startup-"))
    # measured as an installed package runs: with bytecode caches (written by the warm-up runs
    # under the scratch directory, whatever PYTHONDONTWRITEBYTECODE says, and removed after)
    ENV["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    try:
        repo = scratch / "repo"
        make_repository(repo, sessions)
        cli = cli_command()
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "git for-each-ref": ["git", "--git-dir", str(repo), "for-each-ref",
                                 "refs/heads/sessions/"],
            "sessionsgit --help": [*cli, "--help"],
            f"sessionsgit list ({sessions} sessions)": [*cli, "--repo", str(repo), "list"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        names = list(commands)
        for _ in range(2):  # warm the page cache and write the .pyc files
            for argv in commands.values():
                wall_ms(argv)
        for run in range(runs):
            order = names[run % len(names):] + names[:run % len(names)]
            for name in order:
                times[name].append(wall_ms(commands[name]))
        return times
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="runs of each command (default 30)")
    parser.add_argument("--sessions", type=int, default=100, help="sessions in the repository")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a command misses")
    args = parser.parse_args()
    times = measure(args.runs, args.sessions)
    names = list(times)
    median = {name: statistics.median(values) for name, values in times.items()}
    python_ms, git_ms = median["python -c pass"], median["git for-each-ref"]
    print(f"CLI start-up, median of {args.runs} runs each (min in brackets):")
    missed = False
    for name in names:
        line = f"  {name:<32} {median[name]:7.1f} ms  [{min(times[name]):6.1f}]"
        if name.startswith("sessionsgit"):
            verdict = "PASS" if median[name] < TARGET_MS else "MISS"
            missed |= verdict == "MISS"
            line += (f"  {median[name] / python_ms:4.1f}x python, {median[name] / git_ms:4.1f}x "
                     f"git   {verdict} (< {TARGET_MS:.0f} ms)")
        print(line)
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
