"""Parameter sweeps: the [sweep] section, designs, kernel inputs, executors, the store, resume.

The expensive checks run real things: a Dask ``LocalCluster`` of two worker processes against
the serial executor (bit for bit), and a ``cmlsim sweep`` process killed with SIGKILL in the
middle of its run, then resumed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from sim import run, scenario
from sim.cli import main
from sim.engines import ode, rng
from sim.scenario import ScenarioError
from sim.sweep import (
    STATUS,
    SweepError,
    design,
    load_sweep,
    markers,
    metrics,
    n_samples,
    run_sweep,
    with_sweep,
)
from sim.sweep.runs import Runner

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "scenarios" / "sweep-sobol-tfr.toml"
MONTH = 365.25 / 12

#: A patient with a fixed stop and an interferon course around it; {sweep} is filled per test.
BASE = """
[scenario]
name = "{name}"
model = "cml_immune"
horizon = "8y"
seed = 11

[patient]
hahnel_patient = 10

[[therapy]]
drug = "imatinib"
dose = "400mg"
every = "1d"
start = "diagnosis"

[protocol]
monitoring = "eln2020"
stop = {{ at = "3y" }}
restart = "loss_of_mmr"

[[intervention]]
name = "ifn"
product = "peginterferon-alfa-2a"
dose = "90ug"
every = "1w"
start = {{ anchor = "tki_stop", offset = "-2mo" }}
duration = "6mo"
{sweep}
"""

MIXED = """
[sweep]
design = "lhs"
n = 120
chunk = 16

[sweep.params]
patient.s_N = { low = 6.3, high = 42.0, scale = "log" }
patient.k_E = { low = "0.001/d", high = "0.1/d", scale = "log" }
therapy.0.dose = { low = "300mg", high = "600mg" }
protocol.stop.at = { low = "2y", high = "4y" }
intervention.ifn.dose = { low = "0ug", high = "180ug" }
intervention.ifn.start = { low = "-6mo", high = "6mo" }
intervention.ifn.duration = { low = "3mo", high = "12mo" }
"""

MODEL_ONLY = """
[sweep]
design = "sobol"
n = 16
chunk = 40

[sweep.params]
patient.s_N = { low = 6.3, high = 42.0, scale = "log" }
patient.m_N = { low = 3e-5, high = 3e-4, scale = "log" }
"""


def scen(sweep: str, name: str = "t-sweep") -> scenario.Scenario:
    return scenario.loads(BASE.format(name=name, sweep=sweep), f"{name}.toml")


def write(tmp_path: Path, sweep: str, name: str = "t-sweep") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(BASE.format(name=name, sweep=sweep), encoding="utf-8")
    return path


def arrays(store: Path) -> dict[str, np.ndarray]:
    g = zarr.open_group(store / "sweep.zarr", mode="r")
    return {name: g[name][...] for name in g.array_keys()}


def same_bits(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        if a[name].dtype.kind in "OTU":
            assert list(a[name]) == list(b[name]), name
        else:
            assert a[name].tobytes() == b[name].tobytes(), name


# ---------------------------------------------------------------------------------------------
# the [sweep] section


def test_shipped_sweep_scenario():
    sc = scenario.load(SHIPPED)
    sw = sc.sweep
    assert sw is not None and sw.design == "sobol" and sw.n == 1024 and sw.second_order
    assert len(sw.params) == 8
    assert n_samples(sw) == 1024 * (2 * 8 + 2) == 18_432
    assert sc.horizon == pytest.approx(10 * 365.25)
    by_path = {p.path: p for p in sw.params}
    assert by_path["protocol.stop.at"].low == pytest.approx(2 * 365.25)
    assert by_path["intervention.peg-ifn.start"].low == pytest.approx(-6 * MONTH)
    assert by_path["intervention.peg-ifn.dose"].unit == "mg"


def test_section_values_and_defaults():
    sc = scen(MIXED)
    sw = sc.sweep
    assert sw.design == "lhs" and sw.n == 120 and sw.chunk == 16
    assert sw.outputs == ("tfr_24mo", "tfr_months") and sw.phase == ()
    p = {q.path: q for q in sw.params}
    assert p["therapy.0.dose"].low == 300 and p["therapy.0.dose"].unit == "mg"
    assert p["intervention.ifn.dose"].high == pytest.approx(0.18)
    assert p["patient.k_E"].scale == "log" and p["patient.k_E"].unit == "1/day"
    assert p["protocol.stop.at"].name == "stop_at"
    # quoted key paths and dotted keys are the same address
    quoted = scen(
        '[sweep]\ndesign = "grid"\n[sweep.params]\n"patient.k_E" = { values = [0.01, 0.02] }'
    )
    assert quoted.sweep.params[0].path == "patient.k_E"
    assert quoted.sweep.params[0].values == (0.01, 0.02)


def section(params: str, head: str = 'design = "lhs"\nn = 8') -> str:
    return f"[sweep]\n{head}\n[sweep.params]\n{params}"


K_E = "patient.k_E = { low = 0.0, high = 0.1 }"
BAD = [
    (section(K_E, 'design = "sobl"\nn = 8'), "sweep.design", "did you mean 'sobol'"),
    (section(K_E, 'design = "sobol"\nn = 6'), "sweep.n", "power of 2"),
    (section(K_E, 'design = "lhs"\nn = 8\nchunck = 4'), "sweep.chunck", "did you mean 'chunk'"),
    (
        section("patient.k_EE = { low = 0.0, high = 0.1 }"),
        "sweep.params.patient.k_EE",
        "did you mean 'k_E'",
    ),
    (
        section("patient.k_E = { low = 0.5, high = 0.1 }"),
        "sweep.params.patient.k_E.high",
        "high > low",
    ),
    (
        section("patient.k_E = { low = 0.0, high = 3.0 }"),
        "sweep.params.patient.k_E.high",
        "bounds of k_E",
    ),
    (
        section('patient.k_E = { low = 0.0, high = 0.1, scale = "log" }'),
        "sweep.params.patient.k_E.low",
        'scale = "log"',
    ),
    (
        section('protocol.stop.after = { low = "3y", high = "5y" }'),
        "sweep.params.protocol.stop.after",
        "criteria stop",
    ),
    (
        section('protocol.stop.at = { low = "2y", high = "9y" }'),
        "sweep.params.protocol.stop.at.high",
        "before the horizon",
    ),
    (
        section('intervention.ifn.start = { low = "-4y", high = "1y" }'),
        "sweep.params.intervention.ifn.start.low",
        "before diagnosis",
    ),
    (
        section("intervention.ifm.dose = { low = 0.0, high = 0.1 }"),
        "sweep.params.intervention.ifm.dose",
        "did you mean 'ifn'",
    ),
    (
        section('therapy.1.dose = { low = "1mg", high = "2mg" }'),
        "sweep.params.therapy.1.dose",
        "[[therapy]]",
    ),
    (
        section("patient.k_E = { values = [0.1, 0.2] }"),
        "sweep.params.patient.k_E.values",
        "grid designs",
    ),
    (section(K_E, 'design = "lhs"\nn = 8\noutputs = ["tfr_2mo"]'), "sweep.outputs", "did you mean"),
    (section(K_E, 'design = "sobol"\nn = 8'), "sweep.second_order", "two or more parameters"),
    (
        section('protocol.stop.at = { low = "1mo", high = "3y" }'),
        "sweep.params.protocol.stop.at",
        "after diagnosis",
    ),
]


@pytest.mark.parametrize(("section", "key", "message"), BAD)
def test_bad_section(section, key, message):
    text = BASE.format(name="bad", sweep=section)
    with pytest.raises(ScenarioError) as err:
        scenario.loads(text, "bad.toml")
    e = err.value
    assert e.key.startswith(key), str(e)
    assert message in str(e), str(e)
    line = text.splitlines()[e.line - 1]
    assert e.key.split(".")[-1] in line or line.startswith("[sweep"), (e.line, line)


def test_bad_section_on_the_command_line(tmp_path, capsys):
    path = write(tmp_path, BAD[4][0])
    code = main(["sweep", str(path), "--results", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "sweep.params.patient.k_E.high" in err
    assert not (tmp_path / "out").exists()
    # no [sweep] at all
    plain = tmp_path / "plain.toml"
    plain.write_text(BASE.format(name="plain", sweep=""), encoding="utf-8")
    assert main(["sweep", str(plain), "--results", str(tmp_path / "out")]) == 2
    assert "no [sweep] section" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# designs


def test_grid_design():
    sc = scen(
        '[sweep]\ndesign = "grid"\nlevels = 3\n[sweep.params]\n'
        'patient.k_E = { low = 0.001, high = 0.1, scale = "log" }\n'
        'therapy.0.dose = { values = ["300mg", "400mg"] }\n'
        'protocol.stop.at = { low = "2y", high = "4y", levels = 2 }'
    )
    v = design.design_values(sc.sweep, sc.seed)
    assert v.shape == (3 * 2 * 2, 3) == (n_samples(sc.sweep), 3)
    np.testing.assert_allclose(np.unique(v[:, 0]), [1e-3, 1e-2, 1e-1], rtol=1e-12)
    assert set(v[:, 1]) == {300.0, 400.0}
    assert set(v[:, 2]) == {2 * 365.25, 4 * 365.25}
    # full factorial, last parameter fastest
    assert len({tuple(r) for r in v}) == 12
    assert v[0, 2] != v[1, 2] and v[0, 1] == v[1, 1]


@pytest.mark.parametrize(
    ("kind", "extra", "rows"),
    [
        ("lhs", "n = 50", 50),
        ("sobol", "n = 32", 32 * (2 * 3 + 2)),
        ("sobol", "n = 32\nsecond_order = false", 32 * (3 + 2)),
        ("morris", "n = 6\nlevels = 4", 6 * (3 + 1)),
    ],
)
def test_random_designs(kind, extra, rows):
    section = (
        f'[sweep]\ndesign = "{kind}"\n{extra}\n[sweep.params]\n'
        'patient.k_E = { low = 0.001, high = 0.1, scale = "log" }\n'
        'therapy.0.dose = { low = "300mg", high = "600mg" }\n'
        'intervention.ifn.start = { low = "-6mo", high = "6mo" }'
    )
    sc = scen(section)
    v = design.design_values(sc.sweep, sc.seed)
    assert v.shape == (rows, 3) == (n_samples(sc.sweep), 3)
    for j, p in enumerate(sc.sweep.params):
        assert (v[:, j] >= p.low).all() and (v[:, j] <= p.high).all()
    np.testing.assert_array_equal(v, design.design_values(sc.sweep, sc.seed))
    assert not np.array_equal(v, design.design_values(sc.sweep, sc.seed + 1))
    u = design.to_unit(sc.sweep.params[0], v[:, 0])
    if kind == "lhs":  # one sample per stratum, in every column (log scale: in the logarithm)
        for col in (u, design.to_unit(sc.sweep.params[1], v[:, 1])):
            assert sorted(np.floor(col * 50).astype(int)) == list(range(50))
    if kind == "morris":  # trajectories move one parameter at a time by one grid step
        steps = np.abs(
            np.diff(
                np.column_stack(
                    [design.to_unit(p, v[:, j]) for j, p in enumerate(sc.sweep.params)]
                ),
                axis=0,
            )
        )
        for t in range(6):
            block = steps[t * 4 : t * 4 + 3]
            assert ((block > 1e-9).sum(axis=1) == 1).all()
            np.testing.assert_allclose(block.max(axis=1), 2 / 3)


# ---------------------------------------------------------------------------------------------
# kernel inputs and runs


def single_scenario(row: dict[str, float]) -> scenario.Scenario:
    """The BASE scenario with the values of one MIXED design row written into the file."""
    row = {k: float(v) for k, v in row.items()}
    text = BASE.format(name="one", sweep="")
    text = text.replace('dose = "400mg"', f'dose = "{row["therapy_0_dose"]!r}mg"')
    text = text.replace('stop = { at = "3y" }', f'stop = {{ at = "{row["stop_at"]!r}d" }}')
    text = text.replace('dose = "90ug"', f'dose = "{row["intervention_0_dose"]!r}mg"')
    text = text.replace('offset = "-2mo"', f'offset = "{row["intervention_0_start"]!r}d"')
    text = text.replace('duration = "6mo"', f'duration = "{row["intervention_0_duration"]!r}d"')
    text = text.replace(
        "hahnel_patient = 10", f"hahnel_patient = 10\ns_N = {row['s_N']!r}\nk_E = {row['k_E']!r}"
    )
    return scenario.loads(text, "one.toml")


def test_inputs_equal_what_the_scenario_reader_compiles():
    sc = scen(MIXED)
    runner = Runner(sc)
    assert not runner.shared
    v = design.design_values(sc.sweep, sc.seed)[:12]
    names = [p.name for p in sc.sweep.params]
    got = runner.inputs(v)
    before = 0
    for j in range(v.shape[0]):
        one = single_scenario(dict(zip(names, v[j])))
        arr = run.scenario_arrays(one)
        ref = run.kernel_arguments(
            one.model,
            arr["params"],
            arr["sched"],
            arr["proto"],
            iv=arr["iv"],
            t_out=np.array([one.horizon]),
        )
        np.testing.assert_array_equal(got["p"][j], ref["p"])
        np.testing.assert_array_equal(got["y0"][j], ref["y0"])
        np.testing.assert_array_equal(got["sched"][j], ref["sched"])
        np.testing.assert_array_equal(got["proto"][j], ref["proto"])
        np.testing.assert_array_equal(got["iv"][j], ref["iv"])
        before += v[j, names.index("intervention_0_start")] < 0
    assert 0 < before < v.shape[0]  # both sides of the stop are covered


@pytest.mark.parametrize("section", [MIXED, MODEL_ONLY])
def test_runs_equal_single_kernel_runs_with_their_stream(section):
    sc = scen(section)
    runner = Runner(sc)
    assert runner.shared == (section is MODEL_ONLY)
    v = design.design_values(sc.sweep, sc.seed)
    first, m = 5, 6
    res = runner.run(v[first : first + m], first)
    streams = rng.seed_states(sc.seed, first + m)
    names = [n for n, _ in run.KERNEL_ARGUMENTS]
    inputs = runner.inputs(v[first : first + m])
    for j in range(m):
        a = run.kernel_arguments(
            sc.model,
            inputs["p"][j],
            inputs["sched"][j] if not runner.shared else inputs["sched"],
            inputs["proto"][j] if not runner.shared else inputs["proto"],
            iv=inputs["iv"][j] if not runner.shared else inputs["iv"],
            qpcr=runner.arr["qpcr"],
            atol=runner.arr["atol"],
            t_out=runner.t_out,
        )
        a["state"] = streams[first + j].copy()
        ode.simulate_one(*(a[n] for n in names))
        ref = metrics.metrics(
            runner.model,
            ode,
            a["summary"][None],
            a["stats"][None],
            a["y_out"][None, -1],
            a["p"][None],
            sc.horizon,
        )
        assert res.outcome[j].tobytes() == ref[0].tobytes()


def test_metrics_tfr_indicators_and_outcome_classes():
    from sim.models import cml_immune

    spec = cml_immune.SPEC
    horizon = 10 * 365.25
    S = np.full((5, ode.S_N), np.nan)
    stats = np.zeros((5, ode.ST_N), dtype=np.int64)
    stop = 3 * 365.25
    S[:4, ode.S_STOP_TIME] = stop
    S[0, ode.S_RELAPSE_TIME] = stop + 10 * MONTH  # relapse after 10 months
    S[1, ode.S_RELAPSE_TIME] = stop + 30 * MONTH  # after 30 months
    S[4, ode.S_STOP_TIME] = 8.5 * 365.25  # stopped late: 12 months known, 24 and 60 censored
    final = np.tile([1e3, 10.0, 100.0, 0.1, 250.0], (5, 1))
    final[2, :2] = [0.2, 0.3]  # cured: X + Y < 1
    p = np.tile(spec.params.vector({}), (5, 1))
    out = metrics.metrics(spec, ode, S, stats, final, p, horizon)
    col = {n: out[:, i] for i, n in enumerate(metrics.metric_names(spec))}
    np.testing.assert_array_equal(col["tfr_12mo"], [0, 1, 1, 1, 1])
    np.testing.assert_array_equal(col["tfr_24mo"], [0, 1, 1, 1, np.nan])
    np.testing.assert_array_equal(col["tfr_60mo"], [0, 0, 1, 1, np.nan])
    S[3, ode.S_STOP_TIME] = np.nan  # never stopped: not in TFR, 0 months of it
    out = metrics.metrics(spec, ode, S, stats, final, p, horizon)
    col = {n: out[:, i] for i, n in enumerate(metrics.metric_names(spec))}
    assert col["tfr_12mo"][3] == 0 and col["tfr_months"][3] == 0
    np.testing.assert_allclose(col["months_to_relapse"][:2], [10, 30])
    np.testing.assert_allclose(col["tfr_months"][[0, 1]], [10, 30])
    assert col["tfr_months"][2] == pytest.approx((horizon - stop) / MONTH)
    codes = metrics.OUTCOME_CODES
    assert list(col["outcome_class"]) == [
        codes["relapse"],
        codes["relapse"],
        codes["cure"],
        codes["no stop"],
        codes["control"],
    ]
    np.testing.assert_allclose(
        col["bcr_abl_final"], 100 * final[:, 1] / p[0, spec.params.index("K_y")]
    )


def test_final_readout_with_a_parameter_vector_per_run_equals_one_call_per_run():
    from sim.models import cml_immune

    spec = cml_immune.SPEC
    gen = np.random.default_rng(3)
    m = 50
    final = gen.lognormal(0.0, 3.0, (m, spec.n_state))
    p = np.tile(spec.params.vector({}), (m, 1))
    p[:, spec.params.index("K_y")] *= gen.uniform(0.5, 2.0, m)  # the readout's own parameter
    one_by_one = np.array([spec.readout_array(final[j : j + 1], p[j])[0] for j in range(m)])
    got = metrics.final_readout(spec, final, p)
    assert got.shape == (m,) and got.tobytes() == one_by_one.tobytes()
    assert len(set(got)) == m  # every run its own value: the parameters did reach each row
    # a readout that takes one parameter vector only is called once per run instead
    calls = []

    def scalar_only(y, q):
        calls.append(1)
        return 100.0 * np.asarray(y)[..., 1] / float(q[spec.params.index("K_y")])

    scalar = dataclasses.replace(spec, readout_array=scalar_only)
    assert metrics.final_readout(scalar, final, p).tobytes() == one_by_one.tobytes()
    assert len(calls) == m + 1  # the transposed try, then every run


def test_runner_streams_are_the_sweeps_rows_whatever_is_asked_first():
    sc = scen(MIXED)
    ref = rng.seed_states(sc.seed, 120)
    runner = Runner(sc)
    for first, stop in [(5, 9), (0, 3), (30, 120), (100, 101), (0, 120)]:
        got = runner.streams(first, stop)
        assert got.tobytes() == ref[first:stop].tobytes()
        got[:] = 0  # a copy: the kernel advances it in place
    assert runner.streams(0, 120).tobytes() == ref.tobytes()


# ---------------------------------------------------------------------------------------------
# store, executors, resume


def test_default_chunk_size_follows_the_workers():
    from sim.sweep.store import default_chunk

    # the shipped Sobol sweep: about 8 chunks per worker when the workers are known
    assert default_chunk(18_432, 2) == 1024  # 18 chunks, capped at 1024 runs
    assert default_chunk(18_432, 8) == 288  # 64 chunks
    assert default_chunk(18_432) == 384  # unknown: about 48 chunks
    assert default_chunk(100, 2) == 128 and default_chunk(10**7, 64) == 1024  # the bounds


def test_tasks_group_consecutive_chunks_and_shrink_towards_the_end():
    from sim.sweep.execute import TASK_RUNS, plan_tasks

    # the shipped sweep on 2 workers: 72 chunks of 256 runs
    tasks = plan_tasks(list(range(72)), 256, 2)
    sizes = [len(t) for t in tasks]
    assert [k for t in tasks for k in t] == list(range(72))  # each chunk once, in order
    assert all(t == list(range(t[0], t[-1] + 1)) for t in tasks)  # consecutive
    assert max(sizes) * 256 == TASK_RUNS and sizes == sorted(sizes, reverse=True)
    assert sizes[-4:] == [1, 1, 1, 1]  # the last chunks go one by one
    # guided: a task takes ceil(remaining / (2 workers)) chunks, at most TASK_RUNS // chunk
    left = 72
    for t in tasks:
        assert len(t) == min(4, -(-left // 4))
        left -= len(t)
    # a resume: never across a chunk that is done
    tasks = plan_tasks([0, 1, 2, 5, 6, 9], 100, 1)
    assert tasks == [[0, 1, 2], [5, 6], [9]]
    # chunks of TASK_RUNS runs or more: one per task
    assert plan_tasks([3, 4, 5], TASK_RUNS, 2) == [[3], [4], [5]]
    assert plan_tasks([], 10, 2) == []


def test_store_layout_and_chunking_do_not_change_results(tmp_path):
    section = MIXED.replace("n = 120", "n = 40")
    sc = scen(section.replace("chunk = 16", 'chunk = 16\ntrajectory_every = "1y"'))
    a = run_sweep(sc, results_root=tmp_path / "a", executor="serial", analysis=False)
    assert a.computed == a.chunks == 3 and not a.failed
    ds = load_sweep(a.path)
    assert ds.sizes["sample"] == 40 and ds.sizes["metric"] == len(
        metrics.metric_names(Runner(sc).model)
    )
    assert ds["trajectory"].dims == ("sample", "time", "state")
    assert list(ds["state"].values) == ["X", "Y", "Z", "E", "N"]
    assert (ds["status"].values == STATUS["done"]).all()
    for p in sc.sweep.params:  # parameters are coordinates on sample, with their address
        assert p.name in ds.coords and ds[p.name].dims == ("sample",)
        assert ds[p.name].attrs["path"] == p.path and ds[p.name].attrs["units"] == p.unit
    np.testing.assert_array_equal(
        ds["trajectory"].values[:, -1],
        ds["outcome"].sel(metric=["X_final", "Y_final", "Z_final", "E_final", "N_final"]).values,
    )
    np.testing.assert_array_equal(ds["tfr_24mo"].values, ds["outcome"].sel(metric="tfr_24mo"))
    for key in ("version", "git_revision", "scenario", "seed", "sweep_id", "design"):
        assert key in ds.attrs
    assert ds.attrs["scenario"] == sc.text and ds.attrs["seed"] == str(sc.seed)
    # another chunk size: the same numbers
    other = scen(section.replace("chunk = 16", 'chunk = 7\ntrajectory_every = "1y"'))
    b = run_sweep(other, results_root=tmp_path / "b", executor="serial", analysis=False)
    # a sweep replaced in Python is written into the scenario text that the store keeps
    c = run_sweep(
        dataclasses.replace(sc, sweep=other.sweep),
        results_root=tmp_path / "c",
        executor="serial",
        analysis=False,
    )
    assert c.chunks == 6 and scenario.loads(c.layout.scenario_text).sweep == other.sweep
    same_bits(arrays(a.path), arrays(c.path))
    assert b.chunks == 6
    same_bits(arrays(a.path), arrays(b.path))


def test_dask_local_cluster_equals_serial_bit_for_bit(tmp_path):
    sc = scen(MIXED.replace("n = 120", "n = 64").replace("chunk = 16", "chunk = 8"), name="t-dask")
    serial = run_sweep(sc, results_root=tmp_path / "serial", executor="serial", analysis=False)
    dask = run_sweep(sc, results_root=tmp_path / "dask", executor="dask", workers=2, analysis=False)
    assert "Dask, 2 workers" in dask.executor and not dask.failed
    workers = {rec["worker"] for rec in markers(dask.path).values()}
    assert all(w.split(":")[1] != str(os.getpid()) for w in workers)  # written by the workers
    a, b = arrays(serial.path), arrays(dask.path)
    assert (a["outcome"][:, 0] == STATUS["done"]).all()  # the status metric
    same_bits(a, b)


def test_sigkill_mid_run_then_resume_runs_every_sample_once(tmp_path):
    section = MIXED.replace("n = 120", "n = 480").replace("chunk = 16", "chunk = 12")
    path = write(tmp_path, section, name="t-kill")
    root = tmp_path / "res"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sim.cli",
            "sweep",
            str(path),
            "--results",
            str(root),
            "--workers",
            "1",
            "--quiet",
            "--no-figure",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    out = root / "t-kill"
    total = 40
    deadline = time.monotonic() + 300
    try:
        while len(markers(out)) < 4:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the sweep did not start"
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    first = markers(out)
    assert 4 <= len(first) < total, "killed too late to test a resume"
    assert proc.returncode == -signal.SIGKILL
    code = main(
        [
            "sweep",
            str(path),
            "--results",
            str(root),
            "--resume",
            "--executor",
            "serial",
            "--quiet",
            "--no-figure",
        ]
    )
    assert code == 0
    final = markers(out)
    assert sorted(final) == list(range(total))
    assert not list(out.rglob("*.partial")) and not list(out.glob("chunks/.*"))
    for k, rec in first.items():  # chunks done before the kill were not computed again
        assert final[k] == rec
    resumed = {final[k]["session"] for k in final if k not in first}
    assert len(resumed) == 1 and resumed.isdisjoint({rec["session"] for rec in first.values()})
    covered = np.zeros(480, dtype=int)
    for rec in final.values():
        assert rec["status"] == "done"
        covered[rec["first"] : rec["stop"]] += 1
    assert (covered == 1).all()
    ref = run_sweep(
        scenario.load(path), results_root=tmp_path / "ref", executor="serial", analysis=False
    )
    assert (load_sweep(out)["status"].values == STATUS["done"]).all()
    same_bits(arrays(out), arrays(ref.path))


def test_failed_chunk_is_recorded_and_retried_by_resume(tmp_path, monkeypatch):
    sc = scen(MODEL_ONLY, name="t-fail")
    real = Runner.run

    def flaky(self, values, first):
        if first <= 40 < first + len(values):  # a task holding chunk 1 (runs 40-79)
            raise FloatingPointError("overflow in the test's chunk")
        return real(self, values, first)

    monkeypatch.setattr(Runner, "run", flaky)
    res = run_sweep(sc, results_root=tmp_path, executor="serial", analysis=False)
    assert set(res.failed) == {1}
    assert "FloatingPointError: overflow in the test's chunk" in res.failed[1]
    recs = markers(res.path)
    assert recs[1]["status"] == "failed" and "Traceback" not in recs[1]["error"]
    assert {recs[k]["status"] for k in recs if k != 1} == {"done"}
    ds = load_sweep(res.path)
    status = ds["status"].values
    assert (status[40:80] == STATUS["error"]).all()
    assert (status[:40] == STATUS["done"]).all() and (status[80:] == STATUS["done"]).all()
    assert np.isnan(ds["outcome"].drop_sel(metric="status").values[40:80]).all()
    monkeypatch.setattr(Runner, "run", real)
    again = run_sweep(sc, results_root=tmp_path, resume=True, executor="serial", analysis=False)
    assert again.computed == 1 and not again.failed
    assert markers(again.path)[0] == recs[0]
    ref = run_sweep(sc, results_root=tmp_path / "ref", executor="serial", analysis=False)
    same_bits(arrays(again.path), arrays(ref.path))


@pytest.mark.parametrize("section", [MIXED, MODEL_ONLY])
def test_a_run_the_kernel_raises_on_is_recorded_alone(section, tmp_path, monkeypatch):
    sc = scen(section, name="t-raise")
    values = design.design_values(sc.sweep, sc.seed)
    stream = rng.seed_states(sc.seed, 10)[9]  # run 9's random stream: unique to it
    state = [name for name, _ in run.KERNEL_ARGUMENTS].index("state")
    one, ensemble = ode.simulate_one, ode.simulate_ensemble

    def simulate_one(*args):
        if (args[state] == stream).all():
            raise ZeroDivisionError("division by zero")
        return one(*args)

    def simulate_ensemble(*args):
        if (args[state] == stream).all(axis=1).any():
            raise ZeroDivisionError("division by zero")
        return ensemble(*args)

    monkeypatch.setattr(ode, "simulate_one", simulate_one)
    monkeypatch.setattr(ode, "simulate_ensemble", simulate_ensemble)
    res = run_sweep(sc, results_root=tmp_path, executor="serial", analysis=False)
    assert not res.failed and res.run_errors == {9: "ZeroDivisionError: division by zero"}
    ds = load_sweep(res.path)
    assert ds["status"].values[9] == STATUS["error"]
    assert np.isnan(ds["outcome"].drop_sel(metric="status").values[9]).all()
    others = np.delete(np.arange(values.shape[0]), 9)
    assert (ds["status"].values[others] == STATUS["done"]).all()
    monkeypatch.undo()
    ref = run_sweep(sc, results_root=tmp_path / "ref", executor="serial", analysis=False)
    np.testing.assert_array_equal(
        ds["outcome"].values[others], load_sweep(ref.path)["outcome"].values[others]
    )


def test_resume_refuses_a_changed_scenario(tmp_path, capsys):
    path = write(tmp_path, MODEL_ONLY, name="t-change")
    root = tmp_path / "res"
    assert (
        main(
            [
                "sweep",
                str(path),
                "--results",
                str(root),
                "--executor",
                "serial",
                "--quiet",
                "--no-figure",
            ]
        )
        == 0
    )
    capsys.readouterr()
    path.write_text(path.read_text().replace("seed = 11", "seed = 12"), encoding="utf-8")
    code = main(["sweep", str(path), "--results", str(root), "--resume", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "scenario changed" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SweepError):
        run_sweep(scenario.load(path), results_root=root, resume=True, executor="serial")


def test_command_line_sweep_writes_indices_and_figures(tmp_path, capsys):
    path = write(tmp_path, MODEL_ONLY, name="t-cli")
    code = main(["sweep", str(path), "--results", str(tmp_path), "--executor", "serial", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    folder = tmp_path / "t-cli"
    assert "sobol design (n = 16, second order) over 2 parameters, 96 runs" in out
    assert "total Sobol index (95 % CI)" in out and f"results: {folder}" in out
    table = pd.read_csv(folder / "sensitivity.csv")
    assert set(table["index"]) == {"S1", "ST", "S2"}
    for stem in ("indices", "phase"):
        assert (folder / f"{stem}.png").stat().st_size > 1000
        assert (folder / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
        assert (folder / f"{stem}_data.csv").exists()
    # a second sweep never overwrites the first
    assert (
        main(
            [
                "sweep",
                str(path),
                "--results",
                str(tmp_path),
                "--executor",
                "serial",
                "--quiet",
                "--no-figure",
            ]
        )
        == 0
    )
    assert (tmp_path / "t-cli.2" / "sweep.zarr").is_dir()
    assert json.loads((folder / "chunks" / "0000000.json").read_text())["status"] == "done"


def test_with_sweep_from_python():
    base = scen("")
    sc = with_sweep(
        base,
        "grid",
        {
            "patient.k_E": {"values": [0.01, 0.02]},
            "intervention.0.dose": {"low": "0ug", "high": "90ug", "levels": 2},
        },
    )
    assert n_samples(sc.sweep) == 4 and sc.path == base.path
    assert "[sweep]" in sc.text
    with pytest.raises(ScenarioError, match="did you mean 'k_E'"):
        with_sweep(base, "lhs", {"patient.kE": {"low": 0, "high": 1}}, n=4)
