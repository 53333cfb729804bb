"""Calibration of the default cohort (issue 4): EURO-SKI relapse-free survival and Tang 2011's
BCR-ABL1 kinetics, on 2,000 virtual patients of the shipped scenario with a fixed seed.

Targets, copied with their sources:
- EURO-SKI (Saussele et al. Lancet Oncol 2018;19:747): molecular relapse-free survival 61 % at
  6 months and 50 % at 24 months after stop; accepted within +-8 points (the issue's tolerance).
- Tang et al. Blood 2011;118:1622, imatinib 400 mg: ln-slope of BCR-ABL1, phase 1 (months 1-3)
  -0.052 +- 0.018 /day, phase 2 (months 6-24, on therapy, detectable) -0.0057 +- 0.0038 /day
  (mean +- SD); the cohort mean must lie within one SD.
"""

from pathlib import Path

import numpy as np
import pytest

from sim import cohort, scenario
from sim.outcomes import response_slopes, tfr_at

SCENARIO = Path(__file__).parents[1] / "scenarios" / "cohort-euro-ski.toml"
N = 2000

TANG = {"phase1": (-0.052, 0.018), "phase2": (-0.0057, 0.0038)}
EURO_SKI = {6: 0.61, 24: 0.50}
TOLERANCE = 0.08


def _run(calibration: str):
    text = SCENARIO.read_text().replace(
        "spread = 0.1", f'spread = 0.1\ntrajectory_every = "7d"\ncalibration = "{calibration}"'
    )
    sc = scenario.loads(text, str(SCENARIO))
    return cohort.run_cohort(sc, size=N)


@pytest.fixture(scope="module")
def calibrated():
    return _run("tang2011")


def _slopes(r, window):
    k_y = r.params[:, r.model.params.index("K_y")]
    bcr = 100.0 * r.y[:, :, 1] / k_y[:, None]
    return response_slopes(r.t, bcr, r.outcomes["stop_time"].to_numpy(), window)


def test_euro_ski_relapse_free_survival(calibrated):
    for months, target in EURO_SKI.items():
        est, lo, hi = tfr_at(calibrated.outcomes, months)
        assert abs(est - target) <= TOLERANCE, (months, est, (lo, hi))


@pytest.mark.parametrize(("phase", "window"), [("phase1", (1, 3)), ("phase2", (6, 24))])
def test_tang_slopes_cohort_mean_within_one_sd(calibrated, phase, window):
    s = _slopes(calibrated, window)
    assert np.isfinite(s).mean() > 0.9  # nearly every patient is detectable and on TKI
    mean, sd = TANG[phase]
    assert abs(np.nanmean(s) - mean) <= sd, (phase, np.nanmean(s))


def test_published_hahnel_fits_decline_slower_than_tang():
    """Why the re-fit exists: without it, phase 1 is outside Tang's one-SD band (a finding)."""
    s = _slopes(_run("none"), (1, 3))
    mean, sd = TANG["phase1"]
    assert np.nanmean(s) > mean + sd


def test_response_slopes_recovers_a_known_exponential():
    t = np.arange(0, 800, 7.0)
    B = np.vstack([100 * np.exp(-0.05 * t), 50 * np.exp(-0.006 * t)])
    s = response_slopes(t, B, np.array([np.nan, 400.0]), (1, 3))
    np.testing.assert_allclose(s, [-0.05, -0.006], rtol=1e-9)
    s2 = response_slopes(t, B, np.array([np.nan, 100.0]), (6, 24))  # stopped before the window
    assert np.isnan(s2[1]) and np.isfinite(s2[0])


# Interferon: Nordic CML (Simonsson et al. Blood 2011;118:3228): imatinib + PegIFN-α2b 50 µg/week
# vs imatinib, MMR at 12 months 82 % vs 54 %; SPIRIT (Preudhomme et al. NEJM 2010;363:2511):
# + PegIFN-α2a 90 µg/week, ~57 % vs ~38 %. The virtual cohort resamples patients who later stopped
# TKI (94 % MMR at 12 months on imatinib alone), so the absolute rates cannot match; the effect is
# calibrated as the ratio of the fractions *without* MMR at 12 months: 0.18/0.46 = 0.39 (Nordic)
# to 0.43/0.62 = 0.69 (SPIRIT).
NON_MMR_RATIO = (0.18 / 0.46, 0.43 / 0.62)

IFN_ARM = """
[[intervention]]
name = "peg-ifn-first-12mo"
product = "{product}"
dose = "{dose}"
every = "1w"
start = "diagnosis"
duration = "12mo"
"""


def _mmr_at_12_months(text: str) -> float:
    r = cohort.run_cohort(scenario.loads(text, str(SCENARIO)), size=N)
    k_y = r.params[:, r.model.params.index("K_y")]
    i = int(np.argmin(np.abs(r.t - 12 * 365.25 / 12)))
    return float(np.mean(100.0 * r.y[:, i, 1] / k_y <= 0.1))


def _first_year_text() -> str:
    """The shipped cohort over its first 13 months (no trial: nobody stops that early)."""
    text = (
        SCENARIO.read_text().split("[trial]")[0]
        + "[cohort]"
        + SCENARIO.read_text().split("[cohort]")[1]
    )
    text = text.replace('horizon = "12y"', 'horizon = "13mo"')
    assert 'horizon = "13mo"' in text
    return text.replace("spread = 0.1", 'spread = 0.1\ntrajectory_every = "30d"')


@pytest.fixture(scope="module")
def mmr_12_imatinib_alone():
    return _mmr_at_12_months(_first_year_text())


@pytest.mark.parametrize(
    ("product", "dose"), [("peginterferon-alfa-2b", "50ug"), ("peginterferon-alfa-2a", "90ug")]
)
def test_interferon_in_first_year_lowers_non_mmr_as_nordic_and_spirit(
    mmr_12_imatinib_alone, product, dose
):
    without = mmr_12_imatinib_alone
    with_ifn = _mmr_at_12_months(_first_year_text() + IFN_ARM.format(product=product, dose=dose))
    ratio = (1 - with_ifn) / (1 - without)
    assert NON_MMR_RATIO[0] <= ratio <= NON_MMR_RATIO[1], (without, with_ifn, ratio)
