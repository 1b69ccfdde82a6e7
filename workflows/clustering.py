"""Reduce descriptors and cluster them into labels that are numbered deterministically.

Reduction is none or PCA; clustering is a Gaussian mixture (full, tied, diag, spherical),
k-means or a Bayesian Gaussian mixture. Cluster ids are renumbered by decreasing cluster
size (ties: the cluster whose first member comes first), so the same configuration always
gives the same labels and label 0 is the majority.

Fits and reductions run on one thread (BLAS and OpenMP). The matrices are tiny (a few
dimensions, hundreds of sites): multithreaded OpenBLAS spent about 14 times longer waking
threads than solving them (1.46 s against 0.11 s for one 7-component mixture on 2 cores). On a
2048 x 2048 frame (12,500 B sites, patches of up to 2,000 pixels) one thread was as fast in the
median over 40 random configurations (0.32 s both) and faster at the 90th percentile (1.46 s
against 1.75 s) on an idle machine, and two to four times faster on a busy one. And a process that has run an
OpenMP thread pool (k-means) and then forks, as ``AsyncVectorEnv`` does by default on Linux,
hangs in the child's first k-means; without the pool there is nothing to inherit.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
from threadpoolctl import threadpool_limits


class DegenerateClustering(Exception):
    """The configuration cannot be fitted meaningfully on these features (reason in message)."""


def reduce(values: np.ndarray, method: str, n_components: int, seed: int) -> np.ndarray:
    """Apply the reduction; PCA keeps at most as many components as the data supports."""
    if values.shape[0] < 3:
        raise DegenerateClustering(f"only {values.shape[0]} sites could be described")
    if method == "none":
        return values
    if method != "pca":
        raise KeyError(f"unknown reduction {method!r}; use 'none' or 'pca'")
    k = min(n_components, values.shape[1], values.shape[0] - 1)
    with threadpool_limits(limits=1):
        return PCA(n_components=k, random_state=seed).fit_transform(values)


def cluster(values: np.ndarray, method: str, n_clusters: int, covariance: str, seed: int) -> np.ndarray:
    """Fit the clustering and return canonical labels (0 = largest cluster).

    Raises :class:`DegenerateClustering` when there are fewer than two samples per cluster or when a
    mixture's covariance has more free parameters than there are samples (it would only fit
    noise, slowly).
    """
    values = np.asarray(values, dtype=np.float64)  # float32 patches: mixtures fail on collapsed components
    n_samples, n_dims = values.shape
    if n_samples < 2 * n_clusters:
        raise DegenerateClustering(f"{n_samples} sites are too few for {n_clusters} clusters")
    if method in ("gmm", "bgmm"):
        _check_covariance_size(covariance, n_dims, n_samples)
    model = _make_model(method, n_clusters, covariance, seed)
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        raw = model.fit_predict(values)
    return canonical_labels(raw)


def _check_covariance_size(covariance: str, n_dims: int, n_samples: int) -> None:
    if covariance in ("full", "tied") and n_dims * (n_dims + 1) // 2 > n_samples:
        raise DegenerateClustering(
            f"a {covariance} covariance in {n_dims} dimensions has more parameters than the "
            f"{n_samples} sites; reduce the features first (PCA)"
        )


def _make_model(method: str, n_clusters: int, covariance: str, seed: int):
    if method == "gmm":
        return GaussianMixture(n_clusters, covariance_type=covariance, reg_covar=1e-5, n_init=2, random_state=seed)
    if method == "bgmm":
        return BayesianGaussianMixture(
            n_components=n_clusters, covariance_type=covariance, reg_covar=1e-5, max_iter=200, random_state=seed
        )
    if method == "kmeans":
        return KMeans(n_clusters, n_init=4, random_state=seed)
    raise KeyError(f"unknown clustering {method!r}; use 'gmm', 'kmeans' or 'bgmm'")


def canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Renumber labels >= 0 as 0..K-1 by decreasing size, ties by first occurrence; -1 stays."""
    labels = np.asarray(labels)
    assigned = labels >= 0
    values, first, counts = np.unique(labels[assigned], return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))
    mapping = np.empty(values.max() + 1 if values.size else 0, dtype=int)
    mapping[values[order]] = np.arange(len(values))
    result = np.full(labels.shape, -1)
    result[assigned] = mapping[labels[assigned]]
    return result
