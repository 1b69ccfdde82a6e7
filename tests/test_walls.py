"""Tests for ferrogym.workflows.walls: wall points, segments and networks on a site lattice."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from ferrogym.workflows.walls import SEGMENT_LINK, Segmentation, WallSegment, label_raster

from conftest import grid_segmentation

A = 10.0
N = 20


def lattice(n: int = N, a: float = A):
    """(n*n, 2) (x, y) sites of a square lattice, x varying fastest, and the integer cell coords."""
    xy = a * np.stack(np.meshgrid(np.arange(n), np.arange(n)), -1).reshape(-1, 2).astype(float)
    return xy, xy[:, 0] / a, xy[:, 1] / a


XY, X, Y = lattice()


def seg(labels, xy=XY, a=A) -> Segmentation:
    return Segmentation(xy, np.asarray(labels, dtype=int), a)


def point_set(points) -> set:
    return {tuple(np.round(p, 6)) for p in points}


def brute_force_walls(grid_labels: np.ndarray, a: float = A) -> set:
    """Midpoints of all lattice bonds between two labelled sites of different labels."""
    out = set()
    rows, cols = grid_labels.shape
    for r in range(rows):
        for c in range(cols):
            for dr, dc in ((0, 1), (1, 0)):
                r2, c2 = r + dr, c + dc
                if r2 < rows and c2 < cols:
                    l1, l2 = grid_labels[r, c], grid_labels[r2, c2]
                    if l1 >= 0 and l2 >= 0 and l1 != l2:
                        out.add((round(a * (c + c2) / 2, 6), round(a * (r + r2) / 2, 6)))
    return out


# ---------------------------------------------------------------------------------------------
# Bonds and degree


def test_bonds_of_a_full_square_lattice():
    s = seg(np.zeros(N * N))
    assert len(s.bonds) == 2 * N * (N - 1)
    lengths = np.hypot(*(XY[s.bonds[:, 0]] - XY[s.bonds[:, 1]]).T)
    assert np.allclose(lengths, A)
    assert (s.bonds[:, 0] < s.bonds[:, 1]).all()


def test_degree_is_four_inside_three_on_edges_two_in_corners():
    s = seg(np.zeros(N * N))
    on_x_edge = (X == 0) | (X == N - 1)
    on_y_edge = (Y == 0) | (Y == N - 1)
    assert (s.degree[~on_x_edge & ~on_y_edge] == 4).all()
    assert (s.degree[on_x_edge ^ on_y_edge] == 3).all()
    assert (s.degree[on_x_edge & on_y_edge] == 2).all()


def test_unassigned_sites_have_no_bonds():
    labels = np.zeros(N * N, int)
    hole = (X == 10) & (Y == 10)
    labels[hole] = -1
    s = seg(labels)
    assert s.degree[hole][0] == 0
    neighbours = (np.abs(X - 10) + np.abs(Y - 10)) == 1
    assert (s.degree[neighbours] == 3).all()
    assert not np.isin(np.flatnonzero(hole), s.bonds).any()


def test_n_labels_ignores_unassigned():
    labels = (X > 9.5).astype(int) * 3
    labels[:5] = -1
    assert seg(labels).n_labels == 2
    assert seg(np.full(N * N, -1)).n_labels == 0


# ---------------------------------------------------------------------------------------------
# Known walls


def test_vertical_straight_wall():
    s = seg(X > 9.5)
    assert point_set(s.wall_points) == {(9.5 * A, A * j) for j in range(N)}
    assert len(s.wall_bonds) == N
    assert len(s.segments) == 1 and len(s.networks) == 1
    wall = s.segments[0]
    assert isinstance(wall, WallSegment)
    assert wall.residual_px == pytest.approx(0.0, abs=1e-9)
    assert wall.length_px == pytest.approx(N * A)
    assert wall.direction_deg == pytest.approx(90.0)
    assert wall.touches_border
    assert s.n_labels == 2


def test_horizontal_straight_wall_has_direction_zero():
    s = seg(Y > 4.5)
    assert len(s.segments) == 1
    wall = s.segments[0]
    assert point_set(wall.points) == {(A * i, 4.5 * A) for i in range(N)}
    assert wall.direction_deg == pytest.approx(0.0, abs=1e-6) or wall.direction_deg == pytest.approx(180.0)
    assert 0.0 <= wall.direction_deg < 180.0


@pytest.mark.parametrize("labels, direction", [(X > Y, 45.0), (X + Y > N - 1, 135.0)])
def test_diagonal_staircase_wall_is_one_straight_segment(labels, direction):
    s = seg(labels)
    assert len(s.segments) == 1 and len(s.networks) == 1
    wall = s.segments[0]
    assert wall.residual_px < 0.5 * A
    assert wall.direction_deg == pytest.approx(direction, abs=1.0)
    assert wall.touches_border
    # the staircase spans the whole diagonal
    assert wall.length_px > 0.9 * np.sqrt(2) * (N - 1) * A


def test_rotated_lattice_rotates_the_wall_direction():
    """Only distances define bonds: a lattice rotated by 30 degrees gives the same walls, turned."""
    angle = np.radians(30.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    xy = XY @ rotation.T + 500.0
    s = seg(X > 9.5, xy=xy)
    assert len(s.segments) == 1
    wall = s.segments[0]
    assert wall.direction_deg == pytest.approx(120.0, abs=1e-6)
    assert wall.residual_px == pytest.approx(0.0, abs=1e-6)
    assert wall.length_px == pytest.approx(N * A)


def test_crossing_walls_are_one_network_of_four_segments():
    labels = 2 * (Y > 9.5) + (X > 9.5)
    s = seg(labels)
    assert len(s.networks) == 1
    assert len(s.segments) == 4
    assert sum(len(w.points) for w in s.segments) == len(s.wall_points)
    pairs = set()
    for wall in s.segments:
        # every point of one segment lies between one pair of domains
        sides = {
            tuple(sorted(s.labels[bond]))
            for bond, point in zip(s.wall_bonds, s.wall_points)
            if tuple(np.round(point, 6)) in point_set(wall.points)
        }
        assert len(sides) == 1
        pairs |= sides
        assert wall.residual_px == pytest.approx(0.0, abs=1e-9)
        assert wall.length_px == pytest.approx(N / 2 * A)
        assert wall.touches_border
    assert pairs == {(0, 1), (2, 3), (0, 2), (1, 3)}


def test_three_labels_in_thin_stripes_form_one_network_but_two_segments():
    """Walls a apart (< SEGMENT_LINK a) join into one network, but each pair of domains is its own segment."""
    labels = np.where(X < 9.5, 0, np.where(X < 10.5, 1, 2))
    s = seg(labels)
    assert len(s.networks) == 1
    assert len(s.segments) == 2
    assert sorted(len(w.points) for w in s.segments) == [N, N]


def test_walls_two_lattice_constants_apart_are_separate_networks():
    labels = ((X > 9.5) & (X < 11.5)).astype(int)
    s = seg(labels)
    assert 2 * A > SEGMENT_LINK * A
    assert len(s.networks) == 2
    assert len(s.segments) == 2


def test_single_speck_is_a_closed_wall_of_four_points():
    labels = np.zeros(N * N, int)
    labels[(X == 10) & (Y == 10)] = 1
    s = seg(labels)
    assert point_set(s.wall_points) == {(95.0, 100.0), (105.0, 100.0), (100.0, 95.0), (100.0, 105.0)}
    assert len(s.segments) == 1 and len(s.networks) == 1
    wall = s.networks[0]
    assert not wall.touches_border
    # four points on a circle of radius a/2: RMS distance from any line through the centre is a/(2 sqrt 2)
    assert wall.residual_px == pytest.approx(A / (2 * np.sqrt(2)))


def test_speck_on_the_edge_touches_the_border():
    labels = np.zeros(N * N, int)
    labels[(X == 0) & (Y == 10)] = 1
    s = seg(labels)
    assert len(s.wall_points) == 3
    assert s.networks[0].touches_border


def test_wall_next_to_unassigned_sites_touches_the_border_of_the_analysed_region():
    """The analysed region ends where labels end, not only at the image edge."""
    labels = np.full(N * N, -1)
    inner = (X >= 5) & (X <= 14) & (Y >= 5) & (Y <= 14)
    labels[inner] = (X[inner] > 9.5).astype(int)
    s = seg(labels)
    assert len(s.segments) == 1
    assert s.segments[0].touches_border
    assert s.segments[0].length_px == pytest.approx(10 * A)


def test_single_wall_point_is_one_cell_long():
    xy = np.array([[0.0, 0.0], [A, 0.0], [2 * A, 0.0]])
    s = seg([0, 0, 1], xy=xy)
    assert len(s.wall_points) == 1
    wall = s.segments[0]
    assert wall.length_px == A
    assert wall.residual_px == 0.0
    assert 0.0 <= wall.direction_deg < 180.0
    assert wall.touches_border


def test_unassigned_sites_never_create_walls():
    # a column of unassigned sites separates two domains: no bond crosses it, so no wall
    labels = np.where(X < 9.5, 0, np.where(X < 10.5, -1, 1))
    s = seg(labels)
    assert len(s.wall_points) == 0
    assert s.segments == [] and s.networks == []
    # unassigned specks inside one domain: no walls either
    labels = np.zeros(N * N, int)
    labels[::7] = -1
    assert len(seg(labels).wall_points) == 0


@pytest.mark.parametrize("labels", [np.zeros(N * N, int), np.full(N * N, -1), np.full(N * N, 5)])
def test_no_walls(labels):
    s = seg(labels)
    assert s.wall_points.shape == (0, 2)
    assert s.segments == [] and s.networks == []


def test_segments_are_deterministic():
    rng = np.random.default_rng(3)
    labels = rng.integers(-1, 3, N * N)
    first = seg(labels).segments
    second = seg(labels.copy()).segments
    assert len(first) == len(second)
    for u, v in zip(first, second):
        assert np.array_equal(u.points, v.points)
        assert (u.length_px, u.residual_px, u.direction_deg, u.touches_border) == (
            v.length_px,
            v.residual_px,
            v.direction_deg,
            v.touches_border,
        )



def test_line_fits_of_all_segments_at_once_match_one_svd_per_segment():
    """The grouped line fit gives what a principal-axis fit (SVD) of each segment alone gives."""
    rng = np.random.default_rng(5)
    xy = XY + rng.normal(0.0, 0.1 * A, XY.shape)
    s = seg(rng.integers(-1, 3, N * N), xy=xy)
    walls = s.segments + s.networks
    assert len(walls) > 50 and any(len(w.points) == 1 for w in walls) and any(len(w.points) > 10 for w in walls)
    for wall in walls:
        centred = wall.points - wall.points.mean(axis=0)
        if len(wall.points) == 1:
            assert (wall.length_px, wall.residual_px, wall.direction_deg) == (A, 0.0, 0.0)
            continue
        _, singular, axes = np.linalg.svd(centred, full_matrices=False)
        along = centred @ axes[0]
        assert wall.length_px == pytest.approx(np.ptp(along) + A, rel=1e-9)
        assert wall.residual_px == pytest.approx(singular[1] / np.sqrt(len(wall.points)), rel=1e-9, abs=1e-12)
        turn = (wall.direction_deg - np.degrees(np.arctan2(axes[0, 1], axes[0, 0]))) % 180.0
        assert min(turn, 180.0 - turn) == pytest.approx(0.0, abs=1e-6)

# ---------------------------------------------------------------------------------------------
# same_label_components and interior


def test_same_label_components_known_answer():
    labels = np.zeros(N * N, int)
    labels[(X == 3) & (Y == 3)] = 1
    labels[(X == 15) & (Y == 12)] = 1
    labels[(X == 0) & (Y == 0)] = -1
    s = seg(labels)
    comp = s.same_label_components
    assert comp[(X == 0) & (Y == 0)][0] == -1
    specks = comp[labels == 1]
    assert specks[0] != specks[1]  # same label, not connected: two regions
    sea = comp[labels == 0]
    assert len(set(sea)) == 1
    assert len({*specks, sea[0]}) == 3


def test_interior_known_answer():
    s = seg(X > 9.5)
    assert (s.interior == ((X != 9) & (X != 10))).all()
    labels = np.zeros(N * N, int)
    labels[(X == 10) & (Y == 10)] = -1
    s = seg(labels)
    # an unassigned site is not interior; its neighbours have no other-label neighbour, so they are
    assert not s.interior[(X == 10) & (Y == 10)][0]
    assert s.interior.sum() == N * N - 1


label_grids = arrays(np.int64, st.tuples(st.integers(2, 9), st.integers(2, 9)), elements=st.integers(-1, 2))


@settings(max_examples=60, deadline=None)
@given(label_grids)
def test_wall_points_match_brute_force_and_partition_into_segments(grid):
    s = grid_segmentation(grid, A)
    assert point_set(s.wall_points) == brute_force_walls(grid)
    assert len(point_set(s.wall_points)) == len(s.wall_points)
    n = len(s.wall_points)
    assert sum(len(w.points) for w in s.segments) == n
    assert sum(len(w.points) for w in s.networks) == n
    assert len(s.networks) <= len(s.segments)
    all_segment_points = point_set(np.concatenate([w.points for w in s.segments])) if n else set()
    assert all_segment_points == point_set(s.wall_points)
    for w in s.segments + s.networks:
        assert 0.0 <= w.direction_deg < 180.0
        assert w.residual_px >= 0.0
        assert w.length_px >= A - 1e-9


@settings(max_examples=60, deadline=None)
@given(label_grids)
def test_components_degree_and_interior_match_brute_force(grid):
    s = grid_segmentation(grid, A)
    rows, cols = grid.shape
    labelled = grid >= 0
    # degree: labelled 4-neighbours of labelled sites, 0 for unassigned ones
    padded = np.pad(labelled, 1)
    neighbours = padded[:-2, 1:-1].astype(int) + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]
    assert np.array_equal(s.degree.reshape(rows, cols), np.where(labelled, neighbours, 0))
    # interior: labelled, no labelled 4-neighbour of another label
    other = np.zeros_like(labelled)
    for shift in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        shifted = np.full(np.array(grid.shape) + 2, -1)
        shifted[1:-1, 1:-1] = grid
        moved = shifted[1 + shift[0] : 1 + shift[0] + rows, 1 + shift[1] : 1 + shift[1] + cols]
        other |= (moved >= 0) & (moved != grid)
    assert np.array_equal(s.interior.reshape(rows, cols), labelled & ~other)
    # same-label components: the 4-connected regions of each label, -1 where unassigned
    comp = s.same_label_components.reshape(rows, cols)
    assert (comp[~labelled] == -1).all()
    expected = np.full(grid.shape, -1)
    offset = 0
    for value in np.unique(grid[labelled]):
        regions, count = ndimage.label(grid == value)
        expected[regions > 0] = regions[regions > 0] + offset
        offset += count
    pairs = {(e, c) for e, c in zip(expected[labelled], comp[labelled])}
    assert len(pairs) == len({e for e, _ in pairs}) == len({c for _, c in pairs})


# ---------------------------------------------------------------------------------------------
# label_raster


def test_label_raster_nearest_site_and_unassigned_far_away():
    xy = np.array([[2.0, 2.0], [7.0, 2.0]])
    raster = label_raster((6, 12), xy, np.array([4, 9]), spacing=5.0)
    assert raster.shape == (6, 12)
    assert raster[2, 2] == 4 and raster[2, 4] == 4  # (x=4, y=2): 2 px from site 0
    assert raster[2, 5] == 9 and raster[2, 7] == 9  # (x=5, y=2): 2 px from site 1
    assert raster[0, 11] == -1  # (x=11, y=0): sqrt(20) > 5/sqrt(2) from both
    assert raster[5, 2] == 4  # (x=2, y=5): 3 px < 3.54 px
    assert raster[5, 0] == -1  # (x=0, y=5): sqrt(13) = 3.61 > 3.54


def test_label_raster_uses_x_as_column():
    raster = label_raster((4, 30), np.array([[25.0, 1.0]]), np.array([3]), spacing=2.0)
    assert raster[1, 25] == 3
    assert (raster == 3).sum() == 5  # the site's pixel and its four neighbours (distance 1 <= 1.41)
    assert raster[1, 1] == -1


def test_label_raster_matches_brute_force_nearest_site():
    n, a = 6, 7.0  # odd spacing: no pixel is equidistant from two sites or exactly a/sqrt(2) away
    xy, x, y = lattice(n, a)
    labels = (x > 2.5).astype(int) + 2 * (y > 3.5)
    labels[0] = -1
    shape = (int(a * n) + 3, int(a * n) - 2)
    raster = label_raster(shape, xy, labels, a)
    rows, cols = np.indices(shape)
    distance = np.hypot(cols[..., None] - xy[:, 0], rows[..., None] - xy[:, 1])
    nearest = distance.argmin(axis=-1)
    expected = np.where(distance.min(axis=-1) <= a / np.sqrt(2), labels[nearest], -1)
    assert np.array_equal(raster, expected)
    # inside the lattice every pixel is within a/sqrt(2) of a site: only site 0's cell is unassigned
    inside = raster[: int(a * (n - 1)) + 1, : int(a * (n - 1)) + 1]
    assert ((inside == -1) == (nearest[: inside.shape[0], : inside.shape[1]] == 0)).all()
