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
0.0452 / 30.4375 per day. Numbers are written with the ASCII digits 0-9 only. With
``unit_required=True`` (as scenario files are read) a plain number other than 0 is refused, with a
message that suggests the unit. Every parser raises :class:`UnitError` (a ``ValueError``) whose
message says what was found and what is expected.
"""

from __future__ import annotations

import math
import re

from sim.params import DAYS_PER_MONTH, DAYS_PER_YEAR

__all__ = [
    "DURATION_UNITS",
    "SHOW_MAX",
    "UnitError",
    "abridge",
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

#: A decimal number in ASCII digits only (``\d`` would also match other scripts' digits, which
#: ``float`` accepts: "٥d" would read as five days).
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_QUANTITY = re.compile(rf"^\s*({_NUMBER})\s*(.*?)\s*$")
_PER = re.compile(r"^(?:/|per\s+)\s*(.+)$", re.IGNORECASE)

_DURATION_HELP = (
    'a duration: a number with a unit h, d, w, mo or y (e.g. "90d", "18mo", "1.5y"; also '
    '"day(s)", "week(s)", "month(s)", "year(s)")'
)
_RATE_HELP = 'a rate: a number per unit of time (e.g. "0.0452/mo", "0.05/d", "2/y", "0.6/h")'
_DOSE_HELP = 'a dose: a number with a unit mg, g, ug/µg/mcg or ng (e.g. "400mg", "90ug")'
_VOLUME_HELP = 'a volume: a number with a unit L, dL or mL (e.g. "250L")'
_CONC_HELP = 'a concentration: mass per volume (e.g. "0.1mg/L", "1.2ug/mL", "250ng/mL")'

#: By quantity: what a plain number means, the quantity's name and how the unit-required
#: message suggests a unit.
_PLAIN = {
    _DURATION_HELP: ("days", "a duration", '"{x}d" or "{x}mo"'),
    _RATE_HELP: ("per day", "a rate", '"{x}/d" or "{x}/h"'),
    _DOSE_HELP: ("mg", "a dose", '"{x}mg" or "{x}ug"'),
    _VOLUME_HELP: ("L", "a volume", '"{x}L" or "{x}mL"'),
    _CONC_HELP: ("mg/L", "a concentration", '"{x}mg/L" or "{x}ng/mL"'),
}


def _help(expected: str, unit_required: bool) -> str:
    """The expected-text of a quantity: with or without "or a plain number in <unit>"."""
    return expected if unit_required else f"{expected}, or a plain number in {_PLAIN[expected][0]}"


def _plain(value: object, x: float, expected: str) -> UnitError:
    """The error for a plain number where a unit is required, suggesting the unit."""
    _, what, example = _PLAIN[expected]
    return UnitError(
        f"{_show(value)} (a number without a unit)",
        f"{what} with its unit, e.g. {example.format(x=f'{x:g}')} (only 0 may go without one)",
    )


def _quantity(value: object, expected: str, unit_required: bool) -> tuple[float, str]:
    """(number, unit text) of ``value``; a plain number (TOML number or unit-less string) has
    unit ``""``, refused unless ``unit_required`` is false or the number is 0."""
    full = _help(expected, unit_required)
    if isinstance(value, str):
        x, unit = _split(value, full)
    else:
        x, unit = _number(value, full), ""
    if not unit and unit_required and x != 0:
        raise _plain(value, x, expected)
    return x, unit


#: Longest echo of a found value in a message; longer strings are cut in the middle.
SHOW_MAX = 60

#: Characters that would break a one-line message (``str.splitlines`` splits on all of them).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def abridge(text: str, limit: int = SHOW_MAX) -> str:
    """``text`` with control characters escaped, cut to about ``limit`` characters.

    A cut keeps the start and the end, joined by an ellipsis, and says how long the whole was,
    so that a 10 MB value in a scenario file gives a short, one-line message.

    Examples
    --------
    >>> abridge("x" * 100, 20)
    'xxxxxxxxxxxxx…xxxxxx (100 characters)'
    """
    escaped = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    if len(escaped) <= limit:
        return escaped
    head = (limit * 2) // 3
    tail = limit - head - 1
    return f"{escaped[:head]}…{escaped[len(escaped) - tail :]} ({len(text):,} characters)"


def _show(value: object) -> str:
    """A value as it would appear in a scenario file, with its kind when that helps; long
    strings and numbers are abridged (:func:`abridge`)."""
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return '"' + abridge(value.replace("\\", "\\\\").replace('"', '\\"')) + '"'
    if isinstance(value, int) and abs(value) >= 10**SHOW_MAX:
        # str() of an integer above 4,300 digits raises: count digits from its bit length
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1:,} digits"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return abridge(f"{value!s} (a {type(value).__name__})")


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
        if any(c.isdigit() and not c.isascii() for c in value[:1000]):
            raise UnitError(f"{_show(value)} (digits other than 0-9)", expected)
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
    raise UnitError(f"{_show(value)} (unknown time unit {abridge(unit, 20)!r})", expected)


def parse_duration(value: object, *, unit_required: bool = False) -> float:
    """A duration in days.

    Parameters
    ----------
    value : int, float or str
        A number of days, or a string of a number and a time unit: h, d, w, mo, y (also hr,
        hour(s), day(s), wk, week(s), month(s), yr, year(s)), with optional spaces.
    unit_required : bool
        Refuse a plain number (a TOML number, or a string without a unit) other than 0, with a
        message that suggests the unit (scenario files set it).

    Returns
    -------
    float
        Days. The sign is kept; whether a duration must be positive is for the caller to say.

    Raises
    ------
    UnitError
        Not a number, an unknown or ambiguous unit, not finite, or a plain number where a unit
        is required.

    Examples
    --------
    >>> parse_duration("18mo")
    547.875
    >>> parse_duration("12 h")
    0.5
    """
    x, unit = _quantity(value, _DURATION_HELP, unit_required)
    if not unit:
        return x
    expected = _help(_DURATION_HELP, unit_required)
    return _scaled(x, _time_unit(unit, value, expected), value, expected)


def parse_rate(value: object, *, unit_required: bool = False) -> float:
    r"""A rate in 1/day: :math:`r_\text{day} = r_u / (\text{days per } u)`.

    Parameters
    ----------
    value : int, float or str
        A number per day, or a string ``"<number>/<time unit>"`` (``"0.0452/mo"``, ``"2/y"``,
        ``"0.6/h"``) or ``"<number> per <time unit>"``.
    unit_required : bool
        Refuse a plain number other than 0 (see :func:`parse_duration`).

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
    x, rest = _quantity(value, _RATE_HELP, unit_required)
    if not rest:
        return x
    expected = _help(_RATE_HELP, unit_required)
    m = _PER.match(rest)
    if m is None:
        raise UnitError(_show(value), expected)
    return _scaled(x, 1.0 / _time_unit(m.group(1), value, expected), value, expected)


def _lookup(value: object, table: dict[str, float], expected: str, unit_required: bool) -> float:
    """Parse ``value`` as a number times a unit of ``table`` (plain numbers in the base unit)."""
    x, unit = _quantity(value, expected, unit_required)
    if not unit:
        return x
    full = _help(expected, unit_required)
    key = re.sub(r"\s+", "", unit).lower()
    if key not in table:
        raise UnitError(f"{_show(value)} (unknown unit {abridge(unit, 20)!r})", full)
    return _scaled(x, table[key], value, full)


def parse_dose(value: object, *, unit_required: bool = False) -> float:
    """A dose in mg.

    Parameters
    ----------
    value : int, float or str
        A number of mg, or a string with a unit mg, g, ug, µg, μg, mcg or ng.
    unit_required : bool
        Refuse a plain number other than 0 (see :func:`parse_duration`).

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
    return _lookup(value, _DOSE_UNITS, _DOSE_HELP, unit_required)


def parse_volume(value: object, *, unit_required: bool = False) -> float:
    """A volume in litres: ``"250L"``, ``"500 mL"``, or a plain number of litres (refused
    with ``unit_required``, see :func:`parse_duration`)."""
    return _lookup(value, _VOLUME_UNITS, _VOLUME_HELP, unit_required)


def parse_concentration(value: object, *, unit_required: bool = False) -> float:
    """A mass concentration in mg/L (= µg/mL): ``"0.1mg/L"``, ``"250ng/mL"``, or mg/L (refused
    with ``unit_required``, see :func:`parse_duration`)."""
    return _lookup(value, _CONC_UNITS, _CONC_HELP, unit_required)


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
