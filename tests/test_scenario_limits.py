"""Finite ranges for every scenario value, units where a reader needs them, short messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim import cli
from sim.scenario import MAX_NAME, MAX_SEED, ScenarioError, load, loads, validate_main

ROOT = Path(__file__).resolve().parents[1] / "scenarios"
BASE = (ROOT / "imatinib-eln-stop.toml").read_text("utf-8")
IV = '\n[[intervention]]\nproduct = "peginterferon-alfa-2a"\nstart = "diagnosis"\n'


def _error(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        loads(text, "s.toml")
    msg = str(info.value)
    assert len(msg.splitlines()) == 1 and len(msg) <= 280, msg
    return info.value


def _sub(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        (_sub('every = "1d"', 'every = "1e6y"'), "therapy[0].every", "from 1h to 200y"),
        (_sub('every = "1d"', 'every = "13y"'), "therapy[0].every", "<= the horizon"),
        (_sub('horizon = "12y"', 'horizon = "12y"\natol = 1e308'), "scenario.atol", "1e-20"),
        (_sub('horizon = "12y"', 'horizon = "12y"\natol = 0'), "scenario.atol", "1e-20"),
        (_sub("seed = 20261125", f"seed = {MAX_SEED + 1}"), "scenario.seed", str(MAX_SEED)),
        (_sub("max_stops = 1", "max_stops = 100000"), "protocol.max_stops", "from 0 to 1000"),
        (_sub('start = "diagnosis"', 'start = "1e-300d"'), "therapy[0].start", "1min"),
        (_sub('start = "diagnosis"', 'start = "1s"'), "therapy[0].start", "a duration"),
        (_sub('after = "5y"', 'after = "1e9y"'), "protocol.stop.after", "200y"),
        (BASE + "\n[drug.imatinib]\nhill = 1e300\n", "drug.imatinib.hill", "0.1 to 10"),
        (BASE + '\n[drug.imatinib]\nka = "1e300/h"\n', "drug.imatinib.ka", "1e4/d"),
        (BASE + '\n[drug.imatinib]\nhalf_life = "1e-300h"\n', "drug.imatinib.half_life", "1min"),
        (BASE + '\n[drug.imatinib]\nvolume = "1e9L"\n', "drug.imatinib.volume", "100000L"),
        (BASE + '\n[drug.imatinib]\nec50 = "1e300mg/L"\n', "drug.imatinib.ec50", "1000 mg/L"),
        (BASE + '\n[drug.imatinib]\nstandard_interval = "2y"\n', "drug.imatinib.standard_interval",
         "1h to 1y"),
        (_sub('dose = "400mg"', 'dose = "1e9g"'), "therapy[0].dose", "1ng to 100g"),
        (BASE + "\n[patient]\np_xy = 0\n", "patient", "finite value at diagnosis"),
        (BASE + IV + 'every = "13y"\n', "intervention[0].every", "<= the horizon"),
        (BASE + IV + 'duration = "6mo"\ncount = 3\n', "intervention[0].count", "one of them"),
        (BASE + IV + "count = 100000000\n", "intervention[0].count", "10000000"),
        (BASE + IV + f'name = "{"n" * (MAX_NAME + 1)}"\n', "intervention[0].name", "at most"),
    ],
)  # fmt: skip
def test_values_out_of_range(text, key, expected):
    err = _error(text)
    assert err.key == key
    assert expected in err.expected


@pytest.mark.parametrize(
    ("lines", "key", "suggestion"),
    [
        ("dose = 90", "intervention[0].dose", '"90mg" or "90ug"'),
        ("duration = 12", "intervention[0].duration", '"12d" or "12mo"'),
        ('start = { anchor = "diagnosis", offset = 30 }', "intervention[0].start.offset", '"30d"'),
    ],
)
def test_plain_numbers_need_their_unit(lines, key, suggestion):
    text = BASE + IV.replace('start = "diagnosis"\n', "") + lines + "\n"
    if "start" not in lines:
        text += 'start = "diagnosis"\n'
    err = _error(text)
    assert err.key == key
    assert "without a unit" in err.found and suggestion in err.expected


def test_zero_needs_no_unit():
    iv = loads(BASE + IV + "dose = 0\n").interventions[0]
    assert iv.dose == 0.0


def test_name_length():
    ok = loads(_sub('name = "imatinib-eln-stop"', f'name = "{"a" * MAX_NAME}"'))
    assert len(ok.name) == MAX_NAME
    err = _error(_sub('name = "imatinib-eln-stop"', f'name = "{"a" * 300}"'))
    assert err.key == "scenario.name" and "(300 characters)" in err.found


def test_huge_integer_is_located():
    err = _error(_sub("seed = 20261125", "seed = " + "9" * 5000))
    assert err.line == BASE.splitlines().index("seed = 20261125") + 1
    assert "5,000 digits" in err.found


def test_long_value_is_abridged_in_the_message():
    err = _error(_sub('engine = "ode"', f'engine = "{"x" * 500_000}"'))
    assert "(500,000 characters)" in str(err)


def test_files_too_large_are_refused_without_reading_them(tmp_path):
    with pytest.raises(ScenarioError, match="larger than 1,000,000 bytes"):
        load("/dev/zero")
    big = tmp_path / "big.toml"
    big.write_text(BASE + "#" * 1_000_000, encoding="utf-8")
    with pytest.raises(ScenarioError, match="larger than"):
        load(big)


COHORT = (ROOT / "cohort-euro-ski.toml").read_text("utf-8")


@pytest.mark.parametrize(
    ("content", "found"),
    [
        (b"p_xy\n" + b"\xff\xfe" * 10, "not UTF-8"),
        (b"p_xy\n0.001\n\x00\x00\n", "NUL bytes"),
        (b"p_xy\n" + b"0.001\n" * 2_000_000, "larger than 10,000,000 bytes"),
        ("p_xy\n٠٫٠٠١\n".encode(), "in row 1"),
    ],
)
def test_empirical_files_are_read_with_bounds(tmp_path, content, found):
    (tmp_path / "values.csv").write_bytes(content)
    text = COHORT.replace(
        "[cohort]\n",
        '[cohort]\np_xy = { dist = "empirical", file = "values.csv", column = "p_xy" }\n',
        1,
    )
    path = tmp_path / "cohort.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load(path)
    assert info.value.key.startswith("cohort.p_xy")
    assert found in info.value.found


# ------------------------------------------------------------------ the command line


def test_validate_messages_have_the_command_prefix(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(_sub('every = "1d"', 'every = "1e6y"'), encoding="utf-8")
    assert validate_main(str(bad)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cmlsim validate: {bad}:")
    assert len(err.splitlines()) == 1 and len(err.rstrip("\n")) <= 300


@pytest.mark.parametrize("size", ["99999999999", "0", "-5", "abc", "٥", "1e3"])
def test_cohort_size_flag_obeys_the_cohort_range(size, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["cohort", str(ROOT / "cohort-euro-ski.toml"), "--size", size])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cmlsim cohort: --size: found ")
    assert "from 1 to 10,000,000" in err and len(err.splitlines()) == 1


def test_cohort_size_flag_in_range_is_kept():
    args = cli.build_parser().parse_args(["cohort", "x.toml", "--size", "10000000"])
    assert args.size == 10_000_000


def test_models_show_units_of_products_and_drugs(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    products = out[out.index("Intervention products") :].splitlines()[1:]
    line = next(x for x in products if x.startswith("  peginterferon-alfa-2a"))
    assert "standard 0.09 mg every 7 d" in line
    assert "V 8 L" in line and "EC50 0.006 mg/L" in line
    line = next(x for x in products if x.startswith("  vaccine"))
    assert "standard 1 unit(s)" in line and "EC50 1 unit(s)" in line
    drugs = out[out.index("Drugs (") :].splitlines()[1]
    assert "400 mg" in drugs and "V/F 275 L" in drugs and "mg/L" in drugs


def test_cohort_trajectory_is_bounded():
    text = COHORT.replace("[cohort]\n", '[cohort]\ntrajectory_every = "1h"\n', 1)
    err = _error(text)
    assert err.key == "cohort.trajectory_every" and "100,000,000 points" in err.expected


@pytest.mark.parametrize(
    ("value", "found"), [("1e-300d", "steps"), ("0.001d", "steps"), ("0.5", "without a unit")]
)
def test_engine_steps_are_bounded(value, found):
    text = _sub('engine = "ode"', 'engine = "abm"') + f'\n[engine]\ndt = "{value}"\n'
    if "without" in found:
        text = text.replace(f'dt = "{value}"', f"dt = {value}")
    err = _error(text)
    assert err.key == "engine.dt" and found in err.found
