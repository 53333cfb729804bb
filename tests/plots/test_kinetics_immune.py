"""Tests of the BCR-ABL1 kinetics figure and the immune panels: what a reader relies on."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from sim.params import DAYS_PER_MONTH
from sim.plots.immune import immune_data, plot_immune
from sim.plots.kinetics import intervention_bars, plot_kinetics
from sim.plots.trajectory import MR_LINES, check_text_inside, text_problems
from sim.results import RunResult
from sim.therapy import drive


def _load_synthetic():
    path = Path(__file__).resolve().parents[1] / "test_results.py"
    spec = importlib.util.spec_from_file_location("_synthetic_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.synthetic_result


synthetic_result = _load_synthetic()

IFN_START, IFN_LAST, IFN_EVERY = 1830.0, 2190.0, 7.0


def with_interferon(result: RunResult) -> RunResult:
    """The synthetic run with a year of weekly interferon from the stop: the dosing record and
    its drive (effect 0.4 while dosed, decaying over two weeks after)."""
    t = result.t
    d = result.drive.copy()
    on = (t >= IFN_START) & (t <= IFN_LAST + IFN_EVERY)
    d[on, drive.IFN] = 0.4
    tail = (t > IFN_LAST + IFN_EVERY) & (t < IFN_LAST + 21.0)
    d[tail, drive.IFN] = 0.005
    iv = {
        "name": "peg-ifn-after-stop", "kind": "interferon", "anchor": "tki_stop",
        "start": IFN_START, "doses": 53, "last_dose": IFN_LAST, "every": IFN_EVERY,
    }  # fmt: skip
    return dataclasses.replace(result, drive=d, interventions=[iv])


@pytest.fixture(scope="module")
def run() -> RunResult:
    return with_interferon(synthetic_result())


@pytest.fixture(scope="module")
def kinetics(run, tmp_path_factory):
    stem = tmp_path_factory.mktemp("kin") / "kinetics"
    return plot_kinetics(run, stem, ("pdf", "svg")), stem


@pytest.fixture(scope="module")
def immune(run, tmp_path_factory):
    stem = tmp_path_factory.mktemp("imm") / "immune"
    return plot_immune(run, stem, ("pdf",)), stem


def _bcr_axes(fig: Figure):
    found = [ax for ax in fig.axes if "BCR::ABL1" in ax.get_ylabel()]
    assert len(found) == 1
    return found[0]


def _legend_texts(fig: Figure) -> list[str]:
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


def check_pdf_fonts(path: Path) -> None:
    """TrueType (Type 42) fonts embedded, no Type 3 fonts: text stays editable."""
    data = path.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 5000
    assert b"/FontFile2" in data
    assert b"/Type3" not in data


def test_kinetics_axis_and_mr_lines(kinetics, run):
    fig, _ = kinetics
    ax = _bcr_axes(fig)
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel() == "BCR::ABL1 IS (%)"
    assert ax.get_xlabel() == "Time since diagnosis (months)"  # 8 years: drawn in months
    assert ax.get_xlim() == pytest.approx((0.0, run.t[-1] / DAYS_PER_MONTH))
    dashed = {float(ln.get_ydata()[0]) for ln in ax.get_lines() if ln.get_linestyle() == "--"}
    labels = {t.get_text(): t.get_position()[1] for t in ax.texts}
    for name, level in MR_LINES:
        assert any(np.isclose(level, y, rtol=1e-12) for y in dashed), name
        assert labels[name] == pytest.approx(level)


def test_kinetics_points_at_detection_limit(kinetics, run):
    fig, _ = kinetics
    ax = _bcr_axes(fig)
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    und = lines["qPCR, undetectable (at detection limit)"]
    v = run.visits
    np.testing.assert_allclose(und.get_ydata(), v["lod_pct"][v["detected"] == 0])
    np.testing.assert_allclose(und.get_xdata(), v["time"][v["detected"] == 0] / DAYS_PER_MONTH)
    assert und.get_marker() == "v"


def test_kinetics_therapy_and_intervention_bars(kinetics, run):
    fig, _ = kinetics
    band = next(ax for ax in fig.axes if ax is not _bcr_axes(fig))
    lanes = [t.get_text() for t in band.get_yticklabels()]
    assert lanes == ["interferon", "TKI"]  # bottom to top
    ifn = [p for p in band.patches if p.get_gid() == "intervention:interferon"]
    assert len(ifn) == 1
    assert ifn[0].get_x() == pytest.approx(IFN_START / DAYS_PER_MONTH)
    assert ifn[0].get_width() == pytest.approx((IFN_LAST + IFN_EVERY - IFN_START) / DAYS_PER_MONTH)
    tki = [p for p in band.patches if p.get_gid() == "tki"]
    assert [p.get_width() * DAYS_PER_MONTH for p in tki] == pytest.approx(
        [e - s for s, e, _ in run.tki_periods]
    )
    assert tki[1].get_height() == pytest.approx(tki[0].get_height() / 2)  # the half-dose year
    legend = _legend_texts(fig)
    for entry in ("model, true BCR::ABL1", "qPCR, detected", "interferon", "TKI stop"):
        assert entry in legend
    stops = [ln.get_xdata()[0] for ln in _bcr_axes(fig).get_lines() if ln.get_label() == "TKI stop"]
    assert stops == pytest.approx([run.summary["stop_time"] / DAYS_PER_MONTH])


def test_kinetics_files_and_data(kinetics, run):
    _, stem = kinetics
    check_pdf_fonts(Path(f"{stem}.pdf"))
    svg = Path(f"{stem}.svg").read_text(encoding="utf-8")
    assert "<text" in svg and "BCR::ABL1 IS (%)" in svg  # text kept as text, not outlines
    data = pd.read_csv(f"{stem}_data.csv")
    np.testing.assert_allclose(data["bcr_abl_pct"], run.bcr_abl)
    visits = pd.read_csv(f"{stem}_visits.csv")
    assert len(visits) == run.n_visits
    bars = pd.read_csv(f"{stem}_bars.csv")
    assert list(bars["kind"]) == ["tki", "tki", "tki", "interferon"]


def test_intervention_bars_of_a_stored_run_come_from_the_drive(run):
    stored = dataclasses.replace(run, interventions=[])  # what from_dataset gives back
    bars = intervention_bars(stored)
    assert list(bars["kind"]) == ["interferon"]
    assert bars["source"].iloc[0] == "drive > 0.01"
    first_on = run.t[run.drive[:, drive.IFN] > 0.01][0]
    assert bars["start_days"].iloc[0] == first_on
    assert bars["end_days"].iloc[0] >= IFN_LAST + IFN_EVERY
    assert intervention_bars(synthetic_result()).empty


def test_no_overlapping_text_and_none_cut_off(kinetics, immune, run):
    # nature here, blood in test_render.py (run folder), the gallery in tests/test_gallery.py
    figures = [kinetics[0], immune[0]] + [
        plot(run, kind="poster") for plot in (plot_kinetics, plot_immune)
    ]
    for fig in figures:
        assert text_problems(fig) == ([], [])


def test_cut_off_check_finds_a_title_beyond_the_edge():
    fig = Figure(figsize=(2, 2), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title("a title far too long for a figure two inches wide")
    assert [t.get_text() for t in check_text_inside(fig)] == [ax.get_title()]


def test_immune_panels(immune, run):
    fig, stem = immune
    axes = [ax for ax in fig.axes if ax.get_title(loc="left")]
    assert [ax.get_title(loc="left") for ax in axes] == ["a", "b", "c", "d"]
    z, n, e, d = axes
    assert z.get_ylabel() == "Effector T cells Z\n(cells)"
    assert z.get_yscale() == "log"  # the synthetic T cells span more than a factor 20
    assert n.get_ylabel() == "NK cells N\n(cells/µL)"
    assert e.get_ylabel() == "Exhausted fraction E\n(fraction)"
    e_max = run.y[:, run.model.states.index("E")].max()
    assert e_max <= e.get_ylim()[1] <= 1.0 and e.get_ylim()[0] == 0.0
    assert d.get_xlabel() == "Time since diagnosis (months)"
    legend = _legend_texts(fig)
    assert {"TKI effect u", "interferon effect I", "TKI stop"} <= set(legend)
    assert "anti-PD-1 occupancy B" not in legend  # a drive that is zero throughout is left out
    check_pdf_fonts(Path(f"{stem}.pdf"))
    data = pd.read_csv(f"{stem}_data.csv")
    assert {"Z_cells", "N_cells_per_uL", "E_fraction", "drive_interferon"} <= set(data.columns)
    np.testing.assert_allclose(data["N_cells_per_uL"], run.y[:, run.model.states.index("N")])
    assert list(data.columns) == list(immune_data(run).columns)


def test_double_column_sizes_fit_the_journal(run):
    for plot in (plot_kinetics, plot_immune):
        fig = plot(run, width="double")
        w, h = fig.get_size_inches() * 25.4
        assert w == pytest.approx(183.0) and h <= 170.0
