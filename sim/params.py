"""Parameter tables: one per model, with unit, default, bounds, meaning and source.

Every number a model uses lives in one :class:`ParamTable`. The table is what ``cmlsim models``
prints, what scenario files override by name, and what sweeps draw from, so a parameter has one
place where its unit and its provenance are written down.

Internal units are days for time, "cells" in the cell units of Hähnel et al. 2020 (K_y = 1e6) for
leukemic and T cells, and cells/µL for NK cells.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

#: Days per month and per year (Julian year), used for every conversion in the package.
DAYS_PER_MONTH = 365.25 / 12.0
DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class Param:
    """One model parameter.

    Attributes
    ----------
    name : str
        Identifier used in scenario files and in the parameter vector.
    default : float
        Default value, in ``unit``.
    unit : str
        Internal unit (time always in days).
    lower, upper : float
        Admissible closed interval; values outside are rejected at validation time.
    meaning : str
        One line saying what the parameter is.
    source : str
        Where the default comes from. ``"assumption"`` entries also give a plausible range.
    """

    name: str
    default: float
    unit: str
    lower: float
    upper: float
    meaning: str
    source: str

    def __post_init__(self) -> None:
        if not (self.lower <= self.default <= self.upper):
            raise ValueError(
                f"parameter {self.name}: default {self.default} "
                f"outside [{self.lower}, {self.upper}]"
            )


class ParamTable:
    """An ordered, immutable collection of :class:`Param` with vector conversion."""

    def __init__(self, params: Iterable[Param]):
        self.params: tuple[Param, ...] = tuple(params)
        self._index = {p.name: i for i, p in enumerate(self.params)}
        if len(self._index) != len(self.params):
            raise ValueError("duplicate parameter names")

    def __len__(self) -> int:
        return len(self.params)

    def __iter__(self):
        return iter(self.params)

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def __getitem__(self, name: str) -> Param:
        return self.params[self._index[name]]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def index(self, name: str) -> int:
        """Position of ``name`` in the parameter vector."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"unknown parameter {name!r}{did_you_mean(name, self.names)}") from None

    def defaults(self) -> np.ndarray:
        """The default parameter vector (float64, internal units)."""
        return np.array([p.default for p in self.params], dtype=np.float64)

    def vector(self, overrides: Mapping[str, float] | None = None) -> np.ndarray:
        """Default vector with ``overrides`` applied; each override is checked against bounds."""
        v = self.defaults()
        for name, value in (overrides or {}).items():
            i = self.index(name)
            p = self.params[i]
            value = float(value)
            if not (np.isfinite(value) and p.lower <= value <= p.upper):
                raise ValueError(
                    f"parameter {name} = {value:g} {p.unit} is outside its bounds "
                    f"[{p.lower:g}, {p.upper:g}] {p.unit}"
                )
            v[i] = value
        return v

    def as_rows(self) -> list[tuple[str, str, str, str, str, str]]:
        """Rows (name, default, unit, bounds, meaning, source) for printing."""
        return [
            (
                p.name,
                f"{p.default:.6g}",
                p.unit,
                f"[{p.lower:.3g}, {p.upper:.3g}]",
                p.meaning,
                p.source,
            )
            for p in self.params
        ]

    def format(self) -> str:
        """A plain-text table of the parameters."""
        header = ("name", "default", "unit", "bounds", "meaning", "source")
        rows = [header, *self.as_rows()]
        widths = [max(len(r[k]) for r in rows) for k in range(4)]
        lines = []
        for r in rows:
            fixed = "  ".join(r[k].ljust(widths[k]) for k in range(4))
            lines.append(f"{fixed}  {r[4]}  [{r[5]}]" if r is not header else f"{fixed}  {r[4]}")
        return "\n".join(lines)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A ``"; did you mean 'x'?"`` suffix for error messages, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def lookup(registry: dict, name: object, what: str):
    """``registry[name]``, case-insensitive; ``KeyError`` naming ``what``, with a did-you-mean
    and the known names, otherwise (one message for drugs, products and models alike)."""
    key = name.strip().lower() if isinstance(name, str) else name
    try:
        return registry[key]
    except (KeyError, TypeError):
        known = ", ".join(sorted(registry))
        raise KeyError(
            f"unknown {what} {name!r}{did_you_mean(str(key), registry)} (known: {known})"
        ) from None
