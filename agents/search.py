"""The one search loop every strategy runs: ask, evaluate on the image, tell, record.

Strategies are named as on the command line: ``random``, ``grid``, ``bayes-gp``,
``bayes-tpe`` (:mod:`ferrogym.agents.searchers`), ``policy:DIR`` (a trained policy:
:mod:`ferrogym.agents.policy` for Stable-Baselines3 agents, :mod:`ferrogym.agents.neighbours`
for a reward-table policy; ``policy:shipped`` is the reward-table policy installed with the
package, found from any folder), or a static baseline in the manner of DACBench, which evaluates one
configuration whatever the budget: ``static:default`` (the space's default, among the
descriptors the input can give) and ``static:best`` (the candidate with the best mean reward
over the shipped policy's training images of the same kind of input, image or positions, among
the descriptors the input can give; ``static:best:DIR`` over those of the reward-table policy in
DIR).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ferrogym.workflows.errors import InputError
from ferrogym.workflows.space import SearchSpace
from ferrogym.workflows.workflow import Evaluation, Workflow

from .searchers import SEARCHERS, Searcher, make_searcher

POLICY_PREFIX = "policy:"
STATIC_PREFIX = "static:"
STATIC = ("static:default", "static:best")
STATIC_BEST_PREFIX = "static:best:"
#: ``policy:shipped``: the policy installed with the package (:func:`~ferrogym.agents.policy.shipped_policy`).
SHIPPED = "shipped"
#: Prefixes of strategies whose argument is a training run's folder.
RUN_PREFIXES = (POLICY_PREFIX, STATIC_BEST_PREFIX)


@dataclass(frozen=True)
class SearchStep:
    """One evaluation of a search: its 1-based step, the seconds it took (ask + evaluate + tell)
    and the evaluation's outcome without its labels and segmentation, which are megabytes on a
    full frame (the best evaluation is kept whole in :class:`SearchResult`)."""

    step: int
    seconds: float
    config: dict[str, Any]
    config_px: dict[str, Any]
    reward: float
    components: dict[str, float]
    metrics: dict[str, float]
    reason: str | None

    @classmethod
    def of(cls, step: int, evaluation: Evaluation, seconds: float) -> SearchStep:
        """The step of ``evaluation``, keeping none of its arrays."""
        return cls(step, seconds, evaluation.config, evaluation.config_px, evaluation.reward, evaluation.components,
                   evaluation.metrics, evaluation.reason)


@dataclass(frozen=True)
class SearchResult:
    """Every step of a search and its best evaluation (the first of the highest reward)."""

    steps: list[SearchStep]
    best: Evaluation


class StaticSearcher(Searcher):
    """The same configuration at every step: a static baseline (repeats cost nothing, the
    workflow keeps the last evaluation)."""

    def __init__(self, name: str, config: dict[str, Any], space: SearchSpace):
        super().__init__(space)
        self.name = name
        self.config = space.canonical(config)

    def _propose(self) -> dict[str, Any]:
        return dict(self.config)


def check_strategy(strategy: str) -> str:
    """The strategy name, or InputError saying which names exist."""
    if strategy in SEARCHERS or strategy == "static:default":
        return strategy
    run_dir = training_run(strategy)
    if run_dir is not None:
        from .policy import load_run

        run = load_run(run_dir)
        if strategy.startswith(STATIC_PREFIX) and "static_best" not in run:
            raise InputError(f"{strategy}: {run_dir} is not a reward-table policy (made by `ferrogym fit-policy`)")
        return strategy
    raise InputError(f"unknown strategy {strategy!r}; use {', '.join(SEARCHERS)}, {', '.join(STATIC)}, "
                     f"static:best:DIR, {POLICY_PREFIX}{SHIPPED} or policy:DIR (a training run)")


def training_run(strategy: str) -> str | None:
    """The training run a strategy learned from (``policy:DIR``, ``static:best[:DIR]``), else None.

    ``static:best`` and ``policy:shipped`` name the policy installed with the package, wherever
    the command runs (a folder called ``shipped`` is then ``policy:./shipped``)."""
    if strategy in ("static:best", POLICY_PREFIX + SHIPPED):
        from .policy import shipped_policy

        return str(shipped_policy())
    for prefix in RUN_PREFIXES:
        if strategy.startswith(prefix) and len(strategy) > len(prefix):
            return strategy[len(prefix):]
    return None


def make_strategy(strategy: str, workflow: Workflow, budget: int, seed: int, image_name: str = "image") -> Searcher:
    """A fresh searcher for one search of ``budget`` evaluations on ``workflow``'s image; random,
    grid and Bayesian search search the part of the space the input can describe
    (:attr:`~ferrogym.workflows.workflow.Workflow.describable_space`)."""
    if strategy == "static:default":
        return StaticSearcher(strategy, workflow.describable_space.default(), workflow.space)
    if strategy.startswith(STATIC_PREFIX):
        from .neighbours import load_policy
        from .rewardtable import input_kind

        run, table = load_policy(training_run(strategy))
        if run.get("space") != workflow.space.name:
            raise InputError(f"{strategy} was chosen on the {run.get('space')!r} space; this search is over "
                             f"{workflow.space.name!r}")
        best = table.best_static(input_kind(workflow), workflow.describable_space["descriptor"].grid)
        return StaticSearcher(strategy, best, workflow.space)
    if strategy.startswith(POLICY_PREFIX):
        from .policy import policy_searcher

        return policy_searcher(training_run(strategy), workflow, budget, seed, image_name)
    return make_searcher(check_strategy(strategy), workflow.describable_space, seed)


def run_search(
    searcher: Searcher,
    workflow: Workflow,
    budget: int,
    *,
    replay: Sequence[dict[str, Any]] = (),
    on_step: Callable[[SearchStep], None] | None = None,
) -> SearchResult:
    """Run ``budget`` ask/evaluate/tell rounds; return every step and the best evaluation.

    ``replay`` holds the configurations of steps already recorded (an interrupted search): they
    are asked, checked against the record and told again, so the searcher is in the same state
    as before the interruption; ``on_step`` is called for the new steps only.
    """
    if budget < 1:
        raise InputError(f"budget={budget}; a search needs at least one evaluation")
    steps, best = [], None
    for index in range(budget):
        start = time.perf_counter()
        config = searcher.ask()
        if index < len(replay) and workflow.space.canonical(replay[index]) != config:
            raise RuntimeError(
                f"{searcher.name} asked {config} at step {index + 1} where the record has {replay[index]}; "
                "the search is not reproducible, so it cannot be resumed"
            )
        evaluation = workflow.evaluate(config)
        searcher.tell(config, evaluation.reward, evaluation)
        step = SearchStep.of(index + 1, evaluation, time.perf_counter() - start)
        steps.append(step)
        if best is None or evaluation.reward > best.reward:
            best = evaluation
        if on_step is not None and index >= len(replay):
            on_step(step)
    return SearchResult(steps, best)
