"""``python -m ferrogym.workflows``: analyse one image with a fixed configuration.

Without an image it analyses a synthetic Sm-doped BiFeO3-like image with ground truth, prints
the reward, its components and the truth metrics, and writes the segmentation figure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import InputError
from .figure import save_segmentation_figure
from .space import SEARCH_SPACE
from .synthetic import SyntheticParams, generate
from .workflow import Workflow


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ferrogym.workflows", description=__doc__)
    parser.add_argument("image", nargs="?", help="image file; a synthetic image when omitted")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic image")
    parser.add_argument("--out", default="results/workflow", help="folder for the figure")
    for param in SEARCH_SPACE.params:
        choices = [str(v) for v in param.grid] if param.kind == "categorical" else None
        parser.add_argument(
            f"--{param.name.replace('_', '-')}",
            dest=param.name,
            choices=choices,
            help=f"{param.help} (default {param.default}{' ' + param.unit if param.unit else ''})",
        )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_arguments(argv)
    config = {p.name: getattr(args, p.name) for p in SEARCH_SPACE.params if getattr(args, p.name) is not None}
    try:
        if args.image:
            workflow, name = Workflow.from_file(args.image), Path(args.image).stem
            image = workflow.image
        else:
            sample = generate(SyntheticParams(), seed=args.seed)
            workflow, image, name = Workflow.from_sample(sample), sample.image, f"synthetic-{args.seed}"
        evaluation = workflow.evaluate(config)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    title = f"{name}: reward {evaluation.reward:.3f}"
    if evaluation.metrics:
        title += f", B-site ARI {evaluation.metrics['ari']:.3f}"
    path = save_segmentation_figure(Path(args.out) / f"{name}.png", image, evaluation.segmentation, title)
    report = {
        "config": evaluation.config_px,
        "reward": round(evaluation.reward, 4),
        "components": {k: round(v, 4) for k, v in evaluation.components.items()},
        "truth": {k: round(v, 4) for k, v in evaluation.metrics.items()},
        "reason": evaluation.reason,
        "figure": str(path),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
