"""Does the reward agree with the truth? Spearman correlation of reward and B-site ARI.

For each synthetic image with walls (``sample_params`` with seeds 0..N-1: stripes, two wall
families and needles at random angles, doses, Sm fractions...), evaluate random configurations
of the search space and print, per image and per built-in reward: the Spearman correlation
between reward and B-site ARI, the ARI of the reward's favourite configuration and the best
ARI among the configurations.

Run: ``.venv/bin/python benchmarks/reward_truth.py [--images 8] [--configs 200]``
"""

import argparse

import numpy as np
from scipy.stats import spearmanr
from table import print_table

from ferrogym.workflows import REWARDS, SEARCH_SPACE, Workflow, generate, sample_params


def audit_image(seed: int, n_configs: int) -> list[list]:
    """One row per reward for the synthetic image of this seed."""
    sample = generate(sample_params(np.random.default_rng(seed)), seed=seed)
    workflow = Workflow.from_sample(sample)
    rng = np.random.default_rng(1000 + seed)
    evaluations = [workflow.evaluate(SEARCH_SPACE.sample(rng)) for _ in range(n_configs)]
    ari = np.array([e.metrics["ari"] for e in evaluations])
    p = sample.params
    image = f"{seed}:{p.domains}@{p.wall_angle_deg:.0f}deg,sm={p.sm_fraction:.2f}"
    rows = []
    for name, reward in REWARDS.items():
        values = np.array([reward(e.segmentation).value for e in evaluations])
        rho = spearmanr(values, ari)[0] if np.ptp(values) > 0 else float("nan")
        rows.append([image, name, float(rho), float(ari[np.argmax(values)]), float(ari.max())])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--configs", type=int, default=200)
    args = parser.parse_args()
    rows = [row for seed in range(args.images) for row in audit_image(seed, args.configs)]
    print_table(["image", "reward", "spearman", "ari_of_favourite", "best_ari"], rows)
    print()
    summary = []
    for name in REWARDS:
        mine = [r for r in rows if r[1] == name]
        rho = np.array([r[2] for r in mine])
        gap = np.array([r[4] - r[3] for r in mine])
        summary.append([name, float(np.nanmedian(rho)), float(np.nanmin(rho)), int(np.sum(gap <= 0.05)), len(mine)])
    print_table(["reward", "median_spearman", "min_spearman", "favourite_within_0.05_of_best", "images"], summary)


if __name__ == "__main__":
    main()
