"""Resident memory of one env over a long run: does it stay flat?

Makes ``ferrogym/DomainWalls-v1`` on ``--images`` (by default 256 x 256 synthetic images, seeds
0-999) with a budget of ``--budget`` evaluations per episode, so that every episode analyses a
new image, and takes uniformly random actions (seeded) for ``--steps`` steps. At the checkpoints
(500, 1000, 2000, 3000, 4000, 5000 steps, those within ``--steps``) it prints the process's
resident memory now (``rss_mb``, from /proc/self/statm) and at its peak so far (``peak_mb``,
``ru_maxrss``), with the episodes and distinct images seen. Every cache (the env's analysed
images, each workflow's descriptors, reductions and labels) is bounded, so after the first
thousand steps both should stay flat: the last line is the growth from step 1000 (or the first
checkpoint) to the end.

Run: ``.venv/bin/python benchmarks/long_run_memory.py [--steps 5000] [--budget 20] [--seed 0]
[--images synthetic:0-999,shape=256x256]``. About 10 minutes for 5,000 steps on a busy 2-core
machine.
"""

import argparse
import gc
import os
import resource
import time

import gymnasium as gym
from table import print_table

import ferrogym.envs  # noqa: F401  (registers the ids)

ENV_ID = "ferrogym/DomainWalls-v1"
CHECKPOINTS = (500, 1000, 2000, 3000, 4000, 5000)


def resident_mb() -> float:
    """Resident memory of this process now, MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", default="synthetic:0-999,shape=256x256")
    args = parser.parse_args()
    checkpoints = [c for c in CHECKPOINTS if c < args.steps] + [args.steps]

    env = gym.make(ENV_ID, images=args.images, budget=args.budget)
    env.action_space.seed(args.seed)
    env.reset(seed=args.seed)
    episodes, images, rows = 1, set(), []
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        images.add(info.get("image"))
        if terminated or truncated:
            env.reset()
            episodes += 1
        if step in checkpoints:
            gc.collect()  # what stays, not what the collector has not reached yet
            rows.append([step, episodes, len(images), resident_mb(), peak_mb(), time.perf_counter() - start])
    env.close()

    print_table(["step", "episodes", "images", "rss_mb", "peak_mb", "seconds"], rows, digits=1)
    first = next((row for row in rows if row[0] >= 1000), rows[0])
    print(f"\n{args.steps} random steps of {ENV_ID} on {args.images}, budget {args.budget}, seed {args.seed}")
    print(f"growth from step {first[0]} to {rows[-1][0]}: rss {rows[-1][3] - first[3]:+.1f} MB, "
          f"peak {rows[-1][4] - first[4]:+.1f} MB")


if __name__ == "__main__":
    main()
