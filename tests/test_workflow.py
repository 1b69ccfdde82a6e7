"""Workflow, Evaluation (workflows/workflow.py) and the segmentation figure (workflows/figure.py).

Acceptance criterion 1 (segmentation part): on a ``domains="two_families"`` image at dose 100,
``Workflow.from_sample(sample).evaluate(dict(descriptor="displacement", reduction="none",
clustering="gmm", n_clusters=4))`` gives ``metrics["ari"] >= 0.95``.
"""

from __future__ import annotations

import numpy as np
import pytest

from ferrogym.workflows import workflow as workflow_module
from ferrogym.workflows.descriptors import window_pixels
from ferrogym.workflows.errors import InputError
from ferrogym.workflows.figure import render_segmentation, save_segmentation_figure
from ferrogym.workflows.rewards import RewardResult, continuity_reward
from ferrogym.workflows.synthetic import SyntheticParams, generate, sample_params
from ferrogym.workflows.walls import Segmentation
from ferrogym.workflows.workflow import Evaluation, Workflow

DISPLACEMENT = dict(descriptor="displacement", reduction="none", clustering="gmm", n_clusters=4)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- criterion 1: ARI


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_displacement_ari_on_two_families_images(seed):
    sample = generate(SyntheticParams(shape=(256, 256), dose=100.0, domains="two_families"), seed=seed)
    evaluation = Workflow.from_sample(sample).evaluate(DISPLACEMENT)
    print(f"\n[criterion 1] two_families SyntheticParams seed {seed}: ARI = {evaluation.metrics['ari']:.3f} "
          f"(assigned {evaluation.metrics['assigned']:.2f}), reward = {evaluation.reward:.3f}")
    assert evaluation.reason is None
    assert evaluation.metrics["ari"] >= 0.95


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_displacement_ari_on_sampled_two_families_images(seed):
    # sm_fraction fixed below the antipolar threshold: an antipolar band would be a fifth true
    # class, which four clusters cannot reproduce (sample_params draws Sm up to 0.2).
    params = sample_params(np.random.default_rng(seed), dose=100.0, shape=(256, 256),
                           domains="two_families", sm_fraction=0.0)
    evaluation = Workflow.from_sample(generate(params, seed=seed)).evaluate(DISPLACEMENT)
    print(f"\n[criterion 1] two_families sample_params seed {seed}: ARI = {evaluation.metrics['ari']:.3f} "
          f"(assigned {evaluation.metrics['assigned']:.2f}), reward = {evaluation.reward:.3f}")
    assert evaluation.metrics["ari"] >= 0.95


def test_positions_only_workflow_from_truth_positions(two_families_sample):
    truth = two_families_sample.truth
    workflow = Workflow(positions=truth.xy, sublattice=truth.sublattice, truth=truth)
    evaluation = workflow.evaluate(DISPLACEMENT)
    print(f"\n[positions only] truth positions + sublattice: ARI = {evaluation.metrics['ari']:.3f}")
    assert workflow.image is None
    assert evaluation.metrics["ari"] >= 0.95
    # without an image, patches are unavailable: an empty segmentation, not an exception
    patch = workflow.evaluate(dict(descriptor="patch"))
    assert patch.reward == 0.0 and patch.reason is not None
    assert (patch.atom_labels == -1).all()


# --------------------------------------------------------------------------- what searchers search


def test_an_image_with_b_sites_is_searched_over_the_whole_space(two_families_workflow):
    assert two_families_workflow.describable_space is two_families_workflow.space


def test_positions_are_searched_over_the_descriptors_they_can_give(two_families_lattice):
    found = two_families_lattice  # columns found on an image, with their sublattice
    both = Workflow(positions=found.xy, sublattice=found.sublattice)
    assert both.describable_space["descriptor"].grid == ("displacement", "lattice")
    alone = Workflow(positions=found.xy[found.site_indices("A")])
    assert not alone.lattice.has_b_sites
    assert alone.describable_space["descriptor"].grid == ("lattice",)
    for workflow in (both, alone):  # what the narrowed space offers, the input describes
        for descriptor in workflow.describable_space["descriptor"].grid:
            assert workflow.evaluate({"descriptor": descriptor}).reason is None, descriptor


def test_the_vae_space_on_positions_says_what_is_missing(two_families_sample):
    truth = two_families_sample.truth
    workflow = Workflow(positions=truth.xy, sublattice=truth.sublattice, space="vae")
    with pytest.raises(InputError, match="no descriptor of the 'vae' space can describe this input: they need image"):
        _ = workflow.describable_space


# --------------------------------------------------------------------------- Evaluation


def test_evaluation_fields(two_families_workflow):
    workflow = two_families_workflow
    evaluation = workflow.evaluate(DISPLACEMENT)
    assert isinstance(evaluation, Evaluation)
    assert evaluation.config == workflow.space.canonical(DISPLACEMENT)
    assert evaluation.atom_labels.shape == (len(workflow.lattice.xy),)
    assert evaluation.atom_labels.min() >= -1
    b_sites = workflow.lattice.site_indices("B")
    assert (evaluation.atom_labels[workflow.lattice.site_indices("A")] == -1).all()
    assert isinstance(evaluation.segmentation, Segmentation)
    np.testing.assert_array_equal(evaluation.segmentation.xy, workflow.lattice.xy[b_sites])
    np.testing.assert_array_equal(evaluation.segmentation.labels, evaluation.atom_labels[b_sites])
    assert evaluation.segmentation.n_labels == 4
    assert 0.0 <= evaluation.reward <= 1.0
    assert {"continuity", "straightness", "islands"} <= set(evaluation.components)
    assert set(evaluation.metrics) == {"ari", "assigned", "wall_f1"}
    assert evaluation.reason is None


def test_default_configuration_runs(two_families_workflow):
    evaluation = two_families_workflow.evaluate()
    assert evaluation.config == two_families_workflow.space.default()
    assert evaluation.reason is None
    assert 0.0 <= evaluation.reward <= 1.0


def test_config_px_has_odd_pixel_windows_for_patch_descriptors(two_families_workflow):
    a = two_families_workflow.lattice.lattice_constant_px
    for descriptor in ("patch", "patch+displacement"):
        evaluation = two_families_workflow.evaluate(dict(descriptor=descriptor, window_x=1.5, window_y=0.75))
        px = evaluation.config_px
        for key, window in (("window_x", 1.5), ("window_y", 0.75)):
            assert isinstance(px[key], int) and px[key] % 2 == 1
            assert px[key] == window_pixels(window, a)
        assert evaluation.config["window_x"] == 1.5  # the config itself stays in lattice constants
        assert px["lattice_constant_px"] == round(a, 3)
    # without patches the windows are inactive and stay at their (lattice-constant) defaults
    px = two_families_workflow.evaluate(DISPLACEMENT).config_px
    assert px["window_x"] == two_families_workflow.space["window_x"].default
    assert px["lattice_constant_px"] == round(a, 3)


def test_degenerate_clustering_gives_reason_not_exception(perovskite):
    xy, sublattice = perovskite(n_cells=3, a=20.0, displacement=(1.0, 0.5))
    workflow = Workflow(positions=xy, sublattice=sublattice)
    evaluation = workflow.evaluate(dict(descriptor="displacement", reduction="none", n_clusters=5))  # 9 sites
    assert evaluation.reward == 0.0
    assert "too few" in evaluation.reason
    assert (evaluation.atom_labels == -1).all()
    assert evaluation.metrics == {}  # no truth


@pytest.mark.parametrize(
    "config",
    [
        dict(descriptor="displacement", reduction="none"),
        dict(descriptor="displacement", reduction="pca", n_components=2),
        dict(descriptor="lattice", reduction="pca", n_components=2, clustering="kmeans"),
        dict(descriptor="patch+displacement"),
        dict(descriptor="patch", patch_sites="A"),
    ],
    ids=["displacement", "displacement-pca", "lattice-pca", "patch+displacement", "patch-on-A"],
)
def test_lattice_without_valid_cages_gives_an_empty_segmentation(cageless_positions, config):
    """Regression: with B sites but no valid cage, evaluate() used to raise ValueError (an
    empty _cage_majority, or sklearn PCA asked for -1 components); now an empty segmentation."""
    xy, sublattice = cageless_positions
    workflow = Workflow(positions=xy, sublattice=sublattice)
    assert workflow.lattice.has_b_sites and (workflow.lattice.cage == -1).all()
    evaluation = workflow.evaluate(config)
    assert evaluation.reward == 0.0
    assert evaluation.reason is not None
    assert (evaluation.segmentation.labels == -1).all()


def test_rectangular_cell_lattice_has_bonds_along_both_axes():
    """Regression: on a rectangular cell lattice (a [110] view: A on a x a/sqrt(2), B midway
    along the long side, like the real SrTiO3 image) the segmentation used to bond sites only
    within 1.3 x the short A-A distance, so every B site had degree 2, counted as a border
    site, and one-cell stripes across the long side were not walls (SrTiO3 reward 0.71)."""
    long, short = 42.0, 42.0 / np.sqrt(2)
    i, j = np.meshgrid(np.arange(10), np.arange(13))
    a_xy = np.column_stack([5 + long * i.ravel(), 5 + short * j.ravel()])
    b_xy = a_xy[a_xy[:, 0] < a_xy[:, 0].max()] + [long / 2, 0.0]
    workflow = Workflow(positions=np.vstack([a_xy, b_xy]), sublattice=["A"] * len(a_xy) + ["B"] * len(b_xy))
    lattice = workflow.lattice
    b = lattice.site_indices("B")
    column = np.rint((lattice.xy[b, 0] - 5 - long / 2) / long).astype(int)
    atom_labels = np.full(len(lattice.xy), -1)
    atom_labels[b] = column % 2  # one-cell-wide stripes along y
    segmentation = workflow.cell_segmentation(atom_labels)
    x, y = segmentation.xy.T
    interior = (x > x.min() + 1) & (x < x.max() - 1) & (y > y.min() + 1) & (y < y.max() - 1)
    assert (segmentation.degree[interior] == 4).all()
    assert len(segmentation.wall_points) > 0


# --------------------------------------------------------------------------- caching


@pytest.fixture
def counted(monkeypatch):
    """Count calls of the expensive stages as the workflow module sees them."""
    calls = {"descriptor": 0, "reduce": 0, "cluster": 0}

    def wrap(name, key):
        original = getattr(workflow_module, name)

        def counting(*args, **kwargs):
            calls[key] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(workflow_module, name, counting)

    wrap("compute_descriptor", "descriptor")
    wrap("reduce", "reduce")
    wrap("cluster", "cluster")
    return calls


def test_same_configuration_is_not_recomputed(fresh_workflow, counted):
    config = dict(descriptor="patch", window_x=1.0, window_y=1.0, reduction="pca", n_components=4, n_clusters=4)
    first = fresh_workflow.evaluate(config)
    assert counted == {"descriptor": 1, "reduce": 1, "cluster": 1}
    second = fresh_workflow.evaluate(config)
    assert counted == {"descriptor": 1, "reduce": 1, "cluster": 1}
    np.testing.assert_array_equal(first.atom_labels, second.atom_labels)
    assert first.reward == second.reward
    assert len(fresh_workflow._labels) == 1 and len(fresh_workflow._features) == 1


def test_inactive_parameters_hit_the_same_cache_entry(fresh_workflow, counted):
    base = fresh_workflow.evaluate(dict(DISPLACEMENT, clustering="kmeans"))
    # windows and patch sites do not apply to displacements; covariance not to k-means
    variant = fresh_workflow.evaluate(
        dict(DISPLACEMENT, clustering="kmeans", window_x=2.5, window_y=0.5, patch_sites="all", covariance="diag")
    )
    assert counted == {"descriptor": 1, "reduce": 1, "cluster": 1}
    assert len(fresh_workflow._labels) == 1
    assert variant.config == base.config
    np.testing.assert_array_equal(base.atom_labels, variant.atom_labels)


def test_stages_are_shared_between_neighbouring_configurations(fresh_workflow, counted):
    fresh_workflow.evaluate(dict(descriptor="patch", window_x=1.0, reduction="pca", n_components=4, n_clusters=4))
    fresh_workflow.evaluate(dict(descriptor="patch", window_x=1.0, reduction="pca", n_components=4, n_clusters=3))
    assert counted == {"descriptor": 1, "reduce": 1, "cluster": 2}  # only the clustering differs
    fresh_workflow.evaluate(dict(descriptor="patch", window_x=1.0, reduction="pca", n_components=6, n_clusters=3))
    assert counted == {"descriptor": 1, "reduce": 2, "cluster": 3}
    # a window that rounds to the same odd pixel count reuses the patches
    a = fresh_workflow.lattice.lattice_constant_px
    assert window_pixels(1.02, a) == window_pixels(1.0, a)
    fresh_workflow.evaluate(dict(descriptor="patch", window_x=1.02, reduction="pca", n_components=6, n_clusters=3))
    assert counted["descriptor"] == 1
    fresh_workflow.evaluate(dict(descriptor="patch", window_x=2.0, reduction="pca", n_components=6, n_clusters=3))
    assert counted["descriptor"] == 2


def test_a_new_clustering_of_a_cached_reduction_needs_no_descriptor(fresh_workflow, counted):
    """Full-frame patches can outgrow the features cache; the reduction keeps their sites."""
    config = dict(descriptor="patch", window_x=1.0, reduction="pca", n_components=4, n_clusters=4)
    first = fresh_workflow.evaluate(config)
    fresh_workflow._features.clear()  # as when the features cache has dropped the patches
    fresh_workflow.evaluate(dict(config, n_clusters=3))
    assert counted == {"descriptor": 1, "reduce": 1, "cluster": 2}
    fresh_workflow._labels.clear()
    again = fresh_workflow.evaluate(dict(config, n_clusters=5))
    fresh_workflow.evaluate(config)
    assert counted["descriptor"] == 1
    np.testing.assert_array_equal(first.atom_labels >= 0, again.atom_labels >= 0)  # the same sites


def test_atoms_are_found_once(two_families_sample, monkeypatch):
    calls = []
    original = workflow_module.find_columns
    monkeypatch.setattr(workflow_module, "find_columns", lambda *args: calls.append(1) or original(*args))
    workflow = Workflow.from_sample(two_families_sample)
    workflow.evaluate(DISPLACEMENT)
    workflow.evaluate(dict(descriptor="lattice"))
    _ = workflow.lattice
    assert len(calls) == 1


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize(
    "config",
    [
        DISPLACEMENT,
        dict(descriptor="patch", window_x=1.25, window_y=1.25, reduction="pca", n_components=6, clustering="gmm"),
        dict(descriptor="lattice", clustering="bgmm", n_clusters=3),
    ],
    ids=["displacement", "patch", "lattice"],
)
def test_two_workflows_on_the_same_image_agree(two_families_sample, config):
    one = Workflow.from_sample(two_families_sample).evaluate(config)
    two = Workflow(two_families_sample.image.copy(), truth=two_families_sample.truth).evaluate(config)
    assert one.config == two.config
    assert one.config_px == two.config_px
    np.testing.assert_array_equal(one.atom_labels, two.atom_labels)
    np.testing.assert_array_equal(one.segmentation.labels, two.segmentation.labels)
    assert one.reward == two.reward
    assert one.components == two.components
    assert one.metrics == two.metrics
    assert one.reason == two.reason


# --------------------------------------------------------------------------- rewards


def test_custom_reward_callable_is_used(two_families_sample):
    seen = []

    def my_reward(segmentation):
        seen.append(segmentation)
        return RewardResult(0.123, {"sites": float(len(segmentation.labels))})

    workflow = Workflow.from_sample(two_families_sample, reward=my_reward)
    evaluation = workflow.evaluate(DISPLACEMENT)
    assert evaluation.reward == pytest.approx(0.123)
    assert evaluation.components == {"sites": float(len(workflow.lattice.cell_sites))}
    assert len(seen) == 1 and isinstance(seen[0], Segmentation)
    assert seen[0].spacing == workflow.lattice.lattice_constant_px


def test_reward_by_registered_name(two_families_sample):
    evaluation = Workflow.from_sample(two_families_sample, reward="continuity").evaluate(DISPLACEMENT)
    assert evaluation.reward == pytest.approx(continuity_reward(evaluation.segmentation).value)


def test_real_walls_get_a_high_combined_reward(two_families_workflow):
    evaluation = two_families_workflow.evaluate(dict(descriptor="displacement", n_clusters=4))
    print(f"\n[synthetic] two_families 256 px, displacement n_clusters=4: reward = {evaluation.reward:.3f}, "
          f"ARI = {evaluation.metrics['ari']:.3f}")
    assert evaluation.reward > 0.8


# --------------------------------------------------------------------------- input errors


def test_workflow_needs_an_image_or_positions():
    with pytest.raises(InputError, match="image, positions, or both"):
        Workflow()


def test_image_spanning_fewer_than_three_cells_is_refused(two_families_sample):
    strip = two_families_sample.image[:60, :]  # 59 px / 24.75 px = 2.4 cells tall
    workflow = Workflow(strip)
    with pytest.raises(InputError, match=r"image spans only 2\.4 unit cells.*at least 3") as error:
        workflow.evaluate(DISPLACEMENT)
    assert "larger field of view" in str(error.value)


def test_positions_spanning_fewer_than_three_cells_are_refused(perovskite):
    xy, sublattice = perovskite(n_cells=2, a=20.0)
    with pytest.raises(InputError, match=r"positions span only 2\.0 unit cells.*at least 3"):
        _ = Workflow(positions=xy, sublattice=sublattice).lattice


def test_unknown_configuration_parameter_is_refused(two_families_workflow):
    with pytest.raises(InputError, match="unknown parameter"):
        two_families_workflow.evaluate(dict(descriptor="displacement", windw_x=1.0))
    with pytest.raises(InputError, match="descriptor"):
        two_families_workflow.evaluate(dict(descriptor="fft"))


# --------------------------------------------------------------------------- figure


def test_save_segmentation_figure_writes_a_png(tmp_path, two_families_sample, two_families_workflow):
    evaluation = two_families_workflow.evaluate(DISPLACEMENT)
    target = tmp_path / "figures" / "segmentation.png"  # parent folder does not exist yet
    path = save_segmentation_figure(target, two_families_sample.image, evaluation.segmentation, "displacement")
    assert path == target
    data = target.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 1000


def test_render_segmentation_returns_rgb_uint8(two_families_sample, two_families_workflow):
    evaluation = two_families_workflow.evaluate(DISPLACEMENT)
    array = render_segmentation(two_families_sample.image, evaluation.segmentation, "title")
    assert array.ndim == 3 and array.shape[2] == 3
    assert array.dtype == np.uint8
    assert array.shape[0] > 100 and array.shape[1] > 100
    assert array.std() > 0  # not a blank canvas


def test_figure_without_image_and_without_labels(tmp_path, perovskite):
    xy, sublattice = perovskite(n_cells=5, a=20.0)
    segmentation = Segmentation(xy[sublattice == "B"], np.full((sublattice == "B").sum(), -1), 20.0)
    array = render_segmentation(None, segmentation)
    assert array.dtype == np.uint8 and array.shape[2] == 3
    path = save_segmentation_figure(tmp_path / "empty.png", None, segmentation)
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_without_caches_shares_atoms_but_recomputes_clusterings(two_families_workflow):
    config = {"descriptor": "displacement", "reduction": "none", "n_clusters": 4}
    first = two_families_workflow.evaluate(config)
    copy = two_families_workflow.without_caches()
    assert copy.lattice is two_families_workflow.lattice
    assert copy._labels == {} and copy._features == {}
    again = copy.evaluate(config)
    np.testing.assert_array_equal(again.atom_labels, first.atom_labels)
    assert again.reward == first.reward and copy._labels and two_families_workflow._labels is not copy._labels


def test_caches_stay_within_their_byte_bounds_and_evicted_stages_come_back_equal(monkeypatch):
    """With bounds of a few patches, many configurations keep each cache under its bound; a
    configuration whose stages were dropped is recomputed to the same labels."""
    sample = generate(SyntheticParams(shape=(256, 256)), seed=2)
    monkeypatch.setattr(workflow_module, "CACHE_BYTES", (400_000, 20_000, 20_000))
    workflow = Workflow.from_sample(sample)
    rng = np.random.default_rng(0)
    configs = [workflow.space.sample(rng) for _ in range(25)]
    first = [workflow.evaluate(c).atom_labels for c in configs]
    for cache in (workflow._features, workflow._reduced, workflow._labels):
        assert 0 < cache.currsize <= cache.maxsize
    again = Workflow.from_sample(sample)
    for config, labels in zip(configs, first):
        np.testing.assert_array_equal(workflow.evaluate(config).atom_labels, labels)
        np.testing.assert_array_equal(again.evaluate(config).atom_labels, labels)


def test_the_pixel_size_comes_from_the_call_the_file_or_the_truth(two_families_sample):
    from ferrogym.workflows.io import ImageData

    sample = two_families_sample
    assert Workflow.from_sample(sample).pixel_size_pm == sample.truth.pixel_size_pm
    assert Workflow(sample.image).pixel_size_pm is None
    calibrated = ImageData(sample.image, 12.5, "film.dm4")
    assert Workflow(calibrated).pixel_size_pm == 12.5
    assert Workflow(calibrated, pixel_size_pm=10.0).pixel_size_pm == 10.0
    with pytest.raises(InputError, match="pixel_size_pm"):
        Workflow(sample.image, pixel_size_pm=-1.0)
