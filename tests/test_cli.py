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
