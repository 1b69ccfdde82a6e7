"""Analyse one's own data: search the best segmentation of one image or set of positions.

Writes, under the output folder:

- ``segmentation.csv``: one row per atom, ``x,y,sublattice,label`` (pixels; sublattice ``A``
  or ``B``; label -1 where the atom was left unassigned). Cell sites (B, or A without B) carry
  the label the walls were measured on;
- ``summary.json``: ``{"walls": ..., "verdict": ..., "config": ..., "reward": ...,
  "components": ..., "evaluations": ..., "no_walls_below": ..., "labels": [{"label", "cells",
  "phase"}, ...], "phases": ...}`` with the best configuration in human units (windows in
  pixels). Labels of one phase (same column-intensity ratio, i.e. chemistry) are its variants;
  ``phase`` and ``phases`` are null where the workflow cannot tell (positions without an image);
- ``segmentation.png``: the domain map over the image (walls drawn), the truth beside it when
  the workflow has one, the polarization map (``-b_displacement`` per B site) when there
  are B sites, and with the VAE a map of its angle and of each latent; each panel at the image's
  aspect ratio, titled with the file name. With the VAE ``summary.json`` also has
  ``descriptor``: the device it trained on, its seconds and final loss.

With the default ``order`` reward, when the best reward stays below
:data:`~ferrogym.workflows.rewards.NO_WALLS_BELOW`, no
configuration found walls that are steps in the image's order parameter: ``walls`` is false,
and the CSV and figure give the one-domain answer (every atom label 0) instead of presenting
the best of noise as domains; ``config`` and ``reward`` still name what the search found.
Another reward has its own scale: ``walls`` is null and its best segmentation is written.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ferrogym.workflows.descriptors import DescriptorUnavailable
from ferrogym.workflows.errors import InputError
from ferrogym.workflows.figure import save_segmentation_figure
from ferrogym.workflows.io import load_image, load_positions
from ferrogym.workflows.order import phases_of_labels
from ferrogym.workflows.rewards import DEFAULT_REWARD, NO_WALLS_BELOW, REWARDS
from ferrogym.workflows.walls import Segmentation
from ferrogym.workflows.workflow import Evaluation, Workflow

from .search import make_strategy, run_search


def workflow_for(image=None, positions=None, a_sites=None, b_sites=None, reward=DEFAULT_REWARD,
                 space: str = "descriptors") -> Workflow:
    """The workflow of an image file, a positions file, or separate A- and B-site files, searching
    ``space`` (``descriptors`` or ``vae``).

    An image given with positions is used for patch descriptors at those positions.
    """
    given = [p for p in (positions, a_sites or b_sites) if p is not None]
    if len(given) > 1:
        raise InputError("give either --positions or --a-sites/--b-sites, not both")
    if (a_sites is None) != (b_sites is None):
        raise InputError("--a-sites and --b-sites go together; for one file of mixed sites use --positions")
    array = load_image(image) if image is not None else None
    if a_sites is not None:
        a, b = load_positions(a_sites).xy, load_positions(b_sites).xy
        xy = np.vstack([a, b])
        sublattice = np.array(["A"] * len(a) + ["B"] * len(b))
        return Workflow(array, positions=xy, sublattice=sublattice, reward=reward, space=space)
    if positions is not None:
        return Workflow(array, positions=load_positions(positions), reward=reward, space=space)
    if array is None:
        raise InputError("nothing to analyse: give an IMAGE, --positions, or --a-sites and --b-sites")
    return Workflow(array, reward=reward, space=space)


@dataclass(frozen=True)
class Analysis:
    """What ``analyze`` concluded.

    Attributes
    ----------
    best : the search's best configuration and its evaluation.
    has_walls : whether that best reward reaches :data:`NO_WALLS_BELOW`; if not, no
        configuration found walls that are steps in the order parameter, and the answer is
        one domain. None for another reward than ``order``, whose scale the threshold is not
        for: then the best segmentation is the answer.
    labels : (N,) label per lattice atom as written (all 0 when there are no walls; -1 for
        atoms left unassigned).
    segmentation : the cell-site segmentation as written and drawn.
    """

    best: Evaluation
    has_walls: bool | None
    labels: np.ndarray
    segmentation: Segmentation

    @property
    def verdict(self) -> str:
        if self.has_walls is None:
            return f"best reward {self.best.reward:.3f}; walls not judged (the no-walls threshold is for {DEFAULT_REWARD!r})"
        if self.has_walls:
            return f"walls found: best reward {self.best.reward:.3f}"
        return (f"no walls: the best reward {self.best.reward:.3f} is below {NO_WALLS_BELOW}, so no "
                "configuration found walls that are steps in the order parameter; reporting one domain")


def analyze(workflow: Workflow, search: str, budget: int, out: str | Path, *, seed: int = 0,
            name: str = "image", progress: bool = True) -> Analysis:
    """Search ``budget`` configurations with strategy ``search``; write the results; return them."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    searcher = make_strategy(search, workflow, budget, seed, name)
    with tqdm(total=budget, desc=f"{search} search", unit="eval", disable=not progress) as bar:
        searched = run_search(searcher, workflow, budget, on_step=lambda _: bar.update())
    best = searched.best
    result = conclude(workflow, best)
    write_segmentation_csv(workflow, result.labels, out / "segmentation.csv")
    summary = {"walls": result.has_walls, "verdict": result.verdict, "config": best.config_px,
               "reward": best.reward, "components": best.components, "evaluations": len(searched.steps),
               "no_walls_below": NO_WALLS_BELOW, **describe_labels(workflow, result.segmentation)}
    if best.reason:
        summary["reason"] = best.reason
    maps, how = descriptor_maps(workflow, best)
    if how:
        summary["descriptor"] = how
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    title = f"{Path(name).name}: {search}, reward {best.reward:.3f}" + (", no walls" if result.has_walls is False else "")
    save_segmentation_figure(out / "segmentation.png", workflow.image, result.segmentation, title,
                             truth=workflow.truth_segmentation, lattice=workflow.lattice, maps=maps)
    return result


def descriptor_maps(workflow: Workflow, evaluation: Evaluation) -> tuple[dict, dict]:
    """The per-site quantities the evaluation's descriptor names (the VAE's angle and latents) as
    figure maps, and how the descriptor was obtained (the VAE's device, seconds, loss)."""
    try:
        features = workflow.features(evaluation.config)
    except DescriptorUnavailable:
        return {}, {}
    xy = workflow.lattice.xy[features.sites]
    return {name: (xy, values) for name, values in features.named.items()}, dict(features.info)


def conclude(workflow: Workflow, best: Evaluation) -> Analysis:
    """The search's best segmentation if it earned walls (or the reward is not ``order``), else
    one domain over every atom."""
    if workflow.reward_fn is not REWARDS[DEFAULT_REWARD]:
        return Analysis(best, None, atom_labels(workflow, best), best.segmentation)
    if best.reward >= NO_WALLS_BELOW:
        return Analysis(best, True, atom_labels(workflow, best), best.segmentation)
    return Analysis(best, False, *one_domain(workflow))


def one_domain(workflow: Workflow) -> tuple[np.ndarray, Segmentation]:
    """The "no walls" answer: one label on every atom, and its cell segmentation."""
    labels = np.zeros(len(workflow.lattice.xy), dtype=int)
    return labels, workflow.cell_segmentation(labels)


def describe_labels(workflow: Workflow, segmentation: Segmentation) -> dict:
    """``labels``: per label its cells and phase; ``phases``: how many (both None for the phase
    where the workflow cannot tell, without column intensities). Labels of one phase are its
    variants."""
    phase = phases_of_labels(workflow.order, segmentation.labels)
    labels = segmentation.labels
    rows = [{"label": int(k), "cells": int((labels == k).sum()), "phase": None if phase is None else phase[int(k)]}
            for k in np.unique(labels[labels >= 0])]
    return {"labels": rows, "phases": None if phase is None else len(set(phase.values()))}


def atom_labels(workflow: Workflow, evaluation: Evaluation) -> np.ndarray:
    """Label per lattice atom: the cell label on cell sites, the atom's own label elsewhere."""
    labels = evaluation.atom_labels.copy()
    labels[workflow.lattice.cell_sites] = evaluation.segmentation.labels
    return labels


def write_segmentation_csv(workflow: Workflow, labels: np.ndarray, path: Path) -> Path:
    """One row per lattice atom: ``x,y,sublattice,label``."""
    lattice = workflow.lattice
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x", "y", "sublattice", "label"])
        for (x, y), site, label in zip(lattice.xy, lattice.sublattice, labels):
            writer.writerow([f"{x:.3f}", f"{y:.3f}", site, int(label)])
    return path
