"""Tests of ``cmlsim compare`` and :mod:`sim.compare`: common seed, table, storage, errors.

The two shipped scenarios imatinib-eln-stop and destiny-half-dose are compared through
:func:`sim.cli.main` once with the figure (module fixture); the other CLI runs use --no-figure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim import compare
from sim.cli import main
from sim.params import DAYS_PER_MONTH, DAYS_PER_YEAR
from sim.run import run_scenario
from sim.scenario import load, loads

REPO = Path(__file__).resolve().parents[1]
ELN = REPO / "scenarios" / "imatinib-eln-stop.toml"
DESTINY = REPO / "scenarios" / "destiny-half-dose.toml"
ELN_SEED = 20261125  # seed declared in imatinib-eln-stop.toml
DESTINY_SEED = 20261127  # seed declared in destiny-half-dose.toml
DEFAULT_NAME = "compare-imatinib-eln-stop_vs_destiny-half-dose"
ROW_LABELS = [
    "time to MR4, measured (mo)",
    "time to MR4.5, measured (mo)",
    "TKI exposure (standard-dose years)",
    "TKI stop (mo)",
    "relapse (mo after stop)",
    "TFR 12 mo after stop",
    "TFR 24 mo after stop",
    "TFR 60 mo after stop",
    "at stop: effector T cells Z (cells)",
    "at stop: T-cell exhaustion E (fraction)",
    "at stop: NK cells N (cells/µL)",
    "at stop: BCR::ABL1 (% IS)",
    "interventions",
]


def cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def table_cells(out: str) -> dict[str, list[str]]:
    """Row label -> cells of the printed side-by-side table (cells never contain 2 spaces)."""
    rows = {}
    for line in out.splitlines():
        parts = re.split(r"\s{2,}", line.strip())
        if len(parts) >= 2:
            rows[parts[0]] = parts[1:]
    return rows


def with_seed(text: str, seed: int) -> str:
    new, n = re.subn(r"(?m)^seed = \d+", f"seed = {seed}", text)
    assert n == 1
    return new


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """The two shipped scenarios compared through the CLI, with the figure."""
    root = tmp_path_factory.mktemp("results")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["compare", str(ELN), str(DESTINY), "--results", str(root)])
    return {"code": code, "out": out.getvalue(), "err": err.getvalue(), "root": root}


def test_cli_compare_prints_table_with_both_scenarios(compared):
    assert compared["code"] == 0, compared["err"]
    assert compared["err"] == ""  # same patient: no note
    out = compared["out"]
    header = next(line for line in out.splitlines() if "imatinib-eln-stop" in line)
    assert header.split() == ["imatinib-eln-stop", "destiny-half-dose"]
    cells = table_cells(out)
    for label in ROW_LABELS:
        assert label in cells, label
        assert len(cells[label]) == 2, (label, cells[label])
    assert cells["seed"] == [str(ELN_SEED), str(ELN_SEED)]
    # imatinib-eln-stop: 5 years at standard dose, then stop; DESTINY: 3 y + 1 y at half dose
    assert cells["TKI exposure (standard-dose years)"] == ["5.00", "3.50"]
    assert cells["TKI stop (mo)"] == ["60.0", "48.0"]
    assert cells["interventions"] == ["none", "none"]
    assert f"results: {compared['root'] / DEFAULT_NAME}" in out


def test_cli_compare_writes_files_and_csv(compared):
    folder = compared["root"] / DEFAULT_NAME
    names = {p.name for p in folder.iterdir()}
    assert names == {
        "comparison.csv", "comparison.txt", "comparison.png", "comparison.pdf",
        "figure_data.csv", "figure_bars.csv", "imatinib-eln-stop.toml", "destiny-half-dose.toml",
    }  # fmt: skip
    assert not [p for p in compared["root"].iterdir() if p.name.startswith(".")]  # no temp left
    df = pd.read_csv(folder / "comparison.csv")
    assert list(df["label"]) == ["imatinib-eln-stop", "destiny-half-dose"]
    assert list(df["seed"]) == [ELN_SEED, ELN_SEED]
    assert list(df["seed_in_file"]) == [ELN_SEED, DESTINY_SEED]
    for key in ("t_mr4_measured", "t_mr45_measured", "stop_time", "relapse_after_stop"):
        np.testing.assert_allclose(df[f"{key}_months"], df[f"{key}_days"] / DAYS_PER_MONTH)
    np.testing.assert_allclose(df["tki_exposure_years"], [5.0, 3.5], atol=1e-9)
    np.testing.assert_allclose(df["tki_exposure_days"], df["tki_exposure_years"] * DAYS_PER_YEAR)
    assert set(df["tfr_12mo"]) <= {"yes", "no", "n/a"}
    assert {"Z_at_stop_cells", "E_at_stop_fraction", "N_at_stop_cells_per_uL"} <= set(df)
    # the printed table and the CSV say the same
    cells = table_cells((folder / "comparison.txt").read_text(encoding="utf-8"))
    assert cells["TKI stop (mo)"] == [f"{m:.1f}" for m in df["stop_time_months"]]
    assert cells["TFR 24 mo after stop"] == list(df["tfr_24mo"])

    fd = pd.read_csv(folder / "figure_data.csv")
    for label in df["label"]:
        for col in ("bcr_abl_pct", "Z_cells", "N_cells_per_uL", "E_fraction"):
            assert f"{label}.{col}" in fd
    assert fd["time_days"].iloc[-1] == pytest.approx(12 * DAYS_PER_YEAR)
    bars = pd.read_csv(folder / "figure_bars.csv")
    destiny = bars[bars["label"] == "destiny-half-dose"]
    assert list(destiny["dose_fraction"]) == [1.0, 0.5]

    assert (folder / "imatinib-eln-stop.toml").read_text(encoding="utf-8") == ELN.read_text(
        encoding="utf-8"
    )
    # destiny ran with the common seed: its stored text says so and still loads
    stored = (folder / "destiny-half-dose.toml").read_text(encoding="utf-8")
    assert stored.startswith("# cmlsim compare: run with seed = 20261125")
    assert stored.endswith(DESTINY.read_text(encoding="utf-8"))
    assert loads(stored).name == "destiny-half-dose"
    assert (folder / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = (folder / "comparison.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"/FontFile2" in pdf and b"/Type3" not in pdf


def test_second_run_goes_to_dot_2_and_overwrite_replaces(tmp_path, capsys):
    args = ["compare", ELN, DESTINY, "--results", tmp_path, "--no-figure", "--name", "cmp"]
    assert cli(capsys, *args)[0] == 0
    first = (tmp_path / "cmp" / "comparison.csv").read_bytes()
    code, out, _ = cli(capsys, *args)
    assert code == 0 and f"results: {tmp_path / 'cmp.2'}" in out
    assert (tmp_path / "cmp" / "comparison.csv").read_bytes() == first
    assert not (tmp_path / "cmp" / "comparison.png").exists()
    code, out, _ = cli(capsys, *args, "--overwrite")
    assert code == 0 and f"results: {tmp_path / 'cmp'}\n" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp", "cmp.2"]


@pytest.mark.parametrize(
    "bad",
    [
        '[scenario]\nname = "x"\nhorizon = "12y"\nseed = 1\nengine = "ode"\n[[therapy]]\n'
        'drug = "imatinob"\n',
        "[scenario\n",
    ],
    ids=["unknown-drug", "toml-syntax"],
)
def test_bad_scenario_exit_2_nothing_written(tmp_path, capsys, bad):
    path = tmp_path / "bad.toml"
    path.write_text(bad, encoding="utf-8")
    root = tmp_path / "results"
    code, out, err = cli(capsys, "compare", ELN, path, "--results", root)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and str(path) in err
    assert not root.exists()


def test_usage_errors_exit_2(tmp_path, capsys):
    root = tmp_path / "results"
    code, _, err = cli(capsys, "compare", ELN, "--results", root)
    assert code == 2 and "at least two" in err
    code, _, err = cli(capsys, "compare", ELN, DESTINY, "--results", root, "--name", ".hidden")
    assert code == 2 and "--name" in err
    code, _, err = cli(capsys, "compare", ELN, DESTINY, "--results", root, "--seed", "-3")
    assert code == 2 and "--seed" in err
    assert not root.exists()


def test_common_seed_gives_common_random_numbers(tmp_path):
    # The same scenario with a different seed in its file: compared, both run on the first seed
    # and are identical; run on their own seeds they differ (so the check can fail).
    text = DESTINY.read_text(encoding="utf-8")
    other = loads(with_seed(text, 4242), path=str(tmp_path / "other.toml"))
    base = load(DESTINY)
    own_a, own_b = run_scenario(base), run_scenario(other)
    assert not np.array_equal(own_a.visits["abl1"], own_b.visits["abl1"])
    cmp = compare.run_comparison([base, other])
    assert cmp.seed == DESTINY_SEED and cmp.seeds_in_files == [DESTINY_SEED, 4242]
    assert cmp.labels == ["destiny-half-dose", "destiny-half-dose.2"]
    a, b = cmp.results
    assert a.provenance["seed"] == b.provenance["seed"] == str(DESTINY_SEED)
    for key in a.visits:
        np.testing.assert_array_equal(a.visits[key], b.visits[key])
    np.testing.assert_array_equal(a.visits["abl1"], own_a.visits["abl1"])
    table = compare.comparison_table(cmp.results, cmp.labels)
    numeric = table.drop(columns=["label"])
    assert numeric.iloc[0].equals(numeric.iloc[1])
    # --seed replaces it for all
    cmp2 = compare.run_comparison([base, other], seed=99)
    assert [r.provenance["seed"] for r in cmp2.results] == ["99", "99"]


def test_cli_compare_scenario_with_itself(tmp_path, capsys):
    code, out, err = cli(capsys, "compare", ELN, ELN, "--results", tmp_path, "--no-figure")
    assert code == 0, err
    folder = tmp_path / "compare-imatinib-eln-stop_vs_imatinib-eln-stop"
    assert (folder / "imatinib-eln-stop.toml").is_file()
    assert (folder / "imatinib-eln-stop.2.toml").is_file()
    for label, cells in table_cells(out).items():
        if len(cells) == 2:
            assert cells[0] == cells[1], label
    df = pd.read_csv(folder / "comparison.csv")
    assert list(df["label"]) == ["imatinib-eln-stop", "imatinib-eln-stop.2"]
    assert df.drop(columns=["label"]).iloc[0].equals(df.drop(columns=["label"]).iloc[1])


def test_note_when_patients_differ(tmp_path, capsys):
    text = ELN.read_text(encoding="utf-8").replace(
        "[[therapy]]", '[patient]\np_xy = "0.06/mo"\n\n[[therapy]]', 1
    )
    other = tmp_path / "other-patient.toml"
    other.write_text(text, encoding="utf-8")
    code, _, err = cli(capsys, "compare", ELN, other, "--results", tmp_path, "--no-figure")
    assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "different patients" in lines[0] and "p_xy" in lines[0]
    assert compare.patient_differences([load(ELN), load(DESTINY)]) == []


# ---------------------------------------------------------------------------------------------
# definitions, on hand-made summaries


@pytest.fixture(scope="module")
def eln_run():
    return run_scenario(load(ELN))


def _with(result, **summary):
    return dataclasses.replace(result, summary={**result.summary, **summary})


def test_tfr_status_windows(eln_run):
    mo = DAYS_PER_MONTH
    horizon = float(eln_run.t[-1])  # 12 y
    never = _with(eln_run, stop_time=math.nan, relapse_time=math.nan)
    assert [compare.tfr_status(never, m) for m in (12, 24, 60)] == ["n/a"] * 3
    early = _with(eln_run, stop_time=60 * mo, relapse_time=66 * mo)
    assert [compare.tfr_status(early, m) for m in (12, 24, 60)] == ["no", "no", "no"]
    late = _with(eln_run, stop_time=60 * mo, relapse_time=90 * mo)
    assert [compare.tfr_status(late, m) for m in (12, 24, 60)] == ["yes", "yes", "no"]
    short = _with(eln_run, stop_time=horizon - 30 * mo, relapse_time=math.nan)
    assert [compare.tfr_status(short, m) for m in (12, 24, 60)] == ["yes", "yes", "n/a"]
    assert compare.relapse_after_stop(late) == pytest.approx(30 * mo)
    cells = dict(compare.table_rows([late, never]))
    assert cells["relapse (mo after stop)"] == ["30.0", "n/a"]
    assert cells["at stop: NK cells N (cells/µL)"][1] == "n/a"


def test_intervention_cells_and_periods(eln_run):
    mo = DAYS_PER_MONTH
    given = {
        "name": "vacc", "kind": "vaccine", "product": "vaccine", "anchor": "tki_stop",
        "start": 60 * mo, "doses": 6, "last_dose": 60 * mo + 70.0, "every": 14.0, "given": True,
    }  # fmt: skip
    missing = {**given, "start": math.nan, "doses": 0, "last_dose": math.nan, "given": False}
    a = dataclasses.replace(eln_run, interventions=[given])
    b = dataclasses.replace(eln_run, interventions=[missing])
    c = dataclasses.replace(eln_run, interventions=[])
    cells = dict(compare.table_rows([a, b, c]))
    assert cells["intervention vacc"] == ["60.0 mo, 6 doses", "not given", "-"]
    assert "interventions" not in cells
    (p,) = compare.intervention_periods(a)
    assert p["start"] == given["start"] and p["end"] == pytest.approx(given["start"] + 84.0)
    assert compare.intervention_periods(b) == []
    df = compare.comparison_table([a, b, c])
    assert list(df["intervention_vacc_given"].fillna(-1)) == [1.0, 0.0, -1.0]
    assert df["intervention_vacc_start_months"].iloc[0] == pytest.approx(60.0)
    assert list(df["interventions"]) == [
        "vacc: 60.0 mo, 6 doses", "vacc: not given", "none"
    ]  # fmt: skip
    bars = compare.bar_data([a, b, c])
    assert list(bars["kind"]) == ["tki", "vaccine", "tki", "tki"]


def test_default_name_and_labels():
    assert compare.default_name(["a", "b"]) == "compare-a_vs_b"
    long1 = compare.default_name([f"scenario-{i:02d}-with-a-long-name" for i in range(8)])
    long2 = compare.default_name([f"scenario-{i:02d}-with-a-long-name" for i in range(9)])
    assert len(long1) <= compare.MAX_NAME and len(long2) <= compare.MAX_NAME
    assert long1 != long2 and re.fullmatch(r"compare-[A-Za-z0-9_.-]+-[0-9a-f]{8}", long1)
    assert compare.unique_labels(["x", "x.2", "x", "x"]) == ["x", "x.2", "x.3", "x.4"]
    with pytest.raises(ValueError, match="directory name"):
        compare.check_name("a/b")
