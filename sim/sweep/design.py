r"""What a sweep varies and where: parameter addresses, ranges, and the sample matrix.

Addresses
---------
A swept parameter is named by its key path in the scenario file, dot-separated, with
``[[therapy]]`` and ``[[intervention]]`` tables by their position in the file (0, 1, ...) or, for
interventions, by ``name``:

=====================================  ====================================================  ======
path                                   what                                                  unit
=====================================  ====================================================  ======
``patient.<name>``                     any model parameter (``cmlsim models``)               table
``therapy.<k>.dose``                   TKI dose per administration                           mg
``therapy.<k>.adherence``              fraction of doses taken, (0, 1]                       1
``therapy.<k>.every``                  TKI dosing interval                                   day
``protocol.stop.at``                   fixed stop time (needs ``stop = { at = ... }``)       day
``protocol.stop.after``                criteria stop: minimum time on TKI                    day
``protocol.stop.for``                  criteria stop: how long the depth is sustained        day
``protocol.lead_in.duration``          reduced-dose lead-in before the stop                  day
``protocol.lead_in.dose``              lead-in dose fraction, (0, 1]                         1
``protocol.monitoring.every``          fixed monitoring spacing (needs ``{ every = ... }``)  day
``intervention.<k>.dose``              dose per administration (vaccine, exercise: units)    mg
``intervention.<k>.start``             offset from the intervention's anchor as written      day
                                       (``start.offset`` is the same); negative only from
                                       ``tki_stop`` with a fixed stop, never before diagnosis
``intervention.<k>.duration``          length of the course                                  day
``intervention.<k>.every``             dosing interval                                       day
=====================================  ====================================================  ======

Values are written as in the rest of the file (``"18mo"``, ``"400mg"``, ``"0.01/d"``) and stored
in the units of the last column (days for every time). A range must lie where the scenario reader
would accept each of its values (parameter bounds, a stop after the first therapy start and
before the horizon, ...), so that every sample is a valid scenario.

Designs
-------
``grid``
    Full factorial: ``levels`` points per parameter from ``low`` to ``high`` (evenly spaced, or
    geometrically with ``scale = "log"``), or an explicit ``values`` list; the last parameter
    varies fastest.
``lhs``
    Latin hypercube of ``n`` samples (McKay, Beckman & Conover 1979; SALib ``latin``).
``sobol``
    Saltelli's scheme on a scrambled Sobol' sequence (Saltelli 2002; Saltelli et al. 2010; SALib
    ``sample.sobol``): ``n`` base samples (a power of 2) give ``n (2D + 2)`` runs with second-order
    indices and ``n (D + 2)`` without, in the order ``sim.sensitivity.sobol`` expects.
``morris``
    ``n`` one-at-a-time trajectories on a ``levels``-level grid (Morris 1991; Campolongo et al.
    2007), ``n (D + 1)`` runs.

Designs other than ``grid`` are drawn in the unit cube and mapped to each range, linearly or, with
``scale = "log"``, uniformly in the logarithm. Their random numbers come from the branch
``SeedSequence(seed, spawn_key=(DESIGN_KEY,))`` of the scenario seed, which never meets the
kernel's per-sample streams (spawn keys ``(j,)``).
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.params import did_you_mean
from sim.units import UnitError, _show, format_duration, parse_dose, parse_duration

if TYPE_CHECKING:
    from sim.models.base import ModelSpec
    from sim.scenario import Intervention, Protocol, Scenario, Sweep, SweepParam, TherapySegment

__all__ = [
    "DESIGNS",
    "MAX_SAMPLES",
    "Base",
    "Target",
    "design_values",
    "n_samples",
    "resolve",
    "to_unit",
]

#: Designs a ``[sweep]`` may declare.
DESIGNS = ("grid", "lhs", "sobol", "morris")
#: Largest number of runs one sweep may have.
MAX_SAMPLES = 50_000_000
#: Spawn key of the design branch of the seed's SeedSequence (ASCII "swp").
DESIGN_KEY = 0x737770
#: Coordinate names a parameter may not take (the store's own dimensions and variables).
RESERVED_NAMES = ("sample", "metric", "outcome", "status", "time", "state", "trajectory")

_ANCHORS = ("diagnosis", "mmr", "mr4", "stop_criteria", "tki_stop", "first_rise", "relapse")
_ONE_HOUR = 1.0 / 24.0


@dataclass(frozen=True)
class Base:
    """The parts of a scenario that addresses resolve against.

    ``raw_therapy_starts`` and ``raw_intervention_starts`` are the ``start`` values as written in
    the file (in file order): the reader sorts therapy segments by time and turns a negative offset
    from ``tki_stop`` into a time after diagnosis, and a sweep needs what was written.
    """

    spec: ModelSpec
    therapy: tuple[TherapySegment, ...]
    protocol: Protocol
    interventions: tuple[Intervention, ...]
    horizon: float
    raw_therapy_starts: tuple[Any, ...] = ()
    raw_intervention_starts: tuple[Any, ...] = ()

    @classmethod
    def of(cls, sc: Scenario) -> Base:
        """The base of a validated scenario (raw starts read again from its text)."""
        try:
            doc = tomllib.loads(sc.text)
        except tomllib.TOMLDecodeError:
            doc = {}
        return cls.from_doc(
            doc, sc.model_spec(), sc.therapy, sc.protocol, sc.interventions, sc.horizon
        )

    @classmethod
    def from_doc(
        cls,
        doc: dict[str, Any],
        spec: ModelSpec,
        therapy: tuple[TherapySegment, ...],
        protocol: Protocol,
        interventions: tuple[Intervention, ...],
        horizon: float,
    ) -> Base:
        """A base with the raw starts taken from the parsed TOML document ``doc``."""
        th = doc.get("therapy", [])
        iv = doc.get("intervention", [])
        raw_th = tuple(t.get("start", "diagnosis") for t in th) if isinstance(th, list) else ()
        raw_iv = tuple(t.get("start") for t in iv) if isinstance(iv, list) else ()
        if len(raw_th) != len(therapy):
            raw_th = tuple(s.start for s in therapy)
        if len(raw_iv) != len(interventions):
            raw_iv = tuple({"anchor": i.anchor, "offset": i.offset} for i in interventions)
        return cls(spec, therapy, protocol, interventions, horizon, raw_th, raw_iv)

    def first_start(self) -> float:
        """Start of the first ordinary (not switch-target) therapy segment."""
        return min((s.start for s in self.therapy if not s.switch), default=0.0)

    def therapy_row(self, k: int) -> int:
        """Row of the compiled schedule of the k-th ``[[therapy]]`` table of the file (the
        reader sorts segments by start, stably)."""
        starts = [0.0 if s == "diagnosis" else _as_days(s) for s in self.raw_therapy_starts]
        order = sorted(range(len(starts)), key=lambda i: starts[i])
        return order.index(k)

    def intervention_anchor(self, k: int) -> tuple[str, float]:
        """(anchor, offset) of intervention k as written in the file, with the reader's one
        rewrite that keeps the meaning: ``stop_criteria`` of a fixed stop without lead-in is the
        stop itself."""
        raw = self.raw_intervention_starts[k]
        if isinstance(raw, str) and raw in _ANCHORS:
            anchor, offset = raw, 0.0
        elif isinstance(raw, dict):
            anchor = str(raw.get("anchor", "diagnosis"))
            offset = _as_days(raw.get("offset", 0.0))
        else:
            anchor, offset = "diagnosis", _as_days(raw)
        p = self.protocol
        if anchor == "stop_criteria" and p.stop_kind == "fixed" and p.lead_in == 0:
            anchor = "tki_stop"
        return anchor, offset


def _as_days(value: object) -> float:
    try:
        return float(parse_duration(value))
    except (UnitError, TypeError):
        return 0.0


@dataclass(frozen=True)
class Target:
    """Where a swept value goes and which values are admissible.

    Attributes
    ----------
    path : str
        The canonical address (``"patient.k_E"``, ``"intervention.0.start"``, ...).
    kind : str
        ``"param"``, ``"therapy"``, ``"protocol"`` or ``"intervention"``.
    index : int
        Model parameter index, compiled schedule row, or intervention index (-1 for protocol).
    field : str
        What is set: ``"dose"``, ``"adherence"``, ``"every"``, ``"stop.at"``, ``"stop.after"``,
        ``"stop.for"``, ``"lead_in.duration"``, ``"lead_in.dose"``, ``"monitoring.every"``,
        ``"start"``, ``"duration"`` (empty for model parameters).
    unit : str
        Unit of the values (days for times).
    name : str
        Default coordinate name of the parameter in the store.
    parse : callable
        ``parse(value) -> float``: a value as written in the file, in ``unit``; raises
        :class:`sim.units.UnitError`.
    check : callable
        ``check(x)`` raises :class:`sim.units.UnitError` when ``x`` is not admissible.
    anchor : str
        For ``intervention.<k>.start``: the anchor the offset counts from, as written.
    """

    path: str
    kind: str
    index: int
    field: str
    unit: str
    name: str
    parse: Callable[[object], float]
    check: Callable[[float], None]
    anchor: str = ""


def _number(value: object, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnitError(_show(value), expected)
    x = float(value)
    if not math.isfinite(x):
        raise UnitError(_show(value), expected)
    return x


def _shown(x: float, unit: str) -> str:
    if unit == "day":
        return f"{format_duration(x)} (= {x:g} days)"
    return f"{x:g} {unit}".rstrip()


def _interval(lo: float, hi: float, unit: str, what: str, *, open_lo=False, open_hi=False):
    """A check that x lies in [lo, hi] (or the open ends)."""

    def check(x: float) -> None:
        ok = (x > lo if open_lo else x >= lo) and (x < hi if open_hi else x <= hi)
        if not ok:
            raise UnitError(_shown(x, unit), what)

    return check


def resolve(path: str, base: Base) -> Target:
    """The :class:`Target` of an address (see the module docstring).

    Raises
    ------
    sim.units.UnitError
        An address that does not exist in this scenario, or a field the scenario cannot vary
        (e.g. ``protocol.stop.at`` with a criteria stop); the message says what would work.
    """
    parts = path.split(".")
    roots = ("patient", "therapy", "protocol", "intervention")
    root = parts[0]
    if root not in roots:
        raise UnitError(
            f'"{path}"',
            "an address patient.<parameter>, therapy.<k>.<field>, protocol.<field> or "
            "intervention.<k>.<field>" + did_you_mean(root, roots),
        )
    if root == "patient":
        return _model_param(path, parts, base)
    if root == "protocol":
        return _protocol(path, parts, base)
    if root == "therapy":
        return _therapy(path, parts, base)
    return _intervention(path, parts, base)


def _model_param(path: str, parts: list[str], base: Base) -> Target:
    from sim.units import parse_param_value

    table = base.spec.params
    if len(parts) != 2:
        raise UnitError(f'"{path}"', "patient.<parameter>, e.g. patient.k_E")
    name = parts[1]
    if name not in table:
        raise UnitError(
            f'an unknown parameter "{name}"',
            f"a parameter of {base.spec.name} (cmlsim models {base.spec.name})"
            + did_you_mean(name, table.names),
        )
    p = table[name]
    return Target(
        path=path,
        kind="param",
        index=table.index(name),
        field="",
        unit=p.unit,
        name=name,
        parse=lambda v, unit=p.unit: parse_param_value(v, unit),
        check=_interval(
            p.lower,
            p.upper,
            p.unit,
            f"a value in [{p.lower:g}, {p.upper:g}] {p.unit} (bounds of {name})",
        ),
    )


def _index(parts: list[str], n: int, what: str, names: Sequence[str] = ()) -> int:
    key = parts[1] if len(parts) > 1 else ""
    if key.isdigit() and int(key) < n:
        return int(key)
    if key in names:
        return list(names).index(key)
    listed = f"0..{n - 1}" if n else "none in this scenario"
    if names:
        listed += " or a name: " + ", ".join(names)
    raise UnitError(
        f'"{key}"' if key else "no index",
        f"the position of an [[{what}]] table ({listed})" + did_you_mean(key, names),
    )


def _fields(parts: list[str], start: int, allowed: Sequence[str], path: str) -> str:
    field = ".".join(parts[start:])
    if field not in allowed:
        raise UnitError(
            f'"{path}"',
            f"one of the fields {', '.join(allowed)}" + did_you_mean(field, allowed),
        )
    return field


def _therapy(path: str, parts: list[str], base: Base) -> Target:
    k = _index(parts, len(base.therapy), "therapy")
    field = _fields(parts, 2, ("dose", "adherence", "every"), path)
    row = base.therapy_row(k)
    name = f"therapy_{k}_{field}"
    if field == "dose":
        return Target(
            path,
            "therapy",
            row,
            field,
            "mg",
            name,
            parse_dose,
            _interval(0.0, math.inf, "mg", "a dose > 0", open_lo=True),
        )
    if field == "adherence":
        frac = "a fraction of doses taken, 0 < adherence <= 1"
        return Target(
            path,
            "therapy",
            row,
            field,
            "1",
            name,
            lambda v: _number(v, frac),
            _interval(0.0, 1.0, "", frac, open_lo=True),
        )
    return Target(
        path,
        "therapy",
        row,
        field,
        "day",
        name,
        parse_duration,
        _interval(_ONE_HOUR, math.inf, "day", "a dosing interval >= 1h"),
    )


def _protocol(path: str, parts: list[str], base: Base) -> Target:
    fields = (
        "stop.at",
        "stop.after",
        "stop.for",
        "lead_in.duration",
        "lead_in.dose",
        "monitoring.every",
    )
    field = _fields(parts, 1, fields, path)
    p = base.protocol
    name = field.replace(".", "_")
    need = {
        "stop.at": (p.stop_kind == "fixed", 'a fixed stop in [protocol] (stop = { at = "5y" })'),
        "stop.after": (p.stop_kind == "criteria", "a criteria stop in [protocol]"),
        "stop.for": (p.stop_kind == "criteria", "a criteria stop in [protocol]"),
        "lead_in.duration": (p.lead_in > 0, "a lead_in in [protocol]"),
        "lead_in.dose": (p.lead_in > 0, "a lead_in in [protocol]"),
        "monitoring.every": (
            p.monitoring == "every",
            'monitoring = { every = "3mo" } in [protocol] (ELN 2020 visits are not spaced by '
            "one number)",
        ),
    }
    ok, needs = need[field]
    if not ok:
        raise UnitError(f'"{path}" in a scenario without it', needs)
    first, horizon = base.first_start(), base.horizon
    if field == "lead_in.dose":
        frac = "a dose fraction in (0, 1]"
        return Target(
            path,
            "protocol",
            -1,
            field,
            "1",
            name,
            lambda v: _number(v, frac),
            _interval(0.0, 1.0, "", frac, open_lo=True),
        )
    if field == "stop.at":
        ends = [s.end for s in base.therapy]
        last = math.inf if None in ends else max(e for e in ends if e is not None)
        hi = min(horizon, last)
        what = (
            f"a stop after the first therapy start ({format_duration(first)}) and before the "
            f"{'horizon' if hi == horizon else 'end of therapy'} ({format_duration(hi)})"
        )
        if p.lead_in > 0:
            first += p.lead_in
            what += f", leaving room for the {format_duration(p.lead_in)} lead-in"
        check = _interval(first, hi, "day", what, open_lo=p.lead_in == 0, open_hi=True)
    elif field == "stop.after":
        check = _interval(
            0.0,
            horizon - first,
            "day",
            "a minimum time on TKI > 0 that fits within the horizon",
            open_lo=True,
            open_hi=True,
        )
    elif field == "lead_in.duration" and p.stop_kind == "fixed":
        room = (p.stop_at or 0.0) - first
        check = _interval(
            0.0,
            room,
            "day",
            f"a lead-in > 0 and <= {format_duration(room)} (between the therapy "
            "start and the fixed stop)",
            open_lo=True,
        )
    else:
        check = _interval(0.0, math.inf, "day", "a duration > 0", open_lo=True)
    return Target(path, "protocol", -1, field, "day", name, parse_duration, check)


def _intervention(path: str, parts: list[str], base: Base) -> Target:
    names = [iv.name for iv in base.interventions]
    k = _index(parts, len(names), "intervention", names)
    field = _fields(parts, 2, ("dose", "start", "start.offset", "duration", "every"), path)
    field = "start" if field == "start.offset" else field
    iv = base.interventions[k]
    name = f"intervention_{k}_{field}"
    if field == "dose":
        if iv.product.kind in ("interferon", "checkpoint"):
            return Target(
                path,
                "intervention",
                k,
                field,
                "mg",
                name,
                parse_dose,
                _interval(0.0, math.inf, "mg", "a dose >= 0"),
            )
        units = f"a number of {iv.product.kind} units >= 0"
        return Target(
            path,
            "intervention",
            k,
            field,
            "1",
            name,
            lambda v: _number(v, units),
            _interval(0.0, math.inf, "", units),
        )
    if field == "every":
        return Target(
            path,
            "intervention",
            k,
            field,
            "day",
            name,
            parse_duration,
            _interval(_ONE_HOUR, math.inf, "day", "a dosing interval >= 1h"),
        )
    if field == "duration":
        return Target(
            path,
            "intervention",
            k,
            field,
            "day",
            name,
            parse_duration,
            _interval(0.0, math.inf, "day", "a duration > 0", open_lo=True),
        )
    anchor, _ = base.intervention_anchor(k)
    p = base.protocol
    if anchor == "tki_stop" and p.stop_kind == "fixed":
        at = p.stop_at or 0.0
        check = _interval(
            -at,
            math.inf,
            "day",
            f"an offset from tki_stop of at least -{format_duration(at)} (no start "
            "before diagnosis)",
        )
    else:
        what = (
            "an offset >= 0 from diagnosis (no start before diagnosis)"
            if anchor == "diagnosis"
            else f"an offset >= 0 from {anchor} (only tki_stop with a fixed stop may take a "
            "negative offset)"
        )
        check = _interval(0.0, math.inf, "day", what)
    return Target(path, "intervention", k, field, "day", name, parse_duration, check, anchor)


def check_together(params: Sequence[SweepParam], base: Base) -> tuple[str, str, str] | None:
    """Constraints between swept values (checked at the corners of the ranges).

    Returns ``(path, found, expected)`` of the first violation, or None: a fixed stop that leaves
    no room for a swept lead-in, or a negative offset from ``tki_stop`` that reaches before
    diagnosis at the earliest swept stop.
    """
    rng = {p.path: (p.low, p.high) for p in params}
    p = base.protocol
    if p.stop_kind != "fixed":
        return None
    at_lo = rng.get("protocol.stop.at", (p.stop_at, p.stop_at))[0] or 0.0
    lead_hi = rng.get("protocol.lead_in.duration", (p.lead_in, p.lead_in))[1]
    if ("protocol.stop.at" in rng or "protocol.lead_in.duration" in rng) and lead_hi > 0:
        if at_lo - lead_hi < base.first_start():
            key = (
                "protocol.lead_in.duration"
                if "protocol.lead_in.duration" in rng
                else ("protocol.stop.at")
            )
            return (
                key,
                f"a lead-in of up to {format_duration(lead_hi)} before a stop as early as "
                f"{format_duration(at_lo)}",
                "ranges in which every lead-in fits between the therapy start and the stop",
            )
    if "protocol.stop.at" in rng:
        for q in params:
            t = resolve(q.path, base)
            if t.kind == "intervention" and t.field == "start" and t.anchor == "tki_stop":
                if at_lo + q.low < 0:
                    return (
                        q.path,
                        f"an offset of {format_duration(q.low)} from a stop as early as "
                        f"{format_duration(at_lo)}",
                        "offsets that never start the intervention before diagnosis",
                    )
        for k in range(len(base.interventions)):
            anchor, offset = base.intervention_anchor(k)
            if anchor == "tki_stop" and offset < 0 and at_lo + offset < 0:
                return (
                    "protocol.stop.at",
                    f"a stop as early as {format_duration(at_lo)}, but intervention {k} starts "
                    f"{format_duration(-offset)} before the stop",
                    "stops late enough for every intervention to start after diagnosis",
                )
    return None


# ---------------------------------------------------------------------------------------------
# the sample matrix


def n_samples(sweep: Sweep) -> int:
    """Number of runs of a sweep."""
    d = len(sweep.params)
    if sweep.design == "grid":
        return math.prod(len(p.values) or (p.levels or sweep.levels) for p in sweep.params)
    n = int(sweep.n or 0)
    if sweep.design == "sobol":
        return n * (2 * d + 2 if sweep.second_order else d + 2)
    if sweep.design == "morris":
        return n * (d + 1)
    return n


def to_unit(param: SweepParam, x: np.ndarray) -> np.ndarray:
    """Values of a parameter mapped to [0, 1] (through the logarithm for ``scale = "log"``)."""
    x = np.asarray(x, dtype=np.float64)
    if param.high == param.low:
        return np.zeros_like(x)
    if param.scale == "log":
        lo, hi = math.log(param.low), math.log(param.high)
        return (np.log(x) - lo) / (hi - lo)
    return (x - param.low) / (param.high - param.low)


def from_unit(param: SweepParam, u: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_unit`; the ends map exactly onto ``low`` and ``high``."""
    u = np.asarray(u, dtype=np.float64)
    if param.scale == "log":
        lo, hi = math.log(param.low), math.log(param.high)
        x = np.exp(lo + u * (hi - lo))
    else:
        x = param.low + u * (param.high - param.low)
    x = np.where(u <= 0.0, param.low, x)
    return np.where(u >= 1.0, param.high, x)


def problem(sweep: Sweep) -> dict[str, Any]:
    """SALib's problem dict in the unit cube (one row per swept parameter)."""
    return {
        "num_vars": len(sweep.params),
        "names": [p.name for p in sweep.params],
        "bounds": [[0.0, 1.0]] * len(sweep.params),
    }


def design_values(sweep: Sweep, seed: int) -> np.ndarray:
    """The sample matrix: one row per run, one column per swept parameter (in ``unit``).

    Parameters
    ----------
    sweep : sim.scenario.Sweep
    seed : int
        The scenario seed (the design uses its own branch, see the module docstring).

    Returns
    -------
    ndarray, shape (n_samples(sweep), len(sweep.params))
    """
    params = sweep.params
    if sweep.design == "grid":
        axes = []
        for p in params:
            if p.values:
                axes.append(np.asarray(p.values, dtype=np.float64))
            else:
                k = p.levels or sweep.levels
                axes.append(from_unit(p, np.linspace(0.0, 1.0, k)) if k > 1 else np.array([p.low]))
        rows = list(itertools.product(*axes))
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(params))
    gen = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(DESIGN_KEY,)))
    prob = problem(sweep)
    n = int(sweep.n or 0)
    if sweep.design == "lhs":
        from SALib.sample import latin

        unit = latin.sample(prob, n, seed=gen)
    elif sweep.design == "sobol":
        from SALib.sample import sobol

        unit = sobol.sample(prob, n, calc_second_order=sweep.second_order, seed=gen)
    elif sweep.design == "morris":
        from SALib.sample import morris

        unit = morris.sample(prob, n, num_levels=sweep.levels, seed=gen)
    else:
        raise ValueError(f"unknown design {sweep.design!r}{did_you_mean(sweep.design, DESIGNS)}")
    unit = np.asarray(unit, dtype=np.float64)
    out = np.empty_like(unit)
    for j, p in enumerate(params):
        out[:, j] = from_unit(p, unit[:, j])
    return out
