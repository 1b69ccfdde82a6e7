"""Tests for ferrogym.workflows.clustering: reduction, clustering and deterministic label numbers."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.exceptions import ConvergenceWarning

from ferrogym.workflows.clustering import DegenerateClustering, canonical_labels, cluster, reduce

METHODS = ("gmm", "kmeans", "bgmm")
COVARIANCES = ("full", "tied", "diag", "spherical")
SIZES = (60, 40, 20)


def blobs(seed=1, dims=3, sizes=SIZES, separation=12.0):
    """Well-separated Gaussian blobs, listed largest first, and their true labels."""
    rng = np.random.default_rng(seed)
    centres = separation * np.eye(max(dims, len(sizes)))[: len(sizes), :dims]
    values = np.concatenate([c + rng.normal(size=(n, dims)) for c, n in zip(centres, sizes)])
    return values, np.repeat(np.arange(len(sizes)), sizes)


# ---------------------------------------------------------------------------------------------
# canonical_labels


@pytest.mark.parametrize(
    "raw, expected",
    [
        ([5, 5, 2, 2, 7], [0, 0, 1, 1, 2]),  # tie between 5 and 2: 5 occurs first
        ([3, 1, 1, 3, 3, 2], [0, 1, 1, 0, 0, 2]),  # by size: 3 (three), 1 (two), 2 (one)
        ([2, 2, 0, 0, 1], [0, 0, 1, 1, 2]),
        ([1, 0, 0, 2, 2, 2], [2, 1, 1, 0, 0, 0]),
        ([4, 4, 4], [0, 0, 0]),
        ([9], [0]),
    ],
)
def test_canonical_labels_known_answers(raw, expected):
    assert canonical_labels(np.array(raw)).tolist() == expected


@settings(max_examples=80, deadline=None)
@given(arrays(np.int64, st.integers(1, 60), elements=st.integers(0, 12)))
def test_canonical_labels_invariants(raw):
    out = canonical_labels(raw)
    k = len(np.unique(raw))
    assert sorted(np.unique(out).tolist()) == list(range(k))
    # a relabelling: same partition
    pairs = set(zip(raw.tolist(), out.tolist()))
    assert len(pairs) == k
    # sizes do not increase; equal sizes are ordered by first occurrence
    counts = np.bincount(out)
    first = np.array([np.flatnonzero(out == j)[0] for j in range(k)])
    for j in range(k - 1):
        assert counts[j] > counts[j + 1] or (counts[j] == counts[j + 1] and first[j] < first[j + 1])
    # idempotent, and independent of the raw label values
    assert np.array_equal(canonical_labels(out), out)
    assert np.array_equal(canonical_labels(raw * 3 + 100), out)


def test_canonical_labels_keeps_unassigned_or_refuses():
    raw = np.array([-1, 0, 0])
    try:
        out = canonical_labels(raw)
    except ValueError:
        return
    assert out.tolist() == [-1, 0, 0]


# ---------------------------------------------------------------------------------------------
# reduce


def test_reduce_none_returns_values_unchanged():
    values, _ = blobs()
    assert reduce(values, "none", 2, seed=0) is values


@pytest.mark.parametrize(
    "shape, n_components, expected",
    [
        ((100, 10), 4, (100, 4)),
        ((100, 3), 8, (100, 3)),  # no more components than features
        ((5, 10), 8, (5, 4)),  # no more than samples - 1
        ((20, 16), 16, (20, 16)),
    ],
)
def test_reduce_pca_caps_components(shape, n_components, expected):
    values = np.random.default_rng(0).normal(size=shape)
    out = reduce(values, "pca", n_components, seed=0)
    assert out.shape == expected
    assert np.isfinite(out).all()


def test_reduce_pca_keeps_the_dominant_direction_and_is_deterministic():
    rng = np.random.default_rng(2)
    t = rng.normal(size=200)
    values = np.column_stack([10 * t, 0.1 * rng.normal(size=200), 0.1 * rng.normal(size=200)])
    out = reduce(values, "pca", 1, seed=0)
    assert out.shape == (200, 1)
    assert abs(np.corrcoef(out[:, 0], t)[0, 1]) > 0.99
    assert np.array_equal(out, reduce(values, "pca", 1, seed=0))


def test_reduce_unknown_method_raises_key_error():
    with pytest.raises(KeyError, match=r"unknown reduction 'umap'; use 'none' or 'pca'"):
        reduce(np.zeros((10, 3)), "umap", 2, seed=0)


# ---------------------------------------------------------------------------------------------
# cluster


@pytest.mark.parametrize("covariance", COVARIANCES)
@pytest.mark.parametrize("method", METHODS)
def test_cluster_recovers_separated_blobs(method, covariance):
    values, truth = blobs()
    labels = cluster(values, method, 3, covariance, seed=0)
    # canonical numbering: the blobs are listed largest first, so the labels equal the truth
    assert np.array_equal(labels, truth)


@pytest.mark.parametrize("method", METHODS)
def test_cluster_is_deterministic_and_canonical(method):
    values, _ = blobs(seed=4, dims=5, sizes=(50, 50, 30, 30))
    first = cluster(values, method, 4, "diag", seed=3)
    second = cluster(values.copy(), method, 4, "diag", seed=3)
    assert np.array_equal(first, second)
    assert np.array_equal(canonical_labels(first), first)
    counts = np.bincount(first)
    assert (np.diff(counts) <= 0).all()


def test_cluster_labels_do_not_depend_on_sample_order_beyond_numbering():
    values, truth = blobs(seed=6)
    order = np.random.default_rng(0).permutation(len(values))
    labels = cluster(values[order], "kmeans", 3, "full", seed=0)
    assert np.array_equal(labels, truth[order])


def test_cluster_returns_one_label_per_sample_in_range():
    values = np.random.default_rng(0).normal(size=(80, 4))
    for method in METHODS:
        labels = cluster(values, method, 5, "spherical", seed=1)
        assert labels.shape == (80,)
        assert labels.min() == 0 and labels.max() < 5


@pytest.mark.parametrize("method", METHODS)
def test_too_few_samples_is_degenerate(method):
    values = np.random.default_rng(0).normal(size=(5, 2))
    with pytest.raises(DegenerateClustering, match=r"5 sites are too few for 3 clusters"):
        cluster(values, method, 3, "diag", seed=0)


def test_twice_as_many_samples_as_clusters_is_enough():
    values = np.array([[0.0], [0.1], [10.0], [10.1], [20.0], [20.1]])
    assert cluster(values, "kmeans", 3, "full", seed=0).tolist() == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("covariance", ["full", "tied"])
@pytest.mark.parametrize("method", ["gmm", "bgmm"])
def test_full_covariance_in_too_many_dimensions_is_degenerate(method, covariance):
    values = np.random.default_rng(0).normal(size=(20, 6))  # 6 * 7 / 2 = 21 > 20 parameters
    with pytest.raises(
        DegenerateClustering,
        match=rf"a {covariance} covariance in 6 dimensions has more parameters than the 20 sites; reduce the features first \(PCA\)",
    ):
        cluster(values, method, 3, covariance, seed=0)


def test_covariance_size_limit_is_exact():
    values = np.random.default_rng(0).normal(size=(21, 6))  # 21 parameters, 21 samples: allowed
    assert cluster(values, "gmm", 3, "full", seed=0).shape == (21,)


@pytest.mark.parametrize(
    "method, covariance", [("gmm", "diag"), ("gmm", "spherical"), ("bgmm", "diag"), ("kmeans", "full")]
)
def test_cheap_covariances_and_kmeans_are_allowed_in_many_dimensions(method, covariance):
    values = np.random.default_rng(0).normal(size=(20, 6))
    labels = cluster(values, method, 3, covariance, seed=0)
    assert labels.shape == (20,)


def test_unknown_clustering_method_raises_key_error():
    values, _ = blobs()
    with pytest.raises(KeyError, match=r"unknown clustering 'dbscan'; use 'gmm', 'kmeans' or 'bgmm'"):
        cluster(values, "dbscan", 3, "full", seed=0)


def test_degenerate_clustering_is_not_an_input_error():
    """A degenerate configuration is a low reward, not bad user input (DESIGN.md section 4)."""
    assert not issubclass(DegenerateClustering, ValueError)


def test_cluster_does_not_leak_convergence_warnings():
    """Two distinct points and three clusters: k-means itself warns (ConvergenceWarning)."""
    values = np.repeat([[0.0, 0.0], [1.0, 1.0]], 5, axis=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = cluster(values, "kmeans", 3, "full", seed=0)
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert labels.tolist() == [0] * 5 + [1] * 5
