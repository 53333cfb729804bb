"""``cmlsim plot RESULT_DIR``: figures from run, compare and cohort folders; bad input."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim import outcomes
from sim.cli import main
from sim.compare import bar_data, figure_data
from sim.params import DAYS_PER_MONTH
from sim.plots import render
from sim.plots.render import PlotError, comparison_from_folder, detect_kind
from sim.plots.trajectory import _stop_times, text_problems
from sim.results import write_run

TESTS = Path(__file__).resolve().parents[1]


def _load(file: str, name: str):
    spec = importlib.util.spec_from_file_location(f"_{name}", TESTS / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


synthetic_result = _load("test_results.py", "synthetic_result")
synthetic_table = _load("test_outcomes.py", "synthetic_table")
with_interferon = _load("plots/test_kinetics_immune.py", "with_interferon")


@pytest.fixture(scope="module")
def runs():
    return [synthetic_result("no-ifn"), with_interferon(synthetic_result("ifn"))]


@pytest.fixture(scope="module")
def run_dir(runs, tmp_path_factory):
    return write_run(runs[1], tmp_path_factory.mktemp("runs"), figure=False)


@pytest.fixture(scope="module")
def compare_dir(runs, tmp_path_factory):
    d = tmp_path_factory.mktemp("cmp") / "compare-x"
    d.mkdir()
    labels = [r.name for r in runs]
    figure_data(runs, labels).to_csv(d / "figure_data.csv", index=False, na_rep="NaN")
    bar_data(runs, labels).to_csv(d / "figure_bars.csv", index=False, na_rep="NaN")
    return d


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("coh") / "cohort-x"
    d.mkdir()
    synthetic_table(200, seed=2, arm="stop").to_csv(d / "outcomes.csv", index=False, na_rep="NaN")
    return d


def _check_written(files: list[str], stem: str) -> None:
    names = {Path(f).name for f in files}
    assert {f"{stem}.pdf", f"{stem}_data.csv"} <= names
    for f in files:
        assert Path(f).stat().st_size > 0
    pdf = next(Path(f) for f in files if f.endswith(".pdf")).read_bytes()
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf


def test_detect_kind(run_dir, compare_dir, cohort_dir, tmp_path):
    assert detect_kind(run_dir) == "run"
    assert detect_kind(compare_dir) == "compare"
    assert detect_kind(cohort_dir) == "cohort"
    (tmp_path / "store.zarr").mkdir()
    (tmp_path / "store.zarr" / "zarr.json").write_text("{}")
    assert detect_kind(tmp_path) == "sweep"


def test_run_folder_figures(run_dir):
    done = render.render(run_dir, style="blood", formats=["pdf"])
    assert done.folder_kind == "run" and not done.skipped
    assert set(done.written) == {"kinetics", "immune", "trajectory"}
    for name, files in done.written.items():
        _check_written(files, name)
        assert Path(files[0]).parent == run_dir / "figures"
    for name, fig in done.figures.items():
        assert text_problems(fig) == ([], []), name
    bars = pd.read_csv(run_dir / "figures" / "kinetics_bars.csv")
    # the stored run has no dosing record: interferon is drawn where its drive acts
    assert list(bars["kind"]) == ["tki", "tki", "tki", "interferon"]
    assert bars["source"].iloc[-1] == "drive > 0.01"


def test_comparison_rebuilt_from_its_numbers(compare_dir, runs, tmp_path):
    rebuilt, labels = comparison_from_folder(compare_dir)
    assert labels == ["no-ifn", "ifn"]
    for a, b in zip(rebuilt, runs):
        np.testing.assert_allclose(a.bcr_abl, b.bcr_abl)
        np.testing.assert_allclose(a.y[:, 2:], b.y[:, 2:])  # Z, E, N
        # pytest >= 9.2's approx() rejects nested sequences: compare the (start, end, dose) rows
        np.testing.assert_allclose(
            np.reshape(a.tki_periods, (-1, 3)), np.reshape(b.tki_periods, (-1, 3))
        )
        assert _stop_times(a) == pytest.approx(_stop_times(b)[:1])  # the stop, from the bars
    assert rebuilt[0].interventions == []
    assert rebuilt[1].interventions[0]["kind"] == "interferon"
    done = render.render(compare_dir, ["comparison"], formats=["pdf"], out=tmp_path)
    _check_written(done.written["comparison"], "comparison")
    assert text_problems(done.figures["comparison"]) == ([], [])
    bars = pd.read_csv(tmp_path / "comparison_bars.csv")
    assert set(bars["kind"]) == {"tki", "interferon"}


def test_cohort_folder_figures(cohort_dir, tmp_path):
    done = render.render(cohort_dir, formats=["pdf"], out=tmp_path)
    assert set(done.written) == {"km", "swimmer", "roc"} and not done.skipped
    for name, files in done.written.items():
        _check_written(files, name)
    km = pd.read_csv(tmp_path / "km_data.csv")
    assert km["survival"].between(0, 1).all()
    assert km["at_risk"].iloc[0] == len(outcomes.stopped(pd.read_csv(cohort_dir / "outcomes.csv")))
    for fig in done.figures.values():
        assert text_problems(fig) == ([], [])


def test_roc_needs_both_outcomes(tmp_path):
    t = synthetic_table(60, seed=3, arm="stop")
    t["event"] = False
    d = tmp_path / "cohort-all-free"
    d.mkdir()
    t.to_csv(d / "outcomes.csv", index=False, na_rep="NaN")
    done = render.render(d, formats=["pdf"])
    assert "roc" in done.skipped and "km" in done.written
    with pytest.raises(PlotError, match="relapsed or none did"):
        render.render(d, ["roc"], formats=["pdf"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{missing}"], "no such folder"),
        (["{empty}"], "not a results folder: found nothing"),
        (["{run}", "--kind", "kinetcs"], "unknown figure 'kinetcs' for a run folder; did you mean"),
        (["{run}", "--style", "natur"], "unknown style 'natur'; did you mean 'nature'"),
        (["{run}", "--format", "jpg"], "unknown format 'jpg'; expected one of pdf, svg, png"),
        (["{cohort}", "--kind", "kinetics"], "expected one of km, swimmer, roc"),
        (["{damaged}"], "cannot read the run results"),
    ],
)
def test_bad_input_one_message_exit_2(args, message, run_dir, cohort_dir, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "trajectory.nc").write_bytes(b"not netCDF")
    paths = {
        "missing": tmp_path / "nope",
        "empty": tmp_path / "empty",
        "run": run_dir,
        "cohort": cohort_dir,
        "damaged": tmp_path / "damaged",
    }
    argv = ["plot", *(a.format(**paths) for a in args)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cmlsim plot: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "damaged" / "figures").exists()  # nothing written


def test_cli_plot_writes_and_lists(run_dir, tmp_path, capsys):
    out = tmp_path / "figs"
    code = main(["plot", str(run_dir), "--kind", "kinetics", "--format", "png", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "run results, style nature" in text and "kinetics.png" in text
    assert (out / "kinetics.png").stat().st_size > 10_000
    data = pd.read_csv(out / "kinetics_data.csv")
    assert data["time_months"].iloc[-1] == pytest.approx(
        data["time_days"].iloc[-1] / DAYS_PER_MONTH
    )


def test_gallery_rejects_bad_style(capsys, tmp_path):
    assert main(["gallery", "--out", str(tmp_path), "--style", "cell"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cmlsim gallery: unknown style 'cell'")
    assert not any(tmp_path.iterdir())  # nothing written
