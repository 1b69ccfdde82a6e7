"""Which search should ``ferrogym analyze`` run by default, and for how many evaluations?

Every strategy a user can name searches the same unseen synthetic images (seeds the shipped
policy never saw, every family, 256 to 1024 px) through ``ferrogym benchmark``'s machinery: a
cache-free copy of each image's workflow, atoms found once, every evaluation recorded with its
seconds (ask + evaluate + tell, so the Gaussian process's own fits count). The deterministic
strategies (``policy:shipped``, ``static:best``) search once per image, the others ``--seeds``
times.

Printed, per strategy and wall-clock allowance T (seconds of searching per image, atom finding
excluded, the same for all): the mean incumbent ARI of the answer ``ferrogym analyze`` would give
after the evaluations finished by T (one domain while the best reward is below the no-walls
threshold; ARI 0 before the first evaluation has finished), its 95 % bootstrap interval, the
mean best reward and the median evaluations done by then. Then the recommendation: among the
strategies whose mean ARI averaged over the allowances (the area under its ARI against log
seconds: a fast good answer and a good answer at all counts both) is within :data:`TIE` of the
highest, the one whose mean ARI after the full budget is highest; as its budget, the fewest
evaluations whose mean ARI is within 0.005 of the best mean ARI it reaches at any budget up to
``--budget``. (Not "stays within": a later evaluation can find a higher reward for a worse
segmentation, which is the reward's error, not a want of evaluations.) The tie matters: the
seeded searchers draw the same configurations on every image, so one lucky draw lifts their
curve on many images at once (random search's 18th configuration of one seed did so on 5 of
32 images, a step of 0.037 in its mean ARI), and an area a few thousandths ahead is that luck.

Run: ``.venv/bin/python benchmarks/default_search.py [--images synthetic:4400-4431,...] [--budget 20]
[--seeds 3] [--out results/default-search]``. Records are kept in ``--out``; rerunning resumes.
"""

import argparse
from pathlib import Path

import numpy as np
from table import print_table

from ferrogym.agents.benchmark import run_benchmark
from ferrogym.agents.report import bootstrap_ci, load_records, search_curves

#: Unseen by the shipped policy (trained on seeds 3000-3063 and 5000-5095), and not the README's
#: policy benchmark (4160-4191) either.
IMAGES = "synthetic:4400-4431,family=any,shape=256x256|512x512|768x768|1024x1024"
DETERMINISTIC = ("policy:shipped", "static:best")
STOCHASTIC = ("random", "bayes-tpe", "bayes-gp")
ALLOWANCES = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
PLATEAU = 0.005
#: Areas closer than this are a tie (each allowance's mean ARI has a bootstrap interval of about
#: +- 0.03 over these 32 images).
TIE = 0.01


def at_times(values: np.ndarray, seconds: np.ndarray, times: np.ndarray, before: float) -> np.ndarray:
    """A step series read at each time: its value after the last evaluation finished by then."""
    finished = np.searchsorted(seconds, times, side="right") - 1
    return np.where(finished >= 0, values[np.maximum(finished, 0)], before)


def collect(args) -> list[dict]:
    """Run (or resume) the benchmarks; every record of every strategy."""
    records = []
    for strategies, seeds, folder in ((DETERMINISTIC, 1, "once"), (STOCHASTIC, args.seeds, "seeded")):
        out = Path(args.out) / folder
        run_benchmark(list(strategies), args.images, args.budget, seeds, out, oracle=False, workers=args.workers,
                      progress=not args.no_progress)
        records += load_records(out / "evaluations.jsonl")
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default=IMAGES)
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3, help="searches per image of random, TPE and GP")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default="results/default-search")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    curves = search_curves(collect(args))
    times = np.array(ALLOWANCES)
    by_strategy: dict[str, list] = {}
    for (_, strategy, _, _), curve in curves.items():
        by_strategy.setdefault(strategy, []).append(curve)

    rows, mean_ari = [], {}
    for strategy, group in by_strategy.items():
        ari = np.array([at_times(np.nan_to_num(c.ari), c.seconds, times, 0.0) for c in group])
        best = np.array([at_times(c.best, c.seconds, times, 0.0) for c in group])
        done = np.array([np.searchsorted(c.seconds, times, side="right") for c in group])
        mean_ari[strategy] = ari.mean(axis=0)
        for j, t in enumerate(times):
            low, high = bootstrap_ci(ari[:, j], np.mean)
            rows.append([strategy, len(group), f"{t:g}", float(ari[:, j].mean()), f"[{low:.3f}, {high:.3f}]",
                         float(best[:, j].mean()), float(np.median(done[:, j]))])
    print_table(["strategy", "searches", "T_s", "mean_ari", "ari_95ci", "mean_best_reward", "median_evals"], rows)

    print("\nseconds per search (median over searches) after 1 / 3 / 5 / 10 / full-budget evaluations:")
    for strategy, group in by_strategy.items():
        marks = [m for m in (1, 3, 5, 10) if m < args.budget] + [args.budget]
        medians = [float(np.median([c.seconds[min(m, c.n_steps) - 1] for c in group])) for m in marks]
        aris = [float(np.mean([np.nan_to_num(c.ari[min(m, c.n_steps) - 1]) for c in group])) for m in marks]
        print(f"  {strategy:>15}: " + " / ".join(f"{s:.2f} s (ARI {a:.3f})" for s, a in zip(medians, aris)))

    print("\nmean ARI averaged over the allowances: " + ", ".join(
        f"{s} {mean_ari[s].mean():.3f}" for s in sorted(mean_ari, key=lambda s: -mean_ari[s].mean())))
    top = max(area.mean() for area in mean_ari.values())
    tied = [s for s in mean_ari if mean_ari[s].mean() >= top - TIE]
    per_steps = {s: np.array([np.nan_to_num(c.ari[: args.budget]) for c in by_strategy[s] if c.n_steps >= args.budget])
                 .mean(axis=0) for s in tied}
    print(f"tied within {TIE}: " + ", ".join(f"{s} (ARI {per_steps[s][-1]:.3f} after {args.budget})" for s in tied))
    chosen = max(tied, key=lambda s: per_steps[s][-1])
    group, per_step = by_strategy[chosen], per_steps[chosen]
    budget = 1 + int(np.flatnonzero(per_step >= per_step.max() - PLATEAU)[0])
    seconds = float(np.median([c.seconds[budget - 1] for c in group]))
    print(f"\n{chosen}: mean ARI after 1..{args.budget} evaluations: " + " ".join(f"{v:.4f}" for v in per_step))
    print(f"recommended default: --search {chosen} --budget {budget} (mean ARI {per_step[budget - 1]:.4f} "
          f"after {budget} evaluations, {seconds:.2f} s per search by the median; best {per_step.max():.4f})")


if __name__ == "__main__":
    main()
