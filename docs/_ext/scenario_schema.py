"""The keys the scenario reader accepts, recorded from the reader itself.

:func:`accepted_keys` reads the shipped scenarios and a few probe scenarios with
:mod:`sim.scenario`'s reader while recording every key set it checks (``_Reader.keys``) and every
default it applies (``_Reader.get``); the branches no probe takes are filled in from the reader's
own key tables. :func:`drift` compares that with the descriptions in ``scenario_keys.KEYS``. The
manual's scenario reference and ``tests/test_docs.py`` both use it, so a key added to or removed
from the reader shows up as an error until it is described.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

# Probe scenarios: together with the shipped ones they take the reader through every table.
_HEAD = """
[scenario]
name = "probe"
horizon = "10y"
seed = 1
"""
PROBES = {
    "drug-and-product": _HEAD
    + """
[drug.mydrug]
ka = "1/h"
half_life = "12h"
volume = "200L"
ec50 = "0.05mg/L"
standard_dose = "100mg"
standard_interval = "1d"

[[therapy]]
drug = "mydrug"
start = "diagnosis"
intermittent = { on = "1w", off = "1w" }

[[therapy]]
drug = "imatinib"
start = "diagnosis"
switch = true

[protocol]
monitoring = { every = "3mo" }
stop = { at = "5y" }
lead_in = { duration = "6mo", dose = 0.5 }
switch = { if_not = "MMR", at = "12mo" }

[product.myifn]
kind = "interferon"
ka = "0.4/d"
half_life = "80h"
volume = "8L"
ec50 = "6ng/mL"
standard_dose = "90ug"
standard_interval = "1w"

[[intervention]]
product = "myifn"
start = { anchor = "tki_stop", offset = "1mo" }
duration = "6mo"

[readout]

[output]
figure = false
formats = ["png"]
""",
    "cohort": _HEAD
    + """
[[therapy]]
drug = "imatinib"
start = "diagnosis"

[cohort]
size = 10
base = "none"
p_xy = { dist = "lognormal", median = 0.001, sd_log = 0.2 }
p_yx = { dist = "normal", mean = 0.002, sd = 0.0001 }
s_N = { dist = "uniform", low = 10, high = 20 }
m_N = { dist = "truncated", of = "normal", mean = 1e-7, sd = 1e-8, lower = 0 }
d_N = { dist = "fixed", value = 0.05 }
correlation = { params = ["p_xy", "p_yx"], matrix = [[1, 0.5], [0.5, 1]] }
""",
    "stochastic": _HEAD.replace("seed = 1", 'seed = 1\nengine = "stochastic"')
    + """
[[therapy]]
drug = "imatinib"
start = "diagnosis"

[protocol]
stop = { at = "5y" }
restart = "never"

[engine]
cell_scale = 0.01
""",
}


@contextlib.contextmanager
def _recording() -> Iterator[tuple[dict, dict]]:
    """Record the reader's key sets (``keys``) and defaults (``get``) while reading."""
    from sim import scenario

    reader = scenario._Reader
    allowed: dict[str, set[str]] = {}
    defaults: dict[tuple[str, str], list[Any]] = {}
    keys, get = reader.keys, reader.get

    # Pass every argument on unchanged, so the recorder follows the reader's signatures.
    def rec_keys(self, tab, key, names, *args, **kwargs):
        allowed.setdefault(_pattern(key), set()).update(names)
        return keys(self, tab, key, names, *args, **kwargs)

    def rec_get(self, tab, key, name, check, *args, **kwargs):
        default = args[0] if args else kwargs.get("default", scenario._MISSING)
        defaults.setdefault((_pattern(key), name), []).append(default)
        return get(self, tab, key, name, check, *args, **kwargs)

    reader.keys, reader.get = rec_keys, rec_get
    try:
        yield allowed, defaults
    finally:
        reader.keys, reader.get = keys, get


def _pattern(key: tuple) -> str:
    out: list[str] = []
    for part in key:
        if isinstance(part, int):
            out[-1] = out[-1] + "[]" if out else "[]"
        elif out and out[0] in ("drug", "product") and len(out) == 1:
            out.append("<name>")
        elif out == ["cohort"] and part != "correlation":
            out.append("<parameter>")
        elif out[:2] == ["sweep", "params"]:
            if len(out) == 2:  # an address is a dotted key path: one name for all its parts
                out.append("<address>")
        else:
            out.append(str(part))
    return ".".join(out)


def accepted_keys() -> tuple[dict[str, set[str]], dict[tuple[str, str], list[Any]]]:
    """Key sets and defaults the reader uses on the shipped scenarios and the probes."""
    from sim import models, scenario
    from sim.engines import cellular

    with _recording() as (allowed, defaults):
        for path in sorted((REPO / "scenarios").glob("*.toml")):
            scenario.load(path)
        for name, text in PROBES.items():
            scenario.loads(text, f"<probe {name}>")
    # Key sets of branches a probe does not take, from the reader's own tables.
    dist_keys = {k for keys in scenario._DIST_KEYS.values() for k in keys}
    allowed.setdefault("cohort.<parameter>", set()).update(
        {"dist", "of", "lower", "upper", *dist_keys}
    )
    allowed.setdefault("cohort", set()).update(scenario._Reader._COHORT_KEYS)
    allowed.setdefault("sweep", set()).update(scenario._Reader._SWEEP_KEYS)
    allowed.setdefault("sweep.params.<address>", set()).update(scenario._Reader._SWEEP_PARAM_KEYS)
    allowed.setdefault("engine", set()).update(*cellular.ENGINE_OPTIONS.values())
    # Model and qPCR parameter names stand for themselves in the tables that take them.
    params = {n for name in models.names() for n in models.get(name).params.names}
    from sim.readout import QPCR

    for table, names, label in (
        ("patient", params, "<parameter>"),
        ("cohort", params, "<parameter>"),
        ("readout", set(QPCR.names), "<qPCR parameter>"),
    ):
        have = allowed.setdefault(table, set())
        if have & names or table == "readout":
            allowed[table] = (have - names) | {label}
    allowed.setdefault("", set()).update(scenario._SECTIONS)
    return allowed, defaults


def drift(
    allowed: Mapping[str, set[str]], documented: Mapping[str, Mapping[str, Any]]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(undocumented, stale)``: (table, key) pairs the reader accepts without a description,
    and described pairs the reader does not accept."""
    undocumented = [
        (table, key)
        for table in sorted(allowed)
        for key in sorted(allowed[table] - set(documented.get(table, {})))
    ]
    stale = [
        (table, key)
        for table in sorted(documented)
        for key in sorted(set(documented[table]) - allowed.get(table, set()))
    ]
    return undocumented, stale
