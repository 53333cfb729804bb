"""Tests of sim.engines.rng: xoshiro256** against its published outputs and a plain-Python
reference, and the deviates against theory.

Statistical tests use fixed seeds, so they are deterministic; each states its statistic and
threshold. P-value thresholds of 1e-4 mean that a correct generator would fail a given test for
about one seed in 10,000, while the sample sizes give power against errors of a few tenths of a
percent in the mean (checked for the chi-square helper in ``test_chi_square_helper_has_power``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit
from scipy import stats

from sim.engines import rng

P_MIN = 1e-4  # smallest acceptable p-value of a goodness-of-fit test
Z_MAX = 5.0  # largest acceptable |z| of a mean or variance


@njit
def _uniforms(s, n):
    out = np.empty(n)
    for i in range(n):
        out[i] = rng.uniform(s)
    return out


@njit
def _normals(s, n):
    out = np.empty(n)
    for i in range(n):
        out[i] = rng.normal(s)
    return out


@njit
def _lognormals(s, mu, sigma, n):
    out = np.empty(n)
    for i in range(n):
        out[i] = rng.lognormal(s, mu, sigma)
    return out


@njit
def _poissons(s, lam, n):
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = rng.poisson(s, lam)
    return out


def _state(seed: int) -> np.ndarray:
    return rng.seed_states(seed, 1)[0].copy()


# --------------------------------------------------------------------------------------------
# generator


def test_published_outputs_from_state_1234():
    # First outputs of the reference C code (prng.di.unimi.it/xoshiro256starstar.c) from the
    # state {1, 2, 3, 4}, as used in the test suites of rand_xoshiro and other ports.
    expected = [
        11520,
        0,
        1509978240,
        1215971899390074240,
        1216172134540287360,
        607988272756665600,
        16172922978634559625,
        8476171486693032832,
        10595114339597558777,
        2904607092377533576,
    ]
    s = np.array([1, 2, 3, 4], dtype=np.uint64)
    assert [int(rng.next_u64(s)) for _ in expected] == expected
    ref = rng.ReferenceStream([1, 2, 3, 4])
    assert [ref.next_u64() for _ in expected] == expected


@pytest.mark.parametrize(
    "state",
    [
        rng.seed_states(0, 1)[0],
        rng.seed_states(1, 1)[0],
        rng.seed_states(20261125, 3)[2],
        # high bits set everywhere: exercises the 64-bit wrap-around of 5*s1 and of *9
        np.array([2**64 - 1, 2**63, 2**63 + 12345, 0x9E3779B97F4A7C15], dtype=np.uint64),
        np.array([0, 0, 0, 1], dtype=np.uint64),
    ],
)
def test_kernels_match_reference_bit_for_bit(state):
    s = np.array(state, dtype=np.uint64)
    ref = rng.ReferenceStream(s)
    got = [int(rng.next_u64(s)) for _ in range(300)]
    want = [ref.next_u64() for _ in range(300)]
    assert got == want
    lams = [0.0, 1e-3, 0.3, 4.0, 9.999999, 10.0, 15.0, 250.0, 1e5, 1e7]
    got = (
        [rng.uniform(s) for _ in range(200)]
        + [rng.normal(s) for _ in range(200)]
        + [rng.lognormal(s, 1.5, 0.7) for _ in range(50)]
        + [int(rng.poisson(s, lam)) for lam in lams * 40]
    )
    want = (
        [ref.uniform() for _ in range(200)]
        + [ref.normal() for _ in range(200)]
        + [ref.lognormal(1.5, 0.7) for _ in range(50)]
        + [ref.poisson(lam) for lam in lams * 40]
    )
    assert got == want  # exact equality of floats: same operations, same rounding
    assert np.array_equal(s, ref.state)


def test_reference_rejects_zero_state():
    with pytest.raises(ValueError, match="not all zero"):
        rng.ReferenceStream([0, 0, 0, 0])


@pytest.mark.parametrize("seed", [0, 1, 20261125, 2**32 - 1, 2**32, 2**128 + 5, 2**200 + 3])
def test_seed_states_equal_seed_sequence_children(seed):
    # seed_states evaluates SeedSequence's hash for all children at once; it must give exactly
    # SeedSequence(seed).spawn(n)[i].generate_state(4, np.uint64), also for seeds longer than the
    # 128-bit pool.
    n = 40
    want = [c.generate_state(4, np.uint64) for c in np.random.SeedSequence(seed).spawn(n)]
    np.testing.assert_array_equal(rng.seed_states(seed, n), np.array(want))


def test_seed_states_layout_and_independence_of_stream_count():
    a = rng.seed_states(42, 8)
    assert a.shape == (8, 4) and a.dtype == np.uint64 and a.flags.c_contiguous
    b = rng.seed_states(42, 3)
    np.testing.assert_array_equal(a[:3], b)  # stream i depends on (seed, i) only
    few = rng._FEW_STREAMS  # a few streams come from SeedSequence itself, more from the hash
    np.testing.assert_array_equal(rng.seed_states(42, few + 1)[:few], rng.seed_states(42, few))
    children = np.random.SeedSequence(42).spawn(8)
    np.testing.assert_array_equal(a[5], children[5].generate_state(4, np.uint64))
    assert len({tuple(row) for row in a.tolist()}) == 8
    assert all(row.any() for row in a)
    assert not np.array_equal(rng.seed_states(43, 1), a[:1])
    assert rng.seed_states(1, 0).shape == (0, 4)
    with pytest.raises(ValueError, match="non-negative"):
        rng.seed_states(-1, 2)


def test_streams_from_neighbouring_children_are_uncorrelated():
    # Pearson correlation of 50,000 uniforms from streams 0 and 1; under independence
    # r * sqrt(n) ~ N(0, 1); threshold |z| < 5.
    s = rng.seed_states(7, 2)
    u0, u1 = _uniforms(s[0], 50_000), _uniforms(s[1], 50_000)
    r = np.corrcoef(u0, u1)[0, 1]
    assert abs(r) * math.sqrt(50_000) < Z_MAX


# --------------------------------------------------------------------------------------------
# continuous deviates


def test_uniform_range_resolution_and_distribution():
    u = _uniforms(_state(11), 200_000)
    assert u.min() >= 0.0 and u.max() < 1.0
    scaled = u * 2.0**53
    np.testing.assert_array_equal(scaled, np.floor(scaled))  # on the 2**-53 grid
    # Kolmogorov–Smirnov against U(0, 1): p > 1e-4.
    assert stats.kstest(u, "uniform").pvalue > P_MIN
    # the low bits are used too: fraction of odd multiples of 2**-53 (z-test, |z| < 5)
    odd = np.mod(scaled, 2.0).mean()
    assert abs(odd - 0.5) / math.sqrt(0.25 / u.size) < Z_MAX


def test_normal_distribution():
    z = _normals(_state(12), 200_000)
    # Kolmogorov–Smirnov against N(0, 1): p > 1e-4.
    assert stats.kstest(z, "norm").pvalue > P_MIN
    n = z.size
    assert abs(z.mean()) / math.sqrt(1.0 / n) < Z_MAX
    assert abs(z.var() - 1.0) / math.sqrt(2.0 / n) < Z_MAX  # Var(s^2) = 2/n for N(0, 1)


def test_lognormal_parameters_are_those_of_the_log():
    x = _lognormals(_state(13), math.log(5e4), 0.5, 100_000)
    # KS of log(x) against N(ln 5e4, 0.5): p > 1e-4.
    assert stats.kstest(np.log(x), "norm", args=(math.log(5e4), 0.5)).pvalue > P_MIN


# --------------------------------------------------------------------------------------------
# Poisson


def _chi_square_poisson(x: np.ndarray, lam: float, nbins: int = 40) -> tuple[float, int, float]:
    """Pearson chi-square of integer samples against Poisson(lam) on ~equiprobable bins.

    Bins are (-inf, e_0], (e_0, e_1], ..., (e_last, inf) with e_j the Poisson quantiles at
    j/nbins (duplicates merged); returns (statistic, degrees of freedom, p-value).
    """
    edges = np.unique(stats.poisson.ppf(np.linspace(0, 1, nbins + 1)[1:-1], lam))
    observed = np.bincount(np.searchsorted(edges, x, side="left"), minlength=edges.size + 1)
    probs = np.diff(np.concatenate([[0.0], stats.poisson.cdf(edges, lam), [1.0]]))
    expected = x.size * probs
    assert expected.min() >= 5.0, "bins too sparse for the chi-square approximation"
    stat = float(((observed - expected) ** 2 / expected).sum())
    dof = probs.size - 1
    return stat, dof, float(stats.chi2.sf(stat, dof))


@pytest.mark.parametrize(
    ("lam", "seed"),
    [(0.3, 101), (4.0, 102), (9.999, 103), (10.0, 104), (15.0, 105), (250.0, 106), (1e5, 107)],
)
def test_poisson_against_theory(lam, seed):
    n = 200_000
    x = _poissons(_state(seed), lam, n)
    assert x.min() >= 0
    # mean: z = (mean - lam) / sqrt(lam/n), |z| < 5
    assert abs(x.mean() - lam) / math.sqrt(lam / n) < Z_MAX
    # variance: Var(s^2) ~ (mu4 - sigma^4)/n = (lam + 2 lam^2)/n for Poisson; |z| < 5
    assert abs(x.var(ddof=1) - lam) / math.sqrt((lam + 2.0 * lam**2) / n) < Z_MAX
    # Pearson chi-square against scipy.stats.poisson on ~40 equiprobable bins: p > 1e-4
    _, dof, p = _chi_square_poisson(x, lam)
    assert dof >= 3
    assert p > P_MIN


def test_chi_square_helper_has_power():
    # The same test rejects Poisson(1.01 lam) at n = 200,000 (non-centrality ~ 80).
    x = np.random.default_rng(0).poisson(1.01 * 250.0, 200_000)
    assert _chi_square_poisson(x, 250.0)[2] < P_MIN
    x = np.random.default_rng(0).poisson(250.0, 200_000)  # and accepts the true law
    assert _chi_square_poisson(x, 250.0)[2] > P_MIN


def test_poisson_huge_mean():
    lam, n = 1e7, 20_000
    x = _poissons(_state(108), lam, n)
    assert abs(x.mean() - lam) / math.sqrt(lam / n) < Z_MAX
    assert abs(x.var(ddof=1) - lam) / math.sqrt((lam + 2.0 * lam**2) / n) < Z_MAX


def test_poisson_zero_mean_consumes_nothing():
    s = _state(5)
    before = s.copy()
    assert rng.poisson(s, 0.0) == 0
    np.testing.assert_array_equal(s, before)


@pytest.mark.parametrize("lam", [-1.0, -1e-300, math.nan, math.inf])
def test_poisson_rejects_invalid_mean(lam):
    with pytest.raises(ValueError, match="finite and >= 0"):
        rng.poisson(_state(5), lam)
    with pytest.raises(ValueError, match="finite and >= 0"):
        rng.ReferenceStream(_state(5)).poisson(lam)


@pytest.mark.parametrize("lam", [-1.0, -1e-300, math.nan, math.inf])
def test_poisson_inline_flags_an_invalid_mean_and_consumes_nothing(lam):
    s = _state(5)
    before = s.copy()
    assert rng.poisson_inline(s, lam) == -1
    np.testing.assert_array_equal(s, before)


def test_poisson_inline_gives_the_deviates_of_poisson():
    """The kernels' inlined form draws the same counts from the same stream, over both
    algorithms (inversion below 10, PTRS above)."""
    lams = [0.0, 1e-9, 0.3, 3.0, 9.999, 10.0, 37.5, 1e3, 1e6]
    a, b = _state(77), _state(77)
    for lam in lams * 50:
        assert rng.poisson_inline(a, lam) == rng.poisson(b, lam)
    np.testing.assert_array_equal(a, b)


def test_loggam_matches_lgamma():
    xs = np.concatenate([np.arange(1.0, 1001.0), [1.5, 2.5, 6.99, 7.0, 7.01, 1e6 + 1.0, 1e12]])
    for x in xs:
        want = math.lgamma(x)
        assert abs(rng.loggam(x) - want) <= 1e-14 * max(1.0, abs(want)) + 1e-14, x


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    lam1=st.floats(0.0, 9.999),
    lam2=st.floats(0.0, 9.999),
)
def test_poisson_inversion_is_monotone_under_common_random_numbers(seed, lam1, lam2):
    # Below 10 a count is the inverse CDF at one uniform, and F_lam(k) decreases in lam, so the
    # same stream gives a count non-decreasing in lam.
    lo, hi = sorted((lam1, lam2))
    s = _state(seed)
    assert rng.poisson(s.copy(), lo) <= rng.poisson(s.copy(), hi)
    s_lo, s_hi = s.copy(), s.copy()
    rng.poisson(s_lo, lo)
    rng.poisson(s_hi, hi)
    if lo > 0.0:  # one uniform each, so the streams stay in step
        np.testing.assert_array_equal(s_lo, s_hi)
