"""Tests of sim.units: durations, rates, doses, volumes, concentrations, parameter values."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.params import DAYS_PER_MONTH, DAYS_PER_YEAR
from sim.units import (
    DURATION_UNITS,
    UnitError,
    format_duration,
    parse_concentration,
    parse_dose,
    parse_duration,
    parse_param_value,
    parse_rate,
    parse_volume,
)

MONTH = 365.25 / 12.0  # written out, not taken from the module under test
YEAR = 365.25


def test_calendar_constants():
    assert DAYS_PER_MONTH == MONTH == 30.4375
    assert DAYS_PER_YEAR == YEAR


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("90d", 90.0),
        ("12h", 0.5),
        ("2w", 14.0),
        ("18mo", 18 * MONTH),
        ("5y", 5 * YEAR),
        ("1.5y", 1.5 * YEAR),
        (" 3 months ", 3 * MONTH),
        ("1 day", 1.0),
        ("2 weeks", 14.0),
        ("1 year", YEAR),
        ("36 hours", 1.5),
        ("1e2d", 100.0),
        (".5d", 0.5),
        ("7", 7.0),
        ("5Y", 5 * YEAR),
        (7, 7.0),
        (2.5, 2.5),
        (-3, -3.0),
    ],
)
def test_parse_duration(text, days):
    assert parse_duration(text) == pytest.approx(days, rel=1e-15)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("12 yeras", "unknown time unit 'yeras'"),
        ("12m", 'written as "mo"'),
        ("", "a duration"),
        ("y", "a duration"),
        ("five years", "a duration"),
        ("1e400d", "not a finite number"),
        ("inf", "a duration"),
        (math.inf, "not a finite number"),
        (math.nan, "not a finite number"),
        (10**400, "too large"),
        (True, "a boolean"),
        (None, "a duration"),
        ([1], "an array"),
        ({"y": 1}, "a table"),
    ],
)
def test_parse_duration_errors(value, fragment):
    with pytest.raises(UnitError) as info:
        parse_duration(value)
    err = info.value
    assert isinstance(err, ValueError)
    assert str(err) == f"found {err.found}, expected {err.expected}"
    assert fragment in str(err)


def test_ambiguous_minutes_or_months_names_the_fix():
    with pytest.raises(UnitError, match='months written as "mo"'):
        parse_duration("3m")
    with pytest.raises(UnitError, match='months written as "mo"'):
        parse_rate("0.1/m")


@pytest.mark.parametrize(
    ("text", "per_day"),
    [
        ("0.0452/mo", 0.0452 / MONTH),
        ("0.05/d", 0.05),
        ("2/y", 2 / YEAR),
        ("0.6/h", 14.4),
        ("0.6 / h", 14.4),
        ("0.05 per day", 0.05),
        ("3 per week", 3 / 7),
        ("1/day", 1.0),
        ("0.3", 0.3),
        (0.3, 0.3),
    ],
)
def test_parse_rate(text, per_day):
    assert parse_rate(text) == pytest.approx(per_day, rel=1e-14)


@pytest.mark.parametrize("text", ["0.05mo", "0.05/furlong", "/mo", "fast", "0.05//d"])
def test_parse_rate_errors(text):
    with pytest.raises(UnitError, match="expected"):
        parse_rate(text)


@pytest.mark.parametrize(
    ("text", "mg"),
    [
        ("400mg", 400.0),
        ("400 mg", 400.0),
        ("90ug", 0.09),
        ("90\u00b5g", 0.09),  # micro sign
        ("90\u03bcg", 0.09),  # Greek mu
        ("90mcg", 0.09),
        ("0.1g", 100.0),
        ("500ng", 5e-4),
        (400, 400.0),
        ("400", 400.0),
    ],
)
def test_parse_dose(text, mg):
    assert parse_dose(text) == pytest.approx(mg, rel=1e-14)


@pytest.mark.parametrize("text", ["400 mgs", "400ml", "four hundred mg", "mg"])
def test_parse_dose_errors(text):
    with pytest.raises(UnitError, match="a dose"):
        parse_dose(text)


def test_parse_volume_and_concentration():
    assert parse_volume("250L") == 250.0
    assert parse_volume("500 mL") == pytest.approx(0.5)
    assert parse_volume(3) == 3.0
    assert parse_concentration("0.1mg/L") == pytest.approx(0.1)
    assert parse_concentration("1.2ug/mL") == pytest.approx(1.2)
    assert parse_concentration("250 ng/mL") == pytest.approx(0.25)
    assert parse_concentration("240 ng/ml") == pytest.approx(0.24)
    assert parse_concentration(0.24) == 0.24
    with pytest.raises(UnitError, match="a volume"):
        parse_volume("250 kg")
    with pytest.raises(UnitError, match="a concentration"):
        parse_concentration("0.1 nM")


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        ("0.0452/mo", "1/day", 0.0452 / MONTH),
        (0.0015, "1/day", 0.0015),
        ("0.0015", "1/day", 0.0015),
        ("200/mo", "cells/day", 200 / MONTH),
        ("1e-4/mo", "1/(cell·day)", 1e-4 / MONTH),
        ("2/y", "1/day", 2 / YEAR),
        ("0.3/h", "1/day", 7.2),
        (419, "cells", 419.0),
        ("419", "cells", 419.0),
        ("1e6 cells", "cells", 1e6),
        (0.5, "1", 0.5),
    ],
)
def test_parse_param_value(value, unit, expected):
    assert parse_param_value(value, unit) == pytest.approx(expected, rel=1e-14)


def test_parse_param_value_refuses_time_for_timeless_units():
    with pytest.raises(UnitError) as info:
        parse_param_value("3/mo", "cells")
    assert "a plain number in cells" in info.value.expected
    assert "3/mo" in info.value.found
    with pytest.raises(UnitError, match="expected"):
        parse_param_value("3 furlongs", "1/day")
    with pytest.raises(UnitError, match="a boolean"):
        parse_param_value(False, "1/day")


@pytest.mark.parametrize(
    ("days", "text"),
    [
        (12 * YEAR, "12y"),
        (53 * MONTH, "53mo"),
        (89 * MONTH, "89mo"),
        (14.0, "2w"),
        (0.5, "12h"),
        (3.0, "3d"),
        (0.0, "0d"),
        (1.5 * YEAR, "18mo"),  # same length as "1.5y": the whole number wins
        (2.5 * YEAR, "30mo"),
        (9.5 * YEAR, "9.5y"),  # shorter than "114mo"
    ],
)
def test_format_duration(days, text):
    assert format_duration(days) == text


def test_format_duration_refuses_non_finite():
    with pytest.raises(UnitError):
        format_duration(math.inf)


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0.0, max_value=1e7, allow_nan=False))
def test_format_then_parse_gives_the_same_days(days):
    assert parse_duration(format_duration(days)) == days


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=2400))
def test_whole_months_format_no_longer_than_months(months):
    text = format_duration(months * MONTH)
    assert len(text) <= len(f"{months}mo")
    assert parse_duration(text) == months * MONTH


@settings(max_examples=200, deadline=None)
@given(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.sampled_from(sorted(DURATION_UNITS)),
)
def test_duration_and_rate_scale_with_their_unit(x, unit):
    factor = DURATION_UNITS[unit]
    assert parse_duration(f"{x!r}{unit}") == pytest.approx(x * factor, rel=1e-15, abs=0)
    assert parse_duration(f"{x!r} {unit}") == parse_duration(f"{x!r}{unit}")
    assert parse_rate(f"{x!r}/{unit}") == pytest.approx(x / factor, rel=1e-15, abs=0)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789.eE+-/ dhwmoyrgulLµμnc", max_size=12))
def test_parsers_raise_only_unit_errors(text):
    for parse in (parse_duration, parse_rate, parse_dose, parse_volume, parse_concentration):
        try:
            value = parse(text)
        except UnitError:
            continue
        assert math.isfinite(value)
    for unit in ("1/day", "cells"):
        try:
            parse_param_value(text, unit)
        except UnitError:
            pass


# ------------------------------------------------------------------ digits, units, abridging


@pytest.mark.parametrize("value", ["٥d", "５mg", "１２h", "²y", "5\u0665d"])
def test_only_ascii_digits(value):
    # float() reads digits of other scripts ("٥" is 5): a quantity must not
    with pytest.raises(UnitError) as info:
        (parse_dose if "mg" in value else parse_duration)(value)
    assert value in info.value.found


@pytest.mark.parametrize(
    ("parse", "value", "suggestion"),
    [
        (parse_dose, 90, '"90mg" or "90ug"'),
        (parse_dose, "90", '"90mg" or "90ug"'),
        (parse_duration, 12, '"12d" or "12mo"'),
        (parse_rate, 0.5, '"0.5/d" or "0.5/h"'),
        (parse_volume, 8.0, '"8L" or "8mL"'),
        (parse_concentration, 2, '"2mg/L" or "2ng/mL"'),
    ],
)
def test_unit_required_refuses_plain_numbers_with_a_suggestion(parse, value, suggestion):
    assert parse(value) == float(value)  # the default keeps plain numbers in internal units
    with pytest.raises(UnitError) as info:
        parse(value, unit_required=True)
    assert "without a unit" in info.value.found
    assert suggestion in info.value.expected


@pytest.mark.parametrize("value", [0, 0.0, "0", "-0"])
def test_unit_required_accepts_zero(value):
    assert parse_dose(value, unit_required=True) == 0.0
    assert parse_duration(value, unit_required=True) == 0.0


def test_long_values_are_abridged():
    from sim.units import SHOW_MAX, abridge

    with pytest.raises(UnitError) as info:
        parse_duration("1" + "x" * 10_000_000)
    assert len(info.value.found) < 4 * SHOW_MAX  # the value and its unknown unit, both cut
    assert "10,000,001 characters" in info.value.found
    assert abridge("a\nb\u2028c") == "a\\nb\\u2028c"  # nothing that would break the line
    assert abridge("short") == "short"
