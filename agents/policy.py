"""A trained SB3 policy used as a searcher: it proposes configurations from env observations.

The policy was trained on some images (see its run directory's ``run.json``); here it searches
a new image through the same env class, seeing after each evaluation what that configuration
gave, exactly as in training. It samples its actions (the policy is stochastic, and a search
gains from variety), seeded, and re-draws an action it has already tried, so that the budget
is not spent on repeats.
"""

from __future__ import annotations

import json
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from ferrogym.envs import DiscreteActions, DomainWallsEnv
from ferrogym.workflows.descriptors import DescriptorUnavailable
from ferrogym.workflows.errors import InputError
from ferrogym.workflows.images import SingleImage
from ferrogym.workflows.workflow import Workflow

from .neighbours import ALGO, NeighbourSearcher
from .rewardtable import input_kind
from .searchers import Searcher

#: Draws per ask before a repeated configuration is accepted.
REDRAWS = 20


class OneWorkflow(SingleImage):
    """The image of an already built workflow, so the env reuses its caches (and its reward)."""

    def __init__(self, workflow: Workflow, name: str):
        super().__init__(name)
        self._workflow = workflow

    def workflow(self, index: int, **workflow_kwargs) -> Workflow:
        self._check(index)
        return self._workflow


def shipped_policy() -> Path:
    """The run folder of the policy shipped with the package (see scripts/fit_shipped_policy.sh)."""
    return Path(str(resources.files("ferrogym.agents").joinpath("policies/neighbours")))


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """The ``run.json`` of a finished training run (a Stable-Baselines3 model or a reward-table
    policy), with a clear error when it is not one."""
    path = Path(run_dir) / "run.json"
    run = json.loads(path.read_text()) if path.is_file() else {}
    needs = ("run.json", "candidates.json", "table.jsonl") if run.get("algo") == ALGO else ("run.json", "model.zip")
    if not all((Path(run_dir) / name).is_file() for name in needs):
        raise InputError(f"{run_dir} is not a finished training run (needs {', '.join(needs)}); make one with "
                         "`ferrogym fit-policy --out DIR` or `ferrogym train --out DIR`")
    return run


def _describable(workflow: Workflow, config: dict[str, Any]) -> bool:
    """Whether the workflow's input gives this configuration's descriptor (computing it, cached,
    as the evaluation that follows would)."""
    try:
        workflow.features(config)
    except DescriptorUnavailable:
        return False
    return True


def policy_searcher(run_dir: str | Path, workflow: Workflow, budget: int, seed: int = 0,
                    image_name: str = "image") -> Searcher:
    """The searcher of a training run: a reward-table policy or a Stable-Baselines3 agent."""
    if load_run(run_dir).get("algo") == ALGO:
        searcher = NeighbourSearcher(run_dir, workflow.space, seed, describable=partial(_describable, workflow),
                                     input=input_kind(workflow))
        searcher.name = f"policy:{run_dir}"
        return searcher
    return PolicySearcher(run_dir, workflow, budget, seed, image_name)


class PolicySearcher(Searcher):
    """Searches one image with a trained policy (``policy:DIR`` in benchmarks and analyses)."""

    def __init__(self, run_dir: str | Path, workflow: Workflow, budget: int, seed: int = 0,
                 image_name: str = "image"):
        import torch  # here, not above: a reward-table policy (the shipped one) needs neither torch nor SB3

        from .training import ALGORITHMS, registry_id

        super().__init__(workflow.space, seed)
        self.run = load_run(run_dir)
        self.name = f"policy:{run_dir}"
        self.model = ALGORITHMS[self.run["algo"]].load(Path(run_dir) / "model.zip", device="cpu")
        env_class = gym.spec(registry_id(self.run["env_id"])).entry_point
        kwargs = {"budget": budget} if env_class.endswith("DomainWallsEnv") else {}
        if "space" in self.run["env_kwargs"]:
            kwargs["space"] = self.run["env_kwargs"]["space"]
        env = gym.make(registry_id(self.run["env_id"]), images=OneWorkflow(workflow, image_name), **kwargs,
                       disable_env_checker=True)
        if env.unwrapped.space.name != workflow.space.name:
            raise InputError(f"policy {run_dir} was trained on the {env.unwrapped.space.name!r} space; this search "
                             f"is over {workflow.space.name!r} (choose it with --space)")
        self.env = DiscreteActions(env) if self.run["discrete"] else env
        self.is_search = isinstance(env.unwrapped, DomainWallsEnv)
        self._obs, _ = self.env.reset(seed=seed)
        self._generator = torch.Generator().manual_seed(seed)
        self._tried: set[tuple] = set()
        self._tried_actions: set[int] = set()
        self._action = None

    def _propose(self) -> dict[str, Any]:
        if self.run["algo"] == "dqn":
            action = self._best_untried_action()
            config = self._config(action)
        else:
            for _ in range(REDRAWS):
                action = self._sample_action()
                config = self._config(action)
                if tuple(config.values()) not in self._tried:
                    break
        self._action = action
        return config

    def _observe(self, config: dict[str, Any], reward: float | None, evaluation) -> None:
        self._tried.add(tuple(config.values()))
        if self.run["algo"] == "dqn":
            self._tried_actions.add(int(self._action))
        if self.is_search:
            self._obs, *_ = self.env.step(self._action)  # evaluated from the workflow's caches

    def _best_untried_action(self) -> int:
        """A Q-learner's search: the highest-valued action not yet tried."""
        import torch

        obs, _ = self.model.policy.obs_to_tensor(self._obs)
        with torch.no_grad():
            values = self.model.policy.q_net(obs)[0].numpy().copy()
        values[list(self._tried_actions)] = -np.inf
        return int(np.argmax(values))

    def _sample_action(self):
        """One action drawn from the policy's distribution with this searcher's generator."""
        import torch

        policy = self.model.policy
        obs, _ = policy.obs_to_tensor(self._obs)
        with torch.no_grad():
            distribution = policy.get_distribution(obs).distribution
        parts = distribution if isinstance(distribution, list) else [distribution]
        draws = [torch.multinomial(d.probs[0], 1, generator=self._generator).item() for d in parts]
        return np.asarray(draws, dtype=np.int64) if len(draws) > 1 else draws[0]

    def _config(self, action) -> dict[str, Any]:
        if self.run["discrete"]:
            action = self.env.indices[int(action)]
        return self.space.from_indices(action)
