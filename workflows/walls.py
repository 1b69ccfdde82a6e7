"""Domain walls from per-site labels on one sublattice's neighbour graph.

The segmentation lives on the sites of one sublattice (B sites, standing for unit cells, or A
sites when there are no B sites). Neighbouring sites are the bonds of that square lattice;
a *wall point* is the midpoint of a bond whose two ends carry different labels. Wall points
closer than ~one lattice constant (points on one wall are a/sqrt(2) or a apart) are joined:

- a *network* is a connected group of wall points: all walls that meet at junctions or
  crossings. Whether walls are continuous is judged on networks, since a wall ending on
  another wall has not stopped inside the crystal.
- a *segment* is a connected group of wall points between one pair of labels: the interface
  between two particular domains. Where walls of several domain pairs meet (a junction, two
  crossing wall families) they are separate segments, so straightness is judged on segments.

Each network and segment gets a length, a line-fit residual and whether it reaches the edge
of the analysed region.

Walls are never drawn between A and B sites: clustering that separates the sublattices would
otherwise turn every A-B bond into "wall" (DESIGN.md section 7).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .order import OrderParameter

#: Wall points within this many bond lengths belong to one wall.
SEGMENT_LINK = 1.1
#: Sites are bonded up to this many times the longer cell side.
BOND_REACH = 1.15


@dataclass(frozen=True)
class WallSegment:
    """One connected group of wall points (a segment or a network).

    Attributes
    ----------
    points : (K, 2) float, (x, y) wall points (bond midpoints).
    length_px : extent along the fitted line plus one lattice constant (a single point is one
        cell of wall).
    residual_px : root-mean-square distance of the points from their fitted line.
    direction_deg : direction of the fitted line, in [0, 180) degrees from +x towards +y.
    touches_border : whether the wall reaches the edge of the analysed region.
    """

    points: np.ndarray
    length_px: float
    residual_px: float
    direction_deg: float
    touches_border: bool


@dataclass(frozen=True)
class Segmentation:
    """Labels on the sites of one sublattice, with that sublattice's bonds and walls.

    Attributes
    ----------
    xy : (M, 2) float, (x, y) site positions.
    labels : (M,) int, cluster label per site, -1 for unassigned sites.
    spacing : lattice constant of this sublattice in pixels (the shorter cell side).
    long_spacing : the longer cell side for rectangular cells (a [110] view), else None.
        Sites are bonded along both sides, never along the (longer still) diagonals.
    order : the image's order parameter on these sites (see :mod:`~ferrogym.workflows.order`),
        which the order-parameter rewards need; None for geometry alone.
    """

    xy: np.ndarray
    labels: np.ndarray
    spacing: float
    long_spacing: float | None = None
    order: OrderParameter | None = None

    @property
    def bond_length(self) -> float:
        """The longer side of the lattice cell (``spacing`` unless ``long_spacing`` is set)."""
        return float(self.long_spacing or self.spacing)

    @cached_property
    def bonds(self) -> np.ndarray:
        """(E, 2) index pairs of neighbouring labelled sites, along both lattice axes."""
        assigned = np.flatnonzero(self.labels >= 0)
        pairs = cKDTree(self.xy[assigned]).query_pairs(BOND_REACH * self.bond_length, output_type="ndarray")
        return assigned[pairs.reshape(-1, 2)]

    @cached_property
    def degree(self) -> np.ndarray:
        """Number of labelled neighbours per site (4 in the interior of a square lattice)."""
        return np.bincount(self.bonds.ravel(), minlength=len(self.xy))

    @property
    def n_labels(self) -> int:
        return int(np.unique(self.labels[self.labels >= 0]).size)

    @cached_property
    def wall_bonds(self) -> np.ndarray:
        """(W, 2) bonds whose ends carry different labels."""
        ends = self.labels[self.bonds]
        return self.bonds[ends[:, 0] != ends[:, 1]]

    @cached_property
    def wall_points(self) -> np.ndarray:
        """(W, 2) midpoints of the wall bonds."""
        return self.xy[self.wall_bonds].mean(axis=1)

    @cached_property
    def _wall_links(self) -> np.ndarray:
        """(P, 2) pairs of wall points close enough to belong to one wall."""
        reach = SEGMENT_LINK * self.bond_length
        return cKDTree(self.wall_points).query_pairs(reach, output_type="ndarray").reshape(-1, 2)

    @cached_property
    def network_index(self) -> np.ndarray:
        """Index into :attr:`networks` of each wall point."""
        return _components(self._wall_links, len(self.wall_points))

    @cached_property
    def networks(self) -> list[WallSegment]:
        """Connected groups of wall points, junctions and crossings included."""
        return self._group_walls(self.network_index)

    @cached_property
    def segment_index(self) -> np.ndarray:
        """Index into :attr:`segments` of each wall point."""
        sides = np.sort(self.labels[self.wall_bonds], axis=1)
        links = self._wall_links
        same_sides = (sides[links[:, 0]] == sides[links[:, 1]]).all(axis=1)
        return _components(links[same_sides], len(self.wall_points))

    @cached_property
    def segments(self) -> list[WallSegment]:
        """Connected groups of wall points between one pair of labels, in a fixed order."""
        return self._group_walls(self.segment_index)

    @cached_property
    def wall_on_border(self) -> np.ndarray:
        """Whether each wall point's bond touches the edge of the analysed region."""
        return (self.degree[self.wall_bonds] < 4).any(axis=1)

    def _group_walls(self, member: np.ndarray) -> list[WallSegment]:
        if len(self.wall_points) == 0:
            return []
        order = np.argsort(member, kind="stable")  # one sort, not one scan per group: noisy
        bounds = np.cumsum(np.bincount(member))[:-1]  # segmentations have thousands of groups
        points, border = np.split(self.wall_points[order], bounds), np.split(self.wall_on_border[order], bounds)
        return [_describe_segment(p, b.any(), self.spacing) for p, b in zip(points, border)]

    @cached_property
    def same_label_bonds(self) -> np.ndarray:
        """(S, 2) bonds whose ends carry the same label."""
        ends = self.labels[self.bonds]
        return self.bonds[ends[:, 0] == ends[:, 1]]

    @cached_property
    def same_label_components(self) -> np.ndarray:
        """Region id per site: components of the same-label bonds (-1: unassigned)."""
        component = _components(self.same_label_bonds, len(self.xy))
        return np.where(self.labels >= 0, component, -1)

    @cached_property
    def interior(self) -> np.ndarray:
        """Labelled sites with no neighbour of another label (not on a wall)."""
        on_wall = np.bincount(self.wall_bonds.ravel(), minlength=len(self.xy)) > 0
        return (self.labels >= 0) & ~on_wall


def _components(pairs: np.ndarray, n: int) -> np.ndarray:
    """Connected-component id per node of the undirected graph given by index pairs."""
    pairs = pairs.reshape(-1, 2)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _describe_segment(points: np.ndarray, touches_border: bool, spacing: float) -> WallSegment:
    """Fit a line through the points (principal axis) and measure length and residual."""
    centred = points - points.mean(axis=0)
    if len(points) == 1:
        return WallSegment(points, spacing, 0.0, 0.0, touches_border)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    along = centred @ axes[0]
    residual = float(singular[1] / np.sqrt(len(points))) if len(singular) > 1 else 0.0
    direction = float(np.degrees(np.arctan2(axes[0, 1], axes[0, 0])) % 180.0)
    return WallSegment(points, float(np.ptp(along) + spacing), residual, direction, touches_border)


def label_raster(shape: tuple[int, int], xy: np.ndarray, labels: np.ndarray, spacing: float) -> np.ndarray:
    """Per-pixel label of the nearest site within ~a/sqrt(2) (Voronoi cells), -1 elsewhere."""
    rows, cols = np.indices(shape)
    distance, nearest = cKDTree(xy).query(np.column_stack([cols.ravel(), rows.ravel()]))
    raster = np.where(distance <= spacing / np.sqrt(2), labels[nearest], -1)
    return raster.reshape(shape)
