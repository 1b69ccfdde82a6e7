"""``ferrogym/DomainWallsBandit-v1``: one analysis per image, chosen from the image alone."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from . import observation
from .base import VERSION_HISTORY, DomainWallsBase

#: The observation's entries: the image block only.
ENTRIES = observation.IMAGE


class DomainWallsBanditEnv(DomainWallsBase):
    """Single-shot episodes: look at an image, choose one configuration, get its reward.

    ## Description

    A contextual bandit over images: the observation describes the image (lattice, atom count,
    noise, contrast, polar displacement); the action names one configuration of the ferrogym
    workflow; the reward scores the domain walls of the segmentation it gives. A policy
    trained here maps an image to a good configuration without searching.

    ## Action Space

    ``MultiDiscrete(space.grid_sizes)``, as in ``ferrogym/DomainWalls-v1``: one grid index
    per parameter of the search space (``space="descriptors"``, the default, or ``"vae"``).

    ## Observation Space

    A float32 ``Box`` of {size} entries describing the image, clipped to their bounds:

    {table}

    ## Rewards

    The reward of the one evaluation: in [0, 1] for the built-in rewards (``order``,
    the default, ``combined``, ``continuity``, ``straightness``); a custom reward has its own range.

    ## Starting State

    ``reset`` picks an image: ``options={{"image": i}}`` by index, otherwise drawn from
    ``np_random``.

    ## Episode End

    - Termination: after the one step (``terminated=True``).
    - Truncation: never.

    ## Info

    As ``ferrogym/DomainWalls-v1`` after a step: ``image``, ``config``, ``config_px``,
    ``reward``, ``components``, ``metrics`` (truth, when known), ``reason``.

    ## Arguments

    ``images``, ``positions``, ``sublattice``, ``reward``, ``space``, ``cache_images``,
    ``render_mode``, as for ``ferrogym/DomainWalls-v1`` (there is no budget).

    ## Version History

    {history}
    """

    def __init__(self, images: Any = None, **kwargs):
        super().__init__(images, **kwargs)
        self.observation_space = gym.spaces.Box(*observation.bounds(ENTRIES), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._choose_image(options)
        return self._image_part.copy(), self._info()

    def step(self, action):
        if self.evaluation is not None:
            raise gym.error.ResetNeeded("the episode ended after its one evaluation; call reset()")
        evaluation = self._evaluate(action)
        return self._image_part.copy(), evaluation.reward, True, False, self._info(evaluation)


DomainWallsBanditEnv.__doc__ = DomainWallsBanditEnv.__doc__.format(
    size=len(ENTRIES), table=observation.markdown_table(ENTRIES).replace("\n", "\n    "),
    history=VERSION_HISTORY.replace("\n", "\n    "),
)
