"""End-to-end tests of the command line: ``cmlsim run | validate | models``.

Most tests call :func:`sim.cli.main` in-process (fast); one runs the installed ``cmlsim`` console
script in a subprocess. Every shipped scenario is run (all but one with ``--no-figure``) and its
stored run is checked file by file; bad scenarios must give exit code 2, one line on stderr and no
results folder.
"""

from __future__ import annotations

import importlib.metadata
import math
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from numba import njit

import sim
from sim import models
from sim.cli import main
from sim.params import DAYS_PER_MONTH
from sim.scenario import load

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "scenarios").glob("*.toml"))
#: The one shipped scenario run in-process with its figure (the others use --no-figure).
FIGURE_SCENARIO = "imatinib-eln-stop"
#: The shipped scenario used for the repeat / --overwrite and console-script tests.
REPEAT_SCENARIO = REPO / "scenarios" / "hahnel-patient-6.toml"
RUN_FILES = {"trajectory.nc", "summary.csv", "visits.csv", "scenario.toml"}
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-", "svg": b"<?xml"}


def cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """``main(argv)`` -> (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Name -> (bytes, mtime in ns) of every file in ``folder``."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}


def _scenario_name(path: Path) -> str:
    return tomllib.loads(path.read_text(encoding="utf-8"))["scenario"]["name"]


def _head_revision() -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    res = subprocess.run(
        [git, "--no-optional-locks", "rev-parse", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    return res.stdout.strip() if res.returncode == 0 else None


def _printed_months(out: str, label: str) -> float:
    """The value printed as ``<label> at X mo`` (NaN for ``never``)."""
    m = re.search(rf"{re.escape(label)} at (never|[0-9.]+ mo)", out)
    assert m, f"no {label!r} in the printed summary:\n{out}"
    return math.nan if m.group(1) == "never" else float(m.group(1).split()[0])


def _assert_months_match(printed: float, days: float) -> None:
    if math.isnan(days):
        assert math.isnan(printed)
    else:
        assert printed == pytest.approx(days / DAYS_PER_MONTH, abs=0.051)


def check_run_dir(run_dir: Path, source: Path, figure_formats: tuple[str, ...]) -> None:
    """Everything a stored run of the scenario file ``source`` must contain."""
    sc = load(source)
    expected = RUN_FILES | {f"trajectory.{f}" for f in figure_formats}
    assert {p.name for p in run_dir.iterdir()} == expected
    for fmt in figure_formats:
        assert (run_dir / f"trajectory.{fmt}").read_bytes().startswith(MAGIC[fmt])

    # scenario.toml is the source text, unchanged
    assert (run_dir / "scenario.toml").read_text(encoding="utf-8") == source.read_text("utf-8")

    # the netCDF: provenance and trajectory
    with xr.open_dataset(run_dir / "trajectory.nc", decode_timedelta=False) as ds:
        ds.load()
    a = ds.attrs
    assert a["name"] == sc.name
    assert a["model"] == sc.model
    assert a["software"] == "cmlsim"
    assert a["version"] == sim.__version__
    assert a["scenario"] == source.read_text(encoding="utf-8")
    assert a["seed"] == str(sc.seed)
    assert a["engine"] == "ode"
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", a["git_revision"]), a["git_revision"]
    head = _head_revision()
    if head is not None:
        assert a["git_revision"].removesuffix("-dirty") == head
    spec = models.get(sc.model)
    assert ds["y"].dims == ("patient", "time", "state")
    assert [str(s) for s in ds["state"].values] == list(spec.states)
    t = ds["time"].values
    assert ds["time"].attrs["units"] == "day"
    assert t[0] == 0.0
    assert t[-1] == pytest.approx(sc.horizon)
    assert np.all(np.diff(t) > 0)
    assert np.all(np.diff(t) <= sc.output_every + 1e-9)
    assert t.size >= sc.horizon / sc.output_every
    y = ds["y"].values
    assert y.shape == (1, t.size, spec.n_state)
    assert np.all(np.isfinite(y))
    assert np.all(y >= 0)
    bcr = ds["bcr_abl"].values[0]
    assert np.all(np.isfinite(bcr))
    assert bcr[0] > 0.1  # at diagnosis, far above MMR
    assert int(ds["solver_failures"].values[0]) == 0

    # summary.csv: one row, the same numbers as the netCDF
    summary = pd.read_csv(run_dir / "summary.csv")
    assert len(summary) == 1
    row = summary.iloc[0]
    assert row["name"] == sc.name
    assert int(row["seed"]) == sc.seed
    for key in ("t_mmr", "stop_time", "relapse_time"):
        np.testing.assert_allclose(row[key], float(ds[key].values[0]))
        np.testing.assert_allclose(row[f"{key}_months"], row[key] / DAYS_PER_MONTH)

    # visits.csv: monitoring visits inside the horizon, in order
    visits = pd.read_csv(run_dir / "visits.csv")
    assert len(visits) >= 1
    assert {"time", "true_pct", "measured_pct", "action_name", "depth_name"} <= set(visits)
    assert visits["time"].is_monotonic_increasing
    assert visits["time"].between(0, sc.horizon).all()
    assert len(visits) == ds.sizes["visit"]


def check_printed_summary(out: str, source: Path, run_dir: Path) -> None:
    """The short summary on stdout names the scenario and agrees with summary.csv."""
    sc = load(source)
    lines = out.strip().splitlines()
    assert 3 <= len(lines) <= 10, out
    assert lines[0].startswith(f"{sc.name}: {sc.model}, ODE engine"), lines[0]
    assert f"seed {sc.seed}" in lines[0]
    assert lines[-1].strip() == f"results: {run_dir}"
    row = pd.read_csv(run_dir / "summary.csv").iloc[0]
    _assert_months_match(_printed_months(out, "true MMR"), row["t_mmr"])
    _assert_months_match(_printed_months(out, "measured MMR"), row["t_mmr_measured"])
    if math.isnan(row["stop_time"]):
        assert "TKI never stopped" in out
    else:
        _assert_months_match(_printed_months(out, "TKI stopped"), row["stop_time"])
        if math.isnan(row["relapse_time"]):
            assert "no relapse" in out
        else:
            _assert_months_match(_printed_months(out, "relapse"), row["relapse_time"])


# ---------------------------------------------------------------------------------------------
# cmlsim run / validate on the shipped scenarios


def test_scenarios_are_shipped():
    names = [_scenario_name(p) for p in SHIPPED]
    assert len(SHIPPED) >= 4
    assert FIGURE_SCENARIO in names
    assert REPEAT_SCENARIO in SHIPPED
    assert len(set(names)) == len(names), "two shipped scenarios would share results/<name>/"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_run_shipped_scenario(path, tmp_path, capsys):
    sc = load(path)
    figure = sc.name == FIGURE_SCENARIO
    root = tmp_path / "results"
    code, out, err = cli(
        capsys, "run", path, "--results", root, *([] if figure else ["--no-figure"])
    )
    assert code == 0, err
    assert err == ""
    # exactly results/<name>/: no .2, no leftover hidden temporary folder
    assert sorted(p.name for p in root.iterdir()) == [sc.name]
    run_dir = root / sc.name
    check_run_dir(run_dir, path, sc.formats if figure else ())
    check_printed_summary(out, path, run_dir)


def test_hahnel_patient_6_stops_at_cessation_time(tmp_path, capsys):
    code, out, _ = cli(capsys, "run", REPEAT_SCENARIO, "--results", tmp_path, "--no-figure")
    assert code == 0
    row = pd.read_csv(tmp_path / "hahnel-patient-6" / "summary.csv").iloc[0]
    assert row["stop_time_months"] == pytest.approx(53.0, abs=0.05)
    assert row["n_stops"] == 1
    assert "TKI stopped at 53.0 mo" in out


def test_second_run_does_not_overwrite_and_overwrite_replaces(tmp_path, capsys):
    name = _scenario_name(REPEAT_SCENARIO)
    root = tmp_path / "results"
    code, out, _ = cli(capsys, "run", REPEAT_SCENARIO, "--results", root, "--no-figure")
    assert code == 0
    first = root / name
    assert out.strip().endswith(f"results: {first}")
    before = snapshot(first)

    code, out, _ = cli(capsys, "run", REPEAT_SCENARIO, "--results", root, "--no-figure")
    assert code == 0
    second = root / f"{name}.2"
    assert out.strip().endswith(f"results: {second}")
    assert sorted(p.name for p in root.iterdir()) == [name, f"{name}.2"]
    assert snapshot(first) == before  # untouched: same bytes, same mtimes
    check_run_dir(second, REPEAT_SCENARIO, ())
    # same scenario and seed: the same trajectory
    with (
        xr.open_dataset(first / "trajectory.nc") as a,
        xr.open_dataset(second / "trajectory.nc") as b,
    ):
        np.testing.assert_array_equal(a["y"].values, b["y"].values)
    second_before = snapshot(second)

    (first / "marker.txt").write_text("from before --overwrite\n")
    code, out, _ = cli(
        capsys, "run", REPEAT_SCENARIO, "--results", root, "--no-figure", "--overwrite"
    )
    assert code == 0
    assert out.strip().endswith(f"results: {first}")
    # the whole folder was replaced (the marker is gone), no .3, no leftover temporary folders
    assert sorted(p.name for p in root.iterdir()) == [name, f"{name}.2"]
    assert not (first / "marker.txt").exists()
    check_run_dir(first, REPEAT_SCENARIO, ())
    assert snapshot(second) == second_before


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_validate_shipped_scenario(path, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, "validate", path)
    assert code == 0, err
    assert err == ""
    assert out.startswith(f"OK: {path}: {_scenario_name(path)} (")
    # one OK line, then one indented line per intervention
    lines = out.splitlines()
    assert all(line.startswith("  intervention ") for line in lines[1:]), lines
    n_interventions = sum(x.strip() == "[[intervention]]" for x in open(path, encoding="utf-8"))
    assert len(lines) == 1 + n_interventions
    assert list(tmp_path.iterdir()) == []  # validate writes nothing


def test_validate_several_files_reports_each(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[scenario]\nname = "bad"\nseed = 1\n', encoding="utf-8")
    good = SHIPPED[0]
    code, out, err = cli(capsys, "validate", good, bad, SHIPPED[1])
    assert code == 2
    ok_lines = [line for line in out.splitlines() if line.startswith("OK: ")]
    assert [line.split(": ")[1] for line in ok_lines] == [str(good), str(SHIPPED[1])]
    assert len(err.splitlines()) == 1
    assert err.startswith(f"cmlsim validate: {bad}:")


# ---------------------------------------------------------------------------------------------
# bad scenarios


@dataclass(frozen=True)
class Bad:
    id: str
    text: str | None  # None: no file at all
    key: str | None  # key path in the message (None: none, e.g. a syntax error)
    line_of: str | None  # the message names the line holding this text (None: no line)
    found: str  # must appear between "found" and "expected"
    expected: str  # must appear after "expected"


def _doc(*lines: str) -> str:
    return "\n".join(lines) + "\n"


_HEAD = ("[scenario]", 'name = "bad"', 'horizon = "5y"', "seed = 1")
_TKI = ("", "[[therapy]]", 'drug = "imatinib"')

BAD = [
    Bad(
        "missing-horizon",
        _doc("[scenario]", 'name = "bad"', "seed = 1", *_TKI),
        "scenario.horizon",
        "[scenario]",
        "missing",
        "duration",
    ),
    Bad(
        "seed-not-integer",
        _doc("[scenario]", 'name = "bad"', 'horizon = "5y"', 'seed = "abc"', *_TKI),
        "scenario.seed",
        'seed = "abc"',
        '"abc"',
        "integer",
    ),
    Bad(
        "negative-rate",
        _doc(*_HEAD, *_TKI, "", "[patient]", "p_xy = -0.1"),
        "patient.p_xy",
        "p_xy = -0.1",
        "-0.1",
        "[0, 1]",
    ),
    Bad(
        "unknown-drug",
        _doc(*_HEAD, "", "[[therapy]]", 'drug = "imatinibb"'),
        "therapy[0].drug",
        'drug = "imatinibb"',
        "imatinibb",
        "did you mean 'imatinib'",
    ),
    Bad(
        "stop-before-start",
        _doc(*_HEAD, *_TKI, 'start = "3y"', "", "[protocol]", 'stop = { at = "2y" }'),
        "protocol.stop.at",
        "stop = {",
        "2y",
        "after the start",
    ),
    Bad(
        "unknown-key",
        _doc(*_HEAD, 'colour = "red"', *_TKI),
        "scenario.colour",
        "colour =",
        "colour",
        "horizon",
    ),
    Bad(
        "toml-syntax",
        _doc("[scenario]", 'name = "bad"', "horizon = 5y", "seed = 1", *_TKI),
        None,
        "horizon = 5y",
        "syntax error",
        "TOML",
    ),
    Bad(
        "bad-duration",
        _doc("[scenario]", 'name = "bad"', 'horizon = "5 parsecs"', "seed = 1", *_TKI),
        "scenario.horizon",
        "horizon =",
        "5 parsecs",
        "duration",
    ),
    Bad("no-such-file", None, None, None, "cannot be read", "scenario file"),
]


def _line_number(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("command", ["run", "validate"])
@pytest.mark.parametrize("case", BAD, ids=lambda c: c.id)
def test_bad_scenario(case, command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a default results/ folder would land here
    path = tmp_path / f"{case.id}.toml"
    if case.text is not None:
        path.write_text(case.text, encoding="utf-8")
    root = tmp_path / "out"
    root.mkdir()
    argv = ["run", path, "--results", root] if command == "run" else ["validate", path]

    code, out, err = cli(capsys, *argv)

    assert code == 2
    assert "Traceback" not in out and "Traceback" not in err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    msg = lines[0]
    if case.line_of is None:
        assert f"{path}: " in msg
        assert not re.search(re.escape(str(path)) + r":\d+", msg)
    else:
        assert f"{path}:{_line_number(case.text, case.line_of)}: " in msg
    if case.key is not None:
        assert f" {case.key}: found " in msg
    f = msg.index(" found ")
    e = msg.index(", expected ", f)
    assert case.found in msg[f:e], msg
    assert case.expected in msg[e:], msg
    # no results folder, not even a temporary one
    assert list(root.iterdir()) == []
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("command", ["run", "validate"])
def test_directory_instead_of_file(command, tmp_path, capsys):
    folder = tmp_path / "scenario.toml"
    folder.mkdir()
    argv = (
        ["run", folder, "--results", tmp_path / "out"] if command == "run" else ["validate", folder]
    )
    code, out, err = cli(capsys, *argv)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert f"{folder}: found " in err
    assert not (tmp_path / "out").exists()


def test_results_path_is_a_file(tmp_path, capsys):
    blocker = tmp_path / "results"
    blocker.write_text("not a folder\n")
    code, out, err = cli(capsys, "run", REPEAT_SCENARIO, "--results", blocker, "--no-figure")
    assert code != 0
    assert "Traceback" not in out + err
    assert len(err.splitlines()) == 1, err
    assert str(blocker) in err
    assert blocker.read_text() == "not a folder\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results"]


def test_failed_write_leaves_no_partial_run(tmp_path, capsys, monkeypatch):
    from sim.plots import trajectory

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(trajectory, "plot_trajectory", disk_full)
    root = tmp_path / "results"
    code, out, err = cli(capsys, "run", REPEAT_SCENARIO, "--results", root)
    assert code != 0
    assert "Traceback" not in out + err
    assert len(err.splitlines()) == 1, err
    assert "No space left on device" in err
    # neither results/<name>/ nor the hidden temporary folder it was being built in
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("name", [".hidden", "-dash"])
def test_validate_and_run_agree_on_the_name(name, tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(f'therapy = []\n[scenario]\nname = "{name}"\nhorizon = "1mo"\nseed = 1\n')
    v_code, _, v_err = cli(capsys, "validate", path)
    try:
        r_code, r_out, r_err = cli(capsys, "run", path, "--results", tmp_path / "out")
    except Exception as exc:  # a traceback for the user
        pytest.fail(f"cmlsim run raised {exc!r} after validate returned {v_code}")
    assert r_code == v_code
    assert "Traceback" not in r_out + r_err
    if v_code:
        assert len(v_err.splitlines()) == 1 and len(r_err.splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# cmlsim models


def test_models_prints_parameter_tables_and_drugs(capsys):
    from sim.readout import QPCR
    from sim.therapy.drugs import DRUGS

    code, out, err = cli(capsys, "models")
    assert code == 0
    assert err == ""
    lines = out.splitlines()
    assert "cml_immune" in lines[0]
    spec = models.get("cml_immune")
    for table in (spec.params, QPCR):
        for p in table:
            row = next((ln for ln in lines if ln.split()[:1] == [p.name]), None)
            assert row is not None, f"parameter {p.name} missing from `cmlsim models`"
            assert f" {p.unit} " in row
            assert p.source.split()[0] in row  # the source is cited on the row
    for name in ("p_xy", "p_yx", "e_tki", "K_z", "y0"):
        assert any(ln.startswith(f"{name} ") for ln in lines)
    assert any("Hähnel" in ln for ln in lines if ln.startswith("p_xy "))
    assert "qPCR" in out
    for drug in DRUGS.values():
        row = next(ln for ln in lines if ln.strip().startswith(f"{drug.name}:"))
        assert f"standard {drug.standard_dose:g} mg" in row
        assert "EC50" in row


def test_models_one_model(capsys):
    code, out, _ = cli(capsys, "models", "cml_immune")
    assert code == 0
    assert out.startswith("cml_immune")
    assert "p_xy" in out
    assert "qPCR" not in out  # only the model asked for


@pytest.mark.parametrize(
    ("name", "hint"), [("nonexistent", "cml_immune"), ("cml_imune", "did you mean 'cml_immune'")]
)
def test_models_unknown_name(name, hint, capsys):
    code, out, err = cli(capsys, "models", name)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert name in err and hint in err
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# argparse


@pytest.mark.parametrize("argv", [["run"], [], ["validate"], ["frobnicate"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert "usage: cmlsim" in err
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--help"], ["run", "validate", "models"]),
        (["run", "--help"], ["--results", "--overwrite", "--no-figure"]),
    ],
)
def test_help_exits_0(argv, words, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out, _ = capsys.readouterr()
    assert out.startswith("usage: cmlsim")
    for word in words:
        assert word in out


# ---------------------------------------------------------------------------------------------
# the installed console script


def _console_script() -> str:
    try:
        dist = importlib.metadata.distribution("cmlsim")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("cmlsim is not installed (pip install -e .)")
    entry = [e for e in dist.entry_points if e.group == "console_scripts" and e.name == "cmlsim"]
    assert [e.value for e in entry] == ["sim.cli:main"]
    beside = Path(sys.executable).parent / "cmlsim"
    script = str(beside) if beside.exists() else shutil.which("cmlsim")
    assert script, "the cmlsim console script is not on PATH"
    return script


@pytest.mark.slow
def test_console_script_runs_a_scenario(tmp_path):
    script = _console_script()
    root = tmp_path / "results"
    proc = subprocess.run(
        [script, "run", "scenarios/hahnel-patient-6.toml", "--results", str(root)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.startswith("hahnel-patient-6: ")
    run_dir = root / "hahnel-patient-6"
    assert sorted(p.name for p in root.iterdir()) == ["hahnel-patient-6"]
    check_run_dir(run_dir, REPEAT_SCENARIO, load(REPEAT_SCENARIO).formats)
    check_printed_summary(proc.stdout, REPEAT_SCENARIO, run_dir)


# ---------------------------------------------------------------------------------------------
# --version, --seed, plot --help


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    out, err = capsys.readouterr()
    assert out == f"cmlsim {importlib.metadata.version('cmlsim')}\n"
    assert err == ""


def test_run_seed_overrides_the_scenario_seed(tmp_path, capsys):
    root = tmp_path / "results"
    code, out, err = cli(capsys, "run", REPEAT_SCENARIO, "--results", root, "--no-figure",
                         "--seed", 7)  # fmt: skip
    assert code == 0, err
    assert "seed 7" in out.splitlines()[0]
    run_dir = root / "hahnel-patient-6"
    with xr.open_dataset(run_dir / "trajectory.nc", decode_timedelta=False) as ds:
        assert ds.attrs["seed"] == "7"
    assert int(pd.read_csv(run_dir / "summary.csv")["seed"].iloc[0]) == 7
    text = (run_dir / "scenario.toml").read_text(encoding="utf-8")
    first, rest = text.split("\n", 1)
    assert first == "# cmlsim run --seed 7: run with seed = 7, not the seed below"
    assert rest == REPEAT_SCENARIO.read_text(encoding="utf-8")
    # the seed is what changed: the same scenario with seed = 7 in the file runs the same
    with_seed = tmp_path / "seed7.toml"
    with_seed.write_text(re.sub(r"(?m)^seed = \d+", "seed = 7", rest), encoding="utf-8")
    code, _, err = cli(capsys, "run", with_seed, "--results", tmp_path / "b", "--no-figure")
    assert code == 0, err
    a = pd.read_csv(run_dir / "visits.csv")
    b = pd.read_csv(tmp_path / "b" / "hahnel-patient-6" / "visits.csv")
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("seed", ["-1", str(2**64), "1" * 5000, "1.5", "٥"])
def test_run_seed_out_of_range(seed, tmp_path, capsys):
    code, out, err = cli(capsys, "run", REPEAT_SCENARIO, "--results", tmp_path / "r", "--seed",
                         seed)  # fmt: skip
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1 and len(err) <= 300, err
    assert err.startswith("cmlsim run: --seed must be an integer from 0 to 2**64 - 1")
    assert not (tmp_path / "r").exists()


def test_plot_help_lists_every_figure_kind(capsys):
    from sim.plots.render import FIGURES, SWEEP_FIGURES

    with pytest.raises(SystemExit) as exc:
        main(["plot", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr()[0].split())  # argparse wraps lines
    for folder, kinds in {**FIGURES, "sweep": SWEEP_FIGURES}.items():
        assert f"{folder}: {', '.join(kinds)}" in out


# ---------------------------------------------------------------------------------------------
# results folders checked before computing

COHORT_SCENARIO = REPO / "scenarios" / "cohort-euro-ski.toml"
COMPARED = [REPO / "scenarios" / "imatinib-eln-stop.toml", REPEAT_SCENARIO]


def _argv(command: str, root: Path, *extra: object) -> list[object]:
    if command == "run":
        return ["run", REPEAT_SCENARIO, "--results", root, "--no-figure", *extra]
    if command == "cohort":
        return ["cohort", COHORT_SCENARIO, "--size", 10, "--results", root, "--quiet", *extra]
    return ["compare", *COMPARED, "--results", root, "--no-figure", *extra]


@pytest.fixture
def no_compute(monkeypatch):
    """Make any computation fail the test: the command must stop before it."""

    def compute(*args, **kwargs):
        raise AssertionError("computed before checking the results folder")

    import sim.cohort
    import sim.compare
    import sim.run

    monkeypatch.setattr(sim.run, "run_scenario", compute)
    monkeypatch.setattr(sim.cohort, "run_cohort", compute)
    monkeypatch.setattr(sim.compare, "run_comparison", compute)


@pytest.mark.parametrize("command", ["run", "cohort", "compare"])
@pytest.mark.parametrize("where", ["file", "below-a-file", "proc"])
def test_unwritable_results_fail_before_computing(command, where, tmp_path, capsys, no_compute):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file\n")
    root = {"file": blocker, "below-a-file": blocker / "results", "proc": Path("/proc/cmlsim")}
    code, out, err = cli(capsys, *_argv(command, root[where]))
    assert code == 1
    assert out == ""
    assert len(err.splitlines()) == 1 and len(err) <= 300, err
    assert err.startswith(f"cmlsim {command}: cannot write results under {root[where]}: ")
    assert blocker.read_text() == "a file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


@pytest.mark.parametrize("command", ["run", "cohort", "compare"])
def test_results_name_too_long_fails_before_computing(command, tmp_path, capsys, no_compute):
    root = tmp_path / "results"
    name = "n" * 242  # the hidden temporary folder .<name>.tmp-XXXXXXXX would exceed 255 bytes
    if command == "compare":
        argv = _argv(command, root, "--name", name)
    else:
        source = REPEAT_SCENARIO if command == "run" else COHORT_SCENARIO
        path = tmp_path / "long.toml"
        text = source.read_text(encoding="utf-8")
        path.write_text(re.sub(r'(?m)^name = ".*"', f'name = "{name}"', text), encoding="utf-8")
        argv = [command, path, *_argv(command, root)[2:]]
    code, out, err = cli(capsys, *argv)
    if code == 2 and "results name" not in err:  # the scenario reader caught it first
        assert len(err.splitlines()) == 1 and len(err) <= 300, err
        return
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1 and len(err) <= 300, err
    assert "is 242 bytes long; a results folder name can have at most 241 bytes" in err
    assert not root.exists()


# ---------------------------------------------------------------------------------------------
# a failed solve is an error


@pytest.fixture
def failing_patient(monkeypatch):
    """Patients whose state at diagnosis is NaN (the kernel then reports a failure at day 0),
    chosen by a predicate on the call number (run, compare) or patient index (cohort)."""
    import sim.cohort
    import sim.run

    choice = {"fail": lambda k: True}
    calls = []
    kernel_arguments = sim.run.kernel_arguments
    initial_states = sim.cohort._initial_states

    def nan_start(*args, **kwargs):
        a = kernel_arguments(*args, **kwargs)
        calls.append(1)
        if choice["fail"](len(calls) - 1):
            a["y0"] = np.full_like(a["y0"], np.nan)
        return a

    def nan_starts(model, P):
        y0 = initial_states(model, P)
        bad = [j for j in range(len(y0)) if choice["fail"](j)]
        y0[bad] = np.nan
        return y0

    monkeypatch.setattr(sim.run, "kernel_arguments", nan_start)
    monkeypatch.setattr(sim.cohort, "_initial_states", nan_starts)
    return choice


@pytest.mark.parametrize("command", ["run", "compare"])
def test_solver_failure_exits_1_and_writes_nothing(command, tmp_path, capsys, failing_patient):
    failing_patient["fail"] = lambda k: k == 1 if command == "compare" else True
    root = tmp_path / "results"
    code, out, err = cli(capsys, *_argv(command, root))
    assert code == 1
    assert out == ""
    assert len(err.splitlines()) == 1 and len(err) <= 300, err
    failed = REPEAT_SCENARIO if command == "run" else COMPARED[1]
    assert err.startswith(f"cmlsim {command}: {failed} (seed ")
    assert "the solver failed at day 0 (the state at diagnosis is not finite)" in err
    assert "nothing written" in err
    assert not root.exists()


def test_solver_failure_kept_when_asked(tmp_path, capsys, failing_patient):
    root = tmp_path / "results"
    code, out, err = cli(capsys, *_argv("run", root, "--keep-failed"))
    assert code == 0, err
    assert "warning: the solver failed at day 0" in out
    with xr.open_dataset(root / "hahnel-patient-6" / "trajectory.nc") as ds:
        assert ds.attrs["solver_failure"].startswith("the solver failed at day 0")
        assert int(ds["solver_failures"].values[0]) > 0


def test_solver_failure_in_the_middle_of_a_run(tmp_path, capsys, monkeypatch):
    """A therapy that starts at 1e-300 days: the first step cannot reach it (step size
    underflow) after the output at day 0."""
    import sim.run
    from sim.engines import ode

    kernel_arguments = sim.run.kernel_arguments

    def tiny_start(*args, **kwargs):
        a = kernel_arguments(*args, **kwargs)
        a["sched"][0, ode.SCH_START] = 1e-300
        return a

    monkeypatch.setattr(sim.run, "kernel_arguments", tiny_start)
    code, _, err = cli(capsys, *_argv("run", tmp_path / "results"))
    assert code == 1
    assert "the solver failed between day 0 and day 7;" in err


def test_cohort_solver_failures_name_the_patients(tmp_path, capsys, failing_patient):
    failing_patient["fail"] = lambda j: j in (2, 3, 5, 7, 8, 9)
    root = tmp_path / "results"
    code, out, err = cli(capsys, *_argv("cohort", root))
    assert code == 1
    assert out == ""
    assert len(err.splitlines()) == 1 and len(err) <= 300, err
    assert "the solver failed for 6 of 10 patients (patient 2, 3, 5, 7, 8, ...)" in err
    assert not root.exists()
    code, out, err = cli(capsys, *_argv("cohort", root, "--keep-failed"))
    assert code == 0, err
    assert "warning: 6 patients with solver failures" in out
    table = pd.read_csv(root / "cohort-euro-ski" / "outcomes.csv")
    assert (table["solver_failures"] > 0).tolist() == [j in (2, 3, 5, 7, 8, 9) for j in range(10)]


# ---------------------------------------------------------------------------------------------
# first compile and timings


def test_first_compile_is_announced_and_left_out_of_the_times(tmp_path, capsys, monkeypatch):
    """A function compiled inside the run (as the kernels are on a fresh machine)."""
    import sim.run

    run_scenario = sim.run.run_scenario

    def with_a_compile(sc):
        @njit
        def first_use(x):
            return x + 1.0

        first_use(1.0)
        return run_scenario(sc)

    monkeypatch.setattr(sim.run, "run_scenario", with_a_compile)
    code, out, err = cli(capsys, *_argv("run", tmp_path / "results"))
    assert code == 0, err
    assert err == "cmlsim run: compiling numba functions (first run only)...\n"
    assert re.search(r"\n  first run: [0-9.]+ s compiling numba kernels, not counted above", out)


def test_no_compile_line_when_cached(tmp_path, capsys):
    cli(capsys, *_argv("run", tmp_path / "a"))  # compiled or loaded here, if not before
    code, out, err = cli(capsys, *_argv("run", tmp_path / "b"))
    assert code == 0, err
    assert "first run" not in out and err == ""


# ---------------------------------------------------------------------------------------------
# Ctrl-C

#: How long a command may take to end after SIGINT (margin for a loaded 2-core machine).
STOP_WITHIN_S = 2.0

_SPIN_CLI = """
import sys
import numpy as np
from numba import njit
import sim.cohort, sim.compare, sim.run

@njit
def spin(n):  # a xorshift walk: no closed form, so the loop really runs n times
    x = np.uint64(88172645463325252)
    for _ in range(n):
        x ^= x << np.uint64(13)
        x ^= x >> np.uint64(7)
        x ^= x << np.uint64(17)
    return x

def forever(*args, **kwargs):
    print("computing", file=sys.stderr, flush=True)
    spin(10**15)

spin(10)
sim.run.run_scenario = sim.cohort.run_cohort = sim.compare.run_comparison = forever
from sim.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _interrupt(argv: list[object], marker: str) -> tuple[int, str, float]:
    """Start ``argv``, send SIGINT once ``marker`` is on its stderr: (exit code, stderr,
    seconds from the signal to the exit)."""
    import signal
    import threading
    import time

    proc = subprocess.Popen([str(a) for a in argv], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, cwd=REPO)  # fmt: skip
    seen, ready = [], threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        while chunk := proc.stderr.read(1):
            seen.append(chunk)
            if marker in "".join(seen[-200:]):
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(600), "the command never started computing"
        time.sleep(0.5)  # into the kernel (or its first compile)
        assert proc.poll() is None, "".join(seen)
        start = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=STOP_WITHIN_S)
        took = time.perf_counter() - start
    finally:
        proc.kill()
        proc.wait()
    reader.join(5)
    return proc.returncode, "".join(seen), took


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("command", ["run", "cohort", "compare"])
def test_sigint_stops_a_kernel_within_2_s(command, tmp_path):
    root = tmp_path / "results"
    argv = [sys.executable, "-c", _SPIN_CLI, *_argv(command, root)]
    code, err, took = _interrupt(argv, "computing\n")
    assert code == 130
    assert err.endswith(f"computing\ncmlsim {command}: interrupted\n"), err
    assert took < STOP_WITHIN_S
    assert not root.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_stops_a_stochastic_cohort_within_2_s(tmp_path):
    """End to end: 2,000 jump-process patients at full cell scale are one kernel call of many
    minutes (or its first compile); the progress bar appears just before it."""
    path = tmp_path / "long.toml"
    lines = (
        "[scenario]", 'name = "long"', 'engine = "stochastic"', 'horizon = "10y"', "seed = 3",
        "", "[engine]", "cell_scale = 1", "", "[cohort]", "size = 2000", *_TKI, 'end = "1y"',
        "", "[protocol]", 'restart = "never"',
    )  # fmt: skip
    path.write_text(_doc(*lines), encoding="utf-8")
    root = tmp_path / "results"
    argv = [_console_script(), "cohort", path, "--results", root]
    code, err, took = _interrupt(argv, "0/2000")
    assert code == 130
    assert err.endswith("cmlsim cohort: interrupted\n"), err
    assert took < STOP_WITHIN_S
    assert not root.exists()
