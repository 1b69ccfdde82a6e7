"""Full-frame cost: a whole search against one evaluation of the published recipe, per image size.

Per size (synthetic images of the default family with a = 18 px, as on a 2048 x 2048 frame of
the reference study), each size measured in a fresh process so that its peak memory is its own:

- ``baseline_s``: the published recipe, once, nothing reused (:func:`recipe`): ``blob_log``
  (min_sigma 1, max_sigma 5, num_sigma 30, threshold 0.025) on the min-max normalised image,
  40 x 40 px patches of every atom whose 64 x 64 window fits, a 5-component full-covariance
  Gaussian mixture (random_state 42) fitted and then refitted from its means and weights;
- ``atoms_s``: ferrogym's atom finding with refinement and sublattices (median of repeats);
- ``first_med_s`` / ``first_max_s``: first-time evaluations of ``--configs`` random
  configurations of the search space, each on a copy with only the atoms known (median and
  slowest; the slowest configuration is printed below the table);
- ``repeat_ms``: the same configuration asked again;
- ``search_s``: a whole ``--budget``-evaluation Bayesian search (bayes-gp), atom finding
  included, and ``ratio`` = search_s / baseline_s (the target at 2048 x 2048 is 0.1);
  ``tpe_s`` and ``tpe_ratio``: the same with TPE, whose own overhead is milliseconds where the
  Gaussian process's is seconds;
- ``peak_gb``: the process's peak resident memory after all of the above (the baseline runs
  last, after this is read); one workflow is alive at a time, as in a search of one image;
- ``env1`` / ``env2``: steps per second of ``ferrogym/DomainWalls-v1`` on images of this size
  (a new image every episode of 20 steps), one env and two in an ``AsyncVectorEnv`` doing the
  same work (the same images and actions in each process), and their ratio ``env_x``.

Run: ``.venv/bin/python benchmarks/full_frame.py [--sizes 1024,2048,4096] [--baseline-sizes 1024,2048]
[--configs 30] [--budget 50] [--env-steps 60] [--repeats 3]``. The baseline at 4096 x 4096 is
left out by default: its mixture alone takes many minutes there.
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
from skimage.feature import blob_log
from sklearn.mixture import GaussianMixture
from table import print_table

import ferrogym.envs  # noqa: F401  (registers the ids)
from ferrogym.agents.search import make_strategy, run_search
from ferrogym.workflows import SEARCH_SPACE, SyntheticParams, Workflow, generate

#: a = 18 px: 396 pm at 22 pm per pixel.
PIXEL_SIZE_PM = 22.0


def recipe(image: np.ndarray) -> np.ndarray:
    """The published recipe's labels per detected atom (the baseline; nothing reused)."""
    normalised = (image - image.min()) / (image.max() - image.min())
    blobs = blob_log(normalised, min_sigma=1, max_sigma=5, num_sigma=30, threshold=0.025)
    centres = np.rint(blobs[:, :2]).astype(int)
    rows, cols = image.shape
    fits = (centres[:, 0] >= 32) & (centres[:, 0] <= rows - 32) & (centres[:, 1] >= 32) & (centres[:, 1] <= cols - 32)
    patches = np.stack([normalised[r - 20 : r + 20, c - 20 : c + 20].ravel() for r, c in centres[fits]])
    first = GaussianMixture(5, covariance_type="full", random_state=42).fit(patches)
    refit = GaussianMixture(5, covariance_type="full", random_state=42, means_init=first.means_,
                            weights_init=first.weights_).fit(patches)
    return refit.predict(patches)


def seconds(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def env_steps_per_second(size: int, steps: int, processes: int) -> float:
    """Steps per second of ``processes`` envs (one: in this process; more: an ``AsyncVectorEnv``),
    each doing the same work: the same images (seed 0) and the same ``steps`` random actions, the
    step after an episode's end resetting the env as a vector env's autoreset does. Random images
    and actions of different cost in each process would make the ratio a lottery over 60 steps."""
    images = f"synthetic:0-999,shape={size}x{size},pixel_size_pm={PIXEL_SIZE_PM}"
    space = gym.make("ferrogym/DomainWalls-v1", images=images).action_space
    space.seed(0)
    actions = [space.sample() for _ in range(steps)]
    if processes == 1:
        env = gym.make("ferrogym/DomainWalls-v1", images=images)
        env.reset(seed=0)
        start, ended = time.perf_counter(), False
        for action in actions:
            if ended:
                env.reset()
                ended = False
            else:
                ended = any(env.step(action)[2:4])
        return steps / (time.perf_counter() - start)
    envs = gym.make_vec("ferrogym/DomainWalls-v1", num_envs=processes, vectorization_mode="async", images=images)
    envs.reset(seed=[0] * processes)
    start = time.perf_counter()
    for action in actions:
        envs.step(np.stack([action] * processes))
    rate = processes * steps / (time.perf_counter() - start)
    envs.close()
    return rate


def measure(size: int, args) -> dict:
    """Every measurement of one size (run in its own process)."""
    image = generate(SyntheticParams(shape=(size, size), pixel_size_pm=PIXEL_SIZE_PM), seed=size).image
    result = {"size": size, "baseline_s": None}
    atoms = [seconds(lambda: Workflow(image).lattice) for _ in range(args.repeats)]
    result["atoms_s"] = float(np.median(atoms))
    workflow = Workflow(image)
    result["columns"] = len(workflow.lattice.xy)
    rng = np.random.default_rng(0)
    configs = [SEARCH_SPACE.sample(rng) for _ in range(args.configs)]
    first = [seconds(workflow.without_caches().evaluate, config) for config in configs]
    result["first_med_s"], result["first_max_s"] = float(np.median(first)), float(np.max(first))
    result["slowest_config"] = configs[int(np.argmax(first))]
    workflow.evaluate(configs[0])
    result["repeat_ms"] = 1000 * seconds(workflow.evaluate, configs[0])
    del workflow  # each search below has its own: peak_gb is one workflow's, not two at once

    def whole_search(strategy):
        fresh = Workflow(image)
        run_search(make_strategy(strategy, fresh, args.budget, 0), fresh, args.budget)

    result["search_s"] = seconds(whole_search, "bayes-gp")
    result["tpe_s"] = seconds(whole_search, "bayes-tpe")
    result["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    result["env1"] = env_steps_per_second(size, args.env_steps, 1)
    result["env2"] = env_steps_per_second(size, args.env_steps, 2)
    if size in args.baseline_sizes:  # last: its memory is not ferrogym's
        result["baseline_s"] = seconds(recipe, image)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,2048,4096")
    parser.add_argument("--baseline-sizes", default="1024,2048")
    parser.add_argument("--configs", type=int, default=30)
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--env-steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one-size", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.baseline_sizes = [int(s) for s in args.baseline_sizes.split(",") if s]
    if args.one_size is not None:
        print(json.dumps(measure(args.one_size, args)))
        return
    rows, slowest = [], []
    for size in (int(s) for s in args.sizes.split(",")):
        child = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--one-size", str(size)],
                               capture_output=True, text=True, check=True)
        r = json.loads(child.stdout.strip().splitlines()[-1])
        ratio = r["search_s"] / r["baseline_s"] if r["baseline_s"] else None
        tpe_ratio = r["tpe_s"] / r["baseline_s"] if r["baseline_s"] else None
        rows.append([f"{size}x{size}", r["columns"], r["baseline_s"] or "-", r["atoms_s"], r["first_med_s"],
                     r["first_max_s"], r["repeat_ms"], r["search_s"], ratio if ratio is not None else "-",
                     r["tpe_s"], tpe_ratio if tpe_ratio is not None else "-", r["peak_gb"], r["env1"], r["env2"],
                     r["env2"] / r["env1"]])
        slowest.append(f"{size}: {r['slowest_config']}")
        print(f"{size} done: {json.dumps(r)}", file=sys.stderr, flush=True)
    print_table(["size", "columns", "baseline_s", "atoms_s", "first_med_s", "first_max_s", "repeat_ms", "search_s",
                 "ratio", "tpe_s", "tpe_ratio", "peak_gb", "env1", "env2", "env_x"], rows, digits=2)
    print(f"\n{args.configs} random configurations; {args.budget}-evaluation searches (bayes-gp, bayes-tpe); "
          f"{args.env_steps} env steps; a = 18 px")
    print("slowest first evaluation:\n  " + "\n  ".join(slowest))


if __name__ == "__main__":
    main()
