"""The second sublattice from the lattice: predict every column site, then test each one.

Bright columns are easy to find; the dim B columns of a real perovskite (Fe and Ti peaks are
0.1-0.25 of Bi and Pb by Z-contrast) drown in one brightness threshold for the whole image.
The lattice says where they must be: the image's autocorrelation
(:mod:`.periodicity`) gives the *column lattice*, on which every cation column sits, and
each column found predicts its neighbours on it. The predictions of one site from its
neighbours are averaged, so a B site predicted by its four A neighbours sits at the centre of
its cage whatever the strain. Then each predicted site is tested on its own:

**The test.** On the image minus the fitted profiles of every column already found (so that
the tails of bright neighbours do not count), a least-squares fit in a disk around the
predicted position of ``amplitude x profile + background plane`` (the profile a Gaussian of
the columns' median width, fixed at the predicted position). Its statistic is the fitted
amplitude over its standard error, ``z``, from the residual variance of that fit, so the
noise is measured where the column is (shot noise grows with the signal), widened by the
measured correlation of the noise between pixels (:func:`noise_inflation`: 1 for shot
noise, 2-3 for the smoothed images many microscopes write). A site holds a column when its
``z`` passes the Benjamini-Hochberg procedure at a false discovery rate of
:data:`FALSE_DISCOVERY_RATE` (one-sided normal p-values): about that share of the columns
added are noise, whatever the B/A ratio, the dose or the number of sites. No brightness
threshold is involved, so a B/A ratio of 0.05 or of 1.5, and a layer where the order flips,
are treated alike. Where a whole sublattice is weak, each of its columns a few noise widths up,
a site is also taken when it looks like its sublattice's columns around it more than like
nothing (:func:`typical_of_their_sublattice`).

Accepted sites are fitted (position, width, amplitude) and predict their own neighbours in the
next round, so the lattice grows from wherever columns were found into regions where none were,
up to the border: a column half a cell inside the image is predicted from its inner
neighbours, where midpoints between pairs would lose the outer row. Sites still empty at the
end are :attr:`~.atoms.Columns.empty_sites`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import ndimage, signal
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from scipy.stats import norm

from .atoms import REFINE_CHUNK, Columns, fit_columns, inside_image, joint_radius, refine_jointly, render_columns
from .periodicity import Periodicity

#: Expected share of false columns among the predicted sites that the test accepts.
FALSE_DISCOVERY_RATE = 0.01
#: Predictions closer than this share of the column spacing are one site; a site this close to
#: a column found is that column.
SAME_SITE = 0.3
#: Radius of the test's disk, in column spacings: half the way to the nearest neighbour site.
TEST_RADIUS = 0.4
#: Rounds of prediction at most; each grows the columns found by one step of the lattice.
MAX_ROUNDS = 6
#: The noise's correlation is measured on at most this many pixels each way, from the centre.
NOISE_CROP = 512
#: A site's sublattice neighbourhood (:func:`typical_of_their_sublattice`): within this many
#: cells, at least MIN_NEIGHBOURS sites, whose median z of PLAIN_Z or more shows the sublattice.
NEIGHBOURHOOD_CELLS, MIN_NEIGHBOURS, PLAIN_Z = 1.5, 5, 2.0


def complete_columns(image: np.ndarray, columns: Columns, periodicity: Periodicity) -> Columns:
    """The columns found plus every predicted site that holds one, all fitted jointly.

    1. Rounds of :func:`predict_sites` and :func:`site_significance` on the image minus the
       columns' fitted profiles: the sites the Benjamini-Hochberg procedure accepts join the
       columns (fitted on that residual from the test's peak and the columns' median width)
       and predict their own neighbours in the next round; a site found empty is not tested
       again.
    2. Every column is fitted jointly (:func:`~.atoms.refine_jointly`).
    3. Every column, found or predicted, where it was fitted, and every site found empty, is
       tested again against the image minus all the columns, its ``z`` divided by the noise's
       correlation (:func:`noise_inflation`, measured on that residual, where every column is
       accounted for: a filtered image's noise peaks are as wide as columns and would pass a
       test that assumes independent pixels). A site holds a column when the procedure accepts
       it, or when it is typical of its sublattice where that sublattice plainly shows
       (:func:`typical_of_their_sublattice`). The rest are the empty sites.
    """
    columns = replace(columns, spacing=periodicity.column_spacing, periodicity=periodicity)
    columns, empty = _grown(image, columns, periodicity)
    return _tested(image, refine_jointly(image, columns), empty, periodicity)


def _grown(image: np.ndarray, columns: Columns, periodicity: Periodicity) -> tuple[Columns, np.ndarray]:
    """Step 1 of :func:`complete_columns`: the columns with every accepted predicted site, and
    the sites found empty."""
    cell, radius = periodicity.column_cell, TEST_RADIUS * periodicity.column_spacing
    sigma = float(np.median(columns.sigma))
    residual = image - render_columns(image.shape, columns)
    empty = np.empty((0, 2))  # sites tested and found empty, never tested again
    generators = columns.xy
    for _ in range(MAX_ROUNDS):
        sites = predict_sites(generators, cell, image.shape, taken=np.vstack([columns.xy, empty]))
        amplitude, z = site_significance(residual, sites, sigma, radius)
        found = accepted(z)
        empty = np.vstack([empty, sites[~found]])
        if not found.any():
            break
        new, _ = _fitted(residual, sites[found], amplitude[found], sigma, columns)
        residual -= render_columns(image.shape, new)
        columns = _together(columns, new)
        # only sites next to the new columns are new; all their neighbours predict them
        near_new = cKDTree(new.xy).query(columns.xy, distance_upper_bound=2.5 * periodicity.column_spacing)[0] < np.inf
        generators = columns.xy[near_new]
    return columns, empty


def _tested(image: np.ndarray, columns: Columns, empty: np.ndarray, periodicity: Periodicity) -> Columns:
    """Step 3 of :func:`complete_columns`: the columns and empty sites that hold a column, with
    their ``z``; the others are the empty sites."""
    radius = TEST_RADIUS * periodicity.column_spacing
    residual = image - render_columns(image.shape, columns)
    sigma = float(np.median(columns.sigma))
    inflation = noise_inflation(residual, sigma, radius)
    z_found = site_significance(residual, columns.xy, sigma, radius, own=(columns.amplitude, columns.sigma))[1]
    amplitude_empty, z_empty = site_significance(residual, empty, sigma, radius)
    z = np.concatenate([z_found, z_empty]) / inflation
    sites = np.vstack([columns.xy, empty])
    holds = accepted(z) | typical_of_their_sublattice(sites, z, periodicity.cell)
    n = len(columns.xy)
    kept = replace(columns, significance=z[:n]).subset(holds[:n])
    filled, inside = _fitted(residual, empty[holds[n:]], amplitude_empty[holds[n:]], sigma, columns)
    filled = replace(filled, significance=z[n:][holds[n:]][inside])
    return replace(_together(kept, filled), empty_sites=sites[~holds], noise_inflation=inflation)


def typical_of_their_sublattice(xy: np.ndarray, z: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Sites whose ``z`` is nearer their sublattice's typical column there than to no column.

    A site's sublattice neighbours are the sites within :data:`NEIGHBOURHOOD_CELLS` cells that
    a whole number of cell vectors away (the same sublattice: a site of the other one sits
    half a cell off). Where their median ``z``, ``m``, reaches :data:`PLAIN_Z` over at least
    :data:`MIN_NEIGHBOURS` of them, the sublattice plainly shows there (that many empty sites
    with half of them 2 noise widths up: about 1e-4); a site of it then holds a column when
    ``z > m / 2``, the likelier of "a column like its neighbours'" and "none" for Gaussian
    noise of unit width and even odds. So a weak sublattice (Ti beside Pb at a dose that puts
    each column 1-4 noise widths up) is kept where it is, without the one-by-one bar that
    its columns straddle, and a site where the sublattice stops (vacuum, a layer without it)
    stays empty: its neighbours there are empty too.
    """
    n = len(xy)
    if n == 0:
        return np.zeros(0, dtype=bool)
    reach = NEIGHBOURHOOD_CELLS * np.hypot(*cell).max()
    pairs = cKDTree(xy).query_pairs(reach, output_type="ndarray")
    if len(pairs) == 0:
        return np.zeros(n, dtype=bool)
    fraction = (xy[pairs[:, 1]] - xy[pairs[:, 0]]) @ np.linalg.inv(cell)
    whole = np.all(np.abs(fraction - np.round(fraction)) < 0.25, axis=1)
    pairs = pairs[whole]
    site, neighbour = np.concatenate([pairs[:, 0], pairs[:, 1]]), np.concatenate([pairs[:, 1], pairs[:, 0]])
    order = np.lexsort((z[neighbour], site))  # by site, then by the neighbour's z
    site, values = site[order], z[neighbour][order]
    count = np.bincount(site, minlength=n)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    median = np.where(count > 0, values[np.minimum(start + count // 2, len(values) - 1)], -np.inf)
    plain = (count >= MIN_NEIGHBOURS) & (median >= PLAIN_Z)
    # even odds moved by how many of the neighbours look like columns (at least 1 in 20 each way)
    like_columns = np.bincount(site, weights=values > np.repeat(median, count) / 2, minlength=n)
    share = np.clip(like_columns / np.maximum(count, 1), 0.05, 0.95)
    with np.errstate(divide="ignore", invalid="ignore"):
        bar = median / 2 - np.log(share / (1 - share)) / median
    return plain & (z > bar)


def _together(columns: Columns, more: Columns) -> Columns:
    """``columns`` followed by ``more`` (their statistics too, where both have them)."""
    significance = None if columns.significance is None or more.significance is None else np.concatenate(
        [columns.significance, more.significance])
    return replace(columns, xy=np.vstack([columns.xy, more.xy]), amplitude=np.concatenate([columns.amplitude, more.amplitude]),
                   sigma=np.concatenate([columns.sigma, more.sigma]), significance=significance)


def _fitted(residual: np.ndarray, xy: np.ndarray, amplitude: np.ndarray, sigma: float,
            columns: Columns) -> tuple[Columns, np.ndarray]:
    """New columns at ``xy``, fitted on ``residual`` (the image minus ``columns``) from the
    test's amplitude and ``sigma``, and which of ``xy`` they are: a failed fit keeps those
    values, a fit whose centre leaves the image drops the column."""
    start = (amplitude, np.full(len(xy), sigma))
    fitted_xy, fitted_amplitude, fitted_sigma, failed = fit_columns(residual, xy, columns.spacing, joint_radius(columns),
                                                                    own=start)
    fitted_xy[failed], fitted_amplitude[failed], fitted_sigma[failed] = xy[failed], start[0][failed], start[1][failed]
    inside = inside_image(fitted_xy, residual.shape)
    return Columns(fitted_xy[inside], fitted_amplitude[inside], fitted_sigma[inside], columns.spacing), inside


def noise_inflation(residual: np.ndarray, sigma: float, radius: float) -> float:
    """How many times the test's standard error grows because the noise of ``residual`` is
    correlated between pixels (at least 1).

    The test's amplitude is a weighted sum of the disk's pixels, ``a = w . v``; its variance is
    ``sum_ij w_i w_j C(p_i - p_j)`` for noise of covariance C, against ``sum_i w_i^2 C(0)``
    for independent pixels. C is the autocorrelation of the residual (its central
    :data:`NOISE_CROP` pixels each way) after a high-pass of the disk's radius (the test fits a plane per disk, so slower variations do not count); what
    remains is noise and whatever the column model misses, both of which the test must not
    mistake for a column. Shot noise alone gives 1; a smoothed image (many detectors and
    drift-corrected series) 2-3.
    """
    rows, cols = residual.shape
    top, left = max(0, (rows - NOISE_CROP) // 2), max(0, (cols - NOISE_CROP) // 2)
    residual = residual[top : top + NOISE_CROP, left : left + NOISE_CROP]  # stationary noise: a crop tells
    highpass = residual - ndimage.gaussian_filter(residual, radius)
    highpass -= highpass.mean()
    weights = _amplitude_weights(sigma, radius)
    reach = weights.shape[0] // 2
    lags = 2 * reach  # the weights' autocorrelation reaches twice their radius
    spectrum = np.fft.rfft2(highpass, s=(highpass.shape[0] + lags, highpass.shape[1] + lags))
    covariance = np.fft.irfft2(np.abs(spectrum) ** 2, s=(highpass.shape[0] + lags, highpass.shape[1] + lags))
    covariance = np.roll(covariance, (lags, lags), axis=(0, 1))[: 2 * lags + 1, : 2 * lags + 1]
    pairs = signal.correlate(weights, weights, mode="full")  # sum over i of w_i w_(i + lag)
    white = pairs[lags, lags] * covariance[lags, lags]
    return float(np.sqrt(max((pairs * covariance).sum() / white, 1.0))) if white > 0 else 1.0


def _amplitude_weights(sigma: float, radius: float) -> np.ndarray:
    """The weights of the pixels of a whole disk in the test's amplitude (:func:`site_significance`
    at a pixel centre), as a square array (zero outside the disk)."""
    reach = int(np.ceil(radius))
    offsets = np.arange(-reach, reach + 1)
    dx, dy = np.meshgrid(offsets, offsets)
    disk = dx**2 + dy**2 <= radius**2
    design = np.stack([np.exp(-(dx**2 + dy**2) / (2 * sigma**2)), np.ones(dx.shape), dx, dy], axis=-1)[disk]
    weights = np.zeros(dx.shape)
    weights[disk] = np.linalg.solve(design.T @ design, design.T)[0]
    return weights


def lattice_neighbour_steps(column_cell: np.ndarray) -> np.ndarray:
    """(8, 2) steps (x, y) px from a column to its neighbours on the column lattice: along both
    cell vectors and both diagonals, each way."""
    u, v = column_cell
    return np.array([u, -u, v, -v, u + v, -u - v, u - v, v - u])


def predict_sites(xy: np.ndarray, column_cell: np.ndarray, shape: tuple[int, int],
                  taken: np.ndarray | None = None) -> np.ndarray:
    """Sites (x, y) on the column lattice next to the columns ``xy`` where none of ``taken``
    (default: ``xy``) is.

    Each column predicts its eight lattice neighbours; predictions of one site (within
    :data:`SAME_SITE` column spacings of each other) are averaged. Sites outside the image's
    pixel-centre extent [0, cols - 1] x [0, rows - 1] are left out.
    """
    spacing = float(np.hypot(*column_cell[0]))
    predictions = (xy[:, None, :] + lattice_neighbour_steps(column_cell)[None]).reshape(-1, 2)
    predictions = predictions[inside_image(predictions, shape)]
    taken = xy if taken is None else taken
    if len(taken) and len(predictions):
        near = cKDTree(taken).query(predictions, distance_upper_bound=SAME_SITE * spacing)[0] < np.inf
        predictions = predictions[~near]
    if len(predictions) == 0:
        return np.empty((0, 2))
    pairs = cKDTree(predictions).query_pairs(SAME_SITE * spacing, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(predictions),) * 2)
    _, site = connected_components(graph, directed=False)
    counts = np.bincount(site)
    return np.column_stack([np.bincount(site, weights=predictions[:, k]) / counts for k in range(2)])


def site_significance(residual: np.ndarray, xy: np.ndarray, sigma: float, radius: float, *,
                      own: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(amplitude, z) of a column of width ``sigma`` at each site ``xy`` of ``residual``.

    Least squares in the disk of ``radius`` px around each site (pixels outside the image left
    out) of ``amplitude x exp(-r^2 / 2 sigma^2) + b0 + b1 dx + b2 dy``, the position held;
    ``z`` = amplitude / its standard error, the residual variance estimated from the same disk.
    ``own``: (amplitude, sigma) of a column fitted at each site and subtracted in ``residual``,
    added back first, so that a column is tested against the image minus the others only. A
    site whose disk has too few pixels to estimate it gets z = 0.
    """
    if len(xy) > REFINE_CHUNK:  # a few dozen numbers per disk pixel and site: in chunks, as the fits
        parts = [site_significance(residual, xy[k : k + REFINE_CHUNK], sigma, radius,
                                   own=None if own is None else tuple(o[k : k + REFINE_CHUNK] for o in own))
                 for k in range(0, len(xy), REFINE_CHUNK)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    if len(xy) == 0:
        return np.zeros(0), np.zeros(0)
    rows, cols = residual.shape
    reach = int(np.ceil(radius))
    offsets = np.arange(-reach, reach + 1)
    dx, dy = np.meshgrid(offsets, offsets)
    origin = np.rint(xy).astype(int)
    px = origin[:, 0, None, None] + dx
    py = origin[:, 1, None, None] + dy
    ddx, ddy = px - xy[:, 0, None, None], py - xy[:, 1, None, None]
    weight = ((ddx**2 + ddy**2 <= radius**2) & (px >= 0) & (px < cols) & (py >= 0) & (py < rows)).astype(float)
    values = residual[np.clip(py, 0, rows - 1), np.clip(px, 0, cols - 1)]
    if own is not None:
        values = values + own[0][:, None, None] * np.exp(-(ddx**2 + ddy**2) / (2 * own[1][:, None, None] ** 2))
    values = values * weight
    n = len(xy)
    design = np.stack([np.exp(-(ddx**2 + ddy**2) / (2 * sigma**2)), np.ones_like(ddx, dtype=float), ddx, ddy], axis=1)
    design = (design * weight[:, None]).reshape(n, 4, -1)
    normal = design @ design.transpose(0, 2, 1)
    moments = (design @ values.reshape(n, -1, 1))[..., 0]
    pixels = weight.reshape(n, -1).sum(axis=1)
    solvable = (pixels > 8) & (np.linalg.det(normal) > 0)
    amplitude, z = np.zeros(n), np.zeros(n)
    if solvable.any():
        inverse = np.linalg.inv(normal[solvable])
        coefficients = (inverse @ moments[solvable][..., None])[..., 0]
        fitted = (design[solvable].transpose(0, 2, 1) @ coefficients[..., None])[..., 0]
        rss = ((values.reshape(n, -1)[solvable] - fitted) ** 2).sum(axis=1)
        variance = rss / (pixels[solvable] - 4)
        error = np.sqrt(np.maximum(variance * inverse[:, 0, 0], 1e-300))
        amplitude[solvable] = coefficients[:, 0]
        z[solvable] = coefficients[:, 0] / error
    return amplitude, z


def accepted(z: np.ndarray, rate: float = FALSE_DISCOVERY_RATE) -> np.ndarray:
    """Which tests pass the Benjamini-Hochberg procedure at false discovery rate ``rate`` (one-sided
    normal p-values of ``z``)."""
    if len(z) == 0:
        return np.zeros(0, dtype=bool)
    p = norm.sf(z)
    order = np.argsort(p)
    passing = p[order] <= rate * np.arange(1, len(p) + 1) / len(p)
    keep = np.zeros(len(z), dtype=bool)
    if passing.any():
        keep[order[: np.flatnonzero(passing).max() + 1]] = True
    return keep
