"""The README as a front door: short, the two commands first, links that resolve, and figure
commands that only use folders an earlier README command writes. ``docs/check_readme.py`` runs
the commands themselves (CI calls it); these checks are static and fast."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "docs"))

import check_readme  # noqa: E402

from sim import scenario  # noqa: E402

README = (REPO / "README.md").read_text(encoding="utf-8")
FIRST_TWO = (
    "python -m pip install -e . && cmlsim run scenarios/imatinib-eln-stop.toml",
    'python -m pip install -e ".[dev]" && python -m pytest -q',
)


def test_readme_is_a_front_door():
    assert len(README.splitlines()) <= 150
    # no lab notebook: machine load, diaries, timings "here", the old benchmark flag
    for pattern in (r"load average", r"In progress", r"\bms per\b", r"\bhere\)", r"--readme"):
        assert not re.search(pattern, README), pattern


def test_the_two_commands_come_first():
    first = check_readme.commands(README)[:2]
    assert [check_readme._strip_comment(c) for c in first] == list(FIRST_TWO)
    head = README.split("```bash\n", 1)
    assert "\n\n" not in head[0].strip()  # only the title stands above them


def test_commands_are_extracted_with_continuations_and_without_comments():
    text = "x\n```bash\n# a comment\ncmlsim run a.toml \\\n    --overwrite   # why\n\n```\n"
    text += "```\nnot run\n```\n```bash\npython -m pip install -e . && cmlsim models\n```\n"
    cmds = check_readme.commands(text)
    assert cmds == ["cmlsim run a.toml      --overwrite   # why",
                    "python -m pip install -e . && cmlsim models"]  # fmt: skip
    assert check_readme.plan(cmds[0]) == [("cmlsim run a.toml      --overwrite", None)]
    (pip, why), (models, none) = check_readme.plan(cmds[1])
    assert pip.startswith("python -m pip") and why and none is None and models == "cmlsim models"
    assert check_readme.plan('cmlsim x "a # b"') == [('cmlsim x "a # b"', None)]


def _writes(command: list[str]) -> str | None:
    """The results folder a cmlsim command writes, or None."""
    if command[:2] in (["cmlsim", "run"], ["cmlsim", "cohort"], ["cmlsim", "sweep"]):
        return scenario.load(REPO / command[2]).name
    if command[:2] == ["cmlsim", "compare"] and "--name" in command:
        return command[command.index("--name") + 1]
    return None


def test_figure_commands_use_only_folders_written_before_them():
    written: set[str] = set()
    plots = 0
    for line in check_readme.commands(README):
        for part, why in check_readme.plan(line):
            words = shlex.split(part)
            if words[:2] == ["cmlsim", "plot"]:
                plots += 1
                folder = Path(words[2])
                assert folder.parent == Path("results"), part
                assert folder.name in written, f"{part}: nothing above writes {folder}"
            elif why is None and (name := _writes(words)):
                written.add(name)
    assert plots >= 2


@pytest.mark.parametrize("target", re.findall(r"\]\(((?:docs|scenarios)/[^)#]*)\)", README))
def test_readme_links_resolve(target):
    assert (REPO / target).exists(), target


def test_the_figure_is_in_the_repository():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert len(images) == 1 and (REPO / images[0]).is_file()
