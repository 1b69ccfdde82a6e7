"""Tests for ferrogym.workflows.metrics: truth metrics (ARI, wall F1, detection matching)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from ferrogym.workflows.metrics import detection_scores, match_positions, variant_ari, wall_f1

EMPTY = np.empty((0, 2))


def grid_points(n=10, spacing=10.0):
    return spacing * np.stack(np.meshgrid(np.arange(n), np.arange(n)), -1).reshape(-1, 2).astype(float)


# ---------------------------------------------------------------------------------------------
# variant_ari


def test_variant_ari_of_a_relabelled_permutation_is_one():
    truth = np.repeat([0, 1, 2, 3], 25)
    predicted = np.array([3, 0, 2, 1])[truth]
    assert variant_ari(predicted, truth) == (1.0, 1.0)


def test_variant_ari_ignores_unassigned_and_reports_the_assigned_share():
    truth = np.repeat([0, 1], 50)
    predicted = 1 - truth
    predicted[::4] = -1  # 25 of 100 unassigned
    ari, share = variant_ari(predicted, truth)
    assert ari == 1.0
    assert share == pytest.approx(0.75)


def test_variant_ari_ignores_sites_without_a_true_variant():
    truth = np.array([0, 0, 1, 1, -1, -1])
    predicted = np.array([1, 1, 0, 0, 0, 1])
    assert variant_ari(predicted, truth) == (1.0, pytest.approx(4 / 6))


def test_variant_ari_known_value():
    truth = np.array([0, 0, 0, 1, 1, 1])
    predicted = np.array([0, 0, 1, 1, 2, 2])
    ari, share = variant_ari(predicted, truth)
    assert ari == pytest.approx(adjusted_rand_score(truth, predicted))
    assert ari == pytest.approx(0.24242424, abs=1e-6)
    assert share == 1.0


def test_variant_ari_of_random_labels_is_near_zero():
    rng = np.random.default_rng(0)
    ari, _ = variant_ari(rng.integers(0, 4, 5000), rng.integers(0, 4, 5000))
    assert abs(ari) < 0.02


@pytest.mark.parametrize(
    "predicted, truth, share",
    [
        (np.array([0, -1, -1]), np.array([0, 1, 1]), 1 / 3),
        (np.array([-1, -1]), np.array([0, 1]), 0.0),
        (np.array([], int), np.array([], int), 0.0),
    ],
)
def test_variant_ari_with_fewer_than_two_assigned_sites_is_zero(predicted, truth, share):
    ari, got_share = variant_ari(predicted, truth)
    assert ari == 0.0
    assert got_share == pytest.approx(share)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 60).flatmap(lambda n: st.tuples(
    arrays(np.int64, n, elements=st.integers(-1, 3)), arrays(np.int64, n, elements=st.integers(-1, 3))
)))
def test_variant_ari_equals_ari_on_the_sites_with_both_labels(pair):
    predicted, truth = pair
    ari, share = variant_ari(predicted, truth)
    both = (predicted >= 0) & (truth >= 0)
    assert share == pytest.approx(both.mean())
    if both.sum() >= 2:
        assert ari == pytest.approx(adjusted_rand_score(truth[both], predicted[both]))
    assert -1.0 <= ari <= 1.0
    # relabelling the prediction changes nothing
    relabelled = np.where(predicted >= 0, (predicted + 2) % 4 + 10, -1)
    assert variant_ari(relabelled, truth)[0] == pytest.approx(ari)


# ---------------------------------------------------------------------------------------------
# wall_f1


def test_wall_f1_identical_points_is_one():
    points = grid_points(5)
    assert wall_f1(points, points.copy(), tolerance=1.0) == 1.0


def test_wall_f1_empty_cases():
    points = grid_points(3)
    assert wall_f1(EMPTY, EMPTY, tolerance=1.0) == 1.0
    assert wall_f1(points, EMPTY, tolerance=1.0) == 0.0
    assert wall_f1(EMPTY, points, tolerance=1.0) == 0.0


def test_wall_f1_respects_tolerance():
    truth = grid_points(4, spacing=20.0)
    shifted = truth + [3.0, 4.0]  # 5 px away
    assert wall_f1(shifted, truth, tolerance=5.5) == 1.0
    assert wall_f1(shifted, truth, tolerance=5.0) == 1.0  # "within" includes the tolerance itself
    assert wall_f1(shifted, truth, tolerance=4.5) == 0.0


def test_wall_f1_known_value_with_spurious_and_missed_points():
    truth = grid_points(4, spacing=20.0)  # 16 points
    extra = truth[:8] + [500.0, 0.0]  # 8 spurious predictions far away
    predicted = np.concatenate([truth[:12], extra])  # 12 right, 4 missed
    precision, recall = 12 / 20, 12 / 16
    expected = 2 * precision * recall / (precision + recall)
    assert wall_f1(predicted, truth, tolerance=1.0) == pytest.approx(expected)
    # F1 is symmetric in its two point sets
    assert wall_f1(truth, predicted, tolerance=1.0) == pytest.approx(expected)


def test_wall_f1_is_not_one_to_one():
    """Two predictions next to one true point are both right (walls are point clouds, not atoms)."""
    truth = np.array([[0.0, 0.0]])
    predicted = np.array([[0.5, 0.0], [-0.5, 0.0]])
    assert wall_f1(predicted, truth, tolerance=1.0) == 1.0


# ---------------------------------------------------------------------------------------------
# match_positions


def _assert_one_to_one(d_idx, t_idx, detected, truth, tolerance):
    assert len(d_idx) == len(t_idx)
    assert len(set(d_idx.tolist())) == len(d_idx), "a detection was matched twice"
    assert len(set(t_idx.tolist())) == len(t_idx), "a true position was matched twice"
    if len(d_idx):
        distance = np.hypot(*(detected[d_idx] - truth[t_idx]).T)
        assert (distance <= tolerance + 1e-9).all()


def test_match_identical_positions():
    truth = grid_points(4)
    order = np.random.default_rng(0).permutation(len(truth))
    d_idx, t_idx = match_positions(truth[order], truth, tolerance=2.0)
    assert len(d_idx) == len(truth)
    assert np.array_equal(order[d_idx], t_idx)


def test_match_positions_is_one_to_one_and_prefers_the_nearest():
    truth = np.array([[0.0, 0.0]])
    detected = np.array([[0.3, 0.0], [0.1, 0.0], [0.2, 0.0]])
    d_idx, t_idx = match_positions(detected, truth, tolerance=1.0)
    assert d_idx.tolist() == [1] and t_idx.tolist() == [0]


def test_match_positions_respects_tolerance():
    truth = np.array([[0.0, 0.0], [100.0, 0.0]])
    detected = np.array([[0.0, 2.0], [100.0, 0.5]])
    d_idx, t_idx = match_positions(detected, truth, tolerance=1.0)
    assert d_idx.tolist() == [1] and t_idx.tolist() == [1]
    d_idx, _ = match_positions(detected, truth, tolerance=2.0)  # inclusive
    assert sorted(d_idx.tolist()) == [0, 1]


@pytest.mark.parametrize(
    "detected, truth",
    [(EMPTY, grid_points(2)), (grid_points(2), EMPTY), (EMPTY, EMPTY), (grid_points(2), grid_points(2) + 50.0)],
)
def test_match_positions_with_nothing_to_match(detected, truth):
    d_idx, t_idx = match_positions(detected, truth, tolerance=1.0)
    assert len(d_idx) == 0 and len(t_idx) == 0
    assert np.issubdtype(d_idx.dtype, np.integer) and np.issubdtype(t_idx.dtype, np.integer)


def test_match_positions_prefers_the_globally_shorter_assignment():
    """Greedy nearest-first would pair d0-t1 and leave d1 alone; the matching pairs both."""
    truth = np.array([[0.0, 0.0], [1.0, 0.0]])
    detected = np.array([[0.8, 0.0], [1.7, 0.0]])
    d_idx, t_idx = match_positions(detected, truth, tolerance=0.9)
    assert dict(zip(d_idx.tolist(), t_idx.tolist())) == {0: 0, 1: 1}


points_strategy = st.integers(0, 25).flatmap(
    lambda n: arrays(np.float64, (n, 2), elements=st.floats(0, 20, allow_nan=False).map(lambda v: round(v, 2)))
)


@settings(max_examples=80, deadline=None)
@given(points_strategy, points_strategy, st.sampled_from([0.5, 1.0, 3.0]))
def test_match_positions_is_a_maximal_one_to_one_matching(detected, truth, tolerance):
    d_idx, t_idx = match_positions(detected, truth, tolerance)
    _assert_one_to_one(d_idx, t_idx, detected, truth, tolerance)
    # maximal: no unmatched detection lies within tolerance of an unmatched true position
    free_d = np.setdiff1d(np.arange(len(detected)), d_idx)
    free_t = np.setdiff1d(np.arange(len(truth)), t_idx)
    if len(free_d) and len(free_t):
        distance = np.hypot(*(detected[free_d][:, None, :] - truth[free_t][None, :, :]).transpose(2, 0, 1))
        assert (distance > tolerance).all()


def test_match_positions_matches_as_many_as_it_can():
    truth = np.array([[0.0, 0.0], [0.99, 0.0], [1.98, 0.0]])
    detected = np.array([[0.99, 0.0], [1.98, 0.0], [2.97, 0.0]])
    d_idx, t_idx = match_positions(detected, truth, tolerance=1.0)
    _assert_one_to_one(d_idx, t_idx, detected, truth, 1.0)
    # d0-t0, d1-t1, d2-t2 are all 0.99 apart: three pairs are possible
    assert len(d_idx) == 3


@settings(max_examples=40, deadline=None)
@given(points_strategy, points_strategy)
def test_match_positions_count_is_maximum_when_points_are_sparse(detected, truth):
    """With positions at least 3 tolerances apart within each set, there are no competing chains."""
    tolerance = 0.4

    def sparse(points):
        keep = []
        for i, p in enumerate(points):
            if all(np.hypot(*(p - points[j])) >= 3 * tolerance for j in keep):
                keep.append(i)
        return points[keep]

    detected, truth = sparse(detected), sparse(truth)
    d_idx, _ = match_positions(detected, truth, tolerance)
    if len(detected) and len(truth):
        close = np.hypot(*(detected[:, None, :] - truth[None, :, :]).transpose(2, 0, 1)) <= tolerance
        rows, cols = linear_sum_assignment(-close.astype(float))
        assert len(d_idx) == int(close[rows, cols].sum())
    else:
        assert len(d_idx) == 0


# ---------------------------------------------------------------------------------------------
# detection_scores


def test_detection_scores_known_values():
    truth = grid_points(5, spacing=10.0)[:10]
    close = truth[:9] + [0.3, -0.2]
    far = np.array([[500.0, 500.0], [-300.0, 40.0]])
    scores = detection_scores(np.concatenate([close, far]), truth, tolerance=1.0)
    assert scores["precision"] == pytest.approx(9 / 11)
    assert scores["recall"] == pytest.approx(9 / 10)
    assert scores["f1"] == pytest.approx(18 / 21)
    assert set(scores) == {"precision", "recall", "f1"}


def test_detection_scores_duplicates_count_once():
    truth = grid_points(3)
    detected = np.concatenate([truth, truth + 0.1])
    scores = detection_scores(detected, truth, tolerance=1.0)
    assert scores["recall"] == 1.0
    assert scores["precision"] == pytest.approx(0.5)


def test_detection_scores_perfect_and_empty():
    truth = grid_points(3)
    assert detection_scores(truth + 0.2, truth, tolerance=0.5) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert detection_scores(EMPTY, truth, tolerance=0.5) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert detection_scores(truth, EMPTY, tolerance=0.5) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
