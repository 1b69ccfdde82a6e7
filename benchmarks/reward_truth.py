"""Does the reward agree with the truth? Spearman correlation of reward and B-site ARI.

For each synthetic image with walls (``synthetic:0-(N-1)``: ``sample_params`` draws stripes, two
wall families and needles at random angles, doses, Sm fractions...), evaluate random
configurations of the search space and print, per image and per built-in reward: the Spearman
correlation between reward and B-site ARI, the ARI of the reward's favourite configuration and
the best ARI among the configurations; then a summary per reward. The computation is
``ferrogym reward-audit`` (:mod:`ferrogym.agents.audit`), which also writes a figure.

Run: ``.venv/bin/python benchmarks/reward_truth.py [--images 8] [--configs 200]``
"""

import argparse

from table import print_table

from ferrogym.agents.audit import audit, summarise_audit
from ferrogym.workflows.images import SyntheticImages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--configs", type=int, default=200)
    args = parser.parse_args()
    rows = audit(SyntheticImages(0, args.images - 1), args.configs)
    print_table(["image", "family", "reward", "spearman", "ari_of_favourite", "best_ari"],
                [[r["image"], r["family"], r["reward"], r["spearman"], r["favourite_ari"], r["best_ari"]] for r in rows])
    print()
    summary = [s for s in summarise_audit(rows) if s["family"] == "all"]
    print_table(["reward", "median_spearman", "min_spearman", "favourite_within_0.05_of_best", "images"],
                [[s["reward"], s["spearman_median"], s["spearman_min"], s["n_near_best"], s["n_images"]] for s in summary])


if __name__ == "__main__":
    main()
