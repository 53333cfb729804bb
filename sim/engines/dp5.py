r"""Dormand–Prince 5(4): the tableau, the error norm and the dense-output polynomial.

A method is its tableau (STYLE.md, after SciPy's ``_ivp/rk.py``). The constants are those of
Dormand & Prince, J Comput Appl Math 1980;6:19–26, in the form SciPy's ``RK45`` uses (Hairer,
Nørsett & Wanner, *Solving Ordinary Differential Equations I*, 2nd ed., section II.5), including the
quartic dense-output matrix ``P`` (Shampine, Math Comp 1986;46:135).

With stages :math:`k_i = f(t + c_i h, y + h \sum_j a_{ij} k_j)`, the step is
:math:`y_1 = y + h \sum_i b_i k_i` (5th order, FSAL: :math:`k_7 = f(t + h, y_1)`), the error
estimate :math:`h \sum_i e_i k_i` (difference to the embedded 4th-order solution), and the dense
output :math:`y(t + \theta h) = y + h \sum_i k_i \sum_{j=1}^{4} P_{ij} \theta^j`.

The functions that call a model's right-hand side live in :mod:`sim.engines.ode`, where the
right-hand side is a module global (so numba's on-disk cache works); these helpers do not.
"""

from __future__ import annotations

import numpy as np
from numba import njit

C2, C3, C4, C5 = 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0

A21 = 1.0 / 5.0
A31, A32 = 3.0 / 40.0, 9.0 / 40.0
A41, A42, A43 = 44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0
A51, A52, A53, A54 = 19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0
A61, A62, A63, A64, A65 = (
    9017.0 / 3168.0,
    -355.0 / 33.0,
    46732.0 / 5247.0,
    49.0 / 176.0,
    -5103.0 / 18656.0,
)
B1, B3, B4, B5, B6 = 35.0 / 384.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0
E1, E3, E4, E5, E6, E7 = (
    -71.0 / 57600.0,
    71.0 / 16695.0,
    -71.0 / 1920.0,
    17253.0 / 339200.0,
    -22.0 / 525.0,
    1.0 / 40.0,
)

#: Dense-output coefficients P[i, j]: weight of k_{i+1} on theta^{j+1}.
P = np.array(
    [
        [1.0, -8048581381.0 / 2820520608.0, 8663915743.0 / 2820520608.0,
         -12715105075.0 / 11282082432.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 131558114200.0 / 32700410799.0, -68118460800.0 / 10900136933.0,
         87487479700.0 / 32700410799.0],
        [0.0, -1754552775.0 / 470086768.0, 14199869525.0 / 1410260304.0,
         -10690763975.0 / 1880347072.0],
        [0.0, 127303824393.0 / 49829197408.0, -318862633887.0 / 49829197408.0,
         701980252875.0 / 199316789632.0],
        [0.0, -282668133.0 / 205662961.0, 2019193451.0 / 616988883.0,
         -1453857185.0 / 822651844.0],
        [0.0, 40617522.0 / 29380423.0, -110615467.0 / 29380423.0, 69997945.0 / 29380423.0],
    ]
)  # fmt: skip

ORDER = 5
ERROR_EXPONENT = -1.0 / 5.0  # -1 / (embedded order + 1)
SAFETY = 0.9
MIN_FACTOR = 0.2
MAX_FACTOR = 10.0


@njit(cache=True, inline="always")
def error_norm(err, y, y_new, rtol, atol, n):
    """RMS norm of ``err[:n]`` scaled by ``atol_i + rtol * max(|y_i|, |y_new_i|)`` (SciPy's
    choice); ``n`` is passed in so a caller with a compile-time size gets unrolled loops."""
    acc = 0.0
    for i in range(n):
        sc = atol[i] + rtol * max(abs(y[i]), abs(y_new[i]))
        r = err[i] / sc
        acc += r * r
    return np.sqrt(acc / n)


@njit(cache=True, inline="always")
def error_norm_keep_weights(err, y, y_new, rtol, atol, n):
    """:func:`error_norm`, leaving the weights ``1 / (atol_i + rtol max(|y_i|, |y_new_i|))`` in
    ``err`` (the stiffness test reuses them: one division per component and step, not three)."""
    acc = 0.0
    for i in range(n):
        w = 1.0 / (atol[i] + rtol * max(abs(y[i]), abs(y_new[i])))
        r = err[i] * w
        err[i] = w
        acc += r * r
    return np.sqrt(acc / n)


@njit(cache=True, inline="always")
def dense_component(i, theta, h, y_old, K):
    """Component ``i`` of the dense output at ``t_old + theta h`` (K holds the 7 stages, (7, n))."""
    t1 = theta
    t2 = t1 * theta
    t3 = t2 * theta
    t4 = t3 * theta
    acc = 0.0
    for s in range(7):
        w = P[s, 0] * t1 + P[s, 1] * t2 + P[s, 2] * t3 + P[s, 3] * t4
        acc += K[s, i] * w
    return y_old[i] + h * acc


@njit(cache=True, inline="always")
def dense(theta, h, y_old, K, out, n):
    """Dense-output vector (first ``n`` components) at ``t_old + theta h`` written into ``out``
    (the seven stage weights are computed once for all components)."""
    t2 = theta * theta
    t3 = t2 * theta
    t4 = t3 * theta
    w0 = P[0, 0] * theta + P[0, 1] * t2 + P[0, 2] * t3 + P[0, 3] * t4
    w2 = P[2, 1] * t2 + P[2, 2] * t3 + P[2, 3] * t4
    w3 = P[3, 1] * t2 + P[3, 2] * t3 + P[3, 3] * t4
    w4 = P[4, 1] * t2 + P[4, 2] * t3 + P[4, 3] * t4
    w5 = P[5, 1] * t2 + P[5, 2] * t3 + P[5, 3] * t4
    w6 = P[6, 1] * t2 + P[6, 2] * t3 + P[6, 3] * t4
    for i in range(n):
        out[i] = y_old[i] + h * (
            K[0, i] * w0 + K[2, i] * w2 + K[3, i] * w3 + K[4, i] * w4 + K[5, i] * w5 + K[6, i] * w6
        )
