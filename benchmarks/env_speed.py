"""Env steps per second of the default env, in one process and in two.

Run: ``.venv/bin/python benchmarks/env_speed.py [--steps 200] [--repeats 3]``. Each run makes
``ferrogym/DomainWalls-v1`` with its defaults (512 x 512 synthetic images, seeds 0-999, a fresh
image per episode of 20 evaluations, so atom finding on every new image is included), takes
uniformly random actions with a fixed seed, and counts steps per wall-clock second. "1 process"
is one env; "2 processes" is ``gymnasium.vector.AsyncVectorEnv`` with two envs (a vector step
is two env steps). Medians over repeats, side by side in one run.
"""

import argparse
import time

import gymnasium as gym
import numpy as np

import ferrogym.envs  # noqa: F401  (registers the ids)

from table import print_table

ENV_ID = "ferrogym/DomainWalls-v1"


def single_process(steps: int, seed: int) -> float:
    """Env steps per second of one env."""
    env = gym.make(ENV_ID)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def two_processes(steps: int, seed: int) -> float:
    """Env steps per second of two envs in an AsyncVectorEnv (autoreset steps count too)."""
    envs = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="async")
    envs.action_space.seed(seed)
    envs.reset(seed=seed)
    start = time.perf_counter()
    for _ in range(steps // 2):
        envs.step(envs.action_space.sample())
    rate = 2 * (steps // 2) / (time.perf_counter() - start)
    envs.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rates = {"1 process": [], "2 processes": []}
    for repeat in range(args.repeats):
        rates["1 process"].append(single_process(args.steps, seed=repeat))
        rates["2 processes"].append(two_processes(args.steps, seed=repeat))
    base = np.median(rates["1 process"])
    rows = [[mode, args.steps, float(np.median(r)), float(np.min(r)), float(np.max(r)), float(np.median(r) / base)]
            for mode, r in rates.items()]
    print(f"{ENV_ID}, default kwargs, random actions, {args.repeats} repeats")
    print_table(["mode", "steps", "median steps/s", "min", "max", "ratio"], rows, digits=2)


if __name__ == "__main__":
    main()
