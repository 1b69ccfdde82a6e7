"""Train RLlib's PPO on ferrogym's bandit env for a few iterations: ferrogym envs under RLlib.

RLlib's env runners are Ray workers that do not see this process's Gymnasium registry, so the
env is registered with Ray Tune through :func:`ferrogym.agents.distributed.env_creator`, which
carries the registered spec (also that of a custom-reward id from ``register_reward_env``).
Needs RLlib (``pip install "ferrogym[rllib]"``); starts a local Ray runtime unless ``--address``.

    python scripts/rllib_bandit.py --iterations 2
"""

from __future__ import annotations

import argparse
import time

import ray
from ray.rllib.algorithms.ppo import PPOConfig
from ray.tune import register_env

from ferrogym.agents.distributed import env_creator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--env", default="ferrogym/DomainWallsBandit-v1")
    parser.add_argument("--images", default="synthetic:0-7,shape=128x128", help="training image SPEC")
    parser.add_argument("--address", default=None, help="Ray cluster (default: a new local runtime of 2 CPUs)")
    args = parser.parse_args()

    if args.address:
        ray.init(address=args.address)
    else:
        ray.init(num_cpus=2, include_dashboard=False)
    register_env("ferrogym", env_creator(args.env))
    config = (
        PPOConfig()
        .environment("ferrogym", env_config={"images": args.images})
        .env_runners(num_env_runners=1)
        .training(train_batch_size_per_learner=64, minibatch_size=32, num_epochs=2, gamma=0.0)
    )
    algo = config.build_algo()
    for iteration in range(1, args.iterations + 1):
        start = time.perf_counter()
        result = algo.train()
        runners = result["env_runners"]
        print(f"iteration {iteration}: {int(runners['num_env_steps_sampled_lifetime'])} env steps, "
              f"mean episode reward {runners['episode_return_mean']:.3f}, {time.perf_counter() - start:.1f} s")
    algo.stop()
    ray.shutdown()


if __name__ == "__main__":
    main()
