"""Scenario files: TOML in, validated frozen objects out, or one clear error.

A scenario asks one question about one patient: which model and engine, which patient parameters,
which TKI segments (drug, dose, interval, start, end, PK mode) and which clinical protocol (when to
monitor, when to stop, whether to give a reduced-dose lead-in before stopping, when to restart).
The schema, with defaults:

.. code-block:: toml

    [scenario]
    name = "imatinib-eln-stop"   # required; [A-Za-z0-9_.-]+, results go to results/<name>/
    question = "..."             # optional
    model = "cml_immune"         # sim.models.names()
    engine = "ode"               # "ode"; "stochastic", "abm", "mesa" are planned, not available yet
    horizon = "12y"              # required duration > 0
    seed = 20261125              # required integer >= 0
    rtol = 1e-6                  # 1e-12 < rtol < 1e-2
    atol = 1e-9                  # optional scalar > 0 (default: the model's per-state scale)
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

    [drug.mydrug]                # a new drug (or, under a built-in name, overrides of its fields)
    ka = "1.0/h"
    half_life = "12h"            # or ke = "0.058/h"
    volume = "200L"
    ec50 = "0.05mg/L"
    standard_dose = "100mg"
    standard_interval = "1d"

    [protocol]
    monitoring = "eln2020"       # or { every = "3mo" }
    stop = { after = "5y", sustained = "MR4", for = "2y" }   # or { at = "85.9mo" } or "never"
    lead_in = { duration = "12mo", dose = 0.5 }              # reduced dose before the stop
    restart = "loss_of_mmr"      # | "two_consecutive" | "never"
    max_stops = 1
    decisions = "measured"       # | "true"

    [readout]                    # overrides of sim.readout.QPCR by name

    [output]
    figure = true
    formats = ["png", "pdf"]

Every error is a :class:`ScenarioError` with one message ``FILE:LINE: KEY: found ..., expected
...``; the line is located in the source text (``[table]`` and ``[[array]]`` headers, ``key =``
lines, inline tables and arrays), and for TOML syntax errors taken from :mod:`tomllib`.
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.params import DAYS_PER_MONTH, DAYS_PER_YEAR, did_you_mean
from sim.units import (
    UnitError,
    _show,
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

__all__ = [
    "AVAILABLE_ENGINES",
    "ENGINES",
    "Protocol",
    "Scenario",
    "ScenarioError",
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
AVAILABLE_ENGINES = ("ode",)
PK_MODES = ("interval", "daily", "kill")
RESTART_RULES = ("loss_of_mmr", "two_consecutive", "never")
DECISIONS = ("measured", "true")
FIGURE_FORMATS = ("png", "pdf", "svg")
DEFAULT_RTOL = 1e-6
DEFAULT_OUTPUT_EVERY = 7.0
#: Longest horizon (days) and most trajectory points a scenario may ask for.
MAX_HORIZON = 200 * DAYS_PER_YEAR
MAX_OUTPUT_POINTS = 1_000_000
N_HAHNEL = 21

_SECTIONS = ("scenario", "patient", "therapy", "drug", "protocol", "readout", "output")
_PLANNED = {
    "intervention": "interventions (interferon, anti-PD-1, vaccine, exercise) are not available "
    "in scenario files yet",
    "cohort": "cohorts are not available in scenario files yet",
}
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
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
    """

    drug: Drug
    dose: float
    every: float
    start: float
    end: float | None
    pk: str


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
        In chronological order.
    protocol : Protocol
    readout : dict
        Overrides of ``sim.readout.QPCR`` (name -> value in table units).
    figure : bool
    formats : tuple of str
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

    def model_spec(self) -> ModelSpec:
        """The :class:`sim.models.base.ModelSpec` this scenario runs."""
        from sim import models

        return models.get(self.model)

    def param_vector(self) -> np.ndarray:
        """The model's parameter vector with :attr:`patient` applied (internal units)."""
        return self.model_spec().params.vector(self.patient)

    def describe(self) -> str:
        """A one-line summary: model, engine, horizon, therapy and stop rule."""
        p = self.protocol
        if p.stop_kind == "fixed":
            stop = f"stop at {format_duration(p.stop_at or 0.0)}"
        elif p.stop_kind == "criteria":
            depth = {v: k for k, v in reversed(_depth_codes().items())}.get(p.stop_depth, "?")
            stop = (
                f"stop after {format_duration(p.stop_after)} if {depth} for "
                f"{format_duration(p.stop_sustained_for)}"
            )
        else:
            stop = "no stop"
        drugs = ", ".join(
            f"{s.drug.name} {s.dose:g} mg/{format_duration(s.every)}" for s in self.therapy
        )
        return (
            f"{self.name} ({self.model}, {self.engine}, horizon {format_duration(self.horizon)}, "
            f"{drugs or 'untreated'}, {stop})"
        )


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
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} found {self.found}, expected {self.expected}"


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

    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.pos: dict[Path, int] = {}
        self.arrays: dict[Path, int] = {}
        self._newlines = [k for k, c in enumerate(text) if c == "\n"]
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
                while self.i < len(s) and s[self.i] != "\n":
                    self.i += 1
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
            # rest of the line (closing brackets, comments)
            while self.i < len(s) and s[self.i] != "\n":
                self.i += 1

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
            self.i += 3
            while not s.startswith(q * 3, self.i):
                if self.i >= len(s):
                    raise ValueError("unterminated string")
                self.i += 2 if (q == '"' and s[self.i] == "\\") else 1
            self.i += 3
            while self._peek() == q:  # up to two quotes may end the content
                self.i += 1
            return
        self.i += 1
        while True:
            c = s[self.i]  # IndexError at end of text ends the scan
            if c == "\\" and q == '"':
                self.i += 2
            elif c == q:
                self.i += 1
                return
            elif c == "\n":
                raise ValueError("unterminated string")
            else:
                self.i += 1

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
            s = self.s
            start = self.i
            while self.i < len(s) and s[self.i] not in ",]}#\n":
                self.i += 1
            if self.i == start:
                raise ValueError("expected a value")


# ---------------------------------------------------------------------------------------------
# Value checks: each returns the converted value or raises UnitError(found, expected)


def _text(value: object, expected: str = "a string") -> str:
    if not isinstance(value, str):
        raise UnitError(_show(value), expected)
    return value


def _choice(value: object, choices: tuple[str, ...] | list[str], what: str = "") -> str:
    listed = ", ".join(f'"{c}"' for c in choices)
    expected = f"{what}one of {listed}" if len(choices) > 1 else f"{what}{listed}"
    if not isinstance(value, str):
        raise UnitError(_show(value), expected)
    if value not in choices:
        raise UnitError(_show(value), expected + did_you_mean(value, choices))
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


def _duration(value: object, *, positive: bool = True) -> float:
    """A duration in days, > 0 (or >= 0 when not ``positive``)."""
    d = parse_duration(value)
    if d < 0 or (positive and d == 0):
        expected = "a duration > 0" if positive else "a duration >= 0"
        raise UnitError(_days(value, d), f'{expected} (e.g. "90d", "18mo", "5y")')
    return d


def _dosing_interval(value: object) -> float:
    """A dosing interval in days, at least one hour."""
    d = parse_duration(value)
    if not d >= 1.0 / 24.0:
        raise UnitError(_days(value, d), 'a dosing interval >= 1h (e.g. "1d", "12h")')
    return d


def _positive(parse: Callable[[object], float], what: str, example: str) -> Callable:
    def check(value: object) -> float:
        x = parse(value)
        if not x > 0:
            raise UnitError(_show(value), f"{what} > 0 (e.g. {example})")
        return x

    return check


_dose = _positive(parse_dose, "a dose", '"400mg"')
_rate = _positive(parse_rate, "a rate", '"0.6/h"')
_volume = _positive(parse_volume, "a volume", '"250L"')
_concentration = _positive(parse_concentration, "a concentration", '"0.1mg/L"')


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
                    f'an unknown key "{name}"',
                    "one of " + ", ".join(allowed) + did_you_mean(name, allowed),
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
        readout = self.readout(doc.get("readout", {}))
        figure, formats = self.output(doc.get("output", {}))
        return Scenario(
            path=self.path,
            text=self.text,
            patient=patient,
            therapy=therapy,
            protocol=protocol,
            readout=readout,
            figure=figure,
            formats=formats,
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
            "a name of letters, digits, '_', '.' and '-' (it becomes results/<name>/), "
            'e.g. "imatinib-eln-stop"'
        )

        def check_name(value: object) -> str:
            s = _text(value, name_expected)
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
            expected = f"an engine: {available} (planned, not available yet: {planned})"
            e = _text(value, expected)
            if e not in ENGINES:
                raise UnitError(_show(e), expected + did_you_mean(e, ENGINES))
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
        out["seed"] = self.get(tab, k, "seed", lambda v: _integer(v, 0), expected="an integer >= 0")

        def check_rtol(value: object) -> float:
            x = _number(value, "a number with 1e-12 < rtol < 1e-2")
            if not 1e-12 < x < 1e-2:
                raise UnitError(_show(value), "a number with 1e-12 < rtol < 1e-2")
            return x

        def check_atol(value: object) -> float:
            x = _number(value, "a number > 0")
            if not x > 0:
                raise UnitError(_show(value), "a number > 0")
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
            "half_life": _duration,
            "volume": _volume,
            "bioavailability": self._fraction,
            "ec50": _concentration,
            "hill": lambda v: self._positive_number(v),
            "standard_dose": _dose,
            "standard_interval": _duration,
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
                        + ", ".join(_drug_registry())
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
            table.vector(out)
        except (ValueError, KeyError) as e:
            raise self.error(
                k, f"parameters that the model refuses ({e})", "values in bounds"
            ) from None
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
        segments = []
        for i, item in enumerate(raw):
            segments.append((i, self.segment(self.table(item, (*k, i), "a table"), i, drugs)))
        for i, seg in segments:
            if seg.start >= horizon:
                raise self.error(
                    (*k, i, "start"),
                    f"{format_duration(seg.start)} (= {seg.start:g} days)",
                    f"a start before the horizon ({format_duration(horizon)})",
                )
        segments.sort(key=lambda t: t[1].start)
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
        return tuple(seg for _, seg in segments)

    def segment(self, tab: dict[str, Any], i: int, drugs: dict[str, Drug]) -> TherapySegment:
        k: Path = ("therapy", i)
        self.keys(tab, k, ("drug", "dose", "every", "start", "end", "pk"))
        names = list(drugs)
        drug_expected = "a drug name: one of " + ", ".join(names) + " (or define [drug.<name>])"

        def check_drug(value: object) -> Drug:
            s = _text(value, drug_expected)
            if s not in drugs:
                raise UnitError(f'an unknown drug "{s}"', drug_expected + did_you_mean(s, names))
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
            if d <= start:
                raise UnitError(
                    _days(value, d), f"an end after the start ({format_duration(start)})"
                )
            return d

        end = self.get(tab, k, "end", check_end, None)
        pk = self.get(tab, k, "pk", lambda v: _choice(v, PK_MODES), "interval")
        return TherapySegment(drug=drug, dose=dose, every=every, start=start, end=end, pk=pk)

    # -- [protocol]
    def protocol(
        self, raw: object, therapy: tuple[TherapySegment, ...], horizon: float
    ) -> Protocol:
        k: Path = ("protocol",)
        tab = self.table(raw, k, "a [protocol] table")
        self.keys(tab, k, ("monitoring", "stop", "lead_in", "restart", "max_stops", "decisions"))
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
                    hint = did_you_mean(value, ["eln2020"]) if isinstance(value, str) else ""
                    raise UnitError(_show(value), '"eln2020" or a table { every = "3mo" }' + hint)
                return "eln2020"

            out["monitoring"] = self.get(tab, k, "monitoring", check_monitoring, "eln2020")
            out["monitor_every"] = None

        out.update(self.stop(tab.get("stop", "never"), therapy, horizon))
        out.update(self.lead_in(tab, out, therapy))
        out["restart"] = self.get(
            tab, k, "restart", lambda v: _choice(v, RESTART_RULES), "loss_of_mmr"
        )
        out["max_stops"] = self.get(tab, k, "max_stops", lambda v: _integer(v, 0), 1)
        out["decisions"] = self.get(
            tab, k, "decisions", lambda v: _choice(v, DECISIONS), "measured"
        )
        return Protocol(**out)

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
            hint = did_you_mean(raw, ["never"]) if isinstance(raw, str) else ""
            raise self.error(k, _show(raw), expected + hint)
        if not therapy:
            raise self.error(k, "a stop rule but no [[therapy]]", 'stop = "never" without therapy')
        first = therapy[0].start
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
            last_end = therapy[-1].end
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
            if begin < therapy[0].start:
                raise self.error(
                    (*k, "duration"),
                    f"a lead-in of {format_duration(duration)} before the stop at "
                    f"{format_duration(out['stop_at'])}, which would begin before therapy starts "
                    f"({format_duration(therapy[0].start)})",
                    "a lead-in that fits between the therapy start and protocol.stop.at",
                )
        return {"lead_in": duration, "lead_in_dose": dose}

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
    return _Reader(text, path).scenario(doc)


def load(path: str | os.PathLike[str]) -> Scenario:
    """A validated :class:`Scenario` from the TOML file at ``path`` (see :func:`loads`)."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ScenarioError(
            name, None, "", f"a file that cannot be read ({e.strerror or e})", "a scenario file"
        ) from None
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
        print(str(e), file=sys.stderr)
        return 2
    print(f"OK: {path}: {sc.describe()}")
    return 0
