"""Sets of images to analyse: synthetic images by seed, simulated images, image files, or one array.

An :class:`ImageSet` is an indexed, reproducible collection: item ``i`` always names and builds
the same image, so training and test images are separated by seed ranges or file lists, and an
env, a benchmark and a person on the command line all mean the same image by the same name
(``synthetic:12``, ``/data/film.dm4``).

:func:`parse_images` reads the command line's SPEC:

- ``synthetic:A-B[,field=value,...]``: synthetic images with seeds A to B inclusive, drawn from
  :func:`~ferrogym.workflows.synthetic.sample_params`'s default ranges. ``field=value`` fixes a
  :class:`~ferrogym.workflows.synthetic.SyntheticParams` field (``dose=100``,
  ``domains=stripes``, ``shape=256x256``); ``field=low:high`` draws it uniformly per image;
  ``field=a|b|c`` picks one of the values per image (``shape=256x256|1024x1024``). The pseudo
  field ``family`` picks a kind of image (a domain pattern or ``phase_boundary``, see
  :data:`~ferrogym.workflows.synthetic.FAMILIES`); ``family=any`` picks among all of them. The
  pseudo field ``input`` says what the analysis is given (:data:`INPUTS`): the ``image``
  (default), or only the column ``positions`` found on it (with their A/B sublattice), or
  ``a_positions``, the A columns alone, as a positions file of one sublattice holds.
- ``simulated:FOLDER`` or ``simulated:FILE,GLOB,...``: truth files (:mod:`.truthfile`, e.g. the
  abTEM images of ``scripts/make_simulated_images.py`` in ``tests/data/simulated``), every
  ``*.npz`` of a folder or the files and glob patterns given; each workflow carries its truth,
  as a synthetic image's does, so the truth metrics (ARI, wall F1) and the reward audit work.
- otherwise a comma-separated list of files or glob patterns.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .io import load_image, load_positions
from .synthetic import FAMILIES, SyntheticParams, family_fields, generate, sample_params
from .truthfile import load_truth
from .workflow import Workflow

#: What the analysis of a synthetic image is given (the ``input`` pseudo field).
INPUTS = ("image", "positions", "a_positions")
#: Choices that are not SyntheticParams fields.
_PSEUDO_FIELDS = ("family", "input")

#: Fields that can be drawn from a range (numbers only; tuples and strings cannot).
_NUMERIC_FIELDS = {
    f.name for f in fields(SyntheticParams) if f.type in ("float", "int", "float | None")
}


class ImageSet:
    """An indexed, reproducible collection of images; subclasses say where images come from."""

    def __len__(self) -> int:
        raise NotImplementedError

    def name(self, index: int) -> str:
        """A name that identifies image ``index`` across runs (used in logs and records)."""
        raise NotImplementedError

    def workflow(self, index: int, **workflow_kwargs) -> Workflow:
        """A fresh :class:`Workflow` on image ``index`` (keyword arguments go to Workflow)."""
        raise NotImplementedError

    def _check(self, index: int) -> int:
        if not 0 <= index < len(self):
            raise IndexError(f"image index {index} outside 0..{len(self) - 1}")
        return int(index)


@dataclass(frozen=True)
class SyntheticImages(ImageSet):
    """Synthetic images with seeds ``first..last`` inclusive, each with its ground truth.

    Image seed ``s`` draws its parameters from ``numpy.random.default_rng(s)`` (see
    :func:`~ferrogym.workflows.synthetic.sample_params`), then draws any ``ranges`` from a
    second stream of the same seed and any ``choices`` from a third, then renders with
    ``seed=s``: the same seed is the same image everywhere.

    Parameters
    ----------
    first, last : inclusive seed range.
    fixed : SyntheticParams fields held for every image.
    ranges : {field: (low, high)} numeric fields drawn uniformly per image.
    choices : {field: values} fields set to one of the values per image; the field ``family``
        names kinds of image (:data:`~ferrogym.workflows.synthetic.FAMILIES`), the field
        ``input`` what the analysis is given (:data:`INPUTS`; names of images given as positions
        end in ``/positions`` or ``/a_positions``).
    """

    first: int = 0
    last: int = 999
    fixed: Mapping[str, Any] = field(default_factory=dict)
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    choices: Mapping[str, tuple] = field(default_factory=dict)

    def __post_init__(self):
        if not 0 <= self.first <= self.last:
            raise InputError(f"synthetic seeds {self.first}-{self.last}: need 0 <= first <= last")
        for name, bounds in self.ranges.items():
            if name not in _NUMERIC_FIELDS:
                raise InputError(
                    f"synthetic range for {name!r}: only numeric fields can be drawn from a range "
                    f"({sorted(_NUMERIC_FIELDS)})"
                )
            low, high = bounds
            if not low <= high:
                raise InputError(f"synthetic range {name}={low}:{high}: low must not exceed high")
        given = [*self.fixed, *self.ranges, *self.choices]
        overlap = sorted({name for name in given if given.count(name) > 1})
        if overlap:
            raise InputError(f"synthetic fields {overlap} are given more than once (fixed, ranged or chosen); pick one")
        for family in self.choices.get("family", ()):
            if family not in FAMILIES:
                raise InputError(f"synthetic family {family!r}: use one of {FAMILIES} or family=any")
        for kind in self.choices.get("input", ()):
            if kind not in INPUTS:
                raise InputError(f"synthetic input {kind!r}: use one of {INPUTS}")
        for name, values in self.choices.items():
            for value in values if name not in _PSEUDO_FIELDS else ():
                sample_params(np.random.default_rng(0), **{**self.fixed, name: value})  # each value valid
        self.params(self.first)  # validates the fields now, not at the first reset

    def __len__(self) -> int:
        return self.last - self.first + 1

    def seed(self, index: int) -> int:
        return self.first + self._check(index)

    def name(self, index: int) -> str:
        seed = self.seed(index)
        kind = self._input(seed)
        return f"synthetic:{seed}" if kind == "image" else f"synthetic:{seed}/{kind}"

    def params(self, seed: int) -> SyntheticParams:
        drawn = {}
        if self.ranges:
            ranged = np.random.default_rng([seed, 1])
            drawn = {k: float(ranged.uniform(lo, hi)) for k, (lo, hi) in sorted(self.ranges.items())}
        return sample_params(np.random.default_rng(seed), **self.fixed, **drawn, **self._chosen(seed)[0])

    def input(self, index: int) -> str:
        """What the analysis of image ``index`` is given (one of :data:`INPUTS`)."""
        return self._input(self.seed(index))

    def _input(self, seed: int) -> str:
        # names are asked for at every env step: no draw unless the input is a choice
        return self._chosen(seed)[1] if "input" in self.choices else "image"

    def _chosen(self, seed: int) -> tuple[dict, str]:
        """The fields the choices set for image ``seed`` (third stream), and its input kind."""
        chosen, kind = {}, "image"
        if self.choices:
            chooser = np.random.default_rng([seed, 2])
            for name, values in sorted(self.choices.items()):
                value = values[chooser.integers(len(values))]
                if name == "input":
                    kind = value
                else:
                    chosen.update(family_fields(value, chooser) if name == "family" else {name: value})
        return chosen, kind

    def workflow(self, index: int, **workflow_kwargs) -> Workflow:
        seed = self.seed(index)
        kind = self._input(seed)
        params = self.params(seed)
        sample = generate(params, seed=seed)
        # what a user who knows the material says: which sublattice is the brighter one
        workflow_kwargs.setdefault("brighter_sublattice", params.brighter_sublattice)
        if kind == "image":
            return Workflow.from_sample(sample, **workflow_kwargs)
        found = Workflow(sample.image, pixel_size_pm=sample.truth.pixel_size_pm,  # as a user would find them
                         brighter_sublattice=workflow_kwargs["brighter_sublattice"]).lattice
        keep = found.sublattice == "A" if kind == "a_positions" else slice(None)
        sublattice = None if kind == "a_positions" else found.sublattice
        return Workflow(positions=found.xy[keep], sublattice=sublattice, truth=sample.truth, **workflow_kwargs)


@dataclass(frozen=True)
class FileImages(ImageSet):
    """Image files (any format :func:`~ferrogym.workflows.io.load_image` reads), in order."""

    paths: tuple[Path, ...]

    def __post_init__(self):
        if not self.paths:
            raise InputError("FileImages needs at least one file")
        missing = [str(p) for p in self.paths if not Path(p).is_file()]
        if missing:
            raise InputError(f"image file(s) not found: {missing}")

    def __len__(self) -> int:
        return len(self.paths)

    def name(self, index: int) -> str:
        return str(self.paths[self._check(index)])

    def workflow(self, index: int, **workflow_kwargs) -> Workflow:
        return Workflow(load_image(self.paths[self._check(index)]), **workflow_kwargs)


@dataclass(frozen=True)
class SimulatedImages(FileImages):
    """Truth files (:mod:`.truthfile`): each image with its ground truth, named by its path."""

    def workflow(self, index: int, **workflow_kwargs) -> Workflow:
        data = load_truth(self.paths[self._check(index)])
        return Workflow(data.image, truth=data.truth, **workflow_kwargs)


@dataclass(frozen=True)
class PositionFiles(FileImages):
    """Files of atom positions (``x, y[, sublattice]``), analysed without an image."""

    def workflow(self, index: int, **workflow_kwargs) -> Workflow:
        return Workflow(positions=load_positions(self.paths[self._check(index)]), **workflow_kwargs)


class SingleImage(ImageSet):
    """An image set of one image, named ``name``; subclasses say how its workflow is built."""

    def __init__(self, name: str):
        self._name = name

    def __len__(self) -> int:
        return 1

    def name(self, index: int) -> str:
        self._check(index)
        return self._name


class ArrayImage(SingleImage):
    """One image array and/or one set of positions given in memory."""

    def __init__(self, image=None, *, positions=None, sublattice=None, name: str = "array"):
        super().__init__(name)
        # Build once so bad input fails here, with the Workflow's message.
        Workflow(image, positions=positions, sublattice=sublattice)
        self.image, self.positions, self.sublattice = image, positions, sublattice

    def workflow(self, index: int, **workflow_kwargs) -> Workflow:
        self._check(index)
        return Workflow(self.image, positions=self.positions, sublattice=self.sublattice, **workflow_kwargs)


def as_image_set(images=None, *, positions=None, sublattice=None) -> ImageSet:
    """Any accepted description of images as an :class:`ImageSet`.

    ``images``: an ImageSet, a SPEC string (see module docs), a path, a list of paths, or a 2-D
    array; ``positions`` (an array, or a path or list of paths of position files) with optional
    ``sublattice`` analyses positions, with ``images`` as the matching array if given.
    """
    if isinstance(images, ImageSet):
        return images
    if positions is not None:
        if isinstance(positions, (str, Path)) or _is_path_list(positions):
            if images is not None:
                raise InputError("positions given as files cannot be combined with images; give arrays")
            return PositionFiles(tuple(_expand_paths(positions)))
        return ArrayImage(images, positions=positions, sublattice=sublattice)
    if images is None:
        raise InputError("no images given: pass a SPEC such as 'synthetic:0-99', files, or an array")
    if isinstance(images, str):
        return parse_images(images)
    if isinstance(images, Path) or _is_path_list(images):
        return FileImages(tuple(_expand_paths(images)))
    return ArrayImage(np.asarray(images))


def parse_images(spec: str) -> ImageSet:
    """An ImageSet from a SPEC string (see module docs)."""
    spec = spec.strip()
    if spec.startswith("synthetic"):
        return _parse_synthetic(spec)
    if spec.startswith("simulated:"):
        return _parse_simulated(spec)
    return FileImages(tuple(_expand_paths(spec)))


def _parse_synthetic(spec: str) -> SyntheticImages:
    head, *options = spec.split(",")
    _, _, seeds = head.partition(":")
    try:
        first, _, last = seeds.partition("-")
        first, last = int(first), int(last or first)
    except ValueError:
        raise InputError(f"image SPEC {spec!r}: write the seeds as synthetic:A-B (e.g. synthetic:0-7)") from None
    fixed, ranges, choices = {}, {}, {}
    for option in options:
        key, equals, value = option.partition("=")
        if not equals:
            raise InputError(f"image SPEC {spec!r}: {option!r} is not field=value")
        key = key.strip()
        if key in _PSEUDO_FIELDS:
            choices[key] = FAMILIES if key == "family" and value.strip() == "any" else tuple(
                v.strip() for v in value.split("|"))
        elif "|" in value:
            choices[key] = tuple(_value(v.strip(), spec) for v in value.split("|"))
        elif ":" in value:
            low, _, high = value.partition(":")
            ranges[key] = (_number(low, spec), _number(high, spec))
        else:
            fixed[key] = _value(value.strip(), spec)
    return SyntheticImages(first, last, fixed, ranges, choices)


def _parse_simulated(spec: str) -> SimulatedImages:
    where = spec.removeprefix("simulated:").strip()
    if not where:
        raise InputError(f"image SPEC {spec!r}: name a folder of truth files, e.g. simulated:tests/data/simulated")
    if Path(where).is_dir():
        paths = sorted(Path(where).glob("*.npz"))
        if not paths:
            raise InputError(f"image SPEC {spec!r}: folder {where!r} holds no truth files (*.npz)")
        return SimulatedImages(tuple(paths))
    return SimulatedImages(tuple(_expand_paths(where)))


def _value(text: str, spec: str):
    if "x" in text and all(part.isdigit() for part in text.split("x")):
        return tuple(int(part) for part in text.split("x"))
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _number(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(f"image SPEC {spec!r}: {text!r} in a range low:high is not a number") from None


def _is_path_list(value) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and all(
        isinstance(v, (str, Path)) for v in value
    ) and len(value) > 0


def _expand_paths(paths) -> list[Path]:
    """Paths from a path, a list, or a comma-separated string of paths and glob patterns."""
    items = paths.split(",") if isinstance(paths, str) else [paths] if isinstance(paths, Path) else list(paths)
    result = []
    for item in items:
        item = str(item).strip()
        matches = sorted(glob.glob(item)) if any(c in item for c in "*?[") else [item]
        if not matches:
            raise InputError(f"no file matches {item!r}")
        result.extend(Path(m) for m in matches)
    return result
