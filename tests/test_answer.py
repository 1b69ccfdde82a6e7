"""The answer in physical terms (workflows/answer.py, workflows/units.py): every column's label and
phase, B-site displacements in pm against the generator's truth, walls, the CSV."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy.spatial import cKDTree
from sklearn.metrics import adjusted_rand_score

from ferrogym.workflows import SyntheticParams, Workflow, generate
from ferrogym.workflows.answer import CSV_COLUMNS, UNASSIGNED, Answer, column_labels
from ferrogym.workflows.lattice import lattice_from_positions
from ferrogym.workflows.metrics import match_positions
from ferrogym.workflows.units import Calibration, calibration_of

#: Vertical stripes of two polar variants, 16 pm per pixel.
STRIPES = SyntheticParams(shape=(256, 256), domains="stripes", dose=150.0, wall_angle_deg=90.0, period_cells=8.0)


@pytest.fixture(scope="module")
def stripes():
    """(workflow, answer) of the true two-variant split of the stripes, found by displacement."""
    workflow = Workflow.from_sample(generate(STRIPES, seed=1))
    evaluation = workflow.evaluate(dict(descriptor="displacement", reduction="none", n_clusters=2))
    assert evaluation.metrics["ari"] > 0.95
    answer = Answer(workflow.lattice, evaluation.segmentation, {0: 0, 1: 0}, Calibration(16.0, "synthetic truth"))
    return workflow, answer


def test_a_columns_take_the_label_of_their_cells(perovskite):
    """B sites left of x = 90 are label 0, right of it 1: each A column takes the label most of
    the cells (B cages) around it carry, the smaller on a tie, and edge columns the nearest's."""
    xy, sublattice = perovskite(n_cells=8, a=20.0)
    lattice = lattice_from_positions(xy, sublattice)
    cells = lattice.cell_sites
    cell_labels = (lattice.xy[cells, 0] > 90).astype(int)
    labels = column_labels(lattice, cell_labels)
    a_sites = lattice.site_indices("A")
    x = lattice.xy[a_sites, 0]
    assert (labels[a_sites] >= 0).all()  # no A column is left "unassigned"
    assert (labels[a_sites][x < 85] == 0).all() and (labels[a_sites][x > 95] == 1).all()
    assert (labels[a_sites][np.abs(x - 90) < 1] == 0).all()  # two cells each side: the smaller label
    np.testing.assert_array_equal(labels[cells], cell_labels)


def test_a_column_near_no_labelled_cell_is_unassigned(perovskite):
    xy, sublattice = perovskite(n_cells=4, a=20.0)
    lattice = lattice_from_positions(xy, sublattice)
    labels = column_labels(lattice, np.full(len(lattice.cell_sites), UNASSIGNED))
    assert (labels == UNASSIGNED).all()


def test_on_stripes_both_sublattices_of_a_domain_carry_its_label(stripes):
    """The issue's complaint: with walls every A site had label -1. Now the A columns of a
    domain carry its label, and agree with the truth as the B sites do (away from the walls,
    where an A column belongs to cells of both domains and the truth's side is a convention)."""
    workflow, answer = stripes
    lattice = workflow.lattice
    a = lattice.lattice_constant_px
    a_sites = np.flatnonzero(lattice.sublattice == "A")
    assert (answer.labels[a_sites] >= 0).mean() > 0.98
    off_walls = cKDTree(workflow.truth_segmentation.wall_points).query(lattice.xy[a_sites])[0] > 0.6 * a
    truth = workflow.truth
    found, true = match_positions(lattice.xy[a_sites[off_walls]], truth.xy, 0.3 * a)
    assert len(found) > 60
    assert adjusted_rand_score(truth.variant[true], answer.labels[a_sites[off_walls]][found]) > 0.95


def test_displacements_in_pm_match_the_generator_per_label(stripes):
    workflow, answer = stripes
    truth = workflow.truth
    b_true = np.hypot(*truth.b_displacement[truth.sublattice == "B"].T) * 16.0  # pm
    rows = answer.label_rows()
    assert [row["label"] for row in rows] == [0, 1] and all(row["phase"] == 0 for row in rows)
    for row in rows:
        displacement = row["b_displacement"]
        assert displacement["unit"] == "pm"
        assert displacement["median_magnitude"] == pytest.approx(np.median(b_true), rel=0.15)
    # The two variants' mean displacements are 90 degrees apart, as variants 0 and 1 are in
    # projection, and the polarization points against them.
    (dx0, dy0), (dx1, dy1) = (row["b_displacement"]["mean"] for row in rows)
    assert abs(dx0 * dx1 + dy0 * dy1) / (np.hypot(dx0, dy0) * np.hypot(dx1, dy1)) < 0.2
    direction = np.radians(rows[0]["b_displacement"]["polarization_direction_deg"])
    assert np.cos(direction) * -dx0 + np.sin(direction) * -dy0 > 0
    np.testing.assert_allclose(answer.displacement_pm, answer.displacement_px * 16.0)


def test_walls_are_given_with_their_length_in_pm_and_direction(stripes):
    workflow, answer = stripes
    walls = answer.wall_rows()
    long_walls = [w for w in walls if w["length"]["px"] > 0.8 * 256]  # the stripes' full-height walls
    assert len(long_walls) >= 2
    for wall in long_walls:
        assert wall["labels"] == [0, 1] and wall["direction_deg"] == pytest.approx(90, abs=5)
        assert wall["length"]["pm"] == pytest.approx(16.0 * wall["length"]["px"], rel=1e-3)


def test_the_csv_has_a_row_per_column_in_px_and_pm(tmp_path, stripes):
    workflow, answer = stripes
    rows = list(csv.DictReader(open(answer.write_csv(tmp_path / "segmentation.csv"))))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == len(workflow.lattice.xy)
    for row, (x, y), d in zip(rows, workflow.lattice.xy, workflow.lattice.b_displacement):
        assert float(row["x_pm"]) == pytest.approx(16.0 * x, abs=0.06)
        if row["sublattice"] == "B" and np.isfinite(d).all():
            assert float(row["dx_pm"]) == pytest.approx(16.0 * d[0], abs=0.006)
            assert float(row["displacement_pm"]) == pytest.approx(16.0 * np.hypot(*d), abs=0.006)
        elif row["sublattice"] == "A":
            assert row["dx_px"] == row["dx_pm"] == row["displacement_pm"] == ""


def test_without_a_pixel_size_lengths_stay_in_px_and_say_so(tmp_path, stripes):
    workflow, answer = stripes
    plain = Answer(answer.lattice, answer.segmentation, None, Calibration(None))
    assert plain.displacement_pm is None and plain.label_rows()[0]["b_displacement"]["unit"] == "px"
    assert plain.label_rows()[0]["phase"] is None and (plain.phases == UNASSIGNED).all()
    row = next(csv.DictReader(open(plain.write_csv(tmp_path / "plain.csv"))))
    assert row["x_pm"] == "" and row["x_px"] != ""
    assert "pixel size unknown" in Calibration(None).describe()["note"]


def test_a_calibration_says_where_its_pixel_size_came_from():
    assert calibration_of(None, None, None) == Calibration(None)
    assert calibration_of(15.0, 15.0, 9.0).source == "given"
    assert calibration_of(9.0, None, 9.0).source == "file"
    assert calibration_of(9.0, None, 9.0, "signal").describe()["note"].endswith("from the signal's axes, and in px")
    assert calibration_of(16.0, None, None).source == "synthetic truth"
    calibration = Calibration(15.0, "file")
    assert calibration.length(24.2) == {"px": 24.2, "pm": 363.0}
    assert Calibration.length_text(calibration.length(24.2)) == "363 pm (24.2 px)"
    assert Calibration(None).length(24.2) == {"px": 24.2, "pm": None}
    assert Calibration.length_text(Calibration(None).length(24.2)) == "24.2 px"
    with pytest.raises(ValueError):
        Calibration(15.0, "unknown")
