"""Physics-grade images with truth: the truth file, and what ferrogym finds on abTEM images.

The images in tests/data/simulated are HAADF simulations (abTEM PRISM, frozen phonons, Poisson
counts; ``scripts/make_simulated_images.py`` remakes them, nothing is simulated here). Known
answers: the truth registers with the pixels (a noise-free image's columns fit onto it), the
B columns are found (Fe peaks at about a fifth of Bi), and ``ferrogym.analyze`` as a user calls
it recovers the variants where there are walls and says "no walls" where there are none.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import ferrogym
from ferrogym.workflows.errors import InputError
from ferrogym.workflows.images import SimulatedImages, parse_images
from ferrogym.workflows.io import load_image
from ferrogym.workflows.metrics import detection_scores, match_positions, variant_ari
from ferrogym.workflows.multislice import SimulationParams, _wall_mask, simulate
from ferrogym.workflows.synthetic import POLARIZATION_DIRECTIONS, SyntheticParams, generate
from ferrogym.workflows.truthfile import FORMAT, load_truth, save_truth
from ferrogym.workflows.workflow import Workflow

from conftest import REPOSITORY

SIMULATED = REPOSITORY / "tests" / "data" / "simulated"
#: The committed images (scripts/make_simulated_images.py).
NAMES = ("stripes", "four_stripes", "wall_90", "wall_45", "single", "weak", "samarium")
ONE_DOMAIN = "single"
#: Found and true columns match within this share of the lattice constant.
MATCH = 0.3


@pytest.fixture(scope="module")
def simulated():
    """name -> TruthFile of the committed images; skips when any is missing."""
    missing = [name for name in NAMES if not (SIMULATED / f"{name}.npz").is_file()]
    if missing:
        pytest.skip(f"simulated images {missing} missing in {SIMULATED}; make them with "
                    "scripts/make_simulated_images.py")
    return {name: load_truth(SIMULATED / f"{name}.npz") for name in NAMES}


# --------------------------------------------------------------------------- the truth file


@pytest.fixture(scope="module")
def small_sample():
    return generate(SyntheticParams(shape=(96, 96), dose=50.0, domains="stripes"), seed=3)


def test_truth_file_round_trip(tmp_path, small_sample):
    truth = small_sample.truth
    path = save_truth(tmp_path / "one.npz", np.rint(small_sample.image).astype(np.uint16), truth, {"dose": 50.0})
    data = load_truth(path)
    np.testing.assert_array_equal(data.image, np.rint(small_sample.image))
    for name in ("xy", "sublattice", "variant", "b_displacement", "wall_mask"):
        np.testing.assert_array_equal(getattr(data.truth, name), getattr(truth, name))
    assert (data.truth.pixel_size_pm, data.truth.lattice_constant_px) == (truth.pixel_size_pm, truth.lattice_constant_px)
    assert data.parameters == {"dose": 50.0}
    image = load_image(path)  # what `ferrogym analyze FILE.npz` reads
    assert image.pixel_size_pm == truth.pixel_size_pm and image.array.shape == (96, 96)


def _archive(path, sample, **changes):
    truth = sample.truth
    arrays = dict(format=np.array(FORMAT), image=sample.image.astype(np.float32), xy=truth.xy,
                  sublattice=truth.sublattice, variant=truth.variant, b_displacement=truth.b_displacement,
                  wall_mask=truth.wall_mask, pixel_size_pm=np.array(16.0), lattice_constant=np.array(24.75),
                  parameters=np.array(json.dumps({})))
    arrays.update(changes)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.mark.parametrize("changes, says", [
    ({"format": np.array("other/2")}, "format"),
    ({"variant": None}, r"lacks \['variant'\]"),
    ({"wall_mask": np.zeros((3, 3), bool)}, "wall_mask"),
    ({"parameters": np.array("{not json")}, "not JSON"),
])
def test_bad_truth_files_are_refused_in_one_line(tmp_path, small_sample, changes, says):
    path = _archive(tmp_path / "bad.npz", small_sample, **changes)
    with pytest.raises(InputError, match=says) as error:
        load_truth(path)
    assert "\n" not in str(error.value)


def test_missing_and_foreign_files_are_refused(tmp_path, small_sample):
    with pytest.raises(InputError, match="does not exist"):
        load_truth(tmp_path / "absent.npz")
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(InputError, match="not a numpy .npz archive"):
        load_truth(tmp_path / "text.npz")
    with pytest.raises(InputError, match="uint16"):
        save_truth(tmp_path / "x.npz", small_sample.image, small_sample.truth, {})


def test_simulated_spec_reads_a_folder_with_truth(tmp_path, small_sample):
    save_truth(tmp_path / "a.npz", small_sample.image.astype(np.float32), small_sample.truth, {})
    images = parse_images(f"simulated:{tmp_path}")
    assert isinstance(images, SimulatedImages) and len(images) == 1 and images.name(0) == str(tmp_path / "a.npz")
    workflow = images.workflow(0)
    assert workflow.truth is not None and workflow.pixel_size_pm == small_sample.truth.pixel_size_pm
    assert len(parse_images(f"simulated:{tmp_path}/*.npz")) == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no truth files"):
        parse_images(f"simulated:{tmp_path / 'empty'}")
    with pytest.raises(InputError, match="name a folder"):
        parse_images("simulated:")


# --------------------------------------------------------------------------- the simulator (not run here)


def test_domains_repeat_with_the_periodic_supercell():
    stripes = SimulationParams(variants=(0, 1, 2, 3), domain_cells=4, wall_normal="x").cell_variants()
    np.testing.assert_array_equal(stripes[5], np.repeat([0, 1, 2, 3], 4))
    diagonal = SimulationParams(variants=(0, 2), domain_cells=8, wall_normal="diagonal").cell_variants()
    assert np.all(np.diag(diagonal) == 0) and set(np.unique(diagonal)) == {0, 2}
    np.testing.assert_array_equal(diagonal[1:, 1:], diagonal[:-1, :-1])  # constant along x = y
    with pytest.raises(InputError, match="commensurate"):
        SimulationParams(variants=(0, 1), domain_cells=5)
    with pytest.raises(InputError, match="variants"):
        SimulationParams(variants=(4,))


def test_wall_mask_lies_along_the_walls():
    params = SimulationParams(variants=(0, 3), domain_cells=4, wall_normal="x")
    mask = _wall_mask(params)
    # a wall every 4 cells, between pixels 64 k + 3 and 64 k + 4 (the quarter-cell shift): 8 px either side
    columns = np.flatnonzero(mask.all(axis=0))
    assert set(columns) == {x % 256 for k in range(4) for x in range(64 * k + 4 - 8, 64 * k + 4 + 8)}
    assert not mask[:, 36].any()


def test_phonons_leave_every_column_on_its_site():
    """Thermal kicks centred per atom over the configurations, of the asked sigma; the B-O
    column off-centred as a whole."""
    pytest.importorskip("ase", reason="the supercell needs ASE (ferrogym[simulate])")
    from ferrogym.workflows.multislice import _configurations

    params = SimulationParams(cells=4, thickness_cells=2, variants=(1,), phonon_configs=3)
    configs = _configurations(params)[0]
    numbers, positions = configs[0].numbers, np.array([c.positions for c in configs])
    site = positions.mean(axis=0)
    a = 3.96
    b_site = a / 2 + -0.3 * POLARIZATION_DIRECTIONS[1]  # within its cell: 30 pm against P
    in_cell = (site[:, :2] - a / 4) % a
    assert np.allclose(in_cell[numbers == 26], b_site)
    on_b_columns = np.all(np.isclose(in_cell, b_site), axis=1)
    assert np.sum(on_b_columns & (numbers == 8)) == 4 * 4 * 2  # the O between B atoms, every cell and layer
    assert 0.07 < (positions - site)[:, numbers == 83].std() < 0.11  # sigma_a_pm = 9


def test_simulate_without_abtem_says_how_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "abtem", None)
    with pytest.raises(InputError, match=r"pip install 'ferrogym\[simulate\]'"):
        simulate(SimulationParams())


# --------------------------------------------------------------------------- the committed images


def test_committed_set_is_small_and_complete(simulated):
    assert sum(path.stat().st_size for path in SIMULATED.rglob("*.npz")) < 2 * 2**20
    assert len(parse_images(f"simulated:{SIMULATED}")) == len(NAMES)  # noise_free/ is not among them
    for data in simulated.values():
        assert data.image.shape == (256, 256) and data.truth.lattice_constant_px == 16
        assert data.parameters["abtem_version"] and data.parameters["dose"] == 300
        assert data.parameters["scattering_cutoff_mrad"] > data.parameters["detector_mrad"][1]


def test_truth_registers_with_the_pixels():
    """Columns fitted by ferrogym's own finder on the noise-free image sit on the truth: median
    distance well under 0.1 px and no systematic offset, on both sublattices."""
    path = SIMULATED / "noise_free" / "registration.npz"
    if not path.is_file():
        pytest.skip(f"{path} missing; make it with scripts/make_simulated_images.py")
    data = load_truth(path)
    lattice = Workflow(data.image, truth=data.truth).lattice
    for sublattice in "AB":
        true = data.truth.xy[data.truth.sublattice == sublattice]
        found = lattice.xy[lattice.sublattice == sublattice]
        i, j = match_positions(found, true, MATCH * data.truth.lattice_constant_px)
        assert len(j) == len(true)
        error = found[i] - true[j]
        assert np.median(np.hypot(*error.T)) < 0.05, sublattice
        assert np.all(np.abs(error.mean(axis=0)) < 0.02), (sublattice, error.mean(axis=0))


@pytest.mark.parametrize("name", NAMES)
def test_b_columns_are_found(simulated, name):
    data = simulated[name]
    lattice = Workflow(data.image, truth=data.truth).lattice
    true_b = data.truth.xy[data.truth.sublattice == "B"]
    scores = detection_scores(lattice.xy[lattice.sublattice == "B"], true_b, MATCH * data.truth.lattice_constant_px)
    assert scores["recall"] >= 0.98 and scores["precision"] >= 0.98, scores


def b_site_ari(result, truth) -> float:
    """ARI of the answer's labels on the B columns that match a true B column."""
    b = result.sublattice == "B"
    true_b = truth.sublattice == "B"
    found, true = match_positions(result.positions[b], truth.xy[true_b], MATCH * truth.lattice_constant_px)
    return variant_ari(result.labels[b][found], truth.variant[true_b][true])[0]


@pytest.mark.parametrize("name", NAMES)
def test_analyze_recovers_the_variants(simulated, name):
    """``ferrogym.analyze(FILE)`` with its default search: the variants where there are walls,
    "no walls" on the one-domain image."""
    result = ferrogym.analyze(SIMULATED / f"{name}.npz", progress=False)
    if name == ONE_DOMAIN:
        assert result.has_walls is False, result.verdict
    else:
        assert result.has_walls and b_site_ari(result, simulated[name].truth) >= 0.9, result.verdict
