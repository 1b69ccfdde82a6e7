"""``analyze`` and the order parameter it is judged on: walls where the order parameter steps,
one domain where no configuration finds such walls (the "no walls" answer)."""

import csv
import json

import numpy as np
import pytest

from ferrogym.agents import analyze as analyze_module
from ferrogym.agents.analyze import analyze
from ferrogym.workflows import SyntheticParams, Workflow, generate
from ferrogym.workflows.errors import InputError
from ferrogym.workflows.io import load_image
from ferrogym.workflows.rewards import NO_WALLS_BELOW

#: A 256 px image with no wall: one variant under a brightness and a strain gradient, drift.
NO_WALLS = SyntheticParams(shape=(256, 256), domains="single", dose=150.0, intensity_gradient=0.8,
                           strain_gradient=0.04, gradient_angle_deg=30.0, drift_shear=0.03)
#: The same imaging with two variants in stripes.
STRIPES = SyntheticParams(shape=(256, 256), domains="stripes", dose=150.0, wall_angle_deg=90.0, period_cells=8.0)


def labels_written(out) -> np.ndarray:
    return np.array([int(row["label"]) for row in csv.DictReader(open(out / "segmentation.csv"))])


def test_an_image_without_walls_gets_the_one_domain_answer(tmp_path):
    result = analyze(Workflow.from_sample(generate(NO_WALLS, seed=1)), "bayes-tpe", 20, tmp_path, progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert not result.has_walls and summary["walls"] is False
    assert summary["reward"] < NO_WALLS_BELOW == summary["no_walls_below"]
    assert "no walls" in summary["verdict"] and "one domain" in result.verdict
    assert set(labels_written(tmp_path).tolist()) == {0}
    assert result.segmentation.n_labels == 1


def test_an_image_with_walls_keeps_its_domains(tmp_path):
    result = analyze(Workflow.from_sample(generate(STRIPES, seed=1)), "bayes-tpe", 20, tmp_path, progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert result.has_walls and summary["walls"] is True and summary["reward"] >= NO_WALLS_BELOW
    assert len(set(labels_written(tmp_path).tolist()) - {-1}) >= 2
    assert result.best.metrics["ari"] > 0.9


def test_real_srtio3_has_no_walls(tmp_path, shared_data_file):
    """The real paraelectric SrTiO3 image: no configuration of a TPE search earns walls."""
    with pytest.warns(UserWarning, match="no units"):
        image = load_image(shared_data_file("SrTiO3_ADF_cropped.hdf5"))
    result = analyze(Workflow(image), "bayes-tpe", 30, tmp_path, progress=False)
    print(f"\n[no walls] SrTiO3: best order reward of 30 TPE evaluations {result.best.reward:.3f}")
    assert not result.has_walls


def test_the_order_parameter_follows_what_the_image_has():
    sample = generate(STRIPES, seed=0)
    workflow = Workflow.from_sample(sample)
    assert workflow.order.names == ("displacement_x", "displacement_y", "log_b_over_a")
    assert workflow.order.values.shape == (len(workflow.lattice.cell_sites), 3)
    a_sites = sample.truth.xy[sample.truth.sublattice == "A"]
    a_sites = a_sites + np.random.default_rng(0).normal(0.0, 0.2, a_sites.shape)  # as if refined
    positions_only = Workflow(positions=a_sites)
    assert positions_only.order.names == ("length_1", "length_2", "shear_deg", "rotation_deg")
    assert Workflow(positions=sample.truth.xy[sample.truth.sublattice == "A"]).order.names == ()  # exact
    with pytest.raises(InputError, match="needs B sites"):
        _ = Workflow(positions=a_sites, order_parameter="displacement").order
    with pytest.raises(InputError, match="unknown"):
        _ = Workflow.from_sample(sample, order_parameter="polarisation").order


def test_the_order_reward_separates_true_variants_from_merged_ones():
    """On four variants in stripes, the 4-cluster displacement answer beats any 2-cluster one."""
    params = SyntheticParams(shape=(256, 256), domains="four_stripes", dose=150.0, wall_angle_deg=0.0, period_cells=8.0)
    workflow = Workflow.from_sample(generate(params, seed=2))
    four = workflow.evaluate(dict(descriptor="displacement", reduction="none", n_clusters=4))
    two = workflow.evaluate(dict(descriptor="displacement", reduction="none", n_clusters=2))
    assert four.metrics["ari"] > 0.95 > 0.7 > two.metrics["ari"]
    assert four.reward > two.reward + 0.3


def test_walls_are_judged_only_on_the_order_reward_scale(tmp_path):
    """Another reward has its own scale: analyze gives its best segmentation, unjudged."""
    workflow = Workflow.from_sample(generate(NO_WALLS, seed=1), reward="combined")
    result = analyze(workflow, "random", 5, tmp_path, progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert result.has_walls is None and summary["walls"] is None and "not judged" in summary["verdict"]
    assert np.array_equal(result.segmentation.labels, result.best.segmentation.labels)


def test_labels_are_grouped_into_phases_by_their_chemistry(tmp_path):
    """A film with two variants on a substrate whose B columns outshine its A columns: the
    summary names two phases, the film's two labels being variants of one of them."""
    params = SyntheticParams(shape=(256, 256), domains="stripes", wall_angle_deg=90.0, period_cells=8.0,
                             substrate_fraction=0.3, substrate_ab_ratio=0.6, dose=150.0)
    workflow = Workflow.from_sample(generate(params, seed=3))
    result = analyze(workflow, "bayes-tpe", 20, tmp_path, progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert result.best.metrics["ari"] > 0.95 and summary["phases"] == 2
    phases = [row["phase"] for row in summary["labels"]]
    assert sorted(phases) == [0, 0, 1]  # two film variants (the larger phase), one substrate
    assert sum(row["cells"] for row in summary["labels"]) == int((result.segmentation.labels >= 0).sum())


def test_phases_are_not_told_without_column_intensities(tmp_path):
    sample = generate(STRIPES, seed=0)
    a_sites = sample.truth.xy[sample.truth.sublattice == "A"]
    a_sites = a_sites + np.random.default_rng(0).normal(0.0, 0.2, a_sites.shape)
    analyze(Workflow(positions=a_sites), "random", 3, tmp_path, progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["phases"] is None and all(row["phase"] is None for row in summary["labels"])


def test_the_vae_space_records_its_device_and_maps_its_latents(tmp_path, monkeypatch):
    drawn = {}
    original = analyze_module.save_segmentation_figure

    def record(*args, **kwargs):
        drawn.update(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(analyze_module, "save_segmentation_figure", record)
    workflow = Workflow.from_sample(generate(STRIPES, seed=1), space="vae")
    analyze(workflow, "random", 2, tmp_path, progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["config"]["descriptor"] == "vae"
    assert summary["descriptor"]["device"] == "cpu" and summary["descriptor"]["seconds"] > 0
    best = workflow.space.canonical({k: v for k, v in summary["config"].items() if k in workflow.space.names
                                     and workflow.space[k].unit != "a"})
    expected = {f"z{i + 1}" for i in range(best["latent_dim"])} | (
        {"angle_deg"} if best["invariance"] != "none" else set()) | (
        {"dx", "dy"} if best["invariance"] == "rotation+translation" else set())
    assert set(drawn["maps"]) == expected
