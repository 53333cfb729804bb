"""Initial state at diagnosis: the vectorised form against a plain scalar reference."""

import numpy as np

from sim.models import cml_immune as cm


def reference(p):
    """DESIGN.md section 4, written out per patient (quasi-equilibria at y0)."""
    g = dict(zip(cm.PARAMS.names, p))
    y0 = g["y0"]
    if g["p_xy"] > 0:
        x0 = g["p_yx"] / g["p_xy"] * y0
    else:
        x0 = 0.0 if g["p_yx"] == 0 else np.inf
    x0 = min(x0, g["x0_cap"])
    recruit = g["p_z"] * y0 / (g["K_z"] ** 2 + y0**2)
    den = g["a"] - recruit
    z0 = g["r_z"] / den if den > 0 else g["r_z"] / g["a"]
    de = g["k_E"] * y0 / (y0 + g["K_E"])
    b = de + g["delta_E"] + g["r_z"] / z0 + recruit
    e0 = 2 * de / (b + np.sqrt(max(b * b - 4 * recruit * de, 0.0))) if b > 0 else 0.0
    n0 = g["s_N"] / (g["d_N"] * (1 + y0 / g["K_ND"]))
    return np.array([x0, y0, z0, e0, n0])


def test_vectorised_initial_states_equal_the_scalar_reference():
    rng = np.random.default_rng(5)
    base = cm.PARAMS.vector()
    P = np.tile(base, (300, 1)) * rng.lognormal(0, 1, (300, base.size))
    P[:, cm.X0_CAP] = np.where(rng.uniform(size=300) < 0.3, 1e5, np.inf)
    P[:5, cm.P_XY] = 0.0
    P[2, cm.P_YX] = 0.0
    P[7, cm.P_Z] = 1e9  # inside a huge window: the denominator is negative
    P[8, cm.K_EX] = 0.0
    V = cm.initial_states(P)
    ref = np.array([reference(p) for p in P])
    np.testing.assert_allclose(V, ref, rtol=1e-13, atol=0)
    np.testing.assert_array_equal(cm.initial_state(P[10]), V[10])
