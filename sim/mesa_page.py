"""A Solara page for a small marrow lattice of :class:`sim.mesa_model.CMLModel`.

Run it with ``solara run sim/mesa_page.py`` (needs the ``viz`` extra: ``pip install -e .[viz]``).
Solara and Mesa's visualisation are imported only when the page is built (the ``Page``
attribute), so importing this module needs neither.

Left: the lattice (active leukemic cells per site in red, quiescent cells on their niches in
blue, T cells as orange dots); right: Y, X and Z over time from the model's ``DataCollector``.
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


def lattice_figure(model: Any):
    """A matplotlib Figure of the model's lattice (no pyplot)."""
    from matplotlib.figure import Figure

    c = model.lattice_counts()
    fig = Figure(figsize=(4, 4))
    ax = fig.add_subplot()
    ax.imshow(c["active"], cmap="Reds", interpolation="nearest")
    qy, qx = (c["quiescent"] > 0).nonzero()
    ax.scatter(qx, qy, s=4, c="#0072B2", marker="s", label="quiescent (niche)")
    ty, tx = (c["t_cells"] > 0).nonzero()
    ax.scatter(tx, ty, s=3, c="#E69F00", label="T cells")
    ax.set_axis_off()
    ax.set_title(f"day {model.t:.0f}: Y = {model.Y:.0f}, X = {model.X:.0f}, Z = {model.Z:.0f}")
    return fig


def make_page(**kwargs: Any):
    """The SolaraViz page of a lattice :class:`~sim.mesa_model.CMLModel` (imports Solara)."""
    import solara
    from mesa.visualization import SolaraViz, make_plot_component

    from sim.mesa_model import CMLModel

    def lattice_component(model):
        return solara.FigureMatplotlib(lattice_figure(model))

    model = CMLModel(lattice=40, cell_scale=0.01, seed=1, stop_time=365.0, **kwargs)
    return SolaraViz(
        model,
        components=[lattice_component, make_plot_component(["Y", "X", "Z"])],
        model_params=MODEL_PARAMS,
        name="cmlsim marrow lattice",
    )


def __getattr__(name: str) -> Any:
    if name == "Page":  # what `solara run` looks up
        return make_page()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
