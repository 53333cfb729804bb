"""Tests of the one-compartment PK and the E_max link (sim.therapy.pk).

Kernels are compared with plain references: the textbook Bateman superposition and accumulation
formulas (sim.therapy.pk.*_reference), mpmath at high precision, and scipy.integrate.quad.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import mpmath
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numba import njit
from scipy.integrate import quad

from sim.therapy import pk
from sim.therapy.drugs import DRUGS, KA, KE, make_drug

NAMES = sorted(DRUGS)


def _emax_reference(c, ec50, hill):
    return c**hill / (ec50**hill + c**hill)


def _quad_mean_effect(dose, tau, drug):
    """Mean effect over a steady-state interval by adaptive quadrature (reference)."""
    v = drug.vector()

    def f(t):
        return _emax_reference(pk.steady_state(dose, tau, v, t), drug.ec50, drug.hill)

    # break points graded towards both ends, where a fast rise or fall can be sharp
    pts = sorted(
        {tau * 2.0**-k for k in range(1, 30)} | {tau - tau * 2.0**-k for k in range(2, 30)}
    )
    val, _ = quad(f, 0.0, tau, points=pts, epsabs=0.0, epsrel=1e-13, limit=2000)
    return val / tau


# --- E_max ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("hill", [1.0, 0.5, 2.0, 3.7])
def test_emax_matches_formula(hill):
    for c in np.geomspace(1e-6, 1e3, 50):
        assert pk.emax(c, 0.3, hill) == pytest.approx(_emax_reference(c, 0.3, hill), rel=1e-14)
    assert pk.emax(0.3, 0.3, hill) == 0.5
    assert pk.emax(0.0, 0.3, hill) == 0.0


def test_emax_extremes_do_not_overflow():
    assert pk.emax(1e300, 1e-3, 5.0) == 1.0
    assert pk.emax(1e-300, 1e3, 5.0) == 0.0
    assert pk.emax(-1.0, 1.0, 1.0) == 0.0


# --- closed-form step --------------------------------------------------------------------------


def _bateman_mp(t, ka, ke):
    mpmath.mp.dps = 50
    t, ka, ke = mpmath.mpf(t), mpmath.mpf(ka), mpmath.mpf(ke)
    if ka == ke:
        return ka * t * mpmath.exp(-ka * t)
    return ka * (mpmath.exp(-ke * t) - mpmath.exp(-ka * t)) / (ka - ke)


@pytest.mark.parametrize("rel_gap", [0.0, 1e-14, 1e-10, 1e-6, -1e-8, 1e-2, 3.0, -0.9])
@pytest.mark.parametrize("t", [1e-6, 0.1, 1.0, 30.0])
def test_bateman_exact_near_and_at_ka_equal_ke(rel_gap, t):
    ke = 0.87
    ka = ke * (1.0 + rel_gap)
    expected = float(_bateman_mp(t, ka, ke))
    assert pk.bateman(t, ka, ke) == pytest.approx(expected, rel=1e-13)


def test_bateman_does_not_overflow():
    # e^{-ke t} underflows while e^{(ke-ka) t} would overflow in a naive form
    val = pk.bateman(30.0, 1.0, 1000.0)
    assert math.isfinite(val)
    assert val == pytest.approx(float(_bateman_mp(30.0, 1.0, 1000.0)), rel=1e-12)


def test_advance_limit_is_continuous_in_ka():
    a1, c1 = pk.advance(2.0, 1.0, 0.7, 3.0, 3.0)
    a2, c2 = pk.advance(2.0, 1.0, 0.7, 3.0 * (1 + 1e-9), 3.0)
    assert a1 == pytest.approx(a2, rel=1e-8)
    assert c1 == pytest.approx(c2, rel=1e-8)
    # the limit form: C = C0 e^{-k t} + a0 k t e^{-k t}
    assert c1 == pytest.approx((1.0 + 2.0 * 3.0 * 0.7) * math.exp(-3.0 * 0.7), rel=1e-15)


@settings(max_examples=60, deadline=None)
@given(
    a=st.floats(0.0, 10.0),
    c=st.floats(0.0, 10.0),
    dt1=st.floats(0.0, 5.0),
    dt2=st.floats(0.0, 5.0),
    ka=st.floats(0.05, 100.0),
    ratio=st.one_of(st.just(1.0), st.floats(0.01, 100.0)),
)
def test_advance_is_a_semigroup(a, c, dt1, dt2, ka, ratio):
    ke = ka * ratio
    a1, c1 = pk.advance(a, c, dt1, ka, ke)
    a2, c2 = pk.advance(a1, c1, dt2, ka, ke)
    a3, c3 = pk.advance(a, c, dt1 + dt2, ka, ke)
    assert a2 == pytest.approx(a3, rel=1e-12, abs=1e-300)
    assert c2 == pytest.approx(c3, rel=1e-12, abs=1e-300)
    assert pk.conc_at(a, c, dt1, ka, ke) == c1


@pytest.mark.parametrize("name", NAMES)
def test_daily_dosing_matches_superposition(name):
    """30 days of the standard regimen resolved hourly with advance + dose additions."""
    drug = DRUGS[name]
    v = drug.vector()
    tau, dose = drug.standard_interval, drug.standard_dose
    n_doses = round(30.0 / tau)
    steps_per_dose = round(24 * tau)
    dt = tau / steps_per_dose
    a, c = 0.0, 0.0
    times, conc = [], []
    for k in range(n_doses):
        a += pk.dose_to_gut(dose, v)
        for j in range(1, steps_per_dose + 1):
            a, c = pk.advance(a, c, dt, v[KA], v[KE])
            times.append(k * tau + j * dt)
            conc.append(c)
    times = np.array(times)
    conc = np.array(conc)
    ref = pk.superposition_reference(times, np.arange(n_doses) * tau, np.full(n_doses, dose), v)
    assert np.all(ref > 0.0)
    np.testing.assert_allclose(conc, ref, rtol=1e-12, atol=0.0)
    # and after 30 days the trajectory has reached the closed-form steady state
    last = times > times[-1] - tau
    ss = np.array([pk.steady_state(dose, tau, v, t % tau) for t in times[last]])
    np.testing.assert_allclose(conc[last], ss, rtol=1e-9)


def test_superposition_reference_with_irregular_doses():
    # a single dose is the Bateman curve; a dose in the future contributes nothing
    v = DRUGS["imatinib"].vector()
    t = np.array([0.0, 0.5, 1.0, 2.5])
    got = pk.superposition_reference(t, np.array([0.0, 2.0]), np.array([400.0, 200.0]), v)
    a = pk.dose_to_gut(400.0, v)
    expect = [a * pk.bateman(x, v[KA], v[KE]) for x in t]
    expect[3] += pk.dose_to_gut(200.0, v) * pk.bateman(0.5, v[KA], v[KE])
    np.testing.assert_allclose(got, expect, rtol=1e-13)


# --- steady state ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_steady_state_matches_textbook_accumulation(name):
    drug = DRUGS[name]
    v = drug.vector()
    tau = drug.standard_interval
    t = np.linspace(0.0, tau, 97, endpoint=False)
    got = np.array([pk.steady_state(drug.standard_dose, tau, v, x) for x in t])
    ref = pk.steady_state_reference(drug.standard_dose, tau, v, t)
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    # periodic and continuous at the dose: C(tau) = C(0)
    assert pk.steady_state(drug.standard_dose, tau, v, tau) == pytest.approx(got[0], rel=1e-15)
    assert pk.steady_state(drug.standard_dose, tau, v, 3 * tau + t[5]) == pytest.approx(
        got[5], rel=1e-12
    )


def test_steady_state_near_ka_equal_ke_matches_mpmath():
    mpmath.mp.dps = 50
    for gap in (0.0, 1e-12, 1e-7):
        d = make_drug(
            "x",
            ka=2.0 * (1 + gap),
            ke=2.0,
            volume=50.0,
            ec50=0.1,
            standard_dose=100.0,
            standard_interval=1.0,
        )
        v = d.vector()
        for t in (0.0, 0.3, 0.9):
            # superposition of 200 past doses at high precision (e^{-2*200} is negligible)
            ref = mpmath.fsum(2.0 * float(_bateman_mp(t + n, d.ka, d.ke)) for n in range(200))
            assert pk.steady_state(100.0, 1.0, v, t) == pytest.approx(float(ref), rel=1e-13)


@pytest.mark.parametrize("name", NAMES)
def test_mean_concentration_is_the_interval_average(name):
    drug = DRUGS[name]
    v = drug.vector()
    tau = drug.standard_interval
    auc, _ = quad(lambda t: pk.steady_state(drug.standard_dose, tau, v, t), 0, tau, epsrel=1e-13)
    assert pk.mean_concentration(drug.standard_dose, tau, v) == pytest.approx(auc / tau, rel=1e-11)


@pytest.mark.parametrize("name", NAMES)
def test_peak_trough_are_the_extremes(name):
    drug = DRUGS[name]
    v = drug.vector()
    tau = drug.standard_interval
    t = np.linspace(0.0, tau, 20001)
    c = pk.steady_state_reference(drug.standard_dose, tau, v, t)
    cmax, cmin = pk.peak_trough(drug.standard_dose, tau, v)
    assert cmax >= c.max() * (1 - 1e-14)
    assert cmax == pytest.approx(c.max(), rel=1e-7)
    assert cmin == pytest.approx(c.min(), rel=1e-12)


def test_peak_trough_at_ka_equal_ke():
    base = dict(volume=50.0, ec50=0.1, standard_dose=100.0, standard_interval=1.0)
    exact = pk.peak_trough(100.0, 1.0, make_drug("x", ka=2.0, ke=2.0, **base).vector())
    near = pk.peak_trough(100.0, 1.0, make_drug("x", ka=2.0 * (1 + 1e-9), ke=2.0, **base).vector())
    assert exact == pytest.approx(near, rel=1e-8)
    t = np.linspace(0.0, 1.0, 20001)
    v = make_drug("x", ka=2.0, ke=2.0, **base).vector()
    grid = max(pk.steady_state(100.0, 1.0, v, x) for x in t)
    assert exact[0] == pytest.approx(grid, rel=1e-7)


def test_imatinib_in_iris_ranges():
    # IRIS, imatinib 400 mg daily at steady state:
    #   trough 979 ± 530 ng/mL (day 29; Larson RA et al. Blood 2008;111:4022)
    #   peak 2.6 ± 0.8 µg/mL (Peng B et al. Clin Pharmacokinet 2005;44:879)
    cmax, cmin = pk.peak_trough(400.0, 1.0, DRUGS["imatinib"].vector())
    assert 0.98 - 0.53 <= cmin <= 0.98 + 0.53
    assert 2.6 - 0.8 <= cmax <= 2.6 + 0.8
    # DESIGN.md: CL/F 10 L/h, V/F 250-300 L, ka 0.6/h give peak 2.1-2.2, trough 1.06-1.15
    assert 2.1 <= cmax <= 2.2 and 1.06 <= cmin <= 1.15


def test_dasatinib_trough_near_zero():
    # t½ 3-5 h with once-daily dosing: trough near zero (Levêque 2020)
    cmax, cmin = pk.peak_trough(100.0, 1.0, DRUGS["dasatinib"].vector())
    assert cmin < 0.05 * cmax


def test_nilotinib_400_bid_fluctuation():
    # Tasigna label: 400 mg BID day 15, Cmax ~2.2, Cmin ~1.7 µg/mL (ratio ~0.8)
    cmax, cmin = pk.peak_trough(400.0, 0.5, DRUGS["nilotinib"].vector())
    assert 0.7 <= cmin / cmax <= 0.9
    assert cmax == pytest.approx(2.2, rel=0.02) and cmin == pytest.approx(1.7, rel=0.02)


@pytest.mark.parametrize("tau", [0.0, -1.0])
def test_non_positive_interval_is_an_error(tau):
    v = DRUGS["imatinib"].vector()
    with pytest.raises(ValueError, match="tau must be positive"):
        pk.interval_mean_effect(400.0, tau, v)
    with pytest.raises(ValueError, match="tau must be positive"):
        pk.steady_state(400.0, tau, v, 0.5)
    with pytest.raises(ValueError, match="tau must be positive"):
        pk.peak_trough(400.0, tau, v)


def test_peak_trough_dose_zero():
    assert pk.peak_trough(0.0, 1.0, DRUGS["imatinib"].vector()) == (0.0, 0.0)


# --- interval mean effect and relative effect ----------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fraction", [1e-9, 1e-3, 0.1, 0.25, 0.5, 2.0 / 3.0, 1.0, 2.0, 8.0])
def test_interval_mean_effect_matches_quad(name, fraction):
    drug = DRUGS[name]
    dose = fraction * drug.standard_dose
    got = pk.interval_mean_effect(dose, drug.standard_interval, drug.vector())
    ref = _quad_mean_effect(dose, drug.standard_interval, drug)
    assert got == pytest.approx(ref, rel=1e-10)


@settings(max_examples=40, deadline=None)
@given(
    ka=st.floats(0.1, 200.0),
    ke_ratio=st.one_of(st.just(1.0), st.floats(0.01, 50.0)),
    volume=st.floats(10.0, 3000.0),
    ec50=st.floats(1e-3, 5.0),
    hill=st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0]),
    tau=st.sampled_from([1.0 / 3.0, 0.5, 1.0, 7.0]),
    dose=st.floats(1e-3, 2000.0),
)
# found by hypothesis: a trough of ~1e-310 made the first panel length overflow tau / w
@example(ka=102.0, ke_ratio=1.0, volume=10.0, ec50=1.0, hill=0.5, tau=7.0, dose=1.0)
def test_interval_mean_effect_matches_quad_for_user_drugs(
    ka, ke_ratio, volume, ec50, hill, tau, dose
):
    drug = make_drug(
        "user",
        ka=ka,
        ke=ka * ke_ratio,
        volume=volume,
        ec50=ec50,
        hill=hill,
        standard_dose=100.0,
        standard_interval=1.0,
    )
    got = pk.interval_mean_effect(dose, tau, drug.vector())
    ref = _quad_mean_effect(dose, tau, drug)
    assert got == pytest.approx(ref, rel=1e-10, abs=1e-300)


@pytest.mark.parametrize("name", NAMES)
def test_relative_effect_is_one_at_standard_dose(name):
    drug = DRUGS[name]
    v = drug.vector()
    assert pk.relative_effect(drug.standard_dose, drug.standard_interval, v) == pytest.approx(
        1.0, abs=1e-12
    )
    assert pk.relative_effect(0.0, drug.standard_interval, v) == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_relative_effect_limits(name):
    drug = DRUGS[name]
    v = drug.vector()
    tau = drug.standard_interval
    g_std = pk.standard_effect(v)
    # small doses: g ~ C/EC50 (h = 1), so u ~ mean(C)/(EC50 g_std), linear in the dose
    small = 1e-7 * drug.standard_dose
    linear = pk.mean_concentration(small, tau, v) / drug.ec50 / g_std
    assert pk.relative_effect(small, tau, v) == pytest.approx(linear, rel=1e-5)
    # saturation: never above 1/g_std
    assert pk.relative_effect(1e6 * drug.standard_dose, tau, v) <= 1.0 / g_std
    assert pk.relative_effect(1e6 * drug.standard_dose, tau, v) == pytest.approx(
        1.0 / g_std, rel=1e-3
    )
    # DESTINY half dose keeps most of the effect (saturating link, C_ref/EC50 >= 4)
    assert pk.relative_effect(0.5 * drug.standard_dose, tau, v) >= 0.8


_MONOTONE_TOL = 1e-13  # relative: the quadrature mesh is refined at isolated doses (rounding)


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(NAMES),
    f1=st.floats(0.0, 10.0),
    f2=st.floats(0.0, 10.0),
    tau_factor=st.sampled_from([0.5, 1.0, 2.0]),
)
def test_relative_effect_monotone_in_dose_shipped(name, f1, f2, tau_factor):
    drug = DRUGS[name]
    v = drug.vector()
    tau = tau_factor * drug.standard_interval
    lo, hi = sorted((f1 * drug.standard_dose, f2 * drug.standard_dose))
    u_lo = pk.relative_effect(lo, tau, v)
    u_hi = pk.relative_effect(hi, tau, v)
    assert u_lo <= u_hi * (1.0 + _MONOTONE_TOL)


@settings(max_examples=60, deadline=None)
@given(
    ka=st.floats(0.1, 200.0),
    ke=st.floats(0.05, 50.0),
    ec50=st.floats(1e-3, 5.0),
    hill=st.floats(0.3, 4.0),
    tau=st.floats(0.1, 7.0),
    d1=st.floats(0.0, 1000.0),
    d2=st.floats(0.0, 1000.0),
)
def test_relative_effect_monotone_in_dose_user(ka, ke, ec50, hill, tau, d1, d2):
    drug = make_drug(
        "user",
        ka=ka,
        ke=ke,
        volume=200.0,
        ec50=ec50,
        hill=hill,
        standard_dose=100.0,
        standard_interval=1.0,
    )
    v = drug.vector()
    lo, hi = sorted((d1, d2))
    assert pk.relative_effect(lo, tau, v) <= pk.relative_effect(hi, tau, v) * (1.0 + _MONOTONE_TOL)


def test_relative_effect_strictly_increases_on_a_dose_grid():
    for drug in DRUGS.values():
        v = drug.vector()
        u = [
            pk.relative_effect(f * drug.standard_dose, drug.standard_interval, v)
            for f in np.linspace(0.0, 3.0, 61)
        ]
        assert np.all(np.diff(u) > 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_daily_mode_averages_to_interval_mode(name):
    """emax(C(t)) of a resolved trajectory, averaged over the last interval of 30 days of
    dosing and divided by standard_effect, is the interval-mode drive u = 1."""
    drug = DRUGS[name]
    v = drug.vector()
    tau, dose = drug.standard_interval, drug.standard_dose
    n = round(30.0 / tau)
    a, c = 0.0, 0.0
    for _ in range(n - 1):
        a, c = pk.advance(a + pk.dose_to_gut(dose, v), c, tau, v[KA], v[KE])
    a += pk.dose_to_gut(dose, v)
    # Gauss-Legendre on 64 panels over the last interval, state advanced exactly to each node
    x, w = np.polynomial.legendre.leggauss(20)
    edges = np.linspace(0.0, tau, 65)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        nodes = 0.5 * (lo + hi) + 0.5 * (hi - lo) * x
        g = [pk.emax(pk.conc_at(a, c, s, v[KA], v[KE]), drug.ec50, drug.hill) for s in nodes]
        total += 0.5 * (hi - lo) * np.dot(w, g)
    assert total / tau / pk.standard_effect(v) == pytest.approx(1.0, rel=1e-9)


# --- kernel hygiene -----------------------------------------------------------------------------


def test_kernels_are_callable_from_njit():
    @njit
    def drive(dose, tau, vec, a, c, dt):
        _, c2 = pk.advance(a, c, dt, vec[KA], vec[KE])
        return pk.relative_effect(dose, tau, vec) + c2 + pk.steady_state(dose, tau, vec, 0.1)

    v = DRUGS["imatinib"].vector()
    expected = (
        pk.relative_effect(200.0, 1.0, v)
        + pk.advance(1.0, 0.5, 0.3, v[KA], v[KE])[1]
        + pk.steady_state(200.0, 1.0, v, 0.1)
    )
    assert drive(200.0, 1.0, v, 1.0, 0.5, 0.3) == pytest.approx(expected, rel=1e-15)


def test_no_jit_work_at_import():
    code = (
        "import sim.therapy.pk as pk, sim.therapy.drugs\n"
        "names = [n for n in dir(pk) if hasattr(getattr(pk, n), 'signatures')]\n"
        "assert len(names) >= 8, names\n"
        "assert all(getattr(pk, n).signatures == [] for n in names), names\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=_repo_root())


def _repo_root():
    import pathlib

    return str(pathlib.Path(pk.__file__).resolve().parents[2])


_EXTREME = """\
import math
from sim.therapy import pk
from sim.therapy.drugs import DRUGS, HILL, KA, KE

v = DRUGS["imatinib"].vector()
steep = v.copy()
steep[HILL] = 1e300
fast = v.copy()
fast[KA] = 1e300 * 24.0
fast[KE] = math.log(2.0) / 1e-300 * 24.0
for dose, tau, vec in [(400.0, 365.25e6, v), (400.0, 365.25e12, v), (400.0, 1.0, steep),
                       (100.0, 1.0, fast)]:
    u = pk.relative_effect(dose, tau, vec)
    assert 0.0 <= u <= 1.0, u
print("done")
"""


def test_relative_effect_finishes_for_drugs_far_outside_the_limits():
    # an interval of a million years, a Hill coefficient of 1e300 and half-lives of 1e-300 h once
    # kept the quadrature going for good (a jitted loop: only a separate process can be timed out)
    out = subprocess.run(
        [sys.executable, "-c", _EXTREME], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "done"


def test_relative_effect_is_nan_without_a_standard_effect():
    v = DRUGS["imatinib"].vector().copy()
    v[pk.EC50] = 1e300  # no concentration reaches it: g underflows to 0 at the standard dose
    v[pk.HILL] = 10.0
    assert math.isnan(pk.relative_effect(400.0, 1.0, v))
