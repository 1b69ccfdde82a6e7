"""The one search loop every strategy runs: ask, evaluate on the image, tell, record.

Strategies are named as on the command line: ``random``, ``grid``, ``bayes-gp``,
``bayes-tpe`` (:mod:`ferrogym.agents.searchers`) or ``policy:DIR`` (a trained policy,
:mod:`ferrogym.agents.policy`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ferrogym.workflows.errors import InputError
from ferrogym.workflows.workflow import Evaluation, Workflow

from .searchers import SEARCHERS, Searcher, make_searcher

POLICY_PREFIX = "policy:"


@dataclass(frozen=True)
class SearchStep:
    """One evaluation of a search: its 1-based step, the evaluation, and the seconds it took
    (ask + evaluate + tell)."""

    step: int
    evaluation: Evaluation
    seconds: float


def check_strategy(strategy: str) -> str:
    """The strategy name, or InputError saying which names exist."""
    if strategy in SEARCHERS:
        return strategy
    if strategy.startswith(POLICY_PREFIX) and len(strategy) > len(POLICY_PREFIX):
        from .policy import load_run

        load_run(strategy[len(POLICY_PREFIX):])
        return strategy
    raise InputError(f"unknown strategy {strategy!r}; use {', '.join(SEARCHERS)} or policy:DIR (a training run)")


def make_strategy(strategy: str, workflow: Workflow, budget: int, seed: int, image_name: str = "image") -> Searcher:
    """A fresh searcher for one search of ``budget`` evaluations on ``workflow``'s image."""
    if strategy.startswith(POLICY_PREFIX):
        from .policy import PolicySearcher

        return PolicySearcher(strategy[len(POLICY_PREFIX):], workflow, budget, seed, image_name)
    return make_searcher(check_strategy(strategy), workflow.space, seed)


def run_search(
    searcher: Searcher,
    workflow: Workflow,
    budget: int,
    *,
    replay: Sequence[dict[str, Any]] = (),
    on_step: Callable[[SearchStep], None] | None = None,
) -> list[SearchStep]:
    """Run ``budget`` ask/evaluate/tell rounds and return every step.

    ``replay`` holds the configurations of steps already recorded (an interrupted search): they
    are asked, checked against the record and told again, so the searcher is in the same state
    as before the interruption; ``on_step`` is called for the new steps only.
    """
    if budget < 1:
        raise InputError(f"budget={budget}; a search needs at least one evaluation")
    steps = []
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
        step = SearchStep(index + 1, evaluation, time.perf_counter() - start)
        steps.append(step)
        if on_step is not None and index >= len(replay):
            on_step(step)
    return steps
