r"""Agent engine: leukemic cells, effector T cells and NK cells as agents (numba, struct of arrays).

Each patient is a population of agents advanced in discrete steps of ``dt`` days (1 by default).
The rules are chosen so that the mean-field limit is the ``cml_immune`` ODE
(:mod:`sim.models.cml_immune`); :func:`mean_map` is the engine's own discrete-time mean map.

Agents
------
Leukemic cells (one ``uint8`` code per cell: bit 0 active/quiescent, bits 1-7 the TKI-sensitivity
class; a position ``int32`` on the lattice). Classes :math:`k = 0..K-1` carry sensitivities
:math:`s_k = e^{\sigma z_k - \sigma^2/2}` at the midpoints :math:`z_k = \Phi^{-1}((k + 1/2)/K)`,
rescaled to mean exactly 1 (``sens_sd_log`` = :math:`\sigma`; one class of sensitivity 1 when
:math:`\sigma = 0`); class :math:`K` is the resistant clone (sensitivity ``resist_factor``).
A daughter is resistant with probability ``mu_res`` (a mutation at division); it keeps its
parent's class otherwise.

Effector T cells (exhaustion :math:`e_j \in [0, 1]` each, a position). Functional fraction
:math:`f_j = 1 - e_j (1 - B)` (anti-PD-1 occupancy :math:`B` lowers the effective exhaustion).

NK cells (activation :math:`a_k` each, a position). Their number is :math:`N V`, with :math:`N`
the ODE's NK concentration (cells/µL) and :math:`V` = ``nk_volume`` (µL); the kill per NK cell is
:math:`m_N / V`, so the mean-field NK kill is :math:`m_N A_N N` as in the ODE.

One step (environment frozen at the start of the step)
-----------------------------------------------------
With :math:`X, Y` the quiescent and active counts, :math:`\Phi_Z = \sum_j f_j`,
:math:`\Sigma_A = \sum_k a_k`, drive :math:`u, I, B, v, x_{ex}` (:mod:`sim.therapy.drive`):

* active cell of class k, competing fates with rates division :math:`p_y`, return to
  quiescence :math:`p_{yx}` and death
  :math:`\delta_k = p_y Y/K_y + e_{TKI} u s_k + m \Phi_Z + (m_N/V) \Sigma_A + k_{IY} I`.
  With :math:`\lambda_k` their sum, one uniform :math:`U` decides: the cell has an event with
  probability :math:`q_k = 1 - e^{-\lambda_k dt}`, and it is the fate with rate :math:`r` with
  probability :math:`q_k r / \lambda_k` (thresholds in this order: division, quiescence,
  death). A dividing cell stays and adds a daughter; the daughter is resistant when
  :math:`U < q_k (p_y/\lambda_k) \mu`.
* quiescent cell: activation with probability :math:`1 - e^{-p_{xy}(1 + \alpha_I I) dt}`.
* T cell j: death (rate :math:`a`) and clonal expansion on encounter (rate
  :math:`p_z f_j Y/(K_z^2 + Y^2)`) compete as above; an expanding cell adds an unexhausted
  daughter (:math:`e = 0`, the ODE's dilution term). Survivors' exhaustion follows
  :math:`\dot e = k_E \frac{Y}{Y + K_E}(1 - e) - \delta_E e` exactly over the step. Influx:
  :math:`\mathrm{Poisson}(r_z(1 + v)(1 - e^{-a\,dt})/a)` new cells with :math:`e = 0` (the
  newcomers of an immigration-death process that are alive at the end of the step).
* NK cell: death with probability :math:`1 - e^{-d_N(1 + Y/K_{ND}) dt}`; survivors' activation
  relaxes to :math:`A_N = (1 + \kappa_N I)(1 + x_{ex})/(1 + Y/K_{NS})` at rate
  ``nk_activation_rate`` (infinite by default: :math:`a_k = A_N`, as the ODE); births
  :math:`\mathrm{Poisson}(s_N(1 + \sigma_N I) V (1 - e^{-d\,dt})/d)` at activation :math:`A_N`.

Every per-step probability comes from its rate as :math:`1 - e^{-r\,dt}`; competing fates share
one uniform number, so a cell meets at most one of them in a step. At dt = 1 day a rate of
0.58/day is biased by several percent against the ODE, so the engine is compared with the ODE at
small dt and with :func:`mean_map` at dt = 1 day.

Counts above a threshold (large populations)
-------------------------------------------
Quiescent pools reach 1e10 cells. Within one phase (quiescent or active) and one sensitivity
class the cells are exchangeable in the well-mixed model (no other per-cell state), so holding
them as a count :math:`n` and drawing their fates jointly is *exact in distribution*: the number
of events is :math:`\mathrm{Bin}(n, q_k)`, split among the fates by conditional binomials
(:func:`binomial`, exact: inversion for :math:`n p < 10`, Hörmann's BTRS otherwise), mutants
:math:`\mathrm{Bin}(\text{divisions}, \mu)`. Rule: a phase whose agents exceed ``max_agents``
is collapsed into per-class counts after the step; a phase held as counts whose total falls
below ``max_agents / 8`` is expanded back into agents (the gap avoids switching back and forth).
Cells that change phase join the other phase's representation. T cells are exchangeable within
a *birth cohort*: cells born in the same step (influx and expansion daughters start unexhausted)
share their exhaustion exactly, since it follows the same deterministic equation. Above
``max_t_agents`` they are held as cohorts (exhaustion, count) whose deaths and expansions are
conditional binomials, again exact in distribution; below an eighth of it, as agents again. The
lattice has positions, so it is agents only (a run whose cells outgrow the buffers is stopped
and flagged ``overflow``).

Marrow lattice (``lattice = L > 0``)
------------------------------------
An L x L periodic lattice; a fraction ``niche_fraction`` of the sites (drawn from the patient's
stream) are niches holding at most one quiescent cell: a cell can only be quiescent on a niche.
An active cell returns to quiescence only if a free niche lies in its 3 x 3 (Moore)
neighbourhood, and moves onto it; an activated cell frees its niche. Immune cells kill only
active cells in their neighbourhood: the T-cell and NK kill rates of a cell at site s use the
sums :math:`\Phi_Z(s)`, :math:`\Sigma_A(s)` over its 3 x 3 neighbourhood times :math:`L^2/9`, and
crowding uses the neighbourhood's active cells :math:`Y(s) L^2/9`, so that a uniform spread gives
the well-mixed rates. T cells expand at rate :math:`p_z f_j Y(s) (L^2/9) / (K_z^2 + Y^2)` (the
window's saturation uses the total Y). Daughters of leukemic cells go to a random site of the
neighbourhood; immune cells step to a random neighbouring site (or stay) after their fate;
newcomers land on random sites.

Reproducibility
---------------
Patient i uses stream i of :func:`sim.engines.rng.seed_states` for everything (placement,
fates, influx); the parallel loop over patients assigns threads, never streams, so results do
not depend on the thread count. One patient is one stream: a single very large patient runs on
one core.

References
----------
W. Hörmann. The generation of binomial random variates. J Stat Comput Simul 1993;46:101-110
(BTRS).
T. Hähnel et al. Cancer Res 2020;80:2394-2406 (the X, Y, Z model and its cell scale).
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
    A,
)
from sim.params import Param, ParamTable
from sim.therapy import drive as _dv

ASSUME = "assumption: no published value; sweep it (cmlsim default)"

#: Parameters of the agent engine beyond the model's own table (``[engine]`` in scenarios).
ABM_PARAMS = ParamTable(
    [
        Param(
            "cell_scale",
            1.0,
            "1",
            1e-6,
            1e6,
            "leukemic cells per model cell unit (1: Hähnel's K_y = 1e6 cells); extinction "
            "depends on it (sim.engines.stochastic.scale_cells)",
            "Hähnel et al. 2020 fit BCR-ABL1 ratios, so the absolute number is not identified; "
            "cmlsim default",
        ),
        Param(
            "nk_volume",
            4.0,
            "µL",
            1e-3,
            1e5,
            "volume whose NK cells are agents: NK agents = N x nk_volume (range 1-100)",
            ASSUME,
        ),
        Param(
            "sens_sd_log",
            0.0,
            "1",
            0.0,
            3.0,
            "log-sd of per-cell TKI sensitivity (mean 1; 0 = identical cells, the ODE limit; "
            "range 0-1)",
            ASSUME,
        ),
        Param(
            "mu_res",
            0.0,
            "1/division",
            0.0,
            0.01,
            "probability that a daughter carries a TKI-resistance mutation (range 1e-9-1e-6)",
            "assumption: point-mutation rates per division of this order are used in CML "
            "resistance models; 0 = none (the ODE limit)",
        ),
        Param(
            "resist_factor",
            0.0,
            "1",
            0.0,
            1.0,
            "TKI kill of resistant cells relative to sensitive ones (0 = fully resistant)",
            ASSUME,
        ),
        Param(
            "nk_activation_rate",
            np.inf,
            "1/day",
            1e-3,
            np.inf,
            "rate at which an NK cell's activation follows interferon and leukemic load "
            "(inf = at once, as the ODE)",
            ASSUME,
        ),
        Param(
            "niche_fraction",
            0.25,
            "1",
            1e-4,
            1.0,
            "lattice only: fraction of marrow sites that are stem-cell niches (one quiescent "
            "cell each)",
            ASSUME,
        ),
    ]
)
CELL_SCALE, NK_VOLUME, SENS_SD_LOG, MU_RES, RESIST_FACTOR, NK_ACT_RATE, NICHE_FRACTION = range(7)

# --- control vector
C_DT, C_MAX_AGENTS, C_LATTICE, C_N_SENS, C_RELAPSE, C_CAP_IMMUNE, C_MAX_T_AGENTS = range(7)
C_N = 7
DEFAULT_DT = 1.0
DEFAULT_MAX_AGENTS = 1 << 21  # 2.1e6 cells per phase as agents; above: counts
DEFAULT_CAP_IMMUNE = 1 << 20
DEFAULT_MAX_T_AGENTS = 4096  # T cells as agents up to this many; above: exact cohorts
DEFAULT_N_SENS = 8  # sensitivity classes when sens_sd_log > 0
RELAPSE_LEVEL = 1e-3  # Y/K_y = 0.1 % BCR-ABL1 IS (loss of MMR)
EXPAND_BELOW = 1.0 / 8.0  # counts -> agents below this fraction of max_agents

# --- integer bookkeeping (ix)
IX_NCELL, IX_NT, IX_NNK, IX_MODE_Q, IX_MODE_A, IX_FAIL, IX_UPDATES, IX_NQ, IX_NA = range(9)
IX_NRES, IX_STEP, IX_NCLASS, IX_MODE_T, IX_NCOH = 9, 10, 11, 12, 13
IX_N = 14
MODE_AGENTS, MODE_COUNTS = 0, 1

# --- event counters
EV_DIV, EV_DEACT, EV_ACT, EV_DEATH, EV_MUT, EV_TDIV, EV_TDEATH, EV_TIN = range(8)
EV_NKBIRTH, EV_NKDEATH = 8, 9
EV_N = 10
EVENTS = (
    "division", "quiescence", "activation", "death", "mutation", "t_expansion", "t_death",
    "t_influx", "nk_birth", "nk_death",
)  # fmt: skip

# --- lattice fields (fld rows): per-site raw sums, then their 3 x 3 neighbourhood sums
F_Y, F_TF, F_NA, F_YNB, F_TFNB, F_NANB = range(6)
F_N = 6
NICHE_NONE, NICHE_FREE, NICHE_TAKEN = -1, 0, 1

# --- per-patient summary (days; NaN if never)
SM_T_ERAD, SM_T_RELAPSE, SM_X_STOP, SM_Y_STOP, SM_Z_STOP, SM_MIN_Y, SM_T_Y0 = range(7)
SM_T_RESIST, SM_OVERFLOW = 7, 8
SM_N = 9
#: Outputs per time: X, Y, Z, mean exhaustion E, N (cells/µL) as the ODE, then resistant cells.
OUT_STATES = ("X", "Y", "Z", "E", "N", "R")
N_OUT = 6

_U5 = np.uint64(5)
_U7 = np.uint64(7)
_U9 = np.uint64(9)
_U11 = np.uint64(11)
_U17 = np.uint64(17)
_U45 = np.uint64(45)
_U57 = np.uint64(57)
_U19 = np.uint64(19)
_TWO_M53 = _rng.TWO_POW_M53


@njit(cache=True)
def binomial(s, n, p):
    r"""Binomial deviate :math:`\mathrm{Bin}(n, p)` as a float (n up to :math:`2^{53}`), exact.

    :math:`\min(p, 1-p) = \pi`; for :math:`n\pi < 10` sequential-search inversion (one uniform),
    otherwise BTRS, the transformed rejection with squeeze of Hörmann (1993):
    :math:`b = 1.15 + 2.53\sqrt{n\pi(1-\pi)}`, :math:`a = -0.0873 + 0.0248 b + 0.01\pi`,
    :math:`v_r = 0.92 - 4.2/b`, :math:`\alpha = (2.83 + 5.1/b)\sqrt{n\pi(1-\pi)}`, candidate
    :math:`k = \lfloor (2a/u_s + b)U + n\pi + 1/2 \rfloor`, exact acceptance test with
    :math:`\ln\Gamma`. ``s`` is a ``uint64[4]`` stream, advanced in place.
    """
    if n <= 0.0 or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return n
    flip = p > 0.5
    pp = 1.0 - p if flip else p
    qq = 1.0 - pp
    if n * pp < 10.0:
        u = _rng.uniform(s)
        k = 0.0
        pk = math.exp(n * math.log1p(-pp))
        cdf = pk
        ratio = pp / qq
        while u > cdf and k < n:
            k += 1.0
            pk *= (n - k + 1.0) / k * ratio
            if pk == 0.0:
                break
            cdf += pk
    else:
        spq = math.sqrt(n * pp * qq)
        b = 1.15 + 2.53 * spq
        a = -0.0873 + 0.0248 * b + 0.01 * pp
        c = n * pp + 0.5
        vr = 0.92 - 4.2 / b
        alpha = (2.83 + 5.1 / b) * spq
        lpq = math.log(pp / qq)
        m = math.floor((n + 1.0) * pp)
        h = math.lgamma(m + 1.0) + math.lgamma(n - m + 1.0)
        while True:
            u = _rng.uniform(s) - 0.5
            v = _rng.uniform(s)
            us = 0.5 - abs(u)
            if us == 0.0:
                continue
            k = math.floor((2.0 * a / us + b) * u + c)
            if k < 0.0 or k > n:
                continue
            if us >= 0.07 and v <= vr:
                break
            if v == 0.0:
                break
            lv = math.log(v * alpha / (a / (us * us) + b))
            if lv <= h - math.lgamma(k + 1.0) - math.lgamma(n - k + 1.0) + (k - m) * lpq:
                break
    return n - k if flip else k


# ------------------------------------------------------------------------------ the kernel


@njit(cache=True)
def _rates(p, ap, drive, cls, dt, Y, phi_z, sig_a, thr):
    """Fate thresholds per class (rows: division, quiescence, death, mutant daughter) for the
    well-mixed environment; returns the activation probability of a quiescent cell."""
    vol = ap[NK_VOLUME]
    base = p[P_Y] * Y / p[K_Y] + p[M_KILL] * phi_z + p[M_N] * sig_a / vol + p[K_IY] * drive[_dv.IFN]
    for k in range(cls.shape[0]):
        d = base + p[E_TKI] * drive[_dv.TKI] * cls[k]
        lam = p[P_Y] + p[P_YX] + d
        if lam > 0.0:
            q = -math.expm1(-lam * dt)
            thr[0, k] = q * p[P_Y] / lam
            thr[1, k] = thr[0, k] + q * p[P_YX] / lam
            thr[2, k] = q
        else:
            thr[0, k] = 0.0
            thr[1, k] = 0.0
            thr[2, k] = 0.0
        thr[3, k] = thr[0, k] * ap[MU_RES]
    return -math.expm1(-p[P_XY] * (1.0 + p[ALPHA_I] * drive[_dv.IFN]) * dt)


@njit(cache=True, inline="always")
def _next53(s0, s1, s2, s3):
    """:func:`sim.engines.rng.next_u64` on a stream held in registers (the hot loops keep its
    four words out of memory): the output's 53 upper bits, :math:`U 2^{53}` as a ``uint64``,
    and the new state."""
    x = s1 * _U5
    m = (((x << _U7) | (x >> _U57)) * _U9) >> _U11
    t = s1 << _U17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << _U45) | (s3 >> _U19)
    return m, s0, s1, s2, s3


@njit(cache=True)
def _leukemic_agents(cells, n, thr, q_act, res_code, mode_q, mode_a, counts, rs, ev, cnt):
    r"""One step of every leukemic agent (well mixed): compaction in place, daughters appended
    after the n read cells and moved down at the end. Cells that change phase into a phase
    held as counts are added to ``counts``. ``cnt`` receives (quiescent, active, resistant)
    agents after the step. Returns the new number of agents.

    The uniform :math:`U = m 2^{-53}` is compared as the integer m against
    :math:`\lceil \theta 2^{53} \rceil`, which decides exactly as :math:`U < \theta`. With
    :math:`t_0 \le t_1 \le t_2` the division, quiescence and event thresholds of the cell's
    class (a quiescent cell: 0, its activation threshold, the same) and :math:`d = m - t_0`
    unsigned (wrapping for :math:`m < t_0`), a phase change is :math:`d < t_1 - t_0`, a death
    :math:`t_1 - t_0 \le d < t_2 - t_0` and a division :math:`m < t_0`: the common fates
    (none, division, death) are added to the write positions without branches, and only the
    rare ones (phase change, resistant daughter) branch. Unsigned indices spare numba's
    negative-index checks.
    """
    nk = thr.shape[1]
    # rows t0, t1 - t0, t2 - t0, mutant-daughter threshold; a column per cell code
    # (class << 1 | active), all 256 of them so that the row offsets are constants
    tab = np.empty((4, 256), dtype=np.uint64)
    iq = np.uint64(math.ceil(q_act * 9007199254740992.0))
    for k in range(nk):
        t0 = np.uint64(math.ceil(thr[0, k] * 9007199254740992.0))
        active = 2 * k + 1
        tab[0, active] = t0
        tab[1, active] = np.uint64(math.ceil(thr[1, k] * 9007199254740992.0)) - t0
        tab[2, active] = np.uint64(math.ceil(thr[2, k] * 9007199254740992.0)) - t0
        tab[3, active] = np.uint64(math.ceil(thr[3, k] * 9007199254740992.0))
        tab[0, 2 * k] = 0
        tab[1, 2 * k] = iq
        tab[2, 2 * k] = iq
        tab[3, 2 * k] = 0
    s0 = rs[0]
    s1 = rs[1]
    s2 = rs[2]
    s3 = rs[3]
    w = np.uint64(0)
    tail = np.uint64(n)
    one = np.uint64(1)
    for i in range(n):
        c = cells[i]
        m, s0, s1, s2, s3 = _next53(s0, s1, s2, s3)
        d = m - tab[0, c]
        if (d < tab[1, c]) | (m < tab[3, c]):  # rare: a phase change or a resistant daughter
            if m >= tab[0, c]:  # phase change
                active = c & 1
                if active:
                    ev[EV_DEACT] += 1
                else:
                    ev[EV_ACT] += 1
                if (mode_q if active else mode_a) == MODE_COUNTS:
                    counts[active ^ 1, c >> 1] += 1.0
                    ev[EV_DEATH] -= 1  # offsets its count below among the cells gone
                else:
                    cells[w] = c ^ 1
                    w += one
            else:
                ev[EV_MUT] += 1
                cells[w] = c
                w += one
                cells[tail] = res_code
                tail += one
            continue
        cells[w] = c
        w += np.uint64(d >= tab[2, c])  # survives
        cells[tail] = c  # a daughter if it divides, else overwritten
        tail += np.uint64(m < tab[0, c])
    rs[0] = s0
    rs[1] = s1
    rs[2] = s2
    rs[3] = s3
    nu = np.uint64(n)
    nd = tail - nu
    for j in range(nd):
        cells[w + j] = cells[nu + j]
    m = np.int64(w + nd)
    ev[EV_DIV] += np.int64(nd)
    ev[EV_DEATH] += n - np.int64(w)  # deaths and cells that joined the counts
    # the survivors' phases and classes, counted apart (cheaper than counting in the loop)
    na = 0
    nres = 0
    res_low = res_code - 1  # the resistant class's codes are res_code - 1 and res_code
    for i in range(m):
        na += cells[i] & 1
        nres += cells[i] >= res_low
    cnt[0] = m - na
    cnt[1] = na
    cnt[2] = nres
    return m


@njit(cache=True)
def _leukemic_counts(counts, thr, q_act, res_class, p, ap, rs, ev, pend):
    """One step of the leukemic cells held as counts (per phase and class): conditional
    binomials of the fates from the start-of-step counts. Returns nothing; transfers into a
    phase held as agents are left in ``pend`` (phase, class) for the caller."""
    nk = counts.shape[1]
    for k in range(nk):
        xq = counts[0, k]
        ya = counts[1, k]
        if xq > 0.0:
            acts = binomial(rs, xq, q_act)
            counts[0, k] -= acts
            pend[1, k] += acts
            ev[EV_ACT] += np.int64(acts)
        if ya > 0.0 and thr[2, k] > 0.0:
            events = binomial(rs, ya, thr[2, k])
            # shares of the fates among the events: division, quiescence, death
            p_div = thr[0, k] / thr[2, k]
            divs = binomial(rs, events, min(p_div, 1.0))
            rest = events - divs
            p_deact = (thr[1, k] - thr[0, k]) / (thr[2, k] - thr[0, k]) if rest > 0.0 else 0.0
            deact = binomial(rs, rest, min(max(p_deact, 0.0), 1.0))
            deaths = rest - deact
            muts = binomial(rs, divs, ap[MU_RES]) if ap[MU_RES] > 0.0 else 0.0
            counts[1, k] += divs - muts - deact - deaths
            counts[1, res_class] += muts
            pend[0, k] += deact
            ev[EV_DIV] += np.int64(divs)
            ev[EV_DEACT] += np.int64(deact)
            ev[EV_DEATH] += np.int64(deaths)
            ev[EV_MUT] += np.int64(muts)


@njit(cache=True)
def _fields(cells, cpos, n, te, tpos, nt, nka, npos, nnk, one_minus_b, L, fld):
    """Lattice: per-site active cells, functional T cells and NK activation, and their 3 x 3
    neighbourhood sums (periodic)."""
    S = L * L
    for r in range(3):
        for s in range(S):
            fld[r, s] = 0.0
    for i in range(n):
        if cells[i] & 1:
            fld[F_Y, cpos[i]] += 1.0
    for j in range(nt):
        fld[F_TF, tpos[j]] += 1.0 - te[j] * one_minus_b
    for j in range(nnk):
        fld[F_NA, npos[j]] += nka[j]
    for r in range(3):
        for row in range(L):
            for col in range(L):
                acc = 0.0
                for dr in range(-1, 2):
                    rr = (row + dr) % L
                    for dc in range(-1, 2):
                        acc += fld[r, rr * L + (col + dc) % L]
                fld[3 + r, row * L + col] = acc


@njit(cache=True, inline="always")
def _neighbour(site, L, u):
    """The site of the 3 x 3 neighbourhood (itself included) picked by a uniform u."""
    o = min(int(u * 9.0), 8)
    row = site // L
    col = site - row * L
    return ((row + o // 3 - 1) % L) * L + (col + o % 3 - 1) % L


@njit(cache=True)
def _leukemic_lattice(cells, cpos, n, cap, niche, fld, L, p, ap, drive, cls, dt, res_code, rs,
                      ev, cnt):  # fmt: skip
    """One step of every leukemic agent on the lattice (rules in the module docstring).
    Returns the new number of agents, or -1 when the buffer would overflow."""
    S = L * L
    scale = S / 9.0
    vol = ap[NK_VOLUME]
    I_ifn = drive[_dv.IFN]
    q_act = -math.expm1(-p[P_XY] * (1.0 + p[ALPHA_I] * I_ifn) * dt)
    w = 0
    tail = n
    nq = 0
    na = 0
    nres = 0
    for i in range(n):
        c = cells[i]
        k = c >> 1
        site = cpos[i]
        u = _rng.uniform(rs)
        if c & 1:
            free = -1
            start = int(_rng.uniform(rs) * 9.0)
            for o in range(9):
                oo = (start + o) % 9
                sn = _neighbour(site, L, (oo + 0.5) / 9.0)
                if niche[sn] == NICHE_FREE:
                    free = sn
                    break
            deact = p[P_YX] if free >= 0 else 0.0
            death = (
                p[P_Y] * fld[F_YNB, site] * scale / p[K_Y]
                + p[E_TKI] * drive[_dv.TKI] * cls[k]
                + p[M_KILL] * fld[F_TFNB, site] * scale
                + p[M_N] * fld[F_NANB, site] * scale / vol
                + p[K_IY] * I_ifn
            )
            lam = p[P_Y] + deact + death
            q = -math.expm1(-lam * dt) if lam > 0.0 else 0.0
            t_div = q * p[P_Y] / lam if lam > 0.0 else 0.0
            t_deact = t_div + (q * deact / lam if lam > 0.0 else 0.0)
            if u < t_div:
                if tail >= cap:
                    return -1
                cells[w] = c
                cpos[w] = site
                w += 1
                d = c
                if u < t_div * ap[MU_RES]:
                    d = res_code
                    ev[EV_MUT] += 1
                cells[tail] = d
                cpos[tail] = _neighbour(site, L, _rng.uniform(rs))
                tail += 1
                ev[EV_DIV] += 1
                na += 2
                nres += (k == res_code >> 1) + (d == res_code)
            elif u < t_deact:
                niche[free] = NICHE_TAKEN
                cells[w] = c ^ 1
                cpos[w] = free
                w += 1
                nq += 1
                nres += k == res_code >> 1
                ev[EV_DEACT] += 1
            elif u < q:
                ev[EV_DEATH] += 1
            else:
                cells[w] = c
                cpos[w] = site
                w += 1
                na += 1
                nres += k == res_code >> 1
        else:
            cpos[w] = site
            if u < q_act:
                niche[site] = NICHE_FREE
                cells[w] = c | 1
                na += 1
                ev[EV_ACT] += 1
            else:
                cells[w] = c
                nq += 1
            nres += k == res_code >> 1
            w += 1
    nd = tail - n
    for j in range(nd):
        cells[w + j] = cells[n + j]
        cpos[w + j] = cpos[n + j]
    cnt[0] = nq
    cnt[1] = na
    cnt[2] = nres
    return w + nd


@njit(cache=True)
def _tcells(te, tpos, nt, cap, p, drive, dt, Y, L, fld, rs, ev):
    """One step of the effector T cells (well mixed if L = 0). Returns the new count, or -1 on
    overflow."""
    B = drive[_dv.PD1]
    vac = drive[_dv.VACCINE]
    a = p[A]
    den = p[K_Z] * p[K_Z] + Y * Y
    win = p[P_Z] * Y / den if den > 0.0 else 0.0
    alpha = p[K_EX] * Y / (Y + p[K_EXH])
    lam_e = alpha + p[DELTA_E]
    e_inf = alpha / lam_e if lam_e > 0.0 else 0.0
    rho = math.exp(-lam_e * dt)
    S = L * L
    scale = S / 9.0 / den if (L > 0 and den > 0.0) else 0.0
    w = 0
    tail = nt
    e_prev = -1.0
    q = 0.0
    q_death = 0.0
    site = 0
    s0 = rs[0]
    s1 = rs[1]
    s2 = rs[2]
    s3 = rs[3]
    for j in range(nt):
        e = te[j]
        if L > 0:
            site = tpos[j]
        # well mixed, the fates depend on e only, shared by a birth cohort (one run of cells)
        if L > 0 or e != e_prev:
            f = 1.0 - e * (1.0 - B)
            g = p[P_Z] * fld[F_YNB, site] * scale if L > 0 else win
            lam = a + g * f
            q = -math.expm1(-lam * dt) if lam > 0.0 else 0.0
            q_death = q * a / lam
            e_prev = e
        m, s0, s1, s2, s3 = _next53(s0, s1, s2, s3)
        u = np.float64(m) * _TWO_M53
        if u < q_death:
            ev[EV_TDEATH] += 1
            continue
        te[w] = e_inf + (e - e_inf) * rho
        if L > 0:
            m, s0, s1, s2, s3 = _next53(s0, s1, s2, s3)
            tpos[w] = _neighbour(site, L, np.float64(m) * _TWO_M53)
        w += 1
        if u < q:
            if tail >= cap:
                rs[0] = s0
                rs[1] = s1
                rs[2] = s2
                rs[3] = s3
                return -1
            te[tail] = 0.0
            if L > 0:
                tpos[tail] = site
            tail += 1
            ev[EV_TDIV] += 1
    rs[0] = s0
    rs[1] = s1
    rs[2] = s2
    rs[3] = s3
    nd = tail - nt
    for j in range(nd):
        te[w + j] = te[nt + j]
        if L > 0:
            tpos[w + j] = tpos[nt + j]
    m = w + nd
    r_in = p[R_Z] * (1.0 + vac)
    mean_in = r_in * (-math.expm1(-a * dt)) / a if a > 0.0 else r_in * dt
    k_in = _rng.poisson(rs, mean_in)
    if m + k_in > cap:
        return -1
    for j in range(k_in):
        te[m + j] = 0.0
        if L > 0:
            tpos[m + j] = min(int(_rng.uniform(rs) * S), S - 1)
    ev[EV_TIN] += k_in
    return m + k_in


@njit(cache=True)
def _tcell_cohorts(tc_e, tc_n, ncoh, cap, p, drive, dt, Y, rs, ev):
    """One step of the T cells held as birth cohorts (exhaustion ``tc_e``, count ``tc_n``):
    per cohort, deaths ~ Bin(n, q a/lam) and expansions of the survivors ~ Bin(n - deaths,
    (q - q a/lam)/(1 - q a/lam)), as the agents' competing fates; the unexhausted newborns and
    the influx form one new cohort. Returns the new number of cohorts, or -1 on overflow."""
    B = drive[_dv.PD1]
    a = p[A]
    den = p[K_Z] * p[K_Z] + Y * Y
    win = p[P_Z] * Y / den if den > 0.0 else 0.0
    alpha = p[K_EX] * Y / (Y + p[K_EXH])
    lam_e = alpha + p[DELTA_E]
    e_inf = alpha / lam_e if lam_e > 0.0 else 0.0
    rho = math.exp(-lam_e * dt)
    w = 0
    born = 0.0
    for c in range(ncoh):
        e = tc_e[c]
        n = tc_n[c]
        f = 1.0 - e * (1.0 - B)
        lam = a + win * f
        q = -math.expm1(-lam * dt) if lam > 0.0 else 0.0
        pd = q * a / lam if lam > 0.0 else 0.0
        deaths = binomial(rs, n, pd)
        alive = n - deaths
        pe = (q - pd) / (1.0 - pd) if pd < 1.0 else 0.0
        expand = binomial(rs, alive, min(max(pe, 0.0), 1.0))
        ev[EV_TDEATH] += np.int64(deaths)
        ev[EV_TDIV] += np.int64(expand)
        born += expand
        if alive > 0.0:
            tc_e[w] = e_inf + (e - e_inf) * rho
            tc_n[w] = alive
            w += 1
    r_in = p[R_Z] * (1.0 + drive[_dv.VACCINE])
    mean_in = r_in * (-math.expm1(-a * dt)) / a if a > 0.0 else r_in * dt
    k_in = _rng.poisson(rs, mean_in)
    ev[EV_TIN] += k_in
    born += k_in
    if born > 0.0:
        if w >= cap:
            return -1
        tc_e[w] = 0.0
        tc_n[w] = born
        w += 1
    return w


@njit(cache=True)
def _t_representation(ws, ctl):
    """T cells: cohorts above ``max_t_agents`` (agents grouped by their exact exhaustion), agents
    below an eighth of it (well mixed only)."""
    te = ws[3]
    ix = ws[9]
    tc_e = ws[12]
    tc_n = ws[13]
    max_t = ctl[C_MAX_T_AGENTS]
    if ix[IX_MODE_T] == MODE_AGENTS and ix[IX_NT] > max_t:
        vals = np.sort(te[: ix[IX_NT]])
        m = 0
        for j in range(vals.shape[0]):
            if m > 0 and vals[j] == tc_e[m - 1]:
                tc_n[m - 1] += 1.0
            else:
                if m >= tc_e.shape[0]:
                    return
                tc_e[m] = vals[j]
                tc_n[m] = 1.0
                m += 1
        ix[IX_NCOH] = m
        ix[IX_NT] = 0
        ix[IX_MODE_T] = MODE_COUNTS
    elif ix[IX_MODE_T] == MODE_COUNTS:
        z = 0.0
        for c in range(ix[IX_NCOH]):
            z += tc_n[c]
        if z < max_t * EXPAND_BELOW and z <= te.shape[0]:
            m = 0
            for c in range(ix[IX_NCOH]):
                for _ in range(int(tc_n[c])):
                    te[m] = tc_e[c]
                    m += 1
            ix[IX_NT] = m
            ix[IX_NCOH] = 0
            ix[IX_MODE_T] = MODE_AGENTS


@njit(cache=True)
def _nkcells(nka, npos, nnk, cap, p, ap, drive, dt, Y, L, rs, ev):
    """One step of the NK cells. Returns the new count, or -1 on overflow."""
    I_ifn = drive[_dv.IFN]
    target = (1.0 + p[KAPPA_N] * I_ifn) * (1.0 + drive[_dv.EXERCISE]) / (1.0 + Y / p[K_NS])
    rate = ap[NK_ACT_RATE]
    relax = 0.0 if rate == np.inf else math.exp(-rate * dt)
    d = p[D_N] * (1.0 + Y / p[K_ND])
    q = -math.expm1(-d * dt)
    S = L * L
    w = 0
    if L == 0:  # the common case, with the stream in registers (as _leukemic_agents)
        iq = np.uint64(math.ceil(q * 9007199254740992.0))
        s0 = rs[0]
        s1 = rs[1]
        s2 = rs[2]
        s3 = rs[3]
        for j in range(nnk):
            m, s0, s1, s2, s3 = _next53(s0, s1, s2, s3)
            nka[w] = target + (nka[j] - target) * relax  # kept if it survives
            w += m >= iq
        rs[0] = s0
        rs[1] = s1
        rs[2] = s2
        rs[3] = s3
        ev[EV_NKDEATH] += nnk - w
    else:
        for j in range(nnk):
            u = _rng.uniform(rs)
            if u < q:
                ev[EV_NKDEATH] += 1
                continue
            nka[w] = target + (nka[j] - target) * relax
            npos[w] = _neighbour(npos[j], L, _rng.uniform(rs))
            w += 1
    c = p[S_N] * (1.0 + p[SIGMA_N] * I_ifn) * ap[NK_VOLUME]
    mean_in = c * q / d if d > 0.0 else c * dt
    k_in = _rng.poisson(rs, mean_in)
    if w + k_in > cap:
        return -1
    for j in range(k_in):
        nka[w + j] = target
        if L > 0:
            npos[w + j] = min(int(_rng.uniform(rs) * S), S - 1)
    ev[EV_NKBIRTH] += k_in
    return w + k_in


@njit(cache=True)
def _collapse(cells, n, phase, counts):
    """Move every agent of ``phase`` into the per-class counts; returns the agents left."""
    w = 0
    for i in range(n):
        c = cells[i]
        if (c & 1) == phase:
            counts[phase, c >> 1] += 1.0
        else:
            cells[w] = c
            w += 1
    return w


@njit(cache=True)
def _expand(cells, n, phase, counts):
    """Turn the per-class counts of ``phase`` into agents appended at n; returns the count."""
    for k in range(counts.shape[1]):
        m = int(counts[phase, k])
        code = (k << 1) | phase
        for _ in range(m):
            cells[n] = code
            n += 1
        counts[phase, k] = 0.0
    return n


@njit(cache=True)
def observe(ws, ap, out):
    """X, Y, Z, mean exhaustion, N (cells/µL) and resistant cells of a state into ``out``."""
    counts = ws[2]
    te = ws[3]
    ix = ws[9]
    res = counts.shape[1] - 1
    X = float(ix[IX_NQ])
    Y = float(ix[IX_NA])
    for k in range(counts.shape[1]):
        X += counts[0, k]
        Y += counts[1, k]
    nt = ix[IX_NT]
    se = 0.0
    for j in range(nt):
        se += te[j]
    z = float(nt)
    tc_e = ws[12]
    tc_n = ws[13]
    for c in range(ix[IX_NCOH]):
        z += tc_n[c]
        se += tc_n[c] * tc_e[c]
    out[0] = X
    out[1] = Y
    out[2] = z
    out[3] = se / z if z > 0 else 0.0
    out[4] = ix[IX_NNK] / ap[NK_VOLUME]
    out[5] = ix[IX_NRES] + counts[0, res] + counts[1, res]


@njit(cache=True)
def _sum(x, n):
    """x[0] + ... + x[n-1] as four interleaved partial sums: four adds in flight where a serial
    sum waits on each, in a fixed order (the same on every machine, unlike fastmath)."""
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    m = n - n % 4
    for j in range(0, m, 4):
        a0 += x[j]
        a1 += x[j + 1]
        a2 += x[j + 2]
        a3 += x[j + 3]
    for j in range(m, n):
        a0 += x[j]
    return (a0 + a1) + (a2 + a3)


@njit(cache=True)
def step(ws, p, ap, drive, ctl, ev, thr, pend, cnt):
    """Advance one patient by one step of ``ctl[C_DT]`` days (see the module docstring).

    ``ws`` is the state tuple of :func:`new_state`; ``thr`` (4, K+1), ``pend`` (2, K+1) and
    ``cnt`` (3,) are scratch. Returns False when a buffer overflowed (the state is then left
    as it was at the overflow and ``ix[IX_FAIL]`` is set).
    """
    cells, cpos, counts, te, tpos, nka, npos, niche, fld, ix, cls, rs = ws[:12]
    dt = ctl[C_DT]
    L = int(ctl[C_LATTICE])
    res_class = cls.shape[0] - 1
    res_code = (res_class << 1) | 1
    n = ix[IX_NCELL]
    nt = ix[IX_NT]
    nnk = ix[IX_NNK]
    B = drive[_dv.PD1]
    X = float(ix[IX_NQ])
    Y = float(ix[IX_NA])
    for k in range(counts.shape[1]):
        X += counts[0, k]
        Y += counts[1, k]
    phi_z = 0.0
    for j in range(nt):
        phi_z += 1.0 - te[j] * (1.0 - B)
    tc_e = ws[12]
    tc_n = ws[13]
    for c in range(ix[IX_NCOH]):
        phi_z += tc_n[c] * (1.0 - tc_e[c] * (1.0 - B))
    sig_a = _sum(nka, nnk)
    ix[IX_UPDATES] += n + nt + nnk + ix[IX_NCOH]
    if L > 0:
        _fields(cells, cpos, n, te, tpos, nt, nka, npos, nnk, 1.0 - B, L, fld)
        m = _leukemic_lattice(cells, cpos, n, cells.shape[0], niche, fld, L, p, ap, drive, cls,
                              dt, res_code, rs, ev, cnt)  # fmt: skip
        if m < 0:
            ix[IX_FAIL] = 1
            return False
    else:
        q_act = _rates(p, ap, drive, cls, dt, Y, phi_z, sig_a, thr)
        pend[:, :] = 0.0
        if ix[IX_MODE_Q] == MODE_COUNTS or ix[IX_MODE_A] == MODE_COUNTS:
            _leukemic_counts(counts, thr, q_act, res_class, p, ap, rs, ev, pend)
        m = _leukemic_agents(cells, n, thr, q_act, res_code, ix[IX_MODE_Q], ix[IX_MODE_A],
                             counts, rs, ev, cnt)  # fmt: skip
        # transfers from counts into a phase held as agents (or back to its counts)
        for ph in range(2):
            tot = 0.0
            for k in range(pend.shape[1]):
                tot += pend[ph, k]
            if tot == 0.0:
                continue
            mode = ix[IX_MODE_Q] if ph == 0 else ix[IX_MODE_A]
            if mode == MODE_AGENTS and m + tot <= cells.shape[0]:
                for k in range(pend.shape[1]):
                    code = (k << 1) | ph
                    for _i in range(int(pend[ph, k])):
                        cells[m] = code
                        m += 1
                        cnt[ph] += 1
                        if k == res_class:
                            cnt[2] += 1
            else:
                if mode == MODE_AGENTS:  # too many to hold: this phase becomes counts
                    m = _collapse(cells, m, ph, counts)
                    cnt[ph] = 0
                    cnt[2] = _count_res(cells, m, res_class)
                    if ph == 0:
                        ix[IX_MODE_Q] = MODE_COUNTS
                    else:
                        ix[IX_MODE_A] = MODE_COUNTS
                for k in range(pend.shape[1]):
                    counts[ph, k] += pend[ph, k]
    ix[IX_NCELL] = m
    ix[IX_NQ] = cnt[0]
    ix[IX_NA] = cnt[1]
    ix[IX_NRES] = cnt[2]
    if ix[IX_MODE_T] == MODE_COUNTS:
        mc = _tcell_cohorts(tc_e, tc_n, ix[IX_NCOH], tc_e.shape[0], p, drive, dt, Y, rs, ev)
        if mc < 0:
            ix[IX_FAIL] = 1
            return False
        ix[IX_NCOH] = mc
    else:
        mt = _tcells(te, tpos, nt, te.shape[0], p, drive, dt, Y, L, fld, rs, ev)
        if mt < 0:
            ix[IX_FAIL] = 1
            return False
        ix[IX_NT] = mt
    mn = _nkcells(nka, npos, nnk, nka.shape[0], p, ap, drive, dt, Y, L, rs, ev)
    if mn < 0:
        ix[IX_FAIL] = 1
        return False
    ix[IX_NNK] = mn
    if L == 0:
        _switch_representation(ws, ctl)
        _t_representation(ws, ctl)
    ix[IX_STEP] += 1
    return True


@njit(cache=True)
def _count_res(cells, n, res_class):
    c = 0
    for i in range(n):
        c += (cells[i] >> 1) == res_class
    return c


@njit(cache=True)
def _switch_representation(ws, ctl):
    """Counts above ``max_agents``, agents below ``max_agents / 8`` (per phase)."""
    cells = ws[0]
    counts = ws[2]
    ix = ws[9]
    cls = ws[10]
    res_class = cls.shape[0] - 1
    max_agents = ctl[C_MAX_AGENTS]
    for ph in range(2):
        key = IX_NQ if ph == 0 else IX_NA
        mkey = IX_MODE_Q if ph == 0 else IX_MODE_A
        if ix[mkey] == MODE_AGENTS and ix[key] > max_agents:
            ix[IX_NCELL] = _collapse(cells, ix[IX_NCELL], ph, counts)
            ix[key] = 0
            ix[IX_NRES] = _count_res(cells, ix[IX_NCELL], res_class)
            ix[mkey] = MODE_COUNTS
        elif ix[mkey] == MODE_COUNTS:
            tot = 0.0
            for k in range(counts.shape[1]):
                tot += counts[ph, k]
            if tot < max_agents * EXPAND_BELOW and ix[IX_NCELL] + tot <= cells.shape[0]:
                res_add = counts[ph, res_class]
                ix[IX_NCELL] = _expand(cells, ix[IX_NCELL], ph, counts)
                ix[key] += int(tot)
                ix[IX_NRES] += int(res_add)
                ix[mkey] = MODE_AGENTS


@njit(cache=True)
def _alloc(cap, cap_imm, L, cls, state):
    """The state tuple (see :func:`new_state`), uninitialised buffers of the given capacities."""
    S = L * L if L > 0 else 1
    lat = L > 0
    return (
        np.empty(cap, dtype=np.uint8),
        np.empty(cap if lat else 1, dtype=np.int32),
        np.zeros((2, cls.shape[0])),
        np.empty(cap_imm),
        np.empty(cap_imm if lat else 1, dtype=np.int32),
        np.empty(cap_imm),
        np.empty(cap_imm if lat else 1, dtype=np.int32),
        np.full(S, NICHE_NONE, dtype=np.int8),
        np.zeros((F_N, S)),
        np.zeros(IX_N, dtype=np.int64),
        cls,
        state,
        np.empty(cap_imm if not lat else 1),
        np.empty(cap_imm if not lat else 1),
    )


@njit(cache=True)
def _init(ws, x0, y0, z0, e0, nk0, target_a, ap, ctl):
    """Place the initial cells: X0 quiescent and Y0 active leukemic cells (classes uniform at
    random; counts split by sequential binomials above ``max_agents``), Z0 T cells at exhaustion
    E0, NK0 NK cells at activation ``target_a``; on the lattice, niches first, quiescent cells
    on distinct niches, the rest on uniform random sites. Returns False if the buffers or the
    niches cannot hold them (``ix[IX_FAIL]`` set)."""
    cells, cpos, counts, te, tpos, nka, npos, niche, _fld, ix, cls, rs = ws[:12]
    L = int(ctl[C_LATTICE])
    S = L * L
    K = cls.shape[0] - 1
    res_class = K
    max_agents = ctl[C_MAX_AGENTS]
    n_niche = 0
    order = np.arange(max(S, 1))
    if L > 0:
        n_niche = int(round(ap[NICHE_FRACTION] * S))  # noqa: RUF046 (numba)
        for i in range(n_niche):  # partial Fisher-Yates: the first n_niche of a random order
            j = i + min(int(_rng.uniform(rs) * (S - i)), S - i - 1)
            tmp = order[i]
            order[i] = order[j]
            order[j] = tmp
            niche[order[i]] = NICHE_FREE
    n = 0
    nres = 0
    for phase in range(2):
        total = x0 if phase == 0 else y0
        mode = MODE_COUNTS if (L == 0 and total > max_agents) else MODE_AGENTS
        ix[IX_MODE_Q if phase == 0 else IX_MODE_A] = mode
        if mode == MODE_COUNTS:
            rem = total
            for k in range(K - 1):
                c = binomial(rs, rem, 1.0 / (K - k))
                counts[phase, k] = c
                rem -= c
            counts[phase, K - 1] = rem
            continue
        m = int(total)
        if n + m > cells.shape[0] or (L > 0 and phase == 0 and m > n_niche):
            ix[IX_FAIL] = 1
            return False
        for i in range(m):
            k = min(int(_rng.uniform(rs) * K), K - 1) if K > 1 else 0
            cells[n] = (k << 1) | phase
            if L > 0:
                if phase == 0:
                    cpos[n] = order[i]
                    niche[order[i]] = NICHE_TAKEN
                else:
                    cpos[n] = min(int(_rng.uniform(rs) * S), S - 1)
            nres += k == res_class
            n += 1
        ix[IX_NQ if phase == 0 else IX_NA] = m
    ix[IX_NCELL] = n
    ix[IX_NRES] = nres
    nz = int(z0)
    nn = int(nk0)
    if L == 0 and nz > ctl[C_MAX_T_AGENTS]:  # one birth cohort at E0
        ws[12][0] = e0
        ws[13][0] = z0
        ix[IX_NCOH] = 1
        ix[IX_MODE_T] = MODE_COUNTS
        nz = 0
    if nz > te.shape[0] or nn > nka.shape[0]:
        ix[IX_FAIL] = 1
        return False
    for j in range(nz):
        te[j] = e0
        if L > 0:
            tpos[j] = min(int(_rng.uniform(rs) * S), S - 1)
    for j in range(nn):
        nka[j] = target_a
        if L > 0:
            npos[j] = min(int(_rng.uniform(rs) * S), S - 1)
    ix[IX_NT] = nz
    ix[IX_NNK] = nn
    ix[IX_NCLASS] = K + 1
    return True


@njit(cache=True)
def _milestones(t, obs, post_stop, relapse_y, summary):
    """Eradication (X = Y = 0), first Y = 0, lowest Y, first resistant cell, relapse."""
    if obs[1] == 0.0 and np.isnan(summary[SM_T_Y0]):
        summary[SM_T_Y0] = t
    if obs[1] < summary[SM_MIN_Y]:
        summary[SM_MIN_Y] = obs[1]
    if obs[0] == 0.0 and obs[1] == 0.0 and np.isnan(summary[SM_T_ERAD]):
        summary[SM_T_ERAD] = t
    if obs[5] > 0.0 and np.isnan(summary[SM_T_RESIST]):
        summary[SM_T_RESIST] = t
    if post_stop and obs[1] > relapse_y and np.isnan(summary[SM_T_RELAPSE]):
        summary[SM_T_RELAPSE] = t


@njit(cache=True)
def simulate_one(
    y0, p, ap, cls, drive_on, drive_off, stop_time, horizon, ctl, t_out, state, y_out, summary,
    ev, updates,
):  # fmt: skip
    """One patient from t = 0 to ``horizon`` in steps of ``ctl[C_DT]``.

    Parameters
    ----------
    y0 : float64 (6,)
        Initial quiescent and active leukemic cells, T cells, exhaustion E0, NK cells (agents,
        not cells/µL) and their activation.
    p, ap : float64 arrays
        ``cml_immune`` parameters (already at the cell scale) and :data:`ABM_PARAMS` values.
    cls : float64 (K+1,)
        Sensitivity of each class (:func:`class_sensitivities`).
    drive_on, drive_off : float64 (N_DRIVE,)
        Drive of the steps starting before ``stop_time`` and of the later ones.
    t_out : float64 array
        Output times; ``y_out`` (n_out, N_OUT) receives the state of the last step boundary at
        or before each (the process is constant between steps).
    state : uint64[4]
        This patient's stream. ``summary`` (SM_N, NaN-initialised), ``ev`` (EV_N, zeroed) and
        ``updates`` (1,) are filled in place.
    """
    cap = int(4 * ctl[C_MAX_AGENTS]) + 64
    L = int(ctl[C_LATTICE])
    ws = _alloc(cap, int(ctl[C_CAP_IMMUNE]), L, cls, state)
    ix = ws[9]
    dt = ctl[C_DT]
    obs = np.empty(N_OUT)
    nc = cls.shape[0]
    thr = np.zeros((4, nc))
    pend = np.zeros((2, nc))
    cnt = np.zeros(3, dtype=np.int64)
    relapse_y = ctl[C_RELAPSE] * p[K_Y]
    if not _init(ws, y0[0], y0[1], y0[2], y0[3], y0[4], y0[5], ap, ctl):
        summary[SM_OVERFLOW] = 0.0
        return
    n_steps = int(math.ceil(horizon / dt - 1e-9))  # noqa: RUF046 (numba)
    n_out = t_out.shape[0]
    io = 0
    observe(ws, ap, obs)
    summary[SM_MIN_Y] = obs[1]
    post = stop_time <= 0.0
    _milestones(0.0, obs, post, relapse_y, summary)
    if post:
        summary[SM_X_STOP] = obs[0]
        summary[SM_Y_STOP] = obs[1]
        summary[SM_Z_STOP] = obs[2]
    for k in range(n_steps + 1):
        t = k * dt
        while io < n_out and (t_out[io] < t + dt * (1.0 - 1e-9) or k == n_steps):
            for i in range(N_OUT):
                y_out[io, i] = obs[i]
            io += 1
        if k == n_steps:
            break
        drive = drive_on if t < stop_time - 1e-9 * dt else drive_off
        if not step(ws, p, ap, drive, ctl, ev, thr, pend, cnt):
            summary[SM_OVERFLOW] = t
            break
        t1 = (k + 1) * dt
        observe(ws, ap, obs)
        if not post and t1 >= stop_time - 1e-9 * dt:
            post = True
            summary[SM_X_STOP] = obs[0]
            summary[SM_Y_STOP] = obs[1]
            summary[SM_Z_STOP] = obs[2]
        _milestones(t1, obs, post, relapse_y, summary)
    updates[0] = ix[IX_UPDATES]


@njit(cache=True, parallel=True)
def simulate_cohort(
    y0s, ps, aps, clss, drive_on_, drive_off_, stop_time_, horizon_, ctl_, times, streams, ys,
    summaries, events, n_updates,
):  # fmt: skip
    """:func:`simulate_one` for every patient in parallel (``prange``); patient j uses only
    ``streams[j]`` and row j of the outputs, so results do not depend on the thread count.
    (Argument names differ from :func:`simulate_one`'s, as numba's parfor lowering needs.)"""
    for j in prange(y0s.shape[0]):
        simulate_one(
            y0s[j], ps[j], aps[j], clss[j], drive_on_, drive_off_, stop_time_, horizon_, ctl_,
            times, streams[j], ys[j], summaries[j], events[j], n_updates[j],
        )  # fmt: skip


@njit(cache=True)
def advance(ws, p, ap, drive_on, drive_off, stop_time, ctl, ev, thr, pend, cnt, n_steps):
    """Advance a state made by :func:`new_state` by ``n_steps`` steps (the Mesa front end's
    ``step``); the drive switches at ``stop_time``. Returns False on overflow."""
    ix = ws[9]
    dt = ctl[C_DT]
    for _ in range(n_steps):
        t = ix[IX_STEP] * dt
        drive = drive_on if t < stop_time - 1e-9 * dt else drive_off
        if not step(ws, p, ap, drive, ctl, ev, thr, pend, cnt):
            return False
    return True


@njit(cache=True)
def new_state(y0, ap, cls, ctl, state):
    """An initialised state tuple ``(cells, cell_site, counts, t_exhaustion, t_site,
    nk_activation, nk_site, niche, fields, ix, class_sensitivity, stream)`` for
    :func:`advance` (``ix[IX_FAIL]`` is 1 if the initial cells do not fit)."""
    ws = _alloc(int(4 * ctl[C_MAX_AGENTS]) + 64, int(ctl[C_CAP_IMMUNE]), int(ctl[C_LATTICE]),
                cls, state)  # fmt: skip
    _init(ws, y0[0], y0[1], y0[2], y0[3], y0[4], y0[5], ap, ctl)
    return ws


# ----------------------------------------------------------------------------- Python API


def class_sensitivities(sd_log: float, resist_factor: float, n_sens: int) -> np.ndarray:
    r"""TKI sensitivity of each class: :math:`K` lognormal quantile midpoints of mean 1, then the
    resistant class.

    .. math:: s_k = \frac{e^{\sigma z_k}}{\frac1K\sum_l e^{\sigma z_l}},\quad
              z_k = \Phi^{-1}\!\left(\frac{k + 1/2}{K}\right),\qquad s_K = \text{resist\_factor}

    (one class of sensitivity 1 when :math:`\sigma = 0`).
    """
    from scipy.special import ndtri

    K = 1 if sd_log == 0 else int(n_sens)
    if not 1 <= K <= 126:
        raise ValueError(f"n_sens must be in [1, 126], found {n_sens}")
    z = ndtri((np.arange(K) + 0.5) / K)
    s = np.exp(sd_log * z)
    return np.concatenate([s / s.mean(), [float(resist_factor)]])


def control_vector(
    dt: float = DEFAULT_DT,
    max_agents: int = DEFAULT_MAX_AGENTS,
    lattice: int = 0,
    n_sens: int = DEFAULT_N_SENS,
    relapse_level: float = RELAPSE_LEVEL,
    cap_immune: int = DEFAULT_CAP_IMMUNE,
    max_t_agents: int = DEFAULT_MAX_T_AGENTS,
) -> np.ndarray:
    """The kernel's control vector (``C_*`` entries), validated."""
    if not 0 < dt <= 30:
        raise ValueError(f"dt must be in (0, 30] days, found {dt}")
    if not 1 <= max_agents <= 1 << 28:
        raise ValueError(f"max_agents must be in [1, 2**28], found {max_agents}")
    if not (lattice == 0 or 3 <= lattice <= 4096):
        raise ValueError(
            f"lattice must be 0 (well mixed) or a side of 3..4096 sites, found {lattice}"
        )
    if not 1 <= cap_immune <= 1 << 28:
        raise ValueError(f"cap_immune must be in [1, 2**28], found {cap_immune}")
    ctl = np.zeros(C_N)
    ctl[C_DT] = dt
    ctl[C_MAX_AGENTS] = int(max_agents)
    ctl[C_LATTICE] = int(lattice)
    ctl[C_N_SENS] = int(n_sens)
    ctl[C_RELAPSE] = relapse_level
    ctl[C_CAP_IMMUNE] = int(cap_immune)
    if not 1 <= max_t_agents <= 1 << 28:
        raise ValueError(f"max_t_agents must be in [1, 2**28], found {max_t_agents}")
    ctl[C_MAX_T_AGENTS] = int(max_t_agents)
    return ctl


def abm_vector(abm: dict | np.ndarray | None = None) -> np.ndarray:
    """:data:`ABM_PARAMS` values: defaults with overrides by name, or a vector as given."""
    if abm is None or isinstance(abm, dict):
        return ABM_PARAMS.vector(abm or {})
    v = np.asarray(abm, dtype=np.float64)
    if v.shape != (len(ABM_PARAMS),):
        raise ValueError(f"abm parameters must have {len(ABM_PARAMS)} entries, found {v.shape}")
    return v


def initial_agents(p: np.ndarray, ap: np.ndarray, y0: np.ndarray | None = None) -> np.ndarray:
    """Initial (X0, Y0, Z0, E0, NK agents, NK activation) from a ``cml_immune`` state.

    ``y0`` (X, Y, Z, E, N) defaults to :func:`sim.models.cml_immune.initial_state` of ``p``
    (already at the cell scale); X, Y, Z are rounded to whole cells, NK agents are
    round(N x nk_volume), and the activation is the ODE's :math:`A_N` at Y0 without drive.
    """
    from sim.engines.stochastic import integer_state

    y = _cm.initial_state(p) if y0 is None else np.asarray(y0, dtype=np.float64)
    y = integer_state(y)
    nk = math.floor(y[4] * ap[NK_VOLUME] + 0.5)
    act = 1.0 / (1.0 + y[1] / p[K_NS])
    return np.array([y[0], y[1], y[2], y[3], nk, act], dtype=np.float64)


def _drives(u_tki, drive_on, drive_off):
    if drive_on is None:
        drive_on = np.zeros(_dv.N_DRIVE)
        drive_on[_dv.TKI] = u_tki
    if drive_off is None:
        drive_off = np.zeros(_dv.N_DRIVE)
    return (np.ascontiguousarray(drive_on, dtype=np.float64),
            np.ascontiguousarray(drive_off, dtype=np.float64))  # fmt: skip


def simulate_abm(
    params: np.ndarray,
    abm: dict | np.ndarray | None = None,
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
    dt: float = DEFAULT_DT,
    max_agents: int = DEFAULT_MAX_AGENTS,
    lattice: int = 0,
    n_sens: int = DEFAULT_N_SENS,
    relapse_level: float = RELAPSE_LEVEL,
    cap_immune: int = DEFAULT_CAP_IMMUNE,
    max_t_agents: int = DEFAULT_MAX_T_AGENTS,
) -> dict[str, np.ndarray]:
    """Run ``n`` independent patients of the agent engine (in parallel over patients).

    Parameters
    ----------
    params : numpy.ndarray
        ``cml_immune`` parameters (internal units, cell scale 1), or ``(n, n_param)``.
    abm : dict or numpy.ndarray, optional
        :data:`ABM_PARAMS` overrides by name, or a full vector (or ``(n, len)`` matrix). The
        cell scale multiplies the leukemic scale of ``params``
        (:func:`sim.engines.stochastic.scale_cells`).
    y0 : numpy.ndarray, optional
        Initial (X, Y, Z, E, N) in cells at the chosen scale (N in cells/µL); default the
        model's quasi-equilibrium at diagnosis (:func:`initial_agents`).
    stop_time, horizon : float
        Fixed TKI stop (days; ``inf`` = never) and end time.
    seed, n : int
        Master seed (patient i uses stream i of :func:`sim.engines.rng.seed_states`) and the
        number of patients.
    t_out : numpy.ndarray, optional
        Output times (default every 7 days and the horizon).
    u_tki, drive_on, drive_off
        As :func:`sim.engines.stochastic.simulate_stochastic`.
    dt, max_agents, lattice, n_sens, relapse_level, cap_immune, max_t_agents
        Step (days), agents per phase before counts take over, lattice side (0 = well mixed),
        sensitivity classes (when ``sens_sd_log`` > 0), relapse level (Y/K_y), the capacity
        of the T-cell and NK buffers, and T-cell agents before birth cohorts take over.

    Returns
    -------
    dict
        ``t``, ``y`` (n, n_t, 6: X, Y, Z, E, N, resistant cells), ``eradicated``,
        ``t_eradication``, ``relapsed``, ``t_relapse``, ``state_at_stop`` (n, 3), ``min_y``,
        ``t_y_zero``, ``t_resistant``, ``overflow`` (bool), ``events`` (n, EV_N; names in
        :data:`EVENTS`), ``updates`` (agent updates per patient), ``params`` (scaled), ``y0``.
    """
    from sim.engines.stochastic import scale_cells

    if n < 1:
        raise ValueError(f"n must be >= 1, found {n}")
    if not horizon > 0:
        raise ValueError(f"horizon must be > 0 days, found {horizon}")
    ctl = control_vector(dt, max_agents, lattice, n_sens, relapse_level, cap_immune, max_t_agents)
    params = np.asarray(params, dtype=np.float64)
    ps = np.array(np.broadcast_to(params, (n, params.shape[-1])), dtype=np.float64)
    if isinstance(abm, np.ndarray) and abm.ndim == 2:
        aps = np.ascontiguousarray(abm, dtype=np.float64)
    else:
        aps = np.tile(abm_vector(abm), (n, 1))
    if aps.shape[0] != n:
        raise ValueError(f"abm matrix has {aps.shape[0]} rows for {n} patients")
    for i in range(n):
        if aps[i, CELL_SCALE] != 1.0:
            ps[i] = scale_cells(ps[i], aps[i, CELL_SCALE])
    if y0 is None:
        y0s = np.array([initial_agents(ps[i], aps[i]) for i in range(n)])
    else:
        y0 = np.broadcast_to(np.asarray(y0, dtype=np.float64), (n, 5))
        y0s = np.array([initial_agents(ps[i], aps[i], y0[i]) for i in range(n)])
    if lattice:
        n_niche = round(float(aps[0, NICHE_FRACTION]) * lattice * lattice)
        if np.any(y0s[:, 0] > n_niche):
            raise ValueError(
                f"lattice {lattice}x{lattice} has {n_niche} niches for up to "
                f"{int(y0s[:, 0].max())} quiescent cells: enlarge the lattice, raise "
                "niche_fraction or lower cell_scale"
            )
        if np.any(y0s[:, 0] + y0s[:, 1] > max_agents):
            raise ValueError("the lattice holds agents only: raise max_agents or lower cell_scale")
    clss = np.array([class_sensitivities(a[SENS_SD_LOG], a[RESIST_FACTOR], n_sens) for a in aps])
    if t_out is None:
        k = int(np.floor(horizon / 7.0 + 1e-9))
        t_out = np.unique(np.concatenate([np.arange(k + 1) * 7.0, [horizon]]))
    t_out = np.ascontiguousarray(t_out, dtype=np.float64)
    if t_out.size == 0 or t_out[0] < 0 or t_out[-1] > horizon or np.any(np.diff(t_out) <= 0):
        raise ValueError("t_out must be increasing times in [0, horizon]")
    on, off = _drives(u_tki, drive_on, drive_off)
    streams = _rng.seed_states(seed, n)
    ys = np.full((n, t_out.size, N_OUT), np.nan)
    summaries = np.full((n, SM_N), np.nan)
    events = np.zeros((n, EV_N), dtype=np.int64)
    updates = np.zeros((n, 1), dtype=np.int64)
    with threads_for(n):  # no thread spinning idle beside a lone patient
        simulate_cohort(y0s, ps, aps, clss, on, off, float(stop_time), float(horizon), ctl,
                        t_out, streams, ys, summaries, events, updates)  # fmt: skip
    return {
        "t": t_out,
        "y": ys,
        "y0": y0s,
        "params": ps,
        "eradicated": ~np.isnan(summaries[:, SM_T_ERAD]),
        "t_eradication": summaries[:, SM_T_ERAD],
        "relapsed": ~np.isnan(summaries[:, SM_T_RELAPSE]),
        "t_relapse": summaries[:, SM_T_RELAPSE],
        "state_at_stop": summaries[:, SM_X_STOP : SM_Z_STOP + 1],
        "min_y": summaries[:, SM_MIN_Y],
        "t_y_zero": summaries[:, SM_T_Y0],
        "t_resistant": summaries[:, SM_T_RESIST],
        "overflow": ~np.isnan(summaries[:, SM_OVERFLOW]),
        "events": events,
        "updates": updates[:, 0],
    }


def mean_map(
    params: np.ndarray,
    abm: dict | np.ndarray | None = None,
    y0: np.ndarray | None = None,
    stop_time: float = np.inf,
    horizon: float = 3652.5,
    t_out: np.ndarray | None = None,
    *,
    u_tki: float = 1.0,
    drive_on: np.ndarray | None = None,
    drive_off: np.ndarray | None = None,
    dt: float = DEFAULT_DT,
    n_sens: int = DEFAULT_N_SENS,
) -> dict[str, np.ndarray]:
    r"""The engine's discrete-time mean map: the expected state after one step, iterated.

    With :math:`q_k, \theta^{div}_k, \theta^{qui}_k` the kernel's per-class event probability
    and thresholds (module docstring) evaluated at the *mean* state (the mean-field closure,
    exact for the linear terms and accurate to O(1/cells) for the others):

    .. math::

        Y_k' &= Y_k + Y_k\theta^{div}_k(1 - \mu) - Y_k(q_k - \theta^{div}_k) + X_k q_{act}
                \;(+ \textstyle\sum_l Y_l\theta^{div}_l\mu \text{ for the resistant class}),\\
        X_k' &= X_k(1 - q_{act}) + Y_k(\theta^{qui}_k - \theta^{div}_k),\\
        Z' &= Z(1 - q_Z a/\lambda_Z) + Z q_Z g f/\lambda_Z + r_z(1 + v)(1 - e^{-a\,dt})/a,
        \quad \lambda_Z = a + g f,\ g = p_z Y/(K_z^2 + Y^2),\ f = 1 - \bar e(1 - B),\\
        \bar e' &= \frac{Z(1 - q_Z a/\lambda_Z)\,(e_\infty + (\bar e - e_\infty)\rho)}{Z'},\\
        N_{ag}' &= N_{ag} e^{-d\,dt} + c V (1 - e^{-d\,dt})/d.

    Parameters as :func:`simulate_abm` (one patient). Returns ``t`` and ``y`` (n_t, 6) at the
    output times, in the same units as the kernel's outputs (X, Y, Z cells, E, N cells/µL,
    resistant cells).
    """
    from sim.engines.stochastic import scale_cells

    ap = abm_vector(abm)
    p = np.asarray(params, dtype=np.float64)
    if ap[CELL_SCALE] != 1.0:
        p = scale_cells(p, ap[CELL_SCALE])
    init = initial_agents(p, ap, y0)
    cls = class_sensitivities(ap[SENS_SD_LOG], ap[RESIST_FACTOR], n_sens)
    K = cls.size - 1
    X = np.zeros(K + 1)
    Yc = np.zeros(K + 1)
    X[:K] = init[0] / K
    Yc[:K] = init[1] / K
    Z, ebar, nag, act = init[2], init[3], init[4], init[5]
    on, off = _drives(u_tki, drive_on, drive_off)
    vol = ap[NK_VOLUME]
    n_steps = math.ceil(horizon / dt - 1e-9)
    if t_out is None:
        t_out = np.arange(n_steps + 1) * dt
    t_out = np.asarray(t_out, dtype=np.float64)
    traj = np.empty((n_steps + 1, N_OUT))
    for k in range(n_steps + 1):
        traj[k] = [X.sum(), Yc.sum(), Z, ebar, nag / vol, X[K] + Yc[K]]
        if k == n_steps:
            break
        d = on if k * dt < stop_time - 1e-9 * dt else off
        u, I_ifn, B, vac, ex = d
        Y = Yc.sum()
        f = 1.0 - ebar * (1.0 - B)
        death = (p[P_Y] * Y / p[K_Y] + p[E_TKI] * u * cls + p[M_KILL] * f * Z
                 + p[M_N] * act * nag / vol + p[K_IY] * I_ifn)  # fmt: skip
        lam = p[P_Y] + p[P_YX] + death
        q = -np.expm1(-lam * dt)
        with np.errstate(invalid="ignore", divide="ignore"):
            t_div = np.where(lam > 0, q * p[P_Y] / lam, 0.0)
            t_qui = np.where(lam > 0, q * p[P_YX] / lam, 0.0)
        q_act = -math.expm1(-p[P_XY] * (1.0 + p[ALPHA_I] * I_ifn) * dt)
        births = Yc * t_div
        muts = births * ap[MU_RES]
        Yn = Yc + births - muts - Yc * (q - t_div) + X * q_act
        Yn[K] += muts.sum()
        Xn = X * (1.0 - q_act) + Yc * t_qui
        g = p[P_Z] * Y / (p[K_Z] ** 2 + Y * Y) if Y > 0 or p[K_Z] > 0 else 0.0
        lz = p[A] + g * f
        qz = -math.expm1(-lz * dt) if lz > 0 else 0.0
        surv = Z * (1.0 - (qz * p[A] / lz if lz > 0 else 0.0))
        born = Z * (qz * g * f / lz if lz > 0 else 0.0)
        r_in = p[R_Z] * (1.0 + vac)
        influx = r_in * -math.expm1(-p[A] * dt) / p[A] if p[A] > 0 else r_in * dt
        alpha = p[K_EX] * Y / (Y + p[K_EXH])
        le = alpha + p[DELTA_E]
        e_inf = alpha / le if le > 0 else 0.0
        e_surv = e_inf + (ebar - e_inf) * math.exp(-le * dt)
        Zn = surv + born + influx
        ebar = surv * e_surv / Zn if Zn > 0 else 0.0
        Z = Zn
        target = (1.0 + p[KAPPA_N] * I_ifn) * (1.0 + ex) / (1.0 + Y / p[K_NS])
        rate = ap[NK_ACT_RATE]
        relax = 0.0 if rate == np.inf else math.exp(-rate * dt)
        dn = p[D_N] * (1.0 + Y / p[K_ND])
        keep = math.exp(-dn * dt)
        newborn = p[S_N] * (1.0 + p[SIGMA_N] * I_ifn) * vol * -math.expm1(-dn * dt) / dn
        act_n = nag * keep * (target + (act - target) * relax) + newborn * target
        nag = nag * keep + newborn
        act = act_n / nag if nag > 0 else target
        X, Yc = Xn, Yn
    idx = np.clip(np.floor(t_out / dt + 1e-9).astype(int), 0, n_steps)
    return {"t": t_out, "y": traj[idx]}


def simulate_reference(
    params: np.ndarray,
    abm: dict | np.ndarray | None,
    y0: np.ndarray,
    stop_time: float,
    horizon: float,
    t_out: np.ndarray,
    rng: np.random.Generator,
    *,
    u_tki: float = 1.0,
    drive_on: np.ndarray | None = None,
    drive_off: np.ndarray | None = None,
    dt: float = DEFAULT_DT,
    n_sens: int = DEFAULT_N_SENS,
) -> np.ndarray:
    """The well-mixed agent rules in plain Python, one list entry per cell (slow; for tests).

    An independent implementation of the module docstring's step (no counts, no lattice), with
    NumPy's ``Generator``: it agrees with the kernel in distribution only. ``y0`` is (X, Y, Z,
    E, N) in cells at the scale of ``abm``'s ``cell_scale``. Returns ``y`` (n_t, 6) at
    ``t_out`` as :func:`simulate_abm`.
    """
    from sim.engines.stochastic import scale_cells

    ap = abm_vector(abm)
    p = np.asarray(params, dtype=np.float64)
    if ap[CELL_SCALE] != 1.0:
        p = scale_cells(p, ap[CELL_SCALE])
    g = dict(zip(_cm.PARAMS.names, (float(v) for v in p)))
    init = initial_agents(p, ap, y0)
    cls = class_sensitivities(ap[SENS_SD_LOG], ap[RESIST_FACTOR], n_sens)
    K = cls.size - 1
    mu, vol = float(ap[MU_RES]), float(ap[NK_VOLUME])
    # a leukemic cell is [active, class]; a T cell its exhaustion; an NK cell its activation
    cells = [[False, int(rng.integers(K))] for _ in range(int(init[0]))]
    cells += [[True, int(rng.integers(K))] for _ in range(int(init[1]))]
    tcells = [float(init[3])] * int(init[2])
    nks = [float(init[5])] * int(init[4])
    on, off = _drives(u_tki, drive_on, drive_off)
    n_steps = math.ceil(horizon / dt - 1e-9)
    traj = []
    for k in range(n_steps + 1):
        X = sum(1 for c in cells if not c[0])
        Y = len(cells) - X
        traj.append([X, Y, len(tcells), sum(tcells) / len(tcells) if tcells else 0.0,
                     len(nks) / vol, sum(1 for c in cells if c[1] == K)])  # fmt: skip
        if k == n_steps:
            break
        u, I_ifn, B, vac, ex = on if k * dt < stop_time - 1e-9 * dt else off
        phi_z = sum(1.0 - e * (1.0 - B) for e in tcells)
        sig_a = sum(nks)
        new_cells = []
        for active, c in cells:
            r = rng.random()
            if not active:
                q_act = 1.0 - math.exp(-g["p_xy"] * (1 + g["alpha_I"] * I_ifn) * dt)
                new_cells.append([r < q_act, c])
                continue
            death = (g["p_y"] * Y / g["K_y"] + g["e_tki"] * u * cls[c] + g["m"] * phi_z
                     + g["m_N"] * sig_a / vol + g["k_IY"] * I_ifn)  # fmt: skip
            lam = g["p_y"] + g["p_yx"] + death
            q = 1.0 - math.exp(-lam * dt)
            if r < q * g["p_y"] / lam:  # division
                new_cells.append([True, c])
                new_cells.append([True, K if r < q * g["p_y"] / lam * mu else c])
            elif r < q * (g["p_y"] + g["p_yx"]) / lam:
                new_cells.append([False, c])
            elif r >= q:
                new_cells.append([True, c])
        cells = new_cells
        win = g["p_z"] * Y / (g["K_z"] ** 2 + Y * Y)
        alpha = g["k_E"] * Y / (Y + g["K_E"])
        le = alpha + g["delta_E"]
        e_inf = alpha / le
        new_t = []
        for e in tcells:
            f = 1.0 - e * (1.0 - B)
            lam = g["a"] + win * f
            q = 1.0 - math.exp(-lam * dt)
            r = rng.random()
            if r < q * g["a"] / lam:
                continue
            new_t.append(e_inf + (e - e_inf) * math.exp(-le * dt))
            if r < q:
                new_t.append(0.0)
        r_in = g["r_z"] * (1 + vac)
        new_t += [0.0] * int(rng.poisson(r_in * (1 - math.exp(-g["a"] * dt)) / g["a"]))
        tcells = new_t
        target = (1 + g["kappa_N"] * I_ifn) * (1 + ex) / (1 + Y / g["K_NS"])
        rate = ap[NK_ACT_RATE]
        relax = 0.0 if rate == np.inf else math.exp(-rate * dt)
        dn = g["d_N"] * (1 + Y / g["K_ND"])
        qn = 1.0 - math.exp(-dn * dt)
        nks = [target + (a - target) * relax for a in nks if rng.random() >= qn]
        c_n = g["s_N"] * (1 + g["sigma_N"] * I_ifn) * vol
        nks += [target] * int(rng.poisson(c_n * qn / dn))
    traj = np.array(traj, dtype=np.float64)
    idx = np.clip(np.floor(np.asarray(t_out) / dt + 1e-9).astype(int), 0, n_steps)
    return traj[idx]
