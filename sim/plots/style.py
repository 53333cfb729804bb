"""The package figure style: journal sizes, a colour-blind-safe palette and editable fonts.

The base style sheet ``cml.mplstyle`` ships inside the package and is loaded through
:mod:`importlib.resources`, so it works from an installed wheel as well as from a checkout. It
sets sizes for Nature (89 mm single / 183 mm double column, 5–7 pt sans-serif text), the
Okabe–Ito palette (Okabe & Ito 2008, *Color Universal Design*; Wong, Nat Methods 2011;8:441) and
TrueType font embedding (``pdf.fonttype: 42``, ``ps.fonttype: 42``, ``svg.fonttype: none``) so
that text stays editable, as the Nature figure guide asks.

Matplotlib is imported inside the functions only: ``import sim`` never loads it. Figures are made
with :class:`matplotlib.figure.Figure` and an Agg canvas, never through ``pyplot``, so they render
without a display whatever the interactive backend is.
"""

from __future__ import annotations

import contextlib
import importlib.resources
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Okabe–Ito colour-blind-safe palette (hex), by name.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

#: Figure widths in mm by journal and column span. Nature: 89 / 183 mm (research figure guide);
#: Blood (ASH): 8.0 / 11.5 / 17 cm (bloodjournal.org figure guidelines); poster: free, 250 mm.
WIDTHS_MM: dict[str, dict[str, float]] = {
    "nature": {"single": 89.0, "double": 183.0},
    "blood": {"single": 80.0, "onehalf": 115.0, "double": 170.0},
    "poster": {"single": 250.0, "double": 500.0},
}

#: Largest figure height in mm (Nature: 170 mm, figure guide; Blood: no limit found, a page of
#: ~230 mm assumed; poster: practically none).
MAX_HEIGHT_MM = {"nature": 170.0, "blood": 230.0, "poster": 2000.0}

# Variants layered on top of cml.mplstyle. Blood: 8 pt text (assumption: a column of 8 cm is
# read at the same size as Nature's 89 mm, a little larger text keeps it legible). Poster: read
# from a distance, ~18 pt text and thicker lines.
_VARIANTS: dict[str, dict[str, float]] = {
    "nature": {},
    "blood": {
        "font.size": 8,
        "axes.titlesize": 8,
        "axes.labelsize": 8,
        "xtick.labelsize": 7,
        "ytick.labelsize": 7,
        "legend.fontsize": 7,
        "legend.title_fontsize": 7,
    },
    "poster": {
        "font.size": 18,
        "axes.titlesize": 20,
        "axes.labelsize": 18,
        "xtick.labelsize": 16,
        "ytick.labelsize": 16,
        "legend.fontsize": 16,
        "legend.title_fontsize": 16,
        "lines.linewidth": 2.5,
        "lines.markersize": 7,
        "axes.linewidth": 1.5,
        "xtick.major.width": 1.5,
        "ytick.major.width": 1.5,
        "xtick.major.size": 6,
        "ytick.major.size": 6,
        "xtick.major.pad": 4,
        "ytick.major.pad": 4,
        "axes.labelpad": 5,
        "axes.titlepad": 8,
    },
}

KINDS = tuple(_VARIANTS)
MM_PER_INCH = 25.4


def style_path() -> str:
    """Path of the packaged ``cml.mplstyle`` (usable with ``matplotlib.style.use``)."""
    return str(importlib.resources.files("sim.plots") / "cml.mplstyle")


def _check_kind(kind: str) -> None:
    if kind not in _VARIANTS:
        from sim.params import did_you_mean

        raise ValueError(
            f"unknown figure style {kind!r}{did_you_mean(kind, KINDS)}; known: {', '.join(KINDS)}"
        )


@contextlib.contextmanager
def use_style(kind: str = "nature") -> Iterator[None]:
    """Context manager applying the package style for a journal or a poster.

    Parameters
    ----------
    kind : {"nature", "blood", "poster"}
        ``"nature"`` is ``cml.mplstyle`` as shipped (7 pt text); ``"blood"`` uses 8 pt text;
        ``"poster"`` large text and thick lines.

    Notes
    -----
    Matplotlib reads most settings when an artist is created but the font embedding
    (``pdf.fonttype``) when the figure is saved: create *and save* a figure inside the block.

    Examples
    --------
    >>> from sim.plots.style import use_style, figsize
    >>> from matplotlib.figure import Figure
    >>> with use_style("nature"):
    ...     fig = Figure(figsize=figsize("single", 60))
    ...     ax = fig.add_subplot()
    ...     _ = ax.plot([0, 1], [1, 0])
    ...     fig.savefig("f.pdf")  # doctest: +SKIP
    """
    _check_kind(kind)
    import matplotlib.style

    with matplotlib.style.context([style_path(), _VARIANTS[kind]]):
        yield


#: Body text size (pt) of the base style, the reference of :func:`text_scale`.
BASE_FONT_PT = 7.0


def text_scale() -> float:
    """Text size of the active style relative to the base (Nature) style: 1 for nature, 8/7 for
    blood, 18/7 for poster. Call inside :func:`use_style`.

    Default figure heights are the base style's heights for the width ``width / text_scale()``,
    times ``text_scale()``: a poster figure is laid out like the journal figure it enlarges, so
    axes keep room for their (larger) tick labels.
    """
    import matplotlib as mpl

    return float(mpl.rcParams["font.size"]) / BASE_FONT_PT


def default_height(width_mm: float, base: Callable[[float], float], kind: str) -> float:
    """A default figure height in mm: ``base`` (height for a width, in the base style) applied
    at the text-scaled width and scaled back (:func:`text_scale`), at most the journal's
    maximum height."""
    s = text_scale()
    return min(s * base(width_mm / s), MAX_HEIGHT_MM[kind])


def figsize(
    width: str | float = "single", height_mm: float | None = None, journal: str = "nature"
) -> tuple[float, float]:
    """Figure size in inches for a journal column width.

    Parameters
    ----------
    width : {"single", "double", "onehalf"} or float
        Column span (see :data:`WIDTHS_MM`; Nature single = 89 mm, double = 183 mm), or a width
        in mm.
    height_mm : float, optional
        Height in mm; default three quarters of the width (capped at the journal maximum).
    journal : {"nature", "blood", "poster"}
        Which table of widths to use.

    Returns
    -------
    (float, float)
        ``(width, height)`` in inches, for ``Figure(figsize=...)``.
    """
    _check_kind(journal)
    if isinstance(width, str):
        widths = WIDTHS_MM[journal]
        if width not in widths:
            raise ValueError(
                f"unknown width {width!r} for {journal}; expected one of {', '.join(widths)} "
                "or a number in mm"
            )
        w_mm = widths[width]
    else:
        w_mm = float(width)
    if height_mm is None:
        height_mm = min(0.75 * w_mm, MAX_HEIGHT_MM[journal])
    height_mm = float(height_mm)
    if not (w_mm > 0 and height_mm > 0):
        raise ValueError(f"figure size must be positive, got {w_mm:g} x {height_mm:g} mm")
    if height_mm > MAX_HEIGHT_MM[journal]:
        raise ValueError(
            f"height {height_mm:g} mm exceeds the {journal} maximum of "
            f"{MAX_HEIGHT_MM[journal]:g} mm"
        )
    return w_mm / MM_PER_INCH, height_mm / MM_PER_INCH


def mark_panel(*axes: Axes, letter: str | None = None) -> None:
    """Make ``axes`` one panel of a figure, lettered ``letter`` on the first (top) axes.

    A strip drawn above a plot (the therapy bars over BCR-ABL1) belongs to the plot's panel:
    the panel gets one letter, and the axes carry the same ``gid`` (``"panel:<letter>"``, or
    the first axes' id for an unlettered single panel) so that checks and SVG readers can tell
    which axes form a panel.

    Parameters
    ----------
    *axes : matplotlib.axes.Axes
        The axes of the panel, top first.
    letter : str, optional
        The panel letter ("a", "b", ...), drawn as the first axes' title (bold, at the left in
        the package style); None for the only panel of a figure.
    """
    gid = f"panel:{letter}" if letter else f"panel:{id(axes[0]):x}"
    for ax in axes:
        ax.set_gid(gid)
    if letter:
        axes[0].set_title(letter)
