"""Print the installed distributions whose versions differ from ``constraints.txt``.

Information only: CI installs the newest releases the bounds in ``pyproject.toml`` allow, and this
says what changed since the versions recorded the last time CI passed.
"""

from __future__ import annotations

import sys
from importlib.metadata import distributions
from pathlib import Path


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def main(constraints: str) -> None:
    recorded = {}
    for line in Path(constraints).read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and not line.lstrip().startswith("#"):
            recorded[_norm(name)] = version.strip()
    installed = {_norm(d.metadata["Name"]): d.version for d in distributions()}
    lines = [
        f"  {name}: {recorded.get(name, 'not recorded')} -> {version}"
        for name, version in sorted(installed.items())
        if recorded.get(name) != version and name not in ("cmlsim", "pip", "setuptools")
    ]
    if lines:
        print("installed versions that differ from constraints.txt:", *lines, sep="\n")
    else:
        print("installed versions: as recorded in constraints.txt")


if __name__ == "__main__":
    main(sys.argv[1])
