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
from pathlib import Path
from typing import Any

import scenario_keys
from docutils import nodes
from docutils.statemachine import StringList
from scenario_schema import accepted_keys, drift
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

LOG = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]


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
        undocumented, stale = drift(allowed, documented)
        for table, key in undocumented:
            LOG.warning(
                "scenario reference: the reader accepts [%s] %s, which "
                "docs/_ext/scenario_keys.py does not describe",
                table or "top level",
                key,
                location=self.get_location(),
            )
        for table, key in stale:
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
