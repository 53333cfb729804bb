"""Tests of the cohort figures: KM curves with numbers at risk, swimmer plot, biomarker ROC."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("lifelines")

from sim import outcomes
from sim.plots.cohort import plot_km, plot_roc, plot_swimmer, swimmer_data
from sim.plots.trajectory import check_no_overlap


def _load_synthetic():
    # tests/ is not a package: load the synthetic outcome table from its file
    path = Path(__file__).resolve().parents[1] / "test_outcomes.py"
    spec = importlib.util.spec_from_file_location("_synthetic_outcomes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.synthetic_table


synthetic_table = _load_synthetic()


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    a = synthetic_table(300, seed=1, arm="no interferon")
    b = synthetic_table(300, seed=1, arm="interferon", rate=0.03)
    return pd.concat([a, b], ignore_index=True)


def _check_files(stem: Path) -> pd.DataFrame:
    assert Path(f"{stem}.png").stat().st_size > 1000
    pdf = Path(f"{stem}.pdf").read_bytes()
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf
    return pd.read_csv(f"{stem}_data.csv")


def test_km_figure(table, tmp_path):
    stem = tmp_path / "km"
    fig = plot_km(table, stem)
    assert check_no_overlap(fig) == []
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear" and ax.get_yscale() == "linear"
    assert ax.get_xlabel() == "Time since TKI stop (months)"
    assert ax.get_ylabel() == "Molecular relapse-free survival (%)"
    assert ax.get_ylim() == pytest.approx((0.0, 1.02))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["no interferon", "interferon", "95 % confidence band", "censored"]
    assert len(ax.collections) == 2  # one CI band per arm
    # numbers at risk under the axis: follow-up >= tick, per arm
    ax_tab = fig.axes[1]
    ticks = ax.get_xticks()
    for row, arm in enumerate(["interferon", "no interferon"]):  # bottom row = last arm
        d = np.asarray(outcomes.km(table, arm).durations)
        shown = sorted(
            (t.get_position()[0], int(t.get_text()))
            for t in ax_tab.texts
            if t.get_position()[1] == row
        )
        assert shown == [(tk, int((d >= tk).sum())) for tk in ticks]
    assert [t.get_text() for t in ax_tab.get_yticklabels()] == ["interferon", "no interferon"]
    data = _check_files(stem)
    assert set(data.columns) >= {"arm", "months", "survival", "ci_low", "ci_high", "at_risk"}
    first = data[data["arm"] == "interferon"]
    kmf = outcomes.km(table, "interferon")
    assert first["survival"].to_numpy() == pytest.approx(
        kmf.survival_function_.iloc[:, 0].to_numpy()
    )


@pytest.mark.parametrize("kind", ["blood", "poster"])
def test_km_other_styles_no_overlap(table, kind):
    width = "double" if kind == "poster" else "single"
    fig = plot_km(table, kind=kind, width=width, height_mm=160 if kind == "poster" else None)
    assert check_no_overlap(fig) == []


def test_swimmer_figure(table, tmp_path):
    stem = tmp_path / "swim"
    fig = plot_swimmer(table[table["arm"] == "interferon"], stem, n=25, seed=3)
    assert check_no_overlap(fig) == []
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Time since diagnosis (years)"
    assert ax.get_ylabel() == "Patients (random sample of 25)"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == [
        "TKI",
        "TKI stop",
        "off TKI, relapse-free",
        "off TKI, until relapse",
        "molecular relapse",
        "TKI restarted",
    ]
    data = _check_files(stem)
    assert len(data) == 25
    relapsed = data["relapse"].astype(bool)
    # relapsed patients: off TKI ends at relapse and TKI restarts there; others end at follow-up
    assert (data.loc[relapsed, "off_tki_end"] == data.loc[relapsed, "relapse_time"]).all()
    assert (data.loc[~relapsed, "off_tki_end"] == data.loc[~relapsed, "end_of_follow_up"]).all()
    assert (data["off_tki_end"] > data["stop_time"]).all()
    again = swimmer_data(table[table["arm"] == "interferon"], n=25, seed=3)
    assert again["patient"].tolist() == data["patient"].tolist()  # seeded sample


def test_roc_figure(table, tmp_path):
    stem = tmp_path / "roc"
    sub = table[table["arm"] == "no interferon"]
    fig = plot_roc(sub, stem)
    assert check_no_overlap(fig) == []
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 1.0) and ax.get_ylim() == (0.0, 1.0)
    assert ax.get_xscale() == "linear"
    assert "false-positive" in ax.get_xlabel() and "Sensitivity" in ax.get_ylabel()
    diag = [ln for ln in ax.get_lines() if ln.get_label() == "chance"]
    assert len(diag) == 1 and list(diag[0].get_xdata()) == [0, 1]
    res = outcomes.biomarker_auc(sub)
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(texts) == len(outcomes.DEFAULT_MARKERS) + 1 and texts[-1] == "chance"
    for text, marker in zip(texts, outcomes.DEFAULT_MARKERS):
        assert text.startswith(outcomes.MARKER_LABELS[marker].removesuffix(" at stop"))
        assert f"{res.loc[marker, 'auc']:.2f}" in text
    assert "↓" in texts[0]  # NK lower in relapsers
    # the legend is compact: the plot keeps most of the figure's width and height
    legend = fig.legends[0].get_window_extent()
    assert legend.height <= 0.3 * fig.bbox.height
    assert ax.bbox.width >= 0.7 * fig.bbox.width
    data = _check_files(stem)
    assert set(data["marker"]) == set(outcomes.DEFAULT_MARKERS)
    nk = data[data["marker"] == "N_at_stop"]
    auc = np.trapezoid(nk["tpr"], nk["fpr"])
    assert auc == pytest.approx(res.loc["N_at_stop", "auc"], abs=1e-12)
