"""From column positions to a perovskite lattice: sublattices, cages, displacements, cells.

An ABO3 perovskite along [001] projects to A columns on a square lattice of constant ``a`` and
B columns at the cell centres. Nearest columns are therefore A-B pairs at ``a / sqrt(2)``, and
next-nearest ones (``a``) pairs of one sublattice; the same holds for [110]-type views with B
midway along the long side of rectangular cells. The sublattices are told apart by that
geometry (a two-colouring of the column graph that follows the lattice across interfaces),
and brightness only says which colour is A (heavier, brighter where the contrast is strongest
over most of the field; see :func:`split_sublattices`). If the two classes are equally bright
there is only one visible sublattice and every column is called "A".

Sign convention (DESIGN.md section 4): ``b_displacement`` is the B position minus the centre
of its four A neighbours; the polarization points the other way.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.sparse import bmat, coo_matrix, diags
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import eigsh
from scipy.spatial import cKDTree

from .atoms import Columns
from .errors import InputError
from .periodicity import Periodicity

#: The two cation sublattices of a perovskite ABO3.
SUBLATTICES = ("A", "B")
#: Brightness ratio below which the two colours of the neighbour graph are one sublattice.
MIN_SUBLATTICE_CONTRAST = 1.2
#: Shells of the column graph, in units of the local nearest-column distance: the nearest
#: shell links opposite sublattices, the next one (sqrt 2: A-A and B-B along the axes of [001]
#: cells, along the short side of [110]-type cells) the same sublattice. The cut between them
#: is the geometric mean of 1 and sqrt 2; the outer bound stops short of the next opposite
#: shell of [110]-type cells (1.73).
SHELL_CUT = 1.19
SAME_SHELL_MAX = 1.57
#: Radius of the window (in nearest-column distances) over which the local A/B contrast is
#: averaged before it is compared with MIN_SUBLATTICE_CONTRAST.
CONTRAST_WINDOW = 3.0
#: Two sublattices are visible when the window contrast reaches MIN_SUBLATTICE_CONTRAST on at
#: least this share of the columns (a film with B sites on a substrate whose A and B columns
#: look alike keeps its B sites).
VISIBLE_SHARE = 0.25
#: A column's local log contrast (against its nearest columns) is capped at this magnitude.
MAX_LOG_CONTRAST = np.log(10.0)
#: A B site's cage is its nearest A shell: A sites within (1 + this) x a / sqrt 2 (see find_cages).
CAGE_SHELL = 0.35
#: Neighbour distances of a local cell must lie within this relative tolerance of ``a``.
CELL_TOLERANCE = 0.25
#: Two columns are a step of the column lattice apart when their vector is within this many
#: column spacings of one (:func:`lattice_step_graph`): far above any real off-centring (a B
#: column 0.2 of the spacing off), far below the distance to the next site.
STEP_TOLERANCE = 0.35
#: Names of the local-lattice descriptor's columns.
LOCAL_LATTICE_FIELDS = ("length_1", "length_2", "shear_deg", "rotation_deg")


@dataclass(frozen=True)
class AtomLattice:
    """Atom columns with their sublattice and the lattice geometry measured from them.

    Attributes
    ----------
    xy : (N, 2) float, (x, y) pixel positions.
    sublattice : (N,) '<U1', "A" or "B".
    amplitude : (N,) float, fitted peak height (NaN when built from positions alone).
    lattice_constant_px : float, median A-A nearest-neighbour distance ``a``.
    cell_area_px : float, area of the A sublattice's primitive cell (``a**2`` when square).
    orientation_deg : float in [-45, 45), direction of the first lattice axis from +x towards +y.
    cage : (N, 4) int, for B sites the indices of their nearest A shell (see
        :func:`find_cages`): four A sites in counter-clockwise order from the +a1+a2 corner
        (a B at the cell centre, as in [001] perovskites), or a pair repeated twice (a B midway
        between two A sites); -1 for A sites and for B sites without a valid cage.
    b_displacement : (N, 2) float px, B position minus its cage centre; NaN where undefined.
    local_lattice : (N, 4) float, per site :data:`LOCAL_LATTICE_FIELDS`: the two local cell
        lengths in units of ``a``, the cell angle minus 90 degrees and the rotation of the
        local cell against the global orientation (degrees); NaN where the cell is incomplete.
    """

    xy: np.ndarray
    sublattice: np.ndarray
    amplitude: np.ndarray
    lattice_constant_px: float
    cell_area_px: float
    orientation_deg: float
    cage: np.ndarray
    b_displacement: np.ndarray
    local_lattice: np.ndarray

    @property
    def has_b_sites(self) -> bool:
        return bool((self.sublattice == "B").any())

    def site_indices(self, which: str) -> np.ndarray:
        """Indices of the atoms of one sublattice ("A", "B") or of all of them ("all")."""
        if which == "all":
            return np.arange(len(self.xy))
        if which not in SUBLATTICES:
            raise InputError(f"sites must be 'all', 'A' or 'B', got {which!r}")
        return np.flatnonzero(self.sublattice == which)

    @property
    def cell_sites(self) -> np.ndarray:
        """The sublattice that stands for unit cells: B sites when there are any, else A."""
        return self.site_indices("B" if self.has_b_sites else "A")


def lattice_from_columns(columns: Columns, brighter: str = "A") -> AtomLattice:
    """Split refined image columns into A and B by geometry and brightness (``brighter``: which
    sublattice the brighter columns are, see :func:`split_sublattices`), then measure."""
    sublattice = split_sublattices(columns.xy, columns.amplitude, columns.spacing, columns.periodicity, brighter)
    return build_lattice(columns.xy, sublattice, columns.amplitude)


def lattice_from_positions(xy: np.ndarray, sublattice: np.ndarray | None = None) -> AtomLattice:
    """Build the lattice from positions a user already has.

    Without a sublattice column every position is taken as an A site: positions alone cannot
    tell a square A lattice from a mixed A+B one (both are square lattices), so pass the
    sublattice to get B-site displacements.
    """
    xy = np.asarray(xy, dtype=float)
    if sublattice is None:
        sublattice = np.full(len(xy), "A")
    return build_lattice(xy, np.asarray(sublattice, dtype="<U1"), np.full(len(xy), np.nan))


def split_sublattices(xy: np.ndarray, amplitude: np.ndarray, spacing: float,
                      periodicity: Periodicity | None = None, brighter: str = "A") -> np.ndarray:
    """Label columns "A"/"B": which sublattice from the lattice, which one is A from brightness.

    1. The lattice gives the two sublattices (:func:`colour_sublattices`): nearest columns are
       of opposite sublattices, next-nearest ones (sqrt 2 further) of the same one, and a
       least-squares sign assignment over these links two-colours every connected patch of
       the lattice. The colours follow the lattice across a coherent interface, whatever the
       brightness does there. With the image's ``periodicity`` the links are the steps of its
       column lattice (:func:`lattice_step_graph`), which off-centred columns keep; without
       it, shells of distance (:func:`shell_graph`).
    2. Brightness names the colours. Each column's local contrast is its log amplitude minus
       the mean of its nearest (other-colour) neighbours', signed by its colour; the colour
       whose columns are brighter, summed over the patch (each column's contrast capped at a
       factor 10), is A on the whole patch. So the layer with the stronger contrast over more
       of the field decides, and A continues on A across an interface where the brightness
       order flips: in SrRuO3 Ru (B, Z = 44) outshines Sr (A, Z = 38), yet a PbTiO3 film's
       Pb (A) columns continue into Sr columns, which are called A. If the flipped layer
       dominates the field (a larger area with stronger contrast), it names the colours
       instead, and A/B are swapped against chemistry everywhere; brightness alone cannot tell.
       ``brighter="B"`` says the brighter colour is B (a SrRuO3 crystal, or a field that a
       layer of that order dominates): what the image cannot tell, the user knows.
    3. If the local contrast, averaged over windows of :data:`CONTRAST_WINDOW` nearest-column
       distances, reaches :data:`MIN_SUBLATTICE_CONTRAST` on less than :data:`VISIBLE_SHARE`
       of the columns, only one sublattice is visible and every column is "A". The windows are
       local so that a layer with the flipped order does not cancel the contrast of the other,
       and a layer whose A and B look alike takes its colours from the lattice. Where the
       ``periodicity`` shows two sublattices (:attr:`~.periodicity.Periodicity.two_sublattices`) the colours
       are two sublattices however alike they look, and the slightest contrast names them.

    Columns outside any patch (no neighbour in the two shells) take the class whose nearby
    log amplitudes theirs is closer to.
    """
    n = len(xy)
    log_amplitude = np.log(np.clip(amplitude, 1e-12, None))
    if n < 2 or np.ptp(log_amplitude) == 0:
        return np.full(n, "A")
    signed, scale = shell_graph(xy, spacing) if periodicity is None else lattice_step_graph(xy, periodicity)
    colour, patch = colour_sublattices(signed)
    opposite = (signed < 0).astype(float)
    n_opposite = np.asarray(opposite.sum(axis=1)).ravel()
    has_contrast = n_opposite > 0
    contrast = np.full(n, np.nan)
    contrast[has_contrast] = np.clip(
        colour[has_contrast]
        * (log_amplitude[has_contrast] - (opposite @ log_amplitude)[has_contrast] / n_opposite[has_contrast]),
        -MAX_LOG_CONTRAST,
        MAX_LOG_CONTRAST,
    )  # a failed fit's near-zero amplitude must not outweigh its window
    two_sublattices = periodicity is not None and periodicity.two_sublattices
    if not two_sublattices and not _sublattices_visible(xy, contrast, patch, scale):
        return np.full(n, "A")
    check_brighter(brighter)
    vote = np.bincount(patch, weights=np.nan_to_num(contrast))
    is_a = colour * np.sign(vote[patch]) * (1 if brighter == "A" else -1) > 0
    undecided = vote[patch] == 0
    if undecided.all():
        return np.full(n, "A")
    if undecided.any():
        is_a[undecided] = _closer_to_a(xy, log_amplitude, is_a, undecided)
    return np.where(is_a, "A", "B")


def check_brighter(brighter: str) -> str:
    """``brighter`` as given, when it names a sublattice (:data:`SUBLATTICES`)."""
    if brighter not in SUBLATTICES:
        raise InputError(f"brighter_sublattice = {brighter!r}: use one of {SUBLATTICES}")
    return brighter


def lattice_step_graph(xy: np.ndarray, periodicity: Periodicity):
    """Signed sparse graph of the column lattice's steps (-1: to the other sublattice, +1: to
    the same) and the column spacing as every column's scale (:func:`shell_graph`'s form).

    Two columns are linked when the vector between them lies within :data:`STEP_TOLERANCE`
    column spacings of a step of the column lattice (along either cell vector or a diagonal):
    a B column off its cage centre by a fifth of that distance keeps all four links to its
    cage, where shells of distance lose the longer ones. A step changes sublattice when it is
    no whole step of the brightest columns' cell (a second site shown in the cell); otherwise,
    the cell being the column lattice itself, when it runs along a shortest cell vector (the
    A-B steps of both [001] and [110]-type views), as the nearest shell does.
    """
    n = len(xy)
    cell = periodicity.column_cell
    spacing = periodicity.column_spacing
    steps = np.array([[1, 0], [0, 1], [1, 1], [1, -1]])
    pairs = cKDTree(xy).query_pairs(1.2 * np.hypot(*(steps @ cell).T).max(), output_type="ndarray")
    if len(pairs) == 0:
        return coo_matrix((n, n)).tocsr(), np.full(n, spacing)
    vectors = xy[pairs[:, 1]] - xy[pairs[:, 0]]
    index = np.rint(vectors @ np.linalg.inv(cell))
    step = (np.abs(index).max(axis=1) == 1) & (np.hypot(*(vectors - index @ cell).T) < STEP_TOLERANCE * spacing)
    pairs, index = pairs[step], index[step]
    if periodicity.offset is not None:
        whole = np.abs(((index @ cell) @ np.linalg.inv(periodicity.cell) + 0.5) % 1 - 0.5).max(axis=1) < 0.25
        sign = np.where(whole, 1.0, -1.0)
    else:
        lengths = np.hypot(*cell.T)
        changes = (lengths <= 1.1 * lengths.min()).astype(int)
        sign = np.where((np.abs(index).astype(int) @ changes) % 2 == 1, -1.0, 1.0)
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
    return coo_matrix((np.concatenate([sign, sign]), (rows, cols)), shape=(n, n)).tocsr(), np.full(n, spacing)


def shell_graph(xy: np.ndarray, spacing: float):
    """Signed sparse graph of the two nearest shells (-1: nearest, +1: next) and the local scale.

    The global scale is the median of all distances to the eight nearest columns between half
    and SHELL_CUT times ``spacing``: every nearest-shell bond counts, so off-centred columns,
    whose shortest bond is shorter than the lattice's, do not shrink it. The local scale of
    each column is the median of its distances to nearest-shell columns (within SHELL_CUT of
    the global scale), then the median of that over the column and its eight nearest columns,
    so that strain gradients and off-centred columns do not move links between shells. Pairs
    closer than half the scale (duplicates) are not linked.
    """
    n = len(xy)
    tree = cKDTree(xy)
    k = min(9, n)
    distance, index = tree.query(xy, k=k)
    distance, index = distance[:, 1:], index[:, 1:]
    plausible = distance[(distance > 0.5 * spacing) & (distance < SHELL_CUT * spacing)]
    global_scale = float(np.median(plausible)) if len(plausible) else float(spacing)
    in_shell = (distance > 0.5 * global_scale) & (distance < SHELL_CUT * global_scale)
    own = np.full(n, global_scale)  # a column without nearest-shell neighbours: the global one
    linked = in_shell.any(axis=1)
    own[linked] = np.nanmedian(np.where(in_shell, distance, np.nan)[linked], axis=1)
    scale = np.median(np.column_stack([own, own[index]]), axis=1)
    pairs = tree.query_pairs(r=SAME_SHELL_MAX * 1.5 * global_scale, output_type="ndarray")
    if len(pairs) == 0:
        return coo_matrix((n, n)).tocsr(), scale
    ratio = np.hypot(*(xy[pairs[:, 0]] - xy[pairs[:, 1]]).T) / np.sqrt(scale[pairs[:, 0]] * scale[pairs[:, 1]])
    keep = (ratio >= 0.5) & (ratio < SAME_SHELL_MAX)
    pairs, sign = pairs[keep], np.where(ratio[keep] < SHELL_CUT, -1.0, 1.0)
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
    return coo_matrix((np.concatenate([sign, sign]), (rows, cols)), shape=(n, n)).tocsr(), scale


def colour_sublattices(signed) -> tuple[np.ndarray, np.ndarray]:
    """Two-colour a signed graph (-1: opposite colours, +1: same colour) patch by patch.

    Returns (colour in {-1, +1}, patch label) per node; a patch is a connected component, and
    its colours are defined up to one overall sign. A patch whose links are all consistent is
    coloured exactly (connected components of the doubled graph, in which node i has copies
    i+ and i- and a link joins the copies that agree). Otherwise the colours are the signs of
    the least-squares solution: the eigenvector of the smallest eigenvalue of the signed
    Laplacian ``D - W``, which minimises ``sum w_ij (x_i - s_ij x_j)^2``, so a few
    inconsistent links (a false detection, a misplaced border column) cost little and cannot
    flip a region whose boundary carries many consistent ones; then each node takes the
    majority of its links for a few sweeps.
    """
    n = signed.shape[0]
    magnitude = abs(signed)
    _, patch = connected_components(magnitude, directed=False)
    same = (signed > 0).astype(float)
    opposite = (signed < 0).astype(float)
    doubled = bmat([[same, opposite], [opposite, same]]).tocsr()
    _, copy_label = connected_components(doubled, directed=False)
    colour = np.where(copy_label[:n] < copy_label[n:], 1.0, -1.0)
    frustrated = np.unique(patch[copy_label[:n] == copy_label[n:]])
    for label in frustrated:
        nodes = np.flatnonzero(patch == label)
        sub = signed[nodes][:, nodes]
        laplacian = diags(np.asarray(abs(sub).sum(axis=1)).ravel()) - sub
        if len(nodes) <= 400:
            vector = np.linalg.eigh(laplacian.toarray())[1][:, 0]
        else:
            vector = eigsh(laplacian.tocsc(), k=1, sigma=-1e-3, which="LM")[1][:, 0]
        x = np.where(vector >= 0, 1.0, -1.0)
        for _ in range(5):
            field = sub @ x
            updated = np.where(field > 0, 1.0, np.where(field < 0, -1.0, x))
            if np.array_equal(updated, x):
                break
            x = updated
        colour[nodes] = x
    return colour, patch


def _sublattices_visible(xy, contrast, patch, scale) -> bool:
    """Whether the local A/B contrast (window mean per column, within the column's patch)
    reaches MIN_SUBLATTICE_CONTRAST on at least VISIBLE_SHARE of the columns."""
    finite = np.flatnonzero(np.isfinite(contrast))
    if len(finite) == 0:
        return False
    radius = CONTRAST_WINDOW * float(np.median(scale))
    pairs = cKDTree(xy[finite]).query_pairs(r=radius, output_type="ndarray")
    if len(pairs):
        pairs = pairs[patch[finite[pairs[:, 0]]] == patch[finite[pairs[:, 1]]]]
    rows = np.concatenate([pairs[:, 0], pairs[:, 1], np.arange(len(finite))]) if len(pairs) else np.arange(len(finite))
    cols = np.concatenate([pairs[:, 1], pairs[:, 0], np.arange(len(finite))]) if len(pairs) else np.arange(len(finite))
    window = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(finite),) * 2).tocsr()
    local = (window @ contrast[finite]) / np.asarray(window.sum(axis=1)).ravel()
    return bool(np.mean(np.abs(local) >= np.log(MIN_SUBLATTICE_CONTRAST)) >= VISIBLE_SHARE)


def _closer_to_a(xy, log_amplitude, is_a, undecided) -> np.ndarray:
    """For undecided columns: is the log amplitude closer to the nearby A or B columns'?"""
    decided = np.flatnonzero(~undecided)
    k = min(8, len(decided))
    _, near = cKDTree(xy[decided]).query(xy[undecided], k=k)
    near = decided[np.atleast_2d(near).reshape(len(near), -1)]
    near_a = np.where(is_a[near], log_amplitude[near], np.nan)
    near_b = np.where(~is_a[near], log_amplitude[near], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no A (or B) nearby
        level_a = np.nanmedian(near_a, axis=1)
        level_b = np.nanmedian(near_b, axis=1)
    own = log_amplitude[undecided]
    return np.where(np.isnan(level_b), True, np.where(np.isnan(level_a), False, np.abs(own - level_a) <= np.abs(own - level_b)))


def neighbour_graph(xy: np.ndarray, spacing: float, tolerance: float = 0.3):
    """Sparse symmetric graph linking points whose distance is within ``tolerance`` of spacing."""
    pairs = cKDTree(xy).query_pairs(r=(1 + tolerance) * spacing, output_type="ndarray")
    if len(pairs):
        distance = np.hypot(*(xy[pairs[:, 0]] - xy[pairs[:, 1]]).T)
        pairs = pairs[distance >= (1 - tolerance) * spacing]
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
    return coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(xy), len(xy))).tocsr()


def build_lattice(xy: np.ndarray, sublattice: np.ndarray, amplitude: np.ndarray) -> AtomLattice:
    """Measure ``a`` and the orientation on the A sites, then cages and local cells."""
    a_sites = np.flatnonzero(sublattice == "A")
    if len(a_sites) < 5:
        raise InputError(
            f"only {len(a_sites)} A-site columns; at least 5 are needed to measure the lattice. "
            "Check the sublattice column of the positions, or the image contrast"
        )
    a, orientation = measure_square_lattice(xy[a_sites])
    cage = np.full((len(xy), 4), -1)
    b_sites = np.flatnonzero(sublattice == "B")
    if len(b_sites):
        cage[b_sites] = find_cages(xy[b_sites], xy[a_sites], orientation, a_sites, a)
    valid = (cage >= 0).all(axis=1)
    b_displacement = np.full((len(xy), 2), np.nan)
    b_displacement[valid] = xy[valid] - xy[cage[valid]].mean(axis=1)
    local = np.full((len(xy), 4), np.nan)
    square = valid & (cage[:, 0] != cage[:, 2])
    local[square] = _cell_from_cage(xy[cage[square]], a, orientation)
    local[a_sites] = _cell_from_a_neighbours(xy[a_sites], a, orientation)
    return AtomLattice(
        xy=xy,
        sublattice=sublattice,
        amplitude=amplitude,
        lattice_constant_px=a,
        cell_area_px=primitive_cell_area(xy[a_sites]),
        orientation_deg=orientation,
        cage=cage,
        b_displacement=b_displacement,
        local_lattice=local,
    )


def measure_square_lattice(xy: np.ndarray) -> tuple[float, float]:
    """Lattice constant (median nearest distance) and orientation in [-45, 45) degrees.

    The orientation is the circular mean of 4 x the neighbour-bond angles, so the four bonds
    of a square lattice all vote for the same axis.
    """
    distance, index = cKDTree(xy).query(xy, k=5)
    a = float(np.median(distance[:, 1]))
    bonds = xy[index[:, 1:]] - xy[:, None, :]
    length = distance[:, 1:]
    good = (length > 0.75 * a) & (length < 1.25 * a)
    angle = np.arctan2(bonds[..., 1], bonds[..., 0])[good]
    mean4 = np.angle(np.mean(np.exp(4j * angle)))
    orientation = float((np.degrees(mean4 / 4) + 45.0) % 90.0 - 45.0)
    a = float(np.median(length[good])) if good.any() else a
    return a, orientation


def primitive_cell_area(xy: np.ndarray) -> float:
    """Median area spanned by each site's nearest bond and its nearest non-parallel bond.

    Works for square and rectangular (e.g. [110]-projected) lattices alike, so the expected
    number of columns in a field of view is its area over this.
    """
    k = min(9, len(xy))
    _, index = cKDTree(xy).query(xy, k=k)
    bonds = xy[index[:, 1:]] - xy[:, None, :]  # sorted by length
    first = bonds[:, 0]
    cross = np.abs(first[:, None, 0] * bonds[..., 1] - first[:, None, 1] * bonds[..., 0])
    lengths = np.hypot(*first.T)[:, None] * np.hypot(bonds[..., 0], bonds[..., 1])
    sine = np.divide(cross, lengths, out=np.zeros_like(cross), where=lengths > 0)  # duplicates: 0
    non_parallel = np.argmax(sine > 0.5, axis=1)  # first bond more than 30 degrees off
    return float(np.median(cross[np.arange(len(xy)), non_parallel]))


def find_cages(b_xy, a_xy, orientation, a_index, a: float) -> np.ndarray:
    """Each B site's nearest A shell, checked to be a real, centrosymmetric cage.

    The shell is the A sites within ``1 + CAGE_SHELL`` times ``a / sqrt 2``, the distance from
    a B site to its cage in both an [001] view (the cell's half diagonal, ``a`` its side) and
    a [110]-type view (half the long side, ``a`` the short one): a fixed ruler of the lattice,
    so that a strongly off-centred B (PbTiO3's Ti, 0.2 of that distance) keeps the far corners
    of its cage, which a ruler of its own nearest distance would cut. Four of
    them (B at a cell centre, [001] perovskites) must form a parallelogram whose diagonals
    share their midpoint, and are returned counter-clockwise from the +a1+a2 corner; two of
    them (B midway between two A sites, e.g. [110] views) must lie on opposite sides, and are
    returned as the pair repeated. Anything else (edges, defects, misdetections) gives -1s.
    The tolerance on the centre is a quarter of the nearest distance, far above any real
    off-centring.
    """
    distance, nearest = cKDTree(a_xy).query(b_xy, k=4)
    shell = distance <= (1 + CAGE_SHELL) * a / np.sqrt(2)
    count = shell.sum(axis=1)
    corners = a_xy[nearest]
    cages = np.full((len(b_xy), 4), -1)

    four = np.flatnonzero(count == 4)
    order = np.argsort(_angle_from(corners[four] - b_xy[four, None, :], orientation), axis=1)
    ordered = np.take_along_axis(nearest[four], order, axis=1)
    points = a_xy[ordered]
    gap = np.hypot(*((points[:, 0] + points[:, 2]) - (points[:, 1] + points[:, 3])).T) / 2
    good = gap <= 0.25 * distance[four, 0]
    cages[four[good]] = a_index[ordered[good]]

    two = np.flatnonzero(count == 2)
    pair_centre = corners[two, :2].mean(axis=1)
    good = np.hypot(*(pair_centre - b_xy[two]).T) <= 0.25 * distance[two, 0]
    cages[two[good]] = a_index[nearest[two[good]][:, [0, 1, 0, 1]]]
    return cages


def _angle_from(vectors: np.ndarray, start_deg: float) -> np.ndarray:
    """Angle of each vector in [0, 360) degrees, counted from ``start_deg``."""
    return (np.degrees(np.arctan2(vectors[..., 1], vectors[..., 0])) - start_deg) % 360.0


def _cell_from_cage(corners: np.ndarray, a: float, orientation: float) -> np.ndarray:
    """Local cell from the four ordered cage corners (M, 4, 2)."""
    a1 = 0.5 * ((corners[:, 0] - corners[:, 1]) + (corners[:, 3] - corners[:, 2]))
    a2 = 0.5 * ((corners[:, 0] - corners[:, 3]) + (corners[:, 1] - corners[:, 2]))
    return _cell_parameters(a1, a2, a, orientation)


def _cell_from_a_neighbours(a_xy: np.ndarray, a: float, orientation: float) -> np.ndarray:
    """Local cell of each A site from its four nearest A sites along +a1, +a2, -a1, -a2.

    A site whose four neighbours are not one per 90-degree sector around the lattice axes, or
    not within :data:`CELL_TOLERANCE` of ``a``, has no cell (NaN).
    """
    distance, nearest = cKDTree(a_xy).query(a_xy, k=5)
    distance, nearest = distance[:, 1:], nearest[:, 1:]  # the first is the site itself
    vectors = a_xy[nearest] - a_xy[:, None, :]
    sector = (_angle_from(vectors, orientation - 45.0) // 90).astype(int)
    ok = (np.abs(distance / a - 1) <= CELL_TOLERANCE).all(axis=1)
    ok &= (np.sort(sector, axis=1) == np.arange(4)).all(axis=1)
    result = np.full((len(a_xy), 4), np.nan)
    ordered = np.empty((ok.sum(), 4, 2))
    ordered[np.arange(ok.sum())[:, None], sector[ok]] = vectors[ok]
    a1 = 0.5 * (ordered[:, 0] - ordered[:, 2])
    a2 = 0.5 * (ordered[:, 1] - ordered[:, 3])
    result[ok] = _cell_parameters(a1, a2, a, orientation)
    return result


def _cell_parameters(a1: np.ndarray, a2: np.ndarray, a: float, orientation: float) -> np.ndarray:
    """[|a1|/a, |a2|/a, angle(a1, a2) - 90 deg, rotation of a1 against the orientation (deg)]."""
    length1 = np.hypot(*a1.T) / a
    length2 = np.hypot(*a2.T) / a
    cosine = np.sum(a1 * a2, axis=1) / (length1 * length2 * a * a)
    shear = np.degrees(np.arccos(np.clip(cosine, -1, 1))) - 90.0
    rotation = (np.degrees(np.arctan2(a1[:, 1], a1[:, 0])) - orientation + 45.0) % 90.0 - 45.0
    return np.column_stack([length1, length2, shear, rotation])
