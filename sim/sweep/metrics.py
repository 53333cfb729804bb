r"""What a sweep keeps of each run: summary metrics from the kernel's outputs.

One row per run, one column per metric, stored as the ``outcome`` variable of the sweep store
(``sample`` x ``metric``); :func:`sim.sweep.load_sweep` also gives each metric as its own
variable. Times are days since diagnosis unless the unit says months; NaN = did not happen.

=============================  =========  =====================================================
metric                         unit       meaning
=============================  =========  =====================================================
``status``                     code       1 done, 2 done but the integration failed
                                          (``solver_failures`` > 0), 3 the kernel raised on the
                                          run or its chunk failed (its metrics NaN), NaN not
                                          computed yet (:data:`sim.sweep.store.STATUS`)
``stop_time``                  day        first TKI stop (NaN: never stopped)
``relapse_time``               day        molecular relapse after the first stop, by the
                                          protocol's rule, at a visit (NaN: none)
``months_to_relapse``          month      relapse_time - stop_time
``tfr_12mo``, ``tfr_24mo``,    1          in treatment-free remission m months after the first
``tfr_60mo``                              stop: 1 = stopped and no relapse by stop + m months;
                                          0 = relapsed by then, or never stopped; NaN = stopped
                                          and not relapsed, but the horizon ends before
                                          stop + m months (censored)
``tfr_months``                 month      months in remission after the first stop, to the
                                          relapse or the horizon (0 if never stopped)
``t_mmr``, ``t_mr4``,          day        first true MMR / MR4 / MR4.5 (dense output)
``t_mr45``
``t_mr45_measured``            day        first measured MR4.5 (at a visit)
``bcr_abl_at_stop``            % IS       true BCR-ABL1 at the first stop
``<state>_at_stop``            model      model state at the first stop (immune state: Z, E, N
                                          for ``cml_immune``)
``max_bcr_abl_after_stop``     % IS       largest true BCR-ABL1 after the first stop
``bcr_abl_final``              % IS       true BCR-ABL1 at the horizon
``<state>_final``              model      model state at the horizon
``tki_days``                   day        days on TKI (dose > 0)
``n_stops``                    1          number of TKI stops
``outcome_class``              code       -1 never stopped, 0 relapse, 1 control (no relapse,
                                          leukemic cells remain at the horizon), 2 cure (no
                                          relapse and fewer than :data:`CURE_CELLS` leukemic
                                          cells, X + Y, at the horizon)
``solver_failures``            1          integration failures (0 for a good run)
``rhs_calls``                  1          right-hand-side evaluations (the run's work)
=============================  =========  =====================================================

Eradication proper is a property of a stochastic engine (extinction of the last cell); the ODE
engine's ``cure`` is its deterministic proxy, X + Y below one cell in the model's cell units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.params import DAYS_PER_MONTH

if TYPE_CHECKING:
    from types import ModuleType

    from sim.models.base import ModelSpec

__all__ = [
    "CURE_CELLS",
    "OUTCOME_CODES",
    "TFR_MONTHS",
    "final_readout",
    "metric_names",
    "metric_units",
    "metrics",
]

#: Months after the stop at which the TFR indicators are taken.
TFR_MONTHS = (12, 24, 60)
#: Leukemic cells (X + Y, model units) at the horizon below which a run counts as cured.
CURE_CELLS = 1.0
#: Codes of the ``outcome_class`` metric.
OUTCOME_CODES = {"no stop": -1, "relapse": 0, "control": 1, "cure": 2}


def metric_names(spec: ModelSpec) -> tuple[str, ...]:
    """Metric names for a model, in storage order."""
    return tuple(name for name, _ in _layout(spec))


def metric_units(spec: ModelSpec) -> tuple[str, ...]:
    """Unit of each metric (``metric_names`` order)."""
    return tuple(unit for _, unit in _layout(spec))


def _layout(spec: ModelSpec) -> list[tuple[str, str]]:
    out = [
        ("status", "code"),
        ("stop_time", "day"),
        ("relapse_time", "day"),
        ("months_to_relapse", "month"),
        *[(f"tfr_{m}mo", "1") for m in TFR_MONTHS],
        ("tfr_months", "month"),
        ("t_mmr", "day"),
        ("t_mr4", "day"),
        ("t_mr45", "day"),
        ("t_mr45_measured", "day"),
        ("bcr_abl_at_stop", "percent IS"),
        *[(f"{s}_at_stop", u) for s, u in zip(spec.states, spec.state_units)],
        ("max_bcr_abl_after_stop", "percent IS"),
        ("bcr_abl_final", "percent IS"),
        *[(f"{s}_final", u) for s, u in zip(spec.states, spec.state_units)],
        ("tki_days", "day"),
        ("n_stops", "1"),
        ("outcome_class", "code"),
        ("solver_failures", "1"),
        ("rhs_calls", "1"),
    ]
    return out


def final_readout(spec: ModelSpec, final: np.ndarray, params: np.ndarray) -> np.ndarray:
    """The model's readout (BCR-ABL1, % IS) of each run's final state, with the run's parameters.

    ``spec.readout_array(y, p)`` takes one parameter vector for all rows of ``y``. When the rows
    have different parameters, it is first called once with the parameter matrix transposed
    (``p[K]`` is then the column of parameter K, one value per run), which gives each run's
    readout with the same element-wise operations as a call per run (``100 Y / K_y`` for
    ``cml_immune``). That form is kept only when it has one value per run and equals the call per
    run, bit for bit, on the first and the last run; otherwise (a readout that is not
    element-wise in the parameters) every run gets its own call.

    Parameters
    ----------
    spec : ModelSpec
    final : ndarray (m, n_state)
        State at the horizon.
    params : ndarray (m, n_param)
        Parameter vectors.

    Returns
    -------
    ndarray (m,)
    """
    m = final.shape[0]
    if spec.readout_array is None:  # pragma: no cover - every registered model has one
        return np.full(m, np.nan)
    if m and (params == params[0]).all():
        return spec.readout_array(final, params[0])

    def one(j: int) -> np.float64:
        return spec.readout_array(final[j : j + 1], params[j])[0]

    try:
        columns = np.asarray(spec.readout_array(final, params.T), dtype=np.float64)
        ok = columns.shape == (m,) and all(
            np.float64(one(j)).tobytes() == columns[j].tobytes() for j in (0, m - 1)
        )
    except Exception:  # not element-wise in the parameters: one call per run says what is wrong
        ok = False
    return columns if ok else np.array([one(j) for j in range(m)])


def metrics(
    spec: ModelSpec,
    kern: ModuleType,
    summary: np.ndarray,
    stats: np.ndarray,
    final: np.ndarray,
    params: np.ndarray,
    horizon: float,
) -> np.ndarray:
    """The metric matrix of a chunk of runs.

    Parameters
    ----------
    spec : ModelSpec
    kern : module
        The kernel module that ran (its ``S_*`` and ``ST_*`` indices).
    summary, stats : ndarray
        Kernel summaries (m, S_N) and solver statistics (m, ST_N).
    final : ndarray (m, n_state)
        State at the horizon.
    params : ndarray (m, n_param)
        Parameter vectors (for the readout).
    horizon : float
        Simulated time, days.

    Returns
    -------
    ndarray, shape (m, len(metric_names(spec)))
    """
    S = summary
    m = S.shape[0]
    stop = S[:, kern.S_STOP_TIME]
    stopped = np.isfinite(stop)
    relapse_t = np.where(stopped, S[:, kern.S_RELAPSE_TIME], np.nan)
    relapsed = np.isfinite(relapse_t)
    failures = stats[:, kern.ST_FAILURES]
    cols: list[np.ndarray] = [
        np.where(failures > 0, 2.0, 1.0),
        stop,
        relapse_t,
        (relapse_t - stop) / DAYS_PER_MONTH,
    ]
    for months in TFR_MONTHS:
        at = stop + months * DAYS_PER_MONTH
        failed = relapsed & (relapse_t <= at)
        followed = at <= horizon
        tfr = np.where(failed | ~stopped, 0.0, np.where(followed, 1.0, np.nan))
        cols.append(tfr)
    end = np.where(relapsed, relapse_t, horizon)
    cols.append(np.where(stopped, (end - stop) / DAYS_PER_MONTH, 0.0))
    for slot in (kern.S_T_MMR, kern.S_T_MR4, kern.S_T_MR45, kern.S_T_MR45_MEAS):
        cols.append(S[:, slot])
    cols.append(S[:, kern.S_BCR_AT_STOP])
    ns = spec.n_state
    cols += [S[:, kern.S_STATE_AT_STOP + i] for i in range(ns)]
    cols.append(S[:, kern.S_MAX_AFTER_STOP])
    cols.append(final_readout(spec, final, params))
    cols += [final[:, i] for i in range(ns)]
    cols.append(S[:, kern.S_TKI_DAYS])
    cols.append(S[:, kern.S_N_STOPS])
    cells = [spec.states.index(s) for s in ("X", "Y") if s in spec.states]
    leukemic = final[:, cells].sum(axis=1) if cells else np.full(m, np.nan)
    outcome = np.where(
        ~stopped,
        OUTCOME_CODES["no stop"],
        np.where(
            relapsed,
            OUTCOME_CODES["relapse"],
            np.where(leukemic < CURE_CELLS, OUTCOME_CODES["cure"], OUTCOME_CODES["control"]),
        ),
    ).astype(np.float64)
    outcome[~np.isfinite(leukemic) & stopped & ~relapsed] = np.nan
    cols.append(outcome)
    cols.append(failures.astype(np.float64))
    cols.append(stats[:, kern.ST_RHS].astype(np.float64))
    out = np.column_stack(cols)
    assert out.shape[1] == len(_layout(spec))
    return out
