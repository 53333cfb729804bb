r"""Scorecard: each published proportion target simulated by a documented recipe and scored.

Every row of ``sim/data/calibration_targets.csv`` of kind ``proportion`` either has a
:class:`Recipe` in :data:`RECIPES` or a reason in :data:`NOT_SIMULATED`; no target is skipped
without one (:func:`unsimulated` lists the reasons). A recipe names

- a trial **arm** (:data:`ARMS`): a cohort scenario built in code from one small base (the
  shipped default cohort: ``cml_immune`` model, ODE engine, the resampled Hähnel 2020 patients
  with the ``tang2011`` calibration, qPCR at ELN 2020 visits, decisions on measured values) with
  the drug, dose, trial design, interventions and horizon of that arm changed;
- a **measure**: which per-patient outcome, at which time, taken from the *measured* qPCR
  (visit logs and the ``t_*_measured`` columns of :func:`sim.cohort.outcome_table`), as the
  trials report, never from the true BCR-ABL1 level.

Targets of the same trial arm share one cohort (the same virtual patients, as in the trial);
different arms are independent samples. :func:`scorecard` simulates each arm once and scores
each target with :func:`sim.population.targets.score`.

Measures
--------
``at visit``
    Fraction of patients with a monitoring visit at the target time (the visit nearest to it,
    within half the 3-month spacing) whose measured result meets the threshold there: the rate
    *at* a landmark visit (ENESTnd's "MMR rate at 12 months").
``by time``
    Fraction of patients whose measured result met the threshold at some visit up to the
    target time: a cumulative rate (DASISION's "MMR at any time within the first 12 months",
    cumulative MR4.5 by 5 years, IRIS's estimated complete cytogenetic response rate).
``MRFS``
    Kaplan–Meier molecular relapse-free survival of the stopped patients at the target time
    after the stop (:func:`sim.outcomes.tfr_at`), by the design's relapse rule; ``n_sim`` is
    the number of stopped patients. Undefined (NaN, ``n_sim`` 0) when nobody stopped.
``DESTINY``
    Fraction with molecular recurrence (two consecutive samples > 0.1 %) during the 12-month
    half-dose year, among patients who began it at least 12 months before the horizon, in the
    MR4 or the MMR (not MR4) entry group.

Molecular responses are read as ``sim.readout`` depths (Cross et al. 2015: a negative sample
proves a depth only with enough ABL1 copies); thresholds on the level itself (<= 10 %, <= 1 %)
use the measured % IS, a negative sample counting as 0. Complete cytogenetic response has no
BCR-ABL1 definition in the model; the common approximation BCR-ABL1 (IS) <= 1 % is used.

Random streams
--------------
``numpy.random.SeedSequence(seed).spawn(len(ARMS))`` gives one child per arm, in the order of
:data:`ARMS`; the arm's scenario seed is drawn from its child, so arms are independent and an
arm's cohort depends only on the scorecard seed, the arm's position and the cohort size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from sim.params import DAYS_PER_MONTH, DAYS_PER_YEAR
from sim.population.targets import Target, load_targets, score

if TYPE_CHECKING:
    import pandas as pd

    from sim.cohort import CohortResult

__all__ = [
    "ARMS",
    "COLUMNS",
    "NOT_SIMULATED",
    "RECIPES",
    "Arm",
    "Recipe",
    "arm_scenario",
    "arm_seeds",
    "scorecard",
    "simulate_arm",
    "unsimulated",
]

#: Columns of the table :func:`scorecard` returns.
COLUMNS = ("target", "source", "simulated", "lo", "hi", "tolerance", "within", "n_sim", "recipe")

#: Half-width of the window around a target time in which a visit counts as the landmark visit:
#: half the ELN 2020 on-treatment spacing of 3 months.
VISIT_WINDOW = 1.5 * DAYS_PER_MONTH

#: Largest scenario seed (a signed 64-bit integer).
_MAX_SEED = 2**63 - 1


# ---------------------------------------------------------------------------------------------
# arms: the scenarios


@dataclass(frozen=True)
class Arm:
    """One simulated trial arm: the default cohort with its therapy, design and horizon.

    Attributes
    ----------
    name : str
        Arm label (scenario name and outcome-table arm).
    drug, dose, every : str
        The TKI, its dose and dosing interval as scenario text (``drug = ""``: no TKI).
    horizon : str
        Simulated time from diagnosis.
    design : str
        ``[trial] design`` (``""``: no trial, TKI never stopped).
    follow_up : str
        ``[trial] follow_up`` (with a design).
    interferon : tuple of str
        ``(product, dose, every, duration)`` of a peg-interferon course from diagnosis
        (``duration`` ``""``: to the horizon), or empty.
    description : str
        What the arm is, in words (part of each recipe's text).
    """

    name: str
    drug: str
    dose: str
    every: str
    horizon: str
    design: str = ""
    follow_up: str = "24mo"
    interferon: tuple[str, ...] = ()
    description: str = ""


def _first_line(name: str, drug: str, dose: str, every: str, horizon: str, **kw) -> Arm:
    text = f"{drug} {dose} every {every} from diagnosis, never stopped, {horizon}"
    return Arm(name, drug, dose, every, horizon, description=kw.pop("description", text), **kw)


_IMATINIB = ("imatinib", "400mg", "1d")

#: The simulated arms, in the order their random streams are spawned.
ARMS: tuple[Arm, ...] = (
    _first_line("enestnd-imatinib", *_IMATINIB, "61mo"),
    _first_line("enestnd-nilotinib", "nilotinib", "300mg", "12h", "61mo"),
    _first_line("dasision-imatinib", *_IMATINIB, "61mo"),
    _first_line("dasision-dasatinib", "dasatinib", "100mg", "1d", "61mo"),
    _first_line("iris-imatinib", *_IMATINIB, "19mo"),
    Arm(
        "iris-interferon",
        "",
        "",
        "",
        "19mo",
        interferon=("peginterferon-alfa-2a", "90ug", "1w", ""),
        description="peg-IFN-alpha2a 90 ug weekly from diagnosis without TKI (no cytarabine: "
        "not in the model), qPCR every 3 months, 19mo",
    ),
    _first_line("nordic-imatinib", *_IMATINIB, "13mo"),
    _first_line(
        "nordic-imatinib-pegifn2b",
        *_IMATINIB,
        "13mo",
        interferon=("peginterferon-alfa-2b", "50ug", "1w", "12mo"),
        description="imatinib 400mg daily + peg-IFN-alpha2b 50 ug weekly for 12 months, both "
        "from diagnosis (the trial randomised after complete haematological response), 13mo",
    ),
    _first_line("spirit-imatinib", *_IMATINIB, "13mo"),
    _first_line(
        "spirit-imatinib-pegifn2a",
        *_IMATINIB,
        "13mo",
        interferon=("peginterferon-alfa-2a", "90ug", "1w", "12mo"),
        description="imatinib 400mg daily + peg-IFN-alpha2a 90 ug weekly, both from diagnosis, "
        "13mo",
    ),
    Arm(
        "euro-ski",
        *_IMATINIB,
        "12y",
        design="euro-ski",
        follow_up="36mo",
        description="imatinib 400mg daily, EURO-SKI design (stop after >= 3 y of TKI with MR4 "
        ">= 1 y on measured qPCR; relapse = single loss of MMR), follow-up 36mo, 12y",
    ),
    Arm(
        "stim1",
        *_IMATINIB,
        "12y",
        design="stim",
        follow_up="60mo",
        description="imatinib 400mg daily, STIM design (stop after >= 3 y with MR4.5 >= 2 y; "
        "relapse = single loss of MMR only, the confirmed 1-log rise is not in the kernel), "
        "follow-up 60mo, 12y",
    ),
    Arm(
        "immunostim",
        *_IMATINIB,
        "12y",
        design="stim",
        follow_up="24mo",
        description="imatinib 400mg daily, STIM design as for STIM1 (no immune-monitoring "
        "selection), follow-up 24mo, 12y",
    ),
    Arm(
        "destiny",
        *_IMATINIB,
        "12y",
        design="destiny",
        follow_up="24mo",
        description="imatinib 400mg daily, DESTINY design (>= 3 y of TKI, MMR at every visit "
        "of the last 12 months; 12 months at half dose; recurrence = two consecutive > 0.1 %), "
        "12y",
    ),
)

_ARM_BY_NAME: Mapping[str, Arm] = MappingProxyType({a.name: a for a in ARMS})


def arm_scenario(arm: Arm, seed: int, size: int) -> str:
    """The TOML text of an arm's cohort scenario (the default cohort with the arm's changes).

    Parameters
    ----------
    arm : Arm
    seed : int
        Scenario seed, 0 to 2**63 - 1.
    size : int
        ``[cohort] size``.

    Returns
    -------
    str
        A scenario readable by :func:`sim.scenario.loads`; visit logs are stored
        (``store_visits``) because the landmark measures read them.
    """
    # an untreated arm declares its empty therapy list before the first table
    lines = [] if arm.drug else ["therapy = []", ""]
    lines += [
        "[scenario]",
        f'name = "scorecard-{arm.name}"',
        'model = "cml_immune"',
        'engine = "ode"',
        f'horizon = "{arm.horizon}"',
        f"seed = {int(seed)}",
        "",
    ]
    if arm.drug:
        lines += [
            "[[therapy]]",
            f'drug = "{arm.drug}"',
            f'dose = "{arm.dose}"',
            f'every = "{arm.every}"',
            'start = "diagnosis"',
            "",
            "[protocol]",
            'monitoring = "eln2020"',
            'decisions = "measured"',
        ]
    else:
        # no TKI: a fixed 3-monthly visit schedule (ELN 2020 spacing on therapy)
        lines += ["[protocol]", 'monitoring = { every = "3mo" }']
    lines.append("")
    if arm.design:
        lines += [
            "[trial]",
            f'design = "{arm.design}"',
            f'follow_up = "{arm.follow_up}"',
            f'arm = "{arm.name}"',
            "",
        ]
    if arm.interferon:
        product, dose, every, duration = arm.interferon
        lines += [
            "[[intervention]]",
            f'product = "{product}"',
            f'dose = "{dose}"',
            f'every = "{every}"',
            'start = "diagnosis"',
        ]
        if duration:
            lines.append(f'duration = "{duration}"')
        lines.append("")
    lines += [
        "[cohort]",
        f"size = {int(size)}",
        'base = "hahnel2020"',
        "spread = 0.1",
        "store_visits = true",
        "",
    ]
    return "\n".join(lines)


def arm_seeds(seed: int) -> dict[str, int]:
    """One independent scenario seed per arm, from ``SeedSequence(seed).spawn(len(ARMS))``.

    Parameters
    ----------
    seed : int
        The scorecard seed (a non-negative integer).

    Returns
    -------
    dict
        Arm name -> scenario seed in [0, 2**63 - 1].
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"scorecard seed: found {seed!r}, expected a non-negative integer")
    children = np.random.SeedSequence(int(seed)).spawn(len(ARMS))
    return {
        a.name: int(c.generate_state(1, np.uint64)[0]) & _MAX_SEED
        for a, c in zip(ARMS, children, strict=True)
    }


def simulate_arm(arm: Arm, seed: int, size: int) -> CohortResult:
    """Run one arm's cohort (``size`` patients, scenario seed ``seed``)."""
    from sim import cohort, scenario

    sc = scenario.loads(arm_scenario(arm, seed, size), path=f"<scorecard arm {arm.name}>")
    return cohort.run_cohort(sc, size=size)


# ---------------------------------------------------------------------------------------------
# measures: (cohort result, target) -> (simulated proportion, patients it is over)

Measure = Callable[["CohortResult", Target], tuple[float, int]]


def _visit_fields(res: CohortResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Visit times, measured % IS and depth codes, each (patients, visits), NaN-padded."""
    from sim.engines import ode

    if res.visits is None:
        raise ValueError(f"cohort {res.name!r} has no visit logs (store_visits = true)")
    v = res.visits
    return v[:, :, ode.V_TIME], v[:, :, ode.V_MEAS], v[:, :, ode.V_DEPTH]


def _meets(meas: np.ndarray, depth: np.ndarray, threshold: float | int, by_depth: bool):
    """Whether each visit meets a depth code (``by_depth``) or a measured level <= threshold."""
    with np.errstate(invalid="ignore"):
        if by_depth:
            return depth >= threshold
        return meas <= threshold


def at_visit(threshold: float | int, *, by_depth: bool) -> Measure:
    """Measure: fraction meeting the threshold at the visit nearest the target time.

    Patients without a visit within :data:`VISIT_WINDOW` of the target time are left out.
    """

    def measure(res: CohortResult, target: Target) -> tuple[float, int]:
        assert target.time_days is not None
        t, meas, depth = _visit_fields(res)
        dist = np.abs(t - target.time_days)
        dist = np.where(np.isfinite(dist), dist, np.inf)
        j = dist.argmin(axis=1)
        rows = np.arange(t.shape[0])
        has = dist[rows, j] <= VISIT_WINDOW
        ok = _meets(meas[rows, j], depth[rows, j], threshold, by_depth) & has
        n = int(has.sum())
        return (float(ok.sum()) / n if n else math.nan), n

    return measure


def by_time(threshold: float | int, *, by_depth: bool) -> Measure:
    """Measure: fraction meeting the threshold at some visit up to the target time."""

    def measure(res: CohortResult, target: Target) -> tuple[float, int]:
        assert target.time_days is not None
        t, meas, depth = _visit_fields(res)
        within = np.isfinite(t) & (t <= target.time_days + 1e-6)
        ok = (_meets(meas, depth, threshold, by_depth) & within).any(axis=1)
        n = t.shape[0]
        return float(ok.sum()) / n, n

    return measure


def mrfs(select: Callable[[pd.DataFrame], pd.Series] | None = None) -> Measure:
    """Measure: Kaplan–Meier relapse-free survival at the target time after the stop.

    ``select`` restricts the stopped patients (e.g. by time on TKI). NaN and 0 patients when
    nobody stopped, or when the time lies beyond the longest follow-up.
    """

    def measure(res: CohortResult, target: Target) -> tuple[float, int]:
        from sim import outcomes

        assert target.time_days is not None
        table = outcomes.stopped(res.outcomes)
        if select is not None:
            table = table[select(table).to_numpy(dtype=bool)]
        if table.empty:
            return math.nan, 0
        est = outcomes.tfr_at(table, target.time_days / DAYS_PER_MONTH)[0]
        return (float(est), len(table)) if math.isfinite(est) else (math.nan, 0)

    return measure


def _entered_mr4(res: CohortResult) -> tuple[np.ndarray, np.ndarray]:
    """DESTINY entry: who began the half-dose year (in time to finish it), and who was in MR4.

    The MR4 group: every on-TKI visit in the 12 months up to the start of the lead-in at MR4 or
    deeper (measured); the others entered with MMR (not MR4 throughout).
    """
    from sim import readout

    tab = res.outcomes
    start = tab["eligible_time"].to_numpy(np.float64)
    entered = np.isfinite(start) & (start + 12 * DAYS_PER_MONTH <= res.horizon + 1e-6)
    t, _, depth = _visit_fields(res)
    window = np.isfinite(t) & (t <= start[:, None] + 1e-6) & (t >= start[:, None] - DAYS_PER_YEAR)
    shallow = (window & (depth < readout.DEPTH_MR4)).any(axis=1)
    return entered, entered & ~shallow


def destiny(group: str) -> Measure:
    """Measure: recurrence during the half-dose year in DESTINY's ``"MR4"`` or ``"MMR"`` group."""

    def measure(res: CohortResult, target: Target) -> tuple[float, int]:
        entered, mr4 = _entered_mr4(res)
        members = mr4 if group == "MR4" else entered & ~mr4
        n = int(members.sum())
        fail = res.outcomes["lead_in_failure"].to_numpy(dtype=bool) & members
        return (float(fail.sum()) / n if n else math.nan), n

    return measure


# ---------------------------------------------------------------------------------------------
# recipes


@dataclass(frozen=True)
class Recipe:
    """How one target is simulated: the arm, the measure, and a description.

    Attributes
    ----------
    target : str
        Target identifier in ``calibration_targets.csv``.
    arm : str
        Name of an arm in :data:`ARMS`.
    measure : callable
        ``(CohortResult, Target) -> (proportion, patients)``.
    text : str
        The measure in words (the arm's description is appended in :meth:`describe`).
    """

    target: str
    arm: str
    measure: Measure
    text: str

    def describe(self) -> str:
        """The recipe in words: measure, then arm."""
        return f"{self.text}; arm {self.arm}: {_ARM_BY_NAME[self.arm].description}"


def _mmr_at(arm: str, target: str) -> Recipe:
    return Recipe(
        target, arm, at_visit(3, by_depth=True), "measured MMR (<= 0.1 % IS) at the 12-month visit"
    )


def _mmr_by(arm: str, target: str) -> Recipe:
    return Recipe(
        target, arm, by_time(3, by_depth=True), "measured MMR at any visit up to 12 months"
    )


def _le10_at(arm: str, target: str) -> Recipe:
    return Recipe(
        target,
        arm,
        at_visit(10.0, by_depth=False),
        "measured BCR-ABL1 <= 10 % IS at the 3-month visit",
    )


def _mr45_by(arm: str, target: str) -> Recipe:
    return Recipe(
        target, arm, by_time(5, by_depth=True), "measured MR4.5 at any visit up to 5 years"
    )


def _ccyr_by(arm: str, target: str) -> Recipe:
    return Recipe(
        target,
        arm,
        by_time(1.0, by_depth=False),
        "complete cytogenetic response approximated as measured BCR-ABL1 <= 1 % IS, at any "
        "visit up to 18 months",
    )


_GT_58Y = 5.8 * DAYS_PER_YEAR

#: One recipe per simulable proportion target, by target identifier.
RECIPES: Mapping[str, Recipe] = MappingProxyType(
    {
        r.target: r
        for r in (
            _le10_at("enestnd-imatinib", "bcrabl_le10pct_3mo_imatinib_enestnd"),
            _le10_at("enestnd-nilotinib", "bcrabl_le10pct_3mo_nilotinib_enestnd"),
            _le10_at("dasision-imatinib", "bcrabl_le10pct_3mo_imatinib_dasision"),
            _le10_at("dasision-dasatinib", "bcrabl_le10pct_3mo_dasatinib_dasision"),
            _mmr_at("enestnd-imatinib", "mmr_12mo_imatinib_enestnd"),
            _mmr_at("enestnd-nilotinib", "mmr_12mo_nilotinib_enestnd"),
            _mmr_by("dasision-imatinib", "mmr_12mo_imatinib_dasision"),
            _mmr_by("dasision-dasatinib", "mmr_12mo_dasatinib_dasision"),
            _mmr_at("iris-imatinib", "mmr_12mo_imatinib_iris"),
            _mr45_by("enestnd-imatinib", "mr45_5y_imatinib_enestnd"),
            _mr45_by("enestnd-nilotinib", "mr45_5y_nilotinib_enestnd"),
            _mr45_by("dasision-imatinib", "mr45_5y_imatinib_dasision"),
            _mr45_by("dasision-dasatinib", "mr45_5y_dasatinib_dasision"),
            Recipe("euroski_mrfs_6mo", "euro-ski", mrfs(), "KM MRFS 6 months after the stop"),
            Recipe("euroski_mrfs_24mo", "euro-ski", mrfs(), "KM MRFS 24 months after the stop"),
            Recipe("euroski_mrfs_36mo", "euro-ski", mrfs(), "KM MRFS 36 months after the stop"),
            Recipe(
                "euroski_mrfs_6mo_imatinib_gt5.8y",
                "euro-ski",
                mrfs(lambda s: s["time_on_tki"] > _GT_58Y),
                "KM MRFS 6 months after the stop, patients with > 5.8 y of TKI before it",
            ),
            Recipe(
                "euroski_mrfs_6mo_imatinib_le5.8y",
                "euro-ski",
                mrfs(lambda s: s["time_on_tki"] <= _GT_58Y),
                "KM MRFS 6 months after the stop, patients with <= 5.8 y of TKI before it",
            ),
            _mmr_at("nordic-imatinib", "nordic_mmr_12mo_imatinib"),
            _mmr_at("nordic-imatinib-pegifn2b", "nordic_mmr_12mo_imatinib_pegifn2b"),
            _mmr_at("spirit-imatinib", "spirit_mmr_12mo_imatinib"),
            _mmr_at("spirit-imatinib-pegifn2a", "spirit_mmr_12mo_imatinib_pegifn2a"),
            Recipe(
                "spirit_mr4_12mo_imatinib",
                "spirit-imatinib",
                at_visit(4, by_depth=True),
                "measured MR4 (<= 0.01 % IS) at the 12-month visit",
            ),
            Recipe(
                "spirit_mr4_12mo_imatinib_pegifn2a",
                "spirit-imatinib-pegifn2a",
                at_visit(4, by_depth=True),
                "measured MR4 (<= 0.01 % IS) at the 12-month visit",
            ),
            _ccyr_by("iris-imatinib", "iris_ccyr_18mo_imatinib"),
            _ccyr_by("iris-interferon", "iris_ccyr_18mo_ifn_arac"),
            Recipe(
                "destiny_mmr_loss_halfdose_mr4",
                "destiny",
                destiny("MR4"),
                "recurrence (2 consecutive > 0.1 %) in the 12-month half-dose year, patients "
                "with measured MR4 at every visit of the 12 months before it",
            ),
            Recipe(
                "destiny_mmr_loss_halfdose_mmr",
                "destiny",
                destiny("MMR"),
                "recurrence (2 consecutive > 0.1 %) in the 12-month half-dose year, patients "
                "in MMR but not MR4 throughout the 12 months before it",
            ),
            Recipe("stim1_mrfs_6mo", "stim1", mrfs(), "KM MRFS 6 months after the stop"),
            Recipe("stim1_mrfs_60mo", "stim1", mrfs(), "KM MRFS 60 months after the stop"),
            Recipe(
                "immunostim_mrfs_24mo", "immunostim", mrfs(), "KM MRFS 24 months after the stop"
            ),
        )
    }
)

#: Targets without a recipe, with the reason.
NOT_SIMULATED: Mapping[str, str] = MappingProxyType(
    {
        **{
            t: "kind slope: a per-patient phase slope distribution needs its own comparison "
            "(not a proportion; see tests/test_calibration.py for today's check)"
            for t in (
                "tang_phase1_slope_imatinib",
                "tang_phase1_slope_nilotinib",
                "tang_phase2_slope_imatinib",
                "tang_phase2_slope_nilotinib",
            )
        },
        "euroski_longer_tki_more_tfr": "kind direction: needs an association test, not a "
        "proportion",
        "nk_healthy_range": "kind count: a range of NK levels, compared as a distribution, not "
        "a proportion",
        "pd1_cd8_raised_at_diagnosis": "kind direction: needs an association test, not a "
        "proportion",
        "pd1_cd8_falls_on_tki": "kind direction: needs an association test, not a proportion",
        "nk_at_stop_predicts_tfr": "kind direction: needs an association test, not a proportion",
        "tcells_at_stop_no_association": "kind direction: needs an association test, not a "
        "proportion",
    }
)


def unsimulated() -> pd.DataFrame:
    """Targets the scorecard does not simulate, with the reason (columns target, kind, reason).

    Raises
    ------
    ValueError
        A shipped target has neither a recipe nor a reason.
    """
    import pandas as pd

    rows = []
    for t in load_targets():
        if t.target in RECIPES:
            continue
        if t.target not in NOT_SIMULATED:
            raise ValueError(f"target {t.target}: found no recipe and no reason, expected one")
        rows.append({"target": t.target, "kind": t.kind, "reason": NOT_SIMULATED[t.target]})
    return pd.DataFrame(rows, columns=["target", "kind", "reason"])


# ---------------------------------------------------------------------------------------------
# the scorecard


def scorecard(
    size: int = 2000, seed: int = 20261201, *, arms: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """Simulate every recipe's arm once and score each target.

    Parameters
    ----------
    size : int
        Patients per arm (every arm is a cohort of this size).
    seed : int
        Scorecard seed; arm seeds come from :func:`arm_seeds`.
    arms : tuple of str, optional
        Simulate only these arms (default all); rows of other arms are left out.

    Returns
    -------
    pandas.DataFrame
        One row per recipe, in the file order of the targets, with :data:`COLUMNS`:
        ``simulated`` (NaN when undefined, e.g. nobody stopped), ``lo``/``hi`` (NaN when the
        target has no interval), ``tolerance`` and ``within`` from
        :func:`sim.population.targets.score` (``within`` is ``<NA>`` and ``tolerance`` NaN when
        the target has no interval or the value is undefined), ``n_sim`` (patients the
        proportion is over) and ``recipe`` (in words).
    """
    import pandas as pd

    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"scorecard size: found {size!r}, expected a positive integer")
    wanted = tuple(a.name for a in ARMS) if arms is None else tuple(arms)
    unknown = [a for a in wanted if a not in _ARM_BY_NAME]
    if unknown:
        raise ValueError(
            f"scorecard arms: found {unknown[0]!r}, expected one of "
            + ", ".join(a.name for a in ARMS)
        )
    seeds = arm_seeds(seed)
    targets = [t for t in load_targets() if t.target in RECIPES]
    values: dict[str, tuple[float, int]] = {}
    for arm in ARMS:
        if arm.name not in wanted:
            continue
        res = simulate_arm(arm, seeds[arm.name], int(size))
        for t in targets:
            if RECIPES[t.target].arm == arm.name:
                values[t.target] = RECIPES[t.target].measure(res, t)
        del res  # visit logs are large: one arm at a time
    rows = []
    for t in targets:
        if t.target not in values:
            continue
        p, n = values[t.target]
        tol, within = math.nan, pd.NA
        if t.has_interval and n > 0 and math.isfinite(p):
            s = score(t, p, n)
            tol, within = s.tolerance, s.within
        rows.append(
            {
                "target": t.target,
                "source": t.source,
                "simulated": p,
                "lo": math.nan if t.lo is None else t.lo,
                "hi": math.nan if t.hi is None else t.hi,
                "tolerance": tol,
                "within": within,
                "n_sim": n,
                "recipe": RECIPES[t.target].describe(),
            }
        )
    out = pd.DataFrame(rows, columns=list(COLUMNS))
    out["within"] = out["within"].astype("boolean")
    out["n_sim"] = out["n_sim"].astype(np.int64)
    return out
