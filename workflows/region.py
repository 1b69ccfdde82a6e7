"""The region of an image to analyse: a box or a mask, so that vacuum, a substrate or damage is left out.

A region is a boolean mask of the image's shape, True where columns are analysed. It is given as

- a box ``(x0, y0, x1, y1)`` in pixels (x = column, y = row, DESIGN.md section 4), both corners
  included, as on the command line ``--region x0,y0,x1,y1``;
- a mask array of the image's shape (nonzero: analyse);
- a mask file (``--mask FILE``): ``.npy``, or an image (PNG, TIFF...) whose nonzero pixels are
  the region, e.g. painted in any image editor over the micrograph.

Columns found outside the region are dropped before the lattice is measured
(:func:`columns_inside`), so their cells, cages and walls never enter the analysis.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from .atoms import Columns
from .errors import InputError

#: A region must hold at least this share of the image (a smaller one has too few cells).
MIN_REGION_SHARE = 0.01
MASK_EXTENSIONS = (".npy", ".png", ".tif", ".tiff")


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"x0,y0,x1,y1"`` (pixels) as four numbers; InputError naming the text otherwise."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        box = tuple(float(p) for p in parts)
    except ValueError:
        box = ()
    if len(box) != 4:
        raise InputError(f"--region {text!r} is not x0,y0,x1,y1: give four numbers in pixels, e.g. "
                         "--region 0,150,655,223 (x = column, y = row)")
    return box


def region_mask(region, shape: tuple[int, int], source: str = "region") -> np.ndarray:
    """A boolean mask of ``shape`` from a box, a mask array or a mask file (see module)."""
    if isinstance(region, (str, Path)):
        return region_mask(_read_mask(Path(region)), shape, str(region))
    if isinstance(region, tuple) and len(region) == 4 and np.ndim(region) == 1:
        x0, y0, x1, y1 = region
        rows, cols = np.indices(shape)
        mask = (cols >= min(x0, x1)) & (cols <= max(x0, x1)) & (rows >= min(y0, y1)) & (rows <= max(y0, y1))
        what = f"box {region}"
    else:
        mask = np.asarray(region)
        if mask.shape != tuple(shape):
            raise InputError(f"{source}: a mask of shape {mask.shape} for an image of shape {tuple(shape)}; give "
                             "a mask of the image's shape (rows, columns)")
        mask = mask.astype(bool)
        what = source
    if mask.mean() < MIN_REGION_SHARE:
        raise InputError(f"{what} holds {int(mask.sum())} of the image's {mask.size} pixels (below "
                         f"{100 * MIN_REGION_SHARE:g} %); give a larger region (x = column, y = row, in pixels)")
    return mask


def columns_inside(xy: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Boolean per (x, y) position: whether its nearest pixel lies inside ``mask``."""
    cols = np.clip(np.rint(xy[:, 0]).astype(int), 0, mask.shape[1] - 1)
    rows = np.clip(np.rint(xy[:, 1]).astype(int), 0, mask.shape[0] - 1)
    return mask[rows, cols]


def within(columns: Columns, mask: np.ndarray) -> Columns:
    """The columns, and the empty sites, whose positions lie inside ``mask``."""
    empty = columns.empty_sites
    return replace(columns.subset(columns_inside(columns.xy, mask)), empty_sites=empty[columns_inside(empty, mask)])


def extent_of(mask: np.ndarray) -> np.ndarray:
    """(width, height) in pixels of the mask's bounding box, minus one (as an image's extent)."""
    rows, cols = np.nonzero(mask)
    return np.array([np.ptp(cols), np.ptp(rows)], dtype=float)


def _read_mask(path: Path) -> np.ndarray:
    """A mask file (:data:`MASK_EXTENSIONS`) as an array, nonzero inside; for a colour image,
    any nonzero colour channel (transparency aside) counts."""
    from .io import _read_npy

    suffix = path.suffix.lower()
    if not path.is_file() or suffix not in MASK_EXTENSIONS:
        raise InputError(f"mask file {str(path)!r} is missing or not one of {', '.join(MASK_EXTENSIONS)}; give a "
                         "mask of the image's shape, nonzero where columns are to be analysed")
    if suffix == ".npy":
        data = _read_npy(path)
    elif suffix == ".png":
        from matplotlib.image import imread

        data = imread(path)
    else:
        import tifffile

        data = tifffile.imread(path)
    if data.ndim == 3:
        data = np.any(data[..., :3] != 0, axis=2)
    if data.ndim != 2:
        raise InputError(f"mask file {str(path)!r} holds an array of shape {data.shape}; a 2-D mask is needed")
    return data != 0
