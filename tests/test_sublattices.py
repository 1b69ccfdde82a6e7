"""Sublattice identity from the lattice (workflows/lattice.py::split_sublattices).

The columns are two-coloured by the lattice (nearest columns: other sublattice; next-nearest:
same), and brightness only names the colours, once per connected patch. So a substrate whose
brightness order is flipped (B brighter than A, as in SrRuO3) keeps A on A across a coherent
interface. Synthetic film-on-substrate images: the substrate is the top band, truth variant 5.
``benchmarks/heterostructure.py`` measures the same on 8 seeds per scenario.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from ferrogym.workflows.detection import find_columns
from ferrogym.workflows.errors import InputError
from ferrogym.workflows.lattice import (
    MIN_SUBLATTICE_CONTRAST,
    shell_graph,
    colour_sublattices,
    lattice_from_columns,
    split_sublattices,
)
from ferrogym.workflows.metrics import match_positions
from ferrogym.workflows.synthetic import SyntheticParams, generate
from ferrogym.workflows.workflow import Workflow

SUBSTRATE = 5
A, SPACING = 20.0, 20.0 / np.sqrt(2)
HETERO = dict(shape=(256, 256), domains="stripes", substrate_fraction=0.35, dose=150.0)


@lru_cache(maxsize=None)
def layer_accuracy(seed: int, **extra) -> dict[str, float]:
    """Share of matched columns with the true sublattice, per layer, on one synthetic image."""
    sample = generate(SyntheticParams(**HETERO, **extra), seed=seed)
    lattice = lattice_from_columns(find_columns(sample.image))
    detected, true = match_positions(lattice.xy, sample.truth.xy, 0.25 * sample.truth.lattice_constant_px)
    right = lattice.sublattice[detected] == sample.truth.sublattice[true]
    substrate = sample.truth.variant[true] == SUBSTRATE
    assert len(detected) >= 0.99 * len(sample.truth.xy)
    return {"film": float(right[~substrate].mean()), "substrate": float(right[substrate].mean())}


def _layered_amplitudes(xy, truth, boundary_y, rng, film=(2.5, 1.0), substrate=(1.0, 1.6), noise=0.05):
    """Film (y >= boundary) and substrate (y < boundary) peak heights (A, B), with noise."""
    in_substrate = xy[:, 1] < boundary_y
    a_peak = np.where(in_substrate, substrate[0], film[0])
    b_peak = np.where(in_substrate, substrate[1], film[1])
    return np.where(truth == "A", a_peak, b_peak) * rng.normal(1.0, noise, len(xy))


# --------------------------------------------------------------------------- synthetic images


@pytest.mark.parametrize("seed", [0, 1])
def test_flipped_substrate_keeps_a_on_a_across_the_interface(seed):
    """Substrate A:B = 0.6 (B brighter): one global threshold called everything A (0.56 / 0.52)."""
    accuracy = layer_accuracy(seed, substrate_ab_ratio=0.6)
    assert accuracy["film"] >= 0.99 and accuracy["substrate"] >= 0.99


@pytest.mark.parametrize(
    "extra",
    [
        dict(substrate_ab_ratio=1.5),
        dict(substrate_ab_ratio=0.6, intensity_gradient=1.0, gradient_angle_deg=90.0),
        dict(substrate_ab_ratio=0.6, lattice_rotation_deg=17.0),
    ],
    ids=["same-order", "gradient-3x", "rotated-17deg"],
)
def test_substrate_variants(extra):
    accuracy = layer_accuracy(3, **extra)
    assert accuracy["film"] >= 0.99 and accuracy["substrate"] >= 0.99


def named_right(sample, **workflow_kwargs) -> float:
    """Share of the columns found where they should be that carry their true sublattice."""
    lattice = Workflow.from_sample(sample, **workflow_kwargs).lattice
    detected, true = match_positions(lattice.xy, sample.truth.xy, 0.25 * sample.truth.lattice_constant_px)
    return float((lattice.sublattice[detected] == sample.truth.sublattice[true]).mean())


def test_a_crystal_whose_b_columns_outshine_its_a_columns_is_named_by_what_the_user_says():
    """SrRuO3-like (A:B own scattering 0.6): brightness calls the brighter Ru columns A, and only
    the user's ``brighter_sublattice="B"`` can name them; the generator's own hint agrees."""
    params = SyntheticParams(shape=(192, 192), domains="stripes", ab_ratio=0.6, dose=150.0)
    sample = generate(params, seed=4)
    assert params.brighter_sublattice == "B"
    assert named_right(sample) <= 0.01
    assert named_right(sample, brighter_sublattice="B") >= 0.99


def test_the_brighter_sublattice_must_be_a_or_b(two_families_sample):
    with pytest.raises(InputError, match=r"brighter_sublattice = 'Ti'.*\('A', 'B'\)"):
        Workflow(two_families_sample.image, brighter_sublattice="Ti")


# --------------------------------------------------------------------------- ideal positions


@pytest.mark.parametrize("rotation", [0.0, 23.0, -40.0])
def test_flipped_layer_on_ideal_grid(perovskite, rotation):
    xy, truth = perovskite(n_cells=12, a=A, rotation_deg=rotation)
    boundary = np.quantile(xy[:, 1], 0.4)
    amplitude = _layered_amplitudes(xy, truth, boundary, np.random.default_rng(0))
    np.testing.assert_array_equal(split_sublattices(xy, amplitude, SPACING), truth)


def test_the_stronger_layer_names_the_colours_even_on_the_smaller_area(perovskite):
    """A heavy-A film (A:B = 2.5) on 40 % of the field over a flipped substrate (A:B = 0.6) on
    60 %: the contrast-weighted vote follows the film, and the substrate's A continue its A."""
    xy, truth = perovskite(n_cells=12, a=A)
    boundary = np.quantile(xy[:, 1], 0.6)
    amplitude = _layered_amplitudes(xy, truth, boundary, np.random.default_rng(1))
    np.testing.assert_array_equal(split_sublattices(xy, amplitude, SPACING), truth)


def test_a_layer_without_contrast_takes_its_sublattices_from_the_lattice(perovskite):
    """Film with contrast on 35 %, A and B alike elsewhere: B sites are kept everywhere."""
    xy, truth = perovskite(n_cells=12, a=A)
    boundary = np.quantile(xy[:, 1], 0.65)
    amplitude = _layered_amplitudes(xy, truth, boundary, np.random.default_rng(2), substrate=(1.0, 1.0))
    np.testing.assert_array_equal(split_sublattices(xy, amplitude, SPACING), truth)


def test_flipped_layers_do_not_cancel_the_contrast(perovskite):
    """Half the field A:B = 2, half 0.5: globally both colours are equally bright, locally not."""
    xy, truth = perovskite(n_cells=12, a=A)
    boundary = np.quantile(xy[:, 1], 0.45)
    amplitude = _layered_amplitudes(xy, truth, boundary, np.random.default_rng(3), film=(2.0, 1.0), substrate=(1.0, 2.0))
    labels = split_sublattices(xy, amplitude, SPACING)
    assert (labels == "B").any()
    np.testing.assert_array_equal(labels, truth)  # the larger film (55 %) names the colours


def test_rectangular_110_cells_with_a_flipped_half():
    """[110]-type cells (41.5 x 29.5 px, B midway along the long side, as in the SrTiO3 file):
    nearest links only join columns along x; the next shell joins the rows."""
    long, short = 41.5, 29.5
    i, j = np.meshgrid(np.arange(10), np.arange(12))
    a_xy = np.column_stack([10 + long * i.ravel(), 10 + short * j.ravel()])
    b_xy = a_xy + [long / 2, 0.0]
    xy = np.vstack([a_xy, b_xy])
    truth = np.array(["A"] * len(a_xy) + ["B"] * len(b_xy))
    amplitude = _layered_amplitudes(xy, truth, 10 + 4.5 * short, np.random.default_rng(4), film=(2.0, 1.0), substrate=(1.0, 1.5))
    np.testing.assert_array_equal(split_sublattices(xy, amplitude, long / 2), truth)


def test_missing_columns_and_false_detections(perovskite):
    """5 % of the columns dropped and 4 % false ones added at random: the real ones stay right,
    on both sides of a flipped interface."""
    rng = np.random.default_rng(5)
    xy, truth = perovskite(n_cells=16, a=A, rotation_deg=8.0)
    amplitude = _layered_amplitudes(xy, truth, np.quantile(xy[:, 1], 0.35), rng)
    keep = rng.random(len(xy)) >= 0.05
    n_false = int(0.04 * len(xy))
    false_xy = rng.uniform(xy.min(axis=0), xy.max(axis=0), size=(n_false, 2))
    all_xy = np.vstack([xy[keep], false_xy])
    all_amplitude = np.concatenate([amplitude[keep], rng.choice(amplitude, n_false)])
    labels = split_sublattices(all_xy, all_amplitude, SPACING)
    np.testing.assert_array_equal(labels[: keep.sum()], truth[keep])


def test_one_inconsistent_link_does_not_flip_a_region(perovskite):
    """Least-squares colouring: a single wrong link (here: a nearest pair made 'same') costs
    one violated link instead of splitting the lattice along it."""
    xy, truth = perovskite(n_cells=10, a=A)
    signed, _ = shell_graph(xy, SPACING)
    signed = signed.tolil()
    i = int(np.flatnonzero(truth == "A")[40])
    j = int(signed.rows[i][int(np.argmin(signed.data[i]))])  # a nearest (opposite) neighbour
    signed[i, j] = signed[j, i] = 1.0
    colour, patch = colour_sublattices(signed.tocsr())
    assert len(np.unique(patch)) == 1
    expected = np.where(truth == "A", 1.0, -1.0)
    assert np.array_equal(colour, expected) or np.array_equal(colour, -expected)


def test_only_one_sublattice_detected_is_all_a(perovskite):
    """A square lattice of A columns only (B invisible): checkerboard colours, no contrast."""
    xy, truth = perovskite(n_cells=10, a=A)
    a_only = xy[truth == "A"]
    amplitude = np.random.default_rng(6).normal(2.5, 0.1, len(a_only))
    assert (split_sublattices(a_only, amplitude, A) == "A").all()


def test_contrast_just_below_the_threshold_everywhere_is_one_sublattice(perovskite):
    xy, truth = perovskite(n_cells=10, a=A)
    ratio = 0.9 * MIN_SUBLATTICE_CONTRAST
    amplitude = _layered_amplitudes(xy, truth, np.quantile(xy[:, 1], 0.5), np.random.default_rng(7),
                                    film=(ratio, 1.0), substrate=(1.0, ratio), noise=0.01)
    assert (split_sublattices(xy, amplitude, SPACING) == "A").all()


def test_isolated_column_is_named_by_its_brightness(perovskite):
    xy, truth = perovskite(n_cells=8, a=A)
    amplitude = np.where(truth == "A", 2.5, 1.0)
    far = np.array([[xy[:, 0].max() + 5 * A, xy[:, 1].mean()]] * 2) + [[0.0, 0.0], [0.0, 4 * A]]
    labels = split_sublattices(np.vstack([xy, far]), np.concatenate([amplitude, [2.4, 1.1]]), SPACING)
    np.testing.assert_array_equal(labels[: len(xy)], truth)
    np.testing.assert_array_equal(labels[len(xy):], ["A", "B"])
