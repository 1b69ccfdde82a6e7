"""The second sublattice from the lattice: periodicity, predicted sites and their test.

Known answers on images whose columns we place ourselves (Gaussian profiles rendered with
``atoms.render_columns``, Poisson noise at a stated dose) and on the generator's images: the
B columns are found at every B/A peak ratio from 0.05 to 1.5 without a brightness threshold,
along the border rows too, and sites without a column are reported empty, not filled.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ferrogym.workflows.atoms import Columns, render_columns
from ferrogym.workflows.completion import (
    FALSE_DISCOVERY_RATE,
    accepted,
    noise_inflation,
    predict_sites,
    site_significance,
    typical_of_their_sublattice,
)
from ferrogym.workflows.detection import find_columns
from ferrogym.workflows.lattice import colour_sublattices, lattice_from_columns, lattice_step_graph
from ferrogym.workflows.metrics import match_positions
from ferrogym.workflows.periodicity import MIN_OFFSET_PROMINENCE, measure_periodicity, reduced_basis
from ferrogym.workflows.synthetic import SyntheticParams, generate

A_PX, SIGMA_PX, SHAPE = 24.0, 2.2, (240, 240)
#: The pixel size of a 3.9 Angstrom cell drawn A_PX across.
PIXEL_PM = 390.0 / A_PX


def perovskite_001(b_over_a: float, *, rotation_deg: float = 0.0, keep_b=None, shape=SHAPE, a_px=A_PX):
    """Truth (xy, sublattice) of an [001] perovskite filling ``shape`` and its amplitudes."""
    t = np.deg2rad(rotation_deg)
    axes = a_px * np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
    reach = int(np.ceil(max(shape) / a_px)) + 2
    i, j = np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1))
    centre = np.array(shape[::-1]) / 2 + 0.3
    a_xy = centre + np.column_stack([i.ravel(), j.ravel()]) @ axes
    b_xy = a_xy + (axes[0] + axes[1]) / 2
    keep = np.ones(len(b_xy), bool) if keep_b is None else keep_b(b_xy)
    xy = np.vstack([a_xy, b_xy[keep]])
    sublattice = np.array(["A"] * len(a_xy) + ["B"] * int(keep.sum()))
    amplitude = np.where(sublattice == "A", 1.0, b_over_a)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] <= shape[1] - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= shape[0] - 1)
    return xy, sublattice, amplitude, inside


def image_of(xy, amplitude, shape=SHAPE, dose=300.0, seed=0, background=0.05):
    """Columns rendered with Gaussian profiles plus a flat background, Poisson counts at ``dose``
    (counts at an A peak)."""
    columns = Columns(xy, amplitude, np.full(len(xy), SIGMA_PX), A_PX / np.sqrt(2))
    clean = render_columns(shape, columns) + background
    return np.random.default_rng(seed).poisson(dose * clean).astype(float)


def found_b(image, truth_xy, truth_sublattice, inside):
    """(recall, precision) of the B columns found, matched within a/4, whatever they are named
    (where B outshines A the brighter sublattice is called A). Recall counts the true B columns
    centred in the image; precision accepts a match with any true B column, since one centred a
    fraction of a pixel outside may be fitted a fraction inside."""
    lattice = lattice_from_columns(find_columns(image, PIXEL_PM))
    true_b, true_a = truth_xy[truth_sublattice == "B"], truth_xy[truth_sublattice == "A"]
    named = {name: lattice.xy[lattice.sublattice == name] for name in ("A", "B")}
    hits = {name: len(match_positions(xy, true_b, A_PX / 4)[0]) for name, xy in named.items()}
    dim = max(hits, key=hits.get)
    other = "A" if dim == "B" else "B"
    assert len(match_positions(named[other], true_a, A_PX / 4)[0]) >= 0.98 * len(named[other])
    inside_b = truth_xy[inside & (truth_sublattice == "B")]
    recall = len(match_positions(named[dim], inside_b, A_PX / 4)[0]) / len(inside_b)
    return recall, hits[dim] / max(len(named[dim]), 1)


# --------------------------------------------------------------------------- periodicity


@pytest.mark.parametrize("b_over_a", [0.05, 0.1])
def test_a_dim_second_sublattice_shows_in_the_autocorrelation(b_over_a):
    xy, _, amplitude, _ = perovskite_001(b_over_a)
    periodicity = measure_periodicity(image_of(xy, amplitude))
    assert periodicity.offset is not None and periodicity.two_sublattices
    assert np.hypot(*periodicity.cell[0]) == pytest.approx(A_PX, rel=0.01)
    assert periodicity.column_spacing == pytest.approx(A_PX / np.sqrt(2), rel=0.01)
    frac = np.linalg.solve(periodicity.cell.T, periodicity.offset) % 1  # the cell centre
    np.testing.assert_allclose(frac, [0.5, 0.5], atol=0.02)


@pytest.mark.parametrize("b_over_a", [0.2, 0.4, 1.5])
def test_brighter_b_columns_make_the_column_lattice_the_strongest(b_over_a):
    """From B/A ~ 0.15 the A-B lags are strong peaks themselves: the cell is the column lattice."""
    xy, _, amplitude, _ = perovskite_001(b_over_a)
    periodicity = measure_periodicity(image_of(xy, amplitude))
    assert periodicity.offset is None
    assert periodicity.column_spacing == pytest.approx(A_PX / np.sqrt(2), rel=0.01)


def test_one_sublattice_shows_no_offset():
    xy, sublattice, amplitude, _ = perovskite_001(0.0)
    periodicity = measure_periodicity(image_of(xy[sublattice == "A"], amplitude[sublattice == "A"]))
    assert periodicity.offset is None and periodicity.two_sublattices is None
    assert periodicity.offset_prominence < MIN_OFFSET_PROMINENCE
    assert periodicity.column_spacing == pytest.approx(A_PX, rel=0.01)


def test_bright_b_columns_span_the_column_lattice_and_the_pixel_size_says_so():
    """A and B alike (SrRuO3): the strongest peaks are already the column lattice; with the
    pixel size its cell area says both sublattices are in it."""
    xy, _, amplitude, _ = perovskite_001(1.0)
    image = image_of(xy, amplitude)
    unknown, known = measure_periodicity(image), measure_periodicity(image, pixel_size_pm=PIXEL_PM)
    for periodicity in (unknown, known):
        assert periodicity.offset is None
        assert periodicity.column_spacing == pytest.approx(A_PX / np.sqrt(2), rel=0.01)
    assert unknown.two_sublattices is None and known.two_sublattices


def test_a_110_view_puts_the_second_site_midway_along_the_long_side():
    long, short = 41.5, 29.5
    i, j = np.meshgrid(np.arange(-1, 12), np.arange(-1, 16))
    a_xy = np.column_stack([5 + long * i.ravel(), 5 + short * j.ravel()])
    xy = np.vstack([a_xy, a_xy + [long / 2, 0.0]])
    amplitude = np.r_[np.ones(len(a_xy)), np.full(len(a_xy), 0.15)]
    periodicity = measure_periodicity(image_of(xy, amplitude, shape=(400, 380)))
    assert periodicity.offset is not None
    np.testing.assert_allclose(np.sort(np.abs(periodicity.column_cell), axis=None)[-2:], [long / 2, short], rtol=0.02)


def test_reduced_basis_is_the_shortest_basis_of_the_same_lattice():
    basis = reduced_basis(np.array([[24.0, 0.0], [72.0, 24.0]]))
    np.testing.assert_allclose(np.abs(basis), [[24.0, 0.0], [0.0, 24.0]], atol=1e-9)
    assert abs(np.linalg.det(basis)) == pytest.approx(24.0**2)


# --------------------------------------------------------------------------- the test of a site


def test_the_test_is_calibrated_on_pure_noise():
    """On white noise the test's z is standard normal, and 1 % FDR accepts (almost) nothing."""
    rng = np.random.default_rng(3)
    noise = rng.normal(100.0, 5.0, size=(400, 400))
    sites = rng.uniform(20, 380, size=(2000, 2))
    _, z = site_significance(noise, sites, SIGMA_PX, 7.0)
    assert abs(np.mean(z)) < 0.1 and np.std(z) == pytest.approx(1.0, abs=0.1)
    assert accepted(z).sum() <= 2
    assert noise_inflation(noise, SIGMA_PX, 7.0) == pytest.approx(1.0, abs=0.05)


def test_correlated_noise_widens_the_test():
    """A smoothed image's noise peaks are as wide as columns; the inflation restores z's scale."""
    rng = np.random.default_rng(4)
    smooth = ndimage.gaussian_filter(rng.normal(0.0, 1.0, size=(400, 400)), 1.0)
    sites = rng.uniform(20, 380, size=(2000, 2))
    _, z = site_significance(smooth, sites, SIGMA_PX, 7.0)
    inflation = noise_inflation(smooth, SIGMA_PX, 7.0)
    assert inflation > 2
    assert np.std(z / inflation) == pytest.approx(1.0, abs=0.2)


def test_benjamini_hochberg_known_answer():
    z = np.array([5.0, 4.0, 3.0, 0.1, -1.0, 2.0])
    # p-values 2.9e-7, 3.2e-5, 1.3e-3, 0.46, 0.84, 0.023; thresholds 0.01 * k / 6
    np.testing.assert_array_equal(accepted(z, 0.01), [True, True, True, False, False, False])
    assert not accepted(np.array([]), FALSE_DISCOVERY_RATE).any()


def test_predicted_sites_of_a_lattice_are_its_empty_neighbours():
    cell = np.array([[10.0, 0.0], [0.0, 10.0]])
    xy = np.array([[50.0, 50.0], [60.0, 50.0]])
    sites = predict_sites(xy, cell, (200, 200))
    assert len(sites) == 10  # two columns' eight neighbours, two of them shared, none on a column
    assert not (np.hypot(*(sites[:, None] - xy[None]).T) < 1).any()
    np.testing.assert_allclose(sites.mean(axis=0), [55.0, 50.0])


# --------------------------------------------------------------------------- whole images


@pytest.mark.parametrize("b_over_a", [0.05, 0.1, 0.2, 0.4, 1.0, 1.5])
def test_b_columns_are_found_at_every_peak_ratio(b_over_a):
    xy, sublattice, amplitude, inside = perovskite_001(b_over_a, rotation_deg=7.0)
    recall, precision = found_b(image_of(xy, amplitude, dose=600.0 if b_over_a < 0.1 else 300.0), xy, sublattice, inside)
    assert recall >= 0.98 and precision >= 0.98


def test_the_outer_b_rows_are_found():
    xy, sublattice, amplitude, inside = perovskite_001(0.12)
    lattice = lattice_from_columns(find_columns(image_of(xy, amplitude)))
    border = inside & (sublattice == "B") & (
        (np.minimum(xy[:, 0], SHAPE[1] - 1 - xy[:, 0]) < 0.75 * A_PX) | (np.minimum(xy[:, 1], SHAPE[0] - 1 - xy[:, 1]) < 0.75 * A_PX))
    assert border.sum() >= 30
    hits = match_positions(lattice.xy[lattice.sublattice == "B"], xy[border], A_PX / 4)[0]
    assert len(hits) >= 0.95 * border.sum()


def test_sites_without_a_column_are_empty_not_filled():
    """B columns only on the left half: the right half's B sites are predicted and found empty."""
    def left(b_xy):
        return b_xy[:, 0] < SHAPE[1] / 2

    xy, sublattice, amplitude, inside = perovskite_001(0.15, keep_b=left)
    columns = find_columns(image_of(xy, amplitude))
    lattice = lattice_from_columns(columns)
    b_found = lattice.xy[lattice.sublattice == "B"]
    assert (b_found[:, 0] > SHAPE[1] / 2 + A_PX / 4).sum() <= 2  # at most a false column or two
    right_sites = columns.empty_sites[columns.empty_sites[:, 0] > SHAPE[1] / 2 + A_PX / 2]
    assert len(right_sites) >= 0.9 * ((SHAPE[1] / 2 - A_PX) / A_PX) * (SHAPE[0] / A_PX)


def test_generator_images_with_dim_b_columns_keep_every_b_site():
    """The generator's Gaussian films at B/A 0.1 (ab_ratio 10): every B site is found, the
    B-site displacement is measured on each, the sublattices are named right."""
    sample = generate(SyntheticParams(shape=(256, 256), ab_ratio=10.0, dose=150.0, domains="two_families",
                                      mistilt_offset_px=(0.0, 0.0)), seed=5)
    lattice = lattice_from_columns(find_columns(sample.image, sample.truth.pixel_size_pm))
    detected, true = match_positions(lattice.xy, sample.truth.xy, 0.25 * sample.truth.lattice_constant_px)
    assert len(detected) >= 0.99 * len(sample.truth.xy)
    assert (lattice.sublattice[detected] == sample.truth.sublattice[true]).all()
    both_b = (lattice.sublattice[detected] == "B")
    assert np.isfinite(lattice.b_displacement[detected[both_b]]).mean() >= 0.8


# --------------------------------------------------------------------------- weak sublattices


def test_a_weak_sublattice_is_kept_where_it_shows_and_left_out_where_it_stops():
    """B sites of a square cell: z about 2.5 (a weak but plain sublattice) on the left half,
    pure noise on the right. The left half is kept beyond what a one-by-one bar would keep; on
    the right (and at the boundary) hardly anything is."""
    rng = np.random.default_rng(7)
    cell = np.array([[24.0, 0.0], [0.0, 24.0]])
    i, j = np.meshgrid(np.arange(30), np.arange(20))
    xy = np.column_stack([i.ravel(), j.ravel()]) @ cell + 12.0
    left = xy[:, 0] < 15 * 24
    z = np.where(left, rng.normal(2.5, 1.0, len(xy)), rng.normal(0.0, 1.0, len(xy)))
    kept = typical_of_their_sublattice(xy, z, cell)
    one_by_one = accepted(z)
    assert kept[left].mean() > 0.8 > one_by_one[left].mean()
    assert kept[~left].mean() <= 0.02


def test_off_centred_b_columns_keep_their_cage_links():
    """B columns off their cage centre by 0.2 of the column spacing (as Ti in PbTiO3): every A-B
    step of the column lattice changes colour, every A-A step keeps it, so the colouring is the
    truth."""
    xy, sublattice, amplitude, inside = perovskite_001(0.15)
    shift = 0.2 * A_PX / np.sqrt(2) * np.array([0.8, -0.6])
    xy = np.where((sublattice == "B")[:, None], xy + shift, xy)[inside]
    sublattice = sublattice[inside]
    periodicity = measure_periodicity(image_of(xy, amplitude[inside]))
    signed, _ = lattice_step_graph(xy, periodicity)
    colour, patch = colour_sublattices(signed)
    assert len(np.unique(patch)) == 1
    expected = np.where(sublattice == "A", 1.0, -1.0)
    assert np.array_equal(colour, expected) or np.array_equal(colour, -expected)
    links = signed.tocoo()
    a_b = sublattice[links.row] != sublattice[links.col]
    assert (links.data[a_b] == -1).all() and (links.data[~a_b] == 1).all()
    interior_b = (sublattice == "B") & (np.minimum(xy, np.array(SHAPE[::-1]) - 1 - xy).min(axis=1) > 0.75 * A_PX)
    assert (np.bincount(links.row[a_b], minlength=len(xy))[interior_b] == 4).all()
