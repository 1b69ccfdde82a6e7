"""From column positions to a perovskite lattice: sublattices, cages, displacements, cells.

An ABO3 perovskite along [001] projects to A columns on a square lattice of constant ``a`` and
B columns at the cell centres. Nearest columns are therefore A-B pairs at ``a / sqrt(2)``: the
sublattices are told apart by brightness (A is heavier, brighter) checked against that
geometry. If the two classes are equally bright there is only one visible sublattice and every
column is called "A".

Sign convention (DESIGN.md section 4): ``b_displacement`` is the B position minus the centre
of its four A neighbours; the polarization points the other way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.spatial import cKDTree
from skimage.filters import threshold_otsu

from .atoms import Columns
from .errors import InputError

#: Brightness ratio below which the two colours of the neighbour graph are one sublattice.
MIN_SUBLATTICE_CONTRAST = 1.2
#: A B site's cage is its nearest A shell: A sites within (1 + this) x the nearest A distance.
CAGE_SHELL = 0.35
#: Neighbour distances of a local cell must lie within this relative tolerance of ``a``.
CELL_TOLERANCE = 0.25
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
        if which not in ("A", "B"):
            raise InputError(f"sites must be 'all', 'A' or 'B', got {which!r}")
        return np.flatnonzero(self.sublattice == which)

    @property
    def cell_sites(self) -> np.ndarray:
        """The sublattice that stands for unit cells: B sites when there are any, else A."""
        return self.site_indices("B" if self.has_b_sites else "A")


def lattice_from_columns(columns: Columns) -> AtomLattice:
    """Split refined image columns into A and B by geometry and brightness, then measure."""
    sublattice = split_sublattices(columns.xy, columns.amplitude, columns.spacing)
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


def split_sublattices(xy: np.ndarray, amplitude: np.ndarray, spacing: float) -> np.ndarray:
    """Label columns "A"/"B": brightness first, then the neighbours' vote.

    Otsu's threshold on log amplitude gives a first split. Nearest columns are A-B pairs, so
    each column then takes the class opposite to the majority of its neighbours, which
    corrects columns that noise or a thickness change put on the wrong side. If the two
    classes differ in brightness by less than :data:`MIN_SUBLATTICE_CONTRAST`, only one
    sublattice is visible and every column is "A".
    """
    log_amplitude = np.log(np.clip(amplitude, 1e-12, None))
    if np.ptp(log_amplitude) == 0:
        return np.full(len(xy), "A")
    bright = log_amplitude > threshold_otsu(log_amplitude)
    graph = neighbour_graph(xy, spacing)
    degree = np.asarray(graph.sum(axis=1)).ravel()
    for _ in range(3):
        bright_neighbours = graph @ bright.astype(float)
        bright = np.where(2 * bright_neighbours < degree, True, np.where(2 * bright_neighbours > degree, False, bright))
    if bright.all() or not bright.any():
        return np.full(len(xy), "A")
    contrast = np.median(amplitude[bright]) / max(np.median(amplitude[~bright]), 1e-12)
    if contrast < MIN_SUBLATTICE_CONTRAST:
        return np.full(len(xy), "A")
    return np.where(bright, "A", "B")


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
        cage[b_sites] = find_cages(xy[b_sites], xy[a_sites], orientation, a_sites)
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


def find_cages(b_xy, a_xy, orientation, a_index) -> np.ndarray:
    """Each B site's nearest A shell, checked to be a real, centrosymmetric cage.

    The shell is the A sites within ``1 + CAGE_SHELL`` times the nearest A distance. Four of
    them (B at a cell centre, [001] perovskites) must form a parallelogram whose diagonals
    share their midpoint, and are returned counter-clockwise from the +a1+a2 corner; two of
    them (B midway between two A sites, e.g. [110] views) must lie on opposite sides, and are
    returned as the pair repeated. Anything else (edges, defects, misdetections) gives -1s.
    The tolerance on the centre is a quarter of the nearest distance, far above any real
    off-centring.
    """
    distance, nearest = cKDTree(a_xy).query(b_xy, k=4)
    shell = distance <= (1 + CAGE_SHELL) * distance[:, :1]
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
