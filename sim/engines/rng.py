r"""Random numbers for numba kernels: xoshiro256** with explicit state arrays.

A stream is a ``uint64[4]`` array that the functions here advance in place; there is no hidden or
global state (no cached second normal deviate either), so copying the array copies the stream and a
kernel that receives ``states[i]`` owns stream ``i``. The functions allocate nothing.

Generator
    xoshiro256** (Blackman & Vigna 2018; 2021): 256 bits of state, period :math:`2^{256} - 1`,
    output :math:`\operatorname{rotl}(5 s_1, 7) \cdot 9` followed by the linear xorshift update
    of the state. The state must never be all zero.
Seeding
    :func:`seed_states` takes child ``i`` of ``np.random.SeedSequence(seed).spawn(n)`` for stream
    ``i``. A child's entropy depends only on ``(seed, i)`` (its ``spawn_key`` is ``(i,)``), not on
    ``n`` or on how streams are later shared among threads or worker processes, so a simulation that
    gives patient ``i`` stream ``i`` is reproducible for any thread or worker count.
Uniform
    :math:`U = \lfloor x / 2^{11} \rfloor \, 2^{-53}` from the 53 upper bits, in :math:`[0, 1)`.
Normal
    Marsaglia's polar form of the Box–Muller transform (Marsaglia & Bray 1964); the second
    deviate of each pair is discarded so that the state array is the whole state.
Poisson
    Sequential-search inversion for :math:`\lambda < 10` (one uniform per draw, so under common
    random numbers the count is non-decreasing in :math:`\lambda`); for :math:`\lambda \ge 10` the
    transformed rejection method with squeeze PTRS (Hörmann 1993), in the form NumPy's legacy and
    ``Generator`` Poisson samplers use, including NumPy's Stirling-series log-gamma.

A plain-Python reference (:class:`ReferenceStream`, Python integers masked to 64 bits) implements
the same algorithms operation by operation; the tests check that it and the kernels agree bit for
bit.

References
----------
D. Blackman, S. Vigna. Scrambled linear pseudorandom number generators. ACM Trans Math Softw
2021;47(4):36 (preprint arXiv:1805.01407, 2018); reference code https://prng.di.unimi.it/.
G. Marsaglia, T. A. Bray. A convenient method for generating normal variables. SIAM Rev
1964;6:260–264.
W. Hörmann. The transformed rejection method for generating Poisson random variables.
Insurance Math Econom 1993;12:39–45.
L. Devroye. Non-Uniform Random Variate Generation. Springer 1986, section X.3 (inversion).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_MASK = (1 << 64) - 1
_U5 = np.uint64(5)
_U7 = np.uint64(7)
_U9 = np.uint64(9)
_U11 = np.uint64(11)
_U17 = np.uint64(17)
_U45 = np.uint64(45)
_U64 = np.uint64(64)
#: :math:`2^{-53}`, the spacing of the uniform deviates.
TWO_POW_M53 = 1.0 / 9007199254740992.0
#: Below this mean, Poisson deviates come from inversion; from it on, from PTRS.
POISSON_INVERSION_MAX = 10.0
_LOG_2PI = 1.8378770664093453


def seed_states(seed: int, n: int) -> np.ndarray:
    """Independent xoshiro256** states for ``n`` streams.

    Parameters
    ----------
    seed : int
        Non-negative master seed (a scenario's ``seed``).
    n : int
        Number of streams, at most :math:`2^{32}`.

    Returns
    -------
    numpy.ndarray
        ``(n, 4)`` C-contiguous ``uint64`` array; row ``i`` equals
        ``np.random.SeedSequence(seed).spawn(n)[i].generate_state(4, np.uint64)``.

    Notes
    -----
    Row ``i`` depends only on ``(seed, i)``: ``seed_states(seed, m)[i]`` equals
    ``seed_states(seed, n)[i]`` for all ``i < min(m, n)``. Giving each patient (or replicate)
    its own row therefore makes results independent of the number of threads or worker
    processes. SeedSequence hashing (O'Neill 2015, as in NumPy) decorrelates neighbouring seeds
    and children.

    Building ``n`` SeedSequence objects one by one is slow for large ``n``, so the same hash is
    evaluated here for all children at once with NumPy ``uint32`` arrays (NumPy's
    ``bit_generator.pyx``: ``mix_entropy`` on the entropy words of ``seed`` padded to the pool size
    of 4, followed by the spawn key ``i``, then ``generate_state``); a test checks equality with
    SeedSequence. An all-zero state (probability :math:`2^{-256}`), which xoshiro cannot leave,
    is replaced by a fixed non-zero word.
    """
    seed = int(seed)
    n = int(n)
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, found {seed}")
    if not 0 <= n <= 2**32:
        raise ValueError(f"number of streams must be in [0, 2**32], found {n}")
    if n <= _FEW_STREAMS:  # NumPy's own SeedSequence is faster for a few
        children = np.random.SeedSequence(seed).spawn(n)
        states = np.empty((n, 4), dtype=np.uint64)
        for i, child in enumerate(children):
            states[i] = child.generate_state(4, np.uint64)
    else:
        words = _spawned_state_words(seed, n)
        # uint64 word j = (word 2j+1 << 32) | word 2j, as generate_state's little-endian view
        states = ((words[1::2].astype(np.uint64) << np.uint64(32)) | words[0::2]).T.copy()
    zero = ~states.any(axis=1)
    states[zero, 0] = np.uint64(0x9E3779B97F4A7C15)
    return states


#: Up to this many streams, :func:`seed_states` asks SeedSequence itself (same rows).
_FEW_STREAMS = 16

# SeedSequence constants (NumPy numpy/random/bit_generator.pyx, after O'Neill's seed_seq_fe).
_SS_POOL = 4
_SS_INIT_A = 0x43B0D7E5
_SS_MULT_A = 0x931E8875
_SS_INIT_B = 0x8B51F9DD
_SS_MULT_B = 0x58F38DED
_SS_MIX_L = np.uint32(0xCA01F9DD)
_SS_MIX_R = np.uint32(0x4973F715)
_SS_SHIFT = np.uint32(16)


def _spawned_state_words(seed: int, n: int) -> np.ndarray:
    """``generate_state(8, np.uint32)`` of children ``0..n-1`` of ``SeedSequence(seed)``, (8, n)."""
    run = []
    while seed > 0:
        run.append(seed & 0xFFFFFFFF)
        seed >>= 32
    run = run or [0]
    run += [0] * (_SS_POOL - len(run))  # spawned children pad the run entropy to the pool size
    entropy = [np.full(n, w, dtype=np.uint32) for w in run]
    entropy.append(np.arange(n, dtype=np.uint64).astype(np.uint32))  # spawn key (i,)

    hash_const = _SS_INIT_A

    def hashmix(value: np.ndarray) -> np.ndarray:
        nonlocal hash_const
        value = value ^ np.uint32(hash_const)
        hash_const = (hash_const * _SS_MULT_A) & 0xFFFFFFFF
        value = value * np.uint32(hash_const)
        return value ^ (value >> _SS_SHIFT)

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        r = _SS_MIX_L * x - _SS_MIX_R * y
        return r ^ (r >> _SS_SHIFT)

    pool = [hashmix(entropy[k]) for k in range(_SS_POOL)]
    for src in range(_SS_POOL):
        for dst in range(_SS_POOL):
            if src != dst:
                pool[dst] = mix(pool[dst], hashmix(pool[src]))
    for src in range(_SS_POOL, len(entropy)):
        for dst in range(_SS_POOL):
            pool[dst] = mix(pool[dst], hashmix(entropy[src]))

    out = np.empty((8, n), dtype=np.uint32)
    hash_const = _SS_INIT_B
    for k in range(8):
        value = pool[k % _SS_POOL] ^ np.uint32(hash_const)
        hash_const = (hash_const * _SS_MULT_B) & 0xFFFFFFFF
        value = value * np.uint32(hash_const)
        out[k] = value ^ (value >> _SS_SHIFT)
    return out


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << k) | (x >> (_U64 - k))


@njit(cache=True, inline="always")
def next_u64(s):
    r"""Next 64-bit output of xoshiro256** (Blackman & Vigna 2018); advances ``s`` in place.

    Parameters
    ----------
    s : numpy.ndarray
        ``uint64[4]`` state, not all zero.

    Returns
    -------
    numpy.uint64
        :math:`\operatorname{rotl}(5 s_1, 7) \cdot 9` (mod :math:`2^{64}`) of the state before
        the update.
    """
    result = _rotl(s[1] * _U5, _U7) * _U9
    t = s[1] << _U17
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], _U45)
    return result


@njit(cache=True, inline="always")
def uniform(s):
    """Uniform deviate in [0, 1) with 53 random bits: ``(next_u64(s) >> 11) * 2**-53``."""
    return np.float64(next_u64(s) >> _U11) * TWO_POW_M53


@njit(cache=True)
def normal(s):
    r"""Standard normal deviate by the polar Box–Muller method (Marsaglia & Bray 1964).

    Draw :math:`x, y` uniform on :math:`(-1, 1)` until :math:`0 < r^2 = x^2 + y^2 < 1` and return
    :math:`x \sqrt{-2 \ln r^2 / r^2}`. The second deviate :math:`y \sqrt{\cdot}` is discarded so
    that no value is cached outside the state array. On average :math:`8/\pi \approx 2.55`
    uniforms per deviate.
    """
    while True:
        x = 2.0 * uniform(s) - 1.0
        y = 2.0 * uniform(s) - 1.0
        r2 = x * x + y * y
        if r2 < 1.0 and r2 > 0.0:
            return x * math.sqrt(-2.0 * math.log(r2) / r2)


@njit(cache=True)
def lognormal(s, mu, sigma):
    r"""Lognormal deviate :math:`\exp(\mu + \sigma Z)`, :math:`Z` from :func:`normal`.

    ``mu`` and ``sigma`` are the mean and standard deviation of the logarithm; the median is
    :math:`e^{\mu}`.
    """
    return math.exp(mu + sigma * normal(s))


@njit(cache=True)
def loggam(x):
    r""":math:`\ln \Gamma(x)` for :math:`x \ge 1` as in NumPy's ``random_loggam``.

    Stirling series with ten terms at :math:`x_0 = x + n \ge 7`, then the recursion
    :math:`\ln\Gamma(x) = \ln\Gamma(x + n) - \sum_{j=1}^{n} \ln(x + n - j)`; exact 0 at 1 and 2.
    Used by PTRS for :math:`\ln k!` (Hörmann 1993). Written with plain arithmetic so that the
    Python reference (which calls ``loggam.py_func``) and the kernel round identically.
    """
    if x == 1.0 or x == 2.0:
        return 0.0
    n = 0
    if x < 7.0:
        n = int(7.0 - x)
    x0 = x + n
    x2 = (1.0 / x0) * (1.0 / x0)
    gl0 = -1.39243221690590e00
    gl0 = gl0 * x2 + 1.796443723688307e-01
    gl0 = gl0 * x2 - 2.955065359477124e-02
    gl0 = gl0 * x2 + 6.410256410256410e-03
    gl0 = gl0 * x2 - 1.917526917526918e-03
    gl0 = gl0 * x2 + 8.417508417508418e-04
    gl0 = gl0 * x2 - 5.952380952380952e-04
    gl0 = gl0 * x2 + 7.936507936507937e-04
    gl0 = gl0 * x2 - 2.777777777777778e-03
    gl0 = gl0 * x2 + 8.333333333333333e-02
    gl = gl0 / x0 + 0.5 * _LOG_2PI + (x0 - 0.5) * math.log(x0) - x0
    for _ in range(n):
        gl -= math.log(x0 - 1.0)
        x0 -= 1.0
    return gl


@njit(cache=True, error_model="numpy")
def poisson(s, lam):
    r"""Poisson deviate with mean ``lam``, exact for :math:`0 \le \lambda \le 10^7` (tested range).

    Algorithms
        * :math:`\lambda = 0`: 0 without consuming random numbers.
        * :math:`0 < \lambda < 10`: sequential-search inversion (Devroye 1986, X.3): one uniform
          :math:`U`, return the least :math:`k` with :math:`F_\lambda(k) \ge U`, building
          :math:`p_k = p_{k-1} \lambda / k` from :math:`p_0 = e^{-\lambda}`. Because
          :math:`F_\lambda(k)` decreases in :math:`\lambda`, the count is monotone in
          :math:`\lambda` for a fixed stream (common random numbers).
        * :math:`\lambda \ge 10`: PTRS, transformed rejection with squeeze (Hörmann 1993), with
          :math:`b = 0.931 + 2.53\sqrt\lambda`, :math:`a = -0.059 + 0.02483 b`,
          :math:`1/\alpha = 1.1239 + 1.1328/(b - 3.4)`, :math:`v_r = 0.9277 - 3.6224/(b - 2)`;
          each trial takes two uniforms and is accepted with probability about 0.75 at
          :math:`\lambda = 10`, rising to about 0.89 for large :math:`\lambda`. The
          same constants and acceptance test as NumPy's sampler.

    Parameters
    ----------
    s : numpy.ndarray
        ``uint64[4]`` stream state, advanced in place.
    lam : float
        Mean, finite and non-negative (``ValueError`` otherwise).

    Returns
    -------
    int
        The count (int64).
    """
    k = poisson_inline(s, lam)
    if k < 0:
        raise ValueError("poisson: the mean must be finite and >= 0")
    return k


@njit(cache=True, inline="always", error_model="numpy")
def poisson_inline(s, lam):
    """:func:`poisson` for a kernel's inner loop: the same deviates, inlined, with one exit and no
    exception (``-1``, consuming nothing, for a mean that is not finite or negative; the caller
    decides what that means). Inlined helpers that may raise or return early keep numba's
    reference-count updates of their array arguments (atomic instructions) at every use: at one
    call per reaction and leap, :func:`poisson` spent about a tenth of the jump process's time
    entering and leaving."""
    k = np.int64(-1)
    if not (lam >= 0.0 and lam < np.inf):
        pass
    elif lam == 0.0:
        k = np.int64(0)
    elif lam < POISSON_INVERSION_MAX:
        u = uniform(s)
        j = 0
        p = math.exp(-lam)
        cdf = p
        while u > cdf:
            j += 1
            p = p * lam / j
            if p == 0.0:  # cdf saturated below u by rounding (probability ~1e-16)
                break
            cdf += p
        k = np.int64(j)
    else:
        slam = math.sqrt(lam)
        loglam = math.log(lam)
        b = 0.931 + 2.53 * slam
        a = -0.059 + 0.02483 * b
        invalpha = 1.1239 + 1.1328 / (b - 3.4)
        vr = 0.9277 - 3.6224 / (b - 2.0)
        while True:
            u = uniform(s) - 0.5
            v = uniform(s)
            us = 0.5 - abs(u)
            if us == 0.0:  # u = -0.5 exactly: the candidate is -inf, which PTRS rejects anyway
                continue
            # the candidate stays in floating point: for small us it is huge (rejected below),
            # never an integer overflow.
            kf = np.floor((2.0 * a / us + b) * u + lam + 0.43)
            if us >= 0.07 and v <= vr:
                k = np.int64(kf)
                break
            if kf < 0.0 or (us < 0.013 and v > us):
                continue
            logv = math.log(v) if v > 0.0 else -np.inf
            if logv + math.log(invalpha) - math.log(a / (us * us) + b) <= (
                -lam + kf * loglam - loggam(kf + 1.0)
            ):
                k = np.int64(kf)
                break
    return k


class ReferenceStream:
    """Plain-Python xoshiro256** and the deviates of this module, for testing the kernels.

    The state is four Python integers masked to 64 bits; every method follows the corresponding
    kernel operation by operation, so that a ``ReferenceStream`` built from a state array produces
    bit-identical numbers to the kernels run on a copy of that array. It is slow (pure Python) and
    meant for tests and for readers.

    Parameters
    ----------
    state : array_like
        Four unsigned 64-bit words, not all zero.
    """

    def __init__(self, state) -> None:
        words = [int(w) & _MASK for w in np.asarray(state, dtype=np.uint64).tolist()]
        if len(words) != 4 or not any(words):
            raise ValueError("xoshiro256** needs four words, not all zero")
        self.s = words

    @property
    def state(self) -> np.ndarray:
        """The current state as a ``uint64[4]`` array."""
        return np.array(self.s, dtype=np.uint64)

    @staticmethod
    def _rotl(x: int, k: int) -> int:
        return ((x << k) | (x >> (64 - k))) & _MASK

    def next_u64(self) -> int:
        s = self.s
        result = (self._rotl((s[1] * 5) & _MASK, 7) * 9) & _MASK
        t = (s[1] << 17) & _MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def uniform(self) -> float:
        return float(self.next_u64() >> 11) * TWO_POW_M53

    def normal(self) -> float:
        while True:
            x = 2.0 * self.uniform() - 1.0
            y = 2.0 * self.uniform() - 1.0
            r2 = x * x + y * y
            if r2 < 1.0 and r2 > 0.0:
                return x * math.sqrt(-2.0 * math.log(r2) / r2)

    def lognormal(self, mu: float, sigma: float) -> float:
        return math.exp(mu + sigma * self.normal())

    def poisson(self, lam: float) -> int:
        if not (lam >= 0.0 and lam < math.inf):
            raise ValueError("poisson: the mean must be finite and >= 0")
        if lam == 0.0:
            return 0
        if lam < POISSON_INVERSION_MAX:
            u = self.uniform()
            k = 0
            p = math.exp(-lam)
            cdf = p
            while u > cdf:
                k += 1
                p = p * lam / k
                if p == 0.0:
                    break
                cdf += p
            return k
        slam = math.sqrt(lam)
        loglam = math.log(lam)
        b = 0.931 + 2.53 * slam
        a = -0.059 + 0.02483 * b
        invalpha = 1.1239 + 1.1328 / (b - 3.4)
        vr = 0.9277 - 3.6224 / (b - 2.0)
        while True:
            u = self.uniform() - 0.5
            v = self.uniform()
            us = 0.5 - abs(u)
            if us == 0.0:
                continue
            k = float(math.floor((2.0 * a / us + b) * u + lam + 0.43))
            if us >= 0.07 and v <= vr:
                return int(k)
            if k < 0.0 or (us < 0.013 and v > us):
                continue
            logv = math.log(v) if v > 0.0 else -math.inf
            if logv + math.log(invalpha) - math.log(a / (us * us) + b) <= (
                -lam + k * loglam - loggam.py_func(k + 1.0)
            ):
                return int(k)
