"""The RODAS4 Rosenbrock method: its coefficients (orders of step and dense output, from a plain
NumPy reference step), the dense-output encoding, and the kernel's stiff phases against Radau."""

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from sim.engines import dp5, ode, rodas
from sim.models import cml_immune as cm
from sim.run import simulate
from sim.scenario import hahnel_patient

sys.path.insert(0, str(Path(__file__).parent))
from test_ode import fixed_stop_protocol, kill_schedule, rhs_reference

R = rodas


def rodas_step(f, jac, dfdt, t, y, h):
    """One RODAS4 step written plainly from Hairer & Wanner (1996) section IV.7 (NumPy solve).

    Returns (y_new, error estimate, dense(s))."""
    n = y.size
    W = np.eye(n) / (h * R.GAMMA) - jac(t, y)
    ft = dfdt(t, y)
    a = [[], [R.A21], [R.A31, R.A32], [R.A41, R.A42, R.A43], [R.A51, R.A52, R.A53, R.A54]]
    c = [
        [],
        [R.C21],
        [R.C31, R.C32],
        [R.C41, R.C42, R.C43],
        [R.C51, R.C52, R.C53, R.C54],
        [R.C61, R.C62, R.C63, R.C64, R.C65],
    ]
    ci = [0.0, R.C2, R.C3, R.C4, 1.0, 1.0]
    di = [R.D1, R.D2, R.D3, R.D4, 0.0, 0.0]
    u = []
    for i in range(6):
        if i < 5:
            arg = y + sum(a[i][j] * u[j] for j in range(i))
        else:
            arg = y + sum(a[4][j] * u[j] for j in range(4)) + u[4]
        rhs = f(t + ci[i] * h, arg) + sum(c[i][j] / h * u[j] for j in range(i)) + h * di[i] * ft
        u.append(np.linalg.solve(W, rhs))
    y_new = y + sum(a[4][j] * u[j] for j in range(4)) + u[4] + u[5]
    q2 = R.D21 * u[0] + R.D22 * u[1] + R.D23 * u[2] + R.D24 * u[3] + R.D25 * u[4]
    q3 = R.D31 * u[0] + R.D32 * u[1] + R.D33 * u[2] + R.D34 * u[3] + R.D35 * u[4]

    def dense(s):
        return (1 - s) * y + s * (y_new + (1 - s) * (q2 + s * q3))

    return y_new, u[5], dense, np.array(u[:5])


# a nonlinear, non-autonomous test problem with a closed form: y1' = -y1^2 (y1 = 1/(1+t)),
# y2' = -2 t y2 (y2 = exp(-t^2)), and a stiff linear pair coupled to y1
def f_test(t, y):
    return np.array([-(y[0] ** 2), -2 * t * y[1], -50.0 * (y[2] - np.cos(t))])


def jac_test(t, y):
    return np.array([[-2 * y[0], 0, 0], [0, -2 * t, 0], [0, 0, -50.0]])


def dfdt_test(t, y):
    return np.array([0.0, -2 * y[1], -50.0 * np.sin(t)])


def exact(t):
    # y3 = cos t relaxed: y3(t) = A e^{-50 t} + (2500 cos t + 50 sin t)/2501, y3(0) = 1
    A = 1 - 2500 / 2501
    y3 = A * np.exp(-50 * t) + (2500 * np.cos(t) + 50 * np.sin(t)) / 2501
    return np.array([1 / (1 + t), np.exp(-(t**2)), y3])


def global_error(n_steps, t_end=1.0):
    h = t_end / n_steps
    y = exact(0.0)
    for k in range(n_steps):
        y, _, _, _ = rodas_step(f_test, jac_test, dfdt_test, k * h, y, h)
    return np.abs(y - exact(t_end))


def test_rodas_coefficients_give_fourth_order_steps():
    """Global error of fixed steps falls as h^4 on the nonlinear and the non-autonomous
    component (the d_i terms and the c_ij signs are part of this: a wrong one gives order <= 3).
    The stiff component (h lambda from 2.5 down to 0.16) shows the order reduction known for
    Rosenbrock methods on stiff forced problems, so it is checked for stability and convergence
    only: 4 halvings of h reduce its error by more than 1e3."""
    e = np.array([global_error(n) for n in (20, 40, 80, 160, 320)])
    orders = np.log2(e[:-1, :2] / e[1:, :2])
    assert np.all(orders > 3.8) and np.all(orders < 4.3), orders
    assert e[0, 2] < 1e-6 and e[-1, 2] < 1e-3 * e[0, 2], e[:, 2]


def test_rodas_error_estimate_is_third_order_and_dense_output_third_order():
    """Local errors: the estimate u_6 ~ h^4 (embedded order 3); the interpolant at s = 0.5 ~ h^4
    (a 3rd-order dense output)."""
    t0, y0 = 0.3, exact(0.3)
    est, mid = [], []
    hs = [0.08, 0.04, 0.02]
    for h in hs:
        _, err, dense, _ = rodas_step(f_test, jac_test, dfdt_test, t0, y0, h)
        est.append(np.max(np.abs(err[:2])))
        mid.append(np.max(np.abs(dense(0.5)[:2] - exact(t0 + 0.5 * h)[:2])))
    o_est = np.log2(est[0] / est[1]), np.log2(est[1] / est[2])
    o_mid = np.log2(mid[0] / mid[1]), np.log2(mid[1] / mid[2])
    assert all(3.5 < o < 4.6 for o in o_est), o_est
    assert all(3.5 < o < 5.5 for o in o_mid), o_mid


def test_encoded_dense_output_equals_the_rodas_interpolant():
    rng = np.random.default_rng(7)
    n = 5
    for _ in range(50):
        y_old = rng.lognormal(0, 3, n)
        y_new = y_old * rng.lognormal(0, 0.1, n)
        U = rng.normal(0, 1, (7, n)) * y_old
        h = rng.uniform(0.01, 30)
        K = np.full((7, n), np.nan)
        R.encode_dense(h, y_old, y_new, U, K, n)
        q2 = R.D21 * U[0] + R.D22 * U[1] + R.D23 * U[2] + R.D24 * U[3] + R.D25 * U[4]
        q3 = R.D31 * U[0] + R.D32 * U[1] + R.D33 * U[2] + R.D34 * U[3] + R.D35 * U[4]
        out = np.empty(n)
        for s in (0.0, 0.2, 0.5, 0.9, 1.0):
            dp5.dense(s, h, y_old, K, out, n)
            ref = (1 - s) * y_old + s * (y_new + (1 - s) * (q2 + s * q3))
            scale = np.abs(y_old) + np.abs(q2) + np.abs(q3)
            np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12 * scale.max())


def test_lu_solve_equals_numpy():
    rng = np.random.default_rng(3)
    for _ in range(30):
        A = rng.normal(size=(5, 5)) + np.diag(rng.uniform(-3, 3, 5))
        b = rng.normal(size=5)
        LU = A.copy()
        piv = np.zeros(5, dtype=np.int64)
        assert R.lu_factor(LU, piv, 5)
        x = b.copy()
        R.lu_solve(LU, piv, x, 5)
        np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-9, atol=1e-12)
    assert not R.lu_factor(np.zeros((5, 5)), np.zeros(5, dtype=np.int64), 5)


def _patient(pt, preset):
    over = dict(cm.PRESETS[preset]) if preset else {}
    over.update({k: v for k, v in hahnel_patient(pt).items() if k in cm.PARAMS.names})
    return cm.PARAMS.vector(over)


@pytest.mark.parametrize(("pt", "preset"), [(13, None), (13, "hahnel2020"), (16, "hahnel2020")])
def test_stiff_patients_switch_to_rodas_and_match_radau(pt, preset):
    """Hähnel class-B patients (an effector pool of ~1e7 holds Y in a fast equilibrium, kill rate
    ~50/day): the kernel detects stiffness, finishes with RODAS4 in a few hundred steps (DP5 alone
    took ~50,000) and matches solve_ivp(Radau, rtol 1e-10) to a max relative error <= 1e-6 at
    rtol 1e-8, 10 years with a stop at 5 years, on states above 1e-6 of their peak."""
    p = _patient(pt, preset)
    y0 = cm.initial_state(p)
    horizon, stop = 10 * 365.25, 5 * 365.25
    t_out = np.linspace(0, horizon, 2001)
    raw = simulate(
        "cml_immune", p, kill_schedule(), fixed_stop_protocol(stop, horizon), rtol=1e-8,
        t_out=t_out,
    )  # fmt: skip
    st = raw["stats"]
    assert st[ode.ST_FAILURES] == 0
    assert st[ode.ST_STIFF] > 0 and 0 <= st[ode.ST_STIFF_AT] < stop
    assert st[ode.ST_STEPS] < 5000
    atol = 1e-10 * np.asarray(cm.SPEC.atol_scale)
    ref = []
    y = y0.copy()
    for a, b, u in [(0, stop, 1.0), (stop, horizon, 0.0)]:
        sel = t_out[(t_out >= a) & (t_out < b)] if b < horizon else t_out[t_out >= a]
        sol = solve_ivp(
            rhs_reference, (a, b), y, method="Radau", rtol=1e-10, atol=atol, args=(p, u),
            dense_output=True,
        )  # fmt: skip
        assert sol.success
        ref.append(sol.sol(sel).T)
        y = sol.y[:, -1]
    Y = np.concatenate(ref)
    assert Y.shape == raw["y"].shape
    for i, name in enumerate(cm.STATES):
        peak = np.abs(Y[:, i]).max()
        if peak == 0:
            continue
        sel = np.abs(Y[:, i]) > 1e-6 * peak
        rel = np.abs(raw["y"][sel, i] - Y[sel, i]) / np.abs(Y[sel, i])
        assert rel.max() <= 1e-6, (name, rel.max())


def test_non_stiff_default_patient_never_switches():
    p = cm.PARAMS.vector()
    horizon = 10 * 365.25
    raw = simulate(
        "cml_immune", p, kill_schedule(), fixed_stop_protocol(5 * 365.25, horizon), rtol=1e-8,
        t_out=np.linspace(0, horizon, 11),
    )  # fmt: skip
    assert raw["stats"][ode.ST_STIFF] == 0
    assert raw["stats"][ode.ST_STIFF_AT] == -1
