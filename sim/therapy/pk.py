r"""One-compartment oral pharmacokinetics in closed form, and the E_max link to a relative effect.

Model (Bateman; e.g. Gibaldi & Perrier, *Pharmacokinetics*, 2nd ed. 1982, ch. 1): a gut amount
``a`` and a plasma concentration ``C``, both in concentration-equivalent units (mg/L), with

.. math::

    \dot a = -k_a a, \qquad \dot C = k_a a - k_e C,

and a dose D adding :math:`F D / V` to ``a`` (V = apparent volume, F = relative bioavailability).
Over a step of length :math:`\Delta t` without doses the exact solution is

.. math::

    a(\Delta t) = a_0 e^{-k_a \Delta t}, \qquad
    C(\Delta t) = C_0 e^{-k_e \Delta t} + a_0\, B(\Delta t), \qquad
    B(t) = k_a \frac{e^{-k_e t} - e^{-k_a t}}{k_a - k_e},

evaluated as :math:`B(t) = k_a e^{-\min(k_a,k_e) t}\,(-\mathrm{expm1}(-|k_a-k_e| t))/|k_a-k_e|`,
which is exact, has no cancellation when :math:`k_a \approx k_e`, cannot overflow, and equals its
limit :math:`k t e^{-k t}` at :math:`k_a = k_e`. PK is never integrated as ODE states.

Steady state for a dose D every :math:`\tau` (accumulation factors
:math:`R_k = 1/(1 - e^{-k\tau})`): just after a dose the gut holds
:math:`a_0 = R_{k_a} F D / V` and the concentration is the trough

.. math::

    C_0 = C_{min} = R_{k_e}\, a_0\, B(\tau), \qquad C_{ss}(t) = C_0 e^{-k_e t} + a_0 B(t),
    \quad 0 \le t < \tau,

(the fixed point of one interval: :math:`C_0 = C_0 e^{-k_e\tau} + a_0 B(\tau)`); it equals the
superposition of all past doses. The mean steady-state level is :math:`F D/(V k_e \tau)`.

The effect is an E_max (Hill) function of the total plasma concentration,
:math:`g(C) = C^h/(EC_{50}^h + C^h)`, and the TKI drive in ``interval`` mode is

.. math::

    u(D, \tau) = \frac{\bar g(D, \tau)}{\bar g(D_{std}, \tau_{std})}, \qquad
    \bar g(D, \tau) = \frac{1}{\tau}\int_0^\tau g(C_{ss}(t))\,dt,

so u = 1 at the standard regimen. In ``daily`` mode, dividing
:math:`g(C(t))` by the same :func:`standard_effect` makes the two modes agree on average.

Drugs are passed to the kernels as the vector of :meth:`sim.therapy.drugs.Drug.vector`. All rates
are per day, times in days, doses in mg, concentrations in mg/L.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sim.therapy.drugs import BIO, EC50, HILL, KA, KE, STD_DOSE, STD_TAU, VOL

#: Gauss–Legendre nodes and weights on [-1, 1] for each quadrature panel (numpy, at import).
GL_NODES, GL_WEIGHTS = np.polynomial.legendre.leggauss(20)

#: Finest panel of the graded quadrature mesh is at least tau * 2**-_MAX_LEVEL long.
_MAX_LEVEL = 60

#: Panels of the quadrature after which every further panel is at least tau / _MAX_PANELS long,
#: so that a drug far outside the scenario limits (a Hill coefficient of 1e300, a half-life of
#: 1e-300 h, an interval of a million years) costs at most about twice this many panels instead
#: of never finishing. Drugs within the limits need far fewer.
_MAX_PANELS = 20_000

#: Past the concentration peak the effect only falls until the trough at tau, so the rest of the
#: interval adds at most g(C(t)) (tau - t); once that is below _TAIL times the integral so far
#: (far below a rounding error), the quadrature stops.
_TAIL = 2.0**-60


@njit(cache=True)
def emax(c: float, ec50: float, hill: float) -> float:
    r"""E_max (Hill) effect :math:`g(c) = c^h / (EC_{50}^h + c^h)` in [0, 1].

    Evaluated as :math:`r/(1+r)` with :math:`r = (c/EC_{50})^h` below EC50 and as
    :math:`1/(1 + (EC_{50}/c)^h)` above, so it neither overflows nor loses precision; 0 for
    c <= 0.

    Parameters
    ----------
    c : float
        Concentration (same unit as ``ec50``).
    ec50 : float
        Concentration of half-maximal effect, > 0.
    hill : float
        Hill coefficient h, > 0.
    """
    if c <= 0.0:
        return 0.0
    if c <= ec50:
        r = c / ec50 if hill == 1.0 else (c / ec50) ** hill
        return r / (1.0 + r)
    s = ec50 / c if hill == 1.0 else (ec50 / c) ** hill
    return 1.0 / (1.0 + s)


@njit(cache=True)
def bateman(t: float, ka: float, ke: float) -> float:
    r"""Concentration at time t after a unit (concentration-equivalent) input into the gut.

    .. math::

        B(t) = k_a \frac{e^{-k_e t} - e^{-k_a t}}{k_a - k_e}
             = k_a\, e^{-k_{min} t}\, \frac{-\mathrm{expm1}(-|k_a - k_e|\, t)}{|k_a - k_e|},

    with :math:`k_{min} = \min(k_a, k_e)`; at :math:`k_a = k_e = k` it is :math:`k t e^{-k t}`.
    The second form is exact for every :math:`k_a, k_e > 0`, without cancellation when
    :math:`k_a \approx k_e` and without overflow (Bateman 1910, Proc Camb Phil Soc 15:423).
    """
    kmin = ka if ka < ke else ke
    d = abs(ka - ke)
    if d == 0.0:
        return ka * t * math.exp(-kmin * t)
    return ka * math.exp(-kmin * t) * (-math.expm1(-d * t)) / d


@njit(cache=True)
def advance(a_gut: float, conc: float, dt: float, ka: float, ke: float) -> tuple[float, float]:
    r"""Advance gut amount and concentration over ``dt`` with no dose in between (exact).

    .. math::

        a \leftarrow a\, e^{-k_a \Delta t}, \qquad
        C \leftarrow C\, e^{-k_e \Delta t} + a\, B(\Delta t)

    with :math:`B` from :func:`bateman` (stable for :math:`k_a \approx k_e`, exact limit at
    :math:`k_a = k_e`).

    Parameters
    ----------
    a_gut : float
        Gut amount in concentration-equivalent units (mg/L); a dose D adds F·D/V
        (:func:`dose_to_gut`).
    conc : float
        Plasma concentration, mg/L.
    dt : float
        Step, days (>= 0).
    ka, ke : float
        Absorption and elimination rate constants, 1/day.

    Returns
    -------
    a_gut_new, conc_new : float
    """
    return a_gut * math.exp(-ka * dt), conc * math.exp(-ke * dt) + a_gut * bateman(dt, ka, ke)


@njit(cache=True)
def conc_at(a_gut: float, conc: float, dt: float, ka: float, ke: float) -> float:
    """Concentration ``dt`` after a state (a_gut, conc) with no dose in between; see
    :func:`advance`."""
    return conc * math.exp(-ke * dt) + a_gut * bateman(dt, ka, ke)


@njit(cache=True)
def dose_to_gut(dose: float, drug_vec: np.ndarray) -> float:
    """What a dose (mg) adds to the gut amount: F·dose/V, in mg/L."""
    return drug_vec[BIO] * dose / drug_vec[VOL]


@njit(cache=True)
def mean_concentration(dose: float, tau: float, drug_vec: np.ndarray) -> float:
    r"""Mean steady-state concentration :math:`F D / (V k_e \tau) = AUC_\tau / \tau` (mg/L).

    At the standard regimen this is C_ref, the level against which EC50 is set.
    """
    return drug_vec[BIO] * dose / (drug_vec[VOL] * drug_vec[KE] * tau)


@njit(cache=True)
def _steady_start(dose, tau, drug_vec):
    """Steady state just after a dose: gut amount a0 = R_ka F D/V and trough C0 = R_ke a0 B(tau)."""
    ka = drug_vec[KA]
    ke = drug_vec[KE]
    a0 = dose_to_gut(dose, drug_vec) / (-math.expm1(-ka * tau))
    c0 = a0 * bateman(tau, ka, ke) / (-math.expm1(-ke * tau))
    return a0, c0


@njit(cache=True)
def steady_state(dose: float, tau: float, drug_vec: np.ndarray, t: float) -> float:
    r"""Steady-state concentration at time t after a dose, for dose D every tau.

    .. math::

        C_{ss}(t) = C_0 e^{-k_e t} + a_0 B(t), \quad a_0 = \frac{F D/V}{1 - e^{-k_a\tau}}, \quad
        C_0 = \frac{a_0 B(\tau)}{1 - e^{-k_e\tau}},

    the closed-form sum over all past doses (see the module docstring). ``t`` is taken modulo tau
    (C is continuous at a dose, so t = tau gives the trough C_0).

    Parameters
    ----------
    dose : float
        Dose, mg.
    tau : float
        Dosing interval, days.
    drug_vec : ndarray
        Drug vector (:meth:`sim.therapy.drugs.Drug.vector`).
    t : float
        Time since the last dose, days.
    """
    if not tau > 0.0:
        raise ValueError("steady_state: the dosing interval tau must be positive")
    if dose <= 0.0:
        return 0.0
    if t < 0.0 or t >= tau:
        t = t - tau * math.floor(t / tau)
    a0, c0 = _steady_start(dose, tau, drug_vec)
    return c0 * math.exp(-drug_vec[KE] * t) + a0 * bateman(t, drug_vec[KA], drug_vec[KE])


@njit(cache=True)
def _dyadic(w, tau):
    """Largest tau * 2**-k (k = 0.._MAX_LEVEL) not above w: the graded mesh moves in whole steps
    only, so it changes with the dose at isolated thresholds."""
    if not (w < tau):
        return tau
    finest = tau * 2.0**-_MAX_LEVEL
    if not (w > finest):  # also a w so small that tau / w overflows (a trough of 1e-310)
        return finest
    k = math.ceil(math.log2(tau / w))
    if k > _MAX_LEVEL:
        k = _MAX_LEVEL
    return tau * 2.0 ** (-k)


@njit(cache=True)
def interval_mean_effect(dose: float, tau: float, drug_vec: np.ndarray) -> float:
    r"""Mean E_max effect over one steady-state dosing interval.

    .. math::

        \bar g(D, \tau) = \frac{1}{\tau}\int_0^\tau g(C_{ss}(t))\,dt,
        \qquad g(C) = \frac{C^h}{EC_{50}^h + C^h}.

    Composite 20-point Gauss–Legendre quadrature on a graded mesh, stopped early once the rest of
    the interval, past the concentration peak, cannot add more than :data:`_TAIL` of the
    integral, and never longer than about :data:`_MAX_PANELS` panels. The integrand is analytic on
    [0, tau]. Its singularities (where :math:`C_{ss}^h = -EC_{50}^h`, and for non-integer h the
    zeros of :math:`C_{ss}`, which all lie at Re t < 0) sit about :math:`1/(h |C'/C|)` off the
    real axis, and :math:`|C'/C| \lesssim k_e + 1/t` inside the interval; near the two ends a
    fast rise from (or fall to) a low trough brings them as close as
    :math:`(C_0 + EC_{50})/(h |C'|)` (and :math:`C_0/|C'|` at t = 0 for non-integer h). Panels
    therefore start at that length at both ends (rounded down to tau·2^-k, so the mesh changes
    with the dose only at isolated thresholds), grow geometrically (by 1 + 1/h) towards the
    middle, and are at most :math:`2/(h \min(k_a, k_e))` long, so every panel lies well inside the
    region of analyticity. Against 50-digit mpmath quadrature for 150 random drugs (h 0.5-9.5,
    ke/ka 0.01-100 and equal, doses over 7 decades) the relative error was below 2e-15; the tests
    compare with ``scipy.integrate.quad`` at 1e-10.

    Parameters
    ----------
    dose : float
        Dose, mg (0 gives 0).
    tau : float
        Dosing interval, days.
    drug_vec : ndarray
        Drug vector (:meth:`sim.therapy.drugs.Drug.vector`).

    Returns
    -------
    float
        Mean effect in [0, 1].
    """
    if not tau > 0.0:
        raise ValueError("interval_mean_effect: the dosing interval tau must be positive")
    if dose <= 0.0:
        return 0.0
    ka = drug_vec[KA]
    ke = drug_vec[KE]
    ec50 = drug_vec[EC50]
    hill = drug_vec[HILL]
    a0, c0 = _steady_start(dose, tau, drug_vec)

    h = hill if hill > 1.0 else 1.0
    kfast = ka if ka > ke else ke
    kslow = ka if ka < ke else ke
    integer_hill = hill == math.floor(hill)
    w_max = 2.0 / (h * kslow)
    # rise from the trough at t = 0 and fall back to it at t = tau
    slope0 = ka * a0 - ke * c0
    slope1 = ke * c0 - ka * a0 * math.exp(-ka * tau)
    wl = 1.0 / (h * kfast)
    wr = wl
    if slope0 > 0.0:
        wl = min(wl, (c0 + ec50) / (h * slope0))
        if not integer_hill:
            wl = min(wl, c0 / slope0)
    if slope1 > 0.0:
        wr = min(wr, (c0 + ec50) / (h * slope1))
    wl = _dyadic(wl, tau)
    wr = _dyadic(wr, tau)

    total = 0.0
    t = 0.0
    panels = 0
    while t < tau:
        rem = tau - t
        if rem <= wr:
            b = tau
        else:
            w = min(max(t / h, wl), w_max, max(0.5 * rem, wr))
            if panels >= _MAX_PANELS:
                w = max(w, tau / _MAX_PANELS)
            b = min(t + w, tau)
        mid = 0.5 * (t + b)
        half = 0.5 * (b - t)
        s = 0.0
        for i in range(GL_NODES.shape[0]):
            ti = mid + half * GL_NODES[i]
            c = c0 * math.exp(-ke * ti) + a0 * bateman(ti, ka, ke)
            s += GL_WEIGHTS[i] * emax(c, ec50, hill)
        total += half * s
        t = b
        panels += 1
        if t < tau:
            gut = a0 * math.exp(-ka * t)
            c = c0 * math.exp(-ke * t) + a0 * bateman(t, ka, ke)
            if ka * gut <= ke * c and emax(c, ec50, hill) * (tau - t) <= _TAIL * total:
                break  # past the peak: the rest of the interval is negligible
    return total / tau


@njit(cache=True)
def standard_effect(drug_vec: np.ndarray) -> float:
    """Mean effect of the standard regimen, :math:`\\bar g(D_{std}, \\tau_{std})`: the divisor
    that makes u = 1 at the standard dose (also the normaliser for ``daily`` mode)."""
    return interval_mean_effect(drug_vec[STD_DOSE], drug_vec[STD_TAU], drug_vec)


@njit(cache=True)
def relative_effect(dose: float, tau: float, drug_vec: np.ndarray) -> float:
    r"""The TKI drive u in ``interval`` mode: :math:`\bar g(D, \tau) / \bar g(D_{std}, \tau_{std})`.

    1 at the standard regimen, 0 at dose 0, non-decreasing in the dose and bounded by
    :math:`1/\bar g(D_{std}, \tau_{std})` (E_max saturation). NaN when the standard regimen has
    no effect at all (a drug far outside the scenario limits), which the kernels report as a
    solver failure.

    Parameters
    ----------
    dose : float
        Dose, mg.
    tau : float
        Dosing interval, days.
    drug_vec : ndarray
        Drug vector (:meth:`sim.therapy.drugs.Drug.vector`).
    """
    if dose <= 0.0:
        return 0.0
    g_std = standard_effect(drug_vec)
    if not g_std > 0.0:
        return math.nan  # no effect at the standard regimen: nothing to scale by
    return interval_mean_effect(dose, tau, drug_vec) / g_std


def peak_trough(dose: float, tau: float, drug_vec: np.ndarray) -> tuple[float, float]:
    r"""Steady-state peak and trough concentrations (mg/L) for dose D every tau.

    The trough is :math:`C_0` (just before, and equal to just after, a dose). The peak is at

    .. math::

        t_{max} = \frac{\ln\!\big(1 + d/k_e\big) - \ln\!\big(1 + C_0 d / (a_0 k_a)\big)}{d},
        \qquad d = k_a - k_e,

    the zero of :math:`\dot C = k_a a_0 e^{-k_a t} - k_e C`, evaluated with ``log1p`` so that it
    tends to :math:`1/k_e - C_0/(a_0 k_a)` as :math:`d \to 0`.

    Returns
    -------
    cmax, cmin : float
    """
    if not tau > 0.0:
        raise ValueError(f"peak_trough: the dosing interval tau must be positive, got {tau!r}")
    if dose <= 0.0:
        return 0.0, 0.0
    ka = float(drug_vec[KA])
    ke = float(drug_vec[KE])
    a0, c0 = _steady_start(dose, tau, drug_vec)
    d = ka - ke
    t_max = _log1p_ratio(1.0 / ke, d) - _log1p_ratio(c0 / (a0 * ka), d)
    t_max = min(max(t_max, 0.0), tau)
    return float(steady_state(dose, tau, drug_vec, t_max)), float(c0)


def _log1p_ratio(s: float, d: float) -> float:
    """log1p(s d) / d, with its limit s at d = 0."""
    y = s * d
    return s if y == 0.0 else s * math.log1p(y) / y


# ----------------------------------------------------------------------------------------------
# Plain NumPy references (different algebra from the kernels; tests compare them)


def superposition_reference(
    t: np.ndarray, dose_times: np.ndarray, doses: np.ndarray, drug_vec: np.ndarray
) -> np.ndarray:
    r"""Concentration by superposition of every past dose (textbook Bateman form).

    .. math::

        C(t) = \sum_{t_i \le t} \frac{F D_i}{V} \frac{k_a}{k_a - k_e}
               \left(e^{-k_e (t - t_i)} - e^{-k_a (t - t_i)}\right)

    (:math:`\frac{F D_i}{V} k (t - t_i) e^{-k (t-t_i)}` when :math:`k_a = k_e = k`). Plain NumPy,
    for tests; loses precision when ka and ke are close.
    """
    t = np.asarray(t, dtype=np.float64)
    dose_times = np.asarray(dose_times, dtype=np.float64)
    doses = np.asarray(doses, dtype=np.float64)
    ka, ke = drug_vec[KA], drug_vec[KE]
    amount = drug_vec[BIO] * doses / drug_vec[VOL]
    s = t[:, None] - dose_times[None, :]
    past = s >= 0.0
    s = np.where(past, s, 0.0)
    if ka == ke:
        unit = ka * s * np.exp(-ke * s)
    else:
        unit = ka / (ka - ke) * (np.exp(-ke * s) - np.exp(-ka * s))
    return np.sum(np.where(past, amount[None, :] * unit, 0.0), axis=1)


def steady_state_reference(
    dose: float, tau: float, drug_vec: np.ndarray, t: np.ndarray
) -> np.ndarray:
    r"""Steady state by the textbook accumulation formula (ka != ke), plain NumPy, for tests:

    .. math::

        C_{ss}(t) = \frac{F D}{V} \frac{k_a}{k_a - k_e}
            \left(\frac{e^{-k_e t}}{1 - e^{-k_e\tau}} - \frac{e^{-k_a t}}{1 - e^{-k_a\tau}}\right)
    """
    t = np.asarray(t, dtype=np.float64)
    ka, ke = drug_vec[KA], drug_vec[KE]
    amount = drug_vec[BIO] * dose / drug_vec[VOL]
    r_ke = 1.0 / (1.0 - np.exp(-ke * tau))
    r_ka = 1.0 / (1.0 - np.exp(-ka * tau))
    return amount * ka / (ka - ke) * (np.exp(-ke * t) * r_ke - np.exp(-ka * t) * r_ka)
