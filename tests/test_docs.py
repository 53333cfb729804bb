"""The manual's generated scenario reference: every key the reader accepts is described, and every
described key is one the reader accepts (the build fails otherwise; this finds it in seconds)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "docs" / "_ext"))

import scenario_keys  # noqa: E402
import scenario_schema  # noqa: E402


def test_every_accepted_scenario_key_is_described_and_no_other():
    allowed, defaults = scenario_schema.accepted_keys()
    undocumented, stale = scenario_schema.drift(allowed, scenario_keys.KEYS)
    assert undocumented == []
    assert stale == []
    # the recorder sees the reader at work, not only its static tables
    assert {"drug", "dose", "every", "start", "end", "pk"} <= allowed["therapy[]"]
    assert ("scenario", "horizon") in defaults and ("therapy[]", "pk") in defaults


def test_a_key_the_reader_gains_is_reported():
    allowed, _ = scenario_schema.accepted_keys()
    allowed = {table: set(keys) for table, keys in allowed.items()}
    allowed["therapy[]"].add("loading_dose")
    documented = {t: dict(k) for t, k in scenario_keys.KEYS.items()}
    documented["protocol"]["retired_key"] = ("string", "gone")
    undocumented, stale = scenario_schema.drift(allowed, documented)
    assert undocumented == [("therapy[]", "loading_dose")]
    assert stale == [("protocol", "retired_key")]
