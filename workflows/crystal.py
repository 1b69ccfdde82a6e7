"""Is this an atomic-resolution image of a perovskite-like crystal? What do its columns say?

Run after the columns are found and before any search, so that an image ferrogym cannot analyse
is refused in one line, in seconds, instead of after a search over noise:

- a lattice constant outside :data:`LATTICE_PM` (when the pixel size is known): no crystal has
  atomic columns 2 nm apart, so the "columns" are blobs, particles or noise, or the calibration
  is wrong;
- a lattice that is not square or rectangular (a perovskite along [001] or a [110]-type view):
  hexagonal (MoS2, graphene, close-packed metals along [111]) or oblique, with what was found;
- most cell sites undescribable: fewer than :data:`MIN_DESCRIBED` of those inside the field sit
  in a regular cell (B sites in a complete cage of A sites; A sites, without B, with four
  neighbours one per lattice direction), which is what columns found in noise or on an
  amorphous film look like.

:func:`describe_columns` gives the numbers these checks read (counts, lattice constant and
cell in px and pm, the B/A peak ratio, the shares described and covered), which the answer
of an analysis reports as its ``columns`` section.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .errors import InputError
from .lattice import AtomLattice
from .units import Calibration

#: Lattice constants (A-A nearest distance) of real crystals' projected columns, in pm: the
#: smallest perovskite-like cells are about 370 pm (a [110]-type view shows about 280 pm between
#: columns of one kind), the largest oxide cells along a simple axis under 1 nm.
LATTICE_PM = (150.0, 1000.0)
#: An analysis needs at least this share of the cell sites in a regular cell.
MIN_DESCRIBED = 0.5
#: Bond angles (degrees, folded to 0-90) and side ratios that name a lattice.
SQUARE_ANGLE, HEXAGONAL_ANGLES, EQUAL_SIDES = 75.0, (50.0, 70.0), 1.15
#: The lattice is named only where its sites agree: interquartile range of the angle, degrees.
REGULAR_SPREAD = 12.0
#: Below this share of the image covered by the columns' cells, the summary warns of vacuum.
MIN_COVERAGE = 0.5


class NotACrystalImage(InputError):
    """The input is not an atomic-resolution image of a perovskite-like crystal (see module)."""


@dataclass(frozen=True)
class CellGeometry:
    """The two shortest independent bonds of a sublattice, medians over its sites.

    Attributes
    ----------
    short_px, long_px : lengths of the nearest bond and of the nearest bond at least 30 degrees
        away from it.
    angle_deg : angle between the two bond lines, folded to [0, 90] (90: square or rectangular,
        60: hexagonal).
    angle_spread_deg : interquartile range of that angle over the sites.
    symmetry : ``square``, ``rectangular``, ``hexagonal``, ``oblique``, or ``irregular`` when the
        sites disagree (spread above :data:`REGULAR_SPREAD`).
    """

    short_px: float
    long_px: float
    angle_deg: float
    angle_spread_deg: float
    symmetry: str


def cell_geometry(xy: np.ndarray) -> CellGeometry:
    """The cell of one sublattice's positions (see :class:`CellGeometry`)."""
    k = min(9, len(xy))
    if k < 3:
        return CellGeometry(np.nan, np.nan, np.nan, np.nan, "irregular")
    distance, index = cKDTree(xy).query(xy, k=k)
    bonds = xy[index[:, 1:]] - xy[:, None, :]
    first = bonds[:, 0]
    cosine = np.abs((bonds * first[:, None]).sum(axis=2)) / np.maximum(distance[:, 1:] * distance[:, 1:2], 1e-12)
    turned = cosine < np.cos(np.radians(30.0))  # the first bond at least 30 degrees off the first
    has_second = turned.any(axis=1) & (distance[:, 1] > 0)
    if not has_second.any():
        return CellGeometry(float(np.median(distance[:, 1])), np.nan, np.nan, np.nan, "irregular")
    second = np.argmax(turned, axis=1)[has_second]
    rows = np.flatnonzero(has_second)
    angle = np.degrees(np.arccos(np.clip(cosine[rows, second], 0.0, 1.0)))
    short, long = distance[rows, 1], distance[rows, second + 1]
    q1, q3 = np.percentile(angle, [25, 75])
    median_angle, ratio = float(np.median(angle)), float(np.median(long / short))
    if q3 - q1 > REGULAR_SPREAD:
        symmetry = "irregular"
    elif median_angle >= SQUARE_ANGLE:
        symmetry = "square" if ratio < EQUAL_SIDES else "rectangular"
    elif HEXAGONAL_ANGLES[0] <= median_angle <= HEXAGONAL_ANGLES[1] and ratio < EQUAL_SIDES:
        symmetry = "hexagonal"
    else:
        symmetry = "oblique"
    return CellGeometry(float(np.median(short)), float(np.median(long)), median_angle, float(q3 - q1), symmetry)


def described_share(lattice: AtomLattice) -> float:
    """Share of the surrounded cell sites in a regular cell: B sites with a complete cage, or
    (without B) A sites whose local cell is defined.

    Only sites with columns on every side count (:func:`surrounded`): a site on the edge of the
    field has no complete cell however good the image, and on a small field the edge is a large
    share of the sites.
    """
    cells = lattice.cell_sites
    inner = cells[surrounded(lattice.xy, cells, lattice.lattice_constant_px)]
    if len(inner) == 0:
        return 0.0
    if lattice.has_b_sites:
        return float((lattice.cage[inner] >= 0).all(axis=1).mean())
    return float(np.isfinite(lattice.local_lattice[inner]).all(axis=1).mean())


def surrounded(xy: np.ndarray, sites: np.ndarray, a: float) -> np.ndarray:
    """Boolean per site: whether the other columns within 1.2 a of it leave no gap of 150 degrees
    or more around it (a site inside the field has neighbours on every side; one on its edge
    leaves a half-plane empty)."""
    tree = cKDTree(xy)
    result = np.zeros(len(sites), dtype=bool)
    for k, neighbours in enumerate(tree.query_ball_point(xy[sites], 1.2 * a)):
        offsets = xy[neighbours] - xy[sites[k]]
        offsets = offsets[np.hypot(*offsets.T) > 0.3 * a]
        if len(offsets) < 3:
            continue
        angles = np.sort(np.degrees(np.arctan2(offsets[:, 1], offsets[:, 0])))
        gaps = np.diff(np.concatenate([angles, angles[:1] + 360.0]))
        result[k] = gaps.max() < 150.0
    return result


def b_over_a_peak(lattice: AtomLattice) -> float | None:
    """Median over B sites with a cage of the B peak over the mean peak of its A cage; None
    without fitted peaks or cages."""
    if not lattice.has_b_sites or not np.isfinite(lattice.amplitude).any():
        return None
    cage = lattice.cage
    caged = np.flatnonzero((lattice.sublattice == "B") & (cage >= 0).all(axis=1))
    if len(caged) == 0:
        return None
    ratio = lattice.amplitude[caged] / lattice.amplitude[cage[caged]].mean(axis=1)
    ratio = ratio[np.isfinite(ratio)]
    return float(np.median(ratio)) if len(ratio) else None


def describe_columns(lattice: AtomLattice, calibration: Calibration, image_shape: tuple[int, int] | None = None,
                     missing_b_xy: np.ndarray | None = None) -> dict:
    """The ``columns`` section of an analysis: what the lattice tells before any search.

    Parameters
    ----------
    lattice : the measured columns.
    calibration : the image's pixel size, for lengths in pm.
    image_shape : (rows, columns) of the image, for the share of it the columns cover; None
        for positions without an image.
    missing_b_xy : (M, 2) (x, y) B sites the lattice predicts but no column holds, where the
        column finder knows them; None when it does not.

    Returns
    -------
    dict
        ``A``, ``B`` (counts), ``sublattices`` (1 or 2), ``lattice_constant`` and ``cell``
        (``short``, ``long`` in px and pm, ``angle_deg``, ``symmetry``) of the A sublattice,
        ``b_over_a_peak`` (median per B site over its A cage, or None), ``described`` (share of
        cell sites in a regular cell), ``coverage`` (share of the image inside the A cells, or
        None), and ``missing_b`` (count, or None when unknown).
    """
    a_sites = lattice.site_indices("A")
    geometry = cell_geometry(lattice.xy[a_sites])
    coverage = None
    if image_shape is not None:
        coverage = round(min(1.0, len(a_sites) * lattice.cell_area_px / float(np.prod(image_shape))), 3)
    ratio = b_over_a_peak(lattice)
    return {
        "A": int(len(a_sites)),
        "B": int((lattice.sublattice == "B").sum()),
        "sublattices": 2 if lattice.has_b_sites else 1,
        "lattice_constant": calibration.length(lattice.lattice_constant_px),
        "cell": {"short": calibration.length(geometry.short_px), "long": calibration.length(geometry.long_px),
                 "angle_deg": None if not np.isfinite(geometry.angle_deg) else round(geometry.angle_deg, 1),
                 "symmetry": geometry.symmetry},
        "b_over_a_peak": None if ratio is None else round(ratio, 3),
        "described": round(described_share(lattice), 3),
        "coverage": coverage,
        "missing_b": None if missing_b_xy is None else int(len(missing_b_xy)),
    }


def found_line(columns: dict, calibration: Calibration, seconds: float | None = None) -> str:
    """One line of what the column finding found, for the terminal."""
    parts = [f"found {columns['A'] + columns['B']} columns (A {columns['A']}, B {columns['B']})",
             f"a = {Calibration.length_text(columns['lattice_constant'])}", f"{columns['cell']['symmetry']} cell"]
    if columns["b_over_a_peak"] is not None:
        parts.append(f"B/A peak {columns['b_over_a_peak']:.2f}")
    if not calibration.known:
        parts.append("pixel size unknown: lengths in px")
    if seconds is not None:
        parts.append(f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.0f} s")
    return ", ".join(parts)


def check_crystal(columns: dict, calibration: Calibration, source: str = "the image") -> list[str]:
    """Refuse (raise :class:`NotACrystalImage`) what ferrogym cannot analyse; return warnings.

    ``columns`` is :func:`describe_columns`'s section. The message is one line: what was found,
    why it is refused, what to do.
    """
    one = " of one sublattice" if columns["sublattices"] == 1 else ""
    a = columns["lattice_constant"]
    found = f"{source}: found {columns['A'] + columns['B']} columns{one} with a = {Calibration.length_text(a)}"
    low, high = LATTICE_PM
    if a["pm"] is not None and not low <= a["pm"] <= high:
        raise NotACrystalImage(
            f"{found}, outside the {low:.0f}-{high:.0f} pm of atomic columns in crystals: this is not an "
            "atomic-resolution image of a crystal (unresolved particles, blobs or noise), or its pixel size "
            f"({calibration.pixel_size_pm:.4g} pm) is wrong. Give an atomically resolved image, or the right "
            "pixel size (--pixel-size-pm)")
    symmetry = columns["cell"]["symmetry"]
    if symmetry in ("hexagonal", "oblique"):
        raise NotACrystalImage(
            f"{found}, on a {symmetry} lattice ({columns['cell']['angle_deg']:.0f} degrees between its "
            "bonds): not perovskite-like. ferrogym analyses perovskites along [001] (square cells) or "
            "[110]-type axes (rectangular cells); tilt the crystal to such an axis")
    if columns["described"] < MIN_DESCRIBED:
        what = (f"of its {columns['B']} B sites sit in a complete cage of A columns" if columns["B"]
                else f"of its {columns['A']} columns sit in a regular cell")
        raise NotACrystalImage(
            f"{found}, but only {100 * columns['described']:.0f} % {what} (at least {100 * MIN_DESCRIBED:.0f} % "
            "are needed): most sites cannot be described, as for columns found in noise, an amorphous film or "
            "unresolved particles. Give an atomically resolved crystal image, or leave the rest out with "
            "--region or --mask")
    warnings = []
    if columns["sublattices"] == 1:
        seen = ("one sublattice visible (every column is called A)" if columns["coverage"] is not None
                else "positions of one sublattice (every column is called A)")
        warnings.append(f"{seen}: no B-site displacements; the domains are judged on the A lattice"
                        + (" and its column intensities" if columns["coverage"] is not None else ""))
    if columns["coverage"] is not None and columns["coverage"] < MIN_COVERAGE:
        warnings.append(f"the columns cover only {100 * columns['coverage']:.0f} % of the image (vacuum, "
                        "amorphous or damaged regions?); leave the rest out with --region or --mask")
    return warnings
