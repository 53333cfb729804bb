"""Tests of the intervention products (sim.therapy.interventions).

The kernels (give, advance, effect) are compared with the plain superposition of every dose
(``superposition_reference``) and a direct E_max formula (``effect_reference``); steady-state
means with scipy.integrate.quad. Clinical anchors (label half-lives and levels, Brahmer 2010
occupancy) are written into the tests with their sources, since the package cannot read
shared/reference.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from sim.therapy import drive
from sim.therapy import interventions as iv
from sim.therapy.interventions import (
    PRODUCTS,
    advance,
    combine,
    effect,
    effect_reference,
    get_product,
    give,
    interval_mean_effect,
    make_product,
    peak_trough,
    steady_state,
    superposition_reference,
)

NAMES = sorted(PRODUCTS)
DRUG_KW = dict(ec50=0.01, standard_dose=0.1, standard_interval=7.0, volume=10.0)


def _simulate(vec, dose_times, doses, t_eval):
    """C at each t_eval (sorted) from give/advance, doses at dose_times (sorted) before
    readings at the same time."""
    a, c, t = 0.0, 0.0, 0.0
    out = np.empty(len(t_eval))
    k = 0
    for j, te in enumerate(t_eval):
        while k < len(dose_times) and dose_times[k] <= te:
            a, c = advance(a, c, dose_times[k] - t, vec)
            t = dose_times[k]
            a, c = give(a, c, doses[k], vec)
            k += 1
        a, c = advance(a, c, te - t, vec)
        t = te
        out[j] = c
    return out


def _conc_after_course(vec, dose, tau, n_doses, t_after_last):
    """C at t_after_last after the last of n_doses given every tau (give/advance)."""
    a, c = 0.0, 0.0
    for k in range(n_doses):
        a, c = give(a, c, dose, vec)
        a, c = advance(a, c, tau if k < n_doses - 1 else t_after_last, vec)
    return c


# --- registry ----------------------------------------------------------------------------------


def test_registry_has_the_products():
    assert set(PRODUCTS) == {
        "peginterferon-alfa-2a",
        "peginterferon-alfa-2b",
        "nivolumab",
        "pembrolizumab",
        "vaccine",
        "exercise",
    }
    kinds = {name: p.kind for name, p in PRODUCTS.items()}
    assert kinds["peginterferon-alfa-2a"] == kinds["peginterferon-alfa-2b"] == "interferon"
    assert kinds["nivolumab"] == kinds["pembrolizumab"] == "checkpoint"
    assert kinds["vaccine"] == "vaccine" and kinds["exercise"] == "exercise"
    for name, p in PRODUCTS.items():
        assert p.name == name
        assert p.source and p.notes
        assert "ASSUMPTION" in p.notes  # every product has an effect size no source gives
    for name in ("peginterferon-alfa-2a", "peginterferon-alfa-2b", "nivolumab", "pembrolizumab"):
        assert "[recalled]" in PRODUCTS[name].source


def test_get_product_is_case_insensitive_and_suggests_names():
    assert get_product(" Nivolumab") is PRODUCTS["nivolumab"]
    with pytest.raises(KeyError, match="did you mean 'nivolumab'"):
        get_product("nivolumb")
    with pytest.raises(KeyError, match="did you mean 'peginterferon-alfa-2a'"):
        get_product("peginterferon-alpha-2a")
    with pytest.raises(KeyError, match="unknown intervention product"):
        get_product("aspirin")


def test_vector_layout_and_kinds():
    idx = (
        iv.P_KIND,
        iv.P_KA,
        iv.P_KE,
        iv.P_VOL,
        iv.P_BIO,
        iv.P_EC50,
        iv.P_EMAX,
        iv.P_HILL,
        iv.P_STD_DOSE,
        iv.P_STD_TAU,
    )
    assert sorted(idx) == list(range(10)) and iv.N_PRODUCT == 10
    p = make_product(
        "x",
        "checkpoint",
        ka=2.5,
        ke=0.1,
        volume=5.0,
        bioavailability=0.7,
        ec50=1.5,
        emax=0.9,
        hill=2.0,
        standard_dose=100.0,
        standard_interval=21.0,
    )
    v = p.vector()
    assert v.dtype == np.float64 and v.shape == (10,)
    expected = [iv.KIND_PD1, 2.5, 0.1, 5.0, 0.7, 1.5, 0.9, 2.0, 100.0, 21.0]
    assert [v[i] for i in idx] == expected
    assert np.isinf(PRODUCTS["nivolumab"].vector()[iv.P_KA])
    assert (iv.KIND_IFN, iv.KIND_PD1, iv.KIND_VACCINE, iv.KIND_EXERCISE) == (1, 2, 3, 4)
    slots = {
        "interferon": drive.IFN,
        "checkpoint": drive.PD1,
        "vaccine": drive.VACCINE,
        "exercise": drive.EXERCISE,
    }
    for kind, code in iv.KIND_CODES.items():
        assert iv.SLOT_OF_KIND[code] == slots[kind]
        assert code == slots[kind]  # sim.engines.ode indexes the drive by the kind code
    for prod in PRODUCTS.values():
        assert prod.slot == slots[prod.kind]
        assert prod.vector()[iv.P_KIND] == iv.KIND_CODES[prod.kind]


def test_product_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRODUCTS["nivolumab"].ec50 = 1.0


# --- make_product validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(ke=0.0), "ke must be a positive finite number"),
        (dict(ke=-0.1), "ke must be a positive finite number"),
        (dict(ke=math.inf), "ke must be a positive finite number"),
        (dict(volume=0.0), "volume must be a positive finite number"),
        (dict(volume=-8.0), "volume must be a positive finite number"),
        (dict(ec50=0.0), "ec50 must be a positive finite number"),
        (dict(ec50=-1.0), "ec50 must be a positive finite number"),
        (dict(ec50=math.nan), "ec50 must be a positive finite number"),
        (dict(ka=0.0), "ka must be a positive number"),
        (dict(ka=math.nan), "ka must be a positive number"),
        (dict(emax=1.5), "must be in \\(0, 1\\]"),
        (dict(emax=0.0), "emax must be a positive finite number"),
        (dict(standard_interval=0.0), "standard_interval must be a positive"),
        (dict(hill="2"), "hill must be a positive finite number"),
    ],
)
def test_make_product_rejects_bad_numbers(kw, match):
    args = dict(ka=1.0, ke=0.2, **DRUG_KW) | kw
    with pytest.raises(ValueError, match=match):
        make_product("bad", "interferon", **args)


def test_make_product_rejects_unknown_kind_with_suggestion():
    with pytest.raises(ValueError, match="unknown kind 'interferom'; did you mean 'interferon'"):
        make_product("bad", "interferom", ka=1.0, ke=0.2, **DRUG_KW)
    with pytest.raises(ValueError, match="unknown kind 'antibody'"):
        make_product("bad", "antibody", ka=1.0, ke=0.2, **DRUG_KW)


def test_make_product_half_life_and_volume_rules():
    p = make_product(
        "boost", "vaccine", half_life=14.0, ec50=1.0, standard_dose=1.0, standard_interval=14.0
    )
    assert p.half_life_days == pytest.approx(14.0, rel=1e-15)
    assert p.volume == 1.0 and math.isinf(p.ka) and p.emax == 1.0
    with pytest.raises(ValueError, match="exactly one of ke"):
        make_product("x", "interferon", ka=1.0, **DRUG_KW)
    with pytest.raises(ValueError, match="exactly one of ke"):
        make_product("x", "interferon", ka=1.0, ke=0.2, half_life=3.0, **DRUG_KW)
    with pytest.raises(ValueError, match="half_life must be a positive"):
        make_product("x", "interferon", ka=1.0, half_life=-3.0, **DRUG_KW)
    no_volume = {k: v for k, v in DRUG_KW.items() if k != "volume"}
    with pytest.raises(ValueError, match="needs its volume of distribution"):
        make_product("x", "checkpoint", ke=0.03, **no_volume)


# --- kernels against superposition ---------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_course_matches_superposition(name):
    """A course at the standard regimen plus extra irregular doses, read on a grid that is not
    aligned with the doses, equals the superposition of every dose to 1e-12."""
    p = PRODUCTS[name]
    v = p.vector()
    tau, dose = p.standard_interval, p.standard_dose
    regular = np.arange(10) * tau
    extra = np.array([0.37, 2.3, 5.5]) * tau
    dose_times = np.sort(np.concatenate([regular, extra]))
    doses = np.where(np.isin(dose_times, extra), 0.5 * dose, dose)
    t_eval = np.sort(np.concatenate([np.linspace(0.0, 14.0 * tau, 401), dose_times]))
    got = _simulate(v, dose_times, doses, t_eval)
    ref = superposition_reference(t_eval, dose_times, doses, v)
    assert np.all(ref[t_eval > 0.01 * tau] > 0.0)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("ka", [0.3, 2.0, 0.2, math.inf])
def test_user_product_matches_superposition(ka):
    # ka = 0.2 = ke exercises the Bateman limit form; ka = inf the bolus path
    p = make_product("u", "interferon", ka=ka, ke=0.2, bioavailability=0.8, hill=1.7, **DRUG_KW)
    v = p.vector()
    rng = np.random.default_rng(7)
    dose_times = np.sort(rng.uniform(0.0, 60.0, 12))
    doses = rng.uniform(0.01, 0.2, 12)
    t_eval = np.sort(rng.uniform(0.0, 90.0, 300))
    got = _simulate(v, dose_times, doses, t_eval)
    ref = superposition_reference(t_eval, dose_times, doses, v)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(
        [effect(c, v) for c in got], effect_reference(ref, v), rtol=1e-12, atol=0.0
    )


def test_give_targets_depot_or_central_compartment():
    oral = PRODUCTS["peginterferon-alfa-2a"].vector()
    assert give(0.0, 1.0, 0.09, oral) == (pytest.approx(0.09 / 8.0, rel=1e-15), 1.0)
    bolus = PRODUCTS["nivolumab"].vector()
    assert give(0.0, 1.0, 240.0, bolus) == (0.0, pytest.approx(1.0 + 240.0 / 8.0, rel=1e-15))
    # ka = inf: whatever sits in the depot counts as absorbed
    a, c = advance(2.0, 1.0, 10.0, bolus)
    assert a == 0.0 and c == pytest.approx(3.0 * math.exp(-bolus[iv.P_KE] * 10.0), rel=1e-15)


def test_effect_matches_formula_and_is_bounded():
    for p in PRODUCTS.values():
        v = p.vector()
        c = np.geomspace(1e-6 * p.ec50, 1e6 * p.ec50, 200)
        got = np.array([effect(x, v) for x in c])
        np.testing.assert_allclose(got, effect_reference(c, v), rtol=1e-13)
        assert effect(p.ec50, v) == pytest.approx(0.5 * p.emax, rel=1e-15)
        assert effect(0.0, v) == 0.0 and effect(1e300, v) == p.emax
        assert np.all(np.diff(got) > 0.0)


def test_combine_rules():
    assert combine(0.5, 0.5, iv.KIND_IFN) == 0.75
    assert combine(0.8, 0.6, iv.KIND_PD1) == pytest.approx(0.92, rel=1e-15)
    assert combine(0.2, 0.1, iv.KIND_VACCINE) == pytest.approx(0.3, rel=1e-15)
    assert combine(1.2, 0.3, iv.KIND_EXERCISE) == pytest.approx(1.5, rel=1e-15)
    assert combine(0.0, 0.4, iv.KIND_IFN) == 0.4
    assert combine(1.0, 0.4, iv.KIND_PD1) == 1.0


# --- steady state and half-lives ---------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_steady_state_matches_long_course(name):
    p = PRODUCTS[name]
    v = p.vector()
    tau, dose = p.standard_interval, p.standard_dose
    n = math.ceil(60.0 * p.half_life_days / tau) + 1  # 2^-60 of the first dose is left
    t = np.linspace(0.0, tau, 41, endpoint=False)[1:]
    ref = superposition_reference((n - 1) * tau + t, np.arange(n) * tau, np.full(n, dose), v)
    got = np.array([steady_state(dose, tau, v, x) for x in t])
    np.testing.assert_allclose(got, ref, rtol=1e-11)
    cmax, cmin = peak_trough(dose, tau, v)
    # [0, tau): the trough is at t = 0 with absorption, the peak at t = 0 for a bolus
    fine = np.linspace(0.0, tau, 20001)[:-1]
    grid = np.array([steady_state(dose, tau, v, x) for x in fine])
    assert cmax >= grid.max() * (1 - 1e-14) and cmax == pytest.approx(grid.max(), rel=1e-7)
    assert cmin <= grid.min() * (1 + 1e-14) and cmin == pytest.approx(grid.min(), rel=1e-4)
    # mean level F D / (V ke tau)
    mean, _ = quad(lambda x: steady_state(dose, tau, v, x), 0.0, tau, epsrel=1e-13)
    assert mean / tau == pytest.approx(dose / (p.volume * p.ke * tau), rel=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_interval_mean_effect_matches_quad(name):
    p = PRODUCTS[name]
    v = p.vector()
    tau = p.standard_interval
    for dose in (0.01 * p.standard_dose, p.standard_dose, 10.0 * p.standard_dose):
        val, _ = quad(
            lambda x, d=dose: effect(steady_state(d, tau, v, x), v),
            0.0,
            tau,
            epsabs=0.0,
            epsrel=1e-13,
            limit=200,
        )
        assert interval_mean_effect(dose, tau, v) == pytest.approx(val / tau, rel=1e-10)
    assert interval_mean_effect(0.0, tau, v) == 0.0
    with pytest.raises(ValueError, match="tau must be positive"):
        interval_mean_effect(p.standard_dose, 0.0, v)


def test_bolus_mean_effect_closed_form_with_hill():
    p = make_product(
        "u",
        "exercise",
        ka=math.inf,
        half_life=3.0,
        ec50=1.0,
        hill=2.5,
        emax=0.4,
        standard_dose=1.0,
        standard_interval=2.0,
    )
    v = p.vector()
    val, _ = quad(lambda x: effect(steady_state(1.3, 2.0, v, x), v), 0, 2.0, epsrel=1e-13)
    assert interval_mean_effect(1.3, 2.0, v) == pytest.approx(val / 2.0, rel=1e-11)


@pytest.mark.parametrize(
    ("name", "t_half_days"),
    [
        ("peginterferon-alfa-2a", 80.0 / 24.0),  # Pegasys label, t½ ~80 h
        ("peginterferon-alfa-2b", 40.0 / 24.0),  # PegIntron label, t½ ~40 h
        ("nivolumab", 25.0),  # Opdivo label, ~25 days
        ("pembrolizumab", 22.0),  # Keytruda label, ~22 days
        ("vaccine", 28.0),  # assumption, 4 weeks
        ("exercise", 3.0),  # assumption, 3 days
    ],
)
def test_half_lives_match_the_product(name, t_half_days):
    p = PRODUCTS[name]
    assert p.half_life_days == pytest.approx(t_half_days, rel=1e-14)
    v = p.vector()
    # terminal decay of a single dose, read from the kernels: halves every t½ late on
    late = 40.0 * t_half_days
    c1 = _conc_after_course(v, p.standard_dose, 1.0, 1, late)
    c2 = _conc_after_course(v, p.standard_dose, 1.0, 1, late + t_half_days)
    assert c2 / c1 == pytest.approx(0.5, rel=1e-6)


@pytest.mark.parametrize(
    ("name", "lo_h", "hi_h"),
    [("peginterferon-alfa-2a", 72.0, 96.0), ("peginterferon-alfa-2b", 15.0, 44.0)],
)
def test_interferon_single_dose_tmax_in_label_range(name, lo_h, hi_h):
    # Pegasys label: t_max 72-96 h; PegIntron label: 15-44 h [recalled]
    v = PRODUCTS[name].vector()
    t = np.linspace(0.0, 10.0, 24001)
    c = superposition_reference(t, np.array([0.0]), np.array([1.0]), v)
    assert lo_h <= 24.0 * t[np.argmax(c)] <= hi_h


# --- clinical anchors ----------------------------------------------------------------------------


def test_peginterferon_alfa_2a_levels():
    # 180 µg/week: steady-state levels of order 10-30 ng/mL, peak/trough 1.5-2 (label [recalled])
    v = PRODUCTS["peginterferon-alfa-2a"].vector()
    cmax, cmin = peak_trough(0.18, 7.0, v)
    mean = 0.18 / (v[iv.P_VOL] * v[iv.P_KE] * 7.0)
    assert 10e-3 <= cmin < mean < cmax <= 30e-3
    assert 1.4 <= cmax / cmin <= 2.1


def test_peginterferon_alfa_2b_label_trough():
    # PegIntron label: week-4 trough 94 pg/mL at 1.5 µg/kg weekly (70 kg: 105 µg) [recalled]
    _, cmin = peak_trough(0.105, 7.0, PRODUCTS["peginterferon-alfa-2b"].vector())
    assert cmin == pytest.approx(94e-6, rel=0.05)


@pytest.mark.parametrize(
    ("name", "dose_mg"),
    [("peginterferon-alfa-2a", 0.09), ("peginterferon-alfa-2b", 0.05)],
)
def test_peginterferon_mean_effect_in_stated_range(name, dose_mg):
    # SPIRIT 90 µg/week alfa-2a, Nordic 50 µg/week alfa-2b: mean I 0.4-0.7 (module docstring)
    v = PRODUCTS[name].vector()
    mean_i = interval_mean_effect(dose_mg, 7.0, v)
    assert 0.4 <= mean_i <= 0.7
    # and the resolved course averages to it once at steady state (20 weeks)
    t = 19 * 7.0 + np.linspace(0.0, 7.0, 2001)
    c = superposition_reference(t, 7.0 * np.arange(20), np.full(20, dose_mg), v)
    e = effect_reference(c, v)
    assert np.trapezoid(e, t) / 7.0 == pytest.approx(mean_i, rel=1e-4)


@pytest.mark.parametrize(("dose", "tau"), [(240.0, 14.0), (480.0, 28.0)])
def test_nivolumab_occupancy_at_steady_state_trough(dose, tau):
    # Brahmer 2010 [recalled]: plateau occupancy ~72 %, peak ~85 %
    v = PRODUCTS["nivolumab"].vector()
    n = 60  # 60 doses: over 30 half-lives
    c = _conc_after_course(v, dose, tau, n, tau)
    assert c == pytest.approx(peak_trough(dose, tau, v)[1], rel=1e-9)
    assert 0.65 <= effect(c, v) <= 0.85


def test_nivolumab_occupancy_sustained_after_one_dose():
    # Brahmer 2010 [recalled]: occupancy sustained > 2 months after a single dose
    v = PRODUCTS["nivolumab"].vector()
    c = _conc_after_course(v, 240.0, 14.0, 1, 56.0)
    assert effect(c, v) > 0.6
    assert effect(c, v) <= 0.85


def test_vaccine_and_exercise_course_levels():
    vac = PRODUCTS["vaccine"].vector()
    c = _conc_after_course(vac, 1.0, 14.0, 6, 0.0)  # just after the 6th shot
    assert c == pytest.approx(sum(2.0 ** (-k / 2.0) for k in range(6)), rel=1e-13)
    assert 0.5 < effect(c, vac) < 1.0
    ex = PRODUCTS["exercise"].vector()
    mean = interval_mean_effect(1.0, 7.0 / 3.0, ex)
    assert 0.1 < mean < 0.3
    # a 12-week programme fades: 4 weeks after the last session the boost is below 1 % of emax
    c = _conc_after_course(ex, 1.0, 7.0 / 3.0, 36, 28.0)
    assert effect(c, ex) < 0.01 * ex[iv.P_EMAX]


# --- properties --------------------------------------------------------------------------------

_USER_PRODUCTS = [
    make_product("u1", "interferon", ka=0.7, ke=0.7, hill=2.0, **DRUG_KW),
    make_product("u2", "checkpoint", ka=math.inf, ke=0.05, hill=0.6, emax=0.9, **DRUG_KW),
    make_product(
        "u3",
        "vaccine",
        ka=3.0,
        ke=0.1,
        hill=3.0,
        emax=2.5,
        ec50=0.5,
        standard_dose=1.0,
        standard_interval=14.0,
    ),
]
_ALL = [*PRODUCTS.values(), *_USER_PRODUCTS]


@settings(max_examples=80, deadline=None)
@given(
    which=st.integers(0, len(_ALL) - 1),
    times=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8),
    base=st.lists(st.floats(0.0, 5.0), min_size=8, max_size=8),
    extra=st.lists(st.floats(0.0, 5.0), min_size=8, max_size=8),
    t_read=st.floats(0.0, 1.5),
)
def test_drive_monotone_in_dose_and_bounded(which, times, base, extra, t_read):
    """At any fixed time, more drug in every dose never lowers the drive, which stays within
    [0, emax]."""
    p = _ALL[which]
    v = p.vector()
    horizon = 10.0 * p.standard_interval
    dose_times = np.sort(np.array(times)) * horizon
    n = len(dose_times)
    lo = np.array(base[:n]) * p.standard_dose
    hi = lo + np.array(extra[:n]) * p.standard_dose
    t = np.array([t_read * horizon])
    e_lo = effect(_simulate(v, dose_times, lo, t)[0], v)
    e_hi = effect(_simulate(v, dose_times, hi, t)[0], v)
    assert 0.0 <= e_lo <= e_hi * (1.0 + 1e-12)
    assert e_hi <= p.emax
    if p.kind in ("interferon", "checkpoint"):
        assert combine(e_lo, e_hi, p.kind_code) <= 1.0


# --- import ------------------------------------------------------------------------------------


def test_import_does_no_jit_work():
    code = (
        "import sim.therapy.interventions as m\n"
        "names = [n for n in dir(m) if hasattr(getattr(m, n), 'signatures')]\n"
        "assert len(names) >= 6, names\n"
        "assert all(getattr(m, n).signatures == [] for n in names), names\n"
    )
    root = pathlib.Path(iv.__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(root))
