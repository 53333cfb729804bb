"""Generic checks of a drawn figure, applied to every figure type the package draws.

Each check returns a list of problems (one readable line each); an empty list means the figure
passes. The tests assert ``== []`` so that a failure prints what is wrong and where.

- :func:`panel_letter_problems`: in a figure of two or more panels, every panel has its letter
  (a single bold lower-case letter at its top left), the letters run a, b, c, ... A panel is
  an axes with data together with its twins (same position) and the axes that
  :func:`sim.plots.style.mark_panel` tied to it (a therapy strip above a plot).
- :func:`legend_colour_problems`: every colour of every legend handle (line, marker face and
  edge, patch face and edge) is the colour of something drawn: for an axes legend in that axes
  or its twins, for a figure legend anywhere in the figure. Colours are compared as they
  appear on white paper (alpha composited).
- :func:`axis_label_problems`: every axis that shows numeric tick labels has a label made of a
  name (a word of at least three letters, not a bare symbol) and a unit in parentheses at the
  end ("(fraction)", "(relative)" for unitless quantities).
- :func:`tick_label_problems`: no tick label reads as mantissa × power of ten (2×10¹ for 20).
- :func:`figure_problems`: all of the above.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import Collection
from matplotlib.colors import to_rgba, to_rgba_array
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.offsetbox import DrawingArea
from matplotlib.patches import Patch

#: Largest difference (per RGB channel, 0-1, on white) for two colours to count as the same.
COLOUR_TOL = 0.02

_LETTER = re.compile(r"^[a-z]$")
_NAME_WORD = re.compile(r"[A-Za-z]{3,}")


# ---------------------------------------------------------------------------------------------
# panels


def _has_data(ax: Axes) -> bool:
    """Whether the axes draws data (lines, collections, patches or images), not only text."""
    if not ax.get_visible() or hasattr(ax, "_colorbar"):
        return False
    artists = [*ax.lines, *ax.collections, *ax.patches, *ax.images]
    return any(a.get_visible() for a in artists)


def _same_place(a: Axes, b: Axes) -> bool:
    return np.allclose(a.get_position().bounds, b.get_position().bounds, atol=1e-6)


def _is_letter(text) -> bool:
    weight = text.get_fontweight()
    bold = weight in ("bold", "heavy", "black", "semibold", "demibold") or (
        isinstance(weight, int | float) and weight >= 600
    )
    return bool(_LETTER.match(text.get_text().strip())) and bold and text.get_visible()


def _letters(ax: Axes) -> list[str]:
    """Panel letters drawn on ``ax``: a left title or a text of one bold lower-case letter."""
    texts = [ax.title, ax._left_title, *ax.texts]
    return [t.get_text().strip() for t in texts if _is_letter(t)]


def panels(fig: Figure) -> list[list[Axes]]:
    """The panels of ``fig``: groups of axes (data axes, their twins, marked strips), in the
    order of the figure's axes."""
    groups: dict[object, list[Axes]] = {}
    hosts: list[Axes] = []
    for ax in fig.axes:
        if hasattr(ax, "_colorbar") or not ax.get_visible():
            continue
        host = next((h for h in hosts if _same_place(h, ax)), None)
        if host is None:
            hosts.append(ax)
            host = ax
        gid = host.get_gid() or ax.get_gid()
        key = gid if isinstance(gid, str) and gid.startswith("panel:") else id(host)
        groups.setdefault(key, []).append(ax)
    return [g for g in groups.values() if any(_has_data(ax) for ax in g)]


def panel_letter_problems(fig: Figure) -> list[str]:
    """Panels without their letter, in a figure of two or more panels (see the module)."""
    groups = panels(fig)
    if len(groups) < 2:
        return []
    problems = []
    found = []
    for group in groups:
        letters = [x for ax in group for x in _letters(ax)]
        what = ", ".join(repr(ax.get_ylabel() or ax.get_title()) for ax in group)
        if len(letters) != 1:
            problems.append(f"panel of axes {what}: {len(letters)} panel letters {letters}")
        found += letters
    expected = [chr(ord("a") + i) for i in range(len(found))]
    if not problems and found != expected:
        problems.append(f"panel letters {found}, expected {expected}")
    return problems


# ---------------------------------------------------------------------------------------------
# legends


def _on_white(rgba: Iterable[float], alpha: float | None = None) -> np.ndarray:
    r = np.asarray(to_rgba(tuple(rgba), alpha), dtype=float)
    return r[:3] * r[3] + (1.0 - r[3])


def _line_colours(line: Line2D) -> list[np.ndarray]:
    out = []
    alpha = line.get_alpha()
    if line.get_linestyle() not in ("None", "none", "", " ") and line.get_linewidth() > 0:
        out.append(_on_white(to_rgba(line.get_color()), alpha))
    marker = line.get_marker()
    if marker not in (None, "None", "none", "", " "):
        edge = line.get_markeredgecolor()
        if line.get_markeredgewidth() > 0 and to_rgba(edge)[3] > 0:
            out.append(_on_white(to_rgba(edge), alpha))
        face = line.get_markerfacecolor()
        if marker in Line2D.filled_markers and to_rgba(face)[3] > 0:
            out.append(_on_white(to_rgba(face), alpha))
    return out


def _patch_colours(patch: Patch) -> list[np.ndarray]:
    out = []
    face = patch.get_facecolor()
    if patch.get_fill() and face[3] > 0:
        out.append(_on_white(face))
    if patch.get_linewidth() > 0 and patch.get_edgecolor()[3] > 0:
        out.append(_on_white(patch.get_edgecolor()))
    return out


def _collection_colours(coll: Collection) -> list[np.ndarray]:
    coll.update_scalarmappable()  # mapped colours of a mesh or a scatter with values
    out = []
    for rgba in to_rgba_array(coll.get_facecolor()):
        if rgba[3] > 0:
            out.append(_on_white(rgba))
    lw = np.atleast_1d(coll.get_linewidth())
    if lw.size and lw.max() > 0:
        out += [_on_white(c) for c in to_rgba_array(coll.get_edgecolor()) if c[3] > 0]
    return out


def _image_colours(img: AxesImage) -> list[np.ndarray]:
    data = img.get_array()
    if data is None:
        return []
    rgba = img.to_rgba(data, bytes=False).reshape(-1, 4)
    return [_on_white(c) for c in np.unique(np.round(rgba, 4), axis=0)]


def artist_colours(artist) -> list[np.ndarray]:
    """The colours an artist puts on the page (RGB on white)."""
    if isinstance(artist, Line2D):
        return _line_colours(artist)
    if isinstance(artist, Patch):
        return _patch_colours(artist)
    if isinstance(artist, Collection):
        return _collection_colours(artist)
    if isinstance(artist, AxesImage):
        return _image_colours(artist)
    return []


def _drawn_colours(axes: Iterable[Axes]) -> np.ndarray:
    colours: list[np.ndarray] = []
    for ax in axes:
        for a in [*ax.lines, *ax.collections, *ax.patches, *ax.images]:
            if a.get_visible():
                colours += artist_colours(a)
    return np.array(colours).reshape(-1, 3)


def _legend_entries(legend: Legend) -> list[tuple[str, list]]:
    """(label, artists drawn as its handle) of every legend entry."""
    entries = []
    for column in legend._legend_handle_box.get_children():
        for item in column.get_children():
            handlebox, textbox = item.get_children()[:2]
            label = textbox.get_children()[0].get_text() if textbox.get_children() else ""
            assert isinstance(handlebox, DrawingArea)
            entries.append((label, list(handlebox.get_children())))
    return entries


def legend_colour_problems(fig: Figure) -> list[str]:
    """Legend handles whose colours match nothing drawn (see the module)."""
    fig.draw_without_rendering()
    legends: list[tuple[Legend, list[Axes]]] = []
    for ax in fig.axes:
        if ax.get_legend() is not None:
            twins = [b for b in fig.axes if _same_place(ax, b)]
            legends.append((ax.get_legend(), twins))
    legends += [(lg, list(fig.axes)) for lg in fig.legends]
    problems = []
    for legend, axes in legends:
        drawn = _drawn_colours(axes)
        for label, artists in _legend_entries(legend):
            for artist in artists:
                for c in artist_colours(artist):
                    if not drawn.size or np.abs(drawn - c).max(axis=1).min() > COLOUR_TOL:
                        hex_ = "#" + "".join(f"{round(255 * v):02x}" for v in c)
                        problems.append(f"legend entry {label!r}: colour {hex_} is drawn nowhere")
    return problems


# ---------------------------------------------------------------------------------------------
# axis labels and ticks


def _numeric(label: str) -> bool:
    """Whether a tick label is a number (plain, percent or mathtext power of ten)."""
    s = label
    for markup in ("\\mathdefault", "\\times", "×", "$", "{", "}", "^", "%", " "):
        s = s.replace(markup, "")
    s = s.replace("−", "-")
    return bool(re.fullmatch(r"[-+0-9.,e]+", s)) and any(ch.isdigit() for ch in s)


def _shown_ticks(axis) -> list[tuple[float, str]]:
    """(position, text) of the tick labels a draw shows: visible axis, tick inside the view."""
    if not axis.get_visible():
        return []
    low, high = sorted(axis.get_view_interval())
    span = high - low
    shown = []
    for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
        loc = tick.get_loc()
        if loc is None or not (low - 1e-9 * span <= loc <= high + 1e-9 * span):
            continue
        for lab in (tick.label1, tick.label2):
            if lab.get_visible() and lab.get_text().strip():
                shown.append((float(loc), lab.get_text()))
    return shown


def _name_part(label: str) -> str | None:
    """The label before its final parenthesised unit (which may nest, as in "1/((cells/µL)·day)"),
    or None when it does not end with one."""
    label = label.rstrip()
    if not label.endswith(")"):
        return None
    depth = 0
    for i in range(len(label) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(label[i], 0)
        if depth == 0:
            return label[:i] if label[i + 1 : -1].strip() else None
    return None


def axis_label_problems(fig: Figure) -> list[str]:
    """Axes with numeric tick labels whose axis label lacks a name or a unit in parentheses."""
    fig.draw_without_rendering()
    problems = []
    for ax in fig.axes:
        if not ax.get_visible() or not (_has_data(ax) or hasattr(ax, "_colorbar")):
            continue
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            ticks = [text for _, text in _shown_ticks(axis)]
            if not ticks or not all(_numeric(t) for t in ticks):
                continue  # no numbers shown, or categories (lane, parameter or patient names)
            label = " ".join(axis.get_label_text().split())
            if not label:
                problems.append(f"{name} axis with ticks {ticks[:3]}... has no label")
                continue
            head = _name_part(label)
            if head is None:
                problems.append(f"{name} axis label {label!r}: no unit in parentheses at the end")
            elif not _NAME_WORD.search(head.replace("$", "")):
                problems.append(f"{name} axis label {label!r}: a bare symbol, no name")
    return problems


def tick_label_problems(fig: Figure) -> list[str]:
    """Tick labels written as mantissa × power of ten for a number short in plain digits
    (2×10¹ for 20; 10⁻⁴ and 2×10⁻⁴ stay: 0.0002 is no easier to read)."""
    fig.draw_without_rendering()
    problems = []
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            bad = [
                text
                for loc, text in _shown_ticks(axis)
                if ("times" in text or "×" in text) and 1e-2 <= abs(loc) < 1e4
            ]
            if bad:
                problems.append(f"{name} axis of {ax.get_ylabel()!r}: tick labels {bad}")
    return problems


def figure_problems(fig: Figure) -> list[str]:
    """Every problem the checks of this module find in ``fig``."""
    return [
        *panel_letter_problems(fig),
        *legend_colour_problems(fig),
        *axis_label_problems(fig),
        *tick_label_problems(fig),
    ]
