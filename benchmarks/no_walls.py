"""Does the reward refuse images without walls, and only those?

A Bayesian search (TPE, ``--budget`` evaluations) maximises the default reward on images with no
domain wall (the real SrTiO3 image in ``../shared/data`` and synthetic families of one domain
under smooth gradients or a smooth polarization rotation) and on images with walls (stripes,
four variants, two wall families, needles, a phase boundary). A good reward stays low on the
first kind, whatever the search finds, and high on the second; ``ferrogym analyze`` reports no
walls below ``NO_WALLS_BELOW``. Prints the best reward per image, then per family the median
best reward and its ratio to the median of the walled images.

Run: ``.venv/bin/python benchmarks/no_walls.py [--images 4] [--budget 100]``
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from table import print_table

from ferrogym.agents.search import make_strategy, run_search
from ferrogym.workflows import Workflow, load_image
from ferrogym.workflows.images import parse_images
from ferrogym.workflows.rewards import DEFAULT_REWARD, NO_WALLS_BELOW

SRTIO3 = Path(__file__).resolve().parents[2] / "shared" / "data" / "SrTiO3_ADF_cropped.hdf5"
#: One domain, nothing to find: sm_fraction stays under the antipolar threshold (a band is a wall).
NO_WALL_FAMILIES = {
    "intensity gradient": "domains=single,sm_fraction=0:0.1,intensity_gradient=0.5:1.2,gradient_angle_deg=0:180",
    "strain gradient": "domains=single,sm_fraction=0:0.1,strain_gradient=-0.08:0.08,gradient_angle_deg=0:180",
    "scan distortion": "domains=single,sm_fraction=0:0.1,drift_shear=-0.1:0.1,scan_jitter_px=0.3:0.8",
    "polarization rotation": "domains=rotation,sm_fraction=0:0.1,rotation_span_deg=60:120",
}
WALLED_FAMILIES = {
    "stripes": "domains=stripes",
    "four variants": "domains=four_stripes",
    "two families": "domains=two_families",
    "needle": "domains=needle",
    "phase boundary": "substrate_fraction=0.2:0.5",
}


def best_reward(workflow: Workflow, budget: int) -> float:
    return run_search(make_strategy("bayes-tpe", workflow, budget, 0), workflow, budget).best.reward


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="synthetic images per family")
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=500)
    parser.add_argument("--shape", default="256x256")
    args = parser.parse_args()
    rows, best = [], {}
    last = args.first_seed + args.images - 1
    for family, fields in {**NO_WALL_FAMILIES, **WALLED_FAMILIES}.items():
        images = parse_images(f"synthetic:{args.first_seed}-{last},shape={args.shape},{fields}")
        for index in range(len(images)):
            reward = best_reward(images.workflow(index), args.budget)
            best.setdefault(family, []).append(reward)
            rows.append([family, images.name(index), reward])
    if SRTIO3.exists():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the file stores its scale without units
            srtio3 = Workflow(load_image(SRTIO3))
        best["SrTiO3 (real)"] = [best_reward(srtio3, args.budget)]
        rows.append(["SrTiO3 (real)", SRTIO3.name, best["SrTiO3 (real)"][0]])
    print(f"best {DEFAULT_REWARD!r} reward of a {args.budget}-evaluation TPE search per image")
    print_table(["family", "image", "best_reward"], rows)
    walled = np.median([r for family in WALLED_FAMILIES for r in best[family]])
    print(f"\nmedian best reward of the walled images: {walled:.3f}; no walls reported below {NO_WALLS_BELOW}")
    print_table(
        ["family", "walls", "images", "median_best", "max_best", "max / walled median", "reported_no_walls"],
        [[family, "no" if family not in WALLED_FAMILIES else "yes", len(values), float(np.median(values)),
          float(np.max(values)), float(np.max(values) / walled), f"{sum(v < NO_WALLS_BELOW for v in values)}/{len(values)}"]
         for family, values in best.items()],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
