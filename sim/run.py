"""From a scenario to a result: compile therapy and protocol to flat arrays, run the kernel.

This is the Python edge of the ODE engine (``scenario -> model + therapy -> engine -> results``):
validation happened in :mod:`sim.scenario`; here arrays are built, the jitted kernel of
:mod:`sim.engines.ode` (bound to the scenario's model) is called once, and its outputs are labelled
as a :class:`sim.results.RunResult`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from sim import models
from sim.engines import binding
from sim.therapy import drive as _dv

if TYPE_CHECKING:
    from sim.results import RunResult
    from sim.scenario import Protocol, Scenario, TherapySegment

MAX_VISITS = 1024
MAX_EVENTS = 256

_MODES = {"kill": 0, "interval": 1, "daily": 2}
_RELAPSE = {"loss_of_mmr": 1, "two_consecutive": 2, "never": 1}


ANCHORS = {
    "diagnosis": 0, "mmr": 1, "mr4": 2, "stop_criteria": 3, "tki_stop": 4, "first_rise": 5,
    "relapse": 6,
}  # fmt: skip


def schedule_row(
    drug,
    dose: float | None = None,
    every: float | None = None,
    start: float = 0.0,
    end: float | None = None,
    pk: str = "interval",
    adherence: float = 1.0,
    on: float = 0.0,
    off: float = 0.0,
    switch: bool = False,
) -> np.ndarray:
    """One row of the kernel's therapy schedule (``sim.engines.ode.SCH_*`` columns)."""
    from sim.engines import ode

    row = np.zeros(ode.SCH_N)
    row[ode.SCH_START] = start
    row[ode.SCH_END] = np.inf if end is None else end
    row[ode.SCH_DOSE] = drug.standard_dose if dose is None else dose
    row[ode.SCH_TAU] = drug.standard_interval if every is None else every
    row[ode.SCH_MODE] = _MODES[pk]
    row[ode.SCH_ADHERENCE] = adherence
    row[ode.SCH_ON] = on
    row[ode.SCH_OFF] = off
    row[ode.SCH_SWITCH] = 1.0 if switch else 0.0
    row[ode.SCH_DRUG :] = drug.vector()
    row[ode.SCH_U1] = _interval_effect(row, 1.0)
    row[ode.SCH_UL] = np.nan
    row[ode.SCH_LM] = np.nan
    return row


def _interval_effect(row: np.ndarray, mult: float) -> float:
    """Relative TKI effect u of a schedule row in ``interval`` mode at a dose multiplier."""
    from sim.engines import ode
    from sim.therapy import pk

    dose = row[ode.SCH_DOSE] * mult * row[ode.SCH_ADHERENCE]
    return float(pk.relative_effect(dose, row[ode.SCH_TAU], row[ode.SCH_DRUG :]))


def prepare_schedule(sched: np.ndarray, proto: np.ndarray) -> np.ndarray:
    """Precompute the interval-mode effect at the protocol's lead-in dose (the kernel would
    otherwise compute it by quadrature at every lead-in; results are identical either way)."""
    from sim.engines import ode

    sched = np.array(sched, dtype=np.float64, copy=True)
    if proto[ode.PR_LEAD_IN] > 0:
        lead = float(proto[ode.PR_LEAD_DOSE])
        for row in sched:
            row[ode.SCH_LM] = lead
            row[ode.SCH_UL] = _interval_effect(row, lead)
    return sched


def compile_schedule(therapy: Sequence[TherapySegment]) -> np.ndarray:
    """Therapy segments as the kernel's schedule matrix (``sim.engines.ode.SCH_*`` columns)."""
    from sim.engines import ode
    from sim.therapy.drugs import get_drug

    if not therapy:  # no TKI at all: one segment that never starts
        row = schedule_row(get_drug("imatinib"), start=np.inf)
        row[ode.SCH_END] = np.inf
        return row[None, :]
    rows = [
        schedule_row(
            seg.drug,
            seg.dose,
            seg.every,
            seg.start,
            seg.end,
            seg.pk,
            adherence=getattr(seg, "adherence", 1.0),
            on=getattr(seg, "on", 0.0) or 0.0,
            off=getattr(seg, "off", 0.0) or 0.0,
            switch=getattr(seg, "switch", False),
        )
        for seg in sorted(therapy, key=lambda s: s.start)
    ]
    return np.array(rows)


def compile_interventions(interventions: Sequence) -> np.ndarray:
    """Interventions as the kernel's matrix (``sim.engines.ode.IV_*`` columns; 0 rows if none)."""
    from sim.engines import ode

    iv = np.zeros((len(interventions), ode.IV_N))
    for k, it in enumerate(interventions):
        iv[k, ode.IV_ANCHOR] = ANCHORS[it.anchor]
        iv[k, ode.IV_OFFSET] = it.offset
        iv[k, ode.IV_DURATION] = np.inf if it.duration is None else it.duration
        iv[k, ode.IV_EVERY] = it.every
        iv[k, ode.IV_COUNT] = np.inf if it.count is None else it.count
        iv[k, ode.IV_DOSE] = it.dose
        iv[k, ode.IV_MODE] = ode.IVM_INTERVAL if it.pk == "interval" else ode.IVM_DOSES
        iv[k, ode.IV_PRODUCT :] = it.product.vector()
    return iv


def compile_protocol(protocol: Protocol, horizon: float) -> np.ndarray:
    """The protocol as the kernel's vector (``sim.engines.ode.PR_*`` entries)."""
    from sim.engines import ode

    pr = np.zeros(ode.PR_N)
    pr[ode.PR_HORIZON] = horizon
    pr[ode.PR_STOP_KIND] = {"never": ode.STOP_NEVER, "fixed": ode.STOP_FIXED}.get(
        protocol.stop_kind, ode.STOP_CRITERIA
    )
    pr[ode.PR_STOP_AT] = np.inf if protocol.stop_at is None else protocol.stop_at
    pr[ode.PR_STOP_AFTER] = protocol.stop_after
    pr[ode.PR_STOP_DEPTH] = protocol.stop_depth
    pr[ode.PR_STOP_FOR] = protocol.stop_sustained_for
    pr[ode.PR_LEAD_IN] = protocol.lead_in
    pr[ode.PR_LEAD_DOSE] = protocol.lead_in_dose
    pr[ode.PR_RELAPSE_RULE] = _RELAPSE[protocol.restart]
    pr[ode.PR_RESTART] = 0.0 if protocol.restart == "never" else 1.0
    pr[ode.PR_MAX_STOPS] = protocol.max_stops
    pr[ode.PR_DECIDE_TRUE] = 1.0 if protocol.decisions == "true" else 0.0
    pr[ode.PR_MONITOR_EVERY] = protocol.monitor_every or 0.0
    switch_at = getattr(protocol, "switch_at", None)
    pr[ode.PR_SWITCH_AT] = np.inf if switch_at is None else switch_at
    pr[ode.PR_SWITCH_DEPTH] = getattr(protocol, "switch_depth", 0)
    return pr


def output_grid(horizon: float, every: float, extra: Sequence[float] = ()) -> np.ndarray:
    """Output times 0, every, 2 every, ..., horizon (plus ``extra`` times), sorted and unique."""
    n = int(np.floor(horizon / every + 1e-9))
    t = np.arange(n + 1) * every
    return np.unique(np.concatenate([t, [horizon], np.asarray(extra, dtype=float)]))


@functools.lru_cache(maxsize=4096)
def _first_stream(seed: int) -> np.ndarray:
    """Stream 0 of ``seed`` (what a one-patient run uses; as ``seed_states(seed, n)[0]``).
    Cached: deriving it costs more than a 10-year simulation itself."""
    from sim.engines import rng

    return rng.seed_states(seed, 1)[0]


#: Arguments of ``sim.engines.ode.simulate_one``, in order; the ones marked True are one row per
#: patient in ``simulate_ensemble`` (the others are shared by all patients).
KERNEL_ARGUMENTS: tuple[tuple[str, bool], ...] = (
    ("y0", True), ("p", True), ("sched", False), ("proto", False), ("qpcr", False),
    ("iv", False), ("state", True), ("rtol", False), ("atol", False), ("t_out", False),
    ("y_out", True), ("d_out", True), ("visits", True), ("events", True), ("iv_out", True),
    ("summary", True), ("stats", True),
)  # fmt: skip


def kernel_arguments(
    model_name: str,
    params: np.ndarray,
    sched: np.ndarray,
    proto: np.ndarray,
    *,
    qpcr: np.ndarray | None = None,
    seed: int = 0,
    rtol: float = 1e-6,
    atol: np.ndarray | None = None,
    t_out: np.ndarray | None = None,
    y0: np.ndarray | None = None,
    iv: np.ndarray | None = None,
) -> dict:
    """The named, allocated arguments of one patient's kernel call (see :data:`KERNEL_ARGUMENTS`),
    as :func:`simulate` passes them; benchmarks time the bare kernel on exactly these."""
    from sim import readout as qpcr_mod

    model = models.get(model_name)
    kern = binding.kernels(model)
    params = np.ascontiguousarray(params, dtype=np.float64)
    proto = np.ascontiguousarray(proto, dtype=np.float64)
    horizon = float(proto[kern.PR_HORIZON])
    t_out = output_grid(horizon, 7.0) if t_out is None else t_out
    iv = np.zeros((0, kern.IV_N)) if iv is None else np.ascontiguousarray(iv, dtype=np.float64)
    return {
        "y0": model.initial_state(params) if y0 is None else np.asarray(y0, dtype=np.float64),
        "p": params,
        "sched": prepare_schedule(sched, proto),
        "proto": proto,
        "qpcr": qpcr_mod.QPCR.defaults() if qpcr is None else np.asarray(qpcr, dtype=np.float64),
        "iv": iv,
        "state": _first_stream(int(seed)).copy(),
        "rtol": float(rtol),
        "atol": model.atol(rtol) if atol is None else np.asarray(atol, dtype=np.float64),
        "t_out": np.ascontiguousarray(t_out, dtype=np.float64),
        "y_out": np.full((len(t_out), model.n_state), np.nan),
        "d_out": np.full((len(t_out), _dv.N_DRIVE), np.nan),
        "visits": np.full((MAX_VISITS, kern.V_N), np.nan),
        "events": np.full((MAX_EVENTS, 3), np.nan),
        "iv_out": np.full((iv.shape[0], kern.IVO_N), np.nan),
        "summary": np.full(kern.S_N, np.nan),
        "stats": np.zeros(kern.ST_N, dtype=np.int64),
    }


def simulate(model_name: str, params: np.ndarray, sched: np.ndarray, proto: np.ndarray,
             **options) -> dict[str, np.ndarray]:  # fmt: skip
    """Run one patient through the kernel and return its raw arrays.

    ``params`` is the model's parameter vector (internal units); ``sched`` and ``proto`` come from
    :func:`compile_schedule` and :func:`compile_protocol`; ``options`` are those of
    :func:`kernel_arguments` (qpcr, seed, rtol, atol, t_out, y0, iv). Returns a dict with
    ``t, y, drive, visits, events, summary, stats, y0, interventions``; visits and events are
    trimmed to what happened. ``seconds`` is the kernel call's wall time; numba loads or compiles
    the kernel before it (:func:`sim.engines.jit.ensure_compiled`), untimed.
    """
    from sim.engines import jit

    a = kernel_arguments(model_name, params, sched, proto, **options)
    kern = binding.kernels(models.get(model_name))
    args = [a[name] for name, _ in KERNEL_ARGUMENTS]
    jit.ensure_compiled(kern.simulate_one, args)
    jit_before, start = jit.seconds(), time.perf_counter()
    kern.simulate_one(*args)
    seconds = time.perf_counter() - start - (jit.seconds() - jit_before)
    stats = a["stats"]
    return {
        "t": a["t_out"],
        "y": a["y_out"],
        "drive": a["d_out"],
        "visits": a["visits"][: stats[kern.ST_VISITS]],
        "events": a["events"][: stats[kern.ST_EVENTS]],
        "summary": a["summary"],
        "stats": stats,
        "y0": a["y0"],
        "interventions": a["iv_out"],
        "seconds": seconds,
    }


def summary_dict(model_name: str, summary: np.ndarray, stats: np.ndarray) -> dict[str, float]:
    """Kernel summary and stats vectors as named values (days; NaN where never reached)."""
    from sim.engines import ode

    model = models.get(model_name)
    names = {
        "t_mmr": ode.S_T_MMR, "t_mr4": ode.S_T_MR4, "t_mr45": ode.S_T_MR45,
        "t_mmr_measured": ode.S_T_MMR_MEAS, "t_mr4_measured": ode.S_T_MR4_MEAS,
        "t_mr45_measured": ode.S_T_MR45_MEAS, "stop_time": ode.S_STOP_TIME,
        "relapse_time": ode.S_RELAPSE_TIME, "restart_time": ode.S_RESTART_TIME,
        "n_stops": ode.S_N_STOPS, "bcr_abl_at_stop": ode.S_BCR_AT_STOP,
        "max_bcr_abl_after_stop": ode.S_MAX_AFTER_STOP, "t_loss_mmr_true": ode.S_T_LOSS_TRUE,
        "tki_days": ode.S_TKI_DAYS, "tki_exposure": ode.S_TKI_EXPOSURE,
        "lead_in_start": ode.S_LEAD_IN_START, "lead_in_failure": ode.S_LEAD_IN_FAIL,
    }  # fmt: skip
    out = {k: float(summary[i]) for k, i in names.items()}
    for i, s in enumerate(model.states):
        out[f"{s}_at_stop"] = float(summary[ode.S_STATE_AT_STOP + i])
    return out


def stats_dict(stats: np.ndarray) -> dict[str, int]:
    """Solver statistics by name."""
    from sim.engines import ode

    return {
        "steps": int(stats[ode.ST_STEPS]),
        "rejected": int(stats[ode.ST_REJECTED]),
        "rhs_calls": int(stats[ode.ST_RHS]),
        "failures": int(stats[ode.ST_FAILURES]),
        "restarts": int(stats[ode.ST_RESTARTS]),
    }


def tki_periods(events: np.ndarray, horizon: float) -> list[tuple[float, float, float]]:
    """(start, end, dose fraction) of each stretch of TKI exposure, from the kernel's level log."""
    periods = []
    for j in range(len(events)):
        t0, level = float(events[j, 0]), float(events[j, 2])
        t1 = float(events[j + 1, 0]) if j + 1 < len(events) else horizon
        if level > 0 and t1 > t0:
            periods.append((t0, t1, level))
    return periods


def scenario_arrays(sc: Scenario) -> dict:
    """Everything the kernel needs for a scenario: params, schedule, protocol, qPCR, grid."""
    from sim import readout as qpcr_mod

    model = models.get(sc.model)
    params = model.params.vector(sc.patient)
    return {
        "params": params,
        "sched": compile_schedule(sc.therapy),
        "proto": compile_protocol(sc.protocol, sc.horizon),
        "qpcr": qpcr_mod.QPCR.vector(sc.readout),
        "t_out": output_grid(sc.horizon, sc.output_every),
        "atol": (model.atol(sc.rtol) if sc.atol is None else sc.atol * np.ones(model.n_state)),
        "iv": compile_interventions(getattr(sc, "interventions", ())),
    }


def run_scenario(sc: Scenario) -> RunResult:
    """Run a validated single-patient scenario (the ODE engine, or the engine it names:
    ``stochastic``, ``abm`` and ``mesa`` run through :mod:`sim.engines.cellular`)."""
    import importlib

    if sc.engine != "ode":
        from sim.engines import cellular

        return cellular.run_scenario(sc)
    from sim.results import RunResult, provenance

    model = models.get(sc.model)
    arr = scenario_arrays(sc)
    raw = simulate(
        sc.model, arr["params"], arr["sched"], arr["proto"], qpcr=arr["qpcr"], seed=sc.seed,
        rtol=sc.rtol, atol=arr["atol"], t_out=arr["t_out"], iv=arr["iv"],
    )  # fmt: skip
    p = arr["params"]
    if model.readout_array is not None:
        bcr = model.readout_array(raw["y"], p)
    else:  # a model without a vectorised readout: row by row through its jitted one
        readout = importlib.import_module(model.module).readout
        bcr = np.array([readout(row, p) for row in raw["y"]])
    summary = summary_dict(sc.model, raw["summary"], raw["stats"])
    stats = stats_dict(raw["stats"])
    if "x0_cap" in model.params:
        summary["x0_capped"] = float(raw["y0"][0] >= p[model.params.index("x0_cap")])
    return RunResult(
        name=sc.name,
        model=model,
        params=p,
        t=raw["t"],
        y=raw["y"],
        bcr_abl=bcr,
        drive=raw["drive"],
        visits=visits_dict(raw["visits"]),
        summary=summary,
        tki_periods=tki_periods(raw["events"], sc.horizon),
        stats=stats,
        provenance=provenance(sc.text, sc.seed, sc.engine),
        interventions=interventions_list(getattr(sc, "interventions", ()), raw["interventions"]),
        failure=describe_failure(raw["t"], raw["y"]) if stats["failures"] else "",
        timings={"kernel": raw["seconds"]},
    )


def describe_failure(t: np.ndarray, y: np.ndarray) -> str:
    """When a failed run stopped, from its output grid: the outputs it never reached are NaN.

    Parameters
    ----------
    t : ndarray, shape (n_t,)
        Output times, days.
    y : ndarray, shape (n_t, n_state)
        States at the output times.

    Returns
    -------
    str
        ``"at day 0 (the state at diagnosis is not finite)"`` when no output was reached,
        ``"between day 84 and day 91"`` between the last output reached and the next, or
        ``"after day 3650 (the last output)"``.
    """
    reached = np.flatnonzero(np.all(np.isfinite(y), axis=1))
    if reached.size == 0:
        return "at day 0 (the state at diagnosis is not finite)"
    last = int(reached[-1])
    if last + 1 < len(t):
        return f"between day {t[last]:.6g} and day {t[last + 1]:.6g}"
    return f"after day {t[last]:.6g} (the last output)"


def interventions_list(specs: Sequence, iv_out: np.ndarray) -> list[dict]:
    """What happened to each intervention (start NaN: its anchor never came, so not given)."""
    from sim.engines import ode

    out = []
    for it, row in zip(specs, iv_out):
        out.append(
            {
                "name": it.name,
                "kind": it.product.kind,
                "product": it.product.name,
                "anchor": it.anchor,
                "start": float(row[ode.IVO_START]),
                "doses": int(row[ode.IVO_DOSES]),
                "last_dose": float(row[ode.IVO_LAST_DOSE]),
                "every": float(it.every),
                "given": bool(row[ode.IVO_DOSES] > 0),
            }
        )
    return out


def visits_dict(visits: np.ndarray) -> dict[str, np.ndarray]:
    """Kernel visit records as named columns."""
    from sim.engines import ode

    cols = {
        "time": ode.V_TIME, "true_pct": ode.V_TRUE, "measured_pct": ode.V_MEAS,
        "detected": ode.V_DET, "abl1": ode.V_ABL1, "lod_pct": ode.V_LOD, "depth": ode.V_DEPTH,
        "on_tki": ode.V_ON_TKI, "action": ode.V_ACTION,
    }  # fmt: skip
    out = {k: visits[:, i].copy() for k, i in cols.items()}
    out["depth"] = out["depth"].astype(np.int64)
    out["action"] = out["action"].astype(np.int64)
    return out
