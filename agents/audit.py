"""Reward audit: how well does each reward agree with the truth?

A reward is only useful if configurations it scores higher are closer to the true domains.
On synthetic images with ground truth, :func:`audit` evaluates random configurations of the
search space once each, scores every segmentation with every reward, and measures per image
and reward the Spearman rank correlation between reward and B-site ARI, and whether the
reward's favourite configuration is (nearly) the best one. A reward that disagrees with the
truth shows up as a low or negative Spearman; :func:`summarise_audit` aggregates per reward
and image family (stripes, two wall families, needles...), :func:`write_audit` writes a CSV,
a markdown table and a figure.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import spearmanr

from ferrogym.workflows.errors import InputError
from ferrogym.workflows.images import ImageSet, SimulatedImages, SyntheticImages, as_image_set
from ferrogym.workflows.rewards import REWARDS, RewardFn, as_reward_result, get_reward
from ferrogym.workflows.space import SEARCH_SPACE
from ferrogym.workflows.workflow import Evaluation

from .report import bootstrap_ci, iqm

#: The favourite configuration counts as "near best" if its ARI is within this of the best.
NEAR_BEST = 0.05
#: Columns of audit.csv: every row field except the per-configuration lists.
CSV_COLUMNS = ("image", "family", "reward", "spearman", "favourite_ari", "best_ari", "n_configs")
#: The family of images without a synthetic generator.
FILE_FAMILY = "file"
#: The family of physics-simulated images (truth files, the ``simulated:`` SPEC).
SIMULATED_FAMILY = "simulated"
#: The summary's family label for all images together.
ALL_FAMILIES = "all"
#: Marker per image family in the Spearman panel (colours are the rewards').
FAMILY_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def audit(
    images: ImageSet | str,
    n_configs: int,
    rewards: Mapping[str, str | RewardFn] | None = None,
    seed: int = 0,
    progress: Callable[[], object] | None = None,
) -> list[dict]:
    """One row per (image, reward): Spearman of reward vs ARI over random configurations.

    ``images``: an ImageSet or anything :func:`as_image_set` accepts (e.g. a SPEC string);
    every image needs ground truth. ``rewards``: name -> anything :func:`get_reward` accepts
    (default: all registered rewards). Image ``i`` draws its ``n_configs`` configurations from
    ``default_rng([seed, i])``. ``progress()`` is called after each image.

    Row keys: :data:`CSV_COLUMNS` plus ``values`` (the reward per configuration) and ``ari``
    (the ARI per configuration), in drawing order.
    """
    if n_configs < 2:
        raise InputError(f"n_configs={n_configs}: a rank correlation needs at least 2 configurations")
    images = as_image_set(images)
    functions = {name: get_reward(reward) for name, reward in (REWARDS if rewards is None else rewards).items()}
    rows = []
    for index in range(len(images)):
        evaluations = _evaluate_image(images, index, n_configs, seed)
        ari = [e.metrics["ari"] for e in evaluations]
        for name, function in functions.items():
            values = [as_reward_result(function(e.segmentation), name).value for e in evaluations]
            rows.append(
                {"image": images.name(index), "family": image_family(images, index), "reward": name}
                | agreement(values, ari)
                | {"n_configs": n_configs, "values": values, "ari": ari}
            )
        if progress is not None:
            progress()
    return rows


def _evaluate_image(images: ImageSet, index: int, n_configs: int, seed: int) -> list[Evaluation]:
    """Evaluate ``n_configs`` random configurations on one image (segmentations and truth)."""
    workflow = images.workflow(index)
    if workflow.truth is None:
        raise InputError(
            f"image {images.name(index)!r} has no ground truth: the reward audit compares rewards "
            "with the truth, so it needs synthetic images (e.g. 'synthetic:0-7')"
        )
    rng = np.random.default_rng([seed, index])
    return [workflow.evaluate(SEARCH_SPACE.sample(rng)) for _ in range(n_configs)]


def image_family(images: ImageSet, index: int) -> str:
    """The family of a synthetic image (its domain pattern, or "phase_boundary"), "simulated" for
    a truth file, else "file"."""
    if isinstance(images, SyntheticImages):
        return images.params(images.seed(index)).family
    return SIMULATED_FAMILY if isinstance(images, SimulatedImages) else FILE_FAMILY


def agreement(values: Sequence[float], ari: Sequence[float]) -> dict[str, float]:
    """Spearman of reward vs ARI (NaN if either is constant), the favourite's and the best ARI.

    The favourite is the configuration with the highest reward, the first one on ties.
    """
    values, ari = np.asarray(values, dtype=float), np.asarray(ari, dtype=float)
    constant = np.ptp(values) == 0 or np.ptp(ari) == 0
    rho = math.nan if constant else float(spearmanr(values, ari)[0])
    return {"spearman": rho, "favourite_ari": float(ari[np.argmax(values)]), "best_ari": float(ari.max())}


def summarise_audit(rows: Sequence[Mapping]) -> list[dict]:
    """Per (reward, family) and per reward over all families: how the Spearman is distributed.

    Keys: reward, family (a family or "all"), n_images, n_constant (images where the reward or
    the ARI was constant, so no Spearman; left out of the statistics), spearman_median,
    spearman_min, spearman_iqm with its 95 % bootstrap CI spearman_lo / spearman_hi, and
    n_near_best (images whose favourite is within :data:`NEAR_BEST` ARI of the best).
    """
    summary = []
    for reward in dict.fromkeys(row["reward"] for row in rows):
        mine = [row for row in rows if row["reward"] == reward]
        families = sorted({row["family"] for row in mine})
        for family in [*families, ALL_FAMILIES]:
            group = [row for row in mine if family in (ALL_FAMILIES, row["family"])]
            summary.append({"reward": reward, "family": family} | _statistics(group))
    return summary


def _statistics(rows: Sequence[Mapping]) -> dict:
    """The summary numbers of one group of rows (see :func:`summarise_audit`)."""
    rho = np.array([row["spearman"] for row in rows], dtype=float)
    defined = rho[np.isfinite(rho)]
    low, high = bootstrap_ci(defined)
    return {
        "n_images": len(rows),
        "n_constant": int(len(rho) - len(defined)),
        "spearman_median": float(np.median(defined)) if defined.size else math.nan,
        "spearman_min": float(defined.min()) if defined.size else math.nan,
        "spearman_iqm": iqm(defined),
        "spearman_lo": low,
        "spearman_hi": high,
        "n_near_best": sum(row["best_ari"] - row["favourite_ari"] <= NEAR_BEST for row in rows),
    }


# ------------------------------------------------------------------------------------ output

LEGEND = (
    "**Spearman** is the rank correlation between a reward and the B-site ARI (agreement with "
    "the true domains) over random configurations of one image: 1 means the reward orders "
    "configurations exactly as the truth does, 0 that it is unrelated to the truth, negative "
    "that it prefers worse segmentations. Median, min and IQM (interquartile mean, with a 95 % "
    "percentile-bootstrap CI over images) are over the images of a family, or all images; "
    "**constant** counts images where the reward or the ARI took one value only, which have no "
    f"Spearman and are left out of those statistics. **Near best** counts images whose "
    f"favourite configuration (highest reward) has an ARI within {NEAR_BEST} of the best ARI "
    "among the configurations: what a search maximising the reward would find."
)


def write_audit(rows: Sequence[Mapping], summary: Sequence[Mapping], out_dir: str | Path) -> list[Path]:
    """Write ``audit.csv`` (the rows), ``audit_summary.md`` and ``audit.png``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "audit.csv", out_dir / "audit_summary.md", out_dir / "audit.png"]
    _write_csv(rows, paths[0])
    paths[1].write_text(f"# Reward audit\n\n{_markdown_table(summary)}\n{LEGEND}\n")
    plot_audit(rows, summary).savefig(paths[2], dpi=120)
    return paths


def _write_csv(rows: Sequence[Mapping], path: Path) -> None:
    """The rows without their per-configuration lists."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _markdown_table(summary: Sequence[Mapping]) -> str:
    """One markdown line per summary row."""
    lines = [
        "| Reward | Family | Images | Constant | Median Spearman | Min Spearman | IQM Spearman [95 % CI] | Near best |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in summary:
        cells = [
            row["reward"],
            row["family"],
            str(row["n_images"]),
            str(row["n_constant"]),
            _number(row["spearman_median"]),
            _number(row["spearman_min"]),
            f"{_number(row['spearman_iqm'])} [{_number(row['spearman_lo'])}, {_number(row['spearman_hi'])}]",
            f"{row['n_near_best']}/{row['n_images']}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    """Two decimals, or n/a for NaN."""
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def plot_audit(rows: Sequence[Mapping], summary: Sequence[Mapping]) -> Figure:
    """Top: Spearman per image and reward, grouped by family, IQM over all images marked.
    Bottom: reward vs ARI of every configuration on the first image of each family."""
    families = sorted({row["family"] for row in rows})
    figure = Figure(figsize=(max(6.0, 3.5 * len(families)), 7.0), layout="constrained")
    grid = figure.add_gridspec(2, len(families))
    _strip_panel(figure.add_subplot(grid[0, :]), rows, summary, families)
    for column, family in enumerate(families):
        _scatter_panel(figure.add_subplot(grid[1, column]), rows, family)
    return figure


def _strip_panel(axes, rows: Sequence[Mapping], summary: Sequence[Mapping], families: list[str]) -> None:
    """Spearman per image as points, one cluster per reward (its colour), one marker per family."""
    rewards = list(dict.fromkeys(row["reward"] for row in rows))
    width = 0.6 / len(families)
    jitter = np.random.default_rng(0)
    for f, family in enumerate(families):
        marker = FAMILY_MARKERS[f % len(FAMILY_MARKERS)]
        offset = (f - (len(families) - 1) / 2) * width
        for r, reward in enumerate(rewards):
            rho = [row["spearman"] for row in rows if row["reward"] == reward and row["family"] == family]
            x = r + offset + jitter.uniform(-0.3, 0.3, len(rho)) * width
            axes.scatter(x, rho, color=f"C{r}", marker=marker, s=22, alpha=0.8)
        axes.scatter([], [], color="grey", marker=marker, label=family)
    overall = {row["reward"]: row["spearman_iqm"] for row in summary if row["family"] == ALL_FAMILIES}
    centres = np.arange(len(rewards))
    iqms = [overall.get(reward, math.nan) for reward in rewards]
    axes.hlines(iqms, centres - 0.4, centres + 0.4, color="black", label="IQM (all images)")
    axes.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")
    axes.set_xticks(centres, rewards)
    axes.set_ylim(-1.05, 1.05)
    axes.set_ylabel("Spearman(reward, ARI) per image")
    axes.legend(fontsize="small", ncols=len(families) + 1, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    axes.grid(alpha=0.3, axis="y")


def _scatter_panel(axes, rows: Sequence[Mapping], family: str) -> None:
    """Reward vs ARI of every configuration of the family's first image, one colour per reward."""
    first = next(row["image"] for row in rows if row["family"] == family)
    for r, row in enumerate(row for row in rows if row["image"] == first):
        axes.scatter(row["ari"], row["values"], color=f"C{r}", s=12, alpha=0.7, label=row["reward"])
    axes.set_title(f"{first} ({family})", fontsize="medium")
    axes.set_xlabel("B-site ARI")
    axes.set_ylabel("reward")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
