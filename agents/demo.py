"""``ferrogym demo``: random, Bayesian and trained-policy search on unseen synthetic images.

A small benchmark (two synthetic Sm-BFO-like images with domain walls, seeds the shipped
policy never saw in training, 3 searches per strategy at a budget of 20), a table in the
terminal, and the report and figures in a folder: curves of best-so-far reward, incumbent ARI,
and the best segmentation each strategy found. A few minutes on 2 cores.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

from ferrogym.workflows.errors import InputError

from .benchmark import run_benchmark

#: Unseen by the shipped policy (trained on seeds 0-999, evaluated on 1000-1007).
DEMO_IMAGES = "synthetic:2000-2001,shape=256x256"
DEMO_STRATEGIES = ("random", "bayes-tpe", "bayes-gp")


def shipped_policy() -> Path:
    """The run folder of the PPO policy shipped with the package (see scripts/train_shipped_policy.sh)."""
    return Path(str(resources.files("ferrogym.agents").joinpath("policies/ppo-search")))


def demo(out: Path, *, budget: int = 20, seeds: int = 3, images: str | None = None, policy: str | None = None,
         progress: bool = True) -> list[dict]:
    """Run the demo benchmark into ``out``, print its table, and return the summary rows."""
    policy_dir = Path(policy) if policy else shipped_policy()
    if not (policy_dir / "model.zip").is_file():
        raise InputError(f"no trained policy in {policy_dir}; pass --policy DIR of a `ferrogym train` run")
    strategies = [*DEMO_STRATEGIES, f"policy:{policy_dir}"]
    print(f"ferrogym demo: {', '.join(DEMO_STRATEGIES)} and the policy in {policy_dir}")
    print(f"images {images or DEMO_IMAGES}, budget {budget}, {seeds} seeds; writing to {out}")
    rows = run_benchmark(strategies, images or DEMO_IMAGES, budget, seeds, out, oracle=False,
                         workers=2, progress=progress)
    final_budget = max(r["budget"] for r in rows)
    print_table([r for r in rows if r["budget"] == final_budget], policy_dir)
    print(f"\nreport: {out / 'summary.md'}; figures: {', '.join(p.name for p in sorted(out.glob('*.png')))}")
    return rows


def print_table(rows: list[dict], policy_dir: Path) -> None:
    """A compact terminal table at the final budget."""
    header = f"{'strategy':<12} {'best reward':>12} {'incumbent ARI':>14} {'reached 95%':>12} {'s/eval':>8}"
    print("\n" + header + "\n" + "-" * len(header))
    for row in rows:
        name = "policy" if row["strategy"] == f"policy:{policy_dir}" else row["strategy"]
        reached = f"{row['n_reached_95']}/{row['n_searches']}"
        print(f"{name:<12} {_value(row['best_iqm']):>12.3f} {_value(row['ari_iqm']):>14.3f} {reached:>12} "
              f"{_value(row['seconds_per_eval_median']):>8.3f}")
    print("(IQM over searches; 95 % of the best reward any strategy found on the image)")


def _value(number) -> float:
    return math.nan if number is None else float(number)
