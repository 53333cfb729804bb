"""Redraw the manual's figures (``docs/figures/``) from the shipped scenarios.

Each figure comes from the command the manual shows next to it, run into a temporary results
folder; the PNG is then copied here under the name the pages use. Run from any folder::

    python docs/make_figures.py              # every figure but the slow cure figures
    python docs/make_figures.py --cure       # and the two cure figures (jump process, minutes)

``docs/figures/scaling.png`` comes from ``python benchmarks/scaling.py`` (the performance page).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
FIGURES = DOCS / "figures"

#: (command, {file the command writes, relative to the results folder: name under docs/figures}).
JOBS: tuple[tuple[list[str], dict[str, str]], ...] = (
    (
        ["cmlsim", "run", "scenarios/imatinib-eln-stop.toml"],
        {"imatinib-eln-stop/trajectory.png": "imatinib-eln-stop.png"},
    ),
    (
        ["cmlsim", "cohort", "scenarios/cohort-euro-ski.toml", "--size", "2000", "--quiet"],
        {},
    ),
    (
        [
            "cmlsim", "plot", "{results}/cohort-euro-ski", "--kind", "km", "--kind", "roc",
            "--format", "png",
        ],
        {
            "cohort-euro-ski/figures/km.png": "cohort-euro-ski-km.png",
            "cohort-euro-ski/figures/roc.png": "cohort-euro-ski-biomarkers.png",
        },
    ),
    (
        [
            "cmlsim", "compare", "scenarios/baseline-eln-stop.toml",
            "scenarios/ifn-after-stop-12mo.toml", "scenarios/checkpoint-at-first-rise.toml",
            "scenarios/checkpoint-first-6mo.toml",
            "--name", "before-or-after",
        ],
        {"before-or-after/comparison.png": "compare-before-or-after.png"},
    ),
    (
        ["cmlsim", "sweep", "scenarios/sweep-sobol-tfr.toml", "--quiet"],
        {
            "sweep-sobol-tfr/phase.png": "sweep-sobol-tfr-phase.png",
            "sweep-sobol-tfr/indices.png": "sweep-sobol-tfr-indices.png",
        },
    ),
    (
        ["cmlsim", "gallery", "--out", "{results}/gallery"],
        {
            "gallery/kinetics.png": "gallery-kinetics.png",
            "gallery/immune.png": "gallery-immune.png",
            "gallery/phase.png": "gallery-phase.png",
        },
    ),
)  # fmt: skip

CURE_JOBS: tuple[list[str], ...] = (
    [sys.executable, "-m", "sim.plots.cure", str(FIGURES / "cure-vs-scale")],
    [sys.executable, "-m", "sim.plots.cure", "--years", str(FIGURES / "cure-vs-tki-years")],
)


def main(argv: list[str] | None = None) -> int:
    """Run the figure commands and copy their PNGs into ``docs/figures``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cure", action="store_true", help="also the cure figures (slow)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cmlsim-docs-figures-") as tmp:
        for command, copies in JOBS:
            command = [c.replace("{results}", tmp) for c in command]
            if command[1] in ("run", "cohort", "compare", "sweep"):
                command += ["--results", tmp]
            print("$", " ".join(command), flush=True)
            subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
            for written, name in copies.items():
                shutil.copyfile(Path(tmp) / written, FIGURES / name)
                print(f"  -> docs/figures/{name}")
    if args.cure:
        for command in CURE_JOBS:
            print("$", " ".join(command[1:]), flush=True)
            subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
