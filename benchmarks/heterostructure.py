"""A/B sublattice assignment on a film over a substrate whose brightness order may flip.

Synthetic ``stripes`` films (256 x 256 px, dose 150) on a substrate band along the top (35 % of
the image, truth variant 5). With ``substrate_ab_ratio`` 0.6 the substrate's B columns are
brighter than its A columns (as Ru outshines Sr in SrRuO3), so one global brightness threshold
cannot split both layers. Per scenario, seed and layer (film: truth variant != 5; substrate:
variant == 5):

- ``f1``: column detection F1 (one-to-one matching within a/4; a detection belongs to the layer
  of its nearest true column);
- ``acc_before``: share of matched columns whose sublattice equals the truth, with the split by
  one global Otsu threshold plus a neighbour vote (``legacy_split_sublattices`` below, a copy of
  ``workflows/lattice.py::split_sublattices`` before the lattice colouring);
- ``acc_after``: the same with the current ``split_sublattices`` on the image's periodicity (the
  column lattice's steps, as ``ferrogym analyze`` splits them).

Scenarios: ``flipped`` (ratio 0.6), ``same_order`` (ratio 1.5), and ratio 0.6 with an intensity
gradient of 1.0 across the interface (peaks change 3x), a rotated lattice (17 degrees), a
background of 0.5, a distorted lattice (strain gradient 0.15, drift shear 0.02, scan jitter
0.3 px), or defects: 5 % of the detected columns removed and 3 % false detections added at
random positions with amplitudes drawn from the real ones (accuracy is over the real columns
that remain; F1 counts the defects).

Run: ``.venv/bin/python benchmarks/heterostructure.py [--seeds 8] [--scenarios flipped,...]``
"""

import argparse

import numpy as np
from table import print_table

from ferrogym.workflows import SyntheticParams, generate
from ferrogym.workflows.detection import find_columns
from ferrogym.workflows.lattice import neighbour_graph, split_sublattices
from ferrogym.workflows.metrics import detection_scores, match_positions

SUBSTRATE = 5
BASE = dict(shape=(256, 256), domains="stripes", substrate_fraction=0.35, dose=150.0)
SCENARIOS = {
    "flipped": dict(substrate_ab_ratio=0.6),
    "same_order": dict(substrate_ab_ratio=1.5),
    "gradient": dict(substrate_ab_ratio=0.6, intensity_gradient=1.0, gradient_angle_deg=90.0),
    "rotated": dict(substrate_ab_ratio=0.6, lattice_rotation_deg=17.0),
    "background": dict(substrate_ab_ratio=0.6, background=0.5),
    "distorted": dict(substrate_ab_ratio=0.6, strain_gradient=0.15, drift_shear=0.02, scan_jitter_px=0.3),
    "defects": dict(substrate_ab_ratio=0.6),  # then 5 % of the columns dropped, 3 % false ones added
}
#: In the "defects" scenario: share of detected columns removed, and of false detections added.
DROPPED, ADDED = 0.05, 0.03


def legacy_split_sublattices(xy: np.ndarray, amplitude: np.ndarray, spacing: float) -> np.ndarray:
    """The split before this benchmark: global Otsu on log amplitude, then a neighbour vote."""
    from skimage.filters import threshold_otsu

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
    if contrast < 1.2:
        return np.full(len(xy), "A")
    return np.where(bright, "A", "B")


def with_defects(xy, amplitude, shape, rng):
    """Drop DROPPED of the columns and add ADDED false ones (uniform positions, amplitudes drawn
    from the real columns'): missing columns and false detections."""
    keep = rng.random(len(xy)) >= DROPPED
    n_false = int(round(ADDED * len(xy)))
    false_xy = rng.uniform([0, 0], [shape[1] - 1, shape[0] - 1], size=(n_false, 2))
    false_amplitude = rng.choice(amplitude, size=n_false)
    return np.vstack([xy[keep], false_xy]), np.concatenate([amplitude[keep], false_amplitude])


def measure(scenario: str, seed: int) -> list[list]:
    params = SyntheticParams(**BASE, **SCENARIOS[scenario])
    sample = generate(params, seed=seed)
    truth = sample.truth
    columns = find_columns(sample.image, truth.pixel_size_pm)
    xy, amplitude = columns.xy, columns.amplitude
    if scenario == "defects":
        xy, amplitude = with_defects(xy, amplitude, params.shape, np.random.default_rng(seed))
    before = legacy_split_sublattices(xy, amplitude, columns.spacing)
    after = split_sublattices(xy, amplitude, columns.spacing, columns.periodicity)
    tolerance = 0.25 * truth.lattice_constant_px
    detected, true = match_positions(xy, truth.xy, tolerance)
    in_substrate = truth.variant == SUBSTRATE
    nearest = np.argmin(np.hypot(*(xy[:, None, :] - truth.xy[None, :, :]).transpose(2, 0, 1)), axis=1)
    rows = []
    for layer, mine in (("film", ~in_substrate), ("substrate", in_substrate)):
        f1 = detection_scores(xy[mine[nearest]], truth.xy[mine], tolerance)["f1"]
        pairs = mine[true]
        d, t = detected[pairs], true[pairs]
        rows.append([
            scenario, seed, layer, int(mine.sum()), f1,
            float(np.mean(before[d] == truth.sublattice[t])),
            float(np.mean(after[d] == truth.sublattice[t])),
        ])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    scenarios = args.scenarios.split(",")
    rows = [row for scenario in scenarios for seed in range(args.seeds) for row in measure(scenario, seed)]
    print_table(["scenario", "seed", "layer", "true", "f1", "acc_before", "acc_after"], rows)
    print()
    summary = []
    for scenario in scenarios:
        for layer in ("film", "substrate"):
            mine = np.array([r[4:] for r in rows if r[0] == scenario and r[2] == layer], dtype=float)
            summary.append([scenario, layer, *np.median(mine, axis=0), float(mine[:, 2].min())])
    print_table(["scenario", "layer", "median_f1", "median_acc_before", "median_acc_after", "min_acc_after"], summary)


if __name__ == "__main__":
    main()
