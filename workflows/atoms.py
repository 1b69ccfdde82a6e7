"""Atom columns: candidates from a filtered image, and Gaussian fits of each, alone or jointly.

- :func:`detect_columns`: maxima of a Laplacian-of-Gaussian filtered image at the column
  spacing, above a share of a typical bright column's response: the bright columns;
- :func:`refine_columns`: a 2-D Gaussian plus a constant background fitted to each column in a
  small window, all columns in batched Levenberg-Marquardt solves;
- :func:`refine_jointly`: every column refitted on the image minus the fitted profiles of all
  the others (:func:`render_columns`), so that a bright neighbour's tail pulls neither a dim
  column's position nor its peak, and the window can reach half the way to the neighbours.

The whole search for an image's columns is :func:`~.detection.find_columns`.

Coordinates are (x, y) pixels everywhere in this module's interface; scikit-image's (row, col)
peaks are converted in :func:`detect_columns`, the only place that sees them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage

from .errors import InputError
from .periodicity import Periodicity

#: Peaks weaker than this share of a typical bright column's LoG response are not candidates.
RELATIVE_PEAK_THRESHOLD = 0.15
#: A column fit whose step is below this (pixels; relative for the amplitude) has converged.
CONVERGED_PX = 1e-4
#: Columns fitted in one batch of :func:`refine_columns`: big enough for the batched solves to
#: run at full speed, small enough that the fit's arrays stay a few tens of MB.
REFINE_CHUNK = 4096
#: Fit window radius, in nearest-column spacings: alone (neighbours' tails inside the window
#: bias the fit, so it stays small) and with the neighbours subtracted (half the way to them).
ALONE_RADIUS, JOINT_RADIUS = 0.35, 0.7
JOINT_SIGMAS = 3.0
#: Rounds of the joint fit: each refits every column on the image minus all the others.
JOINT_ROUNDS = 3
#: A column's rendered profile reaches this many median widths (its tail there: 0.2 % of the peak).
RENDER_SIGMAS = 3.5


@dataclass(frozen=True)
class Columns:
    """Refined atom columns.

    Attributes
    ----------
    xy : (N, 2) float array, (x, y) pixel positions.
    amplitude : (N,) float array, fitted peak height above the local background.
    sigma : (N,) float array, fitted Gaussian width in pixels.
    spacing : float, nearest-column spacing (pixels) the detection was tuned to.
    significance : (N,) float array or None, each column's test statistic ``z`` (its peak over
        the standard error of the peak, :func:`~.completion.site_significance`), measured on
        the image minus all other columns; None when not tested.
    empty_sites : (M, 2) float array, sites of the column lattice next to the columns that the
        test found empty (predicted, no significant column): where columns are missing.
    periodicity : the image's lattice the columns were found on (:mod:`.periodicity`): which
        steps between columns are lattice steps, and whether it shows two sublattices.
    noise_inflation : how much the image's correlated noise widened the tests' standard errors
        (:func:`~.completion.noise_inflation`; 1 for independent pixels).
    """

    xy: np.ndarray
    amplitude: np.ndarray
    sigma: np.ndarray
    spacing: float
    significance: np.ndarray | None = None
    empty_sites: np.ndarray = field(default_factory=lambda: np.empty((0, 2)))
    periodicity: Periodicity | None = None
    noise_inflation: float = 1.0

    def subset(self, keep: np.ndarray) -> Columns:
        """These columns where ``keep`` (a mask or indices) holds; the rest unchanged."""
        significance = None if self.significance is None else self.significance[keep]
        return replace(self, xy=self.xy[keep], amplitude=self.amplitude[keep], sigma=self.sigma[keep],
                       significance=significance)


def detect_columns(image: np.ndarray, spacing: float) -> np.ndarray:
    """Integer (x, y) candidates: maxima of the inverted LoG at the expected column width."""
    column_sigma = max(1.0, spacing / 8)
    response = ndimage.gaussian_laplace(image, sigma=column_sigma)
    np.negative(response, out=response)  # in place: one image-sized array fewer on a full frame
    peaks_rc = local_maxima(response, min_distance=max(2, int(0.4 * spacing)))
    if len(peaks_rc) == 0:
        return np.empty((0, 2))
    strength = response[tuple(peaks_rc.T)]
    typical = np.percentile(strength, 90)
    peaks_rc = peaks_rc[strength > RELATIVE_PEAK_THRESHOLD * typical]
    return peaks_rc[:, ::-1].astype(float)  # (row, col) -> (x, y)


def local_maxima(image: np.ndarray, min_distance: int) -> np.ndarray:
    """(row, col) of the pixels that are the largest of their (2 min_distance + 1)^2 square and
    above the image's minimum, brightest first; a plateau of equal maxima gives one pixel.

    These are the peaks of skimage's ``peak_local_max(image, min_distance,
    exclude_border=False)`` but for its last pass, which checks every pair of peaks for spacing
    and only ever removes ties between separate pixels of exactly equal value: on a 2048 x 2048
    frame that pass took 1.6 s of 1.7 s and removed none of 26,000 columns.
    """
    size = 2 * min_distance + 1
    peaks = (image == ndimage.maximum_filter(image, size=size, mode="nearest")) & (image > image.min())
    plateaus, _ = ndimage.label(peaks, structure=np.ones((3, 3)))
    rows_cols = np.argwhere(peaks)  # raster order
    _, first = np.unique(plateaus[tuple(rows_cols.T)], return_index=True)
    rows_cols = rows_cols[np.sort(first)]
    return rows_cols[np.argsort(-image[tuple(rows_cols.T)], kind="stable")]


def refine_columns(image: np.ndarray, xy: np.ndarray, spacing: float, iterations: int = 12) -> Columns:
    """Fit a 2-D Gaussian plus constant to each column alone, columns in batched solves.

    The fit window has radius :data:`ALONE_RADIUS` x spacing, so neighbouring columns hardly
    reach it. Pixels outside the image get zero weight, which keeps columns on the border. A
    column whose position and width move less than :data:`CONVERGED_PX` (and its amplitude
    less than that share) in one step has converged and is not iterated further. A fit that
    wanders off (moves more than a third of the spacing or yields a non-physical width) falls
    back to the intensity-weighted centre of mass.

    Each column's fit is independent of the others, so they are solved :data:`REFINE_CHUNK` at
    a time, with the same result as one batch: the fit's arrays are a few dozen numbers per
    window pixel and column (all columns at once peaked at 440 MB on a 2048 x 2048 frame and
    grew with the area).
    """
    xy, amplitude, sigma, _ = fit_columns(image, xy, spacing, iterations=iterations)
    return Columns(xy, amplitude, sigma, spacing)


def refine_jointly(image: np.ndarray, columns: Columns, rounds: int = JOINT_ROUNDS) -> Columns:
    """Refit every column on the image minus the fitted profiles of all the others.

    Each round renders every column's current fit (:func:`render_columns`), and fits each
    column, in a window of :func:`joint_radius`, to the image minus that model plus
    its own profile: the neighbours' cores are gone from its window, what remains of their
    tails is the fit's background. A fit that fails keeps the column's previous parameters; a
    column whose fit moves its centre out of the image's pixel-centre extent is dropped (a
    column just outside the image whose tail was taken for one inside).
    """
    for _ in range(rounds):
        residual = image - render_columns(image.shape, columns)
        xy, amplitude, sigma, failed = fit_columns(residual, columns.xy, columns.spacing, joint_radius(columns),
                                                   own=(columns.amplitude, columns.sigma))
        xy[failed], amplitude[failed], sigma[failed] = columns.xy[failed], columns.amplitude[failed], columns.sigma[failed]
        columns = replace(columns, xy=xy, amplitude=amplitude, sigma=sigma).subset(inside_image(xy, image.shape))
    return columns


def inside_image(xy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Which points lie within the pixel-centre extent [0, cols - 1] x [0, rows - 1]."""
    rows, cols = shape
    return (xy[:, 0] >= 0) & (xy[:, 0] <= cols - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= rows - 1)


def joint_radius(columns: Columns) -> float:
    """Radius of a joint fit's window, in column spacings: :data:`JOINT_SIGMAS` median column
    widths, which hold the column's own profile, within :data:`JOINT_RADIUS` (its neighbours
    are subtracted, so the window may pass the midpoint to them, not reach their cores)."""
    return float(np.clip(JOINT_SIGMAS * np.median(columns.sigma) / columns.spacing, ALONE_RADIUS, JOINT_RADIUS))


def fit_columns(image: np.ndarray, xy: np.ndarray, spacing: float, radius_spacings: float = ALONE_RADIUS, *,
                own: tuple[np.ndarray, np.ndarray] | None = None, iterations: int = 12):
    """(xy, amplitude, sigma, failed) of Gaussian-plus-constant fits at ``xy``, in chunks.

    ``own``: (amplitude, sigma) of each column's current fit at ``xy``, added back to its
    window before the fit (``image`` is then a residual with every column subtracted), and the
    fit starts from it; otherwise it starts from the window's centre of mass.
    """
    if len(xy) == 0:
        return np.empty((0, 2)), np.empty(0), np.empty(0), np.empty(0, dtype=bool)
    radius = _radius(spacing, radius_spacings)
    padded = np.pad(image, radius + 1, mode="constant")
    chunks = range(0, len(xy), REFINE_CHUNK)
    parts = [_fit_chunk(padded, image.shape, xy[start : start + REFINE_CHUNK], radius, spacing, iterations,
                        None if own is None else tuple(o[start : start + REFINE_CHUNK] for o in own))
             for start in chunks]
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(4))


def _radius(spacing: float, radius_spacings: float) -> int:
    """A fit window's radius in whole pixels (at least 2)."""
    return max(2, int(round(radius_spacings * spacing)))


def _fit_chunk(padded, shape, xy, radius, spacing, iterations, own):
    """(xy, amplitude, sigma, failed) of the columns ``xy``: :func:`fit_columns` on one batch."""
    offsets = np.arange(-radius, radius + 1)
    dx, dy = np.meshgrid(offsets, offsets)  # window pixel offsets, (y, x) grid
    origin = np.rint(xy).astype(int)
    cols = origin[:, 0, None, None] + dx + radius + 1
    rows = origin[:, 1, None, None] + dy + radius + 1
    values = padded[rows, cols]  # (N, w, w)
    pad = radius + 1  # pixels of the padding weigh 0, those of the image 1
    weights = ((rows >= pad) & (rows < shape[0] + pad) & (cols >= pad) & (cols < shape[1] + pad)).astype(padded.dtype)
    del rows, cols
    px = (origin[:, 0, None, None] + dx).astype(float)
    py = (origin[:, 1, None, None] + dy).astype(float)

    if own is None:
        start = _centre_of_mass(values, weights, px, py)
        params = _initial_parameters(values, weights, start, spacing)
    else:
        amplitude, sigma = own
        r2 = (px - xy[:, 0, None, None]) ** 2 + (py - xy[:, 1, None, None]) ** 2
        profile = np.exp(-r2 / (2 * sigma[:, None, None] ** 2)) * weights
        values = values + amplitude[:, None, None] * profile
        start = xy.astype(float)
        params = np.column_stack([*_linear_peak_and_background(values, profile, weights), start, sigma])[:, [0, 2, 3, 4, 1]]
    active = np.ones(len(params), dtype=bool)  # columns still moving; converged ones stop
    for _ in range(iterations):
        step = _levenberg_marquardt_step(params[active], values[active], weights[active], px[active], py[active],
                                         spacing)
        params[active] += step
        still = (np.abs(step[:, 1:4]).max(axis=1) > CONVERGED_PX) | (
            np.abs(step[:, 0]) > CONVERGED_PX * np.abs(params[active, 0]))
        active[active] = still
        if not active.any():
            break

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
    return params[:, 1:3].copy(), amplitude, params[:, 3].copy(), failed


def render_columns(shape: tuple[int, int], columns: Columns) -> np.ndarray:
    """The columns' fitted Gaussians summed on the pixel grid: the model whose subtraction leaves
    a column's neighbours out of its fit and its test. Each is drawn out to
    :data:`RENDER_SIGMAS` times the columns' median width (a wider fit is cut there)."""
    rows, cols = shape
    reach = int(np.ceil(RENDER_SIGMAS * np.median(columns.sigma))) if len(columns.xy) else 0
    offsets = np.arange(-reach, reach + 1)
    origin = np.rint(columns.xy).astype(int)
    px = origin[:, 0, None] + offsets  # (N, w)
    py = origin[:, 1, None] + offsets
    two_s2 = 2 * columns.sigma[:, None] ** 2
    gx = np.exp(-((px - columns.xy[:, 0, None]) ** 2) / two_s2)
    gy = columns.amplitude[:, None] * np.exp(-((py - columns.xy[:, 1, None]) ** 2) / two_s2)
    values = gy[:, :, None] * gx[:, None, :]
    inside = ((py >= 0) & (py < rows))[:, :, None] & ((px >= 0) & (px < cols))[:, None, :]
    index = py[:, :, None] * cols + px[:, None, :]
    return np.bincount(index[inside], weights=values[inside], minlength=rows * cols).reshape(rows, cols)


def _linear_peak_and_background(values, profile, weights):
    """(amplitude, background) per window that fit ``values`` best for a fixed ``profile`` (a
    2 x 2 least-squares solve each): a joint fit starts there, so a column that has not moved
    converges in one step. A window without a profile keeps amplitude 0 and its mean."""
    n = len(values)
    g, v, w = profile.reshape(n, -1), (values * weights).reshape(n, -1), weights.reshape(n, -1)
    sgg, sg, sw, sgv, sv = (g * g).sum(1), g.sum(1), w.sum(1), (g * v).sum(1), v.sum(1)
    det = sgg * sw - sg * sg
    ok = det > 1e-12 * np.maximum(sgg * sw, 1e-300)
    safe = np.where(ok, det, 1.0)
    amplitude = np.where(ok, (sgv * sw - sg * sv) / safe, 0.0)
    background = np.where(ok, (sgg * sv - sg * sgv) / safe, sv / np.maximum(sw, 1e-300))
    return amplitude, background


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
    flat = values.reshape(len(values), -1)
    background = np.percentile(flat, 10, axis=1)
    peak = flat.max(axis=1)
    on_border = (weights == 0).any(axis=(1, 2))  # pixels outside the image do not count
    if on_border.any():
        inside = np.where(weights[on_border] > 0, values[on_border], np.nan).reshape(int(on_border.sum()), -1)
        background[on_border] = np.nanpercentile(inside, 10, axis=1)
        peak[on_border] = np.nanmax(inside, axis=1)
    sigma = np.full(len(values), max(1.0, spacing / 8))
    return np.column_stack([peak - background, start, sigma, background])


def _levenberg_marquardt_step(params, values, weights, px, py, spacing, damping=1e-3):
    """The damped Gauss-Newton step of every column's Gaussian model, batched."""
    n = len(params)
    amplitude, x0, y0, sigma, background = (params[:, i, None, None] for i in range(5))
    ddx, ddy = px - x0, py - y0
    r2 = ddx**2 + ddy**2
    gauss = np.exp(-r2 / (2 * sigma**2))
    residual = (values - (amplitude * gauss + background)) * weights
    weighted = amplitude * gauss * weights / sigma**2
    jac_t = np.empty((n, 5, values[0].size))  # (column, parameter, pixel)
    jac_t[:, 0] = (gauss * weights).reshape(n, -1)
    jac_t[:, 1] = (weighted * ddx).reshape(n, -1)
    jac_t[:, 2] = (weighted * ddy).reshape(n, -1)
    jac_t[:, 3] = (weighted * r2 / sigma).reshape(n, -1)
    jac_t[:, 4] = weights.reshape(n, -1)
    normal = jac_t @ jac_t.transpose(0, 2, 1)  # batched products (BLAS): the fit's main cost
    normal = normal + damping * normal * np.eye(5)  # Marquardt: scale-free, per parameter
    gradient = (jac_t @ residual.reshape(n, -1, 1))[..., 0]
    # A flat window (zero amplitude) makes its matrix exactly singular; a ridge far below the
    # matrix's scale keeps solve() from failing for the whole image and gives such a column no
    # step in the directions it cannot see (as a pseudo-inverse would), so it fails below.
    ridge = 1e-12 * np.abs(np.diagonal(normal, axis1=1, axis2=2)).max(axis=1) + 1e-300
    with np.errstate(all="ignore"):
        step = np.linalg.solve(normal + ridge[:, None, None] * np.eye(5), gradient[..., None])[..., 0]
    step = np.nan_to_num(step)
    limit = spacing / 10  # at most a tenth of the spacing per iteration
    step[:, 1:3] = np.clip(step[:, 1:3], -limit, limit)
    step[:, 3] = np.clip(step[:, 3], -0.5 * params[:, 3], 0.5 * params[:, 3])
    return step
