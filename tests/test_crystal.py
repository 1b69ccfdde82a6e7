"""Refusing what is not an atomic-resolution image of a perovskite-like crystal, before any search
(workflows/crystal.py), and what the columns tell (the ``columns`` section of an answer)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import ndimage

from ferrogym.agents import analyze as analyze_module
from ferrogym.agents.analyze import analyze
from ferrogym.workflows import SyntheticParams, Workflow, generate
from ferrogym.workflows.crystal import NotACrystalImage, cell_geometry, check_crystal, describe_columns, found_line
from ferrogym.workflows.errors import InputError
from ferrogym.workflows.io import ImageData, load_image
from ferrogym.workflows.units import Calibration

RNG_SEED = 0


def gaussian_columns(shape, xy, sigma=2.5) -> np.ndarray:
    """An image of unit Gaussian columns at (x, y) positions."""
    rows, cols = np.indices(shape)
    image = np.zeros(shape)
    for x, y in xy:
        window = (slice(max(0, int(y) - 12), max(0, int(y) + 13)), slice(max(0, int(x) - 12), max(0, int(x) + 13)))
        image[window] += np.exp(-((cols[window] - x) ** 2 + (rows[window] - y) ** 2) / (2 * sigma**2))
    return image


def hexagonal_image(shape=(256, 256), a=20.0) -> np.ndarray:
    """Columns on a triangular lattice (a close-packed or MoS2-like projection), with noise."""
    i, j = np.meshgrid(np.arange(-2, 20), np.arange(-2, 20))
    xy = np.column_stack([(i + 0.5 * j).ravel() * a, (j * np.sqrt(3) / 2).ravel() * a])
    return gaussian_columns(shape, xy) + np.random.default_rng(RNG_SEED).normal(0, 0.05, shape)


def lattice_free_image(shape=(256, 256)) -> np.ndarray:
    """Smooth random noise: speckle a column finder can mistake for columns, but no lattice."""
    return ndimage.gaussian_filter(np.random.default_rng(RNG_SEED).normal(size=shape), 3)


def nanoparticle_image(shape=(512, 512)) -> np.ndarray:
    """Bright unresolved particles on vacuum, as on a low-magnification HAADF image."""
    rows, cols = np.indices(shape)
    image = sum(np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * s**2))
                for x, y, s in [(150, 150, 60), (380, 300, 80), (200, 420, 50)])
    return image + np.random.default_rng(RNG_SEED).normal(0, 0.03, shape)


@pytest.fixture
def no_search(monkeypatch):
    """Fails the test if a search starts: refusals come before any."""
    def refuse(*args, **kwargs):
        raise AssertionError("a search started; the input should have been refused before it")

    monkeypatch.setattr(analyze_module, "make_strategy", refuse)


@pytest.mark.parametrize("image, pixel_size_pm, says", [
    (hexagonal_image(), 15.0, "hexagonal lattice"),
    (lattice_free_image(), 10.0, "no periodic lattice"),
    (lattice_free_image(), None, "no periodic lattice"),
    (nanoparticle_image(), 7.5, "no periodic lattice"),
])
def test_what_is_not_a_perovskite_crystal_is_refused_in_one_line_before_any_search(no_search, image, pixel_size_pm,
                                                                                  says):
    with pytest.raises(InputError, match=says) as refusal:
        analyze(ImageData(image, pixel_size_pm, "test.tif"), progress=False)
    message = str(refusal.value)
    assert "\n" not in message and message.startswith("test.tif: ")


def test_a_hexagonal_lattice_is_named_not_perovskite_like(no_search):
    with pytest.raises(NotACrystalImage, match="of one sublattice .* on a hexagonal lattice .*not perovskite-like"):
        analyze(ImageData(hexagonal_image(), 15.0, "mos2.dm3"), progress=False)


def test_a_lattice_constant_outside_real_crystals_is_refused(no_search):
    """A perovskite image with a pixel size 6 times too large: a = 2.4 nm, no crystal has that."""
    image = generate(SyntheticParams(shape=(256, 256)), seed=0).image
    with pytest.raises(NotACrystalImage, match=r"a = \d+ pm .* outside the 150-1000 pm"):
        analyze(image, pixel_size_pm=100.0, progress=False)


def test_a_perovskite_passes_and_its_columns_are_described():
    params = SyntheticParams(shape=(256, 256), pixel_size_pm=15.0)
    sample = generate(params, seed=1)
    workflow = Workflow.from_sample(sample)
    calibration = Calibration(15.0, "synthetic truth")
    columns = describe_columns(workflow.lattice, calibration, sample.image.shape)
    truth = sample.truth
    assert abs(columns["A"] - (truth.sublattice == "A").sum()) <= 0.05 * (truth.sublattice == "A").sum()
    assert abs(columns["B"] - (truth.sublattice == "B").sum()) <= 0.05 * (truth.sublattice == "B").sum()
    a = columns["lattice_constant"]
    assert a["pm"] == pytest.approx(15.0 * a["px"], abs=0.2)  # px rounded to 0.01
    assert a["pm"] == pytest.approx(396, rel=0.05)  # the generator's pseudo-cubic BiFeO3 cell
    assert columns["cell"]["symmetry"] == "square" and columns["sublattices"] == 2
    assert 0.1 < columns["b_over_a_peak"] < 1.0 and columns["described"] > 0.8 and columns["coverage"] > 0.8
    assert check_crystal(columns, calibration, "film.tif") == []
    line = found_line(columns, calibration, 1.5)
    assert line.startswith(f"found {columns['A'] + columns['B']} columns (A {columns['A']}, B {columns['B']})")
    assert f"a = {a['pm']:.0f} pm" in line and "B/A peak" in line


def test_positions_of_one_sublattice_pass_with_a_warning(perovskite):
    xy, sublattice = perovskite(n_cells=8, a=20.0)
    workflow = Workflow(positions=xy[sublattice == "A"])
    columns = describe_columns(workflow.lattice, Calibration(None))
    warnings_ = check_crystal(columns, Calibration(None), "a.csv")
    assert columns["sublattices"] == 1 and columns["lattice_constant"]["pm"] is None
    assert len(warnings_) == 1 and "one sublattice" in warnings_[0]
    assert "pixel size unknown" in found_line(columns, Calibration(None))


@pytest.mark.parametrize("make, symmetry, angle", [
    (lambda i, j: np.column_stack([i, j]) * 20.0, "square", 90),
    (lambda i, j: np.column_stack([i * 1.414, j]) * 20.0, "rectangular", 90),
    (lambda i, j: np.column_stack([i + 0.5 * j, j * np.sqrt(3) / 2]) * 20.0, "hexagonal", 60),
])
def test_cell_geometry_names_the_lattice(make, symmetry, angle):
    i, j = (v.ravel().astype(float) for v in np.meshgrid(np.arange(12), np.arange(12)))
    geometry = cell_geometry(make(i, j) + np.random.default_rng(0).normal(0, 0.2, (len(i), 2)))
    assert geometry.symmetry == symmetry and geometry.angle_deg == pytest.approx(angle, abs=3)
    assert geometry.short_px == pytest.approx(20.0, rel=0.05)


def test_random_points_are_no_lattice():
    xy = np.random.default_rng(0).uniform(0, 300, (200, 2))
    assert cell_geometry(xy).symmetry == "irregular"


def test_the_real_srtio3_image_is_a_rectangular_perovskite_view(shared_data_file):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # its axes have no units: nm assumed
        image = load_image(shared_data_file("SrTiO3_ADF_cropped.hdf5"))
    workflow = Workflow(image)
    calibration = Calibration(image.pixel_size_pm, "file")
    columns = describe_columns(workflow.lattice, calibration, image.array.shape)
    cell = columns["cell"]
    assert cell["symmetry"] == "rectangular"
    assert cell["long"]["px"] / cell["short"]["px"] == pytest.approx(np.sqrt(2), rel=0.05)  # a [110]-type view
    assert check_crystal(columns, calibration, "SrTiO3") == []


def test_columns_most_of_which_no_cell_describes_are_refused(no_search):
    """Random positions (an amorphous film's): the periodicity is not asked, the cells are."""
    rng = np.random.default_rng(RNG_SEED)
    xy = rng.uniform(0, 400, size=(300, 2))
    with pytest.raises(NotACrystalImage, match="most sites cannot be described"):
        analyze(positions=xy, sublattice=np.where(rng.random(300) < 0.5, "A", "B"), progress=False)
