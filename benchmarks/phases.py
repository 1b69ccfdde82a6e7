"""Phases and variants of a film on a substrate, as ``ferrogym analyze`` reports them.

Synthetic heterostructures with truth: a film with stripe domains on a non-polar substrate of
other chemistry (substrate A:B peak ratio 0.5-1.6, so the brightness order flips on some seeds),
the interface at 20-50 % of the height and tilted by up to 10 degrees from the lattice. Each
image gets the search ``ferrogym analyze`` runs (TPE, ``--budget`` evaluations) and the labels
it writes; per seed the table prints:

- ``phases``: phases reported in summary.json (labels grouped by their column-intensity ratio);
- ``phase_ari``: ARI of the reported phase of each cell against the truth (film / substrate);
- ``film_variant_ari``: ARI of the labels against the true variants on the film's cells;
- ``ari``: the workflow's B-site ARI of all labels against all true variants.

Run: ``.venv/bin/python benchmarks/phases.py [--seeds 8] [--budget 30] [--first-seed 700] [--shape 256x256]``
"""

import argparse

import numpy as np
from sklearn.metrics import adjusted_rand_score
from table import print_table

from ferrogym.agents.analyze import analyze
from ferrogym.workflows.images import parse_images
from ferrogym.workflows.order import phases_of_labels
from ferrogym.workflows.synthetic import SUBSTRATE

HETEROSTRUCTURES = "substrate_fraction=0.2:0.5,substrate_ab_ratio=0.5:1.6,interface_tilt_deg=-10:10,domains=stripes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--first-seed", type=int, default=700)
    parser.add_argument("--shape", default="256x256")
    args = parser.parse_args()
    last = args.first_seed + args.seeds - 1
    images = parse_images(f"synthetic:{args.first_seed}-{last},shape={args.shape},{HETEROSTRUCTURES}")
    rows = []
    for index in range(len(images)):
        workflow = images.workflow(index)
        result = analyze(workflow, "bayes-tpe", args.budget, progress=False)
        labels = result.answer.segmentation.labels
        truth = workflow.truth_segmentation.labels
        known = (labels >= 0) & (truth >= 0)
        phase_of = phases_of_labels(workflow.order, labels)
        phase = np.array([phase_of[int(k)] for k in labels[known]])
        film = known & (truth != SUBSTRATE)
        rows.append([
            images.name(index), result.search.best.reward, len(set(phase_of.values())),
            adjusted_rand_score(truth[known] == SUBSTRATE, phase),
            adjusted_rand_score(truth[film], labels[film]), result.search.best.metrics["ari"],
        ])
    print_table(["image", "reward", "phases", "phase_ari", "film_variant_ari", "ari"], rows)
    columns = np.array([row[3:] for row in rows], dtype=float)
    print(f"\nmedian phase ARI {np.median(columns[:, 0]):.3f} (min {columns[:, 0].min():.3f}), "
          f"film variant ARI {np.median(columns[:, 1]):.3f} (min {columns[:, 1].min():.3f}), "
          f"over {len(rows)} seeds, {args.budget} TPE evaluations each")


if __name__ == "__main__":
    main()
