"""Benchmark report: search curves, robust summary statistics, tables and figures.

Everything here is a pure function of the evaluation records that the benchmark runner appends
to ``evaluations.jsonl`` (one JSON object per evaluation, see :func:`load_records`), so the report
knows nothing of workflows or environments and can be tested on hand-made records.

Aggregates over searches (seeds x images) use the interquartile mean (IQM) with a percentile
bootstrap confidence interval: the IQM is robust to the few outlier searches that dominate a mean,
yet uses half the data, unlike a median (Agarwal et al. 2021, "Deep RL at the edge of the
statistical precipice").
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.stats import trim_mean

from ferrogym.workflows.rewards import NO_WALLS_BELOW

from .search import RUN_PREFIXES

#: A search: (protocol, strategy, image, seed).
SearchKey = tuple[str, str, str, int]

#: Share of the oracle reward that counts as "reached".
REACH_SHARE = 0.95

#: Columns of :func:`summarise` rows, in table order (also the header of summary.csv).
COLUMNS = (
    "protocol", "strategy", "budget", "n_searches", "n_images", "n_with_truth",
    "best_iqm", "best_lo", "best_hi",
    "ari_iqm", "ari_lo", "ari_hi", "ari_median",
    "regret_iqm", "regret_lo", "regret_hi",
    "n_reached_95", "share_reached_95", "evals_to_95_median",
    "seconds_per_eval_median", "seconds_per_search_median",
    "training_timesteps", "training_seconds",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class Curve:
    """One search, per step 1..n: best-so-far reward, the incumbent's ARI, cumulative seconds.

    The incumbent is the evaluation holding the best-so-far reward (the earlier one on ties);
    its ARI is that of the answer ``ferrogym analyze`` gives (one domain while the best reward is
    below NO_WALLS_BELOW, for records that carry ``no_walls_metrics``), NaN without truth.
    """

    best: np.ndarray
    ari: np.ndarray
    seconds: np.ndarray

    @property
    def n_steps(self) -> int:
        """Number of evaluations in the search."""
        return len(self.best)


# ----------------------------------------------------------------------------------- records


def load_records(path: str | Path) -> list[dict]:
    """Read one JSON record per line, skipping blank lines and a truncated last line.

    A process killed mid-write leaves a partial last line; a bad line elsewhere means a corrupt
    file and raises ValueError with its line number.
    """
    numbered = enumerate(Path(path).read_text().splitlines(), start=1)
    lines = [(number, line) for number, line in numbered if line.strip()]
    records = []
    for index, (number, line) in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            if index == len(lines) - 1:
                break
            raise ValueError(f"{path}:{number}: not a JSON record ({error})") from error
    return records


def search_key(record: Mapping) -> SearchKey:
    """The search a record belongs to: (protocol, strategy, image, seed)."""
    return (record["protocol"], record["strategy"], record["image"], int(record["seed"]))


def search_curves(records: Iterable[Mapping]) -> dict[SearchKey, Curve]:
    """Group records by search and build each search's :class:`Curve`.

    Raises ValueError naming the search when its steps are not exactly 1..n (a missing,
    repeated or misnumbered evaluation would silently shift every budget).
    """
    searches: dict[SearchKey, list[Mapping]] = defaultdict(list)
    for record in records:
        searches[search_key(record)].append(record)
    return {key: _curve(key, sorted(group, key=lambda r: r["step"])) for key, group in searches.items()}


def _curve(key: SearchKey, records: list[Mapping]) -> Curve:
    """Curve of one search's records sorted by step."""
    steps = [record["step"] for record in records]
    if steps != list(range(1, len(records) + 1)):
        raise ValueError(f"search {key}: steps must run 1..n without gaps or repeats, got {steps}")
    rewards = np.array([_number(record["reward"]) for record in records])
    aris = np.array([_number((record.get("metrics") or {}).get("ari")) for record in records])
    incumbent = _incumbent_index(rewards)
    ari = np.where(incumbent >= 0, aris[np.maximum(incumbent, 0)], np.nan)
    best = np.where(incumbent >= 0, rewards[np.maximum(incumbent, 0)], np.nan)
    if "no_walls_metrics" in records[0]:  # the answer is one domain while no walls are found
        no_walls_ari = _number(records[0]["no_walls_metrics"].get("ari"))
        ari = np.where(best < NO_WALLS_BELOW, no_walls_ari, ari)
    seconds = np.cumsum([_number(record["seconds"]) for record in records])
    return Curve(best=best, ari=ari, seconds=seconds)


def _incumbent_index(rewards: np.ndarray) -> np.ndarray:
    """Per step, the index of the first evaluation holding the best reward so far (-1: none yet).

    Only a strictly higher reward replaces the incumbent, so ties keep the earlier one; a NaN
    reward (failed evaluation) never becomes the incumbent.
    """
    incumbent = np.empty(len(rewards), dtype=int)
    best, index = -math.inf, -1
    for step, reward in enumerate(rewards):
        if reward > best:
            best, index = reward, step
        incumbent[step] = index
    return incumbent


def _number(value) -> float:
    """A record's number as float, None as NaN."""
    return math.nan if value is None else float(value)


# -------------------------------------------------------------------------------- statistics


def iqm(values, axis=None) -> float | np.ndarray:
    """Interquartile mean: the mean of the middle 50 % of the values (25 % trimmed each side).

    Robust to the few outlier searches that dominate a mean, yet less noisy than the median.
    ``axis`` works as in numpy reductions (None: all values), so :func:`bootstrap_ci` can
    evaluate all resamples at once.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return math.nan
    result = trim_mean(values, 0.25, axis=axis)
    return float(result) if np.ndim(result) == 0 else result


def bootstrap_ci(
    values,
    statistic: Callable = iqm,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic`` over ``values``.

    Resamples the values with replacement ``n_resamples`` times from a generator seeded with
    ``seed`` (deterministic). ``statistic(sample, axis=-1)`` must reduce along the last axis, as
    :func:`iqm` and numpy reductions do. Returns (NaN, NaN) without values.
    """
    values = np.asarray(values, dtype=float).ravel()
    if values.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    resamples = values[rng.integers(0, values.size, size=(n_resamples, values.size))]
    statistics = np.asarray(statistic(resamples, axis=-1), dtype=float)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(statistics, [tail, 1.0 - tail])
    return float(low), float(high)


# ----------------------------------------------------------------------------------- summary


def summarise(
    records: Iterable[Mapping],
    oracle: Mapping[str, float],
    budgets: Sequence[int] = (10, 25, 50, 100),
    training: Mapping[str, Mapping] | None = None,
) -> list[dict]:
    """One row (keys: :data:`COLUMNS`) per (protocol, strategy, budget).

    A budget appears only if every search of that protocol and strategy ran at least that many
    evaluations (never extrapolated). ``oracle[image]`` is the best reward known on the image.
    ``training[strategy]`` (keys ``timesteps``, ``seconds``) fills the training cost columns;
    they stay None for other strategies. Searches that never reach 95 % of the oracle are kept:
    they count in ``n_searches`` but not in ``n_reached_95``, and as infinitely many evaluations
    in ``evals_to_95_median`` (so it is inf when at most half the searches reached it).
    """
    groups: dict[tuple[str, str], list[tuple[SearchKey, Curve]]] = defaultdict(list)
    for key, curve in search_curves(records).items():
        groups[key[:2]].append((key, curve))
    rows = []
    for (protocol, strategy), searches in sorted(groups.items()):
        missing = sorted({key[2] for key, _ in searches} - set(oracle))
        if missing:
            raise ValueError(f"no oracle reward for images {missing}")
        longest_common = min(curve.n_steps for _, curve in searches)
        cost = (training or {}).get(strategy)
        for budget in sorted(b for b in budgets if b <= longest_common):
            row = {"protocol": protocol, "strategy": strategy, "budget": budget}
            row.update(_budget_statistics(searches, oracle, budget))
            row["training_timesteps"] = None if cost is None else cost.get("timesteps")
            row["training_seconds"] = None if cost is None else cost.get("seconds")
            rows.append(row)
    return rows


def _budget_statistics(
    searches: list[tuple[SearchKey, Curve]], oracle: Mapping[str, float], budget: int
) -> dict:
    """The summary numbers of a group of searches after ``budget`` evaluations."""
    best = np.array([curve.best[budget - 1] for _, curve in searches])
    ari = np.array([curve.ari[budget - 1] for _, curve in searches])
    ari = ari[np.isfinite(ari)]
    optimum = np.array([oracle[key[2]] for key, _ in searches])
    reach = np.array(
        [evaluations_to_reach(curve.best[:budget], REACH_SHARE * o) for (_, curve), o in zip(searches, optimum)]
    )
    per_eval = np.concatenate([np.diff(curve.seconds[:budget], prepend=0.0) for _, curve in searches])
    row = {
        "n_searches": len(searches),
        "n_images": len({key[2] for key, _ in searches}),
        "n_with_truth": len(ari),
    }
    for name, values in (("best", best), ("ari", ari), ("regret", optimum - best)):
        row[f"{name}_iqm"] = iqm(values)
        row[f"{name}_lo"], row[f"{name}_hi"] = bootstrap_ci(values)
    row["ari_median"] = float(np.median(ari)) if ari.size else math.nan
    row["n_reached_95"] = int(np.isfinite(reach).sum())
    row["share_reached_95"] = float(np.isfinite(reach).mean())
    row["evals_to_95_median"] = float(np.median(reach))
    row["seconds_per_eval_median"] = float(np.median(per_eval))
    row["seconds_per_search_median"] = float(np.median([curve.seconds[budget - 1] for _, curve in searches]))
    return row


def evaluations_to_reach(best: np.ndarray, threshold: float) -> float:
    """First step (1-based) whose best-so-far reward is >= ``threshold``; inf if never."""
    reached = np.flatnonzero(np.asarray(best) >= threshold)
    return float(reached[0] + 1) if reached.size else math.inf


# ------------------------------------------------------------------------------------ tables

LEGEND = """\
- **IQM**: interquartile mean over searches (seeds x images), the mean of the middle 50 %;
  robust to a few outlier searches (Agarwal et al. 2021, "Deep RL at the edge of the
  statistical precipice").
- **[lo, hi]**: 95 % percentile-bootstrap confidence interval of the IQM (2000 resamples of
  the searches).
- **Best reward**: best reward found within the budget. **Incumbent ARI**: adjusted Rand index
  against the ground truth of the answer `ferrogym analyze` would give: the segmentation of the
  configuration holding that reward, or one domain while that reward is below 0.25 (no walls
  found); images with truth only, their number in "with truth"; n/a without.
  **Incumbent ARI median**: the median of the same values.
- **Regret**: oracle - best reward, where the oracle is the best reward known on that image
  (exhaustive coarse grid and everything any strategy found); 0 means the best known was found.
- **Reached 95 %**: searches whose best reward reached 95 % of the oracle within the budget,
  out of all searches; searches that never reach it are counted as not reached, not dropped.
- **Evals to 95 %**: median over all searches of the evaluations needed to reach 95 % of the
  oracle, a search that never reaches it counting as infinitely many; "> B" means at most half
  the searches reached it within the budget B.
- **s / eval**, **s / search**: median wall-clock seconds per evaluation (including the
  strategy's own overhead) and per search up to the budget.
- **Training steps**, **training s**: one-off cost of training an amortised policy, not
  included in s / search.
"""


def write_summary(rows: Sequence[Mapping], out_dir: str | Path,
                  labels: Mapping[str, str] | None = None) -> tuple[Path, Path]:
    """Write ``summary.md`` (a markdown table per protocol and a legend) and ``summary.csv``.

    The markdown names strategies by ``labels`` where given (:func:`strategy_labels`: never a
    path); the CSV keeps the full strategy, and every number of :data:`COLUMNS` unrounded, CI
    bounds in their own columns, None as an empty cell. Returns (md_path, csv_path).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, csv_path = out_dir / "summary.md", out_dir / "summary.csv"
    md_path.write_text(_markdown([{**row, "strategy": (labels or {}).get(row["strategy"], row["strategy"])}
                                  for row in rows]))
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({column: "" if row.get(column) is None else row[column] for column in COLUMNS})
    return md_path, csv_path


def _markdown(rows: Sequence[Mapping]) -> str:
    """The markdown document: one table per protocol, then the legend."""
    parts = ["# Benchmark summary\n"]
    for protocol in sorted({row["protocol"] for row in rows}):
        table_rows = [row for row in rows if row["protocol"] == protocol]
        parts.append(f"## Protocol: {protocol}\n\n{_markdown_table(table_rows)}")
    parts.append(f"## Legend\n\n{LEGEND}")
    return "\n".join(parts)


def _markdown_table(rows: Sequence[Mapping]) -> str:
    """A markdown table of one protocol's rows; training columns only if some row has them."""
    columns = {
        "Strategy": lambda r: r["strategy"],
        "Budget": lambda r: str(r["budget"]),
        "Searches": lambda r: str(r["n_searches"]),
        "With truth": lambda r: str(r["n_with_truth"]),
        "Best reward IQM [95 % CI]": lambda r: _with_ci(r, "best"),
        "Incumbent ARI IQM [95 % CI]": lambda r: _with_ci(r, "ari"),
        "Incumbent ARI median": lambda r: "n/a" if math.isnan(r["ari_median"]) else f"{r['ari_median']:.2f}",
        "Regret IQM [95 % CI]": lambda r: _with_ci(r, "regret"),
        "Reached 95 %": lambda r: f"{r['n_reached_95']}/{r['n_searches']} ({r['share_reached_95']:.0%})",
        "Evals to 95 % (median)": _evals_to_95,
        "s / eval": lambda r: f"{r['seconds_per_eval_median']:.3g}",
        "s / search": lambda r: f"{r['seconds_per_search_median']:.3g}",
    }
    if any(row.get(f"training_{name}") is not None for row in rows for name in ("timesteps", "seconds")):
        columns["Training steps"] = lambda r: _optional(r.get("training_timesteps"), "{:,.0f}")
        columns["Training s"] = lambda r: _optional(r.get("training_seconds"), "{:.3g}")
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row) for cell in columns.values()) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _with_ci(row: Mapping, name: str) -> str:
    """'x.xx [lo, hi]', or 'n/a' when undefined (no image with truth)."""
    value, low, high = row[f"{name}_iqm"], row[f"{name}_lo"], row[f"{name}_hi"]
    return "n/a" if math.isnan(value) else f"{value:.2f} [{low:.2f}, {high:.2f}]"


def _evals_to_95(row: Mapping) -> str:
    """The median evaluations to 95 % of the oracle, '> budget' if the median search missed."""
    value = row["evals_to_95_median"]
    return f"> {row['budget']}" if math.isinf(value) else f"{value:g}"


def _optional(value, spec: str) -> str:
    """Format a value that may be missing (blank)."""
    return "" if value is None else spec.format(value)


# ------------------------------------------------------------------------------------ labels


def strategy_labels(strategies: Iterable[str]) -> dict[str, str]:
    """Short, unique names of strategies for legends, titles and file names.

    A strategy whose argument is a run's folder (``policy:DIR``, ``static:best:DIR``) is shown
    with the last component of that path (``policy:ppo-search``), never the whole path, which
    depends on where the run lies; two runs in folders of the same name get as many parent
    folders as tell them apart (``policy:a/ppo``, ``policy:b/ppo``). Other strategies keep their
    name.
    """
    strategies = list(dict.fromkeys(strategies))
    parts = {}
    for strategy in strategies:
        prefix = next((p for p in RUN_PREFIXES if strategy.startswith(p)), None)
        argument = strategy[len(prefix):] if prefix else ""
        path_parts = PurePath(os.path.normpath(argument)).parts if argument else ()
        parts[strategy] = (prefix[:-1] if prefix else strategy, tuple(p for p in path_parts if p not in ("/", ".")))
    depth = 1
    while True:
        labels = {s: s if not p else f"{k}:{'/'.join(p[-depth:])}" for s, (k, p) in parts.items()}
        if len(set(labels.values())) == len(labels) or depth >= max((len(p) for _, p in parts.values()), default=0):
            return labels
        depth += 1


def file_label(label: str) -> str:
    """A label as a file-name part: ``policy:ppo-search`` -> ``policy-ppo-search``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")


# ----------------------------------------------------------------------------------- figures


def plot_best_so_far(
    curves: Mapping[SearchKey, Curve],
    out_path: str | Path,
    x: str = "evaluations",
    labels: Mapping[str, str] | None = None,
) -> Path:
    """Best-so-far reward per strategy: median line and interquartile band over searches.

    One panel per protocol. ``x="evaluations"`` plots against the step, up to the shortest
    search of each strategy; ``x="seconds"`` against wall-clock seconds on a common log-spaced
    time grid (see :func:`best_at_times`). ``labels`` maps strategies to legend names
    (default: :func:`strategy_labels`).
    """
    if x not in ("evaluations", "seconds"):
        raise ValueError(f"x must be 'evaluations' or 'seconds', got {x!r}")
    grid = _time_grid(curves.values()) if x == "seconds" else None
    figure, panels = _panels(curves)
    labels = _labels(curves, labels)
    for protocol, axes in panels.items():
        for strategy, group in _by_strategy(curves, protocol).items():
            if grid is None:
                _band(axes, _stack([curve.best for curve in group]), strategy, curves, labels)
            else:
                _band(axes, np.array([best_at_times(curve, grid) for curve in group]), strategy, curves, labels, grid)
        _label_x(axes, seconds=grid is not None)
    next(iter(panels.values())).set_ylabel("best-so-far reward (median, IQR band)")
    return _save(figure, out_path)


def plot_incumbent_ari(
    curves: Mapping[SearchKey, Curve], out_path: str | Path, labels: Mapping[str, str] | None = None
) -> Path:
    """ARI of the incumbent (best-reward configuration) vs evaluations: does reward track truth?

    Median line and interquartile band per strategy over the searches on images with ground
    truth, one panel per protocol; searches without truth are left out. ``labels`` maps
    strategies to legend names (default: :func:`strategy_labels`).
    """
    with_truth = {key: curve for key, curve in curves.items() if np.isfinite(curve.ari).any()}
    figure, panels = _panels(curves)
    labels = _labels(curves, labels)
    for protocol, axes in panels.items():
        for strategy, group in _by_strategy(with_truth, protocol).items():
            _band(axes, _stack([curve.ari for curve in group]), strategy, curves, labels)
        if not _by_strategy(with_truth, protocol):
            axes.text(0.5, 0.5, "no images with ground truth", ha="center", transform=axes.transAxes)
        _label_x(axes, seconds=False)
    next(iter(panels.values())).set_ylabel("incumbent ARI (median, IQR band)")
    return _save(figure, out_path)


def best_at_times(curve: Curve, times: np.ndarray) -> np.ndarray:
    """Best-so-far reward at each time: that after the last evaluation finished by then.

    Best-so-far is a step function of time, so no interpolation between evaluations; NaN
    before the first evaluation finished.
    """
    finished = np.searchsorted(curve.seconds, times, side="right") - 1
    return np.where(finished >= 0, curve.best[np.maximum(finished, 0)], np.nan)


def _time_grid(curves: Iterable[Curve], n_points: int = 200) -> np.ndarray:
    """Log-spaced times from the earliest first evaluation to the end of the longest search."""
    curves = list(curves)
    start = min(curve.seconds[0] for curve in curves)
    end = max(curve.seconds[-1] for curve in curves)
    start = start if start > 0 else end * 1e-6
    return np.geomspace(start, max(end, start), n_points)


def _stack(series: list[np.ndarray]) -> np.ndarray:
    """Stack per-search series, cut to the shortest (no step beyond what every search ran)."""
    length = min(len(values) for values in series)
    return np.array([values[:length] for values in series])


def _labels(curves: Mapping[SearchKey, Curve], labels: Mapping[str, str] | None) -> Mapping[str, str]:
    """The given legend names, or :func:`strategy_labels` of the curves' strategies."""
    return strategy_labels(sorted({key[1] for key in curves})) if labels is None else labels


def _band(
    axes, values: np.ndarray, strategy: str, curves: Mapping[SearchKey, Curve], labels: Mapping[str, str], x=None
) -> None:
    """Median line and interquartile band of ``values`` (searches x points).

    A NaN (no evaluation finished yet) ranks below every reward, so the median is drawn only
    once more than half the searches have a result, without favouring the fastest ones.
    """
    x = np.arange(1, values.shape[1] + 1) if x is None else x
    with np.errstate(invalid="ignore"):
        low, median, high = np.quantile(np.where(np.isnan(values), -np.inf, values), [0.25, 0.5, 0.75], axis=0)
    low, median, high = (np.where(np.isfinite(q), q, np.nan) for q in (low, median, high))
    colour = _colour(strategy, curves)
    axes.plot(x, median, color=colour, drawstyle="steps-post", label=f"{labels.get(strategy, strategy)} (n={len(values)})")
    axes.fill_between(x, low, high, color=colour, alpha=0.2, linewidth=0, step="post")
    axes.legend(fontsize="small")


def _label_x(axes, seconds: bool) -> None:
    """Wall-clock seconds on a log axis, or whole evaluations."""
    if seconds:
        axes.set_xscale("log")
        axes.set_xlabel("wall-clock seconds")
    else:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("evaluations")


def _colour(strategy: str, curves: Mapping[SearchKey, Curve]) -> str:
    """The same colour for a strategy in every panel and figure of one curve set."""
    strategies = sorted({key[1] for key in curves})
    return f"C{strategies.index(strategy) % 10}"


def _panels(curves: Mapping[SearchKey, Curve]) -> tuple[Figure, dict]:
    """A figure with one panel (axes) per protocol, sharing the y axis."""
    if not curves:
        raise ValueError("no search curves to plot")
    protocols = sorted({key[0] for key in curves})
    figure = Figure(figsize=(5.5 * len(protocols), 4.0), layout="constrained")
    axes = figure.subplots(1, len(protocols), sharey=True, squeeze=False)[0]
    for protocol, panel in zip(protocols, axes):
        panel.set_title(protocol)
        panel.grid(alpha=0.3)
    return figure, dict(zip(protocols, axes))


def _by_strategy(curves: Mapping[SearchKey, Curve], protocol: str) -> dict[str, list[Curve]]:
    """The curves of one protocol, grouped by strategy (sorted by name)."""
    groups: dict[str, list[Curve]] = defaultdict(list)
    for key, curve in sorted(curves.items()):
        if key[0] == protocol:
            groups[key[1]].append(curve)
    return dict(groups)


def _save(figure: Figure, out_path: str | Path) -> Path:
    """Save the figure (format from the suffix), creating the folder; returns the path."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path, dpi=120)
    return out_path
