"""A census of the sublattices found: how many A and B columns, and where B sites are empty.

A perovskite cell holds one A and one B column, so the two counts of a field of view agree to
within its border rows. When they do not, the B columns were not seen (too dim for the dose,
a layer without them) or the lattice was misread, and every displacement, polarization and
wall downstream is built on that. The census says so, in numbers a microscopist can check on
the detection overlay: per region of the field, the columns of each sublattice and the
predicted B sites that hold none (the completion's empty sites, :mod:`.completion`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .atoms import Columns
from .lattice import AtomLattice

#: The field is cut into at most this many regions along each side, none narrower than
#: :data:`REGION_CELLS` lattice constants.
MAX_REGIONS, REGION_CELLS = 3, 4
#: B and A counts of a region (or the field) are unbalanced when their ratio is further from 1
#: than this, beyond what its border rows explain (:attr:`RegionCount.border_slack`).
BALANCE_TOLERANCE = 0.1
#: A field (or region) is short of B columns when fewer than this share of its predicted B sites hold one.
MIN_FOUND_SHARE = 0.9


@dataclass(frozen=True)
class RegionCount:
    """The columns of one region of the field of view.

    Attributes
    ----------
    name : where it is ("top left", ..., "whole field").
    bounds : (x0, x1, y0, y1) in px.
    a, b : A and B columns found.
    empty_b : predicted B sites that hold no significant column.
    border_slack : how far the B/A ratio of a complete region may stray from 1 because its
        border cuts cells: 1/n_x + 1/n_y for a region n_x by n_y lattice constants.
    """

    name: str
    bounds: tuple[float, float, float, float]
    a: int
    b: int
    empty_b: int
    border_slack: float

    @property
    def found_share(self) -> float | None:
        """Share of the predicted B sites that hold a column; None without any."""
        predicted = self.b + self.empty_b
        return self.b / predicted if predicted else None

    @property
    def balanced(self) -> bool:
        """Whether the B and A counts agree (within the border slack and :data:`BALANCE_TOLERANCE`)
        and the region's predicted B sites hold columns (:data:`MIN_FOUND_SHARE`)."""
        if self.a == 0:
            return self.b == 0
        share = self.found_share
        agree = abs(self.b / self.a - 1) <= self.border_slack + BALANCE_TOLERANCE
        return agree and (share is None or share >= MIN_FOUND_SHARE)

    def as_dict(self) -> dict:
        share = self.found_share
        return {"region": self.name, "bounds_px": [round(v, 1) for v in self.bounds], "a": self.a, "b": self.b,
                "empty_b_sites": self.empty_b, "b_found_share": None if share is None else round(share, 3)}


@dataclass(frozen=True)
class Census:
    """A and B columns of an image, whole field and per region, and its empty B sites.

    Attributes
    ----------
    field : the whole field of view.
    regions : the field cut into up to :data:`MAX_REGIONS` x :data:`MAX_REGIONS` regions.
    empty_b_xy : (M, 2) px, predicted B sites without a significant column.
    noise_inflation : how much the image's correlated noise widened the detection tests.
    """

    field: RegionCount
    regions: tuple[RegionCount, ...]
    empty_b_xy: np.ndarray
    noise_inflation: float

    @property
    def warning(self) -> str | None:
        """One line when the sublattices are unbalanced (the whole field or a region), else None."""
        short = [r for r in self.regions if not r.balanced]
        if self.field.balanced and not short:
            return None
        where = f"; unbalanced in the {', '.join(r.name for r in short)} region{'s' * (len(short) > 1)}" if short else ""
        share = self.field.found_share
        found = "" if share is None else f", {self.field.empty_b} predicted B sites hold no column ({share:.0%} found)"
        return (f"sublattices unbalanced: {self.field.b} B columns for {self.field.a} A{found}{where}; "
                "displacements there rest on missing B columns: see columns.png")

    def as_dict(self) -> dict:
        return {"empty_b_sites": self.field.empty_b, "b_found_share": self.field.as_dict()["b_found_share"],
                "noise_inflation": round(self.noise_inflation, 2), "regions": [r.as_dict() for r in self.regions]}


def take_census(lattice: AtomLattice, columns: Columns, shape: tuple[int, int]) -> Census:
    """The census of an image's ``lattice`` built from its ``columns``, over a field of ``shape``.

    An empty site is a B site when most of its nearest columns (within 1.2 column spacings) are
    A: the column lattice's nearest neighbours of a site are of the other sublattice. With one
    sublattice in the periodicity there are no B sites to miss.
    """
    empty_b = _empty_b_sites(lattice, columns)
    is_a, is_b = lattice.sublattice == "A", lattice.sublattice == "B"
    rows, cols = shape
    a_px = lattice.lattice_constant_px
    field = _count("whole field", (0.0, cols - 1.0, 0.0, rows - 1.0), lattice.xy, is_a, is_b, empty_b, a_px)
    regions = tuple(_count(name, bounds, lattice.xy, is_a, is_b, empty_b, a_px) for name, bounds in _regions(shape, a_px))
    return Census(field, regions, empty_b, columns.noise_inflation)


def _empty_b_sites(lattice: AtomLattice, columns: Columns) -> np.ndarray:
    """The empty sites whose nearest columns are mostly A; none unless the periodicity showed
    two sublattices (with one, every predicted site is a site of it)."""
    sites = columns.empty_sites
    if len(sites) == 0 or columns.periodicity is None or not columns.periodicity.two_sublattices:
        return np.empty((0, 2))
    near = cKDTree(lattice.xy).query_ball_point(sites, 1.2 * columns.spacing)
    votes = np.array([np.mean(lattice.sublattice[n] == "A") if n else 0.0 for n in near])
    return sites[votes > 0.5]


def _count(name, bounds, xy, is_a, is_b, empty_b, a_px) -> RegionCount:
    x0, x1, y0, y1 = bounds
    slack = a_px / max(x1 - x0, a_px) + a_px / max(y1 - y0, a_px)

    def within(points):
        return (points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1)

    inside = within(xy)
    return RegionCount(name, bounds, int((inside & is_a).sum()), int((inside & is_b).sum()),
                       int(within(empty_b).sum()) if len(empty_b) else 0, float(slack))


def _regions(shape: tuple[int, int], a_px: float):
    """(name, bounds) of the field's regions: up to 3 x 3, each at least REGION_CELLS a across."""
    rows, cols = shape
    n_x = int(np.clip(cols // (REGION_CELLS * a_px), 1, MAX_REGIONS))
    n_y = int(np.clip(rows // (REGION_CELLS * a_px), 1, MAX_REGIONS))
    x_edges, y_edges = np.linspace(0, cols - 1, n_x + 1), np.linspace(0, rows - 1, n_y + 1)
    x_names = {1: [""], 2: ["left", "right"], 3: ["left", "centre", "right"]}[n_x]
    y_names = {1: [""], 2: ["top", "bottom"], 3: ["top", "middle", "bottom"]}[n_y]
    for j in range(n_y):
        for i in range(n_x):
            name = " ".join(part for part in (y_names[j], x_names[i]) if part) or "whole field"
            yield name, (float(x_edges[i]), float(x_edges[i + 1]), float(y_edges[j]), float(y_edges[j + 1]))
