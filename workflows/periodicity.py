"""The crystal lattice of an image, read from its autocorrelation, before any column is found.

Every pixel votes in the autocorrelation, so it shows the lattice even where single columns
drown in noise: a peak at every lag that maps the structure onto itself. Its strongest peaks
span the lattice of the brightest columns (:attr:`Periodicity.cell`). A second cation
sublattice at a fixed site inside that cell adds weaker peaks at lags of one sublattice to the
other: for a perovskite seen along [001] at the cell centre (B between four A), for a
[110]-type view at the midpoint of a cell side. The strongest peak at one of the cell's three
half lags (half of either cell vector, or of their sum) is that site, :attr:`Periodicity.offset`.
A B/A peak ratio of 0.05 still gives a clear peak there; an A lattice alone gives none, since
the autocorrelation between bright columns is smooth and falls towards the half lags.

Both sublattices together form the *column lattice* (:attr:`Periodicity.column_cell`): the
cell and the cell shifted by the offset, again a lattice, on which every cation column of the
image sits. Where the columns of both sublattices are all bright (SrRuO3, A and B alike) the
strongest peaks already span the column lattice, and its half lags hold at most oxygen
columns (a few per cent of a cation's peak). The two cases look alike to the autocorrelation
when oxygen shows; the pixel size tells them apart (see :data:`COLUMN_AREA_PM2`), so without it
the offset is taken whenever its peak stands out.

Lags are ``(x, y)`` pixels. scikit-image's ``(row, col)`` peaks are converted here, once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.feature import peak_local_max

from .errors import InputError

#: The autocorrelation is measured on at most this many pixels each way, from the image's
#: centre: a full frame repeats the same lattice, and the cost grows with the area.
CROP = 512
#: An image is periodic when its strongest peak off the zero lag reaches this share of the zero
#: lag (its variance): crystal images reach 0.6-0.9 even at 30 counts per column, smoothed noise 0.06.
PERIODIC_SHARE = 0.2
#: Peaks of at least this share of the strongest non-zero lag span the lattice of the
#: brightest columns.
STRONG_PEAK = 0.25
#: A peak at a half lag must stand this share of a cell peak's prominence above its
#: surroundings to be a second sublattice. B/A = 0.05 stands about 0.02 above; the shot noise of
#: a 256 x 256 image about 0.001.
MIN_OFFSET_PROMINENCE = 0.01
#: Area per cation column (pm^2) that separates a cell of one sublattice from the column
#: lattice of both, for a perovskite of pseudo-cubic a = 3.7-4.2 Angstrom: [001] views have
#: a^2 (A alone, 13.7-17.6e4) or a^2 / 2 (both, 6.8-8.8e4), [110]-type views a^2 / sqrt 2
#: (A alone, 9.7-12.5e4) or half that (both). Below it the strongest peaks already span every
#: cation column and half lags are oxygen, never a B sublattice.
COLUMN_AREA_PM2 = 9.2e4
#: The area rule holds for the rectangular cells of perovskites: reduced cell vectors within
#: this many degrees of a right angle (drift and shear tilt them by a few).
RIGHT_ANGLE_DEG = 10.0
#: Domains need this many unit cells across an image (or region, or set of positions).
MIN_CELLS_ACROSS = 3


@dataclass(frozen=True)
class Periodicity:
    """The lattice an image's autocorrelation shows.

    Attributes
    ----------
    cell : (2, 2) float, rows the reduced basis vectors (x, y) in px of the lattice spanned by
        the strongest autocorrelation peaks: the brightest columns' lattice.
    offset : (2,) float or None, the site of a second sublattice inside that cell (px from a
        cell corner), None when the image shows one.
    offset_prominence : the offset peak's prominence as a share of the cell peaks' (0 without
        one): how strongly the second sublattice shows.
    two_sublattices : True when the image shows two sublattices: an offset, or a cell with the
        area of the column lattice of both (:data:`COLUMN_AREA_PM2`, known with the pixel
        size only); None when it cannot tell (one sublattice shows; the other may be hidden).
    """

    cell: np.ndarray
    offset: np.ndarray | None
    offset_prominence: float
    two_sublattices: bool | None = None

    @property
    def column_cell(self) -> np.ndarray:
        """(2, 2) reduced basis of the column lattice: the cell together with the cell shifted
        by the offset (the cell itself without an offset)."""
        if self.offset is None:
            return self.cell
        other = next(v for v in self.cell if not _parallel(v, self.offset))  # with the offset, spans both
        return reduced_basis(np.array([self.offset, other]))

    @property
    def column_spacing(self) -> float:
        """Distance (px) between nearest columns of the column lattice."""
        return float(np.hypot(*self.column_cell[0]))

    @property
    def cell_spacing(self) -> float:
        """Length (px) of the cell's shorter vector: the brightest sublattice's nearest distance."""
        return float(np.hypot(*self.cell[0]))


def measure_periodicity(image: np.ndarray, pixel_size_pm: float | None = None) -> Periodicity:
    """The lattice of ``image`` (2-D float) from its autocorrelation; see the module docstring.

    ``pixel_size_pm`` (when known) rules out a second sublattice at the half lags of a
    rectangular cell that already has the area of the column lattice (:data:`COLUMN_AREA_PM2`).
    """
    acf = autocorrelation(image)
    lags, heights = _peaks(acf)
    periodic = heights.size and heights.max() >= PERIODIC_SHARE * acf[tuple(np.array(acf.shape) // 2)]
    strong = heights >= STRONG_PEAK * heights.max() if periodic else np.zeros(len(heights), bool)
    cell = _cell_of(lags[strong])
    if cell is None and strong.any():
        # A period along one direction only: an image too short across it to show a second?
        period = float(np.hypot(*lags[strong].T).min())
        if min(image.shape) / period < MIN_CELLS_ACROSS:
            raise too_few_cells("the image spans", min(image.shape) / period, period)
    if cell is None:
        raise InputError(
            "no periodic lattice found in the image autocorrelation; ferrogym needs an atomically "
            "resolved image with at least three unit cells across"
        )
    area = abs(np.linalg.det(cell))
    if pixel_size_pm is not None and area * pixel_size_pm**2 < COLUMN_AREA_PM2 and rectangular(cell):
        return Periodicity(cell, None, 0.0, two_sublattices=True)
    offset, prominence = _strongest_half_lag(acf, cell)
    if prominence < MIN_OFFSET_PROMINENCE:
        return Periodicity(cell, None, max(prominence, 0.0))
    return Periodicity(cell, offset, prominence, two_sublattices=True)


def too_few_cells(what: str, cells: float, lattice_constant_px: float) -> InputError:
    """The refusal of an input that spans fewer than :data:`MIN_CELLS_ACROSS` unit cells."""
    return InputError(
        f"{what} only {cells:.1f} unit cells (a = {lattice_constant_px:.1f} px) in its shorter "
        f"direction; at least {MIN_CELLS_ACROSS} are needed to see domains. Use a larger field of view"
    )


def rectangular(cell: np.ndarray) -> bool:
    """Whether a reduced cell's vectors are within :data:`RIGHT_ANGLE_DEG` of a right angle, as
    the cells of perovskites along [001] and [110]-type axes are (a hexagonal cell is not)."""
    u, v = cell
    angle = np.degrees(np.arccos(abs(u @ v) / (np.hypot(*u) * np.hypot(*v))))
    return bool(angle >= 90.0 - RIGHT_ANGLE_DEG)


def autocorrelation(image: np.ndarray) -> np.ndarray:
    """Autocorrelation of the central :data:`CROP` pixels, zero lag at the array's centre.

    Zero-padded (no wrap), with a Gaussian high-pass of width min(rows, cols) / 8 applied in
    Fourier space, so that slow background variations do not dominate it.
    """
    rows, cols = image.shape
    top, left = max(0, (rows - CROP) // 2), max(0, (cols - CROP) // 2)
    image = image[top : top + CROP, left : left + CROP]
    rows, cols = image.shape
    spectrum = np.fft.rfft2(image - image.mean(), s=(2 * rows, 2 * cols))
    sigma = min(rows, cols) / 8
    k_rows, k_cols = np.fft.fftfreq(2 * rows)[:, None], np.fft.rfftfreq(2 * cols)[None, :]
    spectrum *= 1 - np.exp(-2 * (np.pi * sigma) ** 2 * (k_rows**2 + k_cols**2))
    return np.fft.fftshift(np.fft.irfft2(np.abs(spectrum) ** 2, s=(2 * rows, 2 * cols)))


def reduced_basis(vectors: np.ndarray) -> np.ndarray:
    """Lagrange-Gauss reduction of two lattice vectors: the shortest basis of the same lattice,
    shorter vector first, the angle between them 60-120 degrees."""
    u, v = np.asarray(vectors, dtype=float)
    if u @ u > v @ v:
        u, v = v, u
    while True:
        v = v - np.round((u @ v) / (u @ u)) * u
        if v @ v >= u @ u:
            return np.array([u, v])
        u, v = v, u


def _peaks(acf: np.ndarray, min_lag: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel (x, y) lags and heights of the autocorrelation's local maxima within a third
    of the crop along each axis, the zero lag and its shoulder (closer than ``min_lag`` px) left
    out."""
    centre = np.array(acf.shape) // 2
    reach = np.array(acf.shape) // 6  # a third of the crop: the padded array is twice its size
    window = acf[centre[0] - reach[0] : centre[0] + reach[0] + 1, centre[1] - reach[1] : centre[1] + reach[1] + 1]
    peaks_rc = peak_local_max(window, min_distance=2, exclude_border=True)
    lags = (peaks_rc - reach)[:, ::-1] + _vertex_offsets(window, peaks_rc)  # (row, col) -> (x, y)
    keep = np.hypot(*lags.T) >= min_lag
    return lags[keep], window[tuple(peaks_rc[keep].T)]


def _vertex_offsets(values: np.ndarray, peaks_rc: np.ndarray) -> np.ndarray:
    """(x, y) sub-pixel offsets of peaks from the vertices of parabolas through each peak pixel
    and its two neighbours along each axis (peaks are at least one pixel inside the array)."""
    r, c = peaks_rc.T
    centre = values[r, c]
    offsets = []
    for before, after in ((values[r, c - 1], values[r, c + 1]), (values[r - 1, c], values[r + 1, c])):
        curvature = before - 2 * centre + after
        offsets.append(np.where(curvature < 0, 0.5 * (before - after) / np.where(curvature < 0, curvature, -1.0), 0.0))
    return np.clip(np.column_stack(offsets), -0.5, 0.5)


def _cell_of(lags: np.ndarray) -> np.ndarray | None:
    """Reduced basis of the lattice of the strong lags, least-squares over all of them: the
    shortest lag and the shortest one more than 30 degrees off its line give the basis, every
    lag within a fifth of the shorter vector of a lattice point refines it. None without two
    such lags."""
    if len(lags) < 2:
        return None
    lengths = np.hypot(*lags.T)
    order = np.argsort(lengths, kind="stable")
    first = lags[order[0]]
    second = next((lags[i] for i in order[1:] if not _parallel(first, lags[i])), None)
    if second is None:
        return None
    basis = reduced_basis(np.array([first, second]))
    index = np.rint(lags @ np.linalg.inv(basis))
    fits = np.hypot(*(lags - index @ basis).T) < 0.2 * np.hypot(*basis[0])
    if np.linalg.matrix_rank(index[fits]) == 2:
        basis = np.linalg.lstsq(index[fits], lags[fits], rcond=None)[0]
    return reduced_basis(basis)


def _parallel(u: np.ndarray, v: np.ndarray) -> bool:
    """Whether two vectors are within 30 degrees of one line."""
    return abs(u[0] * v[1] - u[1] * v[0]) < 0.5 * np.hypot(*u) * np.hypot(*v)


def _strongest_half_lag(acf: np.ndarray, cell: np.ndarray) -> tuple[np.ndarray, float]:
    """The half lag of the cell (half of either vector, or of their sum or difference) whose
    autocorrelation stands out most, and its prominence over the cell peaks'.

    Prominence: the maximum within a radius of 0.15 x the shorter cell vector (off-centring
    splits a B sublattice's peak around the half lag) minus the maximum on the ring at
    0.25-0.35 x that length, so that only a peak counts: between two peaks of the lattice a
    half lag is a saddle, which rises towards them on the ring. A half lag and its opposite are the same site, so each of the three
    (difference and sum are equivalent) is read once, its value the mean of the two signs.
    """
    u, v = cell
    unit = np.hypot(*u)
    candidates = [u / 2, v / 2, (u + v) / 2, (u - v) / 2]
    reference = np.mean([_prominence(acf, lag, unit) for lag in (u, v)])
    prominences = [np.mean([_prominence(acf, sign * lag, unit) for sign in (1, -1)]) for lag in candidates]
    best = int(np.argmax(prominences))
    return candidates[best], float(prominences[best] / reference) if reference > 0 else 0.0


def _prominence(acf: np.ndarray, lag: np.ndarray, unit: float) -> float:
    """Peak height near ``lag`` (within 0.15 unit) above the highest point of its ring (0.25-0.35 unit)."""
    centre = np.array(acf.shape)[::-1] // 2 + lag  # (x, y) in the array
    reach = int(np.ceil(0.35 * unit)) + 1
    x0, y0 = np.rint(centre).astype(int)
    patch = acf[y0 - reach : y0 + reach + 1, x0 - reach : x0 + reach + 1]
    offsets = np.arange(-reach, reach + 1)
    dx, dy = np.meshgrid(offsets + x0 - centre[0], offsets + y0 - centre[1])
    r = np.hypot(dx, dy) / unit
    return float(patch[r <= 0.15].max() - patch[(r >= 0.25) & (r <= 0.35)].max())
