"""Physics rewards for a segmentation: are its domain walls continuous and straight?

Real ferroelectric walls do not stop inside a crystal or break into fragments, and their
energy favours flat walls on low-index planes. Every reward here maps a
:class:`~ferrogym.workflows.walls.Segmentation` to a value in [0, 1] and reports the
components it used. The formulas (``a`` is the sublattice's lattice constant, M the number of
labelled sites, ``n_s`` the number of wall points of segment s):

- ``islands`` I: share of labelled sites in *islands*, same-label connected regions with fewer
  than ``max(3, 0.01 M)`` interior sites (sites with no neighbour of another label). It catches
  salt-and-pepper labels, specks and one- or two-cell-thin stripes.
- ``continuity`` C = share of wall points that lie in a *continuous* wall network and do not
  border an island (walls meeting at junctions form one network). A network is continuous if
  it is at least ``L = 4 a`` long, or at least ``L / 2`` long and reaching the edge of the
  analysed region (a wall leaving the field of view has not stopped). The outline of an
  island is no domain wall, however long.
- ``straightness`` T = sum of ``n_s * exp(-r_s / a) * min(1, l_s / (L / 2))`` / sum of ``n_s``
  over segments (one pair of domains each), with ``r_s`` the RMS residual of a line fit and
  ``l_s`` the segment length; short fragments count as less straight, since two points always
  lie on a line.
- rewards of the reference study: ``continuity`` = C (1 - I), ``straightness`` = T (1 - I),
  ``combined`` = C T (1 - I).

Geometry alone cannot tell two variants merged into one domain, or a smooth gradient cut into
bands, from true domains. The order-parameter components judge every segmentation on the
image's order parameter ``z`` (:mod:`~ferrogym.workflows.order`: B-site displacement and
column-intensity ratio, or the local lattice; fixed per image, in units of its neighbour noise):

- ``uniformity`` U = share of the structure of ``z`` (its variance beyond white noise) over the
  labelled sites that the labels explain: ``U = sum_j min(R_j, w_j) / sum_j w_j`` with, per
  column j, the explained share adjusted for the K labels fitted to the n sites, ``R_j = 1 -
  [sum_k sum_{i in k} (z_ij - mean_kj)^2 / (n - K)] / [sum_i (z_ij - mean_j)^2 / (n - 1)]``
  (labels fitted to few sites explain noise too), and the structured share ``w_j = clip(1 -
  NOISE_VARIANCE / var_j, 0, 1)``. Labels that follow every step explain all the structure and
  none of the noise (U near 1; about 0.9 where a column of noise is correlated between
  neighbouring cells, which share cage atoms, so that it looks slightly structured); low when a
  domain holds two variants or two phases. A column of noise alone does not count; a weak but
  clean step (a phase boundary in intensity) counts as much as a strong one.
- ``wall_contrast`` S = sum of ``n_s * clip((c_s - c0) / (c1 - c0), 0, 1)`` / sum of ``n_s``
  over segments (c0 = ``NOISE_CONTRAST`` = 1.5, c1 = ``STEP_CONTRAST`` = 3.5), with ``c_s``
  the median bond contrast across the segment's wall points (the jump of ``z`` across the wall over the typical jump between neighbours of the
  same bond direction, :meth:`~ferrogym.workflows.order.OrderParameter.contrast`): 1 for a
  step, 0 for a ramp or for noise. A wall bond with an end where the order parameter is
  undefined (an incomplete cage at the border) proves no step and counts as contrast 0, so
  labels where the ruler cannot reach earn nothing.
- reward: ``order`` = U S, the default (it won the reward audit, see the README). It leaves
  out the islands penalty: a true domain of a few cells on a small image is an "island" by
  that rule, while specks of noise are already walls without a step.
  Below :data:`NO_WALLS_BELOW` no wall is a step: ``ferrogym analyze`` then reports one
  domain.

All rewards are 0 with fewer than two labels or no walls: a segmentation without walls says
nothing about walls.

A custom reward is any callable ``reward(segmentation)`` returning a :class:`RewardResult` or
a plain number, registered with :func:`register_reward`, or named as ``"module:function"``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .errors import InputError
from .walls import Segmentation

#: A wall at least this many lattice constants long is continuous.
LONG_WALL = 4.0
#: Regions with fewer interior sites than max(3, this share of the sites) are islands.
ISLAND_SHARE = 0.01
#: A wall whose median bond contrast is at most this is noise (the typical neighbour difference
#: is 1; the median over a short wall of noise bonds scatters up to about 1.5).
NOISE_CONTRAST = 1.5
#: A wall whose median bond contrast reaches this is a full step.
STEP_CONTRAST = 3.5
#: Variance of white noise in the order parameter's units (its neighbour differences have
#: median absolute value 1): 1 / (2 * 0.6745^2).
NOISE_VARIANCE = 1.0 / (2.0 * 0.6745**2)
#: The reward ``ferrogym analyze``, the envs and the searchers use unless told otherwise.
DEFAULT_REWARD = "order"
#: A best ``order`` reward below this means no configuration found walls: one domain.
NO_WALLS_BELOW = 0.25


@dataclass(frozen=True)
class RewardResult:
    """A reward value in [0, 1] and the named components it was computed from."""

    value: float
    components: dict[str, float] = field(default_factory=dict)


RewardFn = Callable[[Segmentation], RewardResult]
REWARDS: dict[str, RewardFn] = {}


def register_reward(name: str, reward: RewardFn | None = None):
    """Register ``reward`` under ``name``; usable as a decorator when ``reward`` is omitted."""

    def add(function: RewardFn) -> RewardFn:
        REWARDS[name] = function
        return function

    return add(reward) if reward is not None else add


def as_reward_result(value, reward=None) -> RewardResult:
    """A reward's return value as a RewardResult: itself, or a real number with no components.

    Every caller of a reward goes through this, so a custom reward may return a plain float."""
    if isinstance(value, RewardResult):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(
            f"reward {reward!r} returned {type(value).__name__} {value!r}; a reward returns a number "
            "or a RewardResult"
        ) from None
    return RewardResult(number)


def get_reward(reward: str | RewardFn) -> RewardFn:
    """Resolve a registered name, a ``"module:function"`` path or a callable."""
    if callable(reward):
        return reward
    if reward in REWARDS:
        return REWARDS[reward]
    if isinstance(reward, str) and ":" in reward:
        module_name, _, attribute = reward.partition(":")
        try:
            function = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError, ValueError, TypeError) as error:
            raise InputError(f"reward {reward!r} could not be imported: {error}") from error
        if not callable(function):
            raise InputError(f"reward {reward!r} is not callable")
        return function
    raise InputError(
        f"unknown reward {reward!r}; use one of {sorted(REWARDS)}, a callable, or 'module:function'"
    )


def wall_components(segmentation: Segmentation) -> dict[str, float]:
    """Everything the built-in rewards are made of, plus descriptive statistics."""
    labelled = int((segmentation.labels >= 0).sum())
    a = segmentation.spacing
    networks, segments = segmentation.networks, segmentation.segments
    total = float(len(segmentation.wall_points))
    network_length = np.array([w.length_px for w in networks]) / a
    border = np.array([w.touches_border for w in networks], dtype=bool)
    continuous = (network_length >= LONG_WALL) | (border & (network_length >= LONG_WALL / 2))
    in_island = island_sites(segmentation)
    continuous_points = continuous[segmentation.network_index] & ~in_island[segmentation.wall_bonds].any(axis=1)
    points = np.array([len(s.points) for s in segments], dtype=float)
    lengths = np.array([s.length_px for s in segments]) / a
    residuals = np.array([s.residual_px for s in segments]) / a
    straight = np.exp(-residuals) * np.minimum(1.0, lengths / (LONG_WALL / 2))
    return {
        "n_labels": float(segmentation.n_labels),
        "islands": float(in_island.sum() / labelled) if labelled else 1.0,
        "continuity": float(continuous_points.sum() / total) if total else 0.0,
        "straightness": float(np.sum(points * straight) / total) if total else 0.0,
        "n_walls": float(len(segments)),
        "n_networks": float(len(networks)),
        "mean_wall_length": float(lengths.mean()) if len(segments) else 0.0,
        "wall_density": float(total / labelled) if labelled else 0.0,
    }


def island_sites(segmentation: Segmentation) -> np.ndarray:
    """Sites in regions with too few interior sites (see module docs)."""
    labelled = segmentation.labels >= 0
    if not labelled.any():
        return labelled
    component = segmentation.same_label_components
    interior_per_region = np.bincount(component[segmentation.interior], minlength=component.max() + 1)
    minimum = max(3, ISLAND_SHARE * labelled.sum())
    return labelled & (interior_per_region[component] < minimum)


def island_fraction(segmentation: Segmentation) -> float:
    """Share of labelled sites in islands; 1 when nothing is labelled."""
    labelled = segmentation.labels >= 0
    return float(island_sites(segmentation).sum() / labelled.sum()) if labelled.any() else 1.0


def order_components(segmentation: Segmentation) -> dict[str, float]:
    """Uniformity and wall contrast on the segmentation's order parameter (see module docs)."""
    order = segmentation.order
    if order is None:
        raise InputError(
            "this reward judges walls on the image's order parameter, but the segmentation has none "
            "(Segmentation.order is None); build segmentations with a Workflow, or pass order="
        )
    return {"uniformity": uniformity(segmentation), "wall_contrast": wall_contrast(segmentation)}


def uniformity(segmentation: Segmentation) -> float:
    """Share of the order parameter's variance beyond noise that the labels explain (see module docs)."""
    z, labels = segmentation.order.values, segmentation.labels
    known = (labels >= 0) & np.isfinite(z).all(axis=1)
    z, labels = z[known], labels[known]
    if len(z) < 2:
        return 0.0
    total = z.var(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        signal = np.where(total > 0, np.clip(1.0 - NOISE_VARIANCE / total, 0.0, 1.0), 0.0)
        if signal.sum() == 0:
            return 0.0
        _, index = np.unique(labels, return_inverse=True)
        n, k = len(z), index.max() + 1
        if n <= k:
            return 0.0
        means = np.stack([np.bincount(index, weights=column) for column in z.T], axis=1) / np.bincount(index)[:, None]
        within = ((z - means[index]) ** 2).sum(axis=0) / (n - k)  # unbiased: k labels fit noise too
        explained = np.where(total > 0, 1.0 - within / (total * n / (n - 1)), 0.0)
    return float(np.sum(np.clip(np.minimum(explained, signal), 0.0, None)) / signal.sum())


def wall_contrast(segmentation: Segmentation) -> float:
    """Wall-point-weighted step score of the segments (see module docs); 0 without walls."""
    if len(segmentation.wall_bonds) == 0:
        return 0.0
    contrast = segmentation.order.contrast(segmentation.xy, segmentation.wall_bonds)
    contrast = np.nan_to_num(contrast, nan=0.0)  # an end without order parameter proves no step
    segment = segmentation.segment_index
    present = np.unique(segment)
    points = np.bincount(segment)[present]
    median = np.asarray(ndimage.median(contrast, labels=segment, index=present))
    step = np.clip((median - NOISE_CONTRAST) / (STEP_CONTRAST - NOISE_CONTRAST), 0.0, 1.0)
    return float(np.sum(points * step) / points.sum())


def _has_walls(components: dict[str, float]) -> bool:
    return components["n_labels"] >= 2 and components["n_walls"] > 0


@register_reward("continuity")
def continuity_reward(segmentation: Segmentation) -> RewardResult:
    """C (1 - I): long or border-reaching walls, few islands."""
    c = wall_components(segmentation)
    value = c["continuity"] * (1 - c["islands"]) if _has_walls(c) else 0.0
    return RewardResult(value, c)


@register_reward("straightness")
def straightness_reward(segmentation: Segmentation) -> RewardResult:
    """T (1 - I): long walls that follow straight lines, few islands."""
    c = wall_components(segmentation)
    value = c["straightness"] * (1 - c["islands"]) if _has_walls(c) else 0.0
    return RewardResult(value, c)


@register_reward("combined")
def combined_reward(segmentation: Segmentation) -> RewardResult:
    """C T (1 - I): the reference study's continuous, straight walls."""
    c = wall_components(segmentation)
    value = c["continuity"] * c["straightness"] * (1 - c["islands"]) if _has_walls(c) else 0.0
    return RewardResult(value, c)


@register_reward("order")
def order_reward(segmentation: Segmentation) -> RewardResult:
    """U S: domains uniform in the order parameter, walls that are steps in it (the default)."""
    c = wall_components(segmentation) | order_components(segmentation)
    value = c["uniformity"] * c["wall_contrast"] if _has_walls(c) else 0.0
    return RewardResult(value, c)

