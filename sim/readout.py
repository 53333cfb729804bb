r"""BCR-ABL1 qPCR measurement model and molecular-response (MR) depths.

A model gives the true BCR-ABL1 level on the International Scale (IS), in percent. Clinical
decisions see a measurement of it, modelled per sample as

.. math::

    A &= \max\bigl(1, \operatorname{round}(e^{\mu_A + \sigma_A Z_1})\bigr),
        \qquad \mu_A = \ln(\texttt{abl1\_median}),\ \sigma_A = \texttt{abl1\_sigma} \\
    B &\sim \operatorname{Poisson}\bigl(A \, x / (100\, c)\bigr) \\
    \hat x &= \begin{cases} 100\, c \, B / A \cdot e^{\sigma_\varepsilon Z_2} & B > 0 \\
        0 \ (\text{undetectable}) & B = 0 \end{cases}
        \qquad \sigma_\varepsilon = \texttt{noise\_sd}

with :math:`x` the true level (% IS), :math:`A` the ABL1 control-gene copies in the sample,
:math:`B` the BCR-ABL1 transcripts detected, :math:`c` the laboratory's IS conversion factor
(its raw ratio BCR-ABL1/ABL1 times :math:`c` is the IS value, Hughes et al. 2006), and
:math:`Z_1, Z_2` standard normal. The technical noise has median 1 (symmetric on the log scale);
its mean is :math:`e^{\sigma_\varepsilon^2/2}`. The sensitivity a sample reaches, one transcript,
is :math:`\text{lod} = 100\,c/A` % IS.

MR depths follow the ELN/EUTOS definitions (Cross et al. 2015): a detected sample proves the
deepest level its value is at or below (MMR <= 0.1 %, MR4 <= 0.01 %, MR4.5 <= 0.0032 %,
MR5 <= 0.001 %); an undetectable sample proves MR4 only with >= 10,000 ABL1 copies, MR4.5 with
>= 32,000 and MR5 with >= 100,000 (thresholds in ABL1 copies, defined for laboratories whose
conversion factor is near 1), and with fewer than 10,000 copies it proves MMR if
:math:`100/A \le 0.1` and nothing otherwise.

A consequence of these rules: with few ABL1 copies a positive sample can prove a deeper level than
an undetectable one (e.g. 20,000 copies: undetectable proves MR4, one transcript with noise
below 0.64 reads <= 0.0032 % and proves MR4.5), so the proven depth is not monotone in the true
level sample by sample; the tests check the properties that do hold.

References
----------
N. C. P. Cross, H. E. White, D. Colomer, et al. Laboratory recommendations for scoring deep
molecular responses following treatment for chronic myeloid leukemia. Leukemia 2015;29:999–1003.
T. P. Hughes, J. Deininger, A. Hochhaus, et al. Monitoring CML patients responding to treatment
with tyrosine kinase inhibitors: review and recommendations for harmonizing current methodology
for detecting BCR-ABL transcripts and kinase domain mutations and for expressing results.
Blood 2006;108:28–37.
A. Hochhaus, M. Baccarani, R. T. Silver, et al. European LeukemiaNet 2020 recommendations for
treating chronic myeloid leukemia. Leukemia 2020;34:966–984.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numba import njit

from sim.engines.rng import ReferenceStream, lognormal, poisson, seed_states
from sim.params import Param, ParamTable

#: MR levels, % IS (ELN 2020; Cross et al. 2015).
MMR = 0.1
MR4 = 0.01
MR45 = 0.0032
MR5 = 0.001
MR_LEVELS: dict[str, float] = {"MMR": MMR, "MR4": MR4, "MR4.5": MR45, "MR5": MR5}

#: Minimum ABL1 copies for an undetectable sample to prove MR4, MR4.5, MR5 (EUTOS, Cross 2015).
ABL1_MIN_MR4 = 10_000.0
ABL1_MIN_MR45 = 32_000.0
ABL1_MIN_MR5 = 100_000.0
EUTOS_MIN_ABL1: dict[str, float] = {
    "MR4": ABL1_MIN_MR4,
    "MR4.5": ABL1_MIN_MR45,
    "MR5": ABL1_MIN_MR5,
}

#: Depth codes returned by :func:`mr_depth` (larger = deeper response proven).
DEPTH_NONE = 0
DEPTH_MMR = 3
DEPTH_MR4 = 4
DEPTH_MR45 = 5
DEPTH_MR5 = 6
#: Depth code of each MR level name (as written in scenario files).
DEPTH_CODES: dict[str, int] = {
    "MMR": DEPTH_MMR,
    "MR4": DEPTH_MR4,
    "MR4.5": DEPTH_MR45,
    "MR5": DEPTH_MR5,
}
_LABELS = {DEPTH_NONE: "none", **{code: name for name, code in DEPTH_CODES.items()}}

QPCR = ParamTable(
    [
        Param(
            "abl1_median",
            50_000.0,
            "copies",
            1.0,
            1e7,
            "median ABL1 control-gene copies per qPCR sample (lognormal across samples)",
            "assumption, typical; routine laboratories report roughly 1e4-2e5 ABL1 copies per "
            "sample (EUTOS asks >= 1e4 to score MR4, >= 1e5 for MR5; Cross et al. 2015)",
        ),
        Param(
            "abl1_sigma",
            0.5,
            "1",
            0.0,
            3.0,
            "log-sd of ABL1 copies between samples (sample quality, RNA yield)",
            "assumption; plausible 0.3-0.8 (several-fold spread of ABL1 copies between samples)",
        ),
        Param(
            "noise_sd",
            0.3,
            "1",
            0.0,
            2.0,
            "log-sd of multiplicative technical noise on positive samples (median 1)",
            "assumption; plausible 0.2-0.5 (replicate qPCR of one sample differs by ~1.3-1.6x)",
        ),
        Param(
            "conversion",
            1.0,
            "1",
            0.05,
            20.0,
            "laboratory IS conversion factor c (IS = c x raw BCR-ABL1/ABL1 ratio)",
            "1 = assay reporting on the IS directly (Hughes et al. 2006; Branford et al. 2008 "
            "Blood 112:3330); lab factors mostly 0.1-3",
        ),
    ]
)
ABL1_MEDIAN = QPCR.index("abl1_median")
ABL1_SIGMA = QPCR.index("abl1_sigma")
NOISE_SD = QPCR.index("noise_sd")
CONVERSION = QPCR.index("conversion")


@njit(cache=True)
def measure(true_pct, q, s):
    r"""One qPCR measurement of a true BCR-ABL1 level (model in the module docstring).

    Random numbers are drawn in a fixed order: ABL1 copies (one normal), BCR-ABL1 transcripts (one
    Poisson), and, for positive samples only, the technical noise (one normal).

    Parameters
    ----------
    true_pct : float
        True BCR-ABL1 level, % IS. Negative values (solver round-off) count as 0; NaN raises.
    q : numpy.ndarray
        qPCR parameter vector in the layout of :data:`QPCR` (``QPCR.vector(overrides)``).
    s : numpy.ndarray
        ``uint64[4]`` random stream (:mod:`sim.engines.rng`), advanced in place.

    Returns
    -------
    measured_pct : float
        Reported level, % IS; 0 for an undetectable sample.
    detected : float
        1.0 if at least one BCR-ABL1 transcript was detected, else 0.0.
    abl1_copies : float
        ABL1 control copies in the sample (an integer >= 1).
    lod_pct : float
        Level of one transcript, :math:`100\,c/A` % IS: the sensitivity an undetectable sample
        proves.
    """
    abl1 = np.floor(lognormal(s, math.log(q[ABL1_MEDIAN]), q[ABL1_SIGMA]) + 0.5)
    if abl1 < 1.0:
        abl1 = 1.0
    cf = q[CONVERSION]
    lod = 100.0 * cf / abl1
    x = true_pct
    if x < 0.0:
        x = 0.0
    copies = poisson(s, abl1 * x / (100.0 * cf))
    if copies == 0:
        return 0.0, 0.0, abl1, lod
    noise = lognormal(s, 0.0, q[NOISE_SD])
    return lod * copies * noise, 1.0, abl1, lod


@njit(cache=True)
def mr_depth(measured_pct, detected, abl1):
    """Deepest molecular response a sample proves, as a ``DEPTH_*`` code (Cross et al. 2015).

    Parameters
    ----------
    measured_pct : float
        Reported level, % IS (ignored for undetectable samples).
    detected : float
        1.0 for a positive sample, 0.0 for an undetectable one.
    abl1 : float
        ABL1 control copies in the sample.

    Returns
    -------
    int
        Detected: ``DEPTH_MR5`` if ``measured_pct <= 0.001``, ``DEPTH_MR45`` if ``<= 0.0032``,
        ``DEPTH_MR4`` if ``<= 0.01``, ``DEPTH_MMR`` if ``<= 0.1``, else ``DEPTH_NONE``.
        Undetectable: ``DEPTH_MR5`` if ``abl1 >= 100,000``, ``DEPTH_MR45`` if ``>= 32,000``,
        ``DEPTH_MR4`` if ``>= 10,000``, ``DEPTH_MMR`` if ``100/abl1 <= 0.1``, else ``DEPTH_NONE``.
    """
    if detected > 0.5:
        if measured_pct <= MR5:
            return DEPTH_MR5
        if measured_pct <= MR45:
            return DEPTH_MR45
        if measured_pct <= MR4:
            return DEPTH_MR4
        if measured_pct <= MMR:
            return DEPTH_MMR
        return DEPTH_NONE
    if abl1 >= ABL1_MIN_MR5:
        return DEPTH_MR5
    if abl1 >= ABL1_MIN_MR45:
        return DEPTH_MR45
    if abl1 >= ABL1_MIN_MR4:
        return DEPTH_MR4
    if abl1 > 0.0 and 100.0 / abl1 <= MMR:
        return DEPTH_MMR
    return DEPTH_NONE


def mr_label(depth: int) -> str:
    """Name of a depth code: ``"MMR"``, ``"MR4"``, ``"MR4.5"``, ``"MR5"`` or ``"none"``."""
    try:
        return _LABELS[int(depth)]
    except KeyError:
        raise ValueError(
            f"unknown MR depth code {depth!r}; expected one of {sorted(_LABELS)}"
        ) from None


@njit(cache=True)
def _measure_all(true_pct, q, states, measured, detected, abl1, lod, depth):
    for i in range(true_pct.shape[0]):
        m, d, a, lo = measure(true_pct[i], q, states[i])
        measured[i] = m
        detected[i] = d
        abl1[i] = a
        lod[i] = lo
        depth[i] = mr_depth(m, d, a)


def measure_many(
    true_pct: np.ndarray,
    q: np.ndarray | Mapping[str, float] | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Measure many true levels, one independent sample each (for use outside kernels).

    Sample ``i`` uses stream ``i`` of :func:`sim.engines.rng.seed_states` ``(seed, n)``, so its
    result depends only on ``(true_pct[i], q, seed, i)``.

    Parameters
    ----------
    true_pct : numpy.ndarray
        True BCR-ABL1 levels, % IS (any shape; flattened).
    q : numpy.ndarray or mapping, optional
        qPCR parameter vector, or overrides of :data:`QPCR` by name; defaults if None.
    seed : int
        Non-negative master seed.

    Returns
    -------
    dict of numpy.ndarray
        ``true_pct``, ``measured_pct``, ``detected`` (1.0/0.0), ``abl1``, ``lod_pct`` (float64)
        and ``depth`` (int64 ``DEPTH_*`` codes), each of length ``true_pct.size``.
    """
    true = np.ascontiguousarray(true_pct, dtype=np.float64).ravel()
    if q is None or isinstance(q, Mapping):
        qv = QPCR.vector(q)
    else:
        qv = np.ascontiguousarray(q, dtype=np.float64)
        if qv.shape != (len(QPCR),):
            raise ValueError(f"q must have {len(QPCR)} entries (QPCR layout), found {qv.shape}")
    n = true.size
    out = {
        "true_pct": true.copy(),
        "measured_pct": np.empty(n),
        "detected": np.empty(n),
        "abl1": np.empty(n),
        "lod_pct": np.empty(n),
        "depth": np.empty(n, dtype=np.int64),
    }
    _measure_all(
        true,
        qv,
        seed_states(seed, n),
        out["measured_pct"],
        out["detected"],
        out["abl1"],
        out["lod_pct"],
        out["depth"],
    )
    return out


def measure_reference(
    true_pct: float, q: np.ndarray, stream: ReferenceStream
) -> tuple[float, float, float, float]:
    """Plain-Python :func:`measure` on a :class:`~sim.engines.rng.ReferenceStream` (for tests).

    Same operations in the same order as the kernel, so results agree bit for bit.
    """
    mu = math.log(float(q[ABL1_MEDIAN]))
    abl1 = float(math.floor(stream.lognormal(mu, float(q[ABL1_SIGMA])) + 0.5))
    abl1 = max(abl1, 1.0)
    cf = float(q[CONVERSION])
    lod = 100.0 * cf / abl1
    x = float(true_pct)
    if x < 0.0:
        x = 0.0
    copies = stream.poisson(abl1 * x / (100.0 * cf))
    if copies == 0:
        return 0.0, 0.0, abl1, lod
    noise = stream.lognormal(0.0, float(q[NOISE_SD]))
    return lod * copies * noise, 1.0, abl1, lod


def mr_depth_reference(measured_pct: float, detected: float, abl1: float) -> int:
    """Plain-Python :func:`mr_depth`, driven by :data:`MR_LEVELS` and :data:`EUTOS_MIN_ABL1`."""
    if detected > 0.5:
        proven = [name for name, level in MR_LEVELS.items() if measured_pct <= level]
    else:
        proven = [name for name, need in EUTOS_MIN_ABL1.items() if abl1 >= need]
        if abl1 > 0 and 100.0 / abl1 <= MR_LEVELS["MMR"]:
            proven.append("MMR")
    return max((DEPTH_CODES[name] for name in proven), default=DEPTH_NONE)
