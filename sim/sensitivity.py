r"""Global sensitivity indices of sweep outputs: Sobol' (first, second order, total) and Morris.

Sobol' indices (Sobol' 2001) decompose the variance of an output Y over independent inputs:
the first-order index :math:`S_i = V[E(Y|X_i)] / V(Y)` is the share that X_i explains alone, the
second-order index :math:`S_{ij}` the share of the interaction of X_i and X_j beyond their first
orders, and the total index :math:`S_{Ti} = E[V(Y|X_{\sim i})] / V(Y)` everything X_i takes part
in. They are estimated from a Saltelli design (:mod:`sim.sweep.design`, ``design = "sobol"``)
with the estimators of Saltelli et al. 2010 (first order, second order) and Jansen 1999 (total),
as SALib implements them (``SALib.analyze.sobol``), with bootstrap confidence intervals (SALib's
normal approximation: value ± z · sd over resamples).

Morris' elementary effects (Morris 1991) on ``levels``-level one-at-a-time trajectories: μ* (the
mean absolute effect, Campolongo et al. 2007; a ranking of influence) with a bootstrap interval,
μ and σ (spread: non-linearity or interactions), in the output's units per unit of the
parameter's range (in the logarithm for ``scale = "log"``).

The distribution the indices refer to is the design's: each parameter uniform over its range, or
log-uniform with ``scale = "log"``.

References
----------
I. M. Sobol'. Math Comput Simul 2001;55:271-280. A. Saltelli. Comput Phys Commun 2002;145:280-297.
A. Saltelli, P. Annoni, I. Azzini, et al. Comput Phys Commun 2010;181:259-270. M. J. W. Jansen.
Comput Phys Commun 1999;117:35-43. M. D. Morris. Technometrics 1991;33:161-174. F. Campolongo,
J. Cariboni, A. Saltelli. Environ Model Softw 2007;22:1509-1518. J. Herman, W. Usher. JOSS
2017;2:97 and T. Iwanaga, W. Usher, J. Herman. SESMO 2022;4:18155 (SALib).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = ["COLUMNS", "analyze", "morris_indices", "phase_axes", "sobol_indices"]

#: Columns of an index table: one row per index, parameter (and partner for S2).
COLUMNS = (
    "output",
    "method",
    "index",
    "parameter",
    "parameter2",
    "value",
    "conf",
    "ci_low",
    "ci_high",
)


def _quiet(what: str) -> AbstractContextManager[Any]:
    """No progress (the default ``phase`` of :func:`analyze`)."""
    return contextlib.nullcontext()


def _table(rows: list[dict]) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "output"])
    df["ci_low"] = df["value"] - df["conf"]
    df["ci_high"] = df["value"] + df["conf"]
    return df


def _heap_for_bootstrap_arrays() -> None:
    """Let glibc's malloc serve the bootstrap's temporary arrays (1-2 MB each) from its heap.

    glibc maps every block above its mmap threshold (128 kB at start) fresh from the kernel and
    unmaps it when freed, so each of the bootstrap's hundreds of temporaries pays for new zeroed
    pages, which in a fresh process takes most of the time of the Sobol indices. Freeing one
    mapped block raises the threshold to its size (glibc's dynamic threshold, at most 32 MB on
    64-bit systems), so this allocates and frees 16 MB once. Elsewhere it is one harmless
    allocation; the results do not change (the bootstrap is seeded).
    """
    np.empty(2_000_000)


def sobol_indices(
    Y: np.ndarray,
    names: Sequence[str],
    second_order: bool = True,
    conf_level: float = 0.95,
    num_resamples: int = 200,
    seed: int | None = 1,
) -> pd.DataFrame:
    """Sobol' indices of one output from a Saltelli design.

    Parameters
    ----------
    Y : ndarray (N (2D + 2),) or (N (D + 2),)
        The output of each run, in the design's order (``sim.sweep.design``, ``"sobol"``).
    names : sequence of str
        The D parameters, in design column order.
    second_order : bool
        Whether the design has the second-order blocks.
    conf_level : float
        Level of the bootstrap confidence intervals.
    num_resamples : int
        Bootstrap resamples.
    seed : int, optional
        Seed of the bootstrap (not 0, which SALib treats as no seed; None: unseeded).

    Returns
    -------
    pandas.DataFrame
        Columns ``method`` ("sobol"), ``index`` ("S1", "ST", "S2"), ``parameter``,
        ``parameter2`` (the partner of an S2, else ""), ``value``, ``conf`` (half-width),
        ``ci_low``, ``ci_high``.

    Raises
    ------
    ValueError
        Y with NaN, or of a length that does not fit the design.
    """
    from SALib.analyze import sobol

    Y = np.asarray(Y, dtype=np.float64)
    d = len(names)
    step = 2 * d + 2 if second_order else d + 2
    if Y.ndim != 1 or Y.size == 0 or Y.size % step:
        raise ValueError(f"{Y.size} outputs do not fit a Sobol design of {d} parameters")
    if not np.isfinite(Y).all():
        raise ValueError(f"{int((~np.isfinite(Y)).sum())} outputs are NaN or infinite")
    problem = {"num_vars": d, "names": list(names), "bounds": [[0.0, 1.0]] * d}
    _heap_for_bootstrap_arrays()
    si = sobol.analyze(
        problem,
        Y,
        calc_second_order=second_order,
        num_resamples=num_resamples,
        conf_level=conf_level,
        seed=seed,
    )
    rows = []
    for i, name in enumerate(names):
        for idx in ("S1", "ST"):
            rows.append(
                {
                    "method": "sobol",
                    "index": idx,
                    "parameter": name,
                    "parameter2": "",
                    "value": float(si[idx][i]),
                    "conf": float(si[f"{idx}_conf"][i]),
                }
            )
    if second_order:
        for i in range(d):
            for j in range(i + 1, d):
                rows.append(
                    {
                        "method": "sobol",
                        "index": "S2",
                        "parameter": names[i],
                        "parameter2": names[j],
                        "value": float(si["S2"][i, j]),
                        "conf": float(si["S2_conf"][i, j]),
                    }
                )
    return _table(rows)


def morris_indices(
    X_unit: np.ndarray,
    Y: np.ndarray,
    names: Sequence[str],
    levels: int = 4,
    conf_level: float = 0.95,
    num_resamples: int = 200,
    seed: int | None = 1,
) -> pd.DataFrame:
    """Morris' elementary-effect statistics of one output.

    Parameters
    ----------
    X_unit : ndarray (N (D + 1), D)
        The design in the unit cube (:func:`sim.sweep.design.to_unit` of each column).
    Y : ndarray (N (D + 1),)
        The output of each run, in design order.
    names : sequence of str
    levels : int
        The design's grid levels.
    conf_level, num_resamples, seed
        Bootstrap of the μ* interval.

    Returns
    -------
    pandas.DataFrame
        As :func:`sobol_indices`, method "morris", index "mu_star" (with its interval), "mu",
        "sigma" (``conf`` NaN).
    """
    from SALib.analyze import morris

    Y = np.asarray(Y, dtype=np.float64)
    if not np.isfinite(Y).all():
        raise ValueError(f"{int((~np.isfinite(Y)).sum())} outputs are NaN or infinite")
    d = len(names)
    problem = {"num_vars": d, "names": list(names), "bounds": [[0.0, 1.0]] * d}
    si = morris.analyze(
        problem,
        np.asarray(X_unit, dtype=np.float64),
        Y,
        num_resamples=num_resamples,
        conf_level=conf_level,
        num_levels=levels,
        seed=seed,
    )
    rows = []
    for i, name in enumerate(names):
        rows.append(
            {
                "method": "morris",
                "index": "mu_star",
                "parameter": name,
                "parameter2": "",
                "value": float(si["mu_star"][i]),
                "conf": float(si["mu_star_conf"][i]),
            }
        )
        for idx in ("mu", "sigma"):
            rows.append(
                {
                    "method": "morris",
                    "index": idx,
                    "parameter": name,
                    "parameter2": "",
                    "value": float(si[idx][i]),
                    "conf": float("nan"),
                }
            )
    return _table(rows)


def analyze(
    ds: xr.Dataset,
    outputs: Sequence[str] | None = None,
    conf_level: float = 0.95,
    num_resamples: int = 200,
    phase: Callable[[str], AbstractContextManager[Any]] | None = None,
) -> tuple[pd.DataFrame | None, list[str]]:
    """Indices of a stored sweep's outputs (Sobol or Morris designs; others have none).

    Parameters
    ----------
    ds : xarray.Dataset
        :func:`sim.sweep.load_sweep`.
    outputs : sequence of str, optional
        Metrics to analyse (default: the sweep's ``outputs``).
    conf_level, num_resamples
        Bootstrap settings.
    phase : callable, optional
        ``phase(what)`` gives a context manager wrapped around each output's indices (for
        progress: :func:`sim.sweep.run_sweep` prints what it does and its time).

    Returns
    -------
    table : pandas.DataFrame or None
        The rows of :func:`sobol_indices` / :func:`morris_indices` for each output, with a
        column ``output`` first; None for grid and LHS designs.
    notes : list of str
        What was left out and why: Sobol blocks / Morris trajectories with runs not computed or
        failed (the indices are estimated from the others), outputs with NaN values or the same
        value in every run.
    """
    import pandas as pd

    from sim.sweep.design import to_unit

    attrs = ds.attrs
    kind = attrs["design"]
    outputs = list(outputs) if outputs is not None else attrs["outputs"].split()
    notes: list[str] = []
    if kind not in ("sobol", "morris"):
        return None, [f"no indices for a {kind} design (Sobol or Morris designs give them)"]
    params = json.loads(attrs["params"])
    names = [p["name"] for p in params]
    d = len(names)
    # a Saltelli block (2D + 2 or D + 2 runs) or a Morris trajectory (D + 1) is the unit of
    # the estimators: blocks with a run not computed (or in a failed chunk) are left out whole
    size = (2 * d + 2 if int(attrs["second_order"]) else d + 2) if kind == "sobol" else d + 1
    computed = np.isin(ds["status"].values, (1, 2)).reshape(-1, size).all(axis=1)
    if not computed.any():
        return None, ["no complete block of runs: no indices (resume the sweep first)"]
    if not computed.all():
        what = "base samples" if kind == "sobol" else "trajectories"
        notes.append(
            f"{int((~computed).sum())} of {computed.size} {what} left out: some of their runs are "
            "not computed or failed (resume to retry them)"
        )
    rows = np.repeat(computed, size)
    tables = []
    for out in outputs:
        Y = ds["outcome"].sel(metric=out).values[rows]
        bad = int((~np.isfinite(Y)).sum())
        if bad:
            notes.append(f"{out}: {bad} runs have no value (NaN), so it has no indices")
            continue
        if np.all(Y == Y[0]):
            notes.append(f"{out}: the same value ({Y[0]:g}) in every run, so it has no indices")
            continue
        what = "Sobol" if kind == "sobol" else "Morris"
        with (phase or _quiet)(f"{what} indices of {out} ({num_resamples} bootstrap resamples)"):
            if kind == "sobol":
                second = bool(int(attrs["second_order"]))
                t = sobol_indices(Y, names, second, conf_level, num_resamples)
            else:
                from sim.scenario import SweepParam

                X = np.column_stack(
                    [to_unit(SweepParam(**p), ds[p["name"]].values[rows]) for p in params]
                )
                t = morris_indices(X, Y, names, int(attrs["levels"]), conf_level, num_resamples)
        t.insert(0, "output", out)
        tables.append(t)
    if not tables:
        return None, notes
    return pd.concat(tables, ignore_index=True), notes


def phase_axes(ds: xr.Dataset, table: pd.DataFrame | None) -> tuple[str, str] | None:
    """The two parameters (coordinate names) of the phase diagram: the sweep's ``phase``, or
    the two largest total indices (Sobol ST, Morris μ*) of the first analysed output, or the
    first two parameters. None with fewer than two parameters."""
    params = json.loads(ds.attrs["params"])
    by_path = {p["path"]: p["name"] for p in params}
    phase = ds.attrs.get("phase", "").split()
    if len(phase) == 2:
        return by_path[phase[0]], by_path[phase[1]]
    names = [p["name"] for p in params]
    if len(names) < 2:
        return None
    if table is not None and len(table):
        first = table[table["output"] == table["output"].iloc[0]]
        key = first[first["index"].isin(["ST", "mu_star"])]
        order = key.sort_values("value", ascending=False)["parameter"].tolist()
        if len(order) >= 2:
            return order[0], order[1]
    return names[0], names[1]
