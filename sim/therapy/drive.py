"""The drive: what therapy does to a model at time t, as a small float vector the kernels read.

The therapy layer computes these values inside the kernel (from dose schedules and PK), and a
model's right-hand side reads them; models never see doses or concentrations.

====  ===========  =====================================================================
slot  name         meaning
====  ===========  =====================================================================
0     TKI          relative TKI effect u(t): 1 = the patient's fitted kill rate at standard
                   dose (E_max-normalised, :mod:`sim.therapy.pk`); 0 = off
1     IFN          interferon-α effect I(t) in [0, 1]
2     PD1          anti-PD-1 receptor occupancy B(t) in [0, 1]
3     VACCINE      relative rise of effector T-cell recruitment (r_z multiplier - 1)
4     EXERCISE     relative rise of NK activity (A_N multiplier - 1)
====  ===========  =====================================================================
"""

TKI = 0
IFN = 1
PD1 = 2
VACCINE = 3
EXERCISE = 4
N_DRIVE = 5

NAMES = ("tki_effect", "interferon", "pd1_occupancy", "vaccine_boost", "exercise_boost")
