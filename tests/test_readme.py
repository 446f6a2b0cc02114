"""Every code block of README.md runs, in order, as a reader would paste it.

Python blocks (``>>>``) run as doctests in one namespace; shell blocks (lines starting
``$ ``) run the command and compare its output (``...`` matches anything). Both run in a
fresh folder that holds a link to the checkout's ``tests/`` folder, so README paths such as
``tests/data/...`` resolve as they do from the repository root. The command overview block
must list exactly the commands the program has.
"""

from __future__ import annotations

import doctest
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.REPORT_ONLY_FIRST_FAILURE


def _blocks() -> list[tuple[int, str, str]]:
    text = README.read_text()
    return [(text[:m.start()].count("\n") + 1, m.group(1), m.group(2))
            for m in FENCE.finditer(text)]


def _shell_steps(body: str) -> list[tuple[str, str]]:
    """``[(command, expected output), ...]`` of a block of ``$ `` lines."""
    steps: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
    return [(cmd, "\n".join(out).strip() + "\n") for cmd, out in steps]


def _run_shell(cmd: str, cwd: Path) -> str:
    argv = shlex.split(cmd)
    assert argv[0] == "voxzarr", f"README shell lines run voxzarr only: {cmd}"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    res = subprocess.run([sys.executable, "-m", "voxzarr.cli", *argv[1:]], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{cmd!r} exited {res.returncode}:\n{res.stderr}"
    return res.stdout


def test_readme_runs_in_order(tmp_path, monkeypatch):
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    monkeypatch.chdir(tmp_path)
    globs: dict[str, object] = {"__name__": "README"}
    parser = doctest.DocTestParser()
    checker = doctest.OutputChecker()
    failures: list[str] = []
    ran = 0
    for line, _lang, body in _blocks():
        if ">>>" in body:
            test = parser.get_doctest(body, globs, f"README.md:{line}", str(README), line)
            runner = doctest.DocTestRunner(optionflags=FLAGS | doctest.FAIL_FAST)
            out: list[str] = []
            runner.run(test, out=out.append, clear_globs=False)
            globs.update(test.globs)  # DocTest works on a copy: carry names to the next block
            ran += 1
            if runner.failures:
                failures.append("".join(out))
                break  # later blocks build on this one
        elif body.lstrip().startswith("$ "):
            for cmd, want in _shell_steps(body):
                got = _run_shell(cmd, tmp_path)
                ran += 1
                if want.strip() and not checker.check_output(want, got, FLAGS):
                    failures.append(f"README.md:{line}: {cmd}\nexpected:\n{want}\ngot:\n{got}")
    assert not failures, "\n".join(failures)
    assert ran >= 8


def test_readme_lists_every_command():
    from voxzarr.cli import build_parser

    listed: set[str] = set()
    for _, _, body in _blocks():
        names = re.findall(r"^voxzarr ([a-z-]+) ", body, re.M)
        if len(names) > 5:
            listed = set(names)
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    assert listed == commands, f"README lists {sorted(listed)}, the program has {sorted(commands)}"


@pytest.mark.parametrize("name", ["make demo", "make test"])
def test_readme_opens_with_the_two_setup_commands(name):
    first = _blocks()[0][2]
    assert name in first
