"""Tests of sim.scenario: shipped files, bad input, line location, round trips, fuzz."""

from __future__ import annotations

import dataclasses
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sim import readout
from sim.models import cml_immune
from sim.scenario import (
    Protocol,
    Scenario,
    ScenarioError,
    TherapySegment,
    _KeyLines,
    format_key,
    hahnel_patient,
    hahnel_record,
    load,
    loads,
    validate_main,
)
from sim.therapy.drugs import DRUGS
from sim.units import format_duration

MONTH = 365.25 / 12.0
YEAR = 365.25
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"

BASE = """\
# a valid scenario the bad-input tests mutate
[scenario]
name = "base"
model = "cml_immune"
engine = "ode"
horizon = "12y"
seed = 1

[patient]
p_xy = "0.0452/mo"

[[therapy]]
drug = "imatinib"
dose = "400mg"
every = "1d"
start = "diagnosis"

[protocol]
monitoring = "eln2020"
stop = { after = "5y", sustained = "MR4", for = "2y" }
restart = "loss_of_mmr"
"""


#: BASE with the issue-3 keys: a switch target, adherence, intermittent dosing, interventions and
#: a user-defined product (a second source for the fuzz test).
BASE_IV = BASE.replace(
    'restart = "loss_of_mmr"\n',
    'restart = "loss_of_mmr"\nswitch = { if_not = "MMR", at = "12mo" }\n',
) + (
    '\n[[therapy]]\ndrug = "nilotinib"\nswitch = true\nadherence = 0.9\n'
    'intermittent = { on = "3w", off = "1w" }\n'
    '\n[[intervention]]\nproduct = "peginterferon-alfa-2a"\ndose = "90ug"\n'
    'start = { anchor = "tki_stop", offset = "1mo" }\nduration = "6mo"\n'
    '\n[[intervention]]\nname = "boost"\nproduct = "myvac"\nstart = "relapse"\ncount = 6\n'
    '\n[product.myvac]\nkind = "vaccine"\nhalf_life = "4w"\nec50 = 1\nstandard_interval = "2w"\n'
)


def line_of(text: str, needle: str, nth: int = 0) -> int:
    """1-based line of the ``nth`` line containing ``needle``."""
    hits = [i + 1 for i, ln in enumerate(text.splitlines()) if needle in ln]
    return hits[nth]


# ------------------------------------------------------------------ shipped scenarios


def shipped() -> list[Path]:
    return sorted(SCENARIOS.glob("*.toml"))


def test_the_four_required_scenarios_are_shipped():
    names = {p.stem for p in shipped()}
    assert {
        "imatinib-eln-stop",
        "hahnel-patient-6",
        "nilotinib-2g",
        "destiny-half-dose",
    } <= names


@pytest.mark.parametrize("path", shipped(), ids=lambda p: p.name)
def test_every_shipped_scenario_loads(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#"), "a scenario file starts with a comment saying its question"
    sc = load(path)
    assert sc.name == path.stem
    assert sc.path == str(path)
    assert sc.text == text
    assert sc.question
    assert sc.therapy
    vec = sc.param_vector()
    assert vec.shape == (len(cml_immune.PARAMS),)
    finite = np.delete(vec, cml_immune.PARAMS.index("x0_cap"))  # inf = no cap
    assert np.all(np.isfinite(finite))


def test_imatinib_eln_stop_contents():
    sc = load(SCENARIOS / "imatinib-eln-stop.toml")
    assert sc.model == "cml_immune" and sc.engine == "ode"
    assert sc.horizon == 12 * YEAR
    assert sc.patient == {}
    (seg,) = sc.therapy
    assert seg.drug == DRUGS["imatinib"]
    assert (seg.dose, seg.every, seg.start, seg.end, seg.pk) == (400.0, 1.0, 0.0, None, "interval")
    p = sc.protocol
    assert p.stop_kind == "criteria"
    assert p.stop_after == 5 * YEAR
    assert p.stop_depth == readout.DEPTH_MR4
    assert p.stop_sustained_for == 2 * YEAR
    assert p.restart == "loss_of_mmr"
    assert p.monitoring == "eln2020" and p.monitor_every is None
    assert p.lead_in == 0.0 and p.lead_in_dose == 1.0
    assert p.decisions == "measured"


def test_hahnel_patient_6_contents():
    sc = load(SCENARIOS / "hahnel-patient-6.toml")
    rec = hahnel_record(6)
    cess_t = 53.0 * MONTH
    assert rec["cess_t"] == pytest.approx(cess_t)
    assert sc.protocol.stop_kind == "fixed"
    assert sc.protocol.stop_at == pytest.approx(cess_t)
    assert sc.horizon == pytest.approx(cess_t + 36 * MONTH)
    assert sc.protocol.restart == "never"
    assert sc.protocol.decisions == "true"
    assert sc.therapy[0].pk == "kill"
    # Table S1, patient 6 (rates per month), and the hahnel2020 preset
    expected = {
        "p_yx": 0.702 / MONTH,
        "p_xy": 0.205 / MONTH,
        "e_tki": 2.07 / MONTH,
        "p_z": 311000 / MONTH,
        "K_z": 6480.0,
        "y0": 2740.0,
        "k_E": 0.0,
        "m_N": 0.0,
    }
    assert sc.patient.keys() == expected.keys()
    for name, value in expected.items():
        assert sc.patient[name] == pytest.approx(value, rel=1e-12), name


def test_nilotinib_and_destiny_contents():
    nil = load(SCENARIOS / "nilotinib-2g.toml")
    (seg,) = nil.therapy
    assert seg.drug.name == "nilotinib" and seg.dose == 300.0 and seg.every == 0.5
    assert nil.protocol.stop_depth == readout.DEPTH_MR4

    des = load(SCENARIOS / "destiny-half-dose.toml")
    p = des.protocol
    assert des.therapy[0].dose == 400.0
    assert (p.stop_kind, p.stop_after, p.stop_sustained_for) == ("criteria", 3 * YEAR, YEAR)
    assert p.stop_depth == readout.DEPTH_MMR
    assert (p.lead_in, p.lead_in_dose) == (12 * MONTH, 0.5)
    assert p.restart == "two_consecutive"


def test_hahnel_patient_table():
    p1 = hahnel_patient(1)
    assert p1["p_xy"] == pytest.approx(0.0483 / MONTH)
    assert p1["y0"] == 742834.0
    assert hahnel_record(1)["relapse_observed"] is True
    assert hahnel_record(20)["relapse_observed"] is False
    assert hahnel_record(20)["landscape"] == "B"
    # every patient is inside the model's parameter bounds
    for i in range(1, 22):
        cml_immune.PARAMS.vector(hahnel_patient(i))
    for bad in (0, 22, True, 6.0, "6"):
        with pytest.raises(ValueError, match="1 to 21"):
            hahnel_patient(bad)


def test_base_with_interventions_loads():
    sc = loads(BASE_IV)
    assert [iv.name for iv in sc.interventions] == ["peginterferon-alfa-2a-1", "boost"]
    assert [s.switch for s in sc.therapy] == [False, True]
    assert sc.protocol.switch_at == 12 * MONTH


def test_mr_level_codes_match_readout():
    for name, code in readout.DEPTH_CODES.items():
        text = BASE.replace('sustained = "MR4"', f'sustained = "{name}"')
        assert loads(text).protocol.stop_depth == code


# ------------------------------------------------------------------ bad input


def _mutate(old: str, new: str):
    def apply(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return apply


def _append(extra: str):
    return lambda text: text + extra


BAD = {
    # name: (mutation, key path, text on the expected line (None: no line), fragments)
    "missing required key": (
        _mutate('horizon = "12y"\n', ""),
        "scenario.horizon",
        "[scenario]",
        ["missing", "a duration > 0"],
    ),
    "missing name": (
        _mutate('name = "base"\n', ""),
        "scenario.name",
        "[scenario]",
        ["missing", "a name of letters"],
    ),
    "wrong type": (
        _mutate("seed = 1", 'seed = "one"'),
        "scenario.seed",
        "seed =",
        ['"one"', "an integer from 0 to 9223372036854775807"],
    ),
    "boolean for a number": (
        _mutate("seed = 1", "seed = true"),
        "scenario.seed",
        "seed =",
        ["a boolean", "an integer"],
    ),
    "negative rate": (
        _mutate('p_xy = "0.0452/mo"', 'p_xy = "-0.0452/mo"'),
        "patient.p_xy",
        "p_xy =",
        ["-0.0452/mo", "[0, 1] 1/day", "bounds of p_xy"],
    ),
    "negative plain number": (
        _mutate('p_xy = "0.0452/mo"', "p_y = -0.01"),
        "patient.p_y",
        "p_y =",
        ["-0.01", "bounds of p_y"],
    ),
    "rate for a cell count": (
        _mutate('p_xy = "0.0452/mo"', 'K_z = "400/mo"'),
        "patient.K_z",
        "K_z =",
        ["a plain number in cells"],
    ),
    "unknown drug": (
        _mutate('drug = "imatinib"', 'drug = "imatinb"'),
        "therapy[0].drug",
        "drug =",
        ['unknown drug "imatinb"', "imatinib, dasatinib, nilotinib", "did you mean 'imatinib'"],
    ),
    "unknown key": (
        _mutate('dose = "400mg"', 'dsoe = "400mg"'),
        "therapy[0].dsoe",
        "dsoe =",
        ['unknown key "dsoe"', "did you mean 'dose'"],
    ),
    "unknown key in an inline table": (
        _mutate('sustained = "MR4"', 'sustaned = "MR4"'),
        "protocol.stop.sustaned",
        "stop =",
        ["did you mean 'sustained'"],
    ),
    "unknown parameter": (
        _mutate("p_xy =", "p_xyy ="),
        "patient.p_xyy",
        "p_xyy =",
        ["did you mean 'p_xy'"],
    ),
    "unknown section": (
        _append("\n[outptu]\nfigure = true\n"),
        "outptu",
        "[outptu]",
        ["did you mean 'output'"],
    ),
    "unknown sweep key": (
        _append("\n[sweep]\nsize = 100\n"),
        "sweep.size",
        "size = 100",
        ['unknown key "size"', "one of design, n"],
    ),
    "stop before start": (
        lambda t: t.replace('start = "diagnosis"', 'start = "2y"').replace(
            'stop = { after = "5y", sustained = "MR4", for = "2y" }', 'stop = { at = "1y" }'
        ),
        "protocol.stop.at",
        "stop =",
        ["stop before start", "after the start of the first [[therapy]]"],
    ),
    "stop after the horizon": (
        _mutate('stop = { after = "5y", sustained = "MR4", for = "2y" }', 'stop = { at = "13y" }'),
        "protocol.stop.at",
        "stop =",
        ["horizon"],
    ),
    "overlapping segments": (
        _mutate("\n[protocol]", '\n[[therapy]]\ndrug = "nilotinib"\nstart = "3y"\n\n[protocol]'),
        "therapy[1].start",
        'start = "3y"',
        ["overlap", "therapy[0]", "open end"],
    ),
    "end before start": (
        _mutate('start = "diagnosis"', 'start = "2y"\nend = "1y"'),
        "therapy[0].end",
        "end =",
        ["an end after the start (2y)"],
    ),
    "bad duration string": (
        _mutate('horizon = "12y"', 'horizon = "12 yeras"'),
        "scenario.horizon",
        "horizon =",
        ["unknown time unit 'yeras'", "a duration"],
    ),
    "ambiguous month": (
        _mutate('every = "1d"', 'every = "1m"'),
        "therapy[0].every",
        "every =",
        ['"m" is ambiguous', '"mo"'],
    ),
    "zero horizon": (
        _mutate('horizon = "12y"', "horizon = 0"),
        "scenario.horizon",
        "horizon =",
        ["a duration > 0"],
    ),
    "negative dose": (
        _mutate('dose = "400mg"', 'dose = "-400mg"'),
        "therapy[0].dose",
        "dose =",
        ["a dose from 1ng to 100g"],
    ),
    "unknown engine": (
        _mutate('engine = "ode"', 'engine = "odee"'),
        "scenario.engine",
        "engine =",
        ['"odee"', "did you mean 'ode'"],
    ),
    "engine without visit-driven stops": (
        _mutate('engine = "ode"', 'engine = "abm"'),
        "protocol.stop",
        "stop =",
        ['a criteria stop with engine "abm"', 'stop = "never" or { at = ... }'],
    ),
    "unknown model": (
        _mutate('model = "cml_immune"', 'model = "cml_imune"'),
        "scenario.model",
        "model =",
        ["did you mean 'cml_immune'"],
    ),
    "bad MR level": (
        _mutate('sustained = "MR4"', 'sustained = "MR 4"'),
        "protocol.stop.sustained",
        "stop =",
        ['"MR4.5"', "did you mean 'MR4'"],
    ),
    "bad restart rule": (
        _mutate('restart = "loss_of_mmr"', 'restart = "loss-of-mmr"'),
        "protocol.restart",
        "restart =",
        ["did you mean 'loss_of_mmr'"],
    ),
    "lead-in without a stop": (
        _mutate(
            'stop = { after = "5y", sustained = "MR4", for = "2y" }',
            'lead_in = { duration = "1y", dose = 0.5 }',
        ),
        "protocol.lead_in",
        "lead_in =",
        ["a lead-in only with a stop rule"],
    ),
    "lead-in dose fraction": (
        _append('lead_in = { duration = "1y", dose = 2 }\n'),
        "protocol.lead_in.dose",
        "lead_in =",
        ["a dose fraction in (0, 1]"],
    ),
    "no therapy": (
        lambda t: t.split("[[therapy]]")[0] + "[protocol]\n",
        "therapy",
        None,
        ["at least one [[therapy]]", "therapy = []"],
    ),
    "new drug missing a field": (
        _append('\n[drug.mydrug]\nka = "1/h"\nhalf_life = "12h"\n'),
        "drug.mydrug.volume",
        "[drug.mydrug]",
        ["missing", "volume for the new drug 'mydrug'"],
    ),
    "drug with ke and half_life": (
        _append('\n[drug.imatinib]\nke = "0.03/h"\nhalf_life = "18h"\n'),
        "drug.imatinib.half_life",
        "half_life =",
        ["both ke and half_life"],
    ),
    "too many output points": (
        _mutate("seed = 1", 'seed = 1\noutput_every = "0.002d"'),
        "scenario.output_every",
        "output_every =",
        ["output points", "at most 1,000,000"],
    ),
    "bad figure format": (
        _append('\n[output]\nformats = ["png", "jpeg"]\n'),
        "output.formats",
        "formats =",
        ['"jpeg"', '"svg"'],
    ),
    "unsafe result name": (
        _mutate('name = "base"', 'name = "../base"'),
        "scenario.name",
        "name =",
        ['"../base"', "results/<name>/"],
    ),
    "hahnel patient out of range": (
        _mutate('p_xy = "0.0452/mo"', "hahnel_patient = 22"),
        "patient.hahnel_patient",
        "hahnel_patient =",
        ["an integer from 1 to 21"],
    ),
    "readout out of bounds": (
        _append("\n[readout]\nabl1_median = -5\n"),
        "readout.abl1_median",
        "abl1_median =",
        ["bounds of abl1_median"],
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_gives_one_clear_error(case):
    mutate, key, line_text, fragments = BAD[case]
    text = mutate(BASE)
    with pytest.raises(ScenarioError) as info:
        loads(text, "bad.toml")
    err = info.value
    msg = str(err)
    assert err.file == "bad.toml"
    assert err.key == key
    if line_text is None:
        assert err.line is None
        assert msg.startswith(f"bad.toml: {key}: found ")
    else:
        assert err.line == line_of(text, line_text), msg
        assert msg.startswith(f"bad.toml:{err.line}: {key}: found ")
    assert ", expected " in msg
    assert "\n" not in msg
    for frag in fragments:
        assert frag in msg, (frag, msg)


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ('horizon = "12y"', "horizon = 12y"),
        ("[protocol]", "[protocol"),
        ('stop = { after = "5y", sustained = "MR4", for = "2y" }', 'stop = { after = "5y" '),
        ("seed = 1", "seed = 1\nseed = 2"),
    ],
)
def test_toml_syntax_error_names_line(bad, needle):
    text = BASE.replace(bad, needle)
    with pytest.raises(ScenarioError) as info:
        loads(text, "bad.toml")
    err = info.value
    assert err.key == ""
    assert "TOML syntax error" in err.found
    assert err.expected.startswith("valid TOML")
    last = needle.splitlines()[-1]
    assert err.line == line_of(text, last.strip())
    assert str(err).startswith(f"bad.toml:{err.line}: found a TOML syntax error")


def test_untreated_patient_is_allowed_but_not_with_a_stop():
    head = BASE.split("[[therapy]]")[0].replace("[scenario]", "therapy = []\n\n[scenario]")
    sc = loads(head + "[protocol]\n")
    assert sc.therapy == ()
    assert sc.protocol.stop_kind == "never"
    with pytest.raises(ScenarioError, match="a stop rule but no"):
        loads(head + '[protocol]\nstop = { at = "1y" }\n')


def test_fixed_stop_and_lead_in():
    text = BASE.replace(
        'stop = { after = "5y", sustained = "MR4", for = "2y" }',
        'stop = { at = "85.9mo" }\nlead_in = { duration = "3mo", dose = 0.5 }',
    )
    p = loads(text).protocol
    assert (p.stop_kind, p.stop_at) == ("fixed", pytest.approx(85.9 * MONTH))
    assert (p.lead_in, p.lead_in_dose) == (3 * MONTH, 0.5)
    with pytest.raises(ScenarioError, match="before therapy starts") as info:
        loads(text.replace('duration = "3mo"', 'duration = "8y"'))
    assert info.value.key == "protocol.lead_in.duration"
    with pytest.raises(ScenarioError, match='both "at" and "after"'):
        loads(BASE.replace('after = "5y"', 'at = "5y", after = "5y"'))


def test_segments_in_sequence_are_sorted_and_kept():
    text = BASE.replace('start = "diagnosis"', 'start = "2y"') + (
        '\n[[therapy]]\ndrug = "dasatinib"\nstart = "diagnosis"\nend = "2y"\n'
    )
    text = text.replace('stop = { after = "5y", sustained = "MR4", for = "2y" }', 'stop = "never"')
    sc = loads(text)
    assert [s.drug.name for s in sc.therapy] == ["dasatinib", "imatinib"]
    assert sc.therapy[0].end == sc.therapy[1].start == 2 * YEAR
    assert sc.therapy[0].dose == DRUGS["dasatinib"].standard_dose


def test_user_drug_and_override_of_a_builtin():
    text = BASE.replace('drug = "imatinib"', 'drug = "mydrug"').replace('dose = "400mg"\n', "")
    text += (
        '\n[drug.mydrug]\nka = "1.0/h"\nhalf_life = "12h"\nvolume = "200L"\n'
        'ec50 = "50ng/mL"\nstandard_dose = "100mg"\nstandard_interval = "1d"\n'
    )
    seg = loads(text).therapy[0]
    d = seg.drug
    assert d.name == "mydrug"
    assert d.ka == pytest.approx(24.0)
    assert d.ke == pytest.approx(math.log(2) / 0.5)
    assert (d.volume, d.bioavailability, d.hill) == (200.0, 1.0, 1.0)
    assert d.ec50 == pytest.approx(0.05)
    assert seg.dose == 100.0 and seg.every == 1.0

    over = loads(BASE + '\n[drug.imatinib]\nec50 = "0.5mg/L"\n').therapy[0].drug
    base = DRUGS["imatinib"]
    assert over.ec50 == 0.5
    assert (over.ka, over.ke, over.volume) == (base.ka, base.ke, base.volume)


def test_patient_preset_hahnel_and_explicit_overrides():
    text = BASE.replace('p_xy = "0.0452/mo"', 'hahnel_patient = 2\np_z = "2000/mo"')
    pat = loads(text).patient
    ref = hahnel_patient(2)
    assert pat["p_xy"] == ref["p_xy"]
    assert pat["p_z"] == pytest.approx(2000 / MONTH)  # explicit key wins over the patient
    assert pat["k_E"] == 0.0 and pat["m_N"] == 0.0  # preset hahnel2020 implied
    pat = loads(BASE.replace('p_xy = "0.0452/mo"', 'preset = "hahnel2020"\nk_E = 0.02')).patient
    assert pat == {"k_E": 0.02, "m_N": 0.0}


def test_monitoring_every():
    p = loads(BASE.replace('monitoring = "eln2020"', 'monitoring = { every = "3mo" }')).protocol
    assert (p.monitoring, p.monitor_every) == ("every", 3 * MONTH)


def test_results_are_frozen_and_errors_pickle():
    sc = loads(BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sc.horizon = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        sc.protocol.max_stops = 3
    err = ScenarioError("f.toml", 3, "a.b", "x", "y")
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) == "f.toml:3: a.b: found x, expected y"
    assert pickle.loads(pickle.dumps(sc)) == sc


def test_load_file_errors(tmp_path):
    with pytest.raises(ScenarioError, match="cannot be read") as info:
        load(tmp_path / "nope.toml")
    assert info.value.file.endswith("nope.toml")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b'[scenario]\nname = "\xff"\n')
    with pytest.raises(ScenarioError, match="not UTF-8") as info:
        load(binary)
    assert info.value.line == 2


def test_validate_main(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text(BASE, encoding="utf-8")
    assert validate_main(str(good)) == 0
    out = capsys.readouterr()
    assert out.out.startswith(f"OK: {good}: base (cml_immune, ode, horizon 12y")
    assert out.err == ""
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE.replace('dose = "400mg"', 'dose = "400 mgs"'), encoding="utf-8")
    assert validate_main(str(bad)) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.strip().startswith(
        f"cmlsim validate: {bad}:{line_of(BASE, 'dose =')}: therapy[0].dose: found"
    )


# ------------------------------------------------------------------ locating keys


def test_key_lines_tables_arrays_inline_and_strings():
    text = """\
top = 1
[a]
x = '''
[fake]
y = 1
'''
b.c = 2
[[arr]]
k = 1
[[arr]]
k = { p = 1, q = [1,
  { r = 2 }] }
[arr.sub]
z = "a # not a comment"  # comment
"quoted key" = 3
"""
    loc = _KeyLines(text)
    assert loc.line(("top",)) == 1
    assert loc.line(("a",)) == 2
    assert loc.line(("a", "x")) == 3
    assert loc.line(("fake",)) is None  # inside a multi-line string
    assert loc.line(("a", "b", "c")) == 7
    assert loc.line(("arr", 0, "k")) == 9
    assert loc.line(("arr", 1)) == 10
    assert loc.line(("arr", 1, "k", "q", 1, "r")) == 12
    assert loc.line(("arr", 1, "k", "p")) == 11
    assert loc.line(("arr", 1, "sub", "z")) == 14
    assert loc.line(("arr", 1, "sub", "quoted key")) == 15
    assert loc.line(("arr", 1, "missing")) == 10  # closest located ancestor
    assert format_key(("arr", 1, "sub", "quoted key")) == 'arr[1].sub."quoted key"'


# ------------------------------------------------------------------ round trips and fuzz

_names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_durations_days = st.floats(min_value=1.0, max_value=40 * YEAR, allow_nan=False)


@st.composite
def scenario_values(draw):
    horizon = draw(_durations_days)
    drug = draw(st.sampled_from(sorted(DRUGS)))
    n_seg = draw(st.integers(1, 3))
    cuts = sorted(draw(st.lists(st.floats(0.0, horizon * 0.9), min_size=n_seg, max_size=n_seg)))
    starts = [cuts[0], *cuts[1:]]
    segments = []
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else None
        if end is not None and end <= s:
            end = None
            segments.append((s, end))
            break
        segments.append((s, end))
    seg_vals = [
        {
            "start": s,
            "end": e,
            "dose": draw(st.floats(0.01, 2000.0)),
            "every": draw(st.sampled_from([0.5, 1.0, 2.0, 7.0])),
            "pk": draw(st.sampled_from(["interval", "daily", "kill"])),
        }
        for s, e in segments
    ]
    stop = draw(st.sampled_from(["never", "fixed", "criteria"]))
    return {
        "name": draw(_names),
        "question": draw(st.text(max_size=30)),
        "horizon": horizon,
        "seed": draw(st.integers(0, 2**63 - 1)),
        "rtol": draw(st.floats(1e-11, 1e-3)),
        "every": draw(st.floats(horizon / 1000.0, horizon)),
        "p_xy": draw(st.floats(1e-6, 1.0)),  # p_xy = 0 puts X at infinity at diagnosis
        "K_z": draw(st.floats(1e-3, 1e9)),
        "drug": drug,
        "segments": seg_vals,
        "stop": stop,
        "stop_frac": draw(st.floats(0.01, 0.99)),
        "level": draw(st.sampled_from(sorted(readout.DEPTH_CODES))),
        "restart": draw(st.sampled_from(["loss_of_mmr", "two_consecutive", "never"])),
        "max_stops": draw(st.integers(0, 5)),
        "decisions": draw(st.sampled_from(["measured", "true"])),
        "as_string": draw(st.booleans()),
    }


def _dur(days: float, as_string: bool) -> str:
    """A duration as a scenario writes it: the shortest form, or exact days."""
    return format_duration(days) if as_string else f"{days!r}d"


def _resolvable(*days: float) -> bool:
    """Whether every time is 0 or at least the scenario's time resolution (one minute)."""
    return all(d == 0 or abs(d) >= 1.0 / 1440.0 for d in days)


def test_horizon_written_by_format_duration_loads_exactly():
    for d in (5 * YEAR + 0.1, 2345.678, 12 * YEAR, 89 * MONTH):
        text = BASE.replace('horizon = "12y"', f'horizon = "{format_duration(d)}"')
        assert loads(text).horizon == d


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario_values())
def test_written_scenario_loads_back_to_the_same_fields(v):
    s = v["as_string"]
    first, last_end = v["segments"][0]["start"], v["segments"][-1]["end"]
    doc = {
        "scenario": {
            "name": v["name"],
            "question": v["question"],
            "horizon": _dur(v["horizon"], s),
            "seed": v["seed"],
            "rtol": v["rtol"],
            "output_every": _dur(v["every"], s),
        },
        "patient": {"p_xy": v["p_xy"], "K_z": v["K_z"]},
        "therapy": [
            {
                "drug": v["drug"],
                "dose": f"{g['dose']!r}mg" if s else f"{g['dose']!r} mg",
                "every": _dur(g["every"], s),
                "start": _dur(g["start"], s),
                "pk": g["pk"],
                **({} if g["end"] is None else {"end": _dur(g["end"], s)}),
            }
            for g in v["segments"]
        ],
        "protocol": {
            "restart": v["restart"],
            "max_stops": v["max_stops"],
            "decisions": v["decisions"],
        },
    }
    end = last_end if last_end is not None else v["horizon"]
    stop_at = first + v["stop_frac"] * (end - first)
    after = v["stop_frac"] * (v["horizon"] - first)
    if v["stop"] == "fixed" and first < stop_at < end:
        doc["protocol"]["stop"] = {"at": _dur(stop_at, s)}
    elif v["stop"] == "criteria" and after > 0 and first + after < v["horizon"]:
        doc["protocol"]["stop"] = {
            "after": _dur(after, s),
            "sustained": v["level"],
            "for": _dur(after / 2, s),
        }
    segs = v["segments"]
    assume(_resolvable(v["horizon"], v["every"], stop_at, after, after / 2))
    assume(all(_resolvable(g["start"]) and g["every"] <= v["horizon"] for g in segs))
    assume(all(g["end"] is None or g["end"] - g["start"] >= 1.0 / 1440.0 for g in segs))
    text = tomli_w.dumps(doc)
    sc = loads(text, "rt.toml")

    assert isinstance(sc, Scenario)
    assert sc.text == text and sc.path == "rt.toml"
    assert (sc.name, sc.question, sc.seed) == (v["name"], v["question"], v["seed"])
    assert sc.horizon == v["horizon"]
    assert sc.output_every == v["every"]
    assert sc.rtol == v["rtol"]
    assert sc.patient == {"p_xy": v["p_xy"], "K_z": v["K_z"]}
    assert len(sc.therapy) == len(v["segments"])
    for seg, g in zip(sc.therapy, v["segments"], strict=True):
        assert isinstance(seg, TherapySegment)
        assert seg.drug == DRUGS[v["drug"]]
        assert (seg.dose, seg.every, seg.start, seg.end, seg.pk) == (
            g["dose"],
            g["every"],
            g["start"],
            g["end"],
            g["pk"],
        )
    p = sc.protocol
    assert isinstance(p, Protocol)
    assert (p.restart, p.max_stops, p.decisions) == (v["restart"], v["max_stops"], v["decisions"])
    stop = doc["protocol"].get("stop")
    if stop is None:
        assert p.stop_kind == "never"
    elif "at" in stop:
        assert (p.stop_kind, p.stop_at) == ("fixed", stop_at)
    else:
        assert (p.stop_kind, p.stop_after) == ("criteria", after)
        assert p.stop_depth == readout.DEPTH_CODES[v["level"]]
        assert p.stop_sustained_for == after / 2
    # writing the same values again gives an equal scenario
    assert loads(text, "rt.toml") == sc


_TOKENS = [
    "\n",
    " ",
    "=",
    '"',
    "'",
    "[",
    "]",
    "[[",
    "{",
    "}",
    ",",
    ".",
    "#",
    "-",
    "0",
    "1e9",
    "-1",
    "y",
    "mo",
    "m",
    "true",
    "inf",
    "nan",
    "1979-05-27",
    "dose",
    "drug",
    "start",
    "end",
    "stop",
    "at",
    "therapy",
    "patient",
    "p_xy",
    "hahnel_patient",
    "[drug.x]",
    "[[therapy]]",
    "[[intervention]]",
    "[product.x]",
    "product",
    "anchor",
    "offset",
    "switch",
    "adherence",
    "intermittent",
    '"tki_stop"',
    '"relapse"',
    '"never"',
    '"MR4"',
    "\\",
    "µ",
]


@st.composite
def mutated(draw):
    sources = [BASE, BASE_IV, *(p.read_text(encoding="utf-8") for p in shipped())]
    text = draw(st.sampled_from(sources))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["delete", "insert", "swap", "duplicate"]))
        n = len(text)
        i = draw(st.integers(0, n))
        if kind == "delete":
            j = draw(st.integers(i, min(n, i + 12)))
            text = text[:i] + text[j:]
        elif kind == "insert":
            tok = draw(st.sampled_from(_TOKENS) | st.text(max_size=3))
            text = text[:i] + tok + text[i:]
        else:
            lines = text.splitlines(keepends=True)
            if len(lines) < 2:
                continue
            a = draw(st.integers(0, len(lines) - 1))
            b = draw(st.integers(0, len(lines) - 1))
            if kind == "swap":
                lines[a], lines[b] = lines[b], lines[a]
            else:
                lines.insert(b, lines[a])
            text = "".join(lines)
    return text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_fuzzed_scenarios_load_or_raise_scenario_error(text):
    try:
        sc = loads(text, "fuzz.toml")
    except ScenarioError as err:
        msg = str(err)
        assert msg.startswith("fuzz.toml")
        assert "found" in msg and "expected" in msg
        assert err.line is None or 1 <= err.line <= text.count("\n") + 1
        return
    assert sc.horizon > 0 and math.isfinite(sc.horizon)
    sc.param_vector()
