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
- rewards: ``continuity`` = C (1 - I), ``straightness`` = T (1 - I), ``combined`` =
  C T (1 - I). All are 0 with fewer than two labels or no walls: a segmentation without walls
  says nothing about walls.

A custom reward is any callable ``reward(segmentation) -> RewardResult`` registered with
:func:`register_reward`, or named as ``"module:function"``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError
from .walls import Segmentation

#: A wall at least this many lattice constants long is continuous.
LONG_WALL = 4.0
#: Regions with fewer interior sites than max(3, this share of the sites) are islands.
ISLAND_SHARE = 0.01


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
    """C T (1 - I): the default reward."""
    c = wall_components(segmentation)
    value = c["continuity"] * c["straightness"] * (1 - c["islands"]) if _has_walls(c) else 0.0
    return RewardResult(value, c)
