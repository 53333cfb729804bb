"""A Solara page for a small marrow lattice of :class:`sim.mesa_model.CMLModel`.

Run it with ``solara run sim/mesa_page.py`` (needs the ``viz`` extra: ``pip install -e .[viz]``).
Solara and Mesa's visualisation are imported only when the page is built (the ``Page``
attribute), so importing this module needs neither.

Left: the lattice (active leukemic cells per site on a red scale with its colour bar, quiescent
cells on their niches as blue squares, T cells as orange dots, with a legend); right: Y, X and Z
over time (cells, log axis, days since diagnosis) from the model's ``DataCollector``.
"""

from __future__ import annotations

from typing import Any

#: Model inputs offered as sliders (Solara instantiates the model with keyword arguments).
MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "seed": {"type": "InputText", "value": 1, "label": "seed"},
    "lattice": {
        "type": "SliderInt",
        "value": 40,
        "label": "lattice side",
        "min": 10,
        "max": 100,
        "step": 10,
    },
    "cell_scale": {
        "type": "SliderFloat",
        "value": 0.01,
        "label": "cell scale",
        "min": 0.001,
        "max": 0.05,
        "step": 0.001,
    },
    "u_tki": {
        "type": "SliderFloat",
        "value": 1.0,
        "label": "TKI effect u",
        "min": 0.0,
        "max": 2.0,
        "step": 0.1,
    },
    "stop_time": {
        "type": "SliderInt",
        "value": 365,
        "label": "TKI stop (day)",
        "min": 0,
        "max": 1825,
        "step": 30,
    },
}


#: Colours of the lattice (Okabe–Ito) and of the time series, by state.
QUIESCENT_COLOR = "#0072B2"
T_CELL_COLOR = "#E69F00"
SERIES = (
    ("Y", "active leukemic cells Y", "#D55E00"),
    ("X", "quiescent leukemic cells X", QUIESCENT_COLOR),
    ("Z", "effector T cells Z", T_CELL_COLOR),
)


def lattice_figure(model: Any):
    """A matplotlib Figure of the model's lattice (no pyplot): active leukemic cells per site
    as a red colour scale with its bar, quiescent cells on their niches as blue squares, T cells
    as orange dots, and a legend saying so."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    c = model.lattice_counts()
    fig = Figure(figsize=(4.2, 4.6), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(c["active"], cmap="Reds", interpolation="nearest", vmin=0)
    qy, qx = (c["quiescent"] > 0).nonzero()
    ax.scatter(qx, qy, s=4, c=QUIESCENT_COLOR, marker="s")
    ty, tx = (c["t_cells"] > 0).nonzero()
    ax.scatter(tx, ty, s=3, c=T_CELL_COLOR)
    ax.set_xticks([])
    ax.set_yticks([])
    bar = fig.colorbar(image, ax=ax, shrink=0.8, pad=0.02)
    bar.set_label("active leukemic cells per site (cells)")
    handles = [
        Line2D([], [], color=QUIESCENT_COLOR, marker="s", linestyle="none", markersize=4),
        Line2D([], [], color=T_CELL_COLOR, marker="o", linestyle="none", markersize=3),
    ]
    fig.legend(
        handles,
        ["quiescent leukemic cell (niche)", "T cell"],
        loc="outside lower center",
        ncols=2,
        frameon=False,
    )
    ax.set_title(f"day {model.t:.0f}: Y = {model.Y:.0f}, X = {model.X:.0f}, Z = {model.Z:.0f}")
    return fig


def series_figure(model: Any):
    """A matplotlib Figure of Y, X and Z over time (cells, log axis) from the model's
    ``DataCollector``; time in days since diagnosis."""
    import numpy as np
    from matplotlib.figure import Figure

    frame = model.datacollector.get_model_vars_dataframe()
    fig = Figure(figsize=(5.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    t = frame["t"].to_numpy(float)
    for name, label, color in SERIES:
        v = frame[name].to_numpy(float)
        ax.plot(
            t,
            np.where(v > 0, v, np.nan),
            color=color,
            label=label,
            marker="." if t.size < 3 else "",
        )
    ax.set_yscale("log")
    ax.set_xlim(0.0, max(float(t.max(initial=0.0)), 30.0))
    ax.set_xlabel("Time since diagnosis (days)")
    ax.set_ylabel("Cells (count)")
    ax.legend(loc="best", frameon=False)
    return fig


def make_page(**kwargs: Any):
    """The SolaraViz page of a lattice :class:`~sim.mesa_model.CMLModel` (imports Solara)."""
    import solara
    from mesa.visualization import SolaraViz

    from sim.mesa_model import CMLModel

    def lattice_component(model):
        return solara.FigureMatplotlib(lattice_figure(model))

    def series_component(model):
        return solara.FigureMatplotlib(series_figure(model))

    model = CMLModel(lattice=40, cell_scale=0.01, seed=1, stop_time=365.0, **kwargs)
    return SolaraViz(
        model,
        components=[lattice_component, series_component],
        model_params=MODEL_PARAMS,
        name="cmlsim marrow lattice",
    )


def __getattr__(name: str) -> Any:
    if name == "Page":  # what `solara run` looks up
        return make_page()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
