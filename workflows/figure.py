"""Figures of an analysis: the domain map over the image, the truth, maps, the polarization, the columns.

A segmentation figure has up to four kinds of panel, each at the image's own aspect ratio (the
positions' extent without an image), each with tick marks in pixels (the units of the CSV), a
scale bar (pm or nm where the pixel size is known, else pixels) and its key beside it:

- **domains**: the cell sites' Voronoi cells (every pixel takes the nearest cell site, up to a
  cell's corner), tinted by label; cells whose site has no label are tinted grey, and the legend
  says so; wall points are white dots. The legend names every label (with its phase and
  displacement where the caller gives them, ``label_names``);
- **truth** (when given): the true variants drawn the same way, their colours matched to the
  predicted labels they overlap most, so that agreement reads as equal colours;
- **maps** (when given): one panel per per-site quantity, such as the VAE's angle and latents, a
  disc per site coloured by its value (the angle on a cyclic map over -180..180 degrees, others
  over their 2nd to 98th percentile), with a colour bar;
- **polarization** (when the lattice has B sites): an arrow per B site along the polarization,
  the *negative* B-site displacement (``-lattice.b_displacement``, DESIGN.md section 4),
  :data:`ARROW_GAIN` times its length whatever the image, so that 3 pm of noise draws as specks
  and 30 pm of polar displacement as arrows; coloured by direction (a colour wheel is the key),
  with a 20 pm arrow (1 px without a pixel size) and the median displacement as the length key.
  On a full frame (arrows closer than :data:`ARROW_SPACING_INCHES` on the panel) each arrow is
  the mean of the sites of one label in a block of n x n cells, drawn n times longer again (the
  arrows keep their share of the spacing between them), over the image blurred over half a
  cell; the title says n and the gain.

:func:`columns_figure` draws the column detection: A and B columns marked on the image, and
where the caller knows them the B sites the lattice predicts but no column holds.

Panels are laid out in the grid of columns and rows that brings the figure closest to 4:3:
side by side for tall images, one above the other for wide ones. Figures are plain
:class:`matplotlib.figure.Figure` objects drawn by Agg: no display, no pyplot state; they are
saved as PNG, SVG or PDF (:data:`FORMATS`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize, to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree
from skimage.measure import block_reduce

from .cells import cell_raster
from .errors import InputError
from .lattice import AtomLattice
from .units import Calibration
from .walls import Segmentation

FORMATS = ("png", "svg", "pdf")
DPI = 100  # PNG pixels per inch unless asked otherwise
LABEL_CMAP = "tab10"  # labels 0..9; clusterings have at most 8
TINT_ALPHA = 0.45
UNASSIGNED_COLOUR = "0.85"
MAP_CMAP, CYCLIC_MAP_CMAP = "viridis", "twilight"
MAP_DISC_SPACINGS = 0.9  # a site's disc in a map panel, in nearest-neighbour distances across
ANGLE_CMAP = "hsv"  # cyclic and bright in every direction, so arrows read over a grey image
#: Arrows are drawn this many times the displacement's length, on every image.
ARROW_GAIN = 6.0
#: The length key's arrow: a typical polar B-site displacement (BiFeO3, PbTiO3: 20-35 pm), or one
#: pixel where the pixel size is unknown.
KEY_PM, KEY_PX = 20.0, 1.0
#: Arrows stand at least this far apart on the panel; more cells across than that allows, and
#: each arrow is the mean of n x n cells.
ARROW_SPACING_INCHES = 0.2
#: Cells are rasterised at this many points per cell side (at least one per pixel).
RASTER_POINTS_PER_CELL = 6
A_COLOUR, B_COLOUR, MISSING_COLOUR = "#ff4040", "#40c0ff", "#ffd000"
#: Columns closer than this on the panel are marked on a detail of DETAIL_CELLS cells across.
MARKER_SPACING_INCHES, DETAIL_CELLS = 0.08, 16

# Layout, in inches: each panel gets about PANEL_AREA square inches at the data's aspect ratio;
# the whole figure's longer side is at most MAX_INCHES. Each panel has tick labels left of and
# below it and, when any panel has a key, a key column of _KEY right of it.
PANEL_AREA = 36.0
MAX_INCHES = 16.0
_MARGIN, _GAP, _TITLE, _PANEL_TITLE, _KEY = 0.1, 0.15, 0.4, 0.3, 1.9
_TICKS_LEFT, _TICKS_BELOW = 0.45, 0.3


@dataclass(frozen=True)
class _Panel:
    """A panel's title and what draws it: ``draw(axes, key_box)``, the key box in figure fractions."""

    title: str
    draw: Callable
    has_key: bool = True


def segmentation_figure(
    image: np.ndarray | None,
    segmentation: Segmentation,
    title: str = "",
    *,
    truth: Segmentation | None = None,
    lattice: AtomLattice | None = None,
    maps: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    calibration: Calibration | None = None,
    label_names: Mapping[int, str] | None = None,
    panel_area: float = PANEL_AREA,
    max_inches: float = MAX_INCHES,
    dpi: int = DPI,
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
    calibration : Calibration or None
        The pixel size, for scale bars and the arrow key in pm; None: pixels.
    label_names : {label: text} or None
        Legend text per label (default ``label k``).
    panel_area : float
        Area of each panel in square inches, before the figure is shrunk to ``max_inches``.
    max_inches : float
        Longest side of the whole figure in inches.
    dpi : int
        Resolution the figure is meant for; an image with several times the pixels that gives
        a panel is averaged down to them (a full frame is not drawn pixel by pixel).

    Returns
    -------
    matplotlib.figure.Figure
        The panels in order domains, truth, maps, polarization (the first axes of the figure,
        in that order; colour bars and keys come after); panel titles only when there are several.
    """
    calibration = calibration or Calibration(None)
    extent = _extent(image, segmentation)
    arrows = polarization(lattice) if lattice is not None else None
    n_panels = 1 + (truth is not None) + len(maps or {}) + (arrows is not None)
    figure, boxes, key_boxes = _layout(extent, n_panels, title, panel_area=panel_area, max_inches=max_inches,
                                       dpi=dpi)
    domains_title = "domains (prediction)" if truth is not None else "domains"
    panels = [_Panel(domains_title, lambda axes, key: _draw_domains(axes, image, segmentation, extent,
                                                                    names=label_names))]
    if truth is not None:
        colours = matched_colours(truth.labels, segmentation.labels)
        names = {int(k): f"true variant {k}" for k in np.unique(truth.labels[truth.labels >= 0])}
        panels.append(_Panel("truth", lambda axes, key: _draw_domains(axes, image, truth, extent, colours, names)))
    for name, (xy, values) in (maps or {}).items():
        panels.append(_Panel(_map_title(name, values),
                             lambda axes, key, xy=xy, values=values, name=name: _draw_map(axes, key, image, xy, values,
                                                                                         name, extent)))
    if arrows is not None:
        a = lattice.lattice_constant_px
        cells = arrow_cells(extent, a, boxes[-1][2] * figure.get_figwidth())
        binned = f", mean of {cells} x {cells} cells per domain" if cells > 1 else ""
        labels = segmentation.labels[cKDTree(segmentation.xy).query(arrows[0])[1]] if cells > 1 else None
        panels.append(_Panel(f"polarization (-B displacement, drawn {ARROW_GAIN * cells:g} x){binned}",
                             lambda axes, key: _draw_polarization(axes, key, image, *arrows, a, extent, calibration,
                                                                  cells, labels)))
    panel_axes = [figure.add_axes(box) for box in boxes]  # first, so figure.axes[:n] are the panels
    for panel, axes, key in zip(panels, panel_axes, key_boxes):
        panel.draw(axes, key)
        _finish_panel(axes, extent, calibration, panel.title if len(panels) > 1 else "")
    if title:
        figure.suptitle(title, fontsize=10, y=1 - 0.5 * _TITLE / figure.get_figheight(), va="center")
    return figure


def columns_figure(image: np.ndarray, lattice: AtomLattice, title: str = "", *,
                   calibration: Calibration | None = None, missing_b_xy: np.ndarray | None = None,
                   panel_area: float = PANEL_AREA, max_inches: float = MAX_INCHES, dpi: int = DPI) -> Figure:
    """The column detection over the image: A and B columns marked, with a legend and scale bar.

    Where the columns would stand closer than :data:`MARKER_SPACING_INCHES` on the panel (a full
    frame), a second panel shows a detail of :data:`DETAIL_CELLS` cells across from the centre,
    marked, and the first the whole field with the detail's outline (and the missing B sites).

    Parameters
    ----------
    image : (H, W) array
    lattice : the columns found, with their sublattice.
    title : title over the figure (a file name, not a path).
    calibration : the pixel size for the scale bar; None: pixels.
    missing_b_xy : (M, 2) (x, y) B sites the lattice predicts but no column holds, marked as
        such; None when unknown (nothing is marked).
    panel_area, max_inches, dpi : as for :func:`segmentation_figure`.
    """
    calibration = calibration or Calibration(None)
    missing = np.empty((0, 2)) if missing_b_xy is None else np.asarray(missing_b_xy, dtype=float).reshape(-1, 2)
    extent = _extent(image, None)
    a = lattice.lattice_constant_px
    figure, boxes, keys = _layout(extent, 1, title, panel_area=panel_area, max_inches=max_inches, dpi=dpi)
    cells_across = (extent[1] - extent[0]) / a
    if cells_across * MARKER_SPACING_INCHES > boxes[0][2] * figure.get_figwidth():
        figure, boxes, keys = _layout(extent, 2, title, panel_area=panel_area, max_inches=max_inches, dpi=dpi)
    whole = figure.add_axes(boxes[0])
    _show_image(whole, image, extent)
    if len(boxes) == 1:
        _mark_columns(whole, lattice, missing, extent)
        _finish_panel(whole, extent, calibration, "")
    else:
        detail = _detail_extent(extent, a)
        whole.add_patch(Rectangle((detail[0], detail[3]), detail[1] - detail[0], detail[2] - detail[3], fill=False,
                                  edgecolor=MISSING_COLOUR, linewidth=1.0))
        if len(missing):
            whole.plot(*missing.T, ls="", marker="x", ms=3, mec=MISSING_COLOUR, mew=0.6)
        _finish_panel(whole, extent, calibration, "whole field (detail outlined)")
        zoom = figure.add_axes(boxes[1])
        left, right, bottom, top = (int(round(v + 0.5)) for v in detail)
        zoom.imshow(image[top:bottom, left:right], cmap="gray", interpolation="nearest", extent=detail)
        _mark_columns(zoom, lattice, missing, detail)
        _finish_panel(zoom, detail, calibration, f"detail, {DETAIL_CELLS} cells across")
    if title:
        figure.suptitle(title, fontsize=10, y=1 - 0.5 * _TITLE / figure.get_figheight(), va="center")
    return figure


def _detail_extent(extent, a: float) -> tuple[float, float, float, float]:
    """The extent of a centred crop of the image's aspect, DETAIL_CELLS cells across its longer side."""
    width, height = extent[1] - extent[0], extent[2] - extent[3]
    shrink = DETAIL_CELLS * a / max(width, height)
    cx, cy = (extent[0] + extent[1]) / 2, (extent[2] + extent[3]) / 2
    half_w, half_h = np.round(shrink * width / 2), np.round(shrink * height / 2)
    return cx - half_w, cx + half_w, cy + half_h, cy - half_h


def _mark_columns(axes, lattice: AtomLattice, missing: np.ndarray, extent) -> None:
    """A and B columns as rings (and missing B sites as crosses) with a legend of their counts."""
    size = _marker_points(axes, extent, 0.3 * lattice.lattice_constant_px)
    width = min(0.8, 0.15 * size)
    handles = []
    for site, colour in (("A", A_COLOUR), ("B", B_COLOUR)):
        xy = lattice.xy[lattice.sublattice == site]
        if len(xy):  # markers of one Line2D: stamped, fast on a full frame's 25,000 columns
            axes.plot(*xy.T, ls="", marker="o", ms=size, mfc="none", mec=colour, mew=width)
            handles.append(Line2D([], [], ls="", marker="o", mfc="none", mec=colour, label=f"{site} columns ({len(xy)})"))
    if len(missing):
        axes.plot(*missing.T, ls="", marker="x", ms=size, mec=MISSING_COLOUR, mew=width)
        handles.append(Line2D([], [], ls="", marker="x", color=MISSING_COLOUR,
                              label=f"B site predicted,\nno column ({len(missing)})"))
    _legend(axes, handles)


def save_figure(figure: Figure, path, dpi: int | None = None) -> Path:
    """Write ``figure`` to ``path`` in the format its suffix names (:data:`FORMATS`), creating
    the folder; ``dpi`` (default: the figure's) sets the resolution of PNGs and of the images
    inside SVG and PDF."""
    dpi = int(figure.dpi) if dpi is None else dpi
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in FORMATS:
        raise InputError(f"figure {str(path)!r}: format {kind!r} is not one of {', '.join(FORMATS)}; "
                         "choose one of them (--format)")
    if not (isinstance(dpi, (int, np.integer)) and 10 <= dpi <= 2400):
        raise InputError(f"dpi = {dpi!r}: give a whole number of dots per inch from 10 to 2400 (e.g. --dpi 300)")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format=kind, dpi=dpi)
    return path


def save_segmentation_figure(path, image, segmentation: Segmentation, title: str = "", *, dpi: int = DPI,
                             **kwargs) -> Path:
    """Write :func:`segmentation_figure` (keywords as there) to ``path`` (PNG, SVG or PDF by its
    suffix), creating the folder, and return the path."""
    return save_figure(segmentation_figure(image, segmentation, title, dpi=dpi, **kwargs), path, dpi)


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


def _extent(image, segmentation: Segmentation | None) -> tuple[float, float, float, float]:
    """(left, right, bottom, top) in pixels: the image, or the sites plus one lattice constant."""
    if image is not None:
        rows, cols = np.shape(image)[:2]
        return -0.5, cols - 0.5, rows - 0.5, -0.5
    (x0, y0), (x1, y1) = segmentation.xy.min(axis=0), segmentation.xy.max(axis=0)
    a = segmentation.spacing
    return x0 - a, x1 + a, y1 + a, y0 - a


def _layout(extent, n_panels: int, title: str, *, panel_area: float, max_inches: float, dpi: int = DPI):
    """A figure sized to the data's aspect, the panels' boxes and their key boxes (figure
    fractions). Panels fill a grid row by row, with the number of columns that makes the figure
    closest to 4:3; each has its tick labels left of and below it and its key column right of it."""
    aspect = (extent[1] - extent[0]) / (extent[2] - extent[3])
    width, height = np.sqrt(panel_area * aspect), np.sqrt(panel_area / aspect)
    cell_w, cell_h = _TICKS_LEFT + _KEY, _PANEL_TITLE + _TICKS_BELOW
    cols = min(range(1, n_panels + 1),
               key=lambda c: abs(np.log(c * (width + cell_w) / (-(-n_panels // c) * (height + cell_h)) / (4 / 3))))
    rows = -(-n_panels // cols)
    top = _TITLE if title else _MARGIN
    fixed_w = 2 * _MARGIN + (cols - 1) * _GAP + cols * cell_w
    fixed_h = top + _MARGIN + rows * cell_h + (rows - 1) * _GAP
    shrink = min(1.0, (max_inches - fixed_w) / (cols * width), (max_inches - fixed_h) / (rows * height))
    width, height = width * shrink, height * shrink
    fig_w, fig_h = fixed_w + cols * width, fixed_h + rows * height
    figure = Figure(figsize=(fig_w, fig_h), dpi=dpi)
    boxes, keys = [], []
    for i in range(n_panels):
        row, col = divmod(i, cols)
        left = _MARGIN + col * (width + cell_w + _GAP) + _TICKS_LEFT
        bottom = fig_h - top - (row + 1) * (_PANEL_TITLE + height) - row * (_GAP + _TICKS_BELOW)
        boxes.append((left / fig_w, bottom / fig_h, width / fig_w, height / fig_h))
        keys.append(((left + width + _MARGIN) / fig_w, bottom / fig_h, (_KEY - 2 * _MARGIN) / fig_w, height / fig_h))
    return figure, boxes, keys


def _finish_panel(axes, extent, calibration: Calibration, title: str) -> None:
    """Limits (y down, as in the image), small tick labels in pixels, the scale bar, the title."""
    axes.set_xlim(extent[0], extent[1])
    axes.set_ylim(extent[2], extent[3])
    axes.tick_params(labelsize=6, length=2, pad=1)
    axes.set_xlabel("x (px)", fontsize=6, labelpad=1)
    axes.set_ylabel("y (px)", fontsize=6, labelpad=1)
    _scale_bar(axes, extent, calibration)
    if title:
        axes.set_title(title, fontsize=9)


def _scale_bar(axes, extent, calibration: Calibration) -> None:
    """A white bar of a round length near a fifth of the panel's width, lower right."""
    width_px = extent[1] - extent[0]
    if calibration.known:
        length_pm = _round_down(0.2 * width_px * calibration.pixel_size_pm)
        size_px, label = length_pm / calibration.pixel_size_pm, _length_text(length_pm)
    else:
        size_px = _round_down(0.2 * width_px)
        label = f"{size_px:g} px"
    bar = AnchoredSizeBar(axes.transData, size_px, label, "lower right", pad=0.3, borderpad=0.4, sep=2,
                          color="white", frameon=True, size_vertical=max(1.0, 0.006 * width_px),
                          fontproperties={"size": 7})
    bar.patch.set(facecolor="black", alpha=0.55, edgecolor="none")
    axes.add_artist(bar)


def _round_down(value: float) -> float:
    """The largest 1, 2 or 5 times a power of ten not above ``value``."""
    power = 10 ** np.floor(np.log10(value))
    return float(max(m for m in (1, 2, 5) if m * power <= value) * power)


def _length_text(pm: float) -> str:
    return f"{pm / 1000:g} nm" if pm >= 1000 else f"{pm:g} pm"


def _show_image(axes, image, extent, smooth_px: float = 0.0) -> None:
    """The image in grey (averaged in blocks of n x n pixels where it has n >= 2 times the
    pixels the panel shows at the figure's dpi, as the display would), blurred by a Gaussian of
    ``smooth_px`` first if asked, or a dark field for positions alone."""
    if image is None:
        axes.imshow(np.zeros((1, 1)), cmap="gray", vmin=0, vmax=1, extent=extent)
        return
    if smooth_px > 0:
        image = ndimage.gaussian_filter(np.asarray(image, dtype=float), smooth_px)
    shown = axes.get_position().width * axes.figure.get_figwidth() * axes.figure.dpi
    block = int(np.shape(image)[1] // shown)
    if block >= 2:
        rows, cols = (side // block * block for side in np.shape(image))  # whole blocks only
        image = block_reduce(image[:rows, :cols], (block, block), np.mean)
        extent = (-0.5, cols - 0.5, rows - 0.5, -0.5)
        axes.imshow(image, cmap="gray", interpolation="nearest", extent=extent)
    else:
        axes.imshow(image, cmap="gray", interpolation="nearest")


def _label_colour(index: int, alpha: float = 1.0):
    return to_rgba(colormaps[LABEL_CMAP](index % 10), alpha)


def _draw_domains(axes, image, segmentation: Segmentation, extent, colours: np.ndarray | None = None,
                  names: Mapping[int, str] | None = None) -> None:
    """Voronoi cells tinted by label colour (``colours[label]``, default the label), grey where
    unassigned, walls as white dots, and a legend of every colour and mark."""
    _show_image(axes, image, extent)
    labels = segmentation.labels
    handles = []
    if len(segmentation.xy):
        step = max(1.0, segmentation.spacing / RASTER_POINTS_PER_CELL)
        index, raster_extent = cell_raster(segmentation, extent, step)
        tint = labels if colours is None else np.where(labels >= 0, colours[np.maximum(labels, 0)], -1)
        inside = index >= 0
        code = np.zeros(index.shape, dtype=int)  # 0: outside the crystal, 1: unassigned, 2 + colour
        site_tint = tint[index[inside]]
        code[inside] = np.where(site_tint >= 0, site_tint % 10 + 2, 1)
        palette = np.array([(0.0, 0.0, 0.0, 0.0), to_rgba(UNASSIGNED_COLOUR, 0.6),
                            *(_label_colour(c, TINT_ALPHA) for c in range(10))])
        axes.imshow(palette[code], extent=raster_extent, interpolation="nearest")
    for label in np.unique(labels[labels >= 0]):
        colour = label if colours is None else colours[label]
        text = (names or {}).get(int(label), f"label {label}")
        handles.append(Patch(facecolor=_label_colour(int(colour), 0.7), edgecolor="none", label=text))
    unassigned = int((labels < 0).sum())
    if unassigned:
        handles.append(Patch(facecolor=to_rgba(UNASSIGNED_COLOUR, 0.9), edgecolor="0.5", linewidth=0.5,
                             label=f"unassigned cell ({unassigned}):\nnot described (edge, no\ncomplete cage, failed fit)"))
    if len(segmentation.wall_points):
        axes.plot(*segmentation.wall_points.T, ".", color="white", mec="black", mew=0.2,
                  markersize=max(2.0, _marker_points(axes, extent, 0.18 * segmentation.spacing)))
        handles.append(Line2D([], [], ls="", marker=".", color="white", mec="black", mew=0.3, label="domain wall"))
    _legend(axes, handles)


def _legend(axes, handles) -> None:
    """The legend in the key column right of the panel."""
    if handles:
        axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=7,
                    frameon=False, handlelength=1.2, labelspacing=0.6)


def _marker_points(axes, extent, length_px: float) -> float:
    """A length in data pixels as points on the panel (marker sizes)."""
    panel_inches = axes.get_position().width * axes.figure.get_figwidth()
    return max(1.0, length_px * panel_inches * 72 / (extent[1] - extent[0]))


def arrow_cells(extent, a: float, panel_inches: float) -> int:
    """Cells per side of the blocks whose mean arrow is drawn: 1 while the arrows stand at least
    :data:`ARROW_SPACING_INCHES` apart on the panel, else as many as keep them so."""
    across = max(extent[1] - extent[0], extent[2] - extent[3]) / a
    return max(1, int(np.ceil(across * ARROW_SPACING_INCHES / panel_inches)))


def binned_arrows(xy: np.ndarray, vectors: np.ndarray, size_px: float,
                  labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean position and vector of the arrows in each square block of ``size_px``, per label
    when ``labels`` are given (a mean across a wall would mix two domains into neither)."""
    block = np.floor((xy - xy.min(axis=0)) / size_px).astype(int)
    keys = block if labels is None else np.column_stack([block, labels])
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    mean = lambda values: np.column_stack([np.bincount(inverse, v) / counts for v in values.T])  # noqa: E731
    return mean(xy), mean(vectors)


def _draw_polarization(axes, key, image, xy: np.ndarray, vectors: np.ndarray, a: float, extent,
                       calibration: Calibration, cells: int, labels: np.ndarray | None = None) -> None:
    """Arrows along ``vectors`` at a fixed gain, coloured by direction, centred on their sites
    (or, binned, on their blocks' means per label, n times longer, over the image blurred over
    half a cell, whose columns would only be texture at that scale); a colour wheel and a length
    key in the key column."""
    _show_image(axes, image, extent, smooth_px=a / 2 if cells > 1 else 0.0)
    if cells > 1:
        xy, vectors = binned_arrows(xy, vectors, cells * a, labels)
    quiver = axes.quiver(xy[:, 0], xy[:, 1], vectors[:, 0], vectors[:, 1], _angle(vectors),
                         cmap=ANGLE_CMAP, clim=(-np.pi, np.pi), angles="xy", scale_units="xy",
                         scale=1 / (ARROW_GAIN * cells), units="xy", width=0.08 * a * cells, headwidth=3.0,
                         headlength=3.5, headaxislength=3.0, pivot="middle", edgecolor="black", linewidth=0.3)
    figure = axes.figure
    left, bottom, width, height = key
    side = min(0.6 * width, 0.3 * height * figure.get_figheight() / figure.get_figwidth())
    wheel = figure.add_axes((left, bottom + height - side * figure.get_figwidth() / figure.get_figheight(), side,
                             side * figure.get_figwidth() / figure.get_figheight()))
    _draw_angle_key(wheel)
    magnitude = np.hypot(*calibration.in_unit(vectors).T)
    key_length = KEY_PM if calibration.known else KEY_PX
    key_px = key_length / calibration.pixel_size_pm if calibration.known else key_length
    unit = calibration.unit
    panel = axes.get_position()
    axes.quiverkey(quiver, (left + side / 2 - panel.x0) / panel.width, 0.45, key_px,
                   f"{key_length:g} {unit}\n(median {np.median(magnitude):.2g} {unit})", coordinates="axes",
                   labelpos="S", color="black", fontproperties={"size": 7})


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


def _draw_map(axes, key, image, xy: np.ndarray, values: np.ndarray, name: str, extent) -> None:
    """A disc per site, coloured by its value, with a colour bar in the key column."""
    _show_image(axes, image, extent)
    spacing = float(np.median(cKDTree(xy).query(xy, k=2)[0][:, 1])) if len(xy) > 1 else 1.0
    if name.endswith("_deg"):
        colour = dict(cmap=CYCLIC_MAP_CMAP, norm=Normalize(-180, 180))
    else:
        colour = dict(cmap=MAP_CMAP, norm=Normalize(*_map_range(values)))
    points = axes.scatter(xy[:, 0], xy[:, 1], c=values, s=_marker_points(axes, extent, MAP_DISC_SPACINGS * spacing) ** 2,
                          linewidths=0, alpha=0.85, **colour)
    left, bottom, width, height = key
    bar = axes.figure.add_axes((left, bottom + 0.1 * height, 0.12 * width, 0.8 * height))
    axes.figure.colorbar(points, cax=bar).ax.tick_params(labelsize=6)


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
