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
        return graph_components(self._wall_links, len(self.wall_points))

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
        return graph_components(links[same_sides], len(self.wall_points))

    @cached_property
    def segments(self) -> list[WallSegment]:
        """Connected groups of wall points between one pair of labels, in a fixed order."""
        return self._group_walls(self.segment_index)

    @cached_property
    def wall_on_border(self) -> np.ndarray:
        """Whether each wall point's bond touches the edge of the analysed region."""
        return (self.degree[self.wall_bonds] < 4).any(axis=1)

    def _group_walls(self, member: np.ndarray) -> list[WallSegment]:
        """A :class:`WallSegment` per group of wall points (``member``: group index per point).

        Each group's line is its principal axis, from the eigenvectors of its 2 x 2 scatter
        matrix, all groups at once: noisy segmentations have ten thousand groups and more, and
        one SVD per group took most of a full frame's evaluation."""
        if len(self.wall_points) == 0:
            return []
        order = np.argsort(member, kind="stable")
        group, points = member[order], self.wall_points[order]
        counts = np.bincount(member)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        centred = points - (np.add.reduceat(points, starts) / counts[:, None])[group]
        scatter = np.add.reduceat(centred[:, :, None] * centred[:, None, :], starts)
        axes = np.linalg.eigh(scatter)[1]  # columns by ascending eigenvalue: the line, then its normal
        along = np.einsum("ij,ij->i", centred, axes[group, :, 1])
        across = np.einsum("ij,ij->i", centred, axes[group, :, 0])
        lengths = np.maximum.reduceat(along, starts) - np.minimum.reduceat(along, starts) + self.spacing
        residuals = np.sqrt(np.add.reduceat(across**2, starts) / counts)  # RMS distance from the line
        directions = np.degrees(np.arctan2(axes[:, 1, 1], axes[:, 0, 1])) % 180.0
        directions[counts == 1] = 0.0  # one point has no direction
        border = np.logical_or.reduceat(self.wall_on_border[order], starts)
        return [WallSegment(p, length, residual, direction, touches)
                for p, length, residual, direction, touches in zip(
                    np.split(points, starts[1:]), lengths.tolist(), residuals.tolist(), directions.tolist(),
                    border.tolist())]

    @cached_property
    def same_label_bonds(self) -> np.ndarray:
        """(S, 2) bonds whose ends carry the same label."""
        ends = self.labels[self.bonds]
        return self.bonds[ends[:, 0] == ends[:, 1]]

    @cached_property
    def same_label_components(self) -> np.ndarray:
        """Region id per site: components of the same-label bonds (-1: unassigned)."""
        component = graph_components(self.same_label_bonds, len(self.xy))
        return np.where(self.labels >= 0, component, -1)

    @cached_property
    def interior(self) -> np.ndarray:
        """Labelled sites with no neighbour of another label (not on a wall)."""
        on_wall = np.bincount(self.wall_bonds.ravel(), minlength=len(self.xy)) > 0
        return (self.labels >= 0) & ~on_wall


def graph_components(pairs: np.ndarray, n: int) -> np.ndarray:
    """Connected-component id per node of the undirected graph given by index pairs."""
    pairs = pairs.reshape(-1, 2)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def label_raster(shape: tuple[int, int], xy: np.ndarray, labels: np.ndarray, spacing: float) -> np.ndarray:
    """Per-pixel label of the nearest site within ~a/sqrt(2) (Voronoi cells), -1 elsewhere."""
    rows, cols = np.indices(shape)
    distance, nearest = cKDTree(xy).query(np.column_stack([cols.ravel(), rows.ravel()]))
    raster = np.where(distance <= spacing / np.sqrt(2), labels[nearest], -1)
    return raster.reshape(shape)
