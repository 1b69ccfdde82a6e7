"""The order parameter: one physical ruler per image on which every segmentation is judged.

A ferroic domain wall is a step in an order parameter: inside a domain the polarization or the
local structure is nearly uniform, across a wall it jumps by much more than it fluctuates
inside either domain. A phase boundary is the same kind of step in local structure or column
intensity. To judge segmentations by that, the order parameter must not depend on the
configuration being judged (its descriptor, window, clustering): it is measured once per image,
on the cell sites walls are drawn on (B sites, or A sites without B).

Kinds (:data:`ORDER_KINDS`), each a set of columns per cell site, NaN where undefined:

- ``"displacement"``: ``b_displacement / a`` (x, y): the polar order parameter (its negative
  is the polarization). Needs B sites.
- ``"intensity"``: on B sites, ``log(B peak / mean peak of its A cage)``; without B sites,
  ``log(A peak)``. A ratio of neighbouring columns, so thickness and brightness gradients,
  which scale all columns alike, cancel; a change of chemistry (a second perovskite) does not.
  Needs fitted peaks (an image).
- ``"lattice"``: the local cell (two lengths in ``a``, shear, rotation): strain and rotation
  of the lattice, the only order parameter of one sublattice's positions.
- ``"auto"`` (default): displacement and intensity where B sites exist (intensity only with an
  image), else lattice and intensity.

Every column is divided by its *neighbour noise*, the median absolute difference between
bonded cell sites over the whole image, so one unit is a typical step between neighbours
whatever the column measures. A column that never changes between neighbours (exact positions
of a perfect lattice) is dropped; with no column left, nothing steps anywhere and the order
rewards are 0.

The *contrast* of a bond is the length of the order-parameter difference across it, divided by
the median of that length over all bonds of the same orientation: about 1 between neighbours
inside a domain, and also across a smooth ramp (a gradient raises every bond of its direction
alike), far above 1 across a real step.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .lattice import LOCAL_LATTICE_FIELDS, AtomLattice

ORDER_KINDS = ("auto", "displacement", "intensity", "lattice")
#: Bond orientations are binned in this many sectors of 180 degrees, centred on the lattice axes.
ORIENTATION_SECTORS = 4
#: A sector needs this many bonds for its own median; fewer use the median of all bonds.
MIN_SECTOR_BONDS = 16
#: Relative floor of the noise scales, for exact (noise-free) input.
EXACT = 1e-6
#: Labels whose mean column-intensity ratio differs by more than this (in neighbour-noise
#: units) belong to different phases; variants of one phase share their chemistry.
PHASE_STEP = 1.5


@dataclass(frozen=True)
class OrderParameter:
    """An order parameter on the cell sites, scaled to its neighbour noise.

    Attributes
    ----------
    values : (M, d) float, per cell site, in units of the neighbour noise; NaN where undefined.
    names : the d column names.
    orientation_deg : direction of the lattice's first axis (bond sectors are centred on it).
    sector_scale : (ORIENTATION_SECTORS,) median difference length across bonds of each sector.
    column_scale : (d,) the neighbour noise each column was divided by (``raw = values *
        column_scale``: displacements in lattice constants), or None where not recorded.
    """

    values: np.ndarray
    names: tuple[str, ...]
    orientation_deg: float
    sector_scale: np.ndarray
    column_scale: np.ndarray | None = None

    def contrast(self, xy: np.ndarray, bonds: np.ndarray) -> np.ndarray:
        """(E,) contrast of each bond (index pairs into the cell sites); NaN where undefined."""
        sectors = bond_sectors(xy, bonds, self.orientation_deg)
        return _difference_length(self.values, bonds) / self.sector_scale[sectors]


def bond_sectors(xy: np.ndarray, bonds: np.ndarray, orientation_deg: float) -> np.ndarray:
    """Orientation sector (0 .. ORIENTATION_SECTORS - 1) of each bond, sector 0 along the first lattice axis."""
    d = xy[bonds[:, 1]] - xy[bonds[:, 0]]
    angle = (np.degrees(np.arctan2(d[:, 1], d[:, 0])) - orientation_deg) % 180.0
    return np.round(angle / (180.0 / ORIENTATION_SECTORS)).astype(int) % ORIENTATION_SECTORS


def order_columns(lattice: AtomLattice, kind: str = "auto") -> tuple[np.ndarray, tuple[str, ...]]:
    """The raw (unscaled) order-parameter columns of ``kind`` on the cell sites, with names."""
    if kind not in ORDER_KINDS:
        raise InputError(f"order parameter {kind!r} is unknown; use one of {ORDER_KINDS}")
    has_peaks = bool(np.isfinite(lattice.amplitude).any())
    if kind == "auto":
        parts = ["displacement"] if lattice.has_b_sites else ["lattice"]
        parts += ["intensity"] if has_peaks else []
    else:
        parts = [kind]
    columns, names = [], []
    for part in parts:
        values, part_names = _COLUMNS[part](lattice)
        columns.append(values)
        names += part_names
    return np.column_stack(columns), tuple(names)


def measure_order(lattice: AtomLattice, bonds: np.ndarray, kind: str = "auto") -> OrderParameter:
    """The order parameter of ``kind`` on the cell sites, scaled by its noise over ``bonds``.

    ``bonds``: index pairs of neighbouring cell sites (all of them, whatever any labels say).
    """
    raw, names = order_columns(lattice, kind)
    return scale_order(raw, names, lattice.xy[lattice.cell_sites], bonds, lattice.orientation_deg)


def scale_order(raw: np.ndarray, names, xy: np.ndarray, bonds: np.ndarray, orientation_deg: float) -> OrderParameter:
    """An :class:`OrderParameter` from raw columns (M, d) on sites ``xy`` bonded by ``bonds``:
    each column divided by its neighbour noise, the contrast scale measured per bond sector."""
    raw = np.asarray(raw, dtype=float).reshape(len(xy), -1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (no peaks, no cages)
        differences = np.abs(raw[bonds[:, 0]] - raw[bonds[:, 1]])
        noise = np.nanmedian(differences, axis=0) if len(bonds) else np.full(raw.shape[1], np.nan)
        size = np.nanmax(np.abs(raw), axis=0) if len(raw) else np.full(raw.shape[1], np.nan)
        varies = np.isfinite(noise) & np.isfinite(size) & (np.nanmax(differences, axis=0, initial=0.0) > 0)
    noise = np.maximum(noise, EXACT * size)  # exact positions: steps still count, sameness is 0
    values = raw[:, varies] / noise[varies]
    lengths = _difference_length(values, bonds)
    sectors = bond_sectors(xy, bonds, orientation_deg)
    overall = np.nanmedian(lengths) if np.isfinite(lengths).any() else 1.0
    scale = np.array([
        np.nanmedian(lengths[sectors == s]) if np.isfinite(lengths[sectors == s]).sum() >= MIN_SECTOR_BONDS
        else overall
        for s in range(ORIENTATION_SECTORS)
    ])
    names = tuple(str(n) for n in np.asarray(names)[varies])
    return OrderParameter(values, names, float(orientation_deg), np.maximum(scale, EXACT), noise[varies])


def phases_of_labels(order: OrderParameter, labels: np.ndarray) -> dict[int, int] | None:
    """Which phase each label belongs to, from the column-intensity ratio of its cells.

    A phase boundary is a change of chemistry, so of the B/A peak ratio; variants of one phase
    differ in polarization only. Labels are sorted by their mean ratio and split wherever two
    neighbours in that order differ by more than :data:`PHASE_STEP`; phases are numbered by
    their number of cells, largest first. None when the order parameter has no intensity
    column (positions without an image): the workflow cannot tell phases then.
    """
    if "log_b_over_a" not in order.names:
        return None
    ratio = order.values[:, order.names.index("log_b_over_a")]
    known = (labels >= 0) & np.isfinite(ratio)
    present = np.unique(labels[known])
    if len(present) == 0:
        return {}
    means = np.array([ratio[known & (labels == k)].mean() for k in present])
    sizes = np.array([(known & (labels == k)).sum() for k in present])
    ranked = np.argsort(means)
    group = np.empty(len(present), dtype=int)
    group[ranked] = np.concatenate([[0], np.cumsum(np.diff(means[ranked]) > PHASE_STEP)])
    by_size = np.argsort(-np.bincount(group, weights=sizes), kind="stable")
    phase_id = np.empty_like(by_size)
    phase_id[by_size] = np.arange(len(by_size))
    return {int(k): int(phase_id[g]) for k, g in zip(present, group)}


def _difference_length(values: np.ndarray, bonds: np.ndarray) -> np.ndarray:
    """Euclidean length of the order-parameter difference across each bond (NaN if undefined)."""
    return np.linalg.norm(values[bonds[:, 0]] - values[bonds[:, 1]], axis=1)


def _displacement(lattice: AtomLattice) -> tuple[np.ndarray, list[str]]:
    if not lattice.has_b_sites:
        raise InputError("the 'displacement' order parameter needs B sites; use 'lattice' or 'auto'")
    return lattice.b_displacement[lattice.cell_sites] / lattice.lattice_constant_px, ["displacement_x", "displacement_y"]


def _intensity(lattice: AtomLattice) -> tuple[np.ndarray, list[str]]:
    if not np.isfinite(lattice.amplitude).any():
        raise InputError("the 'intensity' order parameter needs column peaks, i.e. an image")
    with np.errstate(all="ignore"):
        log_peak = np.log(np.where(lattice.amplitude > 0, lattice.amplitude, np.nan))
    cells = lattice.cell_sites
    if not lattice.has_b_sites:
        return log_peak[cells, None], ["log_peak"]
    cage = lattice.cage[cells]
    has_cage = (cage >= 0).all(axis=1)
    cage_mean = np.full(len(cells), np.nan)
    cage_mean[has_cage] = np.log(np.exp(log_peak[cage[has_cage]]).mean(axis=1))
    return (log_peak[cells] - cage_mean)[:, None], ["log_b_over_a"]


def _lattice(lattice: AtomLattice) -> tuple[np.ndarray, list[str]]:
    return lattice.local_lattice[lattice.cell_sites], list(LOCAL_LATTICE_FIELDS)


_COLUMNS = {"displacement": _displacement, "intensity": _intensity, "lattice": _lattice}
