"""The Mesa front end (CMLModel over the numba kernel), the plain Mesa model of the same rules,
and scenarios on the cell-level engines.

Test statistic of the cross-check: chi-square homogeneity of binned counts (X, Y, Z at days 10
and 20) between 300 runs of the numba kernel and 300 of the plain Mesa model; pass if every
p-value >= 1e-3 (six tests, Bonferroni level 6e-3).
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sim.engines import abm
from sim.models import cml_immune as cm

mesa = pytest.importorskip("mesa")
from sim import mesa_model as mm  # noqa: E402


def chi2_homogeneity(a, b, n_bins=8):
    """p-value of the chi-square test that two samples of counts come from one distribution
    (as in tests/engines/test_abm.py)."""
    from scipy import stats

    pooled = np.concatenate([a, b])
    edges = np.unique(np.quantile(pooled, np.linspace(0, 1, n_bins + 1)))
    if edges.size < 3:
        cut = np.median(pooled)
        ka, kb = int((a > cut).sum()), int((b > cut).sum())
        if ka + kb in (0, a.size + b.size):
            return 1.0
        return stats.chi2_contingency([[ka, a.size - ka], [kb, b.size - kb]])[1]
    ia = np.clip(np.searchsorted(edges, a, side="right") - 1, 0, edges.size - 2)
    ib = np.clip(np.searchsorted(edges, b, side="right") - 1, 0, edges.size - 2)
    table = np.array(
        [np.bincount(ia, minlength=edges.size - 1), np.bincount(ib, minlength=edges.size - 1)]
    )
    return stats.chi2_contingency(table[:, table.sum(axis=0) > 0])[1]


def small():
    p = cm.PARAMS.vector({})
    p[cm.R_Z] = 0.5
    p[cm.A] = 0.05
    p[cm.M_KILL] = 0.005
    p[cm.P_Z] = 50.0
    p[cm.K_Z] = 5e3
    ap = {"cell_scale": 1e-3, "nk_volume": 0.2, "sens_sd_log": 0.5}
    return p, ap, np.array([15.0, 60.0, 10.0, 0.2, 150.0])


def test_cml_model_is_the_numba_kernel():
    p = cm.PARAMS.vector({})
    t = np.array([0.0, 10.0, 30.0])
    a = abm.simulate_abm(p, {"cell_scale": 1e-2}, None, 15.0, 30.0, seed=9, n=3, t_out=t)
    b = mm.simulate_mesa(p, {"cell_scale": 1e-2}, 15.0, 30.0, seed=9, n=3, t_out=t)
    for key in ("y", "events", "updates", "t_eradication", "t_relapse", "state_at_stop"):
        np.testing.assert_array_equal(a[key], b[key])
    m = mm.CMLModel(p, {"cell_scale": 1e-2}, seed=9, patient=2, horizon=10.0)
    while m.running:
        m.step()
    df = m.datacollector.get_model_vars_dataframe()
    assert len(df) == 11 and list(df.columns)[:3] == ["t", "X", "Y"]
    assert df["Y"].iloc[-1] == a["y"][2, 1, 1] and df["t"].iloc[-1] == 10.0
    assert df["bcr_abl"].iloc[0] == pytest.approx(100 * a["y"][2, 0, 1] / (1e6 * 1e-2))


def test_batch_run_with_explicit_seeds():
    out = mesa.batch_run(
        mm.CMLModel,
        {"seed": [1, 2], "cell_scale": 1e-3, "horizon": 5.0},
        iterations=1,
        max_steps=10,
        display_progress=False,
    )
    assert len(out) == 2 and {r["seed"] for r in out} == {1, 2}
    # Mesa 3.3 reports the row of its last step index: t in days = that step (dt = 1 day)
    assert all(r["t"] == r["Step"] > 0 for r in out)
    assert out[0]["Y"] != out[1]["Y"] or out[0]["Z"] != out[1]["Z"]


def test_plain_mesa_model_agrees_with_the_kernel_in_distribution():
    p, ap, y0 = small()
    t = np.array([0.0, 10.0, 20.0])
    n = 300
    k = abm.simulate_abm(p, ap, y0, np.inf, 20.0, seed=3, n=n, t_out=t, u_tki=0.5)["y"]
    plain = np.empty((n, 3, 3))
    for i in range(n):
        m = mm.PlainCMLModel(p, ap, seed=1000 + i, y0=y0, u_tki=0.5, horizon=20.0)
        while m.running:
            m.step()
        df = m.datacollector.get_model_vars_dataframe()
        plain[i] = df.loc[df["t"].isin(t), ["X", "Y", "Z"]].to_numpy()
    pv = {(ti, s): chi2_homogeneity(k[:, i, j], plain[:, i, j])
          for i, ti in ((1, 10), (2, 20)) for j, s in enumerate("XYZ")}  # fmt: skip
    assert min(pv.values()) >= 1e-3, pv
    assert k[:, 2, 1].mean() < 0.8 * y0[1]  # TKI at half effect shrinks Y: a real test


def test_mesa_is_not_imported_by_sim():
    code = "import sys, sim, sim.engines.abm, sim.engines.cellular; print('mesa' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_solara_page_builds():
    pytest.importorskip("solara")
    from sim import mesa_page

    assert mesa_page.make_page() is not None


def test_lattice_figure_without_solara():
    from sim import mesa_page

    m = mm.CMLModel(cm.PARAMS.vector({}), {"cell_scale": 0.01}, lattice=20, seed=1)
    m.step()
    fig = mesa_page.lattice_figure(m)
    assert fig.axes and "day 1" in fig.axes[0].get_title()


SCENARIO = """
[scenario]
name = "{name}"
engine = "{engine}"
horizon = "2y"
seed = 7
output_every = "7d"

[engine]
cell_scale = 0.01
{extra}

[[therapy]]
drug = "imatinib"
start = "diagnosis"

[protocol]
stop = {{ at = "1y" }}
restart = "never"
"""


@pytest.mark.parametrize("engine, extra", [("abm", 'dt = "1d"'), ("mesa", "lattice = 0"),
                                           ("stochastic", 'dt_max = "6h"')])  # fmt: skip
def test_cmlsim_run_on_cell_level_engines(tmp_path, engine, extra, capsys):
    from sim.cli import main
    from sim.results import load_run

    f = tmp_path / "s.toml"
    f.write_text(SCENARIO.format(name=f"s-{engine}", engine=engine, extra=extra))
    assert main(["run", str(f), "--results", str(tmp_path), "--no-figure"]) == 0
    out = capsys.readouterr().out
    assert f"{engine} engine" in out and "TKI stopped at 12.0 mo" in out
    ds = load_run(tmp_path / f"s-{engine}")
    assert ds.attrs["engine"] == engine and ds["y"].shape[1] == 106


def test_abm_and_mesa_runs_are_identical(tmp_path):
    from sim.run import run_scenario
    from sim.scenario import loads

    a = run_scenario(loads(SCENARIO.format(name="a", engine="abm", extra="")))
    b = run_scenario(loads(SCENARIO.format(name="b", engine="mesa", extra="")))
    np.testing.assert_array_equal(a.y, b.y)


@pytest.mark.parametrize(
    "change, key, words",
    [
        ('stop = { at = "1y" }', "protocol.stop", ["a criteria stop", 'engine "abm"']),
        ('restart = "never"', "protocol.restart", ['"loss_of_mmr"', 'restart = "never"']),
        ('start = "diagnosis"', "therapy[0].pk", ['"daily"', '"interval" or "kill"']),
        ("cell_scale = 0.01", "engine.cell_scale", ["-1", "[1e-06, 1e+06]"]),
        ("cell_scale = 0.01", "engine.eps", ['an unknown key "eps"', "lattice"]),
    ],
)
def test_unsupported_features_are_errors(tmp_path, capsys, change, key, words):
    from sim.cli import main

    text = SCENARIO.format(name="bad", engine="abm", extra="")
    new = {
        "protocol.stop": 'stop = { after = "1y", sustained = "MR4", for = "6mo" }\n'
        'restart = "never"',
        "protocol.restart": 'restart = "loss_of_mmr"',
        "therapy[0].pk": 'start = "diagnosis"\npk = "daily"',
        "engine.cell_scale": "cell_scale = -1",
        "engine.eps": "eps = 0.1",
    }[key]
    if key == "protocol.stop":
        text = text.replace('restart = "never"\n', "")
    f = tmp_path / "bad.toml"
    f.write_text(text.replace(change, new))
    assert main(["run", str(f), "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert key in err and all(w in err for w in words), err
    assert not any(tmp_path.glob("bad*/"))


@pytest.mark.parametrize("engine", ["abm", "stochastic"])
def test_cohort_probability_of_cure(tmp_path, capsys, engine):
    from sim.cli import main

    extra = "max_agents = 10000" if engine == "abm" else ""  # counts above 1e4 cells
    text = SCENARIO.format(name="cure", engine=engine, extra=extra) + textwrap.dedent(
        """
        [cohort]
        size = 40
        base = "none"
        """
    )
    f = tmp_path / "c.toml"
    f.write_text(text)
    assert main(["cohort", str(f), "--results", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "probability of cure" in out and "95 % CI" in out
    import pandas as pd

    tab = pd.read_csv(tmp_path / "cure" / "outcomes.csv")
    assert len(tab) == 40 and {"eradicated", "eradication_time", "relapse"} <= set(tab.columns)
