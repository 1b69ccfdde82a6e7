"""Tests for image SPECs (ferrogym.workflows.images): choices per image and image families."""

from __future__ import annotations

from collections import Counter

import pytest

from ferrogym.workflows.errors import InputError
from ferrogym.workflows.images import parse_images
from ferrogym.workflows.synthetic import FAMILIES


def test_family_any_draws_every_family_and_the_same_seed_draws_the_same_image():
    images = parse_images("synthetic:0-139,family=any")
    families = Counter(images.params(images.seed(i)).family for i in range(len(images)))
    assert set(families) == set(FAMILIES) and min(families.values()) >= 8  # 20 expected per family
    again = parse_images("synthetic:0-139,family=any")
    assert all(images.params(s) == again.params(s) for s in (0, 57, 139))


def test_a_phase_boundary_is_a_film_on_a_substrate():
    images = parse_images("synthetic:0-9,family=phase_boundary")
    for seed in range(10):
        params = images.params(seed)
        assert params.family == "phase_boundary" and 0.2 <= params.substrate_fraction <= 0.5


def test_choices_pick_one_value_per_image_and_leave_other_fields_as_drawn():
    images = parse_images("synthetic:0-39,shape=128x128|256x256")
    shapes = Counter(images.params(s).shape for s in range(40))
    assert set(shapes) == {(128, 128), (256, 256)}
    plain = parse_images("synthetic:0-39")
    assert images.params(3).dose == plain.params(3).dose  # the base draw is unchanged


@pytest.mark.parametrize(
    "spec, message",
    [
        ("synthetic:0-3,family=foo", "synthetic family 'foo'"),
        ("synthetic:0-3,shape=256x256|10x10", "spans fewer than 3 unit cells"),
        ("synthetic:0-3,dose=100,dose=50|80", "given more than once"),
        ("synthetic:0-3,input=movie", "synthetic input 'movie'"),
    ],
)
def test_bad_choices_are_refused_with_the_reason(spec, message):
    with pytest.raises(InputError, match=message):
        parse_images(spec)


def test_an_image_given_as_positions_is_its_found_columns_without_the_image():
    image = parse_images("synthetic:7-8,shape=192x192,domains=stripes")
    positions = parse_images("synthetic:7-8,shape=192x192,domains=stripes,input=positions")
    a_sites = parse_images("synthetic:7-8,shape=192x192,domains=stripes,input=a_positions")
    assert [image.name(0), positions.name(0), a_sites.name(0)] == ["synthetic:7", "synthetic:7/positions",
                                                                   "synthetic:7/a_positions"]
    assert image.params(7) == positions.params(7) == a_sites.params(7)  # the input is not a draw of the image
    found = image.workflow(0).lattice
    given, given_a = positions.workflow(0), a_sites.workflow(0)
    assert given.image is None and given_a.image is None
    assert len(given.lattice.xy) == len(found.xy) and set(given.lattice.sublattice) == {"A", "B"}
    assert len(given_a.lattice.xy) == int((found.sublattice == "A").sum()) and set(given_a.lattice.sublattice) == {"A"}
    lattice = {"descriptor": "lattice", "clustering": "kmeans", "n_clusters": 2}
    assert given_a.evaluate(lattice).metrics["assigned"] > 0  # the truth still scores the answer


def test_an_input_choice_leaves_the_other_choices_of_a_seed_unchanged():
    plain = parse_images("synthetic:0-19,family=any,shape=128x128|256x256")
    mixed = parse_images("synthetic:0-19,family=any,shape=128x128|256x256,input=image|a_positions")
    assert {mixed.input(i) for i in range(20)} == {"image", "a_positions"}
    assert [mixed.params(s).family for s in range(20)] == [plain.params(s).family for s in range(20)]


@pytest.mark.parametrize("ab_ratio, brighter", [(0.6, "B"), (3.0, "A")])
def test_a_synthetic_image_is_analysed_knowing_which_sublattice_is_brighter(ab_ratio, brighter):
    """As a user who knows the material would say it (B for a SrRuO3-like crystal), for the
    image and for the columns found on it alike."""
    for spec in (f"synthetic:0,ab_ratio={ab_ratio}", f"synthetic:0,ab_ratio={ab_ratio},input=positions"):
        workflow = parse_images(spec).workflow(0)
        assert workflow.brighter_sublattice == brighter
