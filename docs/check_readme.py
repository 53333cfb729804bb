"""Run the README's shell commands in order, in a fresh folder, and fail on the first that fails.

Usage (from anywhere; the package must be installed)::

    python docs/check_readme.py            # every command
    python docs/check_readme.py --list     # only print what would run

The commands are the lines of the README's ``bash`` code blocks (a trailing backslash continues
a line). Each runs with ``bash -e -c`` in a temporary folder holding a copy of ``scenarios/``,
so ``results/`` starts empty and the repository is not touched. Parts of a line joined by ``&&``
are judged one by one, and three kinds are not run, each for a stated reason: ``pip install``
(CI installs the package and its extras itself; the check refuses to run if ``cmlsim`` is not
installed), ``python -m pytest`` (CI runs the test suite itself) and ``sphinx-build`` (CI builds
the manual itself).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
#: Commands the check does not run, by the start of the command, with the reason.
SKIPPED = {
    "python -m pip install": "CI installs the package and its extras itself",
    "python -m pytest": "CI runs the test suite itself",
    "sphinx-build": "CI builds the manual itself",
}


def commands(text: str) -> list[str]:
    """The command lines of the ``bash`` blocks of a Markdown ``text``, in order."""
    out: list[str] = []
    for block in re.findall(r"^```(?:bash|sh|shell)\n(.*?)^```", text, flags=re.M | re.S):
        pending = ""
        for line in block.splitlines():
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            line = pending + line
            pending = ""
            if line.strip() and not line.lstrip().startswith("#"):
                out.append(line.strip())
    return out


def _strip_comment(command: str) -> str:
    """``command`` without a trailing ``# comment`` (outside quotes)."""
    quote = ""
    for i, ch in enumerate(command):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or command[i - 1].isspace()):
            return command[:i].rstrip()
    return command


def plan(command: str) -> list[tuple[str, str | None]]:
    """The ``&&`` parts of a command line, each with the reason it is skipped (or None)."""
    parts = [p.strip() for p in _strip_comment(command).split("&&")]
    return [(p, next((why for start, why in SKIPPED.items() if p.startswith(start)), None))
            for p in parts if p]  # fmt: skip


def run(readme: Path = README, *, listing: bool = False) -> int:
    """Run every command of ``readme``; 0 if all exit 0, else 1 (the failing one is printed)."""
    try:
        importlib.metadata.version("cmlsim")
    except importlib.metadata.PackageNotFoundError:
        print("check_readme: cmlsim is not installed; run the README's pip command first")
        return 1
    steps = [part for command in commands(readme.read_text(encoding="utf-8"))
             for part in plan(command)]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="cmlsim-readme-") as tmp:
        shutil.copytree(REPO / "scenarios", Path(tmp) / "scenarios")
        env = {**os.environ, "MPLBACKEND": "Agg"}
        for cmd, why in steps:
            if why or listing:
                print(f"skip  {cmd}  ({why})" if why else f"run   {cmd}")
                continue
            start = time.perf_counter()
            done = subprocess.run(["bash", "-e", "-c", cmd], cwd=tmp, env=env,
                                  capture_output=True, text=True)  # fmt: skip
            took = time.perf_counter() - start
            print(f"ok    {cmd}  ({took:.1f} s)" if done.returncode == 0 else f"FAIL  {cmd}")
            if done.returncode != 0:
                print(f"exit code {done.returncode}\n--- stdout\n{done.stdout[-3000:]}"
                      f"\n--- stderr\n{done.stderr[-3000:]}")  # fmt: skip
                return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true", help="print the plan, run nothing")
    ap.add_argument("--readme", type=Path, default=README, help="the Markdown file")
    args = ap.parse_args(argv)
    return run(args.readme, listing=args.list)


if __name__ == "__main__":
    sys.exit(main())
