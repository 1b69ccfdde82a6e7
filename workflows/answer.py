"""The answer of an analysis in physical terms: per column, per label, per wall, in px and pm.

An analysis ends with one segmentation of the cell sites (B sites, or A sites without B).
:class:`Answer` carries it to every column and gives what a microscopist reads off it:

- every column's label: a cell site its own; any other column (A sites when there are B sites)
  the label most of its cells carry, the cells being the B sites whose cage holds it (on the
  edge of the field, the nearest labelled cell's), so that filtering ``label >= 0`` keeps both
  sublattices of a domain. -1 (:data:`UNASSIGNED`) only where no labelled cell is near;
- every column's phase (labels of one chemistry are its variants), -1 where unknown;
- the B-site displacement ``b_displacement`` (B minus the centre of its A cage, DESIGN.md
  section 4; the polarization is its negative) per site and summarised per label;
- the walls: each segment's pair of labels, length and direction.

Lengths are in pm where the pixel size is known (:class:`~ferrogym.workflows.units.Calibration`)
and in px always.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from .lattice import AtomLattice
from .units import Calibration
from .walls import Segmentation

#: The label of a column no labelled cell touches, and the phase of a column without one.
UNASSIGNED = -1
#: A column in no labelled cage takes the nearest labelled cell site's label within this many
#: lattice constants (B sites are a / sqrt 2 from their A neighbours).
NEAREST_CELL = 0.8
#: Columns of ``segmentation.csv`` (see :meth:`Answer.write_csv`).
CSV_COLUMNS = ("x_px", "y_px", "x_pm", "y_pm", "sublattice", "label", "phase", "dx_px", "dy_px", "dx_pm", "dy_pm",
               "displacement_pm")


def column_labels(lattice: AtomLattice, cell_labels: np.ndarray) -> np.ndarray:
    """(N,) label per column from the labels of the cell sites (see module).

    A column that is not a cell site takes the most common label of the cells whose cage holds
    it (ties: the smaller label); a column in no labelled cage (on the edge of the field, where
    the cells have no complete cage) takes the label of the nearest labelled cell site within
    :data:`NEAREST_CELL` lattice constants; :data:`UNASSIGNED` if there is none.
    """
    labels = np.full(len(lattice.xy), UNASSIGNED)
    cells = lattice.cell_sites
    labels[cells] = cell_labels
    labelled = cell_labels >= 0
    if not lattice.has_b_sites or not labelled.any():
        return labels
    others = np.flatnonzero(lattice.sublattice != "B")
    cage = lattice.cage[cells]
    member = (cage >= 0) & labelled[:, None]
    counts = np.zeros((len(lattice.xy), int(cell_labels.max()) + 1), dtype=int)
    np.add.at(counts, (cage[member], np.broadcast_to(cell_labels[:, None], cage.shape)[member]), 1)
    voted = others[counts[others].sum(axis=1) > 0]
    labels[voted] = counts[voted].argmax(axis=1)
    rest = others[counts[others].sum(axis=1) == 0]
    if len(rest):
        distance, nearest = cKDTree(lattice.xy[cells[labelled]]).query(lattice.xy[rest])
        near = distance <= NEAREST_CELL * lattice.lattice_constant_px
        labels[rest[near]] = cell_labels[labelled][nearest[near]]
    return labels


@dataclass(frozen=True)
class Answer:
    """An analysis's segmentation carried to every column, with its physical quantities.

    Attributes
    ----------
    lattice : the measured columns.
    segmentation : the answer on the cell sites, with its walls.
    phase_of_label : phase per label (labels of one phase are its variants), or None where the
        workflow cannot tell (no column intensities).
    calibration : the pixel size, for lengths in pm.
    """

    lattice: AtomLattice
    segmentation: Segmentation
    phase_of_label: dict[int, int] | None
    calibration: Calibration

    @cached_property
    def labels(self) -> np.ndarray:
        """(N,) label per column (see module)."""
        return column_labels(self.lattice, self.segmentation.labels)

    @cached_property
    def phases(self) -> np.ndarray:
        """(N,) phase per column, -1 where its label has none or the phase is unknown."""
        phases = np.full(len(self.labels), UNASSIGNED)
        for label, phase in (self.phase_of_label or {}).items():
            phases[self.labels == label] = phase
        return phases

    @property
    def displacement_px(self) -> np.ndarray:
        """(N, 2) B-site displacement in px (B minus its A-cage centre), NaN off B sites and
        without a cage."""
        return self.lattice.b_displacement

    @property
    def displacement_pm(self) -> np.ndarray | None:
        """(N, 2) B-site displacement in pm, or None when the pixel size is unknown."""
        return self.calibration.pm(self.displacement_px)

    def displacement_summary(self, sites: np.ndarray | None = None) -> dict | None:
        """Mean displacement vector, median magnitude and the polarization's direction over the
        B sites with a cage (of ``sites``, a boolean mask, when given); None without any.

        In pm when the pixel size is known, else px (``unit`` says which). The direction is the
        polarization's (``-b_displacement``), degrees from +x towards +y (the image's y is down).
        """
        vectors = self.displacement_px
        keep = np.isfinite(vectors).all(axis=1)
        if sites is not None:
            keep &= sites
        if not keep.any():
            return None
        values = self.calibration.in_unit(vectors[keep])
        mean = values.mean(axis=0)
        return {"unit": self.calibration.unit, "sites": int(keep.sum()),
                "mean": [round(float(v), 2) for v in mean],
                "median_magnitude": round(float(np.median(np.hypot(*values.T))), 2),
                "polarization_direction_deg": round(float(np.degrees(np.arctan2(-mean[1], -mean[0]))), 1)}

    def label_rows(self) -> list[dict]:
        """Per label: its cell sites, all its columns, its phase and its B-site displacement."""
        cells = self.segmentation.labels
        rows = []
        for label in np.unique(cells[cells >= 0]):
            label = int(label)
            rows.append({"label": label, "cells": int((cells == label).sum()),
                         "columns": int((self.labels == label).sum()),
                         "phase": None if self.phase_of_label is None else self.phase_of_label.get(label),
                         "b_displacement": self.displacement_summary(self.labels == label)})
        return rows

    def wall_rows(self) -> list[dict]:
        """Per wall segment: the two labels it separates, its length, direction and whether it
        reaches the edge of the analysed region."""
        segmentation = self.segmentation
        if not segmentation.segments:
            return []
        sides = np.sort(segmentation.labels[segmentation.wall_bonds], axis=1)
        first_point = np.unique(segmentation.segment_index, return_index=True)[1]
        return [{"labels": [int(v) for v in sides[point]], "points": len(segment.points),
                 "length": self.calibration.length(segment.length_px, 1),
                 "direction_deg": round(segment.direction_deg, 1), "touches_border": segment.touches_border}
                for segment, point in zip(segmentation.segments, first_point)]

    def write_csv(self, path: str | Path) -> Path:
        """One row per column, :data:`CSV_COLUMNS`: position in px and pm, sublattice, label,
        phase, and for B sites the displacement (B minus its A-cage centre) in px and pm.
        Cells without a value (pm without a pixel size, displacement of A sites) are empty."""
        xy_pm = self.calibration.pm(self.lattice.xy)
        d_px, d_pm = self.displacement_px, self.displacement_pm

        def number(value, digits: int) -> str:
            return "" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"

        path = Path(path)
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for i, ((x, y), site) in enumerate(zip(self.lattice.xy, self.lattice.sublattice)):
                pm = (None, None) if xy_pm is None else xy_pm[i]
                dpm = (None, None) if d_pm is None else d_pm[i]
                magnitude = None if d_pm is None else float(np.hypot(*d_pm[i]))
                writer.writerow([f"{x:.3f}", f"{y:.3f}", number(pm[0], 1), number(pm[1], 1), site,
                                 int(self.labels[i]), int(self.phases[i]), number(d_px[i, 0], 3), number(d_px[i, 1], 3),
                                 number(dpm[0], 2), number(dpm[1], 2), number(magnitude, 2)])
        return path
