"""The real SrTiO3 image has no domains: does the workflow say so?

Loads ``../shared/data/SrTiO3_ADF_cropped.hdf5`` and prints: columns found against what the
measured lattice implies (an A and a B column per primitive A cell over the image area), the mean B-site
displacement in lattice constants, and the highest combined reward over random configurations
of the search space, beside the same statistic on synthetic images that do have walls.

Run: ``.venv/bin/python benchmarks/srtio3_no_walls.py [--configs 100] [--synthetic 4]``
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from table import print_table

from ferrogym.workflows import SEARCH_SPACE, Workflow, generate, load_image, sample_params

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "SrTiO3_ADF_cropped.hdf5"


def best_reward(workflow: Workflow, n_configs: int) -> tuple[float, dict]:
    rng = np.random.default_rng(0)
    evaluations = [workflow.evaluate(SEARCH_SPACE.sample(rng)) for _ in range(n_configs)]
    best = max(evaluations, key=lambda e: e.reward)
    return best.reward, best.config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=100)
    parser.add_argument("--synthetic", type=int, default=4)
    args = parser.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} is absent")
        return 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the file stores its scale without units
        image = load_image(DATA)
    workflow = Workflow(image)
    lattice = workflow.lattice
    a = lattice.lattice_constant_px
    rows, cols = image.array.shape
    columns_per_cell = 2 if lattice.has_b_sites else 1
    implied = columns_per_cell * (cols - 1) * (rows - 1) / lattice.cell_area_px
    displacement = np.linalg.norm(lattice.b_displacement[lattice.sublattice == "B"], axis=1)
    srtio3_reward, srtio3_config = best_reward(workflow, args.configs)
    print_table(
        ["a_px", "columns_found", "implied", "ratio", "A", "B", "mean_|b_disp|/a", "best_reward"],
        [[a, len(lattice.xy), implied, len(lattice.xy) / implied, int((lattice.sublattice == "A").sum()),
          int((lattice.sublattice == "B").sum()), float(np.nanmean(displacement) / a), srtio3_reward]],
    )
    print(f"favourite configuration on SrTiO3: {srtio3_config}\n")
    rows_out = []
    for seed in range(args.synthetic):
        sample = generate(sample_params(np.random.default_rng(seed)), seed=seed)
        reward, _ = best_reward(Workflow.from_sample(sample), args.configs)
        rows_out.append([f"synthetic {seed} ({sample.params.domains})", reward])
    rows_out.append(["SrTiO3 (no walls)", srtio3_reward])
    print_table(["image", f"best_combined_reward_of_{args.configs}"], rows_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
