"""The benchmark additions: the floor loop, the scaling fit and figure, the compile and cohort
benchmarks, and ``benchmarks.compare``'s table for the manual and optional comparisons. Tiny sizes;
nothing is asserted about speed."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import bench_cohort, bench_jit, bench_ode, common, compare, floor, scaling  # noqa: E402
from sim.engines.rng import ReferenceStream  # noqa: E402
from sim.plots.trajectory import check_no_overlap  # noqa: E402


def test_floor_loop_is_xoshiro_and_kills_at_its_rate():
    n = 100_000
    state = floor.seed_state(5)
    ref = ReferenceStream(state.copy())
    alive = np.ones(n, dtype=np.uint8)
    left = floor.death_step(alive, state, 0.3)
    for _ in range(n):  # one draw per agent, in order
        ref.next_u64()
    np.testing.assert_array_equal(state, ref.state)
    assert left == alive.sum()
    assert abs(left / n - 0.7) < 5 * np.sqrt(0.21 / n)
    assert floor.ns_per_agent_update(1000, steps=2, repeats=1) > 0


def test_fit_exponent_recovers_a_power_law():
    x = np.array([1.0, 10.0, 100.0, 1000.0])
    k, c = scaling.fit_exponent(x, 3e-4 * x**0.85)
    assert k == pytest.approx(0.85) and c == pytest.approx(3e-4)
    assert np.isnan(scaling.fit_exponent([1.0], [2.0])[0])


def test_scaling_series_and_figure(tmp_path, monkeypatch):
    series = {}
    for name, rows in {
        "horizon": scaling.horizon_series([1, 3], 2),
        "cohort": scaling.cohort_series([2, 4], 1),
        "floor": scaling.floor_series([1000, 4000], 2, 1),
        "workers": scaling.worker_series(4, 1),
    }.items():
        k, c = scaling.fit_exponent([r["x"] for r in rows], [r["median_s"] for r in rows])
        series[name] = {"what": name, "xlabel": name, "rows": rows, "exponent": k,
                        "prefactor_s": c, "note": ""}  # fmt: skip
    assert series["horizon"]["rows"][1]["rhs_calls"] > series["horizon"]["rows"][0]["rhs_calls"]
    assert series["workers"]["rows"][0]["x"] == 1
    # an agent engine that cannot be imported leaves the other series standing
    import sim.engines

    monkeypatch.setitem(sys.modules, "sim.engines.abm", None)
    monkeypatch.delattr(sim.engines, "abm", raising=False)  # imported by an earlier test
    rows, note = scaling.agent_series([1e-2], 5.0, 1)
    assert rows == [] and note.startswith("agent engine not measured: ModuleNotFoundError")
    series["agents"] = {"what": "a", "xlabel": "agents", "rows": [], "exponent": float("nan"),
                        "prefactor_s": float("nan"), "note": note}  # fmt: skip
    mach = compare.machine()
    mach["loadavg_before"] = mach["loadavg_after"] = mach.pop("loadavg")
    rec = {"measurement": "median of N runs", "machine": mach, "series": series}
    fig = scaling.figure(rec, tmp_path / "scaling")
    assert check_no_overlap(fig) == []
    scaling.write_csv(rec, tmp_path / "scaling_data.csv")
    assert (tmp_path / "scaling.png").stat().st_size > 10_000
    assert b"/FontFile2" in (tmp_path / "scaling.pdf").read_bytes()
    text = (tmp_path / "scaling_data.csv").read_text()
    assert text.count("\nfloor,") == 2
    assert "exponent k" in scaling.report(rec)


def test_compile_and_cache_load_tracks_on_the_floor_kernel():
    assert set(bench_jit.Compile.params) == set(common.FIRST_CALL)
    compiled = bench_jit.Compile().track_compile_seconds("floor")
    b = bench_jit.CacheLoad()
    b.setup("floor")
    loaded = b.track_cache_load_seconds("floor")
    assert compiled > 0 and loaded > 0
    with pytest.raises(ValueError, match="kind must be one of"):
        common.first_call_seconds("nope")


def test_cohort_and_horizon_benchmarks_run(monkeypatch):
    b = bench_cohort.Cohort()
    b.setup(3)
    b.time_cohort(3)
    assert b.track_patients_per_second(3) > 0
    h = bench_ode.Horizon()
    h.setup(2)
    h.time_kernel(2)
    assert h.problem.proto[common.ode.PR_HORIZON] == pytest.approx(2 * 365.25)
    with pytest.raises(ValueError):
        common.with_horizon("no horizon here", 3)


def _record() -> dict:
    """A record of the shape ``benchmarks.compare.run_compare`` writes (numbers made up)."""
    mach = compare.machine()
    mach["loadavg_before"] = mach["loadavg_after"] = mach.pop("loadavg")
    methods = [
        (compare.ENGINE, 2e-4, 1299, 1.6),
        (compare.KERNEL, 1.3e-4, 1299, 1.0),
        ("scipy solve_ivp LSODA", 1.3e-2, 650, 97.0),
        (compare.ODEINT, 1.9e-3, 645, 14.0),
    ]
    return {
        "created": "2026-11-26T00:00:00+0000",
        "quick": False,
        "machine": mach,
        "methods": [
            {
                "method": m,
                "median_s": t,
                "rhs_calls": c,
                "ratio_to_kernel": r,
                "runs": 40,
                "max_rel_diff_final": 1e-6,
            }
            for m, t, c, r in methods
        ],
        "goals": {"speedup_vs_lsoda_ge_70": {"value": 95.0, "met": True}},
        "cold_start": {"runs": 5, "median": {"total_s": 1.1}},
    }


def test_docs_table_is_written_for_the_performance_page(tmp_path):
    rec = _record()
    page = tmp_path / "performance" / "compare.md"
    compare.write_docs(rec, page)
    text = page.read_text()
    assert text.startswith(compare.DOCS_HEADER)
    block = compare.docs_block(rec)
    assert block in text
    rows = [ln for ln in block.splitlines() if ln.startswith("| ") and "ms |" in ln]
    assert len(rows) == len(rec["methods"])
    assert rows[0].startswith("| numba kernel `simulate_one`")  # fastest first
    assert "| 1 |" in rows[0] and "| 97 |" in block  # time / kernel
    assert "95x" in block and "1.10 s" in block
    assert not list(tmp_path.rglob("*.tmp"))


def test_benchmark_outputs_resolve_inside_the_repository_not_the_cwd():
    repo = Path(compare.__file__).resolve().parents[1]
    assert compare.DOCS_TABLE == repo / "docs" / "performance" / "compare.md"
    assert compare.DOCS_TABLE.is_file()  # the page includes it
    assert scaling.DOCS_FIGURE == repo / "docs" / "figures" / "scaling.png"
    help_text = subprocess.run(
        [sys.executable, str(repo / "benchmarks" / "compare.py"), "--help"],
        cwd="/", capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "--docs" in help_text and "--readme" not in help_text


def test_optional_comparisons_join_the_record_and_the_report(monkeypatch):
    ok = types.ModuleType("benchmarks.cmp_ok")
    ok.measure = lambda quick: {"quick": quick, "ratio": 12.5}
    ok.report_lines = lambda rec: [f"ratio {rec['ratio']}"]
    bad = types.ModuleType("benchmarks.cmp_bad")
    bad.measure = lambda quick: 1 / 0
    bad.report_lines = lambda rec: []
    monkeypatch.setitem(sys.modules, "benchmarks.cmp_ok", ok)
    monkeypatch.setitem(sys.modules, "benchmarks.cmp_bad", bad)
    extra = compare.extra_comparisons(
        True, ("benchmarks.cmp_ok", "benchmarks.cmp_bad", "benchmarks.cmp_missing")
    )
    assert extra["cmp_ok"] == {"quick": True, "ratio": 12.5}
    assert extra["cmp_bad"]["error"].startswith("ZeroDivisionError")
    assert "cmp_missing" not in extra
    lines = compare.extra_lines({"extra": extra})
    assert "ratio 12.5" in lines and any("cmp_bad failed" in x for x in lines)
