"""``ferrogym demo``: the shipped policy against ``static:best``, random and Bayesian search on
unseen synthetic images.

A small benchmark (synthetic Sm-BFO-like images of several families, seeds the shipped policy
never saw in training, 3 searches per strategy at a budget of 20), a table of budgets 1 to 20
in the terminal, and the report and figures in a folder: curves of best-so-far reward,
incumbent ARI, and the best segmentation each strategy found. A few minutes on 2 cores.
"""

from __future__ import annotations

import math
from pathlib import Path

from .benchmark import run_benchmark
from .neighbours import ALGO
from .policy import load_run, shipped_policy
from .search import STATIC_BEST_PREFIX

#: Unseen by the shipped policy (trained on seeds 3000-3063).
DEMO_IMAGES = "synthetic:2000-2002,family=any,shape=256x256"
DEMO_STRATEGIES = ("random", "bayes-tpe")
#: Budgets of the terminal table.
TABLE_BUDGETS = (1, 3, 5, 10, 20)


def demo(out: Path, *, budget: int = 20, seeds: int = 3, images: str | None = None, policy: str | None = None,
         progress: bool = True) -> list[dict]:
    """Run the demo benchmark into ``out``, print its table, and return the summary rows."""
    policy_dir = Path(policy) if policy else shipped_policy()
    static_best = f"{STATIC_BEST_PREFIX}{policy_dir}" if load_run(policy_dir).get("algo") == ALGO else "static:best"
    strategies = [f"policy:{policy_dir}", static_best, *DEMO_STRATEGIES]
    print(f"ferrogym demo: the policy in {policy_dir}, static:best, {' and '.join(DEMO_STRATEGIES)}")
    print(f"images {images or DEMO_IMAGES}, budget {budget}, {seeds} seeds; writing to {out}")
    rows = run_benchmark(strategies, images or DEMO_IMAGES, budget, seeds, out, oracle=False,
                         workers=2, progress=progress)
    print_table(rows, {f"policy:{policy_dir}": "policy", static_best: "static:best"})
    print(f"\nreport: {out / 'summary.md'}; figures: {', '.join(p.name for p in sorted(out.glob('*.png')))}")
    return rows


def print_table(rows: list[dict], names: dict[str, str]) -> None:
    """Incumbent ARI and best reward (IQM over searches) per strategy at each budget of the run."""
    budgets = sorted({r["budget"] for r in rows} & {*TABLE_BUDGETS, max(r["budget"] for r in rows)})
    by_key = {(r["strategy"], r["budget"]): r for r in rows}
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    cells = "".join(f"{'@' + str(b):>7}" for b in budgets)
    header = f"{'strategy':<12} {'':<14}{cells}"
    print("\n" + header + "\n" + "-" * len(header))
    for strategy in strategies:
        name = names.get(strategy, strategy)
        for label, column in (("incumbent ARI", "ari_iqm"), ("best reward", "best_iqm")):
            values = "".join(f"{_value(by_key[(strategy, b)][column]):>7.3f}" for b in budgets)
            print(f"{name if label == 'incumbent ARI' else '':<12} {label:<14}{values}")
    print("(interquartile means over searches after 1, 3, ... evaluations; static:best evaluates its one "
          "configuration)")


def _value(number) -> float:
    return math.nan if number is None else float(number)
