"""The Python API for notebooks: ``ferrogym.analyze`` on arrays, files and HyperSpy signals, what its
result holds, the summary's three parts, the record of the run, ``ferrogym.__version__``, and
the exporters to HyperSpy and Atomap (where the ``interop`` extra is installed)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
from datetime import datetime

import numpy as np
import pytest

import ferrogym
from ferrogym.workflows import SyntheticParams, generate
from ferrogym.workflows.interop import INSTALL, MissingExtra

#: Two variants in vertical stripes at 16 pm per pixel (the generator's truth).
STRIPES = SyntheticParams(shape=(256, 256), domains="stripes", dose=150.0, wall_angle_deg=90.0, period_cells=8.0)
HAS_INTEROP = all(importlib.util.find_spec(name) for name in ("hyperspy", "atomap"))
needs_interop = pytest.mark.skipif(not HAS_INTEROP, reason=f"HyperSpy and Atomap not installed ({INSTALL})")


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return generate(STRIPES, seed=1).image


@pytest.fixture(scope="module")
def result(image):
    """``ferrogym.analyze`` of the stripes as a plain array with its pixel size given."""
    return ferrogym.analyze(image, "policy:shipped", 3, pixel_size_pm=16.0, progress=False)


def test_the_version_is_the_installed_one_and_importing_ferrogym_is_light():
    assert ferrogym.__version__ == importlib.metadata.version("ferrogym")
    code = ("import sys, ferrogym; print(ferrogym.__version__); "
            "print('gymnasium' in sys.modules, 'ferrogym.agents' in sys.modules)")
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert lines == [ferrogym.__version__, "False", "False"]
    assert "analyze" in dir(ferrogym)
    with pytest.raises(AttributeError, match="no attribute 'analyse'"):
        _ = ferrogym.analyse


def test_the_result_holds_the_answer_per_column(result):
    n = len(result.positions)
    assert result.positions.shape == (n, 2) and result.sublattice.shape == result.labels.shape == (n,)
    assert result.has_walls and set(result.labels[result.labels >= 0]) == {0, 1}
    assert result.phases.shape == (n,) and set(result.phases[result.labels >= 0]) == {0}
    b_sites = result.sublattice == "B"
    assert np.isfinite(result.displacement[b_sites]).all(axis=1).mean() > 0.6
    assert np.isnan(result.displacement[~b_sites]).all()
    np.testing.assert_allclose(result.displacement_pm, 16.0 * result.displacement)
    assert result.calibration.source == "given" and result.lattice_constant_pm == pytest.approx(396, rel=0.05)
    assert "walls found" in result.verdict
    assert len(result.search.steps) == 3 and result.search.strategy == "policy:shipped"


def test_the_summary_holds_the_answer_the_search_and_the_record_apart(result, tmp_path):
    paths = result.save(tmp_path, format="svg")
    summary = json.loads(paths["summary"].read_text())
    assert list(summary) == ["answer", "search", "run"]
    answer, search, run = summary["answer"], summary["search"], summary["run"]
    assert answer["walls"] is True and answer["units"]["pixel_size_pm"] == 16.0
    assert answer["columns"]["lattice_constant"]["pm"] == pytest.approx(16.0 * answer["columns"]["lattice_constant"]["px"],
                                                                        abs=0.2)
    assert answer["b_displacement"]["unit"] == "pm" and answer["wall_segments"]
    assert answer["configuration"]["config"] == search["best"]["config"] and not search["best"]["rejected"]
    assert [e["step"] for e in search["evaluations"]] == [1, 2, 3]
    assert all({"config", "reward", "components", "seconds"} <= set(e) for e in search["evaluations"])
    assert max(e["reward"] for e in search["evaluations"]) == search["best"]["reward"]
    assert (search["strategy"], search["seed"], search["budget"], search["reward"]) == ("policy:shipped", 0, 3, "order")
    assert run["ferrogym_version"] == ferrogym.__version__ and run["command_line"] is None
    assert datetime.fromisoformat(run["date"]).tzinfo is not None
    assert run["input"]["files"] == [] and len(run["input"]["image_sha256"]) == 64
    assert {"python", "platform", "device", "packages"} <= set(run) and run["device"]["torch_device"] in (None, "cpu", "cuda:0")
    assert {"segmentation", "columns"} <= set(paths) and paths["segmentation"].suffix == ".svg"


def test_a_file_is_recorded_with_its_hash(tmp_path, image):
    path = tmp_path / "stripes.npy"
    np.save(path, image)
    result = ferrogym.analyze(path, "static:best", 1, progress=False)
    (record,) = result.run["input"]["files"]
    assert record == {"path": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert result.name == "stripes.npy" and result.calibration.known is False
    assert "pixel size unknown" in result.summary()["answer"]["units"]["note"]


def test_positions_alone_and_a_and_b_sites_apart(perovskite):
    xy, sublattice = perovskite(n_cells=8, a=20.0, displacement=(1.0, 0.0))
    mixed = ferrogym.analyze(positions=xy, sublattice=sublattice, search="random", budget=2, progress=False)
    apart = ferrogym.analyze(a_sites=xy[sublattice == "A"], b_sites=xy[sublattice == "B"], search="random",
                             budget=2, progress=False)
    assert len(mixed.positions) == len(apart.positions) == len(xy)
    b_sites = apart.sublattice == "B"
    caged = np.isfinite(apart.displacement).all(axis=1)
    np.testing.assert_allclose(apart.displacement[b_sites & caged], [[1.0, 0.0]] * int((b_sites & caged).sum()))


def test_the_exporters_say_how_to_install_the_extra_when_it_is_missing(result, monkeypatch):
    for name in ("hyperspy", "hyperspy.api", "atomap", "atomap.api"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    with pytest.raises(MissingExtra, match=r'pip install "ferrogym\[interop\]"'):
        result.to_hyperspy()
    with pytest.raises(MissingExtra, match="atomap is not installed"):
        result.to_atomap()


@needs_interop
def test_a_hyperspy_round_trip_keeps_the_calibration(image):
    """Signal2D in (its axes in nm), labelled maps out with the same axes, Atomap sublattices out."""
    import hyperspy.api as hs

    signal = hs.signals.Signal2D(image)
    signal.metadata.General.title = "stripes"
    for axis in signal.axes_manager.signal_axes:
        axis.scale, axis.units = 0.016, "nm"
    result = ferrogym.analyze(signal, "policy:shipped", 3, progress=False)
    assert result.calibration.pixel_size_pm == pytest.approx(16.0) and result.calibration.source == "signal"
    assert result.name == "stripes"

    maps = result.to_hyperspy()
    assert {"image", "label", "phase", "b_displacement_x", "b_displacement_y", "b_displacement"} <= set(maps)
    for out in maps.values():
        assert out.data.shape == image.shape
        for axis in out.axes_manager.signal_axes:
            assert axis.scale == pytest.approx(0.016) and axis.units == "nm"
    np.testing.assert_array_equal(maps["image"].data, image)
    cells = result.answer.lattice.cell_sites
    x, y = np.rint(result.positions[cells]).astype(int).T
    np.testing.assert_array_equal(maps["label"].data[y, x], result.labels[cells])  # each site's own cell
    caged = np.isfinite(result.displacement_pm[cells]).all(axis=1)
    np.testing.assert_allclose(maps["b_displacement_x"].data[y, x][caged], result.displacement_pm[cells][caged, 0])

    sublattices = result.to_atomap()
    assert set(sublattices) == {"A", "B"}
    for site, sublattice in sublattices.items():
        mine = result.positions[result.sublattice == site]
        np.testing.assert_allclose(np.column_stack([sublattice.x_position, sublattice.y_position]), mine)
        assert sublattice.pixel_size == pytest.approx(0.016) and sublattice.name == site
