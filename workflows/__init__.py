"""ferrogym.workflows: the STEM analysis itself, from an image to a scored segmentation.

Plain numpy / scikit-learn / scikit-image; no Gymnasium here (environments live in
``ferrogym.envs``). The stages, each in its own module:

- :mod:`.io` reads images and positions, :mod:`.synthetic` makes images with ground truth;
- :mod:`.atoms` finds columns, :mod:`.lattice` splits sublattices and measures cells;
- :mod:`.descriptors` (a registry), :mod:`.clustering`, :mod:`.walls`, :mod:`.order` (the
  image's order parameter the rewards judge walls on), :mod:`.rewards` (a registry),
  :mod:`.metrics` (truth), :mod:`.space` (the one search-space schema and its two spaces),
  :mod:`.rvae` (the rotation-invariant VAE behind the ``vae`` descriptor);
- :mod:`.workflow` ties them together with per-image caching, :mod:`.figure` draws (the cells'
  Voronoi map from :mod:`.cells`);
- for one's own data: :mod:`.crystal` (is it a perovskite-like crystal image? what do its
  columns say?), :mod:`.answer` (the answer per column, label and wall, in px and pm through
  :mod:`.units`), :mod:`.region` (what part of the image to analyse), :mod:`.interop`
  (HyperSpy and Atomap, the optional extra).
"""

from .errors import InputError
from .io import ImageData, PositionsData, load_image, load_positions
from .order import ORDER_KINDS, OrderParameter
from .rewards import DEFAULT_REWARD, REWARDS, RewardResult, get_reward, register_reward
from .space import SEARCH_SPACE, SPACES, VAE_SPACE, Param, SearchSpace, get_space
from .synthetic import GroundTruth, SyntheticParams, SyntheticSample, generate, sample_params
from .walls import Segmentation
from .workflow import Evaluation, Workflow

__all__ = [
    "InputError",
    "ImageData",
    "PositionsData",
    "load_image",
    "load_positions",
    "ORDER_KINDS",
    "OrderParameter",
    "DEFAULT_REWARD",
    "REWARDS",
    "RewardResult",
    "get_reward",
    "register_reward",
    "SEARCH_SPACE",
    "VAE_SPACE",
    "SPACES",
    "get_space",
    "Param",
    "SearchSpace",
    "GroundTruth",
    "SyntheticParams",
    "SyntheticSample",
    "generate",
    "sample_params",
    "Segmentation",
    "Evaluation",
    "Workflow",
]
