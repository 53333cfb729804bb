"""How the probability of cure depends on the cell scale (stochastic and agent engines).

Hähnel et al. fit BCR-ABL1 *ratios*, so the number of leukemic cells behind their K_y = 1e6 "cells"
is not identified; the ODE is invariant under the scaling (:func:`sim.engines.stochastic.
scale_cells`), extinction is not. :func:`cure_vs_scale` runs a cohort of identical patients at
each scale through the jump process and the agent engine and returns the fraction eradicated
(no quiescent and no active leukemic cell left by the horizon) with Wilson 95 % intervals;
:func:`plot_cure` draws it and writes the table beside the figure (``<stem>.csv``).

``python -m sim.plots.cure [OUT_STEM]`` makes the README figure (default patient, imatinib for
5 years, then stopped; 8 years).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from sim.params import DAYS_PER_YEAR
from sim.plots.style import OKABE_ITO, figsize, use_style

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

SCALES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 1e-2, 1e-1, 1.0)


def cure_vs_scale(
    params: np.ndarray | None = None,
    scales: Sequence[float] = SCALES,
    n: int = 200,
    stop_time: float = 5 * DAYS_PER_YEAR,
    horizon: float = 8 * DAYS_PER_YEAR,
    seed: int = 20261126,
    engines: Sequence[str] = ("stochastic", "abm"),
    dt: float = 1.0,
) -> pd.DataFrame:
    """Probability of cure and of relapse per cell scale and engine.

    Returns a DataFrame with ``engine, cell_scale, n, cured, p_cure, ci_low, ci_high,
    relapsed, p_relapse, rel_low, rel_high, x0, y0`` (Wilson 95 % intervals; X0, Y0: cells at
    diagnosis at that scale). ``dt`` is the agent engine's step (days; the jump process runs
    in continuous time and ignores it).
    """
    import pandas as pd

    from sim.engines import abm, stochastic
    from sim.models import cml_immune as cm

    p = cm.PARAMS.vector({}) if params is None else np.asarray(params, dtype=np.float64)
    t_out = np.array([0.0, horizon])
    rows = []
    for engine in engines:
        for s in scales:
            if engine == "stochastic":
                q = stochastic.scale_cells(p, s)
                res = stochastic.simulate_stochastic(q, None, stop_time, horizon, seed, n, t_out)
                y0 = res["y0"][0]
            elif engine == "abm":
                res = abm.simulate_abm(p, {"cell_scale": s}, None, stop_time, horizon, seed, n,
                                       t_out, max_agents=1 << 16, dt=dt)  # fmt: skip
                y0 = res["y0"][0]
            else:
                raise ValueError(f"engine must be 'stochastic' or 'abm', found {engine!r}")
            k = int(res["eradicated"].sum())
            lo, hi = stochastic.wilson_interval(k, n)
            r = int(res["relapsed"].sum())
            rlo, rhi = stochastic.wilson_interval(r, n)
            rows.append({"engine": engine, "cell_scale": s, "n": n, "cured": k, "p_cure": k / n,
                         "ci_low": lo, "ci_high": hi, "relapsed": r, "p_relapse": r / n,
                         "rel_low": rlo, "rel_high": rhi, "x0": y0[0], "y0": y0[1]})  # fmt: skip
    return pd.DataFrame(rows)


def plot_cure(
    table: pd.DataFrame,
    path_stem: str | os.PathLike | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    kind: str = "nature",
) -> Figure:
    """Probability of cure (a) and of relapse (b), with 95 % intervals, against the cell scale,
    one line per engine.

    Writes ``<path_stem>.<fmt>`` and the source data ``<path_stem>.csv`` when a stem is given.
    """
    from matplotlib.figure import Figure

    from sim.plots.trajectory import save_figure

    styles = {"stochastic": (OKABE_ITO["blue"], "o", "-", "jump process (SSA / tau-leaping)"),
              "abm": (OKABE_ITO["vermillion"], "s", "--", "agent engine (dt = 1 day)")}  # fmt: skip
    with use_style(kind):
        fig = Figure(figsize=figsize("single", 100.0, journal=kind), layout="constrained")
        axes = fig.subplots(2, 1, sharex=True)
        for ax, col, lo, hi, ylabel in (
            (axes[0], "p_cure", "ci_low", "ci_high", "Probability of cure (%)"),
            (axes[1], "p_relapse", "rel_low", "rel_high", "Probability of relapse (%)"),
        ):
            for engine, t in table.groupby("engine", sort=False):
                color, marker, ls, label = styles.get(engine, ("0.3", "^", ":", engine))
                x = t["cell_scale"].to_numpy()
                y = 100 * t[col].to_numpy()
                err = [y - 100 * t[lo].to_numpy(), 100 * t[hi].to_numpy() - y]
                ax.errorbar(x, y, yerr=err, color=color, marker=marker, markersize=3,
                            linestyle=ls, linewidth=0.9, capsize=1.5, label=label)  # fmt: skip
            ax.set_xscale("log")
            ax.set_ylim(-3, 103)
            ax.set_ylabel(ylabel)
        axes[1].set_xlabel("Cell scale (leukemic cells per model cell; 1 = K$_y$ = 10$^6$)")
        axes[0].legend(frameon=False, loc="upper right")
        axes[0].text(0.0, 1.02, "a", transform=axes[0].transAxes, fontweight="bold", va="bottom")
        axes[1].text(0.0, 1.02, "b", transform=axes[1].transAxes, fontweight="bold", va="bottom")
        if path_stem is not None:
            save_figure(fig, path_stem, formats, title="cmlsim probability of cure vs cell scale")
            table.to_csv(f"{os.fspath(path_stem)}.csv", index=False)
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    """Compute the default table and write the figure (default ``results/readme/cure-vs-scale``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    stem = args[0] if args else os.path.join("results", "readme", "cure-vs-scale")
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    table = cure_vs_scale()
    plot_cure(table, stem)
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
