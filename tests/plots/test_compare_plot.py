"""Tests of the comparison figure (sim.plots.compare.plot_comparison)."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_hex

from sim.params import DAYS_PER_YEAR
from sim.plots.compare import KIND_COLORS, TKI_COLOR, plot_comparison
from sim.plots.trajectory import MR_LINES, check_no_overlap
from sim.run import run_scenario
from sim.scenario import load

REPO = Path(__file__).resolve().parents[2]


def _load_synthetic():
    path = REPO / "tests" / "test_results.py"
    spec = importlib.util.spec_from_file_location("_synthetic_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.synthetic_result


@pytest.fixture(scope="module")
def runs():
    eln = run_scenario(load(REPO / "scenarios" / "imatinib-eln-stop.toml"))
    destiny = run_scenario(load(REPO / "scenarios" / "destiny-half-dose.toml"))
    stop = destiny.summary["stop_time"]
    ivs = [
        {"name": "ifn", "kind": "interferon", "product": "peginterferon-alfa-2a",
         "anchor": "tki_stop", "start": stop, "doses": 26, "last_dose": stop + 25 * 7.0,
         "every": 7.0, "given": True},
        {"name": "nivo", "kind": "checkpoint", "product": "nivolumab", "anchor": "relapse",
         "start": np.nan, "doses": 0, "last_dose": np.nan, "every": 14.0, "given": False},
    ]  # fmt: skip
    destiny = dataclasses.replace(destiny, interventions=ivs)
    relapsing = _load_synthetic()("synthetic-relapse")
    return [eln, destiny, relapsing]


@pytest.fixture(scope="module")
def drawn(runs, tmp_path_factory):
    stem = tmp_path_factory.mktemp("fig") / "comparison"
    fig = plot_comparison(runs, path_stem=stem, formats=("png", "pdf"))
    return fig, stem


def _axes(fig, ylabel_part):
    found = [ax for ax in fig.axes if ylabel_part in ax.get_ylabel()]
    assert len(found) == 1, [ax.get_ylabel() for ax in fig.axes]
    return found[0]


def _band(fig):
    return next(ax for ax in fig.axes if ax.get_title(loc="left") == "a" and ax.patches)


def test_bcr_abl_panel_log_with_mr_lines(drawn):
    fig, _ = drawn
    ax = _axes(fig, "BCR::ABL1")
    assert ax.get_yscale() == "log" and ax.get_ylabel().endswith("(%)")
    horizontal = [
        float(line.get_ydata()[0])
        for line in ax.get_lines()
        if len(set(line.get_ydata())) == 1 and line.get_color() == "0.45"
    ]
    texts = {t.get_text(): t.get_position()[1] for t in ax.texts}
    for name, level in MR_LINES:
        assert any(np.isclose(level, h) for h in horizontal), name
        assert texts[name] == pytest.approx(level)
    assert _axes(fig, "(fraction)").get_xlabel() == "Time since diagnosis (years)"


def test_one_line_per_scenario_distinct_styles(drawn, runs):
    fig, _ = drawn
    ax = _axes(fig, "BCR::ABL1")
    labels = ["imatinib-eln-stop", "destiny-half-dose", "synthetic-relapse"]
    lines = {line.get_label(): line for line in ax.get_lines() if line.get_label() in labels}
    assert sorted(lines) == sorted(labels)
    assert len({lines[k].get_linestyle() for k in labels}) == 3
    assert len({to_hex(lines[k].get_color()) for k in labels}) == 3
    for label, run in zip(labels, runs):
        np.testing.assert_allclose(lines[label].get_xdata(), run.t / DAYS_PER_YEAR)
        np.testing.assert_array_equal(lines[label].get_ydata(), run.bcr_abl)
    # panel b and c: one curve per scenario in the same colours and styles
    for part in ("T cells", "NK cells", "(fraction)"):
        curves = [line for line in _axes(fig, part).get_lines() if len(line.get_xdata()) > 2]
        assert [(to_hex(c.get_color()), c.get_linestyle()) for c in curves] == [
            (to_hex(lines[k].get_color()), lines[k].get_linestyle()) for k in labels
        ]
    assert _axes(fig, "T cells").get_yscale() == "log"
    assert "(cells/µL)" in _axes(fig, "NK cells").get_ylabel()


def test_stop_markers_at_each_stop(drawn, runs):
    fig, _ = drawn
    ax = _axes(fig, "BCR::ABL1")
    lines = ax.get_lines()
    vertical = sorted(
        float(line.get_xdata()[0])
        for line in lines
        if line.get_label().startswith("_stop ") and len(line.get_xdata()) == 2
    )
    markers = sorted(
        float(line.get_xdata()[0])
        for line in lines
        if line.get_label().startswith("_stop marker") and line.get_marker() == "v"
    )
    expected = sorted(r.summary["stop_time"] / DAYS_PER_YEAR for r in runs)
    assert vertical == pytest.approx(expected)
    assert markers == pytest.approx(expected)


def test_bars_tki_and_interventions(drawn, runs):
    fig, _ = drawn
    band = _band(fig)
    tki = [p for p in band.patches if p.get_gid() == "tki"]
    assert len(tki) == sum(len(r.tki_periods) for r in runs)
    assert all(to_hex(p.get_facecolor()) == to_hex(TKI_COLOR) for p in tki)
    half = [p for p in tki if p.get_alpha() < 0.99]
    assert len(half) == 2  # DESTINY lead-in and the synthetic run's lead-in
    ifn = [p for p in band.patches if p.get_gid() == "intervention:interferon"]
    assert len(ifn) == 1  # the checkpoint inhibitor was never given: no bar
    stop = runs[1].summary["stop_time"]
    assert ifn[0].get_x() == pytest.approx(stop / DAYS_PER_YEAR)
    assert ifn[0].get_width() == pytest.approx(26 * 7.0 / DAYS_PER_YEAR)
    assert to_hex(ifn[0].get_facecolor()) == KIND_COLORS["interferon"].lower()
    assert [t.get_text() for t in band.get_yticklabels()] == [
        "synthetic-relapse", "destiny-half-dose", "imatinib-eln-stop"
    ]  # fmt: skip


def test_legend_entries(drawn):
    fig, _ = drawn
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == [
        "imatinib-eln-stop", "destiny-half-dose", "synthetic-relapse",
        "TKI, standard dose", "TKI, reduced dose", "interferon", "TKI stop",
    ]  # fmt: skip
    assert [ax.get_title(loc="left") for ax in fig.axes].count("b") == 1
    assert [ax.get_title(loc="left") for ax in fig.axes].count("c") == 1


def test_no_overlapping_text(drawn):
    fig, _ = drawn
    assert check_no_overlap(fig) == []


def test_files_with_truetype_fonts(drawn):
    _, stem = drawn
    png = stem.with_suffix(".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    pdf = stem.with_suffix(".pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"/FontFile2" in pdf and b"/Type3" not in pdf


def test_many_scenarios_single_column_months(runs):
    # five lanes on a single-column figure of a short run: styles still distinct, no overlap
    short = [
        dataclasses.replace(r, t=r.t[r.t <= 3 * DAYS_PER_YEAR], y=r.y[r.t <= 3 * DAYS_PER_YEAR],
                            bcr_abl=r.bcr_abl[r.t <= 3 * DAYS_PER_YEAR],
                            drive=r.drive[r.t <= 3 * DAYS_PER_YEAR])
        for r in runs[:2]
    ]  # fmt: skip
    long_name = "destiny-half-dose-with-a-rather-long-descriptive-name"
    five = [short[i % 2] for i in range(4)] + [dataclasses.replace(short[1], name=long_name)]
    fig = plot_comparison(five, width="single")
    # the stops (4 and 5 y) and the interferon course lie beyond the 3-year runs: not drawn
    assert not [
        line for ax in fig.axes for line in ax.get_lines() if line.get_label().startswith("_stop")
    ]
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert "interferon" not in texts and "TKI stop" not in texts and long_name in texts
    lanes = [t.get_text() for t in _band(fig).get_yticklabels()]
    assert lanes[0] == long_name[:27] + "…" and lanes[1] == "destiny-half-dose.2"
    ax = _axes(fig, "BCR::ABL1")
    curves = [line for line in ax.get_lines() if len(line.get_xdata()) > 2]
    assert len({(to_hex(c.get_color()), c.get_linestyle()) for c in curves}) == 5
    # named styles ("-", "--", ...) or dash tuples (get_linestyle() says "--" for all of those)
    assert len({(c.get_linestyle(), str(c._unscaled_dash_pattern)) for c in curves}) == 5
    assert _axes(fig, "(fraction)").get_xlabel() == "Time since diagnosis (months)"
    assert check_no_overlap(fig) == []
    with pytest.raises(ValueError, match="at least one"):
        plot_comparison([])
