"""The Voronoi cells of a segmentation's sites, sampled on a pixel grid.

Every grid point takes the nearest cell site (scipy's exact Euclidean distance transform of the
grid with the sites as seeds, which returns each point's nearest seed: the Voronoi diagram of
the sites, sampled, in time linear in the grid), up to :data:`CORNER_REACH`, so the cells tile the
crystal as a continuous map, close the hole of a missing site, and stop within a cell beyond the
edge sites (vacuum and a region's outside stay empty). The domain map of the figures and the label maps of the HyperSpy export
are drawn from it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .walls import Segmentation

#: A grid point belongs to its nearest site within this many half-diagonals of a cell (1: up to a
#: cell's corner; 1.5 also covers the cell of one missing site and the image's edge strip).
CORNER_REACH = 1.5


def cell_raster(segmentation: Segmentation, extent, step: float = 1.0) -> tuple[np.ndarray, tuple]:
    """Index of the nearest site per grid point, -1 beyond :data:`CORNER_REACH`, and the grid's extent.

    Parameters
    ----------
    segmentation : its sites (``xy``) and cell sides (``spacing``, ``bond_length``).
    extent : (left, right, bottom, top) in pixels, as matplotlib's ``imshow`` takes it.
    step : grid spacing in pixels; with 1 and an image's extent (-0.5, cols - 0.5, rows - 0.5,
        -0.5) the grid points are the pixel centres, so the raster has the image's shape.

    Returns
    -------
    (index, grid_extent) : (rows, cols) int array of site indices, and its extent for ``imshow``.
    """
    left, right, bottom, top = extent
    x = np.arange(left + step / 2, right, step)
    y = np.arange(top + step / 2, bottom, step)
    # Each site seeds the grid point it falls on (a later site on the same point wins: sites
    # are a lattice constant apart, the grid a fraction of that); positions are quantised to
    # the grid, half a step at most.
    column = np.floor((segmentation.xy[:, 0] - left) / step).astype(int)
    row = np.floor((segmentation.xy[:, 1] - top) / step).astype(int)
    on_grid = (column >= 0) & (column < len(x)) & (row >= 0) & (row < len(y))
    seeds = np.full((len(y), len(x)), -1)
    seeds[row[on_grid], column[on_grid]] = np.flatnonzero(on_grid)
    index = np.full(seeds.shape, -1)
    if on_grid.any():
        distance, (rows, cols) = ndimage.distance_transform_edt(seeds < 0, return_indices=True)
        reach = CORNER_REACH * np.hypot(segmentation.spacing, segmentation.bond_length) / 2
        index = np.where(distance * step <= reach, seeds[rows, cols], -1)
    grid_extent = (left, left + len(x) * step, top + len(y) * step, top)
    return index, grid_extent


def pixel_map(segmentation: Segmentation, shape: tuple[int, int], values: np.ndarray, fill=np.nan) -> np.ndarray:
    """(rows, cols) map of a per-site quantity over the image: each pixel its cell's value,
    ``fill`` outside every cell."""
    index, _ = cell_raster(segmentation, (-0.5, shape[1] - 0.5, shape[0] - 0.5, -0.5), 1.0)
    values = np.asarray(values)
    out = np.full(index.shape, fill, dtype=np.result_type(values.dtype, np.asarray(fill).dtype))
    inside = index >= 0
    out[inside] = values[index[inside]]
    return out
