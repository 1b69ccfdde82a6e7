"""The segmentation figure (workflows/figure.py): aspect ratio, panels, polarization arrows, titles."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.quiver import Quiver

from ferrogym.agents import analyze as analyze_module
from ferrogym.workflows import figure as figure_module
from ferrogym.workflows.figure import matched_colours, save_segmentation_figure, segmentation_figure
from ferrogym.workflows.metrics import match_positions
from ferrogym.workflows.synthetic import SyntheticParams, generate
from ferrogym.workflows.walls import Segmentation
from ferrogym.workflows.workflow import Workflow

WIDE = (96, 576)  # rows x cols: 1:6


@pytest.fixture(scope="module")
def wide_workflow() -> Workflow:
    """A 1:6 synthetic image (vertical stripes) with truth, atoms measured."""
    params = SyntheticParams(shape=WIDE, domains="stripes", wall_angle_deg=90.0, period_cells=8.0)
    workflow = Workflow.from_sample(generate(params, seed=3))
    _ = workflow.lattice
    return workflow


def _grid_segmentation(x0: float, y0: float, cols: int, rows: int, a: float = 16.0) -> Segmentation:
    """Sites on a cols x rows grid of spacing ``a`` from (x0, y0), left half 0, right half 1."""
    i, j = np.meshgrid(np.arange(cols), np.arange(rows))
    xy = np.column_stack([x0 + a * i.ravel(), y0 + a * j.ravel()]).astype(float)
    return Segmentation(xy, (i.ravel() >= cols // 2).astype(int), a)


def _content_aspect(png) -> float:
    """Width / height of the drawn data in a PNG: rows and columns mostly not white."""
    rgb = mpimg.imread(png)[..., :3]
    ink = (rgb < 0.95).any(axis=2)
    rows = np.flatnonzero(ink.mean(axis=1) > 0.5)
    cols = np.flatnonzero(ink.mean(axis=0) > 0.5)
    return (cols[-1] - cols[0] + 1) / (rows[-1] - rows[0] + 1)


@pytest.mark.parametrize("with_image", [True, False])
def test_a_wide_image_keeps_its_aspect(tmp_path, with_image):
    rows, cols = WIDE
    image = np.random.default_rng(0).random(WIDE) if with_image else None
    # Without an image the panel spans the sites plus one spacing: 35 x 5 gaps + 2 = 37 x 7 spacings.
    segmentation = _grid_segmentation(8.0, 8.0, 36, 6) if with_image else _grid_segmentation(500.0, 2000.0, 36, 6)
    expected = cols / rows if with_image else 37 / 7
    path = save_segmentation_figure(tmp_path / "wide.png", image, segmentation, "wide.tif")
    assert _content_aspect(path) == pytest.approx(expected, rel=0.10)
    height, width = mpimg.imread(path).shape[:2]
    assert width / height > 0.6 * expected  # the canvas follows the image, not a square
    assert max(width, height) <= figure_module.MAX_INCHES * figure_module.DPI


def test_arrows_are_the_polarization_minus_b_displacement(wide_workflow):
    lattice = wide_workflow.lattice
    figure = segmentation_figure(wide_workflow.image, wide_workflow.truth_segmentation, lattice=lattice)
    (quiver,) = [c for axes in figure.axes for c in axes.collections if isinstance(c, Quiver)]
    defined = (lattice.sublattice == "B") & np.isfinite(lattice.b_displacement).all(axis=1)
    assert 0 < defined.sum() < (lattice.sublattice == "B").sum()  # edge cages undefined: skipped
    np.testing.assert_allclose(quiver.get_offsets(), lattice.xy[defined])
    np.testing.assert_allclose(np.column_stack([quiver.U, quiver.V]), -lattice.b_displacement[defined])
    # Against the generator's truth, not the code's own arithmetic: arrows along -displacement.
    truth = wide_workflow.truth
    found, true = match_positions(lattice.xy[defined], truth.xy, 0.3 * lattice.lattice_constant_px)
    arrows = np.column_stack([quiver.U, quiver.V])[found]
    polarization = -truth.b_displacement[true]
    cosine = (arrows * polarization).sum(1) / np.hypot(*arrows.T) / np.hypot(*polarization.T)
    assert len(found) > 30 and np.median(cosine) > 0.9
    # The median arrow draws 0.4 lattice constants long.
    drawn = np.median(np.hypot(quiver.U, quiver.V)) / quiver.scale
    assert drawn == pytest.approx(0.4 * lattice.lattice_constant_px, rel=1e-6)


def test_truth_panel_only_where_truth_exists(wide_workflow):
    segmentation = wide_workflow.cell_segmentation(np.zeros(len(wide_workflow.lattice.xy), dtype=int))
    titles = lambda fig: [axes.get_title() for axes in fig.axes]  # noqa: E731
    with_truth = segmentation_figure(wide_workflow.image, segmentation, "t",
                                     truth=wide_workflow.truth_segmentation, lattice=wide_workflow.lattice)
    assert titles(with_truth)[:3] == ["domains (prediction)", "truth", "polarization (-B displacement)"]
    without = segmentation_figure(wide_workflow.image, segmentation, "t", lattice=wide_workflow.lattice)
    assert "truth" not in titles(without) and titles(without)[:2] == ["domains", "polarization (-B displacement)"]
    alone = segmentation_figure(wide_workflow.image, segmentation, "t")
    assert len(alone.axes) == 1
    # A wide image stacks its panels, so the figure stays readable rather than a long strip.
    (_, y0), (_, y1) = (axes.get_position().p0 for axes in with_truth.axes[:2])
    assert y1 < y0


def test_truth_colours_follow_the_labels_they_overlap():
    truth = np.array([0, 0, 1, 1, 2, 2, -1])
    labels = np.array([3, 3, 0, 0, -1, 1, 2])
    colours = matched_colours(truth, labels)
    assert list(colours[:2]) == [3, 0] and colours[2] == 1
    unmatched = matched_colours(np.array([0, 1, 2]), np.array([0, 0, 0]))
    assert unmatched[0] == 0 and len(set(unmatched)) == 3 and min(unmatched[1:]) >= 1


def test_analyze_titles_with_the_file_name_and_draws_all_panels(tmp_path, monkeypatch, wide_workflow):
    calls = []

    def spy(path, image, segmentation, title="", **kwargs):
        calls.append((title, kwargs))
        return save_segmentation_figure(path, image, segmentation, title, **kwargs)

    monkeypatch.setattr(analyze_module, "save_segmentation_figure", spy)
    name = str(tmp_path / "deep" / "folder" / "scan.tif")
    analyze_module.analyze(wide_workflow, "random", 2, tmp_path / "out", name=name, progress=False)
    ((title, kwargs),) = calls
    assert title.startswith("scan.tif: random") and "/" not in title and "\\" not in title
    assert kwargs["truth"] is wide_workflow.truth_segmentation and kwargs["lattice"] is wide_workflow.lattice
    assert mpimg.imread(tmp_path / "out" / "segmentation.png").ndim == 3


def test_maps_get_a_panel_each_the_angle_on_a_cyclic_scale(wide_workflow):
    lattice = wide_workflow.lattice
    sites = lattice.site_indices("B")
    xy = lattice.xy[sites]
    maps = {"angle_deg": (xy, np.linspace(-180, 180, len(sites))), "z1": (xy, np.linspace(-2, 3, len(sites)))}
    segmentation = wide_workflow.evaluate().segmentation
    figure = segmentation_figure(wide_workflow.image, segmentation, "maps", maps=maps)
    titles = [axes.get_title() for axes in figure.axes]
    assert titles == ["domains", "angle (degrees, cyclic)", "z1 (-1.9 to 2.9)"]  # 2nd to 98th percentile
    angle_points = figure.axes[1].collections[0]
    assert angle_points.get_cmap().name == figure_module.CYCLIC_MAP_CMAP
    assert angle_points.get_clim() == (-180, 180)
