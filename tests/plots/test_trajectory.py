"""Tests of the single-patient figure and the package figure style."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sim.params import DAYS_PER_MONTH
from sim.plots import style
from sim.plots.trajectory import MR_LINES, check_no_overlap, plot_trajectory
from sim.results import RunResult


def _load_synthetic():
    # The hand-made run lives beside the storage tests; load that file by path (tests/ is not a
    # package, so it is not importable by name from here).
    path = Path(__file__).resolve().parents[1] / "test_results.py"
    spec = importlib.util.spec_from_file_location("_synthetic_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.synthetic_result


synthetic_result = _load_synthetic()


@pytest.fixture(scope="module")
def result() -> RunResult:
    return synthetic_result()


@pytest.fixture(scope="module")
def drawn(result, tmp_path_factory):
    stem = tmp_path_factory.mktemp("fig") / "trajectory"
    fig = plot_trajectory(result, path_stem=stem, formats=("png", "pdf"))
    return fig, stem


def _axes_by_ylabel(fig: Figure, text: str):
    found = [ax for ax in fig.axes if text in ax.get_ylabel()]
    assert len(found) == 1, [ax.get_ylabel() for ax in fig.axes]
    return found[0]


def test_bcr_abl_panel_is_log_with_units(drawn):
    fig, _ = drawn
    ax = _axes_by_ylabel(fig, "BCR::ABL1")
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel().endswith("(%)")
    bottom, top = ax.get_ylim()
    assert bottom == pytest.approx(1e-5) and top >= 100.0
    assert _axes_by_ylabel(fig, "(fraction)").get_xlabel() == "Time since diagnosis (months)"


def test_mr_lines_at_their_levels_and_labelled(drawn):
    fig, _ = drawn
    ax = _axes_by_ylabel(fig, "BCR::ABL1")
    horizontal = {
        float(line.get_ydata()[0])
        for line in ax.get_lines()
        if len(set(line.get_ydata())) == 1 and line.get_linestyle() == "--"
    }
    labels = {t.get_text(): t.get_position()[1] for t in ax.texts}
    for name, level in MR_LINES:
        assert any(np.isclose(level, h, rtol=1e-12) for h in horizontal), name
        assert labels[name] == pytest.approx(level)
    assert [lv for _, lv in MR_LINES] == [0.1, 0.01, 0.0032, 0.001]


def test_qpcr_points_detected_filled_and_undetectable_open(drawn, result):
    fig, _ = drawn
    ax = _axes_by_ylabel(fig, "BCR::ABL1")
    by_label = {line.get_label(): line for line in ax.get_lines()}
    v = result.visits
    det = by_label["qPCR, detected"]
    und = by_label["qPCR, undetectable (at detection limit)"]
    np.testing.assert_allclose(det.get_ydata(), v["measured_pct"][v["detected"] > 0])
    np.testing.assert_allclose(und.get_ydata(), v["lod_pct"][v["detected"] == 0])
    np.testing.assert_allclose(und.get_xdata(), v["time"][v["detected"] == 0] / DAYS_PER_MONTH)
    assert und.get_marker() == "v" and und.get_markerfacecolor() in ("white", "w", "none")
    assert det.get_marker() == "o"
    assert len(und.get_ydata()) >= 3 and len(det.get_ydata()) >= 10


def test_stop_line_and_therapy_bars(drawn, result):
    fig, _ = drawn
    ax = _axes_by_ylabel(fig, "BCR::ABL1")
    stops = [line.get_xdata()[0] for line in ax.get_lines() if len(set(line.get_xdata())) == 1]
    assert stops == pytest.approx([result.summary["stop_time"] / DAYS_PER_MONTH])
    band = _axes_by_ylabel(fig, "TKI")
    heights = [p.get_height() for p in band.patches]
    assert heights == pytest.approx([f for _, _, f in result.tki_periods])
    alphas = [p.get_alpha() for p in band.patches]
    assert alphas[1] < alphas[0]  # half dose is lighter


def test_immune_panel_units(drawn):
    fig, _ = drawn
    assert "(cells)" in _axes_by_ylabel(fig, "T cells Z").get_ylabel()
    assert "(cells/µL)" in _axes_by_ylabel(fig, "NK cells N").get_ylabel()
    ax_e = _axes_by_ylabel(fig, "(fraction)")
    assert ax_e.get_ylim() == (0.0, 1.0)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles.count("a") == 1 and titles.count("b") == 1


def test_no_overlapping_text(drawn):
    fig, _ = drawn
    assert check_no_overlap(fig) == []


def test_overlap_check_finds_collisions():
    fig = Figure(figsize=(2, 2))
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, "first label")
    ax.text(0.52, 0.51, "second label")
    ax.text(0.1, 0.9, "apart")
    pairs = check_no_overlap(fig)
    assert [(a.get_text(), b.get_text()) for a, b in pairs] == [("first label", "second label")]


def test_files_written_with_truetype_fonts(drawn):
    _, stem = drawn
    png = stem.with_suffix(".png")
    pdf = stem.with_suffix(".pdf")
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert b"/FontFile2" in data  # TrueType (Type 42) embedded
    assert b"/Type3" not in data  # no Type 3 bitmap/outline fonts


def test_years_axis_and_values_below_floor_are_not_hidden(result):
    deep = RunResult(
        **{
            **result.__dict__,
            "bcr_abl": result.bcr_abl * 1e-5,
            "visits": {**result.visits, "lod_pct": result.visits["lod_pct"] * 1e-2},
        }
    )
    fig = plot_trajectory(deep, time_unit="years", width="single")
    ax = _axes_by_ylabel(fig, "BCR::ABL1")
    bottom, _ = ax.get_ylim()
    assert bottom <= np.min(deep.visits["lod_pct"])  # every undetectable marker is on the axis
    assert bottom > np.min(deep.bcr_abl)  # the curve does go below the axis
    curve = next(line for line in ax.get_lines() if line.get_label().startswith("model"))
    assert "off scale" in curve.get_label()  # the curve below the axis is said, not hidden
    assert _axes_by_ylabel(fig, "(fraction)").get_xlabel() == "Time since diagnosis (years)"
    assert check_no_overlap(fig) == []


def test_figure_without_visits_or_stop(result):
    bare = RunResult(
        **{
            **result.__dict__,
            "visits": {},
            "summary": {},
            "tki_periods": [(0.0, float(result.t[-1]), 1.0)],
        }
    )
    fig = plot_trajectory(bare)
    ax = _axes_by_ylabel(fig, "BCR::ABL1")
    assert not any(isinstance(a, Line2D) and a.get_label() == "TKI stop" for a in ax.get_lines())
    assert check_no_overlap(fig) == []


def test_style_sizes_and_fonttype():
    assert style.figsize("single", 60) == pytest.approx((89 / 25.4, 60 / 25.4))
    assert style.figsize("double")[0] == pytest.approx(183 / 25.4)
    assert style.figsize(120.0, 50)[0] == pytest.approx(120 / 25.4)
    with pytest.raises(ValueError, match="maximum"):
        style.figsize("double", 200)
    with pytest.raises(ValueError, match="did you mean 'nature'"):
        with style.use_style("natur"):
            pass
    import matplotlib as mpl

    before = mpl.rcParams["font.size"]
    with style.use_style("poster"):
        assert mpl.rcParams["font.size"] == 18
        assert mpl.rcParams["pdf.fonttype"] == 42 and mpl.rcParams["svg.fonttype"] == "none"
    with style.use_style("nature"):
        assert mpl.rcParams["font.size"] == 7
        assert mpl.rcParams["axes.prop_cycle"].by_key()["color"][0].lower() == "#0072b2"
    assert mpl.rcParams["font.size"] == before


def test_import_sim_does_not_import_matplotlib():
    code = (
        "import sys, sim, sim.results, sim.plots; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_a_flat_true_curve_is_labelled_with_its_level(result):
    # a model steady state on the MR5 line must not read as a floor or a clamp
    flat = np.where(result.t > 365.25, 1.05e-3, result.bcr_abl)
    run = RunResult(**{**result.__dict__, "bcr_abl": flat})
    fig = plot_trajectory(run, width="single")
    ax = _axes_by_ylabel(fig, "BCR::ABL1")
    labels = [t.get_text() for t in ax.texts if t.get_text().startswith("flat at")]
    years = (result.t[-1] - result.t[result.t > 365.25][0]) / 365.25
    assert labels == [f"flat at 0.00105 % for {years:.1f} years\n(model steady state)"]
    assert check_no_overlap(fig) == []
    # the varying synthetic curve has no such label
    ax = _axes_by_ylabel(plot_trajectory(result), "BCR::ABL1")
    assert not [t for t in ax.texts if t.get_text().startswith("flat at")]
