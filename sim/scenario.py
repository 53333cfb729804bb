r"""Scenario files: TOML in, validated frozen objects out, or one clear error.

A scenario asks one question about one patient: which model and engine, which patient parameters,
which TKI segments (drug, dose, interval, start, end, PK mode), which clinical protocol (when to
monitor, when to stop, whether to give a reduced-dose lead-in before stopping, when to restart,
when to switch TKI) and which immune interventions (interferon, anti-PD-1, vaccine, exercise),
each timed relative to an anchor. The schema, with defaults:

.. code-block:: toml

    [scenario]
    name = "imatinib-eln-stop"   # required; [A-Za-z0-9_.-]+, at most 128 characters; results go
                                 #   to results/<name>/
    question = "..."             # optional
    model = "cml_immune"         # sim.models.names()
    engine = "ode"               # "ode" | "stochastic" | "abm" | "mesa" (sim.engines.cellular
                                 #   says what the cell-level engines support)
    horizon = "12y"              # required duration > 0, at most 200y
    seed = 20261125              # required integer from 0 to 2**63 - 1
    rtol = 1e-6                  # 1e-12 < rtol < 1e-2
    atol = 1e-9                  # optional scalar, 1e-20 to 1e-2 (default: rtol times the
                                 #   model's per-state scale)
    output_every = "7d"          # 0 < output_every <= horizon

    [patient]                    # model parameter overrides by name (sim.units.parse_param_value)
    preset = "hahnel2020"        # a preset of the model
    hahnel_patient = 6           # 1..21: p_xy, p_yx, e_tki, p_z, K_z, y0 of Hähnel 2020 patient
    p_xy = "0.0452/mo"

    [[therapy]]                  # one or more TKI segments; `therapy = []` for an untreated patient
    drug = "imatinib"            # sim.therapy.drugs.DRUGS or a [drug.<name>] table
    dose = "400mg"               # default: the drug's standard dose
    every = "1d"                 # default: the drug's standard interval
    start = "diagnosis"          # or a duration from diagnosis
    end = "8y"                   # optional
    pk = "interval"              # "interval" | "daily" | "kill"
    adherence = 1.0              # fraction of doses taken, 0 < adherence <= 1 ("daily": doses
                                 #   missed at random from the patient's stream; else dose x it)
    intermittent = { on = "1w", off = "1w" }   # optional on/off cycling from the segment start
    switch = false               # true: the TKI the protocol's switch rule switches to; inactive
                                 #   until the rule fires (exactly one such segment per switch rule)

    [drug.mydrug]                # a new drug (or, under a built-in name, overrides of its fields)
    ka = "1.0/h"                 # rates 1e-4/d to 1e4/d
    half_life = "12h"            # 1min to 10y; or ke = "0.058/h"
    volume = "200L"              # 1mL to 100000L
    ec50 = "0.05mg/L"            # 1e-9 to 1000 mg/L
    hill = 1.0                   # 0.1 to 10
    standard_dose = "100mg"      # doses 1ng to 100g
    standard_interval = "1d"     # 1h to 1y

    [protocol]
    monitoring = "eln2020"       # or { every = "3mo" }
    stop = { after = "5y", sustained = "MR4", for = "2y" }   # or { at = "85.9mo" } or "never"
    lead_in = { duration = "12mo", dose = 0.5 }              # reduced dose before the stop
    restart = "loss_of_mmr"      # | "two_consecutive" | "never"
    max_stops = 1
    decisions = "measured"       # | "true"
    switch = { if_not = "MMR", at = "12mo" }   # at the first visit at or after `at`, if the
                                 #   measured response is shallower than `if_not`, the segment
                                 #   marked switch = true replaces the running one

    [[intervention]]             # any number; each one product on its own schedule
    name = "ifn-first-6mo"       # optional, unique; default "<product>-<k>", k = 1, 2, ...
    product = "peginterferon-alfa-2a"  # sim.therapy.interventions.PRODUCTS or a [product.<name>]
    dose = "90ug"                # default: the product's standard dose; interferon/checkpoint
                                 #   a mass (mg), vaccine/exercise a number of units; 0 allowed
    every = "1w"                 # default: the product's standard interval
    start = "diagnosis"          # required: an anchor, a duration from diagnosis ("6mo" = six
                                 #   months into therapy) or { anchor = "tki_stop", offset = "1mo" }
    duration = "6mo"             # optional; doses at start, start + every, ... before start +
                                 #   duration; or instead (not both):
    count = 26                   #   `count` doses; neither: to the horizon

    [product.myifn]              # a new product (or, under a built-in name, overrides of fields)
    kind = "interferon"          # "interferon" | "checkpoint" | "vaccine" | "exercise"
    ka = "0.4/d"                 # or "inf" / absent: IV bolus (instantaneous boost)
    half_life = "80h"            # or ke
    volume = "8L"                # required for interferon and checkpoint (vaccine/exercise: 1)
    bioavailability = 1.0
    ec50 = "6ng/mL"              # vaccine/exercise: a plain number of units
    emax = 1.0                   # <= 1 for interferon and checkpoint
    hill = 1.0
    standard_dose = "90ug"       # vaccine/exercise: units (default 1)
    standard_interval = "1w"

    [engine]                     # options of the stochastic, abm and mesa engines
    cell_scale = 1.0             # leukemic cells per model cell unit (all three)
    dt = "1d"                    # abm/mesa step; stochastic: dt_max, eps; abm/mesa: lattice,
                                 #   max_agents and sim.engines.abm.ABM_PARAMS by name

    [readout]                    # overrides of sim.readout.QPCR by name

    [output]
    figure = true
    formats = ["png", "pdf"]

    [sweep]                      # a parameter sweep of this patient (sim.sweep lists the keys)
    design = "sobol"             # "grid" | "lhs" | "sobol" | "morris"
    n = 1024
    [sweep.params]               # address = range (sim.sweep.design lists the addresses)
    protocol.stop.at = { low = "2y", high = "5y" }

Intervention anchors (:data:`ANCHORS`; the kernel's ``ANCHOR_*`` codes): ``"diagnosis"`` (t = 0),
``"mmr"`` and ``"mr4"`` (first measured MMR / MR4), ``"stop_criteria"`` (the visit at which the
stop criteria are first met, i.e. the start of the lead-in; with a fixed stop, the start of its
lead-in or, without one, the stop itself), ``"tki_stop"``, ``"first_rise"`` (first post-stop
visit with measured BCR-ABL1 > 0.01 %) and ``"relapse"`` (by the protocol's restart rule). An
intervention starts at its anchor's first occurrence plus the offset. Offsets are >= 0, with one
exception: before a *fixed* stop (``stop = { at = ... }``) ``tki_stop`` may take a negative
offset, which is converted to a start at ``stop_at + offset`` after diagnosis (given even if a
failed lead-in cancels that stop). A criteria stop is not known in advance: to act before it,
anchor at ``"stop_criteria"`` and give the protocol a ``lead_in``. An intervention whose anchor
cannot happen under the protocol (``tki_stop``, ``first_rise`` or ``relapse`` with no stop) is
valid; it is never given, results report it as not given and :meth:`Scenario.describe` says so.

Overlapping interventions (the same product or several products at the same time) are valid:
each keeps its own PK state and their effects combine per drive slot, as
:math:`1 - \prod_k (1 - E_k)` on the interferon and PD-1 slots (occupancy-like, stays <= 1) and
as the sum :math:`\sum_k E_k` of the vaccine and exercise boosts.

Quantities are written with their unit (``"90ug"``, ``"12mo"``, ``"250L"``): a plain number other
than 0 where a unit is expected is refused, with a message that suggests the unit, because a bare
``90`` would be read in the internal unit (mg, days) whatever the writer meant. Numbers use the
ASCII digits 0-9. Every value is checked against a finite range before anything runs: times are 0
or from 1 minute to 200 years, dosing intervals at most the horizon, and the PK constants,
tolerances, seeds, counts and names have the ranges given above.

Every error is a :class:`ScenarioError` with one message ``FILE:LINE: KEY: found ..., expected
...`` of at most 280 characters, echoed values abridged; the line is located in the source text
(``[table]`` and ``[[array]]`` headers, ``key =`` lines, inline tables and arrays), and for TOML
syntax errors taken from :mod:`tomllib`.
"""

from __future__ import annotations

import bisect
import csv
import functools
import itertools
import math
import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.params import DAYS_PER_MONTH, DAYS_PER_YEAR, did_you_mean
from sim.units import (
    UnitError,
    _show,
    abridge,
    format_duration,
    parse_concentration,
    parse_dose,
    parse_duration,
    parse_param_value,
    parse_rate,
    parse_volume,
)

if TYPE_CHECKING:
    from sim.models.base import ModelSpec
    from sim.therapy.drugs import Drug
    from sim.therapy.interventions import Product

__all__ = [
    "ANCHORS",
    "AVAILABLE_ENGINES",
    "ENGINES",
    "Intervention",
    "Protocol",
    "Scenario",
    "ScenarioError",
    "Sweep",
    "SweepParam",
    "TherapySegment",
    "format_key",
    "hahnel_patient",
    "hahnel_record",
    "load",
    "loads",
    "validate_main",
]

#: Engine names a scenario may give, and the ones that can run today.
ENGINES = ("ode", "stochastic", "abm", "mesa")
AVAILABLE_ENGINES = ENGINES
PK_MODES = ("interval", "daily", "kill")
#: How an intervention's doses reach the drive (see :class:`Intervention`).
INTERVENTION_PK_MODES = ("doses", "interval")
RESTART_RULES = ("loss_of_mmr", "two_consecutive", "never")
DECISIONS = ("measured", "true")
FIGURE_FORMATS = ("png", "pdf", "svg")
DEFAULT_RTOL = 1e-6
DEFAULT_OUTPUT_EVERY = 7.0
#: Longest horizon (days) and most trajectory points a scenario may ask for.
MAX_HORIZON = 200 * DAYS_PER_YEAR
MAX_OUTPUT_POINTS = 1_000_000
N_HAHNEL = 21
#: Shortest nonzero time a scenario may give (days): the solver cannot step between two events
#: much closer than this (its smallest step is 1e-12 of the time).
TIME_RESOLUTION = 1.0 / 1440.0
#: Longest scenario or intervention name: names become folder names (``results/<name>/`` and
#: its hidden ``.<name>.tmp-XXXXXXXX`` sibling), which most file systems cap at 255 bytes.
MAX_NAME = 128
#: Largest seed: it fits a signed 64-bit integer wherever it is stored or passed on.
MAX_SEED = 2**63 - 1
#: Ranges of the PK constants of [drug.<name>] and [product.<name>] tables (internal units: per
#: day, days, L, mg/L, mg). Wide enough for any real drug; they keep the effect quadrature of
#: sim.therapy.pk and the kernels' dose events finite and fast.
RATE_RANGE = (1e-4, 1e4)
HALF_LIFE_RANGE = (1.0 / 1440.0, 10 * DAYS_PER_YEAR)
VOLUME_RANGE = (1e-3, 1e5)
EC50_RANGE = (1e-9, 1e3)
HILL_RANGE = (0.1, 10.0)
DOSE_RANGE = (1e-6, 1e5)
#: Longest standard dosing interval of a drug or product.
MAX_STANDARD_INTERVAL = DAYS_PER_YEAR
#: Largest plain number of units (vaccine shots, exercise sessions; their EC50 and E_max).
MAX_UNITS = 1e6
#: Range of an absolute tolerance: it covers the default (rtol times the model's per-state scale)
#: at every allowed rtol; a larger one lets the solver step over whole states.
ATOL_RANGE = (1e-20, 1e-2)
#: Most TKI stops a protocol may allow, and most samples a [sweep] may ask for.
MAX_STOPS = 1000
MAX_SWEEP_N = 2**24
#: Most trajectory points a cohort may store (patients times points per patient).
MAX_COHORT_POINTS = 100_000_000
#: Most time steps of the cell-level engines over the horizon ([engine] dt, dt_max).
MAX_ENGINE_STEPS = 1_000_000
#: Most doses an intervention may count.
MAX_COUNT = 10_000_000
#: Largest scenario file, in bytes (the TOML parser takes seconds per megabyte).
MAX_SCENARIO_BYTES = 1_000_000
#: Largest empirical CSV file of a [cohort] parameter, in bytes.
MAX_CSV_BYTES = 10_000_000
#: Longest message of a ScenarioError (one line; a command's prefix such as "cmlsim validate: "
#: keeps the line within 300 characters).
MAX_MESSAGE = 280

#: Anchors an intervention's start may name, in the order of the kernel's ANCHOR_* codes
#: (``sim.run.ANCHORS`` maps them to the codes).
ANCHORS = ("diagnosis", "mmr", "mr4", "stop_criteria", "tki_stop", "first_rise", "relapse")
#: Anchors that only a TKI stop can bring.
_STOP_ANCHORS = ("stop_criteria", "tki_stop", "first_rise", "relapse")
PRODUCT_KINDS = ("interferon", "checkpoint", "vaccine", "exercise")
#: Kinds dosed by mass (mg); vaccine and exercise doses are plain numbers of units.
_MASS_KINDS = ("interferon", "checkpoint")

_SECTIONS = (
    "scenario",
    "patient",
    "therapy",
    "drug",
    "protocol",
    "intervention",
    "product",
    "readout",
    "output",
    "cohort",
    "trial",
    "engine",
    "sweep",
)
_PLANNED: dict[str, str] = {}
# a results folder name: no leading "." (hidden) or "-" (read as an option); as sim.results
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_MISSING: Any = object()

# Readout depth codes (sim.readout.DEPTH_*), used when sim.readout cannot be imported.
_DEPTH_FALLBACK = {"MMR": 3, "MR3": 3, "MR4": 4, "MR4.5": 5, "MR5": 6}


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class TherapySegment:
    """One stretch of TKI treatment.

    Attributes
    ----------
    drug : sim.therapy.drugs.Drug
        The drug (built in, user-defined, or a built-in with overridden fields).
    dose : float
        Dose per administration, mg.
    every : float
        Dosing interval, days.
    start : float
        Start, days since diagnosis.
    end : float or None
        End, days since diagnosis; None = open (the protocol may stop earlier).
    pk : str
        ``"interval"`` (E_max effect averaged over a steady-state dosing interval), ``"daily"``
        (every dose resolved) or ``"kill"`` (constant kill rate, linear in dose, as Hähnel 2020).
    adherence : float
        Fraction of doses taken, in (0, 1]. ``daily``: each dose is taken with this probability
        (the patient's random stream); ``interval`` and ``kill``: the dose is scaled by it.
    on, off : float
        Intermittent dosing: on for ``on`` days, off for ``off`` days, cycling from the segment
        start; both 0 = continuous.
    switch : bool
        True for the target of the protocol's switch rule (:attr:`Protocol.switch_at`): inactive
        until the rule fires, then it replaces the running segment.
    """

    drug: Drug
    dose: float
    every: float
    start: float
    end: float | None
    pk: str
    adherence: float = 1.0
    on: float = 0.0
    off: float = 0.0
    switch: bool = False

    def describe(self) -> str:
        """``"imatinib 400 mg/1d"`` plus adherence and intermittent dosing when given."""
        out = f"{self.drug.name} {self.dose:g} mg/{_readable(self.every)}"
        if self.on > 0:
            out += f" {_readable(self.on)} on/{_readable(self.off)} off"
        if self.adherence < 1:
            out += f" ({self.adherence:.0%} of doses taken)"
        return out


@dataclass(frozen=True)
class Protocol:
    """The clinical rules evaluated at monitoring visits.

    Attributes
    ----------
    monitoring : str
        ``"eln2020"`` (every 3 months on therapy; monthly in months 1-6 after a stop, every 2
        months in months 7-12, then every 3 months) or ``"every"`` (fixed spacing).
    monitor_every : float or None
        Spacing of visits in days for ``"every"``; None for ELN 2020.
    stop_kind : str
        ``"never"``, ``"fixed"`` (at ``stop_at``) or ``"criteria"`` (at the first visit where the
        patient has been on TKI >= ``stop_after`` and at ``stop_depth`` or deeper for
        ``stop_sustained_for``).
    stop_at : float or None
        Fixed stop time, days since diagnosis.
    stop_after : float
        Minimum time on TKI before a criteria stop, days (0 unless ``"criteria"``).
    stop_depth : int
        Molecular response to be sustained, as a ``sim.readout`` DEPTH code (MMR 3, MR4 4,
        MR4.5 5, MR5 6; 0 unless ``"criteria"``).
    stop_sustained_for : float
        How long the depth must be sustained, days (0 unless ``"criteria"``).
    lead_in : float
        Days at reduced dose before the stop (0 = none). With a criteria stop the lead-in starts
        when the criteria are first met; with a fixed stop it ends at ``stop_at``.
    lead_in_dose : float
        Dose fraction during the lead-in (1 when there is none).
    restart : str
        ``"loss_of_mmr"`` (one sample > 0.1 %), ``"two_consecutive"`` (two consecutive samples
        > 0.1 %) or ``"never"``.
    max_stops : int
        Number of stop attempts allowed.
    decisions : str
        ``"measured"`` (qPCR samples) or ``"true"`` (the true BCR-ABL1).
    switch_at : float or None
        TKI switch for a slow response: at the first visit at or after this time (days since
        diagnosis), if the measured depth is shallower than ``switch_depth``, the segment marked
        ``switch`` replaces the running one. None = no switch rule.
    switch_depth : int
        Depth required by ``switch_at`` (``sim.readout`` DEPTH code; 0 without a rule).
    """

    monitoring: str = "eln2020"
    monitor_every: float | None = None
    stop_kind: str = "never"
    stop_at: float | None = None
    stop_after: float = 0.0
    stop_depth: int = 0
    stop_sustained_for: float = 0.0
    lead_in: float = 0.0
    lead_in_dose: float = 1.0
    restart: str = "loss_of_mmr"
    max_stops: int = 1
    decisions: str = "measured"
    switch_at: float | None = None
    switch_depth: int = 0


@dataclass(frozen=True)
class Intervention:
    """One immune intervention: a product given on a schedule that starts at an anchor.

    Doses at ``start``, ``start + every``, ... while fewer than ``count`` and before
    ``start + duration`` and the horizon, where ``start`` is the first occurrence of ``anchor``
    plus ``offset``; if the anchor never happens the intervention is not given.

    Attributes
    ----------
    name : str
        Unique within the scenario.
    product : sim.therapy.interventions.Product
    anchor : str
        One of :data:`ANCHORS`.
    offset : float
        Days after the anchor (>= 0).
    duration : float or None
        Days from the start during which doses are given; None = open.
    every : float
        Dosing interval, days.
    count : int or None
        Most doses given; None = no limit.
    dose : float
        Per administration: mg for interferon and checkpoint products, units (shots, sessions)
        for vaccine and exercise.
    pk : str
        ``"doses"``: each dose resolved through the product's PK (the default). ``"interval"``:
        from the first dose to one interval after the last, the effect is constant at its
        steady-state interval mean (:func:`sim.therapy.interventions.interval_mean_effect`),
        then the washout is resolved from the steady-state trough. Much faster in cohorts and
        sweeps (no integrator restart at every dose); loading is not resolved, which is exact
        enough when the half-life is short next to the course (peg-interferon, 3–4 days; on the
        shipped interferon scenarios the two modes differ by <= 0.07 log10 of BCR-ABL1 and
        relapse at the same visit), less so for nivolumab (half-life 25 days: about a month).
    """

    name: str
    product: Product
    anchor: str
    offset: float
    duration: float | None
    every: float
    count: int | None
    dose: float
    pk: str = "doses"

    def describe(self) -> str:
        """``"nivolumab 240 mg every 2w from tki_stop + 1mo for 6mo, at most 4 doses"``."""
        unit = " mg" if self.product.kind in _MASS_KINDS else (" unit" + "s" * (self.dose != 1))
        start = self.anchor
        if self.offset > 0:
            start += f" + {_readable(self.offset)}"
        until = ""
        if self.duration is not None:
            until += f" for {_readable(self.duration)}"
        if self.count is not None:
            until += f", at most {self.count} dose" + "s" * (self.count != 1)
        mean = " (interval-mean effect)" if self.pk == "interval" else ""
        return (
            f"{self.product.name} {self.dose:g}{unit} every {_readable(self.every)} "
            f"from {start}{until or ' to the horizon'}{mean}"
        )


#: Distributions a ``[cohort]`` parameter may follow (see :class:`ParamDist`).
DISTRIBUTIONS = ("normal", "lognormal", "uniform", "truncated", "empirical", "fixed")
#: Cohort bases: ``"hahnel2020"`` (resampled Hähnel patients, see :mod:`sim.cohort`) or ``"none"``.
COHORT_BASES = ("hahnel2020", "none")
#: Named trial designs (``[trial] design``; :data:`TRIAL_DESIGNS` gives their protocols).
TRIAL_DESIGN_NAMES = ("euro-ski", "stim", "destiny", "custom")
#: Keys of each distribution in ``[cohort]``.
_DIST_KEYS: dict[str, tuple[str, ...]] = {
    "normal": ("mean", "sd"),
    "lognormal": ("median", "sd_log"),
    "uniform": ("low", "high"),
    "empirical": ("file", "column", "unit"),
    "fixed": ("value",),
}
#: Largest cohort a scenario may declare.
MAX_COHORT = 10_000_000


@dataclass(frozen=True)
class ParamDist:
    """The distribution of one model parameter across a cohort (values in table units).

    Attributes
    ----------
    name : str
        Model parameter.
    dist : str
        ``"normal"`` (``a`` = mean, ``b`` = sd), ``"lognormal"`` (``a`` = log of the median,
        ``b`` = sd of the log), ``"uniform"`` (``a`` = low, ``b`` = high), ``"empirical"``
        (resampled ``values``) or ``"fixed"`` (``a`` for every patient).
    a, b : float
        Distribution parameters (see ``dist``).
    lower, upper : float
        Truncation interval: the user's ``lower``/``upper`` intersected with the parameter's
        bounds. Samples are drawn exactly from the truncated law (inverse CDF), never clipped.
    values : tuple of float
        Sorted sample of an ``"empirical"`` distribution (already inside ``[lower, upper]``).
    source : str
        Where an empirical sample came from (``file:column``).
    """

    name: str
    dist: str
    a: float = math.nan
    b: float = math.nan
    lower: float = -math.inf
    upper: float = math.inf
    values: tuple[float, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class Correlation:
    """A Gaussian copula between parameters with explicit distributions.

    ``matrix`` is the correlation of the normal scores Φ⁻¹(F_i(x_i)); for normal marginals it is
    the Pearson correlation of the parameters themselves, for others the rank structure.
    """

    params: tuple[str, ...]
    matrix: tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class Cohort:
    """A virtual cohort (``[cohort]``); sampled by :func:`sim.cohort.sample_parameters`.

    Attributes
    ----------
    size : int
        Number of patients.
    base : str
        ``"hahnel2020"``: each patient resamples one of the 21 Hähnel et al. 2020 patients'
        (p_xy, p_yx, e_tki, p_z, K_z, y0), perturbed by ``exp(spread · N(0, 1))`` each, and draws
        NK production and NK kill between patients (:mod:`sim.cohort`); ``"none"``: every
        patient has the scenario's ``[patient]`` values except the parameters in ``params``.
    spread : float
        Log-sd of the perturbation of a resampled Hähnel patient (default 0.1).
    params : tuple of ParamDist
        Explicit distributions (they override the base for their parameter).
    correlations : tuple of Correlation
    trajectory_every : float or None
        Spacing (days) of a stored coarse trajectory per patient; None = final state only.
    store_visits : bool
        Keep every patient's monitoring visits in the Dataset.
    calibration : str
        With ``base = "hahnel2020"``: ``"tang2011"`` (default) re-fits the TKI effect and the load
        at diagnosis to Tang 2011's kinetics (:data:`sim.cohort.CALIBRATION`); ``"none"`` keeps
        the Hähnel fits as published.
    """

    size: int
    base: str = "hahnel2020"
    spread: float = 0.1
    params: tuple[ParamDist, ...] = ()
    correlations: tuple[Correlation, ...] = ()
    trajectory_every: float | None = None
    store_visits: bool = False
    calibration: str = "tang2011"


@dataclass(frozen=True)
class Trial:
    """A discontinuation-trial design (``[trial]``) and its follow-up.

    The design's eligibility, lead-in, relapse and restart rules are compiled into the scenario's
    :class:`Protocol` (see :data:`TRIAL_DESIGNS`); this records what was asked for.

    Attributes
    ----------
    design : str
        ``"euro-ski"``, ``"stim"``, ``"destiny"`` or ``"custom"`` (the ``[protocol]`` as written).
    follow_up : float
        Follow-up after the stop for the relapse-free analysis, days (default 24 months): a
        patient without relapse is censored at ``stop + follow_up`` (or the horizon).
    arm : str
        Label of this arm in the outcome table (default: the scenario name).
    notes : str
        Where the emulation departs from the published design.
    """

    design: str
    follow_up: float
    arm: str
    notes: str = ""


@dataclass(frozen=True)
class SweepParam:
    """One parameter of a ``[sweep]``: its address and range (:mod:`sim.sweep.design`).

    Attributes
    ----------
    path : str
        Address as written, e.g. ``"patient.k_E"``, ``"therapy.0.dose"``, ``"protocol.stop.at"``,
        ``"intervention.0.start"``.
    name : str
        Its coordinate name in the sweep store.
    low, high : float
        Range, in ``unit`` (days for times).
    scale : str
        ``"linear"`` or ``"log"`` (uniform in the logarithm).
    levels : int or None
        Grid points of this parameter (``grid`` only; default the sweep's ``levels``).
    values : tuple of float
        Explicit grid values (``grid`` only; ``low`` and ``high`` are their extremes).
    unit : str
    """

    path: str
    name: str
    low: float
    high: float
    scale: str = "linear"
    levels: int | None = None
    values: tuple[float, ...] = ()
    unit: str = ""


@dataclass(frozen=True)
class Sweep:
    """A parameter sweep (``[sweep]``), run by :func:`sim.sweep.run_sweep`.

    Attributes
    ----------
    design : str
        ``"grid"``, ``"lhs"``, ``"sobol"`` or ``"morris"`` (:mod:`sim.sweep.design`).
    params : tuple of SweepParam
    n : int or None
        LHS samples, Sobol base samples (a power of 2) or Morris trajectories; None for a grid.
    levels : int
        Grid points per parameter (default 5) or Morris levels (default 4).
    second_order : bool
        Sobol: second-order indices too (``n (2D + 2)`` runs instead of ``n (D + 2)``).
    chunk : int or None
        Runs per task and per stored chunk (None: about 48 chunks of 128 to 1024 runs).
    outputs : tuple of str
        Metrics to analyse (:mod:`sim.sweep.metrics`).
    trajectory_every : float or None
        Spacing (days) of a stored coarse trajectory per run; None: none.
    phase : tuple of str
        Two addresses for the phase diagram (empty: the two most influential).
    """

    design: str
    params: tuple[SweepParam, ...]
    n: int | None = None
    levels: int = 4
    second_order: bool = True
    chunk: int | None = None
    outputs: tuple[str, ...] = ("tfr_24mo", "tfr_months")
    trajectory_every: float | None = None
    phase: tuple[str, ...] = ()


#: Named designs: eligibility (minimum time on TKI, depth, for how long), lead-in, relapse rule,
#: and how the emulation approximates the trial (each design's ``notes`` cite the trial).
TRIAL_DESIGNS: dict[str, dict[str, Any]] = {
    "euro-ski": {
        "stop_after": 3 * DAYS_PER_YEAR,
        "stop_depth": "MR4",
        "stop_sustained_for": 1 * DAYS_PER_YEAR,
        "lead_in": 0.0,
        "lead_in_dose": 1.0,
        "restart": "loss_of_mmr",
        "notes": "Saussele 2018: TKI >= 3 y, confirmed MR4 >= 1 y; relapse = single loss of MMR; "
        "restart.",
    },
    "stim": {
        "stop_after": 3 * DAYS_PER_YEAR,
        "stop_depth": "MR4.5",
        "stop_sustained_for": 2 * DAYS_PER_YEAR,
        "lead_in": 0.0,
        "lead_in_dose": 1.0,
        "restart": "loss_of_mmr",
        "notes": "Mahon 2010: imatinib >= 3 y, undetectable BCR-ABL1 >= 2 y; emulated as MR4.5 "
        "(undetectable with >= 32,000 ABL1 copies, or detected <= 0.0032 %) sustained 2 y. "
        "Relapse: STIM's 'confirmed 1-log rise' rule is not in the kernel; only its other arm, "
        "a single loss of MMR, is applied (relapse counts are a lower bound).",
    },
    "destiny": {
        "stop_after": 3 * DAYS_PER_YEAR,
        "stop_depth": "MMR",
        "stop_sustained_for": 1 * DAYS_PER_YEAR,
        "lead_in": 12 * DAYS_PER_MONTH,
        "lead_in_dose": 0.5,
        "restart": "two_consecutive",
        "notes": "Clark 2017/2019: TKI >= 3 y, every PCR < 0.1 % in the last 12 months (ELN "
        "quarterly visits: 5 samples); 12 months at half dose, then stop; recurrence = 2 "
        "consecutive > 0.1 %; restart full dose.",
    },
}


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. Times in days; parameters in their table units.

    Attributes
    ----------
    path, text : str
        Where the scenario came from and its full source text (for provenance).
    name, question, model, engine : str
        As in ``[scenario]``.
    horizon : float
        Simulated time, days from diagnosis.
    seed : int
        Seed of the random streams.
    rtol : float
        Relative tolerance of the integrator.
    atol : float or None
        Absolute tolerance; None = the model's per-state default.
    output_every : float
        Spacing of the trajectory output, days.
    patient : dict
        Parameter overrides (name -> value in table units) with the preset and Hähnel patient
        already applied; the full vector is :meth:`param_vector`.
    therapy : tuple of TherapySegment
        In chronological order (a switch target among them, by its own start).
    protocol : Protocol
    readout : dict
        Overrides of ``sim.readout.QPCR`` (name -> value in table units).
    figure : bool
    formats : tuple of str
    interventions : tuple of Intervention
        In file order.
    cohort : Cohort or None
        The virtual cohort of ``[cohort]`` (None: a single patient).
    trial : Trial or None
        The trial design of ``[trial]``; its protocol is already in :attr:`protocol`.
    engine_options : dict
        ``[engine]`` options of the stochastic, abm and mesa engines (name -> value; times in
        days), see :mod:`sim.engines.cellular`.
    sweep : Sweep or None
        The parameter sweep of ``[sweep]`` (None: no sweep).
    """

    path: str
    text: str
    name: str
    question: str
    model: str
    engine: str
    horizon: float
    seed: int
    rtol: float
    atol: float | None
    output_every: float
    patient: dict[str, float]
    therapy: tuple[TherapySegment, ...]
    protocol: Protocol
    readout: dict[str, float] = field(default_factory=dict)
    figure: bool = True
    formats: tuple[str, ...] = ("png", "pdf")
    interventions: tuple[Intervention, ...] = ()
    cohort: Cohort | None = None
    trial: Trial | None = None
    engine_options: dict[str, float] = field(default_factory=dict)
    sweep: Sweep | None = None

    def model_spec(self) -> ModelSpec:
        """The :class:`sim.models.base.ModelSpec` this scenario runs."""
        from sim import models

        return models.get(self.model)

    def param_vector(self) -> np.ndarray:
        """The model's parameter vector with :attr:`patient` applied (internal units)."""
        return self.model_spec().params.vector(self.patient)

    def never_given(self) -> dict[str, str]:
        """Interventions whose anchor cannot happen under the protocol: name -> why.

        They are valid (results report them as not given); :meth:`describe` lists them.
        """
        out = {}
        for iv in self.interventions:
            why = _unreachable(iv.anchor, self.protocol)
            if why:
                out[iv.name] = why
        return out

    def describe(self) -> str:
        """A summary: model, engine, horizon, therapy and stop rule on the first line, then one
        line per intervention with its timing."""
        p = self.protocol
        names = {v: k for k, v in reversed(_depth_codes().items())}
        if p.stop_kind == "fixed":
            stop = f"stop at {format_duration(p.stop_at or 0.0)}"
        elif p.stop_kind == "criteria":
            depth = names.get(p.stop_depth, "?")
            stop = (
                f"stop after {format_duration(p.stop_after)} if {depth} for "
                f"{format_duration(p.stop_sustained_for)}"
            )
        else:
            stop = "no stop"
        drugs = ", ".join(s.describe() for s in self.therapy if not s.switch)
        for s in self.therapy:
            if s.switch and p.switch_at is not None:
                drugs += (
                    f", switch to {s.describe()} if not {names.get(p.switch_depth, '?')} at "
                    f"{format_duration(p.switch_at)}"
                )
        lines = [
            f"{self.name} ({self.model}, {self.engine}, horizon {format_duration(self.horizon)}, "
            f"{drugs or 'untreated'}, {stop})"
        ]
        never = self.never_given()
        for iv in self.interventions:
            line = f"  intervention {iv.name}: {iv.describe()}"
            if iv.name in never:
                line += f" -- never given: {never[iv.name]}"
            lines.append(line)
        return "\n".join(lines)


def _readable(days: float) -> str:
    """A duration for summaries: :func:`sim.units.format_duration` unless that is long."""
    exact = format_duration(days)
    return exact if len(exact) <= 8 else f"{days:.4g}d"


def _unreachable(anchor: str, protocol: Protocol) -> str:
    """Why ``anchor`` can never happen under ``protocol`` ("" if it can)."""
    if anchor not in _STOP_ANCHORS:
        return ""
    if protocol.stop_kind == "never":
        return f'{anchor} needs a TKI stop, and protocol.stop is "never"'
    if protocol.max_stops == 0:
        return f"{anchor} needs a TKI stop, and protocol.max_stops is 0"
    return ""


class ScenarioError(ValueError):
    """A scenario that cannot be used, with where and why.

    Attributes
    ----------
    file : str
        The scenario file (or ``"<string>"``).
    line : int or None
        1-based line of the offending key or table, when it could be located.
    key : str
        Key path such as ``therapy[0].dose`` (empty for syntax errors).
    found, expected : str
        What was found and what is expected instead.

    ``str(err)`` is ``"FILE:LINE: KEY: found ..., expected ..."``.
    """

    def __init__(self, file: str, line: int | None, key: str, found: str, expected: str):
        self.file = file
        self.line = line
        self.key = key
        self.found = found
        self.expected = expected
        super().__init__(str(self))

    def __reduce__(self):
        return (type(self), (self.file, self.line, self.key, self.found, self.expected))

    def __str__(self) -> str:
        where = f"{abridge(self.file, 150)}:{self.line}" if self.line else abridge(self.file, 150)
        key = f" {abridge(self.key, 80)}:" if self.key else ""
        found = abridge(self.found, 120)
        msg = f"{where}:{key} found {found}, expected {abridge(self.expected, 1000)}"
        return msg if len(msg) <= MAX_MESSAGE else msg[: MAX_MESSAGE - 1] + "…"


# ---------------------------------------------------------------------------------------------
# Locating keys in the source text


Path = tuple[str | int, ...]


def format_key(path: Path) -> str:
    """``("therapy", 0, "dose")`` -> ``"therapy[0].dose"`` (non-bare keys quoted)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            part = abridge(part, 40)
            text = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"'
            out += f".{text}" if out else text
    return out


class _KeyLines:
    """Position of every key path of a TOML text (best effort; never raises).

    Tracks ``[table]`` and ``[[array]]`` headers (with the index of each array element),
    ``key = value`` lines with dotted and quoted keys, and the keys and elements of inline tables
    and arrays, skipping over strings (multi-line ones too) and comments.
    """

    _BARE = re.compile(r"[A-Za-z0-9_-]+")
    # strings and plain values matched whole by regular expressions, not character by character,
    # so that a huge value is skipped quickly
    _BASIC = re.compile(r'"[^"\\\n]*(?:\\[\s\S][^"\\\n]*)*"')
    _LITERAL = re.compile(r"'[^'\n]*'")
    _BASIC_ML = re.compile(r'"""[^"\\]*(?:(?:\\[\s\S]|"(?!""))[^"\\]*)*"""')
    _PLAIN = re.compile(r"[^,\]}#\n]*")

    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.pos: dict[Path, int] = {}
        self.arrays: dict[Path, int] = {}
        self._newlines = [m.start() for m in re.finditer("\n", text)]
        try:
            self._document()
        except (IndexError, ValueError, RecursionError):
            pass  # a best-effort map: what was located before the problem stays

    def line(self, path: Path) -> int | None:
        """Line of ``path`` or of its closest located ancestor."""
        for k in range(len(path), 0, -1):
            p = self.pos.get(path[:k])
            if p is not None:
                return bisect.bisect_left(self._newlines, p) + 1
        return None

    # -- scanner
    def _record(self, path: Path, at: int) -> None:
        self.pos.setdefault(path, at)

    def _peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def _blank(self, newlines: bool) -> None:
        """Skip spaces (and newlines and comments if ``newlines``)."""
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c in " \t" or (newlines and c in "\r\n"):
                self.i += 1
            elif newlines and c == "#":
                self._end_of_line()
            else:
                return

    def _document(self) -> None:
        prefix: Path = ()
        s = self.s
        while True:
            self._blank(newlines=True)
            if self.i >= len(s):
                return
            start = self.i
            if s.startswith("[[", self.i):
                self.i += 2
                keys = self._key()
                resolved = self._resolve(keys)
                idx = self.arrays.get(resolved, -1) + 1
                self.arrays[resolved] = idx
                prefix = (*resolved, idx)
                self._record(resolved, start)
                self._record(prefix, start)
            elif s[self.i] == "[":
                self.i += 1
                prefix = self._resolve(self._key())
                self._record(prefix, start)
            else:
                keys = self._key()
                self._blank(newlines=False)
                if self._peek() != "=":
                    raise ValueError("expected '='")
                self.i += 1
                self._keys_at(prefix, keys, start)
                self._value((*prefix, *keys))
            self._end_of_line()  # rest of the line (closing brackets, comments)

    def _end_of_line(self) -> None:
        """Move to the next newline (or the end of the text)."""
        j = self.s.find("\n", self.i)
        self.i = len(self.s) if j < 0 else j

    def _keys_at(self, prefix: Path, keys: tuple[str, ...], at: int) -> None:
        for k in range(1, len(keys) + 1):
            self._record((*prefix, *keys[:k]), at)

    def _resolve(self, keys: tuple[str, ...]) -> Path:
        out: list[str | int] = []
        for j, k in enumerate(keys):
            out.append(k)
            t = tuple(out)
            if j < len(keys) - 1 and t in self.arrays:
                out.append(self.arrays[t])
        return tuple(out)

    def _key(self) -> tuple[str, ...]:
        parts = []
        while True:
            self._blank(newlines=False)
            c = self._peek()
            if c in "\"'":
                start = self.i + 1
                self._string()
                parts.append(self.s[start : self.i - 1])
            else:
                m = self._BARE.match(self.s, self.i)
                if m is None:
                    raise ValueError("expected a key")
                parts.append(m.group(0))
                self.i = m.end()
            self._blank(newlines=False)
            if self._peek() != ".":
                return tuple(parts)
            self.i += 1

    def _string(self) -> None:
        s = self.s
        q = s[self.i]
        if s.startswith(q * 3, self.i):
            if q == '"':
                m = self._BASIC_ML.match(s, self.i)
                if m is None:
                    raise ValueError("unterminated string")
                self.i = m.end()
            else:
                j = s.find(q * 3, self.i + 3)
                if j < 0:
                    raise ValueError("unterminated string")
                self.i = j + 3
            while self._peek() == q:  # up to two quotes may end the content
                self.i += 1
            return
        m = (self._BASIC if q == '"' else self._LITERAL).match(s, self.i)
        if m is None:
            raise ValueError("unterminated string")
        self.i = m.end()

    def _value(self, path: Path) -> None:
        self._blank(newlines=False)
        c = self._peek()
        if c in "\"'":
            self._string()
        elif c == "[":
            self.i += 1
            k = 0
            while True:
                self._blank(newlines=True)
                if self._peek() == "]":
                    self.i += 1
                    return
                self._record((*path, k), self.i)
                self._value((*path, k))
                self._blank(newlines=True)
                if self._peek() == ",":
                    self.i += 1
                    k += 1
                elif self._peek() != "]":
                    raise ValueError("expected ',' or ']'")
        elif c == "{":
            self.i += 1
            while True:
                self._blank(newlines=False)
                if self._peek() == "}":
                    self.i += 1
                    return
                start = self.i
                keys = self._key()
                self._blank(newlines=False)
                if self._peek() != "=":
                    raise ValueError("expected '='")
                self.i += 1
                self._keys_at(path, keys, start)
                self._value((*path, *keys))
                self._blank(newlines=False)
                if self._peek() == ",":
                    self.i += 1
                elif self._peek() != "}":
                    raise ValueError("expected ',' or '}'")
        else:  # number, boolean, date: up to a delimiter
            start = self.i
            self.i = self._PLAIN.match(self.s, self.i).end()
            if self.i == start:
                raise ValueError("expected a value")


# ---------------------------------------------------------------------------------------------
# Value checks: each returns the converted value or raises UnitError(found, expected)


def _text(value: object, expected: str = "a string") -> str:
    if not isinstance(value, str):
        raise UnitError(_show(value), expected)
    return value


def _listing(items: Iterable[str], limit: int = 120, quote: bool = False) -> str:
    """``items`` joined by commas, cut after about ``limit`` characters with ", …" (the message
    stays one short line however many keys or drugs there are)."""
    out = ""
    for item in items:
        text = f'"{abridge(item, 40)}"' if quote else abridge(item, 40)
        if out and len(out) + len(text) > limit:
            return out + ", …"
        out = f"{out}, {text}" if out else text
    return out


def _suggest(value: str, choices: tuple[str, ...] | list[str]) -> str:
    """:func:`sim.params.did_you_mean`, skipped for long values (its string matching is slow)."""
    return did_you_mean(value, choices) if len(value) <= 64 else ""


def _choice(value: object, choices: tuple[str, ...] | list[str], what: str = "") -> str:
    listed = _listing(choices, quote=True)
    expected = f"{what}one of {listed}" if len(choices) > 1 else f"{what}{listed}"
    if not isinstance(value, str):
        raise UnitError(_show(value), expected)
    if value not in choices:
        raise UnitError(_show(value), expected + _suggest(value, choices))
    return value


def _integer(value: object, lo: int, hi: int | None = None) -> int:
    expected = f"an integer >= {lo}" if hi is None else f"an integer from {lo} to {hi}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnitError(_show(value), expected)
    if value < lo or (hi is not None and value > hi):
        raise UnitError(_show(value), expected)
    return value


def _number(value: object, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnitError(_show(value), expected)
    try:
        x = float(value)
    except OverflowError:
        raise UnitError(f"{_show(value)} (too large)", expected) from None
    if not math.isfinite(x):
        raise UnitError(_show(value), expected)
    return x


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise UnitError(_show(value), "true or false")
    return value


def _days(value: object, days: float) -> str:
    return f"{_show(value)} (= {days:g} days)" if isinstance(value, str) else _show(value)


# Scenario files write every quantity with its unit: a plain number other than 0 is refused with
# a message that suggests the unit (sim.units, unit_required).
_parse_duration = functools.partial(parse_duration, unit_required=True)
_parse_dose = functools.partial(parse_dose, unit_required=True)
_parse_rate = functools.partial(parse_rate, unit_required=True)
_parse_volume = functools.partial(parse_volume, unit_required=True)
_parse_concentration = functools.partial(parse_concentration, unit_required=True)


def _duration(value: object, *, positive: bool = True) -> float:
    """A duration in days, > 0 (or >= 0 when not ``positive``), 0 or from
    :data:`TIME_RESOLUTION` to :data:`MAX_HORIZON`."""
    d = _parse_duration(value)
    if d < 0 or (positive and d == 0):
        expected = "a duration > 0" if positive else "a duration >= 0"
        raise UnitError(_days(value, d), f'{expected} (e.g. "90d", "18mo", "5y")')
    if d > MAX_HORIZON or 0 < d < TIME_RESOLUTION:
        raise UnitError(_days(value, d), "0 or a duration from 1min to 200y")
    return d


def _offset(value: object) -> float:
    """A signed duration (an offset from an anchor): 0 or from :data:`TIME_RESOLUTION` to
    :data:`MAX_HORIZON` either way."""
    d = _parse_duration(value)
    if abs(d) > MAX_HORIZON or 0 < abs(d) < TIME_RESOLUTION:
        raise UnitError(_days(value, d), "0 or an offset from 1min to 200y, either way")
    return d


def _dosing_interval(value: object) -> float:
    """A dosing interval in days, at least one hour and at most :data:`MAX_HORIZON` (a scenario
    also keeps it within its horizon)."""
    d = _parse_duration(value)
    if not 1.0 / 24.0 <= d <= MAX_HORIZON:
        raise UnitError(_days(value, d), 'a dosing interval from 1h to 200y (e.g. "1d", "12h")')
    return d


def _standard_interval(value: object) -> float:
    """A drug's or product's standard dosing interval: 1 hour to 1 year."""
    d = _parse_duration(value)
    if not 1.0 / 24.0 <= d <= MAX_STANDARD_INTERVAL:
        raise UnitError(_days(value, d), 'a dosing interval from 1h to 1y (e.g. "1d", "1w")')
    return d


def _within(parse: Callable[[object], float], lo: float, hi: float, expected: str) -> Callable:
    """``parse`` followed by a range check ``lo <= x <= hi`` (``expected`` says the range)."""

    def check(value: object) -> float:
        x = parse(value)
        if not lo <= x <= hi:
            raise UnitError(_show(value), expected)
        return x

    return check


def _units(expected: str) -> Callable:
    """A plain positive number of units (vaccine shots, exercise sessions), at most
    :data:`MAX_UNITS`."""

    def check(value: object) -> float:
        x = _number(value, expected)
        if not 0 < x <= MAX_UNITS:
            raise UnitError(
                _show(value),
                expected.replace("a plain number", f"a number > 0 and <= {MAX_UNITS:g}", 1),
            )
        return x

    return check


def _absorption(value: object) -> float:
    """An absorption rate in 1/day, or inf (``"inf"``) for an IV bolus / instantaneous input."""
    if (isinstance(value, str) and value.strip().lower() in ("inf", "infinity")) or (
        isinstance(value, float) and value == math.inf
    ):
        return math.inf
    try:
        return _rate(value)
    except UnitError as e:
        raise UnitError(e.found, e.expected + ', or "inf" for an IV bolus') from None


def _half_life(value: object) -> float:
    d = _parse_duration(value)
    if not HALF_LIFE_RANGE[0] <= d <= HALF_LIFE_RANGE[1]:
        raise UnitError(_days(value, d), 'a half-life from 1min to 10y (e.g. "18h")')
    return d


_LEADING_NUMBER = re.compile(r"^\s*[+-]?\.?[0-9]")

_dose = _within(_parse_dose, *DOSE_RANGE, 'a dose from 1ng to 100g (e.g. "400mg", "90ug")')
_rate = _within(_parse_rate, *RATE_RANGE, 'a rate from 1e-4/d to 1e4/d (e.g. "0.6/h")')
_volume = _within(_parse_volume, *VOLUME_RANGE, 'a volume from 1mL to 100000L (e.g. "250L")')
_concentration = _within(
    _parse_concentration, *EC50_RANGE, 'a concentration from 1e-9 to 1000 mg/L (e.g. "0.1mg/L")'
)
_hill = _within(
    functools.partial(_number, expected="a Hill coefficient from 0.1 to 10"),
    *HILL_RANGE,
    "a Hill coefficient from 0.1 to 10",
)


def _depth_codes() -> dict[str, int]:
    """MR level names -> ``sim.readout`` DEPTH codes."""
    try:
        from sim import readout as r

        return {
            "MMR": int(r.DEPTH_MMR),
            "MR3": int(r.DEPTH_MMR),
            "MR4": int(r.DEPTH_MR4),
            "MR4.5": int(r.DEPTH_MR45),
            "MR5": int(r.DEPTH_MR5),
        }
    except (ImportError, AttributeError):
        return dict(_DEPTH_FALLBACK)


def _first_start(therapy: tuple[TherapySegment, ...]) -> float:
    """Start of the first ordinary (not switch-target) segment."""
    return min(s.start for s in therapy if not s.switch)


def _drug_registry() -> dict[str, Drug]:
    from sim.therapy.drugs import DRUGS

    return dict(DRUGS)


def _qpcr_table():
    """``sim.readout.QPCR`` or None when the readout module is not there."""
    try:
        from sim.readout import QPCR
    except ImportError:
        return None
    return QPCR


# ---------------------------------------------------------------------------------------------
# Hähnel 2020 patients


@functools.lru_cache(maxsize=1)
def _hahnel_rows() -> tuple[dict[str, str], ...]:
    ref = resources.files("sim") / "data" / "hahnel2020_table_s1.csv"
    text = ref.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return tuple(csv.DictReader(lines))


def _hahnel_row(i: int) -> dict[str, str]:
    if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 1 <= i <= N_HAHNEL:
        raise ValueError(f"Hähnel patient: found {i!r}, expected an integer from 1 to {N_HAHNEL}")
    row = _hahnel_rows()[int(i) - 1]
    assert int(row["patient"]) == i, "hahnel2020_table_s1.csv is not in patient order"
    return row


def hahnel_patient(i: int) -> dict[str, float]:
    """Parameter overrides of Hähnel et al. 2020 patient ``i`` in internal units.

    Rates per month in Table S1 (p_xy, p_yx, e_tki, p_z) are divided by
    :data:`sim.params.DAYS_PER_MONTH`; K_z and y0 are in cell units.

    Parameters
    ----------
    i : int
        Patient number, 1 to 21.

    Returns
    -------
    dict
        ``{"p_xy", "p_yx", "e_tki", "p_z", "K_z", "y0"}`` -> value (``cml_immune`` table units).

    References
    ----------
    Hähnel T, Baldow C, Guilhot J, et al. Cancer Res 2020;80:2394-406, Supplementary Table S1.
    """
    row = _hahnel_row(i)
    per_month = ("p_xy", "p_yx", "e_tki", "p_z")
    out = {k: float(row[k]) / DAYS_PER_MONTH for k in per_month}
    out["K_z"] = float(row["K_z"])
    out["y0"] = float(row["y0"])
    return out


def hahnel_record(i: int) -> dict[str, float | str | bool]:
    """Everything Table S1 says about patient ``i``: :func:`hahnel_patient` plus ``cess_t``
    (TKI cessation, days since diagnosis), ``landscape`` (immune class A, B or C) and
    ``relapse_observed`` (clinical molecular relapse after the stop)."""
    row = _hahnel_row(i)
    return {
        **hahnel_patient(i),
        "cess_t": float(row["cess_t"]) * DAYS_PER_MONTH,
        "landscape": row["class"],
        "relapse_observed": row["relapse_observed"].strip() == "1",
    }


# ---------------------------------------------------------------------------------------------
# The reader


class _Reader:
    """Turns the parsed TOML document into a :class:`Scenario`, raising at the first problem."""

    def __init__(self, text: str, path: str):
        self.text = text
        self.path = path
        self._lines: _KeyLines | None = None
        self._switch_index: int | None = None  # [[therapy]] index of the switch target

    # -- errors
    def line(self, key: Path) -> int | None:
        if self._lines is None:
            self._lines = _KeyLines(self.text)
        return self._lines.line(key)

    def error(self, key: Path, found: str, expected: str) -> ScenarioError:
        return ScenarioError(self.path, self.line(key), format_key(key), found, expected)

    def table(self, value: object, key: Path, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(key, _show(value), what)
        return value

    def keys(self, tab: Mapping[str, Any], key: Path, allowed: tuple[str, ...]) -> None:
        for name in tab:
            if name not in allowed:
                raise self.error(
                    (*key, name),
                    f"an unknown key {_show(name)}",
                    "one of " + _listing(allowed) + _suggest(name, allowed),
                )

    def get(
        self,
        tab: Mapping[str, Any],
        key: Path,
        name: str,
        check: Callable[[object], Any],
        default: Any = _MISSING,
        expected: str = "",
    ) -> Any:
        """``check(tab[name])``, ``default`` if absent, or an error naming ``key.name``."""
        if name not in tab:
            if default is _MISSING:
                raise self.error((*key, name), "nothing (the key is missing)", expected)
            return default
        try:
            return check(tab[name])
        except UnitError as e:
            raise self.error((*key, name), e.found, e.expected) from None

    # -- the whole document
    def scenario(self, doc: dict[str, Any]) -> Scenario:
        for name in doc:
            if name in _PLANNED:
                raise self.error((name,), f"an [{name}] section", f"no [{name}]: {_PLANNED[name]}")
        self.keys(doc, (), _SECTIONS)
        if "scenario" not in doc:
            raise self.error(("scenario",), "no [scenario] table", "a [scenario] table")
        head = self.header(self.table(doc["scenario"], ("scenario",), "a [scenario] table"))
        from sim import models

        spec = models.get(head["model"])
        drugs = self.drugs(doc.get("drug", {}))
        patient = self.patient(doc.get("patient", {}), spec)
        therapy = self.therapy(doc.get("therapy", _MISSING), drugs, head["horizon"])
        protocol = self.protocol(doc.get("protocol", {}), therapy, head["horizon"])
        trial: Trial | None = None
        if "trial" in doc:
            trial, protocol = self.trial(
                doc["trial"],
                doc.get("protocol", {}),
                protocol,
                therapy,
                head["horizon"],
                head["name"],
            )
        cohort = self.cohort(doc["cohort"], spec, head["horizon"]) if "cohort" in doc else None
        interventions: tuple[Intervention, ...] = ()
        if "product" in doc or "intervention" in doc:
            products = self.products(doc.get("product", {}))
            interventions = self.interventions(
                doc.get("intervention", []), products, protocol, head["horizon"]
            )
        readout = self.readout(doc.get("readout", {}))
        figure, formats = self.output(doc.get("output", {}))
        engine_options = self.engine_section(doc.get("engine", {}), head["engine"], head["horizon"])
        if head["engine"] != "ode":
            from sim.engines import cellular

            problem = cellular.unsupported(head["engine"], therapy, protocol, interventions, trial)
            if problem:
                raise self.error(*problem)
        sweep = None
        if "sweep" in doc:
            sweep = self.sweep(doc, spec, therapy, protocol, interventions, head, cohort)
        return Scenario(
            path=self.path,
            text=self.text,
            patient=patient,
            therapy=therapy,
            protocol=protocol,
            readout=readout,
            figure=figure,
            formats=formats,
            interventions=interventions,
            cohort=cohort,
            trial=trial,
            engine_options=engine_options,
            sweep=sweep,
            **head,
        )

    def header(self, tab: dict[str, Any]) -> dict[str, Any]:
        k: Path = ("scenario",)
        allowed = (
            "name",
            "question",
            "model",
            "engine",
            "horizon",
            "seed",
            "rtol",
            "atol",
            "output_every",
        )
        self.keys(tab, k, allowed)
        name_expected = (
            f"a name of letters, digits, '_', '.' and '-', at most {MAX_NAME}, not starting with "
            "'.' or '-' (it becomes results/<name>/), "
            'e.g. "imatinib-eln-stop"'
        )

        def check_name(value: object) -> str:
            s = _text(value, name_expected)
            if len(s) > MAX_NAME:
                raise UnitError(_show(s), name_expected)  # shown with its length
            if not _NAME.match(s) or set(s) == {"."}:
                raise UnitError(_show(s), name_expected)
            return s

        from sim import models

        out: dict[str, Any] = {
            "name": self.get(tab, k, "name", check_name, expected=name_expected),
            "question": self.get(tab, k, "question", _text, ""),
            "model": self.get(tab, k, "model", lambda v: _choice(v, models.names()), "cml_immune"),
        }

        def check_engine(value: object) -> str:
            available = ", ".join(f'"{x}"' for x in AVAILABLE_ENGINES)
            planned = ", ".join(f'"{x}"' for x in ENGINES if x not in AVAILABLE_ENGINES)
            expected = f"an engine: {available}" + (
                f" (planned, not available yet: {planned})" if planned else ""
            )
            e = _text(value, expected)
            if e not in ENGINES:
                raise UnitError(_show(e), expected + _suggest(e, ENGINES))
            if e not in AVAILABLE_ENGINES:
                raise UnitError(
                    f'"{e}" (engine "{e}" is not available yet)',
                    f"an available engine: {available}",
                )
            return e

        out["engine"] = self.get(tab, k, "engine", check_engine, "ode")
        dur = 'a duration > 0 and <= 200y (e.g. "12y")'

        def check_horizon(value: object) -> float:
            d = _duration(value)
            if d > MAX_HORIZON:
                raise UnitError(_days(value, d), dur)
            return d

        out["horizon"] = horizon = self.get(tab, k, "horizon", check_horizon, expected=dur)
        out["seed"] = self.get(
            tab,
            k,
            "seed",
            lambda v: _integer(v, 0, MAX_SEED),
            expected=f"an integer from 0 to {MAX_SEED}",
        )

        def check_rtol(value: object) -> float:
            x = _number(value, "a number with 1e-12 < rtol < 1e-2")
            if not 1e-12 < x < 1e-2:
                raise UnitError(_show(value), "a number with 1e-12 < rtol < 1e-2")
            return x

        atol_expected = f"a number from {ATOL_RANGE[0]:g} to {ATOL_RANGE[1]:g}"

        def check_atol(value: object) -> float:
            x = _number(value, atol_expected)
            if not ATOL_RANGE[0] <= x <= ATOL_RANGE[1]:
                raise UnitError(_show(value), atol_expected)
            return x

        out["rtol"] = self.get(tab, k, "rtol", check_rtol, DEFAULT_RTOL)
        out["atol"] = self.get(tab, k, "atol", check_atol, None)

        def check_every(value: object) -> float:
            d = _duration(value)
            if d > horizon:
                raise UnitError(
                    _days(value, d), f"a duration <= the horizon ({format_duration(horizon)})"
                )
            if horizon / d > MAX_OUTPUT_POINTS:
                raise UnitError(
                    f"{_days(value, d)}, which gives {horizon / d:.3g} output points",
                    f"at most {MAX_OUTPUT_POINTS:,} points (output_every >= "
                    f"{horizon / MAX_OUTPUT_POINTS:.3g} days)",
                )
            return d

        out["output_every"] = self.get(
            tab, k, "output_every", check_every, min(DEFAULT_OUTPUT_EVERY, horizon)
        )
        return out

    # -- [engine]
    def engine_section(self, raw: object, engine: str, horizon: float) -> dict[str, float]:
        from sim.engines import cellular

        k: Path = ("engine",)
        tab = self.table(raw, k, "an [engine] table of engine options")
        allowed = cellular.ENGINE_OPTIONS.get(engine, ())
        if tab and not allowed:
            raise self.error(
                (*k, next(iter(tab))),
                f'an [engine] option for engine "{engine}"',
                'no [engine] table: its options are for engine "stochastic", "abm" or "mesa"',
            )
        self.keys(tab, k, allowed)
        for name in ("dt", "dt_max"):
            if name in tab:  # a step is a duration: with its unit, like every other one
                self.get(tab, k, name, _parse_duration)
        out = {name: self.get(tab, k, name, cellular.option_check(name)) for name in tab}
        for name in ("dt", "dt_max"):
            if name in out and horizon / out[name] > MAX_ENGINE_STEPS:
                raise self.error(
                    (*k, name),
                    f"{_days(tab[name], out[name])}: {horizon / out[name]:,.0f} steps",
                    f"at most {MAX_ENGINE_STEPS:,} steps over the horizon ({name} >= "
                    f"{format_duration(horizon / MAX_ENGINE_STEPS)})",
                )
        return out

    # -- [drug.<name>]
    def drugs(self, raw: object) -> dict[str, Drug]:
        from sim.therapy import drugs as drugmod

        known = _drug_registry()
        section = self.table(raw, ("drug",), "tables [drug.<name>] of user-defined drugs")
        out = dict(known)
        for name, tab in section.items():
            k: Path = ("drug", name)
            tab = self.table(tab, k, f"a table [drug.{name}]")
            out[name] = self.drug(name, tab, known.get(name), drugmod.make_drug, k)
        return out

    def drug(
        self, name: str, tab: dict[str, Any], base: Drug | None, make: Callable, k: Path
    ) -> Drug:
        checks: dict[str, Callable[[object], Any]] = {
            "ka": _rate,
            "ke": _rate,
            "half_life": _half_life,
            "volume": _volume,
            "bioavailability": self._fraction,
            "ec50": _concentration,
            "hill": _hill,
            "standard_dose": _dose,
            "standard_interval": _standard_interval,
            "source": _text,
            "notes": _text,
        }
        self.keys(tab, k, tuple(checks))
        if "ke" in tab and "half_life" in tab:
            raise self.error(
                (*k, "half_life"), "both ke and half_life", "one of them (ke = ln 2 / half_life)"
            )
        required = ("ka", "volume", "ec50", "standard_dose", "standard_interval")
        if base is None:
            for req in required:
                if req not in tab:
                    raise self.error(
                        (*k, req),
                        "nothing (the key is missing)",
                        f"{req} for the new drug {name!r} (known drugs: "
                        + _listing(_drug_registry())
                        + ")",
                    )
            if "ke" not in tab and "half_life" not in tab:
                raise self.error(
                    (*k, "half_life"), "nothing (the key is missing)", "half_life or ke"
                )
        values = {n: self.get(tab, k, n, chk) for n, chk in checks.items() if n in tab}
        if "half_life" in values:
            values["ke"] = math.log(2.0) / values.pop("half_life")
        if base is not None:
            kw = {f.name: getattr(base, f.name) for f in fields(base) if f.name != "name"}
            kw.setdefault("notes", "")
            kw["notes"] = (kw["notes"] + "; " if kw["notes"] else "") + (
                f"fields {', '.join(sorted(values))} overridden in {self.path}"
            )
        else:
            kw = {
                "bioavailability": 1.0,
                "hill": 1.0,
                "source": f"user-defined in {self.path}",
                "notes": "",
            }
        kw.update(values)
        try:
            return make(name, **kw)
        except (ValueError, TypeError, KeyError) as e:
            raise self.error(k, f"a drug that cannot be built ({e})", "a valid drug") from None

    @staticmethod
    def _fraction(value: object) -> float:
        x = _number(value, "a number in (0, 1]")
        if not 0 < x <= 1:
            raise UnitError(_show(value), "a number in (0, 1]")
        return x

    @staticmethod
    def _positive_number(value: object) -> float:
        x = _number(value, "a number > 0")
        if not x > 0:
            raise UnitError(_show(value), "a number > 0")
        return x

    # -- [patient]
    def patient(self, raw: object, spec: ModelSpec) -> dict[str, float]:
        k: Path = ("patient",)
        tab = self.table(raw, k, "a [patient] table of parameter overrides")
        table = spec.params
        presets = dict(spec.presets or {})
        self.keys(tab, k, ("preset", "hahnel_patient", *table.names))
        if presets:
            preset = self.get(tab, k, "preset", lambda v: _choice(v, tuple(presets)), None)
        elif "preset" in tab:
            raise self.error(
                (*k, "preset"), _show(tab["preset"]), f"no preset: {spec.name} has none"
            )
        else:
            preset = None
        hp = self.get(tab, k, "hahnel_patient", lambda v: _integer(v, 1, N_HAHNEL), None)
        if hp is not None:
            needed = ("p_xy", "p_yx", "e_tki", "p_z", "K_z", "y0")
            missing = [n for n in needed if n not in table]
            if missing:
                raise self.error(
                    (*k, "hahnel_patient"),
                    f"hahnel_patient with model {spec.name!r}, which lacks {', '.join(missing)}",
                    "a model with the Hähnel 2020 parameters (cml_immune)",
                )
            if preset is None and "hahnel2020" in presets:
                preset = "hahnel2020"
        out: dict[str, float] = {}
        if preset is not None:
            out.update(presets[preset])
        if hp is not None:
            out.update(hahnel_patient(hp))
        for name in tab:
            if name in ("preset", "hahnel_patient"):
                continue
            out[name] = self.get(tab, k, name, functools.partial(self._param, table[name]))
        try:
            vec = table.vector(out)
        except (ValueError, KeyError) as e:
            raise self.error(
                k, f"parameters that the model refuses ({e})", "values in bounds"
            ) from None
        # values inside their bounds may still give no state to start from (p_xy = 0 with
        # p_yx > 0 puts X at infinity): the solver would fail at t = 0
        state = np.asarray(spec.initial_state(vec), dtype=np.float64)
        bad = [n for n, x in zip(spec.states, state, strict=True) if not np.isfinite(x)]
        if bad:
            raise self.error(
                k,
                f"parameters whose state at diagnosis is not finite ({', '.join(bad)})",
                "parameters that give every state a finite value at diagnosis",
            )
        return out

    @staticmethod
    def _param(p: Any, value: object) -> float:
        """``value`` in the unit of parameter ``p``, within its bounds."""
        x = parse_param_value(value, p.unit)
        if not p.lower <= x <= p.upper:
            shown = f"{_show(value)} (= {x:g} {p.unit})" if isinstance(value, str) else _show(value)
            raise UnitError(
                shown, f"a value in [{p.lower:g}, {p.upper:g}] {p.unit} (bounds of {p.name})"
            )
        return x

    # -- [[therapy]]
    def therapy(
        self, raw: object, drugs: dict[str, Drug], horizon: float
    ) -> tuple[TherapySegment, ...]:
        k: Path = ("therapy",)
        if raw is _MISSING:
            raise self.error(
                k,
                "no [[therapy]] segment",
                "at least one [[therapy]] table (write `therapy = []` for an untreated patient)",
            )
        if not isinstance(raw, list):
            raise self.error(k, _show(raw), "an array of [[therapy]] tables")
        everything = []
        for i, item in enumerate(raw):
            everything.append((i, self.segment(self.table(item, (*k, i), "a table"), i, drugs)))
        for i, seg in everything:
            if seg.every > horizon:
                raise self.error(
                    (*k, i, "every"),
                    f"{format_duration(seg.every)} (= {seg.every:g} days)",
                    f"a dosing interval <= the horizon ({format_duration(horizon)})",
                )
            if seg.start >= horizon:
                raise self.error(
                    (*k, i, "start"),
                    f"{format_duration(seg.start)} (= {seg.start:g} days)",
                    f"a start before the horizon ({format_duration(horizon)})",
                )
        targets = [i for i, seg in everything if seg.switch]
        if len(targets) > 1:
            raise self.error(
                (*k, targets[1], "switch"),
                f"a second segment with switch = true (therapy[{targets[0]}] is one already)",
                "exactly one switch target: the TKI the protocol's switch rule switches to",
            )
        if targets and len(everything) == 1:
            raise self.error(
                (*k, targets[0], "switch"),
                "switch = true on the only [[therapy]] segment",
                "an ordinary segment (switch = false) to switch from, and one switch target",
            )
        self._switch_index = targets[0] if targets else None
        # a switch target replaces whatever runs when the rule fires: no overlap check for it
        segments = sorted(((i, s) for i, s in everything if not s.switch), key=lambda t: t[1].start)
        for (i, a), (j, b) in itertools.pairwise(segments):
            if a.end is None or a.end > b.start:
                a_end = "open end" if a.end is None else f"end {format_duration(a.end)}"
                raise self.error(
                    (*k, j, "start"),
                    f"segments that overlap: therapy[{j}] starts at {format_duration(b.start)}, "
                    f"therapy[{i}] (start {format_duration(a.start)}) has {a_end}",
                    f"therapy[{j}] to start at or after the end of therapy[{i}] "
                    f"(give therapy[{i}] an end <= {format_duration(b.start)})",
                )
        return tuple(seg for _, seg in sorted(everything, key=lambda t: t[1].start))

    def segment(self, tab: dict[str, Any], i: int, drugs: dict[str, Drug]) -> TherapySegment:
        k: Path = ("therapy", i)
        self.keys(
            tab,
            k,
            (
                "drug",
                "dose",
                "every",
                "start",
                "end",
                "pk",
                "adherence",
                "intermittent",
                "switch",
            ),
        )
        names = list(drugs)
        drug_expected = "a drug name: one of " + _listing(names) + " (or define [drug.<name>])"

        def check_drug(value: object) -> Drug:
            s = _text(value, drug_expected)
            if s not in drugs:
                raise UnitError(f"an unknown drug {_show(s)}", drug_expected + _suggest(s, names))
            return drugs[s]

        drug = self.get(tab, k, "drug", check_drug, expected=drug_expected)
        dose = self.get(tab, k, "dose", _dose, float(drug.standard_dose))
        every = self.get(tab, k, "every", _dosing_interval, float(drug.standard_interval))

        def check_start(value: object) -> float:
            if value == "diagnosis":
                return 0.0
            try:
                return _duration(value, positive=False)
            except UnitError as e:
                raise UnitError(e.found, '"diagnosis" or ' + e.expected) from None

        start = self.get(tab, k, "start", check_start, 0.0)

        def check_end(value: object) -> float:
            d = _duration(value)
            if d < start + TIME_RESOLUTION:
                raise UnitError(
                    _days(value, d), f"an end after the start ({format_duration(start)})"
                )
            return d

        end = self.get(tab, k, "end", check_end, None)
        pk = self.get(tab, k, "pk", lambda v: _choice(v, PK_MODES), "interval")
        frac = "a fraction of doses taken, 0 < adherence <= 1 (e.g. 0.9)"

        def check_adherence(value: object) -> float:
            x = _number(value, frac)
            if not 0 < x <= 1:
                raise UnitError(_show(value), frac)
            return x

        adherence = self.get(tab, k, "adherence", check_adherence, 1.0)
        on = off = 0.0
        if "intermittent" in tab:
            ki: Path = (*k, "intermittent")
            cyc = self.table(tab["intermittent"], ki, 'a table { on = "1w", off = "1w" }')
            self.keys(cyc, ki, ("on", "off"))
            dur = 'a duration > 0 (e.g. "1w")'
            on = self.get(cyc, ki, "on", _duration, expected=dur)
            off = self.get(cyc, ki, "off", _duration, expected=dur)
        switch = self.get(tab, k, "switch", _boolean, False)
        return TherapySegment(
            drug=drug,
            dose=dose,
            every=every,
            start=start,
            end=end,
            pk=pk,
            adherence=adherence,
            on=on,
            off=off,
            switch=switch,
        )

    # -- [protocol]
    def protocol(
        self, raw: object, therapy: tuple[TherapySegment, ...], horizon: float
    ) -> Protocol:
        k: Path = ("protocol",)
        tab = self.table(raw, k, "a [protocol] table")
        self.keys(
            tab, k, ("monitoring", "stop", "lead_in", "restart", "max_stops", "decisions", "switch")
        )
        out: dict[str, Any] = {}

        mon = tab.get("monitoring", "eln2020")
        if isinstance(mon, dict):
            self.keys(mon, (*k, "monitoring"), ("every",))
            every = self.get(
                mon, (*k, "monitoring"), "every", _duration, expected='a duration > 0 (e.g. "3mo")'
            )
            out["monitoring"], out["monitor_every"] = "every", every
        else:

            def check_monitoring(value: object) -> str:
                if value != "eln2020":
                    hint = _suggest(value, ["eln2020"]) if isinstance(value, str) else ""
                    raise UnitError(_show(value), '"eln2020" or a table { every = "3mo" }' + hint)
                return "eln2020"

            out["monitoring"] = self.get(tab, k, "monitoring", check_monitoring, "eln2020")
            out["monitor_every"] = None

        out.update(self.stop(tab.get("stop", "never"), therapy, horizon))
        out.update(self.lead_in(tab, out, therapy))
        out["restart"] = self.get(
            tab, k, "restart", lambda v: _choice(v, RESTART_RULES), "loss_of_mmr"
        )
        out["max_stops"] = self.get(tab, k, "max_stops", lambda v: _integer(v, 0, MAX_STOPS), 1)
        out["decisions"] = self.get(
            tab, k, "decisions", lambda v: _choice(v, DECISIONS), "measured"
        )
        out.update(self.switch(tab, horizon))
        return Protocol(**out)

    def switch(self, tab: dict[str, Any], horizon: float) -> dict[str, Any]:
        k: Path = ("protocol", "switch")
        target = self._switch_index
        if "switch" not in tab:
            if target is not None:
                raise self.error(
                    ("therapy", target, "switch"),
                    "switch = true but no switch rule in [protocol]",
                    'a rule [protocol] switch = { if_not = "MMR", at = "12mo" } saying when to '
                    "switch to this segment (or no switch = true)",
                )
            return {}
        raw = self.table(tab["switch"], k, 'a table { if_not = "MMR", at = "12mo" }')
        self.keys(raw, k, ("if_not", "at"))
        depths = _depth_codes()
        level = self.get(
            raw,
            k,
            "if_not",
            lambda v: _choice(v, tuple(depths), "a molecular response level: "),
            expected='a molecular response level: "MMR", "MR4", "MR4.5" or "MR5"',
        )

        def check_at(value: object) -> float:
            d = _duration(value)
            if d >= horizon:
                raise UnitError(
                    _days(value, d), f"a time before the horizon ({format_duration(horizon)})"
                )
            return d

        at = self.get(raw, k, "at", check_at, expected='a duration > 0 (e.g. "12mo")')
        if target is None:
            raise self.error(
                k,
                "a switch rule but no [[therapy]] segment with switch = true",
                "exactly one [[therapy]] segment marked switch = true: the TKI to switch to",
            )
        return {"switch_at": at, "switch_depth": depths[level]}

    def stop(
        self, raw: object, therapy: tuple[TherapySegment, ...], horizon: float
    ) -> dict[str, Any]:
        k: Path = ("protocol", "stop")
        expected = (
            '"never", a table { at = "85.9mo" } or a table '
            '{ after = "5y", sustained = "MR4", for = "2y" }'
        )
        if raw == "never":
            return {"stop_kind": "never"}
        if not isinstance(raw, dict):
            hint = _suggest(raw, ["never"]) if isinstance(raw, str) else ""
            raise self.error(k, _show(raw), expected + hint)
        if not therapy:
            raise self.error(k, "a stop rule but no [[therapy]]", 'stop = "never" without therapy')
        first = _first_start(therapy)
        if "at" in raw:
            for other in raw:
                if other != "at":
                    raise self.error(
                        (*k, other),
                        f'both "at" and "{other}"',
                        'either a fixed stop { at = "85.9mo" } or criteria '
                        '{ after = "5y", sustained = "MR4", for = "2y" }',
                    )
            at = self.get(raw, k, "at", _duration)
            if at <= first:
                raise self.error(
                    (*k, "at"),
                    f"stop before start: the stop at {format_duration(at)} is not after the "
                    f"first therapy start ({format_duration(first)})",
                    "a stop time after the start of the first [[therapy]] segment",
                )
            if at >= horizon:
                raise self.error(
                    (*k, "at"),
                    f"a stop at {format_duration(at)}, at or after the horizon "
                    f"({format_duration(horizon)})",
                    "a stop time before the horizon",
                )
            ends = [s.end for s in therapy]
            last_end = None if None in ends else max(e for e in ends if e is not None)
            if last_end is not None and at >= last_end:
                raise self.error(
                    (*k, "at"),
                    f"a stop at {format_duration(at)}, after the therapy ends "
                    f"({format_duration(last_end)})",
                    "a stop time while therapy is given",
                )
            return {"stop_kind": "fixed", "stop_at": at}
        self.keys(raw, k, ("at", "after", "sustained", "for"))
        depths = _depth_codes()
        dur = 'a duration > 0 (e.g. "5y")'
        after = self.get(raw, k, "after", _duration, expected=dur)
        level = self.get(
            raw,
            k,
            "sustained",
            lambda v: _choice(v, tuple(depths), "a molecular response level: "),
            expected='a molecular response level: "MMR", "MR4", "MR4.5" or "MR5"',
        )
        sustained_for = self.get(raw, k, "for", _duration, expected=dur)
        if first + after >= horizon:
            raise self.error(
                (*k, "after"),
                f"{format_duration(after)} on TKI, which ends at or after the horizon "
                f"({format_duration(horizon)})",
                "a minimum TKI duration that fits within the horizon",
            )
        return {
            "stop_kind": "criteria",
            "stop_after": after,
            "stop_depth": depths[level],
            "stop_sustained_for": sustained_for,
        }

    def lead_in(
        self, tab: dict[str, Any], out: dict[str, Any], therapy: tuple[TherapySegment, ...]
    ) -> dict[str, Any]:
        k: Path = ("protocol", "lead_in")
        if "lead_in" not in tab:
            return {}
        raw = self.table(tab["lead_in"], k, 'a table { duration = "12mo", dose = 0.5 }')
        self.keys(raw, k, ("duration", "dose"))
        duration = self.get(raw, k, "duration", _duration, expected='a duration > 0 (e.g. "12mo")')
        frac = "a dose fraction in (0, 1] (0.5 = half the segment's dose)"

        def check_fraction(value: object) -> float:
            x = _number(value, frac)
            if not 0 < x <= 1:
                raise UnitError(_show(value), frac)
            return x

        dose = self.get(raw, k, "dose", check_fraction, expected=frac)
        kind = out["stop_kind"]
        if kind == "never":
            raise self.error(k, 'a lead-in with stop = "never"', "a lead-in only with a stop rule")
        if kind == "fixed":
            begin = out["stop_at"] - duration
            first = _first_start(therapy)
            if begin < first:
                raise self.error(
                    (*k, "duration"),
                    f"a lead-in of {format_duration(duration)} before the stop at "
                    f"{format_duration(out['stop_at'])}, which would begin before therapy starts "
                    f"({format_duration(first)})",
                    "a lead-in that fits between the therapy start and protocol.stop.at",
                )
        return {"lead_in": duration, "lead_in_dose": dose}

    # -- [product.<name>]
    def products(self, raw: object) -> dict[str, Product]:
        from sim.therapy.interventions import PRODUCTS

        section = self.table(
            raw, ("product",), "tables [product.<name>] of user-defined intervention products"
        )
        out = dict(PRODUCTS)
        for name, tab in section.items():
            k: Path = ("product", name)
            tab = self.table(tab, k, f"a table [product.{name}]")
            out[name] = self.product(name, tab, PRODUCTS.get(name), k)
        return out

    def product(self, name: str, tab: dict[str, Any], base: Product | None, k: Path) -> Product:
        from sim.therapy.interventions import make_product

        kinds = "one of " + ", ".join(f'"{x}"' for x in PRODUCT_KINDS)
        self.keys(
            tab,
            k,
            (
                "kind",
                "ka",
                "ke",
                "half_life",
                "volume",
                "bioavailability",
                "ec50",
                "emax",
                "hill",
                "standard_dose",
                "standard_interval",
                "source",
                "notes",
            ),
        )
        if base is None:
            kind = self.get(
                tab,
                k,
                "kind",
                lambda v: _choice(v, PRODUCT_KINDS, "a product kind: "),
                expected="a product kind: " + kinds,
            )
        else:
            kind = base.kind

            def same_kind(value: object) -> str:
                if value != base.kind:
                    raise UnitError(
                        _show(value), f'"{base.kind}" (the kind of the built-in {base.name})'
                    )
                return base.kind

            self.get(tab, k, "kind", same_kind, kind)
        mass = kind in _MASS_KINDS
        units = _units(f"a plain number of units (a {kind} dose is one shot or session = 1)")
        emax_expected = "a number in (0, 1] (an effect fraction or occupancy)" if mass else ""

        def check_emax(value: object) -> float:
            x = self._positive_number(value)
            if mass and x > 1:
                raise UnitError(_show(value), emax_expected)
            if x > MAX_UNITS:
                raise UnitError(_show(value), f"a number > 0 and <= {MAX_UNITS:g}")
            return x

        checks: dict[str, Callable[[object], Any]] = {
            "ka": _absorption,
            "ke": _rate,
            "half_life": _half_life,
            "volume": _volume,
            "bioavailability": self._fraction,
            "ec50": _concentration if mass else units,
            "emax": check_emax,
            "hill": _hill,
            "standard_dose": _dose if mass else units,
            "standard_interval": _standard_interval,
            "source": _text,
            "notes": _text,
        }
        if "ke" in tab and "half_life" in tab:
            raise self.error(
                (*k, "half_life"), "both ke and half_life", "one of them (ke = ln 2 / half_life)"
            )
        if base is None:
            required = ["ec50", "standard_interval"] + (["volume", "standard_dose"] if mass else [])
            for req in required:
                if req not in tab:
                    raise self.error(
                        (*k, req),
                        "nothing (the key is missing)",
                        f"{req} for the new {kind} product {name!r} (known products: "
                        + _listing(self._product_names())
                        + ")",
                    )
            if "ke" not in tab and "half_life" not in tab:
                raise self.error(
                    (*k, "half_life"), "nothing (the key is missing)", "half_life or ke"
                )
        values = {n: self.get(tab, k, n, chk) for n, chk in checks.items() if n in tab}
        if "half_life" in values:
            values["ke"] = math.log(2.0) / values.pop("half_life")
        if base is not None:
            kw = {f.name: getattr(base, f.name) for f in fields(base)}
            del kw["name"], kw["kind"]
            kw["notes"] = (kw["notes"] + "; " if kw["notes"] else "") + (
                f"fields {', '.join(sorted(values))} overridden in {self.path}"
            )
        else:
            kw = {"source": f"user-defined in {self.path}"}
            if not mass:
                kw["standard_dose"] = 1.0
        kw.update(values)
        try:
            return make_product(name, kind, **kw)
        except (ValueError, TypeError, KeyError) as e:
            raise self.error(
                k, f"a product that cannot be built ({e})", "a valid product"
            ) from None

    @staticmethod
    def _product_names() -> list[str]:
        from sim.therapy.interventions import PRODUCTS

        return list(PRODUCTS)

    # -- [[intervention]]
    def interventions(
        self, raw: object, products: dict[str, Product], protocol: Protocol, horizon: float
    ) -> tuple[Intervention, ...]:
        k: Path = ("intervention",)
        if not isinstance(raw, list):
            raise self.error(k, _show(raw), "an array of [[intervention]] tables")
        out: list[Intervention] = []
        owner: dict[str, int] = {}  # name -> index of the intervention that has it
        per_product: dict[str, int] = {}
        for i, item in enumerate(raw):
            tab = self.table(item, (*k, i), "an [[intervention]] table")
            iv = self.intervention(tab, i, products, protocol, horizon)
            per_product[iv.product.name] = per_product.get(iv.product.name, 0) + 1
            if not iv.name:
                iv = replace(iv, name=f"{iv.product.name}-{per_product[iv.product.name]}")
            if iv.name in owner:
                j = owner[iv.name]
                given = "name" in tab
                raise self.error(
                    (*k, i, "name") if given else (*k, i),
                    f'the name "{iv.name}" twice: intervention[{j}] has it already'
                    + ("" if given else " (this one's default name)"),
                    "a unique name for each intervention (name = ...)",
                )
            owner[iv.name] = i
            out.append(iv)
        return tuple(out)

    def intervention(
        self,
        tab: dict[str, Any],
        i: int,
        products: dict[str, Product],
        protocol: Protocol,
        horizon: float,
    ) -> Intervention:
        k: Path = ("intervention", i)
        self.keys(
            tab,
            k,
            ("name", "kind", "product", "dose", "every", "start", "duration", "count", "pk"),
        )
        name_expected = (
            f"a name of letters, digits, '_', '.' and '-', at most {MAX_NAME} (unique in the "
            "scenario)"
        )

        def check_name(value: object) -> str:
            s = _text(value, name_expected)
            if not _NAME.match(s) or len(s) > MAX_NAME:
                raise UnitError(_show(s), name_expected)
            return s

        name = self.get(tab, k, "name", check_name, "")
        names = list(products)
        product_expected = (
            "a product name: one of " + _listing(names) + " (or define [product.<name>])"
        )

        def check_product(value: object) -> Product:
            s = _text(value, product_expected)
            if s not in products:
                raise UnitError(
                    f"an unknown product {_show(s)}", product_expected + _suggest(s, names)
                )
            return products[s]

        product = self.get(tab, k, "product", check_product, expected=product_expected)

        def check_kind(value: object) -> str:
            _choice(value, PRODUCT_KINDS, "a product kind: ")
            if value != product.kind:
                raise UnitError(
                    f'"{value}", but {product.name} is of kind "{product.kind}"',
                    f'"{product.kind}" (or no kind: the product decides it)',
                )
            return product.kind

        self.get(tab, k, "kind", check_kind, product.kind)
        if product.kind in _MASS_KINDS:
            dose_check = _within(
                _parse_dose, 0.0, DOSE_RANGE[1], 'a dose from 0 to 100g (e.g. "90ug", "240mg")'
            )
        else:
            one = "shot" if product.kind == "vaccine" else "session"
            units = (
                f"a plain number of units from 0 to {MAX_UNITS:g} (a {product.kind} dose: "
                f"1 = one {one})"
            )
            dose_check = _within(functools.partial(_number, expected=units), 0, MAX_UNITS, units)
        dose = self.get(tab, k, "dose", dose_check, float(product.standard_dose))
        every = self.get(tab, k, "every", _dosing_interval, float(product.standard_interval))
        if every > horizon:
            raise self.error(
                (*k, "every"),
                _days(tab.get("every", every), every),
                f"a dosing interval <= the horizon ({format_duration(horizon)})",
            )
        anchor, offset = self.start(tab, k, protocol, horizon)
        if "duration" in tab and "count" in tab:
            raise self.error(
                (*k, "count"),
                "both duration and count",
                "one of them: a course of `duration` (doses every `every` until it ends) or of "
                "`count` doses",
            )
        duration = self.get(tab, k, "duration", _duration, None)
        count = self.get(tab, k, "count", lambda v: _integer(v, 1, MAX_COUNT), None)
        pk = self.get(tab, k, "pk", lambda v: _choice(v, INTERVENTION_PK_MODES), "doses")
        return Intervention(
            name=name,
            product=product,
            anchor=anchor,
            offset=offset,
            duration=duration,
            every=every,
            count=count,
            dose=dose,
            pk=pk,
        )

    def start(
        self, tab: dict[str, Any], k: Path, protocol: Protocol, horizon: float
    ) -> tuple[str, float]:
        """(anchor, offset) of an intervention's ``start``, with the timing rules applied."""
        ks: Path = (*k, "start")
        anchors = ", ".join(f'"{a}"' for a in ANCHORS)
        anchor_expected = f"an anchor: one of {anchors}"
        expected = (
            f'an anchor ({anchors}), a duration from diagnosis ("6mo") or {{ anchor = "tki_stop", '
            'offset = "1mo" }'
        )

        def check_anchor(value: object) -> str:
            return _choice(value, ANCHORS, "an anchor: ")

        def check_offset(value: object) -> float:
            return _offset(value)

        def check_start(value: object) -> tuple[str, float]:
            if isinstance(value, str) and value in ANCHORS:
                return value, 0.0
            if isinstance(value, str) and not _LEADING_NUMBER.match(value):
                raise UnitError(_show(value), expected + _suggest(value, ANCHORS))
            try:
                return "diagnosis", _offset(value)
            except UnitError as e:
                raise UnitError(e.found, expected) from None

        raw = tab.get("start", _MISSING)
        if isinstance(raw, dict):
            self.keys(raw, ks, ("anchor", "offset"))
            anchor = self.get(raw, ks, "anchor", check_anchor, expected=anchor_expected)
            offset = self.get(raw, ks, "offset", check_offset, 0.0)
            at_anchor, at_offset = (*ks, "anchor"), (*ks, "offset")
            shown = _days(raw.get("offset", 0.0), offset)
        else:
            anchor, offset = self.get(tab, k, "start", check_start, expected=expected)
            at_anchor = at_offset = ks
            shown = _days(raw, offset)

        stop = protocol.stop_kind if protocol.max_stops > 0 else "never"
        if anchor == "stop_criteria" and protocol.stop_kind == "never":
            raise self.error(
                at_anchor,
                'start at "stop_criteria" but protocol.stop = "never"',
                "a stop rule in [protocol] (stop = { after = ..., sustained = ..., for = ... }) "
                "or another anchor",
            )
        if offset < 0:
            if anchor == "diagnosis":
                raise self.error(
                    at_offset,
                    f"{shown}, a start before diagnosis",
                    "a start at or after diagnosis: interventions cannot start before diagnosis "
                    "(t = 0)",
                )
            if anchor != "tki_stop":
                raise self.error(
                    at_offset,
                    f"a negative offset {shown} from {anchor}",
                    "an offset >= 0 (only tki_stop with a fixed stop, protocol.stop = "
                    "{ at = ... }, may take a negative offset)",
                )
            if stop == "criteria":
                raise self.error(
                    at_offset,
                    f"a negative offset {shown} from tki_stop, a time not known in advance with "
                    "a criteria stop",
                    'an offset >= 0 (to begin before the stop: start = "stop_criteria" and a '
                    "protocol lead_in)",
                )
            if stop != "fixed":
                never = (
                    'protocol.stop = "never"'
                    if protocol.stop_kind == "never"
                    else "protocol.max_stops = 0"
                )
                raise self.error(
                    at_offset,
                    f"a negative offset {shown} from tki_stop, but there is no stop ({never})",
                    "an offset >= 0, or a fixed stop protocol.stop = { at = ... }",
                )
            at = (protocol.stop_at or 0.0) + offset
            if at < 0:
                raise self.error(
                    at_offset,
                    f"{shown} before the stop at {format_duration(protocol.stop_at or 0.0)}, "
                    f"a start at {at:g} days",
                    "a start at or after diagnosis: interventions cannot start before diagnosis "
                    "(t = 0)",
                )
            anchor, offset = "diagnosis", at
        if anchor == "stop_criteria" and protocol.stop_kind == "fixed" and protocol.lead_in == 0:
            anchor = "tki_stop"  # a fixed stop without a lead-in: its criteria are the stop
        known = {"diagnosis": 0.0}
        if stop == "fixed":
            known["tki_stop"] = protocol.stop_at or 0.0
            known["stop_criteria"] = (protocol.stop_at or 0.0) - protocol.lead_in
        if anchor in known and known[anchor] + offset >= horizon:
            at = known[anchor] + offset
            raise self.error(
                at_offset,
                f"a start at {format_duration(at)} (= {at:g} days), at or after the horizon",
                f"a start before the horizon ({format_duration(horizon)})",
            )
        return anchor, offset + 0.0  # no -0.0

    # -- [trial]
    def trial(
        self,
        raw: object,
        raw_protocol: object,
        protocol: Protocol,
        therapy: tuple[TherapySegment, ...],
        horizon: float,
        name: str,
    ) -> tuple[Trial, Protocol]:
        k: Path = ("trial",)
        tab = self.table(raw, k, 'a [trial] table (e.g. design = "euro-ski")')
        overrides = ("min_tki", "sustained", "sustained_for")
        self.keys(tab, k, ("design", "follow_up", "arm", *overrides))
        designs = ", ".join(f'"{d}"' for d in TRIAL_DESIGN_NAMES)
        design = self.get(
            tab,
            k,
            "design",
            lambda v: _choice(v, TRIAL_DESIGN_NAMES, "a trial design: "),
            expected=f"a trial design: one of {designs}",
        )
        follow_up = self.get(tab, k, "follow_up", _duration, 24 * DAYS_PER_MONTH)
        arm_expected = "a non-empty label of this arm (a string)"

        def check_arm(value: object) -> str:
            s = _text(value, arm_expected)
            if not s.strip():
                raise UnitError(_show(value), arm_expected)
            return s

        arm = self.get(tab, k, "arm", check_arm, name)
        if not therapy:
            raise self.error(
                (*k, "design"), "a trial design but no [[therapy]]", "a [[therapy]] to stop"
            )
        if design == "custom":
            for key in overrides:
                if key in tab:
                    raise self.error(
                        (*k, key),
                        f'{key} with design = "custom"',
                        "the eligibility rule in [protocol] stop (custom takes it as written)",
                    )
            if protocol.stop_kind == "never":
                raise self.error(
                    (*k, "design"),
                    '"custom" with [protocol] stop = "never"',
                    'a [protocol] stop rule for a custom design (e.g. stop = { after = "3y", '
                    'sustained = "MR4", for = "1y" })',
                )
            notes = "custom design: the [protocol] as written."
            return Trial(design, follow_up, arm, notes), protocol
        given = raw_protocol if isinstance(raw_protocol, dict) else {}
        for key in ("stop", "lead_in", "restart"):
            if key in given:
                raise self.error(
                    ("protocol", key),
                    f'protocol.{key} with trial.design = "{design}"',
                    f'no protocol.{key} (the design sets it) or trial.design = "custom"',
                )
        d = TRIAL_DESIGNS[design]
        depths = _depth_codes()
        levels = '"MMR", "MR4", "MR4.5" or "MR5"'
        after = self.get(tab, k, "min_tki", _duration, d["stop_after"])
        level = self.get(
            tab,
            k,
            "sustained",
            lambda v: _choice(v, tuple(depths), "a molecular response level: "),
            d["stop_depth"],
            expected=f"a molecular response level: {levels}",
        )
        sustained_for = self.get(tab, k, "sustained_for", _duration, d["stop_sustained_for"])
        first = _first_start(therapy)
        if first + after >= horizon:
            raise self.error(
                (*k, "min_tki") if "min_tki" in tab else (*k, "design"),
                f"{format_duration(after)} on TKI before a stop, which ends at or after the "
                f"horizon ({format_duration(horizon)})",
                "a horizon long enough for the design (scenario.horizon)",
            )
        proto = replace(
            protocol,
            stop_kind="criteria",
            stop_at=None,
            stop_after=after,
            stop_depth=depths[level],
            stop_sustained_for=sustained_for,
            lead_in=d["lead_in"],
            lead_in_dose=d["lead_in_dose"],
            restart=d["restart"],
        )
        return Trial(design, follow_up, arm, d["notes"]), proto

    # -- [cohort]
    _COHORT_KEYS = (
        "size", "base", "spread", "correlation", "trajectory_every", "store_visits", "calibration",
    )  # fmt: skip

    def cohort(self, raw: object, spec: ModelSpec, horizon: float) -> Cohort:
        k: Path = ("cohort",)
        tab = self.table(raw, k, "a [cohort] table (e.g. size = 1000)")
        table = spec.params
        self.keys(tab, k, (*self._COHORT_KEYS, *table.names))
        size = self.get(
            tab,
            k,
            "size",
            lambda v: _integer(v, 1, MAX_COHORT),
            expected=f"an integer from 1 to {MAX_COHORT}",
        )
        base = self.get(
            tab, k, "base", lambda v: _choice(v, COHORT_BASES, "a cohort base: "), "hahnel2020"
        )
        if base == "hahnel2020":
            missing = [
                n for n in ("p_xy", "p_yx", "e_tki", "p_z", "K_z", "y0", "s_N", "d_N", "m_N")
                if n not in table
            ]  # fmt: skip
            if missing:
                raise self.error(
                    (*k, "base"),
                    f'base = "hahnel2020" with model {spec.name!r}, which lacks '
                    + ", ".join(missing),
                    'a model with the Hähnel 2020 and NK parameters (cml_immune), or base = "none"',
                )

        def check_spread(value: object) -> float:
            x = _number(value, "a log-sd >= 0 (e.g. 0.1)")
            if not 0 <= x <= 5:
                raise UnitError(_show(value), "a log-sd from 0 to 5 (e.g. 0.1)")
            return x

        spread = self.get(tab, k, "spread", check_spread, 0.1)

        def check_every(value: object) -> float | None:
            if value is False:
                return None
            return _duration(value)

        every = self.get(tab, k, "trajectory_every", check_every, None)
        if every is not None and size * (horizon / every + 1) > MAX_COHORT_POINTS:
            points = horizon / every + 1
            raise self.error(
                (*k, "trajectory_every"),
                f"{format_duration(every)}: {size:,} x {points:,.0f} trajectory points",
                f"at most {MAX_COHORT_POINTS:,} points (a coarser trajectory_every or a smaller "
                "size)",
            )
        store_visits = self.get(tab, k, "store_visits", _boolean, False)
        calibration = self.get(
            tab, k, "calibration",
            lambda v: _choice(v, ("tang2011", "none"), "a cohort calibration: "), "tang2011",
        )  # fmt: skip
        if base != "hahnel2020" and "calibration" in tab:
            raise self.error(
                (*k, "calibration"),
                f'calibration with base = "{base}"',
                'base = "hahnel2020" (the calibration re-fits the Hähnel patients)',
            )
        dists = tuple(self.param_dist(tab[n], (*k, n), table[n]) for n in tab if n in table.names)
        corr = self.correlations(tab.get("correlation", _MISSING), dists)
        return Cohort(size, base, spread, dists, corr, every, store_visits, calibration)

    def param_dist(self, raw: object, k: Path, p: Any) -> ParamDist:
        """One parameter's distribution: a table with ``dist``, or a plain value (fixed)."""
        conv = functools.partial(self._param, p)
        if not isinstance(raw, dict):
            return ParamDist(p.name, "fixed", self.get({p.name: raw}, k[:-1], p.name, conv))
        kinds = ", ".join(f'"{d}"' for d in DISTRIBUTIONS)
        dist = self.get(
            raw,
            k,
            "dist",
            lambda v: _choice(v, DISTRIBUTIONS, "a distribution: "),
            expected=f"a distribution: one of {kinds}",
        )
        of = dist
        if dist == "truncated":
            inner = tuple(d for d in _DIST_KEYS if d not in ("fixed", "empirical"))
            of = self.get(
                raw,
                k,
                "of",
                lambda v: _choice(v, inner, "the truncated distribution: "),
                expected='the distribution to truncate: "normal", "lognormal" or "uniform"',
            )
            if "lower" not in raw and "upper" not in raw:
                raise self.error(
                    (*k, "lower"), "nothing (the key is missing)", "lower and/or upper bounds"
                )
        allowed = ("dist", *_DIST_KEYS[of], "lower", "upper")
        if dist == "truncated":
            allowed = (*allowed, "of")
        if of == "fixed":
            allowed = ("dist", "value")
        self.keys(raw, k, allowed)
        bounded = functools.partial(self._value, p)  # any value in the unit (bounds later)
        lo = self.get(raw, k, "lower", bounded, p.lower)
        hi = self.get(raw, k, "upper", bounded, p.upper)
        lo, hi = max(lo, p.lower), min(hi, p.upper)
        if not lo < hi:
            raise self.error(
                (*k, "upper"), f"an empty interval [{lo:g}, {hi:g}] {p.unit}", "lower < upper"
            )
        if of == "fixed":
            return ParamDist(p.name, "fixed", self.get(raw, k, "value", conv, expected="a value"))
        if of == "normal":
            mean = self.get(raw, k, "mean", bounded, expected=f"a mean in {p.unit}")
            sd = self.get(raw, k, "sd", self._sd(p), expected=f"an sd > 0 in {p.unit}")
            return ParamDist(p.name, "normal", mean, sd, lo, hi)
        if of == "lognormal":
            med = self.get(raw, k, "median", conv, expected=f"a median > 0 in {p.unit}")
            if not med > 0:
                raise self.error((*k, "median"), _show(raw["median"]), "a median > 0")
            sdl = self.get(
                raw, k, "sd_log", self._positive_number, expected="a log-sd > 0 (e.g. 0.5)"
            )
            return ParamDist(p.name, "lognormal", math.log(med), sdl, max(lo, 0.0), hi)
        if of == "uniform":
            low = self.get(raw, k, "low", conv, expected=f"a value in {p.unit}")
            high = self.get(raw, k, "high", conv, expected=f"a value in {p.unit}")
            if not low < high:
                raise self.error((*k, "high"), f"high = {high:g} <= low = {low:g}", "low < high")
            return ParamDist(p.name, "uniform", low, high, max(lo, low), min(hi, high))
        return self.empirical(raw, k, p, lo, hi)

    @staticmethod
    def _value(p: Any, value: object) -> float:
        return parse_param_value(value, p.unit)

    @staticmethod
    def _sd(p: Any) -> Callable[[object], float]:
        def check(value: object) -> float:
            x = parse_param_value(value, p.unit)
            if not x > 0:
                raise UnitError(_show(value), f"an sd > 0 in {p.unit}")
            return x

        return check

    def empirical(self, raw: dict[str, Any], k: Path, p: Any, lo: float, hi: float) -> ParamDist:
        file = self.get(raw, k, "file", _text, expected="a CSV file (relative to the scenario)")
        column = self.get(raw, k, "column", _text, expected="a column name of the CSV file")
        unit = self.get(raw, k, "unit", _text, "")
        try:
            factor = parse_param_value(f"1{unit}", p.unit) if unit else 1.0
        except UnitError as e:
            raise self.error((*k, "unit"), _show(unit), e.expected) from None
        base = os.path.dirname(self.path) if self.path != "<string>" else ""
        name = os.path.join(base, file)
        try:
            # read at most one byte more than allowed: /dev/zero or a huge file stops there
            with open(name, "rb") as f:
                data = f.read(MAX_CSV_BYTES + 1)
        except OSError as e:
            raise self.error(
                (*k, "file"), f"{_show(file)}, which cannot be read ({e.strerror or e})", "a CSV"
            ) from None
        if len(data) > MAX_CSV_BYTES:
            raise self.error(
                (*k, "file"),
                f"{_show(file)}, larger than {MAX_CSV_BYTES:,} bytes",
                "a CSV file of numbers up to that size",
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            raise self.error(
                (*k, "file"),
                f"{_show(file)}, with bytes that are not UTF-8 text at line {line}",
                "a CSV text file",
            ) from None
        if "\x00" in text:
            raise self.error(
                (*k, "file"), f"{_show(file)}, with NUL bytes (a binary file)", "a CSV text file"
            )
        lines = [
            ln for ln in text.splitlines(keepends=True)
            if ln.strip() and not ln.lstrip().startswith("#")
        ]  # fmt: skip
        try:
            rows = list(csv.DictReader(lines))
        except csv.Error as e:
            raise self.error(
                (*k, "file"), f"{_show(file)}, which is not a valid CSV ({e})", "a CSV text file"
            ) from None
        if not rows or column not in rows[0]:
            cols = list(rows[0]) if rows else []
            raise self.error(
                (*k, "column"),
                f"{_show(column)}, not a column of {_show(file)}",
                "one of " + _listing(cols) + _suggest(column, cols),
            )
        values = []
        for j, row in enumerate(rows):
            try:
                if not row[column].isascii():  # float() also reads other scripts' digits
                    raise ValueError
                values.append(float(row[column]) * factor)
            except (TypeError, ValueError, AttributeError):
                raise self.error(
                    (*k, "column"),
                    f"{_show(row[column])} in row {j + 1} of {_show(file)}",
                    "numbers in every row",
                ) from None
        inside = sorted(v for v in values if math.isfinite(v) and lo <= v <= hi)
        if not inside:
            raise self.error(
                (*k, "file"),
                f"no value of {abridge(file)}:{abridge(column)} in [{lo:g}, {hi:g}] {p.unit}",
                "values within the bounds",
            )
        return ParamDist(p.name, "empirical", lower=lo, upper=hi, values=tuple(inside),
                         source=f"{file}:{column}")  # fmt: skip

    def correlations(self, raw: object, dists: tuple[ParamDist, ...]) -> tuple[Correlation, ...]:
        k: Path = ("cohort", "correlation")
        if raw is _MISSING:
            return ()
        items = raw if isinstance(raw, list) else [raw]
        have = {d.name: d for d in dists}
        seen: set[str] = set()
        out = []
        for i, item in enumerate(items):
            kk: Path = (*k, i) if isinstance(raw, list) else k
            tab = self.table(item, kk, 'a table { params = ["p_xy", "e_tki"], matrix = [[...]] }')
            self.keys(tab, kk, ("params", "matrix"))
            names = tab.get("params")
            if not (isinstance(names, list) and len(names) >= 2 and all(
                isinstance(n, str) for n in names
            )):  # fmt: skip
                raise self.error(
                    (*kk, "params"),
                    _show(names) if names is not None else "nothing",
                    "an array of at least two parameter names",
                )
            for n in names:
                if n not in have or have[n].dist == "fixed":
                    raise self.error(
                        (*kk, "params"),
                        f'"{n}", which has no distribution in [cohort]',
                        "parameters with a distribution in [cohort]"
                        + _suggest(n, [d.name for d in dists]),
                    )
                if n in seen:
                    raise self.error(
                        (*kk, "params"), f'"{n}" twice', "each parameter in one correlation"
                    )
                seen.add(n)
            m = tab.get("matrix")
            size = len(names)
            expected = f"a symmetric positive-definite {size}x{size} matrix with unit diagonal"
            try:
                mat = np.array(m, dtype=float)
            except (TypeError, ValueError):
                raise self.error((*kk, "matrix"), _show(m), expected) from None
            ok = mat.shape == (size, size) and bool(np.all(np.isfinite(mat)))
            ok = ok and np.allclose(mat, mat.T) and np.allclose(np.diag(mat), 1.0)
            if ok:
                try:
                    np.linalg.cholesky(mat)
                except np.linalg.LinAlgError:
                    ok = False
            if not ok:
                shown = f"{mat.shape[0]}x{mat.shape[1]}" if mat.ndim == 2 else _show(m)
                raise self.error((*kk, "matrix"), f"{shown} matrix {m!r}", expected)
            out.append(Correlation(tuple(names), tuple(tuple(r) for r in mat.tolist())))
        return tuple(out)

    # -- [sweep]
    _SWEEP_KEYS = (
        "design",
        "n",
        "levels",
        "second_order",
        "chunk",
        "outputs",
        "trajectory_every",
        "phase",
        "params",
    )
    _SWEEP_PARAM_KEYS = ("low", "high", "scale", "levels", "values", "name")

    def sweep(
        self,
        doc: dict[str, Any],
        spec: ModelSpec,
        therapy: tuple[TherapySegment, ...],
        protocol: Protocol,
        interventions: tuple[Intervention, ...],
        head: dict[str, Any],
        cohort: Cohort | None,
    ) -> Sweep:
        from sim.sweep import design as sd
        from sim.sweep import metrics as sm

        k: Path = ("sweep",)
        tab = self.table(doc["sweep"], k, 'a [sweep] table (e.g. design = "sobol", n = 1024)')
        self.keys(tab, k, self._SWEEP_KEYS)
        if head["engine"] != "ode":
            raise self.error(k, f'a [sweep] with engine "{head["engine"]}"', 'engine = "ode"')
        if cohort is not None:
            raise self.error(
                k,
                "both [sweep] and [cohort]",
                "one of them: a sweep varies one patient's parameters, a cohort draws patients",
            )
        kinds = ", ".join(f'"{d}"' for d in sd.DESIGNS)
        design = self.get(
            tab,
            k,
            "design",
            lambda v: _choice(v, sd.DESIGNS, "a design: "),
            expected=f"a design: one of {kinds}",
        )
        n = None
        if design == "grid":
            if "n" in tab:
                raise self.error(
                    (*k, "n"), "n with a grid", "no n: a grid runs every combination of its levels"
                )
        else:
            n = self.get(
                tab,
                k,
                "n",
                lambda v: _integer(v, 2, MAX_SWEEP_N),
                expected=f"an integer from 2 to {MAX_SWEEP_N} (LHS samples, Sobol base samples, "
                "Morris trajectories)",
            )
            if design == "sobol" and n & (n - 1):
                raise self.error(
                    (*k, "n"),
                    f"{n}, not a power of 2",
                    "a power of 2 (e.g. 1024): Sobol' sequences are balanced at powers of 2",
                )
        levels = self.get(
            tab, k, "levels", lambda v: _integer(v, 2, 10_000), 5 if design == "grid" else 4
        )
        if "second_order" in tab and design != "sobol":
            raise self.error(
                (*k, "second_order"),
                f"second_order with design = {design!r}",
                'no second_order (it is for design = "sobol")',
            )
        second = self.get(tab, k, "second_order", _boolean, True)
        chunk = self.get(tab, k, "chunk", lambda v: _integer(v, 1, 1_000_000), None)
        every = self.get(tab, k, "trajectory_every", _duration, None)
        base = sd.Base.from_doc(doc, spec, therapy, protocol, interventions, head["horizon"])
        params, keys = self.sweep_params(tab.get("params", _MISSING), base, design)
        if design == "sobol" and second and len(params) < 2:
            raise self.error(
                (*k, "second_order"),
                "second-order indices of one parameter",
                "two or more parameters, or second_order = false",
            )
        problem = sd.check_together(params, base)
        if problem:
            raise self.error(keys[problem[0]], problem[1], problem[2])
        names = sm.metric_names(spec)

        def check_outputs(value: object) -> tuple[str, ...]:
            expected = "an array of metric names (sim.sweep.metrics): " + _listing(names)
            if not isinstance(value, list) or not value:
                raise UnitError(_show(value), expected)
            for v in value:
                _choice(v, names, "a metric: ")
            return tuple(dict.fromkeys(value))

        outputs = self.get(tab, k, "outputs", check_outputs, ("tfr_24mo", "tfr_months"))
        paths = [p.path for p in params]

        def check_phase(value: object) -> tuple[str, ...]:
            expected = "an array of two swept addresses: " + ", ".join(paths)
            if not isinstance(value, list) or len(value) != 2 or value[0] == value[1]:
                raise UnitError(_show(value), expected)
            for v in value:
                _choice(v, paths, "a swept address: ")
            return tuple(value)

        phase = self.get(tab, k, "phase", check_phase, ())
        sweep = Sweep(design, params, n, levels, second, chunk, outputs, every, phase)
        total = sd.n_samples(sweep)
        if total > sd.MAX_SAMPLES:
            raise self.error(
                (*k, "params" if design == "grid" else "n"),
                f"a design of {total:,} runs",
                f"at most {sd.MAX_SAMPLES:,} runs",
            )
        return sweep

    def sweep_params(
        self, raw: object, base: Any, design: str
    ) -> tuple[tuple[SweepParam, ...], dict[str, Path]]:
        """The ``[sweep.params]`` table: addresses (dotted keys or quoted paths) to ranges."""
        from sim.sweep import design as sd

        k: Path = ("sweep", "params")
        example = 'e.g. patient.k_E = { low = "0.001/d", high = "0.1/d", scale = "log" }'
        if raw is _MISSING:
            raise self.error(k, "no [sweep.params] table", f"the parameters to vary, {example}")
        tab = self.table(raw, k, f"a [sweep.params] table, {example}")
        leaves: list[tuple[Path, object]] = []

        def walk(t: dict[str, Any], at: Path) -> None:
            for name, v in t.items():
                if isinstance(v, dict) and v and not set(v) & set(self._SWEEP_PARAM_KEYS):
                    walk(v, (*at, name))
                else:
                    leaves.append(((*at, name), v))

        walk(tab, k)
        if not leaves:
            raise self.error(k, "an empty [sweep.params]", f"at least one parameter, {example}")
        out: list[SweepParam] = []
        keys: dict[str, Path] = {}
        owner: dict[tuple, str] = {}
        for key, spec_ in leaves:
            path = ".".join(str(part) for part in key[2:])
            try:
                target = sd.resolve(path, base)
            except UnitError as e:
                raise self.error(key, e.found, e.expected) from None
            where = (target.kind, target.index, target.field)
            if where in owner:
                raise self.error(
                    key, f'"{path}", the same parameter as "{owner[where]}"', "each parameter once"
                )
            owner[where] = path
            leaf = self.table(
                spec_,
                key,
                "a table { low = ..., high = ... } (optional scale = "
                '"log", levels, values = [...] for grids, name)',
            )
            self.keys(leaf, key, self._SWEEP_PARAM_KEYS)

            def value(v: object, target: Any = target) -> float:
                x = target.parse(v)
                target.check(x)
                return x

            def values(v: object) -> tuple[float, ...]:
                if not isinstance(v, list) or not v:
                    raise UnitError(_show(v), "a non-empty array of values")
                xs = tuple(value(x) for x in v)
                if len(set(xs)) != len(xs):
                    raise UnitError(_show(v), "an array of distinct values")
                return xs

            grid_only = [x for x in ("values", "levels") if x in leaf and design != "grid"]
            if grid_only:
                raise self.error(
                    (*key, grid_only[0]),
                    f"{grid_only[0]} with design = {design!r}",
                    "low and high (levels and values are for grid designs)",
                )
            vals: tuple[float, ...] = ()
            if "values" in leaf:
                both = [x for x in ("low", "high", "levels") if x in leaf]
                if both:
                    raise self.error(
                        (*key, both[0]),
                        f"both values and {both[0]}",
                        "either values = [...] or low and high",
                    )
                vals = self.get(leaf, key, "values", values)
                low, high = min(vals), max(vals)
            else:
                rng = f"a value for the range, in {target.unit or 'plain numbers'}"
                low = self.get(leaf, key, "low", value, expected=rng)
                high = self.get(leaf, key, "high", value, expected=rng)
                if not high > low:
                    raise self.error(
                        (*key, "high"),
                        f"high {_show(leaf['high'])} <= low {_show(leaf['low'])}",
                        "high > low",
                    )
            scale = self.get(leaf, key, "scale", lambda v: _choice(v, ("linear", "log")), "linear")
            if scale == "log" and not low > 0:
                raise self.error(
                    (*key, "scale" if vals else "low"),
                    f'scale = "log" from {low:g}',
                    'values > 0 for scale = "log"',
                )
            levels = self.get(leaf, key, "levels", lambda v: _integer(v, 2, 1_000_000), None)
            taken = {p.name for p in out}

            def check_name(v: object) -> str:
                s = _text(v, "a name of letters, digits and '_'")
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s) or s in sd.RESERVED_NAMES:
                    raise UnitError(
                        _show(v),
                        "a name of letters, digits and '_', not one of "
                        + ", ".join(sd.RESERVED_NAMES),
                    )
                return s

            name = self.get(leaf, key, "name", check_name, target.name)
            if name in taken:
                raise self.error(
                    (*key, "name") if "name" in leaf else key,
                    f'the name "{name}" twice',
                    "a unique name = ... per parameter",
                )
            keys[path] = key
            out.append(SweepParam(path, name, low, high, scale, levels, vals, target.unit))
        return tuple(out), keys

    # -- [readout], [output]
    def readout(self, raw: object) -> dict[str, float]:
        k: Path = ("readout",)
        tab = self.table(raw, k, "a [readout] table of qPCR parameter overrides")
        table = _qpcr_table()
        if table is None:  # sim.readout not available: numbers > 0 only
            return {n: self.get(tab, k, n, self._positive_number) for n in tab}
        self.keys(tab, k, table.names)
        return {n: self.get(tab, k, n, functools.partial(self._param, table[n])) for n in tab}

    def output(self, raw: object) -> tuple[bool, tuple[str, ...]]:
        k: Path = ("output",)
        tab = self.table(raw, k, "an [output] table")
        self.keys(tab, k, ("figure", "formats"))
        figure = self.get(tab, k, "figure", _boolean, True)
        expected = "an array of formats from " + ", ".join(f'"{f}"' for f in FIGURE_FORMATS)

        def check_formats(value: object) -> tuple[str, ...]:
            if not isinstance(value, list):
                raise UnitError(_show(value), expected)
            for v in value:
                _choice(v, FIGURE_FORMATS, "a format: ")
            if len(set(value)) != len(value):
                raise UnitError("a repeated format", expected + ", each once")
            return tuple(value)

        formats = self.get(tab, k, "formats", check_formats, ("png", "pdf"))
        if figure and not formats:
            raise self.error((*k, "formats"), "[] with figure = true", "at least one format")
        return figure, formats


# ---------------------------------------------------------------------------------------------
# Entry points


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
#: A run of digits (with TOML's "_" separators) longer than int() reads.
_LONG_DIGITS = re.compile(rf"[0-9][0-9_]{{{max(sys.get_int_max_str_digits(), 1)},}}")


def loads(text: str, path: str = "<string>") -> Scenario:
    """A validated :class:`Scenario` from TOML ``text``.

    Parameters
    ----------
    text : str
        The scenario file's content.
    path : str
        Name used in error messages and kept in :attr:`Scenario.path`.

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        Any problem: TOML syntax, unknown or missing keys, wrong types, values out of range,
        impossible schedules. The message names the file, line, key path, what was found and what
        is expected.
    """
    path = str(path)
    if len(text) > MAX_SCENARIO_BYTES:
        raise ScenarioError(
            path,
            None,
            "",
            f"a text of {len(text):,} characters",
            f"a scenario file of at most {MAX_SCENARIO_BYTES:,} bytes",
        )
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = _TOML_AT.search(msg)
        line = int(m.group(1)) if m else None
        if line is None and msg.endswith("(at end of document)"):
            line = text.count("\n") + 1
            msg = msg.removesuffix("(at end of document)").strip()
        elif m:
            msg = msg[: m.start()]
        lines = text.splitlines()
        where = ""
        if line is not None and 1 <= line <= len(lines) and lines[line - 1].strip():
            where = f" in {lines[line - 1].strip()[:80]!r}"
        first = msg[:1].lower() + msg[1:]
        raise ScenarioError(
            path, line, "", f"a TOML syntax error ({first}){where}", "valid TOML (https://toml.io)"
        ) from None
    except RecursionError:
        raise ScenarioError(path, None, "", "nesting too deep", "a scenario file") from None
    except ValueError:
        # tomllib converts integers with int(), which refuses more than
        # sys.get_int_max_str_digits() digits (4,300) with a plain ValueError
        m = _LONG_DIGITS.search(text)
        line = text.count("\n", 0, m.start()) + 1 if m else None
        raise ScenarioError(
            path,
            line,
            "",
            f"an integer of {len(m.group()):,} digits" if m else "a number too long to read",
            f"a number of at most {sys.get_int_max_str_digits():,} digits",
        ) from None
    return _Reader(text, path).scenario(doc)


def load(path: str | os.PathLike[str]) -> Scenario:
    """A validated :class:`Scenario` from the TOML file at ``path`` (see :func:`loads`)."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            raw = f.read(MAX_SCENARIO_BYTES + 1)  # /dev/zero or a huge file stops here
    except OSError as e:
        raise ScenarioError(
            name, None, "", f"a file that cannot be read ({e.strerror or e})", "a scenario file"
        ) from None
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ScenarioError(
            name,
            None,
            "",
            f"a file larger than {MAX_SCENARIO_BYTES:,} bytes",
            "a scenario file of at most that size",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ScenarioError(
            name, line, "", f"bytes that are not UTF-8 ({e.reason})", "a UTF-8 text file"
        ) from None
    return loads(text, name)


def validate_main(path: str) -> int:
    """Check one scenario file, for ``cmlsim validate``.

    Prints ``OK: FILE: <summary>`` to stdout and returns 0, or prints the error to stderr and
    returns 2.
    """
    try:
        sc = load(path)
    except ScenarioError as e:
        print(f"cmlsim validate: {e}", file=sys.stderr)
        return 2
    print(f"OK: {path}: {sc.describe()}")
    return 0
