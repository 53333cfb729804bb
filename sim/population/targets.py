r"""Published calibration targets and TKI potency data, read from the package's CSV files.

``sim/data/calibration_targets.csv`` holds one row per published target (first-line response
rates by drug, BCR-ABL1 decline slopes, stop-trial relapse-free survival, interferon effects,
immune ranges and directions), each with its interval and full source; the file's ``#`` header
documents the columns. ``sim/data/tki_potency.csv`` holds, per first-line TKI, the cellular
IC50 against unmutated BCR-ABL1, the fraction unbound in plasma, the mean steady-state
concentration at the standard dose and the molar mass.

Scoring rule
------------
A simulated proportion :math:`\hat p` from :math:`m` simulated patients is compared with a
target interval :math:`[lo, hi]`. The simulation has its own binomial sampling error, so the
interval is widened by

.. math:: t = z \sqrt{q (1 - q) / m}, \qquad q = \min(\max(\hat p, lo), hi),

with :math:`z = 1.959964` (two-sided 95 %), and :math:`\hat p` is *within* when
:math:`lo - t \le \hat p \le hi + t`. The standard error is taken at :math:`q`, the point of the
target interval nearest to :math:`\hat p`: it is the sampling error the simulation would have if
its true proportion were the closest value the target allows, and it does not collapse to zero
when :math:`\hat p` is 0 or 1. The rule therefore asks whether :math:`\hat p` is consistent, at
the 5 % level, with some true proportion inside the published interval; the target's own
uncertainty is already in :math:`[lo, hi]`.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType

from sim.units import UnitError, parse_duration

__all__ = [
    "KINDS",
    "Potency",
    "Score",
    "Target",
    "TargetsError",
    "load_potency",
    "load_targets",
    "score",
    "wilson_interval",
]

#: Kinds of target a row may have.
KINDS: tuple[str, ...] = ("proportion", "slope", "count", "direction")

#: How a row's ``lo`` and ``hi`` were made (see the CSV header).
INTERVALS: tuple[str, ...] = ("published", "binomial", "sd", "reference_range", "none")

#: Values of the ``verified`` column.
VERIFIED: tuple[str, ...] = ("yes", "secondary", "partly", "derived", "no")

#: Two-sided 95 % normal quantile.
Z95 = 1.959963984540054

TARGETS_FILE = "calibration_targets.csv"
POTENCY_FILE = "tki_potency.csv"

_TARGET_COLUMNS = (
    "target", "quantity", "arm", "time", "trial", "value", "lo", "hi", "interval", "n",
    "kind", "unit", "source", "verified", "note",
)  # fmt: skip
_POTENCY_COLUMNS = (
    "drug", "standard_dose", "interval", "ic50_nM", "ic50_assay", "ic50_source",
    "ic50_verified", "fraction_unbound", "fu_source", "fu_verified", "c_avg_ng_ml",
    "c_avg_basis", "c_avg_source", "c_avg_verified", "c_trough_ng_ml", "c_trough_source",
    "molar_mass_g_mol", "note",
)  # fmt: skip


class TargetsError(ValueError):
    """A row of a shipped data file that does not hold what it must.

    The message names the file, the line (counting ``#`` comment lines), the column, what was
    found (abridged) and what is expected.
    """


@dataclass(frozen=True)
class Target:
    """One published calibration target.

    Attributes
    ----------
    target : str
        Stable identifier, unique in the file.
    quantity, arm, trial : str
        What is measured, for which drug/dose or design, in which trial.
    time : str
        When it is measured as written in the file (e.g. ``"12mo"``); empty if none.
    time_days : float or None
        ``time`` in days (:func:`sim.units.parse_duration`), or None.
    value : float or None
        Published value: a fraction for proportions, a rate for slopes, cells/µL for counts,
        +1 / -1 / 0 for directions. None where only a range is published.
    lo, hi : float or None
        The interval the scorecard compares with, or None if none is known.
    interval : str
        How ``lo`` and ``hi`` were made, one of :data:`INTERVALS`.
    n : int or None
        Patients the value is based on.
    kind : str
        One of :data:`KINDS`.
    unit, source, verified, note : str
        Unit of value/lo/hi, full citation, verification status (:data:`VERIFIED`), caveats.
    """

    target: str
    quantity: str
    arm: str
    time: str
    time_days: float | None
    trial: str
    value: float | None
    lo: float | None
    hi: float | None
    interval: str
    n: int | None
    kind: str
    unit: str
    source: str
    verified: str
    note: str

    @property
    def has_interval(self) -> bool:
        """Whether the target has an interval a simulated value can be scored against."""
        return self.lo is not None and self.hi is not None


@dataclass(frozen=True)
class Potency:
    """Potency data of one TKI at its standard first-line dose.

    Attributes
    ----------
    drug : str
        ``"imatinib"``, ``"nilotinib"`` or ``"dasatinib"``.
    standard_dose_mg : float
        Dose per administration in mg.
    interval_days : float
        Dosing interval in days.
    ic50_nM : float
        Cellular IC50 against unmutated BCR-ABL1 (nmol/L).
    fraction_unbound : float
        Fraction of the plasma concentration not bound to proteins.
    c_avg_ng_ml : float
        Mean steady-state total plasma (serum) concentration over a dosing interval (ng/mL).
    c_trough_ng_ml : float or None
        Steady-state trough (ng/mL), if known.
    molar_mass_g_mol : float
        Molar mass of the free base (g/mol).
    sources : Mapping
        Column name -> citation for the IC50, binding and concentration.
    verified : Mapping
        Column name -> verification status (read-only).
    note : str
        Caveats.
    """

    drug: str
    standard_dose_mg: float
    interval_days: float
    ic50_nM: float
    fraction_unbound: float
    c_avg_ng_ml: float
    c_trough_ng_ml: float | None
    molar_mass_g_mol: float
    sources: Mapping[str, str]
    verified: Mapping[str, str]
    note: str

    @property
    def unbound_c_avg_nM(self) -> float:
        """Mean unbound concentration in nmol/L: ``fu * c_avg / M * 1000``."""
        return self.fraction_unbound * self.c_avg_ng_ml / self.molar_mass_g_mol * 1000.0

    @property
    def exposure_over_ic50(self) -> float:
        """Unbound mean exposure divided by the IC50: the potency per standard dose."""
        return self.unbound_c_avg_nM / self.ic50_nM


@dataclass(frozen=True)
class Score:
    """A simulated value scored against a target.

    Attributes
    ----------
    tolerance : float
        Half-width added on each side of the target interval (the simulation's sampling error
        times :data:`Z95`).
    within : bool
        Whether the simulated value lies in ``[lo - tolerance, hi + tolerance]``.
    """

    tolerance: float
    within: bool


def wilson_interval(p: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion.

    Parameters
    ----------
    p : float
        Observed proportion, in [0, 1].
    n : int
        Number of trials (patients), positive.
    z : float, optional
        Normal quantile; the default gives a two-sided 95 % interval.

    Returns
    -------
    tuple of float
        ``(lo, hi)``.

    Raises
    ------
    ValueError
        ``p`` outside [0, 1] or ``n`` not positive.
    """
    if not 0.0 <= p <= 1.0 or not n > 0:
        raise ValueError(f"Wilson interval: found p={p!r}, n={n!r}, expected 0 <= p <= 1, n > 0")
    d = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / d
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


def score(target: Target, simulated: float, n_sim: int, z: float = Z95) -> Score:
    """Whether a simulated proportion lies within a target's interval.

    The interval ``[lo, hi]`` is widened on each side by ``z * sqrt(q (1 - q) / n_sim)``, the
    simulation's binomial sampling error at ``q``, the point of ``[lo, hi]`` nearest to the
    simulated value (module docstring).

    Parameters
    ----------
    target : Target
        A target of kind ``"proportion"`` with an interval.
    simulated : float
        Simulated proportion, in [0, 1].
    n_sim : int
        Number of simulated patients the proportion is over, positive.
    z : float, optional
        Normal quantile of the widening (default two-sided 95 %).

    Returns
    -------
    Score

    Raises
    ------
    ValueError
        The target is not a proportion or has no interval, or ``simulated`` / ``n_sim`` are out
        of range.
    """
    if target.kind != "proportion":
        raise ValueError(
            f"target {target.target}: found kind {target.kind!r}, expected 'proportion' "
            "(slopes, counts and directions need their own comparison)"
        )
    if not target.has_interval:
        raise ValueError(
            f"target {target.target}: found no interval (interval = {target.interval!r}), "
            "expected lo and hi to score against"
        )
    if isinstance(n_sim, bool) or not isinstance(n_sim, int) or n_sim <= 0:
        raise ValueError(f"simulated patients: found {n_sim!r}, expected a positive integer")
    if not (isinstance(simulated, int | float) and 0.0 <= simulated <= 1.0):
        raise ValueError(f"simulated proportion: found {simulated!r}, expected 0 <= p <= 1")
    lo, hi = target.lo, target.hi
    assert lo is not None and hi is not None
    q = min(max(float(simulated), lo), hi)
    tol = z * math.sqrt(q * (1.0 - q) / n_sim)
    return Score(tolerance=tol, within=lo - tol <= simulated <= hi + tol)


# --- reading --------------------------------------------------------------------------------


def _abridge(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _data_text(name: str) -> str:
    """Text of a CSV shipped in ``sim/data``."""
    return (resources.files("sim") / "data" / name).read_text(encoding="utf-8")


def _rows(name: str, text: str, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` pairs of CSV ``text``, ``#`` lines skipped but counted."""
    numbered = [
        (i, ln)
        for i, ln in enumerate(text.splitlines(), start=1)
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if not numbered:
        raise TargetsError(f"{name}: found no header line, expected {','.join(columns)}")
    records = list(csv.reader([ln for _, ln in numbered]))
    header_line, header = numbered[0][0], records[0]
    if tuple(header) != columns:
        raise TargetsError(
            f"{name}, line {header_line}: found columns {_abridge(','.join(header), 80)!r}, "
            f"expected {','.join(columns)}"
        )
    out = []
    for (line, _), rec in zip(numbered[1:], records[1:], strict=True):
        if len(rec) != len(columns):
            raise TargetsError(
                f"{name}, line {line}: found {len(rec)} fields, expected {len(columns)}"
            )
        out.append((line, dict(zip(columns, rec, strict=True))))
    return out


class _Row:
    """Field access with errors that name the file, line and column."""

    def __init__(self, name: str, line: int, row: dict[str, str]):
        self.name, self.line, self.row = name, line, row

    def fail(self, column: str, found: str, expected: str) -> TargetsError:
        return TargetsError(
            f"{self.name}, line {self.line}, column {column}: found {found}, expected {expected}"
        )

    def text(self, column: str, required: bool = True) -> str:
        s = self.row[column].strip()
        if required and not s:
            raise self.fail(column, "an empty field", "a value")
        return s

    def choice(self, column: str, allowed: tuple[str, ...]) -> str:
        s = self.text(column)
        if s not in allowed:
            raise self.fail(column, repr(_abridge(s)), "one of " + ", ".join(allowed))
        return s

    def number(self, column: str, required: bool = True) -> float | None:
        s = self.text(column, required)
        if not s:
            return None
        try:
            x = float(s)
        except ValueError:
            raise self.fail(column, repr(_abridge(s)), "a number") from None
        if not math.isfinite(x):
            raise self.fail(column, repr(s), "a finite number")
        return x

    def positive(self, column: str, required: bool = True) -> float | None:
        x = self.number(column, required)
        if x is not None and x <= 0:
            raise self.fail(column, repr(self.row[column].strip()), "a positive number")
        return x

    def count(self, column: str) -> int | None:
        s = self.text(column, required=False)
        if not s:
            return None
        if not s.isdigit() or int(s) == 0:
            raise self.fail(column, repr(_abridge(s)), "a positive whole number of patients")
        return int(s)

    def duration(self, column: str, required: bool = True) -> float | None:
        s = self.text(column, required)
        if not s:
            return None
        try:
            days = parse_duration(s)
        except UnitError as e:
            raise self.fail(column, e.found, e.expected) from None
        if not any(c.isalpha() for c in s):
            raise self.fail(column, repr(s), 'a duration with its unit (e.g. "12mo", "5y")')
        if days <= 0:
            raise self.fail(column, repr(s), "a positive duration")
        return days


def _target(r: _Row) -> Target:
    kind = r.choice("kind", KINDS)
    interval = r.choice("interval", INTERVALS)
    value = r.number("value", required=kind != "count")
    lo = r.number("lo", required=False)
    hi = r.number("hi", required=False)
    n = r.count("n")
    if (lo is None) != (hi is None):
        raise r.fail("lo/hi", f"lo={r.row['lo']!r}, hi={r.row['hi']!r}", "both or neither")
    if interval == "none" and lo is not None:
        raise r.fail("interval", "'none' with lo and hi given", "the kind of interval lo/hi are")
    if interval != "none" and lo is None:
        raise r.fail("lo/hi", f"empty with interval {interval!r}", "lo and hi")
    if lo is not None and hi is not None:
        if lo > hi:
            raise r.fail("lo/hi", f"lo={lo!r} > hi={hi!r}", "lo <= hi")
        if value is not None and not lo <= value <= hi:
            raise r.fail("value", f"{value!r} outside [{lo!r}, {hi!r}]", "lo <= value <= hi")
    if kind == "proportion":
        for col, x in (("value", value), ("lo", lo), ("hi", hi)):
            if x is not None and not 0.0 <= x <= 1.0:
                raise r.fail(col, repr(x), "a fraction in [0, 1] for a proportion")
    if interval == "binomial" and n is None:
        raise r.fail("n", "an empty field", "the number of patients of a binomial interval")
    if kind == "direction":
        if value not in (-1.0, 0.0, 1.0):
            raise r.fail("value", repr(r.row["value"].strip()), "+1, -1 or 0 for a direction")
        if interval != "none":
            raise r.fail("interval", repr(interval), "'none' for a direction")
    if kind == "count" and lo is not None and lo < 0:
        raise r.fail("lo", repr(lo), "a non-negative count")
    time = r.text("time", required=False)
    return Target(
        target=r.text("target"),
        quantity=r.text("quantity"),
        arm=r.text("arm"),
        time=time,
        time_days=r.duration("time", required=False),
        trial=r.text("trial"),
        value=value,
        lo=lo,
        hi=hi,
        interval=interval,
        n=n,
        kind=kind,
        unit=r.text("unit", required=kind != "direction"),
        source=r.text("source"),
        verified=r.choice("verified", VERIFIED),
        note=r.text("note", required=False),
    )


@cache
def load_targets() -> tuple[Target, ...]:
    """The published calibration targets shipped in ``sim/data/calibration_targets.csv``.

    Every row is validated: known kind and interval type; numbers finite; ``lo <= value <= hi``
    where both are given; proportions in [0, 1]; a binomial interval has its ``n``; directions
    are +1, -1 or 0 without an interval; times parse as durations with a unit
    (:func:`sim.units.parse_duration`); every row has a source; identifiers are unique.

    Returns
    -------
    tuple of Target
        In file order.

    Raises
    ------
    TargetsError
        The first invalid row, with file, line, column, what was found and what is expected.
    """
    return _targets_from_text(_data_text(TARGETS_FILE), TARGETS_FILE)


def _targets_from_text(text: str, name: str) -> tuple[Target, ...]:
    """Targets of CSV ``text`` (``name`` is used in error messages)."""
    out: list[Target] = []
    seen: dict[str, int] = {}
    for line, row in _rows(name, text, _TARGET_COLUMNS):
        t = _target(_Row(name, line, row))
        if t.target in seen:
            raise TargetsError(
                f"{name}, line {line}, column target: found {t.target!r} again "
                f"(first on line {seen[t.target]}), expected unique identifiers"
            )
        seen[t.target] = line
        out.append(t)
    return tuple(out)


def _potency(r: _Row) -> Potency:
    dose_text = r.text("standard_dose")
    if not dose_text.endswith("mg"):
        raise r.fail("standard_dose", repr(_abridge(dose_text)), 'a dose in mg (e.g. "400mg")')
    try:
        dose = float(dose_text[:-2])
    except ValueError:
        raise r.fail("standard_dose", repr(_abridge(dose_text)), "a dose in mg") from None
    fu = r.positive("fraction_unbound")
    assert fu is not None
    if fu > 1.0:
        raise r.fail("fraction_unbound", repr(fu), "a fraction in (0, 1]")
    verified_cols = ("ic50_verified", "fu_verified", "c_avg_verified")
    ic50, c_avg, mass = (r.positive(c) for c in ("ic50_nM", "c_avg_ng_ml", "molar_mass_g_mol"))
    interval = r.duration("interval")
    assert ic50 is not None and c_avg is not None and mass is not None and interval is not None
    return Potency(
        drug=r.text("drug"),
        standard_dose_mg=dose,
        interval_days=interval,
        ic50_nM=ic50,
        fraction_unbound=fu,
        c_avg_ng_ml=c_avg,
        c_trough_ng_ml=r.positive("c_trough_ng_ml", required=False),
        molar_mass_g_mol=mass,
        sources=MappingProxyType(
            {
                "ic50_nM": r.text("ic50_source"),
                "fraction_unbound": r.text("fu_source"),
                "c_avg_ng_ml": r.text("c_avg_source"),
            }
        ),
        verified=MappingProxyType({c: r.choice(c, VERIFIED) for c in verified_cols}),
        note=r.text("note", required=False),
    )


@cache
def load_potency() -> Mapping[str, Potency]:
    """TKI potency data shipped in ``sim/data/tki_potency.csv``, by drug name.

    Returns
    -------
    Mapping
        Drug name -> :class:`Potency`, in file order (read-only; the result is cached).

    Raises
    ------
    TargetsError
        The first invalid row (non-positive or non-numeric value, unbound fraction above 1, a
        dosing interval without a unit, a missing source, a repeated drug).
    """
    return _potency_from_text(_data_text(POTENCY_FILE), POTENCY_FILE)


def _potency_from_text(text: str, name: str) -> Mapping[str, Potency]:
    """Potency rows of CSV ``text`` (``name`` is used in error messages)."""
    out: dict[str, Potency] = {}
    for line, row in _rows(name, text, _POTENCY_COLUMNS):
        p = _potency(_Row(name, line, row))
        if p.drug in out:
            raise TargetsError(
                f"{name}, line {line}, column drug: found {p.drug!r} again, "
                "expected one row per drug"
            )
        out[p.drug] = p
    return MappingProxyType(out)
