"""Analyse one's own data: find the columns, refuse what cannot be analysed, search, answer.

:func:`analyze` (also ``ferrogym.analyze``) takes an image (an array, a file, a HyperSpy
``Signal2D`` with its calibration), positions, or both, and

1. finds the columns and says what it found (counts, lattice constant in pm, B/A peak ratio);
2. refuses, in one line and before any search, what is not an atomic-resolution image of a
   perovskite-like crystal (:func:`~ferrogym.workflows.crystal.check_crystal`);
3. searches the configurations of the workflow with a strategy (default :data:`DEFAULT_SEARCH`
   for :data:`DEFAULT_BUDGET` evaluations, chosen by ``benchmarks/default_search.py``);
4. concludes: with the default ``order`` reward, when the best reward stays below
   :data:`~ferrogym.workflows.rewards.NO_WALLS_BELOW`, no configuration found walls that are
   steps in the image's order parameter, and the answer is one domain (the rejected best is kept
   in the search record); another reward has its own scale, and its best segmentation is the
   answer, unjudged.

It returns an :class:`~ferrogym.agents.result.AnalysisResult`; with ``out`` it also writes the
table, summary and figures there (see :mod:`ferrogym.agents.result`).
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm  # a text bar: in a notebook too, without ipywidgets

from ferrogym.workflows.answer import Answer
from ferrogym.workflows.crystal import check_crystal, describe_columns, found_line
from ferrogym.workflows.descriptors import DescriptorUnavailable
from ferrogym.workflows.errors import InputError
from ferrogym.workflows.figure import DPI
from ferrogym.workflows.interop import image_from_signal, is_signal
from ferrogym.workflows.io import ImageData, PositionsData, load_image, load_positions, validate_positions
from ferrogym.workflows.io import _select_frame
from ferrogym.workflows.order import phases_of_labels
from ferrogym.workflows.rewards import DEFAULT_REWARD, NO_WALLS_BELOW, REWARDS
from ferrogym.workflows.units import Calibration, calibration_of
from ferrogym.workflows.walls import Segmentation
from ferrogym.workflows.workflow import Evaluation, Workflow

from .record import now, run_record
from .result import AnalysisResult, SearchRecord
from .search import make_strategy, run_search

#: The search ``ferrogym analyze`` runs unless told otherwise, and its budget: the recommendation
#: of ``benchmarks/default_search.py`` (the README quotes its table).
DEFAULT_SEARCH = "policy:shipped"
DEFAULT_BUDGET = 3


@dataclass(frozen=True)
class Inputs:
    """A workflow built from what a user gave, with what the record and the titles need."""

    workflow: Workflow
    calibration: Calibration
    name: str
    files: tuple[Path, ...]


def build_inputs(source=None, *, positions=None, sublattice=None, a_sites=None, b_sites=None,
                 pixel_size_pm: float | None = None, frame: int | None = None, region=None,
                 brighter_sublattice: str | None = None, reward=DEFAULT_REWARD, space: str = "descriptors") -> Inputs:
    """The workflow of an image (array, file, HyperSpy signal, :class:`ImageData`, or a
    :class:`Workflow` as it is), positions (array, file or :class:`PositionsData`, with
    ``sublattice``), or A- and B-site positions given apart; an image with positions is used for
    patch descriptors at those positions."""
    if isinstance(source, Workflow):
        if any(v is not None for v in (positions, a_sites, b_sites, pixel_size_pm, frame, region, brighter_sublattice)):
            raise InputError("a Workflow is analysed as built; give positions, pixel size, frame, region and "
                             "brighter sublattice to the Workflow instead")
        truth_size = getattr(source.truth, "pixel_size_pm", None)
        source_of = "synthetic truth" if truth_size is not None and truth_size == source.pixel_size_pm else "given"
        calibration = Calibration(source.pixel_size_pm, source_of if source.pixel_size_pm is not None else "unknown")
        return Inputs(source, calibration, "image", ())
    files: list[Path] = []
    image, name, origin = _image(source, frame, files)
    xy, sites, positions_name = _positions(positions, sublattice, a_sites, b_sites, files)
    if image is None and xy is None:
        raise InputError("nothing to analyse: give an image, positions, or A- and B-site positions")
    workflow = Workflow(image, positions=xy, sublattice=sites, pixel_size_pm=pixel_size_pm, region=region,
                        brighter_sublattice=brighter_sublattice or "A", reward=reward, space=space)
    read = image.pixel_size_pm if isinstance(image, ImageData) else None
    calibration = calibration_of(workflow.pixel_size_pm, pixel_size_pm, read, origin)
    return Inputs(workflow, calibration, name or positions_name, tuple(files))


def _image(source, frame, files: list[Path]):
    """The image of ``source``, its name and where its calibration came from (``file`` or
    ``signal``); Nones without an image."""
    if source is None:
        if frame is not None:
            raise InputError("frame picks an image of a stack; give the image too")
        return None, None, None
    if isinstance(source, (str, Path)):
        files.append(Path(source))
        return load_image(source, frame), Path(source).name, "file"
    if is_signal(source):
        image = image_from_signal(source, frame)
        return image, image.source.removeprefix("HyperSpy signal ").strip("'"), "signal"
    if isinstance(source, ImageData):
        return source, Path(source.source).name, "file"
    array = np.asarray(source)
    if array.ndim == 3 or frame is not None:
        array = _select_frame(array, frame, "image array")
    return array, "image array", None


def _positions(positions, sublattice, a_sites, b_sites, files: list[Path]):
    """(xy, sublattice, name) of the positions given, or (None, None, None)."""
    if positions is not None and (a_sites is not None or b_sites is not None):
        raise InputError("give either positions (--positions) or A- and B-site positions (--a-sites/--b-sites), "
                         "not both")
    if (a_sites is None) != (b_sites is None):
        raise InputError("A- and B-site positions (--a-sites and --b-sites) go together; for one file of mixed "
                         "sites use positions (--positions)")
    if a_sites is not None:
        a, b = _read_positions(a_sites, None, files), _read_positions(b_sites, None, files)
        sites = np.array(["A"] * len(a.xy) + ["B"] * len(b.xy))
        return np.vstack([a.xy, b.xy]), sites, Path(a.source).name
    if positions is None:
        return None, None, None
    data = _read_positions(positions, sublattice, files)
    return data.xy, data.sublattice, Path(data.source).name


def _read_positions(positions, sublattice, files: list[Path]) -> PositionsData:
    if isinstance(positions, PositionsData):
        return positions
    if isinstance(positions, (str, Path)):
        files.append(Path(positions))
        return load_positions(positions)
    return validate_positions(positions, sublattice)


def analyze(source=None, search: str = DEFAULT_SEARCH, budget: int = DEFAULT_BUDGET, out: str | Path | None = None,
            *, positions=None, sublattice=None, a_sites=None, b_sites=None, pixel_size_pm: float | None = None,
            frame: int | None = None, region=None, brighter_sublattice: str | None = None, seed: int = 0,
            reward=DEFAULT_REWARD, space: str = "descriptors",
            name: str | None = None, progress: bool = True, format: str = "png", dpi: int = DPI,
            command_line: list[str] | None = None) -> AnalysisResult:
    """Find the columns, check them, search the best segmentation, and return the answer.

    Parameters
    ----------
    source : image to analyse: a 2-D array, a file (any format of
        :func:`~ferrogym.workflows.io.load_image`), a HyperSpy ``Signal2D`` (its axes give the
        pixel size), an :class:`~ferrogym.workflows.io.ImageData`, or a built
        :class:`~ferrogym.workflows.workflow.Workflow`; None for positions alone.
    search : strategy (``policy:shipped``, ``bayes-tpe``, ``random``, ... see
        :mod:`ferrogym.agents.search`).
    budget : evaluations of the search.
    out : folder to write the table, summary and figures to; None writes nothing.
    positions, sublattice : (N, 2) (x, y) pixel positions (array or file) and their "A"/"B".
    a_sites, b_sites : A- and B-site positions given apart (arrays or files).
    pixel_size_pm : the pixel size in pm, over the file's calibration.
    frame : the image of a stack to analyse.
    region : where to analyse, a box (x0, y0, x1, y1) in px, a mask or a mask file.
    brighter_sublattice : "A" (None: the default) or "B": which sublattice the brighter columns are
        ("B" for SrRuO3, where Ru outshines Sr); brightness alone names them.
    seed : the search's seed.
    reward : the reward's name (default ``order``) or a callable.
    space : ``descriptors`` or ``vae`` (the rotation-invariant VAE's settings).
    name : the input's name in titles (default: the file name).
    progress : print what the columns were found to be and show the search's progress bar.
    format, dpi : the figures' format (png, svg, pdf) and resolution, with ``out``.
    command_line : the command's arguments, for the record (the command line passes them).

    Returns
    -------
    AnalysisResult
        Positions, labels, phases, displacements, the verdict, the search record, ``figure()``,
        ``save(out)``, ``to_hyperspy()``, ``to_atomap()``.

    Raises
    ------
    InputError
        Bad input, or :class:`~ferrogym.workflows.crystal.NotACrystalImage` for an image that is
        not an atomic-resolution image of a perovskite-like crystal.
    """
    started = now()
    inputs = build_inputs(source, positions=positions, sublattice=sublattice, a_sites=a_sites, b_sites=b_sites,
                          pixel_size_pm=pixel_size_pm, frame=frame, region=region,
                          brighter_sublattice=brighter_sublattice, reward=reward, space=space)
    workflow, calibration = inputs.workflow, inputs.calibration
    name = name or inputs.name
    start = time.perf_counter()
    try:
        lattice = workflow.lattice
    except InputError as error:  # the column finder's message, with the input it is about
        raise InputError(f"{name}: {error}") from error
    atoms_seconds = time.perf_counter() - start
    shape = None if workflow.image is None else workflow.image.shape
    census = workflow.census
    missing_b = None if census is None else census.empty_b_xy
    columns = describe_columns(lattice, calibration, shape, missing_b_xy=missing_b)
    warnings = check_crystal(columns, calibration, name)
    if census is not None:
        columns.update(census.as_dict())
        warnings += [census.warning] if census.warning else []
    if progress:
        print(found_line(columns, calibration, atoms_seconds), flush=True)
        for warning in warnings:
            print(f"warning: {warning}", flush=True)
    record = _search(workflow, search, budget, seed, name, progress)
    has_walls, segmentation = conclude(workflow, record.best)
    record = replace(record, rejected=has_walls is False)
    answer = Answer(lattice, segmentation, phases_of_labels(workflow.order, segmentation.labels), calibration)
    run = run_record(list(inputs.files), workflow.image, command_line, started)
    result = AnalysisResult(workflow, answer, has_walls, record, columns, tuple(warnings), run, name, atoms_seconds,
                            missing_b_xy=missing_b)
    if out is not None:
        result.save(out, format, dpi)
    return result


def _search(workflow: Workflow, search: str, budget: int, seed: int, name: str, progress: bool) -> SearchRecord:
    """Run the search (with a progress bar); the record before the answer is concluded."""
    start = time.perf_counter()
    searcher = make_strategy(search, workflow, budget, seed, name)
    with tqdm(total=budget, desc=f"{search} search", unit="eval", disable=not progress) as bar:
        searched = run_search(searcher, workflow, budget, on_step=lambda _: bar.update())
    reward = workflow.reward_fn
    reward_name = next((k for k, v in REWARDS.items() if v is reward), getattr(reward, "__name__", str(reward)))
    return SearchRecord(search, seed, budget, reward_name, searched.steps, searched.best, False,
                        descriptor_info(workflow, searched.best), time.perf_counter() - start)


def descriptor_info(workflow: Workflow, evaluation: Evaluation) -> dict:
    """How the evaluation's descriptor was obtained (the VAE's device, seconds, loss); {} for
    the hand-made descriptors."""
    try:
        return dict(workflow.features(evaluation.config).info)
    except DescriptorUnavailable:
        return {}


def conclude(workflow: Workflow, best: Evaluation) -> tuple[bool | None, Segmentation]:
    """Whether walls were found and the segmentation to answer with: the best one if it earned
    walls (or the reward is not ``order``, then None), else one domain over every cell."""
    if workflow.reward_fn is not REWARDS[DEFAULT_REWARD]:
        return None, best.segmentation
    if best.reward >= NO_WALLS_BELOW:
        return True, best.segmentation
    return False, one_domain(workflow)[1]


def one_domain(workflow: Workflow) -> tuple[np.ndarray, Segmentation]:
    """The "no walls" answer: one label on every atom, and its cell segmentation."""
    labels = np.zeros(len(workflow.lattice.xy), dtype=int)
    return labels, workflow.cell_segmentation(labels)


# ---------------------------------------------------------------------------------- batches

#: Columns of the batch table (one row per image).
BATCH_COLUMNS = ("input", "status", "walls", "labels", "phases", "A", "B", "lattice_constant_px",
                 "lattice_constant_pm", "b_displacement_median", "displacement_unit", "best_reward", "evaluations",
                 "seconds", "folder", "message")


def batch_row(path, result: AnalysisResult | None, folder: Path, seconds: float, error: str | None = None) -> dict:
    """One image's row of the batch table: its answer in brief, or why it was refused."""
    row = dict.fromkeys(BATCH_COLUMNS, "")
    row.update(input=str(path), folder=str(folder), seconds=f"{seconds:.1f}")
    if result is None:
        row.update(status="refused", message=error)
        return row
    summary = result.summary()["answer"]
    displacement = summary["b_displacement"] or {}
    row.update(status="analysed", walls=summary["walls"], labels=len(summary["labels"]), phases=summary["phases"],
               A=summary["columns"]["A"], B=summary["columns"]["B"],
               lattice_constant_px=summary["columns"]["lattice_constant"]["px"],
               lattice_constant_pm=summary["columns"]["lattice_constant"]["pm"],
               b_displacement_median=displacement.get("median_magnitude", ""),
               displacement_unit=displacement.get("unit", ""), best_reward=f"{result.search.best.reward:.4f}",
               evaluations=len(result.search.steps), message=result.verdict)
    return {k: ("" if v is None else v) for k, v in row.items()}


def write_batch_table(rows: list[dict], path: Path) -> Path:
    """The batch table as CSV (:data:`BATCH_COLUMNS`)."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=BATCH_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path
