"""Tests of sim.readout: the qPCR measurement model and the EUTOS molecular-response depths.

Statistical tests use fixed seeds (deterministic); each states its statistic and threshold
(p-values > 1e-4, |z| < 5).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from sim import readout as ro
from sim.engines.rng import ReferenceStream, seed_states

P_MIN = 1e-4
Z_MAX = 5.0


def _q(**overrides: float) -> np.ndarray:
    return ro.QPCR.vector(overrides)


def _fixed_abl1(abl1: float, **overrides: float) -> np.ndarray:
    """Parameters with exactly ``abl1`` ABL1 copies in every sample (abl1_sigma = 0)."""
    return _q(abl1_median=abl1, abl1_sigma=0.0, **overrides)


# --------------------------------------------------------------------------------------------
# constants and parameters


def test_levels_codes_and_eutos_thresholds():
    assert ro.MR_LEVELS == {"MMR": 0.1, "MR4": 0.01, "MR4.5": 0.0032, "MR5": 0.001}
    assert (ro.DEPTH_NONE, ro.DEPTH_MMR, ro.DEPTH_MR4, ro.DEPTH_MR45, ro.DEPTH_MR5) == (
        0,
        3,
        4,
        5,
        6,
    )
    assert ro.EUTOS_MIN_ABL1 == {"MR4": 10_000, "MR4.5": 32_000, "MR5": 100_000}
    # at each EUTOS copy number one transcript is at or below the level (MR4.5 uses 32,000,
    # rounded from 10**4.5, not the 31,250 copies at which 100/A = 0.0032)
    for name, need in ro.EUTOS_MIN_ABL1.items():
        assert 100.0 / need <= ro.MR_LEVELS[name]


def test_qpcr_table():
    assert ro.QPCR.names == ("abl1_median", "abl1_sigma", "noise_sd", "conversion")
    q = ro.QPCR.defaults()
    assert q[ro.ABL1_MEDIAN] == 50_000 and q[ro.ABL1_SIGMA] == 0.5
    assert q[ro.NOISE_SD] == 0.3 and q[ro.CONVERSION] == 1.0
    for p in ro.QPCR:
        assert p.meaning and p.source
    for name in ("abl1_median", "abl1_sigma", "noise_sd"):
        assert "assumption" in ro.QPCR[name].source
    with pytest.raises(ValueError, match="outside its bounds"):
        ro.QPCR.vector({"abl1_sigma": -0.1})


@pytest.mark.parametrize(
    ("code", "label"),
    [(0, "none"), (3, "MMR"), (4, "MR4"), (5, "MR4.5"), (6, "MR5")],
)
def test_mr_label(code, label):
    assert ro.mr_label(code) == label
    assert ro.mr_label(np.int64(code)) == label
    if code:
        assert ro.DEPTH_CODES[label] == code


@pytest.mark.parametrize("code", [1, 2, 7, -1])
def test_mr_label_rejects_unknown_codes(code):
    with pytest.raises(ValueError, match="unknown MR depth code"):
        ro.mr_label(code)


# --------------------------------------------------------------------------------------------
# kernel against the plain reference

_Q_VARIANTS = [
    {},
    {"conversion": 2.0},
    {"conversion": 0.4, "noise_sd": 0.0},
    {"abl1_sigma": 0.0, "abl1_median": 8000.0},
    {"abl1_median": 1.0, "abl1_sigma": 3.0},  # exercises the floor of 1 ABL1 copy
]
_LEVELS = [0.0, -1e-12, 1e-6, 1e-4, 0.005, 0.02, 0.1, 1.0, 100.0]


@pytest.mark.parametrize("overrides", _Q_VARIANTS)
def test_measure_matches_reference_bit_for_bit(overrides):
    q = _q(**overrides)
    states = seed_states(31, 40)
    for i, s in enumerate(states):
        for x in [*_LEVELS[i % 3 :: 3], _LEVELS[i % len(_LEVELS)]]:
            s_ref = ReferenceStream(s)
            got = ro.measure(x, q, s)  # advances s
            want = ro.measure_reference(x, q, s_ref)
            assert got == want, (overrides, i, x)
            np.testing.assert_array_equal(s, s_ref.state)


def test_measure_many_uses_one_stream_per_sample():
    x = np.array([0.0, 1e-4, 0.003, 0.02, 0.5, 30.0])
    out = ro.measure_many(x, seed=9)
    assert set(out) == {"true_pct", "measured_pct", "detected", "abl1", "lod_pct", "depth"}
    assert out["depth"].dtype == np.int64
    q = ro.QPCR.defaults()
    for i, s in enumerate(seed_states(9, x.size)):
        m, d, a, lod = ro.measure(x[i], q, s)
        assert (out["measured_pct"][i], out["detected"][i], out["abl1"][i]) == (m, d, a)
        assert out["lod_pct"][i] == lod
        assert out["depth"][i] == ro.mr_depth(m, d, a)
    # sample i does not depend on how many samples are measured together
    head = ro.measure_many(x[:3], seed=9)
    for key in out:
        np.testing.assert_array_equal(head[key], out[key][:3])
    # overrides by name and the vector form agree
    by_name = ro.measure_many(x, {"noise_sd": 0.1}, seed=9)
    by_vec = ro.measure_many(x, _q(noise_sd=0.1), seed=9)
    np.testing.assert_array_equal(by_name["measured_pct"], by_vec["measured_pct"])
    with pytest.raises(ValueError, match="4 entries"):
        ro.measure_many(x, np.ones(3))


def test_measure_edge_inputs():
    q = ro.QPCR.defaults()
    out = ro.measure_many(np.zeros(2000), seed=1)
    assert not out["detected"].any() and not out["measured_pct"].any()
    neg = ro.measure_many(np.full(2000, -1e-9), seed=1)  # solver round-off counts as zero
    np.testing.assert_array_equal(neg["abl1"], out["abl1"])
    assert not neg["detected"].any()
    with pytest.raises(ValueError):
        ro.measure(math.nan, q, seed_states(1, 1)[0])


# --------------------------------------------------------------------------------------------
# distributions


@pytest.mark.parametrize("abl1", [5_000.0, 10_000.0, 30_000.0])
def test_detected_fraction_at_mr4(abl1):
    # At 0.01 % IS with A ABL1 copies, P(detected) = 1 - exp(-A * 1e-4); binomial z-test, |z| < 5.
    n = 40_000
    out = ro.measure_many(np.full(n, 0.01), _fixed_abl1(abl1), seed=int(abl1))
    assert np.all(out["abl1"] == abl1)
    np.testing.assert_allclose(out["lod_pct"], 100.0 / abl1, rtol=0, atol=0)
    p = 1.0 - math.exp(-abl1 * 1e-4)
    frac = out["detected"].mean()
    assert abs(frac - p) / math.sqrt(p * (1 - p) / n) < Z_MAX


@pytest.mark.parametrize(("conversion", "seed"), [(1.0, 3), (2.5, 4)])
def test_noise_free_counts_are_poisson(conversion, seed):
    # Without technical noise, measured * A / (100 c) is the transcript count
    # B ~ Poisson(A x / (100 c)).
    abl1, x, n = 20_000.0, 0.05, 50_000
    out = ro.measure_many(
        np.full(n, x), _fixed_abl1(abl1, noise_sd=0.0, conversion=conversion), seed
    )
    copies = out["measured_pct"] * abl1 / (100.0 * conversion)
    np.testing.assert_allclose(copies, np.round(copies), rtol=0, atol=1e-9)
    copies = np.round(copies).astype(np.int64)
    np.testing.assert_array_equal(out["detected"], (copies > 0).astype(float))
    lam = abl1 * x / (100.0 * conversion)
    # Pearson chi-square against Poisson(lam) on the counts kmin+1..kmax-1 and two tail bins
    # (<= kmin, >= kmax; each with probability about 1e-3): p > 1e-4
    kmin, kmax = (int(k) for k in stats.poisson.ppf([0.001, 0.999], lam))
    observed = np.bincount(np.clip(copies, kmin, kmax) - kmin, minlength=kmax - kmin + 1)
    probs = np.concatenate(
        [
            [stats.poisson.cdf(kmin, lam)],
            stats.poisson.pmf(np.arange(kmin + 1, kmax), lam),
            [stats.poisson.sf(kmax - 1, lam)],
        ]
    )
    assert n * probs.min() >= 5.0
    assert stats.chisquare(observed, n * probs).pvalue > P_MIN


def test_abl1_copies_are_rounded_lognormal():
    out = ro.measure_many(np.zeros(50_000), seed=5)
    a = out["abl1"]
    np.testing.assert_array_equal(a, np.round(a))
    # KS of ln(ABL1) against N(ln 50,000, 0.5); rounding moves ln A by < 1e-4 here. p > 1e-4
    assert a.min() > 1000
    assert stats.kstest(np.log(a), "norm", args=(math.log(5e4), 0.5)).pvalue > P_MIN
    np.testing.assert_array_equal(out["lod_pct"], 100.0 / a)


def test_technical_noise_is_lognormal_with_median_one():
    # A = 1e6 and x = 1 %: B ~ Poisson(1e4), so ln(measured/x) ~ N(0, 0.3^2 + 1e-4) up to the
    # O(1/lam) skew of ln B. KS: p > 1e-4.
    n = 40_000
    out = ro.measure_many(np.full(n, 1.0), _fixed_abl1(1e6), seed=6)
    assert out["detected"].all()
    sd = math.sqrt(0.3**2 + 1e-4)
    assert stats.kstest(np.log(out["measured_pct"]), "norm", args=(0.0, sd)).pvalue > P_MIN


@pytest.mark.parametrize(("conversion", "seed"), [(1.0, 7), (2.0, 8), (0.5, 9)])
def test_measurement_is_unbiased_up_to_the_noise_mean(conversion, seed):
    # E[measured] = x * exp(noise_sd^2 / 2) for any conversion factor; z-test, |z| < 5.
    n, x = 50_000, 0.1
    out = ro.measure_many(np.full(n, x), _q(conversion=conversion), seed=seed)
    m = out["measured_pct"]
    assert abs(m.mean() - x * math.exp(0.3**2 / 2)) / (m.std() / math.sqrt(n)) < Z_MAX
    np.testing.assert_allclose(out["lod_pct"], 100.0 * conversion / out["abl1"], rtol=1e-15)


def test_expected_depth_decreases_over_decades():
    # Mean proven depth over 20,000 samples per level (common random numbers: the same seed for
    # every level), default parameters. The gaps are >= 0.07 depth units; the standard error of
    # each difference is < 0.01.
    levels = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
    means = [ro.measure_many(np.full(20_000, x), seed=12)["depth"].mean() for x in levels]
    assert means[0] > means[1] > means[2] > means[3] > means[4]
    assert means[4] == means[5] == ro.DEPTH_NONE
    assert means[0] > 4.8  # mostly undetectable with 32,000-100,000 ABL1 copies: MR4.5


# --------------------------------------------------------------------------------------------
# EUTOS depth rules


def _up(x: float) -> float:
    return float(np.nextafter(x, np.inf))


def _down(x: float) -> float:
    return float(np.nextafter(x, -np.inf))


_EDGE_CASES = [
    # detected samples count by value, whatever the ABL1 copies
    (50.0, 1.0, 5e4, ro.DEPTH_NONE),
    (_up(0.1), 1.0, 5e4, ro.DEPTH_NONE),
    (0.1, 1.0, 5e4, ro.DEPTH_MMR),
    (_up(0.01), 1.0, 5e4, ro.DEPTH_MMR),
    (0.01, 1.0, 5e4, ro.DEPTH_MR4),
    (_up(0.0032), 1.0, 5e4, ro.DEPTH_MR4),
    (0.0032, 1.0, 5e4, ro.DEPTH_MR45),
    (_up(0.001), 1.0, 5e4, ro.DEPTH_MR45),
    (0.001, 1.0, 5e4, ro.DEPTH_MR5),
    (1e-7, 1.0, 5e4, ro.DEPTH_MR5),
    (0.0005, 1.0, 100.0, ro.DEPTH_MR5),
    (0.05, 1.0, 1e7, ro.DEPTH_MMR),
    # undetectable samples count by ABL1 copies (the measured value is ignored)
    (0.0, 0.0, 0.0, ro.DEPTH_NONE),
    (0.0, 0.0, 1.0, ro.DEPTH_NONE),
    (0.0, 0.0, 999.0, ro.DEPTH_NONE),
    (0.0, 0.0, 1000.0, ro.DEPTH_MMR),
    (0.0, 0.0, 9999.0, ro.DEPTH_MMR),
    (0.0, 0.0, _down(10_000.0), ro.DEPTH_MMR),
    (0.0, 0.0, 10_000.0, ro.DEPTH_MR4),
    (0.0, 0.0, 31_999.0, ro.DEPTH_MR4),
    (0.0, 0.0, 32_000.0, ro.DEPTH_MR45),
    (0.0, 0.0, 99_999.0, ro.DEPTH_MR45),
    (0.0, 0.0, 100_000.0, ro.DEPTH_MR5),
    (0.0, 0.0, 1e7, ro.DEPTH_MR5),
    (7.0, 0.0, 1e5, ro.DEPTH_MR5),
]


@pytest.mark.parametrize(("measured", "detected", "abl1", "depth"), _EDGE_CASES)
def test_eutos_edge_cases(measured, detected, abl1, depth):
    assert ro.mr_depth(measured, detected, abl1) == depth
    assert ro.mr_depth_reference(measured, detected, abl1) == depth


def test_mr_depth_matches_reference_on_all_boundaries():
    values = [0.0, 1e-9, 1e3]
    for level in ro.MR_LEVELS.values():
        values += [_down(level), level, _up(level), 0.5 * level, 2.0 * level]
    copies = [0.0, 1.0, 500.0, 1e8]
    for need in [1000.0, *ro.EUTOS_MIN_ABL1.values()]:
        copies += [need - 1.0, _down(need), need, _up(need), need + 1.0]
    for m in values:
        for d in (0.0, 1.0):
            for a in copies:
                assert ro.mr_depth(m, d, a) == ro.mr_depth_reference(m, d, a), (m, d, a)


def test_positive_sample_can_prove_more_than_an_undetectable_one():
    # Documented property of the EUTOS rules (module docstring): with 20,000 ABL1 copies an
    # undetectable sample proves MR4, while one transcript read with noise 0.5 (0.0025 %) proves
    # MR4.5. Proven depth is therefore not monotone in the true level sample by sample.
    assert ro.mr_depth(0.0, 0.0, 20_000.0) == ro.DEPTH_MR4
    assert ro.mr_depth(100.0 / 20_000.0 * 0.5, 1.0, 20_000.0) == ro.DEPTH_MR45


# --------------------------------------------------------------------------------------------
# properties

_finite = st.floats(0.0, 1e3, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(m1=_finite, m2=_finite, a1=st.floats(0.0, 1e7), a2=st.floats(0.0, 1e7))
def test_depth_is_monotone_in_value_and_in_abl1(m1, m2, a1, a2):
    lo, hi = sorted((m1, m2))
    for a in (a1, a2):  # detected: a higher value never proves a deeper level
        assert ro.mr_depth(lo, 1.0, a) >= ro.mr_depth(hi, 1.0, a)
    lo, hi = sorted((a1, a2))  # undetectable: more ABL1 copies never prove less
    assert ro.mr_depth(m1, 0.0, lo) <= ro.mr_depth(m1, 0.0, hi)


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    x1=st.floats(0.0, 0.015),
    x2=st.floats(0.0, 0.015),
    noise_sd=st.sampled_from([0.0, 0.3, 1.0]),
)
def test_measurement_is_monotone_under_common_random_numbers(seed, x1, x2, noise_sd):
    # With the same stream, ABL1 copies are identical and, while the Poisson mean stays below 10
    # (inversion: one uniform, count monotone in the mean), the transcript count and hence the
    # detection and the reported value are non-decreasing in the true level; between two positive
    # samples the proven depth is non-increasing. (An undetectable sample can prove less than a
    # positive one, see test_positive_sample_can_prove_more_than_an_undetectable_one.)
    lo, hi = sorted((x1, x2))
    q = _q(abl1_sigma=0.3, noise_sd=noise_sd)
    s = seed_states(seed, 1)[0]
    m_lo, d_lo, a_lo, _ = ro.measure(lo, q, s.copy())
    m_hi, d_hi, a_hi, _ = ro.measure(hi, q, s.copy())
    assert a_lo == a_hi
    assume(a_hi * hi / 100.0 < 10.0)
    assert d_lo <= d_hi
    assert m_lo <= m_hi
    if d_lo == 1.0:
        assert ro.mr_depth(m_lo, d_lo, a_lo) >= ro.mr_depth(m_hi, d_hi, a_hi)
