"""Every figure type the package draws passes the generic checks of ``figure_checks``: panel
letters on every panel, legend swatches that match the drawn artists, axis labels with names
and units, readable tick labels. The checks themselves are shown to find each kind of fault."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from figure_checks import (
    axis_label_problems,
    figure_problems,
    legend_colour_problems,
    panel_letter_problems,
    tick_label_problems,
)
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from sim.plots.style import use_style

TESTS = Path(__file__).resolve().parents[1]


def _from_file(filename: str, name: str):
    # tests/ is not a package: load the synthetic inputs of the other test files by path
    spec = importlib.util.spec_from_file_location(f"_synthetic_{filename[:-3]}", TESTS / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


@pytest.fixture(scope="module")
def run():
    return _from_file("test_results.py", "synthetic_result")()


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    synthetic_table = _from_file("test_outcomes.py", "synthetic_table")
    a = synthetic_table(300, seed=1, arm="no interferon")
    b = synthetic_table(300, seed=1, arm="interferon", rate=0.03)
    return pd.concat([a, b], ignore_index=True)


def _kinetics(run, table):
    from sim.plots.kinetics import plot_kinetics

    return plot_kinetics(run)


def _immune(run, table):
    from sim.plots.immune import plot_immune

    return plot_immune(run)


def _trajectory(run, table):
    from sim.plots.trajectory import plot_trajectory

    return plot_trajectory(run)


def _comparison(run, table):
    from sim.plots.compare import plot_comparison

    relapsing = _from_file("test_results.py", "synthetic_result")("synthetic-relapse")
    return plot_comparison([run, relapsing])


def _km(run, table):
    from sim.plots.cohort import plot_km

    return plot_km(table)


def _km_one_arm(run, table):
    from sim.plots.cohort import plot_km

    return plot_km(table[table["arm"] == "interferon"])


def _swimmer(run, table):
    from sim.plots.cohort import plot_swimmer

    return plot_swimmer(table)


def _roc(run, table):
    from sim.plots.cohort import plot_roc

    return plot_roc(table, outcome="event")


def _phase(run, table):
    from sim.plots.sweep import plot_phase_diagram

    phase_dataset = _from_file("plots/test_sweep_plots.py", "phase_dataset")
    return plot_phase_diagram(phase_dataset(), "s_N", "stop_at", bins=4)


def _indices(run, table):
    from sim import sensitivity
    from sim.plots.sweep import plot_indices
    from sim.scenario import Sweep, SweepParam
    from sim.sweep import design

    params = tuple(SweepParam(f"x{i}", f"x{i}", -math.pi, math.pi) for i in (1, 2, 3))
    X = design.design_values(Sweep("sobol", params, n=64), seed=1)
    Y = np.sin(X[:, 0]) + 7 * np.sin(X[:, 1]) ** 2 + 0.1 * X[:, 2] ** 4 * np.sin(X[:, 0])
    t = sensitivity.sobol_indices(Y, ["x1", "x2", "x3"])
    t.insert(0, "output", "ishigami")
    return plot_indices(t)


FIGURES = {
    "kinetics": _kinetics,
    "immune": _immune,
    "trajectory": _trajectory,
    "comparison": _comparison,
    "km": _km,
    "km one arm": _km_one_arm,
    "swimmer": _swimmer,
    "roc": _roc,
    "phase": _phase,
    "indices": _indices,
}


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_figure_passes_the_checks(name, run, table):
    fig = FIGURES[name](run, table)
    problems = figure_problems(fig)
    assert not problems, "\n".join(problems)


# ---- the checks find what they are meant to find ------------------------------------------


def _figure(n_axes: int = 2) -> tuple[Figure, list]:
    with use_style("nature"):
        fig = Figure(figsize=(3, 3))
        FigureCanvasAgg(fig)
        axes = fig.subplots(n_axes, 1)
    return fig, list(np.atleast_1d(axes))


def test_a_panel_without_its_letter_is_found():
    fig, (a, b) = _figure()
    for ax in (a, b):
        ax.plot([0, 1], [0, 1])
    b.set_ylabel("second")
    with use_style("nature"):  # letters are bold in the package style
        a.set_title("a")
        assert panel_letter_problems(fig) == ["panel of axes 'second': 0 panel letters []"]
        b.set_title("b")
        assert panel_letter_problems(fig) == []
        b.set_title("c")
        assert panel_letter_problems(fig) == ["panel letters ['a', 'c'], expected ['a', 'b']"]
        b.set_title("b", fontweight="normal")  # a title, not a panel letter
        assert panel_letter_problems(fig) == ["panel of axes 'second': 0 panel letters []"]


def test_a_single_panel_needs_no_letter_and_a_marked_strip_joins_its_panel():
    from sim.plots.style import mark_panel

    fig, (strip, main) = _figure()
    strip.bar([0], [1])
    main.plot([0, 1], [0, 1])
    assert panel_letter_problems(fig) != []  # two panels, no letters
    mark_panel(strip, main)
    assert panel_letter_problems(fig) == []  # one panel: no letter needed


def test_a_legend_swatch_of_a_colour_drawn_nowhere_is_found():
    fig, (ax,) = _figure(1)
    ax.pcolormesh(np.array([[0.0, 0.2], [0.1, 0.3]]), cmap="cividis", vmin=0, vmax=1)
    ax.legend(handles=[Patch(facecolor="0.55", label="relapse")])
    assert legend_colour_problems(fig) == [
        "legend entry 'relapse': colour #8c8c8c is drawn nowhere"
    ]
    ax.get_legend().remove()
    from matplotlib import colormaps

    ax.legend(handles=[Patch(facecolor=colormaps["cividis"](0.2), label="relapse")])
    assert legend_colour_problems(fig) == []


def test_a_translucent_band_missing_from_its_legend_alpha_is_found():
    fig, (ax,) = _figure(1)
    ax.fill_between([0, 1], [0, 0], [1, 1], color="C0", alpha=0.2)
    ax.legend(handles=[Patch(color="C0", label="95 % CI")])  # opaque: not what is drawn
    problems = legend_colour_problems(fig)
    assert problems and all(p.startswith("legend entry '95 % CI'") for p in problems)
    ax.get_legend().remove()
    ax.legend(handles=[Patch(color="C0", alpha=0.2, label="95 % CI")])
    assert legend_colour_problems(fig) == []


@pytest.mark.parametrize(
    ("label", "ok"),
    [
        ("s_N", False),
        ("s_N (cells/µL/day)", False),
        ("NK supply s_N (cells/µL/day)", True),
        ("Months since TKI stop", False),
        ("Time since TKI stop (months)", True),
        ("Exhausted\nE (fraction)", True),
    ],
)
def test_axis_labels_need_a_name_and_a_unit(label, ok):
    fig, (ax,) = _figure(1)
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel(label)
    ax.set_ylabel("Probability of TFR (fraction)")
    assert (axis_label_problems(fig) == []) is ok


def test_mantissa_times_power_tick_labels_are_found():
    fig, (ax,) = _figure(1)
    ax.plot([15, 60], [0, 1])
    ax.set_xscale("log")
    ax.set_xlim(15, 60)
    assert tick_label_problems(fig) != []  # matplotlib's default minor labels: 2×10¹ ...


def test_a_unit_with_nested_parentheses_is_a_unit():
    fig, (ax,) = _figure(1)
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("Leukemic kill per NK cell\nm_N (1/((cells/µL)·day))")
    ax.set_ylabel("m_N (1/((cells/µL)·day))")
    assert axis_label_problems(fig) == [
        "y axis label 'm_N (1/((cells/µL)·day))': a bare symbol, no name"
    ]
