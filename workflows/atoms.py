"""Find atom columns in a HAADF-STEM image and refine them to sub-pixel accuracy.

The pipeline is: estimate the nearest-column spacing from the image autocorrelation, detect
candidate columns as maxima of a Laplacian-of-Gaussian filtered image, then fit each column
with a 2-D Gaussian plus a constant background (a batched Levenberg-Marquardt fit over all
columns at once). Sublattice assignment and the lattice geometry live in :mod:`.lattice`.

Coordinates are (x, y) pixels everywhere in this module's interface; scikit-image's (row, col)
peaks are converted in :func:`detect_columns`, the only place that sees them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.feature import peak_local_max

from .errors import InputError

#: Peaks weaker than this share of a typical bright column's LoG response are noise.
RELATIVE_PEAK_THRESHOLD = 0.15


@dataclass(frozen=True)
class Columns:
    """Refined atom columns.

    Attributes
    ----------
    xy : (N, 2) float array, (x, y) pixel positions.
    amplitude : (N,) float array, fitted peak height above the local background.
    sigma : (N,) float array, fitted Gaussian width in pixels.
    spacing : float, nearest-column spacing (pixels) the detection was tuned to.
    """

    xy: np.ndarray
    amplitude: np.ndarray
    sigma: np.ndarray
    spacing: float


def find_columns(image: np.ndarray) -> Columns:
    """Detect and refine every atom column in ``image`` (a validated 2-D float array)."""
    spacing = estimate_column_spacing(image)
    candidates = detect_columns(image, spacing)
    if len(candidates) < 4:
        raise InputError(
            f"found only {len(candidates)} atom columns in the image (column spacing estimated as "
            f"{spacing:.1f} px); check that it is an atomically resolved image with bright columns "
            "on a dark background (invert it if the contrast is reversed)"
        )
    columns = refine_columns(image, candidates, spacing)
    return _within_image(columns, image.shape)


def _within_image(columns: Columns, shape: tuple[int, int]) -> Columns:
    """Keep columns centred within the pixel-centre extent [0, size - 1] of the image.

    Candidates on the border are often columns just outside it, whose tails peak at the edge.
    """
    rows, cols = shape
    x, y = columns.xy.T
    keep = (x >= 0) & (x <= cols - 1) & (y >= 0) & (y <= rows - 1)
    return Columns(columns.xy[keep], columns.amplitude[keep], columns.sigma[keep], columns.spacing)


def estimate_column_spacing(image: np.ndarray) -> float:
    """Distance (px) between nearest columns, from the nearest strong autocorrelation peak.

    The autocorrelation averages over the whole image, so it is robust to noise; slow
    background variations are removed first so that they do not dominate it.
    """
    rows, cols = image.shape
    flattened = image - ndimage.gaussian_filter(image, sigma=min(rows, cols) / 8)
    flattened = flattened - flattened.mean()
    power = np.abs(np.fft.rfft2(flattened, s=(2 * rows, 2 * cols))) ** 2  # zero-padded: no wrap
    autocorr = np.fft.fftshift(np.fft.irfft2(power, s=(2 * rows, 2 * cols)))
    centre = np.array(autocorr.shape) // 2
    reach = min(rows, cols) // 3
    window = autocorr[
        centre[0] - reach : centre[0] + reach + 1, centre[1] - reach : centre[1] + reach + 1
    ]
    peaks = peak_local_max(window, min_distance=2, exclude_border=True)
    lags = np.hypot(*(peaks - reach).T)
    heights = window[tuple(peaks.T)]
    keep = lags >= 3
    lags, heights = lags[keep], heights[keep]
    strong = heights >= 0.25 * heights.max() if heights.size else np.array([], bool)
    if not strong.any():
        raise InputError(
            "no periodic lattice found in the image autocorrelation; ferrogym needs an atomically "
            "resolved image with at least three unit cells across"
        )
    return float(lags[strong].min())


def detect_columns(image: np.ndarray, spacing: float) -> np.ndarray:
    """Integer (x, y) candidates: maxima of the inverted LoG at the expected column width."""
    column_sigma = max(1.0, spacing / 8)
    response = -ndimage.gaussian_laplace(image, sigma=column_sigma)
    peaks_rc = peak_local_max(
        response, min_distance=max(2, int(0.4 * spacing)), exclude_border=False
    )
    if len(peaks_rc) == 0:
        return np.empty((0, 2))
    strength = response[tuple(peaks_rc.T)]
    typical = np.percentile(strength, 90)
    peaks_rc = peaks_rc[strength > RELATIVE_PEAK_THRESHOLD * typical]
    return peaks_rc[:, ::-1].astype(float)  # (row, col) -> (x, y)


def refine_columns(image: np.ndarray, xy: np.ndarray, spacing: float, iterations: int = 12) -> Columns:
    """Fit a 2-D Gaussian plus constant to each column, all columns in one batched solve.

    The fit window has radius 0.35 x spacing, so neighbouring columns hardly reach it. Pixels
    outside the image get zero weight, which keeps columns on the border. A fit that wanders
    off (moves more than a third of the spacing or yields a non-physical width) falls back to
    the intensity-weighted centre of mass.
    """
    radius = max(2, int(round(0.35 * spacing)))
    offsets = np.arange(-radius, radius + 1)
    dx, dy = np.meshgrid(offsets, offsets)  # window pixel offsets, (y, x) grid
    padded = np.pad(image, radius + 1, mode="constant")
    weight_image = np.pad(np.ones_like(image), radius + 1, mode="constant")
    origin = np.rint(xy).astype(int)
    cols = origin[:, 0, None, None] + dx + radius + 1
    rows = origin[:, 1, None, None] + dy + radius + 1
    values = padded[rows, cols]  # (N, w, w)
    weights = weight_image[rows, cols]
    px = (origin[:, 0, None, None] + dx).astype(float)
    py = (origin[:, 1, None, None] + dy).astype(float)

    start = _centre_of_mass(values, weights, px, py)
    params = _initial_parameters(values, weights, start, spacing)
    for _ in range(iterations):
        params = _levenberg_marquardt_step(params, values, weights, px, py, spacing)

    moved = np.hypot(*(params[:, 1:3] - start).T)
    failed = (
        ~np.isfinite(params).all(axis=1)
        | (moved > spacing / 3)
        | (params[:, 3] < 0.3)
        | (params[:, 3] > spacing / 2)
        | (params[:, 0] <= 0)
    )
    params[failed, 1:3] = start[failed]
    amplitude = np.where(failed, values.max(axis=(1, 2)) - np.median(values, axis=(1, 2)), params[:, 0])
    return Columns(xy=params[:, 1:3].copy(), amplitude=amplitude, sigma=params[:, 3], spacing=spacing)


def _centre_of_mass(values, weights, px, py):
    """Background-subtracted intensity centroid per window, within half the fit radius."""
    background = np.min(np.where(weights > 0, values, np.inf), axis=(1, 2))[:, None, None]
    mass = np.clip(values - background, 0, None) * weights
    centre_x = px[:, px.shape[1] // 2, px.shape[2] // 2][:, None, None]
    centre_y = py[:, py.shape[1] // 2, py.shape[2] // 2][:, None, None]
    half = px.shape[1] // 4 + 1
    mass = mass * ((np.abs(px - centre_x) <= half) & (np.abs(py - centre_y) <= half))
    total = mass.sum(axis=(1, 2))
    has_mass = total > 0
    total = np.where(has_mass, total, 1.0)
    centroid = np.stack([(mass * px).sum(axis=(1, 2)) / total, (mass * py).sum(axis=(1, 2)) / total], axis=1)
    window_centre = np.stack([centre_x[:, 0, 0], centre_y[:, 0, 0]], axis=1)
    return np.where(has_mass[:, None], centroid, window_centre)  # a flat window keeps its centre


def _initial_parameters(values, weights, start, spacing):
    """[amplitude, x, y, sigma, background] starting values per column."""
    inside = np.where(weights > 0, values, np.nan)
    background = np.nanpercentile(inside.reshape(len(values), -1), 10, axis=1)
    peak = np.nanmax(inside.reshape(len(values), -1), axis=1)
    sigma = np.full(len(values), max(1.0, spacing / 8))
    return np.column_stack([peak - background, start, sigma, background])


def _levenberg_marquardt_step(params, values, weights, px, py, spacing, damping=1e-3):
    """One damped Gauss-Newton update of every column's Gaussian model, batched."""
    amplitude, x0, y0, sigma, background = (params[:, i, None, None] for i in range(5))
    ddx, ddy = px - x0, py - y0
    gauss = np.exp(-(ddx**2 + ddy**2) / (2 * sigma**2))
    residual = (values - (amplitude * gauss + background)) * weights
    jacobian = np.stack(
        [
            gauss,
            amplitude * gauss * ddx / sigma**2,
            amplitude * gauss * ddy / sigma**2,
            amplitude * gauss * (ddx**2 + ddy**2) / sigma**3,
            np.ones_like(gauss),
        ],
        axis=-1,
    ) * weights[..., None]
    jac = jacobian.reshape(len(params), -1, 5)
    normal = np.einsum("npi,npj->nij", jac, jac)
    normal = normal + damping * normal * np.eye(5)  # Marquardt: scale-free, per parameter
    gradient = np.einsum("npi,np->ni", jac, residual.reshape(len(params), -1))
    with np.errstate(all="ignore"):
        # pinv, not solve: a flat window (zero amplitude) makes its matrix exactly singular,
        # which made solve() raise for the whole image; such columns get no step and fail below.
        step = (np.linalg.pinv(normal) @ gradient[..., None])[..., 0]
    step = np.nan_to_num(step)
    limit = spacing / 10  # at most a tenth of the spacing per iteration
    step[:, 1:3] = np.clip(step[:, 1:3], -limit, limit)
    step[:, 3] = np.clip(step[:, 3], -0.5 * params[:, 3], 0.5 * params[:, 3])
    return params + step
