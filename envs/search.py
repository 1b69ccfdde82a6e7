"""``ferrogym/DomainWalls-v1``: a budgeted search for the best analysis of one image."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from ferrogym.workflows.errors import InputError
from ferrogym.workflows.space import SEARCH_SPACE, SearchSpace

from . import observation
from .base import VERSION_HISTORY, DomainWallsBase

REWARD_MODES = ("improvement", "raw")


class DomainWallsEnv(DomainWallsBase):
    """Search episodes: each step analyses the episode's image with one configuration.

    ## Description

    An episode is one image (a synthetic Sm-BFO-like image, a file or a set of atom positions)
    and a budget of evaluations. Each step runs the ferrogym workflow (descriptor -> reduction
    -> clustering -> segmentation) with the configuration the action names and scores the
    domain walls of the segmentation for continuity and straightness. A good agent finds a
    high-reward segmentation in few evaluations; it sees what each configuration gave.

    ## Action Space

    ``MultiDiscrete(SEARCH_SPACE.grid_sizes)``: one grid index per parameter of
    :data:`ferrogym.workflows.space.SEARCH_SPACE`, in its order (descriptor, patch_sites,
    window_x, window_y, reduction, n_components, clustering, covariance, n_clusters). Windows
    are in lattice constants, so one action means the same physical window on every image.
    Indices of parameters that do not apply (windows of the displacement descriptor...) are
    ignored. Wrap with :class:`ferrogym.envs.DiscreteActions` for a ``Discrete`` space (DQN).
    With ``space="vae"`` (the id ``ferrogym/DomainWallsVAE-v1``) the action is one index per
    parameter of :data:`~ferrogym.workflows.space.VAE_SPACE` instead: the rotation-invariant
    VAE's patch sites, window, latent size, KL weight, invariance and epochs, then the same
    clustering stage.

    ## Observation Space

    A float32 ``Box`` of {size} entries (on the default space), every one clipped to its
    bounds. Before the first step the configuration and segmentation entries are 0. With
    another ``space`` the configuration entries are those of that space
    (:func:`ferrogym.envs.search.entries`).

    {table}

    ## Rewards

    With ``reward_mode="improvement"`` (default) a step earns how much it raised the best
    reward of the episode (the first step earns its reward), so the return is the best reward
    found. With ``"raw"`` each step earns its own reward. Built-in rewards (``order``, the
    default, ``combined``, ``continuity``, ``straightness``) lie in [0, 1]; a custom reward has its own range (the
    observation clips it to [-1, 1]). A configuration that cannot segment the image
    (``info["reason"]``) gets the reward of an empty segmentation, 0 for the built-ins.

    ## Starting State

    ``reset`` picks an image: ``options={{"image": i}}`` names one by index, otherwise it is
    drawn from ``np_random``. Atoms are found at the first reset on an image (cached for
    ``cache_images`` images).

    ## Episode End

    - Termination: after ``budget`` evaluations (the budget used is part of the observation).
    - Truncation: never, unless a ``TimeLimit`` wrapper is added (``max_episode_steps``).

    ## Info

    ``image`` (a name: ``synthetic:12`` or a path), after a step also ``config`` (canonical),
    ``config_px`` (windows in pixels), ``reward`` (this step's reward value, whatever the
    mode), ``components``, ``metrics`` (``ari``, ``assigned``, ``wall_f1`` on images with
    truth, else empty), ``reason`` ("" or why nothing was segmented), ``best_reward``,
    ``best_config``, ``best_metrics`` (the truth metrics of the best configuration) and
    ``evaluations``. No timings, so same seed and actions give the same
    info.

    ## Arguments

    | keyword | default | meaning |
    |---|---|---|
    | ``images`` | ``"synthetic:0-999"`` | image SPEC (``synthetic:A-B,field=value,field=low:high``, files, globs), a path, a list of paths, a 2-D array or an ``ImageSet`` |
    | ``positions`` | None | (N, 2) x, y array or position file(s), analysed without (or with the given) image |
    | ``sublattice`` | None | (N,) "A"/"B" for a positions array |
    | ``reward`` | ``"order"`` | registered reward name, ``"module:function"`` or a callable |
    | ``space`` | ``"descriptors"`` | the search space: ``"descriptors"`` (hand-made) or ``"vae"`` |
    | ``budget`` | 20 | evaluations per episode |
    | ``reward_mode`` | ``"improvement"`` | ``"improvement"`` or ``"raw"`` |
    | ``cache_images`` | 8 | images whose analyses are kept between episodes |
    | ``render_mode`` | None | None or ``"rgb_array"`` (the segmentation figure) |

    ## Version History

    {history}
    """

    def __init__(self, images: Any = None, *, budget: int = 20, reward_mode: str = "improvement", **kwargs):
        super().__init__(images, **kwargs)
        if int(budget) != budget or budget < 1:
            raise InputError(f"budget={budget!r}; give a whole number of evaluations, at least 1")
        if reward_mode not in REWARD_MODES:
            raise InputError(f"reward_mode={reward_mode!r}; use one of {REWARD_MODES}")
        self.budget = int(budget)
        self.reward_mode = reward_mode
        self.entries = entries(self.space)
        self.observation_space = gym.spaces.Box(*observation.bounds(self.entries), dtype=np.float32)
        self.steps = 0
        self.best_reward: float | None = None
        self.best_config: dict | None = None
        self.best_metrics: dict | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._choose_image(options)
        self.steps = 0
        self.best_reward = self.best_config = self.best_metrics = None
        return self._observe(improved=False), self._info()

    def step(self, action):
        if self.steps >= self.budget:
            raise gym.error.ResetNeeded(f"the budget of {self.budget} evaluations is spent; call reset()")
        evaluation = self._evaluate(action)
        self.steps += 1
        previous = self.best_reward
        improved = previous is None or evaluation.reward > previous
        if improved:
            self.best_reward, self.best_config = evaluation.reward, dict(evaluation.config)
            self.best_metrics = dict(evaluation.metrics)
        if self.reward_mode == "raw":
            reward = evaluation.reward
        else:
            reward = self.best_reward - (previous if previous is not None else 0.0)
        info = self._info(evaluation)
        info.update(best_reward=self.best_reward, best_config=dict(self.best_config),
                    best_metrics=dict(self.best_metrics), evaluations=self.steps)
        return self._observe(improved), float(reward), self.steps >= self.budget, False, info

    def _observe(self, improved: bool) -> np.ndarray:
        if self.evaluation is None:
            middle = np.zeros(len(self.entries) - len(observation.IMAGE) - len(observation.SEARCH), np.float32)
        else:
            middle = np.concatenate([
                observation.config_features(self.space, self.evaluation.config),
                observation.segmentation_features(self.workflow, self.evaluation),
            ])
        search = observation.clipped(
            [self.best_reward or 0.0, self.steps / self.budget, improved and self.evaluation is not None],
            observation.SEARCH,
        )
        return np.concatenate([self._image_part, middle, search]).astype(np.float32)


def entries(space: SearchSpace) -> tuple[observation.Entry, ...]:
    """The observation's entries, in order, when the env searches ``space``."""
    return (*observation.IMAGE, *observation.config_block(space), *observation.SEGMENTATION, *observation.SEARCH)


#: The observation's entries on the default space (``ferrogym/DomainWalls-v1``).
ENTRIES = entries(SEARCH_SPACE)

DomainWallsEnv.__doc__ = DomainWallsEnv.__doc__.format(
    size=len(ENTRIES), table=observation.markdown_table(ENTRIES).replace("\n", "\n    "),
    history=VERSION_HISTORY.replace("\n", "\n    "),
)
