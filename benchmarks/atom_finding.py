"""Atom finding and the displacement route on synthetic images with ground truth.

Per dose and seed (``sample_params`` draws with four-variant ``two_families`` domains, Sm below
the antipolar threshold and no mis-tilt, so that the truth has exactly four variants and no
fake offset): detection precision/recall/F1 (one-to-one matching within a/4), the RMS error of
the B-site displacement in pixels (B sites with a complete cage), and the B-site ARI of the
displacement descriptor clustered by a 4-component Gaussian mixture.

Run: ``.venv/bin/python benchmarks/atom_finding.py [--seeds 5] [--doses 50,100,200,400]``
"""

import argparse

import numpy as np
from table import print_table

from ferrogym.workflows import Workflow, generate, sample_params
from ferrogym.workflows.metrics import detection_scores, match_positions

DISPLACEMENT_4 = dict(descriptor="displacement", reduction="none", clustering="gmm", n_clusters=4)


def measure(dose: float, seed: int) -> list:
    params = sample_params(
        np.random.default_rng(seed), dose=dose, domains="two_families", sm_fraction=0.05, mistilt_offset_px=(0.0, 0.0)
    )
    sample = generate(params, seed=seed)
    workflow = Workflow.from_sample(sample)
    lattice, truth = workflow.lattice, sample.truth
    tolerance = 0.25 * lattice.lattice_constant_px
    scores = detection_scores(lattice.xy, truth.xy, tolerance)
    found, true = match_positions(lattice.xy, truth.xy, tolerance)
    b_pairs = (lattice.sublattice[found] == "B") & np.isfinite(lattice.b_displacement[found, 0])
    error = lattice.b_displacement[found[b_pairs]] - truth.b_displacement[true[b_pairs]]
    rms = float(np.sqrt(np.mean(np.sum(error**2, axis=1))))
    ari = workflow.evaluate(DISPLACEMENT_4).metrics["ari"]
    return [dose, seed, len(truth.xy), len(lattice.xy), scores["precision"], scores["recall"], scores["f1"], rms, ari]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--doses", default="50,100,200,400")
    args = parser.parse_args()
    doses = [float(d) for d in args.doses.split(",")]
    rows = [measure(dose, seed) for dose in doses for seed in range(args.seeds)]
    headers = ["dose", "seed", "true", "found", "precision", "recall", "f1", "disp_rms_px", "ari_disp_gmm4"]
    print_table(headers, rows)
    print()
    summary = []
    for dose in doses:
        mine = np.array([r[4:] for r in rows if r[0] == dose], dtype=float)
        summary.append([dose, float(mine[:, 2].min()), float(np.median(mine[:, 3])), float(mine[:, 3].max()), float(mine[:, 4].min())])
    print_table(["dose", "min_f1", "median_disp_rms_px", "max_disp_rms_px", "min_ari"], summary)


if __name__ == "__main__":
    main()
