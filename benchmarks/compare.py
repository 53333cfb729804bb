"""The numba engine against SciPy on one 10-year ``cml_immune`` patient, in one run, one machine.

The patient: imatinib 400 mg daily (``interval`` PK, so the TKI drive is u = 1), stopped at
exactly 5 years and never restarted, decisions on the true BCR-ABL1 (no random numbers; the
engine still restarts at every ELN 2020 monitoring visit). Every method solves the same problem:

- ``numba sim.run.simulate``: the engine through its public Python wrapper (allocation, seeding,
  the kernel);
- ``numba kernel``: the bare jitted ``sim.engines.ode.simulate_one`` on preallocated arrays;
- ``solve_ivp`` LSODA, RK45, DOP853 and ``odeint``: the same jitted right-hand side
  ``sim.models.cml_immune.rhs``, called through a thin Python ``f(t, y)`` with the drive vector
  filled (u = 1 before the stop, 0 after), integrated in two pieces [0, stop] and [stop, horizon]
  (the restart the engine does at the stop), outputs on the engine's weekly grid.

All use rtol = 1e-6 and the per-state atol ``SPEC.atol(rtol)``. Times are medians over repeated
calls after a warm-up call (compilation excluded). Accuracy is the max relative difference of the
final state from DOP853 at rtol = 1e-10. Cold start: wall time from spawning a fresh Python
process to the return of the first kernel call for a scenario file, with a warm numba cache.

Run from the repository root::

    python -m benchmarks.compare            # ~1-2 minutes
    python -m benchmarks.compare --quick    # fewer repeats (seconds)

Writes ``compare.json`` and ``compare.png`` to ``--out`` (default ``results/bench``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
import scipy
from scipy.integrate import odeint, solve_ivp

from sim import models
from sim.engines import binding, rng
from sim.models import cml_immune
from sim.therapy import drive as dv

from . import common

RTOL = 1e-6
REF_RTOL = 1e-10
ENGINE = "numba sim.run.simulate"
KERNEL = "numba kernel simulate_one"
SCIPY_METHODS = ("LSODA", "RK45", "DOP853")
ODEINT = "scipy odeint (LSODA)"
GOALS = {"numba_median_s": 1e-4, "speedup_vs_lsoda": 70.0, "cold_start_s": 1.0}


# --- machine -----------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """CPU, cores, numba threads, load and library versions."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not initialised"
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_available": affinity,
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": layer,
        "loadavg": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numba": numba.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }


# --- timing ------------------------------------------------------------------------------------


def timed(fn: Callable[[], object], n: int, before: Callable[[], object] | None = None) -> list:
    """Seconds of n calls of fn (``before`` runs untimed ahead of each call), gc paused."""
    out = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(n):
            if before is not None:
                before()
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    finally:
        if enabled:
            gc.enable()
    return out


# --- SciPy on the same right-hand side --------------------------------------------------------


class ScipyProblem:
    """The fixed-stop patient for SciPy: a Python ``f(t, y)`` around the jitted rhs."""

    def __init__(self, prob: common.Problem, u_on: float):
        self.p = prob.arr["params"]
        self.y0 = prob.arg("y0").copy()
        self.t_out = prob.arr["t_out"]
        self.stop = float(prob.proto[common.ode.PR_STOP_AT])
        self.horizon = float(prob.proto[common.ode.PR_HORIZON])
        self.u_on = u_on
        self.drive = np.zeros(dv.N_DRIVE)
        self.n_state = self.y0.size
        self.calls = 0
        # output times of each piece (the engine's weekly grid), including the piece's ends
        t = self.t_out
        self.grid1 = np.unique(np.concatenate([t[t <= self.stop], [self.stop]]))
        self.grid2 = np.unique(np.concatenate([[self.stop], t[t > self.stop]]))

    def f(self, t, y):
        self.calls += 1
        dy = np.empty(self.n_state)
        cml_immune.rhs(t, y, self.p, self.drive, dy)
        return dy

    def _pieces(self):
        yield self.u_on, 0.0, self.stop, self.grid1
        yield 0.0, self.stop, self.horizon, self.grid2

    def solve_ivp(self, method: str, rtol: float = RTOL) -> np.ndarray:
        """Final state with ``solve_ivp``; outputs on the weekly grid."""
        atol = cml_immune.SPEC.atol(rtol)
        y = self.y0
        for u, a, b, grid in self._pieces():
            self.drive[dv.TKI] = u
            sol = solve_ivp(self.f, (a, b), y, method=method, rtol=rtol, atol=atol, t_eval=grid)
            if not sol.success:
                raise RuntimeError(f"solve_ivp {method}: {sol.message}")
            y = sol.y[:, -1].copy()
        return y

    def solve_ivp_dense(self, method: str, rtol: float) -> tuple[np.ndarray, np.ndarray]:
        """(t, Y) on the engine's output grid, for the grid comparison."""
        atol = cml_immune.SPEC.atol(rtol)
        y = self.y0
        ts, ys = [], []
        for u, a, b, grid in self._pieces():
            self.drive[dv.TKI] = u
            sol = solve_ivp(self.f, (a, b), y, method=method, rtol=rtol, atol=atol, t_eval=grid)
            ts.append(sol.t)
            ys.append(sol.y)
            y = sol.y[:, -1].copy()
        t = np.concatenate(ts)
        Y = np.concatenate(ys, axis=1).T
        keep = np.isin(t, self.t_out)
        t, idx = np.unique(t[keep], return_index=True)
        return t, Y[keep][idx]

    def odeint(self, rtol: float = RTOL) -> np.ndarray:
        atol = cml_immune.SPEC.atol(rtol)
        y = self.y0
        for u, _a, _b, grid in self._pieces():
            self.drive[dv.TKI] = u
            out, info = odeint(
                self.f, y, grid, rtol=rtol, atol=atol, tfirst=True, full_output=True,
                mxstep=100_000,
            )  # fmt: skip
            if info["message"] != "Integration successful.":
                raise RuntimeError(f"odeint: {info['message']}")
            y = out[-1].copy()
        return y


def rel_diff(y: np.ndarray, ref: np.ndarray) -> float:
    """max_i |y_i - ref_i| / |ref_i|."""
    return float(np.max(np.abs(y - ref) / np.maximum(np.abs(ref), 1e-300)))


# --- cold start --------------------------------------------------------------------------------

_COLD = r"""
import time
t_start = time.time()
import json, sys
from sim.scenario import load
from sim.run import scenario_arrays, simulate
t_import = time.time()
sc = load(sys.argv[1])
t_load = time.time()
arr = scenario_arrays(sc)
t_arrays = time.time()
kw = {k: v for k, v in arr.items() if k not in ("params", "sched", "proto", "atol")}
def go():
    return simulate(
        sc.model, arr["params"], arr["sched"], arr["proto"], seed=sc.seed, rtol=sc.rtol,
        atol=arr["atol"], **kw,
    )
raw = go()
t_first = time.time()
go()
t_second = time.time()
print(json.dumps({"start": t_start, "import": t_import, "load": t_load, "arrays": t_arrays,
                  "first": t_first, "second": t_second - t_first}))
"""


def cold_start(path: Path, runs: int) -> dict:
    """Median over ``runs`` fresh processes (after one discarded warm-up run) of the wall time
    from spawning to the return of the first kernel call, and of its parts."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(common.REPO), env.get("PYTHONPATH")]))
    rows = []
    for i in range(runs + 1):
        t_spawn = time.time()
        out = subprocess.run(
            [sys.executable, "-c", _COLD, str(path)],
            env=env, capture_output=True, text=True, check=True, timeout=300,
        )  # fmt: skip
        r = json.loads(out.stdout.strip().splitlines()[-1])
        if i == 0:
            continue  # makes sure the numba cache is warm
        rows.append(
            {
                "interpreter_s": r["start"] - t_spawn,
                "to_imports_done_s": r["import"] - t_spawn,
                "imports_s": r["import"] - r["start"],
                "scenario_load_s": r["load"] - r["import"],
                "scenario_arrays_s": r["arrays"] - r["load"],
                "first_simulate_s": r["first"] - r["arrays"],
                "second_simulate_s": r["second"],
                "total_s": r["first"] - t_spawn,
            }
        )
    med = {k: float(np.median([row[k] for row in rows])) for k in rows[0]}
    return {"scenario": str(path), "runs": runs, "median": med, "all": rows}


# --- the comparison ----------------------------------------------------------------------------


def wrapper_profile(prob: common.Problem, n: int) -> dict:
    """Medians of the pieces ``sim.run.simulate`` adds around the kernel."""
    model = models.get(common.MODEL)
    buffers = [
        (a.shape, a.dtype, a.flat[0] if a.size else 0)
        for name, a in zip(prob.names, prob.args)
        if name in ("y_out", "d_out", "visits", "events", "iv_out", "summary", "stats")
    ]

    def allocate():
        for shape, dtype, fill in buffers:
            np.full(shape, fill, dtype=dtype)

    parts = {
        "rng.seed_states(seed, 1)": lambda: rng.seed_states(prob.sc.seed, 1),
        "model.initial_state": lambda: model.initial_state(prob.arr["params"]),
        "models.get + binding.kernels": lambda: binding.kernels(models.get(common.MODEL)),
        "output allocation": allocate,
    }
    return {k: float(np.median(timed(f, n))) for k, f in parts.items()}


def run_compare(quick: bool, out: Path, scenario_path: Path | None = None) -> dict:
    n_numba = 50 if quick else 1000
    n_scipy = 3 if quick else 40
    n_cold = 2 if quick else 5
    load_before = list(os.getloadavg())

    prob = common.problem(common.FIXED_STOP)
    t0 = time.perf_counter()
    common.warm_up()
    first_call = time.perf_counter() - t0
    raw = prob.simulate()
    u_on = float(raw["drive"][0, dv.TKI])
    stats = raw["stats"]
    y_engine = raw["y"][-1].copy()

    # SciPy on the same right-hand side, restarted once at the stop
    sp = ScipyProblem(prob, u_on)
    sp.solve_ivp("DOP853", REF_RTOL)  # warm-up (jits the rhs for Python calls)
    ref = sp.solve_ivp("DOP853", REF_RTOL)
    t_ref, Y_ref = sp.solve_ivp_dense("DOP853", REF_RTOL)
    solvers: list[tuple[str, Callable[[], np.ndarray]]] = [
        (f"scipy solve_ivp {m}", lambda m=m: sp.solve_ivp(m)) for m in SCIPY_METHODS
    ]
    solvers.append((ODEINT, sp.odeint))
    finals, calls = {}, {}
    for name, fn in solvers:
        fn()  # warm-up
        sp.calls = 0
        finals[name] = fn()
        calls[name] = sp.calls

    # Interleaved rounds: this shared machine's speed drifts by up to 2x within a minute, so
    # each round times every method back to back and the ratios are taken within rounds.
    n_rounds = n_scipy
    per_round = max(1, n_numba // n_rounds)
    times: dict[str, list[float]] = {ENGINE: [], KERNEL: []}
    times.update({name: [] for name, _ in solvers})
    round_ratio = []
    for _ in range(n_rounds):
        tk = timed(prob.kernel, per_round, before=prob.reset)
        times[KERNEL] += tk
        times[ENGINE] += timed(prob.simulate, per_round)
        for name, fn in solvers:
            times[name] += timed(fn, 1)
        round_ratio.append(times["scipy solve_ivp LSODA"][-1] / float(np.median(tk)))
    t_engine, t_kernel = times[ENGINE], times[KERNEL]
    y_kernel = prob.y_out[-1].copy()
    profile = wrapper_profile(prob, n_numba)

    rows = []
    rhs_engine = int(stats[common.ode.ST_RHS])
    for name, ts, y in ((ENGINE, t_engine, y_engine), (KERNEL, t_kernel, y_kernel)):
        rows.append({"method": name, "times_s": ts, "rhs_calls": rhs_engine, "final": y.tolist()})
    for name, _ in solvers:
        rows.append(
            {
                "method": name,
                "times_s": times[name],
                "rhs_calls": calls[name],
                "final": finals[name].tolist(),
            }
        )

    # accuracy on the grid: BCR-ABL1 (state Y) where the reference is above its atol
    iy = 1
    y_grid_engine = raw["y"][np.isin(raw["t"], t_ref), iy]
    floor = cml_immune.SPEC.atol(RTOL)[iy]
    big = Y_ref[:, iy] > floor
    grid_engine = float(np.max(np.abs(y_grid_engine[big] - Y_ref[big, iy]) / Y_ref[big, iy]))

    base = float(np.median(t_engine))
    base_kernel = float(np.median(t_kernel))
    for row in rows:
        row["runs"] = len(row["times_s"])
        row["median_s"] = float(np.median(row["times_s"]))
        row["iqr_s"] = [float(q) for q in np.percentile(row["times_s"], [25, 75])]
        row["ratio_to_engine"] = row["median_s"] / base
        row["ratio_to_kernel"] = row["median_s"] / base_kernel
        row["max_rel_diff_final"] = rel_diff(np.asarray(row["final"]), ref)
    rows[0]["max_rel_diff_bcr_abl_grid"] = grid_engine
    rows[1]["max_rel_diff_bcr_abl_grid"] = grid_engine

    scen = scenario_path or common.SHIPPED_SCENARIO
    cold = cold_start(scen, n_cold)

    mach = machine()
    mach["loadavg_before"] = load_before
    mach["loadavg_after"] = mach.pop("loadavg")
    record = {
        "what": (
            "one 10-year cml_immune trajectory, imatinib 400 mg daily (interval PK, u = 1), "
            "fixed stop at 5 years, no restart, decisions on the true value; rtol 1e-6, "
            "atol = SPEC.atol(rtol); outputs on the weekly grid"
        ),
        "measurement": "median of N runs after a warm-up call, compile excluded, gc paused",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": quick,
        "machine": mach,
        "rtol": RTOL,
        "atol": cml_immune.SPEC.atol(RTOL).tolist(),
        "reference": f"solve_ivp DOP853 rtol {REF_RTOL:g}, atol SPEC.atol({REF_RTOL:g})",
        "reference_final": ref.tolist(),
        "u_on": u_on,
        "engine_stats": {
            "steps": int(stats[common.ode.ST_STEPS]),
            "rejected": int(stats[common.ode.ST_REJECTED]),
            "rhs_calls": rhs_engine,
            "restarts": int(stats[common.ode.ST_RESTARTS]),
            "visits": int(stats[common.ode.ST_VISITS]),
        },
        "first_call_in_process_s": first_call,
        "methods": rows,
        "wrapper_profile_s": profile,
        "wrapper_overhead_s": base - base_kernel,
        "cold_start": cold,
        "goals": {
            "numba_median_le_0.1ms": {"value_s": base, "met": base <= GOALS["numba_median_s"]},
            "kernel_median_le_0.1ms": {
                "value_s": base_kernel,
                "met": base_kernel <= GOALS["numba_median_s"],
            },
            # the engine is the jitted kernel; the Python wrapper's overhead is reported apart.
            # The ratio is the median over rounds of LSODA / kernel timed back to back.
            "speedup_vs_lsoda_ge_70": {
                "value": float(np.median(round_ratio)),
                "met": float(np.median(round_ratio)) >= GOALS["speedup_vs_lsoda"],
            },
            "cold_start_lt_1s": {
                "value_s": cold["median"]["total_s"],
                "met": cold["median"]["total_s"] < GOALS["cold_start_s"],
            },
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    figure(record, out / "compare.png")
    return record


# --- output ------------------------------------------------------------------------------------


def machine_line(m: dict) -> str:
    la = m["loadavg_before"]
    lb = m["loadavg_after"]
    return (
        f"{m['cpu']}, {m['cores']} cores ({m['cores_available']} available), "
        f"numba {m['numba_threads']} threads ({m['numba_threading_layer']}); load avg "
        f"{la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f} before, {lb[0]:.2f}/{lb[1]:.2f}/{lb[2]:.2f} after"
    )


def report(rec: dict) -> str:
    m = rec["machine"]
    lines = [
        f"machine: {machine_line(m)}",
        f"python {m['python']}, numba {m['numba']}, numpy {m['numpy']}, scipy {m['scipy']}; "
        f"{m['platform']}",
        f"problem: {rec['what']}",
        f"timing: {rec['measurement']}; accuracy vs {rec['reference']}",
        "",
        f"{'method':<30} {'median':>10} {'runs':>5} {'rhs calls':>9} {'x engine':>9} "
        f"{'x kernel':>9} {'rel.diff final':>14}",
    ]
    for r in rec["methods"]:
        lines.append(
            f"{r['method']:<30} {r['median_s'] * 1e3:>7.3f} ms {r['runs']:>5} "
            f"{r['rhs_calls']:>9} {r['ratio_to_engine']:>9.1f} {r['ratio_to_kernel']:>9.1f} "
            f"{r['max_rel_diff_final']:>14.2e}"
        )
    st = rec["engine_stats"]
    lines += [
        "",
        f"engine: {st['steps']} steps ({st['rejected']} rejected), {st['rhs_calls']} rhs calls, "
        f"{st['restarts']} segment restarts ({st['visits']} visits); SciPy restarts once; "
        f"engine max rel. diff of BCR-ABL1 on the weekly grid "
        f"{rec['methods'][0]['max_rel_diff_bcr_abl_grid']:.2e}",
        f"first call in this process (compile or cache load): "
        f"{rec['first_call_in_process_s']:.2f} s",
        f"wrapper overhead (run.simulate - kernel): {rec['wrapper_overhead_s'] * 1e6:.0f} µs; "
        "pieces: "
        + ", ".join(f"{k} {v * 1e6:.0f} µs" for k, v in rec["wrapper_profile_s"].items()),
    ]
    c = rec["cold_start"]["median"]
    lines.append(
        f"cold start ({Path(rec['cold_start']['scenario']).name}, warm numba cache, median of "
        f"{rec['cold_start']['runs']}): {c['total_s']:.2f} s from spawn to first kernel return; "
        f"interpreter {c['interpreter_s']:.3f} s, imports (sim.scenario, sim.run) "
        f"{c['imports_s']:.3f} s, scenario load (imports numba with the model) "
        f"{c['scenario_load_s']:.3f} s, scenario_arrays "
        f"{c['scenario_arrays_s']:.3f} s, first simulate (kernel modules, numba's first-use "
        f"registry set-up incl. scipy.linalg, cache load, run) {c['first_simulate_s']:.3f} s; "
        f"a second simulate takes "
        f"{c['second_simulate_s'] * 1e3:.2f} ms"
    )
    lines.append("goals: " + "; ".join(
        f"{k} {'met' if v['met'] else 'NOT met'} "
        f"({v.get('value_s', v.get('value')):.3g}{' s' if 'value_s' in v else 'x'})"
        for k, v in rec["goals"].items()
    ))  # fmt: skip
    return "\n".join(lines)


def figure(rec: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = rec["methods"]
    names = [r["method"] for r in rows]
    med = np.array([r["median_s"] * 1e3 for r in rows])
    lo = np.array([r["iqr_s"][0] * 1e3 for r in rows])
    hi = np.array([r["iqr_s"][1] * 1e3 for r in rows])
    colors = ["#1b6ca8" if n.startswith("numba") else "#b0b0b0" for n in names]
    fig, ax = plt.subplots(figsize=(8.0, 4.0))
    fig.subplots_adjust(left=0.27, right=0.98, bottom=0.27, top=0.92)
    ypos = np.arange(len(rows))[::-1]
    ax.barh(ypos, med, color=colors, xerr=[med - lo, hi - med], ecolor="#444444", capsize=2)
    ax.set_xscale("log")
    ax.set_yticks(ypos, names)
    ax.set_xlabel("time per 10-year trajectory (ms, log scale)")
    for y, r, v, top in zip(ypos, rows, med, hi):
        ax.text(
            top * 1.12, y,
            f"{v:.3g} ms ({r['ratio_to_engine']:.3g}x), {r['rhs_calls']} rhs, "
            f"err {r['max_rel_diff_final']:.0e}",
            va="center", fontsize=7,
        )  # fmt: skip
    goal = GOALS["numba_median_s"] * 1e3
    ax.axvline(goal, color="#c0392b", lw=0.8, ls="--")
    ax.text(goal * 1.05, ypos[0] + 0.45, "goal 0.1 ms", color="#c0392b", fontsize=7, va="bottom")
    ax.set_xlim(min(med.min(), goal) / 3, hi.max() * 400)
    ax.set_ylim(-0.6, len(rows) - 0.1)
    n_numba = rows[0]["runs"]
    n_scipy = rows[-1]["runs"]
    m = rec["machine"]
    ax.set_title(
        "cml_immune, 10 y, imatinib interval PK, stop at 5 y; rtol 1e-6, per-state atol",
        fontsize=9,
    )
    fig.text(
        0.01, 0.005,
        f"median of N runs, compile excluded (N = {n_numba} numba, {n_scipy} SciPy); "
        f"whiskers: interquartile range; (Nx): time / numba sim.run.simulate;\n"
        f"err: max rel. diff of the final state vs DOP853 rtol 1e-10; "
        f"cold start (spawn to first kernel return): {rec['cold_start']['median']['total_s']:.2f} s"
        f"\n"
        f"{machine_line(m)}; numba {m['numba']}, numpy {m['numpy']}, scipy {m['scipy']}",
        fontsize=6, va="bottom",
    )  # fmt: skip
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__.split(
        "\n")[0])  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="fewer repeats (seconds, not minutes)")
    ap.add_argument(
        "--out", type=Path, default=common.REPO / "results" / "bench", help="output directory"
    )
    ap.add_argument(
        "--scenario", type=Path, default=None,
        help="scenario file for the cold-start measurement (default: the shipped "
        "scenarios/imatinib-eln-stop.toml)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    rec = run_compare(args.quick, args.out, args.scenario)
    print(report(rec))
    print(f"\nwrote {args.out / 'compare.json'} and {args.out / 'compare.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
