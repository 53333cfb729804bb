"""ODE engine: adaptive Dormand–Prince 5(4) with dense output, driven by the clinical protocol.

One patient's run is a sequence of segments between discontinuities (monitoring visits, dose
changes, TKI stop and restart, and every dose in ``daily`` PK mode). Within a segment the drive is
smooth and the DP5 integrator (``sim.engines.dp5``) takes adaptive steps; at each boundary it
restarts (fresh right-hand-side evaluation). Visits take a qPCR measurement (``sim.readout``) and
the protocol decides, on measured values, to schedule a stop, stop, declare relapse, restart or
change the dose: all inside one jitted function, so cohorts and sweeps never return to Python
between visits.

Model binding. numba cannot reuse its on-disk cache for a function that receives another jitted
function as an argument, so the model's ``rhs`` and ``readout`` are module globals here. This file
is the kernel for ``cml_immune``; :mod:`sim.engines.binding` writes a copy for any other model by
rewriting the one import line marked ``model-binding``.

Reference counts. numba updates an array's reference count (an atomic add, then a subtract) for
every array argument of an inlined helper unless it can prove the pair redundant, and it cannot
when the helper's body calls a function that is not inlined, may raise, returns early or sits
inside one branch; in a step loop those updates cost a large share of the time. So the kernels
are compiled with ``error_model="numpy"`` (a division by zero gives inf or NaN as in NumPy, and a
non-finite state ends the run as a solver failure, instead of raising inside numba), and the
helpers inlined into the step loops call nothing and have one exit: the drive update
(:func:`_drive`, not inlined) is written in the integrators' own bodies, and milestone crossings
are located by a called function only in the steps that have one.

Array layouts (column indices are module constants, frozen into the kernels):

- therapy schedule ``sched[k, :]``: ``SCH_START, SCH_END`` (days; ``inf`` = open),
  ``SCH_DOSE`` (mg), ``SCH_TAU`` (dosing interval, days), ``SCH_MODE``
  (``MODE_KILL`` constant kill rate linear in dose as Hähnel fits it, ``MODE_INTERVAL``
  E_max effect averaged over a steady-state interval,
  ``MODE_DAILY`` every dose resolved), then the drug vector (``sim.therapy.drugs``)
  from ``SCH_DRUG``.
- protocol ``proto``: the ``PR_*`` constants.
- results: ``summary`` (``S_*``), ``stats`` (``ST_*``), ``visits[i, :]`` (``V_*``),
  ``events[i, :]`` (time, ``EV_*`` kind, value).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from sim import readout as _qpcr
from sim.engines import dp5 as _m
from sim.engines import rng as _rng
from sim.engines import rodas as _ro
from sim.models.cml_immune import N_STATE, readout, rhs  # model-binding
from sim.therapy import drive as _dv
from sim.therapy import drugs as _dr
from sim.therapy import interventions as _iv
from sim.therapy import pk as _pk

DAYS_PER_MONTH = 365.25 / 12.0

# --- therapy schedule columns
SCH_START, SCH_END, SCH_DOSE, SCH_TAU, SCH_MODE = 0, 1, 2, 3, 4
SCH_ADHERENCE = 5  # fraction of doses taken (1 = all)
# intermittent dosing: on for SCH_ON days, off for SCH_OFF days (0, 0: continuous)
SCH_ON, SCH_OFF = 6, 7
SCH_SWITCH = 8  # 1: a switch target, inactive until the protocol's switch rule fires
# interval-PK effect precomputed outside the kernel (a quadrature costs more than a step): u at
# the full dose, and u at the lead-in multiplier SCH_LM; NaN = not prepared, computed in the kernel
SCH_U1, SCH_UL, SCH_LM = 9, 10, 11
SCH_DRUG = 12
SCH_N = SCH_DRUG + _dr.N_DRUG
MODE_KILL, MODE_INTERVAL, MODE_DAILY = 0, 1, 2

# --- protocol entries
PR_HORIZON = 0
PR_STOP_KIND = 1  # 0 never, 1 fixed time, 2 criteria at visits
PR_STOP_AT = 2
PR_STOP_AFTER = 3  # minimum time on TKI (days)
PR_STOP_DEPTH = 4  # readout DEPTH_* code to be sustained
PR_STOP_FOR = 5  # sustained for (days)
PR_LEAD_IN = 6  # days at reduced dose before the stop
PR_LEAD_DOSE = 7  # dose fraction during the lead-in
PR_RELAPSE_RULE = 8  # 1 single loss of MMR, 2 two consecutive
PR_RESTART = 9  # 1 restart TKI on relapse, 0 never
PR_MAX_STOPS = 10
PR_DECIDE_TRUE = 11  # 1 decisions on the true BCR-ABL1, 0 on measured qPCR
PR_MONITOR_EVERY = 12  # 0 = ELN 2020 schedule, > 0 fixed spacing (days)
PR_SWITCH_AT = 13  # first visit at or after this time checks the switch rule (inf = never)
PR_SWITCH_DEPTH = 14  # readout DEPTH_* code required by then, else switch to the SCH_SWITCH segment
PR_N = 15
STOP_NEVER, STOP_FIXED, STOP_CRITERIA = 0, 1, 2

# --- summary entries (times in days since diagnosis, NaN if never)
S_T_MMR, S_T_MR4, S_T_MR45 = 0, 1, 2
S_T_MMR_MEAS, S_T_MR4_MEAS, S_T_MR45_MEAS = 3, 4, 5
S_STOP_TIME, S_RELAPSE_TIME, S_RESTART_TIME, S_N_STOPS = 6, 7, 8, 9
S_BCR_AT_STOP, S_MAX_AFTER_STOP, S_T_LOSS_TRUE = 10, 11, 12
S_TKI_DAYS, S_TKI_EXPOSURE, S_LEAD_IN_START, S_LEAD_IN_FAIL = 13, 14, 15, 16
S_STATE_AT_STOP = 17  # N_STATE entries from here
S_N = S_STATE_AT_STOP + N_STATE

# --- solver statistics
ST_STEPS, ST_REJECTED, ST_RHS, ST_FAILURES, ST_RESTARTS, ST_VISITS, ST_EVENTS = range(7)
# ST_STIFF: accepted steps taken by the Rosenbrock method (after stiffness was detected);
# ST_STIFF_AT: the time (days, rounded down) it took over, -1 when the trajectory never was stiff;
# ST_STIFF_CTR, ST_NONSTIFF_CTR: Hairer's stiffness-test counters (kept across segments)
ST_STIFF, ST_STIFF_AT, ST_STIFF_CTR, ST_NONSTIFF_CTR = 7, 8, 9, 10
ST_N = 11

# --- visit record columns
V_TIME, V_TRUE, V_MEAS, V_DET, V_ABL1, V_LOD, V_DEPTH, V_ON_TKI, V_ACTION = range(9)
V_N = 9
ACT_NONE, ACT_STOP_SCHEDULED, ACT_STOP, ACT_RELAPSE, ACT_RESTART, ACT_DOSE, ACT_SWITCH = range(7)

# --- interventions: iv[k, :] (what and when) and iv_out[k, :] (what happened)
IV_ANCHOR, IV_OFFSET, IV_DURATION, IV_EVERY, IV_COUNT, IV_DOSE, IV_MODE, IV_PRODUCT = range(8)
IVM_DOSES, IVM_INTERVAL = 0, 1  # each dose resolved | the course's interval-mean effect
IV_N = IV_PRODUCT + _iv.N_PRODUCT
ANCHOR_DIAGNOSIS, ANCHOR_MMR, ANCHOR_MR4, ANCHOR_STOP_CRITERIA = 0, 1, 2, 3
ANCHOR_TKI_STOP, ANCHOR_FIRST_RISE, ANCHOR_RELAPSE = 4, 5, 6
IVO_START, IVO_DOSES, IVO_LAST_DOSE = 0, 1, 2  # start is NaN when the anchor never happened
IVO_N = 3
IVS_START, IVS_NEXT, IVS_END, IVS_GIVEN = 0, 1, 2, 3

# --- therapy event kinds (for therapy bars)
EV_TKI_LEVEL = 1  # value = effective dose fraction from this time on (0 = off)

# --- drive kinetics state (what the drive needs between segment boundaries)
# row 0 is the TKI; row 1 + k is intervention k (its PK state and product vector)
TK_MODE, TK_U, TK_AGUT, TK_CONC, TK_TLAST, TK_KA, TK_KE, TK_EC50, TK_HILL, TK_GREF = range(10)
TKM_CONST, TKM_PK = 0, 1
# IVK_ACTIVE: 0 nothing given yet (or an interval-mode course over), IVK_PK doses resolved,
# IVK_CONST an interval-mode course running with the constant effect IVK_EFFECT
IVK_ACTIVE, IVK_AGUT, IVK_CONC, IVK_TLAST, IVK_EFFECT, IVK_PROD = 0, 1, 2, 3, 4, 5
IVK_PK, IVK_CONST = 1.0, 2.0
TK_W = max(10, IVK_PROD + _iv.N_PRODUCT)

# --- integration status
OK, FAILED, STIFF = 0, 1, 2
MAX_STEPS = 5_000_000


@njit(cache=True, error_model="numpy")
def _drive(t, tk, drive):
    """Fill the drive vector at time t from the drive kinetics state (closed-form PK).

    Called, not inlined: inlined into every stage of both integrators it would lengthen the
    compilation of ``simulate_one`` by half, and a constant drive never calls it.

    Interventions on the interferon and PD-1 slots combine as 1 - prod(1 - E_k) (they stay in
    [0, 1]); vaccine and exercise boosts add up.
    """
    for i in range(drive.shape[0]):
        drive[i] = 0.0
    if tk[0, TK_MODE] == TKM_CONST:
        drive[_dv.TKI] = tk[0, TK_U]
    else:
        _a, conc = _pk.advance(
            tk[0, TK_AGUT], tk[0, TK_CONC], t - tk[0, TK_TLAST], tk[0, TK_KA], tk[0, TK_KE]
        )
        drive[_dv.TKI] = _pk.emax(conc, tk[0, TK_EC50], tk[0, TK_HILL]) / tk[0, TK_GREF]
    for r in range(1, tk.shape[0]):
        if tk[r, IVK_ACTIVE] > 0.0:
            prod = tk[r, IVK_PROD : IVK_PROD + _iv.N_PRODUCT]
            if tk[r, IVK_ACTIVE] == IVK_CONST:
                e = tk[r, IVK_EFFECT]
            else:
                _a, conc = _iv.advance(tk[r, IVK_AGUT], tk[r, IVK_CONC], t - tk[r, IVK_TLAST], prod)
                e = _iv.effect(conc, prod)
            slot = int(prod[_iv.P_KIND])  # kind codes equal drive slots
            if slot == _dv.IFN or slot == _dv.PD1:
                drive[slot] = 1.0 - (1.0 - drive[slot]) * (1.0 - e)
            else:
                drive[slot] += e


@njit(cache=True, error_model="numpy", inline="always")
def _eval(t, y, p, tk, drive, out, stats):
    _drive(t, tk, drive)
    rhs(t, y, p, drive, out)
    stats[ST_RHS] += 1


@njit(cache=True, error_model="numpy")
def _drive_is_constant(tk):
    """True when the drive cannot change within a segment (constant TKI effect, no
    intervention with resolved doses active)."""
    if tk[0, TK_MODE] != TKM_CONST:
        return False
    for r in range(1, tk.shape[0]):
        if tk[r, IVK_ACTIVE] == IVK_PK:
            return False
    return True


@njit(cache=True, error_model="numpy")
def initial_step(t, y, f, p, tk, drive, rtol, atol, tmp, ftmp, stats):
    """Starting step size (Hairer, Nørsett & Wanner I, section II.4; as SciPy's
    ``select_initial_step``)."""
    n = y.shape[0]
    d0 = 0.0
    d1 = 0.0
    for i in range(n):
        sc = atol[i] + abs(y[i]) * rtol
        d0 += (y[i] / sc) ** 2
        d1 += (f[i] / sc) ** 2
    d0 = np.sqrt(d0 / n)
    d1 = np.sqrt(d1 / n)
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    for i in range(n):
        tmp[i] = y[i] + h0 * f[i]
    _eval(t + h0, tmp, p, tk, drive, ftmp, stats)
    d2 = 0.0
    for i in range(n):
        sc = atol[i] + abs(y[i]) * rtol
        d2 += ((ftmp[i] - f[i]) / sc) ** 2
    d2 = np.sqrt(d2 / n) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / _m.ORDER)
    return min(100.0 * h0, h1)


@njit(cache=True, error_model="numpy")
def _bisect_crossing(thr, h, t_old, y_old, K, p, tmp, lo, hi):
    """Time in (t_old + lo h, t_old + hi h] where the dense readout crosses thr (bisection)."""
    _m.dense(lo, h, y_old, K, tmp, N_STATE)
    below_lo = readout(tmp, p) <= thr
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        _m.dense(mid, h, y_old, K, tmp, N_STATE)
        if (readout(tmp, p) <= thr) == below_lo:
            lo = mid
        else:
            hi = mid
    return t_old + hi * h


#: Milestone crossings found in a step by :func:`_track_step` (bits of its first result).
CROSS_MMR, CROSS_MR4, CROSS_MR45, CROSS_LOSS = 1, 2, 4, 8


@njit(cache=True, error_model="numpy", inline="always")
def _track_step(t_old, h, y_old, y_new, K, p, summary, post_stop, tmp):
    """True-state milestones from one accepted step, judged on the dense output.

    Updates the maximum after the stop and returns ``(crossings, lo, hi)``: the ``CROSS_*`` bits
    of the milestones first crossed in this step, and the fraction of the step ``(lo, hi]`` that
    holds the first rise above MMR. The caller locates the crossings with
    :func:`_resolve_crossings` (rarely: a few steps per run).

    This helper is inlined into the step loops, so it calls nothing and has one exit and no
    branch around its whole body: numba then drops the reference-count updates of its array
    arguments, which otherwise cost twelve atomic updates per step (see the module docstring).
    """
    crossings = 0
    lo = 0.0
    hi = 1.0
    searching = np.isnan(summary[S_T_MR45])  # MR4.5 is the last of the three to be reached
    r_old = readout(y_old, p)
    r_new = readout(y_new, p)
    # first downward crossings of MMR, MR4, MR4.5 (true values)
    if searching and r_new <= _qpcr.MMR:
        if np.isnan(summary[S_T_MMR]) and r_old > _qpcr.MMR:
            crossings |= CROSS_MMR
        if np.isnan(summary[S_T_MR4]) and r_old > _qpcr.MR4 and r_new <= _qpcr.MR4:
            crossings |= CROSS_MR4
        if r_old > _qpcr.MR45 and r_new <= _qpcr.MR45:
            crossings |= CROSS_MR45
    if post_stop:
        if np.isnan(summary[S_MAX_AFTER_STOP]) or r_old > summary[S_MAX_AFTER_STOP]:
            summary[S_MAX_AFTER_STOP] = r_old
        if r_new > summary[S_MAX_AFTER_STOP]:
            summary[S_MAX_AFTER_STOP] = r_new
        # far below MMR the step ends suffice (interior peaks matter only near it); near MMR:
        # the maximum from four points per step (dense output), and the first rise above MMR
        if max(r_old, r_new) >= _qpcr.MMR / 3.0:
            prev = r_old
            prev_th = 0.0
            for q in range(1, 5):
                th = 0.25 * q
                _m.dense(th, h, y_old, K, tmp, N_STATE)
                r = readout(tmp, p)
                if r > summary[S_MAX_AFTER_STOP] or np.isnan(summary[S_MAX_AFTER_STOP]):
                    summary[S_MAX_AFTER_STOP] = r
                if (
                    crossings & CROSS_LOSS == 0
                    and np.isnan(summary[S_T_LOSS_TRUE])
                    and prev <= _qpcr.MMR
                    and r > _qpcr.MMR
                ):
                    crossings |= CROSS_LOSS
                    lo = prev_th
                    hi = th
                prev = r
                prev_th = th
    return crossings, lo, hi


@njit(cache=True, error_model="numpy")
def _resolve_crossings(crossings, lo, hi, t_old, h, y_old, K, p, summary, tmp):
    """The times of the crossings :func:`_track_step` found in a step (bisection on the dense
    output)."""
    if crossings & CROSS_MMR:
        summary[S_T_MMR] = _bisect_crossing(_qpcr.MMR, h, t_old, y_old, K, p, tmp, 0.0, 1.0)
    if crossings & CROSS_MR4:
        summary[S_T_MR4] = _bisect_crossing(_qpcr.MR4, h, t_old, y_old, K, p, tmp, 0.0, 1.0)
    if crossings & CROSS_MR45:
        summary[S_T_MR45] = _bisect_crossing(_qpcr.MR45, h, t_old, y_old, K, p, tmp, 0.0, 1.0)
    if crossings & CROSS_LOSS:
        summary[S_T_LOSS_TRUE] = _bisect_crossing(_qpcr.MMR, h, t_old, y_old, K, p, tmp, lo, hi)


@njit(cache=True, error_model="numpy", inline="always")
def _outputs_at_start(t0, y, t_out, y_out, io):
    """Skip the output rows before a segment start; the row exactly at ``t0`` gets ``y``, and
    its index is returned (-1 if none) so that the caller writes its drive row."""
    n_out = t_out.shape[0]
    at = -1
    while io[0] < n_out and t_out[io[0]] <= t0:
        if t_out[io[0]] == t0:
            at = io[0]
            for i in range(N_STATE):
                y_out[at, i] = y[i]
        io[0] += 1
    return at


@njit(cache=True, error_model="numpy", inline="always")
def _outputs_in_step(t, h, t_new, y, K, t_out, y_out, io, tmp):
    """State rows in (t, t_new] from the accepted step's dense output (non-negative); the
    caller writes their drive rows (rows ``i0 .. io[0] - 1`` for ``i0 = io[0]`` on entry)."""
    n_out = t_out.shape[0]
    while io[0] < n_out and t_out[io[0]] <= t_new:
        _m.dense((t_out[io[0]] - t) / h, h, y, K, tmp, N_STATE)
        for i in range(N_STATE):
            y_out[io[0], i] = max(tmp[i], 0.0)
        io[0] += 1


@njit(cache=True, error_model="numpy", fastmath={"nsz", "arcp", "contract", "reassoc"})
def integrate(
    t0, t1, y, f, p, tk, drive, rtol, atol, h, K, ynew, err, tmp,
    t_out, y_out, d_out, io, summary, post_stop, stats, t_soft, y_prev, K_prev,
):  # fmt: skip
    """Integrate from t0 to t1 (one smooth segment) with DP5; y and f are updated in place.

    ``f`` must hold rhs(t0, y) on entry. Output rows ``t_out[io[0]:]`` in (t0, t1] are filled
    from the dense output (``t_out[io[0]] == t0`` is filled from y). ``t_soft`` (a monitoring
    visit) does not cut a step: the integration returns after the accepted step that crosses it,
    leaving that step's start ``y_prev`` and stages ``K_prev`` so the caller can read the state
    at the visit from the dense output (and roll back to it if the visit changes the therapy).
    Also returns the time reached and that step's start and size. Returns the last accepted step
    size (a good first guess for the next segment) and a status: ``OK``, ``FAILED``, or ``STIFF``
    after the accepted step on which Hairer's test declared the trajectory stiff (the caller
    continues with :func:`integrate_stiff`).
    """
    n = N_STATE  # a compile-time constant: the stage loops unroll
    t = t0
    at = _outputs_at_start(t0, y, t_out, y_out, io)
    if at >= 0:
        _drive(t0, tk, drive)
        for i in range(_dv.N_DRIVE):
            d_out[at, i] = drive[i]
    h_first = -1.0
    constant = _drive_is_constant(tk)
    if constant:
        _drive(t0, tk, drive)
    n_rhs = 0
    if h <= 0.0:
        h = initial_step(t, y, f, p, tk, drive, rtol, atol, tmp, K[1], stats)
    for i in range(n):
        K[0, i] = f[i]
    while t < t1:
        if stats[ST_STEPS] >= MAX_STEPS:
            stats[ST_RHS] += n_rhs
            return h, h_first, FAILED, t, t, 0.0
        span = t1 - t
        last = False
        h_try = h
        if h >= span * (1.0 - 1e-12):
            h = span
            last = True
        rejected_once = False
        while True:
            hmin = 1e-12 * max(1.0, abs(t))
            if not h >= hmin:  # also catches a NaN step size
                stats[ST_RHS] += n_rhs
                return h, h_first, FAILED, t, t, 0.0
            for i in range(n):
                tmp[i] = y[i] + h * _m.A21 * K[0, i]
            if not constant:
                _drive(t + _m.C2 * h, tk, drive)
            rhs(t + _m.C2 * h, tmp, p, drive, K[1])
            for i in range(n):
                tmp[i] = y[i] + h * (_m.A31 * K[0, i] + _m.A32 * K[1, i])
            if not constant:
                _drive(t + _m.C3 * h, tk, drive)
            rhs(t + _m.C3 * h, tmp, p, drive, K[2])
            for i in range(n):
                tmp[i] = y[i] + h * (_m.A41 * K[0, i] + _m.A42 * K[1, i] + _m.A43 * K[2, i])
            if not constant:
                _drive(t + _m.C4 * h, tk, drive)
            rhs(t + _m.C4 * h, tmp, p, drive, K[3])
            for i in range(n):
                tmp[i] = y[i] + h * (
                    _m.A51 * K[0, i] + _m.A52 * K[1, i] + _m.A53 * K[2, i] + _m.A54 * K[3, i]
                )
            if not constant:
                _drive(t + _m.C5 * h, tk, drive)
            rhs(t + _m.C5 * h, tmp, p, drive, K[4])
            for i in range(n):
                tmp[i] = y[i] + h * (
                    _m.A61 * K[0, i]
                    + _m.A62 * K[1, i]
                    + _m.A63 * K[2, i]
                    + _m.A64 * K[3, i]
                    + _m.A65 * K[4, i]
                )
            t_new = t1 if last else t + h
            if not constant:
                _drive(t_new, tk, drive)
            rhs(t_new, tmp, p, drive, K[5])
            for i in range(n):
                ynew[i] = y[i] + h * (
                    _m.B1 * K[0, i]
                    + _m.B3 * K[2, i]
                    + _m.B4 * K[3, i]
                    + _m.B5 * K[4, i]
                    + _m.B6 * K[5, i]
                )
            if not constant:
                _drive(t_new, tk, drive)
            rhs(t_new, ynew, p, drive, K[6])
            n_rhs += 6
            for i in range(n):
                err[i] = h * (
                    _m.E1 * K[0, i]
                    + _m.E3 * K[2, i]
                    + _m.E4 * K[3, i]
                    + _m.E5 * K[4, i]
                    + _m.E6 * K[5, i]
                    + _m.E7 * K[6, i]
                )
            en = _m.error_norm_keep_weights(err, y, ynew, rtol, atol, N_STATE)
            if not np.isfinite(en):
                en = 1e10
            if en <= 1.0:
                break
            stats[ST_REJECTED] += 1
            h *= max(_m.MIN_FACTOR, _m.SAFETY * en**_m.ERROR_EXPONENT)
            last = False
            rejected_once = True
        stats[ST_STEPS] += 1
        if h_first <= 0.0:
            h_first = h
        # Hairer's stiffness test (DOPRI5): h |lambda| ~ h |k7 - k6| / |y1 - y(stage 6)|, in the
        # error norm's weights (left in err) so that the large pools do not hide a stiff small
        # one; squared, so no square root and no division
        num = 0.0
        den = 0.0
        for i in range(n):
            num += ((K[6, i] - K[5, i]) * err[i]) ** 2
            den += ((ynew[i] - tmp[i]) * err[i]) ** 2
        became_stiff = False
        if den > 0.0 and h * h * num > _ro.STIFF_HLAMBDA * _ro.STIFF_HLAMBDA * den:
            stats[ST_NONSTIFF_CTR] = 0
            stats[ST_STIFF_CTR] += 1
            became_stiff = (
                stats[ST_STIFF_CTR] >= _ro.STIFF_STEPS and t1 - t_new > _ro.STIFF_MIN_REMAINING * h
            )
        else:
            stats[ST_NONSTIFF_CTR] += 1
            if stats[ST_NONSTIFF_CTR] >= _ro.NONSTIFF_RESET:
                stats[ST_STIFF_CTR] = 0
        i0 = io[0]
        _outputs_in_step(t, h, t_new, y, K, t_out, y_out, io, tmp)
        for j in range(i0, io[0]):
            if not constant:
                _drive(t_out[j], tk, drive)
            for i in range(_dv.N_DRIVE):
                d_out[j, i] = drive[i]
        crossings, lo, hi = _track_step(t, h, y, ynew, K, p, summary, post_stop, tmp)
        if crossings:
            _resolve_crossings(crossings, lo, hi, t, h, y, K, p, summary, tmp)
        crossed = (t < t_soft <= t_new and t_soft < t1) or became_stiff
        if crossed:  # keep this step's dense output for the visit inside it
            for i in range(n):
                y_prev[i] = y[i]
                for q in range(7):
                    K_prev[q, i] = K[q, i]
        t_step = t
        h_step = h
        # accept; keep states non-negative (a clipped state needs a fresh derivative)
        clipped = False
        for i in range(n):
            if ynew[i] < 0.0:
                ynew[i] = 0.0
                clipped = True
            if not np.isfinite(ynew[i]):
                stats[ST_RHS] += n_rhs
                return h, h_first, FAILED, t, t, 0.0
            y[i] = ynew[i]
        if clipped:
            if not constant:
                _drive(t_new, tk, drive)
            rhs(t_new, y, p, drive, K[6])
            n_rhs += 1
        for i in range(n):
            K[0, i] = K[6, i]
        t = t_new
        if en == 0.0:
            factor = _m.MAX_FACTOR
        else:
            factor = min(_m.MAX_FACTOR, _m.SAFETY * en**_m.ERROR_EXPONENT)
        if rejected_once:
            factor = min(1.0, factor)
        if last and not rejected_once:
            h = max(h_try, h * factor)  # a step cut short by t1 says little about the next one
        else:
            h *= factor
        if crossed:
            for i in range(n):
                f[i] = K[0, i]
            stats[ST_RHS] += n_rhs
            if became_stiff:  # (the step may also hold a visit: its start and size go back)
                stats[ST_STIFF_AT] = int(t)
                return h, h_first, STIFF, t, t_step, h_step
            return h, h_first, OK, t, t_step, h_step
    for i in range(n):
        f[i] = K[0, i]
    stats[ST_RHS] += n_rhs
    return h, h_first, OK, t1, t1, 0.0


@njit(cache=True, error_model="numpy", fastmath={"nsz", "arcp", "contract", "reassoc"})
def integrate_stiff(
    t0, t1, y, f, p, tk, drive, rtol, atol, h, K, ynew, err, tmp,
    t_out, y_out, d_out, io, summary, post_stop, stats, t_soft, y_prev, K_prev, U, Jm, LU, piv,
):  # fmt: skip
    """:func:`integrate` with the RODAS4 Rosenbrock method (:mod:`sim.engines.rodas`).

    Same contract as :func:`integrate` (outputs, soft visits, milestones, status); ``K`` receives
    each step's interpolant in Dormand–Prince's encoding, so callers read it with
    :func:`sim.engines.dp5.dense`. Scratch: ``U`` (7, n) the stages and df/dt, ``Jm`` (n, n) the
    negated Jacobian, ``LU`` (n, n) and ``piv`` (n,) the factorised iteration matrix.
    """
    n = N_STATE
    t = t0
    at = _outputs_at_start(t0, y, t_out, y_out, io)
    if at >= 0:
        _drive(t0, tk, drive)
        for i in range(_dv.N_DRIVE):
            d_out[at, i] = drive[i]
    h_first = -1.0
    constant = _drive_is_constant(tk)
    if constant:
        _drive(t0, tk, drive)
    n_rhs = 0
    if h <= 0.0:
        h = initial_step(t, y, f, p, tk, drive, rtol, atol, tmp, K[1], stats)
    while t < t1:
        if stats[ST_STEPS] >= MAX_STEPS:
            stats[ST_RHS] += n_rhs
            return h, h_first, FAILED, t, t, 0.0
        # Jacobian (forward differences) and df/dt at (t, y); f = rhs(t, y) on entry
        for j in range(n):
            yj = y[j]
            dj = 1.5e-8 * max(abs(yj), atol[j] / rtol)
            y[j] = yj + dj
            if not constant:
                _drive(t, tk, drive)
            rhs(t, y, p, drive, tmp)
            y[j] = yj
            for i in range(n):
                Jm[i, j] = -(tmp[i] - f[i]) / dj
        n_rhs += n
        if constant:
            for i in range(n):
                U[6, i] = 0.0
        else:
            dt = 1.5e-8 * max(1.0, abs(t))
            if not constant:
                _drive(t + dt, tk, drive)
            rhs(t + dt, y, p, drive, tmp)
            n_rhs += 1
            for i in range(n):
                U[6, i] = (tmp[i] - f[i]) / dt
            _drive(t, tk, drive)
        span = t1 - t
        last = False
        h_try = h
        if h >= span * (1.0 - 1e-12):
            h = span
            last = True
        rejected_once = False
        while True:
            hmin = 1e-12 * max(1.0, abs(t))
            if not h >= hmin:
                stats[ST_RHS] += n_rhs
                return h, h_first, FAILED, t, t, 0.0
            fac = 1.0 / (h * _ro.GAMMA)
            for i in range(n):
                for j in range(n):
                    LU[i, j] = Jm[i, j]
                LU[i, i] += fac
            en = 1e10
            if _ro.lu_factor(LU, piv, n):
                t_new = t1 if last else t + h
                # stage 1
                for i in range(n):
                    U[0, i] = f[i] + h * _ro.D1 * U[6, i]
                _ro.lu_solve(LU, piv, U[0], n)
                # stage 2
                for i in range(n):
                    tmp[i] = y[i] + _ro.A21 * U[0, i]
                if not constant:
                    _drive(t + _ro.C2 * h, tk, drive)
                rhs(t + _ro.C2 * h, tmp, p, drive, U[1])
                for i in range(n):
                    U[1, i] += (_ro.C21 * U[0, i]) / h + h * _ro.D2 * U[6, i]
                _ro.lu_solve(LU, piv, U[1], n)
                # stage 3
                for i in range(n):
                    tmp[i] = y[i] + _ro.A31 * U[0, i] + _ro.A32 * U[1, i]
                if not constant:
                    _drive(t + _ro.C3 * h, tk, drive)
                rhs(t + _ro.C3 * h, tmp, p, drive, U[2])
                for i in range(n):
                    U[2, i] += (_ro.C31 * U[0, i] + _ro.C32 * U[1, i]) / h + h * _ro.D3 * U[6, i]
                _ro.lu_solve(LU, piv, U[2], n)
                # stage 4
                for i in range(n):
                    tmp[i] = y[i] + _ro.A41 * U[0, i] + _ro.A42 * U[1, i] + _ro.A43 * U[2, i]
                if not constant:
                    _drive(t + _ro.C4 * h, tk, drive)
                rhs(t + _ro.C4 * h, tmp, p, drive, U[3])
                for i in range(n):
                    U[3, i] += (
                        _ro.C41 * U[0, i] + _ro.C42 * U[1, i] + _ro.C43 * U[2, i]
                    ) / h + h * _ro.D4 * U[6, i]
                _ro.lu_solve(LU, piv, U[3], n)
                # stage 5 (at t + h; d5 = 0)
                for i in range(n):
                    tmp[i] = y[i] + (
                        _ro.A51 * U[0, i] + _ro.A52 * U[1, i] + _ro.A53 * U[2, i]
                        + _ro.A54 * U[3, i]
                    )  # fmt: skip
                if not constant:
                    _drive(t_new, tk, drive)
                rhs(t_new, tmp, p, drive, U[4])
                for i in range(n):
                    U[4, i] += (
                        _ro.C51 * U[0, i] + _ro.C52 * U[1, i] + _ro.C53 * U[2, i]
                        + _ro.C54 * U[3, i]
                    ) / h  # fmt: skip
                _ro.lu_solve(LU, piv, U[4], n)
                # stage 6 (embedded solution + u5; its solve is the error estimate)
                for i in range(n):
                    tmp[i] += U[4, i]
                if not constant:
                    _drive(t_new, tk, drive)
                rhs(t_new, tmp, p, drive, U[5])
                for i in range(n):
                    U[5, i] += (
                        _ro.C61 * U[0, i] + _ro.C62 * U[1, i] + _ro.C63 * U[2, i]
                        + _ro.C64 * U[3, i] + _ro.C65 * U[4, i]
                    ) / h  # fmt: skip
                _ro.lu_solve(LU, piv, U[5], n)
                n_rhs += 5
                for i in range(n):
                    ynew[i] = tmp[i] + U[5, i]
                    err[i] = U[5, i]
                en = _m.error_norm(err, y, ynew, rtol, atol, N_STATE)
                if not np.isfinite(en):
                    en = 1e10
            if en <= 1.0:
                break
            stats[ST_REJECTED] += 1
            h *= max(_ro.MIN_FACTOR, _ro.SAFETY * en**_ro.ERROR_EXPONENT)
            last = False
            rejected_once = True
        stats[ST_STEPS] += 1
        stats[ST_STIFF] += 1
        if h_first <= 0.0:
            h_first = h
        _ro.encode_dense(h, y, ynew, U, K, N_STATE)
        i0 = io[0]
        _outputs_in_step(t, h, t_new, y, K, t_out, y_out, io, tmp)
        for j in range(i0, io[0]):
            if not constant:
                _drive(t_out[j], tk, drive)
            for i in range(_dv.N_DRIVE):
                d_out[j, i] = drive[i]
        crossings, lo, hi = _track_step(t, h, y, ynew, K, p, summary, post_stop, tmp)
        if crossings:
            _resolve_crossings(crossings, lo, hi, t, h, y, K, p, summary, tmp)
        crossed = t < t_soft <= t_new and t_soft < t1
        if crossed:
            for i in range(n):
                y_prev[i] = y[i]
                for q in range(7):
                    K_prev[q, i] = K[q, i]
        t_step = t
        h_step = h
        for i in range(n):
            if not np.isfinite(ynew[i]):
                stats[ST_RHS] += n_rhs
                return h, h_first, FAILED, t, t, 0.0
            y[i] = max(ynew[i], 0.0)
        if not constant:
            _drive(t_new, tk, drive)
        rhs(t_new, y, p, drive, f)  # f(t_new, y_new): the next step's stage 1
        n_rhs += 1
        t = t_new
        if en == 0.0:
            factor = _ro.MAX_FACTOR
        else:
            factor = min(_ro.MAX_FACTOR, _ro.SAFETY * en**_ro.ERROR_EXPONENT)
        if rejected_once:
            factor = min(1.0, factor)
        if last and not rejected_once:
            h = max(h_try, h * factor)
        else:
            h *= factor
        if crossed:
            stats[ST_RHS] += n_rhs
            return h, h_first, OK, t, t_step, h_step
    stats[ST_RHS] += n_rhs
    return h, h_first, OK, t1, t1, 0.0


@njit(cache=True, error_model="numpy")
def _seg_start(sched, k, t_switch):
    """Effective start of segment k (a switch target starts at the switch at the earliest)."""
    if sched[k, SCH_SWITCH] > 0:
        return max(sched[k, SCH_START], t_switch)
    return sched[k, SCH_START]


@njit(cache=True, error_model="numpy")
def _active_segment(sched, t, t_switch):
    """Index of the schedule segment active at t, or -1. ``t_switch`` is inf until a switch:
    from then on switch targets replace the ordinary segments."""
    if t >= t_switch:
        for k in range(sched.shape[0]):
            if sched[k, SCH_SWITCH] > 0 and _seg_start(sched, k, t_switch) <= t < sched[k, SCH_END]:
                return k
        return -1
    for k in range(sched.shape[0]):
        if sched[k, SCH_SWITCH] == 0 and sched[k, SCH_START] <= t < sched[k, SCH_END]:
            return k
    return -1


@njit(cache=True, error_model="numpy")
def _cycle_on(sched, k, t, t_switch):
    """Intermittent dosing: is segment k in an on-phase at t? (Continuous segments always are.)"""
    on = sched[k, SCH_ON]
    if on <= 0.0:
        return True
    cycle = on + sched[k, SCH_OFF]
    phase = (t - _seg_start(sched, k, t_switch)) % cycle
    return phase < on - 1e-7 or phase > cycle - 1e-7


@njit(cache=True, error_model="numpy")
def _next_boundary(sched, t, t_switch):
    """First time after t at which the active segment or its on/off phase changes (inf if none)."""
    nb = t_switch if t_switch > t else np.inf
    for k in range(sched.shape[0]):
        if sched[k, SCH_SWITCH] > 0 and t_switch == np.inf:
            continue
        s = _seg_start(sched, k, t_switch)
        e = sched[k, SCH_END]
        if s > t and s < nb:
            nb = s
        if e > t and e < nb:
            nb = e
    k = _active_segment(sched, t, t_switch)
    if k >= 0 and sched[k, SCH_ON] > 0.0:
        on = sched[k, SCH_ON]
        cycle = on + sched[k, SCH_OFF]
        s = _seg_start(sched, k, t_switch)
        n = np.floor((t - s) / cycle + 1e-9)
        for edge in (s + n * cycle + on, s + (n + 1.0) * cycle):
            if edge > t + 1e-7 and edge < nb:
                nb = edge
    return nb


@njit(cache=True, error_model="numpy")
def _dose_fraction(sched, k, mult):
    """Dose of segment k taken on average (times adherence and the protocol's multiplier),
    relative to the drug's standard dose."""
    std = sched[k, SCH_DRUG + _dr.STD_DOSE]
    return sched[k, SCH_DOSE] * mult * sched[k, SCH_ADHERENCE] / std


@njit(cache=True, error_model="numpy")
def _configure(sched, k, mult, tki_on, t, tk):
    """Set the TKI drive for [t, next boundary): a constant effect, or PK with doses.

    ``interval`` and ``kill`` modes take the mean dose (dose x adherence); an off-phase of
    intermittent dosing or a stop gives 0 at once. ``daily`` keeps its PK state (washout).
    """
    if k < 0 or not tki_on:
        if tk[0, TK_MODE] == TKM_PK:
            return  # washout: the last drug keeps decaying, no more doses
        tk[0, TK_MODE] = TKM_CONST
        tk[0, TK_U] = 0.0
        return
    mode = sched[k, SCH_MODE]
    d = sched[k, SCH_DRUG : SCH_DRUG + _dr.N_DRUG]
    if mode == MODE_KILL:
        tk[0, TK_MODE] = TKM_CONST
        tk[0, TK_U] = _dose_fraction(sched, k, mult)
    elif mode == MODE_INTERVAL:
        tk[0, TK_MODE] = TKM_CONST
        if mult == 1.0 and not np.isnan(sched[k, SCH_U1]):
            tk[0, TK_U] = sched[k, SCH_U1]
        elif mult == sched[k, SCH_LM] and not np.isnan(sched[k, SCH_UL]):
            tk[0, TK_U] = sched[k, SCH_UL]
        else:
            dose = sched[k, SCH_DOSE] * mult * sched[k, SCH_ADHERENCE]
            tk[0, TK_U] = _pk.relative_effect(dose, sched[k, SCH_TAU], d)
    else:
        if tk[0, TK_MODE] != TKM_PK:
            tk[0, TK_AGUT] = 0.0
            tk[0, TK_CONC] = 0.0
            tk[0, TK_TLAST] = t
        tk[0, TK_MODE] = TKM_PK
        tk[0, TK_KA] = d[_dr.KA]
        tk[0, TK_KE] = d[_dr.KE]
        tk[0, TK_EC50] = d[_dr.EC50]
        tk[0, TK_HILL] = d[_dr.HILL]
        tk[0, TK_GREF] = _pk.interval_mean_effect(d[_dr.STD_DOSE], d[_dr.STD_TAU], d)


@njit(cache=True, error_model="numpy")
def _give_dose(sched, k, mult, t, tk):
    """Daily mode: advance the TKI's PK state to t and add one dose."""
    a_gut, conc = _pk.advance(
        tk[0, TK_AGUT], tk[0, TK_CONC], t - tk[0, TK_TLAST], tk[0, TK_KA], tk[0, TK_KE]
    )
    dose = sched[k, SCH_DOSE] * mult
    tk[0, TK_AGUT] = a_gut + sched[k, SCH_DRUG + _dr.BIO] * dose / sched[k, SCH_DRUG + _dr.VOL]
    tk[0, TK_CONC] = conc
    tk[0, TK_TLAST] = t


@njit(cache=True, error_model="numpy")
def _next_dose_after(sched, k, t, t_switch):
    """First dose time of segment k at or after t."""
    s = _seg_start(sched, k, t_switch)
    tau = sched[k, SCH_TAU]
    j = np.ceil((t - s) / tau - 1e-9)
    return s + max(j, 0.0) * tau


@njit(cache=True, error_model="numpy")
def _fire(iv, ivs, anchor, t):
    """An anchor happened at t: interventions waiting for it start at t + offset (once)."""
    for k in range(iv.shape[0]):
        if iv[k, IV_ANCHOR] == anchor and np.isnan(ivs[k, IVS_START]):
            start = t + iv[k, IV_OFFSET]
            ivs[k, IVS_START] = start
            ivs[k, IVS_NEXT] = start
            ivs[k, IVS_END] = start + iv[k, IV_DURATION]
            ivs[k, IVS_GIVEN] = 0.0


@njit(cache=True, error_model="numpy")
def _next_iv_dose(iv, ivs):
    nxt = np.inf
    for k in range(iv.shape[0]):
        if ivs[k, IVS_NEXT] < nxt:
            nxt = ivs[k, IVS_NEXT]
    return nxt


#: An interval-mode course's washout ends once no effect above this is possible.
WASHOUT_EFFECT = 1e-9


@njit(cache=True, error_model="numpy")
def _steady_trough(dose, every, prod):
    """Depot and concentration just before the next dose at steady state (doses ``dose`` every
    ``every`` days): the fixed point x = A (x + d) of the linear map A of one interval
    (:func:`sim.therapy.interventions.advance`, linear in its state) and one dose d."""
    a_d, c_d = _iv.give(0.0, 0.0, dose, prod)
    a11, a21 = _iv.advance(1.0, 0.0, every, prod)  # columns of A
    a12, a22 = _iv.advance(0.0, 1.0, every, prod)
    b1 = a11 * a_d + a12 * c_d  # A d
    b2 = a21 * a_d + a22 * c_d
    m11, m12, m21, m22 = 1.0 - a11, -a12, -a21, 1.0 - a22  # (I - A) x = A d
    det = m11 * m22 - m12 * m21
    return (m22 * b1 - m12 * b2) / det, (m11 * b2 - m21 * b1) / det


@njit(cache=True, error_model="numpy")
def _give_iv_doses(iv, ivs, t, tk, iv_out, horizon):
    """Give every intervention dose due at t; schedule each one's next dose (or none).

    An interval-mode course (``IV_MODE == IVM_INTERVAL``) has a few events instead of one per
    dose. At its start the drive takes the steady-state interval mean of the effect
    (:func:`sim.therapy.interventions.interval_mean_effect`), constant: the integrator does not
    restart at every dose. One dosing interval after its last dose, the washout is resolved:
    the PK state becomes the steady-state trough (:func:`_steady_trough`) and decays in closed
    form; it is checked every interval and switched off once even all the drug left could not
    give an effect above ``WASHOUT_EFFECT``. Loading is not resolved: the course's first
    half-lives get the steady-state effect (peg-interferon: 3–4 days of a year's course).
    """
    for k in range(iv.shape[0]):
        if ivs[k, IVS_NEXT] <= t + 1e-9:
            r = 1 + k
            prod = tk[r, IVK_PROD : IVK_PROD + _iv.N_PRODUCT]
            if iv[k, IV_MODE] == IVM_INTERVAL:
                every = iv[k, IV_EVERY]
                if tk[r, IVK_ACTIVE] == IVK_CONST:  # the course is over: washout from the trough
                    a_gut, conc = _steady_trough(iv[k, IV_DOSE], every, prod)
                    tk[r, IVK_AGUT] = a_gut
                    tk[r, IVK_CONC] = conc
                    tk[r, IVK_TLAST] = t
                    tk[r, IVK_ACTIVE] = IVK_PK
                    tk[r, IVK_EFFECT] = 0.0
                    ivs[k, IVS_NEXT] = t + every
                    continue
                if tk[r, IVK_ACTIVE] == IVK_PK:  # washout check
                    a_gut, conc = _iv.advance(
                        tk[r, IVK_AGUT], tk[r, IVK_CONC], t - tk[r, IVK_TLAST], prod
                    )
                    tk[r, IVK_AGUT] = a_gut
                    tk[r, IVK_CONC] = conc
                    tk[r, IVK_TLAST] = t
                    # C + a never grows without doses: it bounds every later concentration
                    if _iv.effect(conc + a_gut, prod) < WASHOUT_EFFECT:
                        tk[r, IVK_ACTIVE] = 0.0
                        ivs[k, IVS_NEXT] = np.inf
                    else:
                        ivs[k, IVS_NEXT] = t + every
                    continue
                start = ivs[k, IVS_START]
                n = min(iv[k, IV_COUNT], np.ceil((ivs[k, IVS_END] - start) / every - 1e-9))
                n_given = min(n, np.ceil((horizon - start) / every - 1e-9))
                tk[r, IVK_ACTIVE] = IVK_CONST
                tk[r, IVK_EFFECT] = _iv.interval_mean_effect(iv[k, IV_DOSE], every, prod)
                ivs[k, IVS_GIVEN] = n_given
                ivs[k, IVS_NEXT] = start + n * every  # inf for an open course
                iv_out[k, IVO_START] = start
                iv_out[k, IVO_DOSES] = n_given
                iv_out[k, IVO_LAST_DOSE] = start + (n_given - 1.0) * every
                continue
            if tk[r, IVK_ACTIVE] > 0.0:
                a_gut, conc = _iv.advance(
                    tk[r, IVK_AGUT], tk[r, IVK_CONC], t - tk[r, IVK_TLAST], prod
                )
            else:
                a_gut, conc = 0.0, 0.0
            a_gut, conc = _iv.give(a_gut, conc, iv[k, IV_DOSE], prod)
            tk[r, IVK_AGUT] = a_gut
            tk[r, IVK_CONC] = conc
            tk[r, IVK_TLAST] = t
            tk[r, IVK_ACTIVE] = IVK_PK
            ivs[k, IVS_GIVEN] += 1.0
            if np.isnan(iv_out[k, IVO_START]):
                iv_out[k, IVO_START] = ivs[k, IVS_START]
            iv_out[k, IVO_DOSES] = ivs[k, IVS_GIVEN]
            iv_out[k, IVO_LAST_DOSE] = t
            nxt = ivs[k, IVS_START] + ivs[k, IVS_GIVEN] * iv[k, IV_EVERY]
            if ivs[k, IVS_GIVEN] >= iv[k, IV_COUNT] or nxt >= ivs[k, IVS_END] - 1e-9:
                nxt = np.inf
            ivs[k, IVS_NEXT] = nxt


@njit(cache=True, error_model="numpy")
def _next_visit(proto, t, tki_allowed, t_stop, in_mmr):
    """ELN 2020 monitoring: every 3 months on TKI (monthly after a restart until MMR is back);
    after a stop monthly for months 1-6, every 2 months for 7-12, then every 3 months."""
    every = proto[PR_MONITOR_EVERY]
    if every > 0.0:
        return t + every
    if tki_allowed:
        restarted = t_stop >= 0
        return t + (1.0 if restarted and not in_mmr else 3.0) * DAYS_PER_MONTH
    months = (t - t_stop) / DAYS_PER_MONTH
    if months < 6.0 - 1e-9:
        return t + DAYS_PER_MONTH
    if months < 12.0 - 1e-9:
        return t + 2.0 * DAYS_PER_MONTH
    return t + 3.0 * DAYS_PER_MONTH


@njit(cache=True, error_model="numpy")
def _log_event(events, stats, t, value):
    j = stats[ST_EVENTS]
    if j < events.shape[0]:
        events[j, 0] = t
        events[j, 1] = EV_TKI_LEVEL
        events[j, 2] = value
        stats[ST_EVENTS] += 1


@njit(cache=True, error_model="numpy")
def _tki_level(sched, t, mult, tki_allowed, t_switch):
    """Mean dose fraction taken at t (0 when stopped, between segments or in an off-phase)."""
    k = _active_segment(sched, t, t_switch)
    if k < 0 or not tki_allowed or not _cycle_on(sched, k, t, t_switch):
        return 0.0
    return _dose_fraction(sched, k, mult)


@njit(cache=True, error_model="numpy")
def _record_stop(summary, y, p, t, n):
    if np.isnan(summary[S_STOP_TIME]):
        summary[S_STOP_TIME] = t
        summary[S_BCR_AT_STOP] = readout(y, p)
        for i in range(n):
            summary[S_STATE_AT_STOP + i] = y[i]


@njit(cache=True, error_model="numpy")
def simulate_one(
    y0, p, sched, proto, qpcr, iv, state, rtol, atol,
    t_out, y_out, d_out, visits, events, iv_out, summary, stats,
):  # fmt: skip
    """Run one patient from diagnosis (t = 0) to the horizon under the protocol.

    Parameters
    ----------
    y0, p : float64 arrays
        Initial state at diagnosis and model parameter vector (internal units).
    sched, proto, qpcr : float64 arrays
        Therapy schedule (``SCH_*`` columns), protocol (``PR_*``) and qPCR parameters.
    iv : float64 array (n_iv, IV_N)
        Interventions (``IV_*`` columns; may have 0 rows).
    state : uint64[4]
        This patient's xoshiro256** stream (advanced in place).
    rtol : float
        Relative tolerance; ``atol`` is the per-state absolute tolerance vector.
    t_out : float64 array
        Increasing output times in [0, horizon]; ``y_out`` (n_out, n_state) and ``d_out``
        (n_out, n_drive) receive the dense output.
    visits, events, iv_out, summary, stats : arrays
        Filled in place (see the module docstring). ``summary`` and ``iv_out`` must be
        NaN-initialised.
    """
    n = y0.shape[0]
    n_iv = iv.shape[0]
    horizon = proto[PR_HORIZON]
    y = y0.copy()
    yv = np.empty(n)  # state at a monitoring visit
    y_prev = np.empty(n)  # start of the step that crossed a visit, and its stages
    K_prev = np.empty((7, n))
    f = np.empty(n)
    K = np.empty((7, n))
    U = np.empty((7, n))  # Rosenbrock stages (stiff phases only)
    Jm = np.empty((n, n))
    LU = np.empty((n, n))
    piv = np.zeros(n, dtype=np.int64)
    stiff = False
    stats[ST_STIFF_AT] = -1
    ynew = np.empty(n)
    err = np.empty(n)
    tmp = np.empty(n)
    drive = np.zeros(_dv.N_DRIVE)
    tk = np.zeros((1 + n_iv, TK_W))
    ivs = np.full((n_iv, 4), np.nan)
    for k in range(n_iv):
        tk[1 + k, IVK_PROD : IVK_PROD + _iv.N_PRODUCT] = iv[
            k, IV_PRODUCT : IV_PRODUCT + _iv.N_PRODUCT
        ]
        ivs[k, IVS_NEXT] = np.inf
        iv_out[k, IVO_DOSES] = 0.0
    io = np.zeros(1, dtype=np.int64)

    t = 0.0
    h = -1.0
    f_valid = False
    h_dose = -1.0  # first step after the latest dose (doses repeat: so does the first step)
    tki_allowed = True
    mult = 1.0
    n_stops = 0
    t_stop = -1.0  # time of the latest stop
    t_switch = np.inf
    stop_at = proto[PR_STOP_AT] if proto[PR_STOP_KIND] == STOP_FIXED else np.inf
    lead_start = stop_at - proto[PR_LEAD_IN] if proto[PR_LEAD_IN] > 0 else np.inf
    if proto[PR_MAX_STOPS] < 1:
        stop_at = np.inf
        lead_start = np.inf
    run_start = np.nan  # first visit of the current run of visits at the stop depth
    n_loss = 0  # consecutive visits above MMR
    in_mmr = False
    post_stop = False  # tracking the true maximum after the first stop
    risen = False  # first molecular rise after the first stop seen
    next_visit = _next_visit(proto, 0.0, True, -1.0, True)
    next_dose = np.inf
    k_prev = -2
    on_prev = True
    level = _tki_level(sched, 0.0, mult, tki_allowed, t_switch)
    _log_event(events, stats, 0.0, level)
    summary[S_TKI_DAYS] = 0.0
    summary[S_TKI_EXPOSURE] = 0.0
    _fire(iv, ivs, ANCHOR_DIAGNOSIS, 0.0)
    for i in range(n):
        if not np.isfinite(y[i]):
            stats[ST_FAILURES] += 1
            t = horizon  # nothing to integrate: flagged as a failure, outputs stay NaN

    while t < horizon:
        k = _active_segment(sched, t, t_switch)
        tki_on = tki_allowed and k >= 0 and _cycle_on(sched, k, t, t_switch)
        if k != k_prev or tki_on != on_prev:
            f_valid = False
            _configure(sched, k, mult, tki_on, t, tk)
            if tki_on and sched[k, SCH_MODE] == MODE_DAILY:
                next_dose = _next_dose_after(sched, k, t, t_switch)
            else:
                next_dose = np.inf
            k_prev = k
            on_prev = tki_on
        dosed = False
        if tki_on and sched[k, SCH_MODE] == MODE_DAILY and next_dose <= t + 1e-9:
            dosed = True
            f_valid = False
            adherence = sched[k, SCH_ADHERENCE]
            if adherence >= 1.0 or _rng.uniform(state) < adherence:
                _give_dose(sched, k, mult, t, tk)
            next_dose += sched[k, SCH_TAU]
        if n_iv > 0 and _next_iv_dose(iv, ivs) <= t + 1e-9:
            dosed = True
            f_valid = False
            _give_iv_doses(iv, ivs, t, tk, iv_out, horizon)
        if not f_valid:  # a discontinuity: restart (after a visit that changed nothing, FSAL's
            _eval(t, y, p, tk, drive, f, stats)  # f is still rhs(t, y) and nothing restarts)
            stats[ST_RESTARTS] += 1
        t_hard = min(horizon, stop_at, lead_start, next_dose)
        t_hard = min(t_hard, _next_boundary(sched, t, t_switch))
        if n_iv > 0:
            t_hard = min(t_hard, _next_iv_dose(iv, ivs))
        if t_hard <= t:  # guard: nothing can be scheduled in the past
            t_hard = min(horizon, t + 1e-9)
        if dosed and h_dose > 0.0:
            h = h_dose  # the previous segment also began with a dose: start as it did
        t_prev = t
        if stiff:
            h, h_first, status, t, t_step, h_step = integrate_stiff(
                t, t_hard, y, f, p, tk, drive, rtol, atol, h, K, ynew, err, tmp,
                t_out, y_out, d_out, io, summary, post_stop, stats, next_visit, y_prev, K_prev,
                U, Jm, LU, piv,
            )  # fmt: skip
        else:
            h, h_first, status, t, t_step, h_step = integrate(
                t, t_hard, y, f, p, tk, drive, rtol, atol, h, K, ynew, err, tmp,
                t_out, y_out, d_out, io, summary, post_stop, stats, next_visit, y_prev, K_prev,
            )  # fmt: skip
        if status == STIFF:  # from here on the trajectory continues with RODAS4
            stiff = True
            status = OK
        f_valid = True
        if dosed:
            h_dose = h_first
        if level > 0.0:
            summary[S_TKI_DAYS] += t - t_prev
            summary[S_TKI_EXPOSURE] += level * (t - t_prev)
        if status != OK:
            stats[ST_FAILURES] += 1
            break
        changed = False
        hard_pending = t >= t_hard
        while True:
            # visits inside the last step (read from its dense output), then the hard events at
            # t, then a visit exactly at t; a visit that changes the therapy rolls back to it
            if next_visit < t and h_step > 0.0:
                tv = next_visit
                _m.dense((tv - t_step) / h_step, h_step, y_prev, K_prev, yv, N_STATE)
                soft = True
            elif hard_pending:
                hard_pending = False
                if t >= horizon:
                    break
                # lead-in before a scheduled stop (fixed-time stops)
                if t >= lead_start:
                    lead_start = np.inf
                    mult = proto[PR_LEAD_DOSE]
                    summary[S_LEAD_IN_START] = t
                    _fire(iv, ivs, ANCHOR_STOP_CRITERIA, t)
                    changed = True
                # scheduled stop
                if t >= stop_at:
                    stop_at = np.inf
                    tki_allowed = False
                    mult = 1.0
                    n_stops += 1
                    n_loss = 0
                    t_stop = t
                    if not post_stop and np.isnan(summary[S_STOP_TIME]):
                        post_stop = True
                    _record_stop(summary, y, p, t, n)
                    _fire(iv, ivs, ANCHOR_TKI_STOP, t)
                    next_visit = _next_visit(proto, t, False, t_stop, False)
                    changed = True
                continue
            elif next_visit <= t and t < horizon:
                tv = t
                for i in range(n):
                    yv[i] = y[i]
                soft = False
            else:
                break
            true_pct = readout(yv, p)
            if proto[PR_DECIDE_TRUE] > 0:
                meas, det, abl1, lod = true_pct, 1.0, np.inf, 0.0
            else:
                meas, det, abl1, lod = _qpcr.measure(true_pct, qpcr, state)
            depth = _qpcr.mr_depth(meas, det, abl1)
            action = ACT_NONE
            lost = det > 0 and meas > _qpcr.MMR
            in_mmr = depth >= _qpcr.DEPTH_MMR
            if depth >= _qpcr.DEPTH_MMR and np.isnan(summary[S_T_MMR_MEAS]):
                summary[S_T_MMR_MEAS] = tv
                _fire(iv, ivs, ANCHOR_MMR, tv)
            if depth >= _qpcr.DEPTH_MR4 and np.isnan(summary[S_T_MR4_MEAS]):
                summary[S_T_MR4_MEAS] = tv
                _fire(iv, ivs, ANCHOR_MR4, tv)
            if depth >= _qpcr.DEPTH_MR45 and np.isnan(summary[S_T_MR45_MEAS]):
                summary[S_T_MR45_MEAS] = tv
            n_loss = n_loss + 1 if lost else 0
            relapse = n_loss >= proto[PR_RELAPSE_RULE]
            if tki_allowed:
                if depth >= proto[PR_STOP_DEPTH]:
                    if np.isnan(run_start):
                        run_start = tv
                else:
                    run_start = np.nan
                if (
                    t_switch == np.inf
                    and tv >= proto[PR_SWITCH_AT] - 1e-9
                    and depth < proto[PR_SWITCH_DEPTH]
                ):
                    t_switch = tv  # slow response: the switch target replaces the running TKI
                    action = ACT_SWITCH
                    changed = True
                if stop_at < np.inf and lead_start == np.inf and mult != 1.0 and relapse:
                    # recurrence during the reduced-dose lead-in: back to full dose, no stop
                    stop_at = np.inf
                    mult = 1.0
                    summary[S_LEAD_IN_FAIL] = tv
                    action = ACT_DOSE
                    changed = True
                    run_start = np.nan
                elif (
                    proto[PR_STOP_KIND] == STOP_CRITERIA
                    and stop_at == np.inf
                    and n_stops < proto[PR_MAX_STOPS]
                    and summary[S_TKI_DAYS] - (t - tv if level > 0.0 else 0.0)
                    >= proto[PR_STOP_AFTER] - 1e-6
                    and not np.isnan(run_start)
                    and tv - run_start >= proto[PR_STOP_FOR] - 1e-6
                ):
                    _fire(iv, ivs, ANCHOR_STOP_CRITERIA, tv)
                    if proto[PR_LEAD_IN] > 0:
                        stop_at = tv + proto[PR_LEAD_IN]
                        mult = proto[PR_LEAD_DOSE]
                        summary[S_LEAD_IN_START] = tv
                        action = ACT_STOP_SCHEDULED
                        changed = True
                    else:
                        stop_at = tv  # stop now (below, same time)
                        action = ACT_STOP
            else:
                if post_stop and not risen and det > 0 and meas > _qpcr.MR4:
                    risen = True
                    _fire(iv, ivs, ANCHOR_FIRST_RISE, tv)
                if relapse:
                    action = ACT_RELAPSE
                    if np.isnan(summary[S_RELAPSE_TIME]):
                        summary[S_RELAPSE_TIME] = tv
                    _fire(iv, ivs, ANCHOR_RELAPSE, tv)
                    if proto[PR_RESTART] > 0:
                        tki_allowed = True
                        mult = 1.0
                        post_stop = False
                        run_start = np.nan
                        n_loss = 0
                        action = ACT_RESTART
                        if np.isnan(summary[S_RESTART_TIME]):
                            summary[S_RESTART_TIME] = tv
                        changed = True
            j = stats[ST_VISITS]
            if j < visits.shape[0]:
                visits[j, V_TIME] = tv
                visits[j, V_TRUE] = true_pct
                visits[j, V_MEAS] = meas
                visits[j, V_DET] = det
                visits[j, V_ABL1] = abl1
                visits[j, V_LOD] = lod
                visits[j, V_DEPTH] = depth
                visits[j, V_ON_TKI] = 1.0 if tki_allowed else 0.0
                visits[j, V_ACTION] = action
                stats[ST_VISITS] += 1
            if stop_at <= tv:  # immediate stop decided at this visit
                stop_at = np.inf
                tki_allowed = False
                mult = 1.0
                n_stops += 1
                n_loss = 0
                t_stop = tv
                if np.isnan(summary[S_STOP_TIME]):
                    post_stop = True
                _record_stop(summary, yv, p, tv, n)
                _fire(iv, ivs, ANCHOR_TKI_STOP, tv)
                changed = True
            next_visit = _next_visit(proto, tv, tki_allowed, t_stop, in_mmr)
            if n_iv > 0 and _next_iv_dose(iv, ivs) < t:
                changed = True  # an intervention anchored at this visit starts now
            if soft and changed:  # roll back to the visit: the new therapy starts there
                if level > 0.0:
                    summary[S_TKI_DAYS] -= t - tv
                    summary[S_TKI_EXPOSURE] -= level * (t - tv)
                for i in range(n):
                    y[i] = yv[i]
                t = tv
                while io[0] > 0 and t_out[io[0] - 1] > tv:
                    io[0] -= 1
                for slot in (S_T_MMR, S_T_MR4, S_T_MR45, S_T_LOSS_TRUE):
                    if summary[slot] > tv:
                        summary[slot] = np.nan
                break
        if changed:
            k_prev = -2  # reconfigure the drive
            f_valid = False
        new_level = _tki_level(sched, t, mult, tki_allowed, t_switch)
        if new_level != level:
            level = new_level
            _log_event(events, stats, t, level)
    summary[S_N_STOPS] = n_stops
    # rows of the output grid never reached (a failure) stay NaN
    for j in range(io[0], t_out.shape[0]):
        for i in range(n):
            y_out[j, i] = np.nan


@njit(cache=True, error_model="numpy", parallel=True)
def simulate_ensemble(
    y0s, ps, schedule, protocol, qpcr_params, interventions, streams, rel_tol, abs_tol,
    times, ys, drives, visit_log, event_log, iv_logs, summaries, solver_stats,
):  # fmt: skip
    """``simulate_one`` over the rows of a parameter matrix, in parallel (``prange``).

    Row j uses ``y0s[j]``, ``ps[j]``, its own random stream ``streams[j]`` and writes ``ys[j]``,
    ``drives[j]``, ``visit_log[j]``, ``event_log[j]``, ``iv_logs[j]``, ``summaries[j]``,
    ``solver_stats[j]``: each
    patient's numbers depend only on its own row, never on the thread count. (The argument names
    differ from ``simulate_one``'s on purpose: numba's parfor lowering rejects a prange body whose
    call repeats the enclosing function's parameter names.)
    """
    for j in prange(y0s.shape[0]):
        simulate_one(
            y0s[j], ps[j], schedule, protocol, qpcr_params, interventions, streams[j], rel_tol,
            abs_tol, times, ys[j], drives[j], visit_log[j], event_log[j], iv_logs[j], summaries[j],
            solver_stats[j],
        )  # fmt: skip
