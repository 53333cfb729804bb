"""Tests of the issue-3 scenario schema: [[intervention]], [product.<name>], therapy adherence,
intermittent dosing and switch targets, the protocol's switch rule, and one run end to end."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sim import readout
from sim.scenario import (
    ANCHORS,
    Intervention,
    ScenarioError,
    TherapySegment,
    loads,
    validate_main,
)
from sim.therapy.interventions import PRODUCTS
from sim.units import format_duration

MONTH = 365.25 / 12.0
YEAR = 365.25

BASE = """\
# a valid scenario with interventions, which the tests mutate
[scenario]
name = "iv"
horizon = "12y"
seed = 7

[[therapy]]
drug = "imatinib"
dose = "400mg"

[protocol]
stop = { after = "5y", sustained = "MR4", for = "2y" }
lead_in = { duration = "6mo", dose = 0.5 }

[[intervention]]
name = "ifn"
product = "peginterferon-alfa-2a"
dose = "90ug"
every = "1w"
start = "diagnosis"
duration = "6mo"

[[intervention]]
product = "nivolumab"
start = { anchor = "tki_stop", offset = "1mo" }
count = 4
"""

CRITERIA = 'stop = { after = "5y", sustained = "MR4", for = "2y" }\n'
LEAD_IN = 'lead_in = { duration = "6mo", dose = 0.5 }\n'


def line_of(text: str, needle: str, nth: int = 0) -> int:
    """1-based line of the ``nth`` line containing ``needle``."""
    hits = [i + 1 for i, ln in enumerate(text.splitlines()) if needle in ln]
    return hits[nth]


def edit(*pairs: tuple[str, str]):
    """A mutation replacing each ``old`` (which must be there) by ``new`` once."""

    def apply(text: str) -> str:
        for old, new in pairs:
            assert old in text, old
            text = text.replace(old, new, 1)
        return text

    return apply


def append(extra: str):
    return lambda text: text + extra


def stop(rule: str):
    """Replace the criteria stop (and its lead-in) by ``rule``."""
    return edit((CRITERIA + LEAD_IN, rule))


SWITCH = (
    '\n[[therapy]]\ndrug = "nilotinib"\nswitch = true\n',
    'switch = { if_not = "MMR", at = "12mo" }\n',
)


def with_switch(text: str) -> str:
    """BASE with a nilotinib switch target and a switch rule."""
    text = text.replace("\n[protocol]\n", SWITCH[0] + "\n[protocol]\n" + SWITCH[1], 1)
    return text


# ------------------------------------------------------------------ valid input


def test_base_loads_with_defaults_names_and_anchors():
    sc = loads(BASE)
    ifn, nivo = sc.interventions
    assert isinstance(ifn, Intervention)
    assert ifn.name == "ifn" and ifn.product == PRODUCTS["peginterferon-alfa-2a"]
    assert ifn.dose == pytest.approx(0.09) and ifn.every == 7.0
    assert (ifn.anchor, ifn.offset, ifn.duration, ifn.count) == ("diagnosis", 0.0, 6 * MONTH, None)
    # defaults: the product's standard dose and interval, name "<product>-<k>"
    assert nivo.name == "nivolumab-1"
    assert (nivo.dose, nivo.every) == (240.0, 14.0)
    assert (nivo.anchor, nivo.offset, nivo.duration, nivo.count) == ("tki_stop", MONTH, None, 4)
    assert sc.never_given() == {}


def test_default_names_count_per_product():
    text = BASE + (
        '\n[[intervention]]\nproduct = "nivolumab"\nstart = "relapse"\n'
        '\n[[intervention]]\nproduct = "vaccine"\nstart = "mr4"\n'
    )
    names = [iv.name for iv in loads(text).interventions]
    assert names == ["ifn", "nivolumab-1", "nivolumab-2", "vaccine-1"]


def test_scenario_without_interventions_has_an_empty_tuple():
    text = BASE.split("[[intervention]]")[0]
    assert loads(text).interventions == ()
    assert loads("intervention = []\n" + text).interventions == ()


@pytest.mark.parametrize(
    ("start", "anchor", "offset"),
    [
        ('"diagnosis"', "diagnosis", 0.0),
        ('"6mo"', "diagnosis", 6 * MONTH),  # six months into therapy
        ('"30d"', "diagnosis", 30.0),
        ('"0d"', "diagnosis", 0.0),
        ('"mmr"', "mmr", 0.0),
        ('"mr4"', "mr4", 0.0),
        ('"stop_criteria"', "stop_criteria", 0.0),
        ('"tki_stop"', "tki_stop", 0.0),
        ('"first_rise"', "first_rise", 0.0),
        ('"relapse"', "relapse", 0.0),
        ('{ anchor = "relapse" }', "relapse", 0.0),
        ('{ anchor = "mmr", offset = "2w" }', "mmr", 14.0),
        ('{ anchor = "diagnosis", offset = "10d" }', "diagnosis", 10.0),
        ('{ anchor = "diagnosis", offset = 0 }', "diagnosis", 0.0),  # 0 needs no unit
    ],
)
def test_start_forms(start, anchor, offset):
    text = BASE.replace('start = "diagnosis"\nduration', f"start = {start}\nduration")
    iv = loads(text).interventions[0]
    assert (iv.anchor, iv.offset) == (anchor, offset)


def test_anchor_names_match_the_run_layer_and_kernel_codes():
    from sim.engines import ode
    from sim.run import ANCHORS as RUN_ANCHORS

    assert tuple(RUN_ANCHORS) == ANCHORS
    codes = {
        "diagnosis": ode.ANCHOR_DIAGNOSIS,
        "mmr": ode.ANCHOR_MMR,
        "mr4": ode.ANCHOR_MR4,
        "stop_criteria": ode.ANCHOR_STOP_CRITERIA,
        "tki_stop": ode.ANCHOR_TKI_STOP,
        "first_rise": ode.ANCHOR_FIRST_RISE,
        "relapse": ode.ANCHOR_RELAPSE,
    }
    assert {a: RUN_ANCHORS[a] for a in ANCHORS} == codes


def test_doses_units_and_zero():
    text = BASE.replace('dose = "90ug"', 'dose = "0.18 mg"')
    assert loads(text).interventions[0].dose == pytest.approx(0.18)
    assert loads(BASE.replace('dose = "90ug"', "dose = 0")).interventions[0].dose == 0.0
    vac = BASE + '\n[[intervention]]\nproduct = "exercise"\ndose = 2\nstart = "6mo"\n'
    ex = loads(vac).interventions[2]
    assert (ex.dose, ex.every) == (2.0, 7.0 / 3.0)
    assert ex.product.kind == "exercise"
    assert loads(vac.replace("dose = 2", "dose = 0")).interventions[2].dose == 0.0
    # kind is optional and, when given, must match the product
    assert loads(BASE.replace('name = "ifn"', 'name = "ifn"\nkind = "interferon"')).interventions


def test_negative_tki_stop_offset_with_a_fixed_stop_becomes_a_diagnosis_anchor():
    text = stop('stop = { at = "5y" }\n')(BASE).replace('offset = "1mo"', 'offset = "-3mo"')
    iv = loads(text).interventions[1]
    assert (iv.anchor, iv.offset) == ("diagnosis", 5 * YEAR - 3 * MONTH)
    # exactly at diagnosis is allowed
    text = text.replace('offset = "-3mo"', 'offset = "-5y"')
    assert loads(text).interventions[1].offset == 0.0


def test_stop_criteria_with_a_fixed_stop():
    # without a lead-in the criteria of a fixed stop are the stop itself
    text = stop('stop = { at = "5y" }\n')(BASE).replace(
        'anchor = "tki_stop"', 'anchor = "stop_criteria"'
    )
    assert loads(text).interventions[1].anchor == "tki_stop"
    # with a lead-in the kernel fires stop_criteria at the start of the lead-in
    text = stop('stop = { at = "5y" }\n' + LEAD_IN)(BASE).replace(
        'anchor = "tki_stop"', 'anchor = "stop_criteria"'
    )
    assert loads(text).interventions[1].anchor == "stop_criteria"


def test_anchor_that_cannot_happen_is_valid_and_described():
    text = stop('stop = "never"\n')(BASE)
    sc = loads(text)
    nivo = sc.interventions[1]
    assert nivo.anchor == "tki_stop"
    why = sc.never_given()
    assert set(why) == {"nivolumab-1"}
    assert 'protocol.stop is "never"' in why["nivolumab-1"]
    lines = sc.describe().splitlines()
    assert lines[0].startswith("iv (cml_immune, ode, horizon 12y, imatinib 400 mg/1d, no stop")
    assert (
        lines[1]
        == "  intervention ifn: peginterferon-alfa-2a 0.09 mg every 1w from diagnosis for 6mo"
    )
    assert lines[2].startswith(
        "  intervention nivolumab-1: nivolumab 240 mg every 2w from tki_stop + 1mo, at most 4 doses"
    )
    assert "never given" in lines[2] and "never given" not in lines[1]
    # max_stops = 0: no stop either
    text = BASE.replace(LEAD_IN, LEAD_IN + "max_stops = 0\n")
    assert "max_stops is 0" in loads(text).never_given()["nivolumab-1"]
    # first_rise and relapse as well; mmr can happen without a stop
    for anchor, never in (("first_rise", True), ("relapse", True), ("mmr", False)):
        t = stop('stop = "never"\n')(BASE).replace('anchor = "tki_stop"', f'anchor = "{anchor}"')
        assert bool(loads(t).never_given()) is never, anchor


def test_overlapping_interventions_are_valid():
    text = BASE + (
        '\n[[intervention]]\nname = "ifn2"\nproduct = "peginterferon-alfa-2a"\nstart = "1mo"\n'
    )
    a, _, b = loads(text).interventions
    assert a.product == b.product and b.offset < a.duration


def test_user_defined_products():
    text = BASE.replace('product = "nivolumab"', 'product = "myab"') + (
        '\n[product.myab]\nkind = "checkpoint"\nka = "1/d"\nhalf_life = "20d"\nvolume = "6L"\n'
        'ec50 = "1.5mg/L"\nemax = 0.9\nstandard_dose = "200mg"\nstandard_interval = "3w"\n'
        '\n[product.myvac]\nkind = "vaccine"\nka = "0.5/d"\nke = "0.1/d"\nec50 = 2\n'
        'standard_interval = "2w"\nsource = "trial X"\n'
        '\n[product.myifn]\nkind = "interferon"\nka = "0.4/d"\nhalf_life = "80h"\n'
        'volume = "8L"\nbioavailability = 0.84\nec50 = "6ng/mL"\nhill = 2\n'
        'standard_dose = "90ug"\nstandard_interval = "1w"\n'
        '\n[[intervention]]\nproduct = "myvac"\nstart = "mr4"\n'
        '\n[[intervention]]\nproduct = "myifn"\nstart = "mmr"\n'
    )
    _, ab, vac, ifn = loads(text, "p.toml").interventions
    p = ab.product
    assert (p.name, p.kind, p.ka, p.volume, p.emax, p.ec50) == (
        "myab",
        "checkpoint",
        1.0,
        6.0,
        0.9,
        1.5,
    )
    assert p.ke == pytest.approx(math.log(2) / 20)
    assert (ab.dose, ab.every) == (200.0, 21.0)
    assert p.source == "user-defined in p.toml"
    v = vac.product
    assert (v.kind, v.ka, v.ke, v.volume, v.ec50, v.standard_dose) == (
        "vaccine",
        0.5,
        0.1,
        1.0,
        2.0,
        1.0,
    )
    assert (vac.dose, vac.every, v.source) == (1.0, 14.0, "trial X")
    f = ifn.product
    assert (f.ka, f.volume, f.bioavailability, f.hill) == (0.4, 8.0, 0.84, 2.0)
    assert f.ec50 == pytest.approx(6e-3) and ifn.dose == pytest.approx(0.09)
    assert f.ke == pytest.approx(math.log(2) / (80 / 24))
    # no ka, ka = "inf" and a TOML inf: an IV bolus
    for ka in ("", 'ka = "inf"\n', "ka = inf\n"):
        t = text.replace('ka = "1/d"\n', ka)
        assert loads(t).interventions[1].product.ka == math.inf


def test_override_of_a_builtin_product():
    text = BASE + '\n[product.nivolumab]\nec50 = "1mg/L"\nhalf_life = "20d"\n'
    p = loads(text).interventions[1].product
    base = PRODUCTS["nivolumab"]
    assert p.ec50 == 1.0 and p.ke == pytest.approx(math.log(2) / 20)
    assert (p.kind, p.volume, p.emax, p.standard_dose) == (
        base.kind, base.volume, base.emax, base.standard_dose,
    )  # fmt: skip
    assert "ec50, ke overridden" in p.notes


def test_therapy_adherence_intermittent_and_switch():
    text = with_switch(BASE).replace(
        'dose = "400mg"\n',
        'dose = "400mg"\nadherence = 0.8\nintermittent = { on = "3w", off = "1w" }\n',
    )
    sc = loads(text)
    ima, nil = sc.therapy
    assert isinstance(ima, TherapySegment)
    assert (ima.adherence, ima.on, ima.off, ima.switch) == (0.8, 21.0, 7.0, False)
    assert (nil.drug.name, nil.switch, nil.adherence, nil.on, nil.off) == (
        "nilotinib", True, 1.0, 0.0, 0.0,
    )  # fmt: skip
    p = sc.protocol
    assert (p.switch_at, p.switch_depth) == (12 * MONTH, readout.DEPTH_MMR)
    first = sc.describe().splitlines()[0]
    assert "imatinib 400 mg/1d 3w on/1w off (80% of doses taken)" in first
    assert "switch to nilotinib 300 mg/12h if not MMR at 1y" in first
    # defaults
    plain = loads(BASE)
    assert plain.protocol.switch_at is None and plain.protocol.switch_depth == 0
    assert plain.therapy[0].adherence == 1.0 and not plain.therapy[0].switch
    # positional construction is unchanged; new fields have defaults
    seg = TherapySegment(ima.drug, 400.0, 1.0, 0.0, None, "interval")
    assert (seg.adherence, seg.on, seg.off, seg.switch) == (1.0, 0.0, 0.0, False)


def test_switch_target_is_not_overlap_checked_and_bounds_use_ordinary_segments():
    # the target starts at diagnosis, overlapping the imatinib segment: fine
    sc = loads(with_switch(BASE))
    assert [s.drug.name for s in sc.therapy] == ["imatinib", "nilotinib"]
    # a fixed stop after the ordinary segment's start is fine though the target starts later
    text = with_switch(stop('stop = { at = "5y" }\n')(BASE)).replace(
        "switch = true\n", 'switch = true\nstart = "6y"\n'
    )
    assert loads(text).protocol.stop_at == 5 * YEAR
    # with a switch, an ordinary segment that ends still leaves the open target
    text = with_switch(stop('stop = { at = "5y" }\n')(BASE)).replace(
        'dose = "400mg"\n', 'dose = "400mg"\nend = "4y"\n'
    )
    assert loads(text).protocol.stop_at == 5 * YEAR


def test_results_stay_frozen_picklable_and_equal():
    sc = loads(with_switch(BASE))
    assert pickle.loads(pickle.dumps(sc)) == sc
    assert loads(with_switch(BASE)) == sc
    with pytest.raises(AttributeError):
        sc.interventions[0].dose = 1.0


# ------------------------------------------------------------------ bad input

BAD = {
    # name: (mutation, key path, (text on the expected line, nth) or None, fragments)
    "unknown key": (
        edit(('dose = "90ug"', 'dsoe = "90ug"')),
        "intervention[0].dsoe",
        ("dsoe =", 0),
        ['unknown key "dsoe"', "did you mean 'dose'"],
    ),
    "unknown pk mode": (
        edit(('dose = "90ug"', 'dose = "90ug"\npk = "daily"')),
        "intervention[0].pk",
        ('pk = "daily"', 0),
        ['"daily"', '"doses", "interval"'],
    ),
    "missing product": (
        edit(('product = "peginterferon-alfa-2a"\n', "")),
        "intervention[0].product",
        ("[[intervention]]", 0),
        ["missing", "a product name", "nivolumab"],
    ),
    "missing start": (
        edit(('start = { anchor = "tki_stop", offset = "1mo" }\n', "")),
        "intervention[1].start",
        ("[[intervention]]", 1),
        ["missing", "an anchor", '"tki_stop"', 'a duration from diagnosis ("6mo")'],
    ),
    "unknown product": (
        edit(('product = "nivolumab"', 'product = "nivolumb"')),
        "intervention[1].product",
        ('product = "nivolumb"', 0),
        ['unknown product "nivolumb"', "did you mean 'nivolumab'", "[product.<name>]"],
    ),
    "unknown anchor": (
        edit(('start = "diagnosis"', 'start = "tki-stop"')),
        "intervention[0].start",
        ('start = "tki-stop"', 0),
        ['"tki-stop"', "did you mean 'tki_stop'", '"first_rise"'],
    ),
    "unknown anchor in a table": (
        edit(('anchor = "tki_stop"', 'anchor = "relapsed"')),
        "intervention[1].start.anchor",
        ("anchor =", 0),
        ['"relapsed"', "did you mean 'relapse'"],
    ),
    "unknown key in the start table": (
        edit(('offset = "1mo"', 'ofset = "1mo"')),
        "intervention[1].start.ofset",
        ("ofset =", 0),
        ["did you mean 'offset'"],
    ),
    "bad start duration": (
        edit(('start = "diagnosis"', 'start = "6 moths"')),
        "intervention[0].start",
        ('start = "6 moths"', 0),
        ['"6 moths"', "an anchor"],
    ),
    "start before diagnosis": (
        edit(('start = "diagnosis"', 'start = "-1mo"')),
        "intervention[0].start",
        ('start = "-1mo"', 0),
        ["before diagnosis", "interventions cannot start before diagnosis (t = 0)"],
    ),
    "start table before diagnosis": (
        edit(('start = "diagnosis"', 'start = { anchor = "diagnosis", offset = "-1d" }')),
        "intervention[0].start.offset",
        ('offset = "-1d"', 0),
        ["interventions cannot start before diagnosis (t = 0)"],
    ),
    "negative offset from a criteria stop": (
        edit(('offset = "1mo"', 'offset = "-1mo"')),
        "intervention[1].start.offset",
        ('offset = "-1mo"', 0),
        ["not known in advance", 'start = "stop_criteria"', "lead_in"],
    ),
    "negative offset without a stop": (
        lambda t: stop('stop = "never"\n')(t).replace('offset = "1mo"', 'offset = "-1mo"'),
        "intervention[1].start.offset",
        ('offset = "-1mo"', 0),
        ['protocol.stop = "never"', "stop = { at = ... }"],
    ),
    "negative offset from another anchor": (
        edit(('anchor = "tki_stop", offset = "1mo"', 'anchor = "mmr", offset = "-1mo"')),
        "intervention[1].start.offset",
        ('offset = "-1mo"', 0),
        ["from mmr", "an offset >= 0", "only tki_stop with a fixed stop"],
    ),
    "fixed-stop offset before diagnosis": (
        lambda t: stop('stop = { at = "1y" }\n')(t).replace('offset = "1mo"', 'offset = "-2y"'),
        "intervention[1].start.offset",
        ('offset = "-2y"', 0),
        ["before the stop at 1y", "interventions cannot start before diagnosis (t = 0)"],
    ),
    "stop_criteria without a stop rule": (
        lambda t: stop('stop = "never"\n')(t).replace(
            'anchor = "tki_stop"', 'anchor = "stop_criteria"'
        ),
        "intervention[1].start.anchor",
        ('anchor = "stop_criteria"', 0),
        ['"stop_criteria" but protocol.stop = "never"', "a stop rule in [protocol]"],
    ),
    "stop_criteria string without a stop rule": (
        lambda t: stop('stop = "never"\n')(t).replace(
            'start = "diagnosis"', 'start = "stop_criteria"'
        ),
        "intervention[0].start",
        ('start = "stop_criteria"', 0),
        ["a stop rule in [protocol]"],
    ),
    "start after the horizon": (
        edit(('start = "diagnosis"', 'start = "13y"')),
        "intervention[0].start",
        ('start = "13y"', 0),
        ["at or after the horizon", "a start before the horizon (12y)"],
    ),
    "fixed-stop start after the horizon": (
        lambda t: stop('stop = { at = "11y" }\n')(t).replace('offset = "1mo"', 'offset = "2y"'),
        "intervention[1].start.offset",
        ('offset = "2y"', 0),
        ["13y", "a start before the horizon"],
    ),
    "negative dose": (
        edit(('dose = "90ug"', 'dose = "-90ug"')),
        "intervention[0].dose",
        ('dose = "-90ug"', 0),
        ['"-90ug"', "a dose from 0 to 100g"],
    ),
    "bad dose unit": (
        edit(('dose = "90ug"', 'dose = "90 IU"')),
        "intervention[0].dose",
        ('dose = "90 IU"', 0),
        ["unknown unit 'IU'", "mg, g, ug"],
    ),
    "vaccine dose with a unit": (
        append('\n[[intervention]]\nproduct = "vaccine"\ndose = "1mg"\nstart = "mr4"\n'),
        "intervention[2].dose",
        ('dose = "1mg"', 0),
        ['"1mg"', "a plain number of units from 0 to 1e+06", "one shot"],
    ),
    "negative exercise dose": (
        append('\n[[intervention]]\nproduct = "exercise"\ndose = -1\nstart = "mr4"\n'),
        "intervention[2].dose",
        ("dose = -1", 0),
        ["-1", "one session"],
    ),
    "zero interval": (
        edit(('every = "1w"', "every = 0")),
        "intervention[0].every",
        ("every = 0", 0),
        ["a dosing interval from 1h to 200y"],
    ),
    "zero duration": (
        edit(('duration = "6mo"\n', 'duration = "0d"\n')),
        "intervention[0].duration",
        ('duration = "0d"', 0),
        ["a duration > 0"],
    ),
    "zero count": (
        edit(("count = 4", "count = 0")),
        "intervention[1].count",
        ("count = 0", 0),
        ["an integer from 1 to 10000000"],
    ),
    "fractional count": (
        edit(("count = 4", "count = 2.5")),
        "intervention[1].count",
        ("count = 2.5", 0),
        ["2.5", "an integer from 1 to 10000000"],
    ),
    "bad name": (
        edit(('name = "ifn"', 'name = "my ifn"')),
        "intervention[0].name",
        ('name = "my ifn"', 0),
        ['"my ifn"', "letters, digits"],
    ),
    "duplicate name": (
        edit(('product = "nivolumab"', 'name = "ifn"\nproduct = "nivolumab"')),
        "intervention[1].name",
        ('name = "ifn"', 1),
        ['the name "ifn" twice', "intervention[0]", "a unique name"],
    ),
    "default name taken": (
        edit(('name = "ifn"', 'name = "nivolumab-1"')),
        "intervention[1]",
        ("[[intervention]]", 1),
        ['"nivolumab-1" twice', "default name"],
    ),
    "kind that contradicts the product": (
        edit(('name = "ifn"', 'name = "ifn"\nkind = "checkpoint"')),
        "intervention[0].kind",
        ('kind = "checkpoint"', 0),
        ['peginterferon-alfa-2a is of kind "interferon"', '"interferon" (or no kind'],
    ),
    "intervention not an array": (
        lambda t: "intervention = 1\n" + t.split("[[intervention]]")[0],
        "intervention",
        ("intervention = 1", 0),
        ["an array of [[intervention]] tables"],
    ),
    # [product.<name>]
    "product without kind": (
        append('\n[product.x]\nhalf_life = "1w"\nec50 = 1\nstandard_interval = "1w"\n'),
        "product.x.kind",
        ("[product.x]", 0),
        ["missing", '"interferon"', '"exercise"'],
    ),
    "bad product kind": (
        append('\n[product.x]\nkind = "interferone"\n'),
        "product.x.kind",
        ('kind = "interferone"', 0),
        ["did you mean 'interferon'"],
    ),
    "interferon product without volume": (
        append(
            '\n[product.x]\nkind = "interferon"\nhalf_life = "80h"\nec50 = "6ng/mL"\n'
            'standard_dose = "90ug"\nstandard_interval = "1w"\n'
        ),
        "product.x.volume",
        ("[product.x]", 0),
        ["missing", "volume for the new interferon product 'x'"],
    ),
    "product without half-life": (
        append('\n[product.x]\nkind = "vaccine"\nec50 = 1\nstandard_interval = "1w"\n'),
        "product.x.half_life",
        ("[product.x]", 0),
        ["half_life or ke"],
    ),
    "product with ke and half_life": (
        append('\n[product.nivolumab]\nke = "0.03/d"\nhalf_life = "25d"\n'),
        "product.nivolumab.half_life",
        ('half_life = "25d"', 0),
        ["both ke and half_life"],
    ),
    "checkpoint emax above 1": (
        append("\n[product.nivolumab]\nemax = 1.5\n"),
        "product.nivolumab.emax",
        ("emax = 1.5", 0),
        ["a number in (0, 1]"],
    ),
    "vaccine ec50 with a unit": (
        append('\n[product.vaccine]\nec50 = "1mg/L"\n'),
        "product.vaccine.ec50",
        ('ec50 = "1mg/L"', 0),
        ['"1mg/L"', "a plain number of units"],
    ),
    "bad absorption rate": (
        append('\n[product.nivolumab]\nka = "fast"\n'),
        "product.nivolumab.ka",
        ('ka = "fast"', 0),
        ['"fast"', "a rate", '"inf" for an IV bolus'],
    ),
    "unknown product key": (
        append("\n[product.nivolumab]\nec_50 = 1\n"),
        "product.nivolumab.ec_50",
        ("ec_50 = 1", 0),
        ["did you mean 'ec50'"],
    ),
    "built-in product changes kind": (
        append('\n[product.nivolumab]\nkind = "vaccine"\n'),
        "product.nivolumab.kind",
        ('kind = "vaccine"', 0),
        ['"checkpoint" (the kind of the built-in nivolumab)'],
    ),
    # therapy keys
    "adherence zero": (
        edit(('dose = "400mg"', 'dose = "400mg"\nadherence = 0')),
        "therapy[0].adherence",
        ("adherence = 0", 0),
        ["0 < adherence <= 1"],
    ),
    "adherence above one": (
        edit(('dose = "400mg"', 'dose = "400mg"\nadherence = 1.2')),
        "therapy[0].adherence",
        ("adherence = 1.2", 0),
        ["1.2", "0 < adherence <= 1"],
    ),
    "adherence as percent string": (
        edit(('dose = "400mg"', 'dose = "400mg"\nadherence = "90%"')),
        "therapy[0].adherence",
        ("adherence =", 0),
        ['"90%"', "0 < adherence <= 1"],
    ),
    "intermittent without off": (
        edit(('dose = "400mg"', 'dose = "400mg"\nintermittent = { on = "1w" }')),
        "therapy[0].intermittent.off",
        ("intermittent =", 0),
        ["missing", "a duration > 0"],
    ),
    "intermittent zero on": (
        edit(('dose = "400mg"', 'dose = "400mg"\nintermittent = { on = 0, off = "1w" }')),
        "therapy[0].intermittent.on",
        ("intermittent =", 0),
        ["a duration > 0"],
    ),
    "intermittent unknown key": (
        edit(('dose = "400mg"', 'dose = "400mg"\nintermittent = { on = "1w", of = "1w" }')),
        "therapy[0].intermittent.of",
        ("intermittent =", 0),
        ["did you mean 'off'"],
    ),
    "intermittent not a table": (
        edit(('dose = "400mg"', 'dose = "400mg"\nintermittent = "1w/1w"')),
        "therapy[0].intermittent",
        ("intermittent =", 0),
        ['"1w/1w"', '{ on = "1w", off = "1w" }'],
    ),
    "switch not a boolean": (
        edit(('dose = "400mg"', 'dose = "400mg"\nswitch = "yes"')),
        "therapy[0].switch",
        ("switch =", 0),
        ['"yes"', "true or false"],
    ),
    "switch target without a rule": (
        edit(("\n[protocol]\n", SWITCH[0] + "\n[protocol]\n")),
        "therapy[1].switch",
        ("switch = true", 0),
        ["no switch rule in [protocol]", 'switch = { if_not = "MMR", at = "12mo" }'],
    ),
    "switch rule without a target": (
        edit(("\n[protocol]\n", "\n[protocol]\n" + SWITCH[1])),
        "protocol.switch",
        ("switch = {", 0),
        ["no [[therapy]] segment with switch = true", "exactly one"],
    ),
    "two switch targets": (
        lambda t: with_switch(t).replace(SWITCH[0], SWITCH[0] + SWITCH[0]),
        "therapy[2].switch",
        ("switch = true", 1),
        ["a second segment with switch = true (therapy[1]", "exactly one switch target"],
    ),
    "only a switch target": (
        edit(('dose = "400mg"', 'dose = "400mg"\nswitch = true')),
        "therapy[0].switch",
        ("switch = true", 0),
        ["the only [[therapy]] segment", "an ordinary segment"],
    ),
    "switch level typo": (
        lambda t: with_switch(t).replace('if_not = "MMR"', 'if_not = "MR 4"'),
        "protocol.switch.if_not",
        ("if_not =", 0),
        ['"MR 4"', "did you mean 'MR4'"],
    ),
    "switch after the horizon": (
        lambda t: with_switch(t).replace('at = "12mo"', 'at = "12y"'),
        "protocol.switch.at",
        ("if_not =", 0),
        ["a time before the horizon (12y)"],
    ),
    "switch rule missing at": (
        lambda t: with_switch(t).replace(', at = "12mo"', ""),
        "protocol.switch.at",
        ("if_not =", 0),
        ["missing", "a duration > 0"],
    ),
    "switch rule unknown key": (
        lambda t: with_switch(t).replace("if_not", "unless"),
        "protocol.switch.unless",
        ("unless =", 0),
        ['unknown key "unless"', "if_not, at"],
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_gives_one_clear_error(case):
    mutate, key, where, fragments = BAD[case]
    text = mutate(BASE)
    with pytest.raises(ScenarioError) as info:
        loads(text, "bad.toml")
    err = info.value
    msg = str(err)
    assert err.file == "bad.toml"
    assert err.key == key, msg
    assert err.line == line_of(text, *where), msg
    assert msg.startswith(f"bad.toml:{err.line}: {key}: found "), msg
    assert ", expected " in msg and "\n" not in msg
    for frag in fragments:
        assert frag in msg, (frag, msg)


def test_validate_main_lists_interventions_and_fails_with_code_2(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text(stop('stop = "never"\n')(BASE), encoding="utf-8")
    assert validate_main(str(good)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"OK: {good}: iv (cml_immune")
    assert out[1].startswith("  intervention ifn: peginterferon-alfa-2a 0.09 mg every 1w")
    assert "never given" in out[2]
    bad = tmp_path / "bad.toml"
    text = BASE.replace('start = "diagnosis"', 'start = "-1mo"')
    bad.write_text(text, encoding="utf-8")
    assert validate_main(str(bad)) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    line = line_of(text, 'start = "-1mo"')
    assert cap.err.startswith(f"cmlsim validate: {bad}:{line}: intervention[0].start: found")
    assert "interventions cannot start before diagnosis (t = 0)" in cap.err


# ------------------------------------------------------------------ round trips

_HEAD = {
    "scenario": {"name": "rt", "horizon": "12y", "seed": 1},
    "therapy": [{"drug": "imatinib"}],
    "protocol": {"stop": {"after": "5y", "sustained": "MR4", "for": "2y"}},
}


def _dur(days: float, as_string: bool) -> str:
    """A duration as a scenario writes it: the shortest form, or exact days."""
    return format_duration(days) if as_string else f"{days!r}d"


_MINUTE = 1.0 / 1440.0
_MASS = ("interferon", "checkpoint")


@st.composite
def intervention_tables(draw):
    """(table for the file, the Intervention it must load as, minus the default name)."""
    product = PRODUCTS[draw(st.sampled_from(sorted(PRODUCTS)))]
    s = draw(st.booleans())  # write durations and doses as strings with units
    tab: dict = {"product": product.name}
    name = draw(st.none() | st.from_regex(r"x[A-Za-z0-9_.-]{0,12}", fullmatch=True))
    if name is not None:
        tab["name"] = name
    dose = float(product.standard_dose)
    if draw(st.booleans()):
        if product.kind in ("interferon", "checkpoint"):
            dose = draw(st.floats(0.0, 1000.0))
            tab["dose"] = f"{dose!r}mg" if s else f"{dose!r} mg"
        else:
            dose = float(draw(st.integers(0, 5) | st.floats(0.0, 5.0)))
            tab["dose"] = dose
    every = float(product.standard_interval)
    if draw(st.booleans()):
        every = draw(st.floats(1.0 / 24.0, 120.0))
        tab["every"] = _dur(every, s)
    form = draw(st.sampled_from(["anchor", "duration", "table", "table-no-offset"]))
    anchor = draw(st.sampled_from(ANCHORS))
    offset = draw(st.just(0.0) | st.floats(_MINUTE, 11 * YEAR))
    if form == "anchor":
        tab["start"], offset = anchor, 0.0
    elif form == "duration":
        tab["start"], anchor = _dur(offset, s), "diagnosis"
    elif form == "table":
        tab["start"] = {"anchor": anchor, "offset": _dur(offset, s)}
    else:
        tab["start"], offset = {"anchor": anchor}, 0.0
    duration = count = None  # a course has a duration or a count of doses, not both
    if draw(st.booleans()):
        duration = draw(st.none() | st.floats(1e-3, 20 * YEAR))
        if duration is not None:
            tab["duration"] = _dur(duration, s)
    else:
        count = draw(st.none() | st.integers(1, 10_000))
        if count is not None:
            tab["count"] = count
    want = Intervention(
        name=name or "",
        product=product,
        anchor=anchor,
        offset=offset,
        duration=duration,
        every=every,
        count=count,
        dose=dose,
    )
    return tab, want


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(intervention_tables(), min_size=1, max_size=4))
def test_written_interventions_load_back_equal(items):
    names = [tab["name"] for tab, _ in items if "name" in tab]
    assume(len(set(names)) == len(names))
    doc = {**_HEAD, "intervention": [tab for tab, _ in items]}
    text = tomli_w.dumps(doc)
    got = loads(text, "rt.toml").interventions
    assert len(got) == len(items)
    seen: dict[str, int] = {}
    for iv, (_, want) in zip(got, items, strict=True):
        seen[want.product.name] = seen.get(want.product.name, 0) + 1
        name = want.name or f"{want.product.name}-{seen[want.product.name]}"
        assert iv == Intervention(**{**want.__dict__, "name": name})
    # the loaded values written back in internal units load to the same objects
    canonical = [
        {
            "name": iv.name,
            "product": iv.product.name,
            "dose": f"{iv.dose!r}mg" if iv.product.kind in _MASS else iv.dose,
            "every": f"{iv.every!r}d",
            "start": {"anchor": iv.anchor, "offset": f"{iv.offset!r}d"},
            **({} if iv.duration is None else {"duration": f"{iv.duration!r}d"}),
            **({} if iv.count is None else {"count": iv.count}),
        }
        for iv in got
    ]
    again = loads(tomli_w.dumps({**_HEAD, "intervention": canonical})).interventions
    assert again == got


@settings(max_examples=40, deadline=None)
@given(st.floats(1.0, 11 * YEAR), st.floats(0.0, 1.0))
def test_fixed_stop_negative_offsets_convert_exactly(stop_at, frac):
    offset = -frac * stop_at
    assume(offset == 0 or abs(offset) >= _MINUTE)
    start = {"anchor": "tki_stop", "offset": f"{offset!r}d"}
    doc = {
        **_HEAD,
        "protocol": {"stop": {"at": f"{stop_at!r}d"}},
        "intervention": [{"product": "vaccine", "start": start}],
    }
    iv = loads(tomli_w.dumps(doc)).interventions[0]
    if offset < 0:
        assert (iv.anchor, iv.offset) == ("diagnosis", stop_at + offset)
        assert iv.offset >= 0
    else:
        assert (iv.anchor, iv.offset) == ("tki_stop", 0.0)


# ------------------------------------------------------------------ end to end


RUN = """\
[scenario]
name = "ifn-first-6mo"
horizon = "2y"
seed = 3

[[therapy]]
drug = "imatinib"

[protocol]
stop = "never"

[[intervention]]
name = "ifn"
product = "peginterferon-alfa-2a"
dose = "90ug"
every = "1w"
start = "diagnosis"
duration = "6mo"

[[intervention]]
name = "nivo"
product = "nivolumab"
start = "relapse"
"""


def test_run_gives_interferon_weekly_for_six_months_and_never_nivolumab():
    from sim.engines import ode
    from sim.run import compile_interventions, run_scenario
    from sim.therapy import drive

    sc = loads(RUN)
    iv = compile_interventions(sc.interventions)
    assert iv.shape == (2, ode.IV_N)
    assert iv[1, ode.IV_ANCHOR] == ode.ANCHOR_RELAPSE
    assert iv[0, ode.IV_DURATION] == 6 * MONTH and np.isinf(iv[0, ode.IV_COUNT])

    res = run_scenario(sc)
    ifn, nivo = res.interventions
    assert ifn["name"] == "ifn" and ifn["given"]
    assert ifn["start"] == 0.0
    assert 26 <= ifn["doses"] <= 27  # weekly doses at 0, 7, ..., before 6 months (182.6 d)
    assert ifn["last_dose"] == 7.0 * (ifn["doses"] - 1) < 6 * MONTH
    assert nivo["name"] == "nivo" and not nivo["given"]
    assert math.isnan(nivo["start"]) and nivo["doses"] == 0
    # interferon acts while given and washes out after; no checkpoint effect ever
    during = (res.t > 30) & (res.t < 6 * MONTH)
    after = res.t > 6 * MONTH + 60
    assert np.all(res.drive[during, drive.IFN] > 0.3)
    assert np.all(res.drive[after, drive.IFN] < 1e-2)
    assert np.all(res.drive[:, drive.PD1] == 0.0)
