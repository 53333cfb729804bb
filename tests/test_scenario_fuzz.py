"""Fuzzing the scenario grammar: any value in any key gives one short error line or a run.

Each example takes a shipped scenario, replaces one value (or adds one key the schema knows)
with a draw for that key's type, including extremes (huge and tiny numbers, inf and NaN, huge
integers, digits of other scripts, long strings, wrong types) and checks that

- loading either succeeds or raises :class:`ScenarioError` whose message, with the command's
  prefix, is one line of at most 300 characters (never another exception), and
- an accepted scenario of the ODE engine runs to its end without raising, under a watchdog that
  ends the test process if a run hangs (a jitted loop cannot be interrupted by a signal).
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import math
import tempfile
import tomllib
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from sim import cli
from sim.run import run_scenario
from sim.scenario import ScenarioError, loads

ROOT = Path(__file__).resolve().parents[1] / "scenarios"
SHIPPED = sorted(ROOT.glob("*.toml"))
#: Shipped single-patient ODE scenarios: the bases of the run part.
RUNNABLE = [
    p
    for p in SHIPPED
    if not any(f"[{s}]" in p.read_text("utf-8") for s in ("cohort", "sweep", "trial", "engine"))
    and 'engine = "ode"' in p.read_text("utf-8")
]
#: Seconds after which a hanging run ends the test process (with the stack of every thread).
WATCHDOG = 120.0
MAX_LINE = 300


class Raw(str):
    """A value written into the TOML text as it is (a literal tomli_w cannot produce)."""


# ------------------------------------------------------------------------------ values per type

_NUMBERS = st.sampled_from(
    [0, 0.0, -0.0, 1, -1, 0.5, 1e-300, 5e-324, 1e300, 1e308, -1e308, 2**63 - 1, 2**63, 2**64,
     -(2**63), 10**30, math.inf, -math.inf, math.nan]
)  # fmt: skip
_RAW = st.sampled_from(
    [Raw("9" * 5000), Raw("-" + "9" * 5000), Raw("1" + "0" * 400), Raw("1e99999"), Raw("nan"),
     Raw("-inf"), Raw("0x7fffffffffffffff"), Raw("1979-05-27")]
)  # fmt: skip
_WRONG = st.sampled_from([True, False, [], [1, 2], {}, {"a": 1}, ""])
_TEXT = st.sampled_from(
    ["", " ", "x", "nan", "inf", "-inf", "None", "\n", "\u2028", "\x00", "x" * 300, "x" * 100_000,
     "١٢", "٥d", "５mg", "½d", "²y", "1e309d", "1e-300d", "-1e-300d", "1e6y", "1e12y", "90", "12",
     "1e300/h", "1e-300h", "0d", "-0d", "1 m", "1e-9mg", "1e9mg", "1e300L", "1e-300mg/L",
     "1/0d", "diagnosis", "tki_stop", "MR4", "never"]
)  # fmt: skip
_UNITS = {
    "duration": ["h", "d", "w", "mo", "y", " days", "m", "s", ""],
    "rate": ["/h", "/d", "/mo", "/y", " per day", "/s", ""],
    "dose": ["mg", "g", "ug", "µg", "ng", "kg", ""],
    "volume": ["L", "mL", "dL", "m3", ""],
    "concentration": ["mg/L", "ng/mL", "ug/mL", "mg", ""],
}
_FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [1e-300, 1e-9, 1e-3, 0.5, 1.0, 7.0, 90.0, 1e6, 1e12, 1e300]
)


def _quantities(kind: str) -> st.SearchStrategy:
    return st.builds(lambda x, u: f"{x!r}{u}", _FLOATS, st.sampled_from(_UNITS[kind]))


_KINDS = {
    "duration": ("horizon", "every", "start", "end", "duration", "offset", "at", "after", "for",
                 "on", "off", "follow_up", "output_every", "trajectory_every", "half_life",
                 "standard_interval", "min_tki", "sustained_for"),
    "rate": ("ka", "ke"),
    "dose": ("dose", "standard_dose"),
    "volume": ("volume",),
    "concentration": ("ec50",),
}  # fmt: skip
_KIND_OF = {key: kind for kind, keys in _KINDS.items() for key in keys}


#: Units of plausible quantities, by kind.
_PLAUSIBLE_UNITS = {
    "duration": ["h", "d", "w", "mo", "y"],
    "rate": ["/h", "/d", "/mo"],
    "dose": ["mg", "ug"],
    "volume": ["L", "mL"],
    "concentration": ["mg/L", "ng/mL"],
}


def _plausible(key: str) -> st.SearchStrategy:
    """Values a user might write: in or near the ranges the scenario accepts."""
    if key in _KIND_OF:
        units = st.sampled_from(_PLAUSIBLE_UNITS[_KIND_OF[key]])
        return st.builds(lambda x, u: f"{x:.3g}{u}", st.floats(0.01, 50.0), units)
    return st.floats(1e-13, 20.0) | st.integers(0, 30)


def values_for(key: str) -> st.SearchStrategy:
    """Draws for a key: plausible values, extremes of every type, and quantities of the key's
    own kind with any number."""
    common = _NUMBERS | _RAW | _WRONG | _TEXT | _FLOATS | st.integers(-(2**70), 2**70)
    if key in _KIND_OF:
        common = _quantities(_KIND_OF[key]) | common
    elif key in ("name", "product", "drug", "model", "engine", "question"):
        common = st.text(max_size=300) | common
    else:
        common = common | st.text(max_size=20)
    plausible = _plausible(key)
    # half and half (st.one_of would flatten the alternatives above into equal shares)
    return st.booleans().flatmap(lambda yes: plausible if yes else common)


#: Keys the schema knows that shipped scenarios may leave out: (table path, key).
_ADDED = [
    (("scenario",), "atol"), (("scenario",), "rtol"), (("scenario",), "output_every"),
    (("scenario",), "seed"), (("scenario",), "name"), (("drug", "imatinib"), "hill"),
    (("drug", "imatinib"), "ka"), (("drug", "imatinib"), "half_life"),
    (("drug", "imatinib"), "volume"), (("drug", "imatinib"), "ec50"), (("patient",), "p_xy"),
    (("patient",), "hahnel_patient"), (("therapy", 0), "every"), (("therapy", 0), "dose"),
    (("therapy", 0), "start"), (("therapy", 0), "end"), (("therapy", 0), "adherence"),
    (("protocol",), "max_stops"),
]  # fmt: skip


def _leaves(node: object, path: tuple = ()) -> list[tuple]:
    """Paths of every value that is not a table or an array of tables."""
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaves(v, (*path, k))]
    if isinstance(node, list) and node and all(isinstance(v, dict) for v in node):
        return [p for i, v in enumerate(node) for p in _leaves(v, (*path, i))]
    return [path]


def _set(doc: dict, path: tuple, value: object) -> None:
    node = doc
    for part in path[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            node = node[part]
    node[path[-1]] = value


def _dumps(doc: dict, raws: list[Raw]) -> str:
    text = tomli_w.dumps(doc)
    for i, raw in enumerate(raws):
        text = text.replace(f'"@@raw{i}@@"', str(raw))
    return text


def _encode(value: object, raws: list[Raw]) -> object:
    """``value`` for tomli_w: a Raw becomes a placeholder string replaced after dumping."""
    if isinstance(value, Raw):
        raws.append(value)
        return f"@@raw{len(raws) - 1}@@"
    return value


def _value_at(doc: object, path: tuple) -> object:
    for part in path:
        try:
            doc = doc[part]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None
    return doc


@st.composite
def mutated(draw, bases: list[Path], numeric: bool = False) -> tuple[str, str]:
    """(path, TOML text) of a shipped scenario with one value replaced or one key added
    (``numeric``: only quantities and numbers, the values a run depends on most)."""
    base = draw(st.sampled_from(bases))
    doc = tomllib.loads(base.read_text("utf-8"))
    targets = _leaves(doc)
    added = [
        (*table, key)
        for table, key in _ADDED
        if table[0] in doc and (table[0] != "therapy" or doc["therapy"])
    ]
    paths = targets + added
    if numeric:
        paths = [
            p
            for p in paths
            if p[-1] in _KIND_OF or isinstance(_value_at(doc, p), int | float | type(None))
        ]
        # half the time a key the shipped scenarios leave out (tolerances, PK constants, ...)
        paths = draw(st.sampled_from([paths, added]))
    path = draw(st.sampled_from(paths))
    raws: list[Raw] = []
    key = str(path[-1])
    if numeric:  # numbers and quantities, plausible or extreme: what a run depends on
        extreme = _NUMBERS | (_quantities(_KIND_OF[key]) if key in _KIND_OF else _FLOATS)
        value = draw(st.booleans().flatmap(lambda yes: _plausible(key) if yes else extreme))
    else:
        value = draw(values_for(key))
    _set(doc, path, _encode(value, raws))
    return str(base), _dumps(doc, raws)


# ------------------------------------------------------------------------------ checks


def check_load(text: str, path: str):
    """The scenario, or None after checking that its error is one short line."""
    try:
        return loads(text, path)
    except ScenarioError as exc:
        for prefix in ("cmlsim validate: ", "cmlsim run: ", "cmlsim cohort: "):
            msg = prefix + str(exc)
            assert len(msg.splitlines()) == 1, msg[:1000]
            assert len(msg) <= MAX_LINE, msg
        return None


def check_run(sc) -> None:
    """``sc`` runs to its end without raising, or the watchdog ends the process."""
    faulthandler.dump_traceback_later(WATCHDOG, exit=True)
    try:
        result = run_scenario(sc)
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert result.stats["steps"] >= 0  # a result, whether or not the solver succeeded


# the values that once hung, raised from inside the kernel or from tomllib, or ran as a reader
# would misread them: each gives one short line
REPRODUCERS = {
    "interval 1e6y": ('every = "1d"', 'every = "1e6y"'),
    "interval 1e12y": ('every = "1d"', 'every = "1e12y"'),
    "hill 1e300": ("[protocol]", "[drug.imatinib]\nhill = 1e300\n\n[protocol]"),
    "ka 1e300/h": (
        "[protocol]",
        '[drug.imatinib]\nka = "1e300/h"\nhalf_life = "1e-300h"\n\n[protocol]',
    ),
    "rtol 1e308": ("seed = 20261125", "seed = 20261125\nrtol = 1e308"),
    "atol 1e308": ("seed = 20261125", "seed = 20261125\natol = 1e308"),
    "seed of 5000 digits": ("seed = 20261125", "seed = " + "9" * 5000),
    "seed above 2**63": ("seed = 20261125", f"seed = {2**64}"),
    "p_xy 0": ("[protocol]", "[patient]\np_xy = 0\n\n[protocol]"),
    "start 1e-300d": ('start = "diagnosis"', 'start = "1e-300d"'),
    "name of 300 bytes": ('name = "imatinib-eln-stop"', f'name = "{"a" * 300}"'),
    "engine of 900 kB": ('engine = "ode"', f'engine = "{"x" * 900_000}"'),
    "arabic-indic digit": ('every = "1d"', 'every = "٥d"'),
    "plain dose": ('dose = "400mg"', "dose = 400"),
}

_IV = """
[[intervention]]
product = "peginterferon-alfa-2a"
start = "diagnosis"
"""
IV_REPRODUCERS = {
    "intervention dose 90": 'dose = 90\nduration = "6mo"',
    "intervention duration 12": "duration = 12",
    "count with duration": 'duration = "6mo"\ncount = 3',
}


BASE = ROOT / "imatinib-eln-stop.toml"


def _reproducer_texts() -> list[str]:
    text = BASE.read_text("utf-8")
    out = [text.replace(old, new, 1) for old, new in REPRODUCERS.values()]
    return out + [text + _IV + lines + "\n" for lines in IV_REPRODUCERS.values()]


def with_reproducers(test):
    """``test`` with every reproducer as an explicit example, besides the random ones."""
    for text in _reproducer_texts():
        test = example(case=(str(BASE), text))(test)
    return test


# ------------------------------------------------------------------------------ tests


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@with_reproducers
@given(mutated(SHIPPED))
def test_any_value_loads_or_gives_one_short_line(case):
    path, text = case
    event("refused" if check_load(text, path) is None else "accepted")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@with_reproducers
@given(mutated(RUNNABLE, numeric=True))
def test_an_accepted_value_runs(case):
    path, text = case
    sc = check_load(text, path)
    event("refused" if sc is None else "ran")
    if sc is not None:
        check_run(sc)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(RUNNABLE, numeric=True))
def test_the_run_command_completes_or_exits_with_one_line(case):
    path, text = case
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / Path(path).name
        scenario.write_text(text, encoding="utf-8")
        err = io.StringIO()
        faulthandler.dump_traceback_later(WATCHDOG, exit=True)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = cli.main(["run", str(scenario), "--results", tmp, "--no-figure"])
        finally:
            faulthandler.cancel_dump_traceback_later()
    lines = err.getvalue().splitlines()
    event(f"exit {code}")
    # 0: a run; 2: bad input; 1: a run that could not be completed or written
    assert code in (0, 1, 2)
    if code:
        assert len(lines) == 1 and len(lines[0]) <= MAX_LINE, lines


@pytest.mark.parametrize("case", list(REPRODUCERS.values()), ids=list(REPRODUCERS))
def test_reproducers_give_one_short_line(case):
    old, new = case
    text = BASE.read_text("utf-8")
    assert old in text
    assert check_load(text.replace(old, new, 1), str(BASE)) is None  # refused, in one line


@pytest.mark.parametrize("lines", list(IV_REPRODUCERS.values()), ids=list(IV_REPRODUCERS))
def test_intervention_reproducers_give_one_short_line(lines):
    text = BASE.read_text("utf-8") + _IV + lines + "\n"
    assert check_load(text, str(BASE)) is None


def test_empirical_file_of_zeros_is_refused_quickly():
    base = ROOT / "cohort-euro-ski.toml"
    text = base.read_text("utf-8").replace(
        "[cohort]\n",
        '[cohort]\np_xy = { dist = "empirical", file = "/dev/zero", column = "p_xy" }\n',
        1,
    )
    with pytest.raises(ScenarioError, match="larger than"):
        loads(text, str(base))
