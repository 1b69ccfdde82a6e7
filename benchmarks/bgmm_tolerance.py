"""Bayesian Gaussian mixtures: scikit-learn's stopping rule against one per site, by image size.

scikit-learn's ``BayesianGaussianMixture`` stops when its lower bound changes by less than
``tol`` (1e-3), and that lower bound is summed over the samples, where ``GaussianMixture``'s is a
mean per sample. So the same ``bgmm`` action stops far later on a full frame (12,500 B sites)
than on a small image, and on a full frame often runs all of its 200 iterations. This script
measures what a per-site tolerance (``tol`` times the number of sites) would change: for random
``bgmm`` configurations of the search space, on synthetic images of each size, the iterations
and seconds of the mixture alone, the ARI between the two labellings, and the reward and truth
ARI of each. The workflow uses scikit-learn's rule (the first of each pair).

Run: ``.venv/bin/python benchmarks/bgmm_tolerance.py [--sizes 512,2048] [--images 4] [--configs 12] [--seed 7]``
(images of the default family, seeds 0 to ``--images`` - 1; the same configurations on each).
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from table import print_table
from threadpoolctl import threadpool_limits

from ferrogym.workflows import SEARCH_SPACE, SyntheticParams, Workflow, generate
from ferrogym.workflows.clustering import _make_model, canonical_labels, reduce
from ferrogym.workflows.rewards import as_reward_result

#: Frames of 1024 px and more at 22 pm per pixel (a = 18 px), as in benchmarks/full_frame.py.
FULL_FRAME_PIXEL_PM = 22.0


def mixture_outcome(workflow: Workflow, config: dict, per_site: bool) -> dict:
    """The labels of one ``bgmm`` configuration with either stopping rule, and what they score."""
    features = workflow.features(config)
    values = np.asarray(reduce(features.values, config["reduction"], config["n_components"], workflow.seed),
                        dtype=np.float64)
    model = _make_model("bgmm", config["n_clusters"], config["covariance"], workflow.seed)
    if per_site:
        model.set_params(tol=model.tol * len(values))
    start = time.perf_counter()
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = canonical_labels(model.fit_predict(values))
    seconds = time.perf_counter() - start
    atom_labels = np.full(len(workflow.lattice.xy), -1)
    atom_labels[features.sites] = labels
    segmentation = workflow.cell_segmentation(atom_labels)
    reward = as_reward_result(workflow.reward_fn(segmentation), workflow.reward_fn).value
    return {"iterations": model.n_iter_, "seconds": seconds, "labels": labels, "reward": float(reward),
            "ari": workflow.truth_metrics(segmentation).get("ari", float("nan"))}


def bgmm_configs(workflow: Workflow, count: int, rng: np.random.Generator) -> list[dict]:
    """``count`` random ``bgmm`` configurations of the hand-made space that this image can fit."""
    configs = []
    while len(configs) < count:
        config = SEARCH_SPACE.canonical({**SEARCH_SPACE.sample(rng), "clustering": "bgmm"})
        if workflow.evaluate(config).reason is None:
            configs.append(config)
    return configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512,2048")
    parser.add_argument("--images", type=int, default=4, help="images per size (generator seeds 0, 1, ...)")
    parser.add_argument("--configs", type=int, default=12, help="configurations per image")
    parser.add_argument("--seed", type=int, default=7, help="seed of the random configurations")
    args = parser.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        fields = {"shape": (size, size)}
        if size >= 1024:
            fields["pixel_size_pm"] = FULL_FRAME_PIXEL_PM
        for image_seed in range(args.images):
            workflow = Workflow.from_sample(generate(SyntheticParams(**fields), seed=image_seed))
            for config in bgmm_configs(workflow, args.configs, np.random.default_rng(args.seed)):
                summed, per_site = (mixture_outcome(workflow, config, rule) for rule in (False, True))
                name = (f"{config['descriptor']} {config['reduction']}{config['n_components']} "
                        f"{config['covariance']} {config['n_clusters']}")
                rows.append([f"{size}:{image_seed}", name, summed["iterations"], per_site["iterations"],
                             summed["seconds"], per_site["seconds"],
                             adjusted_rand_score(summed["labels"], per_site["labels"]), summed["reward"],
                             per_site["reward"], summed["ari"], per_site["ari"]])
    print_table(["size:seed", "config", "iter_sum", "iter_site", "s_sum", "s_site", "ari_between", "reward_sum",
                 "reward_site", "truth_ari_sum", "truth_ari_site"], rows)
    changed = [r for r in rows if abs(r[7] - r[8]) > 0.05]
    print(f"\n{len(changed)} of {len(rows)} configurations change their reward by more than 0.05; "
          f"{sum(r[2] == 200 for r in rows)} run all 200 iterations under scikit-learn's rule.")
    print("\n_sum: scikit-learn's rule (tol on the lower bound summed over sites; what the workflow runs); "
          "_site: tol per site. Seconds: the mixture alone, one thread.")


if __name__ == "__main__":
    main()
