"""The runs of a sweep: design rows to kernel inputs, the kernel, the metrics.

A :class:`Runner` holds what every chunk of one sweep shares (the scenario compiled once by
:func:`sim.run.scenario_arrays`, the resolved addresses, the kernel module) and turns a block of
design rows into the kernel's arguments: parameter vectors always one per run; the therapy
schedule, protocol and interventions shared by the whole chunk when only model parameters vary,
else one copy per run with the swept entries written into the compiled arrays (the same numbers
``sim.run.compile_*`` would produce from a scenario file with those values; a test checks it).

Kernel calls
    Only model parameters swept: one ``simulate_ensemble`` call per chunk (the ensemble kernel,
    ``prange`` over runs with the process's numba threads). A therapy, protocol or intervention
    value swept: the ensemble kernel takes one schedule for all its rows, so the runs of a chunk
    go through ``simulate_one`` in a plain Python loop over rows, each with its own arrays (the
    per-run views are made by iterating the arrays, not by indexing them run by run). The loop
    adds a few microseconds of dispatch per run, small against a 10-year run, and no
    parallelism inside the chunk: chunks run in parallel on the executor's workers instead.
    Both paths give bit-identical numbers.
Random streams
    Run ``j`` of the sweep (its global sample index) takes stream ``j`` of
    ``sim.engines.rng.seed_states(seed, n)``, whatever chunk or worker runs it. A runner computes
    the streams once (:meth:`Runner.streams`), not again for every chunk.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

    from sim.models.base import ModelSpec
    from sim.scenario import Scenario
    from sim.sweep.design import Base, Target

__all__ = ["ChunkResult", "Runner"]


@dataclass
class ChunkResult:
    """What one chunk of runs gives.

    Attributes
    ----------
    outcome : ndarray (m, n_metric)
        The metrics (:mod:`sim.sweep.metrics`).
    trajectory : ndarray (m, n_time, n_state) or None
        The coarse trajectory, when the sweep stores one.
    kernel_seconds : float
        Wall time inside the kernel calls.
    errors : dict
        Row -> error of the runs the kernel raised on (their metrics are NaN, their status 3).
    """

    outcome: np.ndarray
    trajectory: np.ndarray | None
    kernel_seconds: float
    errors: dict[int, str] = field(default_factory=dict)


class Runner:
    """Runs any block of design rows of one sweep.

    Parameters
    ----------
    sc : Scenario
        A validated scenario with a ``[sweep]``.
    """

    def __init__(self, sc: Scenario):
        from sim import models, run
        from sim.engines import binding
        from sim.sweep import design

        if sc.sweep is None:
            raise ValueError(f"scenario {sc.name!r} has no [sweep] section")
        self.sc = sc
        self.model: ModelSpec = models.get(sc.model)
        self.kern: ModuleType = binding.kernels(self.model)
        self.base: Base = design.Base.of(sc)
        self.targets: tuple[Target, ...] = tuple(
            design.resolve(p.path, self.base) for p in sc.sweep.params
        )
        self.arr = run.scenario_arrays(sc)
        every = sc.sweep.trajectory_every
        self.t_out = run.output_grid(sc.horizon, every) if every else np.array([float(sc.horizon)])
        self.store_trajectory = every is not None
        self.shared = all(t.kind == "param" for t in self.targets)
        proto = np.ascontiguousarray(self.arr["proto"], dtype=np.float64)
        self.template = run.kernel_arguments(
            sc.model,
            self.arr["params"],
            self.arr["sched"],
            proto,
            qpcr=self.arr["qpcr"],
            seed=sc.seed,
            rtol=sc.rtol,
            atol=self.arr["atol"],
            t_out=self.t_out,
            iv=self.arr["iv"],
        )
        self.names = [name for name, _ in run.KERNEL_ARGUMENTS]
        self.per_run = {name for name, per in run.KERNEL_ARGUMENTS if per}
        self._moves_ivs = self._stop_moves_interventions()
        self._streams = np.empty((0, 4), dtype=np.uint64)

    # -- inputs
    def _stop_moves_interventions(self) -> bool:
        """Whether a swept fixed stop moves an intervention written as an offset before it (the
        reader stores those as times after diagnosis)."""
        if not any(t.field == "stop.at" for t in self.targets):
            return False
        starts = [self.base.intervention_anchor(k) for k in range(len(self.base.interventions))]
        return any(anchor == "tki_stop" and offset < 0 for anchor, offset in starts)

    def inputs(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """Kernel inputs for a block of design rows (``values`` (m, D), in the swept units):
        ``p``, ``y0`` (m, ...) and ``sched``, ``proto``, ``iv`` (shared, or (m, ...) unless
        :attr:`shared`)."""

        kern = self.kern
        values = np.asarray(values, dtype=np.float64)
        m = values.shape[0]
        p = np.tile(self.template["p"], (m, 1))
        swept_param = False
        for d, t in enumerate(self.targets):
            if t.kind == "param":
                p[:, t.index] = values[:, d]
                swept_param = True
        if swept_param:
            y0 = self._initial_states(p)
        else:
            y0 = np.tile(self.template["y0"], (m, 1))
        out = {"p": p, "y0": y0.reshape(m, -1)}
        sched = self.template["sched"]
        proto = self.template["proto"]
        iv = self.template["iv"]
        if self.shared:
            out.update(sched=sched, proto=proto, iv=iv)
            return out
        protos = np.tile(proto, (m, 1))
        columns = {
            "stop.at": kern.PR_STOP_AT,
            "stop.after": kern.PR_STOP_AFTER,
            "stop.for": kern.PR_STOP_FOR,
            "lead_in.duration": kern.PR_LEAD_IN,
            "lead_in.dose": kern.PR_LEAD_DOSE,
            "monitoring.every": kern.PR_MONITOR_EVERY,
        }
        for d, t in enumerate(self.targets):
            if t.kind == "protocol":
                protos[:, columns[t.field]] = values[:, d]
        scheds = np.tile(sched, (m, 1, 1))
        sch_cols = {"dose": kern.SCH_DOSE, "adherence": kern.SCH_ADHERENCE, "every": kern.SCH_TAU}
        rows_changed = set()
        for d, t in enumerate(self.targets):
            if t.kind == "therapy":
                scheds[:, t.index, sch_cols[t.field]] = values[:, d]
                rows_changed.add(t.index)
        lead_swept = any(t.field == "lead_in.dose" for t in self.targets)
        if rows_changed or lead_swept:
            self._interval_effects(scheds, protos, rows_changed, lead_swept)
        ivs = np.tile(iv, (m, 1, 1))
        iv_cols = {"dose": kern.IV_DOSE, "every": kern.IV_EVERY, "duration": kern.IV_DURATION}
        offsets: dict[int, np.ndarray] = {}
        for d, t in enumerate(self.targets):
            if t.kind == "intervention":
                if t.field == "start":
                    offsets[t.index] = values[:, d]
                else:
                    ivs[:, t.index, iv_cols[t.field]] = values[:, d]
        if offsets or self._moves_ivs:
            self._anchors(ivs, protos, offsets)
        out.update(sched=scheds, proto=protos, iv=ivs)
        return out

    def _initial_states(self, P: np.ndarray) -> np.ndarray:
        """The state at diagnosis of each parameter row (the model module's vectorised
        ``initial_states`` when it has one)."""
        import importlib

        many = getattr(importlib.import_module(self.model.module), "initial_states", None)
        if many is not None:
            return np.ascontiguousarray(many(P), dtype=np.float64)
        return np.array([self.model.initial_state(row) for row in P], dtype=np.float64)

    def _interval_effects(self, scheds, protos, rows: set[int], lead_swept: bool) -> None:
        """Recompute the precomputed interval-PK effects (``SCH_U1``, ``SCH_UL``) of changed
        rows, exactly as ``sim.run.schedule_row`` and ``sim.run.prepare_schedule`` do."""
        from sim import run

        kern = self.kern
        rows = set(rows) | (set(range(scheds.shape[1])) if lead_swept else set())
        has_lead = protos[:, kern.PR_LEAD_IN] > 0
        cache: dict[tuple, float] = {}

        def effect(r: int, row: np.ndarray, mult: float) -> float:
            key = (r, row[kern.SCH_DOSE], row[kern.SCH_ADHERENCE], row[kern.SCH_TAU], mult)
            if key not in cache:
                cache[key] = run._interval_effect(row, mult)
            return cache[key]

        for j in range(scheds.shape[0]):
            for r in sorted(rows):
                row = scheds[j, r]
                row[kern.SCH_UL] = np.nan
                row[kern.SCH_LM] = np.nan
                row[kern.SCH_U1] = effect(r, row, 1.0)
                if has_lead[j]:
                    lead = float(protos[j, kern.PR_LEAD_DOSE])
                    row[kern.SCH_LM] = lead
                    row[kern.SCH_UL] = effect(r, row, lead)

    def _anchors(self, ivs, protos, offsets: dict[int, np.ndarray]) -> None:
        """Anchor and offset of each intervention: an offset before a fixed stop becomes a time
        after diagnosis (as the scenario reader writes it), per run."""
        from sim import run

        kern = self.kern
        stop = protos[:, kern.PR_STOP_AT]
        fixed = self.base.protocol.stop_kind == "fixed"
        for k in range(len(self.base.interventions)):
            anchor, raw_offset = self.base.intervention_anchor(k)
            if k not in offsets and not (anchor == "tki_stop" and fixed and raw_offset < 0):
                continue
            off = offsets.get(k, np.full(ivs.shape[0], raw_offset))
            if anchor == "tki_stop" and fixed:
                before = off < 0
                ivs[:, k, kern.IV_ANCHOR] = np.where(
                    before, run.ANCHORS["diagnosis"], run.ANCHORS["tki_stop"]
                )
                ivs[:, k, kern.IV_OFFSET] = np.where(before, stop + off, off) + 0.0
            else:
                ivs[:, k, kern.IV_ANCHOR] = run.ANCHORS[anchor]
                ivs[:, k, kern.IV_OFFSET] = off + 0.0

    # -- running
    def streams(self, first: int, stop: int) -> np.ndarray:
        """The random streams of runs ``first .. stop - 1`` (a fresh ``(stop - first, 4)`` copy).

        Rows of ``sim.engines.rng.seed_states(seed, n)`` depend only on the seed and the row, so
        the runner computes them once, for the largest ``stop`` asked so far (at least doubling,
        so a worker's chunks cost a few calls in all, not one pass over the streams per chunk).
        """
        from sim.engines import rng

        if stop > self._streams.shape[0]:
            self._streams = rng.seed_states(self.sc.seed, max(stop, 2 * self._streams.shape[0]))
        return self._streams[first:stop].copy()

    @staticmethod
    def rows(args: list, per: list[bool]) -> Iterator[tuple]:
        """The arguments of each run's ``simulate_one`` call: row ``j`` of the per-run arrays
        (views, made by iterating them), the shared ones as they are."""
        m = args[0].shape[0]
        return zip(*[iter(x) if pr else itertools.repeat(x, m) for x, pr in zip(args, per)])

    def arguments(self, values: np.ndarray, first: int) -> tuple[list, list[bool], dict]:
        """The kernel's arguments for design rows ``values`` (m, D), the runs ``first`` ..
        ``first + m - 1`` of the sweep: the list in ``sim.run.KERNEL_ARGUMENTS`` order, which of
        them have one row per run, and the same by name. Outputs are allocated fresh (visit and
        event logs with no rows: the sweep keeps neither, and the kernel only writes them)."""
        m = values.shape[0]
        a = self.inputs(values)
        tmpl = self.template
        a["state"] = self.streams(first, first + m)
        for name in ("y_out", "d_out", "iv_out"):
            a[name] = np.full((m, *tmpl[name].shape), np.nan)
        a["visits"] = np.full((m, 0, tmpl["visits"].shape[1]), np.nan)
        a["events"] = np.full((m, 0, tmpl["events"].shape[1]), np.nan)
        a["summary"] = np.full((m, *tmpl["summary"].shape), np.nan)
        a["stats"] = np.zeros((m, *tmpl["stats"].shape), dtype=tmpl["stats"].dtype)
        for name in self.names:
            if name not in a:
                a[name] = tmpl[name]
        args = [a[name] for name in self.names]
        shared = ("sched", "proto", "iv")
        per = [n in self.per_run or (n in shared and not self.shared) for n in self.names]
        return args, per, a

    def call(self, args: list, per: list[bool]) -> float:
        """Run the kernel on :meth:`arguments`; the seconds it took. Raises what the kernel
        raises (see :meth:`run` for runs that fail)."""
        t0 = time.perf_counter()
        if self.shared:
            self.kern.simulate_ensemble(*args)
        else:
            one = self.kern.simulate_one
            for row in self.rows(args, per):
                one(*row)
        return time.perf_counter() - t0

    def _one_by_one(self, args: list, per: list[bool]) -> tuple[float, dict[int, str]]:
        """Each run on its own, collecting the errors of those the kernel raises on."""
        errors = {}
        one = self.kern.simulate_one
        t0 = time.perf_counter()
        for j, row in enumerate(self.rows(args, per)):
            try:
                one(*row)
            except Exception as exc:  # one run's numerical failure, not the chunk's
                errors[j] = f"{type(exc).__name__}: {exc}"
        return time.perf_counter() - t0, errors

    def run(self, values: np.ndarray, first: int) -> ChunkResult:
        """Run design rows ``values`` (m, D), the runs ``first .. first + m - 1`` of the sweep.

        A run on which the kernel raises (a division by zero, say) is recorded with its error
        and NaN metrics (status 3); the others of the chunk are kept: the chunk goes run by run
        (the ensemble call, which cannot say which row raised, is repeated one run at a time).

        Parameters
        ----------
        values : ndarray (m, D)
            Design rows in the swept units.
        first : int
            Global sample index of the first row (its random stream).
        """
        from sim.sweep import metrics
        from sim.sweep.store import STATUS

        args, per, a = self.arguments(values, first)
        if self.shared:
            try:
                seconds, errors = self.call(args, per), {}
            except Exception:
                args, per, a = self.arguments(values, first)
                seconds, errors = self._one_by_one(args, per)
        else:
            seconds, errors = self._one_by_one(args, per)
        y = a["y_out"]
        out = metrics.metrics(
            self.model, self.kern, a["summary"], a["stats"], y[:, -1, :], a["p"], self.sc.horizon
        )
        for j in errors:
            out[j] = np.nan
            out[j, 0] = STATUS["error"]
            y[j] = np.nan
        return ChunkResult(out, y if self.store_trajectory else None, seconds, errors)

    def warm_up(self) -> None:
        """Load (or compile) the kernel this sweep calls: one run at the low ends of the ranges
        (nothing is kept)."""
        assert self.sc.sweep is not None
        self.run(np.array([[p.low for p in self.sc.sweep.params]]), 0)
