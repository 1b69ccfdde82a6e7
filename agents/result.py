"""What an analysis returns (:class:`AnalysisResult`) and writes: the table, the summary, the figures.

Under an output folder, :meth:`AnalysisResult.save` writes

- ``segmentation.csv``: one row per column (:data:`~ferrogym.workflows.answer.CSV_COLUMNS`):
  x, y in px and pm, sublattice, label (A columns take their cells' domain; -1 only where no
  labelled cell touches the column), phase (-1 unknown), and for B sites the displacement (B
  minus its A-cage centre; the polarization is its negative) dx, dy in px and pm and its
  magnitude in pm. pm cells are empty where the pixel size is unknown;
- ``summary.json`` in three parts: ``answer`` (verdict, units, the columns found, labels with
  their phases and displacements, walls, the configuration the answer came from), ``search``
  (strategy, seed, budget, reward, every evaluation's configuration and reward, the best one
  and whether it was rejected) and ``run`` (ferrogym version, input files and SHA-256, command
  line, date, platform, device, package versions, seconds);
- ``segmentation.<format>``: the domain map (legend, scale bar), the truth when known, the
  polarization map at a fixed arrow scale with its keys, and the VAE's maps with ``--space vae``;
- ``columns.<format>`` (with an image): the detected A and B columns over the image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ferrogym.workflows.answer import Answer
from ferrogym.workflows.figure import DPI, FORMATS, columns_figure, save_figure, segmentation_figure
from ferrogym.workflows.rewards import NO_WALLS_BELOW
from ferrogym.workflows.units import Calibration
from ferrogym.workflows.workflow import Evaluation, Workflow

from .report import strategy_labels
from .search import SearchStep


@dataclass(frozen=True)
class SearchRecord:
    """How the answer was searched.

    Attributes
    ----------
    strategy, seed, budget, reward : as asked (the reward by name).
    steps : every evaluation, in order.
    best : the highest-reward evaluation (the first on ties).
    rejected : whether the answer is not ``best``'s segmentation (no walls: one domain instead).
    descriptor : how the best configuration's descriptor was obtained (the VAE's device,
        seconds, loss), {} for the hand-made descriptors.
    seconds : the search's wall-clock seconds.
    """

    strategy: str
    seed: int
    budget: int
    reward: str
    steps: list[SearchStep]
    best: Evaluation
    rejected: bool
    descriptor: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def label(self) -> str:
        """The strategy's short name (``policy:DIR`` by its folder's name, never a path)."""
        return strategy_labels([self.strategy])[self.strategy]


@dataclass(frozen=True)
class AnalysisResult:
    """One analysis: the answer, how it was found, and how to reproduce it.

    Attributes
    ----------
    workflow : the image's workflow (atoms, caches, the order parameter).
    answer : the segmentation carried to every column, with displacements and walls.
    has_walls : whether the search found walls that are steps in the order parameter; False:
        the answer is one domain; None for a reward whose scale the threshold is not for.
    search : the search record.
    columns : what the lattice told before the search (counts, lattice constant, cell, B/A).
    warnings : what the checks noticed without refusing (one sublattice, vacuum).
    run : the reproducibility record (version, input and its SHA-256, command, date, machine).
    name : the input's name for titles (a file name, not a path).
    atoms_seconds : time to find the columns.
    missing_b_xy : (M, 2) B sites the lattice predicts but no column holds, when known.
    """

    workflow: Workflow
    answer: Answer
    has_walls: bool | None
    search: SearchRecord
    columns: dict
    warnings: tuple[str, ...]
    run: dict
    name: str
    atoms_seconds: float
    missing_b_xy: np.ndarray | None = None

    # ------------------------------------------------------------------ per column
    @property
    def positions(self) -> np.ndarray:
        """(N, 2) (x, y) pixel positions of the columns (x = column, y = row)."""
        return self.answer.lattice.xy

    @property
    def sublattice(self) -> np.ndarray:
        """(N,) "A" or "B" per column."""
        return self.answer.lattice.sublattice

    @property
    def labels(self) -> np.ndarray:
        """(N,) domain label per column; A columns take their cells' label; -1 unassigned."""
        return self.answer.labels

    @property
    def phases(self) -> np.ndarray:
        """(N,) phase per column, -1 where unknown."""
        return self.answer.phases

    @property
    def displacement(self) -> np.ndarray:
        """(N, 2) B-site displacement in px (B minus its A-cage centre), NaN off B sites."""
        return self.answer.displacement_px

    @property
    def displacement_pm(self) -> np.ndarray | None:
        """(N, 2) B-site displacement in pm, None when the pixel size is unknown."""
        return self.answer.displacement_pm

    # ------------------------------------------------------------------ per image
    @property
    def calibration(self) -> Calibration:
        return self.answer.calibration

    @property
    def lattice_constant_pm(self) -> float | None:
        return self.columns["lattice_constant"]["pm"]

    @property
    def verdict(self) -> str:
        best = self.search.best
        if self.has_walls is None:
            return f"best reward {best.reward:.3f}; walls not judged (the no-walls threshold is for the order reward)"
        if self.has_walls:
            return f"walls found: best reward {best.reward:.3f}"
        return (f"no walls: the best reward {best.reward:.3f} is below {NO_WALLS_BELOW}, so no configuration "
                "found walls that are steps in the order parameter; reporting one domain")

    @property
    def title(self) -> str:
        walls = {True: "walls", False: "no walls, one domain", None: "walls not judged"}[self.has_walls]
        return (f"{self.name}: {self.search.label}, {len(self.search.steps)} evaluations, best reward "
                f"{self.search.best.reward:.3f}: {walls}")

    # ------------------------------------------------------------------ outputs
    def summary(self) -> dict:
        """summary.json as a dict: ``answer``, ``search`` and ``run`` (see module)."""
        answer = self.answer
        best = self.search.best
        shown = None if self.search.rejected else self._configuration(best)
        return {
            "answer": {
                "verdict": self.verdict,
                "walls": self.has_walls,
                "units": self.calibration.describe(),
                "columns": self.columns,
                "labels": answer.label_rows(),
                "phases": None if answer.phase_of_label is None else len(set(answer.phase_of_label.values())),
                "b_displacement": answer.displacement_summary(),
                "wall_segments": answer.wall_rows(),
                "configuration": shown,
                "warnings": list(self.warnings),
            },
            "search": {
                "strategy": self.search.strategy,
                "seed": self.search.seed,
                "budget": self.search.budget,
                "reward": self.search.reward,
                "no_walls_below": NO_WALLS_BELOW,
                "seconds": round(self.search.seconds, 3),
                "best": {**self._configuration(best), "step": self._best_step(),
                         "rejected": self.search.rejected,
                         **({"descriptor": self.search.descriptor} if self.search.descriptor else {}),
                         **({"rejected_because": self.verdict} if self.search.rejected else {})},
                "evaluations": [{"step": s.step, "seconds": round(s.seconds, 4), "config": s.config,
                                 "reward": s.reward, "components": s.components,
                                 **({"reason": s.reason} if s.reason else {})} for s in self.search.steps],
            },
            "run": {**self.run, "seconds": {"atoms": round(self.atoms_seconds, 3),
                                            "search": round(self.search.seconds, 3)}},
        }

    def _configuration(self, evaluation: Evaluation) -> dict:
        """An evaluation's configuration in the space's units, its windows in a, px and pm, its
        reward and components."""
        windows = {}
        for param in self.workflow.space.params:
            if param.unit == "a" and param.is_active(evaluation.config):
                px = evaluation.config_px[param.name]
                windows[param.name] = {"a": evaluation.config[param.name], **self.calibration.length(px, 1)}
        return {"config": evaluation.config, "windows": windows, "reward": evaluation.reward,
                "components": evaluation.components, **({"reason": evaluation.reason} if evaluation.reason else {})}

    def _best_step(self) -> int:
        return next(s.step for s in self.search.steps if s.config == self.search.best.config)

    def label_names(self) -> dict[int, str]:
        """Legend text per label: phase, cells and median displacement."""
        names = {}
        for row in self.answer.label_rows():
            head = "one domain (no walls)" if self.has_walls is False else f"label {row['label']}"
            if row["phase"] is not None and self.has_walls is not False:
                head += f": phase {row['phase']}"
            detail = f"{row['cells']} cells"
            if row["b_displacement"]:
                d = row["b_displacement"]
                detail += f", |d| {d['median_magnitude']:.3g} {d['unit']}"
            names[row["label"]] = f"{head}\n{detail}"
        return names

    def figure(self, kind: str = "segmentation", dpi: int = DPI):
        """The ``segmentation`` figure or the ``columns`` figure, as a matplotlib Figure meant for
        ``dpi`` (in a notebook, display it; ``figure.savefig(path)`` to write it)."""
        workflow = self.workflow
        if kind == "columns":
            if workflow.image is None:
                raise ValueError("the columns figure draws the columns over the image; this input has none")
            return columns_figure(workflow.image, self.answer.lattice, f"{self.name}: columns found",
                                  calibration=self.calibration, missing_b_xy=self.missing_b_xy, dpi=dpi)
        if kind != "segmentation":
            raise ValueError(f"figure kind {kind!r}: use 'segmentation' or 'columns'")
        return segmentation_figure(workflow.image, self.answer.segmentation, self.title,
                                   truth=workflow.truth_segmentation, lattice=self.answer.lattice,
                                   maps=self.descriptor_maps, calibration=self.calibration,
                                   label_names=self.label_names(), dpi=dpi)

    @property
    def descriptor_maps(self) -> dict:
        """The VAE's per-site angle, translation and latents of the best configuration (empty for
        the hand-made descriptors, which have none to map)."""
        from ferrogym.workflows.descriptors import DescriptorUnavailable

        if not self.search.descriptor:
            return {}
        try:
            features = self.workflow.features(self.search.best.config)
        except DescriptorUnavailable:
            return {}
        xy = self.answer.lattice.xy[features.sites]
        return {name: (xy, values) for name, values in features.named.items()}

    def save(self, out: str | Path, format: str = "png", dpi: int = DPI) -> dict[str, Path]:
        """Write the table, the summary and the figures under ``out`` (see module); return their paths."""
        if format not in FORMATS:
            from ferrogym.workflows.errors import InputError

            raise InputError(f"figure format {format!r} is not one of {', '.join(FORMATS)}")
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"table": self.answer.write_csv(out / "segmentation.csv"), "summary": out / "summary.json"}
        paths["summary"].write_text(json.dumps(self.summary(), indent=2))
        paths["segmentation"] = save_figure(self.figure("segmentation", dpi), out / f"segmentation.{format}")
        if self.workflow.image is not None:
            paths["columns"] = save_figure(self.figure("columns", dpi), out / f"columns.{format}")
        return paths

    def to_hyperspy(self) -> dict:
        """The image and the answer's maps (label, phase, B-site displacement) as HyperSpy
        ``Signal2D`` objects with the image's axes (needs ``ferrogym[interop]``)."""
        from ferrogym.workflows.interop import to_hyperspy

        return to_hyperspy(self.answer, self.workflow.image, self.name)

    def to_atomap(self) -> dict:
        """The A and B sublattices as Atomap ``Sublattice`` objects on the calibrated image (needs
        ``ferrogym[interop]``)."""
        from ferrogym.workflows.interop import to_atomap

        return to_atomap(self.answer, self.workflow.image, self.name)
