"""``analyze`` and the order parameter it is judged on: walls where the order parameter steps,
one domain where no configuration finds such walls (the "no walls" answer)."""

import csv
import json

import numpy as np
import pytest

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
    answer, search = summary["answer"], summary["search"]
    assert not result.has_walls and answer["walls"] is False
    assert search["best"]["reward"] < NO_WALLS_BELOW == search["no_walls_below"]
    assert search["best"]["rejected"] and "no walls" in search["best"]["rejected_because"]
    assert "no walls" in answer["verdict"] and "one domain" in result.verdict and answer["configuration"] is None
    assert set(labels_written(tmp_path).tolist()) == {0}  # every column, A and B, in the one domain
    assert result.answer.segmentation.n_labels == 1 and len(answer["labels"]) == 1


def test_an_image_with_walls_keeps_its_domains(tmp_path):
    result = analyze(Workflow.from_sample(generate(STRIPES, seed=1)), "bayes-tpe", 20, tmp_path, progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    answer = summary["answer"]
    assert result.has_walls and answer["walls"] is True and answer["configuration"]["reward"] >= NO_WALLS_BELOW
    assert not summary["search"]["best"]["rejected"]
    assert len(set(labels_written(tmp_path).tolist()) - {-1}) >= 2
    assert result.search.best.metrics["ari"] > 0.9


def test_real_srtio3_has_no_walls(tmp_path, shared_data_file):
    """The real paraelectric SrTiO3 image: no configuration of a TPE search earns walls."""
    with pytest.warns(UserWarning, match="no units"):
        image = load_image(shared_data_file("SrTiO3_ADF_cropped.hdf5"))
    result = analyze(Workflow(image), "bayes-tpe", 30, tmp_path, progress=False)
    print(f"\n[no walls] SrTiO3: best order reward of 30 TPE evaluations {result.search.best.reward:.3f}")
    assert not result.has_walls


def test_real_srtio3_reports_its_lattice_and_displacements_in_pm(tmp_path, shared_data_file):
    """The issue's first criterion: lattice constant and B-site displacement in pm in summary.json
    and the CSV; a scale bar and an arrow key in the figure. Paraelectric: displacements of a
    few pm, noise, drawn as specks."""
    path = shared_data_file("SrTiO3_ADF_cropped.hdf5")
    with pytest.warns(UserWarning, match="no units"):
        result = analyze(path, out=tmp_path, progress=False)
    answer = json.loads((tmp_path / "summary.json").read_text())["answer"]
    assert answer["units"]["source"] == "file" and answer["units"]["pixel_size_pm"] == pytest.approx(9.33, abs=0.01)
    a = answer["columns"]["lattice_constant"]
    assert a["pm"] == pytest.approx(9.326 * a["px"], rel=1e-3) and 200 < a["pm"] < 600
    displacement = answer["b_displacement"]
    assert displacement["unit"] == "pm" and 0 < displacement["median_magnitude"] < 10
    rows = [r for r in csv.DictReader(open(tmp_path / "segmentation.csv")) if r["displacement_pm"]]
    assert len(rows) == displacement["sites"] and {r["sublattice"] for r in rows} == {"B"}
    polarization = result.figure().axes[1]
    assert polarization.get_title().startswith("polarization") and any(
        type(artist).__name__ == "AnchoredSizeBar" for artist in polarization.artists)
    assert [type(c).__name__ for c in polarization.get_children()].count("QuiverKey") == 1


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
    assert result.has_walls is None and summary["answer"]["walls"] is None
    assert "not judged" in summary["answer"]["verdict"] and summary["search"]["reward"] == "combined"
    assert np.array_equal(result.answer.segmentation.labels, result.search.best.segmentation.labels)


def test_labels_are_grouped_into_phases_by_their_chemistry(tmp_path):
    """A film with two variants on a substrate whose B columns outshine its A columns: the
    summary names two phases, the film's two labels being variants of one of them."""
    params = SyntheticParams(shape=(256, 256), domains="stripes", wall_angle_deg=90.0, period_cells=8.0,
                             substrate_fraction=0.3, substrate_ab_ratio=0.6, dose=150.0)
    workflow = Workflow.from_sample(generate(params, seed=3))
    result = analyze(workflow, "bayes-tpe", 20, tmp_path, progress=False)
    answer = json.loads((tmp_path / "summary.json").read_text())["answer"]
    assert result.search.best.metrics["ari"] > 0.95 and answer["phases"] == 2
    phases = [row["phase"] for row in answer["labels"]]
    assert sorted(phases) == [0, 0, 1]  # two film variants (the larger phase), one substrate
    assert sum(row["cells"] for row in answer["labels"]) == int((result.answer.segmentation.labels >= 0).sum())
    # Every column of a label, A and B, carries the label's phase.
    for row in answer["labels"]:
        assert set(result.phases[result.labels == row["label"]]) == {row["phase"]}


def test_phases_are_not_told_without_column_intensities(tmp_path):
    sample = generate(STRIPES, seed=0)
    a_sites = sample.truth.xy[sample.truth.sublattice == "A"]
    a_sites = a_sites + np.random.default_rng(0).normal(0.0, 0.2, a_sites.shape)
    analyze(Workflow(positions=a_sites), "random", 3, tmp_path, progress=False)
    answer = json.loads((tmp_path / "summary.json").read_text())["answer"]
    assert answer["phases"] is None and all(row["phase"] is None for row in answer["labels"])


def test_the_vae_space_records_its_device_and_maps_its_latents(tmp_path):
    workflow = Workflow.from_sample(generate(STRIPES, seed=1), space="vae")
    result = analyze(workflow, "random", 2, tmp_path, progress=False)
    best = json.loads((tmp_path / "summary.json").read_text())["search"]["best"]
    assert best["config"]["descriptor"] == "vae"
    assert best["descriptor"]["device"] == "cpu" and best["descriptor"]["seconds"] > 0
    config = best["config"]
    expected = {f"z{i + 1}" for i in range(config["latent_dim"])} | (
        {"angle_deg"} if config["invariance"] != "none" else set()) | (
        {"dx", "dy"} if config["invariance"] == "rotation+translation" else set())
    assert set(result.descriptor_maps) == expected
    titles = [axes.get_title() for axes in result.figure().axes]
    panels = {name.removesuffix("_deg") for name in expected}  # a panel per map, titled by its name
    assert sum(title.split(" ")[0] in panels for title in titles) == len(expected)
