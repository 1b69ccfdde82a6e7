"""Benchmark search strategies on equal terms: same images, same space, same budget.

Two protocols, reported separately:

- ``per-image``: each strategy (random, grid, bayes-gp, bayes-tpe) searches each image from
  scratch, once per seed;
- ``amortised``: a policy trained on other images (``policy:DIR``) searches each image, and the
  static baselines (``static:best``, ``static:default``) evaluate their one configuration; the
  cost of training or choosing them (evaluations or env steps, seconds) is reported beside them.
  Their training images must not overlap the benchmark's.

Every evaluation is appended to ``DIR/evaluations.jsonl`` as it happens (one ``write`` per line,
in append mode), so a killed run loses at most the line being written. Rerunning the same
command resumes: finished searches are skipped, an interrupted one is replayed from its records
(its searcher must ask the recorded configurations again) and continued. The oracle of an image
is the best reward of the exhaustive coarse grid (:func:`~ferrogym.agents.searchers.coarse_grid`,
in ``DIR/oracle.jsonl``) or of any evaluation of any strategy, whichever is higher. Atoms are
found once per image; every search (and the oracle) starts without descriptor or clustering
caches, so its seconds are those of a search from scratch on an image with known atoms.

Two backends run the same searches (:func:`run_search_of`, :func:`oracle_record`): ``local``
(this process, or ``workers`` processes with one image each) and ``ray``
(:mod:`ferrogym.agents.distributed`: one Ray task per search, on a cluster).
"""

from __future__ import annotations

import json
import multiprocessing
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ferrogym.workflows.errors import InputError
from ferrogym.workflows.figure import save_segmentation_figure
from ferrogym.workflows.images import FileImages, ImageSet, SyntheticImages, as_image_set
from ferrogym.workflows.space import SEARCH_SPACE, get_space

from . import report
from .policy import load_run
from .analyze import one_domain
from .records import append_record, read_jsonl
from .search import POLICY_PREFIX, STATIC_PREFIX, check_strategy, make_strategy, run_search, training_run
from .searchers import coarse_grid

PER_IMAGE, AMORTISED = "per-image", "amortised"
#: Budgets the summary reports (those up to the benchmark's, and the benchmark's own).
BUDGETS = (1, 3, 5, 10, 25, 50, 100)
BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class Benchmark:
    """What to run: strategies, images, budget and seeds in a search space, written under ``out``."""

    strategies: tuple[str, ...]
    images: ImageSet
    budget: int
    seeds: int
    out: Path
    oracle: bool = True
    space: str = SEARCH_SPACE.name

    @property
    def records_path(self) -> Path:
        return self.out / "evaluations.jsonl"

    @property
    def oracle_path(self) -> Path:
        return self.out / "oracle.jsonl"


@dataclass(frozen=True)
class Search:
    """One search of a benchmark: a strategy on image ``index`` with one seed, and the
    configurations its records already hold (replayed on resume)."""

    strategy: str
    index: int
    seed: int
    replay: tuple[dict, ...] = ()


def protocol_of(strategy: str) -> str:
    """Policies and static baselines are chosen once, on training images: amortised."""
    return AMORTISED if strategy.startswith((POLICY_PREFIX, STATIC_PREFIX)) else PER_IMAGE


def run_benchmark(
    strategies: Sequence[str],
    images,
    budget: int,
    seeds: int,
    out: str | Path,
    *,
    oracle: bool = True,
    space: str = SEARCH_SPACE.name,
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    progress: bool = True,
) -> list[dict]:
    """Run (or resume) the benchmark, write the report, and return the summary rows.

    Every strategy searches ``space`` (``descriptors`` or ``vae``, see
    :data:`~ferrogym.workflows.space.SPACES`).

    ``backend="ray"`` runs each search as a Ray task on the cluster at ``address`` (default: the
    one started on this machine, else a new local one); ``workers`` is for the local backend.
    """
    _check_backend(backend, workers, address)
    benchmark = Benchmark(tuple(check_strategy(s) for s in strategies), as_image_set(images), int(budget),
                          int(seeds), Path(out), oracle, get_space(space).name)
    _validate(benchmark)
    benchmark.out.mkdir(parents=True, exist_ok=True)
    _write_settings(benchmark)
    done = _recorded_configs(benchmark.records_path)
    oracle_done = {r["image"] for r in read_jsonl(benchmark.oracle_path)}
    jobs = [(benchmark, index, done, oracle_done) for index in range(len(benchmark.images))]
    total = len(jobs) * len(benchmark.strategies) * benchmark.seeds * benchmark.budget
    recorded = sum(min(len(configs), benchmark.budget) for key, configs in done.items()
                   if key[1] in benchmark.strategies)
    with tqdm(total=total, initial=recorded, desc="evaluations", unit="eval", disable=not progress) as bar:
        if backend == "ray":
            from .distributed import run_on_ray

            oracles = [i for i in range(len(benchmark.images)) if _wants_oracle(benchmark, i, oracle_done)]
            run_on_ray(benchmark, pending_searches(benchmark, done), oracles, address, on_record=bar.update)
        elif workers > 1:
            _run_in_processes(jobs, workers, benchmark.records_path, bar)
        else:
            for job in jobs:
                _run_image(job, on_record=lambda: bar.update())
    return write_report(benchmark)


def _run_in_processes(jobs: list, workers: int, records_path: Path, bar) -> None:
    """One image per worker process; the bar follows the lines the workers append."""
    start, initial = _count_lines(records_path), bar.n
    with multiprocessing.get_context("forkserver").Pool(workers) as pool:
        result = pool.map_async(_run_image, jobs)
        while not result.ready():
            result.wait(1.0)
            bar.update(initial + _count_lines(records_path) - start - bar.n)
        result.get()  # re-raises a worker's error


def _check_backend(backend: str, workers: int, address: str | None) -> None:
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend == "ray":
        from .distributed import import_ray

        import_ray()  # says how to install Ray when it is missing
        if workers != 1:
            raise InputError("--workers is for the local backend; on Ray every CPU of the cluster works")
    elif address is not None:
        raise InputError("--address names a Ray cluster; use it with --backend ray")


def _count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _validate(benchmark: Benchmark) -> None:
    if benchmark.budget < 1 or benchmark.seeds < 1:
        raise InputError(f"budget={benchmark.budget}, seeds={benchmark.seeds}: both must be at least 1")
    for strategy in benchmark.strategies:
        run_dir = training_run(strategy)
        if run_dir is not None:
            _check_unseen(strategy, load_run(run_dir), benchmark.images)
    settings = benchmark.out / "settings.json"
    if settings.exists():
        previous = {"space": SEARCH_SPACE.name, **json.loads(settings.read_text())}  # older runs: one space
        now = _settings(benchmark)
        changed = {k: (previous.get(k), v) for k, v in now.items() if k != "strategies" and previous.get(k) != v}
        if changed:
            raise InputError(
                f"{benchmark.out} holds a benchmark with other settings {changed} (before, now); "
                "resume with the same images, budget, seeds and space, or choose another --out"
            )


def _check_unseen(strategy: str, run: dict, images: ImageSet) -> None:
    """An amortised policy must be tested on images it was not trained on (by seed: an image
    given as positions is still the image)."""
    specs = run.get("images", run.get("env_kwargs", {}).get("images"))
    for spec in [specs] if isinstance(specs, str) else specs or []:
        trained = as_image_set(spec)
        overlap = False
        if isinstance(trained, SyntheticImages) and isinstance(images, SyntheticImages):
            overlap = trained.first <= images.last and images.first <= trained.last
        elif isinstance(trained, FileImages) and isinstance(images, FileImages):
            overlap = bool({p.resolve() for p in trained.paths} & {p.resolve() for p in images.paths})
        if overlap:
            raise InputError(f"{strategy} was trained on {trained}, which overlaps the benchmark "
                             "images; test a policy on unseen images (other seeds or files)")


def _settings(benchmark: Benchmark) -> dict[str, Any]:
    names = [benchmark.images.name(i) for i in range(len(benchmark.images))]
    return {"strategies": list(benchmark.strategies), "images": names, "budget": benchmark.budget,
            "seeds": benchmark.seeds, "space": benchmark.space}


def _write_settings(benchmark: Benchmark) -> None:
    path = benchmark.out / "settings.json"
    settings = _settings(benchmark)
    if path.exists():
        previous = json.loads(path.read_text())
        settings["strategies"] = list(dict.fromkeys(previous["strategies"] + settings["strategies"]))
    path.write_text(json.dumps(settings, indent=2))


def _run_image(job, on_record=None) -> None:
    """Oracle and every search of one image (the local backend's unit of work); ``on_record()`` is
    called after each recorded evaluation."""
    benchmark, index, done, oracle_done = job
    workflow = workflow_with_atoms(benchmark, index)
    if _wants_oracle(benchmark, index, oracle_done):
        append_record(benchmark.oracle_path, oracle_record(workflow, benchmark.images.name(index)))

    def record(line: dict) -> None:
        append_record(benchmark.records_path, line)
        if on_record is not None:
            on_record()

    for search in pending_searches(benchmark, done, index):
        run_search_of(benchmark, search, workflow, record)


def workflow_with_atoms(benchmark: Benchmark, index: int):
    """The workflow of image ``index`` with its atoms found; searches start from copies of it."""
    workflow = benchmark.images.workflow(index, space=benchmark.space)
    _ = workflow.lattice
    return workflow


def _wants_oracle(benchmark: Benchmark, index: int, oracle_done: set[str]) -> bool:
    return benchmark.oracle and benchmark.images.name(index) not in oracle_done


def pending_searches(benchmark: Benchmark, done: dict[tuple, list[dict]], index: int | None = None) -> list[Search]:
    """The searches with fewer records than the budget (of image ``index``, or of every image,
    image by image), each with its recorded configurations."""
    indices = range(len(benchmark.images)) if index is None else [index]
    searches = []
    for i in indices:
        name = benchmark.images.name(i)
        for strategy in benchmark.strategies:
            for seed in range(benchmark.seeds):
                replay = done.get((protocol_of(strategy), strategy, name, seed), [])
                if len(replay) < benchmark.budget:
                    searches.append(Search(strategy, i, seed, tuple(replay)))
    return searches


def run_search_of(benchmark: Benchmark, search: Search, workflow, emit: Callable[[dict], None]) -> None:
    """Run ``search`` on a cache-free copy of ``workflow`` (atoms found) and ``emit`` the record
    of each new evaluation, in step order."""
    name, protocol = benchmark.images.name(search.index), protocol_of(search.strategy)
    fresh = workflow.without_caches()
    searcher = make_strategy(search.strategy, fresh, benchmark.budget, search.seed, name)
    no_walls = fresh.truth_metrics(one_domain(fresh)[1])
    run_search(searcher, fresh, benchmark.budget, replay=search.replay,
               on_step=lambda step: emit(_record(protocol, search.strategy, name, search.seed, step, no_walls)))


def oracle_record(workflow, name: str) -> dict[str, Any]:
    """The best evaluation of the coarse grid of what the input can describe, on a cache-free copy
    of ``workflow``."""
    workflow = workflow.without_caches()
    best = None
    grid = coarse_grid(workflow.describable_space)
    for config in grid:
        evaluation = workflow.evaluate(config)
        if best is None or evaluation.reward > best.reward:
            best = evaluation
    return {"image": name, "reward": best.reward, "config": best.config, "metrics": best.metrics,
            "evaluations": len(grid)}


def _record(protocol: str, strategy: str, image: str, seed: int, step, no_walls: dict) -> dict[str, Any]:
    """One evaluation's record; ``no_walls_metrics`` are the truth metrics of the one-domain
    answer ``ferrogym analyze`` gives while the best reward is below NO_WALLS_BELOW."""
    return {
        "protocol": protocol, "strategy": strategy, "image": image, "seed": seed, "step": step.step,
        "config": step.config, "config_px": step.config_px, "reward": step.reward,
        "components": step.components, "metrics": step.metrics, "seconds": round(step.seconds, 5),
        "reason": step.reason, "no_walls_metrics": no_walls,
    }


def _recorded_configs(path: Path) -> dict[tuple, list[dict]]:
    """Configurations already recorded per search, in step order."""
    by_search = defaultdict(list)
    for record in read_jsonl(path):
        by_search[report.search_key(record)].append(record)
    return {key: [r["config"] for r in sorted(records, key=lambda r: r["step"])] for key, records in by_search.items()}


def write_report(benchmark: Benchmark) -> list[dict]:
    """summary.md / .csv, curves against evaluations and seconds, incumbent ARI, best segmentations."""
    records = [r for r in report.load_records(benchmark.records_path) if r["strategy"] in benchmark.strategies]
    if not records:
        raise InputError(f"no evaluations recorded in {benchmark.records_path}")
    oracle = _oracle(benchmark, records)
    training = {s: _training_cost(s) for s in benchmark.strategies if protocol_of(s) == AMORTISED}
    budgets = tuple(sorted({*(b for b in BUDGETS if b <= benchmark.budget), benchmark.budget}))
    rows = report.summarise(records, oracle, budgets, training)
    labels = report.strategy_labels(benchmark.strategies)  # policy:DIR as policy:<folder name>, never a path
    report.write_summary(rows, benchmark.out, labels)
    curves = report.search_curves(records)
    report.plot_best_so_far(curves, benchmark.out / "best_so_far.png", labels=labels)
    report.plot_best_so_far(curves, benchmark.out / "best_so_far_seconds.png", x="seconds", labels=labels)
    report.plot_incumbent_ari(curves, benchmark.out / "incumbent_ari.png", labels=labels)
    _best_segmentations(benchmark, records, labels)
    return rows


def _oracle(benchmark: Benchmark, records: list[dict]) -> dict[str, float]:
    best = defaultdict(lambda: -np.inf)
    for record in [*read_jsonl(benchmark.oracle_path), *records]:
        best[record["image"]] = max(best[record["image"]], record["reward"])
    return dict(best)


def _training_cost(strategy: str) -> dict[str, float]:
    """Evaluations (or env steps) and seconds spent choosing a policy or a static configuration."""
    run_dir = training_run(strategy)
    if run_dir is None:
        return {"timesteps": 0, "seconds": 0.0}  # static:default: chosen by nobody's evaluations
    run = load_run(run_dir)
    return {"timesteps": run.get("timesteps"), "seconds": run.get("train_seconds")}


def _best_segmentations(benchmark: Benchmark, records: list[dict], labels: dict[str, str]) -> None:
    """For the first image: the best configuration each strategy found (over seeds), drawn into
    ``best_<label>.png`` (labels from :func:`report.strategy_labels`)."""
    image = benchmark.images.name(0)
    workflow = benchmark.images.workflow(0, space=benchmark.space)
    for strategy in benchmark.strategies:
        mine = [r for r in records if r["strategy"] == strategy and r["image"] == image]
        if not mine:
            continue
        best = max(mine, key=lambda r: r["reward"])
        evaluation = workflow.evaluate(best["config"])
        ari = evaluation.metrics.get("ari")
        title = f"{labels[strategy]} on {image}: reward {evaluation.reward:.3f}" + (f", ARI {ari:.2f}" if ari is not None else "")
        save_segmentation_figure(benchmark.out / f"best_{report.file_label(labels[strategy])}.png", workflow.image,
                                 evaluation.segmentation, title)
