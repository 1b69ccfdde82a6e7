"""The reward-table policy: propose what paid off on the training images that behave like this one.

Trained from a :class:`~ferrogym.agents.rewardtable.RewardTable` (every candidate of the
space's coarse grid evaluated on every training image, by reward alone), it searches a new
image like this:

1. First, the candidate with the best mean reward over the training images: ``static:best``'s
   choice, so a budget of one is never worse than that baseline on average.
2. Then, after each evaluation, it finds the ``k`` training images whose rewards on the
   candidates tried so far are closest (root-mean-square) to what this image gave, and proposes
   the untried candidate with the largest mean improvement over the best reward so far on those
   neighbours (the mean of ``max(reward - best, 0)``: an empirical expected improvement).

Training images count only for inputs of their kind (:func:`~ferrogym.agents.rewardtable.input_kind`):
positions without an image are searched with the rows of training images given as positions,
where the table has such rows, so their first guess is the best lattice descriptor there, not
``static:best``'s patches, which they cannot describe.

This is collaborative filtering of configurations across images, the idea behind warm-started
AutoML (auto-sklearn 2.0's portfolios, Fusi et al. 2018): images that agree on some
configurations tend to agree on the others. ``k`` is chosen by leave-one-image-out simulation on
the table itself (:func:`cross_validate`), which needs no further evaluation, only rewards.
Deterministic: the same rewards give the same proposals.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ferrogym.workflows.errors import InputError
from ferrogym.workflows.images import parse_images
from ferrogym.workflows.space import CLUSTERING_STAGE, SearchSpace

from .rewardtable import IMAGE, TABLE, RewardTable, known_mean, load
from .searchers import Searcher, SpaceExhausted

ALGO = "neighbours"
#: Neighbourhood sizes tried by cross-validation.
KS = (1, 2, 4, 8, 16, 32)
#: The budget cross-validation optimises (the issue's "five evaluations"), and those it reports.
TARGET_BUDGET = 5
REPORTED_BUDGETS = (1, 3, 5, 10, 20)


def next_candidate(rewards: np.ndarray, tried: list[int], observed: list[float], k: int,
                   excluded: Collection[int] = ()) -> int:
    """Index of the candidate to evaluate next (see module docs).

    ``rewards`` is (images, candidates), NaN where a training input could not give the
    candidate's descriptor; ``tried`` the candidate indices evaluated so far and ``observed``
    their rewards on the image being searched; ``excluded`` candidates are never proposed (the
    input cannot give their descriptor). A training image that could not give a tried candidate
    is no neighbour (its input is of another make); means are over the images that could.
    """
    if tried:
        distance = np.sqrt(np.mean((rewards[:, tried] - np.asarray(observed)) ** 2, axis=1))
        order = np.argsort(distance, kind="stable")  # NaN distances last
        comparable = order[np.isfinite(distance[order])]
        neighbours = rewards[comparable[:k] if len(comparable) else order]
        gain = known_mean(np.maximum(neighbours - max(observed), 0.0))
    else:
        neighbours = rewards
        gain = known_mean(rewards)
    mean = known_mean(neighbours)
    order = np.lexsort((-mean, -gain))  # largest gain first, then the neighbours' mean reward
    untried = order[~np.isin(order, [*tried, *excluded])]
    if len(untried) == 0:
        raise SpaceExhausted("neighbours: every candidate of the reward table has been tried")
    return int(untried[0])


def equivalence_classes(rewards: np.ndarray) -> np.ndarray:
    """A class per candidate: candidates with the same reward on every training image are one
    (no reduction and a PCA that keeps every dimension of a 4-number descriptor, before a
    rotation-invariant mixture); once one is tried, the others would only repeat it. Entries
    no input could give (NaN) are equal to each other."""
    comparable = np.where(np.isnan(rewards), -np.inf, rewards)
    return np.unique(comparable, axis=1, return_inverse=True)[1].ravel()


def simulate(rewards: np.ndarray, truth_row: np.ndarray, k: int, budget: int,
             classes: np.ndarray | None = None) -> np.ndarray:
    """Best-so-far reward over ``budget`` steps of the policy on an image whose candidate rewards
    are ``truth_row``, known in advance (an image of the table held out); ``classes`` are
    ``equivalence_classes(rewards)`` (computed when not given). Candidates the image could not
    give (NaN in ``truth_row``) are skipped without a step, as the searcher skips them. Once
    every class is tried the best so far stays, to the end of the budget."""
    classes = equivalence_classes(rewards) if classes is None else classes
    tried, observed, excluded = [], [], set(np.flatnonzero(np.isnan(truth_row)).tolist())
    while len(tried) < budget:
        try:
            j = next_candidate(rewards, tried, observed, k, excluded)
        except SpaceExhausted:
            break
        tried.append(j)
        observed.append(float(truth_row[j]))
        excluded.update(np.flatnonzero(classes == classes[j]).tolist())
    best = np.maximum.accumulate(observed)
    return np.concatenate([best, np.full(budget - len(best), best[-1])])


def cross_validate(table: RewardTable, ks=KS, budget: int = max(REPORTED_BUDGETS)) -> dict[int, np.ndarray]:
    """Leave-one-image-out best-so-far rewards, {k: (images, budget)}, from the table alone; each
    held-out image is searched with the other rows of its input kind, as the searcher would.

    Besides ``ks``, k = every other image is tried: that policy ignores what the image gave and
    follows one fixed sequence (a greedy portfolio).
    """
    n = len(table.images)
    if n < 2:
        raise InputError("cross-validation needs a reward table of at least 2 images")
    pools = []
    for held_out in range(n):
        pool = table.rows_of(table.inputs[held_out])
        pool = pool[pool != held_out]
        pools.append(pool if len(pool) else np.delete(np.arange(n), held_out))
    classes = [equivalence_classes(table.rewards[pool]) for pool in pools]
    results = {}
    for k in sorted({*(k for k in ks if k < n - 1), n - 1}):
        results[k] = np.array([simulate(table.rewards[pool], table.rewards[held_out], min(k, len(pool)), budget,
                                        classes[held_out])
                               for held_out, pool in enumerate(pools)])
    return results


def choose_k(results: dict[int, np.ndarray]) -> int:
    """The k with the best mean cross-validated reward at :data:`TARGET_BUDGET` (ties: the
    better mean over every budget, then the smaller k)."""
    return max(results, key=lambda k: (round(results[k][:, TARGET_BUDGET - 1].mean(), 6),
                                       round(results[k].mean(), 6), -k))


def fit(table: RewardTable, folder: Path, images: str | list[str], reward: str) -> dict[str, Any]:
    """Choose k per kind of input on ``table`` (collected in ``folder`` from the image SPEC
    ``images``, or several) and write the folder's ``run.json``; return the run record.

    ``k`` and ``cross_validation`` (mean best reward per k and budget) are keyed by the kind of
    input, since each kind is searched with its own rows."""
    start = time.perf_counter()
    results = cross_validate(table)
    by_input = {kind: {k: curves[table.rows_of(kind)] for k, curves in results.items()}
                for kind in sorted(set(table.inputs))}
    run = {
        "algo": ALGO,
        "space": table.space,
        "reward": reward,
        "images": images,
        "k": {kind: choose_k(kind_results) for kind, kind_results in by_input.items()},
        "static_best": table.best_static(),
        "timesteps": table.evaluations,  # evaluations spent on training images, as env steps
        "train_seconds": round(float(table.seconds.sum()) + time.perf_counter() - start, 1),
        "cross_validation": {
            kind: {str(k): {str(b): round(float(curves[:, b - 1].mean()), 4) for b in REPORTED_BUDGETS
                            if b <= curves.shape[1]}
                   for k, curves in kind_results.items()}
            for kind, kind_results in by_input.items()
        },
    }
    (folder / "run.json").write_text(json.dumps(run, indent=2))
    return run


def load_policy(run_dir: str | Path) -> tuple[dict[str, Any], RewardTable]:
    """The run record and the reward table (its training images' rows) of a reward-table policy,
    read once per folder and version: a benchmark starts a searcher for every search."""
    folder = Path(run_dir).resolve()
    versions = tuple((folder / name).stat().st_mtime_ns for name in ("run.json", TABLE))
    return _read_policy(folder, versions)


def training_images(run: dict[str, Any]) -> list:
    """The image sets of a run's image SPEC or SPECs."""
    specs = run["images"]
    return [parse_images(spec) for spec in ([specs] if isinstance(specs, str) else specs)]


@lru_cache(maxsize=8)
def _read_policy(folder: Path, versions: tuple[int, ...]) -> tuple[dict[str, Any], RewardTable]:
    run = json.loads((folder / "run.json").read_text())
    table = load(folder, names=[image_set.name(i) for image_set in training_images(run)
                                for i in range(len(image_set))])
    table.rewards.setflags(write=False)  # shared by every searcher of this folder
    return run, table


class NeighbourSearcher(Searcher):
    """Searches one image with a reward-table policy (``policy:DIR`` where DIR was made by
    ``ferrogym fit-policy``); it proposes candidates of the table only.

    ``describable(config)`` says whether the input can give a candidate's descriptor (an image
    for patches, B sites for displacements); candidates it cannot are skipped without spending
    an evaluation, once per descriptor setting. Without it every candidate may be proposed.
    ``input`` is the searched input's :func:`~ferrogym.agents.rewardtable.input_kind`: the
    training rows of that kind are the neighbours.
    """

    name = ALGO

    def __init__(self, run_dir: str | Path, space: SearchSpace, seed: int = 0,
                 describable: Callable[[dict], bool] | None = None, input: str = IMAGE):
        super().__init__(space, seed)
        run, self.table = load_policy(run_dir)
        if run["space"] != space.name:
            raise InputError(f"policy {run_dir} was trained on the {run['space']!r} space; this search is over "
                             f"{space.name!r} (choose it with --space)")
        self.k = _neighbourhood(run["k"], input)
        self.rewards = self.table.rewards[self.table.rows_of(input)]
        self._classes = equivalence_classes(self.rewards)
        self.describable = describable
        self._candidates = [space.canonical(c) for c in self.table.candidates]
        self._column = {_key(c): j for j, c in enumerate(self._candidates)}
        self._tried: list[int] = []
        self._observed: list[float] = []
        self._excluded: set[int] = set()
        self._checked: dict[str, bool] = {}

    def _propose(self) -> dict[str, Any]:
        while True:
            j = next_candidate(self.rewards, self._tried, self._observed, self.k, self._excluded)
            if self._can_describe(self._candidates[j]):
                return dict(self._candidates[j])
            self._excluded.add(j)

    def _can_describe(self, config: dict[str, Any]) -> bool:
        if self.describable is None:
            return True
        setting = _key({name: value for name, value in config.items() if name not in CLUSTERING_STAGE})
        if setting not in self._checked:
            self._checked[setting] = self.describable(config)
        return self._checked[setting]

    def _observe(self, config: dict[str, Any], reward: float | None, evaluation) -> None:
        self._tried.append(self._column[_key(config)])
        self._observed.append(float(np.nanmin(self.rewards)) if reward is None else reward)
        self._excluded.update(np.flatnonzero(self._classes == self._classes[self._tried[-1]]).tolist())


def _neighbourhood(k: int | dict[str, int], input: str) -> int:
    """The k fitted for this kind of input; for a kind the table lacks (searched with every row),
    the largest, since rows of another kind are weaker evidence. Runs before kinds: one k."""
    if isinstance(k, int):
        return k
    return int(k.get(input, max(k.values())))


def _key(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True)
