"""Tests of sim.results: the labelled dataset, netCDF round trip, and safe storage of runs."""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from sim.models import cml_immune
from sim.params import DAYS_PER_MONTH
from sim.results import (
    ACTIONS,
    RunResult,
    from_dataset,
    load_run,
    provenance,
    summary_table,
    to_dataset,
    write_run,
)
from sim.therapy import drive

SCENARIO = '[scenario]\nname = "synthetic"\nhorizon = "8y"\nseed = 7\n'


def synthetic_result(name: str = "synthetic") -> RunResult:
    """A hand-made run: biphasic decline on TKI, half-dose lead-in, stop at 5 y, relapse, restart.

    Not a simulation: smooth closed-form curves with the shapes a real run has, and visits with
    detected and undetectable samples (undetectable whenever the true level is below 100/ABL1).
    """
    t = np.arange(0.0, 8 * 365.25, 7.0)
    t_lead, t_stop = 1645.0, 1826.0

    def on_tki(x):
        return 60.0 * (0.98 * np.exp(-0.05 * x) + 0.02 * np.exp(-0.004 * x))

    # visits: quarterly on therapy, monthly after the stop; relapse = first visit above MMR
    tv = np.sort(
        np.r_[np.arange(0.0, t_stop, 91.0), t_lead, t_stop, t_stop + 30.0 * np.arange(1, 9)]
    )
    relapse_growth = 0.03
    true_v = np.where(
        tv <= t_stop, on_tki(tv), on_tki(t_stop) * np.exp(relapse_growth * (tv - t_stop))
    )
    t_relapse = float(tv[(tv > t_stop) & (true_v > 0.1)][0])
    tv = np.r_[tv[tv <= t_relapse], t_relapse + np.arange(91.0, 2922.0 - t_relapse, 91.0)]

    def bcr(x):
        stop_phase = on_tki(t_stop) * np.exp(relapse_growth * (x - t_stop))
        b_relapse = on_tki(t_stop) * np.exp(relapse_growth * (t_relapse - t_stop))
        dx = x - t_relapse
        after = b_relapse * (0.9 * np.exp(-0.04 * dx) + 0.1 * np.exp(-0.005 * dx))
        return np.where(x <= t_stop, on_tki(x), np.where(x <= t_relapse, stop_phase, after))

    b = bcr(t)
    Y = b * 1e6 / 100.0
    y = np.column_stack(
        [
            1e3 * (1.0 + 0.5 * np.sin(t / 400.0)),
            Y,
            100.0 + 5000.0 * 2.0 * 419.0 * Y / (419.0**2 + Y**2),
            0.3 * Y / (Y + 1e4),
            250.0 / (1.0 + Y / 1e6),
        ]
    )
    periods = [(0.0, t_lead, 1.0), (t_lead, t_stop, 0.5), (t_relapse, float(t[-1]), 1.0)]
    dr = np.zeros((len(t), drive.N_DRIVE))
    for s, e, f in periods:
        dr[(t >= s) & (t < e), drive.TKI] = f

    rng = np.random.default_rng(3)
    true_v = bcr(tv)
    abl1 = np.round(50_000.0 * rng.lognormal(0.0, 0.5, len(tv)))
    lod = 100.0 / abl1
    detected = (true_v > lod).astype(float)
    measured = np.where(detected > 0, true_v * rng.lognormal(0.0, 0.3, len(tv)), 0.0)
    depth = np.select(
        [measured > 0.1, measured > 0.01, measured > 0.0032, measured > 0.001],
        [0, 3, 4, 5],
        default=6,
    )
    depth = np.where(detected > 0, depth, np.select([abl1 >= 1e5, abl1 >= 32e3], [6, 5], 4))
    action = np.zeros(len(tv), dtype=int)
    action[tv == t_lead] = 1
    action[tv == t_stop] = 2
    action[tv == t_relapse] = 3
    visits = {
        "time": tv,
        "true_pct": true_v,
        "measured_pct": measured,
        "detected": detected,
        "abl1": abl1,
        "lod_pct": lod,
        "depth": depth,
        "on_tki": ((tv < t_stop) | (tv >= t_relapse)).astype(int),
        "action": action,
    }
    nan = math.nan
    summary = {
        "t_mmr": float(t[np.argmax(b <= 0.1)]),
        "t_mr4": float(t[np.argmax(b <= 0.01)]),
        "t_mr45": float(t[np.argmax(b <= 0.0032)]),
        "t_mmr_measured": 365.0,
        "t_mr4_measured": 730.0,
        "t_mr45_measured": nan,
        "stop_time": t_stop,
        "relapse_time": t_relapse,
        "restart_time": t_relapse,
        "n_stops": 1.0,
        "bcr_abl_at_stop": float(bcr(t_stop)),
        **{
            f"{s}_at_stop": float(v)
            for s, v in zip(cml_immune.STATES, y[t <= t_stop][-1], strict=True)
        },
        "max_bcr_abl_after_stop": float(b[t > t_stop].max()),
        "x0_capped": 0.0,
    }
    return RunResult(
        name=name,
        model=cml_immune.SPEC,
        params=cml_immune.PARAMS.defaults(),
        t=t,
        y=y,
        bcr_abl=b,
        drive=dr,
        visits=visits,
        summary=summary,
        tki_periods=periods,
        stats={"steps": 1234, "rejected": 5, "rhs_calls": 7500, "failures": 0, "restarts": 4},
        provenance=provenance(SCENARIO, seed=7, engine="ode"),
    )


@pytest.fixture(scope="module")
def result() -> RunResult:
    return synthetic_result()


@pytest.fixture
def no_figure(monkeypatch):
    """write_run without drawing (storage tests do not need the figure; it has its own tests)."""
    from sim.plots import trajectory

    def fake_plot(result, path_stem=None, formats=("png", "pdf")):
        for fmt in formats:
            with open(f"{path_stem}.{fmt}", "wb") as f:
                f.write(b"figure")

    monkeypatch.setattr(trajectory, "plot_trajectory", fake_plot)


# ---------------------------------------------------------------------------------------------
# RunResult and provenance


def test_runresult_rejects_inconsistent_shapes(result):
    with pytest.raises(ValueError, match="bcr_abl has shape"):
        RunResult(**{**result.__dict__, "bcr_abl": result.bcr_abl[:-1]})
    with pytest.raises(ValueError, match="visit arrays"):
        RunResult(**{**result.__dict__, "visits": {**result.visits, "abl1": np.ones(2)}})


def test_actions_codes():
    assert ACTIONS[0] == "none" and ACTIONS[2] == "stop" and ACTIONS[4] == "restart"
    assert sorted(ACTIONS) == [0, 1, 2, 3, 4, 5, 6]


def test_provenance_is_strings_with_versions():
    import numba

    import sim

    p = provenance(SCENARIO, seed=42, engine="ode")
    assert all(isinstance(v, str) for v in p.values())
    assert p["version"] == sim.__version__
    assert p["seed"] == "42" and p["engine"] == "ode" and p["scenario"] == SCENARIO
    assert p["numpy"] == np.__version__ and p["numba"] == numba.__version__
    rev = p["git_revision"]
    assert rev == "unknown" or (len(rev.removesuffix("-dirty")) == 40)
    assert p["created"].endswith("+00:00")


def test_git_revision_unknown_without_git(monkeypatch):
    from sim import results

    monkeypatch.setenv("PATH", "/nonexistent")
    assert results.git_revision() == "unknown"


# ---------------------------------------------------------------------------------------------
# labelled dataset


def test_dataset_dims_and_variables(result):
    ds = to_dataset(result)
    n_t, n_v = len(result.t), result.n_visits
    assert ds.sizes["patient"] == 1
    assert ds.y.dims == ("patient", "time", "state") and ds.y.shape == (1, n_t, 5)
    assert ds.bcr_abl.dims == ("patient", "time")
    assert ds.drive.dims == ("patient", "time", "drive_slot")
    assert ds.visit_time.dims == ("patient", "visit") and ds.sizes["visit"] == n_v
    assert ds.param.dims == ("patient", "parameter")
    assert list(ds.state.values) == list(cml_immune.STATES)
    assert list(ds.parameter.values) == list(cml_immune.PARAMS.names)
    np.testing.assert_array_equal(ds.y.sel(state="Y").values[0], result.y[:, 1])
    np.testing.assert_array_equal(ds.param.sel(parameter="K_y").values, [1e6])
    np.testing.assert_array_equal(ds.visit_detected.values[0], result.visits["detected"])
    for key, value in result.summary.items():
        assert ds[key].dims == ("patient",)
        np.testing.assert_array_equal(ds[key].values, [value])
    assert ds.solver_steps.values.tolist() == [1234] and ds.solver_restarts.values.tolist() == [4]
    assert ds.tki_dose_fraction.values[0].tolist() == [1.0, 0.5, 1.0]


def test_dataset_units_and_long_names_everywhere(result):
    ds = to_dataset(result)
    for name, var in ds.variables.items():
        assert "units" in var.attrs and "long_name" in var.attrs, name
    assert ds.time.attrs["units"] == "day"
    assert ds.bcr_abl.attrs["units"] == "%"
    assert ds.t_mmr.attrs["units"] == "day" and ds.stop_time.attrs["units"] == "day"
    assert ds.N_at_stop.attrs["units"] == "cells/µL" and ds.E_at_stop.attrs["units"] == "fraction"
    assert ds.bcr_abl_at_stop.attrs["units"] == "%"
    assert ds.visit_lod_pct.attrs["units"] == "%" and ds.visit_abl1.attrs["units"] == "copies"
    assert list(ds.param.attrs["units"]) == [p.unit for p in cml_immune.PARAMS]
    assert list(ds.parameter_units.values) == [p.unit for p in cml_immune.PARAMS]
    assert list(ds.state_units.values) == list(cml_immune.STATE_UNITS)
    assert "stop" in ds.visit_action.attrs["flag_meanings"].split()


def test_dataset_attrs_are_provenance_strings(result):
    ds = to_dataset(result)
    assert all(isinstance(v, str) for v in ds.attrs.values())
    assert ds.attrs["scenario"] == SCENARIO and ds.attrs["seed"] == "7"
    assert ds.attrs["name"] == "synthetic" and ds.attrs["model"] == "cml_immune"


def test_summary_table_has_months(result):
    df = summary_table(result)
    assert len(df) == 1
    assert df.loc[0, "stop_time"] == pytest.approx(1826.0)
    assert df.loc[0, "stop_time_months"] == pytest.approx(1826.0 / DAYS_PER_MONTH)
    assert math.isnan(df.loc[0, "t_mr45_measured_months"])
    assert "n_stops_months" not in df and df.loc[0, "solver_steps"] == 1234


# ---------------------------------------------------------------------------------------------
# storage


def test_netcdf_round_trip(result, tmp_path, no_figure):
    out = write_run(result, results_root=tmp_path)
    loaded = load_run(out)
    xr.testing.assert_identical(loaded, to_dataset(result))
    assert loaded.time.dtype == np.float64  # days stay days, not timedelta64
    back = from_dataset(loaded)
    np.testing.assert_array_equal(back.y, result.y)
    assert back.summary.keys() == result.summary.keys()
    assert back.tki_periods == result.tki_periods and back.stats == result.stats
    assert back.provenance == result.provenance


def test_write_run_creates_all_files(result, tmp_path):
    out = write_run(result, results_root=tmp_path)
    assert out == tmp_path / "synthetic"
    names = {p.name for p in out.iterdir()}
    assert names == {
        "trajectory.nc",
        "summary.csv",
        "visits.csv",
        "scenario.toml",
        "trajectory.png",
        "trajectory.pdf",
    }
    assert (out / "scenario.toml").read_text(encoding="utf-8") == SCENARIO
    visits = pd.read_csv(out / "visits.csv")
    assert len(visits) == result.n_visits
    assert (visits.action_name == "stop").sum() == 1
    assert visits.time_months.iloc[-1] == pytest.approx(result.visits["time"][-1] / DAYS_PER_MONTH)
    summary = pd.read_csv(out / "summary.csv")
    assert summary.loc[0, "relapse_time"] == pytest.approx(result.summary["relapse_time"])
    assert math.isnan(summary.loc[0, "t_mr45_measured"])
    assert (out / "trajectory.png").stat().st_size > 10_000
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(out).st_mode & 0o777 == 0o777 & ~mask  # not mkdtemp's private 0o700
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_write_run_never_overwrites(result, tmp_path, no_figure):
    first = write_run(result, results_root=tmp_path)
    marker = first / "marker"
    marker.write_text("first run")
    second = write_run(result, results_root=tmp_path)
    third = write_run(result, results_root=tmp_path)
    assert second == tmp_path / "synthetic.2" and third == tmp_path / "synthetic.3"
    assert marker.read_text() == "first run"
    assert (second / "trajectory.nc").is_file() and not (second / "marker").exists()


def test_write_run_overwrite_replaces(result, tmp_path, no_figure):
    first = write_run(result, results_root=tmp_path)
    (first / "marker").write_text("old")
    again = write_run(result, results_root=tmp_path, overwrite=True)
    assert again == first
    assert not (again / "marker").exists() and (again / "summary.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]


def test_failure_leaves_nothing_behind(result, tmp_path, monkeypatch):
    from sim.plots import trajectory

    def broken(*args, **kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(trajectory, "plot_trajectory", broken)
    with pytest.raises(RuntimeError, match="figure failed"):
        write_run(result, results_root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_failure_with_overwrite_keeps_old_run(result, tmp_path, no_figure, monkeypatch):
    first = write_run(result, results_root=tmp_path)
    (first / "marker").write_text("old")
    from sim.plots import trajectory

    def broken(*args, **kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(trajectory, "plot_trajectory", broken)
    with pytest.raises(RuntimeError):
        write_run(result, results_root=tmp_path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]
    assert (first / "marker").read_text() == "old"


def test_write_run_without_figure(result, tmp_path):
    out = write_run(result, results_root=tmp_path, figure=False)
    assert not list(out.glob("trajectory.p*"))


@pytest.mark.parametrize("bad", ["", "../escape", ".hidden", "a/b"])
def test_write_run_rejects_unsafe_names(result, tmp_path, bad):
    with pytest.raises(ValueError, match="directory name"):
        write_run(RunResult(**{**result.__dict__, "name": bad}), results_root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_load_run_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no stored run"):
        load_run(tmp_path / "nothing")
