"""Every package figure in the larger-text styles: no overlapping text, nothing cut off.

The nature style is checked with each figure's own tests and in the gallery; blood (8 pt in an
8 cm column) and poster (18 pt) are where text runs out of room first.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sim.plots.cohort import plot_km, plot_roc, plot_swimmer
from sim.plots.compare import plot_comparison
from sim.plots.immune import plot_immune
from sim.plots.kinetics import plot_kinetics
from sim.plots.trajectory import plot_trajectory, text_problems

TESTS = Path(__file__).resolve().parents[1]


def _load(file: str, name: str):
    spec = importlib.util.spec_from_file_location(f"_{name}", TESTS / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


@pytest.fixture(scope="module")
def run():
    return _load("plots/test_kinetics_immune.py", "with_interferon")(
        _load("test_results.py", "synthetic_result")()
    )


@pytest.fixture(scope="module")
def table():
    return _load("test_outcomes.py", "synthetic_table")(200, seed=2, arm="stop")


FIGURES = {
    "kinetics": lambda run, table, kind: plot_kinetics(run, kind=kind),
    "immune": lambda run, table, kind: plot_immune(run, kind=kind),
    "trajectory": lambda run, table, kind: plot_trajectory(run, kind=kind, width="single"),
    "comparison": lambda run, table, kind: plot_comparison(
        [run, run], labels=["a", "b"], kind=kind, width="single"
    ),
    "km": lambda run, table, kind: plot_km(table, kind=kind),
    "swimmer": lambda run, table, kind: plot_swimmer(table, kind=kind),
    "roc": lambda run, table, kind: plot_roc(table, kind=kind, outcome="event"),
}


@pytest.mark.parametrize(
    ("name", "kind"),
    [(name, "blood") for name in FIGURES]
    + [(name, "poster") for name in ("trajectory", "comparison", "km", "roc")],
)
def test_single_column_text_fits(name, kind, run, table):
    fig = FIGURES[name](run, table, kind)
    overlaps, cut_off = text_problems(fig)
    assert [(a.get_text(), b.get_text()) for a, b in overlaps] == []
    assert [t.get_text() for t in cut_off] == []
