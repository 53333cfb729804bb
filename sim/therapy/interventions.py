r"""Immune interventions: interferon-α, anti-PD-1 antibodies, vaccination and exercise as products.

Every intervention is the same mechanism (one kernel code path). A dose enters a one-compartment
model with first-order absorption (:mod:`sim.therapy.pk`): a depot amount ``a`` and a
concentration ``C``, both in concentration-equivalent units,

.. math::

    \dot a = -k_a a, \qquad \dot C = k_a a - k_e C, \qquad
    \text{dose } D:\; a \mathrel{+}= F D / V,

and with :math:`k_a = \infty` (an IV bolus, or an instantaneous boost) the dose goes straight into
the central compartment, :math:`C \mathrel{+}= F D / V`, and :math:`C` decays as
:math:`C e^{-k_e t}`. The drive contribution of the product is the E_max (Hill) link

.. math::

    E(C) = E_{max} \frac{C^h}{EC_{50}^h + C^h} \in [0, E_{max}],

read into the drive slot of the product's kind (:mod:`sim.therapy.drive`):

===========  ===========  ================================================================
kind         slot         E means
===========  ===========  ================================================================
interferon   IFN          interferon effect I(t) in [0, 1] (E_max <= 1)
checkpoint   PD1          anti-PD-1 receptor occupancy B(t) in [0, 1] (E_max <= 1)
vaccine      VACCINE      relative rise of effector T-cell recruitment (r_z multiplier - 1)
exercise     EXERCISE     relative rise of NK activity (A_N multiplier - 1)
===========  ===========  ================================================================

For vaccine and exercise a "dose" is one shot or one session (1 arbitrary unit), V = 1, F = 1,
:math:`k_e` is the decay rate of the boost and :math:`EC_{50}` is in the same units. Several
products on one slot combine (:func:`combine`) as :math:`1 - \prod_k (1 - E_k)` for IFN and PD1
(occupancy-like, stays <= 1) and as :math:`\sum_k E_k` for VACCINE and EXERCISE.

Kernels read a product as the float vector :meth:`Product.vector`, layout ``P_KIND, P_KA, P_KE,
P_VOL, P_BIO, P_EC50, P_EMAX, P_HILL, P_STD_DOSE, P_STD_TAU`` (``N_PRODUCT`` entries; the kind is
stored as its code ``KIND_*``). Units: days, mg, L, mg/L (vaccine/exercise: units, 1, units).

The shipped products and what they give
---------------------------------------
Each product's ``source`` cites its numbers and ``notes`` says which are assumptions (with a
plausible range) and which are recalled from labels or papers rather than re-read ("[recalled]").
Steady-state levels these constants give (:func:`peak_trough`, :func:`interval_mean_effect`;
concentrations in ng/mL for interferons, mg/L for antibodies, units for vaccine/exercise):

=====================  ================  ======  ======  ======  ======  =============
product                regimen           peak    trough  mean    EC50    mean effect
=====================  ================  ======  ======  ======  ======  =============
peginterferon-alfa-2a  90 µg / 7 d       9.00    5.61    7.73    6.0     I = 0.560
peginterferon-alfa-2a  180 µg / 7 d      18.0    11.2    15.5    6.0     I = 0.718
peginterferon-alfa-2b  50 µg / 7 d       0.372   0.0448  0.193   0.12    I = 0.565
nivolumab              240 mg / 14 d     93.3    63.3    77.3    2.0     B >= 0.824
nivolumab              480 mg / 28 d     111     51.1    77.3    2.0     B >= 0.818
pembrolizumab          200 mg / 21 d     68.9    35.5    50.4    2.0     B >= 0.805
exercise               1 / (7/3 d)       2.40    1.40    1.85    1       +0.19
=====================  ================  ======  ======  ======  ======  =============

A single 240 mg nivolumab dose keeps B = 0.646 eight weeks later. A 6-shot vaccine course every
2 weeks leaves a level of 2.99 units (r_z raised by 75 %) after the last shot, halving every 4
weeks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from sim.params import did_you_mean, lookup
from sim.therapy import drive, pk
from sim.therapy import drugs as _drugs

#: Layout of :meth:`Product.vector` (read by the kernels of this module and the ODE engine).
P_KIND, P_KA, P_KE, P_VOL, P_BIO, P_EC50, P_EMAX, P_HILL, P_STD_DOSE, P_STD_TAU = range(10)
N_PRODUCT = 10

#: Kind codes stored at ``P_KIND``.
KIND_IFN = 1
KIND_PD1 = 2
KIND_VACCINE = 3
KIND_EXERCISE = 4

#: Kind names (as in :attr:`Product.kind` and scenario files) and their codes.
KIND_CODES: dict[str, int] = {
    "interferon": KIND_IFN,
    "checkpoint": KIND_PD1,
    "vaccine": KIND_VACCINE,
    "exercise": KIND_EXERCISE,
}

#: Drive slot of each kind code: ``SLOT_OF_KIND[KIND_IFN] == drive.IFN`` etc. (index 0 unused).
#: A tuple, so that jitted code can index it with a run-time kind code.
SLOT_OF_KIND: tuple[int, ...] = (-1, drive.IFN, drive.PD1, drive.VACCINE, drive.EXERCISE)

_LN2 = math.log(2.0)
_H_PER_DAY = 24.0


@dataclass(frozen=True)
class Product:
    """An immune intervention: one-compartment PK (or boost decay) and an E_max link to a drive.

    Attributes
    ----------
    name : str
        Registry name (``"nivolumab"``).
    kind : str
        ``"interferon"``, ``"checkpoint"``, ``"vaccine"`` or ``"exercise"``; decides the drive
        slot (:data:`SLOT_OF_KIND`) and how several products on one slot combine.
    ka : float
        Absorption rate constant, 1/day; ``math.inf`` for an IV bolus or an instantaneous boost.
    ke : float
        Elimination (or boost decay) rate constant, 1/day; t½ = ln 2 / ke.
    volume : float
        Apparent volume, L (V/F when ``bioavailability`` is 1); 1 for vaccine and exercise.
    bioavailability : float
        Relative bioavailability F; a dose D adds F·D/V to the depot (or to C when ka is inf).
    ec50 : float
        Concentration of half-maximal effect, mg/L (vaccine/exercise: units).
    emax : float
        Maximal effect; at most 1 for interferon and checkpoint (an effect or an occupancy).
    hill : float
        Hill coefficient h.
    standard_dose : float
        Usual dose, mg (vaccine/exercise: 1 unit per shot or session).
    standard_interval : float
        Usual dosing interval, days.
    source : str
        Where the numbers come from.
    notes : str
        Assumptions with plausible ranges, recalled numbers, what the model does not reproduce.
    """

    name: str
    kind: str
    ka: float
    ke: float
    volume: float
    bioavailability: float
    ec50: float
    emax: float
    hill: float
    standard_dose: float
    standard_interval: float
    source: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"product name must be a non-empty string, got {self.name!r}")
        if self.kind not in KIND_CODES:
            raise ValueError(
                f"product {self.name!r}: unknown kind {self.kind!r}"
                f"{did_you_mean(str(self.kind), KIND_CODES)}, expected one of "
                + ", ".join(repr(k) for k in KIND_CODES)
            )
        if not (_is_number(self.ka) and float(self.ka) > 0.0 and not math.isnan(self.ka)):
            raise ValueError(
                f"product {self.name!r}: ka must be a positive number in 1/day "
                f"(inf for an IV bolus or an instantaneous boost), got {self.ka!r}"
            )
        units = {
            "ke": "1/day",
            "volume": "L",
            "bioavailability": "(fraction)",
            "ec50": "mg/L (units for vaccine/exercise)",
            "emax": "(dimensionless)",
            "hill": "(dimensionless)",
            "standard_dose": "mg (units for vaccine/exercise)",
            "standard_interval": "days",
        }
        for field, unit in units.items():
            _check_positive(self.name, field, getattr(self, field), unit)
        if self.kind in ("interferon", "checkpoint") and self.emax > 1.0:
            raise ValueError(
                f"product {self.name!r}: emax of a {self.kind} product is an effect fraction or a "
                f"receptor occupancy and must be in (0, 1], got {self.emax!r}"
            )

    @property
    def half_life_days(self) -> float:
        """Elimination (boost decay) half-life ln 2 / ke, in days."""
        return _LN2 / self.ke

    @property
    def kind_code(self) -> int:
        """The kind as its code ``KIND_*``."""
        return KIND_CODES[self.kind]

    @property
    def slot(self) -> int:
        """The drive slot (:mod:`sim.therapy.drive`) this product acts on."""
        return SLOT_OF_KIND[self.kind_code]

    def vector(self) -> np.ndarray:
        """The product as a float64 vector in the layout ``P_KIND, P_KA, P_KE, P_VOL, P_BIO,
        P_EC50, P_EMAX, P_HILL, P_STD_DOSE, P_STD_TAU`` that the kernels read."""
        v = np.empty(N_PRODUCT, dtype=np.float64)
        v[P_KIND] = self.kind_code
        v[P_KA] = self.ka
        v[P_KE] = self.ke
        v[P_VOL] = self.volume
        v[P_BIO] = self.bioavailability
        v[P_EC50] = self.ec50
        v[P_EMAX] = self.emax
        v[P_HILL] = self.hill
        v[P_STD_DOSE] = self.standard_dose
        v[P_STD_TAU] = self.standard_interval
        return v


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.floating | np.integer) and not isinstance(value, bool)


def _check_positive(product: str, field: str, value: object, unit: str) -> None:
    if not _is_number(value) or not (math.isfinite(float(value)) and float(value) > 0.0):
        raise ValueError(
            f"product {product!r}: {field} must be a positive finite number in {unit}, "
            f"got {value!r}"
        )


def make_product(
    name: str,
    kind: str,
    *,
    ec50: float,
    standard_dose: float,
    standard_interval: float,
    ka: float = math.inf,
    ke: float | None = None,
    half_life: float | None = None,
    volume: float | None = None,
    bioavailability: float = 1.0,
    emax: float = 1.0,
    hill: float = 1.0,
    source: str = "user-defined",
    notes: str = "",
) -> Product:
    """A user-defined intervention product, validated.

    Parameters
    ----------
    name : str
        Name of the product.
    kind : str
        ``"interferon"``, ``"checkpoint"``, ``"vaccine"`` or ``"exercise"``.
    ec50 : float
        Concentration of half-maximal effect, mg/L (vaccine/exercise: units).
    standard_dose : float
        Usual dose, mg (vaccine/exercise: units).
    standard_interval : float
        Usual dosing interval, days.
    ka : float, default inf
        Absorption rate constant, 1/day; ``inf`` means an IV bolus or an instantaneous boost.
    ke : float, optional
        Elimination (boost decay) rate constant, 1/day. Give exactly one of ``ke`` and
        ``half_life``.
    half_life : float, optional
        Elimination (boost decay) half-life, days (ke = ln 2 / half_life).
    volume : float, optional
        Apparent volume, L. Required for interferon and checkpoint products; defaults to 1 for
        vaccine and exercise (doses in arbitrary units).
    bioavailability : float, default 1
        Relative bioavailability F.
    emax : float, default 1
        Maximal effect (in (0, 1] for interferon and checkpoint).
    hill : float, default 1
        Hill coefficient.
    source, notes : str
        Provenance and remarks, kept with the product.

    Returns
    -------
    Product

    Raises
    ------
    ValueError
        If the kind is unknown, a number is not positive (ka may be inf), neither or both of
        ``ke`` and ``half_life`` are given, or ``volume`` is missing for a drug.
    """
    if kind not in KIND_CODES:
        raise ValueError(
            f"product {name!r}: unknown kind {kind!r}{did_you_mean(str(kind), KIND_CODES)}, "
            "expected one of " + ", ".join(repr(k) for k in KIND_CODES)
        )
    if (ke is None) == (half_life is None):
        raise ValueError(
            f"product {name!r}: give exactly one of ke (1/day) and half_life (days), "
            f"got ke={ke!r}, half_life={half_life!r}"
        )
    if half_life is not None:
        _check_positive(name, "half_life", half_life, "days")
        ke = _LN2 / float(half_life)
    if volume is None:
        if kind in ("interferon", "checkpoint"):
            raise ValueError(
                f"product {name!r}: a {kind} product needs its volume of distribution in L"
            )
        volume = 1.0
    return Product(
        name=name,
        kind=kind,
        ka=ka,
        ke=ke,
        volume=volume,
        bioavailability=bioavailability,
        ec50=ec50,
        emax=emax,
        hill=hill,
        standard_dose=standard_dose,
        standard_interval=standard_interval,
        source=source,
        notes=notes,
    )


# ----------------------------------------------------------------------------------------------
# Kernels


@njit(cache=True)
def give(a_gut: float, conc: float, dose: float, vec: np.ndarray) -> tuple[float, float]:
    r"""Give one dose: add :math:`F D / V` to the depot, or to the concentration when
    :math:`k_a = \infty` (IV bolus, instantaneous boost).

    Parameters
    ----------
    a_gut : float
        Depot (gut or subcutaneous) amount in concentration-equivalent units.
    conc : float
        Concentration (mg/L; units for vaccine/exercise).
    dose : float
        Dose, mg (vaccine/exercise: units; 1 per shot or session).
    vec : ndarray
        Product vector (:meth:`Product.vector`).

    Returns
    -------
    a_gut_new, conc_new : float
    """
    amount = vec[P_BIO] * dose / vec[P_VOL]
    if math.isinf(vec[P_KA]):
        return a_gut, conc + amount
    return a_gut + amount, conc


@njit(cache=True)
def advance(a_gut: float, conc: float, dt: float, vec: np.ndarray) -> tuple[float, float]:
    r"""Advance depot and concentration over ``dt`` with no dose in between (exact).

    Finite :math:`k_a`: :func:`sim.therapy.pk.advance`,
    :math:`a \leftarrow a e^{-k_a \Delta t}`, :math:`C \leftarrow C e^{-k_e \Delta t} + a B(\Delta
    t)` with the Bateman function B. :math:`k_a = \infty`: the depot is empty (:func:`give` puts
    doses straight into C); anything found there is taken as already absorbed,
    :math:`C \leftarrow (C + a) e^{-k_e \Delta t}`, :math:`a \leftarrow 0`.

    Parameters
    ----------
    a_gut : float
        Depot amount (concentration-equivalent units).
    conc : float
        Concentration.
    dt : float
        Step, days (>= 0).
    vec : ndarray
        Product vector (:meth:`Product.vector`).

    Returns
    -------
    a_gut_new, conc_new : float
    """
    ka = vec[P_KA]
    ke = vec[P_KE]
    if math.isinf(ka):
        return 0.0, (conc + a_gut) * math.exp(-ke * dt)
    return pk.advance(a_gut, conc, dt, ka, ke)


@njit(cache=True)
def effect(conc: float, vec: np.ndarray) -> float:
    r"""Drive contribution :math:`E(C) = E_{max} C^h / (EC_{50}^h + C^h)` of the product.

    In [0, E_max], non-decreasing in C; 0 for C <= 0 (:func:`sim.therapy.pk.emax`).
    """
    return vec[P_EMAX] * pk.emax(conc, vec[P_EC50], vec[P_HILL])


@njit(cache=True)
def combine(current: float, e: float, kind: int) -> float:
    r"""Add a product's effect ``e`` to the value ``current`` already on its drive slot.

    .. math::

        \text{IFN, PD1: } 1 - (1 - x)(1 - e), \qquad \text{VACCINE, EXERCISE: } x + e,

    so effects and occupancies combine like independent fractions (staying <= 1) and boosts add.
    Start from 0 on each slot.

    Parameters
    ----------
    current : float
        Value on the slot so far.
    e : float
        This product's :func:`effect`.
    kind : int
        The product's kind code (``KIND_*``; ``int(vec[P_KIND])``).
    """
    if kind == KIND_IFN or kind == KIND_PD1:
        return 1.0 - (1.0 - current) * (1.0 - e)
    return current + e


@njit(cache=True)
def _drug_vector(vec):
    """The :mod:`sim.therapy.drugs` vector of a product with finite ka (for the pk kernels)."""
    d = np.empty(_drugs.N_DRUG, dtype=np.float64)
    d[_drugs.KA] = vec[P_KA]
    d[_drugs.KE] = vec[P_KE]
    d[_drugs.VOL] = vec[P_VOL]
    d[_drugs.BIO] = vec[P_BIO]
    d[_drugs.EC50] = vec[P_EC50]
    d[_drugs.HILL] = vec[P_HILL]
    d[_drugs.STD_DOSE] = vec[P_STD_DOSE]
    d[_drugs.STD_TAU] = vec[P_STD_TAU]
    return d


@njit(cache=True)
def steady_state(dose: float, tau: float, vec: np.ndarray, t: float) -> float:
    r"""Steady-state concentration at time t after a dose, for dose D every tau.

    Finite :math:`k_a`: :func:`sim.therapy.pk.steady_state`. :math:`k_a = \infty`:

    .. math::

        C_{ss}(t) = C_0 e^{-k_e t}, \qquad C_0 = \frac{F D / V}{1 - e^{-k_e \tau}},

    with :math:`C_0` the peak just after the dose (C jumps at a dose, so t = 0 gives the peak
    and t -> tau the trough). ``t`` is taken modulo tau.

    Parameters
    ----------
    dose : float
        Dose, mg (units).
    tau : float
        Dosing interval, days.
    vec : ndarray
        Product vector (:meth:`Product.vector`).
    t : float
        Time since the last dose, days.
    """
    if not tau > 0.0:
        raise ValueError("steady_state: the dosing interval tau must be positive")
    if dose <= 0.0:
        return 0.0
    if not math.isinf(vec[P_KA]):
        return pk.steady_state(dose, tau, _drug_vector(vec), t)
    if t < 0.0 or t >= tau:
        t = t - tau * math.floor(t / tau)
    ke = vec[P_KE]
    c0 = vec[P_BIO] * dose / vec[P_VOL] / (-math.expm1(-ke * tau))
    return c0 * math.exp(-ke * t)


@njit(cache=True)
def interval_mean_effect(dose: float, tau: float, vec: np.ndarray) -> float:
    r"""Mean drive :math:`\frac{1}{\tau}\int_0^\tau E(C_{ss}(t))\,dt` over one steady-state
    interval.

    Finite :math:`k_a`: :math:`E_{max}` times :func:`sim.therapy.pk.interval_mean_effect`
    (Gauss–Legendre). :math:`k_a = \infty`: since
    :math:`\frac{d}{dt}\ln(EC_{50}^h + C^h) = -h k_e C^h/(EC_{50}^h + C^h)` when
    :math:`\dot C = -k_e C`, in closed form

    .. math::

        \bar E = \frac{E_{max}}{h k_e \tau}
        \ln\frac{EC_{50}^h + C_0^h}{EC_{50}^h + C_0^h e^{-h k_e \tau}}
        = \frac{E_{max}}{h k_e \tau}\,
          \mathrm{log1p}\!\left(\frac{r_0 (1 - e^{-h k_e\tau})}{1 + r_0 e^{-h k_e\tau}}\right),
        \quad r_0 = (C_0/EC_{50})^h.

    Parameters
    ----------
    dose : float
        Dose, mg (units); 0 gives 0.
    tau : float
        Dosing interval, days.
    vec : ndarray
        Product vector (:meth:`Product.vector`).
    """
    if not tau > 0.0:
        raise ValueError("interval_mean_effect: the dosing interval tau must be positive")
    if dose <= 0.0:
        return 0.0
    if not math.isinf(vec[P_KA]):
        return vec[P_EMAX] * pk.interval_mean_effect(dose, tau, _drug_vector(vec))
    ke = vec[P_KE]
    hill = vec[P_HILL]
    c0 = vec[P_BIO] * dose / vec[P_VOL] / (-math.expm1(-ke * tau))
    r0 = (c0 / vec[P_EC50]) ** hill
    decay = math.exp(-hill * ke * tau)
    g = math.log1p(r0 * (-math.expm1(-hill * ke * tau)) / (1.0 + r0 * decay))
    return vec[P_EMAX] * g / (hill * ke * tau)


def peak_trough(dose: float, tau: float, vec: np.ndarray) -> tuple[float, float]:
    r"""Steady-state peak and trough concentrations for dose D every tau.

    Finite :math:`k_a`: :func:`sim.therapy.pk.peak_trough`. :math:`k_a = \infty`: peak
    :math:`C_0 = (F D/V)/(1 - e^{-k_e\tau})` just after a dose, trough :math:`C_0 e^{-k_e\tau}`
    just before the next.

    Returns
    -------
    cmax, cmin : float
    """
    if not tau > 0.0:
        raise ValueError(f"peak_trough: the dosing interval tau must be positive, got {tau!r}")
    if dose <= 0.0:
        return 0.0, 0.0
    if not math.isinf(vec[P_KA]):
        return pk.peak_trough(dose, tau, _drug_vector(vec))
    c0 = float(steady_state(dose, tau, vec, 0.0))
    return c0, c0 * math.exp(-float(vec[P_KE]) * tau)


# ----------------------------------------------------------------------------------------------
# Plain NumPy references (tests compare the kernels with them)


def superposition_reference(
    t: np.ndarray, dose_times: np.ndarray, doses: np.ndarray, vec: np.ndarray
) -> np.ndarray:
    r"""Concentration by superposition of every dose given at or before t (textbook forms).

    .. math::

        C(t) = \sum_{t_i \le t} \frac{F D_i}{V} \times
        \begin{cases}
            \frac{k_a}{k_a - k_e}\left(e^{-k_e s_i} - e^{-k_a s_i}\right) & k_a < \infty \\
            e^{-k_e s_i} & k_a = \infty
        \end{cases}, \qquad s_i = t - t_i

    (:math:`k s_i e^{-k s_i}` when :math:`k_a = k_e = k`). Plain NumPy, for tests.
    """
    t = np.asarray(t, dtype=np.float64)
    dose_times = np.asarray(dose_times, dtype=np.float64)
    doses = np.asarray(doses, dtype=np.float64)
    ka, ke = vec[P_KA], vec[P_KE]
    amount = vec[P_BIO] * doses / vec[P_VOL]
    s = t[:, None] - dose_times[None, :]
    past = s >= 0.0
    s = np.where(past, s, 0.0)
    if np.isinf(ka):
        unit = np.exp(-ke * s)
    elif ka == ke:
        unit = ka * s * np.exp(-ke * s)
    else:
        unit = ka / (ka - ke) * (np.exp(-ke * s) - np.exp(-ka * s))
    return np.sum(np.where(past, amount[None, :] * unit, 0.0), axis=1)


def effect_reference(conc: np.ndarray, vec: np.ndarray) -> np.ndarray:
    r""":math:`E_{max} C^h/(EC_{50}^h + C^h)` written directly (plain NumPy, for tests)."""
    c = np.maximum(np.asarray(conc, dtype=np.float64), 0.0)
    ch = c ** vec[P_HILL]
    return vec[P_EMAX] * ch / (vec[P_EC50] ** vec[P_HILL] + ch)


# ----------------------------------------------------------------------------------------------
# Shipped products. Hours are converted with 24 h/day; every derived number is written as the
# expression it comes from. Body weight 70 kg where a label gives per-kg numbers.

_BODY_WEIGHT = 70.0  # kg, reference adult (assumption)

# Peginterferon alfa-2a (Pegasys; 40 kDa branched PEG): t½ 80 h, V/F 8 L (CL/F 1.66 L/day =
# 69 mL/h), ka 0.4/day (single-dose t_max 82 h). 180 µg/week: peak 18.0, trough 11.2, mean
# 15.5 ng/mL; 90 µg/week (SPIRIT): 9.0, 5.6, 7.7 ng/mL; EC50 6 ng/mL gives mean I 0.56 at 90 µg.
_P2A_T_HALF = 80.0 / _H_PER_DAY  # days
_P2A_KE = _LN2 / _P2A_T_HALF  # 1/day
PEGINTERFERON_ALFA_2A = Product(
    name="peginterferon-alfa-2a",
    kind="interferon",
    ka=0.4,
    ke=_P2A_KE,
    volume=8.0,
    bioavailability=1.0,
    ec50=6.0e-3,
    emax=1.0,
    hill=1.0,
    standard_dose=0.09,
    standard_interval=7.0,
    source=(
        "Pegasys label (Roche/Genentech) [recalled]: 180 µg/week SC, t_max 72-96 h, terminal t½ "
        "~80 h (50-140 h; 160 h, 84-353 h, in hepatitis C patients), steady state in 5-8 weeks, "
        "peak/trough 1.5-2 at week 48, F 84 %, Vss 6-14 L, CL 94 mL/h (healthy); SPIRIT "
        "(Preudhomme C et al. N Engl J Med 2010;363:2511): 90 µg/week with imatinib; "
        "ka, V/F and EC50: cmlsim choices"
    ),
    notes=(
        "One compartment, t½ 80 h (ke 0.208/day; plausible 50-160 h), ka 0.4/day (single-dose "
        "t_max 82 h, inside 72-96 h; plausible 0.3-0.5/day), V/F 8 L (ASSUMPTION, inside the "
        "recalled Vss 6-14 L; CL/F = 8 L x 0.208/day = 1.66 L/day = 69 mL/h, below the "
        "healthy-volunteer CL/F 94/0.84 = 112 mL/h [recalled]: patients clear it more slowly). "
        "Steady state at 180 µg/week: peak 18.0, trough 11.2, mean 15.5 ng/mL (approximate, of "
        "the order of the 10-30 ng/mL reported in hepatitis C [recalled]), peak/trough 1.6 "
        "(label 1.5-2 [recalled]); at the SPIRIT dose 90 µg/week: 9.0, 5.6, 7.7 ng/mL. "
        "Standard dose 90 µg (0.09 mg) is the CML dose (SPIRIT), half the hepatitis label dose. "
        "EC50 6 ng/mL (0.006 mg/L), h = 1, emax 1 are ASSUMPTIONS, chosen so that 90 µg/week gives "
        "a steady-state mean interferon effect I = 0.56 (180 µg/week: 0.72); plausible EC50 "
        "2-20 ng/mL (mean I 0.79-0.28 at 90 µg); to be calibrated against the SPIRIT 12-month "
        "MMR rates (~57 % vs ~38 % [recalled]). Antibodies against interferon, dose reductions "
        "and the high discontinuation rate are not modelled."
    ),
)

# Peginterferon alfa-2b (PegIntron; 12 kDa linear PEG): t½ 40 h, CL/F 22 mL/h/kg x 70 kg =
# 36.96 L/day, V/F = CL/F / ke = 88.9 L, ka 1.5/day (t_max 28 h). 50 µg/week (Nordic): peak 0.372,
# trough 0.0448, mean 0.193 ng/mL; EC50 0.12 ng/mL gives mean I 0.565.
_P2B_T_HALF = 40.0 / _H_PER_DAY  # days
_P2B_KE = _LN2 / _P2B_T_HALF  # 1/day
_P2B_CL = 22.0e-3 * _BODY_WEIGHT * _H_PER_DAY  # L/day (22 mL/h/kg)
PEGINTERFERON_ALFA_2B = Product(
    name="peginterferon-alfa-2b",
    kind="interferon",
    ka=1.5,
    ke=_P2B_KE,
    volume=_P2B_CL / _P2B_KE,
    bioavailability=1.0,
    ec50=1.2e-4,
    emax=1.0,
    hill=1.0,
    standard_dose=0.05,
    standard_interval=7.0,
    source=(
        "PegIntron label (Schering-Plough/Merck) [recalled]: t½ ~40 h (22-60 h), t_max 15-44 h, "
        "absorption t½ 4.6 h, CL/F ~22 mL/h/kg, week-4 trough 94 pg/mL at 1.5 µg/kg/week; "
        "Nordic CML study (Simonsson B et al. Blood 2011;118:3228): 50 µg/week with imatinib; "
        "ka and EC50: cmlsim choices"
    ),
    notes=(
        "One compartment, t½ 40 h (ke 0.416/day; plausible 22-60 h), CL/F 22 mL/h/kg x 70 kg "
        "(ASSUMPTION: reference weight) = 37.0 L/day, V/F = CL/F / ke = 88.9 L. ka 1.5/day "
        "(ASSUMPTION, absorption t½ 11 h): single-dose t_max 28 h, mid 15-44 h; the label's "
        "absorption t½ 4.6 h (ka 3.6/day) would give t_max 16 h, and plausible ka is 1-3.6/day. "
        "Check: 1.5 µg/kg (105 µg) weekly gives a steady-state trough of 94 pg/mL, the label's "
        "week-4 trough [recalled] (the week-48 trough, ~3-fold higher, is not reproduced: linear "
        "PK). Steady state at 50 µg/week: peak 0.372, trough 0.0448, mean 0.193 ng/mL (trough/peak "
        "0.12: weekly dosing of a 40 h drug fluctuates strongly). EC50 0.12 ng/mL (1.2e-4 mg/L), "
        "h = 1, emax 1 are ASSUMPTIONS, chosen so that 50 µg/week gives a steady-state mean "
        "interferon effect I = 0.565 (about the SPIRIT-dose alfa-2a value 0.56); plausible EC50 "
        "0.04-0.4 ng/mL (mean I 0.78-0.30); to be calibrated against the Nordic 12-month MMR rates "
        "(82 % vs 54 %). Its 50-fold lower EC50 than alfa-2a follows its 40-fold lower mean "
        "level (the 12 kDa conjugate distributes into a much larger volume): the two are "
        "matched on effect, not on concentration."
    ),
)

# Nivolumab IV: t½ 25 days, V 8 L (CL 0.222 L/day = 9.2 mL/h), bolus. 240 mg/14 d: peak 93.3,
# trough 63.3 mg/L; occupancy 0.85 C/(2 + C): 0.824 at the trough, 0.646 8 weeks after one dose.
_NIVO_T_HALF = 25.0  # days
NIVOLUMAB = Product(
    name="nivolumab",
    kind="checkpoint",
    ka=math.inf,
    ke=_LN2 / _NIVO_T_HALF,
    volume=8.0,
    bioavailability=1.0,
    ec50=2.0,
    emax=0.85,
    hill=1.0,
    standard_dose=240.0,
    standard_interval=14.0,
    source=(
        "Opdivo label: 240 mg every 2 weeks or 480 mg every 4 weeks IV, t½ ~25 days [recalled]; "
        "Bajaj G et al. CPT Pharmacometrics Syst Pharmacol 2017;6:58 (popPK: CL ~9.5 mL/h, "
        "Vss ~6.8 L) [recalled]; Brahmer JR et al. J Clin Oncol 2010;28:3167 (PD-1 occupancy on "
        "circulating T cells: peak ~85 %, plateau ~72 %, sustained > 2 months after a single "
        "dose, largely independent of dose from 0.3 to 10 mg/kg) [recalled]; EC50: cmlsim choice"
    ),
    notes=(
        "One compartment with an IV bolus (ka = inf), t½ 25 days (plausible 20-30), V 8 L "
        "(ASSUMPTION: a one-compartment volume between Vc ~4 L and Vss ~7 L; CL = 8 x ln2/25 = "
        "0.222 L/day = 9.2 mL/h, close to the popPK 9.5 mL/h [recalled]). The early peak after "
        "each infusion (distribution phase, Vc ~4 L) is not reproduced. Steady state 240 mg/14 d: "
        "peak 93.3, trough 63.3, mean 77.3 mg/L; 480 mg/28 d: 111, 51.1, 77.3 mg/L. Occupancy "
        "B = 0.85 C/(EC50 + C): emax 0.85 from the peak occupancy of Brahmer 2010 [recalled]; "
        "EC50 2 mg/L (~14 nM) is an ASSUMPTION chosen so that B stays > 0.6 eight weeks after a "
        "single 240 mg dose (C 6.3 mg/L, B 0.646); then B = 0.824 at the 240 mg/14 d trough "
        "(0.818 at 480 mg/28 d), a little above the ~72 % plateau: an E_max link on serum "
        "concentration cannot give both a dose-independent plateau of 72 % and a fall-off only "
        "after months. Plausible EC50 0.1-3 mg/L (B at 8 weeks 0.58-0.84). Occupancy of "
        "circulating T cells is taken as occupancy at the leukemic niche."
    ),
)

# Pembrolizumab IV: t½ 22 days, V 6 L (CL 0.189 L/day), bolus. 200 mg/21 d: peak 68.9, trough
# 35.5 mg/L; same occupancy link as nivolumab.
_PEMBRO_T_HALF = 22.0  # days
PEMBROLIZUMAB = Product(
    name="pembrolizumab",
    kind="checkpoint",
    ka=math.inf,
    ke=_LN2 / _PEMBRO_T_HALF,
    volume=6.0,
    bioavailability=1.0,
    ec50=2.0,
    emax=0.85,
    hill=1.0,
    standard_dose=200.0,
    standard_interval=21.0,
    source=(
        "Keytruda label: 200 mg every 3 weeks IV, CL ~0.2 L/day, Vss ~6 L, terminal t½ ~22 days "
        "[recalled]; Ahamadi M et al. CPT Pharmacometrics Syst Pharmacol 2017;6:49 (popPK, "
        "t½ ~27 days) [recalled]; occupancy link: as nivolumab (cmlsim assumption)"
    ),
    notes=(
        "One compartment with an IV bolus (ka = inf), t½ 22 days (plausible 22-27), V 6 L "
        "(CL = 6 x ln2/22 = 0.189 L/day). Steady state 200 mg/21 d: peak 68.9, trough 35.5, "
        "mean 50.4 mg/L. Occupancy link emax 0.85, EC50 2 mg/L copied from nivolumab "
        "(ASSUMPTION; pembrolizumab binds PD-1 more tightly, so its EC50 may be lower, plausible "
        "0.05-3 mg/L): B = 0.805 at the steady-state trough."
    ),
)

# Vaccine course: each shot adds 1 unit instantly, the boost halves every 4 weeks; r_z rises by
# 1.0 x L/(1 + L) (doubling at saturation). 6 shots every 2 weeks: L = 2.99 after the last shot.
_VACCINE_T_HALF = 28.0  # days
VACCINE = Product(
    name="vaccine",
    kind="vaccine",
    ka=math.inf,
    ke=_LN2 / _VACCINE_T_HALF,
    volume=1.0,
    bioavailability=1.0,
    ec50=1.0,
    emax=1.0,
    hill=1.0,
    standard_dose=1.0,
    standard_interval=14.0,
    source=(
        "generic peptide or dendritic-cell vaccine course (e.g. 6 shots every 2 weeks); "
        "all effect numbers are cmlsim assumptions"
    ),
    notes=(
        "Each shot adds 1 unit to a boost level L that decays with t½ 4 weeks (ASSUMPTION, "
        "plausible 2-8 weeks: vaccine-induced T-cell responses wane over weeks to months "
        "without boosting). Effect on the VACCINE slot (relative rise of the effector T-cell "
        "recruitment r_z): 1.0 x L/(1 + L), i.e. emax 1.0 (a doubling of r_z at saturation; "
        "ASSUMPTION, plausible 0.3-3) and EC50 1 unit (ASSUMPTION: one fresh shot gives half "
        "the maximal rise). A 6-shot course every 2 weeks reaches L = 2.99 (r_z x 1.75) just "
        "after the last shot. The 1-2 weeks an immune response takes to build after a shot are "
        "not modelled (ka = inf); a finite ka would delay it."
    ),
)

# Exercise programme: each session adds 1 unit instantly, halving every 3 days; NK activity rises
# by 0.3 x L/(1 + L). 3 sessions a week: L between 1.40 and 2.40, mean boost 0.19.
_EXERCISE_T_HALF = 3.0  # days
EXERCISE = Product(
    name="exercise",
    kind="exercise",
    ka=math.inf,
    ke=_LN2 / _EXERCISE_T_HALF,
    volume=1.0,
    bioavailability=1.0,
    ec50=1.0,
    emax=0.3,
    hill=1.0,
    standard_dose=1.0,
    standard_interval=7.0 / 3.0,
    source=(
        "exercise programme (e.g. 3 sessions a week for 12 weeks); rises of NK cytotoxicity "
        "with training are reported in exercise studies, but all effect numbers here are "
        "cmlsim assumptions"
    ),
    notes=(
        "Each session adds 1 unit to a training level L that decays with t½ 3 days "
        "(ASSUMPTION, plausible 1-14 days: training effects on NK cytotoxicity fade within days "
        "to weeks of stopping). Effect on the EXERCISE slot (relative rise of NK activity A_N): "
        "0.3 x L/(1 + L), emax 0.3 (ASSUMPTION, plausible 0.1-0.5) and EC50 1 session "
        "(ASSUMPTION). At 3 sessions a week L cycles between 1.40 and 2.40 (mean 1.85) and NK "
        "activity is raised by 0.19 on average. The acute mobilisation of NK cells into the "
        "blood during a session (minutes to hours) is not modelled."
    ),
)

#: Registry of the shipped products.
PRODUCTS: dict[str, Product] = {
    p.name: p
    for p in (
        PEGINTERFERON_ALFA_2A,
        PEGINTERFERON_ALFA_2B,
        NIVOLUMAB,
        PEMBROLIZUMAB,
        VACCINE,
        EXERCISE,
    )
}


def get_product(name: str) -> Product:
    """The shipped product called ``name`` (case-insensitive).

    Raises
    ------
    KeyError
        If there is no such product; the message suggests the closest name.
    """
    return lookup(PRODUCTS, name, "intervention product")
