"""The descriptor registry (workflows/descriptors.py): patch, displacement, lattice,
patch+displacement; odd pixel windows; exactly centred patches; custom descriptors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferrogym.workflows import descriptors as descriptors_module
from ferrogym.workflows.descriptors import (
    DESCRIPTORS,
    DescriptorUnavailable,
    Features,
    compute_descriptor,
    register_descriptor,
    sample_patches,
    window_pixels,
)
from ferrogym.workflows.lattice import lattice_from_positions
from ferrogym.workflows.space import SEARCH_SPACE, Param, SearchSpace
from ferrogym.workflows.workflow import Workflow

BUILT_IN = ("patch", "displacement", "lattice", "patch+displacement")


def gaussian_image(shape, centres, sigma=3.0, amplitude=1.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]  # (row, col) -> named y, x
    image = np.zeros(shape)
    for x0, y0 in centres:
        image += amplitude * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))
    return image


# --------------------------------------------------------------------------- registry


def test_registry_holds_the_built_in_descriptors():
    assert set(BUILT_IN) <= set(DESCRIPTORS)
    # the search space offers exactly the registered built-ins
    assert set(SEARCH_SPACE["descriptor"].grid) == set(BUILT_IN)


def test_unknown_descriptor_names_the_registered_ones(two_families_sample, two_families_lattice):
    with pytest.raises(KeyError, match="unknown descriptor 'nope'.*displacement"):
        compute_descriptor("nope", two_families_sample.image, two_families_lattice)


def test_register_descriptor_adds_one_usable_by_name_and_by_a_workflow(two_families_sample):
    name = "test-centre-offset"

    @register_descriptor(name)
    def centre_offset(image, lattice, **_):
        """Offset of each B site from the image centre, in lattice constants."""
        sites = lattice.site_indices("B")
        centre = (np.array(image.shape[::-1]) - 1) / 2
        return Features((lattice.xy[sites] - centre) / lattice.lattice_constant_px, sites, 0)

    try:
        assert DESCRIPTORS[name] is centre_offset
        workflow = Workflow.from_sample(two_families_sample)
        features = compute_descriptor(name, two_families_sample.image, workflow.lattice)
        assert features.values.shape == (len(workflow.lattice.site_indices("B")), 2)
        # a search space that offers it runs it through the whole workflow
        params = tuple(
            Param("descriptor", "categorical", (*BUILT_IN, name), "patch", p.help) if p.name == "descriptor" else p
            for p in SEARCH_SPACE.params
        )
        custom = Workflow.from_sample(two_families_sample, space=SearchSpace(params))
        evaluation = custom.evaluate(dict(descriptor=name, reduction="none", n_clusters=4))
        assert evaluation.reason is None
        assert (evaluation.atom_labels[features.sites] >= 0).all()
    finally:
        DESCRIPTORS.pop(name, None)
    assert name not in DESCRIPTORS


# --------------------------------------------------------------------------- window_pixels


@pytest.mark.parametrize(
    ("window_a", "a_px", "expected"),
    [(1.0, 24.75, 25), (1.0, 24.2, 25), (1.0, 23.6, 25), (2.0, 20.0, 41), (0.5, 29.47, 15), (0.01, 10.0, 3)],
)
def test_window_pixels_examples(window_a, a_px, expected):
    assert window_pixels(window_a, a_px) == expected


@settings(max_examples=200, deadline=None)
@given(st.floats(0.05, 3.0), st.floats(3.0, 80.0))
def test_window_pixels_is_odd_and_close_to_the_request(window_a, a_px):
    pixels = window_pixels(window_a, a_px)
    assert isinstance(pixels, int)
    assert pixels % 2 == 1 and pixels >= 3
    if window_a * a_px >= 3:
        assert abs(pixels - window_a * a_px) <= 1.5  # rounded, then made odd
    else:
        assert pixels == 3


# --------------------------------------------------------------------------- sample_patches


@pytest.mark.parametrize("centre", [(30.3, 20.7), (41.5, 33.25), (25.0, 30.0), (37.8, 26.1)])
def test_patch_is_centred_exactly_on_a_sub_pixel_position(centre):
    image = gaussian_image((60, 80), [centre])
    values, inside = sample_patches(image, np.array([centre]), 11, 9)
    assert inside.tolist() == [True]
    patch = values.reshape(9, 11)  # (height, width)
    assert np.unravel_index(patch.argmax(), patch.shape) == (4, 5)
    # symmetric under each flip, to bilinear-interpolation accuracy
    for flipped in (patch[::-1, ::-1], patch[:, ::-1], patch[::-1, :]):
        assert np.abs(patch - flipped).max() < 0.01 * patch.max()
    # the patch's intensity centroid is the centre itself
    yy, xx = np.mgrid[-4:5, -5:6]
    weight = patch - patch.min()
    assert abs((weight * xx).sum() / weight.sum()) < 0.02
    assert abs((weight * yy).sum() / weight.sum()) < 0.02


def test_patch_centred_on_a_rounded_position_is_not_symmetric():
    """The control for the test above: half a pixel off is easily seen."""
    image = gaussian_image((60, 80), [(41.5, 33.25)])
    values, _ = sample_patches(image, np.array([[42.0, 33.0]]), 11, 9)
    patch = values.reshape(9, 11)
    assert np.abs(patch - patch[::-1, ::-1]).max() > 0.1 * patch.max()


def test_patches_leaving_the_image_are_skipped():
    image = gaussian_image((40, 50), [(25, 20)])
    xy = np.array([
        [25.0, 20.0],   # inside
        [5.0, 20.0],    # window 11 wide: x - 5 = 0, just inside
        [4.9, 20.0],    # leaves on the left
        [44.0, 20.0],   # x + 5 = 49 = cols - 1, just inside
        [44.1, 20.0],   # leaves on the right
        [25.0, 3.9],    # window 9 high: y - 4 < 0
        [25.0, 35.0],   # y + 4 = 39 = rows - 1, inside
        [25.0, 35.5],   # leaves at the bottom
    ])
    values, inside = sample_patches(image, xy, 11, 9)
    assert inside.tolist() == [True, True, False, True, False, False, True, False]
    assert values.shape == (4, 99)


# --------------------------------------------------------------------------- descriptors


def test_patch_descriptor_counts_skipped_sites(two_families_sample, two_families_lattice):
    lattice, image = two_families_lattice, two_families_sample.image
    for sites_name, window in (("B", 1.5), ("all", 1.0), ("A", 2.5)):
        features = compute_descriptor("patch", image, lattice, patch_sites=sites_name, window_x=window, window_y=window)
        requested = lattice.site_indices(sites_name)
        width = window_pixels(window, lattice.lattice_constant_px)
        _, inside = sample_patches(image, lattice.xy[requested], width, width)
        assert features.n_skipped == int((~inside).sum()) > 0
        assert len(features.sites) + features.n_skipped == len(requested)
        np.testing.assert_array_equal(features.sites, requested[inside])
        assert features.values.shape == (len(features.sites), width * width)
        scale = np.abs(features.values).max()
        np.testing.assert_allclose(features.values.mean(axis=1), 0.0, atol=1e-6 * scale)  # mean subtracted


def test_patch_descriptor_window_is_rectangular(two_families_sample, two_families_lattice):
    lattice = two_families_lattice
    features = compute_descriptor("patch", two_families_sample.image, lattice, window_x=2.0, window_y=0.5)
    width = window_pixels(2.0, lattice.lattice_constant_px)
    height = window_pixels(0.5, lattice.lattice_constant_px)
    assert width != height
    assert features.values.shape[1] == width * height


def test_displacement_descriptor(two_families_lattice):
    lattice = two_families_lattice
    features = compute_descriptor("displacement", None, lattice)
    b_sites = lattice.site_indices("B")
    caged = (lattice.cage[b_sites] >= 0).all(axis=1)
    np.testing.assert_array_equal(features.sites, b_sites[caged])
    assert features.n_skipped == int((~caged).sum())
    np.testing.assert_allclose(features.values, lattice.b_displacement[features.sites] / lattice.lattice_constant_px)
    # 30 pm at 16 pm/px over a = 24.75 px: |d| / a ~ 0.076
    assert np.median(np.hypot(*features.values.T)) == pytest.approx(30 / 16 / 24.75, rel=0.15)


def test_lattice_descriptor_is_standardised(two_families_lattice):
    features = compute_descriptor("lattice", None, two_families_lattice)
    assert features.values.shape[1] == 4
    assert np.isin(features.sites, two_families_lattice.cell_sites).all()
    np.testing.assert_allclose(features.values.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(features.values.std(axis=0), 1.0, rtol=1e-9)
    assert len(features.sites) + features.n_skipped == len(two_families_lattice.cell_sites)


def test_lattice_descriptor_on_a_perfect_grid_keeps_constant_columns_finite(perovskite):
    xy, _ = perovskite(n_cells=5, a=20.0)
    lattice = lattice_from_positions(xy)  # all A; every local cell identical
    features = compute_descriptor("lattice", None, lattice)
    assert len(features.sites) > 0
    assert np.isfinite(features.values).all()


def test_patch_and_displacement_blocks_have_equal_weight(two_families_sample, two_families_lattice):
    lattice = two_families_lattice
    combined = compute_descriptor("patch+displacement", two_families_sample.image, lattice, window_x=1.0, window_y=1.0)
    patches = compute_descriptor("patch", two_families_sample.image, lattice, patch_sites="B")
    shifts = compute_descriptor("displacement", None, lattice)
    np.testing.assert_array_equal(combined.sites, np.intersect1d(patches.sites, shifts.sites))
    assert combined.n_skipped == len(lattice.site_indices("B")) - len(combined.sites)
    width = patches.values.shape[1]
    assert combined.values.shape == (len(combined.sites), width + 2)
    patch_block, shift_block = combined.values[:, :width], combined.values[:, width:]
    assert np.sum(patch_block.var(axis=0)) == pytest.approx(1.0)
    assert np.sum(shift_block.var(axis=0)) == pytest.approx(1.0)


def test_descriptors_unavailable_without_image_or_b_sites(perovskite):
    xy, sublattice = perovskite(n_cells=5, a=20.0)
    with_b = lattice_from_positions(xy, sublattice)
    only_a = lattice_from_positions(xy)
    with pytest.raises(DescriptorUnavailable, match="need an image"):
        compute_descriptor("patch", None, with_b)
    with pytest.raises(DescriptorUnavailable, match="need an image"):
        compute_descriptor("patch+displacement", None, with_b)
    with pytest.raises(DescriptorUnavailable, match="B sites"):
        compute_descriptor("displacement", None, only_a)
    assert issubclass(DescriptorUnavailable, Exception)
    assert not issubclass(DescriptorUnavailable, ValueError)  # not a user error
    # the lattice descriptor needs neither
    assert len(compute_descriptor("lattice", None, only_a).sites) > 0


def test_module_docstring_promise_sites_never_dropped_silently(two_families_sample, two_families_lattice):
    for name in BUILT_IN:
        features = descriptors_module.compute_descriptor(name, two_families_sample.image, two_families_lattice)
        assert features.values.shape[0] == len(features.sites)
        assert features.n_skipped >= 0
        assert len(np.unique(features.sites)) == len(features.sites)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("name", ["lattice", "patch+displacement"])
def test_descriptor_without_describable_sites_is_empty_and_quiet(cageless_positions, name):
    """Regression: _standardise / _unit_total_variance took the mean and std of empty arrays
    and numpy warned (seen on random configurations on the real SrTiO3 image)."""
    lattice = lattice_from_positions(*cageless_positions)
    image = np.random.default_rng(0).random((200, 200))
    features = compute_descriptor(name, image, lattice)
    assert len(features.sites) == 0 == features.values.shape[0]
    assert features.n_skipped == len(lattice.site_indices("B"))


def test_displacement_descriptor_without_cages_is_empty(cageless_positions):
    lattice = lattice_from_positions(*cageless_positions)
    features = compute_descriptor("displacement", None, lattice)
    assert features.values.shape == (0, 2)
    assert features.n_skipped == len(lattice.site_indices("B"))


@pytest.mark.parametrize("width, height", [(3, 3), (5, 9), (45, 45)])
def test_unit_step_patches_equal_map_coordinates_up_to_the_border(width, height):
    """The fast unit-step sampling gives map_coordinates' bilinear values, also for windows
    touching the last row and column."""
    from scipy import ndimage

    from ferrogym.workflows.descriptors import sample_patches

    rng = np.random.default_rng(width)
    image = rng.random((60, 70))
    xy = np.vstack([rng.uniform(0, 69, size=(200, 2)) * [1, 59 / 69],
                    [[69 - (width - 1) / 2, 59 - (height - 1) / 2], [(width - 1) / 2, (height - 1) / 2]]])
    values, inside = sample_patches(image, xy, width, height)
    assert inside[-2:].all()
    offset_y, offset_x = np.mgrid[-(height - 1) / 2 : (height + 1) / 2, -(width - 1) / 2 : (width + 1) / 2]
    rows, cols = xy[inside, 1, None, None] + offset_y, xy[inside, 0, None, None] + offset_x
    expected = ndimage.map_coordinates(image, [rows.ravel(), cols.ravel()], order=1).reshape(len(rows), -1)
    np.testing.assert_allclose(values, expected, atol=1e-12)


def test_float32_patches_give_the_labels_of_float64_patches(monkeypatch):
    """Patches are float32 for memory and speed; on random patch configurations the labels agree
    with those of float64 patches (ARI >= 0.99 each)."""
    from sklearn.metrics import adjusted_rand_score

    from ferrogym.workflows import SEARCH_SPACE, SyntheticParams, Workflow, generate
    from ferrogym.workflows import descriptors as descriptors_module

    sample = generate(SyntheticParams(shape=(320, 320), domains="four_stripes"), seed=6)
    rng = np.random.default_rng(6)
    configs = [c for c in (SEARCH_SPACE.sample(rng) for _ in range(80)) if c["descriptor"].startswith("patch")][:20]
    fast = [Workflow.from_sample(sample).evaluate(c).atom_labels for c in configs]
    monkeypatch.setattr(descriptors_module, "PATCH_DTYPE", np.float64)
    reference = Workflow.from_sample(sample)
    assert reference.features(SEARCH_SPACE.canonical(configs[0])).values.dtype == np.float64
    for config, labels in zip(configs, fast):
        assert adjusted_rand_score(reference.evaluate(config).atom_labels, labels) >= 0.99, config
