"""Wrappers that adapt the domain-wall envs to agents with other needs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class DiscreteActions(gym.ActionWrapper):
    """A ``Discrete`` action space over the search-space grid, for agents such as DQN.

    Action ``k`` is the ``k``-th configuration of ``configs``: by default every distinct
    canonical configuration of the grid (87,444 for :data:`SEARCH_SPACE`: multi-index
    combinations that differ only in parameters that do not apply are merged, so no two actions
    mean the same analysis). Give ``configs`` (a list of configurations) to search a subset.
    """

    def __init__(self, env: gym.Env, configs: list[dict] | None = None):
        super().__init__(env)
        space = env.unwrapped.space
        if configs is None:
            self.indices = space.grid_indices()
        else:
            self.indices = np.stack([space.to_indices(c) for c in configs])
        self.action_space = gym.spaces.Discrete(len(self.indices))

    def action(self, action) -> np.ndarray:
        return self.indices[int(action)]
