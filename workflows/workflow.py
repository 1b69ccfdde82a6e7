"""The per-image workflow: atoms -> descriptor -> reduction -> clustering -> walls -> reward.

:class:`Workflow` holds one image (or one set of positions) and caches every expensive stage:
the atoms once, descriptors per kind and window in pixels, reductions per descriptor and
reduction, and labels per full canonical configuration, each cache bounded in bytes. :meth:`Workflow.evaluate` returns an
:class:`Evaluation`: the segmentation, its reward with components and, when the image has
ground truth, the truth metrics.

A configuration that cannot produce a segmentation (a patch descriptor without an image, a
mixture with more parameters than sites...) is not an error: it yields an empty segmentation,
reward 0 and the reason in :attr:`Evaluation.reason`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from cachetools import LRUCache

from .atoms import Columns
from .census import Census, take_census
from .clustering import DegenerateClustering, cluster, reduce
from .descriptors import NEEDS, DescriptorUnavailable, Features, compute_descriptor, describable, window_pixels
from .detection import find_columns
from .errors import InputError
from .io import ImageData, PositionsData, load_image, load_positions, validate_image, validate_positions
from .lattice import AtomLattice, check_brighter, lattice_from_columns, lattice_from_positions
from .metrics import match_positions, variant_ari, wall_f1
from .order import OrderParameter, measure_order
from .periodicity import MIN_CELLS_ACROSS, too_few_cells
from .region import extent_of, region_mask, within
from .rewards import DEFAULT_REWARD, RewardFn, as_reward_result, get_reward
from .space import CLUSTERING_STAGE, SEARCH_SPACE, SearchSpace, get_space
from .synthetic import GroundTruth, SyntheticSample
from .walls import Segmentation

#: Bytes each cache of a workflow may hold: descriptor features (a 2.5 x 2.5 a patch on every atom
#: of a 2048 x 2048 frame at 18 px per a is 190 MB), reductions, labels. Long runs over many
#: configurations stay bounded; the envs bound the number of images kept. The features' bound
#: holds one such patch set and a few smaller ones: at 512 MB a search on a 2048 x 2048 frame
#: peaked at 1.3-1.5 GB, most of it cached patches, against 1 GB wanted for the whole workflow.
CACHE_BYTES = (256 * 2**20, 64 * 2**20, 64 * 2**20)


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one configuration on one image.

    Attributes
    ----------
    config : canonical configuration (inactive parameters at their defaults).
    config_px : the same in human units: windows in pixels, plus the lattice constant.
    atom_labels : (N,) label per atom of the lattice, -1 where not described.
    segmentation : labels on the cell sublattice (B, or A without B sites) with its walls.
    reward : value of the workflow's reward, in [0, 1] for the built-in rewards.
    components : the reward's components.
    metrics : truth metrics (``ari``, ``assigned``, ``wall_f1``) when truth is known, else {}.
    reason : why the segmentation is empty, or None.
    """

    config: dict[str, Any]
    config_px: dict[str, Any]
    atom_labels: np.ndarray
    segmentation: Segmentation
    reward: float
    components: dict[str, float]
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str | None = None


class Workflow:
    """One image's analysis, with cached stages.

    Parameters
    ----------
    image : 2-D array or :class:`ImageData`, or None when ``positions`` are given.
    positions : (N, 2) (x, y) array or :class:`PositionsData` of atom columns a user already
        has; detection is skipped. With an image too, patches are sampled at these positions.
    sublattice : (N,) "A"/"B" for ``positions`` given as an array (see
        :func:`~ferrogym.workflows.lattice.lattice_from_positions` for why it matters).
    truth : ground truth of a synthetic image, enabling :attr:`Evaluation.metrics`.
    pixel_size_pm : the image's sampling in picometres; default: the calibration of an
        :class:`ImageData`, else the truth's, else None (unknown: lengths stay in pixels).
    brighter_sublattice : which sublattice the image's brighter columns are: "A" (default: Bi,
        Pb, Ba, Sr beside Fe, Ti) or "B" (SrRuO3, where Ru outshines Sr; in a stack of layers
        of both orders, the order of the one that dominates the field). Brightness is the only
        thing that names the sublattices of an [001] view; see
        :func:`~ferrogym.workflows.lattice.split_sublattices`.
    region : where columns are analysed, for an image: a box ``(x0, y0, x1, y1)`` in pixels, a
        boolean mask of the image's shape or a mask file (:mod:`~ferrogym.workflows.region`);
        columns found outside are dropped. None: the whole image.
    reward : registered name, ``"module:function"`` or callable.
    order_parameter : kind of the image's order parameter the rewards judge walls on
        (:data:`~ferrogym.workflows.order.ORDER_KINDS`).
    space : the search space configurations are validated against, or its name
        (:data:`~ferrogym.workflows.space.SPACES`: ``descriptors``, ``vae``).
    seed : random state of the clustering.
    """

    def __init__(
        self,
        image: np.ndarray | ImageData | None = None,
        *,
        positions: np.ndarray | PositionsData | None = None,
        sublattice: np.ndarray | None = None,
        truth: GroundTruth | None = None,
        pixel_size_pm: float | None = None,
        brighter_sublattice: str = "A",
        region=None,
        reward: str | RewardFn = DEFAULT_REWARD,
        order_parameter: str = "auto",
        space: str | SearchSpace = SEARCH_SPACE,
        seed: int = 0,
    ):
        if image is None and positions is None:
            raise InputError("Workflow needs an image, positions, or both; got neither")
        self.image = _as_image(image)
        self.positions = _as_positions(positions, sublattice)
        self.truth = truth
        self.pixel_size_pm = _pixel_size(pixel_size_pm, image, truth)
        self.brighter_sublattice = check_brighter(brighter_sublattice)
        if region is not None and self.image is None:
            raise InputError("a region (--region, --mask) selects columns of an image; positions without an image "
                             "take none: give the positions inside the region instead")
        self.region = None if region is None else region_mask(region, self.image.shape)
        self.reward_fn = get_reward(reward)
        self.order_parameter = order_parameter
        self.space = get_space(space)
        self.seed = seed
        self._features, self._reduced, self._labels = _new_caches()
        self._last: Evaluation | None = None  # a repeated configuration (a searcher telling an env) is free

    @classmethod
    def from_sample(cls, sample: SyntheticSample, **kwargs) -> Workflow:
        """Workflow on a synthetic image, with its ground truth."""
        return cls(sample.image, truth=sample.truth, **kwargs)

    @classmethod
    def from_file(cls, path, **kwargs) -> Workflow:
        """Workflow on an image file (any format :func:`load_image` reads)."""
        return cls(load_image(path), **kwargs)

    @classmethod
    def from_positions_file(cls, path, **kwargs) -> Workflow:
        """Workflow on a positions file (.npy, .csv, .txt) without an image."""
        return cls(positions=load_positions(path), **kwargs)

    def without_caches(self, space: str | SearchSpace | None = None) -> Workflow:
        """A copy that shares the measured atoms (and truth) but no descriptor, reduction or label
        cache, so that one search's timings do not profit from another search's evaluations;
        with ``space``, the copy searches that space instead."""
        copy = object.__new__(Workflow)
        copy.__dict__.update(self.__dict__)
        copy._features, copy._reduced, copy._labels = _new_caches()
        copy._last = None
        if space is not None:
            copy.space = get_space(space)
            copy.__dict__.pop("_descriptor_params", None)
        return copy

    @cached_property
    def columns(self) -> Columns | None:
        """The image's atom columns as found (:func:`~.detection.find_columns`), inside the region
        when there is one, once; None for positions, whose columns were found elsewhere."""
        if self.positions is not None:
            return None
        columns = find_columns(self.image, self.pixel_size_pm)
        return columns if self.region is None else within(columns, self.region)

    @cached_property
    def census(self) -> Census | None:
        """How many A and B columns were found, and where B sites are empty (:mod:`.census`);
        None for positions."""
        if self.columns is None:
            return None
        return take_census(self.lattice, self.columns, self.image.shape)

    @cached_property
    def lattice(self) -> AtomLattice:
        """Atoms with sublattices and lattice geometry, measured once."""
        if self.positions is not None:
            lattice = lattice_from_positions(self.positions.xy, self.positions.sublattice)
            extent = np.ptp(self.positions.xy, axis=0)
            what = "the positions span"
        else:
            lattice = lattice_from_columns(self.columns, self.brighter_sublattice)
            extent = np.array(self.image.shape[::-1]) - 1 if self.region is None else extent_of(self.region)
            what = "the image spans" if self.region is None else "the region spans"
        cells = extent / lattice.lattice_constant_px
        if cells.min() < MIN_CELLS_ACROSS:
            raise too_few_cells(what, cells.min(), lattice.lattice_constant_px)
        return lattice

    @cached_property
    def describable_space(self) -> SearchSpace:
        """The part of :attr:`space` this input can describe, which searchers search: positions
        alone give no image patches, A sites alone no B-site displacements, and an evaluation
        spent on a descriptor the input lacks can only fail. The whole space where every
        descriptor applies (any image with B sites); an env's action space stays the whole one.
        Raises InputError where no descriptor of the space applies."""
        has = {"image"} if self.image is not None else set()
        if self.lattice.has_b_sites:
            has.add("b_sites")
        grid = self.space["descriptor"].grid
        usable = tuple(name for name in grid if describable(name, has))
        if not usable:
            needs = sorted(set().union(*(NEEDS.get(name, ()) for name in grid)) - has)
            raise InputError(f"no descriptor of the {self.space.name!r} space can describe this input: "
                             f"they need {' and '.join(needs)}, which it lacks")
        return self.space.restricted({"descriptor": usable})

    @cached_property
    def order(self) -> OrderParameter:
        """The image's order parameter on the cell sites, measured once (see ``order_parameter``)."""
        lattice = self.lattice
        everything = self._on_cells(np.zeros(len(lattice.cell_sites), dtype=int), with_order=False)
        return measure_order(lattice, everything.bonds, self.order_parameter)

    @cached_property
    def truth_variant(self) -> np.ndarray | None:
        """True variant per lattice atom (-1 where no true atom matches), or None."""
        if self.truth is None:
            return None
        tolerance = 0.5 * self.lattice.lattice_constant_px / np.sqrt(2)
        detected, true = match_positions(self.lattice.xy, self.truth.xy, tolerance)
        variant = np.full(len(self.lattice.xy), -1)
        variant[detected] = self.truth.variant[true]
        return variant

    def features(self, config: Mapping[str, Any]) -> Features:
        """The (cached) descriptor of a canonical configuration; raises DescriptorUnavailable."""
        key = self._descriptor_key(config)
        result = self._features.get(key)
        if result is None:
            try:
                params = {name: config[name] for name in self._descriptor_params}
                result = compute_descriptor(config["descriptor"], self.image, self.lattice, seed=self.seed, **params)
            except DescriptorUnavailable as error:
                result = error
            _remember(self._features, key, result)
        if isinstance(result, DescriptorUnavailable):
            raise result
        return result

    def labels(self, config: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """The sites described and their canonical cluster labels, for a configuration (cached).

        The reduction is cached with its sites, so a new clustering of a cached reduction (most
        steps of a search) does not need the descriptor again: on a full frame the descriptor of
        every atom's patches is hundreds of MB, more than its cache keeps, and seconds to redo.
        Raises DescriptorUnavailable or DegenerateClustering.
        """
        config = self.space.canonical(config)
        key = tuple(config.items())
        result = self._labels.get(key)
        if result is None:
            reduced_key = (*self._descriptor_key(config), config["reduction"], config["n_components"])
            try:
                reduced = self._reduced.get(reduced_key)
                if reduced is None:
                    features = self.features(config)
                    reduced = (features.sites, reduce(features.values, config["reduction"], config["n_components"],
                                                      self.seed))
                    _remember(self._reduced, reduced_key, reduced)
                sites, values = reduced
                result = (sites, cluster(values, config["clustering"], config["n_clusters"], config["covariance"],
                                         self.seed))
            except DegenerateClustering as error:
                result = error
            _remember(self._labels, key, result)
        if isinstance(result, DegenerateClustering):
            raise result
        return result

    def evaluate(self, config: Mapping[str, Any] | None = None) -> Evaluation:
        """Run one configuration (default: the space's defaults) and score it."""
        config = self.space.canonical(config or {})
        if self._last is not None and self._last.config == config:
            return self._last
        atom_labels = np.full(len(self.lattice.xy), -1)
        reason = None
        try:
            sites, labels = self.labels(config)
            atom_labels[sites] = labels
        except (DescriptorUnavailable, DegenerateClustering) as error:
            reason = str(error)
        segmentation = self.cell_segmentation(atom_labels)
        result = as_reward_result(self.reward_fn(segmentation), self.reward_fn)
        self._last = Evaluation(
            config=config,
            config_px=self.config_in_pixels(config),
            atom_labels=atom_labels,
            segmentation=segmentation,
            reward=float(result.value),
            components=dict(result.components),
            metrics=self.truth_metrics(segmentation),
            reason=reason,
        )
        return self._last

    def cell_segmentation(self, atom_labels: np.ndarray) -> Segmentation:
        """Labels moved onto the cell sublattice, where walls are measured.

        Labels on B sites stay; labels only on A sites are carried to each B site as the
        most common label of its cage (ties: the smaller label). Without B sites the A sites
        are the cells.
        """
        lattice = self.lattice
        cells = lattice.cell_sites
        labels = atom_labels[cells]
        if lattice.has_b_sites and (labels < 0).all():
            cage = lattice.cage[cells]
            has_cage = (cage >= 0).all(axis=1)
            labels = np.full(len(cells), -1)
            labels[has_cage] = _cage_majority(atom_labels[cage[has_cage]])
        return self._on_cells(labels)

    def _on_cells(self, labels: np.ndarray, with_order: bool = True) -> Segmentation:
        """A segmentation of the cell sites with these labels, bonded along both cell sides,
        carrying the image's order parameter."""
        lattice = self.lattice
        a = lattice.lattice_constant_px
        return Segmentation(lattice.xy[lattice.cell_sites], labels, a, long_spacing=lattice.cell_area_px / a,
                            order=self.order if with_order else None)

    @cached_property
    def truth_segmentation(self) -> Segmentation | None:
        """The true variants on the cell sites (-1 where unmatched), built once; None without truth."""
        if self.truth_variant is None:
            return None
        return self._on_cells(self.truth_variant[self.lattice.cell_sites])

    def truth_metrics(self, segmentation: Segmentation) -> dict[str, float]:
        """B-site ARI, the assigned share and wall F1 within one cell; {} without truth."""
        truth = self.truth_segmentation
        if truth is None:
            return {}
        ari, assigned = variant_ari(segmentation.labels, truth.labels)
        walls = wall_f1(segmentation.wall_points, truth.wall_points, segmentation.spacing)
        return {"ari": ari, "assigned": assigned, "wall_f1": walls}

    def config_in_pixels(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The configuration with windows converted to pixels, for people and logs."""
        a = self.lattice.lattice_constant_px
        human = dict(config)
        for param in self.space.params:
            if param.unit == "a" and param.is_active(config):
                human[param.name] = window_pixels(config[param.name], a)
        human["lattice_constant_px"] = round(a, 3)
        return human

    @cached_property
    def _descriptor_params(self) -> tuple[str, ...]:
        """The parameters the descriptor takes: all but its name and the clustering stage."""
        return tuple(name for name in self.space.names if name != "descriptor" and name not in CLUSTERING_STAGE)

    def _descriptor_key(self, config: Mapping[str, Any]) -> tuple:
        """What a descriptor depends on; windows in pixels, so two that round alike share it."""
        a = self.lattice.lattice_constant_px
        return (config["descriptor"], *(
            window_pixels(config[name], a) if self.space[name].unit == "a" else config[name]
            for name in self._descriptor_params
        ))


def _new_caches() -> tuple[LRUCache, LRUCache, LRUCache]:
    """Caches of descriptor features, reductions and labels, each bounded in bytes
    (:data:`CACHE_BYTES`), least recently used entries dropped first."""
    return tuple(LRUCache(limit, getsizeof=_nbytes) for limit in CACHE_BYTES)


def _nbytes(value) -> int:
    """Bytes of a cached array, tuple of arrays or :class:`Features`; 1 for a cached reason for
    failure."""
    if isinstance(value, tuple):
        return sum(_nbytes(part) for part in value)
    array = getattr(value, "values", value)
    return max(1, int(getattr(array, "nbytes", 1)))


def _remember(cache: LRUCache, key, value) -> None:
    """Cache ``value`` unless it alone exceeds the cache's bound (it is then recomputed when asked)."""
    if _nbytes(value) <= cache.maxsize:
        cache[key] = value


def _cage_majority(labels: np.ndarray) -> np.ndarray:
    """Most common non-negative label per row of (M, 4) labels, smallest on ties, -1 if none."""
    if labels.size == 0:
        return np.empty(0, dtype=int)
    width = labels.max() + 2
    counts = np.zeros((len(labels), width), dtype=int)
    np.add.at(counts, (np.repeat(np.arange(len(labels)), 4), labels.ravel() + 1), 1)
    counts[:, 0] = 0  # the -1 label never wins
    best = counts.argmax(axis=1) - 1
    return np.where(counts.max(axis=1) > 0, best, -1)


def _as_image(image) -> np.ndarray | None:
    if image is None:
        return None
    if isinstance(image, ImageData):
        return image.array
    return validate_image(image)


def _pixel_size(given, image, truth) -> float | None:
    """The pixel size in pm: as given, else the image file's calibration, else the truth's."""
    for size in (given, getattr(image, "pixel_size_pm", None), getattr(truth, "pixel_size_pm", None)):
        if size is not None:
            if not (np.isfinite(size) and size > 0):
                raise InputError(f"pixel_size_pm = {size!r}: must be a positive number of picometres, or None")
            return float(size)
    return None


def _as_positions(positions, sublattice) -> PositionsData | None:
    if positions is None:
        return None
    if isinstance(positions, PositionsData):
        return positions
    return validate_positions(positions, sublattice)
