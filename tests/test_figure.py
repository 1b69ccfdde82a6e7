"""The figures (workflows/figure.py): aspect ratio, panels, polarization arrows at a fixed scale,
keys, scale bars, the continuous cell map, binned full frames, formats, the columns figure."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.quiver import Quiver
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar
from scipy.spatial import cKDTree

from ferrogym.agents import analyze as analyze_module
from ferrogym.workflows import figure as figure_module
from ferrogym.workflows.cells import cell_raster
from ferrogym.workflows.errors import InputError
from ferrogym.workflows.figure import (ARROW_GAIN, ARROW_SPACING_INCHES, arrow_cells, columns_figure, matched_colours,
                                       save_figure,
                                       save_segmentation_figure, segmentation_figure)
from ferrogym.workflows.metrics import match_positions
from ferrogym.workflows.synthetic import SyntheticParams, generate
from ferrogym.workflows.units import Calibration
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
    # Every arrow draws ARROW_GAIN times its displacement, on any image: noise stays small.
    assert 1 / quiver.scale == ARROW_GAIN and quiver.scale_units == "xy"


def test_truth_panel_only_where_truth_exists(wide_workflow):
    segmentation = wide_workflow.cell_segmentation(np.zeros(len(wide_workflow.lattice.xy), dtype=int))
    titles = lambda fig: [axes.get_title() for axes in fig.axes]  # noqa: E731
    with_truth = segmentation_figure(wide_workflow.image, segmentation, "t",
                                     truth=wide_workflow.truth_segmentation, lattice=wide_workflow.lattice)
    polar = f"polarization (-B displacement, drawn {ARROW_GAIN:g} x)"
    assert titles(with_truth)[:3] == ["domains (prediction)", "truth", polar]
    without = segmentation_figure(wide_workflow.image, segmentation, "t", lattice=wide_workflow.lattice)
    assert "truth" not in titles(without) and titles(without)[:2] == ["domains", polar]
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


def test_analyze_titles_with_the_file_name_and_draws_all_panels(tmp_path, wide_workflow):
    result = analyze_module.analyze(wide_workflow, "random", 2, tmp_path / "out", name="scan.tif", progress=False)
    figure = result.figure()
    assert figure.get_suptitle().startswith("scan.tif: random, 2 evaluations")
    titles = [axes.get_title() for axes in figure.axes]
    assert titles[:3] == ["domains (prediction)", "truth", f"polarization (-B displacement, drawn {ARROW_GAIN:g} x)"]
    assert mpimg.imread(tmp_path / "out" / "segmentation.png").ndim == 3
    assert mpimg.imread(tmp_path / "out" / "columns.png").ndim == 3


def test_a_policy_is_titled_by_its_short_name(tmp_path, wide_workflow):
    result = analyze_module.analyze(wide_workflow, "policy:shipped", 1, progress=False)
    assert result.title.startswith("image: policy:shipped, 1 evaluations") and "/" not in result.title


def test_maps_get_a_panel_each_the_angle_on_a_cyclic_scale(wide_workflow):
    lattice = wide_workflow.lattice
    sites = lattice.site_indices("B")
    xy = lattice.xy[sites]
    maps = {"angle_deg": (xy, np.linspace(-180, 180, len(sites))), "z1": (xy, np.linspace(-2, 3, len(sites)))}
    segmentation = wide_workflow.evaluate().segmentation
    figure = segmentation_figure(wide_workflow.image, segmentation, "maps", maps=maps)
    titles = [axes.get_title() for axes in figure.axes]
    assert titles[:3] == ["domains", "angle (degrees, cyclic)", "z1 (-1.9 to 2.9)"]  # 2nd to 98th percentile
    angle_points = figure.axes[1].collections[0]
    assert angle_points.get_cmap().name == figure_module.CYCLIC_MAP_CMAP
    assert angle_points.get_clim() == (-180, 180)
    (angle_bar, z1_bar) = figure.axes[3:]  # a colour bar beside each map, over the map's range
    assert angle_bar.get_ylim() == (-180, 180)
    assert z1_bar.get_ylim() == pytest.approx(z1_bar.figure.axes[2].collections[0].get_clim())


# ------------------------------------------------------------------------- keys and scales


def _scale_bar(axes) -> AnchoredSizeBar:
    (bar,) = [artist for artist in axes.artists if isinstance(artist, AnchoredSizeBar)]
    return bar


def test_every_panel_has_a_scale_bar_of_a_round_length_in_the_image_units(wide_workflow):
    segmentation = wide_workflow.evaluate().segmentation
    calibration = Calibration(16.0, "given")
    figure = segmentation_figure(wide_workflow.image, segmentation, "t", lattice=wide_workflow.lattice,
                                 calibration=calibration)
    for axes in figure.axes[:2]:
        bar = _scale_bar(axes)
        text = bar.txt_label.get_text()
        length_px = bar.size_bar.get_children()[0].get_width()
        value, unit = text.split()
        assert unit in ("pm", "nm") and value[0] in "125"
        assert length_px * 16.0 == pytest.approx(float(value) * (1000 if unit == "nm" else 1))
    uncalibrated = segmentation_figure(wide_workflow.image, segmentation, "t")
    assert _scale_bar(uncalibrated.axes[0]).txt_label.get_text().endswith(" px")


def test_the_legend_names_every_label_the_unassigned_cells_and_the_walls(wide_workflow):
    evaluation = wide_workflow.evaluate(dict(descriptor="displacement", reduction="none", n_clusters=2))
    segmentation = evaluation.segmentation
    assert (segmentation.labels < 0).any() and len(segmentation.wall_points)
    figure = segmentation_figure(wide_workflow.image, segmentation, "t", label_names={0: "label 0: phase 0"})
    texts = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert texts[0] == "label 0: phase 0" and texts[1] == "label 1"
    assert texts[2].startswith(f"unassigned cell ({int((segmentation.labels < 0).sum())})")
    assert texts[3] == "domain wall"


def test_cells_tile_the_crystal_as_voronoi_cells_and_close_the_hole_of_a_missing_site():
    """A square lattice with one site missing: every grid point inside takes its nearest site."""
    i, j = np.meshgrid(np.arange(10), np.arange(8))
    xy = 20.0 * np.column_stack([i.ravel(), j.ravel()]) + 10.0
    keep = np.ones(len(xy), dtype=bool)
    keep[44] = False  # an interior site
    segmentation = Segmentation(xy[keep], np.arange(keep.sum()), 20.0)
    index, extent = cell_raster(segmentation, (-0.5, 199.5, 159.5, -0.5), step=1.0)
    assert index.shape == (160, 200) and extent == (-0.5, 199.5, 159.5, -0.5)
    assert (index >= 0).all()  # no hole anywhere in the field, the missing cell included
    rows, cols = np.indices(index.shape)
    points = np.column_stack([cols.ravel(), rows.ravel()])
    distance, nearest = cKDTree(segmentation.xy).query(points, k=2)
    clear = distance[:, 1] - distance[:, 0] > 1.0  # off the bisectors, where rounding could tip it
    assert (index.ravel()[clear] == nearest[clear, 0]).all()


def test_a_full_frame_draws_one_mean_arrow_per_domain_and_block_of_cells():
    """100 x 100 cells, two domains with a wall at x = 455 (not on a block edge): one arrow per
    block and domain, the mean of that domain's sites, far enough apart to read."""
    a, cells = 10.0, 100
    i, j = (v.ravel() for v in np.meshgrid(np.arange(cells), np.arange(cells)))
    xy = a * (np.column_stack([i, j]) + 0.5)
    left = xy[:, 0] < 455
    vectors = np.where(left[:, None], [[1.0, 0.0]], [[0.0, -1.0]])
    segmentation = Segmentation(xy, (~left).astype(int), a)

    class Lattice:  # what the polarization panel reads of a lattice
        sublattice = np.full(len(xy), "B")
        b_displacement = -vectors
        lattice_constant_px = a
    Lattice.xy = xy

    image = np.random.default_rng(0).random((int(a * cells), int(a * cells)))
    figure = segmentation_figure(image, segmentation, "frame", lattice=Lattice)
    polarization = figure.axes[1]
    panel_inches = polarization.get_position().width * figure.get_figwidth()
    n = arrow_cells((0, a * cells, a * cells, 0), a, panel_inches)
    assert n > 1 and cells * ARROW_SPACING_INCHES / n <= panel_inches  # arrows at least 0.2 in apart
    (quiver,) = [c for c in polarization.collections if isinstance(c, Quiver)]
    drawn, at = np.column_stack([quiver.U, quiver.V]), quiver.get_offsets()
    on_left = at[:, 0] < 455
    np.testing.assert_allclose(drawn[on_left], [[1.0, 0.0]] * on_left.sum())  # no mean across the wall
    np.testing.assert_allclose(drawn[~on_left], [[0.0, -1.0]] * (~on_left).sum())
    blocks = -(-cells // n)
    assert blocks**2 < len(drawn) <= blocks * (blocks + 1)  # the blocks the wall cuts: one arrow per side
    assert polarization.get_title().endswith(f"drawn {n * ARROW_GAIN:g} x), mean of {n} x {n} cells per domain")
    assert 1 / quiver.scale == n * ARROW_GAIN  # n times longer: the same share of their spacing


@pytest.mark.parametrize("kind, signature", [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_figures_are_written_in_the_format_asked(tmp_path, wide_workflow, kind, signature):
    figure = segmentation_figure(wide_workflow.image, wide_workflow.evaluate().segmentation, "t")
    path = save_figure(figure, tmp_path / f"domains.{kind}", dpi=150)
    assert path.read_bytes()[: len(signature)] == signature


def test_a_bad_format_or_dpi_is_refused_saying_what_to_give(tmp_path, wide_workflow):
    figure = segmentation_figure(wide_workflow.image, wide_workflow.evaluate().segmentation, "t")
    with pytest.raises(InputError, match="'jpg' is not one of png, svg, pdf"):
        save_figure(figure, tmp_path / "domains.jpg")
    with pytest.raises(InputError, match="dpi = 0"):
        save_figure(figure, tmp_path / "domains.png", dpi=0)


def test_the_columns_figure_marks_each_sublattice_and_the_missing_b_sites(wide_workflow):
    lattice = wide_workflow.lattice
    missing = lattice.xy[:3] + 5.0
    figure = columns_figure(wide_workflow.image, lattice, "scan.tif", calibration=Calibration(16.0, "given"),
                            missing_b_xy=missing)
    texts = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert texts[0] == f"A columns ({(lattice.sublattice == 'A').sum()})"
    assert texts[1] == f"B columns ({(lattice.sublattice == 'B').sum()})"
    assert texts[2].endswith("(3)") and "predicted" in texts[2]
    marked = {len(line.get_xdata()) for line in figure.axes[0].get_lines()}
    assert marked == {(lattice.sublattice == "A").sum(), (lattice.sublattice == "B").sum(), 3}
    _scale_bar(figure.axes[0])


def test_a_full_frame_marks_its_columns_on_a_detail_outlined_on_the_whole_field(perovskite):
    from ferrogym.workflows.lattice import lattice_from_positions

    xy, sublattice = perovskite(n_cells=100, a=20.0)
    image = np.random.default_rng(0).random((2020, 2020))
    figure = columns_figure(image, lattice_from_positions(xy, sublattice), "frame")
    whole, detail = figure.axes[:2]
    assert whole.get_title() == "whole field (detail outlined)" and detail.get_title().startswith("detail, 16 cells")
    assert np.ptp(detail.get_xlim()) == pytest.approx(16 * 20.0, abs=1) and len(whole.patches) == 1
    assert not whole.get_lines() and len(detail.get_lines()) == 2  # rings on the detail only
