r"""Quantities with units, as people write them in scenario files, converted to internal units.

Internal units are days for time, mg for doses, litres for volumes and mg/L (= µg/mL) for
concentrations. One month is 365.25/12 days and one year 365.25 days (Julian year,
:data:`sim.params.DAYS_PER_MONTH`, :data:`sim.params.DAYS_PER_YEAR`) everywhere in the package.

=============  ===============================  ==================================================
quantity       written as                       plain number means
=============  ===============================  ==================================================
duration       ``"90d"``, ``"12h"``, ``"2w"``,   days
               ``"18mo"``, ``"1.5y"``,
               ``"3 months"``
rate           ``"0.0452/mo"``, ``"2/y"``,       per day
               ``"0.6/h"``, ``"0.05 per day"``
dose           ``"400mg"``, ``"90ug"``,          mg
               ``"90µg"``, ``"0.1g"``
volume         ``"250L"``, ``"500mL"``           L
concentration  ``"0.1mg/L"``, ``"1.2ug/mL"``,    mg/L
               ``"250ng/mL"``
=============  ===============================  ==================================================

A rate converts as :math:`r_\text{day} = r_u / (\text{days per } u)`, e.g. 0.0452/mo =
0.0452 / 30.4375 per day. Every parser raises :class:`UnitError` (a ``ValueError``) whose message
says what was found and what is expected.
"""

from __future__ import annotations

import math
import re

from sim.params import DAYS_PER_MONTH, DAYS_PER_YEAR

__all__ = [
    "DURATION_UNITS",
    "UnitError",
    "format_duration",
    "parse_concentration",
    "parse_dose",
    "parse_duration",
    "parse_param_value",
    "parse_rate",
    "parse_volume",
]


class UnitError(ValueError):
    """A quantity that could not be read.

    Parameters
    ----------
    found : str
        What was found, already formatted for a message (e.g. ``"'12 yeras'"``).
    expected : str
        What is expected instead.

    Attributes
    ----------
    found, expected : str
        The two halves of the message, so callers (the scenario loader) can put them in their
        own message with a file, line and key.
    """

    def __init__(self, found: str, expected: str):
        self.found = found
        self.expected = expected
        super().__init__(f"found {found}, expected {expected}")


#: Days per unit of time, by every spelling a duration or rate may use (matched lower-case).
DURATION_UNITS: dict[str, float] = {
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 1.0 / 24.0),
    **dict.fromkeys(("d", "day", "days"), 1.0),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 7.0),
    **dict.fromkeys(("mo", "month", "months"), DAYS_PER_MONTH),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), DAYS_PER_YEAR),
}

_MICRO = ("u", "µ", "μ", "mc")  # ASCII u, micro sign U+00B5, Greek mu U+03BC, "mcg"

#: mg per unit of mass.
_DOSE_UNITS: dict[str, float] = {
    "mg": 1.0,
    "g": 1e3,
    "ng": 1e-6,
    **{f"{m}g": 1e-3 for m in _MICRO},
}

#: Litres per unit of volume.
_VOLUME_UNITS: dict[str, float] = {"l": 1.0, "dl": 0.1, "ml": 1e-3}

#: mg/L per unit of concentration (mass unit / volume unit).
_CONC_UNITS: dict[str, float] = {
    f"{mass}/{vol}": m_mg / v_l
    for mass, m_mg in _DOSE_UNITS.items()
    for vol, v_l in _VOLUME_UNITS.items()
}

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_QUANTITY = re.compile(rf"^\s*({_NUMBER})\s*(.*?)\s*$")
_PER = re.compile(r"^(?:/|per\s+)\s*(.+)$", re.IGNORECASE)

_DURATION_HELP = (
    'a duration: a number with a unit h, d, w, mo or y (e.g. "90d", "18mo", "1.5y"; also '
    '"day(s)", "week(s)", "month(s)", "year(s)"), or a plain number of days'
)
_RATE_HELP = (
    'a rate: a number per unit of time (e.g. "0.0452/mo", "0.05/d", "2/y", "0.6/h"), '
    "or a plain number per day"
)
_DOSE_HELP = 'a dose: a number with a unit mg, g, ug/µg/mcg or ng (e.g. "400mg", "90ug"), or mg'
_VOLUME_HELP = 'a volume: a number with a unit L, dL or mL (e.g. "250L"), or a plain number of L'
_CONC_HELP = (
    'a concentration: mass per volume (e.g. "0.1mg/L", "1.2ug/mL", "250ng/mL"), '
    "or a plain number in mg/L"
)


def _show(value: object) -> str:
    """A value as it would appear in a scenario file, with its kind when that helps."""
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"{value!s} (a {type(value).__name__})"


def _finite(x: float, value: object, expected: str) -> float:
    """``x`` if finite, else a UnitError about the original ``value``."""
    if not math.isfinite(x):
        raise UnitError(f"{_show(value)} (not a finite number)", expected)
    return x


def _number(value: object, expected: str) -> float:
    """A TOML integer or float as a finite float (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnitError(_show(value), expected)
    try:
        x = float(value)
    except OverflowError:
        raise UnitError(f"{_show(value)} (too large)", expected) from None
    return _finite(x, value, expected)


def _split(value: str, expected: str) -> tuple[float, str]:
    """Split ``"  1.5 y "`` into ``(1.5, "y")``."""
    m = _QUANTITY.match(value)
    if m is None:
        raise UnitError(_show(value), expected)
    x = float(m.group(1))
    return _finite(x, value, expected), m.group(2)


def _scaled(x: float, factor: float, value: object, expected: str) -> float:
    """``x * factor``, refusing an overflow to infinity."""
    return _finite(x * factor, value, expected)


def _time_unit(unit: str, value: object, expected: str) -> float:
    """Days per ``unit``; ``"m"`` is refused as ambiguous (minutes or months)."""
    u = unit.strip().lower()
    if u in DURATION_UNITS:
        return DURATION_UNITS[u]
    if u == "m":
        raise UnitError(f'{_show(value)} ("m" is ambiguous)', 'months written as "mo"')
    raise UnitError(f"{_show(value)} (unknown time unit {unit!r})", expected)


def parse_duration(value: object) -> float:
    """A duration in days.

    Parameters
    ----------
    value : int, float or str
        A number of days, or a string of a number and a time unit: h, d, w, mo, y (also hr,
        hour(s), day(s), wk, week(s), month(s), yr, year(s)), with optional spaces.

    Returns
    -------
    float
        Days. The sign is kept; whether a duration must be positive is for the caller to say.

    Raises
    ------
    UnitError
        Not a number, an unknown or ambiguous unit, or not finite.

    Examples
    --------
    >>> parse_duration("18mo")
    547.875
    >>> parse_duration("12 h")
    0.5
    """
    if not isinstance(value, str):
        return _number(value, _DURATION_HELP)
    x, unit = _split(value, _DURATION_HELP)
    if not unit:
        return x
    return _scaled(x, _time_unit(unit, value, _DURATION_HELP), value, _DURATION_HELP)


def parse_rate(value: object) -> float:
    r"""A rate in 1/day: :math:`r_\text{day} = r_u / (\text{days per } u)`.

    Parameters
    ----------
    value : int, float or str
        A number per day, or a string ``"<number>/<time unit>"`` (``"0.0452/mo"``, ``"2/y"``,
        ``"0.6/h"``) or ``"<number> per <time unit>"``.

    Returns
    -------
    float
        The rate per day (sign kept).

    Raises
    ------
    UnitError
        Not a rate, or an unknown time unit.

    Examples
    --------
    >>> parse_rate("2/y") * 365.25
    2.0
    """
    if not isinstance(value, str):
        return _number(value, _RATE_HELP)
    x, rest = _split(value, _RATE_HELP)
    if not rest:
        return x
    m = _PER.match(rest)
    if m is None:
        raise UnitError(_show(value), _RATE_HELP)
    return _scaled(x, 1.0 / _time_unit(m.group(1), value, _RATE_HELP), value, _RATE_HELP)


def _lookup(value: object, table: dict[str, float], expected: str) -> float:
    """Parse ``value`` as a number times a unit of ``table`` (plain numbers in the base unit)."""
    if not isinstance(value, str):
        return _number(value, expected)
    x, unit = _split(value, expected)
    if not unit:
        return x
    key = re.sub(r"\s+", "", unit).lower()
    if key not in table:
        raise UnitError(f"{_show(value)} (unknown unit {unit!r})", expected)
    return _scaled(x, table[key], value, expected)


def parse_dose(value: object) -> float:
    """A dose in mg.

    Parameters
    ----------
    value : int, float or str
        A number of mg, or a string with a unit mg, g, ug, µg, μg, mcg or ng.

    Returns
    -------
    float
        mg (sign kept).

    Raises
    ------
    UnitError
        Not a dose.

    Examples
    --------
    >>> parse_dose("90µg")
    0.09
    """
    return _lookup(value, _DOSE_UNITS, _DOSE_HELP)


def parse_volume(value: object) -> float:
    """A volume in litres: ``"250L"``, ``"500 mL"``, or a plain number of litres."""
    return _lookup(value, _VOLUME_UNITS, _VOLUME_HELP)


def parse_concentration(value: object) -> float:
    """A mass concentration in mg/L (= µg/mL): ``"0.1mg/L"``, ``"250ng/mL"``, or mg/L."""
    return _lookup(value, _CONC_UNITS, _CONC_HELP)


def parse_param_value(value: object, unit: str) -> float:
    """A model parameter value in its table unit.

    Parameters
    ----------
    value : int, float or str
        A number in the table's ``unit``; a string number; a string number followed by exactly
        the table unit (``"1e6 cells"``); or, for units with a ``day`` in them (rates such as
        ``1/day``, ``cells/day``, ``1/(cell·day)``), a string ``"<number>/<time unit>"`` whose
        time part is converted to per day (``"0.0452/mo"`` -> 0.0452 / 30.4375).
    unit : str
        The parameter's unit in its :class:`sim.params.ParamTable`.

    Returns
    -------
    float
        The value in ``unit``.

    Raises
    ------
    UnitError
        Not a number, a time denominator on a parameter whose unit has no time, or an unknown
        unit.
    """
    per_day = "day" in unit
    expected = (
        f'a number in {unit}, or a number per unit of time (e.g. "0.05/mo", "2/y")'
        if per_day
        else f"a plain number in {unit}"
    )
    if not isinstance(value, str):
        return _number(value, expected)
    x, rest = _split(value, expected)
    if not rest or rest == unit.strip():
        return x
    m = _PER.match(rest)
    if m is not None and (m.group(1).strip().lower() in DURATION_UNITS or m.group(1) == "m"):
        if not per_day:
            raise UnitError(f"{_show(value)} (a rate, but the unit is {unit!r})", expected)
        return _scaled(x, 1.0 / _time_unit(m.group(1), value, expected), value, expected)
    raise UnitError(_show(value), expected)


#: Units tried by :func:`format_duration`, largest first.
_FORMAT_UNITS = (
    ("y", DAYS_PER_YEAR),
    ("mo", DAYS_PER_MONTH),
    ("w", 7.0),
    ("d", 1.0),
    ("h", 1.0 / 24.0),
)


def format_duration(days: float) -> str:
    """The shortest string that :func:`parse_duration` reads back as exactly ``days``.

    Tries years, months, weeks, days and hours with the shortest decimal that round-trips (a
    plain ``repr`` in days always does) and keeps the shortest, preferring whole numbers.

    Examples
    --------
    >>> format_duration(365.25 * 12)
    '12y'
    >>> format_duration(53 * 365.25 / 12)
    '53mo'
    """
    days = float(days)
    if not math.isfinite(days):
        raise UnitError(repr(days), "a finite number of days")
    if days == 0:
        return "0d"
    candidates = [f"{days!r}d"]
    for unit, factor in _FORMAT_UNITS:
        v = days / factor
        for digits in range(0, 7):
            cand = f"{_trim(round(v, digits))}{unit}"
            if parse_duration(cand) == days:
                candidates.append(cand)
                break
    # shortest first; at equal length a whole number ("618mo") before a decimal ("51.5y")
    return min(candidates, key=lambda c: (len(c), "." in c))


def _trim(x: float) -> str:
    """``12.0`` -> ``"12"``; other floats by their shortest repr."""
    if abs(x) < 1e15 and x == int(x):
        return str(int(x))
    return repr(x)
