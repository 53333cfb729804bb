r"""RODAS4: an L-stable Rosenbrock method of order 4(3) for the stiff phases of a trajectory.

Why it is here: in patients with a wide immune window (Hähnel class B, patients 12-16) the
effector pool grows to ~1e7 and holds the active leukemic cells in a fast quasi-equilibrium
(kill rate m Z ~ 50/day against a slow drift of ~0.1/day). Dormand–Prince is then limited by
stability, not accuracy: about 50,000 steps per 10 years. The kernel detects this (Hairer's test,
below) and continues the trajectory with this method, which takes steps set by accuracy.

The method (Hairer & Wanner, *Solving Ordinary Differential Equations II*, 2nd ed., Springer 1996,
section IV.7; coefficients of ``RODAS``, ``ROCOE`` method 1) in the transformed form: with
:math:`W = (h\gamma)^{-1} I - J`, :math:`J = \partial f/\partial y(t_n, y_n)` and
:math:`f_t = \partial f / \partial t`,

.. math::

    W u_i = f\Big(t_n + c_i h,\; y_n + \sum_{j<i} a_{ij} u_j\Big)
            + \sum_{j<i} \frac{c_{ij}}{h} u_j + h d_i f_t, \qquad i = 1..6,

:math:`y_{n+1} = y_n + \sum_{j\le4} a_{5j} u_j + u_5 + u_6`; :math:`u_6` is the difference to the
embedded 3rd-order solution (the error estimate). The method is stiffly accurate, so the step
controller is :math:`h_{new} = h \min(6, \max(0.2, 0.9\,\|err\|^{-1/4}))`. Dense output
(3rd order): :math:`y(t_n + s h) = (1-s) y_n + s\,[y_{n+1} + (1-s)(q_2 + s q_3)]` with
:math:`q_k = \sum_j d_{kj} u_j`.

The kernel reads every step's interpolant through one format, Dormand–Prince's stage encoding
(:func:`sim.engines.dp5.dense`); :func:`encode_dense` writes this cubic into that encoding
(``K[1] = K[3] = K[5] = 0`` and ``K[0], K[2], K[4], K[6]`` solved from the cubic's
coefficients), so monitoring visits, threshold crossings and the output grid read a Rosenbrock
step exactly as they read a Dormand–Prince step.

The Jacobian and :math:`f_t` are finite differences (5 + 1 right-hand sides, refreshed every step;
with five states this costs less than reusing it would save). The tests check the orders of the
step (4) and of the dense output (3) on a nonlinear problem, and the stiff patients against
``solve_ivp(Radau)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.engines import dp5 as _dp5

# ROCOE, METH = 1 (Hairer & Wanner 1996)
GAMMA = 0.25
C2, C3, C4 = 0.386, 0.21, 0.63
D1, D2, D3, D4 = 0.25, -0.1043, 0.1035, -0.03620000000000023
A21 = 1.544
A31, A32 = 0.9466785280815826, 0.2557011698983284
A41, A42, A43 = 3.314825187068521, 2.896124015972201, 0.9986419139977817
A51, A52, A53, A54 = 1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895
C21 = -5.6688
C31, C32 = -2.430093356833875, -0.2063599157091915
C41, C42, C43 = -0.1073529058151375, -9.594562251023355, -20.47028614809616
C51, C52, C53, C54 = 7.496443313967647, -10.24680431464352, -33.99990352819905, 11.7089089320616
C61, C62, C63, C64, C65 = (
    8.083246795921522,
    -7.981132988064893,
    -31.52159432874371,
    16.31930543123136,
    -6.058818238834054,
)
D21, D22, D23, D24, D25 = (
    10.12623508344586,
    -7.487995877610167,
    -34.80091861555747,
    -7.992771707568823,
    1.025137723295662,
)
D31, D32, D33, D34, D35 = (
    -0.6762803392801253,
    6.087714651680015,
    16.43084320892478,
    24.76722511418386,
    -6.594389125716872,
)

ORDER = 4
ERROR_EXPONENT = -1.0 / 4.0
SAFETY = 0.9
MIN_FACTOR = 0.2
MAX_FACTOR = 6.0

#: Dormand–Prince dense-output weights of stages 2, 4, 6 (0-based) on theta^2, theta^3, theta^4,
#: inverted: solves for the stage vectors that reproduce a given polynomial (condition ~81).
_TRIPLE = (2, 4, 6)
ENCODE = np.linalg.inv(np.array([[_dp5.P[j, r] for j in _TRIPLE] for r in (1, 2, 3)]))
P01, P02, P03 = _dp5.P[0, 1], _dp5.P[0, 2], _dp5.P[0, 3]
P00 = _dp5.P[0, 0]

#: Hairer's stiffness test for Dormand–Prince (DOPRI5): h*|lambda| estimated from the last two
#: stages exceeds this on STIFF_STEPS accepted steps (with fewer than NONSTIFF_RESET non-stiff
#: steps in between) -> the trajectory is stiff.
STIFF_HLAMBDA = 3.25
STIFF_STEPS = 15
NONSTIFF_RESET = 6
#: ... and the switch pays: Dormand–Prince would still need more than this many steps of the
#: current size to the end of the segment (a RODAS4 step costs about 2.5 DP5 steps, so a stiff
#: stretch that DP5 crosses in a few dozen steps is cheaper without the switch).
STIFF_MIN_REMAINING = 200


@njit(cache=True, inline="always")
def lu_factor(a, piv, n):
    """In-place LU factorisation with partial pivoting of ``a[:n, :n]``; False if singular."""
    for k in range(n):
        m = k
        big = abs(a[k, k])
        for i in range(k + 1, n):
            if abs(a[i, k]) > big:
                big = abs(a[i, k])
                m = i
        piv[k] = m
        if big == 0.0 or not np.isfinite(big):
            return False
        if m != k:
            for j in range(n):
                tmp = a[k, j]
                a[k, j] = a[m, j]
                a[m, j] = tmp
        inv = 1.0 / a[k, k]
        for i in range(k + 1, n):
            a[i, k] *= inv
            f = a[i, k]
            if f != 0.0:
                for j in range(k + 1, n):
                    a[i, j] -= f * a[k, j]
    return True


@njit(cache=True, inline="always")
def lu_solve(a, piv, b, n):
    """Solve ``A x = b`` in place in ``b`` from :func:`lu_factor`'s output."""
    for k in range(n):
        m = piv[k]
        if m != k:
            tmp = b[k]
            b[k] = b[m]
            b[m] = tmp
    for i in range(1, n):
        acc = b[i]
        for j in range(i):
            acc -= a[i, j] * b[j]
        b[i] = acc
    for i in range(n - 1, -1, -1):
        acc = b[i]
        for j in range(i + 1, n):
            acc -= a[i, j] * b[j]
        b[i] = acc / a[i, i]


@njit(cache=True, inline="always")
def encode_dense(h, y_old, y_new, U, K, n):
    """Write the step's dense output into Dormand–Prince's stage encoding ``K`` (7, n).

    ``U`` holds the stage vectors u_1..u_5 in rows 0..4. After this call
    ``dp5.dense(s, h, y_old, K, out, n)`` equals the RODAS interpolant at ``t_old + s h``.
    """
    for i in range(n):
        q2 = D21 * U[0, i] + D22 * U[1, i] + D23 * U[2, i] + D24 * U[3, i] + D25 * U[4, i]
        q3 = D31 * U[0, i] + D32 * U[1, i] + D33 * U[2, i] + D34 * U[3, i] + D35 * U[4, i]
        # (1-s) y0 + s [y1 + (1-s)(q2 + s q3)] = y0 + s (dy + q2) + s^2 (q3 - q2) - s^3 q3
        c1 = (y_new[i] - y_old[i] + q2) / h
        c2 = (q3 - q2) / h
        c3 = -q3 / h
        k0 = c1 / P00
        r1 = c2 - P01 * k0
        r2 = c3 - P02 * k0
        r3 = -P03 * k0
        K[0, i] = k0
        K[1, i] = 0.0
        K[2, i] = ENCODE[0, 0] * r1 + ENCODE[0, 1] * r2 + ENCODE[0, 2] * r3
        K[3, i] = 0.0
        K[4, i] = ENCODE[1, 0] * r1 + ENCODE[1, 1] * r2 + ENCODE[1, 2] * r3
        K[5, i] = 0.0
        K[6, i] = ENCODE[2, 0] * r1 + ENCODE[2, 1] * r2 + ENCODE[2, 2] * r3
