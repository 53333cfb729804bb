"""Sensitivity indices against closed forms: Sobol' indices of the Ishigami function, Morris
statistics of a linear model, and the analysis of a stored sweep."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import xarray as xr

from sim import sensitivity
from sim.scenario import Sweep, SweepParam
from sim.sweep import design

#: Sobol' base sample size of the Ishigami check: N (2D + 2) = 8192 evaluations.
N_ISHIGAMI = 1024
TOLERANCE = 0.03
A, B = 7.0, 0.1


def ishigami(X: np.ndarray) -> np.ndarray:
    """f = sin x1 + a sin^2 x2 + b x3^4 sin x1 on [-pi, pi]^3 (Ishigami & Homma 1990)."""
    return np.sin(X[:, 0]) + A * np.sin(X[:, 1]) ** 2 + B * X[:, 2] ** 4 * np.sin(X[:, 0])


def ishigami_exact() -> dict[str, dict]:
    """Closed-form indices (Sobol' & Levitan 1999): V1 = (1 + b pi^4/5)^2 / 2, V2 = a^2/8,
    V13 = b^2 pi^8 (1/18 - 1/50), V = V1 + V2 + V13, all other terms zero."""
    pi = math.pi
    v1 = 0.5 * (1 + B * pi**4 / 5) ** 2
    v2 = A**2 / 8
    v13 = B**2 * pi**8 * (1 / 18 - 1 / 50)
    v = v1 + v2 + v13
    assert v == pytest.approx(A**2 / 8 + B * pi**4 / 5 + B**2 * pi**8 / 18 + 0.5)
    return {
        "S1": {"x1": v1 / v, "x2": v2 / v, "x3": 0.0},
        "ST": {"x1": (v1 + v13) / v, "x2": v2 / v, "x3": v13 / v},
        "S2": {("x1", "x2"): 0.0, ("x1", "x3"): v13 / v, ("x2", "x3"): 0.0},
    }


def ishigami_sweep(n: int = N_ISHIGAMI) -> Sweep:
    params = tuple(SweepParam(f"x{i}", f"x{i}", -math.pi, math.pi) for i in (1, 2, 3))
    return Sweep("sobol", params, n=n, second_order=True)


def test_ishigami_sobol_indices_match_the_closed_form():
    sweep = ishigami_sweep()
    X = design.design_values(sweep, seed=2026)
    assert X.shape == (N_ISHIGAMI * 8, 3)
    table = sensitivity.sobol_indices(ishigami(X), ["x1", "x2", "x3"], second_order=True)
    exact = ishigami_exact()
    errors = []
    for row in table.itertuples():
        key = (row.parameter, row.parameter2) if row.index == "S2" else row.parameter
        errors.append(abs(row.value - exact[row.index][key]))
        assert 0 < row.conf < (0.2 if row.index == "S2" else 0.1)
        assert row.ci_low == pytest.approx(row.value - row.conf)
    assert len(errors) == 3 + 3 + 3
    assert max(errors) <= TOLERANCE, table


def test_sobol_indices_need_the_design_order():
    """Shuffled runs lose the Saltelli structure: the indices are then far off."""
    X = design.design_values(ishigami_sweep(256), seed=1)
    Y = ishigami(X)
    table = sensitivity.sobol_indices(np.random.default_rng(0).permutation(Y), ["x1", "x2", "x3"])
    st = table[table["index"] == "ST"].set_index("parameter")["value"]
    assert abs(st["x2"] - ishigami_exact()["ST"]["x2"]) > 0.3
    with pytest.raises(ValueError, match="do not fit"):
        sensitivity.sobol_indices(Y[:-1], ["x1", "x2", "x3"])
    with pytest.raises(ValueError, match="NaN"):
        sensitivity.sobol_indices(np.where(Y > 5, np.nan, Y), ["x1", "x2", "x3"])


def test_morris_of_a_linear_model_is_exact():
    coef = np.array([3.0, -1.0, 0.5])
    params = (
        SweepParam("a", "a", 0.0, 2.0),
        SweepParam("b", "b", 10.0, 20.0),
        SweepParam("c", "c", -1.0, 1.0),
    )
    sweep = Sweep("morris", params, n=10, levels=4)
    X = design.design_values(sweep, seed=3)
    Y = X @ coef
    unit = np.column_stack([design.to_unit(p, X[:, j]) for j, p in enumerate(params)])
    table = sensitivity.morris_indices(unit, Y, ["a", "b", "c"], levels=4)
    effect = coef * np.array([p.high - p.low for p in params])
    by = table.set_index(["index", "parameter"])["value"]
    for name, e in zip("abc", effect):
        assert by[("mu_star", name)] == pytest.approx(abs(e), rel=1e-9)
        assert by[("mu", name)] == pytest.approx(e, rel=1e-9)
        assert by[("sigma", name)] == pytest.approx(0.0, abs=1e-9)


def stored(design_kind: str, Y: np.ndarray, X: np.ndarray, params, **attrs) -> xr.Dataset:
    """A Dataset with the layout of :func:`sim.sweep.load_sweep`."""
    n = Y.shape[0]
    coords = {"sample": np.arange(n), "metric": ["tfr_24mo", "tfr_months"]}
    for j, p in enumerate(params):
        coords[p.name] = ("sample", X[:, j], {"path": p.path, "scale": p.scale})
    outcome = np.column_stack([Y, Y * 2.0])
    ds = xr.Dataset(
        {"outcome": (("sample", "metric"), outcome), "status": ("sample", np.ones(n, np.int8))},
        coords=coords,
    )
    ds.attrs = {
        "design": design_kind,
        "params": json.dumps([p.__dict__ for p in params]),
        "outputs": "tfr_24mo tfr_months",
        "second_order": 1,
        "levels": 4,
        "phase": "",
        **attrs,
    }
    return ds


def test_analyze_a_stored_sweep():
    sweep = ishigami_sweep(256)
    X = design.design_values(sweep, seed=5)
    ds = stored("sobol", ishigami(X), X, sweep.params)
    table, notes = sensitivity.analyze(ds)
    assert notes == [] and table.columns[0] == "output"
    assert set(table["output"]) == {"tfr_24mo", "tfr_months"}
    one = table[table["output"] == "tfr_24mo"].drop(columns="output").reset_index(drop=True)
    direct = sensitivity.sobol_indices(ishigami(X), ["x1", "x2", "x3"], num_resamples=200)
    assert one.equals(direct)
    # the two most influential parameters are the phase diagram's default axes
    assert sensitivity.phase_axes(ds, table) == ("x1", "x2")
    ds.attrs["phase"] = "x3 x2"
    assert sensitivity.phase_axes(ds, table) == ("x3", "x2")
    # outputs without a value in every run, failed runs, designs without indices
    ds["outcome"][3, 0] = np.nan
    table, notes = sensitivity.analyze(ds)
    assert set(table["output"]) == {"tfr_months"} and "tfr_24mo: 1 runs" in notes[0]
    ds["outcome"][3, 0] = 1.0
    ds["status"][7] = 3  # a failed run: its Saltelli block of 8 runs is left out
    table, notes = sensitivity.analyze(ds)
    assert notes == [
        "1 of 256 base samples left out: some of their runs are not computed or failed (resume "
        "to retry them)"
    ]
    keep = np.ones(256 * 8, bool)
    keep[:8] = False
    direct = sensitivity.sobol_indices(ishigami(X)[keep], ["x1", "x2", "x3"])
    mine = table[table["output"] == "tfr_24mo"].drop(columns="output").reset_index(drop=True)
    assert mine.equals(direct)
    ds["status"][:] = 0
    assert sensitivity.analyze(ds)[0] is None
    flat = stored("sobol", np.zeros(X.shape[0]), X, sweep.params)
    table, notes = sensitivity.analyze(flat)
    assert table is None and "the same value (0) in every run" in notes[0]
    lhs = stored("lhs", ishigami(X), X, sweep.params)
    table, notes = sensitivity.analyze(lhs)
    assert table is None and "lhs design" in notes[0]
