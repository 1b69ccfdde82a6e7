"""Searchers: the ask/tell protocol, determinism, the coarse grid and Bayes beating random."""

import math
import time
from functools import lru_cache

import numpy as np
import pytest
from optuna.trial import TrialState

from ferrogym.agents.searchers import (
    DEFAULT_LEVELS,
    SEARCHERS,
    AskTellError,
    GridSearcher,
    OptunaSearcher,
    SpaceExhausted,
    coarse_grid,
    make_searcher,
)
from ferrogym.workflows.errors import InputError
from ferrogym.workflows.space import SEARCH_SPACE, Param, SearchSpace

NAMES = list(SEARCHERS)
BUDGET = 40
OPTIMUM = 1.75


def objective(config):
    """Cheap synthetic reward: 1 for the displacement descriptor, 0.25 for bgmm, and up to 0.5
    more for n_clusters near 4 and windows near 1 a (inactive windows count as 1).

    The optimum 1.75 (displacement, bgmm, 4 clusters) is 1 configuration in 84 of the grid;
    the next best value is 1.553.
    """
    window = math.exp(-((config["window_x"] - 1) ** 2 + (config["window_y"] - 1) ** 2) / 0.5)
    clusters = math.exp(-((config["n_clusters"] - 4) ** 2) / 2)
    return (
        float(config["descriptor"] == "displacement")
        + 0.25 * (config["clustering"] == "bgmm")
        + 0.5 * clusters * window
    )


def run(name, seed, budget):
    """Asked configurations of one search on :func:`objective`, as tuples."""
    searcher = make_searcher(name, seed=seed)
    asked = []
    for _ in range(budget):
        config = searcher.ask()
        searcher.tell(config, objective(config))
        asked.append(tuple(config.items()))
    return asked


@lru_cache(maxsize=None)
def trajectory(name, seed):
    """A full-budget search, shared by the tests (the GP sampler is the slow part)."""
    return run(name, seed, BUDGET)


@pytest.mark.parametrize("name", NAMES)
def test_asked_configs_are_canonical_grid_values(name):
    for items in trajectory(name, 0):
        config = dict(items)
        assert SEARCH_SPACE.canonical(config) == config
        for p in SEARCH_SPACE.params:
            assert config[p.name] in p.grid


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_sequence_different_seed_differs(name):
    assert run(name, 0, 15) == trajectory(name, 0)[:15]  # 10 random start-up asks, then 5 model-based
    assert trajectory(name, 1)[:30] != trajectory(name, 0)[:30]


@pytest.mark.parametrize("name", NAMES)
def test_ask_tell_out_of_turn(name):
    searcher = make_searcher(name, seed=0)
    with pytest.raises(AskTellError, match="without a pending ask"):
        searcher.tell(SEARCH_SPACE.default(), 1.0)
    config = searcher.ask()
    with pytest.raises(AskTellError, match="twice without tell"):
        searcher.ask()
    other = next(c for c in coarse_grid() if c != config)
    with pytest.raises(AskTellError, match="pending ask is"):
        searcher.tell(other, 1.0)
    searcher.tell(config, 0.5)  # the failed calls did not consume the ask
    assert searcher.n_told == 1 and searcher.best_config == config and searcher.best_reward == 0.5


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_reward_is_a_failure(name):
    searcher = make_searcher(name, seed=0)
    assert searcher.best_config is None and searcher.best_reward == -math.inf
    rewards = [math.nan, 0.2, math.inf, 0.1, -math.inf] + [0.3] * 8 + [math.nan, 0.05]
    for reward in rewards:  # the last two asks fit the GP (10 complete trials) next to failed ones
        config = searcher.ask()
        searcher.tell(config, reward)
    assert searcher.n_told == 15 and searcher.n_failed == 4
    assert searcher.best_reward == 0.3
    if isinstance(searcher, OptunaSearcher):
        states = [t.state for t in searcher.study.trials]
        assert states.count(TrialState.FAIL) == 4 and states.count(TrialState.COMPLETE) == 11


def test_best_is_the_highest_finite_reward():
    searcher = make_searcher("random", seed=4)
    told = []
    for reward in (0.3, 0.9, math.nan, 0.5):
        config = searcher.ask()
        searcher.tell(config, reward)
        told.append(config)
    assert searcher.best_reward == 0.9 and searcher.best_config == told[1]


def test_coarse_grid_size_distinct_and_covering():
    start = time.perf_counter()
    grid = coarse_grid()
    assert time.perf_counter() - start < 2.0
    assert grid == coarse_grid()
    assert len(grid) == 1330 and 1000 <= len(grid) <= 2000
    assert len({tuple(c.items()) for c in grid}) == len(grid)
    assert all(SEARCH_SPACE.canonical(c) == c for c in grid)
    for p in SEARCH_SPACE.params:
        offered = set(DEFAULT_LEVELS.get(p.name, p.grid))
        assert offered <= {c[p.name] for c in grid}, p.name
    covariances = {c["covariance"] for c in grid}
    assert covariances == {"full", "diag"}  # the only categorical parameter restricted


def test_coarse_grid_rejects_bad_levels():
    with pytest.raises(InputError, match="unknown parameter"):
        coarse_grid(levels={"window": (1.0,)})
    with pytest.raises(InputError, match="subset of its grid"):
        coarse_grid(levels={"n_clusters": (2, 9)})
    with pytest.raises(InputError, match="subset of its grid"):
        coarse_grid(levels={"n_clusters": ()})


def test_grid_searcher_visits_a_seeded_permutation_of_the_coarse_grid():
    grid = {tuple(c.items()) for c in coarse_grid()}
    searcher = GridSearcher(seed=3)
    assert len(searcher.configs) == len(grid)
    asked = []
    for _ in range(len(grid)):
        config = searcher.ask()
        searcher.tell(config, 0.0)
        asked.append(tuple(config.items()))
    assert asked == [tuple(c.items()) for c in searcher.configs]
    assert set(asked) == grid
    assert GridSearcher(seed=4).configs != searcher.configs


SMALL = SearchSpace(
    (
        Param("method", "categorical", ("a", "b"), "a", "method"),
        Param("k", "int", (1, 2, 3), 1, "only for b", active_when={"method": ("b",)}),
        Param("x", "float", (0.1, 0.2, 0.3), 0.2, "always"),
    )
)


def test_grid_searcher_continues_with_the_rest_of_the_full_grid():
    full = {tuple(c.items()) for c in SMALL.grid()}
    assert len(full) == 12  # a: 3 values of x; b: 3 k x 3 x
    searcher = GridSearcher(SMALL, seed=0, levels={"k": (1, 3), "x": (0.1, 0.3)})
    assert len(searcher.configs) == 6
    asked = []
    for _ in range(len(full)):
        config = searcher.ask()
        searcher.tell(config, 1.0)
        asked.append(tuple(config.items()))
    assert set(asked[:6]) == {tuple(c.items()) for c in searcher.configs}
    assert len(set(asked)) == len(asked) and set(asked) == full
    with pytest.raises(SpaceExhausted):
        searcher.ask()


@pytest.mark.parametrize("name", ["bayes-gp", "bayes-tpe"])
def test_bayes_finds_the_optimum_better_than_random(name):
    """Over seeds 0-2 at budget 40, the Bayesian median best is the optimum (1.75; random's
    median is 1.553) and at least random's. Checked: TPE and GP reach 1.75 on seeds 0-5 except
    GP seed 5 (0.75); random reaches it on 2 of seeds 0-5."""
    seeds = range(3)

    def median_best(searcher_name):
        return np.median([max(objective(dict(c)) for c in trajectory(searcher_name, s)) for s in seeds])

    bayes, random = median_best(name), median_best("random")
    assert bayes >= random
    assert bayes >= OPTIMUM - 0.05


def test_make_searcher():
    assert make_searcher("bayes-tpe", seed=2).name == "bayes-tpe"
    assert isinstance(make_searcher("grid"), GridSearcher)
    with pytest.raises(InputError, match="random, grid, bayes-gp, bayes-tpe"):
        make_searcher("annealing")
    with pytest.raises(InputError, match="unknown Optuna sampler"):
        OptunaSearcher(sampler="cmaes")


def test_gaussian_process_asks_run_on_one_torch_thread_and_restore_the_process_setting():
    import torch

    def proposals(threads: int) -> list[dict]:
        torch.set_num_threads(threads)
        searcher = OptunaSearcher(SEARCH_SPACE, seed=3, sampler="gp")
        sampler, seen = searcher.study.sampler, []
        fit_and_propose = sampler.sample_relative

        def spy(*args, **kwargs):
            seen.append(torch.get_num_threads())
            return fit_and_propose(*args, **kwargs)

        sampler.sample_relative = spy
        rewards = np.random.default_rng(0).uniform(size=14)
        configs = []
        for reward in rewards:  # past the 10 random start-up trials, into the GP's own proposals
            configs.append(searcher.ask())
            assert torch.get_num_threads() == threads
            searcher.tell(configs[-1], float(reward))
        assert seen and set(seen) == {1}
        return configs

    before = torch.get_num_threads()
    try:
        assert proposals(2) == proposals(1)  # the same search, whatever the machine's cores
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("strategy", ["random", "grid", "bayes-tpe", "static:default"])
def test_searches_of_positions_ask_only_what_positions_can_describe(strategy, two_families_lattice):
    from ferrogym.agents.search import make_strategy, run_search
    from ferrogym.workflows.workflow import Workflow

    a_sites = two_families_lattice.xy[two_families_lattice.site_indices("A")]
    workflow = Workflow(positions=a_sites)  # A sites alone, as found on an image: the lattice only
    result = run_search(make_strategy(strategy, workflow, 12, 0), workflow, 12)
    assert {step.config["descriptor"] for step in result.steps} == {"lattice"}
    assert all(step.reason is None or "need" not in step.reason for step in result.steps)
