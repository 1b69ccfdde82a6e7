"""The default ``ferrogym analyze`` on a full frame against one evaluation of the published recipe.

On a synthetic 2048 x 2048 frame with truth (the generator's default family, two wall families
and all four polar variants, at a = 18 px, 22 pm per pixel as in ``full_frame.py``), in one
process and one run:

- ``recipe_s``: one evaluation of the published recipe (``full_frame.recipe``: LoG blobs,
  40 x 40 px patches, a 5-component Gaussian mixture fitted and refitted; nothing reused);
- ``analyze_s``: ``ferrogym.analyze`` with its default search and budget, atom finding, the
  checks, the search and writing every output (table, summary, both figures) included;
  ``atoms_s`` and ``search_s`` are its parts;
- ``command_s``: the same as the command a user types (``ferrogym analyze frame.npy
  --pixel-size-pm 22``), Python's start-up and imports included;
- ``ratio`` = analyze_s / recipe_s (the issue's target: at most 0.1) and ``command_ratio``;
- ``ari``: B-site ARI of the answer it gives against the true variants (target: at least 0.95).

Run: ``.venv/bin/python benchmarks/analyze_full_frame.py [--size 2048] [--seeds 0] [--out results/full-frame-analyze]``
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from full_frame import PIXEL_SIZE_PM, recipe
from table import print_table

from ferrogym.agents.analyze import DEFAULT_BUDGET, DEFAULT_SEARCH, analyze
from ferrogym.workflows import SyntheticParams, Workflow, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--seeds", default="0", help="comma-separated generator seeds, one frame each")
    parser.add_argument("--out", default="results/full-frame-analyze")
    args = parser.parse_args()
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        sample = generate(SyntheticParams(shape=(args.size, args.size), pixel_size_pm=PIXEL_SIZE_PM), seed=seed)
        out = Path(args.out) / f"seed{seed}"
        start = time.perf_counter()
        result = analyze(Workflow.from_sample(sample), out=out, progress=False)
        analyze_s = time.perf_counter() - start
        ari = result.workflow.truth_metrics(result.answer.segmentation)["ari"]
        with tempfile.TemporaryDirectory() as folder:
            frame = Path(folder) / "frame.npy"
            np.save(frame, sample.image)
            command = [str(Path(sys.executable).with_name("ferrogym")), "analyze", str(frame), "--pixel-size-pm",
                       str(PIXEL_SIZE_PM), "--out", str(Path(folder) / "out"), "--no-progress"]
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            command_s = time.perf_counter() - start
        recipe_s = seconds(recipe, sample.image)
        rows.append([f"{args.size}x{args.size}", seed, len(result.positions), recipe_s, analyze_s,
                     result.atoms_seconds, result.search.seconds, command_s, analyze_s / recipe_s,
                     command_s / recipe_s, ari, len(result.answer.label_rows())])
    print_table(["size", "seed", "columns", "recipe_s", "analyze_s", "atoms_s", "search_s", "command_s", "ratio",
                 "command_ratio", "ari", "labels"], rows, digits=3)
    print(f"\ndefault search: {DEFAULT_SEARCH}, budget {DEFAULT_BUDGET}; outputs in {args.out}")


def seconds(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
