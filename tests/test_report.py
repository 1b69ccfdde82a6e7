"""The benchmark report on hand-made evaluation records with known answers."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from ferrogym.agents import report
from ferrogym.agents.report import (
    COLUMNS,
    Curve,
    best_at_times,
    bootstrap_ci,
    evaluations_to_reach,
    iqm,
    load_records,
    plot_best_so_far,
    plot_incumbent_ari,
    search_curves,
    strategy_labels,
    summarise,
    write_summary,
)


def search_records(
    rewards, aris=None, seconds=None, protocol="per-image", strategy="random", image="synthetic:0", seed=0
):
    """The records of one search, steps 1..n; ``aris`` None means an image without truth."""
    seconds = [0.1] * len(rewards) if seconds is None else seconds
    return [
        {
            "protocol": protocol,
            "strategy": strategy,
            "image": image,
            "seed": seed,
            "step": step,
            "config": {},
            "config_px": {},
            "reward": reward,
            "components": {},
            "metrics": {} if aris is None else {"ari": aris[step - 1], "assigned": 1.0, "wall_f1": 0.5},
            "seconds": seconds[step - 1],
            "reason": None,
        }
        for step, reward in enumerate(rewards, start=1)
    ]


def only_curve(records) -> Curve:
    (curve,) = search_curves(records).values()
    return curve


# ------------------------------------------------------------------------------------ curves


def test_the_incumbent_is_one_domain_until_walls_are_found():
    """As ferrogym analyze answers: below NO_WALLS_BELOW (0.25) the answer is one domain."""
    records = search_records([0.1, 0.2, 0.6, 0.3], aris=[0.4, 0.0, 0.9, 0.1])
    for record in records:
        record["no_walls_metrics"] = {"ari": 1.0}
    assert only_curve(records).ari.tolist() == [1.0, 1.0, 0.9, 0.9]
    older = search_records([0.1, 0.2], aris=[0.4, 0.0])  # records without the field: the incumbent's own
    assert only_curve(older).ari.tolist() == [0.4, 0.0]


def test_best_so_far_is_the_running_max_and_seconds_accumulate():
    rewards = [0.2, 0.5, 0.3, 0.7, 0.6]
    curve = only_curve(search_records(rewards, seconds=[0.1, 0.2, 0.3, 0.4, 0.5]))
    np.testing.assert_allclose(curve.best, [0.2, 0.5, 0.5, 0.7, 0.7])
    assert np.all(np.diff(curve.best) >= 0)
    np.testing.assert_allclose(curve.seconds, [0.1, 0.3, 0.6, 1.0, 1.5])
    assert curve.n_steps == 5


def test_incumbent_ari_follows_the_incumbent_not_the_best_ari():
    # Step 3 has a better ARI but a lower reward; step 4 ties the best reward: keep step 2's.
    curve = only_curve(search_records([0.3, 0.6, 0.5, 0.6], aris=[0.1, 0.4, 0.9, 0.95]))
    np.testing.assert_allclose(curve.ari, [0.1, 0.4, 0.4, 0.4])


def test_incumbent_ari_is_nan_without_truth():
    assert np.isnan(only_curve(search_records([0.3, 0.6])).ari).all()


def test_curves_keyed_by_search_and_independent_of_record_order():
    records = search_records([0.1, 0.9, 0.4], seed=0) + search_records([0.5, 0.2], strategy="grid", seed=1)
    curves = search_curves(list(reversed(records)))
    assert set(curves) == {("per-image", "random", "synthetic:0", 0), ("per-image", "grid", "synthetic:0", 1)}
    np.testing.assert_allclose(curves[("per-image", "random", "synthetic:0", 0)].best, [0.1, 0.9, 0.9])


@pytest.mark.parametrize("steps", [[1, 3], [2, 3], [1, 1, 2]])
def test_steps_must_be_contiguous_from_one(steps):
    records = [dict(search_records([0.5])[0], step=step) for step in steps]
    with pytest.raises(ValueError, match="random.*synthetic:0"):
        search_curves(records)


def test_best_at_times_is_a_step_function_nan_before_the_first_evaluation():
    curve = Curve(best=np.array([0.2, 0.5, 0.9]), ari=np.full(3, np.nan), seconds=np.array([1.0, 3.0, 6.0]))
    values = best_at_times(curve, np.array([0.5, 1.0, 2.0, 3.0, 10.0]))
    np.testing.assert_allclose(values, [np.nan, 0.2, 0.2, 0.5, 0.9])


# -------------------------------------------------------------------------------- statistics


def test_iqm_by_hand():
    assert iqm(range(8)) == pytest.approx(3.5)  # middle four: 2, 3, 4, 5
    assert iqm([0, 0, 1, 1, 1, 1, 100, -100]) == pytest.approx(0.75)  # outliers trimmed
    np.testing.assert_allclose(iqm(np.arange(16.0).reshape(2, 8), axis=-1), [3.5, 11.5])
    assert math.isnan(iqm([]))


def test_bootstrap_ci_contains_the_iqm_and_is_deterministic():
    values = np.random.default_rng(1).normal(0.5, 0.1, size=40)
    low, high = bootstrap_ci(values)
    assert low < iqm(values) < high
    assert bootstrap_ci(values) == (low, high)
    assert bootstrap_ci(values, seed=1) != (low, high)


def test_bootstrap_ci_narrows_with_more_data():
    rng = np.random.default_rng(2)
    small, large = rng.normal(size=10), rng.normal(size=1000)
    width = lambda ci: ci[1] - ci[0]  # noqa: E731
    assert width(bootstrap_ci(large)) < width(bootstrap_ci(small)) / 3


def test_bootstrap_ci_takes_other_statistics_and_confidences():
    values = np.arange(20.0)
    low, high = bootstrap_ci(values, statistic=np.mean, confidence=0.5)
    wide_low, wide_high = bootstrap_ci(values, statistic=np.mean, confidence=0.99)
    assert wide_low < low < 9.5 < high < wide_high
    assert all(math.isnan(bound) for bound in bootstrap_ci([]))


def test_evaluations_to_reach():
    assert evaluations_to_reach(np.array([0.1, 0.5, 0.8, 0.9]), 0.8) == 3
    assert evaluations_to_reach(np.array([0.1, 0.5]), 0.8) == math.inf


# ----------------------------------------------------------------------------------- summary

ORACLE = {"a": 0.8, "b": 1.0, "c": 0.5}


def summary_records():
    """Three per-image random searches of 12 steps with known first steps at 95 % of the oracle.

    Image a (oracle 0.8, target 0.76) is reached at step 7, image c (0.5, target 0.475) at
    step 3, image b (1.0) never (best 0.9). Seconds are 0.1 per evaluation on a, 0.2 on b, c.
    """
    a = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.77, 0.7, 0.7, 0.7, 0.7, 0.7]
    b = [0.9] + [0.5] * 11
    c = [0.1, 0.2, 0.48] + [0.3] * 9
    return (
        search_records(a, aris=[0.5] * 6 + [0.9] * 6, image="a")
        + search_records(b, seconds=[0.2] * 12, image="b")
        + search_records(c, aris=[0.3] * 12, seconds=[0.2] * 12, image="c")
    )


TRAINING = {"policy:run": {"timesteps": 5000, "seconds": 42.0}}


def with_policy():
    """The summary records plus one amortised policy search of 10 steps on image b."""
    return summary_records() + search_records([0.7] * 10, protocol="amortised", strategy="policy:run", image="b")


def row_of(rows, strategy, budget, protocol="per-image"):
    (row,) = [r for r in rows if (r["protocol"], r["strategy"], r["budget"]) == (protocol, strategy, budget)]
    return row


def test_summary_evaluations_to_95_counts_searches_that_never_reach():
    rows = summarise(summary_records(), ORACLE, budgets=(2, 5, 10))
    early, middle, late = (row_of(rows, "random", budget) for budget in (2, 5, 10))
    assert (early["n_reached_95"], early["evals_to_95_median"]) == (0, math.inf)
    assert (middle["n_reached_95"], middle["share_reached_95"]) == (1, 1 / 3)
    assert middle["evals_to_95_median"] == math.inf  # median of 3, inf, inf
    assert (late["n_reached_95"], late["n_searches"], late["evals_to_95_median"]) == (2, 3, 7.0)  # of 3, 7, inf


def test_summary_regret_best_ari_and_seconds():
    row = row_of(summarise(summary_records(), ORACLE, budgets=(10,)), "random", 10)
    best = np.array([0.77, 0.9, 0.48])  # images a, b, c
    regret = np.array([0.8, 1.0, 0.5]) - best
    assert row["best_iqm"] == pytest.approx(iqm(best))
    assert row["regret_iqm"] == pytest.approx(iqm(regret))
    assert (row["regret_lo"], row["regret_hi"]) == pytest.approx(bootstrap_ci(regret))
    assert row["ari_iqm"] == pytest.approx(iqm([0.9, 0.3]))  # image b has no truth
    assert (row["n_images"], row["n_with_truth"]) == (3, 2)
    assert row["seconds_per_eval_median"] == pytest.approx(0.2)  # 10 of 0.1 s, 20 of 0.2 s
    assert row["seconds_per_search_median"] == pytest.approx(2.0)
    assert set(row) == set(COLUMNS)


def test_summary_omits_budgets_beyond_the_shortest_search():
    grid = search_records([0.5] * 8, strategy="grid", image="a") + search_records([0.5] * 30, strategy="grid", image="b")
    records = summary_records() + grid
    rows = summarise(records, ORACLE, budgets=(5, 10, 25))
    assert [r["budget"] for r in rows if r["strategy"] == "random"] == [5, 10]
    assert [r["budget"] for r in rows if r["strategy"] == "grid"] == [5]


def test_summary_training_costs_only_for_given_strategies():
    rows = summarise(with_policy(), ORACLE, budgets=(10,), training=TRAINING)
    policy, random = row_of(rows, "policy:run", 10, protocol="amortised"), row_of(rows, "random", 10)
    assert (policy["training_timesteps"], policy["training_seconds"]) == (5000, 42.0)
    assert (random["training_timesteps"], random["training_seconds"]) == (None, None)


def test_summary_needs_an_oracle_for_every_image():
    with pytest.raises(ValueError, match="'b'"):
        summarise(summary_records(), {"a": 0.8, "c": 0.5})


# ------------------------------------------------------------------------------ files, plots


def test_load_records_skips_a_truncated_last_line(tmp_path):
    records = search_records([0.2, 0.4])
    path = tmp_path / "evaluations.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"protocol": "per-im')
    assert load_records(path) == records


def test_load_records_rejects_a_corrupt_line_in_the_middle(tmp_path):
    path = tmp_path / "evaluations.jsonl"
    path.write_text('{"a": 1}\n{"a": \n{"a": 3}\n')
    with pytest.raises(ValueError, match=":2:"):
        load_records(path)


def test_write_summary_writes_markdown_and_csv(tmp_path):
    rows = summarise(with_policy(), ORACLE, budgets=(5, 10), training=TRAINING)
    policy = next(r["strategy"] for r in rows if r["protocol"] == "amortised")
    labels = {policy: "policy:short"}
    md_path, csv_path = write_summary(rows, tmp_path / "report", labels)
    markdown = md_path.read_text()
    assert "| policy:short | 5 |" in markdown and policy not in markdown  # the csv keeps the strategy
    assert "## Protocol: per-image" in markdown and "## Protocol: amortised" in markdown
    assert "| Strategy | Budget |" in markdown and "Best reward IQM [95 % CI]" in markdown
    assert "> 5" in markdown  # no per-image search reached 95 % within 5 evaluations
    assert "1/3 (33%)" in markdown and "5,000" in markdown and "n/a" in markdown
    assert "IQM" in markdown.split("## Legend")[1] and "Regret" in markdown.split("## Legend")[1]
    with csv_path.open() as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == COLUMNS
        table = list(reader)
    assert len(table) == len(rows) == 4
    random_5 = next(r for r in table if (r["strategy"], r["budget"]) == ("random", "5"))
    assert random_5["training_seconds"] == "" and float(random_5["evals_to_95_median"]) == math.inf
    assert float(random_5["best_lo"]) <= float(random_5["best_iqm"]) <= float(random_5["best_hi"])


@pytest.fixture
def benchmark_curves():
    """Two strategies x two images (one without truth) x three seeds, plus an amortised policy."""
    rng = np.random.default_rng(0)
    records = []
    for strategy, speed in (("random", 0.01), ("bayes-gp", 0.05)):
        for image in ("synthetic:0", "real.dm4"):
            for seed in range(3):
                aris = None if image == "real.dm4" else rng.uniform(0, 1, 20).tolist()
                rewards, seconds = rng.uniform(0, 1, 20).tolist(), rng.exponential(speed, 20).tolist()
                records += search_records(rewards, aris, seconds, strategy=strategy, image=image, seed=seed)
    policy = search_records([0.2, 0.6, 0.4, 0.6, 0.7], [0.5] * 5, protocol="amortised", strategy="policy:run")
    return search_curves(records + policy)


@pytest.mark.parametrize("x", ["evaluations", "seconds"])
def test_plot_best_so_far_writes_a_png(tmp_path, benchmark_curves, x):
    path = plot_best_so_far(benchmark_curves, tmp_path / "figures" / f"best_{x}.png", x=x)
    assert path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_incumbent_ari_writes_a_png(tmp_path, benchmark_curves):
    path = plot_incumbent_ari(benchmark_curves, tmp_path / "ari.png")
    assert path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_best_so_far_rejects_an_unknown_axis(tmp_path, benchmark_curves):
    with pytest.raises(ValueError, match="x must be"):
        plot_best_so_far(benchmark_curves, tmp_path / "x.png", x="steps")


# ------------------------------------------------------------------------------------ labels


def test_a_policy_is_labelled_by_its_run_folder_never_by_its_path():
    labels = strategy_labels(["random", "policy:/tmp/fresh/agents/policies/ppo-search", "bayes-gp"])
    assert labels == {"random": "random", "policy:/tmp/fresh/agents/policies/ppo-search": "policy:ppo-search",
                      "bayes-gp": "bayes-gp"}
    assert report.file_label(labels["policy:/tmp/fresh/agents/policies/ppo-search"]) == "policy-ppo-search"
    # Runs in folders of the same name get as many parents as tell them apart.
    assert strategy_labels(["policy:runs/a/ppo", "policy:runs/b/ppo/"]) == {
        "policy:runs/a/ppo": "policy:a/ppo", "policy:runs/b/ppo/": "policy:b/ppo"}


def test_legends_show_strategy_labels_not_paths(tmp_path, monkeypatch):
    policy = "policy:/tmp/fresh/agents/policies/ppo-search"
    records = search_records([0.2, 0.5], [0.1, 0.6]) + search_records(
        [0.3, 0.4], [0.2, 0.3], protocol="amortised", strategy=policy)
    figures = []
    monkeypatch.setattr(report, "_save", lambda figure, out_path: figures.append(figure))
    curves = search_curves(records)
    plot_best_so_far(curves, tmp_path / "best.png")
    plot_best_so_far(curves, tmp_path / "best_seconds.png", x="seconds")
    plot_incumbent_ari(curves, tmp_path / "ari.png")
    for figure in figures:
        legends = [text.get_text() for axes in figure.axes if axes.get_legend()
                   for text in axes.get_legend().get_texts()]
        assert sorted(legends) == ["policy:ppo-search (n=1)", "random (n=1)"]
