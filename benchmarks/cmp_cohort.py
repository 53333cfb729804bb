"""The 10,000-patient cohort benchmark (issue 4), next to the same cohort through SciPy.

``python -m benchmarks.cmp_cohort [--quick]`` prints, in one run on one machine:

- the shipped ``scenarios/cohort-euro-ski.toml`` (10,000 patients, 12-year horizon, imatinib
  ``interval`` PK, ELN 2020 visits with measured qPCR, the EURO-SKI stop rule) through
  :func:`sim.cohort.run_cohort` on all numba threads: the kernel time and the whole call
  (sampling and the outcome table included), median of N runs, compile excluded (one small warm-up
  cohort first);
- the same virtual patients through ``scipy.integrate.solve_ivp`` (LSODA, the choice for a
  problem that turns stiff, and RK45) on a random sample of them, with the therapy of the
  kernel's own run (TKI on until that patient's stop, then off; restarts included, no visits,
  so SciPy does strictly less work), scaled to 10,000 patients.

:func:`measure` returns the record, :func:`report_lines` formats it (``benchmarks.compare``
includes both).
"""

from __future__ import annotations

if __package__ in (None, ""):  # run by its path: import the package from the repository
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "benchmarks"

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

SCENARIO = Path(__file__).parents[1] / "scenarios" / "cohort-euro-ski.toml"
GOAL_SECONDS = 2.0


def _scipy_patient(model, p: np.ndarray, stop: float, restart: float, horizon: float, method: str):
    from scipy.integrate import solve_ivp

    from sim.models import cml_immune as cm
    from sim.therapy import drive as dv

    y0 = cm.initial_state(p)
    atol = 1e-6 * np.asarray(model.atol_scale)
    drive = np.zeros(dv.N_DRIVE)
    pieces = [(0.0, horizon, 1.0)]
    if np.isfinite(stop):
        pieces = [(0.0, stop, 1.0)]
        if np.isfinite(restart) and restart < horizon:
            pieces += [(stop, restart, 0.0), (restart, horizon, 1.0)]
        else:
            pieces += [(stop, horizon, 0.0)]
    y = y0
    for t0, t1, u in pieces:
        if t1 <= t0:
            continue
        drive[dv.TKI] = u

        def f(t, s, d=drive.copy()):  # noqa: B008 (the piece's drive, bound now)
            out = np.empty(5)
            cm.rhs(t, s, p, d, out)
            return out

        sol = solve_ivp(f, (t0, t1), y, method=method, rtol=1e-6, atol=atol)
        y = sol.y[:, -1]
    return y


def measure(quick: bool = False) -> dict:
    """Time the 10k cohort (kernel and whole call) and a scaled SciPy sample."""
    import numba

    from sim import cohort, scenario

    sc = scenario.load(SCENARIO)
    n = 2000 if quick else sc.cohort.size  # quick: a smoke run, not the goal's 10,000
    cohort.run_cohort(sc, size=200)  # compile or load from cache
    runs = 1 if quick else 3
    kernel, total = [], []
    result = None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = cohort.run_cohort(sc, size=n)
        total.append(time.perf_counter() - t0)
        kernel.append(result.runtime)
    table = result.outcomes
    rng = np.random.default_rng(1)
    sample = rng.choice(n, size=4 if quick else 40, replace=False)
    scipy_times = {}
    for method in ("LSODA", "RK45"):
        t0 = time.perf_counter()
        for j in sample:
            _scipy_patient(
                result.model, result.params[j], table["stop_time"].iloc[j],
                table["restart_time"].iloc[j], sc.horizon, method,
            )  # fmt: skip
        per = (time.perf_counter() - t0) / sample.size
        scipy_times[method] = {"per_patient_s": per, "scaled_s": per * n}
    stats = result.stats
    from sim.engines import ode

    return {
        "patients": n,
        "threads": numba.get_num_threads(),
        "runs": runs,
        "kernel_s_median": statistics.median(kernel),
        "total_s_median": statistics.median(total),
        "kernel_s_all": kernel,
        "goal_s": GOAL_SECONDS,
        "steps_mean": float(stats[:, ode.ST_STEPS].mean()),
        "rhs_mean": float(stats[:, ode.ST_RHS].mean()),
        "stiff_fraction": float((stats[:, ode.ST_STIFF] > 0).mean()),
        "scipy_sample": int(sample.size),
        "scipy": scipy_times,
    }


def report_lines(rec: dict) -> list[str]:
    """The record as printed lines (ratios against SciPy)."""
    k = rec["kernel_s_median"]
    if rec["patients"] >= 10_000:
        verdict = "met" if k <= rec["goal_s"] else "NOT met"
        goal = f"goal <= {rec['goal_s']:g} s for 10,000: {verdict}"
    else:
        goal = "quick run: the goal is for 10,000"
    lines = [
        f"Cohort: {rec['patients']:,} patients, EURO-SKI design, 12-year horizon, interval PK, "
        f"ELN visits ({rec['threads']} threads, median of {rec['runs']}, compile excluded)",
        f"  kernel {k:.2f} s, whole run_cohort {rec['total_s_median']:.2f} s ({goal}); "
        f"{rec['steps_mean']:.0f} steps and {rec['rhs_mean']:.0f} rhs calls per patient, "
        f"{100 * rec['stiff_fraction']:.0f} % of patients finish with RODAS4",
    ]
    for method, v in rec["scipy"].items():
        lines.append(
            f"  solve_ivp {method}: {1e3 * v['per_patient_s']:.1f} ms/patient on a sample of "
            f"{rec['scipy_sample']}, scaled {v['scaled_s']:.0f} s  -> kernel is "
            f"{v['scaled_s'] / k:.0f}x faster"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cmp_cohort")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the record here")
    args = ap.parse_args(argv)
    rec = measure(args.quick)
    print("\n".join(report_lines(rec)))
    if args.json:
        args.json.write_text(json.dumps(rec, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
