"""Sphinx directives that generate reference pages from the code.

``.. scenario-reference::``
    Every key the scenario reader accepts, table by table, with its default (recorded from the
    reader) and its meaning (``scenario_keys.KEYS``). The key sets are recorded while the reader
    reads the shipped scenarios and a few probe scenarios, so the page follows the reader.
``.. cli-reference::``
    The help of ``cmlsim`` and each subcommand, from :func:`sim.cli.build_parser`.
``.. parameter-tables::``
    The parameter table of every registered model, the qPCR model and the agent engine.
``.. cmlsim-output:: ARGS``
    The standard output of ``cmlsim ARGS`` (e.g. ``models``), run at build time.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import scenario_keys
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

LOG = logging.getLogger(__name__)
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

    def rec_keys(self, tab, key, names):
        allowed.setdefault(_pattern(key), set()).update(names)
        return keys(self, tab, key, names)

    def rec_get(self, tab, key, name, check, default=scenario._MISSING, expected=""):
        defaults.setdefault((_pattern(key), name), []).append(default)
        return get(self, tab, key, name, check, default, expected)

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


def _show_default(values: list[Any] | None, kind: str) -> str:
    """One default for the table; "—" when the reader never gave one or it depends on context."""
    from sim import scenario

    if not values or len({repr(v) for v in values}) > 1:
        return "—"
    value = values[0]
    if value is scenario._MISSING:
        return "required"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        text = f"{value:g}"
        return f"{text} d" if kind.startswith("duration") else text
    if isinstance(value, (int, str)):
        return f'"{value}"' if isinstance(value, str) else str(value)
    return "—"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], widths: str) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines.extend(f"     - {cell}" for cell in row[1:])
    lines.append("")
    return lines


class _Generated(SphinxDirective):
    has_content = False
    optional_arguments = 10
    final_argument_whitespace = True

    def lines(self) -> list[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, StringList(self.lines(), "<generated>"), node)
        return node.children


class ScenarioReference(_Generated):
    def lines(self) -> list[str]:
        allowed, defaults = accepted_keys()
        documented = scenario_keys.KEYS
        for table in sorted(allowed):
            for key in sorted(allowed[table] - set(documented.get(table, {}))):
                LOG.warning(
                    "scenario reference: the reader accepts [%s] %s, which "
                    "docs/_ext/scenario_keys.py does not describe",
                    table or "top level",
                    key,
                    location=self.get_location(),
                )
        for table in sorted(documented):
            for key in sorted(set(documented[table]) - allowed.get(table, set())):
                LOG.warning(
                    "scenario reference: docs/_ext/scenario_keys.py describes [%s] %s, "
                    "which the reader does not accept",
                    table or "top level",
                    key,
                    location=self.get_location(),
                )
        out: list[str] = []
        for table, keys in documented.items():
            title = "Sections" if not table else f"[{table}]"
            out += [title, "^" * len(title), ""]
            rows = []
            for key, (kind, meaning) in keys.items():
                default = "—" if not table else _show_default(defaults.get((table, key)), kind)
                rows.append((f"``{key}``", kind, default, meaning))
            out += _table(("key", "value", "default", "meaning"), rows, "18 18 12 52")
        return out


class CliReference(_Generated):
    def lines(self) -> list[str]:
        import argparse

        from sim.cli import build_parser

        parser = build_parser()
        parser.prog = "cmlsim"
        out = ["``cmlsim``", "^^^^^^^^^^", "", ".. code-block:: text", ""]
        out += ["   " + line for line in parser.format_help().splitlines()] + [""]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    title = f"``cmlsim {name}``"
                    out += [title, "^" * len(title), "", ".. code-block:: text", ""]
                    out += ["   " + line for line in sub.format_help().splitlines()] + [""]
        return out


class ParameterTables(_Generated):
    def lines(self) -> list[str]:
        from sim import models
        from sim.engines.abm import ABM_PARAMS
        from sim.readout import QPCR

        tables = [(f"Model ``{n}``", models.get(n).params) for n in models.names()]
        tables += [("qPCR measurement model", QPCR), ("Agent engine", ABM_PARAMS)]
        out: list[str] = []
        for title, table in tables:
            out += [title, "^" * len(title), ""]
            rows = [
                (f"``{n}``", d, u or "—", b, m.replace("*", r"\*"), s.replace("*", r"\*"))
                for n, d, u, b, m, s in table.as_rows()
            ]
            out += _table(
                ("name", "default", "unit", "bounds", "meaning", "source"),
                rows,
                "10 10 10 12 30 28",
            )
        return out


class CmlsimOutput(_Generated):
    required_arguments = 1

    def lines(self) -> list[str]:
        from sim.cli import main

        args = " ".join(self.arguments).split()
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main(args)
        if code:
            LOG.warning("cmlsim %s exited %s", " ".join(args), code)
        return (
            [".. code-block:: text", ""]
            + ["   " + line for line in buf.getvalue().splitlines()]
            + [""]
        )


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("scenario-reference", ScenarioReference)
    app.add_directive("cli-reference", CliReference)
    app.add_directive("parameter-tables", ParameterTables)
    app.add_directive("cmlsim-output", CmlsimOutput)
    return {"parallel_read_safe": True, "version": "1"}
