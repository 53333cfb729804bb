"""The probability of cure against years of TKI before the stop (sim.plots.cure)."""

import numpy as np
import pytest

from sim.plots.cure import IFN_ARMS, cure_vs_tki_years, ifn_drive, plot_cure_vs_years
from sim.therapy import drive as dv


def test_ifn_drive_holds_the_interval_mean_effect():
    d = ifn_drive(90.0, tki=1.0)
    assert d[dv.TKI] == 1.0 and 0.3 < d[dv.IFN] < 0.8
    assert np.count_nonzero(d) == 2
    # a higher weekly dose gives a larger mean effect (monotone dose response)
    assert ifn_drive(45.0)[dv.IFN] < ifn_drive(90.0)[dv.IFN] < ifn_drive(180.0)[dv.IFN]


@pytest.fixture(scope="module")
def table():
    return cure_vs_tki_years(years=(1.0, 5.0), n=40, scales=(1e-2,))


def test_cure_vs_years_table(table):
    assert list(dict.fromkeys(table["arm"])) == list(IFN_ARMS)
    assert len(table) == 6 and set(table["n"]) == {40}
    assert np.all(table["ci_low"] <= table["p_cure"])
    assert np.all(table["p_cure"] <= table["ci_high"])
    alone = table[table["arm"] == IFN_ARMS[0]].set_index("years")
    after = table[table["arm"] == IFN_ARMS[2]].set_index("years")
    # longer TKI before the stop cures more of the cohort (200 patients: 1.5 % vs 22 %)
    assert alone.loc[5.0, "cured"] > alone.loc[1.0, "cured"] + 3
    # interferon through follow-up holds most relapses back at this scale (200 patients, stop
    # after 1 year: 66 % relapse without, 17 % with); the same patients and streams in both arms
    for y in (1.0, 5.0):
        assert after.loc[y, "relapsed"] < 0.5 * alone.loc[y, "relapsed"]


def test_cure_vs_years_figure(table, tmp_path):
    from sim.plots.trajectory import check_no_overlap

    two = table.assign(cell_scale=1e-3)
    fig = plot_cure_vs_years(__import__("pandas").concat([table, two]), tmp_path / "years")
    assert len(fig.axes) == 4
    assert check_no_overlap(fig) == []
    assert (tmp_path / "years.png").stat().st_size > 0 and (tmp_path / "years.csv").exists()


def test_cure_vs_years_rejects_a_wrong_parameter_matrix():
    with pytest.raises(ValueError, match="one row per patient"):
        cure_vs_tki_years(n=3, params=np.zeros((2, 4)))
