"""Smoke test of the benchmark suite: every benchmark runs once on tiny sizes (not timed, nothing
asserted about speed), and ``benchmarks.compare --quick`` writes a complete record."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import bench_ode, common, compare  # noqa: E402


def test_trajectory_benchmarks_run():
    for rtol in bench_ode.Trajectory.params:
        b = bench_ode.Trajectory()
        b.setup(rtol)
        b.time_trajectory(rtol)
        b.time_kernel(rtol)
        assert b.track_rhs_calls(rtol) > 0
        assert np.isfinite(b.problem.y_out[-1]).all()


def test_ensemble_benchmarks_run(monkeypatch):
    b = bench_ode.Ensemble()
    b.setup(3)
    b.time_ensemble(3)
    assert np.isfinite(b.ensemble.ys[:, -1]).all()
    assert (b.ensemble.stats[:, common.ode.ST_FAILURES] == 0).all()

    monkeypatch.setattr(bench_ode.Throughput, "size", 4)
    monkeypatch.setattr(bench_ode.Throughput, "repeats", 1)
    t = bench_ode.Throughput()
    threads = bench_ode.Throughput.params[-1]
    t.setup(threads)
    try:
        assert t.track_trajectories_per_second(threads) > 0
    finally:
        t.teardown(threads)

    monkeypatch.setattr(bench_ode.Memory, "size", 3)
    m = bench_ode.Memory()
    m.setup()
    m.peakmem_ensemble_1000()


def test_ensemble_rows_match_single_runs():
    """The ensemble benchmark does the same work as single runs of its rows."""
    e = common.ensemble(2)
    e.run()
    p = common.problem(common.ELN_STOP)
    for name in ("p", "y0", "state"):
        p.arg(name)[:] = e.arg(name)[1]
        p.pristine[p.names.index(name)] = e.arg(name)[1].copy()
    p.reset()
    p.kernel()
    np.testing.assert_allclose(p.y_out, e.ys[1], rtol=1e-9, atol=0)
    assert (p.stats == e.stats[1]).all()


def test_first_call_subprocess():
    # warm cache: exercises the fresh-process path without a multi-second compile
    out = common.first_call_seconds("simulate_one", fresh_cache=False)
    assert out["first_call"] > 0 and out["import"] > 0
    with pytest.raises(ValueError):
        common.first_call_seconds("nope")


def test_compare_quick(tmp_path):
    assert compare.main(["--quick", "--out", str(tmp_path)]) == 0
    rec = json.loads((tmp_path / "compare.json").read_text(encoding="utf-8"))
    methods = {r["method"]: r for r in rec["methods"]}
    expected = {compare.ENGINE, compare.KERNEL, compare.ODEINT}
    expected |= {f"scipy solve_ivp {m}" for m in compare.SCIPY_METHODS}
    assert set(methods) == expected
    for r in methods.values():
        assert r["ratio_to_engine"] > 0 and r["median_s"] > 0 and r["rhs_calls"] > 0
        assert np.isfinite(r["max_rel_diff_final"])
    assert rec["cold_start"]["median"]["total_s"] > 0
    assert (tmp_path / "compare.png").stat().st_size > 0
