"""How the probability of cure depends on the cell scale (stochastic and agent engines).

Hähnel et al. fit BCR-ABL1 *ratios*, so the number of leukemic cells behind their K_y = 1e6 "cells"
is not identified; the ODE is invariant under the scaling (:func:`sim.engines.stochastic.
scale_cells`), extinction is not. :func:`cure_vs_scale` runs a cohort of identical patients at
each scale through the jump process and the agent engine and returns the fraction eradicated
(no quiescent and no active leukemic cell left by the horizon) with Wilson 95 % intervals;
:func:`plot_cure` draws it and writes the table beside the figure (``<stem>.csv``).

``python -m sim.plots.cure [OUT_STEM]`` makes the manual's figure (default patient, imatinib for
5 years, then stopped; 8 years); ``python -m sim.plots.cure --years [OUT_STEM]`` the probability
of cure of a virtual cohort against years of TKI before the stop, without peg-interferon, with it
alongside the TKI and with it after the stop (:func:`cure_vs_tki_years`).
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


def _proportions(res: dict) -> dict:
    """Cured and relapsed patients of an engine's result, as counts and fractions with Wilson
    95 % intervals (the columns of the tables below)."""
    from sim.engines.stochastic import wilson_interval

    n = int(res["eradicated"].size)
    k = int(res["eradicated"].sum())
    r = int(res["relapsed"].sum())
    lo, hi = wilson_interval(k, n)
    rlo, rhi = wilson_interval(r, n)
    return {"n": n, "cured": k, "p_cure": k / n, "ci_low": lo, "ci_high": hi, "relapsed": r,
            "p_relapse": r / n, "rel_low": rlo, "rel_high": rhi}  # fmt: skip


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
            rows.append({"engine": engine, "cell_scale": s, **_proportions(res),
                         "x0": y0[0], "y0": y0[1]})  # fmt: skip
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


#: Years of TKI before the stop for :func:`cure_vs_tki_years`.
TKI_YEARS = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)

#: Cell scales of the manual's figure (one column each): the scale is not identified by the fits.
YEARS_SCALES = (1e-2, 1e-3)

#: The arms of :func:`cure_vs_tki_years`: peg-interferon never, with the TKI (diagnosis to the
#: stop) or after the stop (the stop to the end of follow-up).
IFN_ARMS = ("TKI alone", "peg-IFN with the TKI", "peg-IFN after the stop")


def ifn_drive(dose_ug: float = 90.0, tki: float = 0.0) -> np.ndarray:
    """A constant drive with peg-interferon alfa-2a ``dose_ug`` µg weekly and TKI effect ``tki``.

    The interferon slot holds the course's steady-state interval-mean effect (as
    ``pk = "interval"``; 0.56 of the maximal effect at 90 µg/week).
    """
    from sim.therapy import drive as dv
    from sim.therapy.interventions import get_product, interval_mean_effect

    prod = get_product("peginterferon-alfa-2a")
    d = np.zeros(dv.N_DRIVE)
    d[dv.IFN] = interval_mean_effect(dose_ug * 1e-3, prod.standard_interval, prod.vector())
    d[dv.TKI] = tki
    return d


def cohort_parameters(
    n: int, scenario_path: str | os.PathLike | None = None
) -> tuple[np.ndarray, int]:
    """The first ``n`` virtual patients of a cohort scenario (default the shipped EURO-SKI one)
    and the scenario's seed (:func:`sim.cohort.sample_parameters`, table units)."""
    from pathlib import Path

    from sim import models, scenario
    from sim.cohort import sample_parameters

    path = (
        scenario_path or Path(__file__).resolve().parents[2] / "scenarios" / "cohort-euro-ski.toml"
    )
    sc = scenario.load(path)
    P, _ = sample_parameters(sc.cohort, models.get(sc.model), dict(sc.patient), sc.seed, size=n)
    return P, sc.seed


def cure_vs_tki_years(
    years: Sequence[float] = TKI_YEARS,
    n: int = 200,
    scales: Sequence[float] = YEARS_SCALES,
    follow_up: float = 3 * DAYS_PER_YEAR,
    seed: int = 20261126,
    dose_ug: float = 90.0,
    scenario_path: str | os.PathLike | None = None,
    params: np.ndarray | None = None,
) -> pd.DataFrame:
    """Probability of cure and of relapse against years of TKI before a fixed stop, for a virtual
    cohort, without and with peg-interferon (jump process, :mod:`sim.engines.stochastic`).

    Each patient takes imatinib at its fitted (calibrated) kill rate from diagnosis until the stop
    at ``years`` and is followed for ``follow_up`` days after it. Arms (:data:`IFN_ARMS`): TKI
    alone; peg-IFN alfa-2a ``dose_ug`` µg/week from diagnosis until the stop (with the TKI); and
    peg-IFN from the stop to the end of follow-up, each course as its interval-mean effect
    (:func:`ifn_drive`). Cure: no quiescent and no active leukemic cell left by the end of
    follow-up; relapse: true BCR-ABL1 above 0.1 % (loss of MMR) after the stop.

    The patients are the first ``n`` of the shipped EURO-SKI scenario's ``[cohort]`` (resampled
    Hähnel fits with spread, calibrated; :func:`cohort_parameters`) unless ``params`` (one row per
    patient, table units) is given. Every arm, stop time and scale uses the same patients and the
    same random stream per patient (common random numbers), so the differences between arms are
    paired. Each scale in ``scales`` multiplies the leukemic cell scale
    (:func:`sim.engines.stochastic.scale_cells`).

    Returns
    -------
    pandas.DataFrame
        ``cell_scale, arm, years, n, cured, p_cure, ci_low, ci_high, relapsed, p_relapse,
        rel_low, rel_high`` (Wilson 95 % intervals).
    """
    import pandas as pd

    from sim.engines import stochastic

    if params is None:
        P, _ = cohort_parameters(n, scenario_path)
    else:
        P = np.asarray(params, dtype=np.float64)
        if P.ndim != 2 or P.shape[0] != n:
            raise ValueError(f"params must have one row per patient ({n}), found shape {P.shape}")
    drives = {IFN_ARMS[0]: (None, None), IFN_ARMS[1]: (ifn_drive(dose_ug, tki=1.0), None),
              IFN_ARMS[2]: (None, ifn_drive(dose_ug))}  # fmt: skip
    rows = []
    for scale in scales:
        q = stochastic.scale_cells(P, scale)
        for arm, (drive_on, drive_off) in drives.items():
            for y in years:
                stop = y * DAYS_PER_YEAR
                horizon = stop + follow_up
                res = stochastic.simulate_stochastic(
                    q, None, stop, horizon, seed, n, np.array([0.0, horizon]),
                    drive_on=drive_on, drive_off=drive_off,
                )  # fmt: skip
                rows.append({"cell_scale": scale, "arm": arm, "years": y, **_proportions(res)})
    return pd.DataFrame(rows)


def plot_cure_vs_years(
    table: pd.DataFrame,
    path_stem: str | os.PathLike | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    kind: str = "nature",
) -> Figure:
    """Probability of cure (top row) and of relapse (bottom row) against years of TKI before the
    stop, one line per arm with 95 % intervals, one column per cell scale.

    Writes ``<path_stem>.<fmt>`` and the source data ``<path_stem>.csv`` when a stem is given.
    """
    from matplotlib.figure import Figure

    from sim.plots.trajectory import save_figure

    colors = [OKABE_ITO["blue"], OKABE_ITO["bluish_green"], OKABE_ITO["vermillion"]]
    scales = list(dict.fromkeys(table["cell_scale"]))
    with use_style(kind):
        width = "single" if len(scales) == 1 else "double"
        fig = Figure(figsize=figsize(width, 100.0, journal=kind), layout="constrained")
        axes = fig.subplots(2, len(scales), sharex=True, sharey=True, squeeze=False)
        for c, scale in enumerate(scales):
            part = table[table["cell_scale"] == scale]
            for r, (col, lo, hi, ylabel) in enumerate((
                ("p_cure", "ci_low", "ci_high", "Probability of cure (%)"),
                ("p_relapse", "rel_low", "rel_high", "Probability of relapse (%)"),
            )):  # fmt: skip
                ax = axes[r, c]
                for i, (arm, t) in enumerate(part.groupby("arm", sort=False)):
                    y = 100 * t[col].to_numpy()
                    err = [y - 100 * t[lo].to_numpy(), 100 * t[hi].to_numpy() - y]
                    ax.errorbar(t["years"].to_numpy(), y, yerr=err, color=colors[i % 3],
                                marker="os^"[i % 3], markersize=3, linewidth=0.9, capsize=1.5,
                                linestyle=("-", "--", ":")[i % 3], label=arm)  # fmt: skip
                ax.set_ylim(-3, 103)
                if c == 0:
                    ax.set_ylabel(ylabel)
                if r == 1:
                    ax.set_xlabel("Years of TKI before the stop")
                ax.set_title("abcdefgh"[r * len(scales) + c], loc="left", fontweight="bold")
            axes[0, c].set_title(f"cell scale {scale:g}", loc="center", fontweight="normal")
        axes[0, 0].legend(frameon=False, loc="upper left")
        if path_stem is not None:
            save_figure(fig, path_stem, formats, title="cmlsim probability of cure vs years of TKI")
            table.to_csv(f"{os.fspath(path_stem)}.csv", index=False)
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    """Compute the default table and write the figure (default ``results/cure-vs-scale``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    years = "--years" in args
    args = [a for a in args if a != "--years"]
    default = "cure-vs-tki-years" if years else "cure-vs-scale"
    stem = args[0] if args else os.path.join("results", default)
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    if years:
        table = cure_vs_tki_years()
        plot_cure_vs_years(table, stem)
    else:
        table = cure_vs_scale()
        plot_cure(table, stem)
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
