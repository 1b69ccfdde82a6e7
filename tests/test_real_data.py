"""The two real files in ../shared/data (see its README): what they can show without labels.

Acceptance criteria 2 and 3:

- SrTiO3_ADF_cropped.hdf5 (no polarization, no domains): the columns found match what the
  measured lattice implies within 5 %, A and B are both present, the mean |b_displacement| is
  below 0.1 a, and the best (default) reward over 40 random configurations is clearly below the
  reward of a synthetic image with real walls.
- PbTiO3_junction_column_positions.npy (one sublattice, positions only): a lattice of A sites
  only with a ~ 23.5 px; the lattice descriptor works; displacement and patch descriptors give
  an empty segmentation with reward 0 and a reason, not an exception.

Run with ``-s`` to see the measured numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from ferrogym.workflows.io import load_image, load_positions
from ferrogym.workflows.space import SEARCH_SPACE
from ferrogym.workflows.workflow import Workflow

SRTIO3 = "SrTiO3_ADF_cropped.hdf5"
PBTIO3 = "PbTiO3_junction_column_positions.npy"
#: SrTiO3 pseudo-cubic lattice constant (README: 3.905 Angstrom).
SRTIO3_A_PM = 390.5
#: The PbTiO3 README's nearest-neighbour distance of the Pb columns.
PBTIO3_NN_PX = 23.5
#: Random configurations scored on SrTiO3, and the margin its best reward must stay under the
#: synthetic one (0.999 on the 256 px two-family session sample). 0.3 leaves room for noise,
#: not for a domain-free image that scores like one with walls. Before the walls module bonded
#: both axes of rectangular lattices the SrTiO3 best was 0.45 (draws 1-4: 0.23-0.71).
N_CONFIGS = 40
REWARD_MARGIN = 0.3


@pytest.fixture(scope="module")
def srtio3(shared_data_file):
    # Atomap wrote the calibration without units: the loader assumes nm and says so.
    with pytest.warns(UserWarning, match="no units"):
        return load_image(shared_data_file(SRTIO3))


@pytest.fixture(scope="module")
def srtio3_workflow(srtio3):
    workflow = Workflow(srtio3)
    _ = workflow.lattice
    return workflow


@pytest.fixture(scope="module")
def pbtio3(shared_data_file):
    return load_positions(shared_data_file(PBTIO3))


@pytest.fixture(scope="module")
def pbtio3_workflow(pbtio3):
    workflow = Workflow(positions=pbtio3)
    _ = workflow.lattice
    return workflow


# --------------------------------------------------------------------------- SrTiO3


def test_srtio3_loads(srtio3):
    assert srtio3.array.shape == (400, 380)
    assert srtio3.array.dtype == np.float64
    assert srtio3.pixel_size_pm == pytest.approx(9.33, abs=0.01)


def test_srtio3_column_count_matches_the_lattice(srtio3, srtio3_workflow):
    """Columns found against 2 columns (A + B) per primitive A cell over the image.

    Borders: find_columns keeps columns centred in the pixel-centre extent [0, cols - 1] x
    [0, rows - 1], so the area to divide is (cols - 1)(rows - 1), not cols x rows. A lattice
    laid at random over that area holds area / cell_area sites per sublattice on average; a
    particular lattice phase adds or removes up to one line of sites per axis, which for 10 x
    13 cells is several per cent per sublattice (measured here: A -2 %, B +5 %). The total of
    both sublattices is the steadier number, and the one checked against 5 %.

    Cell area: this image is not the square [001] lattice of the README. Its A (Sr) columns
    form a rectangle of about 42 x 29.5 px (ratio sqrt(2), a [110] view), with B (Ti) midway
    along the long side. lattice_constant_px is the shortest A-A distance (29.5 px), so
    a**2 underestimates the cell by sqrt(2) and 2 (cols - 1)(rows - 1) / a**2 = 348 columns
    would be about 40 % too many; ``cell_area_px`` is the measured primitive-cell area.
    """
    lattice = srtio3_workflow.lattice
    rows, cols = srtio3.array.shape
    per_sublattice = (cols - 1) * (rows - 1) / lattice.cell_area_px
    implied = 2 * per_sublattice
    found = len(lattice.xy)
    n_a = int((lattice.sublattice == "A").sum())
    n_b = int((lattice.sublattice == "B").sum())
    a = lattice.lattice_constant_px
    print(f"\n[criterion 2] SrTiO3: {found} columns found ({n_a} A, {n_b} B); implied "
          f"2 (cols-1)(rows-1) / cell_area = {implied:.1f} (cell area {lattice.cell_area_px:.1f} px^2), "
          f"ratio {found / implied:.3f}; per sublattice {per_sublattice:.1f}; "
          f"the square-lattice formula 2 (cols-1)(rows-1) / a^2 with a = {a:.2f} px would give "
          f"{2 * (cols - 1) * (rows - 1) / a**2:.1f}")
    assert abs(found - implied) <= 0.05 * implied
    assert abs(n_a - per_sublattice) <= 0.1 * per_sublattice
    assert abs(n_b - per_sublattice) <= 0.1 * per_sublattice


def test_srtio3_lattice_geometry(srtio3, srtio3_workflow):
    """The A cell is a ~42 x 29.5 px rectangle: a = 3.905 Angstrom along its long side."""
    lattice = srtio3_workflow.lattice
    a = lattice.lattice_constant_px
    long_side = lattice.cell_area_px / a
    print(f"\n[SrTiO3] shortest A-A distance {a:.2f} px, cell {long_side:.2f} x {a:.2f} px, "
          f"long / short = {long_side / a:.3f}, a(3.905 A) = {SRTIO3_A_PM / srtio3.pixel_size_pm:.2f} px, "
          f"orientation {lattice.orientation_deg:.2f} deg")
    assert long_side == pytest.approx(SRTIO3_A_PM / srtio3.pixel_size_pm, rel=0.02)
    assert long_side / a == pytest.approx(np.sqrt(2), rel=0.02)
    assert abs(lattice.orientation_deg) < 2.0


def test_srtio3_has_both_sublattices(srtio3_workflow):
    lattice = srtio3_workflow.lattice
    is_a = lattice.sublattice == "A"
    assert lattice.has_b_sites and is_a.any()
    contrast = np.median(lattice.amplitude[is_a]) / np.median(lattice.amplitude[~is_a])
    print(f"\n[SrTiO3] A/B peak ratio {contrast:.2f}")
    assert contrast > 1.2  # Sr (Z = 38) columns brighter than Ti (Z = 22)


def test_srtio3_b_displacement_near_zero(srtio3_workflow):
    lattice = srtio3_workflow.lattice
    a = lattice.lattice_constant_px
    b = lattice.site_indices("B")
    displacement = lattice.b_displacement[b]
    valid = np.isfinite(displacement).all(axis=1)
    mean_magnitude = float(np.mean(np.hypot(*displacement[valid].T)))
    print(f"\n[criterion 2] SrTiO3: mean |b_displacement| = {mean_magnitude:.3f} px = "
          f"{mean_magnitude / a:.4f} a over {valid.sum()} of {len(b)} B sites "
          f"(mean vector {displacement[valid].mean(axis=0).round(3)} px)")
    assert valid.sum() >= 0.5 * len(b)
    assert mean_magnitude < 0.1 * a


@pytest.mark.slow  # 40 configurations: 2.5 s alone, over 5 s on a loaded machine
def test_srtio3_best_reward_is_clearly_below_real_walls(srtio3_workflow, two_families_workflow):
    rng = np.random.default_rng(0)
    evaluations = [srtio3_workflow.evaluate(SEARCH_SPACE.sample(rng)) for _ in range(N_CONFIGS)]
    best = max(evaluations, key=lambda e: e.reward)
    sizes = np.bincount(best.segmentation.labels[best.segmentation.labels >= 0]).tolist()
    synthetic = two_families_workflow.evaluate(dict(descriptor="displacement", n_clusters=4))
    print(f"\n[criterion 2] best default reward over {N_CONFIGS} random configurations on SrTiO3 = "
          f"{best.reward:.3f} (label sizes {sizes}, components "
          f"{ {k: round(v, 3) for k, v in best.components.items()} }, config {best.config}); "
          f"synthetic two_families image, displacement, n_clusters=4: {synthetic.reward:.3f} "
          f"(ARI {synthetic.metrics['ari']:.3f})")
    # the perfect answer (ARI 1) scores 0.90 under the order reward: its intensity column is noise,
    # correlated between neighbouring cells, so it looks slightly structured and caps U (rewards.py)
    assert synthetic.metrics["ari"] == 1.0 and synthetic.reward > 0.85
    assert best.reward <= synthetic.reward - REWARD_MARGIN


# --------------------------------------------------------------------------- PbTiO3


def test_pbtio3_loads(pbtio3):
    assert pbtio3.xy.shape == (6731, 2)
    assert pbtio3.sublattice is None


def test_pbtio3_lattice_has_only_a_sites(pbtio3, pbtio3_workflow):
    lattice = pbtio3_workflow.lattice
    nearest = float(np.median(cKDTree(pbtio3.xy).query(pbtio3.xy, k=2)[0][:, 1]))
    print(f"\n[criterion 3] PbTiO3: {len(lattice.xy)} sites, all A: {not lattice.has_b_sites}; "
          f"a = {lattice.lattice_constant_px:.2f} px (median of the four bonds; tetragonal cells "
          f"make it longer than the median nearest distance {nearest:.2f} px), "
          f"orientation {lattice.orientation_deg:.2f} deg")
    assert (lattice.sublattice == "A").all() and not lattice.has_b_sites
    np.testing.assert_array_equal(lattice.cell_sites, np.arange(len(pbtio3.xy)))
    assert nearest == pytest.approx(PBTIO3_NN_PX, rel=0.02)
    assert lattice.lattice_constant_px == pytest.approx(PBTIO3_NN_PX, rel=0.05)


def test_pbtio3_lattice_descriptor_segments(pbtio3_workflow):
    evaluation = pbtio3_workflow.evaluate(dict(descriptor="lattice", n_clusters=4))
    labelled = evaluation.segmentation.labels >= 0
    print(f"\n[criterion 3] PbTiO3 lattice descriptor: {evaluation.segmentation.n_labels} labels on "
          f"{labelled.mean():.1%} of the sites, reward {evaluation.reward:.3f}")
    assert evaluation.reason is None
    assert evaluation.segmentation.n_labels >= 2
    assert labelled.mean() > 0.8
    assert 0.0 <= evaluation.reward <= 1.0
    assert evaluation.metrics == {}  # no truth


@pytest.mark.parametrize("descriptor", ["displacement", "patch", "patch+displacement"])
def test_pbtio3_descriptors_it_cannot_support_give_an_empty_segmentation(pbtio3_workflow, descriptor):
    evaluation = pbtio3_workflow.evaluate(dict(descriptor=descriptor))
    print(f"\n[criterion 3] PbTiO3 {descriptor}: reward {evaluation.reward}, reason: {evaluation.reason}")
    assert evaluation.reward == 0.0
    assert evaluation.reason is not None and evaluation.reason != ""
    assert (evaluation.atom_labels == -1).all()
    assert evaluation.segmentation.n_labels == 0
