"""Search strategies behind one ask/tell interface.

A :class:`Searcher` proposes configurations and learns from their rewards, the way Optuna's
``study.ask``/``study.tell`` do: the caller owns the loop, so the same loop (and the same
budget of evaluations) drives every strategy::

    searcher = make_searcher("bayes-gp", seed=3)
    for _ in range(budget):
        config = searcher.ask()
        searcher.tell(config, workflow.evaluate(config).reward)
    searcher.best_config, searcher.best_reward

Every strategy is built from the same :class:`~ferrogym.workflows.space.SearchSpace` (a search
on an image: the part its input can describe, ``Workflow.describable_space``) and only ever asks
canonical configurations made of the parameters' ``grid`` values, so random, grid and Bayesian
search compare on exactly the same finite space:

- ``"random"``: uniform grid configurations (:class:`RandomSearcher`);
- ``"grid"``: a coarse grid in seeded shuffled order (:class:`GridSearcher`);
- ``"bayes-gp"``, ``"bayes-tpe"``: Optuna's Gaussian-process and TPE samplers over the grid
  indices (:class:`OptunaSearcher`).

Each searcher is deterministic given its seed and the rewards it is told, and uses no global
random state.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from functools import partial
from itertools import product
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState

from ferrogym.workflows.errors import InputError
from ferrogym.workflows.space import SEARCH_SPACE, SearchSpace
from ferrogym.workflows.torchthreads import one_torch_thread

__all__ = [
    "DEFAULT_LEVELS",
    "SEARCHERS",
    "AskTellError",
    "GridSearcher",
    "OptunaSearcher",
    "RandomSearcher",
    "Searcher",
    "SpaceExhausted",
    "coarse_grid",
    "make_searcher",
]


class AskTellError(RuntimeError):
    """``ask`` and ``tell`` were called out of turn (each ask needs exactly one tell, in order)."""


class SpaceExhausted(RuntimeError):
    """Every configuration of the space has already been asked."""


class Searcher(ABC):
    """A search strategy over a :class:`SearchSpace`, driven by ask/tell.

    Subclasses implement :meth:`_propose` (and optionally :meth:`_observe`); this base class
    enforces the protocol and keeps the best configuration.

    Parameters
    ----------
    space : the space searched; every asked configuration is canonical in it.
    seed : seeds all of the searcher's randomness.

    Attributes
    ----------
    name : registry name of the strategy.
    n_told : number of completed ask/tell rounds.
    n_failed : how many of those were told a non-finite reward.
    """

    name: str

    def __init__(self, space: SearchSpace = SEARCH_SPACE, seed: int = 0):
        self.space = space
        self.seed = seed
        self.n_told = 0
        self.n_failed = 0
        self._pending: dict[str, Any] | None = None
        self._best_config: dict[str, Any] | None = None
        self._best_reward = -math.inf

    @property
    def best_config(self) -> dict[str, Any] | None:
        """The configuration with the highest finite reward told so far (None before any)."""
        return None if self._best_config is None else dict(self._best_config)

    @property
    def best_reward(self) -> float:
        """The highest finite reward told so far (-inf before any)."""
        return self._best_reward

    def ask(self) -> dict[str, Any]:
        """The next configuration to evaluate (canonical in :attr:`space`).

        Raises AskTellError if the previous ask has not been told yet.
        """
        if self._pending is not None:
            raise AskTellError(
                f"{self.name}: ask() called twice without tell(); tell the reward of "
                f"{self._pending} first"
            )
        self._pending = self._propose()
        return dict(self._pending)

    def tell(self, config: Mapping[str, Any], reward: float, evaluation=None) -> None:
        """Record the reward of the configuration returned by the last :meth:`ask`.

        Parameters
        ----------
        config : the configuration just asked (any equivalent form, compared canonically).
        reward : its reward; NaN or infinite counts as a failure, the worst possible value.
        evaluation : the workflow's :class:`~ferrogym.workflows.workflow.Evaluation`, for
            strategies that learn from more than the reward (optional).
        """
        if self._pending is None:
            raise AskTellError(f"{self.name}: tell() called without a pending ask(); ask first")
        if self.space.canonical(config) != self._pending:
            raise AskTellError(
                f"{self.name}: told {dict(config)} but the pending ask is {self._pending}; "
                "tell the configuration that ask() returned"
            )
        config, self._pending = self._pending, None
        reward = float(reward)
        failed = not math.isfinite(reward)
        self.n_told += 1
        self.n_failed += failed
        if not failed and reward > self._best_reward:
            self._best_reward, self._best_config = reward, config
        self._observe(config, None if failed else reward, evaluation)

    @abstractmethod
    def _propose(self) -> dict[str, Any]:
        """A new canonical configuration of :attr:`space`."""

    def _observe(self, config: dict[str, Any], reward: float | None, evaluation) -> None:
        """Learn from a told result; ``reward`` is None for a failure. Default: nothing."""


class RandomSearcher(Searcher):
    """Uniformly random grid configurations (:meth:`SearchSpace.sample`), repeats allowed."""

    name = "random"

    def __init__(self, space: SearchSpace = SEARCH_SPACE, seed: int = 0):
        super().__init__(space, seed)
        self._rng = np.random.default_rng(seed)

    def _propose(self) -> dict[str, Any]:
        return self.space.sample(self._rng)


#: Coarse levels of the hand-made descriptors' space (1,330 configurations); every space carries
#: its own in :attr:`SearchSpace.coarse`.
DEFAULT_LEVELS: Mapping[str, tuple] = SEARCH_SPACE.coarse


def coarse_grid(space: SearchSpace = SEARCH_SPACE, levels: Mapping[str, tuple] | None = None) -> list[dict]:
    """Every distinct canonical configuration of a discretised space, in a fixed order.

    Parameters named in ``levels`` (default: the space's own :attr:`~SearchSpace.coarse`) take
    only those values (each must be in the parameter's grid); the others take their whole grid.
    Configurations that differ only in inactive parameters are merged (:meth:`SearchSpace.canonical`). Evaluated in full on an image it gives
    the reference best value benchmarks normalise regret with, so it is kept small (1,330
    configurations with :data:`DEFAULT_LEVELS`) and is fast to build (well under a second).

    Raises InputError for an unknown parameter or a level outside its parameter's grid.
    """
    levels = space.coarse if levels is None else levels
    unknown = set(levels) - set(space.names)
    if unknown:
        raise InputError(f"levels name unknown parameter(s) {sorted(unknown)}; the space has {list(space.names)}")
    values = []
    for p in space.params:
        chosen = tuple(levels.get(p.name, p.grid))
        outside = [v for v in chosen if v not in p.grid]
        if outside or not chosen:
            raise InputError(
                f"levels for {p.name} must be a non-empty subset of its grid {list(p.grid)}; got {list(chosen)}"
            )
        values.append(chosen)
    return _distinct(space, (dict(zip(space.names, combo)) for combo in product(*values)))


def _distinct(space: SearchSpace, configs) -> list[dict]:
    """Canonical forms of ``configs`` without duplicates, in first-seen order."""
    seen: dict[tuple, dict] = {}
    for config in configs:
        config = space.canonical(config)
        seen.setdefault(tuple(config.values()), config)
    return list(seen.values())


class GridSearcher(Searcher):
    """Grid search: the coarse grid in a seeded shuffled order, then the rest of the full grid.

    Shuffling makes a budget smaller than the grid a spread, fair sample of it (a different one
    per seed) instead of a corner of the product. Once the coarse grid is used up the searcher
    goes on with the full grid's remaining configurations (:meth:`SearchSpace.grid`, built on
    first need), also shuffled, and raises :class:`SpaceExhausted` when nothing is left.

    Parameters
    ----------
    space, seed : as for :class:`Searcher`.
    levels : coarse-grid levels (see :func:`coarse_grid`); default: the space's own.

    Attributes
    ----------
    configs : the coarse grid in visiting order.
    """

    name = "grid"

    def __init__(self, space: SearchSpace = SEARCH_SPACE, seed: int = 0, levels: Mapping[str, tuple] | None = None):
        super().__init__(space, seed)
        self._rng = np.random.default_rng(seed)
        grid = coarse_grid(space, levels)
        self.configs = [grid[i] for i in self._rng.permutation(len(grid))]
        self._queue = self._visit()

    def _visit(self) -> Iterator[dict[str, Any]]:
        yield from self.configs
        asked = {tuple(c.values()) for c in self.configs}
        rest = [c for c in self.space.grid() if tuple(c.values()) not in asked]
        yield from (rest[i] for i in self._rng.permutation(len(rest)))

    def _propose(self) -> dict[str, Any]:
        config = next(self._queue, None)
        if config is None:
            raise SpaceExhausted("grid: every configuration of the space has been asked")
        return config


@contextmanager
def _quiet_optuna():
    """Optuna without its info logs and experimental warnings, for this block only."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


_SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "gp": lambda seed: optuna.samplers.GPSampler(seed=seed),
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
}


class OptunaSearcher(Searcher):
    """Bayesian optimisation with an Optuna sampler over the grid values.

    Every parameter is suggested in every trial (a flat, fixed space, which the GP sampler
    needs; inactive values are then dropped by canonicalisation): categorical parameters as
    their choices, numeric ones as an ordinal grid index ``0..len(grid)-1`` mapped to
    ``grid[i]``, so Bayesian search explores the same values as random and grid search.

    A non-finite reward is told to Optuna as a failed trial (``TrialState.FAIL``): the
    samplers then ignore it rather than learn a made-up value.

    Parameters
    ----------
    space, seed : as for :class:`Searcher`; ``seed`` seeds the sampler.
    sampler : ``"gp"`` (:class:`optuna.samplers.GPSampler`, 10 random start-up trials, then a
        Matérn GP with expected improvement) or ``"tpe"`` (:class:`optuna.samplers.TPESampler`).
    """

    def __init__(self, space: SearchSpace = SEARCH_SPACE, seed: int = 0, sampler: str = "gp"):
        if sampler not in _SAMPLERS:
            raise InputError(f"unknown Optuna sampler {sampler!r}; use one of {sorted(_SAMPLERS)}")
        super().__init__(space, seed)
        self.name = f"bayes-{sampler}"
        self._distributions = {
            p.name: (
                CategoricalDistribution(p.grid)
                if p.kind == "categorical"
                else IntDistribution(0, len(p.grid) - 1)
            )
            for p in space.params
        }
        with _quiet_optuna():
            self.study = optuna.create_study(direction="maximize", sampler=_SAMPLERS[sampler](seed))
        self._fits_with_torch = sampler == "gp"  # small GP fits: one thread is faster and machine-independent
        self._trial: optuna.Trial | None = None

    def _propose(self) -> dict[str, Any]:
        with _quiet_optuna(), one_torch_thread() if self._fits_with_torch else nullcontext():
            self._trial = self.study.ask(self._distributions)
        params = self._trial.params
        return self.space.canonical(
            {p.name: params[p.name] if p.kind == "categorical" else p.grid[params[p.name]] for p in self.space.params}
        )

    def _observe(self, config: dict[str, Any], reward: float | None, evaluation) -> None:
        with _quiet_optuna():
            if reward is None:
                self.study.tell(self._trial, state=TrialState.FAIL)
            else:
                self.study.tell(self._trial, reward)
        self._trial = None


SEARCHERS: dict[str, Callable[..., Searcher]] = {
    "random": RandomSearcher,
    "grid": GridSearcher,
    "bayes-gp": partial(OptunaSearcher, sampler="gp"),
    "bayes-tpe": partial(OptunaSearcher, sampler="tpe"),
}
"""Registry of search strategies: name -> constructor taking ``(space, seed)``."""


def make_searcher(name: str, space: SearchSpace = SEARCH_SPACE, seed: int = 0) -> Searcher:
    """The registered searcher ``name`` on ``space`` with ``seed``; InputError for unknown names."""
    if name not in SEARCHERS:
        raise InputError(f"unknown searcher {name!r}; choose one of {', '.join(SEARCHERS)}")
    return SEARCHERS[name](space=space, seed=seed)
