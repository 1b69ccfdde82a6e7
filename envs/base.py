"""What both domain-wall envs share: the image source, the action decoding, one evaluation with
its ``info``, and rendering. The envs themselves (``search.py``, ``bandit.py``) only say what an
episode is."""

from __future__ import annotations

import math
import multiprocessing
from collections import OrderedDict
from typing import Any

import gymnasium as gym
import numpy as np
from threadpoolctl import threadpool_limits

from ferrogym.workflows.errors import InputError
from ferrogym.workflows.figure import render_segmentation
from ferrogym.workflows.images import ImageSet, as_image_set
from ferrogym.workflows.rewards import DEFAULT_REWARD, get_reward
from ferrogym.workflows.space import SEARCH_SPACE, SearchSpace, get_space
from ferrogym.workflows.workflow import Evaluation, Workflow

from . import observation

#: The "Version History" of the built-in envs' docstrings (their ids share the version).
VERSION_HISTORY = """\
- v1: image patches are always reduced by PCA before clustering (``reduction`` is an
  action only for the low-dimensional descriptors and the VAE), which bounds the cost of a
  mixture on a full frame; the segmentation block gained ``uniformity`` and
  ``wall_contrast``, the two factors of the default ``order`` reward.
- v0: first version (actions included ``reduction="none"`` on image patches). Its default
  reward became ``order`` instead of ``combined`` during its life; ``reward="combined"``
  gives the old rewards."""

#: Synthetic training images used when no ``images`` are given (test on seeds above 999).
DEFAULT_IMAGES = "synthetic:0-999"


class DomainWallsBase(gym.Env):
    """Image choice, evaluation and rendering shared by the domain-wall envs (not registered)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(
        self,
        images: Any = None,
        *,
        positions: Any = None,
        sublattice: Any = None,
        reward: Any = DEFAULT_REWARD,
        space: str | SearchSpace = SEARCH_SPACE.name,
        cache_images: int = 8,
        render_mode: str | None = None,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise InputError(f"render_mode={render_mode!r}; use None or one of {self.metadata['render_modes']}")
        if cache_images < 1:
            raise InputError(f"cache_images={cache_images}; keep at least 1 image's analysis")
        if multiprocessing.parent_process() is not None:
            _one_thread_per_process()
        if images is None and positions is None:
            images = DEFAULT_IMAGES
        self.images: ImageSet = as_image_set(images, positions=positions, sublattice=sublattice)
        self.reward_fn = get_reward(reward)
        self.space = get_space(space)
        self.render_mode = render_mode
        self.cache_images = cache_images
        self.action_space = gym.spaces.MultiDiscrete(self.space.grid_sizes, dtype=np.int64)
        self._analysed: OrderedDict[int, tuple[Workflow, np.ndarray]] = OrderedDict()
        self.image_index: int | None = None
        self.workflow: Workflow | None = None
        self._image_part: np.ndarray | None = None
        self.evaluation: Evaluation | None = None

    def _choose_image(self, options: dict | None) -> None:
        """Pick this episode's image: ``options["image"]`` (an index) or a draw from np_random."""
        options = options or {}
        unknown = set(options) - {"image"}
        if unknown:
            raise InputError(f"unknown reset option(s) {sorted(unknown)}; the only option is 'image' (an index)")
        if "image" in options:
            index = int(options["image"])
            if not 0 <= index < len(self.images):
                raise InputError(f"reset option image={index} is outside 0..{len(self.images) - 1}")
        else:
            index = int(self.np_random.integers(len(self.images)))
        self.image_index = index
        self.workflow, self._image_part = self._analyse(index)
        self.evaluation = None

    def _analyse(self, index: int) -> tuple[Workflow, np.ndarray]:
        """The cached workflow and image observation of image ``index`` (least recently used
        images are dropped): atoms and image features are measured once per image, not per
        episode or step."""
        if index in self._analysed:
            self._analysed.move_to_end(index)
        else:
            workflow = self.images.workflow(index, reward=self.reward_fn, space=self.space)
            self._analysed[index] = (workflow, observation.image_features(workflow))
            while len(self._analysed) > self.cache_images:
                self._analysed.popitem(last=False)
        return self._analysed[index]

    def _evaluate(self, action) -> Evaluation:
        """Decode the action and evaluate it on the episode's image."""
        if self.workflow is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if not self.action_space.contains(np.asarray(action, dtype=np.int64)):
            raise InputError(f"action {action!r} is not in {self.action_space}")
        evaluation = self.workflow.evaluate(self.space.from_indices(action))
        if not math.isfinite(evaluation.reward):
            raise ValueError(
                f"the reward returned {evaluation.reward} for {evaluation.config}; rewards must be finite"
            )
        self.evaluation = evaluation
        return evaluation

    def _info(self, evaluation: Evaluation | None = None) -> dict[str, Any]:
        """Everything about the step a person or a callback needs; no timings (deterministic)."""
        info: dict[str, Any] = {"image": self.images.name(self.image_index)}
        if evaluation is not None:
            info.update(
                config=dict(evaluation.config),
                config_px=dict(evaluation.config_px),
                reward=evaluation.reward,
                components=dict(evaluation.components),
                metrics=dict(evaluation.metrics),
                reason=evaluation.reason or "",
            )
        return info

    def render(self) -> np.ndarray | None:
        """The last segmentation over the image (only ``render_mode="rgb_array"``)."""
        if self.render_mode != "rgb_array" or self.workflow is None:
            return None
        if self.evaluation is None:
            segmentation = self.workflow.cell_segmentation(np.full(len(self.workflow.lattice.xy), -1))
            title = f"{self.images.name(self.image_index)}: not yet segmented"
        else:
            segmentation = self.evaluation.segmentation
            title = f"{self.images.name(self.image_index)}: reward {self.evaluation.reward:.3f}"
        return render_segmentation(self.workflow.image, segmentation, title)


def _one_thread_per_process() -> None:
    """In a worker process of a vector env, BLAS and OpenMP use one thread: the processes are the
    parallelism, and two workers of two threads each on two cores fight over them."""
    threadpool_limits(1)
