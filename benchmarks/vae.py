"""The rotation-invariant VAE against hand-made descriptors, each tuned by the default reward.

On synthetic images with four polar variants (``domains=four_stripes``: 71 and 109 degree
walls), each descriptor family is searched by TPE with the same budget under the default
(``order``) reward, and the configuration the reward chose is scored against the truth:

- ``vae``: the VAE space (``--space vae``: window, latent size, KL weight, invariance, epochs,
  with the clustering stage);
- ``patch``, ``displacement``, ``patch+displacement``: the descriptors space with its descriptor
  fixed.

Per image and family the table prints the chosen reward and B-site ARI, and for the VAE the
invariance chosen. Seconds per evaluation: ``first_s`` evaluates the chosen configuration on the
image with only its atoms known (the descriptor computed, the VAE trained), ``cached_s`` then
changes only the cluster count (the descriptor reused). A second table gives, per invariance,
the ARI of the best-rewarded configuration the VAE search tried with that invariance.

A last table gives the cost of one first-time VAE evaluation (the default configuration, the
atoms known) per image size and epochs: the median of ``--repeats`` runs, with the number of
columns and of B-site patches the VAE trains on.

Run: ``.venv/bin/python benchmarks/vae.py [--seeds 8] [--budget 30] [--first-seed 800] [--shape 512x512]
[--cost-shapes 512x512,1024x1024] [--repeats 3]``
"""

import argparse
import dataclasses
import time
from collections import defaultdict

import numpy as np
from table import print_table

from ferrogym.agents.search import make_strategy, run_search
from ferrogym.workflows.images import parse_images
from ferrogym.workflows.space import SEARCH_SPACE, VAE_SPACE, SearchSpace

FOUR_VARIANTS = "domains=four_stripes,dose=200:400"
HAND_MADE = ("patch", "displacement", "patch+displacement")


def with_descriptor(descriptor: str) -> SearchSpace:
    """The descriptors space with only ``descriptor`` offered."""
    params = tuple(
        dataclasses.replace(p, grid=(descriptor,), default=descriptor) if p.name == "descriptor" else p
        for p in SEARCH_SPACE.params
    )
    return SearchSpace(params, name=descriptor, coarse=SEARCH_SPACE.coarse)


def timed(workflow, config) -> float:
    start = time.perf_counter()
    workflow.evaluate(config)
    return time.perf_counter() - start


def other_cluster_count(config: dict) -> dict:
    n = config["n_clusters"]
    return {**config, "n_clusters": n + 1 if n < 8 else n - 1}


def cost_table(shapes: list[str], repeats: int) -> None:
    rows = []
    for shape in shapes:
        base = parse_images(f"synthetic:{900},shape={shape},{FOUR_VARIANTS}").workflow(0, space=VAE_SPACE)
        lattice = base.lattice
        for epochs in VAE_SPACE["epochs"].grid:
            config = VAE_SPACE.canonical({"epochs": epochs})
            seconds = [timed(base.without_caches(), config) for _ in range(repeats)]
            patches = len(base.features(config).sites)
            rows.append([shape, len(lattice.xy), patches, epochs, float(np.median(seconds))])
    print_table(["shape", "columns", "patches", "epochs", "first_s"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--first-seed", type=int, default=800)
    parser.add_argument("--shape", default="512x512")
    parser.add_argument("--cost-shapes", default="512x512,1024x1024")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    last = args.first_seed + args.seeds - 1
    images = parse_images(f"synthetic:{args.first_seed}-{last},shape={args.shape},{FOUR_VARIANTS}")
    spaces = {"vae": VAE_SPACE, **{name: with_descriptor(name) for name in HAND_MADE}}
    rows, by_invariance, summary = [], defaultdict(list), defaultdict(list)
    for index in range(len(images)):
        base = images.workflow(index)
        _ = base.lattice
        for family, space in spaces.items():
            workflow = base.without_caches(space)
            search = run_search(make_strategy("bayes-tpe", workflow, args.budget, 0), workflow, args.budget)
            best = search.best
            fresh = base.without_caches(space)
            first, cached = timed(fresh, best.config), timed(fresh, other_cluster_count(best.config))
            invariance = best.config.get("invariance", "")
            rows.append([images.name(index), family, invariance, best.reward, best.metrics["ari"], first, cached])
            summary[family].append((best.metrics["ari"], first, cached))
            if family == "vae":
                for kind in VAE_SPACE["invariance"].grid:
                    tried = [s for s in search.steps if s.config["invariance"] == kind]
                    if tried:
                        chosen = max(tried, key=lambda s: s.reward)
                        by_invariance[kind].append((chosen.reward, chosen.metrics["ari"]))
        print(f"{images.name(index)} done", flush=True)
    print_table(["image", "family", "invariance", "reward", "ari", "first_s", "cached_s"], rows)
    print()
    print_table(
        ["family", "median_ari", "min_ari", "median_first_s", "median_cached_s"],
        [[f, float(np.median([r[0] for r in v])), float(min(r[0] for r in v)),
          float(np.median([r[1] for r in v])), float(np.median([r[2] for r in v]))] for f, v in summary.items()],
    )
    print()
    print_table(
        ["invariance", "images_tried", "median_reward", "median_ari", "min_ari"],
        [[k, len(v), float(np.median([r[0] for r in v])), float(np.median([r[1] for r in v])),
          float(min(r[1] for r in v))] for k, v in by_invariance.items()],
    )
    print(f"\n{args.budget} TPE evaluations per family and image, {len(images)} images {args.shape}, "
          f"{FOUR_VARIANTS}\n")
    cost_table(args.cost_shapes.split(","), args.repeats)


if __name__ == "__main__":
    main()
