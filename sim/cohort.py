r"""Virtual cohorts run through discontinuation-trial designs: sampling, execution, outcome table.

A scenario with a ``[cohort]`` section (and usually a ``[trial]``, see :mod:`sim.scenario`) is a
population: :func:`sample_parameters` draws one parameter vector per patient, :func:`run_cohort`
runs them all through the ODE kernel (``sim.engines.ode.simulate_ensemble``, one ``prange`` call
per chunk of patients) under the trial's protocol, and :func:`outcome_table` turns the kernel's
per-patient summaries and visit logs into the **outcome table** below, the interface of the
survival and biomarker analysis.

Outcome table (:class:`pandas.DataFrame`, one row per patient, patients never eligible included)
------------------------------------------------------------------------------------------------
Times are days since diagnosis unless said otherwise; NaN = did not happen.

================================  ======  ==========================================================
column                            dtype   meaning
================================  ======  ==========================================================
``patient``                       int     0 .. size-1; row j of the parameter matrix and random
                                          stream j (``sim.engines.rng.seed_states(seed, size)[j]``)
``arm``                           str     ``[trial] arm`` (default: the scenario name)
``eligible``                      bool    the design's stop criteria were met (at a visit, on
                                          measured qPCR) before the horizon
``eligible_time``                 float   when they were first met (the start of a lead-in, e.g.
                                          DESTINY's half-dose year; else the stop)
``lead_in_failure``               bool    recurrence during the reduced-dose lead-in: back to full
                                          dose, never stopped (DESTINY)
``stop_time``                     float   TKI stop (NaN if never stopped)
``time_on_tki``                   float   days with TKI exposure (dose > 0) before the stop
``time_in_mr4_before_stop``       float   length of the MR4 run at the stop: time from the first
                                          to the last of the consecutive on-TKI visits at MR4 or
                                          deeper ending at the last visit before the stop (0 if
                                          that visit is shallower than MR4)
``depth_at_stop``                 int     ``sim.readout`` DEPTH code of the last on-TKI visit before
                                          the stop (0 none, 3 MMR, 4 MR4, 5 MR4.5, 6 MR5; -1 if not
                                          stopped)
``relapse``                       bool    molecular relapse by the design's rule after the stop, at
                                          any time before the horizon
``relapse_time``                  float   visit at which relapse was declared
``event``                         bool    relapse within the follow-up window (the KM event)
``months_to_relapse_or_censor``   float   months after the stop to the relapse (``event``) or to
                                          censoring at ``min(stop + follow_up, horizon)``; NaN if
                                          not stopped
``follow_up_months``              float   length of the follow-up window after the stop, months
``restart_time``                  float   TKI restart after relapse
``bcr_abl_at_stop``               float   true BCR-ABL1 (% IS) at the stop
``X_at_stop`` .. ``N_at_stop``    float   model state at the stop (X, Y, Z cells; E exhaustion
                                          fraction; N NK cells/µL), one column per model state
``t_mmr_measured``,               float   first measured MMR / MR4 / MR4.5 (at a visit)
``t_mr4_measured``,
``t_mr45_measured``
``t_mmr``, ``t_mr4``,             float   first true crossing (dense output)
``t_mr45``
``max_bcr_abl_after_stop``        float   largest true BCR-ABL1 after the first stop (% IS)
``hahnel_patient``                int     the resampled Hähnel patient (1-21; 0 with base "none")
``solver_failures``               int     integration failures (0 for a good run)
``param_<name>``                  float   every model parameter of the patient (table units),
                                          sampled or fixed
================================  ======  ==========================================================

The default cohort (``base = "hahnel2020"``)
--------------------------------------------
Each patient resamples (uniformly, with replacement) one of the 21 patients of Hähnel et al.
2020 Table S1 and takes its (p_xy, p_yx, e_tki, p_z, K_z, y0) times ``exp(spread * z)``,
z ~ N(0, 1) independent per parameter (``spread`` = 0.1 by default: a ~10 % log-scale jitter, so
that the cohort is an empirical distribution with spread, not 21 clones). The immune extension
varies between patients: the healthy NK level s_N/d_N is lognormal with median
sqrt(90 * 600) = 232 cells/µL and log-sd ln(600/90)/(2 * 1.96) = 0.484, so that 90-600 cells/µL
(the healthy range, Synnovis lymphocyte-subset reference) is its central 95 % interval, and
s_N = d_N * level; the NK kill m_N is lognormal around its value in ``[patient]`` (the model
default 1e-4) with log-sd 0.5 [assumption]. Other parameters keep their ``[patient]`` values.
The base values are clipped to the parameter bounds (they never reach them at spread <= 1).
By default (``calibration = "tang2011"``) the TKI effect and the load at diagnosis are then
re-fitted to Tang 2011's BCR-ABL1 kinetics, keeping each patient's fitted quiescent reservoir
(:class:`Calibration` says how and which numbers it gives); ``calibration = "none"`` keeps the
published fits.

Explicit distributions in ``[cohort]`` override the base: ``normal``, ``lognormal``,
``uniform``, ``truncated`` (of one of those, with ``lower``/``upper``), ``empirical`` (resampled
column of a CSV file) and ``fixed``; correlations through a Gaussian copula. They are sampled by
the inverse CDF of the distribution *truncated to the parameter's bounds* (and to any
``lower``/``upper``): samples always respect the bounds, exactly, with no rejection loop and no
clipping.

Reproducibility
---------------
Sampling uses ``np.random.SeedSequence(seed, spawn_key=(SAMPLING_KEY,)).spawn(3)`` (children:
Hähnel row choice, base perturbations, explicit distributions), a branch of the seed's tree that
never meets the kernel's per-patient streams ``sim.engines.rng.seed_states(seed, size)``
(spawn keys ``(j,)``). Patient j's numbers depend only on the seed, the cohort declaration and j
(not on chunking or thread count), and two arms with the same seed and ``[cohort]`` simulate the
same virtual patients with the same qPCR noise streams (common random numbers).
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import ndtr, ndtri

from sim.params import DAYS_PER_MONTH

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from sim.models.base import ModelSpec
    from sim.scenario import Cohort, ParamDist, Scenario

__all__ = [
    "CALIBRATION",
    "HAHNEL_PARAMS",
    "M_N_SD_LOG",
    "NK_MEDIAN",
    "NK_SD_LOG",
    "OUTCOME_COLUMNS",
    "CohortResult",
    "load_cohort",
    "outcome_table",
    "run_cohort",
    "sample_parameters",
    "tfr_fractions",
    "to_dataset",
    "write_cohort",
]

#: Parameters taken from a resampled Hähnel 2020 patient.
HAHNEL_PARAMS = ("p_xy", "p_yx", "e_tki", "p_z", "K_z", "y0")
#: Healthy NK level s_N/d_N: lognormal, median sqrt(90*600) cells/µL, 90-600 = central 95 %.
NK_MEDIAN = math.sqrt(90.0 * 600.0)
NK_SD_LOG = math.log(600.0 / 90.0) / (2.0 * 1.959963984540054)
#: Log-sd of the NK kill m_N between patients [assumption].
M_N_SD_LOG = 0.5


@dataclass(frozen=True)
class Calibration:
    """How the default cohort departs from the published Hähnel fits (``calibration = "tang2011"``).

    The Hähnel 2020 fits start late in some patients (BCR-ABL1 at their "diagnosis" from 0.3 %)
    and their TKI effect gives a first-phase decline of -0.018/day on average, against Tang 2011's
    -0.052 +- 0.018/day. Two changes, fitted openly on a 2,000-patient cohort (seed 20261201,
    ``tests/test_calibration.py`` checks the targets):

    - the TKI effect: ``e_tki`` of the resampled patient times ``tki_effect_scale``;
    - the load at diagnosis: ``y0 = K_y * clip(median * exp(sd_log * z), low, high)`` with
      z ~ N(0, 1), while the quiescent reservoir stays as fitted: ``x0_cap`` is set to the Hähnel
      patient's X0 = (p_yx / p_xy) y0_Hähnel, so a larger y0 does not inflate X0.

    Values seen with the shipped EURO-SKI scenario (2,000 patients, KM): phase-1 slope -0.049 +-
    0.034/day (Tang -0.052 +- 0.018), phase-2 slope -0.0055/day (Tang -0.0057 +- 0.0038),
    molecular relapse-free 54.1 % (95 % CI 51.9-56.3) at 6 months and 49.4 % (47.2-51.6) at 24
    months (EURO-SKI 61 % and 50 %). Without it ("none"): phase 1 -0.018/day, 55.9 % and 51.0 %.
    """

    tki_effect_scale: float = 1.45
    y0_median: float = 0.6  # fraction of K_y (60 % BCR-ABL1 IS)
    y0_sd_log: float = 0.4
    y0_low: float = 0.1
    y0_high: float = 0.95
    source: str = (
        "re-fit to Tang M et al. Blood 2011;118:1622 (phase-1/phase-2 BCR-ABL1 slopes on "
        "imatinib) keeping the Hähnel 2020 quiescent reservoir; cmlsim calibration"
    )


#: The calibration applied with ``calibration = "tang2011"`` (the default).
CALIBRATION = Calibration()
#: Spawn key of the sampling branch of the seed's SeedSequence (ASCII "coh").
SAMPLING_KEY = 0x636F68
#: Visit and event rows kept per patient by the kernel (more are dropped, never overrun).
MAX_VISITS = 256
MAX_EVENTS = 64
DEFAULT_CHUNK = 1000

#: Fixed columns of the outcome table, in order (then ``param_<name>`` per model parameter).
OUTCOME_COLUMNS = (
    "patient", "arm", "eligible", "eligible_time", "lead_in_failure", "stop_time", "time_on_tki",
    "time_in_mr4_before_stop", "depth_at_stop", "relapse", "relapse_time", "event",
    "months_to_relapse_or_censor", "follow_up_months", "restart_time", "bcr_abl_at_stop",
)  # fmt: skip
_TIMES = ("t_mmr_measured", "t_mr4_measured", "t_mr45_measured", "t_mmr", "t_mr4", "t_mr45")


# ---------------------------------------------------------------------------------------------
# sampling


def _sampling_rngs(seed: int) -> list[np.random.Generator]:
    children = np.random.SeedSequence(int(seed), spawn_key=(SAMPLING_KEY,)).spawn(4)
    return [np.random.default_rng(c) for c in children]


def _inverse_cdf(d: ParamDist, z: np.ndarray) -> np.ndarray:
    """Values of ``d`` at normal scores ``z`` (inverse CDF of the truncated law at Φ(z))."""
    u = ndtr(z)
    if d.dist == "fixed":
        return np.full(z.shape, d.a)
    if d.dist == "empirical":
        v = np.asarray(d.values)
        return v[np.minimum((u * v.size).astype(np.int64), v.size - 1)]
    if d.dist == "uniform":
        return np.clip(d.lower + u * (d.upper - d.lower), d.lower, d.upper)
    if d.dist == "normal":
        mu, sd, lo, hi = d.a, d.b, d.lower, d.upper
        x_of = lambda q: mu + sd * ndtri(q)  # noqa: E731
        cdf = lambda x: ndtr((x - mu) / sd)  # noqa: E731
    elif d.dist == "lognormal":
        mu, sd = d.a, d.b
        lo = -np.inf if d.lower <= 0 else math.log(d.lower)
        hi = math.log(d.upper) if np.isfinite(d.upper) else np.inf
        x_of = lambda q: np.exp(mu + sd * ndtri(q))  # noqa: E731
        cdf = lambda x: ndtr((x - mu) / sd)  # noqa: E731
    else:  # pragma: no cover - the scenario reader allows no other
        raise ValueError(f"unknown distribution {d.dist!r}")
    a, b = cdf(lo), cdf(hi)
    if not b - a > 1e-300:
        raise ValueError(
            f"{d.name}: the {d.dist} distribution has no mass inside [{d.lower:g}, {d.upper:g}]"
        )
    q = a + u * (b - a)
    return np.clip(x_of(q), d.lower, d.upper)


def sample_parameters(
    cohort: Cohort, model: ModelSpec, patient: dict[str, float], seed: int, size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the cohort's parameter matrix.

    Parameters
    ----------
    cohort : sim.scenario.Cohort
        The ``[cohort]`` declaration.
    model : ModelSpec
        The model (its parameter table gives names, order and bounds).
    patient : dict
        The scenario's ``[patient]`` overrides: the values of everything not sampled.
    seed : int
        The scenario seed (see the module docstring for the streams).
    size : int, optional
        Number of patients (default ``cohort.size``).

    Returns
    -------
    params : ndarray, shape (size, n_param)
        One parameter vector per patient, in table units, inside the bounds.
    hahnel : ndarray of int, shape (size,)
        The resampled Hähnel patient (1-21), or 0 with ``base = "none"``.
    """
    from sim.scenario import hahnel_patient

    n = cohort.size if size is None else int(size)
    table = model.params
    base = table.vector(patient)
    P = np.tile(base, (n, 1))
    r_rows, r_base, r_dist, r_cal = _sampling_rngs(seed)
    hahnel = np.zeros(n, dtype=np.int64)
    explicit = {d.name for d in cohort.params}
    if cohort.base == "hahnel2020":
        rows = np.array([[hahnel_patient(i)[k] for k in HAHNEL_PARAMS] for i in range(1, 22)])
        pick = r_rows.integers(0, rows.shape[0], size=n)
        hahnel = pick + 1
        z = r_base.standard_normal((n, len(HAHNEL_PARAMS) + 2))
        vals = rows[pick] * np.exp(cohort.spread * z[:, : len(HAHNEL_PARAMS)])
        for c, name in enumerate(HAHNEL_PARAMS):
            P[:, table.index(name)] = vals[:, c]
        P[:, table.index("m_N")] *= np.exp(M_N_SD_LOG * z[:, -1])
        nk_level = NK_MEDIAN * np.exp(NK_SD_LOG * z[:, -2])
        if cohort.calibration == "tang2011":
            cal = CALIBRATION
            ix = table.index
            P[:, ix("e_tki")] *= cal.tki_effect_scale
            K = P[:, ix("K_y")]
            frac = np.clip(
                cal.y0_median * np.exp(cal.y0_sd_log * r_cal.standard_normal(n)),
                cal.y0_low, cal.y0_high,
            )  # fmt: skip
            P[:, ix("x0_cap")] = P[:, ix("p_yx")] / P[:, ix("p_xy")] * P[:, ix("y0")]
            P[:, ix("y0")] = K * frac
    # explicit distributions: independent normal scores, correlated groups through the copula
    dists = list(cohort.params)
    if dists:
        z = r_dist.standard_normal((n, len(dists)))
        col = {d.name: c for c, d in enumerate(dists)}
        for corr in cohort.correlations:
            idx = [col[p] for p in corr.params]
            chol = np.linalg.cholesky(np.asarray(corr.matrix))
            z[:, idx] = z[:, idx] @ chol.T
        for c, d in enumerate(dists):
            P[:, table.index(d.name)] = _inverse_cdf(d, z[:, c])
    if cohort.base == "hahnel2020" and "s_N" not in explicit:
        P[:, table.index("s_N")] = P[:, table.index("d_N")] * nk_level
    lower = np.array([p.lower for p in table])
    upper = np.array([p.upper for p in table])
    return np.clip(P, lower, upper), hahnel


# ---------------------------------------------------------------------------------------------
# running


@dataclass
class CohortResult:
    """A simulated cohort.

    Attributes
    ----------
    name, arm : str
        Scenario name and arm label.
    model : ModelSpec
    params : ndarray (n, n_param)
        Parameter matrix (table units).
    sampled : tuple of str
        Parameters that vary between patients.
    outcomes : pandas.DataFrame
        The outcome table (module docstring).
    summary : ndarray (n, S_N)
        The kernel's summary vectors (``sim.engines.ode.S_*``).
    stats : ndarray (n, ST_N)
        Solver statistics per patient.
    design, notes : str
        Trial design and how it was emulated.
    follow_up : float
        Follow-up window after the stop, days.
    horizon : float
    visits : ndarray (n, MAX_VISITS, V_N) or None
        Visit logs (NaN-padded) when ``store_visits``.
    t, y : ndarray or None
        Coarse trajectory grid and states (n, n_t, n_state) when ``trajectory_every``.
    provenance : dict of str
    runtime : float
        Seconds spent in the kernel, numba's loading and compiling excluded
        (:func:`sim.engines.jit.seconds`).
    """

    name: str
    arm: str
    model: ModelSpec
    params: np.ndarray
    sampled: tuple[str, ...]
    outcomes: pd.DataFrame
    summary: np.ndarray
    stats: np.ndarray
    design: str
    notes: str
    follow_up: float
    horizon: float
    visits: np.ndarray | None = None
    t: np.ndarray | None = None
    y: np.ndarray | None = None
    provenance: dict[str, str] = field(default_factory=dict)
    runtime: float = 0.0


def _initial_states(model: ModelSpec, P: np.ndarray) -> np.ndarray:
    import importlib

    vectorised = getattr(importlib.import_module(model.module), "initial_states", None)
    if vectorised is not None:
        return np.ascontiguousarray(vectorised(P), dtype=np.float64)
    return np.array([model.initial_state(p) for p in P], dtype=np.float64)


def run_cohort(
    sc: Scenario,
    *,
    size: int | None = None,
    chunk: int = DEFAULT_CHUNK,
    threads: int | None = None,
    progress: bool = False,
) -> CohortResult:
    """Sample the scenario's cohort and run it through the ODE kernel.

    Parameters
    ----------
    sc : Scenario
        A scenario with a ``[cohort]`` section (a ``[trial]`` sets its protocol; without one the
        ``[protocol]`` is used as a custom design with 24 months of follow-up).
    size : int, optional
        Override ``[cohort] size``.
    chunk : int
        Patients per kernel call (bounds memory: visits take ``chunk * 256 * 9 * 8`` bytes).
    threads : int, optional
        numba threads for this run (restored afterwards).
    progress : bool
        Show a tqdm progress bar (patients).

    Returns
    -------
    CohortResult
    """
    import numba

    from sim import models, run
    from sim.engines import jit, ode, rng
    from sim.results import provenance

    if sc.cohort is None:
        raise ValueError(f"scenario {sc.name!r} has no [cohort] section")
    if sc.engine != "ode":
        from sim.engines import cellular

        return cellular.run_cohort(sc, size=size, threads=threads, progress=progress)
    model = models.get(sc.model)
    n = sc.cohort.size if size is None else int(size)
    if n < 1:
        raise ValueError(f"cohort size must be >= 1, got {n}")
    P, hahnel = sample_parameters(sc.cohort, model, sc.patient, sc.seed, n)
    arr = run.scenario_arrays(sc)
    sched = np.ascontiguousarray(arr["sched"])
    proto = np.ascontiguousarray(arr["proto"])
    qpcr = np.ascontiguousarray(arr["qpcr"])
    iv = np.ascontiguousarray(arr["iv"])
    atol = np.ascontiguousarray(arr["atol"])
    every = sc.cohort.trajectory_every
    t_out = run.output_grid(sc.horizon, every) if every else np.array([sc.horizon])
    streams = rng.seed_states(sc.seed, n)
    y0s = _initial_states(model, P)
    ns, n_iv = model.n_state, iv.shape[0]
    summary = np.full((n, ode.S_N), np.nan)
    stats = np.zeros((n, ode.ST_N), dtype=np.int64)
    keep_visits = sc.cohort.store_visits
    visits_all = np.full((n, MAX_VISITS, ode.V_N), np.nan) if keep_visits else None
    y_all = np.full((n, t_out.size, ns), np.nan) if every else None
    before_stop = np.full((n, 3), np.nan)  # time_on_tki, time_in_mr4, depth
    old_threads = numba.get_num_threads()
    if threads is not None:
        numba.set_num_threads(int(threads))
    from tqdm.auto import tqdm

    runtime = 0.0
    chunk = max(1, min(int(chunk), max(100, -(-n // 20))))  # >= 20 progress updates when large
    try:
        with tqdm(total=n, unit="patient", disable=not progress, desc=sc.name) as bar:
            for a in range(0, n, chunk):
                b = min(n, a + chunk)
                m = b - a
                ys = np.full((m, t_out.size, ns), np.nan)
                ds = np.full((m, t_out.size, N_DRIVE()), np.nan)
                vis = np.full((m, MAX_VISITS, ode.V_N), np.nan)
                ev = np.full((m, MAX_EVENTS, 3), np.nan)
                ivo = np.full((m, n_iv, ode.IVO_N), np.nan)
                args = (
                    np.ascontiguousarray(y0s[a:b]), np.ascontiguousarray(P[a:b]), sched, proto,
                    qpcr, iv, streams[a:b].copy(), float(sc.rtol), atol, t_out, ys, ds, vis, ev,
                    ivo, summary[a:b], stats[a:b],
                )  # fmt: skip
                jit.ensure_compiled(ode.simulate_ensemble, args)  # loaded or compiled untimed
                jit_before, t0 = jit.seconds(), time.perf_counter()
                ode.simulate_ensemble(*args)
                runtime += time.perf_counter() - t0 - (jit.seconds() - jit_before)
                used = max(1, int(stats[a:b, ode.ST_VISITS].max()))  # the rest is NaN
                before_stop[a:b] = _before_stop(vis[:, :used], ev, summary[a:b, ode.S_STOP_TIME])
                if keep_visits:
                    visits_all[a:b] = vis
                if every:
                    y_all[a:b] = ys
                bar.update(m)
    finally:
        numba.set_num_threads(old_threads)
    trial = sc.trial
    follow_up = trial.follow_up if trial else 24 * DAYS_PER_MONTH
    arm = trial.arm if trial else sc.name
    table = outcome_table(summary, stats, before_stop, P, hahnel, model, arm, follow_up, sc.horizon)
    lo = P.min(axis=0)
    hi = P.max(axis=0)
    sampled = tuple(nm for i, nm in enumerate(model.params.names) if lo[i] != hi[i])
    return CohortResult(
        name=sc.name,
        arm=arm,
        model=model,
        params=P,
        sampled=sampled,
        outcomes=table,
        summary=summary,
        stats=stats,
        design=trial.design if trial else "custom",
        notes=trial.notes if trial else "no [trial]: the [protocol] as written",
        follow_up=follow_up,
        horizon=sc.horizon,
        visits=visits_all,
        t=t_out if every else None,
        y=y_all,
        provenance=provenance(sc.text, sc.seed, sc.engine),
        runtime=runtime,
    )


def N_DRIVE() -> int:
    """Number of drive slots (``sim.therapy.drive.N_DRIVE``)."""
    from sim.therapy import drive

    return drive.N_DRIVE


def _before_stop(vis: np.ndarray, ev: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Per patient: TKI days before the stop, length of the MR4 run at the stop, depth code.

    ``vis`` (m, NV, V_N) visit logs, ``ev`` (m, NE, 3) TKI-level events, ``stop`` (m,) stop times
    (NaN: never stopped, all three NaN).
    """
    from sim import readout
    from sim.engines import ode

    m = vis.shape[0]
    out = np.full((m, 3), np.nan)
    # TKI exposure before the stop: level events (t, kind, level), piecewise constant
    t_ev = ev[:, :, 0]
    t_next = np.concatenate([t_ev[:, 1:], np.full((m, 1), np.nan)], axis=1)
    s = stop[:, None]
    t_next = np.where(np.isnan(t_next), s, np.minimum(t_next, s))
    dur = np.clip(t_next - t_ev, 0.0, None)
    on = (ev[:, :, 2] > 0) & np.isfinite(t_ev) & (t_ev < s)
    out[:, 0] = np.where(on, dur, 0.0).sum(axis=1)
    # visits on TKI at or before the stop
    t = vis[:, :, ode.V_TIME]
    depth = vis[:, :, ode.V_DEPTH]
    mask = np.isfinite(t) & (t <= s + 1e-9) & (vis[:, :, ode.V_ON_TKI] > 0)
    nv = t.shape[1]
    pos = np.arange(nv)[None, :]
    last = np.where(mask, pos, -1).max(axis=1)
    has = last >= 0
    rows = np.arange(m)
    li = np.maximum(last, 0)
    d_last = depth[rows, li]
    out[:, 2] = np.where(has, d_last, -1)
    deep = depth >= readout.DEPTH_MR4
    # the run of MR4 visits ending at `last`: after the last shallower on-TKI visit before it
    brk = np.where(mask & ~deep & (pos <= li[:, None]), pos, -1).max(axis=1)
    first_ok = np.where(mask & deep & (pos > brk[:, None]) & (pos <= li[:, None]), pos, nv)
    start = first_ok.min(axis=1)
    run_len = t[rows, li] - t[rows, np.minimum(start, nv - 1)]
    out[:, 1] = np.where(has & (d_last >= readout.DEPTH_MR4), run_len, 0.0)
    never = np.isnan(stop)
    out[never] = np.nan
    out[never, 2] = -1
    return out


def outcome_table(
    summary: np.ndarray,
    stats: np.ndarray,
    before_stop: np.ndarray,
    params: np.ndarray,
    hahnel: np.ndarray,
    model: ModelSpec,
    arm: str,
    follow_up: float,
    horizon: float,
) -> pd.DataFrame:
    """The outcome table (columns in the module docstring) from the kernel's outputs.

    Parameters
    ----------
    summary, stats : ndarray
        Kernel summaries (n, S_N) and solver statistics (n, ST_N).
    before_stop : ndarray (n, 3)
        TKI days before the stop, MR4-run length at the stop, depth code (see ``_before_stop``).
    params : ndarray (n, n_param)
    hahnel : ndarray (n,)
    model : ModelSpec
    arm : str
    follow_up, horizon : float
        Follow-up window after the stop and the simulated horizon, days.
    """
    import pandas as pd

    from sim.engines import ode

    n = summary.shape[0]
    S = summary
    stop = S[:, ode.S_STOP_TIME]
    lead = S[:, ode.S_LEAD_IN_START]
    stopped = np.isfinite(stop)
    relapse_t = S[:, ode.S_RELAPSE_TIME]
    relapse = np.isfinite(relapse_t) & stopped
    censor = np.minimum(stop + follow_up, horizon)
    event = relapse & (relapse_t <= censor + 1e-9)
    to_event = np.where(event, relapse_t, censor) - stop
    cols: dict[str, Any] = {
        "patient": np.arange(n, dtype=np.int64),
        "arm": np.full(n, arm, dtype=object),
        "eligible": np.isfinite(lead) | stopped,
        "eligible_time": np.fmin(lead, stop),
        "lead_in_failure": np.isfinite(S[:, ode.S_LEAD_IN_FAIL]),
        "stop_time": stop,
        "time_on_tki": before_stop[:, 0],
        "time_in_mr4_before_stop": before_stop[:, 1],
        "depth_at_stop": before_stop[:, 2].astype(np.int64),
        "relapse": relapse,
        "relapse_time": np.where(relapse, relapse_t, np.nan),
        "event": event,
        "months_to_relapse_or_censor": np.where(stopped, to_event / DAYS_PER_MONTH, np.nan),
        "follow_up_months": np.where(stopped, (censor - stop) / DAYS_PER_MONTH, np.nan),
        "restart_time": S[:, ode.S_RESTART_TIME],
        "bcr_abl_at_stop": S[:, ode.S_BCR_AT_STOP],
    }
    for i, s in enumerate(model.states):
        cols[f"{s}_at_stop"] = S[:, ode.S_STATE_AT_STOP + i]
    slots = {
        "t_mmr_measured": ode.S_T_MMR_MEAS, "t_mr4_measured": ode.S_T_MR4_MEAS,
        "t_mr45_measured": ode.S_T_MR45_MEAS, "t_mmr": ode.S_T_MMR, "t_mr4": ode.S_T_MR4,
        "t_mr45": ode.S_T_MR45,
    }  # fmt: skip
    for k in _TIMES:
        cols[k] = S[:, slots[k]]
    cols["max_bcr_abl_after_stop"] = S[:, ode.S_MAX_AFTER_STOP]
    cols["hahnel_patient"] = np.asarray(hahnel, dtype=np.int64)
    cols["solver_failures"] = stats[:, ode.ST_FAILURES].astype(np.int64)
    for i, name in enumerate(model.params.names):
        cols[f"param_{name}"] = params[:, i]
    return pd.DataFrame(cols)


def tfr_fractions(table: pd.DataFrame, months: Sequence[float] = (6, 12, 24)) -> dict[float, float]:
    """Relapse-free fraction among stopped patients at each month after the stop (simple).

    For month m: among stopped patients who relapsed by m or were followed at least m months,
    the fraction that had not relapsed by m (no Kaplan-Meier; censored patients with shorter
    follow-up are left out). NaN when nobody qualifies.
    """
    stopped = table["stop_time"].notna().to_numpy()
    t = table["months_to_relapse_or_censor"].to_numpy()
    ev = table["event"].to_numpy(dtype=bool)
    out = {}
    for m in months:
        failed = stopped & ev & (t <= m + 1e-9)
        at_risk = failed | (stopped & (t >= m - 1e-9))
        k = int(at_risk.sum())
        out[m] = float("nan") if k == 0 else 1.0 - failed.sum() / k
    return out


# ---------------------------------------------------------------------------------------------
# storing


def to_dataset(result: CohortResult) -> xr.Dataset:
    """The cohort as an :class:`xarray.Dataset` with a ``patient`` dimension.

    Every outcome-table column is a variable over ``patient`` (booleans as int8 0/1; ``arm`` is
    the attribute ``arm``); ``params`` (patient, param) holds the full parameter matrix; visits
    (patient, visit, field) and a coarse trajectory (patient, time, state) when stored.
    Attributes: provenance, design, notes, follow-up, horizon, sampled parameters.
    """
    import xarray as xr

    from sim.engines import ode

    tab = result.outcomes
    data: dict[str, Any] = {}
    for c in tab.columns:
        if c in ("patient", "arm") or c.startswith("param_"):
            continue
        v = tab[c].to_numpy()
        attrs: dict[str, str] = {}
        if v.dtype == bool:
            v = v.astype(np.int8)
            attrs["flag_values"] = "0 1"
        if c.endswith("_time") or c.startswith(("t_", "time_")):
            attrs["units"] = "day"
        elif c.endswith("_months") or c.startswith("months_"):
            attrs["units"] = "month"
        elif c == "bcr_abl_at_stop" or c == "max_bcr_abl_after_stop":
            attrs["units"] = "percent IS"
        data[c] = ("patient", v, attrs)
    table = result.model.params
    data["params"] = (
        ("patient", "param"),
        result.params,
        {"long_name": "model parameters (table units)"},
    )
    coords: dict[str, Any] = {
        "patient": np.arange(len(tab), dtype=np.int64),
        "param": list(table.names),
        "param_unit": ("param", [p.unit for p in table]),
    }
    if result.visits is not None:
        fields = ["time", "true_pct", "measured_pct", "detected", "abl1", "lod_pct", "depth",
                  "on_tki", "action"]  # fmt: skip
        assert len(fields) == ode.V_N
        data["visits"] = (("patient", "visit", "visit_field"), result.visits)
        coords["visit_field"] = fields
    if result.y is not None and result.t is not None:
        data["y"] = (("patient", "time", "state"), result.y)
        coords["time"] = ("time", result.t, {"units": "day"})
        coords["state"] = list(result.model.states)
    attrs = {
        **result.provenance,
        "name": result.name,
        "arm": result.arm,
        "model": result.model.name,
        "design": result.design,
        "design_notes": result.notes,
        "follow_up_days": float(result.follow_up),
        "horizon_days": float(result.horizon),
        "sampled_params": " ".join(result.sampled),
        "runtime_s": float(result.runtime),
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def write_cohort(
    result: CohortResult,
    results_root: str | os.PathLike = "results",
    overwrite: bool = False,
    figures: bool = True,
) -> Path:
    """Store a cohort as ``<results_root>/<name>/`` (atomic; never silently replacing a run).

    Writes ``cohort.nc`` (:func:`to_dataset`), ``outcomes.csv`` (and ``outcomes.parquet`` when
    pyarrow is installed) and ``scenario.toml``; same rules as :func:`sim.results.write_run`
    (hidden temporary directory renamed into place; ``<name>.2/`` when the name is taken unless
    ``overwrite``).

    Returns
    -------
    pathlib.Path
        The directory written.
    """
    from sim.results import _claim, _make_temp_dir

    root = Path(results_root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = _make_temp_dir(root, result.name)
    try:
        to_dataset(result).to_netcdf(tmp / "cohort.nc", engine="h5netcdf")
        result.outcomes.to_csv(tmp / "outcomes.csv", index=False, na_rep="NaN")
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            pass
        else:
            result.outcomes.to_parquet(tmp / "outcomes.parquet", index=False)
        (tmp / "scenario.toml").write_text(result.provenance.get("scenario", ""), encoding="utf-8")
        _write_analysis(result.outcomes, tmp, figures)
        return _claim(tmp, root, result.name, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_analysis(table: pd.DataFrame, folder: Path, figures: bool) -> None:
    """Kaplan–Meier table, biomarker AUCs and (optionally) the KM, swimmer and ROC figures, each
    with its source data beside it (``sim.outcomes``, ``sim.plots.cohort``)."""
    from sim import outcomes

    outcomes.km_table(table).to_csv(folder / "km_table.csv", index=False)
    stopped = outcomes.stopped(table)
    has_both = stopped["event"].astype(bool).any() and (~stopped["event"].astype(bool)).any()
    if has_both:
        outcomes.biomarker_auc(table, outcome="event").to_csv(
            folder / "biomarkers.csv", index=False
        )
    if not figures or stopped.empty:
        return
    from sim.plots import cohort as cohort_plots

    cohort_plots.plot_km(table, folder / "km")
    cohort_plots.plot_swimmer(table, folder / "swimmer")
    if has_both:
        cohort_plots.plot_roc(table, folder / "biomarkers", outcome="event")


def load_cohort(path: str | os.PathLike) -> tuple[xr.Dataset, pd.DataFrame]:
    """Read a stored cohort: the Dataset and the outcome table (from ``outcomes.csv``)."""
    import pandas as pd
    import xarray as xr

    path = Path(path)
    ds = xr.load_dataset(path / "cohort.nc", engine="h5netcdf", decode_times=False,
                         decode_timedelta=False)  # fmt: skip
    table = pd.read_csv(path / "outcomes.csv", na_values=["NaN"])
    return ds, table
