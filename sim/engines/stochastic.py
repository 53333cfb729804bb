r"""Stochastic engine: a hybrid exact / tau-leaping jump process on the ``cml_immune`` reactions.

An ODE cannot say whether the last leukemic stem cell is gone; this engine can. The leukemic
compartments X (quiescent) and Y (active) and the effector T cells Z are integer cell counts that
change by single-cell events; exhaustion E (a fraction) and NK cells N (cells/µL) are kept
deterministic. Its mean-field limit (large cell counts, see :func:`scale_cells`) is the ODE of
:mod:`sim.models.cml_immune`.

Reactions
---------
With the drive :math:`u` (TKI), :math:`I` (interferon), :math:`B` (PD-1 occupancy), :math:`v`
(vaccine) and :math:`x_{ex}` (exercise) of :mod:`sim.therapy.drive`,
:math:`F = 1 - E(1 - B)` and :math:`A_N = (1 + \kappa_N I)(1 + x_{ex})/(1 + Y/K_{NS})`:

====  ==============================  ===============================================  =========
 j    event                           propensity :math:`a_j`                           change
====  ==============================  ===============================================  =========
 0    activation X -> Y               :math:`p_{xy}(1 + \alpha_I I) X`                 X-1, Y+1
 1    return to quiescence Y -> X     :math:`p_{yx} Y`                                 X+1, Y-1
 2    division of Y                   :math:`p_y Y`                                    Y+1
 3    logistic death of Y             :math:`p_y Y^2 / K_y`                            Y-1
 4    TKI kill                        :math:`e_{TKI} u Y`                              Y-1
 5    T-cell kill                     :math:`m F Z Y`                                  Y-1
 6    NK kill                         :math:`m_N A_N N Y`                              Y-1
 7    interferon (direct)             :math:`k_{IY} I Y`                               Y-1
 8    T-cell influx                   :math:`r_z (1 + v)`                              Z+1
 9    T-cell death                    :math:`a Z`                                      Z-1
 10   T-cell recruitment              :math:`p_z F Y Z / (K_z^2 + Y^2)`                Z+1
====  ==============================  ===============================================  =========

Summing :math:`\nu_j a_j` gives exactly the X, Y, Z right-hand side of the ODE.

Time stepping (operator splitting)
----------------------------------
Time is cut into *intervals* that end at every output time, at the TKI stop, at the horizon and
at most ``dt_max`` (default 0.25 day) after their start. Within an interval the drive, E and N
are frozen, so the propensities depend on (X, Y, Z) only and the process is a time-homogeneous
Markov jump process, simulated by the hybrid method below. At the end of the interval E and N are
advanced by the exact solution of their (linear) equations with Y and Z replaced by their time
averages over the interval and F frozen at its start value:

.. math::

    E \leftarrow E_\infty + (E - E_\infty) e^{-(\alpha + \beta)\Delta},\quad
    \alpha = k_E \frac{\bar Y}{\bar Y + K_E},\quad
    \beta = \delta_E + \frac{r_z(1 + v)}{\bar Z} + \frac{p_z F \bar Y}{K_z^2 + \bar Y^2},\quad
    E_\infty = \frac{\alpha}{\alpha + \beta},

and likewise N relaxes towards :math:`s_N(1 + \sigma_N I)/(d_N(1 + \bar Y/K_{ND}))` at rate
:math:`d_N(1 + \bar Y/K_{ND})`. This first-order splitting is unconditionally stable; its error is
O(dt_max) on time scales of E and N (weeks), which the cross-check against the ODE bounds.

Therapy drive: piecewise constant. The drive vector ``drive_on`` applies before ``stop_time``
(TKI effect u in ``interval`` mode: 1 at the standard dose, see :func:`tki_effect`) and
``drive_off`` from then on; ``stop_time`` is a fixed stop (the ODE's ``PR_STOP_AT`` with
``STOP_FIXED``). Visit-driven protocols (criteria stops, restarts) are not modelled here.

Hybrid exact / tau-leaping (switching rule)
-------------------------------------------
At each step, with propensities :math:`a_j` and :math:`a_0 = \sum_j a_j`:

1. *Critical reactions* (Cao, Gillespie & Petzold 2005): a reaction that consumes a species with
   fewer than ``n_crit`` cells (default 10 = 10 × the largest stoichiometric coefficient, 1).
2. The leap size :math:`\tau'` of Cao, Gillespie & Petzold (2006), over the non-critical
   reactions: :math:`\tau' = \min_i \min\{\max(\epsilon x_i/g_i, 1)/|\mu_i|,
   \max(\epsilon x_i/g_i, 1)^2/\sigma_i^2\}` with :math:`\mu_i = \sum_j \nu_{ij} a_j`,
   :math:`\sigma_i^2 = \sum_j \nu_{ij}^2 a_j`, :math:`\epsilon` = ``eps`` (default 0.03) and the
   highest-order factors :math:`g_X = 1`, :math:`g_Y = 2 + 1/(Y - 1)` (the :math:`Y^2` death),
   :math:`g_Z = 2` (the Z·Y recruitment).
3. If :math:`\tau' < 10/a_0` (a leap would save fewer than about ten exact steps), take up to 100
   exact steps of Gillespie's direct method (Gillespie 1977): waiting time
   :math:`-\ln U / a_0`, reaction :math:`j` with probability :math:`a_j/a_0`. A waiting time that
   passes the interval end fires nothing (memorylessness: exact for the frozen propensities).
4. Otherwise leap: draw :math:`\tau'' \sim \mathrm{Exp}(a_0^{c})` for the critical reactions;
   :math:`\tau = \min(\tau', \text{interval end} - t)`; if :math:`\tau'' < \tau`, leap by
   :math:`\tau''` and fire exactly one critical reaction (chosen by :math:`a_j/a_0^c`), else by
   :math:`\tau` with none. Each non-critical reaction fires :math:`\mathrm{Poisson}(\tilde a_j
   \tau)` times (:func:`sim.engines.rng.poisson`, exact), with :math:`\tilde a_j` evaluated at
   the estimated midpoint :math:`x + \tfrac{\tau}{2}\sum_{j\,\text{non-crit}} \nu_j a_j(x)`
   (Gillespie 2001, without rounding the midpoint; ``midpoint=False`` gives the plain leap
   :math:`\tilde a_j = a_j(x)`). The plain leap's mean follows an Euler-like map with an O(tau)
   drift (1.3 % in Y after 6 months of TKI at cell scale 1e3); the midpoint removes it (< 0.3 %).
5. If any count would become negative, the leap is rejected, :math:`\tau'` halved and step 4
   repeated with fresh random numbers. Counts are therefore never negative.

Outputs
-------
Trajectories on an output grid (counts and E, N at the grid times), eradication (X = 0 and Y = 0,
which is absorbing: no reaction creates leukemic cells from none) and its time, relapse (Y/K_y
above ``relapse_level``, 1e-3 = 0.1 % BCR-ABL1 IS = loss of MMR, after the stop) and its time,
the number of times each reaction fired, and step statistics. Event times are exact in exact
steps and the end of the leap in tau-leaps.

Reproducibility: patient ``i`` uses stream ``i`` of :func:`sim.engines.rng.seed_states`; the
parallel loop (``prange``) assigns work to threads but never streams, so results do not depend on
the thread count.

Kernels are compiled with ``error_model="numpy"`` (as in :mod:`sim.engines.ode`): no division in
them can be by zero (each divisor is a positive parameter or checked first), and without it numba
guards every division with a branch that raises, which also keeps numba from removing the
reference-count updates of the array arguments of the helpers inlined around it.

References
----------
D. T. Gillespie. Exact stochastic simulation of coupled chemical reactions. J Phys Chem
1977;81:2340–2361.
D. T. Gillespie. Approximate accelerated stochastic simulation of chemically reacting systems.
J Chem Phys 2001;115:1716–1733.
Y. Cao, D. T. Gillespie, L. R. Petzold. Avoiding negative populations in explicit Poisson
tau-leaping. J Chem Phys 2005;123:054104.
Y. Cao, D. T. Gillespie, L. R. Petzold. Efficient step size selection for the tau-leaping
simulation method. J Chem Phys 2006;124:044109.
T. Hähnel et al. Cancer Res 2020;80:2394–2406 (the X, Y, Z model).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from sim.engines import rng as _rng
from sim.engines.parallel import threads_for
from sim.models import cml_immune as _cm
from sim.models.cml_immune import (
    ALPHA_I,
    D_N,
    DELTA_E,
    E_TKI,
    K_EX,
    K_EXH,
    K_IY,
    K_ND,
    K_NS,
    K_Y,
    K_Z,
    KAPPA_N,
    M_KILL,
    M_N,
    P_XY,
    P_Y,
    P_YX,
    P_Z,
    R_Z,
    S_N,
    SIGMA_N,
    X0_CAP,
    Y0,
    A,
)
from sim.therapy import drive as _dv

# --- reactions
R_ACT, R_DEACT, R_DIV, R_LOGDEATH, R_TKI, R_TKILL, R_NK, R_IFN = range(8)
R_ZIN, R_ZDEATH, R_ZREC = 8, 9, 10
N_REACT = 11
REACTIONS = (
    "activation", "deactivation", "division", "logistic_death", "tki_kill", "t_cell_kill",
    "nk_kill", "interferon_kill", "z_influx", "z_death", "z_recruitment",
)  # fmt: skip
#: Stoichiometry ``NU[j, i]`` of reaction j on species i (X, Y, Z).
NU = np.array(
    [[-1, 1, 0], [1, -1, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0],
     [0, -1, 0], [0, 0, 1], [0, 0, -1], [0, 0, 1]],
    dtype=np.int64,
)  # fmt: skip
#: Species a reaction consumes (-1: none); a reaction is critical when it is below ``n_crit``.
CONSUMES = np.array([0, 1, -1, 1, 1, 1, 1, 1, -1, 2, -1], dtype=np.int64)
N_SPECIES = 3

# --- control vector
C_DT_MAX, C_EPS, C_NCRIT, C_LEAP_FACTOR, C_EXACT_BATCH, C_RELAPSE, C_LEAP, C_MIDPOINT = range(8)
C_N = 8
DEFAULT_DT_MAX = 0.25
DEFAULT_EPS = 0.03
DEFAULT_NCRIT = 10.0
LEAP_FACTOR = 10.0
EXACT_BATCH = 100.0
RELAPSE_LEVEL = 1e-3  # Y/K_y = 0.1 % BCR-ABL1 IS (loss of MMR)

# --- per-patient summary entries (days; NaN if never)
SM_T_ERAD, SM_T_RELAPSE, SM_X_STOP, SM_Y_STOP, SM_Z_STOP, SM_MIN_Y, SM_T_Y0 = range(7)
SM_N = 7
# --- per-patient statistics
SS_EXACT, SS_LEAPS, SS_REJECTED, SS_INTERVALS, SS_NEGATIVE = range(5)
SS_N = 5


@njit(cache=True, inline="always", error_model="numpy")
def _propensities(s, E, N, p, drive, a):
    """Fill ``a`` (N_REACT) from counts ``s`` = (X, Y, Z), E, N and the drive; return the sum."""
    X = s[0]
    Y = s[1]
    Z = s[2]
    I_ifn = drive[_dv.IFN]
    F = 1.0 - E * (1.0 - drive[_dv.PD1])
    A_N = (1.0 + p[KAPPA_N] * I_ifn) * (1.0 + drive[_dv.EXERCISE]) / (1.0 + Y / p[K_NS])
    a[R_ACT] = p[P_XY] * (1.0 + p[ALPHA_I] * I_ifn) * X
    a[R_DEACT] = p[P_YX] * Y
    a[R_DIV] = p[P_Y] * Y
    a[R_LOGDEATH] = p[P_Y] * Y * Y / p[K_Y]
    a[R_TKI] = p[E_TKI] * drive[_dv.TKI] * Y
    a[R_TKILL] = p[M_KILL] * F * Z * Y
    a[R_NK] = p[M_N] * A_N * N * Y
    a[R_IFN] = p[K_IY] * I_ifn * Y
    a[R_ZIN] = p[R_Z] * (1.0 + drive[_dv.VACCINE])
    a[R_ZDEATH] = p[A] * Z
    a[R_ZREC] = p[P_Z] * F * Y * Z / (p[K_Z] * p[K_Z] + Y * Y)
    tot = 0.0
    for j in range(N_REACT):
        tot += a[j]
    return tot


@njit(cache=True, inline="always", error_model="numpy")
def _advance_en(E, N, ybar, zbar, dt, p, drive):
    """Exact exponential update of E and N over dt with frozen Y = ybar, Z = zbar, F (splitting)."""
    I_ifn = drive[_dv.IFN]
    F = 1.0 - E * (1.0 - drive[_dv.PD1])
    alpha = p[K_EX] * ybar / (ybar + p[K_EXH])
    r_z = p[R_Z] * (1.0 + drive[_dv.VACCINE])
    dil = r_z / zbar if zbar > 0.0 else 0.0
    beta = p[DELTA_E] + dil + p[P_Z] * F * ybar / (p[K_Z] * p[K_Z] + ybar * ybar)
    lam = alpha + beta
    if lam > 0.0:
        e_inf = alpha / lam
        E = e_inf + (E - e_inf) * math.exp(-lam * dt)
    c = p[S_N] * (1.0 + p[SIGMA_N] * I_ifn)
    d = p[D_N] * (1.0 + ybar / p[K_ND])
    if d > 0.0:
        n_inf = c / d
        N = n_inf + (N - n_inf) * math.exp(-d * dt)
    else:
        N = N + c * dt
    return E, N


@njit(cache=True, inline="always", error_model="numpy")
def _milestones(t, s, post_stop, relapse_y, summary):
    """Eradication (X = Y = 0), first Y = 0, lowest Y and relapse (after the stop) at time t."""
    if s[1] == 0.0 and np.isnan(summary[SM_T_Y0]):
        summary[SM_T_Y0] = t
    if s[1] < summary[SM_MIN_Y]:
        summary[SM_MIN_Y] = s[1]
    if s[0] == 0.0 and s[1] == 0.0 and np.isnan(summary[SM_T_ERAD]):
        summary[SM_T_ERAD] = t
    if post_stop and s[1] > relapse_y and np.isnan(summary[SM_T_RELAPSE]):
        summary[SM_T_RELAPSE] = t


@njit(cache=True, inline="always", error_model="numpy")
def _cgp_tau(s, a, crit, eps):
    """Cao–Gillespie–Petzold (2006) leap size over the non-critical reactions (inf if none)."""
    tau = np.inf
    for i in range(N_SPECIES):
        mu = 0.0
        sig2 = 0.0
        for j in range(N_REACT):
            if crit[j] or a[j] == 0.0:
                continue
            nu = NU[j, i]
            if nu != 0:
                mu += nu * a[j]
                sig2 += nu * nu * a[j]
        if sig2 == 0.0:
            continue
        x = s[i]
        if i == 0:
            g = 1.0
        elif i == 1:
            g = 2.0 + 1.0 / (x - 1.0) if x > 1.0 else 2.0
        else:
            g = 2.0
        b = max(eps * x / g, 1.0)
        if mu != 0.0:
            tau = min(tau, b / abs(mu))
        tau = min(tau, b * b / sig2)
    return tau


@njit(cache=True, error_model="numpy")
def _advance_segment(
    t, t_stop, E, N, s, p, drive, ctl, a, amid, crit, snew, kfire, state, counts, stats, summary,
    post_stop, relapse_y,
):  # fmt: skip
    """Advance the patient from t to ``t_stop`` with a constant drive; returns (t_stop, E, N).

    The segment is cut into intervals of at most ``dt_max``. Within an interval the jump process
    on (X, Y, Z) runs with E, N frozen (exact steps or leaps, below); then E and N are updated
    exactly over the interval with Y and Z frozen at their time averages (:func:`_advance_en`).

    One call per segment (between output times and the stop), not per interval: each call of a
    compiled function updates the reference counts of its 13 array arguments on entry and on
    exit (atomic instructions), a noticeable cost at one call per 0.25-day interval. The
    interval loop is written here for that reason; its arithmetic is that of one call per
    interval.
    """
    eps = ctl[C_EPS]
    n_crit = ctl[C_NCRIT]
    leap_ok = ctl[C_LEAP] > 0.0
    n_batch = int(ctl[C_EXACT_BATCH])
    midpoint = ctl[C_MIDPOINT] > 0.0
    dt_max = ctl[C_DT_MAX]
    while t < t_stop:
        t_end = min(t + dt_max, t_stop)
        t0 = t
        y_int = 0.0  # time integrals of Y and Z over the interval
        z_int = 0.0
        while t < t_end:
            a0 = _propensities(s, E, N, p, drive, a)
            if not a0 > 0.0:
                y_int += s[1] * (t_end - t)
                z_int += s[2] * (t_end - t)
                t = t_end
                break
            tau1 = np.inf
            if leap_ok:
                any_nc = False
                for j in range(N_REACT):
                    c = CONSUMES[j]
                    crit[j] = c >= 0 and a[j] > 0.0 and s[c] < n_crit
                    if not crit[j] and a[j] > 0.0:
                        any_nc = True
                if any_nc:
                    tau1 = _cgp_tau(s, a, crit, eps)
                else:
                    tau1 = 0.0
            if not leap_ok or tau1 < ctl[C_LEAP_FACTOR] / a0:
                # --- exact steps (Gillespie's direct method)
                for _ in range(n_batch):
                    u = _rng.uniform(state)
                    dt = -math.log(1.0 - u) / a0  # 1 - u in (0, 1]
                    if t + dt >= t_end:
                        y_int += s[1] * (t_end - t)
                        z_int += s[2] * (t_end - t)
                        t = t_end
                        break
                    y_int += s[1] * dt
                    z_int += s[2] * dt
                    t += dt
                    r = _rng.uniform(state) * a0
                    j = 0
                    acc = a[0]
                    while acc <= r and j < N_REACT - 1:
                        j += 1
                        acc += a[j]
                    while a[j] == 0.0 and j > 0:  # rounding at the top end: last positive channel
                        j -= 1
                    for i in range(N_SPECIES):
                        s[i] += NU[j, i]
                    counts[j] += 1
                    stats[SS_EXACT] += 1
                    _milestones(t, s, post_stop, relapse_y, summary)
                    a0 = _propensities(s, E, N, p, drive, a)
                    if not a0 > 0.0:
                        break
                continue
            # --- tau-leap (Cao, Gillespie & Petzold 2005, 2006)
            a0c = 0.0
            for j in range(N_REACT):
                if crit[j]:
                    a0c += a[j]
            while True:
                tau = min(tau1, t_end - t)
                if a0c > 0.0:
                    tau2 = -math.log(1.0 - _rng.uniform(state)) / a0c
                else:
                    tau2 = np.inf
                jc = -1
                if tau2 < tau:
                    tau = tau2
                    r = _rng.uniform(state) * a0c
                    acc = 0.0
                    for j in range(N_REACT):
                        if crit[j]:
                            jc = j
                            acc += a[j]
                            if acc > r:
                                break
                if midpoint:
                    # estimated midpoint (Gillespie 2001): propensities at s + (tau/2) mu
                    for i in range(N_SPECIES):
                        mu = 0.0
                        for j in range(N_REACT):
                            if not crit[j]:
                                mu += NU[j, i] * a[j]
                        snew[i] = max(s[i] + 0.5 * tau * mu, 0.0)
                    _propensities(snew, E, N, p, drive, amid)
                else:
                    for j in range(N_REACT):
                        amid[j] = a[j]
                for i in range(N_SPECIES):
                    snew[i] = s[i]
                for j in range(N_REACT):
                    if crit[j] or a[j] == 0.0:
                        kfire[j] = 0
                        continue
                    k = _rng.poisson_inline(state, amid[j] * tau)
                    if k < 0:
                        raise ValueError("poisson: the mean must be finite and >= 0")
                    kfire[j] = k
                    for i in range(N_SPECIES):
                        snew[i] += NU[j, i] * k
                if jc >= 0:
                    kfire[jc] = 1
                    for i in range(N_SPECIES):
                        snew[i] += NU[jc, i]
                neg = False
                for i in range(N_SPECIES):
                    if snew[i] < 0.0:
                        neg = True
                if not neg:
                    break
                stats[SS_REJECTED] += 1
                tau1 *= 0.5
            y_int += 0.5 * (s[1] + snew[1]) * tau
            z_int += 0.5 * (s[2] + snew[2]) * tau
            for i in range(N_SPECIES):
                s[i] = snew[i]
            for j in range(N_REACT):
                counts[j] += kfire[j]
            stats[SS_LEAPS] += 1
            t = t_end if tau == t_end - t else t + tau
            _milestones(t, s, post_stop, relapse_y, summary)
        dt = t - t0
        if dt > 0.0:
            E, N = _advance_en(E, N, y_int / dt, z_int / dt, dt, p, drive)
        stats[SS_INTERVALS] += 1
        for i in range(N_SPECIES):
            if s[i] < 0.0:  # cannot happen (leaps are rejected); guard for the tests
                stats[SS_NEGATIVE] += 1
                s[i] = 0.0
    return t, E, N


@njit(cache=True, error_model="numpy")
def simulate_one(
    y0, p, drive_on, drive_off, stop_time, horizon, ctl, t_out, state, y_out, summary, counts,
    stats,
):  # fmt: skip
    """One patient from t = 0 to ``horizon``.

    Parameters
    ----------
    y0 : float64 array (5,)
        Initial X, Y, Z (integer-valued counts), E, N.
    p : float64 array
        ``cml_immune`` parameter vector (internal units, per day).
    drive_on, drive_off : float64 arrays (N_DRIVE,)
        Drive before and after ``stop_time`` (days; ``inf`` = never stop).
    horizon : float
        End time (days).
    ctl : float64 array (C_N,)
        Control: ``dt_max``, ``eps``, ``n_crit``, leap factor, exact batch, relapse level
        (fraction of K_y) and 1/0 for leaping allowed.
    t_out : float64 array
        Increasing output times in [0, horizon]; ``y_out`` (n_out, 5) receives the state there.
    state : uint64[4]
        This patient's stream (advanced in place).
    summary, counts, stats : arrays
        ``SM_*`` (NaN-initialised), per-reaction counts (int64, zeroed) and ``SS_*`` (int64,
        zeroed), filled in place.
    """
    s = np.empty(N_SPECIES)
    snew = np.empty(N_SPECIES)
    a = np.empty(N_REACT)
    amid = np.empty(N_REACT)
    kfire = np.zeros(N_REACT, dtype=np.int64)
    crit = np.zeros(N_REACT, dtype=np.bool_)
    for i in range(N_SPECIES):
        s[i] = y0[i]
    E = y0[3]
    N = y0[4]
    relapse_y = ctl[C_RELAPSE] * p[K_Y]
    summary[SM_MIN_Y] = s[1]
    t = 0.0
    io = 0
    n_out = t_out.shape[0]
    post_stop = False
    _milestones(t, s, post_stop, relapse_y, summary)
    if stop_time <= 0.0:
        post_stop = True
        summary[SM_X_STOP] = s[0]
        summary[SM_Y_STOP] = s[1]
        summary[SM_Z_STOP] = s[2]
    while True:
        while io < n_out and t_out[io] <= t:
            if t_out[io] == t or io == 0:
                y_out[io, 0] = s[0]
                y_out[io, 1] = s[1]
                y_out[io, 2] = s[2]
                y_out[io, 3] = E
                y_out[io, 4] = N
            io += 1
        if t >= horizon:
            break
        t_stop = horizon
        if io < n_out and t_out[io] < t_stop:
            t_stop = t_out[io]
        if stop_time > t and stop_time < t_stop:
            t_stop = stop_time
        drive = drive_off if post_stop else drive_on
        t, E, N = _advance_segment(
            t, t_stop, E, N, s, p, drive, ctl, a, amid, crit, snew, kfire, state, counts, stats,
            summary, post_stop, relapse_y,
        )  # fmt: skip
        if not post_stop and t >= stop_time:
            post_stop = True
            summary[SM_X_STOP] = s[0]
            summary[SM_Y_STOP] = s[1]
            summary[SM_Z_STOP] = s[2]
            _milestones(t, s, post_stop, relapse_y, summary)


@njit(cache=True, parallel=True, error_model="numpy")
def simulate_cohort(
    y0s, ps, drive_on_, drive_off_, stop_time_, horizon_, ctl_, times, streams, ys, summaries,
    reaction_counts, step_stats,
):  # fmt: skip
    """:func:`simulate_one` for every row of ``y0s``/``ps`` in parallel (``prange``).

    Patient j uses only ``streams[j]`` and writes only row j of the outputs, so the results do not
    depend on the thread count. (Argument names differ from :func:`simulate_one`'s: numba's parfor
    lowering rejects a prange body whose call repeats the enclosing function's parameter names.)
    """
    for j in prange(y0s.shape[0]):
        simulate_one(
            y0s[j], ps[j], drive_on_, drive_off_, stop_time_, horizon_, ctl_, times, streams[j],
            ys[j], summaries[j], reaction_counts[j], step_stats[j],
        )  # fmt: skip


# ----------------------------------------------------------------------------- Python API


def scale_cells(params: np.ndarray, factor: float) -> np.ndarray:
    """Parameters with the leukemic cell scale multiplied by ``factor``.

    K_y, y0, x0_cap, K_z, p_z, K_E, K_NS and K_ND are multiplied by ``factor``; then X/factor and
    Y/factor obey exactly the same ODE (every term is homogeneous under this map), while the
    jump process has ``factor`` times more cells and relatively smaller fluctuations: its mean
    converges to the ODE as ``factor`` grows (the law of large numbers for density-dependent
    jump processes, Kurtz 1970).
    ``params`` is one vector or a matrix with one patient per row.
    """
    q = np.array(params, dtype=np.float64, copy=True)
    for k in (K_Y, Y0, X0_CAP, K_Z, P_Z, K_EXH, K_NS, K_ND):
        q[..., k] *= factor
    return q


def integer_state(y0: np.ndarray, rounding: str = "nearest") -> np.ndarray:
    """Initial state with X, Y, Z rounded to whole cells (E, N unchanged).

    ``rounding="nearest"`` rounds half up. Counts must be finite (an uncapped X0 with p_xy = 0 is
    infinite: set ``x0_cap``).
    """
    y = np.array(y0, dtype=np.float64, copy=True)
    if not np.all(np.isfinite(y[:N_SPECIES])) or np.any(y[:N_SPECIES] < 0):
        raise ValueError(f"initial X, Y, Z must be finite and >= 0, found {y[:N_SPECIES]}")
    if rounding != "nearest":
        raise ValueError(f"rounding must be 'nearest', found {rounding!r}")
    y[:N_SPECIES] = np.floor(y[:N_SPECIES] + 0.5)
    return y


def tki_effect(
    drug: str = "imatinib",
    dose: float | None = None,
    every: float | None = None,
    pk: str = "interval",
) -> float:
    """The TKI drive u of a constant regimen (what the ODE engine uses in the same mode).

    Parameters
    ----------
    drug : str
        A name in :data:`sim.therapy.drugs.DRUGS`.
    dose, every : float, optional
        Dose (mg) and dosing interval (days); default the drug's standard regimen.
    pk : {"interval", "kill"}
        ``interval``: mean E_max effect over a steady-state dosing interval relative to the
        standard regimen (:func:`sim.therapy.pk.relative_effect`); ``kill``: dose fraction.

    Returns
    -------
    float
        u, 1 at the standard regimen in either mode.
    """
    from sim.therapy import pk as _pk
    from sim.therapy.drugs import get_drug

    d = get_drug(drug)
    dose = d.standard_dose if dose is None else float(dose)
    every = d.standard_interval if every is None else float(every)
    if pk == "kill":
        return dose / d.standard_dose
    if pk == "interval":
        return float(_pk.relative_effect(dose, every, d.vector()))
    raise ValueError(f"pk must be 'interval' or 'kill' (constant drive), found {pk!r}")


def control_vector(
    dt_max: float = DEFAULT_DT_MAX,
    eps: float = DEFAULT_EPS,
    n_crit: float = DEFAULT_NCRIT,
    relapse_level: float = RELAPSE_LEVEL,
    leap: bool = True,
    midpoint: bool = True,
) -> np.ndarray:
    """The kernel's control vector (``C_*`` entries), validated."""
    if not dt_max > 0:
        raise ValueError(f"dt_max must be > 0 days, found {dt_max}")
    if not 0 < eps < 1:
        raise ValueError(f"eps must be in (0, 1), found {eps}")
    if not n_crit >= 1:
        raise ValueError(f"n_crit must be >= 1, found {n_crit}")
    ctl = np.zeros(C_N)
    ctl[C_DT_MAX] = dt_max
    ctl[C_EPS] = eps
    ctl[C_NCRIT] = n_crit
    ctl[C_LEAP_FACTOR] = LEAP_FACTOR
    ctl[C_EXACT_BATCH] = EXACT_BATCH
    ctl[C_RELAPSE] = relapse_level
    ctl[C_LEAP] = 1.0 if leap else 0.0
    ctl[C_MIDPOINT] = 1.0 if midpoint else 0.0
    return ctl


def simulate_stochastic(
    params: np.ndarray,
    y0: np.ndarray | None = None,
    stop_time: float = np.inf,
    horizon: float = 3652.5,
    seed: int = 0,
    n: int = 1,
    t_out: np.ndarray | None = None,
    *,
    u_tki: float = 1.0,
    drive_on: np.ndarray | None = None,
    drive_off: np.ndarray | None = None,
    dt_max: float = DEFAULT_DT_MAX,
    eps: float = DEFAULT_EPS,
    n_crit: float = DEFAULT_NCRIT,
    relapse_level: float = RELAPSE_LEVEL,
    leap: bool = True,
    midpoint: bool = True,
) -> dict[str, np.ndarray]:
    """Run ``n`` independent patients of the jump process (in parallel over patients).

    Parameters
    ----------
    params : numpy.ndarray
        ``cml_immune`` parameter vector (internal units), or an ``(n, n_param)`` matrix with one
        row per patient.
    y0 : numpy.ndarray, optional
        Initial state (X, Y, Z, E, N); default :func:`sim.models.cml_immune.initial_state`.
        X, Y, Z are rounded to whole cells (:func:`integer_state`). May be ``(n, 5)``.
    stop_time : float
        Fixed TKI stop (days); ``inf`` = TKI throughout.
    horizon : float
        End time (days), default 10 years.
    seed : int
        Master seed; patient i uses stream i of :func:`sim.engines.rng.seed_states`.
    n : int
        Number of patients.
    t_out : numpy.ndarray, optional
        Output times in [0, horizon] (default every 7 days and the horizon).
    u_tki : float
        TKI effect u while on TKI (1 = standard dose, see :func:`tki_effect`); ignored when
        ``drive_on`` is given.
    drive_on, drive_off : numpy.ndarray, optional
        Full drive vectors (``sim.therapy.drive`` slots) before and after the stop; default
        (u_tki, 0, 0, 0, 0) and zeros.
    dt_max, eps, n_crit, relapse_level, leap
        Splitting interval (days), CGP accuracy ε, critical-count threshold, relapse level
        (Y/K_y) and whether tau-leaping is allowed (``False``: exact SSA throughout).

    Returns
    -------
    dict
        ``t`` (n_t,), ``y`` (n, n_t, 5), ``eradicated`` (n,) bool, ``t_eradication`` (n,) (NaN if
        never), ``relapsed`` (n,) bool, ``t_relapse`` (n,), ``state_at_stop`` (n, 3), ``min_y``,
        ``t_y_zero`` (first time Y = 0), ``counts`` (n, N_REACT) reactions fired (names in
        ``REACTIONS``), ``stats`` (n, SS_N): exact steps, leaps, rejected leaps, intervals,
        negative-count guard hits (always 0).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, found {n}")
    if not horizon > 0:
        raise ValueError(f"horizon must be > 0 days, found {horizon}")
    params = np.asarray(params, dtype=np.float64)
    # always a writable copy: for n = 1 the broadcast view is contiguous but read-only, and a
    # read-only array is another type for numba (a second compile of the cohort kernel)
    ps = np.array(np.broadcast_to(params, (n, params.shape[-1])), dtype=np.float64, order="C")
    if y0 is None:
        y0s = np.array([integer_state(_cm.initial_state(row)) for row in ps])
    else:
        y0 = np.asarray(y0, dtype=np.float64)
        y0s = np.array([integer_state(row) for row in np.broadcast_to(y0, (n, 5))])
    if t_out is None:
        k = int(np.floor(horizon / 7.0 + 1e-9))
        t_out = np.unique(np.concatenate([np.arange(k + 1) * 7.0, [horizon]]))
    t_out = np.ascontiguousarray(t_out, dtype=np.float64)
    if t_out.size == 0 or t_out[0] < 0 or t_out[-1] > horizon or np.any(np.diff(t_out) <= 0):
        raise ValueError("t_out must be increasing times in [0, horizon]")
    if drive_on is None:
        drive_on = np.zeros(_dv.N_DRIVE)
        drive_on[_dv.TKI] = u_tki
    if drive_off is None:
        drive_off = np.zeros(_dv.N_DRIVE)
    drive_on = np.ascontiguousarray(drive_on, dtype=np.float64)
    drive_off = np.ascontiguousarray(drive_off, dtype=np.float64)
    ctl = control_vector(dt_max, eps, n_crit, relapse_level, leap, midpoint)
    streams = _rng.seed_states(seed, n)
    ys = np.full((n, t_out.size, 5), np.nan)
    summaries = np.full((n, SM_N), np.nan)
    counts = np.zeros((n, N_REACT), dtype=np.int64)
    stats = np.zeros((n, SS_N), dtype=np.int64)
    with threads_for(n):  # no thread spinning idle beside a lone patient
        simulate_cohort(
            y0s, ps, drive_on, drive_off, float(stop_time), float(horizon), ctl, t_out, streams,
            ys, summaries, counts, stats,
        )  # fmt: skip
    return {
        "t": t_out,
        "y": ys,
        "y0": y0s,
        "eradicated": ~np.isnan(summaries[:, SM_T_ERAD]),
        "t_eradication": summaries[:, SM_T_ERAD],
        "relapsed": ~np.isnan(summaries[:, SM_T_RELAPSE]),
        "t_relapse": summaries[:, SM_T_RELAPSE],
        "state_at_stop": summaries[:, SM_X_STOP : SM_Z_STOP + 1],
        "min_y": summaries[:, SM_MIN_Y],
        "t_y_zero": summaries[:, SM_T_Y0],
        "counts": counts,
        "stats": stats,
    }


def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    r"""Wilson score interval for a binomial proportion (default 95 %).

    .. math:: \frac{\hat p + z^2/2n \pm z\sqrt{\hat p(1-\hat p)/n + z^2/4n^2}}{1 + z^2/n}

    E. B. Wilson, J Am Stat Assoc 1927;22:209–212.
    """
    if n <= 0:
        raise ValueError(f"n must be > 0, found {n}")
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, n], found {k}")
    if k == 0 or k == n:  # closed forms (no rounding at the bound that is exact)
        b = 1.0 / (1.0 + z * z / n)
        return (0.0, 1.0 - b) if k == 0 else (b, 1.0)
    ph = k / n
    den = 1.0 + z * z / n
    centre = (ph + z * z / (2 * n)) / den
    half = z * math.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def probability_of_cure(
    params: np.ndarray,
    stop_time: float,
    horizon: float,
    seed: int = 0,
    n: int = 1000,
    y0: np.ndarray | None = None,
    **kwargs,
) -> dict[str, float | int | tuple[float, float]]:
    """Cohort probability of cure (eradication by ``horizon``) and of relapse after the stop.

    Cure means X = Y = 0 at some time before ``horizon`` (absorbing); relapse means Y/K_y above
    ``relapse_level`` (default 0.1 %, loss of MMR) at or after ``stop_time``. Patients with
    neither are ``persistent`` (leukemic cells left but held below MMR, e.g. by immune control).

    Runs :func:`simulate_stochastic` with the output grid (0, horizon) only and returns ``n``,
    ``cured``, ``p_cure``, ``ci_cure`` (Wilson 95 %, :func:`wilson_interval`), ``relapsed``,
    ``p_relapse``, ``ci_relapse``, ``persistent`` and ``median_t_eradication`` (days, among the
    cured; NaN if none). Keyword arguments go to :func:`simulate_stochastic`.
    """
    res = simulate_stochastic(
        params, y0, stop_time, horizon, seed, n, np.array([0.0, float(horizon)]), **kwargs
    )
    cured = int(res["eradicated"].sum())
    relapsed = int(res["relapsed"].sum())
    te = res["t_eradication"][res["eradicated"]]
    return {
        "n": n,
        "cured": cured,
        "p_cure": cured / n,
        "ci_cure": wilson_interval(cured, n),
        "relapsed": relapsed,
        "p_relapse": relapsed / n,
        "ci_relapse": wilson_interval(relapsed, n),
        "persistent": int((~res["eradicated"] & ~res["relapsed"]).sum()),
        "median_t_eradication": float(np.median(te)) if te.size else float("nan"),
    }


# ----------------------------------------------------------------------- plain-Python reference


def propensities_reference(s, E, N, g: dict, drive) -> list[float]:
    """The 11 propensities, written out plainly (see the module table).

    ``g`` maps parameter names to values (``dict(zip(PARAMS.names, p))``).
    """
    X, Y, Z = (float(v) for v in s)
    u, I_ifn, B, vac, ex = (float(v) for v in drive)
    F = 1 - E * (1 - B)
    A_N = (1 + g["kappa_N"] * I_ifn) * (1 + ex) / (1 + Y / g["K_NS"])
    return [
        g["p_xy"] * (1 + g["alpha_I"] * I_ifn) * X,
        g["p_yx"] * Y,
        g["p_y"] * Y,
        g["p_y"] * Y * Y / g["K_y"],
        g["e_tki"] * u * Y,
        g["m"] * F * Z * Y,
        g["m_N"] * A_N * N * Y,
        g["k_IY"] * I_ifn * Y,
        g["r_z"] * (1 + vac),
        g["a"] * Z,
        g["p_z"] * F * Y * Z / (g["K_z"] ** 2 + Y * Y),
    ]


def simulate_reference(
    params: np.ndarray,
    y0: np.ndarray,
    stop_time: float,
    horizon: float,
    t_out: np.ndarray,
    rng: np.random.Generator,
    drive_on: np.ndarray,
    drive_off: np.ndarray | None = None,
    dt_max: float = DEFAULT_DT_MAX,
    relapse_level: float = RELAPSE_LEVEL,
) -> dict:
    """Exact SSA (Gillespie 1977, direct method) in plain Python with the same splitting of E, N.

    Slow (one Python loop iteration per event): for tests on small cell counts. Uses NumPy's
    ``Generator`` (not the kernel's streams), so it agrees with the kernel in distribution only.
    Returns ``y`` (n_t, 5), ``t_eradication``, ``t_relapse`` (NaN if never) and ``counts``.
    """
    p = np.asarray(params, dtype=float)
    g = dict(zip(_cm.PARAMS.names, (float(v) for v in p)))
    drive_off = np.zeros(_dv.N_DRIVE) if drive_off is None else drive_off
    s = [float(v) for v in integer_state(y0)[:3]]
    E, N = float(y0[3]), float(y0[4])
    t_out = np.asarray(t_out, dtype=float)
    y_out = np.full((t_out.size, 5), np.nan)
    counts = [0] * N_REACT
    nu = NU.tolist()
    relapse_y = relapse_level * p[K_Y]
    t_erad = math.nan
    t_rel = math.nan
    t = 0.0
    io = 0
    post = stop_time <= 0

    def check(t):
        nonlocal t_erad, t_rel
        if s[0] == 0 and s[1] == 0 and math.isnan(t_erad):
            t_erad = t
        if post and s[1] > relapse_y and math.isnan(t_rel):
            t_rel = t

    check(0.0)
    while True:
        while io < t_out.size and t_out[io] <= t:
            y_out[io] = [s[0], s[1], s[2], E, N]
            io += 1
        if t >= horizon:
            break
        t_end = min(t + dt_max, horizon)
        if io < t_out.size:
            t_end = min(t_end, t_out[io])
        if t < stop_time < t_end:
            t_end = stop_time
        drive = drive_off if post else drive_on
        iy = iz = 0.0
        t0 = t
        while True:
            a = propensities_reference(s, E, N, g, drive)
            a0 = sum(a)
            dt = -math.log(1.0 - rng.random()) / a0 if a0 > 0 else math.inf
            if t + dt >= t_end:
                iy += s[1] * (t_end - t)
                iz += s[2] * (t_end - t)
                t = t_end
                break
            iy += s[1] * dt
            iz += s[2] * dt
            t += dt
            r = rng.random() * a0
            j = 0
            acc = a[0]
            while acc <= r and j < N_REACT - 1:
                j += 1
                acc += a[j]
            for i in range(3):
                s[i] += nu[j][i]
            counts[j] += 1
            check(t)
        E, N = _advance_en.py_func(E, N, iy / (t - t0), iz / (t - t0), t - t0, p, drive)
        if not post and t >= stop_time:
            post = True
            check(t)
    return {"y": y_out, "t_eradication": t_erad, "t_relapse": t_rel, "counts": np.array(counts)}
