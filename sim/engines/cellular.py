"""Scenarios on the cell-level engines: ``engine = "stochastic" | "abm" | "mesa"``.

What these engines support (a scenario asking for more is an error at validation, exit code 2):

- **therapy**: no TKI, or one segment from diagnosis with a constant regimen in ``interval`` or
  ``kill`` PK mode (``adherence`` lowers the mean dose, as the ODE's modes do); no ``daily``
  PK, ``intermittent`` dosing or ``switch``.
- **protocol**: TKI throughout (``stop = "never"``) or a fixed stop (``stop = { at = ... }`` or
  the segment's ``end``), with ``restart = "never"`` when there is a stop; no criteria stops,
  lead-in or TKI switch. Monitoring visits (qPCR) are not simulated: relapse is the true
  BCR-ABL1 (100 Y/K_y) above 0.1 % (loss of MMR) after the stop.
- **interventions**: none (their drive changes in time; these engines take a drive that is
  constant before and after the stop).
- **cohorts**: ``[cohort]`` with the above protocol; no ``[trial]`` (trial designs stop on
  criteria at visits).

Outputs: the trajectory (X, Y, Z, E, N; the agent engines add resistant cells), eradication
(no quiescent and no active leukemic cell left) and its time, relapse and its time; for cohorts,
the probability of cure and of relapse with Wilson 95 % intervals. ``mesa`` runs the same
numba kernel as ``abm`` through :class:`sim.mesa_model.CMLModel` (one Mesa step per kernel
step), so the two give identical results for a seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from sim.params import DAYS_PER_MONTH

if TYPE_CHECKING:
    from sim.cohort import CohortResult
    from sim.results import RunResult
    from sim.scenario import Protocol, Scenario, TherapySegment, Trial

_STOCHASTIC = ("cell_scale", "dt_max", "eps")
_AGENT = ("cell_scale", "dt", "lattice", "max_agents", "max_t_agents", "n_sens", "nk_volume",
          "sens_sd_log",
          "mu_res", "resist_factor", "nk_activation_rate", "niche_fraction")  # fmt: skip
#: ``[engine]`` options each engine accepts.
ENGINE_OPTIONS: dict[str, tuple[str, ...]] = {
    "stochastic": _STOCHASTIC,
    "abm": _AGENT,
    "mesa": _AGENT,
}


def option_check(name: str) -> Callable[[object], float]:
    """The value check of an ``[engine]`` option (raises :class:`sim.units.UnitError`)."""
    from sim.engines import abm
    from sim.units import UnitError, parse_duration, parse_param_value

    def show(v: object) -> str:
        return f'"{v}"' if isinstance(v, str) else repr(v)

    def duration(v: object) -> float:
        d = parse_duration(v)
        if not 0 < d <= 30:
            raise UnitError(show(v), 'a duration > 0 and <= 30 days (e.g. "1d", "6h")')
        return d

    def integer(lo: int, hi: int, what: str) -> Callable[[object], float]:
        def check(v: object) -> float:
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise UnitError(show(v), what)
            return float(v)

        return check

    def eps(v: object) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 1:
            raise UnitError(show(v), "a number in (0, 1)")
        return float(v)

    if name in ("dt", "dt_max"):
        return duration
    if name == "eps":
        return eps
    if name == "lattice":

        def lattice(v: object) -> float:
            if isinstance(v, bool) or not isinstance(v, int) or not (v == 0 or 3 <= v <= 4096):
                raise UnitError(show(v), "0 (well mixed) or a lattice side from 3 to 4096")
            return float(v)

        return lattice
    if name in ("max_agents", "max_t_agents"):
        return integer(1, 1 << 28, "an integer from 1 to 268435456")
    if name == "n_sens":
        return integer(1, 126, "an integer from 1 to 126")
    par = abm.ABM_PARAMS[name]

    def param(v: object) -> float:
        x = parse_param_value(v, par.unit)
        if not (par.lower <= x <= par.upper) or math.isnan(x):
            raise UnitError(show(v), f"a value in [{par.lower:g}, {par.upper:g}] {par.unit}")
        return x

    return param


def unsupported(
    engine: str,
    therapy: Sequence[TherapySegment],
    protocol: Protocol,
    interventions: Sequence,
    trial: Trial | None = None,
) -> tuple[tuple, str, str] | None:
    """The first scenario feature ``engine`` cannot run, as (key path, found, expected)."""
    why = f'what engine "{engine}" supports (see sim.engines.cellular), or engine = "ode"'
    if trial is not None:
        found = f'a [trial] design (criteria stops at visits) with engine "{engine}"'
        return ("trial",), found, why
    if interventions:
        return (
            ("intervention", 0),
            f'an intervention with engine "{engine}" (drives that change in time)',
            "no [[intervention]] " + why[4:],
        )
    if len(therapy) > 1:
        return (("therapy", 1), f"{len(therapy)} therapy segments", "one segment " + why[4:])
    for i, seg in enumerate(therapy):
        if seg.pk == "daily":
            return ("therapy", i, "pk"), '"daily"', '"interval" or "kill" (' + why + ")"
        if seg.start != 0:
            return ("therapy", i, "start"), f"a start at {seg.start:g} days", "diagnosis"
        if seg.on or seg.off:
            return ("therapy", i, "intermittent"), "intermittent dosing", why
        if seg.switch:
            return ("therapy", i, "switch"), "a switch segment", why
    p = protocol
    if p.stop_kind not in ("never", "fixed"):
        return (
            ("protocol", "stop"),
            f'a criteria stop with engine "{engine}"',
            ('stop = "never" or { at = ... } (' + why + ")"),
        )
    if p.lead_in > 0:
        return ("protocol", "lead_in"), "a lead-in", why
    if p.switch_at is not None:
        return ("protocol", "switch"), "a TKI switch rule", why
    stops = p.stop_kind == "fixed" or any(seg.end is not None for seg in therapy)
    if stops and p.restart != "never":
        return (
            ("protocol", "restart"),
            f'"{p.restart}" (a restart needs monitoring visits)',
            ('restart = "never" with engine "' + engine + '"'),
        )
    return None


def drive_and_stop(sc: Scenario) -> tuple[np.ndarray, np.ndarray, float]:
    """The constant drive before and after the stop, and the stop time (days; inf = never)."""
    from sim import run
    from sim.engines import ode
    from sim.therapy import drive as dv

    on = np.zeros(dv.N_DRIVE)
    stop = math.inf
    for seg in sc.therapy:
        row = run.schedule_row(seg.drug, seg.dose, seg.every, 0.0, seg.end, seg.pk, seg.adherence)
        if seg.pk == "kill":
            on[dv.TKI] = row[ode.SCH_DOSE] * row[ode.SCH_ADHERENCE] / seg.drug.standard_dose
        else:
            on[dv.TKI] = row[ode.SCH_U1]
        if seg.end is not None:
            stop = min(stop, float(seg.end))
    if sc.protocol.stop_kind == "fixed" and sc.protocol.stop_at is not None:
        stop = min(stop, float(sc.protocol.stop_at))
    if not sc.therapy:
        stop = 0.0
    return on, np.zeros(dv.N_DRIVE), stop


def _options(sc: Scenario) -> tuple[dict, dict]:
    """(engine keyword arguments, ABM parameter overrides) of the scenario's ``[engine]``."""
    from sim.engines import abm

    opts = dict(sc.engine_options)
    aparams = {k: v for k, v in opts.items() if k in abm.ABM_PARAMS}
    kw = {k: v for k, v in opts.items() if k not in abm.ABM_PARAMS}
    for k in ("lattice", "max_agents", "max_t_agents", "n_sens"):
        if k in kw:
            kw[k] = int(kw[k])
    return kw, aparams


def simulate(
    sc: Scenario, params: np.ndarray, n: int, t_out: np.ndarray, seed: int | None = None
) -> dict[str, np.ndarray]:
    """Run ``n`` patients (rows of ``params`` or one vector) of the scenario's engine.

    Returns the engine's result dict (:func:`sim.engines.stochastic.simulate_stochastic` or
    :func:`sim.engines.abm.simulate_abm`), with ``y`` reduced to the model's five states and
    ``bcr_abl`` (n, n_t) in % IS added.
    """
    from sim.engines import abm, stochastic

    on, off, stop = drive_and_stop(sc)
    seed = sc.seed if seed is None else seed
    kw, aparams = _options(sc)
    if sc.engine == "stochastic":
        scale = float(aparams.pop("cell_scale", 1.0))
        p = np.atleast_2d(np.asarray(params, dtype=np.float64))
        ps = np.array([stochastic.scale_cells(row, scale) for row in p])
        res = stochastic.simulate_stochastic(
            ps if len(ps) > 1 else ps[0], None, stop, sc.horizon, seed, n, t_out,
            drive_on=on, drive_off=off, **kw,
        )  # fmt: skip
        ky = ps[:, _k_y()] if len(ps) > 1 else np.full(n, ps[0, _k_y()])
    elif sc.engine == "abm":
        res = abm.simulate_abm(params, aparams, None, stop, sc.horizon, seed, n, t_out,
                               drive_on=on, drive_off=off, **kw)  # fmt: skip
        ky = res["params"][:, _k_y()]
    elif sc.engine == "mesa":
        from sim import mesa_model

        res = mesa_model.simulate_mesa(params, aparams, stop, sc.horizon, seed, n, t_out,
                                       drive_on=on, drive_off=off, **kw)  # fmt: skip
        ky = res["params"][:, _k_y()]
    else:
        raise ValueError(f"engine {sc.engine!r} is not a cell-level engine")
    res["bcr_abl"] = 100.0 * res["y"][:, :, 1] / ky[:, None]
    res["stop_time"] = stop
    res["drive_on"], res["drive_off"] = on, off
    return res


def _k_y() -> int:
    from sim.models import cml_immune

    return cml_immune.K_Y


def _first_below(t: np.ndarray, bcr: np.ndarray, level: float) -> float:
    hit = np.flatnonzero(bcr <= level)
    return float(t[hit[0]]) if hit.size else math.nan


def run_scenario(sc: Scenario) -> RunResult:
    """One patient of a scenario on the stochastic, abm or mesa engine, as a RunResult.

    Response times are read on the output grid (``output_every``); there are no visits.
    """
    from sim import models, run
    from sim.engines import jit
    from sim.results import RunResult, provenance

    model = models.get(sc.model)
    params = model.params.vector(sc.patient)
    t_out = run.output_grid(sc.horizon, sc.output_every)
    jit_before, t0 = jit.seconds(), time.perf_counter()
    res = simulate(sc, params, 1, t_out)
    elapsed = time.perf_counter() - t0 - (jit.seconds() - jit_before)  # numba's compile excluded
    y = res["y"][0, :, :5]
    bcr = res["bcr_abl"][0]
    stop = res["stop_time"]
    drive = np.where((t_out < stop)[:, None], res["drive_on"], res["drive_off"])
    summary = {
        "t_mmr": _first_below(t_out, bcr, 0.1),
        "t_mr4": _first_below(t_out, bcr, 0.01),
        "t_mr45": _first_below(t_out, bcr, 0.0032),
        "stop_time": stop if math.isfinite(stop) and stop < sc.horizon else math.nan,
        "relapse_time": float(res["t_relapse"][0]),
        "eradication_time": float(res["t_eradication"][0]),
        "eradicated": float(res["eradicated"][0]),
        "min_Y": float(res["min_y"][0]),
    }
    if math.isfinite(summary["stop_time"]):
        i = int(np.searchsorted(t_out, stop))
        summary["E_at_stop"] = float(y[min(i, len(y) - 1), 3])
        summary["N_at_stop"] = float(y[min(i, len(y) - 1), 4])
    if "t_resistant" in res:
        summary["t_first_resistant"] = float(res["t_resistant"][0])
        summary["overflow"] = float(res["overflow"][0])
    if math.isfinite(summary["stop_time"]):
        i = int(np.searchsorted(t_out, stop))
        summary["bcr_abl_at_stop"] = float(bcr[min(i, len(bcr) - 1)])
        for k, s in enumerate(model.states[:3]):
            summary[f"{s}_at_stop"] = float(res["state_at_stop"][0, k])
    u = float(res["drive_on"][0])
    periods = [(0.0, min(stop, sc.horizon), 1.0)] if sc.therapy and u > 0 else []
    stats = {"wall_ms": round(elapsed * 1e3)}
    if "events" in res:
        stats["agent_updates"] = int(res["updates"][0])
        stats["events"] = int(res["events"][0].sum())
    else:
        stats["events"] = int(res["counts"][0].sum())
    visits = {k: np.zeros(0) for k in ("time", "true_pct", "measured_pct", "detected", "abl1",
                                        "lod_pct", "depth", "on_tki", "action")}  # fmt: skip
    return RunResult(
        name=sc.name,
        model=model,
        params=params,
        t=t_out,
        y=y,
        bcr_abl=bcr,
        drive=drive,
        visits=visits,
        summary=summary,
        tki_periods=periods,
        stats=stats,
        provenance=provenance(sc.text, sc.seed, sc.engine),
        timings={"kernel": elapsed},
    )


def wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson 95 % interval (:func:`sim.engines.stochastic.wilson_interval`)."""
    from sim.engines.stochastic import wilson_interval

    return wilson_interval(k, n)


def run_cohort(
    sc: Scenario, size: int | None = None, threads: int | None = None, progress: bool = False
) -> CohortResult:
    """A ``[cohort]`` on the stochastic, abm or mesa engine, as a CohortResult.

    The outcome table has the ODE cohort's columns that apply (stop, relapse, KM follow-up,
    state at the stop, parameters; NaN where a column needs visits) and ``eradicated``,
    ``eradication_time``; :attr:`CohortResult.notes` gives the probability of cure and of
    relapse with Wilson 95 % intervals (also :func:`cure_summary`). All patients run in one
    kernel call: ``progress`` shows a tqdm bar that fills when the call returns.
    """
    import numba
    import pandas as pd

    from sim import models
    from sim.cohort import CohortResult, sample_parameters
    from sim.engines import jit
    from sim.results import provenance

    model = models.get(sc.model)
    n = sc.cohort.size if size is None else int(size)
    if n < 1:
        raise ValueError(f"cohort size must be >= 1, got {n}")
    P, hahnel = sample_parameters(sc.cohort, model, sc.patient, sc.seed, n)
    every = sc.cohort.trajectory_every
    # monthly grid (the time in MR4 before the stop is read on it) and the stop itself
    grid = every or DAYS_PER_MONTH
    t_out = np.arange(int(sc.horizon // grid) + 1) * grid
    stop = drive_and_stop(sc)[2]
    extra = [stop] if 0 <= stop < sc.horizon else []
    t_out = np.unique(np.concatenate([t_out, [sc.horizon], extra]))
    old = numba.get_num_threads()
    if threads is not None:
        numba.set_num_threads(int(threads))
    from tqdm.auto import tqdm

    jit_before, t0 = jit.seconds(), time.perf_counter()
    try:
        with tqdm(total=n, unit="patient", disable=not progress, desc=sc.name) as bar:
            res = simulate(sc, P, n, t_out)
            bar.update(n)
    finally:
        numba.set_num_threads(old)
    runtime = time.perf_counter() - t0 - (jit.seconds() - jit_before)
    stop = res["stop_time"]
    stopped = math.isfinite(stop) and stop < sc.horizon
    follow_up = 24 * DAYS_PER_MONTH
    t_rel = res["t_relapse"]
    relapse = np.isfinite(t_rel) & stopped
    censor = min(stop + follow_up, sc.horizon) if stopped else math.nan
    event = relapse & (t_rel <= censor + 1e-9)
    cols: dict = {
        "patient": np.arange(n, dtype=np.int64),
        "arm": np.full(n, sc.name, dtype=object),
        "eligible": np.full(n, stopped),
        "eligible_time": np.full(n, stop if stopped else math.nan),
        "lead_in_failure": np.zeros(n, dtype=bool),
        "stop_time": np.full(n, stop if stopped else math.nan),
        "time_on_tki": np.full(n, stop if stopped else math.nan),
        "time_in_mr4_before_stop": _time_in_mr4(t_out, res["bcr_abl"], stop),
        "depth_at_stop": np.full(n, -1, dtype=np.int64),
        "relapse": relapse,
        "relapse_time": np.where(relapse, t_rel, math.nan),
        "event": event,
        "months_to_relapse_or_censor": np.full(n, math.nan)
        if not stopped
        else np.where(event, t_rel - stop, censor - stop) / DAYS_PER_MONTH,
        "follow_up_months": np.full(n, (censor - stop) / DAYS_PER_MONTH if stopped else math.nan),
        "restart_time": np.full(n, math.nan),
        "bcr_abl_at_stop": 100.0 * res["state_at_stop"][:, 1] / res_k_y(res, P, sc),
        "eradicated": res["eradicated"],
        "eradication_time": res["t_eradication"],
    }
    for i, s in enumerate(model.states[:3]):
        cols[f"{s}_at_stop"] = res["state_at_stop"][:, i]
    i_stop = int(np.searchsorted(t_out, stop)) if stopped else -1
    for i, s in ((3, "E"), (4, "N")):
        cols[f"{s}_at_stop"] = res["y"][:, i_stop, i] if stopped else np.full(n, math.nan)
    cols["hahnel_patient"] = np.asarray(hahnel, dtype=np.int64)
    cols["solver_failures"] = res.get("overflow", np.zeros(n, dtype=bool)).astype(np.int64)
    for i, name in enumerate(model.params.names):
        cols[f"param_{name}"] = P[:, i]
    table = pd.DataFrame(cols)
    cure = cure_summary(res)
    lo = P.min(axis=0)
    hi = P.max(axis=0)
    ns = model.n_state
    y = None
    if every:
        y = np.full((n, t_out.size, ns), np.nan)
        y[:, :, :5] = res["y"][:, :, :5]
    if y is None:
        t_out = None
    return CohortResult(
        name=sc.name,
        arm=sc.name,
        model=model,
        params=P,
        sampled=tuple(nm for i, nm in enumerate(model.params.names) if lo[i] != hi[i]),
        outcomes=table,
        summary=np.zeros((n, 0)),
        stats=np.zeros((n, 0), dtype=np.int64),
        design="custom",
        notes=format_cure(cure) + f"; engine {sc.engine}: fixed TKI schedule, no visits",
        follow_up=follow_up,
        horizon=sc.horizon,
        t=t_out,
        y=y,
        provenance=provenance(sc.text, sc.seed, sc.engine),
        runtime=runtime,
    )


def _time_in_mr4(t: np.ndarray, bcr: np.ndarray, stop: float) -> np.ndarray:
    """Per patient: time from the first grid point of the last run at MR4 or deeper (true
    BCR-ABL1 <= 0.01 %) to the stop (0 if above MR4 at the stop; NaN if never stopped)."""
    n = bcr.shape[0]
    if not 0 <= stop < t[-1]:
        return np.full(n, math.nan)
    upto = t <= stop + 1e-9
    deep = bcr[:, upto] <= 0.01
    ts = t[upto]
    out = np.zeros(n)
    for i in range(n):
        if deep[i, -1]:
            shallow = np.flatnonzero(~deep[i])
            first = shallow[-1] + 1 if shallow.size else 0
            out[i] = stop - ts[first]
    return out


def res_k_y(res: dict, P: np.ndarray, sc: Scenario) -> np.ndarray:
    """K_y of each patient at the engine's cell scale."""
    if "params" in res:
        return res["params"][:, _k_y()]
    scale = float(sc.engine_options.get("cell_scale", 1.0))
    return P[:, _k_y()] * scale


def cure_summary(res: dict) -> dict[str, float | int | tuple[float, float]]:
    """Probability of cure (eradication by the horizon) and of relapse, with Wilson 95 % CIs."""
    n = len(res["eradicated"])
    cured = int(res["eradicated"].sum())
    relapsed = int(res["relapsed"].sum())
    te = res["t_eradication"][res["eradicated"]]
    return {
        "n": n,
        "cured": cured,
        "p_cure": cured / n,
        "ci_cure": wilson(cured, n),
        "relapsed": relapsed,
        "p_relapse": relapsed / n,
        "ci_relapse": wilson(relapsed, n),
        "median_t_eradication": float(np.median(te)) if te.size else math.nan,
    }


def format_cure(c: dict) -> str:
    """One line: cure and relapse probabilities with their intervals."""
    lo, hi = c["ci_cure"]
    rlo, rhi = c["ci_relapse"]
    return (
        f"probability of cure {c['p_cure']:.1%} (95 % CI {lo:.1%}-{hi:.1%}, {c['cured']}/"
        f"{c['n']}), of relapse {c['p_relapse']:.1%} ({rlo:.1%}-{rhi:.1%})"
    )


def format_run(sc: Scenario, result: RunResult, elapsed: float) -> list[str]:
    """What ``cmlsim run`` prints for a cell-level engine."""
    s = result.summary

    def mo(days: float) -> str:
        return "never" if days != days else f"{days / DAYS_PER_MONTH:.1f} mo"

    scale = sc.engine_options.get("cell_scale", 1.0)
    lines = [
        f"{sc.name}: {sc.model}, {sc.engine} engine (cell scale {scale:g}), horizon "
        f"{mo(sc.horizon)}, seed {sc.seed}",
        f"  true MMR at {mo(s['t_mmr'])}, MR4 at {mo(s['t_mr4'])}, MR4.5 at {mo(s['t_mr45'])} "
        "(on the output grid; no qPCR visits)",
    ]
    if s["eradicated"]:
        lines.append(f"  eradicated (no leukemic cell left) at {mo(s['eradication_time'])}")
    if s["stop_time"] == s["stop_time"]:
        rel = s["relapse_time"]
        lines.append(
            f"  TKI stopped at {mo(s['stop_time'])}; "
            + (f"relapse (BCR-ABL1 > 0.1 %) at {mo(rel)}" if rel == rel else "no relapse")
        )
    else:
        lines.append("  TKI never stopped")
    if s.get("t_first_resistant", math.nan) == s.get("t_first_resistant", math.nan):
        lines.append(f"  first resistant cell at {mo(s['t_first_resistant'])}")
    extra = ", ".join(f"{k} {v}" for k, v in result.stats.items() if k != "wall_ms")
    lines.append(f"  {extra}; {elapsed * 1e3:.1f} ms")
    return lines
