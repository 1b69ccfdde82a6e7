"""Weak walls, tiny domains and no walls: two verdicts on the `order` reward's favourite.

Per image, ``--configs`` random configurations of the search space are evaluated once, and the
`order` reward's favourite (highest value) is judged twice: by the threshold ``ferrogym
analyze`` applies (walls when the best reward reaches
:data:`~ferrogym.workflows.rewards.NO_WALLS_BELOW`) and by the significance test
(:func:`~ferrogym.workflows.significance.judge_walls`, 1 % false positives per image). Prints
per image the favourite's B-site ARI, both verdicts and the test's p-value, and per family the
share of images reported with walls by each and the median favourite ARI. Families:

- weak: two variants (90-degree walls), B off-centring 0.40-0.50 px at doses 100-200;
- weak four: four variants, 0.5 px, dose 100-200;
- tiny: two variants, domains 1.5-2 cells wide (period 3-4 cells);
- no-wall families of ``benchmarks/no_walls.py`` (any wall reported is a false positive).

Run: ``.venv/bin/python benchmarks/wall_significance.py [--images 3] [--configs 40]``
"""

import argparse
import sys

import numpy as np
from no_walls import NO_WALL_FAMILIES
from table import print_table

from ferrogym.workflows.images import parse_images
from ferrogym.workflows.rewards import NO_WALLS_BELOW
from ferrogym.workflows.significance import judge_walls
from ferrogym.workflows.space import SEARCH_SPACE

PX = 16.0  # pm per pixel, fixed so that the off-centring in px is what the family says
FAMILIES = {
    "weak": f"domains=stripes,pixel_size_pm={PX},displacement_pm={0.40 * PX}:{0.50 * PX},dose=100:200",
    "weak four": f"domains=four_stripes,pixel_size_pm={PX},displacement_pm={0.5 * PX},dose=100:200",
    "tiny": "domains=stripes,period_cells=3:4",
    **NO_WALL_FAMILIES,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--configs", type=int, default=40)
    parser.add_argument("--first-seed", type=int, default=700)
    parser.add_argument("--shape", default="256x256")
    args = parser.parse_args()
    rows, per_family = [], {}
    last = args.first_seed + args.images - 1
    for family, fields in FAMILIES.items():
        images = parse_images(f"synthetic:{args.first_seed}-{last},shape={args.shape},{fields}")
        for index in range(len(images)):
            workflow = images.workflow(index)
            rng = np.random.default_rng([args.first_seed, index])
            evaluations = [workflow.evaluate(SEARCH_SPACE.sample(rng)) for _ in range(args.configs)]
            favourite = max(evaluations, key=lambda e: e.reward)
            verdict = judge_walls(favourite.segmentation)
            walled = family not in NO_WALL_FAMILIES
            ari = favourite.metrics["ari"] if walled else float("nan")
            threshold = favourite.reward >= NO_WALLS_BELOW
            rows.append([family, images.name(index), favourite.reward, ari, threshold, verdict.has_walls,
                         verdict.p_value, len(verdict.walls) if verdict.has_walls else 0])
            per_family.setdefault(family, []).append((threshold, verdict.has_walls, ari))
    print(f"favourite of {args.configs} random configurations per image; walls by the threshold "
          f"(order >= {NO_WALLS_BELOW}) and by the test at 1 % per image")
    print_table(["family", "image", "order", "favourite_ari", "threshold_walls", "test_walls", "p_value",
                 "n_walls"], rows)
    print()
    print_table(["family", "images", "threshold_walls", "test_walls", "median_favourite_ari"],
                [[family, len(v), f"{sum(t for t, _, _ in v)}/{len(v)}", f"{sum(w for _, w, _ in v)}/{len(v)}",
                  float(np.median([a for _, _, a in v])) if family not in NO_WALL_FAMILIES else float("nan")]
                 for family, v in per_family.items()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
