"""Tests of the drug registry and its constants (sim.therapy.drugs)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from sim.therapy import drugs
from sim.therapy.drugs import DRUGS, Drug, get_drug, make_drug

VALID = dict(ka=10.0, ke=1.0, volume=100.0, ec50=0.1, standard_dose=100.0, standard_interval=1.0)


def test_registry_has_the_three_tkis():
    assert set(DRUGS) == {"imatinib", "dasatinib", "nilotinib"}
    for name, drug in DRUGS.items():
        assert drug.name == name
        assert drug.source and drug.notes
        # the EC50 is an assumption and must say so
        assert "ASSUMPTION" in drug.notes


def test_get_drug_is_case_insensitive_and_suggests_names():
    assert get_drug("Imatinib ") is DRUGS["imatinib"]
    with pytest.raises(KeyError, match="did you mean 'imatinib'"):
        get_drug("imatinb")
    with pytest.raises(KeyError, match="unknown drug"):
        get_drug("aspirin")


def test_vector_layout():
    assert drugs.N_DRUG == 8
    idx = (
        drugs.KA,
        drugs.KE,
        drugs.VOL,
        drugs.BIO,
        drugs.EC50,
        drugs.HILL,
        drugs.STD_DOSE,
        drugs.STD_TAU,
    )
    assert sorted(idx) == list(range(8))
    d = make_drug(
        "x",
        ka=1.5,
        ke=0.25,
        volume=123.0,
        bioavailability=0.75,
        ec50=0.3,
        hill=2.0,
        standard_dose=50.0,
        standard_interval=0.5,
    )
    v = d.vector()
    assert v.dtype == np.float64 and v.shape == (8,)
    expected = {
        drugs.KA: 1.5,
        drugs.KE: 0.25,
        drugs.VOL: 123.0,
        drugs.BIO: 0.75,
        drugs.EC50: 0.3,
        drugs.HILL: 2.0,
        drugs.STD_DOSE: 50.0,
        drugs.STD_TAU: 0.5,
    }
    for i, value in expected.items():
        assert v[i] == value


def test_drug_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DRUGS["imatinib"].ec50 = 1.0


def test_imatinib_constants():
    # DESIGN: CL/F ~ 10 L/h, V/F 250-300 L, ka ~ 0.6/h; reported t½ ~18 h (Peng 2005)
    d = DRUGS["imatinib"]
    assert d.clearance_l_per_h == pytest.approx(10.0, rel=1e-12)
    assert 250.0 <= d.volume <= 300.0
    assert d.ka / 24.0 == pytest.approx(0.6)
    assert 15.0 <= d.half_life_h <= 22.0
    assert (d.standard_dose, d.standard_interval) == (400.0, 1.0)


def test_dasatinib_matches_auc_and_half_life():
    # Levêque 2020: single 100 mg dose AUC 314 ng·h/mL, t½ 3.6 h; t_max 0.25-1.5 h
    d = DRUGS["dasatinib"]
    assert d.half_life_h == pytest.approx(3.6, rel=1e-12)
    auc_ng_h_per_ml = d.bioavailability * d.standard_dose / d.clearance_l_per_h * 1000.0
    assert auc_ng_h_per_ml == pytest.approx(314.0, rel=1e-12)
    ka, ke = d.ka / 24.0, d.ke / 24.0
    t_max_h = math.log(ka / ke) / (ka - ke)
    assert 0.25 <= t_max_h <= 1.5
    assert (d.standard_dose, d.standard_interval) == (100.0, 1.0)


def test_nilotinib_constants():
    d = DRUGS["nilotinib"]
    assert d.half_life_h == pytest.approx(17.0, rel=1e-12)
    assert (d.standard_dose, d.standard_interval) == (300.0, 0.5)


@pytest.mark.parametrize("name", sorted(DRUGS))
def test_ec50_gives_a_saturating_link(name):
    # C_ref = F D / (CL tau): mean steady-state level at the standard dose. The design asks for
    # C_ref/EC50 of about 6-8 (DESTINY half-dose year needs >= 4 with h = 1).
    d = DRUGS[name]
    c_ref = d.bioavailability * d.standard_dose / (d.ke * d.volume * d.standard_interval)
    assert 6.0 <= c_ref / d.ec50 <= 8.0
    assert d.hill == 1.0


def test_make_drug_half_life():
    d = make_drug("x", **{k: v for k, v in VALID.items() if k != "ke"}, half_life=0.5)
    assert d.ke == pytest.approx(math.log(2) / 0.5)
    assert d.half_life_h == pytest.approx(12.0)
    assert d.bioavailability == 1.0 and d.hill == 1.0


def test_make_drug_needs_exactly_one_of_ke_and_half_life():
    with pytest.raises(ValueError, match="exactly one of ke"):
        make_drug("x", **VALID, half_life=1.0)
    no_ke = {k: v for k, v in VALID.items() if k != "ke"}
    with pytest.raises(ValueError, match="exactly one of ke"):
        make_drug("x", **no_ke)


@pytest.mark.parametrize(
    "field", ["ka", "ke", "volume", "ec50", "standard_dose", "standard_interval"]
)
@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, "1"])
def test_make_drug_rejects_non_positive(field, bad):
    kw = dict(VALID)
    kw[field] = bad
    with pytest.raises(ValueError, match=rf"drug 'x': {field} must be a positive finite number"):
        make_drug("x", **kw)


@pytest.mark.parametrize("field", ["hill", "bioavailability"])
def test_make_drug_rejects_non_positive_optional(field):
    with pytest.raises(ValueError, match=field):
        make_drug("x", **VALID, **{field: 0.0})


def test_make_drug_rejects_bad_half_life():
    no_ke = {k: v for k, v in VALID.items() if k != "ke"}
    with pytest.raises(ValueError, match="half_life must be a positive"):
        make_drug("x", **no_ke, half_life=-2.0)


def test_make_drug_rejects_unknown_keyword():
    with pytest.raises(TypeError):
        make_drug("x", **VALID, kaa=1.0)


def test_drug_constructor_validates_too():
    with pytest.raises(ValueError, match="volume"):
        Drug("y", 1.0, 1.0, -5.0, 1.0, 0.1, 1.0, 100.0, 1.0)
    with pytest.raises(ValueError, match="name"):
        Drug("", 1.0, 1.0, 5.0, 1.0, 0.1, 1.0, 100.0, 1.0)
