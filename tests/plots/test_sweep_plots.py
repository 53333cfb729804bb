"""Sweep figures: index bars and the phase diagram, on inputs whose answer is known."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.collections import LineCollection, QuadMesh

from sim import sensitivity
from sim.plots import sweep as sweep_plots
from sim.plots.trajectory import check_no_overlap
from sim.scenario import Sweep, SweepParam
from sim.sweep import design
from sim.sweep.metrics import OUTCOME_CODES


def _check_files(stem: Path) -> pd.DataFrame:
    assert Path(f"{stem}.png").stat().st_size > 1000
    pdf = Path(f"{stem}.pdf").read_bytes()
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf
    return pd.read_csv(f"{stem}_data.csv")


@pytest.fixture(scope="module")
def sobol_table() -> pd.DataFrame:
    params = tuple(SweepParam(f"x{i}", f"x{i}", -math.pi, math.pi) for i in (1, 2, 3))
    X = design.design_values(Sweep("sobol", params, n=256), seed=1)
    Y = np.sin(X[:, 0]) + 7 * np.sin(X[:, 1]) ** 2 + 0.1 * X[:, 2] ** 4 * np.sin(X[:, 0])
    t = sensitivity.sobol_indices(Y, ["x1", "x2", "x3"])
    t.insert(0, "output", "ishigami")
    return t


@pytest.mark.parametrize("kind", ["nature", "poster"])
def test_sobol_index_bars(sobol_table, tmp_path, kind):
    stem = tmp_path / "indices"
    width = "double" if kind == "poster" else "single"
    fig = sweep_plots.plot_indices(
        sobol_table, stem, ("png", "pdf")[: 2 if kind == "nature" else 0], kind=kind, width=width
    )
    assert check_no_overlap(fig) == []
    ax = fig.axes[0]
    st = sobol_table[sobol_table["index"] == "ST"].set_index("parameter")["value"]
    # most influential on top (largest y)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == st.sort_values().index.tolist()
    widths = {round(p.get_y() + p.get_height() / 2, 6): p.get_width() for p in ax.patches}
    assert sorted(widths.values()) == pytest.approx(
        sorted(sobol_table[sobol_table["index"].isin(["S1", "ST"])]["value"])
    )
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "total, $S_T$",
        "first order, $S_1$",
    ]
    assert ax.get_xlabel() == "Sobol index of ishigami (fraction of variance)"
    if kind == "nature":
        data = _check_files(stem)
        assert set(data["index"]) == {"S1", "ST"} and len(data) == 6


def test_morris_bars():
    coef = np.array([3.0, -1.0])
    params = (SweepParam("a", "a", 0.0, 1.0), SweepParam("b", "b", 0.0, 1.0))
    X = design.design_values(Sweep("morris", params, n=8), seed=2)
    t = sensitivity.morris_indices(X, X @ coef, ["a", "b"])
    t.insert(0, "output", "y")
    fig = sweep_plots.plot_indices(t, labels={"a": "alpha"})
    assert check_no_overlap(fig) == []
    ax = fig.axes[0]
    assert [x.get_text() for x in ax.get_yticklabels()] == ["b", "alpha"]
    assert [x.get_text() for x in ax.get_legend().get_texts()] == ["μ*", "σ"]
    with pytest.raises(ValueError, match="no indices"):
        sweep_plots.plot_indices(t, output="nope")


def phase_dataset(n: int = 3000) -> xr.Dataset:
    """Runs over x (log, 1-100) and y (0-10): relapse below x = 10; above it control below
    y = 5 and cure above; the TFR indicator 0 on relapse, 1 otherwise, NaN for every 10th run."""
    gen = np.random.default_rng(4)
    x = np.exp(gen.uniform(0, math.log(100), n))
    y = gen.uniform(0, 10, n)
    code = np.where(x < 10, OUTCOME_CODES["relapse"],
                    np.where(y < 5, OUTCOME_CODES["control"], OUTCOME_CODES["cure"]))  # fmt: skip
    tfr = np.where(code == OUTCOME_CODES["relapse"], 0.0, 1.0)
    tfr[::10] = np.nan
    outcome = np.column_stack([tfr, code.astype(float)])
    params = [
        {"path": "patient.s_N", "name": "s_N", "low": 1.0, "high": 100.0, "scale": "log",
         "units": "cells/µL/day"},
        {"path": "protocol.stop.at", "name": "stop_at", "low": 0.0, "high": 10.0,
         "scale": "linear", "units": "1"},
    ]  # fmt: skip
    coords = {"sample": np.arange(n), "metric": ["tfr_24mo", "outcome_class"]}
    for p, v in zip(params, (x, y)):
        coords[p["name"]] = ("sample", v, {k: p[k] for k in ("path", "low", "high", "scale",
                                                            "units")})  # fmt: skip
    status = np.ones(n, dtype=np.int8)
    status[-5:] = 0  # not computed: left out
    return xr.Dataset(
        {"outcome": (("sample", "metric"), outcome), "status": ("sample", status)},
        coords=coords,
        attrs={"params": json.dumps(params), "phase": "", "model": "cml_immune"},
    )


def test_phase_table_regions_and_probabilities():
    ds = phase_dataset()
    tab = sweep_plots.phase_table(ds, "s_N", "stop_at", bins=4)
    assert len(tab) == 16
    np.testing.assert_allclose(sorted(set(tab["x_low"])), [1, 10**0.5, 10, 10**1.5], rtol=1e-12)
    np.testing.assert_allclose(sorted(set(tab["y_low"])), [0, 2.5, 5, 7.5])
    assert tab["runs"].sum() == 3000 - 5
    for r in tab.itertuples():
        expect = "relapse" if r.x_high <= 10 else ("control" if r.y_high <= 5 else "cure")
        assert r.region == expect
        assert r.p_tfr == (0.0 if expect == "relapse" else 1.0)
        assert getattr(r, expect) == 1.0
        assert 0 < r.tfr_runs < r.runs  # the NaN runs are left out of p_tfr


def test_phase_diagram(tmp_path):
    ds = phase_dataset()
    stem = tmp_path / "phase"
    fig = sweep_plots.plot_phase_diagram(ds, "s_N", "stop_at", stem, bins=4)
    assert check_no_overlap(fig) == []
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    assert ax.get_xlabel() == "NK production s_N (cells/µL/day)"
    assert ax.get_ylabel() == "TKI stop stop_at (dimensionless)"
    shown = [t.get_text() for t in ax.get_xticklabels() if 1 <= t.get_position()[0] <= 100]
    assert shown == ["1", "2", "5", "10", "20", "50", "100"]  # plain numbers, not 2×10¹
    mesh = next(c for c in ax.collections if isinstance(c, QuadMesh))
    assert mesh.get_array().max() == 1.0 and mesh.get_array().min() == 0.0
    lines = next(c for c in ax.collections if isinstance(c, LineCollection))
    segs = [np.round(s, 9) for s in lines.get_segments()]
    vertical = [s for s in segs if s[0][0] == s[1][0]]
    horizontal = [s for s in segs if s[0][1] == s[1][1]]
    assert len(vertical) == 4 and all(s[0][0] == pytest.approx(10) for s in vertical)
    assert len(horizontal) == 2 and all(s[0][1] == pytest.approx(5) for s in horizontal)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["relapse", "control", "cure"]
    assert fig.axes[1].get_ylabel() == "Probability of TFR 24 months\nafter the stop (%)"
    # the swatches: the colour of a cell of each region (relapse: P = 0, the others: P = 1)
    mesh_colours = {0.0: mesh.to_rgba(0.0), 1.0: mesh.to_rgba(1.0)}
    swatches = [h for h in ax.get_legend().legend_handles]
    assert len(swatches) == 3
    faces = [tuple(p.get_facecolor()) for p in swatches]
    assert faces == [mesh_colours[0.0], mesh_colours[1.0], mesh_colours[1.0]]
    data = _check_files(stem)
    table = sweep_plots.phase_table(ds, "s_N", "stop_at", bins=4)
    np.testing.assert_allclose(data["p_tfr"], table["p_tfr"])
    assert list(data["region"]) == list(table["region"])


def test_render_draws_the_figures_a_sweep_supports(tmp_path):
    ds = phase_dataset()
    ds.attrs.update(design="lhs", outputs="tfr_24mo", second_order=0, levels=4)
    written = sweep_plots.render(tmp_path, tmp_path, formats=("svg",), ds=ds, table=None)
    assert sorted(Path(f).name for f in written) == ["phase.svg", "phase_data.csv"]
    assert all(Path(f).stat().st_size > 0 for f in written)
    assert set(sweep_plots.FIGURES) == {"indices", "phase"}
