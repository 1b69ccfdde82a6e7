"""Analyse one's own data: search the best segmentation of one image or set of positions.

Writes, under the output folder:

- ``segmentation.csv``: one row per atom, ``x,y,sublattice,label`` (pixels; sublattice ``A``
  or ``B``; label -1 where the atom was left unassigned). Cell sites (B, or A without B) carry
  the label the walls were measured on;
- ``summary.json``: ``{"config": ..., "reward": ..., "components": ..., "evaluations": ...}``
  with the chosen configuration in human units (windows in pixels);
- ``segmentation.png``: the segmentation over the image.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ferrogym.workflows.errors import InputError
from ferrogym.workflows.figure import save_segmentation_figure
from ferrogym.workflows.io import load_image, load_positions
from ferrogym.workflows.workflow import Evaluation, Workflow

from .search import make_strategy, run_search


def workflow_for(image=None, positions=None, a_sites=None, b_sites=None, reward="combined") -> Workflow:
    """The workflow of an image file, a positions file, or separate A- and B-site files.

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
        return Workflow(array, positions=xy, sublattice=sublattice, reward=reward)
    if positions is not None:
        return Workflow(array, positions=load_positions(positions), reward=reward)
    if array is None:
        raise InputError("nothing to analyse: give an IMAGE, --positions, or --a-sites and --b-sites")
    return Workflow(array, reward=reward)


def analyze(workflow: Workflow, search: str, budget: int, out: str | Path, *, seed: int = 0,
            name: str = "image", progress: bool = True) -> Evaluation:
    """Search ``budget`` configurations with strategy ``search``; write the results; return the best."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    searcher = make_strategy(search, workflow, budget, seed, name)
    with tqdm(total=budget, desc=f"{search} search", unit="eval", disable=not progress) as bar:
        steps = run_search(searcher, workflow, budget, on_step=lambda _: bar.update())
    best = max(steps, key=lambda s: s.evaluation.reward).evaluation
    write_segmentation_csv(workflow, best, out / "segmentation.csv")
    summary = {"config": best.config_px, "reward": best.reward, "components": best.components,
               "evaluations": len(steps)}
    if best.reason:
        summary["reason"] = best.reason
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    save_segmentation_figure(out / "segmentation.png", workflow.image, best.segmentation,
                             f"{name}: {search}, reward {best.reward:.3f}")
    return best


def atom_labels(workflow: Workflow, evaluation: Evaluation) -> np.ndarray:
    """Label per lattice atom: the cell label on cell sites, the atom's own label elsewhere."""
    labels = evaluation.atom_labels.copy()
    labels[workflow.lattice.cell_sites] = evaluation.segmentation.labels
    return labels


def write_segmentation_csv(workflow: Workflow, evaluation: Evaluation, path: Path) -> Path:
    lattice = workflow.lattice
    labels = atom_labels(workflow, evaluation)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x", "y", "sublattice", "label"])
        for (x, y), site, label in zip(lattice.xy, lattice.sublattice, labels):
            writer.writerow([f"{x:.3f}", f"{y:.3f}", site, int(label)])
    return path
