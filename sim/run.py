"""From a scenario to a result: compile therapy and protocol to flat arrays, run the kernel.

This is the Python edge of the ODE engine (``scenario -> model + therapy -> engine -> results``):
validation happened in :mod:`sim.scenario`; here arrays are built, the jitted kernel of
:mod:`sim.engines.ode` (bound to the scenario's model) is called once, and its outputs are labelled
as a :class:`sim.results.RunResult`.
"""

from __future__ import annotations

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


def compile_schedule(therapy: Sequence[TherapySegment]) -> np.ndarray:
    """Therapy segments as the kernel's schedule matrix (``sim.engines.ode.SCH_*`` columns)."""
    from sim.engines import ode

    sched = np.zeros((max(len(therapy), 1), ode.SCH_N))
    if not therapy:  # no TKI at all: one empty segment that never starts
        sched[0, ode.SCH_START] = np.inf
        sched[0, ode.SCH_END] = np.inf
        sched[0, ode.SCH_TAU] = 1.0
        sched[0, ode.SCH_DOSE] = 0.0
        sched[0, ode.SCH_DRUG + 6] = 1.0  # standard dose, avoids 0/0
        return sched
    for k, seg in enumerate(sorted(therapy, key=lambda s: s.start)):
        sched[k, ode.SCH_START] = seg.start
        sched[k, ode.SCH_END] = np.inf if seg.end is None else seg.end
        sched[k, ode.SCH_DOSE] = seg.dose
        sched[k, ode.SCH_TAU] = seg.every
        sched[k, ode.SCH_MODE] = _MODES[seg.pk]
        sched[k, ode.SCH_DRUG :] = seg.drug.vector()
    return sched


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
    return pr


def output_grid(horizon: float, every: float, extra: Sequence[float] = ()) -> np.ndarray:
    """Output times 0, every, 2 every, ..., horizon (plus ``extra`` times), sorted and unique."""
    n = int(np.floor(horizon / every + 1e-9))
    t = np.arange(n + 1) * every
    return np.unique(np.concatenate([t, [horizon], np.asarray(extra, dtype=float)]))


def simulate(
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
) -> dict[str, np.ndarray]:
    """Run one patient through the kernel and return its raw arrays.

    ``params`` is the model's parameter vector (internal units); ``sched`` and ``proto`` come from
    :func:`compile_schedule` and :func:`compile_protocol`. Returns a dict with ``t, y, drive,
    visits, events, summary, stats``; visits and events are trimmed to what happened.
    """
    from sim import readout as qpcr_mod
    from sim.engines import rng

    model = models.get(model_name)
    kern = binding.kernels(model)
    params = np.ascontiguousarray(params, dtype=np.float64)
    horizon = float(proto[kern.PR_HORIZON])
    if t_out is None:
        t_out = output_grid(horizon, 7.0)
    t_out = np.ascontiguousarray(t_out, dtype=np.float64)
    y0 = model.initial_state(params) if y0 is None else np.asarray(y0, dtype=np.float64)
    atol = model.atol(rtol) if atol is None else np.asarray(atol, dtype=np.float64)
    q = qpcr_mod.QPCR.defaults() if qpcr is None else np.asarray(qpcr, dtype=np.float64)
    state = rng.seed_states(seed, 1)[0]
    y_out = np.full((t_out.size, model.n_state), np.nan)
    d_out = np.full((t_out.size, _dv.N_DRIVE), np.nan)
    visits = np.full((MAX_VISITS, kern.V_N), np.nan)
    events = np.full((MAX_EVENTS, 3), np.nan)
    summary = np.full(kern.S_N, np.nan)
    stats = np.zeros(kern.ST_N, dtype=np.int64)
    kern.simulate_one(
        y0, params, np.ascontiguousarray(sched), np.ascontiguousarray(proto), q, state,
        float(rtol), atol, t_out, y_out, d_out, visits, events, summary, stats,
    )  # fmt: skip
    return {
        "t": t_out,
        "y": y_out,
        "drive": d_out,
        "visits": visits[: stats[kern.ST_VISITS]],
        "events": events[: stats[kern.ST_EVENTS]],
        "summary": summary,
        "stats": stats,
        "y0": y0,
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
    }


def run_scenario(sc: Scenario) -> RunResult:
    """Run a validated single-patient scenario with the ODE engine."""
    from sim.results import RunResult, provenance

    model = models.get(sc.model)
    arr = scenario_arrays(sc)
    raw = simulate(
        sc.model, arr["params"], arr["sched"], arr["proto"], qpcr=arr["qpcr"], seed=sc.seed,
        rtol=sc.rtol, atol=arr["atol"], t_out=arr["t_out"],
    )  # fmt: skip
    return RunResult(
        name=sc.name,
        model=model,
        params=arr["params"],
        t=raw["t"],
        y=raw["y"],
        bcr_abl=100.0 * raw["y"][:, 1] / arr["params"][model.params.index("K_y")]
        if "K_y" in model.params
        else np.full(raw["t"].size, np.nan),
        drive=raw["drive"],
        visits=visits_dict(raw["visits"]),
        summary=summary_dict(sc.model, raw["summary"], raw["stats"])
        | {
            "x0_capped": float(
                np.isfinite(arr["params"][model.params.index("x0_cap")])
                and raw["y0"][0] >= arr["params"][model.params.index("x0_cap")]
            )
            if "x0_cap" in model.params
            else 0.0
        },
        tki_periods=tki_periods(raw["events"], sc.horizon),
        stats=stats_dict(raw["stats"]),
        provenance=provenance(sc.text, sc.seed, sc.engine),
    )


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
