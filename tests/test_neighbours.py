"""Tests for the reward-table policy (ferrogym.agents.neighbours, .rewardtable) and the static
baselines it shares its table with."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ferrogym.agents.benchmark import run_benchmark
from ferrogym.agents.neighbours import (
    NeighbourSearcher,
    choose_k,
    cross_validate,
    equivalence_classes,
    fit,
    next_candidate,
    simulate,
)
from ferrogym.agents.rewardtable import CANDIDATES, TABLE, load
from ferrogym.agents.search import make_strategy
from ferrogym.agents.searchers import SpaceExhausted, coarse_grid
from ferrogym.workflows.errors import InputError
from ferrogym.workflows.images import parse_images
from ferrogym.workflows.space import SEARCH_SPACE, VAE_SPACE

#: Three training images x three candidates: image 2 disagrees with the others.
REWARDS = np.array([[0.9, 0.1, 0.5], [0.8, 0.2, 0.5], [0.0, 1.0, 0.5]])


def test_the_first_proposal_is_the_best_mean_candidate():
    assert next_candidate(REWARDS, [], [], k=1) == 0  # means 0.57, 0.43, 0.50


def test_proposals_follow_the_training_images_that_behaved_alike():
    # The new image gave 0 where image 2 gave 0: its one nearest neighbour says candidate 1.
    assert next_candidate(REWARDS, [0], [0.0], k=1) == 1
    # Over all three images the mean improvement on 0 is larger for candidate 2 (0.50 > 0.43).
    assert next_candidate(REWARDS, [0], [0.0], k=3) == 2


def test_no_candidate_is_proposed_twice_and_an_exhausted_table_says_so():
    tried, observed = [], []
    for _ in range(3):
        j = next_candidate(REWARDS, tried, observed, k=2)
        assert j not in tried
        tried.append(j)
        observed.append(0.3)
    with pytest.raises(SpaceExhausted, match="every candidate"):
        next_candidate(REWARDS, tried, observed, k=2)


def test_a_candidate_equal_to_a_tried_one_on_every_training_image_is_not_proposed(tmp_path):
    rewards = np.array([[0.9, 0.9, 0.1, 0.5], [0.8, 0.8, 0.2, 0.6], [0.0, 0.0, 1.0, 0.5]])  # 0 and 1: one class
    assert equivalence_classes(rewards).tolist()[:2] == [equivalence_classes(rewards)[0]] * 2
    assert len(set(equivalence_classes(rewards).tolist())) == 3
    # simulated on an image like image 0, the twin of the first guess would come next without the classes
    assert next_candidate(rewards, [0], [0.9], k=1) == 1
    assert simulate(rewards, rewards[0], k=1, budget=4).tolist() == [0.9, 0.9, 0.9, 0.9]  # 3 classes, then the best
    candidates = coarse_grid(SEARCH_SPACE)[:4]
    table = _write_table(tmp_path, rewards, candidates, [f"synthetic:{i}" for i in range(3)])
    fit(table, tmp_path, "synthetic:0-2", "order")
    searcher = NeighbourSearcher(tmp_path, SEARCH_SPACE)
    proposed = []
    for _ in range(3):
        proposed.append(searcher.ask())
        searcher.tell(proposed[-1], 0.9)
    assert SEARCH_SPACE.canonical(candidates[1]) not in proposed
    with pytest.raises(SpaceExhausted):
        searcher.ask()


def test_simulate_returns_the_best_so_far_of_the_held_out_row():
    curve = simulate(REWARDS[:2], REWARDS[2], k=1, budget=3)
    assert curve.tolist() == [0.0, 0.5, 1.0]  # candidate 0, then the neighbours' next best


def _two_kinds_table(n_per_kind: int = 6, n_candidates: int = 12, seed: int = 0) -> np.ndarray:
    """Images of two kinds: kind A pays on candidate 0, kind B on candidate 1; a shared candidate
    2 is fair on both, so it is the best on average and tells the kinds apart."""
    rng = np.random.default_rng(seed)
    rewards = rng.uniform(0.0, 0.2, size=(2 * n_per_kind, n_candidates))
    rewards[:n_per_kind, 0] = 0.95
    rewards[n_per_kind:, 1] = 0.95
    rewards[:n_per_kind, 2] = 0.6
    rewards[n_per_kind:, 2] = 0.7
    return rewards


def _write_table(folder, rewards, candidates, names, space="descriptors", inputs=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CANDIDATES).write_text(json.dumps({"space": space, "candidates": candidates}))
    with open(folder / TABLE, "w") as handle:
        for i, (name, row) in enumerate(zip(names, rewards)):
            record = {"image": name, "features": [0.0], "rewards": row.tolist(), "ari": [None] * len(row),
                      "seconds": 1.0}
            if inputs is not None:
                record["input"] = inputs[i]
            handle.write(json.dumps(record) + "\n")
    return load(folder)


def test_cross_validation_prefers_neighbours_when_images_come_in_kinds(tmp_path):
    candidates = coarse_grid(SEARCH_SPACE)[:12]
    table = _write_table(tmp_path, _two_kinds_table(), candidates, [f"synthetic:{i}" for i in range(12)])
    results = cross_validate(table, ks=(1, 2, 4))
    # After the shared candidate, a few neighbours know the kind; all eleven others do not.
    assert results[2][:, 1].mean() == pytest.approx(0.95)
    assert results[11][:, 1].mean() < 0.9
    assert choose_k(results) in (1, 2, 4)


def test_fit_writes_a_run_the_searcher_and_static_best_use(tmp_path):
    candidates = coarse_grid(SEARCH_SPACE)[:12]
    table = _write_table(tmp_path, _two_kinds_table(), candidates, [f"synthetic:{i}" for i in range(12)])
    run = fit(table, tmp_path, "synthetic:0-11", "order")
    assert run["static_best"] == candidates[2] and run["timesteps"] == 144 and run["k"]["image"] in (1, 2, 4)
    searcher = NeighbourSearcher(tmp_path, SEARCH_SPACE)
    first = searcher.ask()
    assert first == SEARCH_SPACE.canonical(candidates[2])
    searcher.tell(first, 0.7)  # kind B
    assert searcher.ask() == SEARCH_SPACE.canonical(candidates[1])
    with pytest.raises(InputError, match="trained on the 'descriptors' space"):
        NeighbourSearcher(tmp_path, VAE_SPACE)


def test_a_folder_without_a_table_is_refused_with_the_command_to_make_one(tmp_path):
    with pytest.raises(InputError, match="ferrogym fit-policy"):
        load(tmp_path)


@pytest.fixture(scope="module")
def tiny_table_run(tmp_path_factory):
    """A fitted reward-table run on two 'training' seeds (made-up rewards; the benchmark evaluates)."""
    folder = tmp_path_factory.mktemp("table")
    candidates = coarse_grid(SEARCH_SPACE)
    rewards = np.random.default_rng(1).uniform(size=(2, len(candidates)))
    table = _write_table(folder, rewards, candidates, ["synthetic:7000", "synthetic:7001"])
    fit(table, folder, "synthetic:7000-7001", "order")
    return folder


def test_static_baselines_and_the_policy_run_in_a_benchmark_as_amortised(tmp_path, tiny_table_run):
    strategies = ["static:default", f"static:best:{tiny_table_run}", f"policy:{tiny_table_run}"]
    rows = run_benchmark(strategies, "synthetic:500-500,shape=96x96", 3, 1, tmp_path, oracle=False, progress=False)
    assert {r["protocol"] for r in rows} == {"amortised"}
    assert sorted({r["budget"] for r in rows}) == [1, 3]
    records = [json.loads(line) for line in (tmp_path / "evaluations.jsonl").read_text().splitlines()]
    run = json.loads((tiny_table_run / "run.json").read_text())
    for strategy, expected in ((strategies[0], SEARCH_SPACE.default()), (strategies[1], run["static_best"])):
        configs = [r["config"] for r in records if r["strategy"] == strategy]
        assert configs == [SEARCH_SPACE.canonical(expected)] * 3  # one configuration, whatever the budget
    policy = [r["config"] for r in records if r["strategy"] == strategies[2]]
    assert policy[0] == SEARCH_SPACE.canonical(run["static_best"]) and len({json.dumps(c) for c in policy}) == 3
    costs = {r["strategy"]: r["training_timesteps"] for r in rows}
    assert costs[strategies[0]] == 0 and costs[strategies[1]] == costs[strategies[2]] == 2 * 1330


def test_static_best_is_refused_on_its_training_images_and_on_an_sb3_run(tmp_path, tiny_table_run):
    with pytest.raises(InputError, match="overlaps the benchmark images"):
        run_benchmark([f"static:best:{tiny_table_run}"], "synthetic:7001-7002,shape=96x96", 1, 1, tmp_path,
                      oracle=False, progress=False)
    workflow = parse_images("synthetic:500,shape=96x96").workflow(0, space="vae")
    with pytest.raises(InputError, match="chosen on the 'descriptors' space"):
        make_strategy(f"static:best:{tiny_table_run}", workflow, 1, 0)


def test_candidates_the_input_cannot_describe_are_skipped_without_an_evaluation(tiny_table_run):
    from ferrogym.agents.policy import policy_searcher
    from ferrogym.workflows.workflow import Workflow

    sample = parse_images("synthetic:500,shape=128x128").workflow(0)
    positions_only = Workflow(positions=sample.lattice.xy)  # no image, no sublattice: lattice features only
    searcher = policy_searcher(tiny_table_run, positions_only, budget=4)
    for _ in range(4):
        config = searcher.ask()
        assert config["descriptor"] == "lattice"
        evaluation = positions_only.evaluate(config)
        assert evaluation.reason is None
        searcher.tell(config, evaluation.reward, evaluation)



def test_positions_are_searched_with_the_rows_of_positions_and_static_best_with_those_of_images(tmp_path):
    candidates = coarse_grid(SEARCH_SPACE)[:12]
    rewards = _two_kinds_table()  # rows 0-5 pay on candidate 0, rows 6-11 on candidate 1
    inputs = ["image"] * 6 + ["positions"] * 6
    names = [f"synthetic:{i}" for i in range(6)] + [f"synthetic:{i}/positions" for i in range(6, 12)]
    table = _write_table(tmp_path, rewards, candidates, names, inputs=inputs)
    assert table.inputs == tuple(inputs) and table.rows_of("positions").tolist() == list(range(6, 12))
    run = fit(table, tmp_path, ["synthetic:0-5", "synthetic:6-11,input=positions"], "order")
    assert run["static_best"] == candidates[0]  # the best over the image rows alone
    assert set(run["k"]) == set(run["cross_validation"]) == {"image", "positions"}
    # each held-out image is searched with its own kind: the first guess already pays
    assert run["cross_validation"]["positions"][str(run["k"]["positions"])]["1"] == pytest.approx(0.95)
    assert NeighbourSearcher(tmp_path, SEARCH_SPACE, input="positions").ask() == SEARCH_SPACE.canonical(candidates[1])
    assert NeighbourSearcher(tmp_path, SEARCH_SPACE, input="image").ask() == SEARCH_SPACE.canonical(candidates[0])


def test_static_best_is_the_first_guess_for_each_kind_of_input(tmp_path, two_families_workflow):
    from ferrogym.workflows.workflow import Workflow

    grid = coarse_grid(SEARCH_SPACE)
    candidates = [next(c for c in grid if c["descriptor"] == name) for name in ("patch", "displacement", "lattice")]
    rewards = np.array([[0.9, 0.5, 0.1], [0.9, 0.5, 0.1], [0.0, 0.8, 0.4], [0.0, 0.8, 0.4]])
    names = ["synthetic:7300", "synthetic:7301", "synthetic:7302/positions", "synthetic:7303/positions"]
    table = _write_table(tmp_path, rewards, candidates, names, inputs=["image"] * 2 + ["positions"] * 2)
    fit(table, tmp_path, ["synthetic:7300-7301", "synthetic:7302-7303,input=positions"], "order")
    found = two_families_workflow.lattice
    inputs = {
        "patch": two_families_workflow,  # an image: the best image row
        "displacement": Workflow(positions=found.xy, sublattice=found.sublattice),  # the best positions row
        "lattice": Workflow(positions=found.xy[found.site_indices("A")]),  # the best one A sites can give
    }
    for expected, workflow in inputs.items():
        static = make_strategy(f"static:best:{tmp_path}", workflow, 1, 0).ask()
        assert static["descriptor"] == expected
        assert make_strategy(f"policy:{tmp_path}", workflow, 1, 0).ask() == static


#: Candidates 0 (displacements), 1 and 2 (lattice): rows 0-1 are A sites alone, which cannot give
#: candidate 0 (NaN); rows 2-3 have B sites.
UNDESCRIBED = np.array([[np.nan, 0.2, 0.9], [np.nan, 0.2, 0.9], [0.8, 0.2, 0.1], [0.8, 0.2, 0.1]])


def test_means_count_only_the_images_that_could_give_a_candidate():
    # Candidate 0's mean is 0.8 over the two images with B sites, not 0.4 over all four.
    assert next_candidate(UNDESCRIBED, [], [], k=4) == 0
    assert next_candidate(UNDESCRIBED, [], [], k=4, excluded={0}) == 2  # A sites alone: 0.5 > 0.2


def test_an_image_that_could_not_give_a_tried_candidate_is_no_neighbour():
    # After candidate 0 gave 0.8, the A-site rows (NaN there) are not like this image, even with
    # k = 4: the B-site rows say candidate 1 (0.2) beats candidate 2 (0.1); the A-site rows would
    # have said candidate 2 (0.9).
    assert next_candidate(UNDESCRIBED, [0], [0.8], k=4) == 1


def test_simulation_skips_what_the_held_out_image_could_not_give_without_a_step():
    curve = simulate(UNDESCRIBED, np.array([np.nan, 0.3, 0.7]), k=4, budget=3)
    assert curve.tolist() == [0.7, 0.7, 0.7]  # candidate 0 skipped: the first step is candidate 2


def test_collected_rows_hold_no_reward_where_the_input_cannot_give_the_descriptor(tmp_path):
    from ferrogym.agents.rewardtable import collect

    table = collect([parse_images("synthetic:7400,shape=128x128,family=stripes,input=a_positions")], tmp_path,
                    progress=False)
    lattice = np.array([c["descriptor"] == "lattice" for c in table.candidates])
    assert np.isfinite(table.rewards[0]).tolist() == lattice.tolist()
    assert table.evaluations == lattice.sum() and json.loads((tmp_path / TABLE).read_text())["rewards"][0] is None


def test_a_table_without_input_kinds_is_all_images(tmp_path):
    table = _write_table(tmp_path, REWARDS, coarse_grid(SEARCH_SPACE)[:3], ["synthetic:0", "synthetic:1", "synthetic:2"])
    assert table.inputs == ("image",) * 3 and table.rows_of("positions").tolist() == [0, 1, 2]


def test_a_policy_trained_on_several_specs_is_refused_on_any_of_their_seeds(tmp_path):
    candidates = coarse_grid(SEARCH_SPACE)
    rewards = np.random.default_rng(2).uniform(size=(2, len(candidates)))
    names = ["synthetic:7100", "synthetic:7200/a_positions"]
    table = _write_table(tmp_path, rewards, candidates, names, inputs=["image", "positions"])
    fit(table, tmp_path, ["synthetic:7100", "synthetic:7200,input=a_positions"], "order")
    assert NeighbourSearcher(tmp_path, SEARCH_SPACE).table.images == tuple(names)
    with pytest.raises(InputError, match="overlaps the benchmark images"):
        run_benchmark([f"policy:{tmp_path}"], "synthetic:7200,shape=96x96", 1, 1, tmp_path / "bench",
                      oracle=False, progress=False)
