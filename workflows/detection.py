"""Find every atom column of an image: the bright ones, then the ones the lattice predicts.

:func:`find_columns` runs, in order:

1. the image's lattice from its autocorrelation (:mod:`.periodicity`): the column lattice on
   which every cation column sits, and the distance between its nearest sites;
2. candidates at that spacing (:func:`~.atoms.detect_columns`): the bright columns. Dim ones
   (the B columns of a heavy-A perovskite, 0.1-0.25 of the A peak) may be missed here, and no
   lower bar is tried: a threshold low enough for them finds noise where they are absent;
3. each candidate fitted alone (:func:`~.atoms.fit_columns`), kept where centred inside the
   image;
4. every site of the column lattice next to a column, tested for a column whatever its
   brightness, the lattice grown from the accepted ones, and all columns fitted jointly with
   their neighbours subtracted (:mod:`.completion`).
"""

from __future__ import annotations

import numpy as np

from .atoms import ALONE_RADIUS, Columns, detect_columns, fit_columns, inside_image
from .completion import complete_columns
from .errors import InputError
from .periodicity import measure_periodicity


def find_columns(image: np.ndarray, pixel_size_pm: float | None = None) -> Columns:
    """Detect and refine every atom column in ``image`` (a validated 2-D float array).

    ``pixel_size_pm``, when known, lets the periodicity tell a cell of one sublattice from
    the column lattice of both (:data:`~.periodicity.COLUMN_AREA_PM2`).
    """
    periodicity = measure_periodicity(image, pixel_size_pm)
    spacing = periodicity.column_spacing
    candidates = detect_columns(image, spacing)
    if len(candidates) < 4:
        raise InputError(
            f"found only {len(candidates)} atom columns in the image (column spacing estimated as "
            f"{spacing:.1f} px); check that it is an atomically resolved image with bright columns "
            "on a dark background (invert it if the contrast is reversed)"
        )
    return complete_columns(image, fitted_alone(image, candidates, spacing), periodicity)


def fitted_alone(image: np.ndarray, candidates: np.ndarray, spacing: float) -> Columns:
    """Candidates fitted one by one, kept where centred within the pixel-centre extent
    [0, size - 1] of the image; a failed fit whose window reaches past the border is dropped.

    Candidates on the border are often columns just outside it, whose tails peak at the edge:
    their fit moves the centre out of the image, or wanders off and fails.
    """
    xy, amplitude, sigma, failed = fit_columns(image, candidates, spacing, ALONE_RADIUS)
    rows, cols = image.shape
    x, y = xy.T
    reach = ALONE_RADIUS * spacing + 1
    near_border = (x < reach) | (x > cols - 1 - reach) | (y < reach) | (y > rows - 1 - reach)
    keep = inside_image(xy, image.shape) & ~(failed & near_border)
    return Columns(xy[keep], amplitude[keep], sigma[keep], spacing)
