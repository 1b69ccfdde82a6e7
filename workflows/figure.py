"""Figures of a segmentation: the domain map over the image, the truth beside it, the polarization.

A saved figure has up to three panels, each at the image's own aspect ratio (or the positions'
extent without an image):

- **domains**: every labelled cell site tints its cell with its label's colour, unassigned sites
  are grey dots, wall points white dots;
- **truth** (when given): the true variants drawn the same way, their colours matched to the
  predicted labels they overlap most, so that agreement reads as equal colours;
- **polarization** (when the lattice has B sites): an arrow per B site along the polarization,
  the *negative* B-site displacement (``-lattice.b_displacement``, DESIGN.md section 4), coloured
  by its direction on a cyclic colour map with a colour wheel as key. Arrows are centred on their
  site and scaled so that the median displacement draws 0.4 lattice constants long;
- **maps** (when given, before the polarization): one panel per per-site quantity, such as the
  VAE's angle and latents, a disc per site 0.9 times the sites' nearest-neighbour distance
  across, coloured by its value (the
  angle on a cyclic map over -180..180 degrees, others over their 2nd to 98th percentile), the
  range in the panel's title.

Panels are laid out in the grid of columns and rows that brings the figure closest to 4:3:
side by side for tall images, one above the other for wide ones. Figures are
plain :class:`matplotlib.figure.Figure` objects drawn by Agg: no display, no pyplot state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from .lattice import AtomLattice
from .walls import Segmentation, label_raster

UNASSIGNED_COLOUR = "0.6"
MAP_CMAP, CYCLIC_MAP_CMAP = "viridis", "twilight"
MAP_DISC_SPACINGS = 0.9  # a site's disc in a map panel, in nearest-neighbour distances across
LABEL_CMAP = "tab10"  # labels 0..9; clusterings have at most 8
ANGLE_CMAP = "hsv"  # cyclic and bright in every direction, so arrows read over a grey image
ARROW_MEDIAN_CELLS = 0.4  # the median polarization draws this many lattice constants long
DPI = 100

# Layout, in inches: each panel gets about PANEL_AREA square inches at the data's aspect ratio;
# the whole figure's longer side is at most MAX_INCHES.
PANEL_AREA = 36.0
MAX_INCHES = 16.0
_MARGIN, _GAP, _TITLE, _PANEL_TITLE, _KEY = 0.1, 0.15, 0.4, 0.3, 0.9


def segmentation_figure(
    image: np.ndarray | None,
    segmentation: Segmentation,
    title: str = "",
    *,
    truth: Segmentation | None = None,
    lattice: AtomLattice | None = None,
    maps: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    panel_area: float = PANEL_AREA,
    max_inches: float = MAX_INCHES,
) -> Figure:
    """A figure of the segmentation over the image (or over a dark field for positions).

    Parameters
    ----------
    image : (H, W) array or None
        The image; without one the panels span the sites' extent plus one lattice constant.
    segmentation : Segmentation
        The labels to draw (cell sites, with their walls).
    title : str
        Title over the whole figure; give file names, not paths.
    truth : Segmentation or None
        The true segmentation of the same sites; adds a truth panel.
    lattice : AtomLattice or None
        The measured atoms; adds the polarization panel when it has B sites with a defined
        displacement.
    maps : {name: ((M, 2) xy, (M,) values)} or None
        Per-site quantities, one panel each; a name ending in ``_deg`` is an angle in degrees.
    panel_area : float
        Area of each panel in square inches, before the figure is shrunk to ``max_inches``.
    max_inches : float
        Longest side of the whole figure in inches.

    Returns
    -------
    matplotlib.figure.Figure
        The panels in order domains, truth, maps, polarization; panel titles only when there
        are several.
    """
    extent = _extent(image, segmentation)
    panels: list[tuple[str, Callable]] = []
    domains_title = "domains (prediction)" if truth is not None else "domains"
    panels.append((domains_title, lambda axes: _draw_domains(axes, image, segmentation, extent)))
    if truth is not None:
        colours = matched_colours(truth.labels, segmentation.labels)
        panels.append(("truth", lambda axes: _draw_domains(axes, image, truth, extent, colours)))
    for name, (xy, values) in (maps or {}).items():
        panels.append((_map_title(name, values),
                       lambda axes, xy=xy, values=values, name=name: _draw_map(axes, image, xy, values, name,
                                                                               extent)))
    arrows = polarization(lattice) if lattice is not None else None
    if arrows is not None:  # last, so that its colour-wheel key stands beside it
        a = lattice.lattice_constant_px
        panels.append(("polarization (-B displacement)",
                       lambda axes: _draw_polarization(axes, image, *arrows, a, extent)))

    figure, boxes, key_box = _layout(extent, len(panels), title, with_key=arrows is not None,
                                     panel_area=panel_area, max_inches=max_inches)
    for (name, draw), box in zip(panels, boxes):
        axes = figure.add_axes(box)
        draw(axes)
        axes.set_xlim(extent[0], extent[1])
        axes.set_ylim(extent[2], extent[3])  # y down, as in the image
        axes.set_axis_off()
        if len(panels) > 1:
            axes.set_title(name, fontsize=9)
    if key_box is not None:
        _draw_angle_key(figure.add_axes(key_box))
    if title:
        figure.suptitle(title, fontsize=10, y=1 - 0.5 * _TITLE / figure.get_figheight(), va="center")
    return figure


def save_segmentation_figure(path, image, segmentation: Segmentation, title: str = "", *,
                             truth: Segmentation | None = None, lattice: AtomLattice | None = None,
                             maps: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Path:
    """Write :func:`segmentation_figure` as a PNG (creating the folder) and return its path.

    ``truth``, ``lattice`` and ``maps`` add the truth, polarization and map panels, as in
    :func:`segmentation_figure`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = segmentation_figure(image, segmentation, title, truth=truth, lattice=lattice, maps=maps)
    figure.savefig(path, format="png", dpi=DPI)
    return path


def render_segmentation(image, segmentation: Segmentation, title: str = "") -> np.ndarray:
    """The domain panel alone as an (H, W, 3) uint8 array, for ``render_mode="rgb_array"``.

    Smaller than a saved figure (about 16 square inches at 100 dpi) and at the image's aspect.
    """
    figure = segmentation_figure(image, segmentation, title, panel_area=16.0, max_inches=8.0)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def polarization(lattice: AtomLattice) -> tuple[np.ndarray, np.ndarray] | None:
    """B-site positions and their polarization ``-b_displacement`` (pixels), defined sites only.

    Returns
    -------
    (xy, vectors) : two (M, 2) float arrays in (x, y) pixels, or None when no B site has a
        defined displacement (no B sites, or no complete cages).
    """
    displacement = lattice.b_displacement
    keep = (lattice.sublattice == "B") & np.isfinite(displacement).all(axis=1)
    if not keep.any():
        return None
    return lattice.xy[keep], -displacement[keep]


def matched_colours(truth_labels: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Colour index per true label (index = label value), matched to the predicted labels.

    Each true label takes the colour of the predicted label it overlaps most under a one-to-one
    assignment (Hungarian, on sites where both are assigned); true labels left over take the
    colours no predicted label uses.
    """
    truth_labels, labels = np.asarray(truth_labels), np.asarray(labels)
    n_true = int(truth_labels.max()) + 1 if (truth_labels >= 0).any() else 0
    n_pred = int(labels.max()) + 1 if (labels >= 0).any() else 0
    colours = np.full(n_true, -1)
    both = (truth_labels >= 0) & (labels >= 0)
    if n_true and n_pred and both.any():
        overlap = np.zeros((n_true, n_pred))
        np.add.at(overlap, (truth_labels[both], labels[both]), 1)
        rows, cols = linear_sum_assignment(overlap, maximize=True)
        colours[rows] = cols
    free = iter(c for c in range(max(10, n_true + n_pred)) if c not in set(colours) and c >= n_pred)
    for t in np.flatnonzero(colours < 0):
        colours[t] = next(free)
    return colours


# ------------------------------------------------------------------------------------ drawing


def _extent(image, segmentation: Segmentation) -> tuple[float, float, float, float]:
    """(left, right, bottom, top) in pixels: the image, or the sites plus one lattice constant."""
    if image is not None:
        rows, cols = np.shape(image)[:2]
        return -0.5, cols - 0.5, rows - 0.5, -0.5
    (x0, y0), (x1, y1) = segmentation.xy.min(axis=0), segmentation.xy.max(axis=0)
    a = segmentation.spacing
    return x0 - a, x1 + a, y1 + a, y0 - a


def _layout(extent, n_panels: int, title: str, *, with_key: bool, panel_area: float, max_inches: float):
    """A figure sized to the data's aspect and the panels' boxes in figure fractions.

    Panels fill a grid row by row, with the number of columns that makes the figure closest to
    4:3; the angle key sits right of the last panel.
    """
    aspect = (extent[1] - extent[0]) / (extent[2] - extent[3])
    width, height = np.sqrt(panel_area * aspect), np.sqrt(panel_area / aspect)
    cols = min(range(1, n_panels + 1),
               key=lambda c: abs(np.log(c * aspect / -(-n_panels // c) / (4 / 3))))
    rows = -(-n_panels // cols)
    panel_title = _PANEL_TITLE if n_panels > 1 else 0.0
    top = _TITLE if title else _MARGIN
    key = _KEY if with_key else 0.0
    fixed_w = 2 * _MARGIN + (cols - 1) * _GAP + key
    fixed_h = top + _MARGIN + rows * panel_title + (rows - 1) * _GAP
    shrink = min(1.0, (max_inches - fixed_w) / (cols * width), (max_inches - fixed_h) / (rows * height))
    width, height = width * shrink, height * shrink
    fig_w, fig_h = fixed_w + cols * width, fixed_h + rows * height
    figure = Figure(figsize=(fig_w, fig_h), dpi=DPI)
    boxes = []
    for i in range(n_panels):
        row, col = divmod(i, cols)
        left = _MARGIN + col * (width + _GAP)
        bottom = fig_h - top - (row + 1) * (panel_title + height) - row * _GAP
        boxes.append((left / fig_w, bottom / fig_h, width / fig_w, height / fig_h))
    key_box = None
    if with_key:
        left, bottom, _, box_h = boxes[-1]
        side = min(_KEY - 2 * _MARGIN, height) / fig_w
        right = left + width / fig_w + _MARGIN / fig_w
        key_box = (right, bottom + box_h / 2 - side * fig_w / fig_h / 2, side, side * fig_w / fig_h)
    return figure, boxes, key_box


def _show_image(axes, image, extent) -> None:
    """The image in grey, or a dark field for positions alone."""
    if image is None:
        axes.imshow(np.zeros((1, 1)), cmap="gray", vmin=0, vmax=1, extent=extent)
    else:
        axes.imshow(image, cmap="gray", interpolation="nearest")


def _draw_domains(axes, image, segmentation: Segmentation, extent, colours: np.ndarray | None = None) -> None:
    """Cells tinted by label colour (``colours[label]``, default the label), walls, unassigned sites."""
    _show_image(axes, image, extent)
    labels = segmentation.labels
    assigned = labels >= 0
    x, y = segmentation.xy.T
    if assigned.any():
        left, top = int(np.floor(extent[0])), int(np.floor(extent[3]))
        shape = (int(np.ceil(extent[2])) - top + 1, int(np.ceil(extent[1])) - left + 1)
        if image is not None:
            left, top, shape = 0, 0, np.shape(image)[:2]
        tint = labels if colours is None else np.where(assigned, colours[np.maximum(labels, 0)], -1)
        raster = label_raster(shape, segmentation.xy - (left, top), tint, segmentation.spacing).astype(float)
        axes.imshow(np.ma.masked_less(raster, 0), cmap=LABEL_CMAP, vmin=0, vmax=9, alpha=0.45,
                    interpolation="nearest",
                    extent=(left - 0.5, left + shape[1] - 0.5, top + shape[0] - 0.5, top - 0.5))
    axes.scatter(x[~assigned], y[~assigned], s=6, c=UNASSIGNED_COLOUR, linewidths=0)
    for segment in segmentation.segments:
        axes.plot(*segment.points.T, ".", color="white", markersize=3)


def _draw_polarization(axes, image, xy: np.ndarray, vectors: np.ndarray, a: float, extent) -> None:
    """An arrow per B site along ``vectors``, coloured by direction, centred on the site."""
    _show_image(axes, image, extent)
    length = np.hypot(*vectors.T)
    median = float(np.median(length))
    scale = median / (ARROW_MEDIAN_CELLS * a) if median > 0 else 1.0  # data units per drawn pixel
    axes.quiver(xy[:, 0], xy[:, 1], vectors[:, 0], vectors[:, 1], _angle(vectors),
                cmap=ANGLE_CMAP, clim=(-np.pi, np.pi), angles="xy", scale_units="xy", scale=scale,
                units="xy", width=0.08 * a, headwidth=3.0, headlength=3.5, headaxislength=3.0,
                pivot="middle", edgecolor="black", linewidth=0.3)


def _map_title(name: str, values: np.ndarray) -> str:
    if name.endswith("_deg"):
        return f"{name[:-4]} (degrees, cyclic)"
    low, high = _map_range(values)
    return f"{name} ({low:.2g} to {high:.2g})"


def _map_range(values: np.ndarray) -> tuple[float, float]:
    """2nd to 98th percentile: what varies over the image, not a few outliers, fills the scale."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite, [2, 98])
    return float(low), float(high if high > low else low + 1e-12)


def _draw_map(axes, image, xy: np.ndarray, values: np.ndarray, name: str, extent) -> None:
    """A disc per site, coloured by its value."""
    _show_image(axes, image, extent)
    spacing = float(np.median(cKDTree(xy).query(xy, k=2)[0][:, 1])) if len(xy) > 1 else 1.0
    panel_inches = axes.get_position().width * axes.figure.get_figwidth()
    diameter_points = MAP_DISC_SPACINGS * spacing * panel_inches * 72 / (extent[1] - extent[0])
    if name.endswith("_deg"):
        colour = dict(cmap=CYCLIC_MAP_CMAP, vmin=-180, vmax=180)
    else:
        low, high = _map_range(values)
        colour = dict(cmap=MAP_CMAP, vmin=low, vmax=high)
    axes.scatter(xy[:, 0], xy[:, 1], c=values, s=diameter_points**2, linewidths=0, alpha=0.85, **colour)


def _angle(vectors: np.ndarray) -> np.ndarray:
    """Direction of (x, y) vectors in image coordinates (y down), radians in [-pi, pi]."""
    return np.arctan2(vectors[:, 1], vectors[:, 0])


def _draw_angle_key(axes, n: int = 101) -> None:
    """A colour wheel: each direction from the centre in the colour its arrows take."""
    grid = np.linspace(-1, 1, n)
    x, y = np.meshgrid(grid, grid)  # row index = y, drawn downwards like the image
    radius = np.hypot(x, y)
    rgba = colormaps[ANGLE_CMAP]((np.arctan2(y, x) + np.pi) / (2 * np.pi))
    rgba[..., 3] = (radius <= 1) & (radius >= 0.45)
    axes.imshow(rgba, extent=(-1, 1, 1, -1), interpolation="bilinear")
    axes.set_axis_off()
    axes.set_title("direction", fontsize=7)
