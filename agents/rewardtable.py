"""The rewards of a fixed set of candidate configurations on a set of training images.

A reward table is what the reward-table policy (:mod:`ferrogym.agents.neighbours`) and the
``static:best`` baseline learn from: row ``i`` holds the reward of every candidate on training
image ``i`` (and its truth ARI where the image has one, kept for analysis only: nothing is
chosen by it), with the image's observation features and the kind of input the analysis had
(:func:`input_kind`: an image, or positions alone, where image patches cannot be described).

The candidates are the space's coarse grid (:func:`~ferrogym.agents.searchers.coarse_grid`).
Rows are appended to ``DIR/table.jsonl`` as images finish, so an interrupted collection
resumes where it stopped.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ferrogym.envs.observation import image_features
from ferrogym.workflows.errors import InputError
from ferrogym.workflows.images import ImageSet
from ferrogym.workflows.space import get_space

from .records import append_record, read_jsonl
from .searchers import coarse_grid

TABLE = "table.jsonl"
CANDIDATES = "candidates.json"
IMAGE, POSITIONS = "image", "positions"


@dataclass(frozen=True)
class RewardTable:
    """Rewards (images x candidates) of the candidate configurations on training images.

    ``rewards`` and ``ari`` are NaN where the image's input could not give the candidate's
    descriptor (patches of positions, displacements of A sites alone), which was not evaluated;
    ``ari`` also where an image has no truth; ``seconds`` is the wall-clock of each row;
    ``inputs`` the :func:`input_kind` of each row.
    """

    space: str
    candidates: tuple[dict, ...]
    images: tuple[str, ...]
    rewards: np.ndarray
    ari: np.ndarray
    features: np.ndarray
    seconds: np.ndarray
    inputs: tuple[str, ...]

    @property
    def evaluations(self) -> int:
        """Evaluations made (a candidate the input could not give was not evaluated)."""
        return int(np.isfinite(self.rewards).sum())

    def rows_of(self, kind: str) -> np.ndarray:
        """Indices of the rows whose input is of this kind; every row when the table has none."""
        rows = np.flatnonzero(np.asarray(self.inputs) == kind)
        return rows if len(rows) else np.arange(len(self.images))

    def best_static(self, kind: str = IMAGE, descriptors: Collection[str] | None = None) -> dict:
        """The candidate with the best mean reward over the rows of this kind of input (no truth
        involved): the one configuration a user would run on every image of that kind; with
        ``descriptors``, the best of the candidates with one of them (those an input can give)."""
        mean = known_mean(self.rewards[self.rows_of(kind)])
        if descriptors is not None:
            mean = np.where([c["descriptor"] in descriptors for c in self.candidates], mean, -np.inf)
        return dict(self.candidates[int(np.argmax(mean))])


def known_mean(rewards: np.ndarray) -> np.ndarray:
    """Column means over the finite entries (NaN: the input could not give the candidate's
    descriptor); -inf for a column with none."""
    known = np.isfinite(rewards)
    count = known.sum(axis=0)
    return np.where(count > 0, np.where(known, rewards, 0.0).sum(axis=0) / np.maximum(count, 1), -np.inf)


def input_kind(workflow) -> str:
    """``"image"`` when the workflow has an image, else ``"positions"``: rows of a reward table
    and the images a policy searches are compared within one kind, since without an image
    patches cannot be described and score nothing."""
    return IMAGE if workflow.image is not None else POSITIONS


def collect(image_sets: Sequence[ImageSet], out: Path, space: str = "descriptors", workers: int = 1,
            progress: bool = True) -> RewardTable:
    """Evaluate every candidate on every image of the sets not yet in ``out/table.jsonl``; return
    the table of those images."""
    space = get_space(space)
    out.mkdir(parents=True, exist_ok=True)
    candidates = coarse_grid(space)
    candidates_path = out / CANDIDATES
    if candidates_path.exists():
        if json.loads(candidates_path.read_text()) != {"space": space.name, "candidates": candidates}:
            raise InputError(f"{out} holds a table of other candidates (another space or version); use a new --out")
    else:
        candidates_path.write_text(json.dumps({"space": space.name, "candidates": candidates}))
    done = {row["image"] for row in read_jsonl(out / TABLE)}
    names = [images.name(i) for images in image_sets for i in range(len(images))]
    jobs = [(images, i, space.name, candidates, out) for images in image_sets for i in range(len(images))
            if images.name(i) not in done]
    with tqdm(total=len(names), initial=len(names) - len(jobs), desc="images", unit="image",
              disable=not progress) as bar:
        if workers > 1 and len(jobs) > 1:
            with multiprocessing.get_context("forkserver").Pool(workers) as pool:
                for _ in pool.imap_unordered(_collect_row, jobs):
                    bar.update()
        else:
            for job in jobs:
                _collect_row(job)
                bar.update()
    return load(out, names=names)


def _collect_row(job) -> None:
    images, index, space, candidates, out = job
    start = time.perf_counter()
    workflow = images.workflow(index, space=space)
    describable = workflow.describable_space["descriptor"].grid
    evaluations = [workflow.evaluate(config) if config["descriptor"] in describable else None for config in candidates]
    append_record(out / TABLE, {
        "image": images.name(index),
        "input": input_kind(workflow),
        "features": image_features(workflow).tolist(),
        "rewards": [None if e is None else round(float(e.reward), 4) for e in evaluations],
        "ari": [None if e is None or e.metrics.get("ari") is None else round(e.metrics["ari"], 3) for e in evaluations],
        "seconds": round(time.perf_counter() - start, 3),
    })


def load(folder: str | Path, names: Sequence[str] | None = None) -> RewardTable:
    """The table in ``folder`` (rows in ``names`` order when given, else as recorded)."""
    folder = Path(folder)
    if not (folder / CANDIDATES).is_file() or not (folder / TABLE).is_file():
        raise InputError(f"{folder} holds no reward table (needs {CANDIDATES} and {TABLE}); "
                         "make one with `ferrogym fit-policy --out DIR`")
    header = json.loads((folder / CANDIDATES).read_text())
    rows = {row["image"]: row for row in read_jsonl(folder / TABLE)}
    names = [n for n in names if n in rows] if names is not None else list(rows)
    if not names:
        raise InputError(f"the reward table in {folder} has no rows")
    take = [rows[n] for n in names]
    return RewardTable(
        header["space"], tuple(header["candidates"]), tuple(names),
        np.array([[np.nan if v is None else v for v in r["rewards"]] for r in take], dtype=float),
        np.array([[np.nan if a is None else a for a in r["ari"]] for r in take], dtype=float),
        np.array([r["features"] for r in take], dtype=float),
        np.array([r["seconds"] for r in take], dtype=float),
        tuple(r.get("input", IMAGE) for r in take),  # tables before positions rows: images only
    )
