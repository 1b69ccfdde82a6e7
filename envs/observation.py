"""What an agent sees: fixed-length float32 summaries of the image, the configuration and the
segmentation, each entry named, bounded and documented.

The observation is built from *blocks* of :class:`Entry`; :data:`IMAGE`, :func:`config_block`,
:data:`SEGMENTATION` and :data:`SEARCH` are concatenated by the envs, and
:func:`markdown_table` renders the same entries as the table in the env docstrings and the
README, so the contract agents learn on is written in one place. Every value is clipped to its
entry's bounds, so observations always lie inside the env's ``Box``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.restoration import estimate_sigma

from ferrogym.workflows.rewards import order_components, wall_components
from ferrogym.workflows.space import SearchSpace
from ferrogym.workflows.workflow import Evaluation, Workflow

#: Cluster fractions are reported for this many clusters (the most the search space offers).
MAX_CLUSTERS = 8
#: Wall segment counts are scaled by log(1 + n) / log(1 + this).
MANY_WALLS = 64


@dataclass(frozen=True)
class Entry:
    """One observation entry: its name, bounds and what it means."""

    name: str
    low: float
    high: float
    meaning: str


IMAGE = (
    Entry("lattice_constant", 0, 1, "lattice constant a in pixels / 100"),
    Entry("atoms", 0, 1, "log10(number of atom columns) / 5"),
    Entry("snr", 0, 1, "log10(1 + median column peak / noise sigma) / 2; 0 without an image"),
    Entry("ab_contrast", -1, 1, "(A - B) / (A + B) median column peaks; 0 without an image or B sites"),
    Entry("has_image", 0, 1, "1 if an image was given, 0 for positions only"),
    Entry("has_b_sites", 0, 1, "1 if B sites were found or given"),
    Entry("b_displacement", 0, 1, "4 x median |B-site displacement| / a; 0 without B sites"),
)

SEGMENTATION = (
    Entry("reward", -1, 1, "reward of this evaluation (built-in rewards lie in [0, 1])"),
    Entry("islands", 0, 1, "share of labelled cells in small same-label islands"),
    Entry("continuity", 0, 1, "share of wall points in continuous walls"),
    Entry("straightness", 0, 1, "wall-point-weighted straightness of the wall segments"),
    Entry("uniformity", 0, 1, "share of the order parameter's structure explained by the labels (order reward)"),
    Entry("wall_contrast", 0, 1, "wall-point-weighted step of the order parameter across walls (order reward)"),
    Entry("clusters_used", 0, 1, f"labels present on the cells / {MAX_CLUSTERS}"),
    *(
        Entry(f"cluster_fraction_{i}", 0, 1, f"share of labelled cells in the {i + 1}. largest cluster")
        for i in range(MAX_CLUSTERS)
    ),
    Entry("assigned", 0, 1, "share of cells with a label"),
    Entry("wall_density", 0, 1, "wall points per labelled cell"),
    Entry("walls", 0, 1, f"log(1 + wall segments) / log(1 + {MANY_WALLS})"),
    Entry("mean_wall_length", 0, 1, "mean wall segment length / the image's longer side (both in a)"),
    Entry("label_entropy", 0, 1, f"entropy of the cluster fractions / log({MAX_CLUSTERS})"),
    Entry("isolated", 0, 1, "share of labelled cells with no neighbour of the same label"),
    Entry("degenerate", 0, 1, "1 if the configuration gave no segmentation (reason in info)"),
)

SEARCH = (
    Entry("best_reward", -1, 1, "best reward so far in this episode (0 before the first step)"),
    Entry("budget_used", 0, 1, "evaluations made / budget"),
    Entry("improved", 0, 1, "1 if this step improved the best reward"),
)


def config_block(space: SearchSpace) -> tuple[Entry, ...]:
    """Configuration entries: one-hot per categorical choice, grid position for numbers."""
    entries = []
    for param in space.params:
        if param.kind == "categorical":
            entries += [Entry(f"{param.name}={v}", 0, 1, f"1 if {param.name} is {v}") for v in param.grid]
        else:
            unit = f" {param.unit}" if param.unit else ""
            meaning = f"grid position of {param.name}: 0 = {param.grid[0]}{unit}, 1 = {param.grid[-1]}{unit}"
            entries.append(Entry(param.name, 0, 1, meaning))
    return tuple(entries)


def bounds(entries) -> tuple[np.ndarray, np.ndarray]:
    """float32 lows and highs of a block, for the env's Box."""
    return (
        np.array([e.low for e in entries], dtype=np.float32),
        np.array([e.high for e in entries], dtype=np.float32),
    )


def clipped(values, entries) -> np.ndarray:
    """Values as float32 clipped to their entries' bounds."""
    low, high = bounds(entries)
    return np.clip(np.asarray(values, dtype=np.float32), low, high)


def image_features(workflow: Workflow) -> np.ndarray:
    """The :data:`IMAGE` block of a workflow's image (measures its lattice if not yet done)."""
    lattice = workflow.lattice
    a = lattice.lattice_constant_px
    has_image = workflow.image is not None
    snr = contrast = 0.0
    if has_image and np.isfinite(lattice.amplitude).all():
        sigma = float(estimate_sigma(workflow.image))
        snr = np.log10(1 + np.median(lattice.amplitude) / max(sigma, 1e-12)) / 2
        if lattice.has_b_sites:
            peak_a = np.median(lattice.amplitude[lattice.site_indices("A")])
            peak_b = np.median(lattice.amplitude[lattice.site_indices("B")])
            contrast = (peak_a - peak_b) / max(peak_a + peak_b, 1e-12)
    displacement = 0.0
    if lattice.has_b_sites:
        magnitude = np.linalg.norm(lattice.b_displacement, axis=1)
        magnitude = magnitude[np.isfinite(magnitude)]
        displacement = 4 * np.median(magnitude) / a if magnitude.size else 0.0
    values = [a / 100, np.log10(len(lattice.xy)) / 5, snr, contrast, has_image, lattice.has_b_sites, displacement]
    return clipped(values, IMAGE)


def config_features(space: SearchSpace, config) -> np.ndarray:
    """The configuration block of a canonical configuration."""
    values = []
    for param in space.params:
        if param.kind == "categorical":
            values += [float(config[param.name] == v) for v in param.grid]
        else:
            index = int(np.argmin(np.abs(np.asarray(param.grid, float) - config[param.name])))
            values.append(index / max(len(param.grid) - 1, 1))
    return np.asarray(values, dtype=np.float32)


def segmentation_features(workflow: Workflow, evaluation: Evaluation) -> np.ndarray:
    """The :data:`SEGMENTATION` block of one evaluation."""
    segmentation = evaluation.segmentation
    components = evaluation.components
    if not {"islands", "continuity", "straightness", "n_walls"} <= set(components):
        components = {**wall_components(segmentation), **components}  # a reward that reports other components
    if not {"uniformity", "wall_contrast"} <= set(components):
        order = order_components(segmentation) if segmentation.order is not None else {"uniformity": 0.0, "wall_contrast": 0.0}
        components = {**components, **order}
    labels = segmentation.labels
    labelled = labels[labels >= 0]
    fractions = np.zeros(MAX_CLUSTERS)
    entropy = 0.0
    if labelled.size:
        counts = np.sort(np.bincount(labelled))[::-1]
        shares = counts[counts > 0] / labelled.size
        fractions[: min(len(shares), MAX_CLUSTERS)] = shares[:MAX_CLUSTERS]
        entropy = float(-(shares * np.log(shares)).sum() / np.log(MAX_CLUSTERS))
    lattice = workflow.lattice
    longer_side = np.ptp(segmentation.xy, axis=0).max() / lattice.lattice_constant_px if len(labels) else 1.0
    values = [
        evaluation.reward,
        components["islands"],
        components["continuity"],
        components["straightness"],
        components["uniformity"],
        components["wall_contrast"],
        len(np.unique(labelled)) / MAX_CLUSTERS,
        *fractions,
        labelled.size / max(len(labels), 1),
        components["wall_density"],
        np.log1p(components["n_walls"]) / np.log1p(MANY_WALLS),
        components["mean_wall_length"] / max(longer_side, 1.0),
        entropy,
        _isolated_share(segmentation),
        evaluation.reason is not None,
    ]
    return clipped(values, SEGMENTATION)


def _isolated_share(segmentation) -> float:
    """Share of labelled sites none of whose bonded neighbours carries the same label."""
    labels = segmentation.labels
    labelled = labels >= 0
    if not labelled.any():
        return 0.0
    bonds = segmentation.bonds
    same = labelled[bonds[:, 0]] & (labels[bonds[:, 0]] == labels[bonds[:, 1]])
    has_partner = np.zeros(len(labels), dtype=bool)
    has_partner[bonds[same, 0]] = True
    has_partner[bonds[same, 1]] = True
    return float((labelled & ~has_partner).sum() / labelled.sum())


def markdown_table(entries, first_index: int = 0) -> str:
    """The entries as a markdown table (index, name, min, max, meaning) for docs."""
    lines = ["| index | name | min | max | meaning |", "|---|---|---|---|---|"]
    for i, e in enumerate(entries, start=first_index):
        lines.append(f"| {i} | `{e.name}` | {e.low:g} | {e.high:g} | {e.meaning} |")
    return "\n".join(lines)
