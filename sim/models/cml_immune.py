r"""The canonical model ``cml_immune``: leukemic stem and active cells, effector T cells, their
exhaustion, and NK cells, under TKI, interferon-α and anti-PD-1.

States (time in days; X, Y, Z in the cell units of Hähnel et al. 2020, K_y = 1e6; N in cells/µL):

.. math::

    F   &= 1 - E (1 - B)                     \quad\text{functional fraction of effector T cells}\\
    A_N &= \frac{(1 + \kappa_N I)(1 + x_{ex})}{1 + Y/K_{NS}}   \quad\text{NK activity}\\
    act &= p_{xy} (1 + \alpha_I I)\\
    \dot X &= -act\,X + p_{yx} Y\\
    \dot Y &= act\,X - p_{yx} Y + p_y Y (1 - Y/K_y) - e_{TKI} u(t) Y - m F Z Y
              - m_N A_N N Y - k_{IY} I Y\\
    \dot Z &= r_z (1 + v) - a Z + p_z F Y Z / (K_z^2 + Y^2)\\
    \dot E &= k_E \frac{Y}{Y + K_E} (1 - E) - \delta_E E
              - E \left(\frac{r_z (1 + v)}{Z} + \frac{p_z F Y}{K_z^2 + Y^2}\right)\\
    \dot N &= s_N (1 + \sigma_N I) - d_N N (1 + Y/K_{ND})

with the drive u(t) (relative TKI effect), I(t) (interferon), B(t) (PD-1 occupancy), v (vaccine
boost of recruitment) and x_ex (exercise boost of NK activity) from :mod:`sim.therapy.drive`.
BCR-ABL1 (% IS) = 100 Y / K_y.

With k_E = 0, m_N = 0 and no interferon, checkpoint, vaccine or exercise the (X, Y, Z) block is
exactly the model of Hähnel et al., Cancer Res 2020;80:2394 (the preset ``hahnel2020``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.models.base import ModelSpec
from sim.params import DAYS_PER_MONTH as _M
from sim.params import Param, ParamTable
from sim.therapy import drive as _d

HAHNEL = "Hähnel et al. Cancer Res 2020;80:2394, Table S1 (fixed parameters), per month / 30.44"
HAHNEL_PT5 = "Hähnel 2020 Table S1, patient 5 (class C, no relapse after stop), per month / 30.44"
ASSUME = "assumption: no published fit; sweep it (cmlsim default)"
IFN_CALIBRATION = (
    "cmlsim calibration to Nordic CML (Simonsson, Blood 2011;118:3228) and SPIRIT (Preudhomme, "
    "NEJM 2010;363:2511): peg-IFN in the first 12 months of imatinib lowers the fraction without "
    "MMR at 12 months by 0.39-0.69x (tests/test_calibration.py)"
)

STATES = ("X", "Y", "Z", "E", "N")
STATE_UNITS = ("cells", "cells", "cells", "fraction", "cells/µL")
N_STATE = 5

PARAMS = ParamTable(
    [
        # --- Hähnel 2020 fixed parameters
        Param(
            "p_y",
            1.658 / _M,
            "1/day",
            1e-4,
            1.0,
            "proliferation rate of active leukemic cells",
            HAHNEL,
        ),
        Param(
            "K_y",
            1e6,
            "cells",
            1.0,
            1e12,
            "carrying capacity of active leukemic cells (100 % BCR-ABL1)",
            HAHNEL,
        ),
        Param("a", 2.0 / _M, "1/day", 1e-5, 10.0, "death rate of effector T cells", HAHNEL),
        Param(
            "r_z",
            200.0 / _M,
            "cells/day",
            0.0,
            1e6,
            "influx (homeostatic production) of effector T cells",
            HAHNEL,
        ),
        Param(
            "m",
            1e-4 / _M,
            "1/(cell·day)",
            0.0,
            1.0,
            "kill rate of leukemic cells per effector T cell",
            HAHNEL,
        ),
        # --- patient-specific (default: Hähnel patient 5, an optimal responder: 1.8 % at 3 months,
        # MMR at 7 months, MR4 at 12; no relapse after stopping)
        Param(
            "p_xy",
            0.00615 / _M,
            "1/day",
            0.0,
            1.0,
            "activation of quiescent stem cells (X -> Y)",
            HAHNEL_PT5,
        ),
        Param(
            "p_yx",
            0.000181 / _M,
            "1/day",
            0.0,
            1.0,
            "return of active cells to quiescence (Y -> X)",
            HAHNEL_PT5,
        ),
        Param(
            "p_z",
            176.0 / _M,
            "cells/day",
            0.0,
            1e9,
            "immune recruitment strength (immune window)",
            HAHNEL_PT5,
        ),
        Param(
            "K_z",
            28.7,
            "cells",
            1e-3,
            1e9,
            "leukemic load of maximal immune recruitment (window centre)",
            HAHNEL_PT5,
        ),
        Param(
            "e_tki",
            2.38 / _M,
            "1/day",
            0.0,
            10.0,
            "TKI kill rate at standard dose (E_max-normalised)",
            HAHNEL_PT5,
        ),
        Param("y0", 312895.0, "cells", 1.0, 1e12, "active leukemic cells at diagnosis", HAHNEL_PT5),
        Param(
            "x0_cap",
            np.inf,
            "cells",
            0.0,
            np.inf,
            "optional cap on the quasi-equilibrium X0 = (p_yx/p_xy) y0 (inf = Hähnel's choice)",
            "Hähnel 2020 uses no cap; normal quiescent HSC pool <= ~1e7 "
            "(T. Radivoyevitch, R package myelo)",
        ),
        # --- T-cell exhaustion (PD-1 axis)
        Param(
            "k_E",
            0.01,
            "1/day",
            0.0,
            1.0,
            "antigen-driven exhaustion rate (range 0.001-0.05)",
            ASSUME,
        ),
        Param(
            "K_E",
            1e4,
            "cells",
            1.0,
            1e9,
            "leukemic load of half-maximal exhaustion drive (range 1e3-1e5)",
            ASSUME,
        ),
        Param(
            "delta_E",
            0.02,
            "1/day",
            0.0,
            1.0,
            "recovery rate from exhaustion (range 0.005-0.05)",
            ASSUME,
        ),
        # --- NK cells
        Param(
            "s_N",
            250.0 * 0.07,
            "cells/µL/day",
            0.0,
            1e4,
            "NK production; s_N/d_N = 250 cells/µL at health",
            "s_N/d_N = 250/µL: healthy NK 90-600 cells/µL (Synnovis lymphocyte-subset "
            "reference range); d_N ~ 0.07/day: cmlsim assumption",
        ),
        Param(
            "d_N",
            0.07,
            "1/day",
            1e-4,
            10.0,
            "NK turnover rate",
            "assumption (NK half-life ~10 days); cmlsim default",
        ),
        Param(
            "m_N",
            1e-4,
            "1/((cells/µL)·day)",
            0.0,
            1e-2,
            "leukemic kill per NK cell at full activity (range 0-3e-4)",
            ASSUME,
        ),
        Param(
            "K_NS",
            1e3,
            "cells",
            1.0,
            1e12,
            "leukemic load halving NK activity (suppression)",
            ASSUME,
        ),
        Param(
            "K_ND", 1e6, "cells", 1.0, 1e12, "leukemic load doubling NK loss (depletion)", ASSUME
        ),
        # --- interferon-α effect sizes
        Param(
            "kappa_N",
            1.0,
            "1",
            0.0,
            20.0,
            "rise of NK activity at full interferon effect (range 0.5-3)",
            ASSUME,
        ),
        Param(
            "sigma_N",
            0.5,
            "1",
            0.0,
            20.0,
            "rise of NK production at full interferon effect (range 0.2-2)",
            ASSUME,
        ),
        Param(
            "alpha_I",
            0.5,
            "1",
            0.0,
            100.0,
            "rise of stem-cell activation at full interferon effect (range 0-3)",
            "mechanism: Essers et al. Nature 2009;458:904; value: " + IFN_CALIBRATION,
        ),
        Param(
            "k_IY",
            0.15,
            "1/day",
            0.0,
            1.0,
            "direct antiproliferative interferon effect on Y (range 0.05-0.3)",
            IFN_CALIBRATION,
        ),
    ]
)

# Parameter indices, frozen into the kernels as compile-time constants.
P_Y, K_Y, A, R_Z, M_KILL, P_XY, P_YX, P_Z, K_Z, E_TKI, Y0, X0_CAP = range(12)
K_EX, K_EXH, DELTA_E, S_N, D_N, M_N, K_NS, K_ND, KAPPA_N, SIGMA_N, ALPHA_I, K_IY = range(12, 24)

#: Switches the extensions off: the model is then exactly Hähnel et al. 2020.
PRESETS = {"hahnel2020": {"k_E": 0.0, "m_N": 0.0}}


@njit(cache=True, inline="always")
def rhs(t, y, p, drive, dy):
    """Right-hand side of ``cml_immune`` (see the module docstring for the equations)."""
    X = y[0]
    Y = y[1]
    Z = y[2]
    E = y[3]
    N = y[4]
    u_tki = drive[_d.TKI]
    I_ifn = drive[_d.IFN]
    B = drive[_d.PD1]
    r_z = p[R_Z] * (1.0 + drive[_d.VACCINE])

    F = 1.0 - E * (1.0 - B)
    A_N = (1.0 + p[KAPPA_N] * I_ifn) * (1.0 + drive[_d.EXERCISE]) / (1.0 + Y / p[K_NS])
    act = p[P_XY] * (1.0 + p[ALPHA_I] * I_ifn)
    window = p[P_Z] * F * Y / (p[K_Z] * p[K_Z] + Y * Y)

    dy[0] = -act * X + p[P_YX] * Y
    dy[1] = (
        act * X
        - p[P_YX] * Y
        + p[P_Y] * Y * (1.0 - Y / p[K_Y])
        - p[E_TKI] * u_tki * Y
        - p[M_KILL] * F * Z * Y
        - p[M_N] * A_N * N * Y
        - p[K_IY] * I_ifn * Y
    )
    dy[2] = r_z - p[A] * Z + window * Z
    dil = r_z / Z if Z > 0.0 else 0.0
    dy[3] = p[K_EX] * Y / (Y + p[K_EXH]) * (1.0 - E) - p[DELTA_E] * E - E * (dil + window)
    dy[4] = p[S_N] * (1.0 + p[SIGMA_N] * I_ifn) - p[D_N] * N * (1.0 + Y / p[K_ND])


@njit(cache=True, inline="always")
def readout(y, p):
    """BCR-ABL1 on the International Scale, in percent: 100 Y / K_y."""
    return 100.0 * y[1] / p[K_Y]


def bcr_abl(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """BCR-ABL1 (% IS) of every row of a trajectory ``y`` (n_t, n_state): 100 Y / K_y."""
    return 100.0 * np.asarray(y)[..., 1] / p[K_Y]


def initial_state(p: np.ndarray) -> np.ndarray:
    """Quasi-equilibria at diagnosis for the given leukemic load y0.

    X0 = (p_yx/p_xy) y0 (capped at ``x0_cap``), Z0 = r_z / (a - p_z y0/(K_z^2 + y0^2)) (r_z/a where
    the denominator is not positive), E0 and N0 from dE/dt = 0 and dN/dt = 0 at y0 (no drive).
    """
    return initial_states(np.asarray(p, dtype=np.float64)[None, :])[0]


def initial_states(P: np.ndarray) -> np.ndarray:
    """:func:`initial_state` of every row of a parameter matrix ``P`` (n, n_param)."""
    P = np.ascontiguousarray(P, dtype=np.float64)
    out = np.empty((P.shape[0], N_STATE))
    _initial_states(P, out)
    return out


@njit(cache=True)
def _initial_states(P, out):
    """The loop behind :func:`initial_states` (jitted: for one patient, NumPy's per-call
    overhead would dominate a vectorised form)."""
    for j in range(P.shape[0]):
        p = P[j]
        y0 = p[Y0]
        # no activation: X only fills up (to the cap, if any) unless nothing flows back either
        if p[P_XY] > 0:
            x0 = p[P_YX] / p[P_XY] * y0
        else:
            x0 = 0.0 if p[P_YX] == 0 else np.inf
        x0 = min(x0, p[X0_CAP])
        recruit = p[P_Z] * y0 / (p[K_Z] ** 2 + y0**2)
        den = p[A] - recruit
        z0 = p[R_Z] / den if den > 0 else p[R_Z] / p[A]
        drive_e = p[K_EX] * y0 / (y0 + p[K_EXH])
        # dE/dt = 0 with F = 1 - E:
        #   recruit E^2 - (drive_e + delta_E + r_z/Z0 + recruit) E + drive_e = 0
        b = drive_e + p[DELTA_E] + p[R_Z] / z0 + recruit
        # smaller root of recruit E^2 - b E + drive_e = 0, in the form without cancellation
        root = np.sqrt(max(b * b - 4.0 * recruit * drive_e, 0.0))
        e0 = 2.0 * drive_e / (b + root) if b > 0 else 0.0
        out[j, 0] = x0
        out[j, 1] = y0
        out[j, 2] = z0
        out[j, 3] = e0
        out[j, 4] = p[S_N] / (p[D_N] * (1.0 + y0 / p[K_ND]))


def immune_window(p: np.ndarray) -> tuple[float, float] | None:
    """Edges [y_min, y_max] of the immune window, or None when it does not exist.

    Z expands (recruitment exceeds death, a Z < p_z Y Z / (K_z^2 + Y^2)) exactly when
    a Y^2 - p_z Y + a K_z^2 < 0, i.e. between the roots; they exist iff p_z > 2 a K_z
    (Hähnel et al. 2020). Exhaustion (F < 1) narrows the window; this is the F = 1 window.
    """
    a, pz, kz = p[A], p[P_Z], p[K_Z]
    disc = pz * pz - 4.0 * a * a * kz * kz
    if disc <= 0:
        return None
    r = np.sqrt(disc)
    # numerically stable roots of a y^2 - pz y + a kz^2
    y_max = (pz + r) / (2.0 * a)
    y_min = a * kz * kz / (a * y_max)
    return float(y_min), float(y_max)


SPEC = ModelSpec(
    name="cml_immune",
    module=__name__,
    states=STATES,
    state_units=STATE_UNITS,
    params=PARAMS,
    initial_state=initial_state,
    description=(
        "quiescent (X) and active (Y) leukemic cells, CML-specific effector T cells (Z), "
        "their exhaustion (E) and NK cells (N) under TKI, interferon-α and anti-PD-1; "
        "reduces exactly to Hähnel 2020 with the preset 'hahnel2020'"
    ),
    reference="cmlsim canonical model, extending Hähnel T et al. Cancer Res 2020;80:2394-406",
    presets=PRESETS,
    # X counts in 1e3-1e10, Y down to 0.01 cells (1e-6 % BCR-ABL1) matters for relapse timing,
    # Z and N in the hundreds, E a fraction
    atol_scale=(1.0, 1e-3, 1e-3, 1e-6, 1e-3),
    readout_array=bcr_abl,
)
