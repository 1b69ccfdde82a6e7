"""Tests of the synthetic HAADF generator and its ground truth."""

import dataclasses

import numpy as np
import pytest
from scipy.spatial import cKDTree

from ferrogym.workflows.errors import InputError
from ferrogym.workflows.synthetic import (
    ANTIPOLAR,
    SUBSTRATE,
    POLARIZATION_DIRECTIONS,
    GroundTruth,
    SyntheticParams,
    SyntheticSample,
    family_fields,
    generate,
    sample_params,
)

SMALL = (192, 192)


def clean(**kw) -> SyntheticParams:
    """Noise-free small image parameters."""
    return SyntheticParams(**{"shape": SMALL, "dose": None, **kw})


def b_sites(truth: GroundTruth) -> np.ndarray:
    """Boolean mask of the B columns."""
    return truth.sublattice == "B"


def rotate(vectors: np.ndarray, angle_deg: float) -> np.ndarray:
    """Turn (x, y) vectors by angle_deg, +x towards +y."""
    t = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return vectors @ rot.T


def neighbour_pairs(xy: np.ndarray, distance: float) -> np.ndarray:
    """(M, 2) index pairs of points about `distance` apart."""
    pairs = cKDTree(xy).query_pairs(distance * 1.1, output_type="ndarray")
    d = np.linalg.norm(xy[pairs[:, 0]] - xy[pairs[:, 1]], axis=1)
    return pairs[d > distance * 0.9]


def peak_values(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Image values at the pixels nearest to (x, y) points."""
    col, row = np.round(xy).astype(int).T  # (x, y) -> numpy (row, col)
    return image[row, col]


def on_pixels(**kw) -> SyntheticParams:
    """Noise-free single domain whose columns all sit on pixel centres, so that peaks read off
    pixels: a = 22 px (396 pm at 18 pm per pixel) from the centre pixel of a 199 x 199 image and
    B columns at their cage centres (11 px off), with no off-centring."""
    return clean(**{"shape": (199, 199), "pixel_size_pm": 18.0, "domains": "single", "displacement_pm": 0.0, **kw})


def isolated(**kw) -> SyntheticParams:
    """Noise-free single domain of columns 80 px apart (1600 pm at 20 pm per pixel, A-B 57 px), so
    that skirts of up to 130 pm (6.5 px, rendered out to 26 px) do not reach a neighbour's disc of
    radius 27 px; the centre pixel (128, 128) of a 257 x 257 image holds an A column."""
    return clean(**{"shape": (257, 257), "pixel_size_pm": 20.0, "lattice_constant_pm": 1600.0, "domains": "single",
                    "displacement_pm": 0.0, "crosstalk": 0.0, **kw})


def disc(image: np.ndarray, centre_xy, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Values of the pixels within radius of an (x, y) point, and their (x, y) offsets from it."""
    col, row = np.round(centre_xy).astype(int)  # (x, y) -> numpy (row, col)
    r = int(np.ceil(radius))
    dy, dx = np.mgrid[-r: r + 1, -r: r + 1]  # numpy (row, col) -> named dy, dx
    offsets = np.stack([col + dx - centre_xy[0], row + dy - centre_xy[1]], axis=-1)
    inside = np.hypot(dx, dy) <= radius
    return image[row + dy, col + dx][inside], offsets[inside]


# --------------------------------------------------------------------------- constants, types


def test_polarization_directions_are_the_four_diagonals():
    expected = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) / np.sqrt(2)
    np.testing.assert_allclose(POLARIZATION_DIRECTIONS, expected)
    assert ANTIPOLAR == 4


def test_truth_shapes_and_dtypes():
    sample = generate(SyntheticParams(shape=(160, 200)), seed=1)
    t = sample.truth
    n = len(t.xy)
    assert isinstance(sample, SyntheticSample)
    assert sample.image.shape == (160, 200) and sample.image.dtype == np.float64
    assert t.xy.shape == (n, 2) and t.xy.dtype == np.float64
    assert t.sublattice.shape == (n,) and t.sublattice.dtype == np.dtype("<U1")
    assert set(t.sublattice) == {"A", "B"}
    assert t.variant.shape == (n,) and np.issubdtype(t.variant.dtype, np.integer)
    assert t.b_displacement.shape == (n, 2)
    assert t.wall_mask.shape == (160, 200) and t.wall_mask.dtype == bool
    assert t.pixel_size_pm == 16.0 and t.lattice_constant_px == pytest.approx(396 / 16)


def test_truth_holds_every_column_centred_inside_and_no_other():
    p = clean(lattice_rotation_deg=7.0, drift_shear=0.04)
    t = generate(p).truth
    x, y = t.xy.T
    assert np.all((x >= 0) & (x <= SMALL[1] - 1) & (y >= 0) & (y <= SMALL[0] - 1))
    cells = np.prod(SMALL) / t.lattice_constant_px**2
    assert np.sum(t.sublattice == "A") == pytest.approx(cells, rel=0.15)
    assert np.sum(t.sublattice == "B") == pytest.approx(cells, rel=0.15)


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_the_same_sample():
    p = SyntheticParams(shape=SMALL, scan_jitter_px=0.3, background=0.2, sm_fraction=0.1, read_noise=1.0)
    s1, s2 = generate(p, seed=5), generate(p, seed=5)
    np.testing.assert_array_equal(s1.image, s2.image)
    np.testing.assert_array_equal(s1.truth.xy, s2.truth.xy)


def test_int_seed_and_generator_from_it_agree():
    p = SyntheticParams(shape=SMALL)
    np.testing.assert_array_equal(generate(p, 3).image, generate(p, np.random.default_rng(3)).image)


def test_different_seeds_give_different_images():
    p = SyntheticParams(shape=SMALL, sm_fraction=0.1)
    assert not np.array_equal(generate(p, seed=0).image, generate(p, seed=1).image)


def test_no_global_random_state_used():
    np.random.seed(0)
    before = np.random.random()
    np.random.seed(0)
    generate(SyntheticParams(shape=SMALL, scan_jitter_px=0.2))
    assert np.random.random() == before


# --------------------------------------------------------------------------- B displacement


@pytest.mark.parametrize("variant", [0, 1, 2, 3])
@pytest.mark.parametrize("rotation", [0.0, 12.0])
def test_b_displacement_is_against_the_variant_polarization(variant, rotation):
    p = clean(domains="single", variants=(variant, (variant + 1) % 4), lattice_rotation_deg=rotation)
    t = generate(p).truth
    b = b_sites(t)
    assert np.all(t.variant == variant)
    expected = -(30.0 / 16.0) * rotate(POLARIZATION_DIRECTIONS[variant], rotation)
    np.testing.assert_allclose(t.b_displacement[b], np.broadcast_to(expected, (b.sum(), 2)), atol=1e-12)
    polarization = -t.b_displacement[b]
    assert np.all(polarization @ rotate(POLARIZATION_DIRECTIONS[variant], rotation) > 0)
    np.testing.assert_array_equal(t.b_displacement[~b], 0.0)


def test_b_displacement_equals_b_minus_centre_of_four_a_neighbours():
    t = generate(clean(domains="two_families", lattice_rotation_deg=4.0, sm_fraction=0.15)).truth
    a_xy, b_xy = t.xy[~b_sites(t)], t.xy[b_sites(t)]
    dist, idx = cKDTree(a_xy).query(b_xy, k=4)
    full_cage = dist.max(axis=1) < 0.8 * t.lattice_constant_px
    measured = b_xy - a_xy[idx].mean(axis=1)
    assert full_cage.sum() > 30
    np.testing.assert_allclose(measured[full_cage], t.b_displacement[b_sites(t)][full_cage], atol=1e-9)


# --------------------------------------------------------------------------- domain patterns


@pytest.mark.parametrize("angle", [0.0, 30.0, 45.0, 120.0])
def test_stripe_walls_run_at_the_wall_angle(angle):
    p = clean(shape=(256, 256), domains="stripes", wall_angle_deg=angle, period_cells=6.0)
    t = generate(p).truth
    b = b_sites(t)
    xy, variant = t.xy[b], t.variant[b]
    assert set(variant) == set(p.variants)
    pairs = neighbour_pairs(xy, t.lattice_constant_px)
    crossing = pairs[variant[pairs[:, 0]] != variant[pairs[:, 1]]]
    midpoints = (xy[crossing[:, 0]] + xy[crossing[:, 1]]) / 2
    # all wall crossings lie on lines along `angle`: their distance along the normal takes few values
    normal = rotate(np.array([0.0, 1.0]), angle)
    along_normal = np.sort(midpoints @ normal)
    gaps = np.diff(along_normal)
    wall_spacing = p.period_cells * t.lattice_constant_px / 2
    assert np.all((gaps < t.lattice_constant_px) | (np.abs(gaps - wall_spacing) < t.lattice_constant_px))
    # and a variant never changes along the wall direction within a domain
    tangent = rotate(np.array([1.0, 0.0]), angle)
    steps = (xy[crossing[:, 1]] - xy[crossing[:, 0]]) @ normal
    assert np.all(np.abs(steps) > 0.3 * t.lattice_constant_px)
    assert np.abs((xy[crossing[:, 1]] - xy[crossing[:, 0]]) @ tangent).max() < t.lattice_constant_px


def test_wall_mask_orientation_follows_the_wall_angle():
    from skimage.measure import label, regionprops

    t = generate(clean(shape=(256, 256), domains="stripes", wall_angle_deg=30.0, period_cells=8.0)).truth
    regions = [r for r in regionprops(label(t.wall_mask)) if r.area > 2000]
    assert regions
    for region in regions:
        rows, cols = region.coords.T  # numpy (row, col) -> y, x
        xy = np.stack([cols, rows], axis=1) - region.centroid[::-1]
        direction = np.linalg.eigh(xy.T @ xy)[1][:, -1]
        angle = np.rad2deg(np.arctan2(direction[1], direction[0])) % 180
        assert angle == pytest.approx(30.0, abs=2.0)


def test_two_families_give_all_four_variants_and_flip_one_component_per_family():
    t = generate(clean(shape=(256, 256), domains="two_families", period_cells=6.0, period2_cells=8.0)).truth
    b = b_sites(t)
    xy, variant = t.xy[b], t.variant[b]
    assert set(variant) == {0, 1, 2, 3}
    signs = np.sign(POLARIZATION_DIRECTIONS[variant])
    pairs = neighbour_pairs(xy, t.lattice_constant_px)
    step = xy[pairs[:, 1]] - xy[pairs[:, 0]]
    flips = signs[pairs[:, 0]] != signs[pairs[:, 1]]
    vertical = np.abs(step[:, 1]) > np.abs(step[:, 0])
    # family 1 (walls along x, crossed vertically) flips P_x; family 2 (along y) flips P_y
    assert flips[vertical, 0].any() and not flips[vertical, 1].any()
    assert flips[~vertical, 1].any() and not flips[~vertical, 0].any()


def test_single_domain_has_no_walls():
    t = generate(clean(domains="single")).truth
    assert len(set(t.variant)) == 1
    assert not t.wall_mask.any()


def test_needle_is_a_tapered_wedge_from_the_left_border():
    p = clean(shape=(256, 320), domains="needle", variants=(2, 3), needle_width_cells=6.0, needle_length_fraction=0.6)
    t = generate(p).truth
    b = b_sites(t)
    needle = t.xy[b][t.variant[b] == 3]
    a = t.lattice_constant_px
    assert len(needle) > 5 and set(t.variant[b]) == {2, 3}
    tip_x = 0.6 * (320 - 1)
    assert needle[:, 0].max() < tip_x and needle[:, 0].min() < a
    near_base = needle[needle[:, 0] < 0.25 * tip_x]
    near_tip = needle[needle[:, 0] > 0.75 * tip_x]
    assert np.ptp(near_base[:, 1]) > np.ptp(near_tip[:, 1]) + a
    assert np.ptp(near_base[:, 1]) <= 6.0 * a


# --------------------------------------------------------------------------- Sm and the antipolar phase


def test_sm_dims_a_columns_by_about_five_percent_at_fourteen_percent():
    # without cross-talk and skirt, which pass some of the dimming to the B neighbours (tested below)
    own_peaks = dict(crosstalk=0.0, skirt_fraction=0.0)
    undoped = generate(clean(shape=(256, 256), domains="single", **own_peaks))
    doped = generate(clean(shape=(256, 256), domains="single", sm_fraction=0.14, antipolar_threshold=0.2, **own_peaks))
    a = undoped.truth.sublattice == "A"
    ratio = peak_values(doped.image, doped.truth.xy[a]).mean() / peak_values(undoped.image, undoped.truth.xy[a]).mean()
    assert ratio == pytest.approx(1 - 0.35 * 0.14, abs=0.01)
    b = ~a
    np.testing.assert_allclose(peak_values(doped.image, doped.truth.xy[b]),
                               peak_values(undoped.image, undoped.truth.xy[b]))


def test_antipolar_phase_appears_only_above_threshold():
    below = generate(clean(shape=(256, 256), sm_fraction=0.11)).truth
    above = generate(clean(shape=(256, 256), sm_fraction=0.13, antipolar_area_fraction=0.3)).truth
    assert ANTIPOLAR not in below.variant
    antipolar = above.variant == ANTIPOLAR
    assert antipolar.mean() == pytest.approx(0.3, abs=0.08)
    assert np.all(above.xy[antipolar, 1] > above.xy[~antipolar, 1].min())  # a band, at the bottom
    np.testing.assert_array_equal(above.b_displacement[antipolar], 0.0)


def test_antipolar_a_columns_shift_alternately_by_row():
    p = clean(shape=(256, 256), domains="single", sm_fraction=0.15, antipolar_area_fraction=0.5)
    t = generate(p).truth
    a_px = t.lattice_constant_px
    a_sites = (t.sublattice == "A") & (t.variant == ANTIPOLAR)
    x, y = t.xy[a_sites].T
    centre_x, centre_y = (256 - 1) / 2, (256 - 1) / 2
    shift = (x - centre_x) - np.round((x - centre_x) / a_px) * a_px
    row = np.round((y - centre_y) / a_px).astype(int)
    expected = np.where(row % 2 == 0, 1.0, -1.0) * 20.0 / 16.0
    np.testing.assert_allclose(shift, expected, atol=1e-9)


# --------------------------------------------------------------------------- rendering


def test_noise_free_peaks_sit_at_truth_positions():
    sample = generate(clean(shape=(256, 256), lattice_rotation_deg=3.0))
    image, t = sample.image, sample.truth
    interior = np.all((t.xy > 8) & (t.xy < 256 - 9), axis=1)
    for x, y in t.xy[interior][::7]:
        col, row = int(round(x)), int(round(y))  # (x, y) -> numpy (row, col)
        window = image[row - 3: row + 4, col - 3: col + 4]
        peak_row, peak_col = np.unravel_index(np.argmax(window), window.shape)
        assert abs(col - 3 + peak_col - x) <= 0.5 + 1e-9
        assert abs(row - 3 + peak_row - y) <= 0.5 + 1e-9


@pytest.mark.parametrize("drift", [0.0, 0.04])
def test_column_centres_of_mass_sit_at_truth_positions(drift):
    # the Gaussian cores alone: a small window cuts the skirts unevenly (the skirt's centre: below)
    sample = generate(clean(shape=(256, 256), lattice_rotation_deg=3.0, drift_shear=drift, skirt_fraction=0.0))
    image, t = sample.image, sample.truth
    interior = np.all((t.xy > 10) & (t.xy < 256 - 11), axis=1)
    half = 6
    offsets = np.arange(-half, half + 1)
    for x, y in t.xy[interior][::5]:
        col, row = int(round(x)), int(round(y))  # (x, y) -> numpy (row, col)
        window = image[row - half: row + half + 1, col - half: col + half + 1]
        com = np.array([window.sum(axis=0) @ offsets, window.sum(axis=1) @ offsets]) / window.sum() + [col, row]
        np.testing.assert_allclose(com, [x, y], atol=0.05)


def test_undoped_a_peak_has_unit_height_and_b_the_ab_ratio():
    # a Gaussian profile (no skirt), so that the value half a pixel off the peak is known
    sample = generate(clean(shape=(256, 256), domains="single", pixel_size_pm=19.8, lattice_rotation_deg=0.0,
                            skirt_fraction=0.0))
    t = sample.truth
    a = t.sublattice == "A"
    # a = 20 px and the centre is at 127.5: A columns sit exactly on pixel corners, equal offsets
    values_a = peak_values(sample.image, t.xy[a] + 0.5)
    assert np.ptp(values_a) < 1e-6
    offset = 0.5 / (35.0 / 19.8)
    assert values_a.mean() == pytest.approx(np.exp(-(offset**2)), rel=1e-3)


def test_mistilt_offsets_rendered_b_columns_but_not_the_truth():
    offset = (1.5, -1.0)
    plain = generate(clean(domains="single"))
    tilted = generate(clean(domains="single", mistilt_offset_px=offset))
    np.testing.assert_array_equal(plain.truth.xy, tilted.truth.xy)
    np.testing.assert_array_equal(plain.truth.b_displacement, tilted.truth.b_displacement)
    b = b_sites(tilted.truth) & np.all((tilted.truth.xy > 8) & (tilted.truth.xy < SMALL[0] - 9), axis=1)
    for x, y in tilted.truth.xy[b][:5]:
        col, row = int(round(x + offset[0])), int(round(y + offset[1]))
        window = tilted.image[row - 2: row + 3, col - 2: col + 3]
        peak_row, peak_col = np.unravel_index(np.argmax(window), window.shape)
        assert abs(col - 2 + peak_col - (x + offset[0])) <= 0.5 + 1e-9
        assert abs(row - 2 + peak_row - (y + offset[1])) <= 0.5 + 1e-9


@pytest.mark.parametrize("dose", [50.0, 800.0])
def test_poisson_noise_scales_with_dose(dose):
    kw = dict(shape=(256, 256), sm_fraction=0.05, background=0.1)
    expected = generate(SyntheticParams(**kw, dose=None), seed=2).image * dose
    noisy = generate(SyntheticParams(**kw, dose=dose), seed=2).image
    assert noisy.sum() / expected.sum() == pytest.approx(1.0, abs=0.01)
    # Poisson: variance of the residual equals the mean
    assert np.sum((noisy - expected) ** 2) / expected.sum() == pytest.approx(1.0, abs=0.05)
    assert np.all(noisy == np.round(noisy))


def test_read_noise_adds_gaussian_counts():
    kw = dict(shape=(256, 256), dose=100.0)
    plain = generate(SyntheticParams(**kw), seed=4).image
    noisy = generate(SyntheticParams(**kw, read_noise=3.0), seed=4).image
    assert np.std(noisy - plain) == pytest.approx(3.0, rel=0.05)


def test_background_is_smooth_and_scaled():
    flat = generate(clean(domains="single")).image
    with_bg = generate(clean(domains="single", background=0.4)).image
    difference = with_bg - flat
    assert difference.max() == pytest.approx(0.4, rel=1e-6)
    assert difference.min() >= 0
    assert np.abs(np.diff(difference, axis=1)).max() < 0.01


def test_scan_jitter_moves_rows_but_not_the_truth():
    still = generate(clean(domains="single"), seed=1)
    jittered = generate(clean(domains="single", scan_jitter_px=1.0), seed=1)
    np.testing.assert_array_equal(still.truth.xy, jittered.truth.xy)
    assert not np.allclose(still.image, jittered.image)


# --------------------------------------------------------------------------- Z-contrast, probe skirt, cross-talk


@pytest.mark.parametrize("ab_ratio", [1 / 1.5, 2.5, 10.0])
@pytest.mark.parametrize("crosstalk, skirt_fraction", [(0.015, 0.3), (0.03, 0.45), (0.0, 0.0)])
def test_rendered_peaks_give_the_documented_ab_ratio(ab_ratio, crosstalk, skirt_fraction):
    p = on_pixels(ab_ratio=ab_ratio, crosstalk=crosstalk, skirt_fraction=skirt_fraction)
    sample = generate(p)
    a = sample.truth.sublattice == "A"
    peaks = peak_values(sample.image, sample.truth.xy)
    np.testing.assert_allclose(peaks[a], 1.0, rtol=1e-3)  # the image's unit, every A column in the image
    np.testing.assert_allclose(peaks[~a], 1 / p.rendered_ab_ratio, rtol=1e-3)
    if crosstalk == skirt_fraction == 0:
        assert p.rendered_ab_ratio == pytest.approx(ab_ratio, rel=1e-9)


def test_default_rendered_ratio_is_that_of_bifeo3():
    p = SyntheticParams()
    assert 1 / p.ab_ratio == pytest.approx(0.14, abs=0.01)  # Fe against Bi at Z^1.7
    assert 1 / p.rendered_ab_ratio == pytest.approx(0.2, abs=0.015)  # a multislice simulation's B/A


@pytest.mark.parametrize("ab_ratio", [10.0, 2.5, 1 / 1.5])
def test_crosstalk_moves_the_b_over_a_peak_ratio_by_the_documented_share(ab_ratio):
    k = 0.03
    own_b = 1 / ab_ratio
    # each column keeps 1 - 4k of its own scattering and records k of each of its four neighbours'
    expected = ((1 - 4 * k) * own_b + 4 * k) / ((1 - 4 * k) + 4 * k * own_b)
    p = on_pixels(ab_ratio=ab_ratio, crosstalk=k, skirt_fraction=0.0)
    assert 1 / p.rendered_ab_ratio == pytest.approx(expected, rel=1e-9)
    sample = generate(p)
    a = sample.truth.sublattice == "A"
    peaks = peak_values(sample.image, sample.truth.xy)
    np.testing.assert_allclose(peaks[~a] / peaks[a].mean(), expected, rtol=1e-6)
    if ab_ratio == 10.0:
        assert expected == pytest.approx(0.233, abs=0.001)  # dim B between bright A: 0.1 looks like 0.23


def test_crosstalk_passes_a_share_of_each_a_column_to_its_four_b_neighbours():
    k = 0.03
    p = on_pixels(sm_fraction=0.2, antipolar_threshold=0.5, crosstalk=k, skirt_fraction=0.0)
    t = generate(p, seed=3).truth
    image = generate(p, seed=3).image
    a = t.sublattice == "A"
    peaks = peak_values(image, t.xy)
    own_b = 1 / p.ab_ratio
    unit = (1 - 4 * k) + 4 * k * own_b  # what an undoped A column records: the image's unit peak
    own_a = (peaks[a] * unit - 4 * k * own_b) / (1 - 4 * k)  # every A column's B neighbours are alike
    sm_atoms = (1 - own_a) / 0.35 * 20  # Sm atoms out of 20 in each A column: whole numbers, varied
    np.testing.assert_allclose(sm_atoms, np.round(sm_atoms), atol=1e-6)
    assert np.ptp(np.round(sm_atoms)) >= 4
    distance, cage = cKDTree(t.xy[a]).query(t.xy[~a], k=4)
    full_cage = distance.max(axis=1) < 0.75 * t.lattice_constant_px
    assert full_cage.sum() > 30
    expected_b = ((1 - 4 * k) * own_b + k * own_a[cage].sum(axis=1)) / unit
    np.testing.assert_allclose(peaks[~a][full_cage], expected_b[full_cage], rtol=1e-9)


@pytest.mark.parametrize("skirt_fraction, skirt_sigma_pm", [(0.3, 100.0), (0.15, 70.0), (0.45, 130.0)])
def test_skirt_carries_its_share_of_an_isolated_column(skirt_fraction, skirt_sigma_pm):
    p = isolated(skirt_fraction=skirt_fraction, skirt_sigma_pm=skirt_sigma_pm)
    image = generate(p).image
    core, skirt = p.column_sigma_px, p.skirt_sigma_px
    values, offsets = disc(image, (128, 128), 4 * skirt + 1)
    assert image[128, 128] == pytest.approx(1.0, rel=1e-4)  # the skirt is cut at 4 sigma and renormalised
    # a unit peak of (1 - f) N(core) + f N(skirt), N unit-integral 2-D Gaussians, has this integral
    integral = 1 / ((1 - skirt_fraction) / (2 * np.pi * core**2) + skirt_fraction / (2 * np.pi * skirt**2))
    assert values.sum() == pytest.approx(integral, rel=1e-3)
    # and a mean squared radius of 2 ((1 - f) core^2 + f skirt^2): the skirt's share
    mean_square_radius = np.sum(values * np.sum(offsets**2, axis=1)) / values.sum()
    share = (mean_square_radius / 2 - core**2) / (skirt**2 - core**2)
    assert share == pytest.approx(skirt_fraction, abs=2e-3)


@pytest.mark.parametrize("drift", [0.0, 0.03])
def test_skirt_is_centred_on_its_column(drift):
    p = isolated(shape=(256, 256), lattice_rotation_deg=3.0, drift_shear=drift, skirt_fraction=0.45,
                 skirt_sigma_pm=130.0)
    sample = generate(p)
    radius = 4 * p.skirt_sigma_px + 1
    inside = np.all((sample.truth.xy > radius + 1) & (sample.truth.xy < 256 - radius - 2), axis=1)
    assert inside.sum() >= 2
    for xy in sample.truth.xy[inside]:
        values, offsets = disc(sample.image, xy, radius)
        np.testing.assert_allclose(values @ offsets / values.sum(), 0.0, atol=0.01)


def test_skirt_and_crosstalk_leave_the_truth_alone():
    plain = generate(clean(shape=(256, 256), skirt_fraction=0.0, crosstalk=0.0, sm_fraction=0.15)).truth
    physical = generate(clean(shape=(256, 256), skirt_fraction=0.45, crosstalk=0.03, sm_fraction=0.15)).truth
    for name in ("xy", "sublattice", "variant", "b_displacement", "wall_mask"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(physical, name))


# --------------------------------------------------------------------------- wall mask


def test_wall_mask_covers_walls_and_about_one_cell_per_wall():
    p = clean(shape=(256, 256), domains="stripes", wall_angle_deg=0.0, period_cells=8.0)
    t = generate(p).truth
    b = b_sites(t)
    xy, variant = t.xy[b], t.variant[b]
    pairs = neighbour_pairs(xy, t.lattice_constant_px)
    crossing = pairs[variant[pairs[:, 0]] != variant[pairs[:, 1]]]
    assert len(crossing) > 0
    midpoints = (xy[crossing[:, 0]] + xy[crossing[:, 1]]) / 2
    assert peak_values(t.wall_mask, midpoints).all()
    same = pairs[variant[pairs[:, 0]] == variant[pairs[:, 1]]]
    same_y = xy[same][:, :, 1].mean(axis=1)
    far = np.min(np.abs(same_y[:, None] - midpoints[None, :, 1]), axis=1) > t.lattice_constant_px
    assert not peak_values(t.wall_mask, xy[same[far]].mean(axis=1)).any()
    n_walls = len(np.unique(np.round(midpoints[:, 1])))
    assert n_walls >= 2
    assert t.wall_mask.all(axis=1).sum() == pytest.approx(n_walls * t.lattice_constant_px, abs=2 * n_walls)
    assert t.wall_mask.all(axis=1).sum() == t.wall_mask.any(axis=1).sum()


def test_wall_mask_follows_the_drift():
    t = generate(clean(shape=(256, 256), domains="stripes", wall_angle_deg=90.0, period_cells=8.0,
                       drift_shear=0.05)).truth
    rows_with_wall = np.nonzero(t.wall_mask[0])[0].mean(), np.nonzero(t.wall_mask[-1])[0].mean()
    assert rows_with_wall[1] - rows_with_wall[0] == pytest.approx(0.05 * 255, abs=1.0)


# --------------------------------------------------------------------------- sample_params


def test_sample_params_draws_valid_varied_images_with_walls():
    rng = np.random.default_rng(0)
    drawn = [sample_params(rng, shape=(128, 128)) for _ in range(40)]
    assert {p.domains for p in drawn} == {"stripes", "two_families", "needle"}
    for p in drawn:
        assert 12 <= p.pixel_size_pm <= 20 and 6 <= p.period_cells <= 16 and 80 <= p.dose <= 400
        assert 0 <= p.sm_fraction <= 0.2 and abs(p.lattice_rotation_deg) <= 5
    in_lattice_frame = np.array([(p.wall_angle_deg - p.lattice_rotation_deg) % 45 for p in drawn])
    low_index = np.minimum(in_lattice_frame, 45 - in_lattice_frame) < 1e-9
    assert 0.5 < np.mean(low_index) < 1.0
    sample = generate(drawn[0], seed=0)
    assert len(set(sample.truth.variant)) >= 2


def test_sample_params_respects_fixed_fields_and_leaves_the_rest_unchanged():
    free = sample_params(np.random.default_rng(7))
    fixed = sample_params(np.random.default_rng(7), domains="needle", dose=None, shape=(200, 240))
    assert fixed.domains == "needle" and fixed.dose is None and fixed.shape == (200, 240)
    assert fixed.read_noise == 0.0
    assert fixed.period_cells == free.period_cells and fixed.pixel_size_pm == free.pixel_size_pm


def test_sample_params_draws_z_contrast_from_bi_fe_to_sr_ru():
    rng = np.random.default_rng(1)
    drawn = [sample_params(rng, shape=(128, 128)) for _ in range(2000)]
    own = np.array([1 / p.ab_ratio for p in drawn])  # B/A of the columns' own scattering
    rendered = np.array([1 / p.rendered_ab_ratio for p in drawn])
    assert own.min() >= 0.1 and own.max() <= 1.5 and own.min() < 0.102 and own.max() > 1.45
    # log-uniform: half of the draws below the geometric middle, sqrt(0.1 * 1.5)
    assert np.mean(own < np.sqrt(0.15)) == pytest.approx(0.5, abs=0.04)
    assert rendered.min() >= 0.1 and rendered.max() <= 1.5 and rendered.min() < 0.12
    skirt = np.array([p.skirt_fraction for p in drawn])
    skirt_sigma = np.array([p.skirt_sigma_pm for p in drawn])
    crosstalk = np.array([p.crosstalk for p in drawn])
    assert 0.15 <= skirt.min() < 0.16 and 0.44 < skirt.max() <= 0.45
    assert 70 <= skirt_sigma.min() < 72 and 128 < skirt_sigma.max() <= 130
    assert 0 <= crosstalk.min() < 0.001 and 0.029 < crosstalk.max() <= 0.03


def test_phase_boundaries_draw_substrates_from_srtio3_to_srruo3():
    drawn = [family_fields("phase_boundary", np.random.default_rng(seed)) for seed in range(2000)]
    own = np.array([1 / fields["substrate_ab_ratio"] for fields in drawn])
    assert own.min() >= 0.4 and own.max() <= 1.5 and own.min() < 0.41 and own.max() > 1.45
    assert np.mean(own > 1) == pytest.approx(np.log(1.5) / np.log(1.5 / 0.4), abs=0.03)  # brightness flips


def test_fixing_any_drawn_field_leaves_every_other_draw_unchanged():
    free = sample_params(np.random.default_rng(11))
    other = sample_params(np.random.default_rng(12))
    names = [f.name for f in dataclasses.fields(SyntheticParams)]
    drawn_names = [name for name in names if getattr(free, name) != getattr(other, name)]
    assert {"ab_ratio", "skirt_fraction", "skirt_sigma_pm", "crosstalk", "dose", "domains"} <= set(drawn_names)
    for name in drawn_names:
        fixed = sample_params(np.random.default_rng(11), **{name: getattr(other, name)})
        for unchanged in names:
            if unchanged != name:
                assert getattr(fixed, unchanged) == getattr(free, unchanged), (name, unchanged)


def test_sample_params_rejects_unknown_fields_naming_valid_ones():
    with pytest.raises(InputError, match="unknown field.*perod_cells.*period_cells"):
        sample_params(np.random.default_rng(0), perod_cells=5)


def test_sample_params_validates_fixed_values():
    with pytest.raises(InputError, match="dose"):
        sample_params(np.random.default_rng(0), dose=-3.0)


# --------------------------------------------------------------------------- families a reward must resolve or refuse


def test_four_stripes_take_the_four_variants_in_turn():
    p = clean(shape=(256, 256), domains="four_stripes", wall_angle_deg=0.0, period_cells=6.0, variants=(1, 0))
    t = generate(p).truth
    b = b_sites(t)
    rows = np.round((t.xy[b, 1] - t.xy[b, 1].min()) / p.lattice_constant_px).astype(int)
    per_row = [np.unique(t.variant[b][rows == r]) for r in np.unique(rows)]
    assert all(len(v) == 1 for v in per_row)  # walls along x: one variant per lattice row
    sequence = [int(v[0]) for v in per_row]
    changes = [(later - earlier) % 4 for earlier, later in zip(sequence, sequence[1:]) if later != earlier]
    assert set(sequence) == {0, 1, 2, 3} and set(changes) == {1}  # neighbours 90 degrees apart
    assert p.family == "four_stripes"


def test_rotation_turns_the_polarization_smoothly_in_one_domain():
    p = clean(shape=(256, 256), domains="rotation", rotation_span_deg=90.0, wall_angle_deg=0.0, variants=(0, 1))
    t = generate(p).truth
    b = b_sites(t)
    assert set(t.variant.tolist()) == {0}
    displacement = t.b_displacement[b]
    size = p.displacement_pm / p.pixel_size_pm
    assert np.allclose(np.hypot(*displacement.T), size)
    angle = np.degrees(np.arctan2(-displacement[:, 1], -displacement[:, 0]))  # polarization direction
    assert np.ptp(angle) == pytest.approx(90.0 * np.ptp(t.xy[b, 1]) / 256, abs=3.0)
    assert np.corrcoef(angle, t.xy[b, 1])[0, 1] > 0.99  # turns steadily across the walls' normal (y)


def test_substrate_is_a_second_non_polar_phase_along_the_top():
    p = clean(shape=(256, 256), domains="stripes", substrate_fraction=0.3, substrate_ab_ratio=1.5, ab_ratio=5.0)
    sample = generate(p)
    t = sample.truth
    substrate = t.variant == SUBSTRATE
    assert 0.2 < substrate.mean() < 0.4
    assert t.xy[substrate, 1].max() < t.xy[~substrate, 1].mean()  # on top (small y)
    assert np.allclose(t.b_displacement[substrate], 0.0)
    assert p.family == "phase_boundary"
    peaks = sample.image[np.round(t.xy[:, 1]).astype(int), np.round(t.xy[:, 0]).astype(int)]
    b = b_sites(t)
    assert np.median(peaks[b & substrate]) > 1.3 * np.median(peaks[b & ~substrate])  # B brighter there
    assert t.wall_mask.any()


@pytest.mark.parametrize("tilt", [-8.0, 0.0, 12.0])
def test_the_substrate_interface_can_be_tilted(tilt):
    p = clean(shape=(256, 256), domains="single", substrate_fraction=0.4, interface_tilt_deg=tilt)
    t = generate(p).truth
    substrate = t.variant == SUBSTRATE
    # the interface: for each column of the image, the lowest substrate row; a line of slope tan(tilt)
    columns = np.round(t.xy[:, 0] / p.lattice_constant_px).astype(int)
    xs, edge = [], []
    for c in np.unique(columns):
        inside = substrate & (columns == c)
        if inside.any() and (~substrate & (columns == c)).any():
            xs.append(t.xy[columns == c, 0].mean())
            edge.append(t.xy[inside, 1].max())
    slope = np.polyfit(xs, edge, 1)[0]
    assert np.degrees(np.arctan(slope)) == pytest.approx(tilt, abs=3.0)
    assert 0.3 < substrate.mean() < 0.5


def test_intensity_gradient_scales_the_columns_across_the_image():
    p = clean(shape=(256, 256), domains="single", intensity_gradient=0.8, gradient_angle_deg=0.0)
    sample = generate(p)
    t = sample.truth
    a = t.sublattice == "A"
    peaks = sample.image[np.round(t.xy[a, 1]).astype(int), np.round(t.xy[a, 0]).astype(int)]
    left, right = peaks[t.xy[a, 0] < 64], peaks[t.xy[a, 0] > 192]
    assert np.median(right) / np.median(left) == pytest.approx((1 + 0.8 * 0.375) / (1 - 0.8 * 0.375), rel=0.1)
    assert not t.wall_mask.any()


def test_strain_gradient_changes_the_local_lattice_constant():
    p = clean(shape=(256, 256), domains="single", strain_gradient=0.1, gradient_angle_deg=0.0)
    t = generate(p).truth
    a = t.sublattice == "A"
    xy = t.xy[a]
    row = np.abs(xy[:, 1] - np.median(xy[:, 1])) < p.lattice_constant_px / 2
    x = np.sort(xy[row, 0])
    spacing, middle = np.diff(x), (x[1:] + x[:-1]) / 2
    slope = np.polyfit(middle / 256, spacing / p.lattice_constant_px, 1)[0]
    assert slope == pytest.approx(0.1, rel=0.15)


def cell_angles_deg(xy: np.ndarray, a: float) -> np.ndarray:
    """Angle between each A column's bonds to its +x and +y neighbours (degrees; NaN where one
    is missing)."""
    tree = cKDTree(xy)
    dx, ix = tree.query(xy + [a, 0.0])
    dy, iy = tree.query(xy + [0.0, a])
    u, v = xy[ix] - xy, xy[iy] - xy
    cosine = np.sum(u * v, axis=1) / a**2
    return np.where((dx < a / 4) & (dy < a / 4), np.degrees(np.arccos(np.clip(cosine, -1, 1))), np.nan)


@pytest.mark.parametrize("domains", ["stripes", "four_stripes"])
def test_twin_shear_shears_neighbouring_domains_oppositely_parallel_to_the_walls(domains):
    shear = 0.04
    p = clean(shape=(320, 320), domains=domains, variants=(0, 1), wall_angle_deg=0.0, period_cells=12.0,
              twin_shear=shear)
    t = generate(p).truth
    a_sites = t.sublattice == "A"
    angle = cell_angles_deg(t.xy[a_sites], p.lattice_constant_px)
    variant = t.variant[a_sites]
    # a shear of +/- s/2 turns the cell angle by -/+ s/2: the domains differ by the whole shear
    difference = np.nanmedian(angle[np.isin(variant, (1, 3))]) - np.nanmedian(angle[np.isin(variant, (0, 2))])
    assert abs(difference) == pytest.approx(np.degrees(shear), rel=0.1)


def test_walls_between_variants_of_one_strain_class_are_not_twins():
    params = dict(domains="stripes", variants=(0, 2), wall_angle_deg=30.0)
    plain, twinned = generate(clean(**params)).truth, generate(clean(**params, twin_shear=0.05)).truth
    np.testing.assert_array_equal(plain.xy, twinned.xy)


def test_twin_shear_keeps_the_lattice_continuous_across_walls():
    p = clean(shape=(256, 256), domains="two_families", wall_angle_deg=0.0, wall_angle2_deg=90.0, period_cells=8.0,
              period2_cells=10.0, twin_shear=0.08)
    truth = generate(p).truth
    xy = truth.xy[truth.sublattice == "A"]
    distance, _ = cKDTree(xy).query(xy, k=2)
    nearest = distance[:, 1] / p.lattice_constant_px
    assert nearest.min() > 0.95 and nearest.max() < 1.05


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(shape=(40, 40)), "shape"),
        (dict(shape=(128,)), "shape"),
        (dict(shape=(128.0, 128)), "shape"),
        (dict(dose=-1.0), "dose"),
        (dict(dose=0.0), "dose"),
        (dict(domains="spiral"), "domains"),
        (dict(variants=(1, 1)), "variants"),
        (dict(variants=(0, 4)), "variants"),
        (dict(displacement_pm=200.0), "displacement_pm"),
        (dict(pixel_size_pm=150.0), "pixel_size_pm"),
        (dict(pixel_size_pm=-1.0), "pixel_size_pm"),
        (dict(column_sigma_pm=0.0), "column_sigma_pm"),
        (dict(sm_fraction=1.5), "sm_fraction"),
        (dict(sm_fraction=float("nan")), "sm_fraction"),
        (dict(period_cells=1.0), "period_cells"),
        (dict(needle_length_fraction=0.0), "needle_length_fraction"),
        (dict(substrate_fraction=0.95), "substrate_fraction"),
        (dict(substrate_ab_ratio=0.0), "substrate_ab_ratio"),
        (dict(interface_tilt_deg=60.0), "interface_tilt_deg"),
        (dict(intensity_gradient=-0.1), "intensity_gradient"),
        (dict(strain_gradient=0.5), "strain_gradient"),
        (dict(twin_shear=0.3), "twin_shear"),
        (dict(twin_shear=-0.01), "twin_shear"),
        (dict(rotation_span_deg=float("inf")), "rotation_span_deg"),
        (dict(drift_shear=0.7), "drift_shear"),
        (dict(read_noise=2.0, dose=None), "read_noise"),
        (dict(scan_jitter_px=-0.1), "scan_jitter_px"),
        (dict(mistilt_offset_px=(0.0, float("inf"))), "mistilt_offset_px"),
        (dict(skirt_fraction=-0.1), "skirt_fraction"),
        (dict(skirt_fraction=1.0), "skirt_fraction"),
        (dict(skirt_fraction=float("nan")), "skirt_fraction"),
        (dict(skirt_sigma_pm=0.0), "skirt_sigma_pm"),
        (dict(skirt_sigma_pm=500.0), "skirt_sigma_pm"),
        (dict(crosstalk=-0.01), "crosstalk"),
        (dict(crosstalk=0.2), "crosstalk"),
        (dict(crosstalk="high"), "crosstalk"),
        (dict(ab_ratio=0.0), "ab_ratio"),
    ],
)
def test_bad_params_raise_input_error_naming_the_field(kw, field):
    with pytest.raises(InputError, match=field) as info:
        SyntheticParams(**kw)
    assert isinstance(info.value, ValueError)


def test_generate_rejects_wrong_params_and_seed_types():
    with pytest.raises(InputError, match="params"):
        generate({"shape": (128, 128)})
    with pytest.raises(InputError, match="seed"):
        generate(SyntheticParams(shape=SMALL), seed="zero")


def test_params_are_frozen_and_list_inputs_become_tuples():
    p = SyntheticParams(shape=[160, 160], variants=[2, 3])
    assert p.shape == (160, 160) and p.variants == (2, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.dose = 1.0
    assert hash(p) == hash(SyntheticParams(shape=(160, 160), variants=(2, 3)))
