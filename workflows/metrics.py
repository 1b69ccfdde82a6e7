"""Truth metrics on images with ground truth: how good is a segmentation, really?

- :func:`variant_ari`: adjusted Rand index between predicted labels and true variants on the B
  sites (on the sites carrying a label; the assigned share is reported beside it).
- :func:`wall_f1`: F1 of predicted against true wall points, matched within one lattice constant.
- :func:`match_positions` / :func:`detection_scores`: one-to-one matching of detected and true
  atom positions, and the detection precision, recall and F1.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching
from scipy.spatial import cKDTree
from sklearn.metrics import adjusted_rand_score


def variant_ari(predicted: np.ndarray, true_variant: np.ndarray) -> tuple[float, float]:
    """(ARI over sites with a label >= 0 and a true variant >= 0, share of sites assigned)."""
    assigned = (predicted >= 0) & (true_variant >= 0)
    if assigned.sum() < 2:
        return 0.0, float(assigned.mean()) if len(assigned) else 0.0
    return float(adjusted_rand_score(true_variant[assigned], predicted[assigned])), float(assigned.mean())


def wall_f1(predicted_points: np.ndarray, true_points: np.ndarray, tolerance: float) -> float:
    """F1 of wall points: a predicted point is right if a true one lies within ``tolerance``.

    No walls predicted and none true is a perfect answer (1.0); walls on only one side score 0.
    """
    if len(predicted_points) == 0 or len(true_points) == 0:
        return 1.0 if len(predicted_points) == len(true_points) else 0.0
    precision = np.mean(cKDTree(true_points).query(predicted_points)[0] <= tolerance)
    recall = np.mean(cKDTree(predicted_points).query(true_points)[0] <= tolerance)
    return float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0


def match_positions(detected: np.ndarray, truth: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of detected to true positions closer than ``tolerance``.

    Returns index arrays (detected_index, truth_index) of the matched pairs: a minimum-cost
    bipartite matching in which leaving a detection unmatched costs 1 and all matches
    together cost less than 1, so it matches as many as it can, then prefers short distances.
    """
    if len(detected) == 0 or len(truth) == 0:
        return np.empty(0, int), np.empty(0, int)
    pairs = cKDTree(detected).sparse_distance_matrix(cKDTree(truth), tolerance, output_type="ndarray")
    if len(pairs) == 0:
        return np.empty(0, int), np.empty(0, int)
    # dummy columns let every detection stay unmatched, at cost 1 each
    n_det = len(detected)
    cost = coo_matrix(
        (
            np.concatenate([1e-9 + pairs["v"] / (tolerance * (n_det + 1)), np.ones(n_det)]),
            (np.concatenate([pairs["i"], np.arange(n_det)]), np.concatenate([pairs["j"], len(truth) + np.arange(n_det)])),
        ),
        shape=(n_det, len(truth) + n_det),
    ).tocsr()
    rows, cols = min_weight_full_bipartite_matching(cost)
    real = cols < len(truth)
    return rows[real], cols[real]


def detection_scores(detected: np.ndarray, truth: np.ndarray, tolerance: float) -> dict[str, float]:
    """Precision, recall and F1 of atom detection with one-to-one matching within ``tolerance``."""
    matched, _ = match_positions(detected, truth, tolerance)
    precision = len(matched) / len(detected) if len(detected) else 0.0
    recall = len(matched) / len(truth) if len(truth) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
