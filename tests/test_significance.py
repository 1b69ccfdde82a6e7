"""Tests for ferrogym.workflows.significance: walls with a significance, and the no-walls test.

Known answers on small square lattices with a made-up order parameter (no image): a long weak
step is significant, a short noisy boundary is not, walls drawn on pure noise by a clustering
are reported at about the stated rate, and insignificant walls are merged away."""

import numpy as np
import pytest

from ferrogym.workflows import significance as S
from ferrogym.workflows.order import OrderParameter
from ferrogym.workflows.walls import Segmentation

A = 10.0


def lattice(n_x, n_y):
    xy = A * np.stack(np.meshgrid(np.arange(n_x), np.arange(n_y)), -1).reshape(-1, 2).astype(float)
    return xy, xy[:, 0] / A, xy[:, 1] / A


def segmentation(xy, labels, z):
    order = OrderParameter(np.asarray(z, dtype=float).reshape(len(xy), -1), ("displacement_x",), 0.0,
                           np.ones(4), np.ones(1))
    return Segmentation(xy, np.asarray(labels, dtype=int), A, order=order)


def test_a_long_weak_wall_is_significant_and_a_short_noisy_boundary_is_not():
    rng = np.random.default_rng(0)
    xy, x, y = lattice(24, 24)
    z = 1.2 * (x >= 12) + rng.standard_normal(len(xy))  # 1.2 noise widths per site, 24 cells long
    long_wall = S.wall_tests(segmentation(xy, x >= 12, z))[0]
    assert len(long_wall) == 1 and long_wall[0].z > 3 and long_wall[0].bonds == 24
    assert long_wall[0].step[0] == pytest.approx(1.2, abs=0.5)
    speck = (np.abs(x - 5) <= 0) & (np.abs(y - 5) <= 1)  # a 1 x 3 speck of noise
    labels = (x >= 12).astype(int) + 2 * speck
    tests = S.wall_tests(segmentation(xy, labels, z))[0]
    short = [t for t in tests if 2 in t.labels]
    assert short and max(t.z for t in short) < S.sidak_z(len(tests))


def test_a_ramp_cut_into_bands_steps_by_nothing():
    rng = np.random.default_rng(1)
    xy, x, _ = lattice(20, 20)
    z = 0.8 * x + rng.standard_normal(len(xy))  # a gradient far larger than the noise per cell
    test = S.wall_tests(segmentation(xy, x >= 10, z))[0][0]
    assert abs(test.step[0]) < 1.0 and test.z < 3


def test_a_fixed_wall_on_pure_noise_is_significant_at_its_nominal_rate():
    """Without selection the per-wall p-value is nominal: 1 % of noise images pass p <= 0.01."""
    rng = np.random.default_rng(2)
    xy, x, _ = lattice(12, 12)
    labels = x >= 6
    p = [S.wall_tests(segmentation(xy, labels, rng.standard_normal(len(xy))))[0][0].p_value for _ in range(400)]
    assert 0.0 <= np.mean(np.array(p) <= 0.01) <= 0.035
    assert 0.02 <= np.mean(np.array(p) <= 0.1) <= 0.18


def test_walls_drawn_on_noise_by_a_clustering_are_reported_at_about_the_stated_rate():
    """The verdict's false-positive rate with the selection included: pure noise, labels from a
    k-means of the noise itself (the bootstrap's adversary, a fresh draw), one null shared."""
    rng = np.random.default_rng(3)
    xy, _, _ = lattice(10, 10)
    reference = segmentation(xy, np.zeros(len(xy)), rng.standard_normal(len(xy)))
    noise = S.NoiseModel(np.ones(1), np.zeros(1), np.zeros(1))
    null_max = S.null_maxima(reference, noise, n_boot=199, seed=4)
    reported = 0
    trials = 150
    for _ in range(trials):
        z = rng.standard_normal(len(xy))
        labels = S._kmeans(z[:, None], 2, rng)
        reported += S.judge_walls(segmentation(xy, labels, z), null_max=null_max).has_walls
    assert reported / trials <= 0.04


def test_merging_joins_the_domains_of_an_insignificant_wall():
    rng = np.random.default_rng(5)
    xy, x, y = lattice(20, 20)
    z = 3.0 * (x >= 10) + rng.standard_normal(len(xy))
    labels = (x >= 10).astype(int) + 2 * ((x < 10) & (y >= 10))  # a wall inside the left domain: noise
    verdict = S.judge_walls(segmentation(xy, labels, z), n_boot=99, seed=0)
    assert verdict.has_walls and verdict.merged >= 1
    assert verdict.segmentation.n_labels == 2
    final = verdict.segmentation.labels
    assert len(set(final[x < 10])) == 1 and len(set(final[x >= 10])) == 1
    assert len(verdict.walls) == 1 and verdict.p_adjusted[0] <= S.ALPHA


def test_pure_noise_with_walls_is_no_walls_and_says_its_p_value():
    rng = np.random.default_rng(6)
    xy, x, _ = lattice(10, 10)
    verdict = S.judge_walls(segmentation(xy, x >= 5, rng.standard_normal(len(xy))), n_boot=99, seed=1)
    assert not verdict.has_walls and verdict.p_value > S.ALPHA
    assert set(verdict.as_dict()) >= {"alpha", "p_value", "critical_statistic", "bootstrap"}


def test_the_noise_comes_from_pairs_that_share_a_label():
    """Domains two cells wide: the median over all bonds is the wall's own jump; the noise
    from same-label pairs (the orientation parallel to the walls) is not."""
    rng = np.random.default_rng(7)
    xy, x, _ = lattice(24, 24)
    labels = (x // 2) % 2
    z = 4.0 * labels + 0.5 * rng.standard_normal(len(xy))
    pairs = S._pairs(segmentation(xy, labels, z), 0.0)
    noise = S.estimate_noise(z[:, None], S.one_label(segmentation(xy, labels, z)), pairs)
    assert noise.sigma[0] == pytest.approx(0.5, rel=0.25)


def test_sidak_bound_grows_with_the_number_of_walls():
    assert S.sidak_z(1) == pytest.approx(2.326, abs=1e-3)
    assert S.sidak_z(100) > S.sidak_z(10) > S.sidak_z(1)
