"""After its runs, a sweep says what it does (indices, figures) and how long each step took."""

from __future__ import annotations

import re

from sim.cli import main

SCENARIO = """
[scenario]
name = "t-progress"
model = "cml_immune"
horizon = "6y"
seed = 3

[patient]
hahnel_patient = 10

[[therapy]]
drug = "imatinib"
dose = "400mg"
every = "1d"
start = "diagnosis"

[protocol]
monitoring = "eln2020"
stop = { at = "3y" }
restart = "loss_of_mmr"

[sweep]
design = "sobol"
n = 8
second_order = false
outputs = ["tfr_24mo", "tfr_months"]

[sweep.params]
patient.s_N = { low = 6.3, high = 42.0, scale = "log" }
patient.m_N = { low = 3e-5, high = 3e-4, scale = "log" }
"""

STEP = r"  {} \.\.\. \d+\.\d s"


def test_each_analysis_step_gets_a_line_with_its_time(tmp_path, capsys):
    path = tmp_path / "t-progress.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    args = ["sweep", str(path), "--results", str(tmp_path), "--executor", "serial"]
    assert main([*args, "--no-figure"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if " ... " in line]
    expected = [
        "reading the results",
        r"Sobol indices of tfr_24mo \(200 bootstrap resamples\)",
        r"Sobol indices of tfr_months \(200 bootstrap resamples\)",
    ]
    assert len(lines) == len(expected), err
    for line, what in zip(lines, expected, strict=True):
        assert re.fullmatch(STEP.format(what), line), line
    # with figures, a line for each; --quiet: none
    assert main([*args, "--overwrite"]) == 0
    err = capsys.readouterr().err
    for kind in ("indices", "phase"):
        assert re.search(f"^{STEP.format('figure: ' + kind)}$", err, re.MULTILINE), err
    assert main([*args, "--overwrite", "--quiet", "--no-figure"]) == 0
    assert " ... " not in capsys.readouterr().err
