"""Mesa front end of the agent engine, and a plain Mesa model of the same rules.

- :class:`CMLModel` is a ``mesa.Model`` whose :meth:`~CMLModel.step` advances the numba agent
  kernel of :mod:`sim.engines.abm` by one step (``dt`` days), so Mesa's ``DataCollector``,
  ``batch_run`` and visualisation (:mod:`sim.mesa_page`) work on it. Patient ``patient`` of seed
  ``seed`` uses the same random stream as patient ``patient`` of
  :func:`sim.engines.abm.simulate_abm` with that seed: the two give identical numbers.
- :class:`PlainCMLModel` implements the same well-mixed rules the idiomatic Mesa way (cells as
  ``mesa.Agent`` objects, activated by ``AgentSet.shuffle_do``): the independent implementation
  the numba kernel is cross-checked against, and the benchmark baseline.

``batch_run`` on Mesa 3.3 gives every iteration the same seed: pass seeds explicitly as a
parameter (``parameters={"seed": range(10), ...}``, ``iterations=1``).

This module imports Mesa, which is slow to import; ``import sim`` does not.
"""

from __future__ import annotations

import math

import mesa
import numpy as np

from sim.engines import abm
from sim.engines import rng as _rng
from sim.models import cml_immune as _cm
from sim.therapy import drive as _dv

__all__ = ["CMLModel", "LeukemicCell", "NKCell", "PlainCMLModel", "TCell", "simulate_mesa"]


def _setup(params, abm_params, cell_scale, y0, n_sens):
    from sim.engines.stochastic import scale_cells

    p = _cm.PARAMS.vector({}) if params is None else np.asarray(params, dtype=np.float64)
    ap = abm.abm_vector(abm_params)
    if cell_scale is not None:
        ap = ap.copy()
        ap[abm.CELL_SCALE] = float(cell_scale)
    if ap[abm.CELL_SCALE] != 1.0:
        p = scale_cells(p, ap[abm.CELL_SCALE])
    init = abm.initial_agents(p, ap, y0)
    cls = abm.class_sensitivities(ap[abm.SENS_SD_LOG], ap[abm.RESIST_FACTOR], n_sens)
    return p, ap, init, cls


def _drive(u_tki, drive_on, drive_off):
    on = np.zeros(_dv.N_DRIVE) if drive_on is None else np.asarray(drive_on, dtype=np.float64)
    if drive_on is None:
        on[_dv.TKI] = u_tki
    off = np.zeros(_dv.N_DRIVE) if drive_off is None else np.asarray(drive_off, dtype=np.float64)
    return np.ascontiguousarray(on), np.ascontiguousarray(off)


class CMLModel(mesa.Model):
    """One patient of the numba agent engine as a ``mesa.Model`` (one step = ``dt`` days).

    Parameters
    ----------
    params : numpy.ndarray, optional
        ``cml_immune`` parameters at cell scale 1 (default: the model defaults).
    abm_params : dict or numpy.ndarray, optional
        :data:`sim.engines.abm.ABM_PARAMS` overrides.
    seed, patient : int
        The random stream is ``sim.engines.rng.seed_states(seed, patient + 1)[patient]``.
    cell_scale : float, optional
        Overrides ``abm_params["cell_scale"]`` (a plain keyword for Solara sliders).
    u_tki, stop_time, horizon : float
        TKI effect before ``stop_time`` (days), and when ``running`` turns False.
    drive_on, drive_off : numpy.ndarray, optional
        Full drive vectors (override ``u_tki``).
    dt, lattice, max_agents, n_sens, relapse_level, cap_immune, max_t_agents
        As :func:`sim.engines.abm.simulate_abm`.

    Model reporters (``self.datacollector``): ``t`` (days), ``X``, ``Y``, ``Z``, ``E``, ``N``
    (cells/µL), ``R`` (resistant cells), ``bcr_abl`` (% IS), ``eradicated``.
    """

    def __init__(
        self,
        params: np.ndarray | None = None,
        abm_params: dict | np.ndarray | None = None,
        *,
        seed: int = 0,
        patient: int = 0,
        cell_scale: float | None = None,
        u_tki: float = 1.0,
        stop_time: float = math.inf,
        horizon: float = 3652.5,
        drive_on: np.ndarray | None = None,
        drive_off: np.ndarray | None = None,
        dt: float = abm.DEFAULT_DT,
        lattice: int = 0,
        max_agents: int = abm.DEFAULT_MAX_AGENTS,
        n_sens: int = abm.DEFAULT_N_SENS,
        relapse_level: float = abm.RELAPSE_LEVEL,
        cap_immune: int = abm.DEFAULT_CAP_IMMUNE,
        max_t_agents: int = abm.DEFAULT_MAX_T_AGENTS,
        y0: np.ndarray | None = None,
    ) -> None:
        super().__init__(seed=seed)
        self.p, self.ap, self.y0, cls = _setup(params, abm_params, cell_scale, y0, n_sens)
        self.ctl = abm.control_vector(
            dt, max_agents, int(lattice), n_sens, relapse_level, cap_immune, max_t_agents
        )
        self.drive_on, self.drive_off = _drive(u_tki, drive_on, drive_off)
        self.stop_time = float(stop_time)
        self.horizon = float(horizon)
        self.dt = float(dt)
        self.lattice = int(lattice)
        stream = _rng.seed_states(int(seed), int(patient) + 1)[int(patient)].copy()
        self.state = abm.new_state(self.y0, self.ap, cls, self.ctl, stream)
        if self.state[9][abm.IX_FAIL]:
            raise ValueError(
                "the initial cells do not fit: raise max_agents/cap_immune, enlarge the lattice "
                "or lower cell_scale"
            )
        nc = cls.size
        self.events = np.zeros(abm.EV_N, dtype=np.int64)
        self._thr = np.zeros((4, nc))
        self._pend = np.zeros((2, nc))
        self._cnt = np.zeros(3, dtype=np.int64)
        self._obs = np.empty(abm.N_OUT)
        abm.observe(self.state, self.ap, self._obs)
        self.overflow = False
        self.datacollector = mesa.DataCollector(
            model_reporters={
                k: k for k in ("t", "X", "Y", "Z", "E", "N", "R", "bcr_abl", "eradicated")
            }
        )
        self.running = True
        self.datacollector.collect(self)

    # --- observables
    @property
    def t(self) -> float:
        """Time since diagnosis, days."""
        return float(self.state[9][abm.IX_STEP] * self.dt)

    X = property(lambda self: float(self._obs[0]), doc="quiescent leukemic cells")
    Y = property(lambda self: float(self._obs[1]), doc="active leukemic cells")
    Z = property(lambda self: float(self._obs[2]), doc="effector T cells")
    E = property(lambda self: float(self._obs[3]), doc="mean T-cell exhaustion")
    N = property(lambda self: float(self._obs[4]), doc="NK cells per µL")
    R = property(lambda self: float(self._obs[5]), doc="resistant leukemic cells")

    @property
    def bcr_abl(self) -> float:
        """BCR-ABL1 (% IS), 100 Y / K_y."""
        return 100.0 * self.Y / self.p[_cm.K_Y]

    @property
    def eradicated(self) -> bool:
        """No quiescent and no active leukemic cell left."""
        return self.X == 0.0 and self.Y == 0.0

    @property
    def updates(self) -> int:
        """Agent updates so far (cell fate decisions)."""
        return int(self.state[9][abm.IX_UPDATES])

    def step(self) -> None:
        """Advance the numba kernel by one step and collect the reporters."""
        ok = abm.advance(
            self.state,
            self.p,
            self.ap,
            self.drive_on,
            self.drive_off,
            self.stop_time,
            self.ctl,
            self.events,
            self._thr,
            self._pend,
            self._cnt,
            1,
        )
        if ok:
            abm.observe(self.state, self.ap, self._obs)
        else:
            self.overflow = True
        if not ok or self.t >= self.horizon - 1e-9 * self.dt:
            self.running = False
        self.datacollector.collect(self)

    def lattice_counts(self) -> dict[str, np.ndarray]:
        """Per-site counts on the lattice, (L, L) each: ``active``, ``quiescent``, ``t_cells``,
        ``nk_cells`` and ``niche`` (1 on niche sites)."""
        if not self.lattice:
            raise ValueError("the model is well mixed (lattice = 0)")
        L = self.lattice
        cells, cpos, _, _, tpos, _, npos, niche = self.state[:8]
        ix = self.state[9]
        n, nt, nn = ix[abm.IX_NCELL], ix[abm.IX_NT], ix[abm.IX_NNK]
        act = (cells[:n] & 1).astype(bool)
        out = {
            "active": np.bincount(cpos[:n][act], minlength=L * L),
            "quiescent": np.bincount(cpos[:n][~act], minlength=L * L),
            "t_cells": np.bincount(tpos[:nt], minlength=L * L),
            "nk_cells": np.bincount(npos[:nn], minlength=L * L),
            "niche": (niche >= 0).astype(np.int64),
        }
        return {k: v.reshape(L, L) for k, v in out.items()}


def simulate_mesa(
    params: np.ndarray,
    abm_params: dict | None = None,
    stop_time: float = math.inf,
    horizon: float = 3652.5,
    seed: int = 0,
    n: int = 1,
    t_out: np.ndarray | None = None,
    *,
    drive_on: np.ndarray | None = None,
    drive_off: np.ndarray | None = None,
    u_tki: float = 1.0,
    **options,
) -> dict[str, np.ndarray]:
    """``n`` patients through :class:`CMLModel` (sequentially), in the result layout of
    :func:`sim.engines.abm.simulate_abm` (identical numbers for the same seed)."""
    params = np.asarray(params, dtype=np.float64)
    ps = np.broadcast_to(params, (n, params.shape[-1]))
    if t_out is None:
        k = int(np.floor(horizon / 7.0 + 1e-9))
        t_out = np.unique(np.concatenate([np.arange(k + 1) * 7.0, [horizon]]))
    t_out = np.asarray(t_out, dtype=np.float64)
    ys = np.full((n, t_out.size, abm.N_OUT), np.nan)
    sm = np.full((n, abm.SM_N), np.nan)
    events = np.zeros((n, abm.EV_N), dtype=np.int64)
    updates = np.zeros(n, dtype=np.int64)
    scaled = np.empty((n, params.shape[-1]))
    for i in range(n):
        m = CMLModel(
            ps[i],
            abm_params,
            seed=seed,
            patient=i,
            stop_time=stop_time,
            horizon=horizon,
            drive_on=drive_on,
            drive_off=drive_off,
            u_tki=u_tki,
            **options,
        )
        scaled[i] = m.p
        relapse_y = m.ctl[abm.C_RELAPSE] * m.p[_cm.K_Y]
        dt = m.dt
        n_steps = math.ceil(horizon / dt - 1e-9)
        post = stop_time <= 0.0
        s = sm[i]
        s[abm.SM_MIN_Y] = m.Y
        abm._milestones.py_func(0.0, m._obs, post, relapse_y, s)
        if post:
            s[abm.SM_X_STOP : abm.SM_Z_STOP + 1] = m._obs[:3]
        io = 0
        for k in range(n_steps + 1):
            t = k * dt
            while io < t_out.size and (t_out[io] < t + dt * (1.0 - 1e-9) or k == n_steps):
                ys[i, io] = m._obs
                io += 1
            if k == n_steps:
                break
            m.step()
            if m.overflow:
                s[abm.SM_OVERFLOW] = t
                break
            t1 = (k + 1) * dt
            if not post and t1 >= stop_time - 1e-9 * dt:
                post = True
                s[abm.SM_X_STOP : abm.SM_Z_STOP + 1] = m._obs[:3]
            abm._milestones.py_func(t1, m._obs, post, relapse_y, s)
        events[i] = m.events
        updates[i] = m.updates
    return {
        "t": t_out,
        "y": ys,
        "params": scaled,
        "eradicated": ~np.isnan(sm[:, abm.SM_T_ERAD]),
        "t_eradication": sm[:, abm.SM_T_ERAD],
        "relapsed": ~np.isnan(sm[:, abm.SM_T_RELAPSE]),
        "t_relapse": sm[:, abm.SM_T_RELAPSE],
        "state_at_stop": sm[:, abm.SM_X_STOP : abm.SM_Z_STOP + 1],
        "min_y": sm[:, abm.SM_MIN_Y],
        "t_y_zero": sm[:, abm.SM_T_Y0],
        "t_resistant": sm[:, abm.SM_T_RESIST],
        "overflow": ~np.isnan(sm[:, abm.SM_OVERFLOW]),
        "events": events,
        "updates": updates,
    }


# ------------------------------------------------------------------ the plain Mesa model


class LeukemicCell(mesa.Agent):
    """A quiescent or active leukemic cell of a TKI-sensitivity class (the last = resistant)."""

    def __init__(self, model: PlainCMLModel, active: bool, sens_class: int) -> None:
        super().__init__(model)
        self.active = active
        self.sens_class = sens_class

    def step(self) -> None:
        m = self.model
        r = m.random.random()
        if not self.active:
            if r < m.q_act:
                self.active = True
            return
        div, qui, death, mutant = m.thresholds[self.sens_class]
        if r < div:
            LeukemicCell(m, True, m.resistant_class if r < mutant else self.sens_class)
        elif r < qui:
            self.active = False
        elif r < death:
            self.remove()


class TCell(mesa.Agent):
    """An effector T cell with its own exhaustion."""

    def __init__(self, model: PlainCMLModel, exhaustion: float) -> None:
        super().__init__(model)
        self.exhaustion = exhaustion

    def step(self) -> None:
        m = self.model
        f = 1.0 - self.exhaustion * (1.0 - m.drive[_dv.PD1])
        lam = m.p[_cm.A] + m.window * f
        q = -math.expm1(-lam * m.dt)
        r = m.random.random()
        if r < q * m.p[_cm.A] / lam:
            self.remove()
            return
        self.exhaustion = m.e_inf + (self.exhaustion - m.e_inf) * m.e_decay
        if r < q:
            TCell(m, 0.0)


class NKCell(mesa.Agent):
    """An NK cell with its activation."""

    def __init__(self, model: PlainCMLModel, activation: float) -> None:
        super().__init__(model)
        self.activation = activation

    def step(self) -> None:
        m = self.model
        if m.random.random() < m.q_nk_death:
            self.remove()
            return
        self.activation = m.nk_target + (self.activation - m.nk_target) * m.nk_relax


class PlainCMLModel(mesa.Model):
    """The well-mixed agent rules of :mod:`sim.engines.abm` as an idiomatic Mesa model.

    Every cell is a ``mesa.Agent`` (:class:`LeukemicCell`, :class:`TCell`, :class:`NKCell`);
    :meth:`step` computes the environment (counts, functional T cells, NK activation, fate
    thresholds) from the agents, then ``self.agents.shuffle_do("step")`` lets each agent draw
    its fate from ``self.random`` with the same probabilities as the kernel, then T-cell influx
    and NK births (``self.rng``). Same keyword arguments as :class:`CMLModel` (well mixed
    only, no counts above a threshold).
    """

    def __init__(
        self,
        params: np.ndarray | None = None,
        abm_params: dict | np.ndarray | None = None,
        *,
        seed: int = 0,
        cell_scale: float | None = None,
        u_tki: float = 1.0,
        stop_time: float = math.inf,
        horizon: float = 3652.5,
        drive_on: np.ndarray | None = None,
        drive_off: np.ndarray | None = None,
        dt: float = abm.DEFAULT_DT,
        n_sens: int = abm.DEFAULT_N_SENS,
        y0: np.ndarray | None = None,
    ) -> None:
        super().__init__(seed=seed)
        self.p, self.ap, init, self.cls = _setup(params, abm_params, cell_scale, y0, n_sens)
        self.drive_on, self.drive_off = _drive(u_tki, drive_on, drive_off)
        self.stop_time, self.horizon, self.dt = float(stop_time), float(horizon), float(dt)
        self.resistant_class = self.cls.size - 1
        k = self.cls.size - 1
        for active, count in ((False, init[0]), (True, init[1])):
            for _ in range(int(count)):
                LeukemicCell(self, active, int(self.random.random() * k))
        for _ in range(int(init[2])):
            TCell(self, float(init[3]))
        for _ in range(int(init[4])):
            NKCell(self, float(init[5]))
        self.time_days = 0.0
        self.datacollector = mesa.DataCollector(
            model_reporters={"t": "time_days", "X": "X", "Y": "Y", "Z": "Z", "N": "N"}
        )
        self.running = True
        self._count()
        self.datacollector.collect(self)

    def _count(self) -> None:
        cells = self.agents_by_type.get(LeukemicCell, ())
        self.Y = sum(1 for c in cells if c.active)
        self.X = len(cells) - self.Y
        self.Z = len(self.agents_by_type.get(TCell, ()))
        self.N = len(self.agents_by_type.get(NKCell, ())) / self.ap[abm.NK_VOLUME]

    def step(self) -> None:
        p, ap, dt = self.p, self.ap, self.dt
        d = self.drive_on if self.time_days < self.stop_time - 1e-9 * dt else self.drive_off
        self.drive = d
        Y = float(self.Y)
        tcells = self.agents_by_type.get(TCell, ())
        nks = self.agents_by_type.get(NKCell, ())
        phi_z = sum(1.0 - t.exhaustion * (1.0 - d[_dv.PD1]) for t in tcells)
        sig_a = sum(c.activation for c in nks)
        thr = np.zeros((4, self.cls.size))
        self.q_act = abm._rates.py_func(p, ap, d, self.cls, dt, Y, phi_z, sig_a, thr)
        self.thresholds = [tuple(thr[:, k]) for k in range(self.cls.size)]
        self.window = p[_cm.P_Z] * Y / (p[_cm.K_Z] ** 2 + Y * Y)
        alpha = p[_cm.K_EX] * Y / (Y + p[_cm.K_EXH])
        le = alpha + p[_cm.DELTA_E]
        self.e_inf = alpha / le if le > 0 else 0.0
        self.e_decay = math.exp(-le * dt)
        I_ifn = d[_dv.IFN]
        self.nk_target = (
            (1 + p[_cm.KAPPA_N] * I_ifn) * (1 + d[_dv.EXERCISE]) / (1 + Y / p[_cm.K_NS])
        )
        rate = ap[abm.NK_ACT_RATE]
        self.nk_relax = 0.0 if rate == np.inf else math.exp(-rate * dt)
        dn = p[_cm.D_N] * (1 + Y / p[_cm.K_ND])
        self.q_nk_death = -math.expm1(-dn * dt)
        self.agents.shuffle_do("step")
        r_in = p[_cm.R_Z] * (1 + d[_dv.VACCINE])
        for _ in range(int(self.rng.poisson(r_in * -math.expm1(-p[_cm.A] * dt) / p[_cm.A]))):
            TCell(self, 0.0)
        c_n = p[_cm.S_N] * (1 + p[_cm.SIGMA_N] * I_ifn) * ap[abm.NK_VOLUME]
        for _ in range(int(self.rng.poisson(c_n * self.q_nk_death / dn))):
            NKCell(self, self.nk_target)
        self.time_days += dt
        self._count()
        if self.time_days >= self.horizon - 1e-9 * dt:
            self.running = False
        self.datacollector.collect(self)
