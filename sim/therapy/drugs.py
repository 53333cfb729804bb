r"""Tyrosine kinase inhibitors: one-compartment oral PK constants and an E_max concentration link.

A :class:`Drug` holds what :mod:`sim.therapy.pk` needs: first-order absorption rate ``ka``,
elimination rate ``ke``, apparent volume ``volume`` (V/F), relative bioavailability (1 when V/F is
used), the E_max link (``ec50`` on total plasma concentration, Hill coefficient ``hill``) and the
standard regimen that defines the effect u = 1:

.. math::

    u(\text{dose}, \tau) = \frac{\bar g(\text{dose}, \tau)}{\bar g(D_{std}, \tau_{std})}, \qquad
    g(C) = \frac{C^h}{EC_{50}^h + C^h},

with :math:`\bar g` the mean of g over one steady-state dosing interval.

Units: rates in 1/day, volume in L, doses in mg, concentrations in mg/L (= µg/mL), intervals in
days. Kernels read a drug as the float vector :meth:`Drug.vector` with the layout given by the index
constants ``KA, KE, VOL, BIO, EC50, HILL, STD_DOSE, STD_TAU`` (``N_DRUG`` entries).

The shipped constants and how they were chosen
----------------------------------------------
Each drug's ``source`` cites the numbers; ``notes`` says what is an assumption and what the
one-compartment model cannot reproduce. Steady-state levels these constants give (computed with
:func:`sim.therapy.pk.peak_trough`; C_ref = F·D/(CL·τ) is the mean steady-state concentration at the
standard dose):

=========  ==============  =========  =========  ======  ======  ==========
drug       regimen         peak       trough     C_ref   EC50    C_ref/EC50
=========  ==============  =========  =========  ======  ======  ==========
imatinib   400 mg / 24 h   2.16       1.11       1.667   0.24    6.9
dasatinib  100 mg / 24 h   0.0506     0.00064    0.0131  0.0019  6.9
nilotinib  300 mg / 12 h   1.65       1.27       1.505   0.21    7.2
=========  ==============  =========  =========  ======  ======  ==========

(mg/L). The E_max link is saturating at the standard dose on purpose: in DESTINY a 50 % dose kept
97.5 % of MR4 patients in MMR for a year (Clark RE et al. Lancet Haematol 2017;4:e310;
2019;6:e375), which with
h = 1 needs C_ref/EC50 >= 4; a linear dose–effect relation does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.params import lookup

#: Layout of :meth:`Drug.vector` (read by the :mod:`sim.therapy.pk` kernels).
KA, KE, VOL, BIO, EC50, HILL, STD_DOSE, STD_TAU = range(8)
N_DRUG = 8

_LN2 = math.log(2.0)
_H_PER_DAY = 24.0


@dataclass(frozen=True)
class Drug:
    """An oral drug with one-compartment PK and an E_max link from concentration to effect.

    Attributes
    ----------
    name : str
        Registry name (``"imatinib"``).
    ka : float
        First-order absorption rate constant, 1/day.
    ke : float
        Elimination rate constant, 1/day (CL/V; t½ = ln 2 / ke).
    volume : float
        Apparent volume of distribution, L (V/F when ``bioavailability`` is 1).
    bioavailability : float
        Relative bioavailability F (1 when ``volume`` is V/F). A dose D adds F·D/V to the gut
        compartment, in concentration-equivalent units (mg/L).
    ec50 : float
        Total plasma concentration of half-maximal effect, mg/L (= µg/mL).
    hill : float
        Hill coefficient h of the E_max link.
    standard_dose : float
        Dose that defines the relative effect u = 1, mg.
    standard_interval : float
        Dosing interval of the standard regimen, days.
    source : str
        Where the numbers come from.
    notes : str
        Assumptions, plausible ranges, and what the model does not reproduce.
    """

    name: str
    ka: float
    ke: float
    volume: float
    bioavailability: float
    ec50: float
    hill: float
    standard_dose: float
    standard_interval: float
    source: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"drug name must be a non-empty string, got {self.name!r}")
        units = {
            "ka": "1/day",
            "ke": "1/day",
            "volume": "L",
            "bioavailability": "(fraction)",
            "ec50": "mg/L",
            "hill": "(dimensionless)",
            "standard_dose": "mg",
            "standard_interval": "days",
        }
        for field, unit in units.items():
            _check_positive(self.name, field, getattr(self, field), unit)

    @property
    def half_life_h(self) -> float:
        """Elimination half-life ln 2 / ke, in hours."""
        return _LN2 / self.ke * _H_PER_DAY

    @property
    def clearance_l_per_h(self) -> float:
        """Clearance ke·V in L/h (CL/F when ``volume`` is V/F)."""
        return self.ke * self.volume / _H_PER_DAY

    def vector(self) -> np.ndarray:
        """The drug as a float64 vector in the layout ``KA, KE, VOL, BIO, EC50, HILL, STD_DOSE,
        STD_TAU`` that the :mod:`sim.therapy.pk` kernels read."""
        v = np.empty(N_DRUG, dtype=np.float64)
        v[KA] = self.ka
        v[KE] = self.ke
        v[VOL] = self.volume
        v[BIO] = self.bioavailability
        v[EC50] = self.ec50
        v[HILL] = self.hill
        v[STD_DOSE] = self.standard_dose
        v[STD_TAU] = self.standard_interval
        return v


def _check_positive(drug: str, field: str, value: object, unit: str) -> None:
    ok = isinstance(value, int | float | np.floating | np.integer) and not isinstance(value, bool)
    if not ok or not (math.isfinite(float(value)) and float(value) > 0.0):
        raise ValueError(
            f"drug {drug!r}: {field} must be a positive finite number in {unit}, got {value!r}"
        )


def make_drug(
    name: str,
    *,
    ka: float,
    volume: float,
    ec50: float,
    standard_dose: float,
    standard_interval: float,
    ke: float | None = None,
    half_life: float | None = None,
    bioavailability: float = 1.0,
    hill: float = 1.0,
    source: str = "user-defined",
    notes: str = "",
) -> Drug:
    """A user-defined drug, validated.

    Parameters
    ----------
    name : str
        Name of the drug.
    ka : float
        Absorption rate constant, 1/day.
    volume : float
        Apparent volume (V/F), L.
    ec50 : float
        Total plasma concentration of half-maximal effect, mg/L.
    standard_dose : float
        Dose that defines u = 1, mg.
    standard_interval : float
        Dosing interval of the standard regimen, days.
    ke : float, optional
        Elimination rate constant, 1/day. Give exactly one of ``ke`` and ``half_life``.
    half_life : float, optional
        Elimination half-life, days (ke = ln 2 / half_life).
    bioavailability : float, default 1
        Relative bioavailability (1 when ``volume`` is V/F).
    hill : float, default 1
        Hill coefficient of the E_max link.
    source, notes : str
        Provenance and remarks, kept with the drug.

    Returns
    -------
    Drug

    Raises
    ------
    ValueError
        If a number is not positive and finite, or if neither or both of ``ke`` and
        ``half_life`` are given.
    """
    if (ke is None) == (half_life is None):
        raise ValueError(
            f"drug {name!r}: give exactly one of ke (1/day) and half_life (days), "
            f"got ke={ke!r}, half_life={half_life!r}"
        )
    if half_life is not None:
        _check_positive(name, "half_life", half_life, "days")
        ke = _LN2 / float(half_life)
    return Drug(
        name=name,
        ka=ka,
        ke=ke,
        volume=volume,
        bioavailability=bioavailability,
        ec50=ec50,
        hill=hill,
        standard_dose=standard_dose,
        standard_interval=standard_interval,
        source=source,
        notes=notes,
    )


# --------------------------------------------------------------------------------------------
# Shipped drugs. Hours are converted with 24 h/day; every derived number is written as the
# expression it comes from.

# Imatinib 400 mg once daily. CL/F = 10 L/h and V/F = 275 L put the steady-state peak and trough
# (2.16, 1.11 µg/mL) inside the IRIS ranges; t½ = 275/10 · ln 2 = 19.1 h (reported ~18 h).
_IMA_CL = 10.0  # L/h
_IMA_V = 275.0  # L
IMATINIB = Drug(
    name="imatinib",
    ka=0.6 * _H_PER_DAY,
    ke=_IMA_CL / _IMA_V * _H_PER_DAY,
    volume=_IMA_V,
    bioavailability=1.0,
    ec50=0.24,
    hill=1.0,
    standard_dose=400.0,
    standard_interval=1.0,
    source=(
        "Peng B et al. Clin Pharmacokinet 2005;44:879 (t½ ~18 h, F 98 %, steady-state peak "
        "2.6 ± 0.8 µg/mL); Larson RA et al. Blood 2008;111:4022 (IRIS day-29 trough "
        "979 ± 530 ng/mL); Widmer N et al. Br J Clin Pharmacol 2006;62:97 (popPK ka 0.609/h); "
        "CL/F 10 L/h and V/F 275 L: cmlsim choice to land in the IRIS ranges"
    ),
    notes=(
        "One compartment, ka 0.6/h, CL/F 10 L/h, V/F 275 L: steady state at 400 mg/24 h has peak "
        "2.16 and trough 1.11 µg/mL (IRIS: peak 2.6 ± 0.8, trough 0.98 ± 0.53). The label's "
        "CL 13-14 L/h (Widmer 2006: CL 14.3 L/h, V 347 L) gives troughs of only 0.71-0.74 µg/mL, "
        "below the IRIS mean and the 1.0 µg/mL MMR threshold of Picard 2007, so the lower CL/F "
        "is used (V/F 250-300 L all fit: trough 1.06-1.15, peak 2.12-2.21). Active metabolite "
        "CGP74588 not modelled. EC50 0.24 mg/L total plasma (≈ 0.49 µM) is an ASSUMPTION chosen so "
        "that C_ref/EC50 = 1.667/0.24 = 6.9 (C_ref = mean steady-state level at 400 mg/24 h); "
        "plausible range 0.1-0.42 mg/L (C_ref/EC50 4-17): above 0.42 a half dose loses too much "
        "effect for DESTINY (needs C_ref/EC50 >= 4); cellular IC50s are 0.1-0.5 µM in vitro."
    ),
)

# Dasatinib 100 mg once daily. CL/F = dose / AUC(single dose) = 100 mg / 0.314 mg·h/L = 318 L/h,
# ke from t½ = 3.6 h, V/F = CL/F / ke = 1654 L; ka = 3/h puts t_max at 0.98 h (reported 0.25-1.5 h).
_DAS_T_HALF = 3.6  # h
_DAS_CL = 100.0 / 0.314  # L/h
_DAS_KE = _LN2 / _DAS_T_HALF  # 1/h
DASATINIB = Drug(
    name="dasatinib",
    ka=3.0 * _H_PER_DAY,
    ke=_DAS_KE * _H_PER_DAY,
    volume=_DAS_CL / _DAS_KE,
    bioavailability=1.0,
    ec50=0.0019,
    hill=1.0,
    standard_dose=100.0,
    standard_interval=1.0,
    source=(
        "Levêque D et al. Clin Pharmacokinet 2020 (review; single 100 mg: Cmax 104.5 ng/mL, "
        "AUC 314 ng·h/mL, t½ 3.6 h, t_max 0.25-1.5 h); Sprycel label (t½ 3-5 h); "
        "ka 3/h and EC50: cmlsim assumptions"
    ),
    notes=(
        "AUC and t½ are matched (CL/F 318 L/h, V/F 1654 L); a one-compartment model cannot also "
        "match Cmax: with V/F 1654 L no absorption rate gives more than F·D/V = 60 ng/mL, and "
        "ka = 3/h (ASSUMPTION, t_max 0.98 h) gives 51 ng/mL after one dose against the observed "
        "104.5 ng/mL (dasatinib's distribution is multi-compartmental), so peaks are about half "
        "the real ones and the fall after the peak is slower; the mean exposure is right. "
        "Steady state at 100 mg/24 h: peak 0.0506, trough 0.00064 mg/L (1.3 % of peak). "
        "EC50 0.0019 mg/L (1.9 ng/mL, total plasma) is an ASSUMPTION: chosen so that "
        "C_ref/EC50 = 0.01308/0.0019 = 6.9, as for imatinib (same DESTINY argument). The ~325-fold "
        "in-vitro potency over imatinib would give 0.24/325 = 0.74 ng/mL (C_ref/EC50 ≈ 18); "
        "plausible range 0.7-3.3 ng/mL (C_ref/EC50 4-18)."
    ),
)

# Nilotinib 300 mg twice daily (frontline). ke from t½ = 17 h; ka and V/F fitted so that 400 mg
# twice daily gives the day-15 Cmax 2.2 and Cmin 1.7 µg/mL (fit: ka 0.468/h, V/F 407.4 L).
_NIL_T_HALF = 17.0  # h
_NIL_KE = _LN2 / _NIL_T_HALF  # 1/h
_NIL_KA = 0.468  # 1/h
_NIL_V = 407.4  # L
NILOTINIB = Drug(
    name="nilotinib",
    ka=_NIL_KA * _H_PER_DAY,
    ke=_NIL_KE * _H_PER_DAY,
    volume=_NIL_V,
    bioavailability=1.0,
    ec50=0.21,
    hill=1.0,
    standard_dose=300.0,
    standard_interval=0.5,
    source=(
        "Tasigna label (Swiss, ch.oddb.org: t½ ~17 h, t_max ~3 h, 400 mg BID day 15 Cmax ~2.2, "
        "Cmin ~1.7 µg/mL); Larson RA et al. Eur J Clin Pharmacol 2012 (400 BID only 11.5 % "
        "more exposure than 300 BID); ka 0.468/h and V/F 407.4 L fitted to the day-15 levels "
        "(cmlsim); EC50: cmlsim assumption"
    ),
    notes=(
        "ke from t½ 17 h; ka 0.468/h and V/F 407.4 L (CL/F 16.6 L/h) fitted so that 400 mg/12 h "
        "gives Cmax 2.20, Cmin 1.70 µg/mL (popPK CL/F: 12.8 L/h Giles 2013, 21 L/h Larson 2012). "
        "The slow ka mimics distribution: single-dose t_max is 5.7 h (observed ~3 h), steady-state "
        "t_max 3.5 h. Linear PK: the saturable absorption (400 BID gives only 11.5 % more exposure "
        "than 300 BID) is NOT modelled, so 300 mg/12 h gives 0.75 x the 400 BID levels (peak 1.65, "
        "trough 1.27 µg/mL), about 16 % below the real exposure, and reduced doses (DESTINY: "
        "200 mg BID) lose more exposure in the model than in patients (conservative). EC50 "
        "0.21 mg/L (total plasma) is an ASSUMPTION: C_ref/EC50 = 1.505/0.21 = 7.2 at 300 mg/12 h, "
        "as for imatinib. The ~20-fold in-vitro potency over imatinib (Fava C et al. Drug Des "
        "Devel Ther 2008;2:233) would give ~0.012 mg/L (C_ref/EC50 ≈ 125); plausible range "
        "0.012-0.38 mg/L (C_ref/EC50 4-125)."
    ),
)

#: Registry of the shipped drugs.
DRUGS: dict[str, Drug] = {d.name: d for d in (IMATINIB, DASATINIB, NILOTINIB)}


def get_drug(name: str) -> Drug:
    """The shipped drug called ``name`` (case-insensitive).

    Raises
    ------
    KeyError
        If there is no such drug; the message suggests the closest name.
    """
    return lookup(DRUGS, name, "drug")
