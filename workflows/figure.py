"""A figure of a segmentation: the image, atoms coloured by label, walls drawn over it."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files and arrays only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .walls import Segmentation, label_raster  # noqa: E402

UNASSIGNED_COLOUR = "0.6"


def segmentation_figure(image: np.ndarray | None, segmentation: Segmentation, title: str = "", size_inches: float = 6.0):
    """A matplotlib figure of the segmentation over the image (or over blank for positions).

    Each labelled site's cell is tinted with its label's colour, so domains read as areas;
    unassigned sites are grey dots and wall points white dots.
    """
    figure, axes = plt.subplots(figsize=(size_inches, size_inches), dpi=100)
    labels = segmentation.labels
    assigned = labels >= 0
    x, y = segmentation.xy.T
    if image is not None:
        axes.imshow(image, cmap="gray", interpolation="nearest")
        shape = image.shape
    else:
        shape = (int(np.ceil(y.max())) + 1, int(np.ceil(x.max())) + 1)
        axes.imshow(np.zeros(shape), cmap="gray", vmin=0, vmax=1)
    if assigned.any():
        raster = label_raster(shape, segmentation.xy, labels, segmentation.spacing).astype(float)
        axes.imshow(np.ma.masked_less(raster, 0), cmap="tab10", vmin=0, vmax=9, alpha=0.45, interpolation="nearest")
    axes.scatter(x[~assigned], y[~assigned], s=6, c=UNASSIGNED_COLOUR, linewidths=0)
    for segment in segmentation.segments:
        axes.plot(*segment.points.T, ".", color="white", markersize=3)
    axes.set_title(title, fontsize=9)
    axes.set_axis_off()
    figure.tight_layout()
    return figure


def save_segmentation_figure(path, image, segmentation: Segmentation, title: str = "") -> Path:
    """Write the segmentation figure as a PNG and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = segmentation_figure(image, segmentation, title)
    figure.savefig(path, format="png")
    plt.close(figure)
    return path


def render_segmentation(image, segmentation: Segmentation, title: str = "") -> np.ndarray:
    """The segmentation figure as an (H, W, 3) uint8 array, for ``render_mode="rgb_array"``."""
    figure = segmentation_figure(image, segmentation, title, size_inches=4.0)
    figure.canvas.draw()
    array = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return array
