"""How the cost grows: simulated horizon, cohort size, agent count and worker count.

Four measurements, each a median of repeated calls after a warm-up call (compilation excluded),
fitted by least squares on log–log axes (cost ∝ size^k; the exponent k is printed and drawn):

- **horizon**: the bare ODE kernel ``simulate_one`` on one ``cml_immune`` patient (imatinib
  400 mg throughout, ELN 2020 visits, weekly output) over 1 to 40 years;
- **cohort size**: ``simulate_ensemble`` over m patients (p_xy and e_tki log-normal around the
  defaults; all numba threads);
- **agent count**: the agent engine (:mod:`sim.engines.abm`, when it is there) on one untreated
  patient at several cell scales, as time per step against agent updates per step (as the engine
  counts them; steps 50 to 100 minus steps 0 to 50, so set-up is excluded), beside the physical
  floor: the ns per agent of a minimal xoshiro256** loop (:mod:`benchmarks.floor`: one random
  number, one compare, one store per agent);
- **workers**: the 1000-patient ensemble on 1, 2, ... numba threads (ideal: k = -1). On a shared
  machine other load flattens this curve: the load average is recorded.

Run from the repository root, or from any folder by the file's path::

    python -m benchmarks.scaling            # a few minutes
    python -m benchmarks.scaling --quick    # fewer sizes and repeats
    python -m benchmarks.scaling --docs     # and copy the figure into docs/figures/
    python path/to/cmlsim/benchmarks/scaling.py

Writes ``scaling.json``, ``scaling_data.csv`` and ``scaling.png`` / ``.pdf`` to ``--out``
(default ``results/bench`` of the repository).
"""

from __future__ import annotations

if __package__ in (None, ""):  # run by its path: import the package from the repository
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "benchmarks"

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numba
import numpy as np

from . import common, floor
from .compare import machine, machine_line, timed

#: The figure of the manual's performance page, written by ``--docs``.
DOCS_FIGURE = common.REPO / "docs" / "figures" / "scaling.png"

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def fit_exponent(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares fit of log y = log c + k log x: returns (k, c)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = (x > 0) & (y > 0) & np.isfinite(y)
    if ok.sum() < 2:
        return float("nan"), float("nan")
    k, logc = np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)
    return float(k), float(np.exp(logc))


def _median_iqr(ts: list[float]) -> dict:
    q1, med, q3 = np.percentile(ts, [25, 50, 75])
    return {"median_s": float(med), "q1_s": float(q1), "q3_s": float(q3), "runs": len(ts)}


def horizon_series(years: list[float], n: int) -> list[dict]:
    """Median kernel time per horizon."""
    rows = []
    for y in years:
        prob = common.problem(common.with_horizon(common.CONTINUOUS, y))
        prob.reset()
        prob.kernel()
        ts = timed(prob.kernel, n, before=prob.reset)
        rows.append({"x": y, **_median_iqr(ts), "rhs_calls": int(prob.stats[common.ode.ST_RHS])})
    return rows


def cohort_series(sizes: list[int], n: int) -> list[dict]:
    """Median ensemble time per cohort size."""
    rows = []
    for m in sizes:
        e = common.ensemble(m)
        e.run()
        rows.append({"x": m, **_median_iqr(timed(e.run, n))})
    return rows


def worker_series(size: int, n: int) -> list[dict]:
    """Median ensemble time per numba thread count."""
    e = common.ensemble(size)
    before = numba.get_num_threads()
    rows = []
    try:
        for threads in range(1, numba.config.NUMBA_NUM_THREADS + 1):
            numba.set_num_threads(threads)
            e.run()
            rows.append({"x": threads, **_median_iqr(timed(e.run, n))})
    finally:
        numba.set_num_threads(before)
    return rows


def floor_series(agents: list[int], steps: int, n: int) -> list[dict]:
    """Time per step of the floor loop by agent count (and ns per agent-update)."""
    rows = []
    for a in agents:
        alive = np.ones(a, dtype=np.uint8)
        state = floor.seed_state()
        floor.death_step(alive, state, 1e-9)

        def step(alive=alive, state=state) -> None:
            for _ in range(steps):
                floor.death_step(alive, state, 1e-9)

        ts = [t / steps for t in timed(step, n)]
        row = {"x": a, **_median_iqr(ts)}
        row["ns_per_agent_update"] = row["median_s"] / a * 1e9
        rows.append(row)
    return rows


def agent_series(scales: list[float], days: float, n: int) -> tuple[list[dict], str]:
    """Time per step of the agent engine (one untreated patient, so that the populations stay
    near their diagnosis levels; daily steps) by cell scale.

    Each scale runs ``days`` and ``2 days``; the differences of time and of agent updates over
    the extra ``days`` steps give the cost per step without the set-up (allocation, initial
    agents). Returns the rows (x = agent updates per step) and a note; no rows and the reason
    when :mod:`sim.engines.abm` is missing or its interface differs from the one used here.
    """
    try:
        from sim.engines import abm
        from sim.models import cml_immune

        par = cml_immune.PARAMS.defaults()

        def run(scale: float, horizon: float) -> dict:
            return abm.simulate_abm(
                par, {"cell_scale": scale}, horizon=horizon, seed=1, n=1, u_tki=0.0
            )

        run(scales[0], days)  # compile or load from cache
        rows = []
        for scale in scales:
            cost = {}
            for horizon in (days, 2 * days):
                out: dict = {}

                def call(scale=scale, horizon=horizon, out=out) -> None:
                    out.update(run(scale, horizon))

                cost[horizon] = (np.array(timed(call, n)), float(np.sum(out["updates"])))
            ts = (cost[2 * days][0] - cost[days][0]) / days  # paired by repeat
            updates = (cost[2 * days][1] - cost[days][1]) / days
            row = {"x": updates, "cell_scale": scale, **_median_iqr(list(ts))}
            row["ns_per_agent_update"] = row["median_s"] / updates * 1e9
            rows.append(row)
        note = (
            f"sim.engines.abm, steps {days:g} to {2 * days:g} days at dt = 1 day, "
            f"cell scales {scales}"
        )
        return rows, note
    except Exception as exc:  # an engine in progress must not stop the other measurements
        return [], f"agent engine not measured: {type(exc).__name__}: {exc}"


def run_scaling(quick: bool, out: Path) -> dict:
    """Measure all four series, write JSON, CSV and the figure; return the record."""
    n = 3 if quick else 9
    load_before = list(os.getloadavg())
    common.warm_up()
    t0 = time.perf_counter()
    series: dict[str, dict] = {}

    def add(name: str, what: str, xlabel: str, fn: Callable[[], list[dict]], note: str = ""):
        rows = fn()
        k, c = fit_exponent([r["x"] for r in rows], [r["median_s"] for r in rows])
        series[name] = {"what": what, "xlabel": xlabel, "rows": rows, "exponent": k,
                        "prefactor_s": c, "note": note}  # fmt: skip

    years = [1, 5, 20] if quick else [1, 2, 5, 10, 20, 40]
    add(
        "horizon", "one patient, bare kernel simulate_one", "horizon (years)",
        lambda: horizon_series(years, 20 * n),
    )  # fmt: skip
    sizes = [10, 100, 1000] if quick else [10, 30, 100, 300, 1000, 3000]
    add(
        "cohort", "simulate_ensemble, all numba threads", "cohort size (patients)",
        lambda: cohort_series(sizes, n),
    )  # fmt: skip
    agents = [10**3, 10**5, 10**7] if quick else [10**3, 10**4, 10**5, 10**6, 10**7]
    add(
        "floor", "minimal xoshiro256** loop: one uniform, compare, store per agent",
        "agents per step", lambda: floor_series(agents, 5, n),
    )  # fmt: skip
    # cell scale 1 gives ~2e5 agents per step; beyond ~2e6 per phase the engine holds counts
    scales = [1e-2, 1e-1, 1.0] if quick else [1e-3, 1e-2, 1e-1, 1.0]
    abm_rows, abm_note = agent_series(scales, 20.0 if quick else 50.0, n)
    add(
        "agents",
        "agent engine, one untreated patient",
        "agent updates per step",
        lambda: abm_rows,
        abm_note,
    )
    add(
        "workers", "simulate_ensemble of 1000 patients", "numba threads",
        lambda: worker_series(300 if quick else 1000, n),
    )  # fmt: skip
    mach = machine()
    mach["loadavg_before"] = load_before
    mach["loadavg_after"] = mach.pop("loadavg")
    record = {
        "measurement": f"median of N runs (N = {n}; {20 * n} for the horizon) after a warm-up "
        "call, compile excluded, gc paused; exponent k of a least-squares fit of log time on log "
        "size",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": quick,
        "seconds": time.perf_counter() - t0,
        "machine": mach,
        "series": series,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    write_csv(record, out / "scaling_data.csv")
    figure(record, out / "scaling")
    return record


def write_csv(rec: dict, path: Path) -> None:
    """One row per measured point: series, x, median, quartiles, runs."""
    import pandas as pd

    rows = [
        {"series": name, "x": r["x"], "median_s": r["median_s"], "q1_s": r["q1_s"],
         "q3_s": r["q3_s"], "runs": r["runs"], "ns_per_agent_update": r.get("ns_per_agent_update")}
        for name, s in rec["series"].items() for r in s["rows"]
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(path, index=False, na_rep="NaN")


def report(rec: dict) -> str:
    m = rec["machine"]
    lines = [
        f"machine: {machine_line(m)}",
        f"timing: {rec['measurement']}",
        "",
        f"{'series':<9} {'x':>12} {'median':>12} {'runs':>5}",
    ]
    for name, s in rec["series"].items():
        for r in s["rows"]:
            extra = (
                f"  {r['ns_per_agent_update']:.2f} ns/agent-update"
                if "ns_per_agent_update" in r
                else ""
            )
            lines.append(
                f"{name:<9} {r['x']:>12.4g} {r['median_s'] * 1e3:>9.4g} ms {r['runs']:>5}{extra}"
            )
        note = f"  ({s['note']})" if s["note"] else ""
        lines.append(f"{name:<9} exponent k = {s['exponent']:.2f}: {s['what']}{note}")
    return "\n".join(lines)


def figure(rec: dict, stem: Path) -> Figure:
    """Four log–log panels with the fitted power laws, the measurement and machine below; written
    as ``<stem>.png`` and ``.pdf``. Returns the matplotlib Figure."""
    from matplotlib import ticker
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from sim.plots.style import OKABE_ITO, figsize, use_style
    from sim.plots.trajectory import save_figure

    s = rec["series"]
    with use_style("nature"):
        fig = Figure(figsize=figsize("double", 130))
        FigureCanvasAgg(fig)
        axes = fig.subplots(2, 2)
        panels = [
            ("a", axes[0, 0], ["horizon"], "time per trajectory (s)"),
            ("b", axes[0, 1], ["cohort"], "time per cohort (s)"),
            ("c", axes[1, 0], ["agents", "floor"], "time per step (s)"),
            ("d", axes[1, 1], ["workers"], "time per cohort (s)"),
        ]
        colors = {"floor": "0.45", "agents": OKABE_ITO["vermillion"]}
        for letter, ax, names, ylabel in panels:
            ax.set_xscale("log")
            ax.set_yscale("log")
            for name in names:
                ser = s[name]
                rows = ser["rows"]
                if not rows:
                    ax.text(0.97, 0.05, "agent engine not measured", transform=ax.transAxes,
                            ha="right", fontsize="small", color="0.4")  # fmt: skip
                    continue
                x = np.array([r["x"] for r in rows], dtype=np.float64)
                y = np.array([r["median_s"] for r in rows])
                lo = y - np.array([r["q1_s"] for r in rows])
                hi = np.array([r["q3_s"] for r in rows]) - y
                color = colors.get(name, OKABE_ITO["blue"])
                if name == "floor":
                    ns = np.median([r["ns_per_agent_update"] for r in rows])
                    label = f"floor: xoshiro loop ({ns:.1f} ns/agent)"
                else:
                    label = "agent engine" if name == "agents" else "measured (median, IQR)"
                ax.errorbar(x, y, yerr=[lo, hi], fmt="o", color=color, markersize=3,
                            capsize=1.5, label=label)  # fmt: skip
                k, c = ser["exponent"], ser["prefactor_s"]
                if np.isfinite(k):
                    xs = np.geomspace(x.min(), x.max(), 20)
                    ax.plot(xs, c * xs**k, color=color, linestyle=(0, (4, 2)), linewidth=0.8,
                            label=f"fit: time ∝ {name_symbol(name)}$^{{{k:.2f}}}$")  # fmt: skip
            if names == ["workers"] and s["workers"]["rows"]:
                r0 = s["workers"]["rows"][0]
                xs = np.array([r["x"] for r in s["workers"]["rows"]], dtype=np.float64)
                ax.plot(xs, r0["median_s"] / xs, color="0.6", linestyle=":", linewidth=0.8,
                        label="ideal: time ∝ threads$^{-1}$")  # fmt: skip
                ax.set_xticks(xs, [f"{int(v)}" for v in xs])
                ax.xaxis.set_minor_locator(ticker.NullLocator())
            ax.set_xlabel(s[names[0]]["xlabel"])
            ax.set_ylabel(ylabel)
            ax.set_title(letter)
            ax.legend(loc="best", fontsize="small")
        m = rec["machine"]
        fig.text(
            0.0, 0.0,
            f"{rec['measurement']}.\n{machine_line(m)}; numba {m['numba']}, numpy {m['numpy']}",
            fontsize=5, va="bottom", ha="left", color="0.3",
        )  # fmt: skip
        fig.get_layout_engine().set(rect=(0, 0.05, 1, 0.95))
        save_figure(fig, stem, ("png", "pdf"), title="cmlsim scaling")
    return fig


def name_symbol(name: str) -> str:
    return {"horizon": "years", "cohort": "patients", "agents": "agents", "floor": "agents",
            "workers": "threads"}.get(name, "n")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__.split(
        "\n")[0])  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    ap.add_argument(
        "--out", type=Path, default=common.REPO / "results" / "bench", help="output directory"
    )
    ap.add_argument(
        "--docs", action="store_true",
        help=f"also copy the figure to {DOCS_FIGURE.relative_to(common.REPO)} (the manual's)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    rec = run_scaling(args.quick, args.out)
    print(report(rec))
    print(f"\nwrote {args.out / 'scaling.json'}, scaling_data.csv and scaling.png/.pdf")
    if args.docs:
        shutil.copyfile(args.out / "scaling.png", DOCS_FIGURE)
        print(f"wrote {DOCS_FIGURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
